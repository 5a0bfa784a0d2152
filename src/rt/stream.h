/* The byte pipe a connection talks through: a non-blocking socket
 * (socket_stream.c, uring_stream.c), TLS over one of those (tls/), or an
 * in-memory mock for tests (mock_stream.c).
 * A connection sees only this interface, so every test of a connection can
 * run on the mock. */
#ifndef EDDY_RT_STREAM_H
#define EDDY_RT_STREAM_H

#include "rt/loop.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

enum {
    STREAM_READABLE = 1, /* read() may return data, EOF or an error */
    STREAM_WRITABLE = 2, /* writes that returned -EAGAIN, or wrote short,
                            may now progress */
    STREAM_HUP = 4,      /* the peer is gone in both directions (reset) */
    STREAM_RDHUP = 8,    /* the peer sends no more: reads end in EOF */
};

typedef struct eddy_stream eddy_stream;
typedef void (*stream_ready_cb)(eddy_stream *s, unsigned events);

/* A peer's IP address, small enough for a connection to keep (so a
 * keep-alive connection asks the kernel once, not per request): IPv6, an
 * IPv4 address mapped (::ffff:a.b.c.d); all zero (::, never a peer's)
 * when unknown. */
typedef struct peer_addr {
    uint8_t bytes[16];
} peer_addr;
static inline bool peer_addr_known(const peer_addr *p)
{
    static const peer_addr none;
    return memcmp(p, &none, sizeof(none)) != 0;
}
/* As text ("127.0.0.1", "::1"), "-" when unknown. */
void peer_addr_text(const peer_addr *p, char *buf, size_t len);

typedef struct stream_ops {
    /* > 0 bytes read, 0 at EOF, or -EAGAIN / -ECONNRESET / -errno. */
    ssize_t (*read)(eddy_stream *s, void *buf, size_t len);
    /* Bytes written (possibly short), or -EAGAIN / -EPIPE / -errno.
     * `more`: further bytes follow at once, so the transport may hold
     * these back to send them together; a writer whose further bytes do
     * not come after all calls push. */
    ssize_t (*writev)(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more);
    /* Sends up to len bytes of file fd from *off, advancing *off. */
    ssize_t (*sendfile)(eddy_stream *s, int fd, off_t *off, size_t len);
    /* Makes the coming close() abortive: RST, and whatever the peer has
     * not taken is dropped instead of lingering in kernel buffers. */
    void (*reset)(eddy_stream *s);
    /* Sends FIN: we write no more, but may still read. */
    void (*shutdown_write)(eddy_stream *s);
    /* Ends the stream: no more callbacks after this returns. */
    void (*close)(eddy_stream *s);
    /* The peer's address (all zero when unknown).  Asked only when
     * needed, so it costs nothing otherwise. */
    void (*peer_addr)(eddy_stream *s, peer_addr *out);
    /* TLS: what the owner reads and writes is encrypted below (a property
     * of the kind, so it costs a stream nothing). */
    bool secure;
    /* The protocol the peer and the stream agreed on (TLS ALPN): its
     * length, with *proto pointing at its bytes; 0 for none.  NULL in
     * kinds that have no such agreement. */
    size_t (*alpn)(eddy_stream *s, const unsigned char **proto);
    /* The TLS version agreed ("TLSv1.3"); NULL in kinds without TLS. */
    const char *(*tls_version)(eddy_stream *s);
    /* Sends now what writes with `more` left held (the kernel's partial
     * packet, a TLS stream's records), for a writer whose further bytes
     * did not come after all.  NULL where nothing is held. */
    void (*push)(eddy_stream *s);
} stream_ops;

struct eddy_stream {
    const stream_ops *ops;
    eddy_loop *loop;
    stream_ready_cb on_ready; /* set by the owner */
    void *owner;
};

static inline ssize_t stream_read(eddy_stream *s, void *buf, size_t len)
{
    return s->ops->read(s, buf, len);
}
static inline ssize_t stream_writev(eddy_stream *s, const struct iovec *iov, int n, bool more)
{
    return s->ops->writev(s, iov, n, more);
}
static inline ssize_t stream_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    return s->ops->sendfile(s, fd, off, len);
}
static inline void stream_reset(eddy_stream *s) { s->ops->reset(s); }
static inline void stream_shutdown_write(eddy_stream *s) { s->ops->shutdown_write(s); }
static inline void stream_close(eddy_stream *s) { s->ops->close(s); }
static inline void stream_push(eddy_stream *s)
{
    if (s->ops->push)
        s->ops->push(s);
}
/* True when the stream's agreed protocol is `proto`. */
static inline bool stream_alpn_is(eddy_stream *s, const char *proto, size_t len)
{
    const unsigned char *p;
    size_t n = s->ops->alpn ? s->ops->alpn(s, &p) : 0;
    return n == len && memcmp(p, proto, len) == 0;
}
static inline const char *stream_tls_version(eddy_stream *s)
{
    return s && s->ops->tls_version ? s->ops->tls_version(s) : NULL;
}
static inline void stream_peer_addr(eddy_stream *s, peer_addr *out)
{
    s->ops->peer_addr(s, out);
}
/* The peer's address as text, asked of the stream (s may be NULL: "-")
 * only while *cache holds none, so a connection keeping a cache asks the
 * kernel once, not per request. */
static inline void stream_peer_cached(eddy_stream *s, peer_addr *cache, char *buf, size_t len)
{
    if (s && !peer_addr_known(cache))
        s->ops->peer_addr(s, cache);
    peer_addr_text(cache, buf, len);
}

/* Wraps a connected non-blocking socket; the stream owns and closes fd.
 * Driven through the loop's io_uring when it has one (uring_stream.c),
 * else through epoll (socket_stream.c). */
int socket_stream_new(eddy_loop *loop, int fd, eddy_stream **out);
int uring_stream_new(eddy_loop *loop, int fd, eddy_stream **out);
/* The epoll stream whatever the loop has. */
int epoll_stream_new(eddy_loop *loop, int fd, eddy_stream **out);
/* Plain calls on a connected non-blocking socket, shared by both socket
 * streams (socket_calls.c); each returns what the call did or -errno. */
ssize_t socket_writev(int fd, const struct iovec *iov, int iovcnt, bool more);
ssize_t socket_sendfile(int fd, int file, off_t *off, size_t len);
/* Makes the coming close() send RST (SO_LINGER 0). */
void socket_abort(int fd);
/* Segments leave without waiting for the peer's ACK of earlier ones. */
void socket_nodelay(int fd);
/* The peer's address of socket fd (all zero when unknown). */
void socket_peer_addr(int fd, peer_addr *out);

#endif
