/* One connection: read, parse, dispatch, write, keep alive or close.
 * A connection idling between requests holds no buffers: reads land in the
 * loop's scratch and responses are staged in the loop's output scratch;
 * only bytes that must outlive the current turn (a partial request, a
 * request a handler answers later, output the peer has not taken yet) are
 * copied into buffers of the connection's own, sized to what they hold. */
#ifndef EDDY_HTTP_CONN_H
#define EDDY_HTTP_CONN_H

#include "eddy.h"
#include "core/request.h"
#include "rt/stream.h"
#include "http/rules.h"
#include "http/session.h"
#include "llhttp.h"
#include <stdbool.h>
#include <sys/types.h>

typedef struct eddy_server server_t;
typedef struct conn conn;

enum conn_phase {
    PHASE_IDLE,        /* between requests (keep-alive) */
    PHASE_HEAD,        /* inside a request head */
    PHASE_BODY,        /* head done, reading (and discarding) its body */
    PHASE_HANDLER,     /* a handler holds the request */
    PHASE_TUNNEL,      /* after a 101: raw bytes both ways, to and from a handler */
    PHASE_LINGER,      /* last answer sent and FIN with it; draining input */
    PHASE_CLOSED,      /* stream closed; only a handler's reference remains */
};

/* Ordered so no padding is left between members: every idle connection
 * costs sizeof(conn) (see the README's memory figure). */
struct conn {
    server_t *srv;
    eddy_stream *stream;
    llhttp_t parser;
    request *req;          /* the current request; NULL while idle */
    const char *req_base;  /* where the current request's head starts */
    span field_name, field_value; /* the header field being parsed */
    te_summary te;         /* Transfer-Encoding, over all its fields */
    uint64_t body_bytes;   /* body bytes of the current request so far;
                              while lingering, bytes drained */
    /* Owned input: what must survive until the next read. */
    char *in;
    /* Owned output: what the peer has not taken yet. */
    char *out;
    uint32_t in_len, in_cap;
    uint32_t in_unparsed;  /* offset in `in` of bytes not yet fed to llhttp */
    uint32_t out_len, out_off, out_cap;
    body_file *file;       /* body being sent with sendfile, or NULL */
    off_t file_off;        /* the current range of it */
    off_t file_left;
    file_parts *parts;     /* more ranges of it (multipart), or NULL */
    eddy_timer timer;      /* header, keep-alive, send or linger timeout */
    uint64_t deadline;     /* when it expires (the timer may be set earlier) */
    uint64_t wait_deadline; /* loop ms by which the next step must come: the
                               head complete (HEAD), a request begun (IDLE) */
    session session;       /* its place in the server's list */
    enum conn_phase phase;
    unsigned nfields;      /* fields in the current head */
    uint32_t framing_bytes; /* chunk extensions and trailers of this request */
    uint32_t piece_len;    /* a streamed body's piece llhttp just passed */
    uint32_t send_ms;      /* the send timeout of the last answer queued (its
                              route's); 0: the server's */
    const char *piece;
    uint16_t parse_status; /* status a parser callback chose for its error */
    uint16_t listener;     /* the tag of the listener that accepted it */
    peer_addr peer;        /* the client's address, once asked */
    bool head_len_known : 1;
    bool trailer_field : 1; /* inside a trailer field (not kept) */
    bool method_unknown : 1; /* llhttp refused the method; waiting to see if
                                a well-formed request line follows (501) */
    bool has_te : 1;
    bool keep_body : 1;    /* the route takes the body: on_body keeps it */
    bool readable : 1;     /* the stream may have input we have not read */
    bool writable : 1;
    bool peer_eof : 1;     /* the peer half-closed: a read will say EOF */
    bool after_cr : 1;     /* the last byte before a request line was CR */
    bool in_batch : 1;     /* processing input: output is flushed at the end */
    bool close_after_write : 1;
    bool draining : 1;     /* server shutting down: close once idle */
    bool fatal : 1;        /* stop parsing: an error response is the last one */
    bool broken : 1;       /* a write failed: close at the next flush */
    bool zombie : 1;       /* closed, but a handler still holds the request */
    bool gated : 1;        /* counted by the accept gate (came from a listener) */
    bool out_chunked : 1;  /* the streamed body being sent is chunked */
    bool kick : 1;         /* output queued outside a batch: flush next turn */
    bool stream_body : 1;  /* the request's body goes to its handler in pieces */
    bool body_dispatched : 1; /* ... and its handler has it (since its head) */
    bool step_owed : 1;    /* llhttp owes it a step with no byte (a body's
                              end), held up while its handler paused it */
    bool continue_pending : 1; /* 100 Continue owed once the handler reads */
    bool body_end_due : 1; /* a handler reading a body already ended: tell it */
    bool sent_some : 1;    /* this flush got bytes taken by the peer */
    bool send_waiting : 1; /* output is pending and the send clock runs */
    bool had_request : 1;  /* a request was answered: no HTTP/2 preface now */
    bool alpn_checked : 1; /* the first read looked for ALPN h2 */
    bool tunnel_eof : 1;   /* a tunnel's client sent its FIN, and was told */
    bool held : 1;         /* the last write said more follows (MSG_MORE): the
                              transport may hold its last partial packet */
};

#define CONN_NO_DEADLINE UINT64_MAX
/* While the server drains (shutdown, upgrade), how long an idle keep-alive
 * connection (one that was answered before) still takes one more request
 * (answered with Connection: close) before it is closed: a client that
 * sent its next request as the drain began gets its answer instead of a
 * closed connection.  One that never sent a request closes at once. */
#define CONN_DRAIN_IDLE_MS 1000

/* Takes ownership of stream; starts reading.  gated: counted by the
 * accept gate.  The server's session calls (session.h) drain it on
 * shutdown (close if idle, else after the request in flight) and abort it
 * (close now; freed unless a handler still holds its request, then when
 * the handler answers). */
conn *conn_new(server_t *srv, eddy_stream *stream, bool gated);
/* The HTTP/1.1 connection s is, or NULL when it is another protocol's. */
conn *conn_from_session(session *s);

/* Used by the parser glue. */
void conn_head_started(conn *c);
/* parse_status of a request line that is HTTP/2's connection preface. */
#define PARSE_H2_PREFACE 1
/* Gives c a fresh request (the last one, if any, given back); -ENOMEM. */
int conn_request_begin(conn *c);

/* Used by the response writer. */
void conn_queue(conn *c, const void *data, size_t len);
/* Queues len bytes of f from off; takes the reference to f. */
void conn_queue_file(conn *c, body_file *f, off_t off, off_t len);
/* Queues several ranges of f, each after its head; takes f and parts. */
void conn_queue_file_parts(conn *c, body_file *f, file_parts *parts);
/* Output was queued outside conn_run (a handler answering or streaming
 * later): it is written on the next turn, never from inside the handler's
 * own call, so no callback of the handler's runs beneath it. */
void conn_kick(conn *c);
/* After a 101 head is queued: raw bytes both ways (PHASE_TUNNEL). */
void conn_tunnel(conn *c);
/* The core's proto_ops for HTTP/1.1 requests. */
extern const proto_ops conn_proto;

#endif
