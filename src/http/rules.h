/* eddy's own request rules, on top of what llhttp enforces: small pure
 * functions over bytes, so they can be tested and fuzzed alone. */
#ifndef EDDY_HTTP_RULES_H
#define EDDY_HTTP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include "core/fields.h"

/* A Host value: uri-host [":" port] (RFC 9110 §7.2); may be empty. */
bool rules_host_ok(const char *v, size_t len);

/* What a Transfer-Encoding field value lists. */
typedef struct te_summary {
    unsigned chunked;        /* times "chunked" appears */
    bool other;              /* some coding other than chunked appears */
    bool chunked_not_last;   /* something follows a "chunked" */
    bool malformed;          /* not a list of tokens */
} te_summary;
/* Adds one Transfer-Encoding field value to *te (fields accumulate). */
void rules_transfer_encoding(const char *v, size_t len, te_summary *te);
/* The status answering a request with these codings, or 0 if it is fine:
 * 400 when chunked is not applied exactly once and last (the body length
 * cannot be known), 501 for a coding eddy does not implement. */
int rules_te_status(const te_summary *te);

#endif
