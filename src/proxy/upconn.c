/* Connections to backends: a non-blocking connect watched by the loop,
 * then a stream like a client's (io_uring or epoll), kept alive between
 * requests in a per-backend pool.  A kept connection holds no buffer. */
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What an upconn's events mean depends on who holds it (proxy.c, health.c). */
void proxy_upconn_ready(upconn *uc, unsigned events);
void proxy_upconn_connected(upconn *uc, int err);
void proxy_upconn_timeout(upconn *uc);
void health_ready(upconn *uc, unsigned events);
void health_connected(upconn *uc, int err);
void health_timeout(upconn *uc);

static void on_stream_ready(eddy_stream *s, unsigned events)
{
    upconn *uc = s->owner;
    if (events & STREAM_READABLE)
        uc->readable = true;
    if (events & STREAM_WRITABLE)
        uc->writable = true;
    if (events & (STREAM_RDHUP | STREAM_HUP))
        uc->peer_fin = true;
    if (uc->state == UC_IDLE) {
        /* A kept connection has nothing to say: data or EOF means the
         * backend closed it or broke the protocol. */
        if (events & (STREAM_READABLE | STREAM_HUP | STREAM_RDHUP))
            upconn_close(uc, false);
        return;
    }
    if (uc->state == UC_CHECK)
        health_ready(uc, events);
    else
        proxy_upconn_ready(uc, events);
}

static void on_timer(void *data)
{
    upconn *uc = data;
    if (uc->state == UC_IDLE)
        upconn_close(uc, false);
    else if (uc->state == UC_CHECK)
        health_timeout(uc);
    else
        proxy_upconn_timeout(uc);
}

void upconn_arm(upconn *uc, unsigned ms)
{
    if (eddy_timer_start(uc->px->loop, &uc->timer, ms) < 0)
        eddy_timer_start(uc->px->loop, &uc->timer, 0); /* no memory: fail it now */
}

static void connected(upconn *uc, int err)
{
    if (uc->state == UC_CHECK)
        health_connected(uc, err);
    else
        proxy_upconn_connected(uc, err);
}

static void on_connect(eddy_io *io, uint32_t events)
{
    upconn *uc = io->data;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(uc->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (!err && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
    loop_io_del(uc->px->loop, &uc->io, false);
    uc->watched = false;
    if (!err) {
        eddy_stream *s;
        int rc = epoll_stream_new(uc->px->loop, uc->fd, &s);
        if (rc < 0) {
            err = -rc;
        } else {
            uc->stream = s;
            s->owner = uc;
            s->on_ready = on_stream_ready;
            uc->writable = true;
        }
    }
    connected(uc, err);
}

int upconn_open(eddy_proxy *px, backend *be, enum upconn_state state, upconn **out)
{
    int fam = be->addr.ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (fam != AF_UNIX)
        socket_nodelay(fd); /* a request head goes at once, not after an ACK */
    upconn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        close(fd);
        return -ENOMEM;
    }
    uc->px = px;
    uc->be = be;
    uc->fd = fd;
    uc->state = state;
    eddy_timer_init(&uc->timer, on_timer, uc);
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&be->addr, be->addr_len) < 0 && errno != EINPROGRESS)
        rc = errno == EAGAIN ? -ECONNREFUSED : -errno; /* a full unix backlog refuses */
    if (rc == 0) {
        uc->io.cb = on_connect;
        uc->io.data = uc;
        rc = loop_io_add(px->loop, &uc->io, fd, EPOLLOUT, false);
        uc->watched = rc == 0;
    }
    if (rc < 0) {
        close(fd);
        free(uc);
        return rc;
    }
    be->conns++;
    uc->all_next = px->conns;
    if (px->conns)
        px->conns->all_prev = uc;
    px->conns = uc;
    upconn_arm(uc, px->connect_ms);
    *out = uc;
    return 0;
}

upconn *upconn_take_idle(backend *be)
{
    upconn *uc = be->idle;
    if (!uc)
        return NULL;
    be->idle = uc->idle_next;
    be->nidle--;
    uc->idle_next = NULL;
    uc->state = UC_BUSY;
    eddy_timer_stop(uc->px->loop, &uc->timer);
    return uc;
}

void upconn_keep(upconn *uc)
{
    backend *be = uc->be;
    eddy_proxy *px = uc->px;
    uc->x = NULL;
    free(uc->in);
    uc->in = NULL;
    uc->in_len = uc->in_cap = 0;
    free(uc->out);
    uc->out = NULL;
    uc->out_off = uc->out_len = uc->out_cap = 0;
    if (be->nidle >= px->keepalive || uc->eof || uc->peer_fin) {
        upconn_close(uc, false);
        return;
    }
    uc->state = UC_IDLE;
    uc->idle_next = be->idle;
    be->idle = uc;
    be->nidle++;
    upconn_arm(uc, px->idle_ms);
    /* Input already waiting (the epoll stream reports readiness once):
     * the connection is no good for another request. */
    if (uc->readable) {
        char probe;
        ssize_t n = stream_read(uc->stream, &probe, 1);
        if (n != -EAGAIN)
            upconn_close(uc, false);
        else
            uc->readable = false;
    }
}

void upconn_close(upconn *uc, bool reset)
{
    eddy_proxy *px = uc->px;
    backend *be = uc->be;
    if (uc->state == UC_IDLE) {
        for (upconn **p = &be->idle; *p; p = &(*p)->idle_next)
            if (*p == uc) {
                *p = uc->idle_next;
                be->nidle--;
                break;
            }
    }
    eddy_timer_stop(px->loop, &uc->timer);
    if (uc->stream) {
        if (reset)
            stream_reset(uc->stream);
        stream_close(uc->stream);
    } else {
        /* Each registration is counted by the loop, which runs while any
         * is left: take this one back once only. */
        if (uc->watched)
            loop_io_del(px->loop, &uc->io, false);
        close(uc->fd);
    }
    if (uc->all_prev)
        uc->all_prev->all_next = uc->all_next;
    else
        px->conns = uc->all_next;
    if (uc->all_next)
        uc->all_next->all_prev = uc->all_prev;
    be->conns--;
    free(uc->in);
    free(uc->out);
    free(uc);
}

/* Keeps iov's bytes from `skip` on, after what is pending. */
static int keep(upconn *uc, const struct iovec *iov, int n, size_t skip)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    total -= skip;
    if (uc->out_off == uc->out_len)
        uc->out_off = uc->out_len = 0;
    size_t need = uc->out_len + total;
    if (need > UINT32_MAX)
        return -ENOMEM;
    if (need > uc->out_cap) {
        size_t cap = uc->out_cap ? uc->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(uc->out, cap);
        if (!nb)
            return -ENOMEM;
        uc->out = nb;
        uc->out_cap = (uint32_t)cap;
    }
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        const char *b = iov[i].iov_base;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(uc->out + uc->out_len, b + skip, l - skip);
        uc->out_len += (uint32_t)(l - skip);
        skip = 0;
    }
    return 0;
}

int upconn_write(upconn *uc, const struct iovec *iov, int n)
{
    if (upconn_pending(uc))
        return keep(uc, iov, n, 0);
    ssize_t w = stream_writev(uc->stream, iov, n, false);
    if (w < 0 && w != -EAGAIN)
        return (int)w;
    if (w == -EAGAIN)
        w = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if ((size_t)w == total)
        return 0;
    uc->writable = false;
    return keep(uc, iov, n, (size_t)w);
}

int upconn_flush(upconn *uc)
{
    while (upconn_pending(uc)) {
        struct iovec v = {uc->out + uc->out_off, uc->out_len - uc->out_off};
        ssize_t w = stream_writev(uc->stream, &v, 1, false);
        if (w == -EAGAIN) {
            uc->writable = false;
            return 0;
        }
        if (w < 0)
            return (int)w;
        uc->out_off += (uint32_t)w;
    }
    uc->out_off = uc->out_len = 0;
    return 1;
}
