/* The conformance table (tests/conformance/cases.txt) over the mock
 * stream: each request delivered whole, then in 7-byte pieces, then a
 * byte at a time, must get the same answers. */
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATUSES 8

typedef struct tcase {
    char name[64];
    int statuses[MAX_STATUSES];
    int nstatuses;
    bool close;
    char body; /* 'y', 'n' or '-' */
    char *req;
    size_t req_len;
    int line;
} tcase;

/* Growable byte buffer for decoding. */
typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static int hexval(char ch)
{
    return isdigit((unsigned char)ch) ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
}

/* Decodes the table's escapes and {N*TEXT} repetitions. */
static void decode(const char *s, size_t n, bytes *out)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '{' && isdigit((unsigned char)s[i + 1])) {
            char *end;
            unsigned long count = strtoul(s + i + 1, &end, 10);
            const char *close = memchr(end, '}', n - (size_t)(end - s));
            if (*end == '*' && close) {
                bytes unit = {0};
                decode(end + 1, (size_t)(close - end - 1), &unit);
                for (unsigned long k = 0; k < count; k++)
                    put(out, unit.p, unit.len);
                free(unit.p);
                i = (size_t)(close - s);
                continue;
            }
        }
        if (ch == '\\' && i + 1 < n) {
            char e = s[++i];
            switch (e) {
            case 'r': ch = '\r'; break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case '\\': ch = '\\'; break;
            case 'x':
                ch = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
                i += 2;
                break;
            default:
                fail_msg("unknown escape \\%c", e);
            }
        }
        put(out, &ch, 1);
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int load(const char *path, tcase **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, lineno = 0;
    tcase *cases = NULL;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *field[5];
        char *rest = l;
        for (int k = 0; k < 4; k++) {
            char *sep = strstr(rest, " | ");
            if (!sep)
                fail_msg("%s:%d: needs five fields", path, lineno);
            *sep = 0;
            field[k] = trim(rest);
            rest = sep + 3;
        }
        field[4] = trim(rest);
        cases = realloc(cases, (size_t)(n + 1) * sizeof(*cases));
        tcase *t = &cases[n++];
        memset(t, 0, sizeof(*t));
        t->line = lineno;
        snprintf(t->name, sizeof(t->name), "%s", field[0]);
        for (char *tok = strtok(field[1], " "); tok; tok = strtok(NULL, " "))
            t->statuses[t->nstatuses++] = atoi(tok);
        t->close = strcmp(field[2], "close") == 0;
        t->body = field[3][0] == 'y' ? 'y' : field[3][0] == 'n' ? 'n' : '-';
        bytes b = {0};
        decode(field[4], strlen(field[4]), &b);
        t->req = b.p;
        t->req_len = b.len;
    }
    free(line);
    fclose(f);
    *out = cases;
    return n;
}

/* Splits out into responses; returns how many, with their statuses. */
static int parse_responses(const tcase *t, const char *out, size_t len, int *statuses,
                           bool *last_has_body, char *why, size_t why_len)
{
    size_t pos = 0;
    int n = 0;
    while (pos < len && n < MAX_STATUSES + 1) {
        const char *head = out + pos;
        const char *end = memmem(head, len - pos, "\r\n\r\n", 4);
        if (!end || strncmp(head, "HTTP/1.1 ", 9) != 0) {
            snprintf(why, why_len, "unparsable output at byte %zu", pos);
            return -1;
        }
        int status = atoi(head + 9);
        size_t head_len = (size_t)(end - head) + 4;
        size_t clen = 0;
        const char *cl = memmem(head, head_len, "\r\nContent-Length: ", 18);
        if (cl)
            clen = strtoul(cl + 18, NULL, 10);
        bool last = n + 1 == t->nstatuses;
        if (status < 200 || status == 204 || status == 304 || (last && t->body == 'n'))
            clen = 0;
        if (n < MAX_STATUSES)
            statuses[n] = status;
        n++;
        pos += head_len + clen;
        *last_has_body = clen > 0 && pos <= len;
        if (last && t->body == 'n' && pos < len && n == t->nstatuses) {
            snprintf(why, why_len, "bytes after a response that must have no body");
            return -1;
        }
    }
    return n;
}

static bool run_case(fixture *fx, const tcase *t, size_t piece, char *why, size_t why_len)
{
    mock_stream *m = fx_connect(fx);
    if (piece == 0)
        mock_push(m, t->req, t->req_len);
    else
        for (size_t off = 0; off < t->req_len; off += piece)
            mock_push(m, t->req + off, t->req_len - off < piece ? t->req_len - off : piece);
    fx_run(fx);
    size_t len;
    const char *out = mock_output(m, &len);
    int statuses[MAX_STATUSES];
    bool body = false, ok = true;
    int n = parse_responses(t, out, len, statuses, &body, why, why_len);
    if (n < 0) {
        ok = false;
    } else if (n != t->nstatuses || memcmp(statuses, t->statuses, (size_t)n * sizeof(int))) {
        snprintf(why, why_len, "got %d response(s), first status %d; want %d, first %d", n,
                 n ? statuses[0] : 0, t->nstatuses, t->statuses[0]);
        ok = false;
    } else if (t->body != '-' && body != (t->body == 'y')) {
        snprintf(why, why_len, "last response %s a body", body ? "has" : "lacks");
        ok = false;
    } else if (mock_ended(m) != t->close) {
        snprintf(why, why_len, "connection %s", t->close ? "kept open" : "ended");
        ok = false;
    } else if (!t->close) {
        /* Kept alive: it must answer another request. */
        mock_clear_output(m);
        mock_push_str(m, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        fx_run(fx);
        char *o = fx_output(m);
        if (strncmp(o, "HTTP/1.1 200 ", 13) != 0) {
            snprintf(why, why_len, "kept connection does not answer a next request");
            ok = false;
        }
        free(o);
    }
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    return ok;
}

static void conformance_table(void **state)
{
    (void)state;
    const char *path = getenv("EDDY_CASES") ? getenv("EDDY_CASES") : "tests/conformance/cases.txt";
    tcase *cases;
    int n = load(path, &cases);
    assert_true(n > 50);
    fixture *fx = fx_new(NULL);
    int failed = 0;
    static const size_t pieces[] = {0, 7, 1};
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
            if (pieces[k] == 1 && cases[i].req_len > 4096)
                continue; /* a byte at a time: small requests only */
            char why[160];
            if (!run_case(fx, &cases[i], pieces[k], why, sizeof(why))) {
                print_message("FAIL %s (line %d, %s): %s\n", cases[i].name, cases[i].line,
                              pieces[k] ? (pieces[k] == 1 ? "bytewise" : "7-byte pieces") : "whole",
                              why);
                failed++;
                break;
            }
        }
    }
    for (int i = 0; i < n; i++)
        free(cases[i].req);
    free(cases);
    fx_free(fx);
    if (failed)
        fail_msg("%d of %d conformance cases failed", failed, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conformance_table),
    };
    return cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
}
