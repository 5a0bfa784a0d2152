#include "core/date.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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
