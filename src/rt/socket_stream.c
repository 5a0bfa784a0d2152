#include "rt/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct socket_stream {
    eddy_stream base;
    eddy_io io;
} socket_stream;

static void on_io(eddy_io *io, uint32_t events)
{
    socket_stream *ss = io->data;
    unsigned ready = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ready |= STREAM_READABLE;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ready |= STREAM_WRITABLE;
    if (events & (EPOLLHUP | EPOLLERR))
        ready |= STREAM_HUP;
    if (events & EPOLLRDHUP)
        ready |= STREAM_RDHUP;
    if (ss->base.on_ready)
        ss->base.on_ready(&ss->base, ready);
}

static ssize_t ss_read(eddy_stream *s, void *buf, size_t len)
{
    socket_stream *ss = (socket_stream *)s;
    /* recv(), not read(): no trip through the VFS layer (its permission
     * hook and access notification) on every read. */
    ssize_t n = recv(ss->io.fd, buf, len, 0);
    return n < 0 ? -errno : n;
}

static ssize_t ss_writev(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more)
{
    return socket_writev(((socket_stream *)s)->io.fd, iov, iovcnt, more);
}

static ssize_t ss_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    socket_stream *ss = (socket_stream *)s;
    return socket_sendfile(ss->io.fd, fd, off, len);
}

static void ss_reset(eddy_stream *s) { socket_abort(((socket_stream *)s)->io.fd); }

static void ss_shutdown_write(eddy_stream *s)
{
    socket_stream *ss = (socket_stream *)s;
    shutdown(ss->io.fd, SHUT_WR);
}

static void ss_close(eddy_stream *s)
{
    socket_stream *ss = (socket_stream *)s;
    loop_io_forget(s->loop, &ss->io, false); /* close() takes it out of epoll */
    close(ss->io.fd);
    free(ss);
}

static void ss_peer_addr(eddy_stream *s, peer_addr *out)
{
    socket_peer_addr(((socket_stream *)s)->io.fd, out);
}

/* TCP_NODELAY set again sends the partial packet MSG_MORE held. */
static void ss_push(eddy_stream *s) { socket_nodelay(((socket_stream *)s)->io.fd); }

static const stream_ops socket_ops = {ss_read,      ss_writev, ss_sendfile, ss_reset, ss_shutdown_write,
                                      ss_close,     ss_peer_addr, false,    NULL,     NULL,
                                      ss_push};

int socket_stream_new(eddy_loop *loop, int fd, eddy_stream **out)
{
    if (loop_ring_get(loop))
        return uring_stream_new(loop, fd, out);
    return epoll_stream_new(loop, fd, out);
}

int epoll_stream_new(eddy_loop *loop, int fd, eddy_stream **out)
{
    socket_stream *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return -ENOMEM;
    ss->base.ops = &socket_ops;
    ss->base.loop = loop;
    ss->io.cb = on_io;
    ss->io.data = ss;
    /* Edge-triggered for both directions, registered once: no epoll_ctl
     * per request, and EPOLLOUT costs nothing until a write blocks. */
    int rc = loop_io_add(loop, &ss->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, false);
    if (rc < 0) {
        free(ss);
        return rc;
    }
    *out = &ss->base;
    return 0;
}
