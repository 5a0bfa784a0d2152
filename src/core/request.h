/* The neutral request: what a protocol parsed, as handlers see it.  A
 * protocol (HTTP/1.1 now) fills one per request and answers it through the
 * proto_ops it carries; handlers and the core never see protocol syntax. */
#ifndef EDDY_CORE_REQUEST_H
#define EDDY_CORE_REQUEST_H

#include "eddy.h"
#include "core/response.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct site site;
typedef struct route route;
typedef struct site_table site_table;
typedef struct front front;
typedef struct request request;

/* Offsets into the request's bytes (relative to request.base), so a
 * protocol may move those bytes without touching the request. */
typedef struct span {
    uint32_t off, len;
} span;

/* Methods the core and its handlers tell apart; the rest are OTHER and
 * known by their name alone. */
enum req_method {
    METHOD_OTHER, METHOD_GET, METHOD_HEAD, METHOD_POST, METHOD_PUT, METHOD_DELETE,
    METHOD_OPTIONS, METHOD_CONNECT, METHOD_TRACE, METHOD_PATCH,
};

/* A request body kept for a route that takes it, grown as it arrives. */
typedef struct req_body {
    uint32_t len;          /* bytes in data */
    uint32_t cap;          /* bytes allocated, this header included */
    char data[];
} req_body;

/* What a protocol does for the core. */
typedef struct proto_ops {
    /* Turns resp into the protocol's bytes and queues them with its body
     * (HEAD and bodiless statuses already stripped by the core). */
    void (*respond)(request *req, const response *resp);
    /* The response is complete (or abandoned): the protocol goes on. */
    void (*finish)(request *req);
    /* A streamed response: its head (content_length < 0: unknown, the
     * protocol frames it), pieces of its body, and its end (complete false:
     * a known length was not reached, so the message cannot end well). */
    void (*stream_head)(request *req, const response *resp);
    void (*stream_data)(request *req, const void *data, size_t len);
    void (*stream_end)(request *req, bool complete);
    /* A 101 (Switching Protocols) head, after which the connection
     * carries raw bytes both ways: the client's come as body pieces, the
     * handler's go as stream data, and the stream's end closes it.  NULL
     * where the protocol cannot (HTTP/2). */
    void (*tunnel)(request *req, const response *resp);
    /* Response bytes queued and not yet taken by the transport. */
    size_t (*buffered)(const request *req);
    /* The handler's further body bytes did not come at once after all
     * (req->stream_more went false): what the transport holds for them
     * goes now.  NULL where nothing is held (HTTP/2). */
    void (*stream_push)(request *req);
    /* The handler started reading the body, paused or resumed it. */
    void (*body_flow)(request *req);
    /* The request's fields in order, from *it = 0; false after the last. */
    bool (*field_next)(const request *req, size_t *it, eddy_str *name, eddy_str *value);
    /* The client's address as text, for logs. */
    void (*peer_name)(const request *req, char *buf, size_t len);
    /* The TLS version its connection speaks ("TLSv1.3"), NULL over plain
     * TCP, for logs. */
    const char *(*tls_version)(const request *req);
} proto_ops;

struct request {
    const proto_ops *proto;
    void *conn;            /* the protocol's connection */
    front *front;          /* the server's: pool, log, Date */
    site_table *table;     /* the sites it began with (a reference) */
    site *site;            /* its site once chosen (before: the default one) */
    const route *route;    /* its route, once routed (NULL: none) */
    uint16_t listener;     /* the tag of the listener its connection came from */
    uint64_t start_us;     /* when it began (loop_now_us), for the access log */
    const char *const *base; /* where the spans point (the protocol's pointer,
                              which it moves with its buffer); *base NULL
                              before a request line */
    span method, target, version, path, query;
    char *decoded;         /* the decoded path when it differs from the raw one */
    uint32_t decoded_len;
    uint32_t head_len;     /* bytes of request line + fields, once complete */
    req_body *body;        /* kept for a route that takes the body */
    char *extra;           /* fields the handler added: "name\0value\0"... */
    uint32_t extra_len, extra_cap;
    uint16_t nextra;
    unsigned host_count;
    uint8_t method_id;     /* enum req_method */
    uint8_t version_major, version_minor;
    bool keep_alive;
    bool expect_continue;  /* Expect: 100-continue was asked */
    bool has_body;         /* a body follows the head (HTTP/1.1: a Content-Length
                              above 0 or chunked; HTTP/2: no END_STREAM on it) */
    bool is_head;          /* HEAD: answer without a body */
    bool secure;           /* it came over TLS */
    bool site_chosen;
    bool routed;
    bool answered;
    bool aborted;          /* the client left; answering does nothing */
    eddy_callback on_abort;
    void *abort_data;
    /* A streamed response (eddy_stream_*). */
    bool streaming;        /* its head is sent; the body goes on */
    bool stream_discard;   /* HEAD, 204, 304: the body is dropped */
    bool drain_wanted;     /* a write found the buffer full: call on_drain */
    bool stream_more;      /* more of the body is coming at once (stream_set_more) */
    int stream_status;
    int64_t stream_left;   /* bytes a known length still wants; < 0 unknown */
    uint64_t stream_sent;
    eddy_callback on_drain;
    void *drain_data;
    /* A streamed request body (eddy_request_read). */
    eddy_body_fn body_fn;
    void *body_data;
    bool body_paused;      /* no piece until resumed (set until the first read) */
};

/* Gives fn the next piece of req's streamed body (len 0: the end), if the
 * handler reads it and is still there. */
void request_body_piece(request *req, const char *data, size_t len);

/* Requests live in slots of a per-server pool that lives as long as the
 * server: a protocol takes one when a request begins and gives it back when
 * the request is done, so an idle connection holds none.  What a handler
 * holds (eddy_request *) is its slot's address tagged with the slot's
 * generation in the pointer's top 16 bits (user-space addresses use 47).
 * A call through a stale handle finds the slot free or its generation
 * moved on, and is refused without touching any request.  Slots are
 * reused oldest first, so a stale handle could only pass for a new request
 * after its slot served 65536 more. */
struct eddy_request {
    request req;
    struct eddy_request *next_free;
    uint16_t gen;
    bool live;
};

typedef struct request_pool {
    struct request_chunk *chunks;
    eddy_request *free_head, *free_tail;
} request_pool;

#define REQUEST_CHUNK 64

/* A fresh request of f (routed by f's current sites) for proto's
 * connection conn, spans over *base; NULL without memory. */
request *request_new(front *f, const proto_ops *proto, void *conn, const char *const *base);
/* Releases what r owns and gives its slot back: every handle to it is
 * stale from now on. */
void request_free(request *r);
/* The handle a handler gets for r. */
eddy_request *request_handle(request *r);
/* The request a handle stands for, or NULL when it is stale. */
request *request_of(const eddy_request *h);
void request_pool_free(request_pool *p);

/* The bytes a span names (an empty view before a request line). */
eddy_str request_span(const request *req, span s);
/* Maps a method token to enum req_method. */
enum req_method request_method_id(const char *m, size_t len);
/* Splits the target into path and query (origin-form, absolute-form whose
 * scheme and authority are skipped, or "*"): 0, or 400. */
int request_split_target(request *req);
/* Decodes the path once (core/path.h): 0, or 400 for a bad escape or NUL. */
int request_decode_path(request *req);
/* The decoded path (valid once request_decode_path succeeded). */
eddy_str request_decoded_path(const request *req);
/* The most body bytes req may send: its route's limit, else the server's. */
uint64_t request_max_body(const request *req, uint64_t server_max);
/* How long (ms) its client may stop taking its response, and stop sending
 * its body: its route's limits, else the server's (NULL req: the server's). */
unsigned request_send_ms(const request *req, unsigned server_ms);
unsigned request_body_ms(const request *req, unsigned server_ms);
/* Appends body bytes for a route that takes them; -ENOMEM. */
int request_keep_body(request *req, const char *data, size_t len);
/* Releases what the request owns (decoded path, body) once it is done. */
void request_release(request *req);
/* Looks up several fields in one pass: out[i] is the first field named
 * names[i] (any case), ptr NULL when absent. */
void request_fields(const request *req, const eddy_str *names, eddy_str *out, size_t n);

#endif
