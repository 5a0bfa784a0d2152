/* A connected socket driven through the loop's io_uring (ring.h).
 *
 * Reads: a receive is kept armed; the kernel picks one of the ring's
 * buffers when data comes, and read() hands the bytes out of it.  Bytes the
 * owner leaves unread are copied out before the buffer goes back, and no
 * new receive is armed until they are taken: the owner's pace bounds what
 * a connection holds.  A receive that fills a whole buffer means more is
 * waiting (an upload), and one that finds no buffer free (thousands of
 * connections in one turn) means data is there: read() then uses plain
 * recv() until the socket drains, as the epoll stream does.
 *
 * Writes: a small write is copied into the ring's staging arena and sent by
 * the next submission without waiting (MSG_DONTWAIT), so it costs no system
 * call of its own.  What the socket did not take is copied out of the
 * arena and waits for POLLOUT; meanwhile
 * further writes answer -EAGAIN, which the owner's send timeout covers.
 * Large writes, writes followed by a file, and sendfile() go straight to
 * the socket when nothing is in flight, as with the epoll stream.
 *
 * The peer leaving: a receive reports a reset.  While none is armed (the
 * owner holds input, or the peer's EOF was read) a poll watches instead
 * (watch_hangup()), past the peer's FIN too, since a reset may still come
 * in answer to what we send.
 *
 * Each submission names the stream's ring_target and one of the tags below,
 * and the ring hands the completion back to on_complete().
 *
 * Closing waits for operations in flight (their completions name this
 * stream).  Unsent bytes left at close still go out, bounded by
 * ORPHAN_SEND_MS; an abortive close (reset) drops them. */
#include "rt/ring.h"
#include "rt/stream.h"
#include "rt/loop.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Which operation a completion is for. */
enum { TAG_RECV, TAG_SEND, TAG_POLLOUT, TAG_HANGUP };

/* 72 bytes: the same allocation size as the epoll stream.  Room for the
 * target is made by a 16-bit err and by knowing a ring buffer from its
 * address (ring_buf_holds) rather than keeping its number. */
typedef struct uring_stream {
    eddy_stream base;   /* first, as in every stream */
    ring_target target; /* what the ring's completions come back to */
    char *in;  /* unread input: in a ring buffer (ring_buf_holds) or owned */
    char *out; /* bytes not yet taken by the socket: staged, or owned */
    int fd;
    uint16_t in_off, in_len;
    uint16_t out_off, out_len;
    bool recv_armed : 1;    /* a receive is submitted or queued */
    bool arm_queued : 1;    /* in the ring's list to arm before the wait */
    bool send_armed : 1;    /* a send of `out` is submitted or queued */
    bool pollout_armed : 1; /* waiting for room to send `out` */
    bool write_blocked : 1; /* a writer got -EAGAIN: tell it when out drains */
    bool bulk : 1;          /* more is waiting: read with recv() directly */
    bool eof : 1;
    bool closed : 1;
    bool in_cb : 1; /* the owner's callback is running: do not free */
    bool shut_pending : 1;
    bool aborting : 1;
    bool out_owned : 1; /* out is malloc'd (a remainder), not staged */
    bool out_arena : 1; /* the staging arena out is in */
    bool hangup_armed : 1; /* a poll watches for the peer leaving */
    bool fin_seen : 1;     /* that poll saw the peer's FIN, and said so */
    int16_t err; /* -errno the socket reported (all fit: below 4096), 0 if none */
} uring_stream;
_Static_assert(sizeof(uring_stream) <= 72, "a uring stream is no bigger than an epoll one");

static void sent(uring_stream *us);
static void cancel(uring_stream *us, unsigned tag);

static loop_ring *ring_of(uring_stream *us) { return loop_ring_get(us->base.loop); }

static uring_stream *of_target(ring_target *t)
{
    return (uring_stream *)(void *)((char *)t - offsetof(uring_stream, target));
}

static void maybe_free(uring_stream *us)
{
    if (!us->closed || us->in_cb || us->arm_queued || us->recv_armed || us->send_armed ||
        us->pollout_armed || us->hangup_armed)
        return;
    if (us->out)
        sent(us); /* a remainder an abortive close dropped */
    ring_track(ring_of(us), -1);
    /* Closed by the next submission: no system call of its own. */
    struct io_uring_sqe *sqe = ring_sqe(ring_of(us));
    io_uring_prep_close(sqe, us->fd);
    ring_sqe_set_target(sqe, NULL, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    free(us);
}

static void want_recv(uring_stream *us)
{
    if (us->recv_armed || us->arm_queued || us->closed || us->eof || us->err)
        return;
    if (ring_want_arm(ring_of(us), &us->target) < 0) {
        us->err = -ENOMEM;
        return;
    }
    us->arm_queued = true;
}

/* Just before the ring's wait, when it is known whether a receive is still
 * wanted (want_recv() asked for this). */
static void arm(ring_target *t)
{
    uring_stream *us = of_target(t);
    us->arm_queued = false;
    if (us->closed) {
        maybe_free(us);
        return;
    }
    if (us->recv_armed || us->in_len || us->eof || us->err)
        return;
    loop_ring *r = ring_of(us);
    struct io_uring_sqe *sqe = ring_sqe(r);
    io_uring_prep_recv(sqe, us->fd, NULL, RING_BUF_SIZE, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BUF_GROUP;
    ring_sqe_set_target(sqe, &us->target, TAG_RECV);
    us->recv_armed = true;
    if (us->hangup_armed)
        cancel(us, TAG_HANGUP); /* the receive reports a reset now */
}

/* While no receive is armed (the owner holds input, or left data in the
 * socket, or the peer's EOF was read) nothing would notice the peer going
 * away: a poll does, so a held request is aborted on a reset as with the
 * epoll stream.  It reports the peer's FIN once (unless a receive already
 * did) and keeps watching: a peer that sent FIN answers what we send next
 * with a reset, which an answer still being written (a stream of events)
 * must learn of then, not at a later write.
 *
 * The poll is multishot: io_uring adds POLLRDHUP to every poll's events,
 * so a one-shot poll armed after the FIN would complete at once, again
 * and again.  Armed after the FIN, this one completes at once too, with
 * POLLRDHUP alone, which is ignored; then only a wake-up with an error or
 * a hangup (or none named) makes it complete again, not data or room to
 * write. */
static void watch_hangup(uring_stream *us)
{
    if (us->hangup_armed || us->recv_armed || us->arm_queued || us->closed || us->err)
        return;
    struct io_uring_sqe *sqe = ring_sqe(ring_of(us));
    io_uring_prep_poll_multishot(sqe, us->fd, POLLRDHUP);
    ring_sqe_set_target(sqe, &us->target, TAG_HANGUP);
    us->hangup_armed = true;
}

static void release_input(uring_stream *us)
{
    if (!ring_buf_put(ring_of(us), us->in))
        free(us->in);
    us->in = NULL;
    us->in_off = us->in_len = 0;
}

static void arm_send(uring_stream *us, bool wait)
{
    if (wait)
        ring_reserve(ring_of(us), 2); /* the send and its linked timeout */
    struct io_uring_sqe *sqe = ring_sqe(ring_of(us));
    io_uring_prep_send(sqe, us->fd, us->out + us->out_off, us->out_len - us->out_off,
                       MSG_NOSIGNAL | (wait ? MSG_WAITALL : MSG_DONTWAIT));
    ring_sqe_set_target(sqe, &us->target, TAG_SEND);
    us->send_armed = true;
    if (wait) {
        /* The last bytes of a closed stream: bounded in time. */
        sqe->flags |= IOSQE_IO_LINK;
        static struct __kernel_timespec orphan = {ORPHAN_SEND_MS / 1000, 0};
        sqe = ring_sqe(ring_of(us));
        io_uring_prep_link_timeout(sqe, &orphan, 0);
        ring_sqe_set_target(sqe, NULL, 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
}

static void arm_pollout(uring_stream *us)
{
    if (us->pollout_armed)
        return;
    struct io_uring_sqe *sqe = ring_sqe(ring_of(us));
    io_uring_prep_poll_add(sqe, us->fd, POLLOUT);
    ring_sqe_set_target(sqe, &us->target, TAG_POLLOUT);
    us->pollout_armed = true;
}

static void cancel(uring_stream *us, unsigned tag)
{
    struct io_uring_sqe *sqe = ring_sqe(ring_of(us));
    io_uring_prep_cancel64(sqe, ring_target_data(&us->target, tag), 0);
    ring_sqe_set_target(sqe, NULL, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* Calls the owner; afterwards keeps unread bytes out of the ring buffer. */
static void fire(uring_stream *us, unsigned events)
{
    us->in_cb = true;
    if (us->base.on_ready)
        us->base.on_ready(&us->base, events);
    us->in_cb = false;
    if (us->closed) {
        maybe_free(us);
        return;
    }
    if (us->in_len && ring_buf_holds(ring_of(us), us->in)) {
        char *copy = malloc(us->in_len);
        if (copy)
            memcpy(copy, us->in + us->in_off, us->in_len);
        uint16_t len = us->in_len;
        release_input(us);
        if (!copy) {
            us->err = -ENOMEM; /* the next read reports it */
            return;
        }
        us->in = copy;
        us->in_len = len;
    }
    watch_hangup(us);
}

static void on_recv(uring_stream *us, int res, unsigned flags)
{
    us->recv_armed = false;
    loop_ring *r = ring_of(us);
    if (us->closed) {
        if (res > 0)
            ring_buf_put(r, ring_buf(r, flags >> IORING_CQE_BUFFER_SHIFT));
        maybe_free(us);
        return;
    }
    unsigned events = STREAM_READABLE;
    if (res > 0) {
        us->in = ring_buf(r, flags >> IORING_CQE_BUFFER_SHIFT);
        us->in_off = 0;
        us->in_len = (uint16_t)res;
        us->bulk = res == RING_BUF_SIZE;
    } else if (res == 0) {
        us->eof = true;
        events |= STREAM_RDHUP;
    } else if (res == -ENOBUFS) {
        /* Data came while every buffer was taken (many connections in one
         * turn): this one reads it with recv(), rather than retrying a
         * receive that would find the buffers taken again. */
        us->bulk = true;
    } else if (res == -EINTR || res == -EAGAIN) {
        want_recv(us);
        return;
    } else {
        us->err = (int16_t)res;
        if (res == -ECONNRESET || res == -EPIPE)
            events |= STREAM_HUP;
    }
    fire(us, events);
}

/* Lets go of what out holds: sent, or no longer to be sent. */
static void drop_output(uring_stream *us)
{
    if (us->out_owned)
        free(us->out);
    us->out = NULL;
    us->out_off = us->out_len = 0;
    us->out_owned = false;
}

/* The socket took part of a staged send: the rest moves out of the arena,
 * which must be free by the next turn but one. */
static bool own_rest(uring_stream *us)
{
    if (us->out_owned)
        return true;
    size_t rest = (size_t)(us->out_len - us->out_off);
    char *copy = malloc(rest);
    if (copy)
        memcpy(copy, us->out + us->out_off, rest);
    ring_unstage(ring_of(us), us->out_arena);
    us->out = copy;
    us->out_owned = copy != NULL;
    us->out_off = 0;
    us->out_len = (uint16_t)rest;
    if (!copy) {
        us->out_len = 0;
        us->err = -ENOMEM;
    }
    return copy != NULL;
}

static void sent(uring_stream *us)
{
    if (!us->out_owned)
        ring_unstage(ring_of(us), us->out_arena);
    drop_output(us);
    if (us->shut_pending) {
        us->shut_pending = false;
        shutdown(us->fd, SHUT_WR);
    }
}

static void on_send(uring_stream *us, int res)
{
    us->send_armed = false;
    if (res > 0)
        us->out_off += (uint16_t)res;
    bool rest = res == -EAGAIN || (res > 0 && us->out_off < us->out_len);
    if (rest && !(us->closed && us->aborting) && !own_rest(us))
        rest = false; /* no memory to keep it: the bytes are lost */
    if (us->closed) {
        if (rest && !us->aborting)
            arm_send(us, true);
        else {
            sent(us);
            maybe_free(us);
        }
        return;
    }
    if (rest) {
        arm_pollout(us); /* the socket is full: the rest when it has room */
        return;
    }
    if (res < 0)
        us->err = (int16_t)res;
    sent(us);
    if (us->write_blocked || us->err) {
        us->write_blocked = false;
        fire(us, STREAM_WRITABLE | (us->err ? STREAM_HUP : 0));
    }
}

static void on_pollout(uring_stream *us, int res)
{
    us->pollout_armed = false;
    if (us->closed) {
        maybe_free(us);
        return;
    }
    if (us->out && res >= 0) {
        arm_send(us, false);
        return;
    }
    fire(us, STREAM_WRITABLE | (res < 0 || (res & (POLLERR | POLLHUP)) ? STREAM_READABLE : 0));
}

static void on_hangup(uring_stream *us, int res, unsigned flags)
{
    bool more = flags & IORING_CQE_F_MORE; /* the poll goes on */
    if (!more)
        us->hangup_armed = false;
    if (us->closed) {
        maybe_free(us);
        return;
    }
    if (res < 0 || us->err) {
        /* Cancelled because a receive was armed, which reports the peer
         * now; but if that receive has already completed (with the EOF,
         * or input the owner holds), the watch is wanted again. */
        if (!more && res == -ECANCELED)
            watch_hangup(us);
        return;
    }
    if (res & (POLLERR | POLLHUP)) {
        if (more)
            cancel(us, TAG_HANGUP); /* the peer is gone: nothing left to watch */
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(us->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        us->err = (int16_t)(err ? -err : -ECONNRESET);
        fire(us, STREAM_READABLE | STREAM_HUP);
        return;
    }
    if (us->fin_seen || us->eof) {
        /* The FIN again, already reported: the poll's first answer when
         * armed after it.  Watched again if the kernel ended the poll. */
        if (!more)
            watch_hangup(us);
        return;
    }
    /* The FIN: bytes before it may still be in the socket, so this is not
     * EOF yet; the receive armed once input is taken reports that. */
    us->fin_seen = true;
    fire(us, STREAM_READABLE | STREAM_RDHUP);
}

static void on_complete(ring_target *t, unsigned tag, int res, unsigned flags)
{
    uring_stream *us = of_target(t);
    switch (tag) {
    case TAG_RECV:
        on_recv(us, res, flags);
        break;
    case TAG_SEND:
        on_send(us, res);
        break;
    case TAG_POLLOUT:
        on_pollout(us, res);
        break;
    case TAG_HANGUP:
        on_hangup(us, res, flags);
        break;
    }
}

static const ring_target_ops ring_ops = {on_complete, arm};

/* ------------------------------------------------------------------ ops -- */

static ssize_t us_read(eddy_stream *s, void *buf, size_t len)
{
    uring_stream *us = (uring_stream *)s;
    size_t got = 0;
    if (us->in_len) {
        got = len < us->in_len ? len : us->in_len;
        memcpy(buf, us->in + us->in_off, got);
        us->in_off += (uint16_t)got;
        us->in_len -= (uint16_t)got;
        if (us->in_len)
            return (ssize_t)got;
        release_input(us);
        if (got == len)
            return (ssize_t)got;
    } else if (us->err) {
        return us->err;
    } else if (us->eof) {
        return 0;
    }
    if (us->bulk) {
        /* More is waiting: fill the rest of the caller's buffer now, so a
         * short answer still means the socket is drained. */
        ssize_t n = recv(us->fd, (char *)buf + got, len - got, 0);
        if (n > 0 && got + (size_t)n == len)
            return (ssize_t)len;
        us->bulk = false;
        if (n > 0)
            got += (size_t)n;
        else if (!got && n == 0)
            us->eof = true;
        else if (!got && errno != EAGAIN)
            return -errno;
        /* With bytes in hand, an end or error is left for the armed
         * receive to report: it completes at once with it. */
    }
    if (!got && us->eof)
        return 0;
    want_recv(us);
    return got ? (ssize_t)got : -EAGAIN;
}

/* A direct write's result; -EAGAIN waits for room through the ring. */
static ssize_t direct_result(uring_stream *us, ssize_t n)
{
    if (n == -EAGAIN)
        arm_pollout(us);
    return n;
}

/* Bytes still on their way keep later writes back, in order. */
static bool write_waits(uring_stream *us)
{
    if (!us->out && !us->pollout_armed)
        return false;
    us->write_blocked = true;
    return true;
}

static ssize_t us_writev(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more)
{
    uring_stream *us = (uring_stream *)s;
    if (us->err)
        return us->err;
    if (write_waits(us))
        return -EAGAIN;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    unsigned arena;
    char *block = NULL;
    /* Big, or more follows (a file by sendfile() right behind, or a body's
     * next piece: MSG_MORE must reach the kernel with these bytes), or this
     * turn's arena is full: straight to the socket, as the epoll stream
     * does. */
    if (more || total > RING_SEND_MAX || !(block = ring_stage(ring_of(us), total, &arena))) {
        ssize_t n = socket_writev(us->fd, iov, iovcnt, more);
        /* A short write filled the socket: the owner hears when there is
         * room, as after -EAGAIN (stream.h), and as epoll would tell it. */
        if (n >= 0 && (size_t)n < total)
            arm_pollout(us);
        return direct_result(us, n);
    }
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(block + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    us->out = block;
    us->out_off = 0;
    us->out_len = (uint16_t)total;
    us->out_owned = false;
    us->out_arena = arena & 1;
    arm_send(us, false);
    return (ssize_t)total;
}

static ssize_t us_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    uring_stream *us = (uring_stream *)s;
    if (us->err)
        return us->err;
    if (write_waits(us))
        return -EAGAIN;
    return direct_result(us, socket_sendfile(us->fd, fd, off, len));
}

static void us_reset(eddy_stream *s)
{
    uring_stream *us = (uring_stream *)s;
    socket_abort(us->fd);
    us->aborting = true;
}

static void us_shutdown_write(eddy_stream *s)
{
    uring_stream *us = (uring_stream *)s;
    if (us->out)
        us->shut_pending = true; /* after the bytes in flight */
    else
        shutdown(us->fd, SHUT_WR);
}

static void us_close(eddy_stream *s)
{
    uring_stream *us = (uring_stream *)s;
    us->closed = true;
    loop_hold(s->loop, -1);
    if (us->in_len || us->in)
        release_input(us);
    if (us->recv_armed)
        cancel(us, TAG_RECV);
    if (us->hangup_armed)
        cancel(us, TAG_HANGUP);
    /* Bytes accepted but not yet sent still go, within ORPHAN_SEND_MS,
     * unless the close is abortive. */
    if (us->pollout_armed) {
        cancel(us, TAG_POLLOUT);
        if (us->out && !us->send_armed && !us->aborting)
            arm_send(us, true);
    }
    if (us->send_armed && us->aborting)
        cancel(us, TAG_SEND);
    maybe_free(us);
}

static void us_peer_addr(eddy_stream *s, peer_addr *out)
{
    socket_peer_addr(((uring_stream *)s)->fd, out);
}

/* As socket_stream's: only direct sends hold (MSG_MORE); ring sends never do. */
static void us_push(eddy_stream *s) { socket_nodelay(((uring_stream *)s)->fd); }

static const stream_ops uring_ops = {us_read,  us_writev,    us_sendfile, us_reset, us_shutdown_write,
                                     us_close, us_peer_addr, false,       NULL,     NULL,
                                     us_push};

int uring_stream_new(eddy_loop *loop, int fd, eddy_stream **out)
{
    uring_stream *us = calloc(1, sizeof(*us));
    if (!us)
        return -ENOMEM;
    us->target.ops = &ring_ops;
    us->base.ops = &uring_ops;
    us->base.loop = loop;
    us->fd = fd;
    want_recv(us);
    if (us->err) {
        free(us);
        return -ENOMEM;
    }
    ring_track(ring_of(us), 1);
    loop_hold(loop, 1); /* an open connection keeps the loop running */
    *out = &us->base;
    return 0;
}
