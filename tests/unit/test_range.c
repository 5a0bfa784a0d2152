/* Range field parsing against a size, coalescing, big files, and the
 * multipart/byteranges framing. */
#include "harness.h"
#include "files/range.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IGN RANGE_IGNORE
#define OK RANGE_OK
#define UNSAT RANGE_UNSATISFIABLE

/* String literals that may hold NUL bytes keep their true length. */
#define S(lit) lit, sizeof(lit) - 1

#define GIB (UINT64_C(1) << 30)
#define I63 UINT64_C(9223372036854775807) /* 2^63 - 1, the largest off_t */

typedef struct range_case {
    const char *v;
    size_t len;
    uint64_t size;
    enum range_result want;
    size_t n;
    byte_range r[4];
} range_case;

static const char *result_name(enum range_result r)
{
    return r == RANGE_OK ? "OK" : r == RANGE_UNSATISFIABLE ? "UNSAT" : "IGNORE";
}

/* Printable copy of a field value for failure messages. */
static const char *show(const char *v, size_t len)
{
    static char buf[160];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof(buf); i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch >= 0x20 && ch < 0x7f)
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

static void check_case(const range_case *c, size_t max)
{
    byte_range out[RANGE_MAX_PARTS];
    size_t n = 99;
    enum range_result got = range_parse(c->v, c->len, c->size, out, max, &n);
    if (got != c->want)
        fail_msg("'%s' size %" PRIu64 ": %s, wanted %s", show(c->v, c->len), c->size,
                 result_name(got), result_name(c->want));
    if (got != RANGE_OK) {
        if (n != 0)
            fail_msg("'%s': n = %zu on %s", show(c->v, c->len), n, result_name(got));
        return;
    }
    if (n != c->n)
        fail_msg("'%s': %zu ranges, wanted %zu", show(c->v, c->len), n, c->n);
    for (size_t i = 0; i < n; i++)
        if (out[i].first != c->r[i].first || out[i].last != c->r[i].last)
            fail_msg("'%s': range %zu is %" PRIu64 "-%" PRIu64 ", wanted %" PRIu64 "-%" PRIu64,
                     show(c->v, c->len), i, out[i].first, out[i].last, c->r[i].first,
                     c->r[i].last);
}

static void run_table(const range_case *t, size_t count)
{
    for (size_t i = 0; i < count; i++)
        check_case(&t[i], RANGE_MAX_PARTS);
}

#define RUN(table) run_table(table, sizeof(table) / sizeof(table[0]))

static void single_ranges(void **state)
{
    (void)state;
    static const range_case t[] = {
        {S("bytes=0-499"), 10000, OK, 1, {{0, 499}}},
        {S("bytes=500-999"), 10000, OK, 1, {{500, 999}}},
        {S("bytes=500-"), 10000, OK, 1, {{500, 9999}}},
        {S("bytes=-500"), 10000, OK, 1, {{9500, 9999}}},
        {S("bytes=0-0"), 10000, OK, 1, {{0, 0}}},
        {S("bytes=-1"), 10000, OK, 1, {{9999, 9999}}},
        {S("bytes=9999-"), 10000, OK, 1, {{9999, 9999}}},
        {S("bytes=9999-9999"), 10000, OK, 1, {{9999, 9999}}},
        {S("bytes=0-"), 10000, OK, 1, {{0, 9999}}},
        {S("bytes=0-9999"), 10000, OK, 1, {{0, 9999}}},
        /* Last-pos past the end is clamped; a long suffix means all. */
        {S("bytes=0-10000"), 10000, OK, 1, {{0, 9999}}},
        {S("bytes=9000-20000"), 10000, OK, 1, {{9000, 9999}}},
        {S("bytes=-10000"), 10000, OK, 1, {{0, 9999}}},
        {S("bytes=-20000"), 10000, OK, 1, {{0, 9999}}},
        {S("bytes=0-0"), 1, OK, 1, {{0, 0}}},
        {S("bytes=-5"), 1, OK, 1, {{0, 0}}},
        /* Leading zeros are digits like any other. */
        {S("bytes=000-0010"), 10000, OK, 1, {{0, 10}}},
        {S("bytes=00000000000000000000000000000001-2"), 10000, OK, 1, {{1, 2}}},
        /* The unit is case-insensitive. */
        {S("Bytes=1-2"), 10000, OK, 1, {{1, 2}}},
        {S("BYTES=1-2"), 10000, OK, 1, {{1, 2}}},
        {S("bYtEs=1-2"), 10000, OK, 1, {{1, 2}}},
    };
    RUN(t);
}

static void lists_and_whitespace(void **state)
{
    (void)state;
    static const range_case t[] = {
        {S("bytes=0-1,5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=0-1, 5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=0-1 ,5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=0-1\t,\t5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=0-1 \t , \t 5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        /* Empty list elements are allowed and skipped. */
        {S("bytes=0-1, ,5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=0-1,,,5-6"), 100, OK, 2, {{0, 1}, {5, 6}}},
        {S("bytes=,0-1"), 100, OK, 1, {{0, 1}}},
        {S("bytes=, ,0-1"), 100, OK, 1, {{0, 1}}},
        {S("bytes=0-1,"), 100, OK, 1, {{0, 1}}},
        {S("bytes=0-1, "), 100, OK, 1, {{0, 1}}},
        /* Whitespace around the whole value, or after '=': tolerated. */
        {S(" bytes=0-1"), 100, OK, 1, {{0, 1}}},
        {S("bytes=0-1 \t"), 100, OK, 1, {{0, 1}}},
        {S("bytes= 0-1"), 100, OK, 1, {{0, 1}}},
        {S("bytes=\t0-1"), 100, OK, 1, {{0, 1}}},
        {S("bytes=-5,0-0"), 100, OK, 2, {{95, 99}, {0, 0}}},
        {S("bytes=0-0,-1"), 100, OK, 2, {{0, 0}, {99, 99}}},
        {S("bytes=1-1,3-3,5-5,7-7"), 100, OK, 4, {{1, 1}, {3, 3}, {5, 5}, {7, 7}}},
    };
    RUN(t);
}

static void unsatisfiable(void **state)
{
    (void)state;
    static const range_case t[] = {
        {S("bytes=10000-"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=10000-10000"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=10001-20000"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=-0"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=-000"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=-0,20000-"), 10000, UNSAT, 0, {{0, 0}}},
        {S("bytes=18446744073709551615-"), 10000, UNSAT, 0, {{0, 0}}},
        /* An unsatisfiable range is dropped when another is satisfiable. */
        {S("bytes=20000-,0-1"), 10000, OK, 1, {{0, 1}}},
        {S("bytes=0-1,20000-30000"), 10000, OK, 1, {{0, 1}}},
        {S("bytes=-0,5-"), 10000, OK, 1, {{5, 9999}}},
        {S("bytes=-0,-1"), 10000, OK, 1, {{9999, 9999}}},
        /* Nothing of an empty representation can be sent. */
        {S("bytes=0-"), 0, UNSAT, 0, {{0, 0}}},
        {S("bytes=0-0"), 0, UNSAT, 0, {{0, 0}}},
        {S("bytes=-5"), 0, UNSAT, 0, {{0, 0}}},
        {S("bytes=-0"), 0, UNSAT, 0, {{0, 0}}},
        {S("bytes=0-1,-1,5-"), 0, UNSAT, 0, {{0, 0}}},
        /* ...but malformed stays malformed even then. */
        {S("bytes=5-1"), 0, IGN, 0, {{0, 0}}},
        {S("items=0-1"), 0, IGN, 0, {{0, 0}}},
    };
    RUN(t);
}

static void malformed_is_ignored(void **state)
{
    (void)state;
    static const range_case t[] = {
        {S(""), 100, IGN, 0, {{0, 0}}},
        {S(" "), 100, IGN, 0, {{0, 0}}},
        {S("bytes"), 100, IGN, 0, {{0, 0}}},
        {S("bytes 0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes:0-1"), 100, IGN, 0, {{0, 0}}},
        {S("=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes="), 100, IGN, 0, {{0, 0}}},
        {S("bytes= "), 100, IGN, 0, {{0, 0}}},
        {S("bytes=,"), 100, IGN, 0, {{0, 0}}},
        {S("bytes= , ,\t,"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=--"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=--1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-1-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-1-2"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1-2-3"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1--2"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=12"), 100, IGN, 0, {{0, 0}}},
        {S("bytes==0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0=1"), 100, IGN, 0, {{0, 0}}},
        /* first > last invalidates the whole field, even beside good ones. */
        {S("bytes=5-3"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1-0"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1,5-3"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=500-400"), 100, IGN, 0, {{0, 0}}},
        /* One bad element poisons the rest. */
        {S("bytes=0-1,x"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1,-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1;2-3"), 100, IGN, 0, {{0, 0}}},
        /* Digits only: no signs, bases, exponents, fractions or letters. */
        {S("bytes=+1-2"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1-+2"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-+5"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-1-5"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0x10-20"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1e2-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1.5-2"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=a-b"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1-2a"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=\xd9\xa1-2"), 100, IGN, 0, {{0, 0}}}, /* Arabic-Indic one */
        {S("bytes=0-1\xff"), 100, IGN, 0, {{0, 0}}},
        /* No whitespace inside a range-spec. */
        {S("bytes=0 -1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0- 1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0\t-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-\t1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=- 5"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=1 2-3"), 100, IGN, 0, {{0, 0}}},
        {S("bytes =0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes\t=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1\r\n"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1\n,2-3"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1\v"), 100, IGN, 0, {{0, 0}}},
        /* NUL bytes are bytes like any other here, and never digits. */
        {S("\0bytes=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("by\0es=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes\0=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=\0"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0\0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1\0"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-1,\0,2-3"), 100, IGN, 0, {{0, 0}}},
        /* Other units, and things that are almost "bytes". */
        {S("items=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("byte=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytesx=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("xbytes=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bits=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("none"), 100, IGN, 0, {{0, 0}}},
        /* Case folding must not fold other bytes onto letters. */
        {S("\xe2ytes=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("bytE\xd3=0-1"), 100, IGN, 0, {{0, 0}}},
        {S("\x42\x59\x54\x45\x53=0-1"), 100, OK, 1, {{0, 1}}}, /* "BYTES" */
    };
    RUN(t);
}

static void huge_numbers(void **state)
{
    (void)state;
    static const range_case t[] = {
        /* UINT64_MAX itself fits; one more does not and is malformed. */
        {S("bytes=0-18446744073709551615"), 100, OK, 1, {{0, 99}}},
        {S("bytes=-18446744073709551615"), 100, OK, 1, {{0, 99}}},
        {S("bytes=18446744073709551615-18446744073709551615"), 100, UNSAT, 0, {{0, 0}}},
        {S("bytes=18446744073709551616-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-18446744073709551616"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=-18446744073709551616"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=18446744073709551620-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=28446744073709551615-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=99999999999999999999999999999999999999-"), 100, IGN, 0, {{0, 0}}},
        {S("bytes=0-99999999999999999999999999999999999999"), 100, IGN, 0, {{0, 0}}},
        /* Wrapping 2^64 + 5 to 5 would be a different request. */
        {S("bytes=18446744073709551621-18446744073709551625"), 100, IGN, 0, {{0, 0}}},
        /* An overflowing spec poisons an otherwise good field. */
        {S("bytes=0-1,18446744073709551616-"), 100, IGN, 0, {{0, 0}}},
    };
    RUN(t);
}

static void large_files(void **state)
{
    (void)state;
    static const range_case t[] = {
        /* Offsets past 2^32 in a 5 GiB file. */
        {S("bytes=4294967296-4294967300"), 5 * GIB, OK, 1, {{4294967296, 4294967300}}},
        {S("bytes=4294967295-"), 5 * GIB, OK, 1, {{4294967295, 5 * GIB - 1}}},
        {S("bytes=-1"), 5 * GIB, OK, 1, {{5 * GIB - 1, 5 * GIB - 1}}},
        {S("bytes=-4294967297"), 5 * GIB, OK, 1, {{5 * GIB - 4294967297, 5 * GIB - 1}}},
        {S("bytes=0-99999999999"), 5 * GIB, OK, 1, {{0, 5 * GIB - 1}}},
        {S("bytes=5368709120-"), 5 * GIB, UNSAT, 0, {{0, 0}}},
        {S("bytes=5368709119-"), 5 * GIB, OK, 1, {{5 * GIB - 1, 5 * GIB - 1}}},
        {S("bytes=0-4294967295,4294967296-5000000000"), 5 * GIB, OK, 1, {{0, 5000000000}}},
        {S("bytes=4294967296-4294967296,0-0"), 5 * GIB, OK, 2, {{4294967296, 4294967296}, {0, 0}}},
        /* Near 2^63, the largest file Linux can hold. */
        {S("bytes=9223372036854775806-"), I63, OK, 1, {{I63 - 1, I63 - 1}}},
        {S("bytes=9223372036854775807-"), I63, UNSAT, 0, {{0, 0}}},
        {S("bytes=9223372036854775800-9223372036854775900"), I63, OK, 1, {{I63 - 7, I63 - 1}}},
        {S("bytes=-9223372036854775807"), I63, OK, 1, {{0, I63 - 1}}},
        {S("bytes=-9223372036854775808"), I63, OK, 1, {{0, I63 - 1}}},
        {S("bytes=-2"), I63, OK, 1, {{I63 - 2, I63 - 1}}},
        {S("bytes=0-0,-1"), I63, OK, 2, {{0, 0}, {I63 - 1, I63 - 1}}},
        /* And at the very top of uint64_t, where last + 1 must not wrap. */
        {S("bytes=18446744073709551614-"), UINT64_MAX, OK, 1, {{UINT64_MAX - 1, UINT64_MAX - 1}}},
        {S("bytes=18446744073709551615-"), UINT64_MAX, UNSAT, 0, {{0, 0}}},
        {S("bytes=0-18446744073709551615"), UINT64_MAX, OK, 1, {{0, UINT64_MAX - 1}}},
        {S("bytes=-1,0-0"), UINT64_MAX, OK, 2, {{UINT64_MAX - 1, UINT64_MAX - 1}, {0, 0}}},
        {S("bytes=-1,-2"), UINT64_MAX, OK, 1, {{UINT64_MAX - 2, UINT64_MAX - 1}}},
    };
    RUN(t);
}

static void coalescing(void **state)
{
    (void)state;
    static const range_case t[] = {
        /* Adjacent and overlapping merge; a one-byte gap does not. */
        {S("bytes=0-1,2-3"), 100, OK, 1, {{0, 3}}},
        {S("bytes=2-3,0-1"), 100, OK, 1, {{0, 3}}},
        {S("bytes=0-5,3-8"), 100, OK, 1, {{0, 8}}},
        {S("bytes=3-8,0-5"), 100, OK, 1, {{0, 8}}},
        {S("bytes=0-1,3-4"), 100, OK, 2, {{0, 1}, {3, 4}}},
        {S("bytes=5-5,5-5"), 100, OK, 1, {{5, 5}}},
        {S("bytes=0-99,10-20"), 100, OK, 1, {{0, 99}}},
        {S("bytes=10-20,0-"), 100, OK, 1, {{0, 99}}},
        {S("bytes=-50,40-"), 100, OK, 1, {{40, 99}}},
        {S("bytes=-50,0-49"), 100, OK, 1, {{0, 99}}},
        {S("bytes=0-1000,5-2000"), 100, OK, 1, {{0, 99}}},
        /* Request order is kept; a merged range sits where its first
         * member was. */
        {S("bytes=10-20,0-5"), 100, OK, 2, {{10, 20}, {0, 5}}},
        {S("bytes=10-20,0-9"), 100, OK, 1, {{0, 20}}},
        {S("bytes=50-60,0-1,40-49"), 100, OK, 2, {{40, 60}, {0, 1}}},
        {S("bytes=0-1,50-60,70-80,61-69"), 100, OK, 2, {{0, 1}, {50, 80}}},
        /* A later range can bridge two earlier ones. */
        {S("bytes=0-1,10-11,2-9"), 100, OK, 1, {{0, 11}}},
        {S("bytes=20-30,0-1,10-11,2-9"), 100, OK, 2, {{20, 30}, {0, 11}}},
        {S("bytes=0-1,10-11,2-9,12-20"), 100, OK, 1, {{0, 20}}},
        {S("bytes=30-39,10-19,0-9,20-29"), 100, OK, 1, {{0, 39}}},
        {S("bytes=0-0,2-2,4-4,6-6,1-1,3-3,5-5"), 100, OK, 1, {{0, 6}}},
        {S("bytes=8-9,0-1,4-5,2-3,6-7"), 100, OK, 1, {{0, 9}}},
        /* Unsatisfiable ranges take no part; clamping can make ranges
         * touch. */
        {S("bytes=200-300,0-1,150-"), 100, OK, 1, {{0, 1}}},
        {S("bytes=90-200,95-300"), 100, OK, 1, {{90, 99}}},
        /* The classic amplification: the whole file, many times. */
        {S("bytes=0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-"), 100, OK, 1, {{0, 99}}},
        {S("bytes=1-,2-,3-,4-,5-,6-,7-,8-,9-,10-,11-,12-,13-,14-,15-,0-"), 100, OK, 1, {{0, 99}}},
    };
    RUN(t);
}

/* Builds "bytes=" followed by count copies of spec joined by sep. */
static char *repeat(const char *spec, const char *sep, size_t count, size_t *len)
{
    size_t sl = strlen(spec), pl = strlen(sep);
    char *v = malloc(6 + count * (sl + pl) + 1);
    assert_non_null(v);
    memcpy(v, "bytes=", 6);
    size_t o = 6;
    for (size_t i = 0; i < count; i++) {
        if (i) {
            memcpy(v + o, sep, pl);
            o += pl;
        }
        memcpy(v + o, spec, sl);
        o += sl;
    }
    v[o] = '\0';
    *len = o;
    return v;
}

static enum range_result parse_n(const char *v, size_t len, uint64_t size, size_t max, size_t *n)
{
    byte_range out[RANGE_MAX_PARTS];
    return range_parse(v, len, size, out, max, n);
}

static void range_floods(void **state)
{
    (void)state;
    size_t len, n;
    char *v;
    /* RANGE_MAX_PARTS ranges are fine; one more is a flood, even when
     * they would all coalesce into one. */
    v = repeat("0-0", ",", RANGE_MAX_PARTS, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_OK);
    assert_int_equal(n, 1);
    free(v);
    v = repeat("0-0", ",", RANGE_MAX_PARTS + 1, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_IGNORE);
    assert_int_equal(n, 0);
    free(v);
    /* Unsatisfiable ranges count too: the field is still a flood. */
    v = repeat("500-", ",", RANGE_MAX_PARTS + 1, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_IGNORE);
    free(v);
    /* Empty elements do not count. */
    v = repeat("0-0", ", , ,", RANGE_MAX_PARTS, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_OK);
    free(v);
    /* 10000 ranges, and 10000 disjoint ones. */
    v = repeat("0-0", ",", 10000, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_IGNORE);
    free(v);
    char *big = malloc(10000 * 24 + 8);
    assert_non_null(big);
    size_t o = (size_t)sprintf(big, "bytes=");
    for (unsigned i = 0; i < 10000; i++)
        o += (size_t)sprintf(big + o, "%s%u-%u", i ? "," : "", 2 * i, 2 * i);
    assert_int_equal(parse_n(big, o, 1000000, RANGE_MAX_PARTS, &n), RANGE_IGNORE);
    free(big);
    /* A field of nothing but commas is empty, however long. */
    v = repeat("", ",", 10000, &len);
    assert_int_equal(parse_n(v, len, 100, RANGE_MAX_PARTS, &n), RANGE_IGNORE);
    free(v);
    /* 16 disjoint ranges all come back, in order. */
    byte_range out[RANGE_MAX_PARTS];
    char f[256];
    o = (size_t)sprintf(f, "bytes=");
    for (unsigned i = 0; i < RANGE_MAX_PARTS; i++)
        o += (size_t)sprintf(f + o, "%s%u-%u", i ? "," : "", 100 - 4 * i, 100 - 4 * i + 1);
    assert_int_equal(range_parse(f, o, 1000, out, RANGE_MAX_PARTS, &n), RANGE_OK);
    assert_int_equal(n, RANGE_MAX_PARTS);
    for (unsigned i = 0; i < RANGE_MAX_PARTS; i++) {
        assert_int_equal(out[i].first, 100 - 4 * i);
        assert_int_equal(out[i].last, 100 - 4 * i + 1);
    }
}

static void max_bounds_the_output(void **state)
{
    (void)state;
    byte_range out[3] = {{7, 7}, {7, 7}, {7, 7}};
    size_t n;
    /* More ranges than the caller has room for: ignored... */
    assert_int_equal(range_parse(S("bytes=0-1,5-6"), 100, out, 1, &n), RANGE_IGNORE);
    assert_int_equal(n, 0);
    /* ...counted after coalescing, so this fits in one. */
    assert_int_equal(range_parse(S("bytes=0-1,5-6,2-4"), 100, out, 1, &n), RANGE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].first, 0);
    assert_int_equal(out[0].last, 6);
    assert_int_equal(out[1].first, 7); /* untouched past *n */
    /* max 0 can hold nothing satisfiable; unsatisfiable is still told. */
    assert_int_equal(range_parse(S("bytes=0-1"), 100, NULL, 0, &n), RANGE_IGNORE);
    assert_int_equal(range_parse(S("bytes=200-"), 100, NULL, 0, &n), RANGE_UNSATISFIABLE);
    /* A value need not be NUL-terminated: only len bytes are read. */
    char raw[] = {'b', 'y', 't', 'e', 's', '=', '1', '-', '2', '3'};
    assert_int_equal(range_parse(raw, 9, 100, out, 3, &n), RANGE_OK);
    assert_int_equal(out[0].last, 2);
    char *heap = malloc(9);
    assert_non_null(heap);
    memcpy(heap, raw, 9); /* ASan catches a read past the end */
    assert_int_equal(range_parse(heap, 9, 100, out, 3, &n), RANGE_OK);
    assert_int_equal(range_parse(heap, 8, 100, out, 3, &n), RANGE_OK);
    assert_int_equal(out[0].last, 99);
    assert_int_equal(range_parse(heap, 5, 100, out, 3, &n), RANGE_IGNORE);
    free(heap);
}

/* Random field values over the grammar's alphabet: whatever comes back
 * must keep the promises the header makes. */
static void random_fields_keep_invariants(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789-, \t=xB\0";
    static const uint64_t sizes[] = {0, 1, 2, 10, 100, 5 * GIB, I63, UINT64_MAX};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int iter = 0; iter < 200000; iter++) {
        char v[40];
        memcpy(v, "bytes=", 6);
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t len = 6 + (size_t)(seed >> 59) + 1;
        for (size_t i = 6; i < len; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            v[i] = alphabet[(seed >> 33) % (sizeof(alphabet) - 1)];
        }
        uint64_t size = sizes[(seed >> 20) % (sizeof(sizes) / sizeof(sizes[0]))];
        byte_range out[RANGE_MAX_PARTS];
        size_t n;
        enum range_result res = range_parse(v, len, size, out, RANGE_MAX_PARTS, &n);
        if (res != RANGE_OK) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_true(n >= 1 && n <= RANGE_MAX_PARTS);
        for (size_t i = 0; i < n; i++) {
            assert_true(out[i].first <= out[i].last);
            assert_true(out[i].last < size);
            for (size_t j = i + 1; j < n; j++)
                assert_true(out[i].last + 1 < out[j].first || out[j].last + 1 < out[i].first);
        }
    }
}

static void part_head_and_tail_text(void **state)
{
    (void)state;
    char buf[256];
    byte_range r = {500, 999};
    size_t len = range_part_head(buf, sizeof(buf), "XYZ", "text/plain", &r, 8000);
    const char *want = "\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 500-999/8000\r\n\r\n";
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    /* Without a type there is no Content-Type line. */
    len = range_part_head(buf, sizeof(buf), "XYZ", NULL, &r, 8000);
    assert_string_equal(buf, "\r\n--XYZ\r\nContent-Range: bytes 500-999/8000\r\n\r\n");
    /* 64-bit offsets print in full. */
    r = (byte_range){UINT64_MAX - 2, UINT64_MAX - 1};
    range_part_head(buf, sizeof(buf), "b", "a/b", &r, UINT64_MAX);
    assert_string_equal(buf, "\r\n--b\r\nContent-Type: a/b\r\nContent-Range: bytes "
                             "18446744073709551613-18446744073709551614/18446744073709551615\r\n\r\n");
    r = (byte_range){0, 0};
    range_part_head(buf, sizeof(buf), "b", "a/b", &r, 1);
    assert_string_equal(buf, "\r\n--b\r\nContent-Type: a/b\r\nContent-Range: bytes 0-0/1\r\n\r\n");
    len = range_multipart_tail(buf, sizeof(buf), "XYZ");
    assert_string_equal(buf, "\r\n--XYZ--\r\n");
    assert_int_equal(len, 11);
}

static void writers_truncate_like_snprintf(void **state)
{
    (void)state;
    byte_range r = {4294967296, 4294967299};
    char full[256], small[256];
    size_t need = range_part_head(full, sizeof(full), "bnd", "image/png", &r, 5 * GIB);
    assert_int_equal(need, strlen(full));
    /* Every capacity gives the same length back and a NUL-terminated
     * prefix, and writes nothing past cap. */
    for (size_t cap = 0; cap <= need + 1; cap++) {
        memset(small, '#', sizeof(small));
        assert_int_equal(range_part_head(small, cap, "bnd", "image/png", &r, 5 * GIB), need);
        if (cap) {
            size_t kept = cap - 1 < need ? cap - 1 : need;
            assert_memory_equal(small, full, kept);
            assert_int_equal(small[kept], '\0');
        }
        for (size_t i = cap; i < sizeof(small); i++)
            assert_int_equal(small[i], '#');
    }
    assert_int_equal(range_part_head(NULL, 0, "bnd", "image/png", &r, 5 * GIB), need);
    size_t tail = range_multipart_tail(full, sizeof(full), "bnd");
    for (size_t cap = 0; cap <= tail + 1; cap++) {
        memset(small, '#', sizeof(small));
        assert_int_equal(range_multipart_tail(small, cap, "bnd"), tail);
        if (cap) {
            size_t kept = cap - 1 < tail ? cap - 1 : tail;
            assert_memory_equal(small, full, kept);
            assert_int_equal(small[kept], '\0');
        }
        assert_int_equal(small[cap], '#');
    }
    assert_int_equal(range_multipart_tail(NULL, 0, "bnd"), tail);
}

/* Assembles the whole body into memory, as the server would send it. */
static char *build_body(const char *data, uint64_t size, const char *boundary, const char *type,
                        const byte_range *r, size_t n, size_t *len)
{
    size_t cap = 1 << 16, o = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++) {
        size_t h = range_part_head(body + o, cap - o, boundary, type, &r[i], size);
        assert_true(h < cap - o);
        o += h;
        assert_true(byte_range_len(&r[i]) < cap - o);
        memcpy(body + o, data + r[i].first, byte_range_len(&r[i]));
        o += byte_range_len(&r[i]);
    }
    size_t t = range_multipart_tail(body + o, cap - o, boundary);
    assert_true(t < cap - o);
    *len = o + t;
    return body;
}

static void multipart_length_agrees(void **state)
{
    (void)state;
    char data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    static const char *fields[] = {
        "bytes=0-0",
        "bytes=0-9,20-29",
        "bytes=-1,0-0,500-599",
        "bytes=0-1,3-4,6-7,9-10,12-13,15-16,18-19,21-22,24-25,27-28,30-31,33-34,36-37,39-40,42-43,999-",
        "bytes=0-",
        "bytes=990-2000,5-5,100-199",
    };
    static const char *types[] = {"text/plain; charset=utf-8", "application/octet-stream", NULL};
    static const char *boundaries[] = {"x", "3d6b6a416f9b5", "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
            for (size_t b = 0; b < sizeof(boundaries) / sizeof(boundaries[0]); b++) {
                byte_range r[RANGE_MAX_PARTS];
                size_t n, len;
                assert_int_equal(range_parse(fields[f], strlen(fields[f]), sizeof(data), r,
                                             RANGE_MAX_PARTS, &n),
                                 RANGE_OK);
                char *body = build_body(data, sizeof(data), boundaries[b], types[t], r, n, &len);
                if (range_multipart_length(boundaries[b], types[t], r, n, sizeof(data)) != len)
                    fail_msg("%s / %s / %s: length %" PRIu64 ", body %zu", fields[f],
                             types[t] ? types[t] : "(none)", boundaries[b],
                             range_multipart_length(boundaries[b], types[t], r, n, sizeof(data)),
                             len);
                free(body);
            }
}

static void multipart_body_bytes(void **state)
{
    (void)state;
    const char *data = "0123456789abcdefghij";
    byte_range r[2] = {{2, 4}, {15, 19}};
    size_t len;
    char *body = build_body(data, 20, "B", "text/plain", r, 2, &len);
    const char *want = "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 2-4/20\r\n\r\n"
                       "234"
                       "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 15-19/20\r\n\r\n"
                       "fghij"
                       "\r\n--B--\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(body, want, len);
    assert_int_equal(range_multipart_length("B", "text/plain", r, 2, 20), strlen(want));
    free(body);
}

static void multipart_length_large(void **state)
{
    (void)state;
    /* Past 4 GiB the body cannot be built here: count the writers'
     * output part by part instead. */
    uint64_t size = 6 * GIB;
    byte_range r[RANGE_MAX_PARTS];
    size_t n;
    const char *f = "bytes=0-4294967295,5000000000-5000000099,-1";
    assert_int_equal(range_parse(f, strlen(f), size, r, RANGE_MAX_PARTS, &n), RANGE_OK);
    assert_int_equal(n, 3);
    char buf[256];
    uint64_t want = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = range_part_head(buf, sizeof(buf), "sep", "video/mp4", &r[i], size);
        assert_int_equal(h, strlen(buf));
        want += h + byte_range_len(&r[i]);
    }
    want += range_multipart_tail(buf, sizeof(buf), "sep");
    assert_int_equal(range_multipart_length("sep", "video/mp4", r, n, size), want);
    assert_true(want > 4294967296 + 100 + 1);
    /* No ranges: just the closing delimiter. */
    assert_int_equal(range_multipart_length("sep", "video/mp4", r, 0, size), strlen("\r\n--sep--\r\n"));
    /* Ranges not from range_parse may overlap; the sum saturates. */
    byte_range huge[2] = {{0, UINT64_MAX - 1}, {0, UINT64_MAX - 1}};
    assert_true(range_multipart_length("sep", "video/mp4", huge, 2, UINT64_MAX) == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_ranges),
        cmocka_unit_test(lists_and_whitespace),
        cmocka_unit_test(unsatisfiable),
        cmocka_unit_test(malformed_is_ignored),
        cmocka_unit_test(huge_numbers),
        cmocka_unit_test(large_files),
        cmocka_unit_test(coalescing),
        cmocka_unit_test(range_floods),
        cmocka_unit_test(max_bounds_the_output),
        cmocka_unit_test(random_fields_keep_invariants),
        cmocka_unit_test(part_head_and_tail_text),
        cmocka_unit_test(writers_truncate_like_snprintf),
        cmocka_unit_test(multipart_length_agrees),
        cmocka_unit_test(multipart_body_bytes),
        cmocka_unit_test(multipart_length_large),
    };
    return cmocka_run_group_tests_name("range", tests, NULL, NULL);
}
