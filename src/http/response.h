/* HTTP/1.1 response heads: the core's neutral responses turned into bytes
 * queued on the connection. */
#ifndef EDDY_HTTP_RESPONSE_H
#define EDDY_HTTP_RESPONSE_H

#include "http/conn.h"

/* proto_ops.respond: queues resp's status line, fields and body. */
void response_h1(request *req, const response *resp);
/* proto_ops.stream_*: a streamed body, chunked when its length is unknown
 * (HTTP/1.1) or delimited by closing (HTTP/1.0). */
void response_h1_stream_head(request *req, const response *resp);
void response_h1_stream_data(request *req, const void *data, size_t len);
void response_h1_stream_end(request *req, bool complete);
/* proto_ops.tunnel: the 101 head, then the connection is a tunnel. */
void response_h1_tunnel(request *req, const response *resp);
/* Answers a request eddy itself rejects; the connection closes after it. */
void response_error(conn *c, int status);

#endif
