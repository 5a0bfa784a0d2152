/* tlsload: an HTTPS load generator for bench/run.sh that makes every
 * connection a full TLS handshake.
 *
 *   tlsload [-c CONNS] [-d SECONDS] [-n REQUESTS] [-t TIMEOUT]
 *           [--ciphersuites LIST] [--groups LIST] https://HOST:PORT/PATH
 *
 * CONNS connections at once (default 64), each a new TCP connection and a
 * full TLS 1.3 handshake: no session is ever offered for resumption (wrk
 * and h2load resume the sessions of earlier connections, so they measure
 * resumptions, not handshakes).  Each connection sends REQUESTS GETs one
 * after the other (default 1), the last with "Connection: close", reads
 * each response (Content-Length framing), waits for the server to close,
 * and is replaced by a new one, until SECONDS (default 10) have passed.
 *
 * The client offers only the given TLS 1.3 suites and groups (default
 * TLS_AES_128_GCM_SHA256 and X25519), and ALPN http/1.1; it does not check
 * the certificate chain (the handshake still verifies the server's
 * signature).  Session tickets the server sends are counted and dropped.
 *
 * Prints a summary, then one line for bench.py:
 *   TLSLOADJSON {"requests":..,"duration_us":..,"bytes":..,...}
 * Exit status: 0 when some request completed, 1 when none did, 2 on a
 * usage error.  Single-threaded, epoll, non-blocking; build with
 *   cc -O2 -o tlsload tlsload.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, HANDSHAKE, SENDING, HEAD, BODY, DRAIN };

/* What went wrong, counted per kind. */
enum err { E_CONNECT, E_HANDSHAKE, E_READ, E_WRITE, E_STATUS, E_TIMEOUT, E_PARSE, E_COUNT };
static const char *const err_names[E_COUNT] = {"connect", "handshake", "read",  "write",
                                               "status",  "timeout",   "parse"};

#define HEAD_MAX 8192
#define READ_BUF (64 * 1024)
/* Latency histogram: 10 µs buckets up to 10 s, the rest in the last. */
#define LAT_BUCKET_US 10
#define LAT_BUCKETS 1000001

typedef struct conn {
    int fd;
    SSL *ssl;
    enum state st;
    unsigned events;       /* what epoll waits for now */
    unsigned sent;         /* requests sent on this connection */
    size_t req_off;        /* bytes of the current request written */
    const char *req;       /* the current request */
    size_t req_len;
    char head[HEAD_MAX];
    size_t head_len;
    long long body_left;
    int status;
    uint64_t req_start;    /* µs: when the current request was first written */
    uint64_t progress;     /* µs: last time anything happened (for the timeout) */
} conn;

static struct {
    long long requests, ok, bytes, conns, handshakes, resumed, tickets, errors[E_COUNT];
    long long other_params; /* handshakes that agreed on other parameters than the first */
    char version[32], suite[64], group[32];
    uint32_t *lat;
} st;

static SSL_CTX *ctx;
static struct sockaddr_storage addr;
static socklen_t addr_len;
static int ep;
static unsigned per_conn = 1;
static uint64_t timeout_us = 10 * 1000000ull;
static char *req_keep, *req_close;
static size_t req_keep_len, req_close_len;
static unsigned char rbuf[READ_BUF];

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "tlsload: %s\n", what);
    exit(2);
}

/* A ticket arrived: count it, keep nothing (so nothing can be resumed). */
static int on_ticket(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    st.tickets++;
    return 0;
}

static void watch(conn *c, unsigned events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->events = events;
}

static void conn_close(conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
}

/* A new connection in slot c: a non-blocking connect. */
static void conn_open(conn *c)
{
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    st.conns++;
    c->st = CONNECTING;
    c->sent = 0;
    c->progress = now_us();
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (connect(c->fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS) {
        /* Counted; the slot retries on the next turn. */
        st.errors[E_CONNECT]++;
        close(c->fd);
        c->fd = -1;
        return;
    }
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

static void fail(conn *c, enum err e)
{
    st.errors[e]++;
    ERR_clear_error();
    conn_close(c);
}

/* After an SSL call that did not complete: wait for what it wants, or fail. */
static bool ssl_wait(conn *c, int r, enum err e)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        watch(c, EPOLLIN);
        return true;
    case SSL_ERROR_WANT_WRITE:
        watch(c, EPOLLOUT);
        return true;
    default:
        fail(c, e);
        return false;
    }
}

static void next_request(conn *c)
{
    c->sent++;
    bool last = per_conn && c->sent >= per_conn;
    c->req = last ? req_close : req_keep;
    c->req_len = last ? req_close_len : req_keep_len;
    c->req_off = 0;
    c->head_len = 0;
    c->req_start = now_us();
    c->st = SENDING;
}

static void note_params(conn *c)
{
    const char *v = SSL_get_version(c->ssl);
    const char *s = SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl));
    const char *g = SSL_group_to_name(c->ssl, SSL_get_negotiated_group(c->ssl));
    if (!g)
        g = "?";
    if (!st.version[0]) {
        snprintf(st.version, sizeof(st.version), "%s", v);
        snprintf(st.suite, sizeof(st.suite), "%s", s);
        snprintf(st.group, sizeof(st.group), "%s", g);
    } else if (strcmp(st.version, v) || strcmp(st.suite, s) || strcasecmp(st.group, g)) {
        st.other_params++;
    }
}

/* The response head is in c->head[0..end): its status and framing. */
static bool parse_head(conn *c, size_t end)
{
    c->head[end - 1] = '\0';
    if (strncmp(c->head, "HTTP/1.", 7) || end < 13)
        return false;
    c->status = atoi(c->head + 9);
    long long len = -1;
    for (char *p = strstr(c->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0)
            len = strtoll(p + 17, NULL, 10);
        else if (strncasecmp(p + 2, "transfer-encoding:", 18) == 0)
            return false; /* only Content-Length framing */
    }
    if (len < 0)
        return false;
    c->body_left = len;
    return true;
}

static void request_done(conn *c)
{
    uint64_t lat = (now_us() - c->req_start) / LAT_BUCKET_US;
    st.lat[lat < LAT_BUCKETS ? lat : LAT_BUCKETS - 1]++;
    st.requests++;
    if (c->status >= 200 && c->status < 300)
        st.ok++;
    else
        st.errors[E_STATUS]++;
    if (per_conn && c->sent >= per_conn)
        c->st = DRAIN; /* the server closes after "Connection: close" */
    else
        next_request(c);
}

/* Plaintext of the response arrived. */
static bool take(conn *c, const unsigned char *p, size_t n)
{
    st.bytes += (long long)n;
    while (n) {
        if (c->st == HEAD) {
            size_t room = HEAD_MAX - c->head_len;
            size_t k = n < room ? n : room;
            memcpy(c->head + c->head_len, p, k);
            size_t from = c->head_len > 3 ? c->head_len - 3 : 0;
            c->head_len += k;
            char *end = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
            if (!end) {
                if (c->head_len == HEAD_MAX)
                    return false;
                return true;
            }
            size_t used = (size_t)(end + 4 - c->head) - (c->head_len - k);
            if (!parse_head(c, (size_t)(end + 4 - c->head)))
                return false;
            p += used, n -= used;
            c->st = BODY;
            if (c->body_left == 0) {
                request_done(c);
                if (c->st == SENDING && n)
                    return false; /* nothing was asked for yet */
            }
        } else if (c->st == BODY) {
            size_t k = (long long)n < c->body_left ? n : (size_t)c->body_left;
            c->body_left -= (long long)k;
            p += k, n -= k;
            if (c->body_left == 0) {
                request_done(c);
                if (c->st == SENDING && n)
                    return false;
            }
        } else {
            return false; /* bytes after the last response */
        }
    }
    return true;
}

/* Moves connection c as far as it goes without waiting. */
static void step(conn *c, unsigned events)
{
    c->progress = now_us();
    if (c->st == CONNECTING) {
        int e = 0;
        socklen_t l = sizeof(e);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e || (events & (EPOLLERR | EPOLLHUP))) {
            fail(c, E_CONNECT);
            return;
        }
        c->ssl = SSL_new(ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
            die("SSL_new");
        SSL_set_connect_state(c->ssl);
        c->st = HANDSHAKE;
    }
    if (c->st == HANDSHAKE) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            ssl_wait(c, r, E_HANDSHAKE);
            return;
        }
        st.handshakes++;
        if (SSL_session_reused(c->ssl))
            st.resumed++;
        note_params(c);
        next_request(c);
    }
    for (;;) {
        if (c->st == SENDING) {
            size_t n;
            int r = SSL_write_ex(c->ssl, c->req + c->req_off, c->req_len - c->req_off, &n);
            if (r != 1) {
                ssl_wait(c, r, E_WRITE);
                return;
            }
            c->req_off += n;
            if (c->req_off < c->req_len)
                continue;
            c->st = HEAD;
        }
        size_t n;
        int r = SSL_read_ex(c->ssl, rbuf, sizeof(rbuf), &n);
        if (r == 1) {
            if (!take(c, rbuf, n)) {
                fail(c, E_PARSE);
                return;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            watch(c, EPOLLIN);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            watch(c, EPOLLOUT);
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN && c->st == DRAIN) {
            /* The server closed, as asked: a new connection takes the slot. */
            conn_close(c);
            conn_open(c);
            return;
        }
        fail(c, E_READ); /* closed or broken in the middle of a response */
        return;
    }
}

static double percentile(double q)
{
    long long total = 0, seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += st.lat[i];
    if (!total)
        return 0;
    long long want = (long long)(q * (double)total + 0.5);
    if (want < 1)
        want = 1;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += st.lat[i];
        if (seen >= want)
            return (double)(i * LAT_BUCKET_US + LAT_BUCKET_US / 2);
    }
    return (double)(LAT_BUCKETS * LAT_BUCKET_US);
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsload [-c CONNS] [-d SECONDS] [-n REQUESTS] [-t TIMEOUT]\n"
                    "               [--ciphersuites LIST] [--groups LIST] https://HOST:PORT/PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned nconns = 64;
    double seconds = 10;
    const char *suites = "TLS_AES_128_GCM_SHA256", *groups = "X25519", *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-c") && v)
            nconns = (unsigned)strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "-d") && v)
            seconds = strtod(v, NULL), i++;
        else if (!strcmp(a, "-n") && v)
            per_conn = (unsigned)strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "-t") && v)
            timeout_us = (uint64_t)(strtod(v, NULL) * 1e6), i++;
        else if (!strcmp(a, "--ciphersuites") && v)
            suites = v, i++;
        else if (!strcmp(a, "--groups") && v)
            groups = v, i++;
        else if (a[0] != '-' && !url)
            url = a;
        else
            usage();
    }
    if (!url || nconns == 0 || seconds <= 0 || strncmp(url, "https://", 8))
        usage();

    /* https://HOST:PORT/PATH; HOST may be [v6]. */
    char host[256], port[16] = "443";
    const char *h = url + 8, *slash = strchr(h, '/');
    const char *path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= sizeof(host))
        usage();
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s", host);
    if (colon) {
        if (host[0] == '[')
            colon++;
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = '\0';
    }
    char *name = host;
    if (name[0] == '[') {
        name++;
        name[strlen(name) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(name, port, &hints, &ai))
        die("cannot resolve the host");
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);

    req_keep_len = (size_t)asprintf(&req_keep, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, hostport);
    req_close_len = (size_t)asprintf(&req_close,
                                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                                     path, hostport);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        die("cannot make a TLS 1.3 context");
    if (!SSL_CTX_set_ciphersuites(ctx, suites))
        die("unknown --ciphersuites");
    if (!SSL_CTX_set1_groups_list(ctx, groups))
        die("unknown --groups");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
    /* The callback sees each ticket; with no internal store and no
     * SSL_set_session, every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_ticket);
    SSL_CTX_set_read_ahead(ctx, 1);

    st.lat = calloc(LAT_BUCKETS, sizeof(*st.lat));
    conn *conns = calloc(nconns, sizeof(*conns));
    if (!st.lat || !conns)
        die("out of memory");
    signal(SIGPIPE, SIG_IGN);
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");

    uint64_t start = now_us(), end = start + (uint64_t)(seconds * 1e6), last_scan = start;
    for (unsigned i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conn_open(&conns[i]);
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_us();
        if (t >= end)
            break;
        int left_ms = (int)((end - t + 999) / 1000);
        int n = epoll_wait(ep, evs, 256, left_ms < 100 ? left_ms : 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->fd >= 0)
                step(c, evs[i].events);
        }
        t = now_us();
        if (t - last_scan >= 100000 && t < end) {
            /* Stalled connections time out; failed slots get a new one. */
            last_scan = t;
            for (unsigned i = 0; i < nconns; i++) {
                conn *c = &conns[i];
                if (c->fd >= 0 && t - c->progress > timeout_us)
                    fail(c, E_TIMEOUT);
                if (c->fd < 0)
                    conn_open(c);
            }
        }
    }
    uint64_t dur = now_us() - start;
    for (unsigned i = 0; i < nconns; i++)
        conn_close(&conns[i]);

    long long errs = 0;
    for (int e = 0; e < E_COUNT; e++)
        errs += st.errors[e];
    double secs = (double)dur / 1e6;
    fprintf(stdout,
            "%lld requests in %.2fs, %.0f req/s, %lld connections, %lld full handshakes, %lld "
            "resumed, %.2f tickets per handshake, %s %s %s, %lld errors\n",
            st.requests, secs, (double)st.ok / secs, st.conns, st.handshakes, st.resumed,
            st.handshakes ? (double)st.tickets / (double)st.handshakes : 0.0,
            st.version[0] ? st.version : "-", st.suite[0] ? st.suite : "-",
            st.group[0] ? st.group : "-", errs);
    printf("TLSLOADJSON {\"requests\":%lld,\"ok\":%lld,\"duration_us\":%llu,\"bytes\":%lld,"
           "\"connections\":%lld,\"handshakes\":%lld,\"resumed\":%lld,\"tickets\":%lld,"
           "\"version\":\"%s\",\"suite\":\"%s\",\"group\":\"%s\",\"other_params\":%lld,"
           "\"p50_us\":%.0f,\"p99_us\":%.0f,\"errors\":{",
           st.requests, st.ok, (unsigned long long)dur, st.bytes, st.conns, st.handshakes,
           st.resumed, st.tickets, st.version, st.suite, st.group, st.other_params,
           percentile(0.5), percentile(0.99));
    for (int e = 0; e < E_COUNT; e++)
        printf("%s\"%s\":%lld", e ? "," : "", err_names[e], st.errors[e]);
    printf("}}\n");
    return st.requests ? 0 : 1;
}
