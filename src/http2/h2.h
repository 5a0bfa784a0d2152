/* HTTP/2 (RFC 9113) over the neutral core: nghttp2 does the framing, HPACK,
 * stream states and flow control; this module is the glue between it, the
 * byte stream below and requests above, and sets the limits.
 *
 * h2_conn.c: one connection (an nghttp2 session over an eddy_stream):
 * reading, the output queue, timeouts, floods, shutdown.
 * h2_request.c: one request per HTTP/2 stream, and the proto_ops that turn
 * the core's responses into HEADERS and DATA.
 *
 * Handlers never run inside an nghttp2 callback: the callbacks record what
 * arrived, and the connection dispatches ready streams once nghttp2 has
 * returned, so a handler may answer (and the connection write) at once. */
#ifndef EDDY_HTTP2_H2_H
#define EDDY_HTTP2_H2_H

#include "core/request.h"
#include "http/session.h"
#include "rt/stream.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct eddy_server server_t;
typedef struct h2conn h2conn;
typedef struct h2stream h2stream;

/* SETTINGS_MAX_CONCURRENT_STREAMS unless configured (--h2-max-streams). */
#define H2_DEFAULT_MAX_STREAMS 100
/* Receive windows eddy grants: per stream, and for the connection.  Big
 * enough that an upload is not held to one window per round trip; what a
 * paused streamed body may hold unread is bounded by them. */
#define H2_STREAM_WINDOW (256 * 1024)
#define H2_CONN_WINDOW (1024 * 1024)
/* Frames queued for the socket before nghttp2 is asked for more: output is
 * made as the peer takes it, never a whole body ahead. */
#define H2_OUT_HIGH (64 * 1024)
/* Rapid reset (CVE-2023-44487): streams the client may cancel, as a token
 * bucket of this burst refilled at this rate per second; past it the
 * connection ends with GOAWAY ENHANCE_YOUR_CALM. */
#define H2_RESET_BURST 200
#define H2_RESET_RATE 50
/* Frames that cost eddy work but carry no request (PING, SETTINGS,
 * PRIORITY, empty DATA, WINDOW_UPDATE for nothing): a token bucket as
 * above.  Past it: GOAWAY ENHANCE_YOUR_CALM. */
#define H2_CONTROL_BURST 1000
#define H2_CONTROL_RATE 200
/* CONTINUATION frames after one HEADERS (the 2024 CONTINUATION flood):
 * past it the connection ends (nghttp2's check). */
#define H2_MAX_CONTINUATIONS 8
/* A connection idle this long (no stream, nothing queued, nothing sent)
 * hands the pages of nghttp2's 16 KiB frame buffer back to the kernel
 * (MADV_DONTNEED; they come back zeroed when the next frame is made).  Not
 * at once: a busy client's next request usually follows within a round
 * trip, and would pay a system call and page faults each time. */
#define H2_TRIM_IDLE_MS 500
/* An allocation this big made while nghttp2 creates a session is its
 * outbound frame buffer (a frame's header and payload): kept for the
 * session's life, and dead between frames. */
#define H2_FRAMEBUF_MIN 16384
/* Decoded header bytes one block may carry, as a multiple of
 * --max-header-bytes: up to 1x the request is answered 431; past this the
 * peer is flooding (an HPACK bomb) and the connection ends. */
#define H2_HEADER_FLOOD_FACTOR 4

/* One request stream. */
struct h2stream {
    h2conn *c;
    request *req;          /* NULL before its head is complete, and once finished */
    h2stream *prev, *next; /* the connection's streams */
    h2stream *ready_next;  /* in the connection's ready list */
    int32_t id;
    /* The head as it arrived: the request line eddy writes for logs
     * ("GET /path HTTP/2.0"), then "name\0value\0" per field. */
    char *head;
    uint32_t head_len, head_cap;
    uint32_t fields_off, fields_end; /* where the fields are */
    uint32_t method_off, method_len, path_off, path_len; /* while the head arrives */
    uint32_t authority_off, authority_len;
    uint32_t header_bytes; /* decoded bytes of the block being received */
    uint16_t nfields;
    uint16_t refuse;       /* a status to answer instead of dispatching (431, 413, 400) */
    uint8_t body_mode;     /* enum eddy_body of the route: none (dropped), whole, stream */
    bool queued : 1;       /* in the ready list */
    bool head_done : 1;    /* the request's head is complete */
    bool end_recv : 1;     /* the client's END_STREAM came */
    bool dispatched : 1;   /* its handler has it */
    bool end_told : 1;     /* a streamed body's end was given to the handler */
    bool responded : 1;    /* the core gave its response (or stream head) */
    bool closed : 1;       /* nghttp2 closed the stream */
    bool in_close : 1;     /* inside the close callback: finish must not free */
    bool body_eof : 1;     /* the response body has no more to come */
    bool deferred : 1;     /* nghttp2 waits for body bytes (resume_data) */
    bool has_authority : 1;
    bool has_host : 1;
    /* The response body, read from here as flow control lets it go: bytes
     * in memory (the handler's, until the call returns; then owned), then a
     * file range, then the next part of a multipart body. */
    const char *mem;
    char *owned;           /* mem's buffer when eddy owns it */
    size_t mem_len, owned_cap;
    body_file *file;
    off_t file_off, file_left;
    file_parts *parts;
    uint64_t body_bytes;   /* request body bytes received */
    /* A streamed request body kept while its handler pauses it; the
     * client's window is opened only as the handler takes it. */
    char *in;
    uint32_t in_len, in_cap;
};

struct h2conn {
    session session;       /* its place in the server's list */
    server_t *srv;
    eddy_stream *stream;
    nghttp2_session *ng;
    h2stream *streams;     /* every stream eddy holds, open or held by a handler */
    h2stream *ready_head, *ready_tail;
    unsigned nopen;        /* streams nghttp2 has open */
    /* Frames for the socket: written in one go at the end of a turn. */
    char *out;
    uint32_t out_len, out_off, out_cap;
    eddy_timer timer;
    peer_addr peer;        /* the client's address, once asked */
    uint64_t idle_since;   /* loop ms when the last stream closed */
    uint64_t last_input;   /* loop ms of the last bytes read */
    uint64_t last_sent;    /* loop ms the peer last took bytes */
    uint64_t bucket_ms;    /* when the token buckets were last refilled */
    uint32_t reset_tokens, control_tokens;
    unsigned held;         /* streams whose request a handler holds */
    /* nghttp2's outbound frame buffer, for trimming while idle. */
    void *framebuf;
    size_t framebuf_len;
    uint16_t listener;     /* the tag of the listener that accepted it */
    bool gated : 1;
    bool readable : 1;
    bool writable : 1;
    bool in_run : 1;       /* h2_run is on the stack */
    bool in_ng : 1;        /* inside nghttp2 (its callbacks): no session_send */
    bool kick : 1;         /* output made outside a run: write next turn */
    bool draining : 1;
    bool goaway_sent : 1;
    bool closed : 1;       /* stream closed; freed once no handler holds a request */
    bool creating : 1;     /* nghttp2_session_server_new3 is on the stack */
    bool trimmed : 1;      /* the frame buffer's pages went back since the last frame */
    bool peer_eof : 1;     /* the peer half-closed: a short read does not
                              mean drained, its EOF is next (edge-triggered
                              epoll tells of it once) */
};

/* Takes over stream from an HTTP/1.1 connection that found HTTP/2 on it
 * (ALPN h2, or the connection preface in `initial`), with the bytes it
 * read so far; readable: the stream may hold more; peer_eof: the peer
 * half-closed (its EOF is still to be read).  False when it could
 * not be made: the stream is still the caller's. */
bool h2_conn_new(server_t *srv, eddy_stream *stream, bool gated, uint16_t listener_tag,
                 const char *initial, size_t len, bool readable, bool peer_eof);

/* nghttp2's callbacks and options, made once per server. */
int h2_server_init(server_t *srv);
void h2_server_free(server_t *srv);

/* ---- between h2_conn.c and h2_request.c ---- */

/* Makes room for n more bytes at the end of st's head: their offset, or
 * -1 without memory (the head may move: offsets stay good, pointers not). */
int64_t h2_head_grow(h2stream *st, size_t n);
/* The stream's request head is complete: make its request. */
int h2_request_begin(h2stream *st);
/* Runs what a ready stream is due: its handler, its body's pieces or end,
 * or the status it is refused with. */
void h2_stream_run(h2stream *st);
/* Makes room for n bytes at the queue's end; NULL without memory. */
char *h2_out_reserve(h2conn *c, size_t n);
/* Puts st in the connection's ready list. */
void h2_ready(h2stream *st);
/* Output was made outside a run: write it on the next turn. */
void h2_kick(h2conn *c);
/* Lets nghttp2 make frames into the queue (not inside its callbacks). */
void h2_pump(h2conn *c);
/* The stream closed under a handler that holds its request (the client
 * left): the request is marked aborted and its abort callback told, after
 * which it is let go of; without a callback it waits for its answer. */
void h2_stream_abort(h2stream *st);
/* Frees a stream's own memory and leaves the connection's list. */
void h2_stream_free(h2stream *st);
/* Releases what a response body holds. */
void h2_body_release(h2stream *st);
/* A handler let go of a request: the connection may now be freed. */
void h2_conn_unhold(h2conn *c);
/* nghttp2 callbacks h2_request.c provides. */
ssize_t h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                     uint32_t *flags, nghttp2_data_source *src, void *user);
int h2_send_body(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                 size_t len, nghttp2_data_source *src, void *user);

extern const proto_ops h2_proto;

#endif
