/* One HTTP/2 connection: bytes from the stream go to nghttp2, the frames it
 * makes go to an output queue written once per turn, and the streams it
 * reports become requests (h2_request.c).  Every state has a deadline: a
 * peer that stops taking bytes (or never opens its window) meets the send
 * timeout, a stream waiting on the client's head or body the header
 * timeout, and a connection with no stream the keep-alive timeout. */
#include "http2/h2.h"
#include "core/buf.h"
#include "core/site.h"
#include "http/rules.h"
#include "http/server.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NONE UINT64_MAX

static void h2_run(h2conn *c);
static void h2_close(h2conn *c, bool reset);
static void conn_free(h2conn *c);
static h2conn *conn_of(session *s) { return (h2conn *)((char *)s - offsetof(h2conn, session)); }
static uint64_t now_ms(const h2conn *c) { return eddy_loop_now(c->srv->loop); }

/* ------------------------------------------------------------- output -- */

char *h2_out_reserve(h2conn *c, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (buf_grow(&c->out, &c->out_cap, (size_t)c->out_len + n, 16384) < 0)
        return NULL;
    if (c->out_len == 0)
        c->last_sent = now_ms(c); /* the send clock starts with the first byte queued */
    c->trimmed = false; /* frames are being made */
    char *p = c->out + c->out_len;
    c->out_len += (uint32_t)n;
    return p;
}

static bool h2_out_append(h2conn *c, const void *data, size_t len)
{
    char *p = h2_out_reserve(c, len);
    if (!p)
        return false;
    memcpy(p, data, len);
    return true;
}

static size_t out_pending(const h2conn *c) { return c->out_len - c->out_off; }

/* Writes the queue as far as the peer takes it; false once the stream failed. */
static bool write_out(h2conn *c)
{
    while (c->out_off < c->out_len && c->writable) {
        struct iovec iov = {c->out + c->out_off, c->out_len - c->out_off};
        ssize_t n = stream_writev(c->stream, &iov, 1, false);
        metrics_bytes_out(c->srv->front.metrics, n);
        if (n == -EAGAIN) {
            c->writable = false;
            break;
        }
        if (n < 0)
            return false;
        c->out_off += (uint32_t)n;
        if (n > 0)
            c->last_sent = now_ms(c);
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->nopen == 0) { /* idle: memory follows activity */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
    }
    return true;
}

void h2_pump(h2conn *c)
{
    if (c->closed || c->in_ng)
        return;
    c->in_ng = true;
    int rv = nghttp2_session_send(c->ng);
    c->in_ng = false;
    if (rv != 0)
        h2_close(c, true); /* out of memory, or a file that shrank mid-body */
}

void h2_kick(h2conn *c)
{
    if (c->in_run || c->kick || c->closed)
        return;
    c->kick = true;
    eddy_timer_start(c->srv->loop, &c->timer, 0); /* a re-arm: cannot fail */
}

void h2_ready(h2stream *st)
{
    h2conn *c = st->c;
    if (st->queued || c->closed)
        return;
    st->queued = true;
    st->ready_next = NULL;
    if (c->ready_tail)
        c->ready_tail->ready_next = st;
    else
        c->ready_head = st;
    c->ready_tail = st;
    h2_kick(c);
}

/* --------------------------------------------------------- token buckets -- */

static void refill(h2conn *c)
{
    uint64_t now = now_ms(c), el = now - c->bucket_ms;
    if (el < 100)
        return;
    c->bucket_ms = now;
    uint64_t r = c->reset_tokens + el * H2_RESET_RATE / 1000;
    c->reset_tokens = (uint32_t)(r > H2_RESET_BURST ? H2_RESET_BURST : r);
    uint64_t k = c->control_tokens + el * H2_CONTROL_RATE / 1000;
    c->control_tokens = (uint32_t)(k > H2_CONTROL_BURST ? H2_CONTROL_BURST : k);
}

/* Ends the connection with GOAWAY ENHANCE_YOUR_CALM, once, and says so. */
static void calm(h2conn *c, const char *what)
{
    if (c->goaway_sent)
        return;
    c->goaway_sent = true;
    nghttp2_session_terminate_session(c->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    if (c->srv->event_log) {
        char peer[64], msg[160];
        stream_peer_cached(c->stream, &c->peer, peer, sizeof(peer));
        snprintf(msg, sizeof(msg), "HTTP/2 %s flood from %s: connection ended (ENHANCE_YOUR_CALM)",
                 what, peer);
        c->srv->event_log(c->srv->event_log_data, msg);
    }
}

/* Takes a token; false (after calm()) when none is left. */
static bool take(h2conn *c, uint32_t *tokens, const char *what)
{
    refill(c);
    if (*tokens) {
        (*tokens)--;
        return true;
    }
    calm(c, what);
    return false;
}

/* ---------------------------------------------------- nghttp2 callbacks -- */

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
    h2conn *c = user;
    if (out_pending(c) >= H2_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    return h2_out_append(c, data, len) ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    h2conn *c = user;
    bool cheap = false;
    switch (hd->type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
        cheap = true;
        break;
    case NGHTTP2_DATA:
        cheap = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
        break;
    default:
        break;
    }
    if (cheap)
        take(c, &c->control_tokens, "control frame");
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    h2conn *c = user;
    int32_t id = frame->hd.stream_id;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        h2stream *st = nghttp2_session_get_stream_user_data(ng, id);
        if (st)
            st->header_bytes = 0; /* trailers: a block of their own */
        return 0;
    }
    if (c->nopen++ == 0)
        metrics_busy(c->srv->front.metrics, 1); /* busy while a stream is open */
    h2stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    st->c = c;
    st->id = id;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(ng, id, st);
    return 0;
}

/* Appends bytes to a stream's head; false without memory. */
static bool head_put(h2stream *st, const void *p, size_t n)
{
    int64_t at = h2_head_grow(st, n);
    if (at < 0)
        return false;
    memcpy(st->head + at, p, n);
    return true;
}

static bool is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    h2conn *c = user;
    server_t *srv = c->srv;
    h2stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    /* HPACK's size rule (RFC 7541 §4.1): a field costs its bytes plus 32. */
    st->header_bytes += (uint32_t)(namelen + valuelen + 32);
    if (st->header_bytes > (uint64_t)srv->max_header_bytes * H2_HEADER_FLOOD_FACTOR) {
        calm(c, "header");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (st->head_done || st->refuse)
        return 0; /* trailers are not kept; a refused head is not either */
    if (st->header_bytes > srv->max_header_bytes) {
        st->refuse = 431;
        return 0;
    }
    uint32_t at = st->head_len;
    if (namelen && name[0] == ':') {
        /* nghttp2 has checked which, their order and that none repeats. */
        if (!head_put(st, value, valuelen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (is(name, namelen, ":method")) {
            st->method_off = at;
            st->method_len = (uint32_t)valuelen;
        } else if (is(name, namelen, ":path")) {
            st->path_off = at;
            st->path_len = (uint32_t)valuelen;
        } else if (is(name, namelen, ":authority")) {
            st->authority_off = at;
            st->authority_len = (uint32_t)valuelen;
            st->has_authority = true;
            if (!rules_host_ok((const char *)value, valuelen))
                st->refuse = 400;
        }
        st->fields_off = st->head_len;
        return 0;
    }
    if (++st->nfields > srv->max_headers) {
        st->refuse = 431;
        return 0;
    }
    if (is(name, namelen, "host")) {
        if (st->has_host || !rules_host_ok((const char *)value, valuelen))
            st->refuse = 400;
        st->has_host = true;
    }
    if (!head_put(st, name, namelen) || !head_put(st, "", 1) || !head_put(st, value, valuelen) ||
        !head_put(st, "", 1))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    h2conn *c = user;
    h2stream *st = frame->hd.stream_id
                       ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id)
                       : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            return 0;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            st->end_recv = true;
        if (!st->head_done) {
            st->head_done = true;
            if (h2_request_begin(st) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            if (st->end_recv || st->refuse || st->body_mode == EDDY_BODY_STREAM)
                h2_ready(st);
        } else if (st->end_recv) {
            h2_ready(st); /* trailers end the body */
        }
        return 0;
    case NGHTTP2_DATA:
        if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            st->end_recv = true;
            h2_ready(st);
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        take(c, &c->reset_tokens, "stream reset");
        return 0;
    default:
        return 0;
    }
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    h2conn *c = user;
    h2stream *st = nghttp2_session_get_stream_user_data(ng, id);
    bool keep = false;
    if (st) {
        st->body_bytes += len;
        request *r = st->req;
        if (!r || st->refuse || st->responded) {
            /* dropped */
        } else if (st->body_mode == EDDY_BODY_STREAM) {
            /* The handler takes it outside nghttp2 (h2_stream_run); the
             * window opens as it does. */
            if (buf_grow(&st->in, &st->in_cap, (size_t)st->in_len + len, 16384) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            memcpy(st->in + st->in_len, data, len);
            st->in_len += (uint32_t)len;
            keep = true;
            h2_ready(st);
        } else if (st->body_bytes > request_max_body(r, c->srv->max_body)) {
            st->refuse = 413;
            h2_ready(st);
        } else if (st->body_mode == EDDY_BODY_WHOLE && request_keep_body(r, (const char *)data, len) < 0) {
            st->refuse = 503;
            h2_ready(st);
        }
    }
    if (!keep)
        nghttp2_session_consume(ng, id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    h2conn *c = user;
    h2stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (c->nopen && --c->nopen == 0) {
        c->idle_since = now_ms(c);
        metrics_busy(c->srv->front.metrics, -1);
    }
    if (!st)
        return 0;
    st->closed = true;
    h2_body_release(st);
    h2_ready(st); /* its request is let go of (or its handler told) outside nghttp2 */
    return 0;
}

int h2_server_init(server_t *srv)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, h2_send_body);
    /* Windows open as bodies are taken, not as they arrive. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
    /* eddy's own reset limit ends the connection first, with
     * ENHANCE_YOUR_CALM; nghttp2's stays as a backstop. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 4 * H2_RESET_BURST, 4 * H2_RESET_RATE);
    srv->h2_callbacks = cb;
    srv->h2_option = opt;
    return 0;
}

void h2_server_free(server_t *srv)
{
    if (srv->h2_callbacks)
        nghttp2_session_callbacks_del(srv->h2_callbacks);
    if (srv->h2_option)
        nghttp2_option_del(srv->h2_option);
    srv->h2_callbacks = NULL;
    srv->h2_option = NULL;
}

/* ---------------------------------------------------------------- input -- */

/* After a failure nghttp2 leaves the session unusable: the connection's
 * last frame is made here, a GOAWAY with the reason (RFC 9113 §5.4.1). */
static void goaway_by_hand(h2conn *c, int ng_error)
{
    uint32_t code = ng_error == NGHTTP2_ERR_FLOODED || ng_error == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                        ? NGHTTP2_ENHANCE_YOUR_CALM
                    : ng_error == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? NGHTTP2_PROTOCOL_ERROR
                                                                : NGHTTP2_INTERNAL_ERROR;
    if (code == NGHTTP2_ENHANCE_YOUR_CALM && c->srv->event_log) {
        char peer[64], msg[160];
        stream_peer_cached(c->stream, &c->peer, peer, sizeof(peer));
        snprintf(msg, sizeof(msg), "HTTP/2 flood from %s (%s): connection ended (ENHANCE_YOUR_CALM)",
                 peer, nghttp2_strerror(ng_error));
        c->srv->event_log(c->srv->event_log_data, msg);
    }
    uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(c->ng);
    uint8_t f[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        f[9 + i] = (uint8_t)(last >> (24 - 8 * i));
        f[13 + i] = (uint8_t)(code >> (24 - 8 * i));
    }
    if (h2_out_append(c, f, sizeof(f)))
        write_out(c);
}

/* Gives nghttp2 bytes; false when the session failed (bad preface, a flood
 * nghttp2 caught, no memory): the connection must end, and its GOAWAY is
 * queued. */
static bool feed(h2conn *c, const char *p, size_t len)
{
    c->last_input = now_ms(c);
    c->in_ng = true;
    ssize_t rv = nghttp2_session_mem_recv(c->ng, (const uint8_t *)p, len);
    c->in_ng = false;
    if (rv < 0)
        goaway_by_hand(c, (int)rv);
    return rv >= 0;
}

static void run_ready(h2conn *c)
{
    while (c->ready_head && !c->closed && !c->srv->free_pending) {
        h2stream *st = c->ready_head;
        c->ready_head = st->ready_next;
        if (!c->ready_head)
            c->ready_tail = NULL;
        st->queued = false;
        h2_stream_run(st);
    }
}

/* ------------------------------------------------------------- deadlines -- */

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Who the connection waits on, in one walk over its streams, and how
 * long each may take (0: not waited on): the peer, to take bytes or open
 * its window for a response under way (send timeout); the client, for a
 * head or a body nobody has paused (header timeout, a body's: its
 * path's).  The most a stream waited on allows is the connection's. */
static void owed(const h2conn *c, uint64_t *peer_ms, uint64_t *client_ms)
{
    const server_t *srv = c->srv;
    *peer_ms = out_pending(c) > 0 ? srv->send_ms : 0;
    *client_ms = 0;
    for (const h2stream *st = c->streams; st; st = st->next) {
        if (st->closed)
            continue;
        if (st->responded) {
            if (!st->deferred)
                *peer_ms = max64(*peer_ms, st->req ? request_send_ms(st->req, srv->send_ms)
                                                   : srv->send_ms);
        } else if (!st->end_recv && !st->refuse &&
                   (!st->head_done || st->body_mode != EDDY_BODY_STREAM || !st->req ||
                    !st->req->body_paused)) {
            *client_ms = max64(*client_ms, st->req && st->head_done
                                               ? request_body_ms(st->req, srv->header_ms)
                                               : srv->header_ms);
        }
    }
}


static bool is_idle(const h2conn *c) { return c->nopen == 0 && c->held == 0 && !out_pending(c); }

/* When an idle connection's frame buffer is due to be trimmed; NONE when
 * it is not idle or has been. */
static uint64_t trim_due(const h2conn *c)
{
    if (c->trimmed || !c->framebuf || !is_idle(c))
        return NONE;
    return max64(c->idle_since, c->last_sent) + H2_TRIM_IDLE_MS;
}

/* Hands the whole pages inside nghttp2's frame buffer back to the kernel:
 * between frames its content is dead, and an idle connection then costs
 * nghttp2's session and tables, not a buffer.  (Private anonymous memory,
 * as malloc's is, reads back as zeros after MADV_DONTNEED.) */
static void trim(h2conn *c)
{
    c->trimmed = true;
    if (nghttp2_session_want_write(c->ng))
        return; /* a frame may be half made: the next idle spell trims */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)c->framebuf + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)c->framebuf + c->framebuf_len) & ~(page - 1);
    if (to > from)
        madvise((void *)from, to - from, MADV_DONTNEED);
}

static uint64_t next_deadline(const h2conn *c)
{
    const server_t *srv = c->srv;
    uint64_t when = NONE, peer_ms, client_ms;
    owed(c, &peer_ms, &client_ms);
    if (peer_ms)
        when = c->last_sent + peer_ms;
    if (client_ms)
        when = min64(when, c->last_input + client_ms);
    if (is_idle(c))
        when = min64(when, min64(c->idle_since + srv->keepalive_ms, trim_due(c)));
    return when;
}

static void rearm(h2conn *c)
{
    uint64_t when = next_deadline(c), now = now_ms(c);
    eddy_timer_start(c->srv->loop, &c->timer, when == NONE ? UINT64_MAX : when > now ? when - now : 0);
}

static void on_timeout(void *data)
{
    h2conn *c = data;
    server_t *srv = c->srv;
    server_enter(srv);
    eddy_timer_start(srv->loop, &c->timer, UINT64_MAX);
    if (c->kick) {
        c->kick = false;
        h2_run(c);
    } else if (trim_due(c) <= now_ms(c)) {
        trim(c);
        rearm(c);
    } else if (next_deadline(c) <= now_ms(c)) {
        if (is_idle(c)) {
            /* Idle: say goodbye properly, then close. */
            nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
            h2_pump(c);
            if (!c->closed)
                write_out(c);
            h2_close(c, false);
        } else {
            h2_close(c, true); /* a peer this slow gets no more of us */
        }
        if (c->held == 0)
            conn_free(c);
    } else {
        rearm(c);
    }
    server_leave(srv);
}

/* ------------------------------------------------------------------- run -- */

/* Writes, dispatches, reads and answers until the connection must wait. */
static void h2_run(h2conn *c)
{
    if (c->closed)
        return;
    c->in_run = true;
    c->kick = false; /* this run does what a kick was due for */
    server_t *srv = c->srv;
    while (!c->closed) {
        run_ready(c);
        uint32_t queued = c->out_len;
        h2_pump(c);
        if (c->closed)
            break;
        bool made = c->out_len != queued || c->out_len >= H2_OUT_HIGH;
        if (!write_out(c)) {
            h2_close(c, true);
            break;
        }
        if (c->ready_head && !srv->free_pending)
            continue; /* streams the pump closed, or handlers it let write */
        if (out_pending(c) || srv->free_pending || !nghttp2_session_want_read(c->ng))
            break; /* the peer must take our bytes before we read on */
        if (made)
            continue; /* the queue emptied: nghttp2 may have more to make */
        if (!c->readable)
            break;
        size_t cap;
        char *buf = loop_scratch(srv->loop, &cap);
        ssize_t n = stream_read(c->stream, buf, cap);
        metrics_bytes_in(srv->front.metrics, n);
        if (n == -EAGAIN) {
            c->readable = false;
            break;
        }
        if (n <= 0) {
            h2_close(c, n < 0);
            break;
        }
        if ((size_t)n < cap && !c->peer_eof)
            c->readable = false; /* a short read drained the socket */
        if (!feed(c, buf, (size_t)n)) {
            h2_close(c, false);
            break;
        }
    }
    if (!c->closed) {
        if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
            !out_pending(c) && c->held == 0)
            h2_close(c, false); /* GOAWAY said and every stream done */
        else
            rearm(c);
    }
    c->in_run = false;
    if (c->closed && c->held == 0)
        conn_free(c);
}

static void on_ready(eddy_stream *s, unsigned events)
{
    h2conn *c = s->owner;
    server_t *srv = c->srv;
    server_enter(srv);
    if (events & STREAM_HUP) {
        h2_close(c, false);
        if (c->held == 0)
            conn_free(c);
    } else {
        if (events & (STREAM_READABLE | STREAM_RDHUP))
            c->readable = true;
        if (events & STREAM_RDHUP)
            c->peer_eof = true;
        if (events & STREAM_WRITABLE)
            c->writable = true;
        h2_run(c);
    }
    server_leave(srv);
}

/* ------------------------------------------------------------- lifecycle -- */

void h2_stream_free(h2stream *st)
{
    h2conn *c = st->c;
    h2_body_release(st);
    if (st->prev)
        st->prev->next = st->next;
    else if (c->streams == st)
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    free(st->head);
    free(st->in);
    free(st);
}

static void conn_free(h2conn *c)
{
    if (c->nopen) /* streams nghttp2 never closed: it calls nothing as it goes */
        metrics_busy(c->srv->front.metrics, -1);
    while (c->streams)
        h2_stream_free(c->streams);
    server_session_freed(c->srv, &c->session, c->gated);
    free(c);
}

void h2_conn_unhold(h2conn *c)
{
    if (c->held)
        c->held--;
    if (c->closed && c->held == 0 && !c->in_run)
        conn_free(c);
}

/* Ends the connection now.  Requests handlers hold are aborted (their
 * callbacks told); one whose handler registered none keeps the connection
 * (closed) until it is answered. */
static void h2_close(h2conn *c, bool reset)
{
    if (c->closed)
        return;
    c->closed = true;
    eddy_timer_stop(c->srv->loop, &c->timer);
    if (reset)
        stream_reset(c->stream);
    stream_close(c->stream);
    c->stream = NULL;
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
    c->ready_head = c->ready_tail = NULL;
    bool was_in_run = c->in_run;
    c->in_run = true; /* abort callbacks answering must not free c beneath us */
    for (h2stream *st = c->streams, *next; st; st = next) {
        next = st->next;
        st->queued = false;
        st->closed = true;
        h2_body_release(st);
        if (st->req && st->dispatched) {
            h2_stream_abort(st); /* c stays: in_run is set */
        } else if (st->req) {
            request_free(st->req);
            st->req = NULL;
        }
        if (!st->req)
            h2_stream_free(st);
    }
    c->in_run = was_in_run;
}

static void h2_mark_draining(session *s) { conn_of(s)->draining = true; }

static void h2_drain(session *s)
{
    h2conn *c = conn_of(s);
    c->draining = true;
    if (c->closed)
        return;
    if (!c->goaway_sent) {
        /* Streams up to the last one seen are answered; later ones the
         * client may retry elsewhere (RFC 9113 §6.8). */
        c->goaway_sent = true;
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                              NGHTTP2_NO_ERROR, NULL, 0);
    }
    if (c->in_run) {
        h2_kick(c);
        return;
    }
    c->readable = true; /* what the client already sent is still answered */
    h2_run(c);
}

static void h2_abort(session *s)
{
    h2conn *c = conn_of(s);
    if (!c->closed)
        h2_close(c, false);
    /* Handlers without abort callbacks that still hold requests: the
     * server is going away, so the connection goes with it. */
    for (h2stream *st = c->streams; st; st = st->next) {
        request_free(st->req); /* its handle goes stale */
        st->req = NULL;
    }
    c->held = 0;
    if (!c->in_run)
        conn_free(c);
}

static const session_ops h2_session_ops = {h2_mark_draining, h2_drain, h2_abort};

/* nghttp2's memory, from malloc, noting which block is its frame buffer
 * (see H2_FRAMEBUF_MIN; nghttp2 1.52 makes it with realloc from NULL) so
 * an idle connection can trim it. */
static void note_block(h2conn *c, void *p, size_t size)
{
    if (p && c->creating && size >= H2_FRAMEBUF_MIN && !c->framebuf) {
        c->framebuf = p;
        c->framebuf_len = size;
    }
}

static void *ng_malloc(size_t size, void *user)
{
    void *p = malloc(size);
    note_block(user, p, size);
    return p;
}

static void ng_free(void *p, void *user)
{
    h2conn *c = user;
    if (p && p == c->framebuf)
        c->framebuf = NULL;
    free(p);
}

static void *ng_calloc(size_t n, size_t size, void *user) { return calloc(n, size); }

static void *ng_realloc(void *p, size_t size, void *user)
{
    h2conn *c = user;
    if (!p && c->creating && size >= H2_FRAMEBUF_MIN && !c->framebuf) {
        /* Page-aligned, so trimming it leaves no partly used page behind. */
        void *q;
        if (posix_memalign(&q, (size_t)sysconf(_SC_PAGESIZE), size) != 0)
            return NULL;
        note_block(c, q, size);
        return q;
    }
    void *q = realloc(p, size);
    if (q && p && p == c->framebuf)
        c->framebuf = NULL; /* not nghttp2's way with it: trim no more */
    return q;
}

bool h2_conn_new(server_t *srv, eddy_stream *stream, bool gated, uint16_t listener_tag,
                 const char *initial, size_t len, bool readable, bool peer_eof)
{
    if (!srv->h2_callbacks)
        return false;
    h2conn *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    c->listener = listener_tag;
    nghttp2_mem mem = {c, ng_malloc, ng_free, ng_calloc, ng_realloc}; /* nghttp2 keeps a copy */
    c->creating = true;
    int rv = nghttp2_session_server_new3(&c->ng, srv->h2_callbacks, c, srv->h2_option, &mem);
    c->creating = false;
    if (rv != 0) {
        free(c);
        return false;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, srv->max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* RFC 9218: the priority field and PRIORITY_UPDATE, not RFC 7540's tree. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(c->ng);
        free(c);
        return false;
    }
    c->srv = srv;
    c->session.ops = &h2_session_ops;
    c->stream = stream;
    c->gated = gated;
    c->writable = true;
    c->readable = readable || peer_eof;
    c->peer_eof = peer_eof;
    uint64_t now = now_ms(c);
    c->idle_since = c->last_input = c->last_sent = c->bucket_ms = now;
    c->reset_tokens = H2_RESET_BURST;
    c->control_tokens = H2_CONTROL_BURST;
    eddy_timer_init(&c->timer, on_timeout, c);
    if (eddy_timer_start(srv->loop, &c->timer, srv->keepalive_ms) < 0) {
        nghttp2_session_del(c->ng);
        free(c);
        return false;
    }
    stream->owner = c;
    stream->on_ready = on_ready;
    c->in_run = true; /* added to the list with its first bytes still to come */
    server_add_session(srv, &c->session);
    if (!c->closed && len && !feed(c, initial, len)) {
        h2_close(c, false);
    }
    c->in_run = false;
    if (c->closed) {
        if (c->held == 0)
            conn_free(c);
        return true; /* the stream was c's, and is closed */
    }
    h2_run(c);
    return true;
}
