/* HTTP/1.1 response heads: the core's neutral responses turned into bytes
 * queued on the connection. */
#ifndef EDDY_HTTP_RESPONSE_H
#define EDDY_HTTP_RESPONSE_H

#include "http/conn.h"

/* proto_ops.respond: queues resp's status line, fields and body. */
void response_h1(eddy_request *req, const response *resp);
/* Answers a request eddy itself rejects; the connection closes after it. */
void response_error(conn *c, int status);

#endif
