/* Plain calls on a connected non-blocking socket, shared by both socket
 * streams (stream.h): the epoll one (socket_stream.c) and the io_uring one
 * (uring_stream.c).  Kept apart from either so neither stream's file calls
 * into the other's. */
#include "rt/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

ssize_t socket_writev(int fd, const struct iovec *iov, int iovcnt, bool more)
{
    /* MSG_NOSIGNAL: a peer that left is an error for this stream only. */
    int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    ssize_t n;
    if (iovcnt == 1) {
        /* The usual case (one staged buffer): send() spares the kernel
         * copying in a msghdr and an iovec array. */
        n = send(fd, iov[0].iov_base, iov[0].iov_len, flags);
    } else {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        n = sendmsg(fd, &msg, flags);
    }
    return n < 0 ? -errno : n;
}

void socket_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

ssize_t socket_sendfile(int fd, int file, off_t *off, size_t len)
{
    ssize_t n = sendfile(fd, file, off, len);
    return n < 0 ? -errno : n;
}

void socket_abort(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void socket_peer_addr(int fd, peer_addr *out)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    memset(out, 0, sizeof(*out));
    if (getpeername(fd, (struct sockaddr *)&sa, &sl) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        out->bytes[10] = out->bytes[11] = 0xff;
        memcpy(out->bytes + 12, &((struct sockaddr_in *)&sa)->sin_addr, 4);
    } else if (sa.ss_family == AF_INET6) {
        memcpy(out->bytes, &((struct sockaddr_in6 *)&sa)->sin6_addr, 16);
    }
}

void peer_addr_text(const peer_addr *p, char *buf, size_t len)
{
    if (len == 0)
        return;
    const struct in6_addr *a = (const struct in6_addr *)(const void *)p->bytes;
    const char *ok = !peer_addr_known(p)        ? NULL
                     : IN6_IS_ADDR_V4MAPPED(a) ? inet_ntop(AF_INET, p->bytes + 12, buf, (socklen_t)len)
                                               : inet_ntop(AF_INET6, p->bytes, buf, (socklen_t)len);
    if (!ok)
        snprintf(buf, len, "-");
}
