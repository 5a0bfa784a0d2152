#include "http/conn.h"
#include "http/parser.h"
#include "http/response.h"
#include "http/server.h"
#include "core/buf.h"
#include "core/site.h"
#include "http2/h2.h"
#include "metrics/metrics.h"
#include "acme/challenge.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Owned input buffers start this small and grow as a partial request does. */
#define CONN_IN_MIN 512
/* Free room wanted in the owned buffer before a read into it. */
#define CONN_IN_READ_ROOM 4096
/* After its last answer a connection sends FIN and reads (and drops) what
 * the client still sends, so closing does not reset the connection and
 * destroy the answer before the client reads it.  Bounded in time and bytes. */
#define CONN_LINGER_MS 2000
#define CONN_LINGER_MAX_BYTES (1024 * 1024)

static void conn_run(conn *c);
static void conn_close(conn *c);
static void conn_linger(conn *c);
static bool output_pending(const conn *c);
static void conn_free(conn *c);
static void conn_mark_draining(session *s);
static void conn_drain(session *s);
static void conn_abort(session *s);
static conn *conn_of(session *s) { return (conn *)((char *)s - offsetof(conn, session)); }
static void flush(conn *c);
static void conn_hand_over(conn *c, const char *bytes, size_t len);

/* ------------------------------------------------------------- timeouts -- */

static void conn_timeout(conn *c)
{
    eddy_loop *loop = c->srv->loop;
    uint64_t now = eddy_loop_now(loop);
    /* The timer stays armed for the connection's whole life, parked at
     * "never" when nothing is due, so moving it is always a re-arm, which
     * cannot fail: no timeout is ever lost to a failed allocation.  Taken
     * back first, before anything here can arm other timers. */
    eddy_timer_start(loop, &c->timer, UINT64_MAX);
    bool kicked = c->kick;
    c->kick = false;
    if (c->deadline == CONN_NO_DEADLINE || now < c->deadline) {
        /* The deadline moved later since the timer was set, or a handler
         * holds the request (its time is its own): go on. */
        if (c->deadline != CONN_NO_DEADLINE)
            eddy_timer_start(loop, &c->timer, c->deadline - now);
        if (kicked)
            conn_run(c); /* last: it may free c */
        return;
    }
    /* Header, send and linger timeouts end the connection with a reset: a
     * client this slow gets no more of our resources, not even the kernel
     * buffers a graceful close would keep sending from.  An idle keep-alive
     * connection just closes. */
    if (c->phase != PHASE_IDLE || output_pending(c))
        stream_reset(c->stream);
    conn_close(c);
}

static void on_timeout(void *data)
{
    conn *c = data;
    eddy_server *srv = c->srv;
    server_enter(srv);
    conn_timeout(c);
    server_leave(srv);
}

/* The connection's one timer moves lazily: a request usually only pushes
 * its deadline later, which costs nothing here; the heap timer stays at
 * the earlier time and, when it fires early, is set again for the rest.
 * Only a deadline earlier than the armed one touches the heap. */
static void set_deadline(conn *c, uint64_t when)
{
    uint64_t now = eddy_loop_now(c->srv->loop);
    c->deadline = when;
    if (when < c->timer.deadline) /* armed since conn_new: a re-arm */
        eddy_timer_start(c->srv->loop, &c->timer, when > now ? when - now : 0);
}

static void arm(conn *c, unsigned ms) { set_deadline(c, eddy_loop_now(c->srv->loop) + ms); }

void conn_tunnel(conn *c)
{
    c->phase = PHASE_TUNNEL;
    c->deadline = CONN_NO_DEADLINE; /* the handler times the tunnel */
    conn_kick(c);
}

void conn_kick(conn *c)
{
    if (c->in_batch || c->kick || c->phase == PHASE_CLOSED)
        return; /* conn_run, on the stack or already due, writes it */
    c->kick = true;
    /* The connection's own timer, due now: no allocation, and closing the
     * connection cancels it. */
    eddy_timer_start(c->srv->loop, &c->timer, 0);
}

void conn_head_started(conn *c)
{
    /* The whole head must arrive within header_ms of its first byte,
     * however the bytes trickle in (slowloris). */
    c->wait_deadline = eddy_loop_now(c->srv->loop) + c->srv->header_ms;
    arm(c, c->srv->header_ms);
}

static void arm_wait_deadline(conn *c) { set_deadline(c, c->wait_deadline); }

/* --------------------------------------------------------------- output -- */

static bool output_pending(const conn *c)
{
    return c->out_off < c->out_len || c->file != NULL || c->srv->stage_owner == c;
}

/* Whether more bytes follow what is being written at once: a file still
 * to send, or a streamed body whose handler says more is coming.  The
 * transport then fills whole packets instead of sending a short one. */
static bool more_follows(const conn *c)
{
    const request *r = c->req;
    return c->file != NULL ||
           (r && r->streaming && r->stream_more && !r->stream_discard && r->stream_left != 0);
}

static ssize_t write_one(conn *c, const void *data, size_t len)
{
    struct iovec iov = {(void *)data, len};
    bool more = more_follows(c);
    ssize_t n = stream_writev(c->stream, &iov, 1, more);
    metrics_bytes_out(c->srv->front.metrics, n);
    if (n > 0)
        c->held = more;
    return n;
}

/* Keeps bytes the peer has not taken in the connection's own buffer. */
static void keep_output(conn *c, const char *data, size_t len)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (buf_grow(&c->out, &c->out_cap, (size_t)c->out_len + len, 1024) < 0) {
        c->broken = true; /* cannot keep the response: drop the connection */
        return;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += (uint32_t)len;
}

/* Writes what the stage holds for c; keeps what the peer did not take. */
static void flush_stage(conn *c)
{
    eddy_server *srv = c->srv;
    if (srv->stage_owner != c)
        return;
    size_t len = srv->stage_len;
    srv->stage_owner = NULL;
    srv->stage_len = 0;
    if (c->phase == PHASE_CLOSED)
        return;
    size_t done = 0;
    if (c->out_off == c->out_len && c->writable) {
        ssize_t n = write_one(c, srv->stage, len);
        if (n >= 0)
            done = (size_t)n;
        else if (n != -EAGAIN) {
            /* Not closed here: a response may be half assembled on the
             * stack above us.  flush() closes a broken connection. */
            c->broken = true;
            return;
        }
        if (done < len)
            c->writable = false;
        c->sent_some |= done > 0;
    }
    if (done < len)
        keep_output(c, srv->stage + done, len - done);
}

void conn_queue(conn *c, const void *data, size_t len)
{
    eddy_server *srv = c->srv;
    if (c->phase == PHASE_CLOSED || c->broken)
        return;
    if (c->out_off < c->out_len) {
        keep_output(c, data, len); /* already behind: keep order */
        return;
    }
    if (srv->stage_owner && srv->stage_owner != c)
        flush_stage(srv->stage_owner);
    if (srv->stage_len + len > sizeof(srv->stage)) {
        flush_stage(c);
        if (c->phase == PHASE_CLOSED)
            return;
        if (len > sizeof(srv->stage) || c->out_off < c->out_len) {
            keep_output(c, data, len);
            return;
        }
    }
    srv->stage_owner = c;
    memcpy(srv->stage + srv->stage_len, data, len);
    srv->stage_len += len;
}

void conn_queue_file(conn *c, body_file *f, off_t off, off_t len)
{
    if (c->phase == PHASE_CLOSED || c->broken || len == 0) {
        f->release(f);
        return;
    }
    c->file = f;
    c->file_off = off;
    c->file_left = len;
}

void conn_queue_file_parts(conn *c, body_file *f, file_parts *parts)
{
    if (c->phase == PHASE_CLOSED || c->broken) {
        f->release(f);
        free(parts);
        return;
    }
    c->file = f;
    c->parts = parts;
    c->file_left = 0; /* the first part starts when the output drains */
}

/* Sends from the file until the current range is done or the peer
 * stops taking bytes. */
static void send_file(conn *c)
{
    while (c->file_left > 0 && c->writable) {
        size_t chunk = c->file_left > (1 << 30) ? (1u << 30) : (size_t)c->file_left;
        ssize_t n = stream_sendfile(c->stream, c->file->fd, &c->file_off, chunk);
        metrics_bytes_out(c->srv->front.metrics, n);
        if (n == -EAGAIN) {
            c->writable = false;
            return;
        }
        if (n <= 0) {
            /* n == 0: the file shrank under us; the framing promised is
             * broken, so the connection must end. */
            conn_close(c);
            return;
        }
        c->sent_some = true;
        c->held = false; /* sendfile pushes what it sent */
        c->file_left -= n;
    }
}

/* Moves to the next part of a multi-part file body: its head bytes go to
 * the output buffer, its range becomes the current one. */
static bool next_part(conn *c)
{
    file_parts *fp = c->parts;
    if (!fp || fp->next == fp->n)
        return false;
    const file_part *p = &fp->part[fp->next++];
    if (p->head_len)
        keep_output(c, (const char *)&fp->part[fp->n] + p->head_off, p->head_len);
    c->file_off = p->off;
    c->file_left = p->len;
    return c->phase != PHASE_CLOSED;
}

static void end_file(conn *c)
{
    c->file->release(c->file);
    c->file = NULL;
    free(c->parts);
    c->parts = NULL;
}

static void write_out(conn *c)
{
    while (c->out_off < c->out_len && c->writable) {
        ssize_t n = write_one(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n == -EAGAIN) {
            c->writable = false;
            break;
        }
        if (n < 0) {
            conn_close(c);
            return;
        }
        c->out_off += (uint32_t)n;
        c->sent_some |= n > 0;
    }
    if (c->out_off == c->out_len && c->out) {
        c->out_off = c->out_len = 0;
        /* Drained: memory follows activity, but a stream still going
         * keeps its buffer for its next pieces (a large buffer is mapped
         * afresh, page by page, each time it is allocated). */
        if (c->req && c->req->streaming)
            return;
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
}

/* Sends everything queued for c as far as the peer takes it. */
static void flush(conn *c)
{
    c->sent_some = false;
    flush_stage(c);
    if (c->broken) {
        conn_close(c);
        return;
    }
    while (c->phase != PHASE_CLOSED) {
        write_out(c);
        if (c->phase == PHASE_CLOSED || c->out_len || !c->file)
            break;
        send_file(c);
        if (c->phase == PHASE_CLOSED || c->file_left > 0)
            break;
        if (!next_part(c))
            end_file(c);
    }
    if (c->phase == PHASE_CLOSED)
        return;
    if (output_pending(c)) {
        /* The peer must keep taking our bytes: the clock restarts only
         * when it took some, not each time more is queued (a stream that
         * keeps writing to a client that reads nothing must still end). */
        if (c->sent_some || !c->send_waiting)
            arm(c, c->req       ? request_send_ms(c->req, c->srv->send_ms)
                   : c->send_ms ? c->send_ms
                                : c->srv->send_ms);
        c->send_waiting = true;
        return;
    }
    c->send_waiting = false;
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    if (c->phase == PHASE_IDLE) {
        if (c->draining && c->in_len == 0 && !c->had_request) {
            conn_close(c); /* nothing asked yet: nothing to lose */
            return;
        }
        if (c->draining && c->in_len == 0) {
            /* Kept alive while the server drains: the client's next
             * request may be on its way (a busy client writes it as the
             * last answer arrives), and closing now would lose it.  One
             * more is answered, with Connection: close, for a short while. */
            uint64_t grace = eddy_loop_now(c->srv->loop) + CONN_DRAIN_IDLE_MS;
            if (grace < c->wait_deadline)
                c->wait_deadline = grace;
        }
        arm_wait_deadline(c); /* from when it went idle, not from now:
                                 empty lines must not keep it open */
    } else if (c->phase == PHASE_HEAD) {
        arm_wait_deadline(c); /* a send timeout may have replaced it */
    } else if (c->phase == PHASE_BODY) {
        if (c->req && c->req->body_paused && c->body_dispatched)
            c->deadline = CONN_NO_DEADLINE; /* its handler's to resume */
        else
            arm(c, request_body_ms(c->req, c->srv->header_ms));
    } else if (c->phase == PHASE_HANDLER || c->phase == PHASE_TUNNEL) {
        c->deadline = CONN_NO_DEADLINE; /* all sent: the handler's time again */
    }
}

/* ---------------------------------------------------------------- input -- */

/* True when c may parse and answer another request now. */
static bool can_proceed(const conn *c)
{
    if (c->phase == PHASE_TUNNEL) /* reading does not wait for writing */
        return !c->req->body_paused && !c->tunnel_eof && !c->broken && !c->srv->free_pending;
    if (c->phase == PHASE_BODY && c->req && c->req->body_paused)
        return false; /* its handler is not taking more body now */
    return !c->srv->free_pending && c->phase != PHASE_HANDLER && c->phase != PHASE_CLOSED && !c->fatal && !c->broken &&
           c->out_off == c->out_len && !c->file && !c->close_after_write;
}

static void dispatch(conn *c)
{
    request *r = c->req;
    c->deadline = CONN_NO_DEADLINE; /* the handler's time is its own */
    if (c->draining)
        r->keep_alive = false;
    if (r->method_id != METHOD_CONNECT && request_split_target(r) != 0) {
        response_error(c, 400);
        return;
    }
    site_dispatch(r);
}

/* Inside a streamed body: its head is complete (the handler runs, the
 * body waiting until it reads), or llhttp passed a piece of it.  False
 * when there was nothing to do. */
static bool body_event(conn *c)
{
    if (!c->body_dispatched) {
        c->body_dispatched = true;
        c->req->body_paused = true;
        dispatch(c);
        return true;
    }
    if (!c->piece_len)
        return false;
    const char *at = c->piece;
    size_t n = c->piece_len;
    c->piece_len = 0;
    request_body_piece(c->req, at, n);
    return true;
}

/* Parses [p, p+len); `region_end` is the end of the buffer holding them.
 * Returns the first byte not fed to the parser. */
/* After llhttp refused a method: decides between 501 (a token then SP: a
 * method eddy does not know, RFC 9110 §9.1) and 400 (not a request line),
 * once the bytes from the token's start to end show which.  False: wait
 * for more (the token may arrive a byte at a time). */
static bool decide_unknown_method(conn *c, const char *end)
{
    const char *q = c->req_base;
    while (q < end && field_is_tchar((unsigned char)*q))
        q++;
    if (q == end && (size_t)(end - c->req_base) < c->srv->max_request_line)
        return false;
    c->method_unknown = false;
    response_error(c, q < end && *q == ' ' && q > c->req_base ? 501 : 400);
    return true;
}

/* llhttp skips CR and LF before a request line, bare CRs included; RFC
 * 9112 §2.2 wants a bare CR treated as invalid, so eddy checks the empty
 * lines itself (a CR ending one read is remembered for the next). */
static bool has_bare_cr_before_request(conn *c, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (c->after_cr && p[i] != '\n')
            return true;
        if (p[i] != '\r' && p[i] != '\n')
            return false; /* the request line begins */
        c->after_cr = p[i] == '\r';
    }
    return false;
}

static const char *feed(conn *c, const char *p, size_t len)
{
    if (c->phase == PHASE_TUNNEL) {
        /* Not HTTP any more: every byte is the handler's. */
        if (c->req->body_paused)
            return p;
        request_body_piece(c->req, p, len);
        return p + len;
    }
    if (c->method_unknown) {
        decide_unknown_method(c, p + len);
        return p + len;
    }
    /* After a streamed body's piece llhttp may owe a step that needs no
     * byte (the message's end): it gets one more call, with none; if the
     * handler paused the body in that piece, once it resumes. */
    bool step = c->step_owed;
    c->step_owed = false;
    while ((len || step) && can_proceed(c)) {
        step = false;
        if (len && !c->req_base && has_bare_cr_before_request(c, p, len)) {
            response_error(c, 400);
            return p + len;
        }
        llhttp_errno_t err = llhttp_execute(&c->parser, p, len);
        if (err == HPE_OK)
            return p + len;
        if (err == HPE_INVALID_METHOD && !c->parse_status) {
            /* Where the token began: its kept bytes, or this read. */
            const char *at = llhttp_get_error_pos(&c->parser);
            if (!c->req_base || c->req_base > at) {
                c->req_base = at;
                while (c->req_base > p && field_is_tchar((unsigned char)c->req_base[-1]))
                    c->req_base--;
            }
            c->method_unknown = true;
            decide_unknown_method(c, p + len);
            return p + len;
        }
        if (err != HPE_PAUSED && c->parse_status == PARSE_H2_PREFACE) {
            /* The preface and all after it are HTTP/2's: they go on, from
             * where the request line began, in the same buffer. */
            conn_hand_over(c, c->req_base, (size_t)(p + len - c->req_base));
            return p + len;
        }
        if (err != HPE_PAUSED) {
            response_error(c, parser_error_status(c));
            return p + len; /* framing is lost: the rest is never parsed */
        }
        const char *pos = llhttp_get_error_pos(&c->parser);
        if (!c->head_len_known) {
            /* No body, or a streamed one's head: the head ends here. */
            c->req->head_len = (uint32_t)(pos - c->req_base);
            c->head_len_known = true;
        }
        len -= (size_t)(pos - p);
        p = pos;
        llhttp_resume(&c->parser);
        if (c->phase == PHASE_BODY) {
            /* A streamed body: its head, or a piece.  Only progress earns
             * the extra step, so it can never spin. */
            step = body_event(c);
        }
        else if (c->stream_body)
            request_body_piece(c->req, NULL, 0); /* its end */
        else
            dispatch(c);
    }
    c->step_owed = step && c->phase == PHASE_BODY;
    return p;
}

/* After feeding a region, keeps what must outlive it in c->in:
 * the current request's head (its spans point there) and unparsed bytes. */
static void keep_input(conn *c, const char *region, const char *region_end, const char *unparsed)
{
    const char *start = unparsed, *end = region_end;
    bool have_req = c->req_base && (c->phase == PHASE_HEAD || c->phase == PHASE_BODY ||
                                    (c->phase == PHASE_HANDLER && c->req));
    if (!c->req_base && c->phase == PHASE_HEAD && !c->fatal) {
        /* A method llhttp is still matching has no span yet; keep its
         * bytes (the trailing token chars) so an unknown method can be
         * told from garbage once it ends. */
        const char *q = unparsed;
        while (q > region && field_is_tchar((unsigned char)q[-1]))
            q--;
        if (q < unparsed) {
            c->req_base = q;
            have_req = true;
        }
    }
    if (!c->fatal && have_req && c->in && region != c->in && c->req_base == c->in) {
        /* Body bytes read into the scratch (see read_some): the head stays
         * where it is, and whatever the parser left (a pipelined request
         * behind one a handler holds) goes after it. */
        size_t rest = (size_t)(region_end - unparsed);
        if (buf_grow(&c->in, &c->in_cap, (size_t)c->req->head_len + rest, CONN_IN_MIN) < 0) {
            conn_close(c);
            return;
        }
        c->req_base = c->in;
        memcpy(c->in + c->req->head_len, unparsed, rest);
        c->in_len = c->req->head_len + (uint32_t)rest;
        c->in_unparsed = c->req->head_len;
        return;
    }
    if (c->fatal)
        start = end = unparsed; /* nothing more will be parsed */
    else if (have_req && c->req_base >= region && c->req_base <= region_end) {
        start = c->req_base;
        if (c->phase == PHASE_BODY && unparsed == region_end) {
            /* Body bytes already consumed are dropped; the head stays. */
            if (!c->head_len_known) {
                c->req->head_len = (uint32_t)(region_end - c->req_base);
                c->head_len_known = true;
            }
            end = c->req_base + c->req->head_len;
        }
    }
    size_t keep = (size_t)(end - start);
    size_t unparsed_off = unparsed >= start ? (size_t)(unparsed - start) : 0;
    if (unparsed_off > keep)
        unparsed_off = keep; /* body bytes dropped: all of what is kept is parsed */
    if (keep == 0) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = c->in_unparsed = 0;
        if (!have_req || c->fatal)
            c->req_base = NULL;
        return;
    }
    if (region == c->in) {
        memmove(c->in, start, keep);
    } else {
        if (buf_grow(&c->in, &c->in_cap, keep, CONN_IN_MIN) < 0) {
            conn_close(c);
            return;
        }
        memcpy(c->in, start, keep);
    }
    if (have_req && start == c->req_base)
        c->req_base = c->in;
    c->in_len = (uint32_t)keep;
    c->in_unparsed = (uint32_t)unparsed_off;
}

/* Reads once into the right buffer; returns bytes read or -errno / 0. */
static ssize_t read_some(conn *c, char **region)
{
    eddy_server *srv = c->srv;
    /* Inside a body, with only the head kept: body bytes need not follow
     * it, so they are read in the loop's scratch, 64 KiB at a time, and
     * keep_input() keeps the head in place. */
    bool body_in_scratch = c->phase == PHASE_BODY && c->head_len_known && c->req_base == c->in &&
                           c->in_len == c->req->head_len && c->in_unparsed == c->in_len;
    if (c->in_len && !body_in_scratch) {
        /* A partial request continues contiguously after what we kept. */
        size_t limit = srv->max_header_bytes + CONN_IN_READ_ROOM;
        size_t want = c->in_len + CONN_IN_READ_ROOM;
        if (c->phase == PHASE_HEAD && want > limit)
            want = limit;
        size_t base_off = c->req_base ? (size_t)(c->req_base - c->in) : 0;
        if (buf_grow(&c->in, &c->in_cap, want, CONN_IN_MIN) < 0)
            return -ENOMEM;
        if (c->req_base)
            c->req_base = c->in + base_off; /* realloc may have moved it */
        if (c->in_cap == c->in_len)
            return -ENOBUFS;
        *region = c->in;
        ssize_t n = stream_read(c->stream, c->in + c->in_len, c->in_cap - c->in_len);
        metrics_bytes_in(srv->front.metrics, n);
        if (n > 0 && (size_t)n < c->in_cap - c->in_len && !c->peer_eof)
            c->readable = false; /* a short read drained the socket */
        return n;
    }
    size_t cap;
    char *scratch = loop_scratch(srv->loop, &cap);
    *region = scratch;
    ssize_t n = stream_read(c->stream, scratch, cap);
    metrics_bytes_in(srv->front.metrics, n);
    /* A short read drained the socket, so reading again would only say
     * EAGAIN; unless the peer half-closed, when it says EOF and no new
     * event would tell us. */
    if (n > 0 && (size_t)n < cap && !c->peer_eof)
        c->readable = false;
    return n;
}

static bool head_too_large(const conn *c, const char *region_end)
{
    return c->phase == PHASE_HEAD && c->req_base &&
           (size_t)(region_end - c->req_base) > c->srv->max_header_bytes;
}

static void on_eof(conn *c, ssize_t err)
{
    if (err == 0 && c->phase == PHASE_TUNNEL) {
        /* The client sends no more; the handler may still send. */
        c->tunnel_eof = true;
        request_body_piece(c->req, NULL, 0);
        return;
    }
    if (err == 0 && c->phase == PHASE_IDLE && output_pending(c)) {
        /* Half-closed after its last request: finish sending, then close. */
        c->close_after_write = true;
        return;
    }
    conn_close(c);
}

/* Feeds bytes kept in c->in that were not parsed yet: those that arrived
 * behind a request a handler answered later, or behind blocked output. */
static void feed_buffered(conn *c)
{
    char *end = c->in + c->in_len;
    const char *rest = feed(c, c->in + c->in_unparsed, c->in_len - c->in_unparsed);
    if (c->phase == PHASE_CLOSED)
        return;
    if (head_too_large(c, end)) {
        response_error(c, 431);
        rest = end;
    }
    keep_input(c, c->in, end, rest);
}

/* Reads once and feeds what came.  Returns false when reading must stop. */
static bool read_and_feed(conn *c)
{
    char *region;
    ssize_t n = read_some(c, &region);
    if (n == -EAGAIN) {
        c->readable = false;
        return false;
    }
    if (n == -ENOBUFS) {
        response_error(c, 431);
        return false;
    }
    if (n <= 0) {
        on_eof(c, n);
        return false;
    }
    char *start = region == c->in ? c->in + c->in_len : region;
    char *end = start + n;
    if (!c->alpn_checked) {
        c->alpn_checked = true;
        if (c->srv->h2_callbacks && stream_alpn_is(c->stream, "h2", 2)) {
            conn_hand_over(c, start, (size_t)n); /* TLS chose HTTP/2 */
            return false;
        }
        if (stream_alpn_is(c->stream, ACME_ALPN_PROTOCOL, sizeof(ACME_ALPN_PROTOCOL) - 1)) {
            conn_close(c); /* an ACME validation: no HTTP follows (RFC 8737 §3) */
            return false;
        }
    }
    if (region == c->in)
        c->in_len += (uint32_t)n;
    if (c->phase == PHASE_BODY)
        arm(c, request_body_ms(c->req, c->srv->header_ms)); /* a body must keep moving */
    const char *rest = feed(c, start, (size_t)n);
    if (c->phase == PHASE_CLOSED)
        return false;
    if (head_too_large(c, end)) {
        response_error(c, 431);
        rest = end;
    }
    keep_input(c, region, end, rest);
    return true;
}

/* Writes what is queued, parses what is buffered, reads more while the
 * peer sends it, and answers, until the connection must wait.  Answers to
 * everything one read delivered leave together in one write. */
static void conn_run(conn *c)
{
    c->in_batch = true;
    while (c->phase != PHASE_CLOSED) {
        if (output_pending(c)) {
            flush(c);
            if (c->phase == PHASE_CLOSED ||
                (output_pending(c) && c->phase != PHASE_TUNNEL))
                break; /* the peer must take our answers before we read on */
        }
        if (c->body_end_due && c->req) {
            c->body_end_due = false;
            request_body_piece(c->req, NULL, 0);
            continue;
        }
        if (c->req && c->req->drain_wanted && !output_pending(c) &&
            (c->phase == PHASE_HANDLER || c->phase == PHASE_TUNNEL ||
             (c->phase == PHASE_BODY && c->body_dispatched))) {
            /* A stream's buffer has drained: its handler may write again. */
            c->req->drain_wanted = false;
            if (c->req->on_drain) {
                c->req->on_drain(c->req->drain_data);
                continue;
            }
        }
        if (!can_proceed(c))
            break;
        if (c->in_unparsed < c->in_len || c->step_owed)
            feed_buffered(c);
        else if (!c->readable || !read_and_feed(c))
            break;
    }
    if (c->phase != PHASE_CLOSED)
        flush(c);
    c->in_batch = false;
    if (c->phase == PHASE_CLOSED && (!c->zombie || !c->req))
        conn_free(c);
}

/* Drops what the client still sends until it closes, or the bounds hit. */
static void linger_drain(conn *c)
{
    size_t cap;
    char *scratch = loop_scratch(c->srv->loop, &cap);
    while (c->readable && c->phase == PHASE_LINGER) {
        ssize_t n = stream_read(c->stream, scratch, cap);
        metrics_bytes_in(c->srv->front.metrics, n);
        if (n == -EAGAIN) {
            c->readable = false;
            return;
        }
        if (n <= 0 || (c->body_bytes += (uint64_t)n) > CONN_LINGER_MAX_BYTES) {
            conn_close(c);
            return;
        }
    }
}

static void conn_linger(conn *c)
{
    if (c->phase == PHASE_LINGER)
        return;
    /* Linger only when the client may still be sending: after an error
     * (it may be mid-body or mid-pipeline), or with requests left unread.
     * A client that asked to close after a complete request sends nothing
     * more, so the socket closes cleanly at once. */
    bool may_send = c->fatal || c->in_unparsed < c->in_len;
    if (c->peer_eof || !may_send) {
        conn_close(c);
        return;
    }
    stream_shutdown_write(c->stream);
    c->phase = PHASE_LINGER;
    c->body_bytes = 0;
    c->readable = true;
    arm(c, CONN_LINGER_MS);
    linger_drain(c);
}

static void conn_ready(conn *c, unsigned events)
{
    if (events & STREAM_HUP) {
        conn_close(c); /* reset: nothing can be delivered any more */
        return;
    }
    if (events & STREAM_READABLE)
        c->readable = true;
    if (events & STREAM_RDHUP)
        c->peer_eof = true;
    if (c->phase == PHASE_LINGER) {
        linger_drain(c);
        return;
    }
    if (events & STREAM_WRITABLE)
        c->writable = true;
    if (c->phase == PHASE_HANDLER && !output_pending(c))
        return; /* input waits until the handler answers */
    conn_run(c);
}

/* Entries from the loop are marked, so a server freed from a callback
 * beneath them is freed once they return (server_leave). */
static void on_ready(eddy_stream *s, unsigned events)
{
    conn *c = s->owner;
    eddy_server *srv = c->srv;
    server_enter(srv);
    conn_ready(c, events);
    server_leave(srv);
}

/* ------------------------------------------------------------ lifecycle -- */

/* Sets c's request; a connection holding one is busy, else idle (metrics). */
static void set_req(conn *c, request *r)
{
    if (!c->req != !r)
        metrics_busy(c->srv->front.metrics, r ? 1 : -1);
    c->req = r;
}

int conn_request_begin(conn *c)
{
    request_free(c->req);
    set_req(c, request_new(&c->srv->front, &conn_proto, c, &c->req_base));
    if (!c->req)
        return -ENOMEM;
    c->req->secure = c->stream->ops->secure;
    c->req->listener = c->listener;
    return 0;
}

static const session_ops conn_session_ops = {conn_mark_draining, conn_drain, conn_abort};

conn *conn_from_session(session *s)
{
    return s->ops == &conn_session_ops ? conn_of(s) : NULL;
}

conn *conn_new(server_t *srv, eddy_stream *stream, bool gated)
{
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->session.ops = &conn_session_ops;
    c->gated = gated;
    c->stream = stream;
    c->phase = PHASE_IDLE;
    c->writable = true; /* a new connection can take bytes */
    stream->owner = c;
    stream->on_ready = on_ready;
    parser_start(c);
    eddy_timer_init(&c->timer, on_timeout, c);
    /* The first request is held to the header timeout from the start:
     * a connection that never sends anything is closed by it too.  The
     * timer is armed here, where failing can refuse the connection, and
     * stays armed until it closes (on_timeout). */
    c->wait_deadline = eddy_loop_now(srv->loop) + srv->header_ms;
    c->deadline = c->wait_deadline;
    if (eddy_timer_start(srv->loop, &c->timer, srv->header_ms) < 0) {
        stream->owner = NULL;
        stream->on_ready = NULL;
        free(c);
        return NULL;
    }
    return c;
}

static void conn_free(conn *c)
{
    request_free(c->req);
    set_req(c, NULL);
    free(c->in);
    server_session_freed(c->srv, &c->session, c->gated);
    free(c);
}

/* A handler has c's request (answered ones are gone). */
static bool conn_holds(const conn *c)
{
    return c->req && (c->phase == PHASE_HANDLER || c->phase == PHASE_TUNNEL ||
                      (c->phase == PHASE_BODY && c->body_dispatched));
}

static void conn_close(conn *c)
{
    if (c->phase == PHASE_CLOSED)
        return;
    eddy_server *srv = c->srv;
    bool held = conn_holds(c);
    c->phase = PHASE_CLOSED;
    eddy_timer_stop(srv->loop, &c->timer);
    if (srv->stage_owner == c) {
        srv->stage_owner = NULL;
        srv->stage_len = 0;
    }
    stream_close(c->stream);
    c->stream = NULL;
    if (c->file != NULL)
        end_file(c);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
    if (held) {
        c->req->aborted = true;
        eddy_callback cb = c->req->on_abort;
        if (cb) {
            c->req->on_abort = NULL;
            cb(c->req->abort_data); /* the handler lets go of the request */
            request_free(c->req);   /* and its handle goes stale */
            set_req(c, NULL);
            held = false;
        }
    }
    /* A handler still holding the request answers later; the connection
     * (and the head its views point into) lives until then. */
    c->zombie = held;
    if (!held && !c->in_batch)
        conn_free(c);
    /* else conn_run, which is on the stack, frees it on its way out. */
}

/* HTTP/2 was found on the connection: its stream, gate slot and the bytes
 * read so far go to an HTTP/2 connection, and this one ends without
 * touching the stream. */
static void conn_hand_over(conn *c, const char *bytes, size_t len)
{
    eddy_stream *stream = c->stream;
    bool gated = c->gated;
    eddy_timer_stop(c->srv->loop, &c->timer);
    if (c->srv->stage_owner == c) {
        c->srv->stage_owner = NULL;
        c->srv->stage_len = 0;
    }
    c->phase = PHASE_CLOSED;
    c->stream = NULL;
    c->gated = false;
    if (!h2_conn_new(c->srv, stream, gated, c->listener, bytes, len, c->readable, c->peer_eof)) {
        c->gated = gated;
        stream_close(stream);
    }
    /* conn_run, on the stack, frees c on its way out. */
}

static void conn_abort(session *s)
{
    conn *c = conn_of(s);
    if (c->phase == PHASE_CLOSED) { /* a zombie: only the handler held it */
        /* A callback registered after the client left is told now: the
         * handler lets go, as for every request still pending. */
        eddy_callback cb = c->req ? c->req->on_abort : NULL;
        if (cb) {
            c->zombie = false; /* an answer from cb must not free c (conn_finish) */
            c->req->on_abort = NULL;
            cb(c->req->abort_data);
        }
        conn_free(c);
        return;
    }
    /* conn_close frees c unless a handler holds its request without an
     * abort callback (one with a callback is told, and lets go). */
    bool zombie = conn_holds(c) && !c->req->on_abort;
    conn_close(c);
    if (zombie)
        conn_free(c);
}

static void conn_mark_draining(session *s) { conn_of(s)->draining = true; }

static void conn_drain(session *s)
{
    conn *c = conn_of(s);
    c->draining = true;
    if (c->in_batch || c->phase != PHASE_IDLE || output_pending(c) || c->in_len)
        return; /* closes once its request in flight is answered */
    /* Idle as far as we know, but a request may be waiting unread in the
     * socket (its event not handled yet): read once; conn_run answers what
     * is there with Connection: close, or gives it CONN_DRAIN_IDLE_MS. */
    c->readable = true;
    conn_run(c);
}

/* ------------------------------------------------------- proto_ops -- */

/* The core is done with the request: its response is fully queued (or
 * dropped, the client having left). */
static void conn_finish(request *r)
{
    conn *c = r->conn;
    /* Answered before its streamed body ended: the rest is not read, and
     * nothing after it parsed; the client may still be sending it, so the
     * close lingers (see conn_linger) rather than reset the answer away. */
    bool keep_alive = r->keep_alive && c->phase != PHASE_BODY && c->phase != PHASE_TUNNEL;
    if (c->phase == PHASE_BODY || c->phase == PHASE_TUNNEL)
        c->fatal = true; /* nothing after it is parsed */
    /* The answer is queued: the request is done with, its handle stale;
     * what is left of the answer keeps its path's send timeout. */
    c->send_ms = request_send_ms(r, 0);
    request_free(r);
    set_req(c, NULL);
    c->had_request = true;
    if (c->phase == PHASE_CLOSED) {
        /* Answered after the client left: just release. */
        if (c->zombie && !c->in_batch)
            conn_free(c);
        return;
    }
    if (!keep_alive || c->draining)
        c->close_after_write = true;
    c->phase = PHASE_IDLE;
    c->req_base = NULL;
    c->wait_deadline = eddy_loop_now(c->srv->loop) + c->srv->keepalive_ms;
    conn_kick(c); /* answered later: written, and the input gone on with,
                     on the next turn rather than beneath the handler */
}

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* Fields straight from the head's lines, which llhttp and the parser glue
 * have already checked: *it is the offset of the next line. */
static bool conn_field_next(const request *r, size_t *it, eddy_str *name, eddy_str *value)
{
    const conn *c = r->conn;
    const char *base = *r->base;
    if (!base || !c->head_len_known)
        return false;
    const char *end = base + r->head_len;
    const char *line;
    if (*it == 0) {
        const char *nl = memchr(base, '\n', r->head_len);
        if (!nl)
            return false;
        line = nl + 1;
    } else {
        line = base + *it;
    }
    if (line >= end)
        return false;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol || eol - line <= 1)
        return false; /* the empty line ends the head */
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (!colon)
        return false;
    const char *v = colon + 1, *ve = eol;
    while (v < ve && is_ows(*v))
        v++;
    while (ve > v && (ve[-1] == '\r' || is_ows(ve[-1])))
        ve--;
    *name = (eddy_str){line, (size_t)(colon - line)};
    *value = (eddy_str){v, (size_t)(ve - v)};
    *it = (size_t)(eol + 1 - base);
    return true;
}

static void conn_peer_name(const request *r, char *buf, size_t len)
{
    conn *c = r->conn;
    stream_peer_cached(c->stream, &c->peer, buf, len);
}

static const char *conn_tls_version(const request *r)
{
    const conn *c = r->conn;
    return stream_tls_version(c->stream);
}

/* The handler started reading its body, or paused or resumed it. */
static void conn_body_flow(request *r)
{
    conn *c = r->conn;
    if (c->phase == PHASE_CLOSED)
        return;
    if (c->phase == PHASE_TUNNEL) {
        if (!r->body_paused)
            conn_kick(c); /* input kept or waiting in the socket goes on */
        return;
    }
    if (!c->stream_body) {
        /* Not streamed: the body (if any) was dropped or kept whole, so
         * its end is all there is to tell, on the next turn. */
        if (r->body_fn && !r->body_paused) {
            c->body_end_due = true;
            conn_kick(c);
        }
        return;
    }
    if (r->body_paused) {
        if (c->phase == PHASE_BODY)
            c->deadline = CONN_NO_DEADLINE; /* not timed out while paused */
        return;
    }
    if (c->continue_pending) {
        c->continue_pending = false;
        conn_queue(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (c->phase == PHASE_BODY)
        arm(c, request_body_ms(c->req, c->srv->header_ms)); /* the client must keep sending */
    conn_kick(c);
}

static size_t conn_buffered(const request *r)
{
    const conn *c = r->conn;
    return (size_t)(c->out_len - c->out_off) + (c->srv->stage_owner == c ? c->srv->stage_len : 0);
}

/* A stream's handler has nothing more at once: a partial packet held
 * for it goes now.  Output still queued goes with the next write, which
 * no longer says more follows. */
static void conn_stream_push(request *req)
{
    conn *c = req->conn;
    if (c->held && c->phase != PHASE_CLOSED && !output_pending(c)) {
        c->held = false;
        stream_push(c->stream);
    }
}

const proto_ops conn_proto = {
    .respond = response_h1,
    .finish = conn_finish,
    .stream_head = response_h1_stream_head,
    .stream_data = response_h1_stream_data,
    .stream_end = response_h1_stream_end,
    .tunnel = response_h1_tunnel,
    .buffered = conn_buffered,
    .stream_push = conn_stream_push,
    .body_flow = conn_body_flow,
    .field_next = conn_field_next,
    .peer_name = conn_peer_name,
    .tls_version = conn_tls_version,
};
