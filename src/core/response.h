/* The neutral response: a status, fields and a body source.  Handlers
 * build one; the request's protocol turns it into bytes.  Nothing here is
 * protocol syntax. */
#ifndef EDDY_CORE_RESPONSE_H
#define EDDY_CORE_RESPONSE_H

#include "eddy.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct request request;

/* One response field.  Names and values are checked by whoever lets a
 * handler add them (response_field_ok); the core's own are known good. */
typedef struct resp_field {
    const char *name, *value;
    uint32_t name_len, value_len;
} resp_field;

#define FIELD_LIT(n, v) ((resp_field){n, v, sizeof(n) - 1, sizeof(v) - 1})

/* A file a response body comes from, shared by reference (the file cache
 * keeps hot files open); the protocol releases it once sent. */
typedef struct body_file {
    int fd;
    unsigned refs;
    void (*release)(struct body_file *f);
} body_file;

/* One range of a file body, after head_len bytes of its own head. */
typedef struct file_part {
    off_t off, len;
    uint32_t head_off, head_len; /* into the bytes after part[n] */
} file_part;

/* Ranges of one file sent in order (multipart/byteranges), in one block:
 * the parts, then the bytes of their heads (body bytes, not fields). */
typedef struct file_parts {
    size_t n, next;
    file_part part[];
} file_parts;

typedef struct response {
    int status;
    const char *content_type;   /* NULL: none */
    int64_t content_length;     /* < 0: none sent */
    const resp_field *fields;   /* the handler's fields, in order */
    size_t nfields;
    /* The body: at most one of these. */
    const void *data;           /* bytes in memory, copied by the protocol */
    size_t data_len;
    body_file *file;            /* a file range (the reference is taken) */
    off_t file_off, file_len;
    file_parts *parts;          /* several ranges of file (taken) */
} response;

/* The statuses eddy knows by name; others are sent as "Unknown". */
#define RESPONSE_STATUSES(X)                                                                  \
    X(100, "Continue") X(101, "Switching Protocols") X(200, "OK") X(201, "Created") X(202, "Accepted")                      \
    X(204, "No Content") X(206, "Partial Content") X(301, "Moved Permanently")                \
    X(302, "Found") X(303, "See Other") X(304, "Not Modified") X(307, "Temporary Redirect")  \
    X(308, "Permanent Redirect") X(400, "Bad Request") X(401, "Unauthorized")                 \
    X(403, "Forbidden") X(404, "Not Found") X(405, "Method Not Allowed")                      \
    X(408, "Request Timeout") X(409, "Conflict") X(410, "Gone") X(411, "Length Required")     \
    X(412, "Precondition Failed") X(413, "Content Too Large") X(414, "URI Too Long")          \
    X(415, "Unsupported Media Type") X(416, "Range Not Satisfiable")                          \
    X(417, "Expectation Failed") X(421, "Misdirected Request") X(429, "Too Many Requests")    \
    X(431, "Request Header Fields Too Large") X(500, "Internal Server Error")                 \
    X(501, "Not Implemented") X(502, "Bad Gateway") X(503, "Service Unavailable")             \
    X(504, "Gateway Timeout") X(505, "HTTP Version Not Supported")

const char *status_reason(int status);
/* 1xx, 204 and 304 never carry content (RFC 9110 §6.4.1). */
bool status_has_body(int status);

/* Most fields a handler may add to one response, and an operator to every
 * response (each). */
#define RESPONSE_MAX_FIELDS 64
/* Most fields of a response's own: a file's are 6, a proxied backend's
 * up to this many (more is a 502). */
#define RESPONSE_MAX_OWN_FIELDS 100
/* All a response may carry: its own, Strict-Transport-Security, a
 * handler's, and what an operator's rules add for the server, the site
 * and the path. */
#define RESPONSE_FIELDS_ALL (RESPONSE_MAX_OWN_FIELDS + 1 + 3 * RESPONSE_MAX_FIELDS)

/* A value eddy may write into a head as it is: no CR, LF, NUL or other
 * control but HTAB, no space or HTAB at either end. */
bool response_value_ok(const char *value, size_t value_len);
/* What eddy_respond and eddy_stream_start refuse before any head: -EALREADY
 * (answered or streaming), -EINVAL (a status outside 200..999, a content
 * type that is not a field value); else 0. */
int response_head_check(const request *req, int status, const char *content_type);
/* 0 when name: value may be added by a handler or operator; -EINVAL for a
 * name that is not a token or a value with CR, LF, NUL or other controls;
 * -EPERM for the fields eddy owns (framing, Date, Server, Content-Type). */
int response_field_check(const char *name, size_t name_len, const char *value, size_t value_len);

/* Calls send(req, resp) with resp's fields, the handler's, and the
 * site's and route's header rules applied (composed on the stack only when
 * there are any). */
void response_with_fields(request *req, response *resp,
                          void (*send)(request *req, const response *resp));

/* Answers req with resp: the protocol queues it, the access log records
 * it, and the request is finished.  Takes resp's file and parts. */
void response_send(request *req, response *resp);
/* Answers with a short text body eddy provides ("404 Not Found\n"). */
void response_simple(request *req, int status, const resp_field *fields, size_t nfields);

/* Streamed responses (core/stream.c), for eddy_stream_* and for handlers
 * inside eddy that bound their own buffering (the proxy):
 * stream_begin sends resp's head (content_length < 0: unknown) and starts
 * the body; stream_put queues body bytes whatever is buffered already
 * (the caller looks at proto->buffered); stream_cut ends a body that
 * cannot end well (the connection closes, so the client sees it cut
 * short) and finishes the request. */
void stream_begin(request *req, response *resp);
void stream_put(request *req, const void *data, size_t len);
void stream_cut(request *req);
/* Whether more of the body is coming at once: while it is, the protocol
 * may hold a partial packet so that the next piece fills it (one packet
 * for a head and a small body that come apart, full ones for a large
 * body).  A handler that says so must say otherwise, soon, when the next
 * piece does not come after all: what is held then goes. */
void stream_set_more(request *req, bool more);
/* Answers 101 with resp (its Upgrade field among its fields) and turns
 * the connection into a tunnel (proto_ops.tunnel): -ENOTSUP where the
 * protocol has none. */
int stream_tunnel(request *req, response *resp);

#endif
