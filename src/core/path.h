/* The one decoding of a request's path, shared by routing and every
 * handler: percent-decoded, dot segments removed (RFC 3986 §5.2.4), never
 * above "/".  Decoded once per request, so a route for /sleep and the file
 * server both see /sleep for "/%73leep" and "/x/../sleep". */
#ifndef EDDY_CORE_PATH_H
#define EDDY_CORE_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* The value of one hex digit of a %XX escape, or -1. */
int path_hex_value(char ch);

/* True when in[0..len) decodes to itself: no escapes, no dot or empty
 * segments. */
bool path_is_normal(const char *in, size_t len);

/* Decodes in[0..len) into out (room for len + 2 bytes: a leading '/' may
 * be added, and a NUL), NUL-terminated; *out_len is its length.  An encoded slash
 * (%2F) separates segments like a slash, and an encoded dot is a dot, so
 * both meet the same dot-segment rules.  Empty segments merge ("//" is
 * "/", as nginx's merge_slashes does), so ".." always pops a named one.
 * Returns 0, or 400 for a malformed escape or a NUL (raw or encoded). */
int path_normalize(const char *in, size_t len, char *out, size_t *out_len);

#endif
