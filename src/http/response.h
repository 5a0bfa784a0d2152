/* Response heads and in-memory bodies, queued on the connection. */
#ifndef EDDY_HTTP_RESPONSE_H
#define EDDY_HTTP_RESPONSE_H

#include "http/conn.h"
#include <stdint.h>

const char *status_reason(int status);
/* Queues a status line and fields.  content_length < 0: none sent.
 * extra: preformatted fields, each ending in CRLF, or NULL. */
void response_head(conn *c, int status, const char *content_type, int64_t content_length,
                   const char *extra);
/* Answers a request eddy itself rejects; the connection closes after it. */
void response_error(conn *c, int status);
/* Looks up several fields in one pass over the head: out[i] is the first
 * field named names[i] (any case, not empty), ptr NULL when absent. */
void request_fields(const eddy_request *req, const eddy_str *names, eddy_str *out, size_t n);
/* Answers with a short text body eddy provides. */
void response_simple(eddy_request *req, int status, const char *extra);

#endif
