/* HTTP-dates (RFC 9110 §5.6.7): the Date and Last-Modified values eddy
 * writes, and the dates conditional requests carry. */
#ifndef EDDY_CORE_DATE_H
#define EDDY_CORE_DATE_H

#include <stddef.h>
#include <time.h>

/* Writes t as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (29 chars and
 * a NUL).  Times outside years 0001..9999, which the 4-digit year cannot
 * carry, are clamped to that range. */
void http_date_format(time_t t, char out[30]);

/* Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850
 * and asctime forms recipients must accept.  The whole of s[0..len) must be
 * the date (no surrounding whitespace).  Returns 0, or -1 when invalid.
 * Independent of locale and TZ; an RFC 850 two-digit year is read relative to
 * the current year as the RFC requires. */
int http_date_parse(const char *s, size_t len, time_t *out);

#endif
