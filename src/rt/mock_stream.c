#include "rt/mock_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum piece_kind { PIECE_DATA, PIECE_EAGAIN, PIECE_EOF };

typedef struct piece {
    enum piece_kind kind;
    bool quiet_next; /* the next piece was told of with this one (a FIN) */
    size_t len, pos;
    struct piece *next;
    char data[];
} piece;

struct mock_stream {
    eddy_stream base;
    piece *head, *tail;
    bool eof, reset, closed, write_blocked, write_shut, reset_by_us;
    eddy_deferred notify; /* readiness, told on the next turn */
    unsigned pending_events;
    size_t write_max, reset_after;
    bool reset_after_set;
    char *out;
    size_t out_len, out_cap;
    size_t write_calls;
    size_t held;          /* bytes written with `more` since a write without it or a push */
    size_t pushes;
    size_t peer_asks;
    const char *alpn;     /* what a secure mock says ALPN chose; NULL: none */
};

static void notify(void *data)
{
    mock_stream *m = data;
    unsigned ev = m->pending_events;
    m->pending_events = 0;
    if (!m->closed && m->base.on_ready && ev)
        m->base.on_ready(&m->base, ev);
}

static void signal_ready(mock_stream *m, unsigned events)
{
    m->pending_events |= events;
    if (!m->closed)
        eddy_defer(m->base.loop, &m->notify);
}

static void push_piece(mock_stream *m, enum piece_kind kind, const void *data, size_t len)
{
    piece *p = calloc(1, sizeof(*p) + len);
    if (!p)
        abort(); /* test harness: nothing sensible to do */
    p->kind = kind;
    p->len = len;
    if (len)
        memcpy(p->data, data, len);
    if (m->tail)
        m->tail->next = p;
    else
        m->head = p;
    m->tail = p;
    signal_ready(m, STREAM_READABLE);
}

void mock_push(mock_stream *m, const void *data, size_t len) { push_piece(m, PIECE_DATA, data, len); }
void mock_push_str(mock_stream *m, const char *s) { mock_push(m, s, strlen(s)); }
void mock_push_bytewise(mock_stream *m, const char *s)
{
    for (; *s; s++)
        mock_push(m, s, 1);
}
void mock_push_eagain(mock_stream *m) { push_piece(m, PIECE_EAGAIN, NULL, 0); }
void mock_push_eof(mock_stream *m) { push_piece(m, PIECE_EOF, NULL, 0); }
void mock_push_last(mock_stream *m, const void *data, size_t len)
{
    push_piece(m, PIECE_DATA, data, len);
    m->tail->quiet_next = true;
    push_piece(m, PIECE_EOF, NULL, 0);
    signal_ready(m, STREAM_RDHUP);
}
void mock_push_reset(mock_stream *m)
{
    /* A reset discards whatever was still in flight. */
    m->reset = true;
    signal_ready(m, STREAM_HUP | STREAM_READABLE | STREAM_WRITABLE);
}

/* Drops the head piece; the next one "arrives" after this read, as it
 * would on a socket, so the owner hears about it. */
static void pop_piece(mock_stream *m)
{
    piece *p = m->head;
    bool quiet = p->quiet_next;
    m->head = p->next;
    if (!m->head)
        m->tail = NULL;
    free(p);
    if (m->head && !quiet)
        signal_ready(m, STREAM_READABLE);
}

static ssize_t mock_read(eddy_stream *s, void *buf, size_t len)
{
    mock_stream *m = (mock_stream *)s;
    if (m->reset)
        return -ECONNRESET;
    piece *p = m->head;
    if (!p)
        return m->eof ? 0 : -EAGAIN;
    switch (p->kind) {
    case PIECE_EOF:
        m->eof = true;
        return 0;
    case PIECE_EAGAIN:
        pop_piece(m);
        return -EAGAIN;
    case PIECE_DATA:
        break;
    }
    size_t n = p->len - p->pos < len ? p->len - p->pos : len;
    memcpy(buf, p->data + p->pos, n);
    p->pos += n;
    if (p->pos == p->len)
        pop_piece(m);
    return (ssize_t)n;
}

static ssize_t take_output(mock_stream *m, const char *data, size_t len)
{
    if (m->out_len + len > m->out_cap) {
        size_t cap = m->out_cap ? m->out_cap : 4096;
        while (cap < m->out_len + len)
            cap *= 2;
        char *out = realloc(m->out, cap);
        if (!out)
            abort();
        m->out = out;
        m->out_cap = cap;
    }
    memcpy(m->out + m->out_len, data, len);
    m->out_len += len;
    return (ssize_t)len;
}

/* How many bytes one write may take now, or a negative errno. */
static ssize_t write_budget(mock_stream *m, size_t want)
{
    m->write_calls++;
    if (m->reset || m->closed)
        return -ECONNRESET;
    if (m->write_shut)
        return -EPIPE;
    if (m->write_blocked)
        return -EAGAIN;
    if (m->reset_after_set) {
        if (m->reset_after == 0) {
            m->reset = true;
            return -ECONNRESET;
        }
        if (want > m->reset_after)
            want = m->reset_after;
    }
    if (m->write_max && want > m->write_max)
        want = m->write_max;
    return (ssize_t)want;
}

static void spend_budget(mock_stream *m, size_t want, size_t n)
{
    if (m->reset_after_set) {
        m->reset_after -= n;
        if (m->reset_after == 0 && want > n) {
            /* The peer took its share and reset: the socket reports it. */
            m->reset = true;
            signal_ready(m, STREAM_HUP | STREAM_READABLE | STREAM_WRITABLE);
            return;
        }
    }
    if (n < want)
        signal_ready(m, STREAM_WRITABLE); /* the peer drains; room comes back */
}

static ssize_t mock_writev(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more)
{
    mock_stream *m = (mock_stream *)s;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    ssize_t budget = write_budget(m, total);
    if (budget < 0)
        return budget;
    size_t left = (size_t)budget;
    for (int i = 0; i < iovcnt && left; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        take_output(m, iov[i].iov_base, n);
        left -= n;
    }
    /* As a socket: MSG_MORE holds what was written until a write without
     * it (or a push) sends it along. */
    m->held = more ? m->held + (size_t)budget : 0;
    spend_budget(m, total, (size_t)budget);
    return budget;
}

static ssize_t mock_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    mock_stream *m = (mock_stream *)s;
    ssize_t budget = write_budget(m, len);
    if (budget <= 0)
        return budget;
    char buf[16384];
    size_t want = (size_t)budget < sizeof(buf) ? (size_t)budget : sizeof(buf);
    ssize_t n = pread(fd, buf, want, *off);
    if (n < 0)
        return -errno;
    take_output(m, buf, (size_t)n);
    m->held = 0; /* sendfile ends with what it sent pushed */
    spend_budget(m, len, (size_t)n);
    *off += n;
    return n;
}

static void mock_reset_stream(eddy_stream *s)
{
    mock_stream *m = (mock_stream *)s;
    m->reset_by_us = true;
}

static void mock_shutdown_write(eddy_stream *s)
{
    mock_stream *m = (mock_stream *)s;
    m->write_shut = true;
}

static void mock_close(eddy_stream *s)
{
    mock_stream *m = (mock_stream *)s;
    m->closed = true;
}

static void mock_peer_addr(eddy_stream *s, peer_addr *out)
{
    ((mock_stream *)s)->peer_asks++;
    memset(out, 0, sizeof(*out));
    out->bytes[10] = out->bytes[11] = 0xff;
    inet_pton(AF_INET, MOCK_PEER, out->bytes + 12);
}

size_t mock_peer_asks(const mock_stream *m) { return m->peer_asks; }

static size_t mock_alpn(eddy_stream *s, const unsigned char **proto)
{
    const mock_stream *m = (const mock_stream *)s;
    *proto = (const unsigned char *)(m->alpn ? m->alpn : "");
    return m->alpn ? strlen(m->alpn) : 0;
}

/* A secure mock speaks what TLS streams mostly do. */
static const char *mock_tls_version(eddy_stream *s)
{
    (void)s;
    return "TLSv1.3";
}

static void mock_push_held(eddy_stream *s)
{
    mock_stream *m = (mock_stream *)s;
    m->pushes++;
    m->held = 0;
}

static const stream_ops mock_ops = {mock_read, mock_writev, mock_sendfile, mock_reset_stream,
                                    mock_shutdown_write, mock_close, mock_peer_addr, false, NULL, NULL,
                                    mock_push_held};
/* The same, standing for a TLS stream's plaintext side. */
static const stream_ops mock_secure_ops = {mock_read,      mock_writev, mock_sendfile,
                                           mock_reset_stream, mock_shutdown_write, mock_close,
                                           mock_peer_addr, true, mock_alpn, mock_tls_version,
                                           mock_push_held};

void mock_set_secure(mock_stream *m, bool secure)
{
    m->base.ops = secure ? &mock_secure_ops : &mock_ops;
}

void mock_set_alpn(mock_stream *m, const char *proto)
{
    m->alpn = proto;
}

mock_stream *mock_stream_new(eddy_loop *loop)
{
    mock_stream *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->base.ops = &mock_ops;
    m->base.loop = loop;
    eddy_deferred_init(&m->notify, notify, m);
    /* A fresh socket is writable; tell the owner as epoll would. */
    signal_ready(m, STREAM_WRITABLE);
    return m;
}

eddy_stream *mock_stream_base(mock_stream *m) { return &m->base; }

void mock_stream_free(mock_stream *m)
{
    if (!m)
        return;
    eddy_defer_cancel(m->base.loop, &m->notify);
    for (piece *p = m->head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    free(m->out);
    free(m);
}

void mock_set_write_max(mock_stream *m, size_t max) { m->write_max = max; }
void mock_block_writes(mock_stream *m, bool blocked)
{
    m->write_blocked = blocked;
    if (!blocked)
        signal_ready(m, STREAM_WRITABLE);
}
void mock_reset_after(mock_stream *m, size_t bytes)
{
    m->reset_after_set = true;
    m->reset_after = bytes;
}
const char *mock_output(const mock_stream *m, size_t *len)
{
    *len = m->out_len;
    return m->out ? m->out : "";
}
void mock_clear_output(mock_stream *m) { m->out_len = 0; }
bool mock_closed(const mock_stream *m) { return m->closed; }
bool mock_write_shut(const mock_stream *m) { return m->write_shut; }
bool mock_reset_by_owner(const mock_stream *m) { return m->reset_by_us; }
size_t mock_write_calls(const mock_stream *m) { return m->write_calls; }
size_t mock_held(const mock_stream *m) { return m->held; }
size_t mock_pushes(const mock_stream *m) { return m->pushes; }
