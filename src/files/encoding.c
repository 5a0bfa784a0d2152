#include "files/encoding.h"

#include <string.h>
#include <strings.h>

/* Weights are kept in thousandths, the qvalue grammar's precision; -1
 * means the name was not listed. */
#define UNLISTED (-1)

typedef struct weights {
    int br, gzip, identity, star;
} weights;

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), the whole
 * of s..s+n; thousandths, or -1 when it is not one. */
static int parse_qvalue(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int q = (s[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (s[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q; /* "1.5" */
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static void raise_to(int *w, int q)
{
    if (q > *w)
        *w = q;
}

/* One list element, without its commas: codings [ OWS ";" OWS "q=" qvalue ].
 * Anything else leaves w as it was. */
static void parse_element(const char *s, size_t n, weights *w)
{
    while (n && is_ows(*s))
        s++, n--;
    while (n && is_ows(s[n - 1]))
        n--;
    size_t nl = 0;
    while (nl < n && is_tchar((unsigned char)s[nl]))
        nl++;
    if (nl == 0)
        return; /* an empty element (allowed) or garbage */
    size_t i = nl;
    int q = 1000;
    if (i < n) {
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n || s[i] != ';')
            return;
        i++;
        while (i < n && is_ows(s[i]))
            i++;
        if (n - i < 2 || (s[i] != 'q' && s[i] != 'Q') || s[i + 1] != '=')
            return;
        q = parse_qvalue(s + i + 2, n - i - 2);
        if (q < 0)
            return;
    }
    if (name_is(s, nl, "br"))
        raise_to(&w->br, q);
    else if (name_is(s, nl, "gzip") || name_is(s, nl, "x-gzip"))
        raise_to(&w->gzip, q);
    else if (name_is(s, nl, "identity"))
        raise_to(&w->identity, q);
    else if (name_is(s, nl, "*"))
        raise_to(&w->star, q);
    /* Other codings (deflate, zstd, ...) have no variant here. */
}

enum content_coding encoding_pick(const char *ae, size_t len, bool have_br, bool have_gzip)
{
    if (!ae)
        return CODING_IDENTITY;
    weights w = {UNLISTED, UNLISTED, UNLISTED, UNLISTED};
    /* Split on commas: no element of the grammar holds a quoted string, so
     * a comma inside quotes only breaks up an element that is skipped. */
    for (size_t i = 0; i <= len;) {
        const char *comma = memchr(ae + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - ae) : len;
        parse_element(ae + i, end - i, &w);
        i = end + 1;
    }
    /* "*" stands for whatever is not listed by name. */
    int br = !have_br ? UNLISTED : w.br != UNLISTED ? w.br : w.star;
    int gzip = !have_gzip ? UNLISTED : w.gzip != UNLISTED ? w.gzip : w.star;
    int identity = w.identity != UNLISTED ? w.identity : w.star;
    enum content_coding best;
    int best_q;
    if (br > 0 && br >= gzip) {
        best = CODING_BR;
        best_q = br;
    } else if (gzip > 0) {
        best = CODING_GZIP;
        best_q = gzip;
    } else {
        return CODING_IDENTITY;
    }
    /* Unlisted identity is acceptable but ranks below any coding the
     * client asked for; a client that names it with a higher q gets it. */
    return identity > best_q ? CODING_IDENTITY : best;
}
