/* Validators and preconditions: HTTP-dates, entity tags, RFC 9110 §13.2.2
 * evaluation order and If-Range.  Every value handed to the module is copied
 * into a buffer of exactly its length, without a NUL, so that under ASan any
 * read past the end of a field value fails the test. */
#include "harness.h"
#include "files/conditional.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sun, 06 Nov 1994 08:49:37 GMT: the RFC's example, used as Last-Modified. */
#define T0 ((time_t)784111777)
#define D0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D0_850 "Sunday, 06-Nov-94 08:49:37 GMT"
#define D0_ASC "Sun Nov  6 08:49:37 1994"
#define DM "Sun, 06 Nov 1994 08:49:36 GMT" /* a second before T0 */
#define DP "Sun, 06 Nov 1994 08:49:38 GMT" /* a second after T0 */
#define ETAG "\"abc\""

/* A heap copy of s with no terminator; free with free(). */
static char *exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static int parse(const char *s, time_t *out)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    int rc = http_date_parse(p, len, out);
    free(p);
    return rc;
}

static void expect_date(const char *s, time_t want)
{
    time_t got = 0;
    if (parse(s, &got) != 0)
        fail_msg("'%s': rejected, wanted %lld", s, (long long)want);
    if (got != want)
        fail_msg("'%s': %lld, wanted %lld", s, (long long)got, (long long)want);
}

static void expect_bad_date(const char *s, size_t len)
{
    char *p = exact(s, len);
    time_t got = 12345;
    int rc = http_date_parse(p, len, &got);
    free(p);
    if (rc != -1)
        fail_msg("'%.*s' (len %zu): accepted as %lld", (int)len, s, len, (long long)got);
    assert_int_equal(got, 12345); /* *out untouched on failure */
}

static void expect_format(time_t t, const char *want)
{
    char out[30];
    memset(out, 'x', sizeof(out));
    http_date_format(t, out);
    if (strcmp(out, want) != 0)
        fail_msg("%lld: '%s', wanted '%s'", (long long)t, out, want);
}

/* ----------------------------------------------------------- HTTP-dates -- */

static void date_three_forms(void **state)
{
    (void)state;
    expect_date(D0, T0);
    expect_date(D0_850, T0);
    expect_date(D0_ASC, T0);
    expect_date("Sun Nov 06 08:49:37 1994", T0); /* date3 allows 2DIGIT too */
    expect_date("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    expect_date("Wed, 31 Dec 1969 23:59:59 GMT", -1);
    expect_date("Tue, 19 Jan 2038 03:14:07 GMT", (time_t)2147483647);
    expect_date("Tue, 19 Jan 2038 03:14:08 GMT", (time_t)2147483648LL);
    expect_date("Tue Jan 19 03:14:08 2038", (time_t)2147483648LL);
    expect_date("Fri, 01 Jan 2100 00:00:00 GMT", (time_t)4102444800LL);
    expect_date("Fri, 31 Dec 9999 23:59:59 GMT", (time_t)253402300799LL);
    expect_date("Mon, 01 Jan 0001 00:00:00 GMT", (time_t)-62135596800LL);
}

static void date_format_known(void **state)
{
    (void)state;
    expect_format(T0, D0);
    expect_format(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    expect_format(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    expect_format((time_t)2147483648LL, "Tue, 19 Jan 2038 03:14:08 GMT");
    expect_format((time_t)4102444800LL, "Fri, 01 Jan 2100 00:00:00 GMT");
    expect_format((time_t)4107542400LL, "Mon, 01 Mar 2100 00:00:00 GMT");
    expect_format((time_t)951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    expect_format((time_t)253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Beyond a 4-digit year: clamped, never a 5-digit year or garbage. */
    expect_format((time_t)253402300800LL, "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_format((time_t)INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_format((time_t)INT64_MIN, "Mon, 01 Jan 0001 00:00:00 GMT");
}

/* format then parse is the identity over the whole 4-digit-year range, and
 * the formatter agrees with gmtime_r (with names from our own tables). */
static void date_round_trip(void **state)
{
    (void)state;
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int64_t lo = -62135596800LL, hi = 253402300799LL;
    uint64_t x = 88172645463325252ULL;
    for (int k = 0; k < 200000; k++) {
        int64_t t;
        if (k < 4000) {
            t = 2147483648LL - 2000 + k; /* around the 32-bit rollover */
        } else {
            x ^= x << 13; /* xorshift64 */
            x ^= x >> 7;
            x ^= x << 17;
            t = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        }
        char out[30], want[64];
        http_date_format((time_t)t, out);
        assert_int_equal(strlen(out), 29);
        struct tm tm;
        time_t tt = (time_t)t;
        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        if (strcmp(out, want) != 0)
            fail_msg("%lld: '%s', gmtime_r says '%s'", (long long)t, out, want);
        time_t back = 0;
        char *p = exact(out, 29);
        int rc = http_date_parse(p, 29, &back);
        free(p);
        if (rc != 0 || back != tt)
            fail_msg("'%s': round trip gave rc %d, %lld", out, rc, (long long)back);
        /* And the asctime form of the same instant. */
        snprintf(want, sizeof(want), "%s %s %2d %02d:%02d:%02d %04d", days[tm.tm_wday],
                 mons[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 tm.tm_year + 1900);
        expect_date(want, tt);
    }
}

static void date_calendar_edges(void **state)
{
    (void)state;
    expect_date("Tue, 29 Feb 2000 00:00:00 GMT", (time_t)951782400);
    expect_date("Thu, 29 Feb 2024 00:00:00 GMT", (time_t)1709164800);
    expect_date("Tue, 29 Feb 2400 12:00:00 GMT", (time_t)13574606400LL);
    expect_bad_date("Thu, 29 Feb 1900 00:00:00 GMT", 29); /* not a leap year */
    expect_bad_date("Mon, 29 Feb 2100 00:00:00 GMT", 29);
    expect_bad_date("Wed, 29 Feb 2023 00:00:00 GMT", 29);
    expect_bad_date("Wed, 30 Feb 2000 00:00:00 GMT", 29);
    expect_bad_date("Thu, 31 Apr 2020 00:00:00 GMT", 29);
    expect_bad_date("Thu, 31 Jun 2020 00:00:00 GMT", 29);
    expect_bad_date("Thu, 31 Sep 2020 00:00:00 GMT", 29);
    expect_bad_date("Thu, 31 Nov 2020 00:00:00 GMT", 29);
    expect_date("Thu, 31 Dec 2020 00:00:00 GMT", (time_t)1609372800);
    /* The grammar allows second 60; it is the next minute's :00. */
    expect_date("Sat, 31 Dec 2016 23:59:60 GMT", (time_t)1483228800);
}

static void date_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        " ",
        "Sun",
        "Sun,",
        "Sun, ",
        D0 " ",
        " " D0,
        D0 "x",
        D0 ", " D0, /* a list of dates */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 GMT+1",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "SUN, 06 Nov 1994 08:49:37 GMT",
        "Sux, 06 Nov 1994 08:49:37 GMT",
        "Su, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT", /* long name, fixdate body */
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 NOV 1994 08:49:37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 06 November 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun,  6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 01994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06  Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 06 Nov 1994 08:49:37.5 GMT",
        "Sun, 06 Nov 1994 08:49:37  GMT",
        "Sun, 06 Nov 1994 08:49:37\tGMT",
        "Sun, +6 Nov 1994 08:49:37 GMT",
        "Sun, -6 Nov 1994 08:49:37 GMT",
        "Sun, 0x Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Jan 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 99:99:99 GMT",
        "Sat, 01 Jan 0000 00:00:00 GMT", /* before year 1 */
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "sunday, 06-Nov-94 08:49:37 GMT",
        "Sundae, 06-Nov-94 08:49:37 GMT",
        "Sundays, 06-Nov-94 08:49:37 GMT",
        "Wednesdayy, 06-Nov-94 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT", /* short name, RFC 850 body */
        "Sunday, 06-nov-94 08:49:37 GMT",
        "Sunday, 31-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov   6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov  6 08:49:37 1994 ",
        "Sun Nov  6 08:49:37  1994",
        "Sun  Nov  6 08:49:37 1994",
        "Sunday Nov  6 08:49:37 1994",
        "Sun nov  6 08:49:37 1994",
        "Sun Nov 31 08:49:37 1994",
        "Sun Nov  0 08:49:37 1994",
        "Sun Nov  6 24:49:37 1994",
        "1994-11-06T08:49:37Z",
        "784111777",
        "Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        expect_bad_date(bad[k], strlen(bad[k]));
    /* Bytes the C string functions would stop at must not end the date. */
    expect_bad_date(D0 "\0", 30);
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 G\0T", 29);
    expect_bad_date("Sun,\0" "06 Nov 1994 08:49:37 GMT", 29);
    expect_bad_date("\xff\xfe\xfd", 3);
}

/* Every proper prefix of a valid date is invalid, and reading one never
 * reaches past its length (ASan watches the exact-size copies). */
static void date_truncations(void **state)
{
    (void)state;
    static const char *good[] = {D0, D0_850, D0_ASC, "Wednesday, 09-Nov-94 08:49:37 GMT"};
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        size_t len = strlen(good[k]);
        for (size_t n = 0; n < len; n++)
            expect_bad_date(good[k], n);
        time_t t;
        char *p = exact(good[k], len);
        assert_int_equal(http_date_parse(p, len, &t), 0);
        free(p);
    }
}

/* RFC 9110 §5.6.7: an RFC 850 year more than 50 years ahead is in the past.
 * The cases are computed from the current year so the test does not age. */
static void date_rfc850_century(void **state)
{
    (void)state;
    time_t now = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&now, &tm));
    int cur = tm.tm_year + 1900;
    const int offsets[] = {-49, -10, -1, 0, 1, 10, 49, 50, 51, 60, 99};
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        int y = cur + offsets[k];
        int want = offsets[k] > 50 ? y - 100 : y;
        char s[64];
        /* 1 Jan: the weekday is not checked, so any valid name will do. */
        snprintf(s, sizeof(s), "Monday, 01-Jan-%02d 00:00:00 GMT", y % 100);
        time_t got;
        assert_int_equal(parse(s, &got), 0);
        struct tm g;
        assert_non_null(gmtime_r(&got, &g));
        if (g.tm_year + 1900 != want)
            fail_msg("'%s' in %d: year %d, wanted %d", s, cur, g.tm_year + 1900, want);
    }
}

/* No local time anywhere: TZ changes nothing. */
static void date_ignores_tz(void **state)
{
    (void)state;
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    static const char *zones[] = {"America/New_York", "Asia/Kolkata", "EST5EDT", "<+14>-14"};
    for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
        setenv("TZ", zones[k], 1);
        tzset();
        expect_date(D0, T0);
        expect_date(D0_850, T0);
        expect_date(D0_ASC, T0);
        expect_format(T0, D0);
        expect_format((time_t)4102444800LL, "Fri, 01 Jan 2100 00:00:00 GMT");
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

/* ----------------------------------------------------------- entity tags -- */

static void etag_shape(void **state)
{
    (void)state;
    char out[ETAG_MAX];
    size_t n = etag_make(out, 0x1234, 0x5f000000, 5, 0xab);
    assert_string_equal(out, "\"1234-5f00000000000005-ab\"");
    assert_int_equal(n, strlen(out));
    /* The longest inputs still fit, and every byte is a valid etagc. */
    n = etag_make(out, UINT64_MAX, -1, 999999999, UINT64_MAX);
    assert_int_equal(n, strlen(out));
    assert_int_equal(n, 60);
    assert_true(n < ETAG_MAX);
    assert_int_equal(out[0], '"');
    assert_int_equal(out[n - 1], '"');
    for (size_t k = 1; k + 1 < n; k++)
        assert_true(out[k] == '-' || (out[k] >= '0' && out[k] <= '9') ||
                    (out[k] >= 'a' && out[k] <= 'f'));
    /* It is a strong tag that matches itself by every rule. */
    n = etag_make(out, 1000, 1700000000, 123456789, 42);
    cond_fields f = {.if_match = out, .if_match_len = n};
    assert_int_equal(cond_evaluate(&f, false, out, n, T0), COND_PROCEED);
    f = (cond_fields){.if_none_match = out, .if_none_match_len = n};
    assert_int_equal(cond_evaluate(&f, true, out, n, T0), COND_NOT_MODIFIED);
    assert_true(cond_if_range(out, n, out, n, T0));
}

typedef struct stat_like {
    uint64_t size;
    int64_t sec;
    long nsec;
    uint64_t ino;
} stat_like;

static void etag_unique(void **state)
{
    (void)state;
    /* Neighbours of one file's state, and inputs that would collide under a
     * careless encoding (fields running into each other, the nanoseconds
     * written without a fixed width, a sum of sec and nsec, ...). */
    static const stat_like in[] = {
        {100, 1700000000, 0, 7},
        {101, 1700000000, 0, 7},
        {100, 1700000001, 0, 7},
        {100, 1700000000, 1, 7},
        {100, 1700000000, 0, 8},
        {100, 1700000000, 999999999, 7},
        {0, 0, 0, 0},
        {1, 0, 0, 0},
        {0, 1, 0, 0},
        {0, 0, 1, 0},
        {0, 0, 0, 1},
        {0x10, 0, 0, 0},
        {1, 0x10, 0, 0},
        {0x11, 0, 0, 0},
        {0, 0x1, 0x10, 0},
        {0, 0x10, 0x1, 0},
        {0, 0, 0x10000000, 0},
        {0, 0, 999999999, 0},
        {0, -1, 0, 0},
        {0, -1, 999999999, 0},
        {0, INT64_MAX, 0, 0},
        {0, INT64_MIN, 0, 0},
        {UINT64_MAX, 0, 0, 0},
        {0, 0, 0, UINT64_MAX},
        {1, 23, 0, 4},
        {12, 3, 0, 4},
        {1, 2, 0, 34},
        {0x12, 0x3, 0, 0x4},
    };
    enum { NIN = sizeof(in) / sizeof(in[0]) };
    char tags[NIN][ETAG_MAX];
    for (size_t a = 0; a < NIN; a++) {
        size_t n = etag_make(tags[a], in[a].size, in[a].sec, in[a].nsec, in[a].ino);
        assert_int_equal(n, strlen(tags[a]));
        for (size_t b = 0; b < a; b++)
            if (strcmp(tags[a], tags[b]) == 0)
                fail_msg("inputs %zu and %zu share the tag %s", b, a, tags[a]);
    }
    /* Walking one field at a time through many values never repeats a tag. */
    char prev[ETAG_MAX], cur[ETAG_MAX];
    etag_make(prev, 0, 0, 0, 0);
    for (long k = 1; k < 3000; k++) {
        etag_make(cur, 0, 0, k * 333333, 0);
        assert_string_not_equal(cur, prev);
        memcpy(prev, cur, sizeof(cur));
    }
    /* An unnormalised timespec names the same instant as its normal form. */
    char a[ETAG_MAX], b[ETAG_MAX];
    etag_make(a, 5, 10, 1500000000, 9);
    etag_make(b, 5, 11, 500000000, 9);
    assert_string_equal(a, b);
    etag_make(a, 5, 10, -1, 9);
    etag_make(b, 5, 9, 999999999, 9);
    assert_string_equal(a, b);
}

/* --------------------------------------------------------- preconditions -- */

typedef struct ccase {
    int line;
    const char *im, *inm, *ims, *ius; /* NULL: field absent */
    bool get;
    enum cond_result want;
} ccase;

#define N NULL
#define OK COND_PROCEED
#define NM COND_NOT_MODIFIED
#define PF COND_PRECONDITION_FAILED
#define C(...) {__LINE__, __VA_ARGS__}

static const ccase cases[] = {
    /* No preconditions. */
    C(N, N, N, N, true, OK),
    C(N, N, N, N, false, OK),

    /* If-Match: strong comparison, "*", lists. */
    C("*", N, N, N, true, OK),
    C("*", N, N, N, false, OK),
    C(" * ", N, N, N, false, OK),
    C(ETAG, N, N, N, true, OK),
    C(ETAG, N, N, N, false, OK),
    C("\"x\", " ETAG, N, N, N, false, OK),
    C(" \"x\" ,\t" ETAG "\t", N, N, N, false, OK),
    C(",," ETAG ",,", N, N, N, false, OK),
    C(", ,\t, " ETAG, N, N, N, false, OK),
    C("\"x\"", N, N, N, true, PF),
    C("\"x\"", N, N, N, false, PF),
    C("\"x\", \"y\"", N, N, N, false, PF),
    C("W/" ETAG, N, N, N, false, PF), /* weak never matches strongly */
    C("W/\"x\", W/" ETAG, N, N, N, true, PF),
    C("\"ABC\"", N, N, N, false, PF),
    C("\"ab\"", N, N, N, false, PF),
    C("\"abcd\"", N, N, N, false, PF),
    C("abc", N, N, N, false, PF),
    C("\"*\"", N, N, N, false, PF),
    C("", N, N, N, false, PF),  /* an empty list has no match */
    C(" , ", N, N, N, false, PF),
    /* Malformed lists never match, even when a good element would. */
    C(ETAG ", bogus", N, N, N, false, PF),
    C(ETAG " \"x\"", N, N, N, false, PF),
    C(ETAG "\"x\"", N, N, N, false, PF),
    C(ETAG "x", N, N, N, false, PF),
    C("\"abc", N, N, N, false, PF),
    C("\"x\", \"abc", N, N, N, false, PF),
    C("w/" ETAG, N, N, N, false, PF),
    C("W /" ETAG, N, N, N, false, PF),
    C("W/ " ETAG, N, N, N, false, PF),
    C("*, " ETAG, N, N, N, false, PF),
    C(ETAG ", *", N, N, N, false, PF),
    C("**", N, N, N, false, PF),
    C("\"a\"bc\"", N, N, N, false, PF),
    C("\"a\x01" "bc\"", N, N, N, false, PF),
    C("\"a bc\"", N, N, N, false, PF),
    C("\"a\\\"bc\"", N, N, N, false, PF), /* no quoted-pair in an opaque-tag */

    /* If-Unmodified-Since, only without If-Match. */
    C(N, N, N, D0, true, OK),
    C(N, N, N, DP, true, OK),
    C(N, N, N, DM, true, PF),
    C(N, N, N, DM, false, PF),
    C(N, N, N, D0, false, OK),
    C(N, N, N, "Sunday, 06-Nov-94 08:49:36 GMT", false, PF),
    C(N, N, N, "Sun Nov  6 08:49:36 1994", false, PF),
    C(N, N, N, " " DM "\t", false, PF),
    C(N, N, N, "yesterday", false, OK),     /* invalid: ignored */
    C(N, N, N, DM ", " DM, false, OK),      /* a list is invalid: ignored */
    C(N, N, N, "", false, OK),
    C(ETAG, N, N, DM, false, OK),           /* If-Match wins over it ... */
    C("*", N, N, DM, false, OK),
    C("\"x\"", N, N, DP, false, PF),        /* ... both ways */

    /* If-None-Match: weak comparison, 304 for GET/HEAD, 412 otherwise. */
    C(N, ETAG, N, N, true, NM),
    C(N, ETAG, N, N, false, PF),
    C(N, "W/" ETAG, N, N, true, NM),
    C(N, "W/" ETAG, N, N, false, PF),
    C(N, "*", N, N, true, NM),
    C(N, "*", N, N, false, PF),
    C(N, "\t*  ", N, N, true, NM),
    C(N, "\"x\"", N, N, true, OK),
    C(N, "\"x\"", N, N, false, OK),
    C(N, ", \"x\" ,, W/" ETAG " ,", N, N, true, NM),
    C(N, "W/\"x\",W/\"y\"," ETAG, N, N, false, PF),
    C(N, "\"x\", \"y\"", N, N, true, OK),
    C(N, "", N, N, true, OK),
    C(N, ",", N, N, true, OK),
    C(N, ETAG ", bogus", N, N, true, OK), /* malformed: no match */
    C(N, ETAG "x", N, N, true, OK),
    C(N, "w/" ETAG, N, N, true, OK),
    C(N, "*, " ETAG, N, N, true, OK),
    C(N, "abc", N, N, true, OK),
    C(N, "\"ABC\"", N, N, true, OK),

    /* If-Modified-Since: GET/HEAD only, only without If-None-Match. */
    C(N, N, D0, N, true, NM),
    C(N, N, DP, N, true, NM),
    C(N, N, DM, N, true, OK),
    C(N, N, D0, N, false, OK),
    C(N, N, DP, N, false, OK),
    C(N, N, D0_850, N, true, NM),
    C(N, N, D0_ASC, N, true, NM),
    C(N, N, "  " D0 " ", N, true, NM),
    C(N, N, "Sun, 06 Nov 1994 08:49:37 UTC", N, true, OK), /* invalid: ignored */
    C(N, N, D0 ", " D0, N, true, OK),
    C(N, N, "", N, true, OK),
    C(N, "\"x\"", D0, N, true, OK),   /* If-None-Match wins: no match means 200 */
    C(N, ETAG, DM, N, true, NM),      /* ... and a match means 304 */
    C(N, "bogus", D0, N, true, OK),   /* present, even malformed */
    C(N, "", D0, N, true, OK),

    /* Across the two groups: the guards run first. */
    C(ETAG, ETAG, N, N, true, NM),
    C(ETAG, ETAG, N, N, false, PF),
    C("*", "*", N, N, true, NM),
    C("\"x\"", ETAG, N, N, true, PF),
    C("\"x\"", "\"x\"", D0, N, true, PF),
    C(ETAG, "\"x\"", N, N, true, OK),
    C(ETAG, N, D0, N, true, NM),
    C(ETAG, N, DM, N, true, OK),
    C("*", N, D0, DM, true, NM),      /* IUS skipped under If-Match, IMS still used */
    C(N, ETAG, N, DM, true, PF),      /* IUS fails before If-None-Match */
    C(N, ETAG, N, DP, true, NM),
    C(N, N, D0, DM, true, PF),        /* IUS fails before IMS */
    C(N, N, D0, DP, true, NM),
    C(N, N, DM, D0, true, OK),
    C(N, ETAG, N, "garbage", true, NM),
    C(ETAG, ETAG, D0, D0, true, NM),
    C(ETAG, "\"x\"", D0, DM, true, OK),
};

/* cond_fields with every present value in an exact-size heap copy. */
static enum cond_result run_case(const ccase *c, const char *etag, time_t lm)
{
    const char *src[4] = {c->im, c->inm, c->ims, c->ius};
    char *cp[4] = {0};
    size_t len[4] = {0};
    for (int k = 0; k < 4; k++)
        if (src[k]) {
            len[k] = strlen(src[k]);
            cp[k] = exact(src[k], len[k]);
        }
    cond_fields f = {cp[0], cp[1], cp[2], cp[3], len[0], len[1], len[2], len[3]};
    size_t el = strlen(etag);
    char *e = exact(etag, el);
    enum cond_result r = cond_evaluate(&f, c->get, e, el, lm);
    free(e);
    for (int k = 0; k < 4; k++)
        free(cp[k]);
    return r;
}

static void cond_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const ccase *c = &cases[k];
        enum cond_result r = run_case(c, ETAG, T0);
        if (r != c->want)
            fail_msg("line %d: got %d, wanted %d", c->line, (int)r, (int)c->want);
    }
    assert_int_equal(cond_evaluate(NULL, true, ETAG, 5, T0), COND_PROCEED);
}

/* The same rules seen from a resource whose own tag is weak or broken. */
static void cond_weak_or_bad_current_tag(void **state)
{
    (void)state;
    static const ccase weak[] = {
        C("W/" ETAG, N, N, N, false, PF), /* strong comparison: never */
        C(ETAG, N, N, N, false, PF),
        C("*", N, N, N, false, OK),
        C(N, ETAG, N, N, true, NM),      /* weak comparison: either way */
        C(N, "W/" ETAG, N, N, true, NM),
    };
    for (size_t k = 0; k < sizeof(weak) / sizeof(weak[0]); k++)
        if (run_case(&weak[k], "W/" ETAG, T0) != weak[k].want)
            fail_msg("line %d: wrong with a weak current tag", weak[k].line);
    static const ccase broken[] = {
        C("\"abc", N, N, N, false, PF),
        C("*", N, N, N, false, OK),
        C(N, "\"abc", N, N, true, OK),
        C(N, "*", N, N, true, NM),
    };
    for (size_t k = 0; k < sizeof(broken) / sizeof(broken[0]); k++)
        if (run_case(&broken[k], "\"abc", T0) != broken[k].want)
            fail_msg("line %d: wrong with a malformed current tag", broken[k].line);
}

static bool if_range(const char *v, const char *etag)
{
    size_t vl = strlen(v), el = strlen(etag);
    char *pv = exact(v, vl), *pe = exact(etag, el);
    bool r = cond_if_range(pv, vl, pe, el, T0);
    free(pv);
    free(pe);
    return r;
}

static void cond_if_range_cases(void **state)
{
    (void)state;
    assert_true(if_range(ETAG, ETAG));
    assert_true(if_range(" " ETAG "\t", ETAG));
    assert_false(if_range("W/" ETAG, ETAG)); /* weak: never for ranges */
    assert_false(if_range("W/" ETAG, "W/" ETAG));
    assert_false(if_range(ETAG, "W/" ETAG));
    assert_false(if_range("\"abd\"", ETAG));
    assert_false(if_range("\"ABC\"", ETAG));
    assert_false(if_range(ETAG ", " ETAG, ETAG)); /* one tag, not a list */
    assert_false(if_range(ETAG ",", ETAG));
    assert_false(if_range("\"abc", ETAG));
    assert_false(if_range("\"", ETAG));
    assert_false(if_range("W/", ETAG));
    assert_false(if_range("W/\"", ETAG));
    assert_false(if_range("*", ETAG));
    assert_false(if_range("", ETAG));
    assert_false(if_range("   ", ETAG));
    assert_false(if_range("abc", ETAG));
    assert_true(if_range(D0, ETAG));
    assert_true(if_range(D0_850, ETAG));
    assert_true(if_range(D0_ASC, ETAG));
    assert_true(if_range("\t" D0 " ", ETAG));
    assert_false(if_range(DP, ETAG)); /* exactly equal, not "not modified since" */
    assert_false(if_range(DM, ETAG));
    assert_false(if_range(D0 "x", ETAG));
    assert_false(if_range("Sun, 06 Nov 1994 08:49:37 UTC", ETAG));
    assert_false(if_range(D0 ", " D0, ETAG));
}

/* Random short strings over the characters these grammars care about, as
 * every field and as the current tag: none may crash or read past its
 * length (the point of running this under ASan). */
static void hostile_values(void **state)
{
    (void)state;
    static const char alpha[] = "\"W/ ,*\t-:abcSunMoNvGMT0123456789\x80\xff";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char buf[40];
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % sizeof(buf));
        uint64_t y = x;
        for (size_t i = 0; i < len; i++) {
            y = y * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = alpha[(y >> 33) % (sizeof(alpha) - 1)];
        }
        char *p = exact(buf, len);
        time_t t;
        (void)http_date_parse(p, len, &t);
        cond_fields f = {p, p, p, p, len, len, len, len};
        (void)cond_evaluate(&f, k & 1, p, len, T0);
        (void)cond_evaluate(&f, k & 1, ETAG, 5, T0);
        (void)cond_if_range(p, len, ETAG, 5, T0);
        (void)cond_if_range(ETAG, 5, p, len, T0);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(date_three_forms),
        cmocka_unit_test(date_format_known),
        cmocka_unit_test(date_round_trip),
        cmocka_unit_test(date_calendar_edges),
        cmocka_unit_test(date_invalid),
        cmocka_unit_test(date_truncations),
        cmocka_unit_test(date_rfc850_century),
        cmocka_unit_test(date_ignores_tz),
        cmocka_unit_test(etag_shape),
        cmocka_unit_test(etag_unique),
        cmocka_unit_test(cond_table),
        cmocka_unit_test(cond_weak_or_bad_current_tag),
        cmocka_unit_test(cond_if_range_cases),
        cmocka_unit_test(hostile_values),
    };
    return cmocka_run_group_tests_name("conditional", tests, NULL, NULL);
}
