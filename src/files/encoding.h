/* Accept-Encoding negotiation for precompressed variants (RFC 9110
 * §12.5.3): a file served as-is, or its .br or .gz sibling. */
#ifndef EDDY_FILES_ENCODING_H
#define EDDY_FILES_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

enum content_coding { CODING_IDENTITY, CODING_GZIP, CODING_BR };

/* Picks the coding to serve given the Accept-Encoding value (len bytes, not
 * NUL-terminated; NULL when the field is absent: identity) and which
 * precompressed variants exist.
 *
 * Honours q-values: q=0 refuses a coding; "*" covers the codings (identity
 * included) not listed; "x-gzip" is gzip; names and "q" are
 * case-insensitive; a coding listed twice takes its higher q.  Prefers br
 * over gzip when their q is equal and > 0, and a coding over identity
 * unless identity (listed, or through "*") has the strictly higher q.
 * Falls back to identity, even when the field refuses it, since a 406 helps
 * no one.  Elements outside the grammar (a bad qvalue such as q=2, q=abc or
 * q=0.1234, a parameter other than q, a name that is not a token) are
 * skipped; an empty value asks for identity. */
enum content_coding encoding_pick(const char *accept_encoding, size_t len, bool have_br,
                                  bool have_gzip);

#endif
