#include "rt/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct listener {
    eddy_io io;
    accept_gate *gate;
    void *data;       /* the listener's own, for each connection it takes */
    uint32_t tag;     /* the same, for sites limited to some listeners */
    eddy_timer retry; /* after EMFILE/ENFILE */
    listener *next;
    char bound[80];   /* the address bound, "HOST:PORT" */
};

static void accept_some(listener *l);

static void resume_all(void *data);

void gate_init(accept_gate *g, eddy_loop *loop, unsigned limit,
               listener_accept_cb on_accept, void *data)
{
    memset(g, 0, sizeof(*g));
    g->loop = loop;
    g->limit = limit;
    g->on_accept = on_accept;
    g->data = data;
    eddy_deferred_init(&g->resume, resume_all, g);
}

static bool gate_open(const accept_gate *g) { return g->limit == 0 || g->active < g->limit; }

static void resume_all(void *data)
{
    accept_gate *g = data;
    for (listener *l = g->listeners; l && gate_open(g); l = l->next)
        accept_some(l);
}

static void schedule_resume(accept_gate *g)
{
    if (g->listeners)
        eddy_defer(g->loop, &g->resume);
}

void gate_release(accept_gate *g)
{
    bool was_full = !gate_open(g);
    g->active--;
    /* Edge-triggered listeners get no new event for connections already
     * waiting in the backlog, so resuming means trying accept ourselves. */
    if (was_full)
        schedule_resume(g);
}

static void listener_close(listener *l)
{
    eddy_timer_stop(l->gate->loop, &l->retry);
    loop_io_del(l->gate->loop, &l->io, false);
    close(l->io.fd);
    free(l);
}

void gate_close_all(accept_gate *g)
{
    eddy_defer_cancel(g->loop, &g->resume);
    listener *l = g->listeners;
    g->listeners = NULL;
    while (l) {
        listener *next = l->next;
        listener_close(l);
        l = next;
    }
}

int listener_close_bound(accept_gate *g, const char *bound)
{
    int rc = -ENOENT;
    for (listener **at = &g->listeners; *at;) {
        listener *l = *at;
        if (strcmp(l->bound, bound) == 0) {
            *at = l->next;
            listener_close(l);
            rc = 0;
        } else {
            at = &l->next;
        }
    }
    return rc;
}

static void retry_accept(void *data) { accept_some(data); }

static void accept_some(listener *l)
{
    accept_gate *g = l->gate;
    for (int i = 0; i < LISTENER_ACCEPT_BATCH; i++) {
        if (!gate_open(g))
            return; /* resumed by gate_release() */
        int fd = accept4(l->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                /* The connection stays in the backlog; try again later
                 * rather than spin on an accept that cannot succeed. */
                eddy_timer_start(g->loop, &l->retry, LISTENER_EMFILE_RETRY_MS);
                if (!g->starved) {
                    g->starved = true;
                    if (g->on_starved)
                        g->on_starved(g->data, errno);
                }
                return;
            default:
                return;
            }
        }
        if (g->starved) {
            g->starved = false;
            if (g->on_starved)
                g->on_starved(g->data, 0);
        }
        g->active++;
        g->on_accept(g->data, l->data, l->tag, fd);
    }
    /* Batch used up: more may be waiting, and edge-triggered epoll will not
     * say so again.  Continue on the next turn, after other work. */
    schedule_resume(g);
}

static void on_listen_io(eddy_io *io, uint32_t events)
{
    (void)events;
    accept_some(io->data);
}

int parse_host_port(const char *s, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -EINVAL; /* bare IPv6 must be bracketed */
        hl = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (pl == 0 || pl >= port_len || hl >= host_len)
        return -EINVAL;
    for (size_t i = 0; i < pl; i++)
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
    if (strtoul(p, NULL, 10) > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, p, pl + 1);
    return 0;
}

static void format_bound(int fd, char *bound, size_t bound_len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
            snprintf(bound, bound_len, "[%s]:%d", ip, port);
            return;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    }
    snprintf(bound, bound_len, "%s:%d", ip, port);
}

int listener_open(accept_gate *g, const char *host_port, void *data, uint32_t tag, char *bound,
                  size_t bound_len)
{
    char host[256], port[8];
    if (parse_host_port(host_port, host, sizeof(host), port, sizeof(port)) < 0)
        return -EINVAL;
    /* ":PORT" means every IPv4 address; "[::]:PORT" every IPv6 one. */
    struct addrinfo hints = {.ai_family = host[0] ? AF_UNSPEC : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
        return -EADDRNOTAVAIL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (g->reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTENER_BACKLOG) < 0) {
        rc = -errno;
        goto out;
    }
    rc = listener_adopt(g, fd, data, tag, bound, bound_len);
    if (rc == 0)
        fd = -1;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

int listener_adopt(accept_gate *g, int fd, void *data, uint32_t tag, char *bound, size_t bound_len)
{
    int one = 1, lowat = LISTENER_NOTSENT_LOWAT;
    /* A socket handed over (systemd, the eddy before an upgrade) may be
     * blocking; accept must never block the loop. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    /* No Nagle on any accepted socket (inherited, so no call per
     * connection): whenever eddy writes a response in more than one piece
     * (a streamed or proxied body, TLS's ticket then its first answer, a
     * file's last partial segment) a small later piece would wait for the
     * client's delayed ACK of the earlier one, tens of ms.  eddy gathers
     * what it can send at once into one write itself. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->gate = g;
    l->data = data;
    l->tag = tag;
    l->io.cb = on_listen_io;
    l->io.data = l;
    eddy_timer_init(&l->retry, retry_accept, l);
    int rc = loop_io_add(g->loop, &l->io, fd, EPOLLIN | EPOLLET, false);
    if (rc < 0) {
        free(l);
        return rc;
    }
    format_bound(fd, l->bound, sizeof(l->bound));
    if (bound)
        snprintf(bound, bound_len, "%s", l->bound);
    l->next = g->listeners;
    g->listeners = l;
    /* Connections may already wait in its backlog (a socket handed over
     * under load), and edge-triggered epoll tells only of new ones. */
    schedule_resume(g);
    return 0;
}

size_t listener_fds(const accept_gate *g, int *fds, size_t max)
{
    size_t n = 0;
    for (const listener *l = g->listeners; l; l = l->next, n++)
        if (n < max)
            fds[n] = l->io.fd;
    return n;
}
