#include "files/range.h"

#include <stdbool.h>
#include <string.h>

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* 1*DIGIT from v[*i] up to end.  No signs, no spaces; a value that does
 * not fit in uint64_t is malformed rather than wrapped or clamped, so no
 * two spellings of different numbers can name the same offset. */
static bool parse_pos(const char *v, size_t *i, size_t end, uint64_t *out)
{
    size_t j = *i;
    uint64_t x = 0;
    if (j >= end || !is_digit(v[j]))
        return false;
    for (; j < end && is_digit(v[j]); j++) {
        unsigned d = (unsigned)(v[j] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *i = j;
    *out = x;
    return true;
}

/* One range-spec, v[i..end) with surrounding OWS already gone: int-range
 * "first-[last]" or suffix-range "-length".  Anything else is invalid for
 * the bytes unit.  Sets *sat if the spec overlaps the representation and
 * then *r to its part, clamped. */
static bool parse_spec(const char *v, size_t i, size_t end, uint64_t size, byte_range *r,
                       bool *sat)
{
    uint64_t first, last;
    if (v[i] == '-') {
        i++;
        if (!parse_pos(v, &i, end, &last) || i != end)
            return false;
        /* A suffix longer than the representation means all of it; a zero
         * suffix asks for nothing and so is unsatisfiable. */
        *sat = last > 0 && size > 0;
        if (*sat)
            *r = (byte_range){last >= size ? 0 : size - last, size - 1};
        return true;
    }
    if (!parse_pos(v, &i, end, &first) || i >= end || v[i] != '-')
        return false;
    i++;
    last = UINT64_MAX;
    if (i < end && (!parse_pos(v, &i, end, &last) || last < first))
        return false;
    if (i != end)
        return false;
    *sat = first < size;
    if (*sat)
        *r = (byte_range){first, last >= size ? size - 1 : last};
    return true;
}

/* Do a and b overlap or abut?  last < size <= UINT64_MAX, so last + 1
 * cannot wrap. */
static bool touch(const byte_range *a, const byte_range *b)
{
    return a->first <= b->last + 1 && b->first <= a->last + 1;
}

/* Merges touching ranges, keeping request order: each range absorbs every
 * later one it touches, repeatedly, since growing can make it touch a range
 * it missed before.  An earlier range never touches a merged later one: the
 * union of two touching intervals is exactly their union, so it touches
 * only what one of them touched.  n <= RANGE_MAX_PARTS keeps the cubic
 * worst case small. */
static size_t coalesce(byte_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool grew;
        do {
            grew = false;
            for (size_t j = i + 1; j < n;) {
                if (!touch(&r[i], &r[j])) {
                    j++;
                    continue;
                }
                if (r[j].first < r[i].first)
                    r[i].first = r[j].first;
                if (r[j].last > r[i].last)
                    r[i].last = r[j].last;
                memmove(&r[j], &r[j + 1], (n - j - 1) * sizeof(*r));
                n--;
                grew = true;
            }
        } while (grew);
    }
    return n;
}

enum range_result range_parse(const char *v, size_t len, uint64_t size, byte_range *out, size_t max,
                              size_t *n)
{
    byte_range sat[RANGE_MAX_PARTS];
    size_t nsat = 0, specs = 0;
    size_t i = 0, end = len;
    *n = 0;
    /* A field value carries no surrounding whitespace; tolerate a parser
     * that left some. */
    while (i < end && is_ows(v[i]))
        i++;
    while (end > i && is_ows(v[end - 1]))
        end--;
    /* range-unit "=": the unit is case-insensitive, and only bytes is
     * known; other units are ignored as the RFC asks. */
    static const char unit[] = "bytes";
    size_t ul = sizeof(unit) - 1;
    if (end - i <= ul || v[i + ul] != '=')
        return RANGE_IGNORE;
    for (size_t k = 0; k < ul; k++)
        if ((v[i + k] | 0x20) != unit[k])
            return RANGE_IGNORE;
    i += ul + 1;
    /* range-set = 1#range-spec: commas with OWS around them, empty
     * elements allowed and skipped, at least one non-empty element.  OWS
     * right after '=' is accepted too, as the first element's. */
    while (i <= end) {
        size_t e = i;
        while (e < end && v[e] != ',')
            e++;
        size_t s = i, t = e;
        while (s < t && is_ows(v[s]))
            s++;
        while (t > s && is_ows(v[t - 1]))
            t--;
        i = e + 1;
        if (s == t)
            continue;
        /* Counted before validation so a flood is cut off early whatever
         * it is made of. */
        if (++specs > RANGE_MAX_PARTS)
            return RANGE_IGNORE;
        byte_range r;
        bool ok;
        if (!parse_spec(v, s, t, size, &r, &ok))
            return RANGE_IGNORE;
        if (ok)
            sat[nsat++] = r;
    }
    if (specs == 0)
        return RANGE_IGNORE;
    nsat = coalesce(sat, nsat);
    if (nsat == 0)
        return RANGE_UNSATISFIABLE;
    if (nsat > max)
        return RANGE_IGNORE;
    memcpy(out, sat, nsat * sizeof(*out));
    *n = nsat;
    return RANGE_OK;
}

/* An snprintf-like appender: counts everything, stores what fits. */
typedef struct sink {
    char *buf;
    size_t cap;
    size_t len;
} sink;

static void put(sink *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_str(sink *o, const char *s) { put(o, s, strlen(s)); }

static void put_u64(sink *o, uint64_t x)
{
    char d[20]; /* UINT64_MAX has 20 digits */
    size_t k = sizeof(d);
    do {
        d[--k] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    put(o, d + k, sizeof(d) - k);
}

static size_t finish(sink *o)
{
    if (o->cap)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
    return o->len;
}

size_t range_part_head(char *buf, size_t cap, const char *boundary, const char *type,
                       const byte_range *r, uint64_t size)
{
    sink o = {buf, cap, 0};
    put_str(&o, "\r\n--");
    put_str(&o, boundary);
    if (type) {
        put_str(&o, "\r\nContent-Type: ");
        put_str(&o, type);
    }
    put_str(&o, "\r\nContent-Range: bytes ");
    put_u64(&o, r->first);
    put_str(&o, "-");
    put_u64(&o, r->last);
    put_str(&o, "/");
    put_u64(&o, size);
    put_str(&o, "\r\n\r\n");
    return finish(&o);
}

size_t range_multipart_tail(char *buf, size_t cap, const char *boundary)
{
    sink o = {buf, cap, 0};
    put_str(&o, "\r\n--");
    put_str(&o, boundary);
    put_str(&o, "--\r\n");
    return finish(&o);
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

uint64_t range_multipart_length(const char *boundary, const char *type, const byte_range *r,
                                size_t n, uint64_t size)
{
    /* Measured with the writers themselves, so the two cannot disagree. */
    uint64_t total = range_multipart_tail(NULL, 0, boundary);
    for (size_t k = 0; k < n; k++) {
        total = add_sat(total, range_part_head(NULL, 0, boundary, type, &r[k], size));
        total = add_sat(total, byte_range_len(&r[k]));
    }
    return total;
}
