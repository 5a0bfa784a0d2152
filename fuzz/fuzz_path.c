/* libFuzzer target: path_resolve, the URL path -> root-relative path step
 * that keeps requests inside the root.
 *
 * The input is a URL path as received (still percent-encoded), resolved
 * with dotfiles refused and allowed.  Checked:
 *  - the status is 0, 400 or 404;
 *  - a result is a relative path ("." for the root) of non-empty segments,
 *    none of them "." or "..", none starting with '.' when dotfiles are
 *    refused; it never starts with '/' and holds no NUL;
 *  - refusing dotfiles only ever turns a result into 404;
 *  - resolving is idempotent: the result, percent-encoded again, resolves
 *    to itself;
 *  - it agrees with a simple reference resolver written here (decode, split
 *    on '/' and %2F, apply dot segments) wherever no length limit can have
 *    decided.
 * A raw NUL byte is refused with 400, like an encoded %00: a result is
 * never resolved from an input holding one. */
#include "fuzz_support.h"

#include "files/path.h"
#include "core/path.h"

static void check_rel(const resolved_path *rp, bool dotfiles, bool input_has_nul)
{
    const char *rel = rp->rel;
    size_t len = strnlen(rel, sizeof(rp->rel));
    FZ_CHECK(len < sizeof(rp->rel), "result not NUL-terminated");
    if (input_has_nul)
        return; /* a raw NUL passes through: rel is not a C string then */
    FZ_CHECK(len > 0, "empty result");
    FZ_CHECK(rel[0] != '/', "result starts with '/': %s", rel);
    if (strcmp(rel, ".") == 0)
        return;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && rel[i] != '/')
            continue;
        size_t sl = i - start;
        const char *seg = rel + start;
        FZ_CHECK(sl > 0, "empty segment in %s", rel);
        FZ_CHECK(!(sl == 1 && seg[0] == '.'), "'.' segment in %s", rel);
        FZ_CHECK(!(sl == 2 && seg[0] == '.' && seg[1] == '.'), "'..' segment in %s", rel);
        FZ_CHECK(dotfiles || seg[0] != '.', "dot segment with dotfiles off: %s", rel);
        FZ_CHECK(sl < 256, "segment longer than NAME_MAX in %s", rel);
        start = i + 1;
    }
}

/* ------------------------------------------------------------- reference -- */

typedef struct ref_result {
    int status;
    char rel[8192];
    size_t len, max_len, max_seg;
} ref_result;

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Walks the segments as they are decoded: 400 for a bad escape or %00
 * anywhere; then, on the path left once dot segments are gone (as the core
 * decodes it before the file server sees it), 404 for a segment starting
 * with '.' with dotfiles off.  No length limits except
 * the buffer; the caller compares only where path_resolve's limits cannot
 * have mattered (max_seg and max_len tell). */
static void reference(const uint8_t *in, size_t len, bool dotfiles, ref_result *r)
{
    static char seg[8192];
    r->status = 0;
    r->len = r->max_len = r->max_seg = 0;
    size_t i = 0;
    bool more = true;
    while (more) {
        size_t sl = 0;
        for (;;) {
            if (i == len) {
                more = false;
                break;
            }
            unsigned char c = in[i++];
            if (c == '/')
                break;
            if (c == 0) {
                r->status = 400; /* a raw NUL, as an encoded one */
                return;
            }
            if (c == '%') {
                int hi = i + 1 < len ? hexv(in[i]) : -1;
                int lo = i + 1 < len ? hexv(in[i + 1]) : -1;
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                    r->status = 400;
                    return;
                }
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
                if (c == '/')
                    break;
            }
            seg[sl++] = (char)c;
            if (sl > r->max_seg)
                r->max_seg = sl;
        }
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (r->len > 0 && r->rel[r->len - 1] != '/')
                r->len--;
            if (r->len > 0)
                r->len--;
            continue;
        }
        if (r->len)
            r->rel[r->len++] = '/';
        memcpy(r->rel + r->len, seg, sl);
        r->len += sl;
        if (r->len > r->max_len)
            r->max_len = r->len;
    }
    for (size_t k = 0; !dotfiles && k < r->len; k++)
        if (r->rel[k] == '.' && (k == 0 || r->rel[k - 1] == '/')) {
            r->status = 404;
            return;
        }
    if (r->len == 0)
        r->rel[r->len++] = '.';
    r->rel[r->len] = 0;
}

/* The result as a URL path again: '/' then each byte, with '%' and
 * anything not plainly printable encoded ('/' stays a separator). */
static size_t encode(const char *rel, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    out[n++] = '/';
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        if (*p == '%' || *p <= 0x20 || *p >= 0x7f) {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        } else {
            out[n++] = (char)*p;
        }
    }
    return n;
}

/* A request path's two steps: decoded once by the core (path_normalize),
 * then made root-relative by the file server.  *slash: whether the decoded
 * path ends with '/', as trailing_slash must say. */
static int resolve(const char *in, size_t size, bool dotfiles, resolved_path *out, bool *slash)
{
    static char decoded[70000];
    size_t n;
    if (size + 2 > sizeof(decoded))
        return 404;
    int st = path_normalize(in, size, decoded, &n);
    if (st)
        return st;
    if (slash)
        *slash = decoded[n - 1] == '/';
    return path_resolve(decoded, n, dotfiles, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static resolved_path off, on, again;
    static ref_result ref_off, ref_on;
    static char enc[3 * sizeof(off.rel) + 2];
    const char *in = (const char *)data;
    bool has_nul = memchr(data, 0, size) != NULL;

    memset(&off, 0xA5, sizeof(off));
    memset(&on, 0x5A, sizeof(on));
    bool slash = false;
    int st_off = resolve(in, size, false, &off, &slash);
    int st_on = resolve(in, size, true, &on, NULL);
    FZ_CHECK(st_off == 0 || st_off == 400 || st_off == 404, "status %d", st_off);
    FZ_CHECK(st_on == 0 || st_on == 400 || st_on == 404, "status %d", st_on);
    FZ_CHECK(!has_nul || (st_off != 0 && st_on != 0), "resolved an input holding a NUL");

    if (st_off == 0) {
        check_rel(&off, false, has_nul);
        FZ_CHECK(off.trailing_slash == slash, "trailing_slash %d", off.trailing_slash);
        FZ_CHECK(st_on == 0 && strcmp(off.rel, on.rel) == 0,
                 "dotfiles on gives %d '%s', off gives '%s'", st_on, on.rel, off.rel);
    }
    if (st_on == 0) {
        check_rel(&on, true, has_nul);
        FZ_CHECK(st_off == 0 || st_off == 404, "dotfiles off gives %d where on gives 0", st_off);
    }
    if (st_off == 400)
        FZ_CHECK(st_on == 400, "a bad escape is 400 only with dotfiles off (on: %d)", st_on);

    /* Idempotent: resolving the result again changes nothing. */
    for (int k = 0; k < 2; k++) {
        resolved_path *rp = k ? &on : &off;
        if ((k ? st_on : st_off) != 0 || has_nul)
            continue;
        size_t n = encode(rp->rel, enc);
        int st = resolve(enc, n, k, &again, NULL);
        FZ_CHECK(st == 0 && strcmp(again.rel, rp->rel) == 0,
                 "'%s' re-resolves to %d '%s'", rp->rel, st, st == 0 ? again.rel : "");
    }

    /* The reference, where no length limit can have decided. */
    if (size < 4000) {
        reference(data, size, false, &ref_off);
        reference(data, size, true, &ref_on);
        for (int k = 0; k < 2; k++) {
            ref_result *r = k ? &ref_on : &ref_off;
            resolved_path *rp = k ? &on : &off;
            int st = k ? st_on : st_off;
            if (r->max_seg >= 255 || r->max_len + 260 >= sizeof(rp->rel))
                continue; /* a limit of path_resolve may have decided */
            FZ_CHECK(st == r->status, "dotfiles %d: status %d, reference %d", k, st, r->status);
            if (st == 0) {
                FZ_CHECK(memcmp(rp->rel, r->rel, r->len + 1) == 0,
                         "dotfiles %d: '%s', reference '%s'", k, rp->rel, r->rel);
                if (!has_nul)
                    FZ_CHECK(strlen(rp->rel) == r->len, "NUL inside the result");
            }
        }
    }
    return 0;
}
