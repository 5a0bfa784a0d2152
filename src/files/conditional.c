#include "files/conditional.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ entity tags -- */

size_t etag_make(char out[ETAG_MAX], uint64_t size, int64_t mtime_sec, long mtime_nsec,
                 uint64_t ino)
{
    /* A struct timespec from stat always has nsec in [0, 1e9); anything else
     * names the same instant as a normalised pair, so fold it in rather than
     * let two spellings of one time give two tags.  Unsigned arithmetic:
     * wrapping is defined and keeps the mapping one-to-one. */
    long carry = mtime_nsec / 1000000000L;
    long nsec = mtime_nsec % 1000000000L;
    if (nsec < 0) {
        nsec += 1000000000L;
        carry--;
    }
    uint64_t sec = (uint64_t)mtime_sec + (uint64_t)(int64_t)carry;
    /* The nanoseconds are a fixed 8 hex digits after the seconds (1e9 - 1 <
     * 16^8), so the pair reads back unambiguously and the middle field is one
     * number, as in "<size>-<mtime>-<ino>".  Longest: 2 quotes + 16 + 1 +
     * 16 + 8 + 1 + 16 = 60 chars, which leaves room for the NUL. */
    int n = snprintf(out, ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "%08" PRIx32 "-%" PRIx64 "\"", size,
                     sec, (uint32_t)nsec, ino);
    return n > 0 ? (size_t)n : 0;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Field values may reach us with OWS still around them. */
static void trim_ows(const char **v, size_t *len)
{
    while (*len > 0 && is_ows((*v)[0])) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*v)[*len - 1]))
        (*len)--;
}

typedef struct etag_ref {
    const char *opaque; /* the quoted string, quotes included */
    size_t len;
    bool weak;
} etag_ref;

/* etagc = %x21 / %x23-7E / obs-text: visible characters but DQUOTE.  No
 * backslash escapes either: an opaque-tag is not a quoted-string. */
static bool is_etagc(unsigned char ch)
{
    return ch == 0x21 || (ch >= 0x23 && ch <= 0x7e) || ch >= 0x80;
}

/* Reads one entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE at s[*i].  "W/" is
 * case-sensitive (%s"W/" in RFC 9110 §8.8.3). */
static bool etag_scan(const char *s, size_t len, size_t *i, etag_ref *out)
{
    size_t j = *i;
    out->weak = false;
    if (len - j >= 2 && s[j] == 'W' && s[j + 1] == '/') {
        out->weak = true;
        j += 2;
    }
    if (j >= len || s[j] != '"')
        return false;
    size_t start = j++;
    while (j < len && is_etagc((unsigned char)s[j]))
        j++;
    if (j >= len || s[j] != '"')
        return false;
    j++;
    out->opaque = s + start;
    out->len = j - start;
    *i = j;
    return true;
}

/* A value that is exactly one entity-tag (after OWS). */
static bool etag_whole(const char *s, size_t len, etag_ref *out)
{
    size_t i = 0;
    trim_ows(&s, &len);
    return etag_scan(s, len, &i, out) && i == len;
}

/* RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak
 * comparison ignores W/ on either side.  Both then compare octets. */
static bool etag_eq(const etag_ref *a, const etag_ref *b, bool strong)
{
    if (strong && (a->weak || b->weak))
        return false;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

/* If-Match / If-None-Match = "*" / #entity-tag.  The list syntax allows empty
 * elements and OWS around commas.  The whole value is checked before a match
 * counts: a malformed list means nothing, so it never matches. */
static bool etag_list_matches(const char *v, size_t len, const char *cur, size_t cur_len,
                              bool strong)
{
    trim_ows(&v, &len);
    if (len == 1 && v[0] == '*')
        return true; /* the resource exists: cond_evaluate's premise */
    etag_ref mine;
    if (!etag_whole(cur, cur_len, &mine))
        return false;
    bool found = false;
    size_t i = 0;
    for (;;) {
        while (i < len && is_ows(v[i]))
            i++;
        if (i == len)
            break;
        if (v[i] == ',') {
            i++;
            continue;
        }
        etag_ref t;
        if (!etag_scan(v, len, &i, &t))
            return false;
        if (etag_eq(&t, &mine, strong))
            found = true;
        while (i < len && is_ows(v[i]))
            i++;
        if (i < len && v[i] != ',')
            return false;
    }
    return found;
}

/* ------------------------------------------------------------ HTTP-dates -- */

static const char day_short[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what a 4-digit year holds. */
#define DATE_MIN INT64_C(-62135596800)
#define DATE_MAX INT64_C(253402300799)

void http_date_format(time_t t, char out[30])
{
    int64_t v = (int64_t)t;
    if (v < DATE_MIN)
        v = DATE_MIN;
    if (v > DATE_MAX)
        v = DATE_MAX;
    time_t c = (time_t)v;
    struct tm tm;
    /* gmtime_r reads neither TZ nor the locale; the names come from our own
     * tables because strftime's %a and %b would follow LC_TIME. */
    if (!gmtime_r(&c, &tm)) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
        return;
    }
    int y = tm.tm_year + 1900;
    memcpy(out, day_short[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + tm.tm_mday / 10);
    out[6] = (char)('0' + tm.tm_mday % 10);
    out[7] = ' ';
    memcpy(out + 8, month_names[tm.tm_mon], 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000 % 10);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + tm.tm_hour / 10);
    out[18] = (char)('0' + tm.tm_hour % 10);
    out[19] = ':';
    out[20] = (char)('0' + tm.tm_min / 10);
    out[21] = (char)('0' + tm.tm_min % 10);
    out[22] = ':';
    out[23] = (char)('0' + tm.tm_sec / 10);
    out[24] = (char)('0' + tm.tm_sec % 10);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
}

/* A cursor over a value that is not NUL-terminated: every read is checked
 * against len, and a failed step leaves ok false for good. */
typedef struct scan {
    const char *s;
    size_t len, i;
    bool ok;
} scan;

static void lit(scan *sc, const char *w)
{
    size_t n = strlen(w);
    if (sc->ok && sc->len - sc->i >= n && memcmp(sc->s + sc->i, w, n) == 0)
        sc->i += n;
    else
        sc->ok = false;
}

static int num(scan *sc, int digits)
{
    int v = 0;
    for (int k = 0; k < digits; k++) {
        if (!sc->ok || sc->i >= sc->len || sc->s[sc->i] < '0' || sc->s[sc->i] > '9') {
            sc->ok = false;
            return 0;
        }
        v = v * 10 + (sc->s[sc->i++] - '0');
    }
    return v;
}

/* Month names are case-sensitive (RFC 9110 §5.6.7: HTTP-date is). */
static int month(scan *sc)
{
    if (sc->ok && sc->len - sc->i >= 3)
        for (int m = 0; m < 12; m++)
            if (memcmp(sc->s + sc->i, month_names[m], 3) == 0) {
                sc->i += 3;
                return m + 1;
            }
    sc->ok = false;
    return 0;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Seconds since the epoch for a validated UTC civil time.  Years 0..9999
 * are shifted up one 400-year cycle (146097 days) first, so every division
 * is of a positive number and truncation is floor. */
static int64_t utc_seconds(int64_t y, int mon, int day, int h, int mi, int s)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t py = y + 400 - 1; /* whole years before y, shifted */
    int64_t days = py * 365 + py / 4 - py / 100 + py / 400 - 146097;
    days -= 719162; /* days from 0001-01-01 to 1970-01-01 */
    days += before[mon - 1] + (mon > 2 && leap(y)) + day - 1;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

/* RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the
 * future means the most recent past year with those digits.  So: the latest
 * year ending in yy that is no more than 50 years past the current one. */
static int64_t rfc850_year(int yy)
{
    time_t now = time(NULL);
    struct tm tm;
    int64_t cur = gmtime_r(&now, &tm) ? tm.tm_year + 1900 : 1970;
    int64_t y = cur - cur % 100 + yy;
    if (y > cur + 50)
        y -= 100;
    else if (y + 100 <= cur + 50)
        y += 100;
    return y;
}

static void time_of_day(scan *sc, int *h, int *mi, int *s)
{
    *h = num(sc, 2);
    lit(sc, ":");
    *mi = num(sc, 2);
    lit(sc, ":");
    *s = num(sc, 2);
}

int http_date_parse(const char *s, size_t len, time_t *out)
{
    /* The day name tells the form: "Sun," IMF-fixdate, "Sunday," RFC 850,
     * "Sun " asctime.  The weekday is checked as a name but not against the
     * date, as most servers do: it carries no information of its own. */
    size_t n = 0;
    while (n < len && n < 9 && s[n] >= 'A' && s[n] <= 'z')
        n++;
    if (n >= len)
        return -1;
    scan sc = {s, len, n, true};
    int64_t year = 0;
    int mon = 0, day = 0, h = 0, mi = 0, sec = 0, wday = -1;
    for (int d = 0; d < 7; d++)
        if ((n == 3 && memcmp(s, day_short[d], 3) == 0) ||
            (n == strlen(day_long[d]) && memcmp(s, day_long[d], n) == 0))
            wday = d;
    if (wday < 0)
        return -1;
    if (n == 3 && s[n] == ',') { /* Sun, 06 Nov 1994 08:49:37 GMT */
        lit(&sc, ", ");
        day = num(&sc, 2);
        lit(&sc, " ");
        mon = month(&sc);
        lit(&sc, " ");
        year = num(&sc, 4);
        lit(&sc, " ");
        time_of_day(&sc, &h, &mi, &sec);
        lit(&sc, " GMT");
    } else if (n > 3 && s[n] == ',') { /* Sunday, 06-Nov-94 08:49:37 GMT */
        lit(&sc, ", ");
        day = num(&sc, 2);
        lit(&sc, "-");
        mon = month(&sc);
        lit(&sc, "-");
        int yy = num(&sc, 2);
        lit(&sc, " ");
        time_of_day(&sc, &h, &mi, &sec);
        lit(&sc, " GMT");
        if (sc.ok)
            year = rfc850_year(yy);
    } else if (n == 3 && s[n] == ' ') { /* Sun Nov  6 08:49:37 1994 */
        lit(&sc, " ");
        mon = month(&sc);
        lit(&sc, " ");
        /* date3 = month SP ( 2DIGIT / ( SP DIGIT ) ) */
        if (sc.ok && sc.i < len && s[sc.i] == ' ') {
            sc.i++;
            day = num(&sc, 1);
        } else {
            day = num(&sc, 2);
        }
        lit(&sc, " ");
        time_of_day(&sc, &h, &mi, &sec);
        lit(&sc, " ");
        year = num(&sc, 4);
    } else {
        return -1;
    }
    if (!sc.ok || sc.i != len)
        return -1; /* malformed, or trailing bytes */
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
        day > mdays[mon - 1] + (mon == 2 && leap(year)))
        return -1;
    /* second is 00-60: the grammar allows a leap second, which POSIX time
     * cannot name; it lands on the next minute's :00, as timegm would. */
    if (h > 23 || mi > 59 || sec > 60)
        return -1;
    int64_t v = utc_seconds(year, mon, day, h, mi, sec);
    if ((int64_t)(time_t)v != v)
        return -1; /* a 32-bit time_t cannot hold it */
    if (v > 253402300799)
        return -1; /* 9999-12-31 23:59:60 would be year 10000: not a date we write */
    *out = (time_t)v;
    return 0;
}

/* ---------------------------------------------------------- preconditions -- */

/* A date-valued precondition field; false when it is not a valid HTTP-date
 * (including a list of dates), which the RFC says to ignore. */
static bool field_date(const char *v, size_t len, time_t *out)
{
    trim_ows(&v, &len);
    return http_date_parse(v, len, out) == 0;
}

enum cond_result cond_evaluate(const cond_fields *f, bool get_or_head, const char *etag,
                               size_t etag_len, time_t last_modified)
{
    time_t d;
    if (!f)
        return COND_PROCEED;
    /* Step 1 and 2: the state-changing guards.  If-Unmodified-Since is the
     * fallback for clients without an entity tag, so If-Match overrides it. */
    if (f->if_match) {
        if (!etag_list_matches(f->if_match, f->if_match_len, etag, etag_len, true))
            return COND_PRECONDITION_FAILED;
    } else if (f->if_unmodified_since) {
        if (field_date(f->if_unmodified_since, f->if_unmodified_since_len, &d) &&
            last_modified > d)
            return COND_PRECONDITION_FAILED;
    }
    /* Step 3 and 4: cache validation.  Likewise the entity tag wins over the
     * date; a present If-None-Match, even malformed, silences the date. */
    if (f->if_none_match) {
        if (etag_list_matches(f->if_none_match, f->if_none_match_len, etag, etag_len, false))
            return get_or_head ? COND_NOT_MODIFIED : COND_PRECONDITION_FAILED;
    } else if (get_or_head && f->if_modified_since) {
        if (field_date(f->if_modified_since, f->if_modified_since_len, &d) &&
            last_modified <= d)
            return COND_NOT_MODIFIED;
    }
    return COND_PROCEED;
}

bool cond_if_range(const char *v, size_t len, const char *etag, size_t etag_len,
                   time_t last_modified)
{
    trim_ows(&v, &len);
    /* §13.1.5: an entity-tag starts with DQUOTE within its first three
     * characters (W/"); an HTTP-date never does. */
    if ((len >= 1 && v[0] == '"') || (len >= 3 && v[0] == 'W' && v[1] == '/' && v[2] == '"')) {
        etag_ref theirs, mine;
        return etag_whole(v, len, &theirs) && etag_whole(etag, etag_len, &mine) &&
               etag_eq(&theirs, &mine, true);
    }
    time_t d;
    return field_date(v, len, &d) && d == last_modified;
}
