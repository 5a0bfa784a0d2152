/* libFuzzer target: the request field parsers of the file server.
 *
 * The input is lines separated by '\n' (values themselves never hold an LF:
 * llhttp refuses one inside a field):
 *   0  "SIZE FLAGS": the representation's size and, in decimal, flag bits
 *      (1: GET/HEAD, 2: have .br, 4: have .gz, 8: use line 3 as the
 *      current entity tag); defaults 1000 and 0 when absent or malformed
 *   1  Range            2  If-Range          3  If-Match
 *   4  If-None-Match    5  If-Modified-Since 6  If-Unmodified-Since
 *   7  Accept-Encoding  8  an HTTP-date      9  a time_t, in decimal
 * A missing line is an absent field (NULL), an empty line an empty value.
 *
 * Checked:
 *  - range_parse: RANGE_OK gives 1..max ranges, each first <= last < size,
 *    none touching another (they are coalesced); otherwise *n is 0; the
 *    multipart writers agree with range_multipart_length and truncate like
 *    snprintf;
 *  - cond_evaluate: 0, 304 or 412, never 304 for other methods;
 *    cond_if_range: a date that parses to the last-modified time, or the
 *    strong entity tag itself, is honoured;
 *  - http_date_parse round trip: a parsed date formats back (29 chars) to a
 *    date that parses to the same time; any time_t formats to a date that
 *    parses back to it, clamped to years 1..9999;
 *  - encoding_pick: never a variant that does not exist; no field means
 *    identity. */
#include "fuzz_support.h"

#include "files/conditional.h"
#include "files/encoding.h"
#include "files/range.h"

#include <time.h>

#define NLINES 10

typedef struct line {
    const char *p;
    size_t len;
    bool present;
} line;

static uint64_t parse_u64_or(const line *l, uint64_t dflt, size_t *used)
{
    uint64_t x = 0;
    size_t i = 0;
    while (i < l->len && i < 20 && l->p[i] >= '0' && l->p[i] <= '9')
        x = x * 10 + (uint64_t)(l->p[i++] - '0'); /* wraps past 2^64: fine */
    *used = i;
    return i ? x : dflt;
}

/* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
#define DATE_MIN INT64_C(-62135596800)
#define DATE_MAX INT64_C(253402300799)

/* A parsed date must survive format -> parse unchanged. */
static void date_round_trip(const char *s, size_t len)
{
    time_t t;
    if (http_date_parse(s, len, &t) != 0)
        return;
    char out[30];
    memset(out, 'x', sizeof(out));
    http_date_format(t, out);
    FZ_CHECK(out[29] == 0 && strlen(out) == 29, "formatted date is not 29 chars");
    time_t back;
    FZ_CHECK(http_date_parse(out, 29, &back) == 0, "'%s' (from '%.*s') does not parse", out,
             (int)len, s);
    FZ_CHECK(back == t, "'%.*s' parses to %lld, formats as '%s', which parses to %lld", (int)len,
             s, (long long)t, out, (long long)back);
}

static void time_round_trip(int64_t v)
{
    char out[30];
    http_date_format((time_t)v, out);
    FZ_CHECK(strlen(out) == 29, "formatted date is not 29 chars");
    time_t back;
    FZ_CHECK(http_date_parse(out, 29, &back) == 0, "'%s' (from %lld) does not parse", out,
             (long long)v);
    int64_t want = v < DATE_MIN ? DATE_MIN : v > DATE_MAX ? DATE_MAX : v;
    FZ_CHECK((int64_t)back == want, "%lld formats as '%s', which parses to %lld", (long long)v, out,
             (long long)back);
}

/* range_multipart_length saturates rather than wrap (documented). */
static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static void check_ranges(const line *l, uint64_t size, size_t max)
{
    byte_range r[RANGE_MAX_PARTS];
    size_t n = 12345;
    enum range_result res = range_parse(l->p, l->len, size, r, max, &n);
    FZ_CHECK(res == RANGE_IGNORE || res == RANGE_OK || res == RANGE_UNSATISFIABLE, "result %d",
             (int)res);
    if (res != RANGE_OK) {
        FZ_CHECK(n == 0, "n = %zu without RANGE_OK", n);
        return;
    }
    FZ_CHECK(n >= 1 && n <= max, "n = %zu, max %zu", n, max);
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(r[i].first <= r[i].last && r[i].last < size,
                 "range %zu: %llu-%llu of size %llu", i, (unsigned long long)r[i].first,
                 (unsigned long long)r[i].last, (unsigned long long)size);
        for (size_t j = 0; j < i; j++)
            FZ_CHECK(r[i].first > r[j].last + 1 || r[j].first > r[i].last + 1,
                     "ranges %zu and %zu touch: %llu-%llu, %llu-%llu", j, i,
                     (unsigned long long)r[j].first, (unsigned long long)r[j].last,
                     (unsigned long long)r[i].first, (unsigned long long)r[i].last);
    }
    /* The multipart framing: the length announced is the bytes written. */
    const char *boundary = "eddy-0123456789abcdef01234567";
    const char *type = size & 1 ? "text/plain; charset=utf-8" : NULL;
    uint64_t total = range_multipart_tail(NULL, 0, boundary);
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        size_t hl = range_part_head(NULL, 0, boundary, type, &r[i], size);
        FZ_CHECK(hl < sizeof(buf), "part head of %zu bytes", hl);
        size_t got = range_part_head(buf, sizeof(buf), boundary, type, &r[i], size);
        FZ_CHECK(got == hl && strlen(buf) == hl, "part head length %zu vs %zu", got, hl);
        /* Cut short: still NUL-terminated, still the full length returned. */
        size_t cap = hl / 2 + 1;
        memset(buf, 'x', sizeof(buf));
        FZ_CHECK(range_part_head(buf, cap, boundary, type, &r[i], size) == hl &&
                     strlen(buf) == cap - 1,
                 "truncated part head");
        total = add_sat(add_sat(total, hl), byte_range_len(&r[i]));
    }
    FZ_CHECK(range_multipart_length(boundary, type, r, n, size) == total,
             "multipart length %llu, parts add up to %llu",
             (unsigned long long)range_multipart_length(boundary, type, r, n, size),
             (unsigned long long)total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    line L[NLINES] = {0};
    const char *s = (const char *)data, *end = s + size;
    /* An empty input has no line; a trailing '\n' starts an empty one. */
    for (size_t k = 0; k < NLINES && size > 0; k++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        L[k] = (line){s, (size_t)((nl ? nl : end) - s), true};
        if (!nl)
            break;
        s = nl + 1;
    }

    /* Parameters. */
    size_t used = 0;
    uint64_t rsize = L[0].present ? parse_u64_or(&L[0], 1000, &used) : 1000;
    uint64_t flags = 0;
    if (L[0].present && used < L[0].len && L[0].p[used] == ' ') {
        line rest = {L[0].p + used + 1, L[0].len - used - 1, true};
        size_t u2;
        flags = parse_u64_or(&rest, 0, &u2);
    }
    bool get_or_head = flags & 1, have_br = flags & 2, have_gz = flags & 4;

    /* Range, against the size given and a few around it. */
    if (L[1].present) {
        check_ranges(&L[1], rsize, RANGE_MAX_PARTS);
        check_ranges(&L[1], rsize, 1 + (size_t)(flags >> 4) % RANGE_MAX_PARTS);
        check_ranges(&L[1], 0, RANGE_MAX_PARTS);
        check_ranges(&L[1], UINT64_MAX, RANGE_MAX_PARTS);
    }

    /* Validators of the "file": from the size, or a fuzzed current tag. */
    char etag[ETAG_MAX];
    size_t elen = etag_make(etag, rsize, (int64_t)(rsize * 7919), (long)(flags % 2000000000),
                            rsize ^ flags);
    FZ_CHECK(elen > 0 && elen <= 60 && strlen(etag) == elen, "etag of %zu chars", elen);
    const char *cur = etag;
    size_t cur_len = elen;
    if ((flags & 8) && L[3].present) {
        cur = L[3].p;
        cur_len = L[3].len;
    }
    time_t last_modified = 784111777;
    if (L[8].present)
        http_date_parse(L[8].p, L[8].len, &last_modified);

    cond_fields f = {
        .if_match = L[3].present ? L[3].p : NULL, .if_match_len = L[3].len,
        .if_none_match = L[4].present ? L[4].p : NULL, .if_none_match_len = L[4].len,
        .if_modified_since = L[5].present ? L[5].p : NULL, .if_modified_since_len = L[5].len,
        .if_unmodified_since = L[6].present ? L[6].p : NULL, .if_unmodified_since_len = L[6].len,
    };
    for (int gh = 0; gh < 2; gh++) {
        enum cond_result c = cond_evaluate(&f, gh ? true : get_or_head, cur, cur_len, last_modified);
        FZ_CHECK(c == COND_PROCEED || c == COND_NOT_MODIFIED || c == COND_PRECONDITION_FAILED,
                 "cond_evaluate: %d", (int)c);
        if (!(gh ? true : get_or_head))
            FZ_CHECK(c != COND_NOT_MODIFIED, "304 for a method other than GET and HEAD");
    }
    FZ_CHECK(cond_evaluate(NULL, true, cur, cur_len, last_modified) == COND_PROCEED,
             "no fields must proceed");
    /* Our own strong tag always matches If-Match and If-None-Match. */
    cond_fields own = {.if_match = etag, .if_match_len = elen};
    FZ_CHECK(cond_evaluate(&own, get_or_head, etag, elen, last_modified) == COND_PROCEED,
             "If-Match with the current tag fails");

    if (L[2].present) {
        cond_if_range(L[2].p, L[2].len, cur, cur_len, last_modified);
        time_t d;
        if (http_date_parse(L[2].p, L[2].len, &d) == 0)
            FZ_CHECK(cond_if_range(L[2].p, L[2].len, etag, elen, d),
                     "If-Range date equal to Last-Modified not honoured");
        date_round_trip(L[2].p, L[2].len);
    }
    FZ_CHECK(cond_if_range(etag, elen, etag, elen, last_modified),
             "If-Range with the current strong tag not honoured");

    /* Dates. */
    for (int k = 5; k <= 8; k++)
        if (L[k].present && k != 7)
            date_round_trip(L[k].p, L[k].len);
    if (L[9].present) {
        size_t u;
        bool neg = L[9].len && L[9].p[0] == '-';
        line digits = {L[9].p + neg, L[9].len - neg, true};
        uint64_t v = parse_u64_or(&digits, 0, &u);
        if (v <= (uint64_t)INT64_MAX / 2) /* also keeps time_t arithmetic sane */
            time_round_trip(neg ? -(int64_t)v : (int64_t)v);
    }

    /* Accept-Encoding. */
    const char *ae = L[7].present ? L[7].p : NULL;
    for (int v = 0; v < 4; v++) {
        bool br = v & 1, gz = v & 2;
        enum content_coding c = encoding_pick(ae, L[7].len, br, gz);
        FZ_CHECK(c == CODING_IDENTITY || c == CODING_GZIP || c == CODING_BR, "coding %d", (int)c);
        FZ_CHECK(c != CODING_BR || br, "br picked without a .br");
        FZ_CHECK(c != CODING_GZIP || gz, "gzip picked without a .gz");
    }
    encoding_pick(ae, L[7].len, have_br, have_gz);
    FZ_CHECK(encoding_pick(NULL, 0, true, true) == CODING_IDENTITY, "no field is not identity");
    return 0;
}
