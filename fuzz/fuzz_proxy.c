/* libFuzzer target: the reverse proxy (src/proxy/), attacked from the
 * backend's side, and a little from the client's.
 *
 * The client is a mock stream attached to an eddy_server whose one route
 * ("/", EDDY_BODY_STREAM) is eddy_proxy_handler; the proxy's one backend
 * is a unix socket this harness listens on (made once per process).  The
 * harness accepts eddy's connections, reads what eddy sends, and writes
 * the input's bytes as the backend's response, in pieces, running the
 * loop (virtual clock, epoll) in between; a connection eddy makes later (a
 * retry, the next request) is the one written to from then on.  Loop,
 * server and proxy are made once per process (making them costs more than
 * most inputs): each input must leave them as it found them, which the
 * end of each checks, and the proxy's passive health and keep-alive
 * setting are reset before each.
 *
 * Input layout: byte 0 picks the client's request (KINDS below), byte 1
 * is flags; the last byte is
 * K, the number of op bytes, and the K bytes before it are the ops; what
 * lies between is the payload: the backend's raw bytes.
 *
 * Flags (byte 1):
 *   bits 0-1  at the end the backend 0 stays open, 1 sends FIN, 2 closes,
 *             3 closes without reading what eddy sent (ECONNRESET on a
 *             unix socket);
 *   bit 2     then the client takes everything (unblocked, no write limit)
 *             and the clock passes every timeout before the client's output
 *             is checked, strictly;
 *   bit 3     the client's writes start blocked;
 *   bits 5-7  the client's writes are short: at most WRITE_MAX[bits] bytes.
 * Byte 0's bit 4: the proxy keeps no connection alive (no_keepalive).
 *
 * An op byte is OP << 5 | ARG:
 *   0  the backend writes the next PIECE_LEN(ARG) payload bytes
 *   1  ... the next ARG + 1 bytes one byte per write, the loop running
 *   2  advance the virtual clock by ADVANCE_MS[ARG] (timeouts fire)
 *   3  client: ARG 0 block / 1 unblock writes, 2..9 write max
 *      WRITE_MAX[ARG - 2], 10 reset, 11 EOF, 12..31 push by (ARG - 12) % 3:
 *      0 a pipelined GET, 1 the rest of its body (or tunnel bytes), 2 garbage
 *   4  backend: ARG % 4: 0 FIN, 1 close, 2 close unread, 3 read and run
 *   5  run the loop ARG + 1 times
 *   6  the backend writes the next (ARG + 1)^2 payload bytes
 *   7  the backend writes the last piece again REPEAT[ARG % 16] times
 *      (a huge head, many fields, from a small input)
 * What is left of the payload after the ops goes in one piece.
 *
 * Checked:
 *   - the client's output is well-formed HTTP/1.1 responses, each
 *     answering one request (fuzz_support.h), possibly cut short at its
 *     end unless the strict flag made eddy finish: then a response on a
 *     connection still open has all of its body (exactly its
 *     Content-Length), and a request without a body got its answer;
 *   - a 101 only to the upgrade request, with Upgrade and Connection:
 *     upgrade; what follows it is a piece of the backend's bytes that
 *     began right after the empty line ending one of its heads;
 *   - a 502, 503 or 504 the backend never said is eddy's own: its fields
 *     are eddy's (Server, Date, Content-Type, Content-Length, Connection),
 *     its body its own text: nothing of the backend's head passes;
 *   - no hop-by-hop field of the backend's reaches the client, Server is
 *     eddy's, and no status shows up that neither eddy nor the backend
 *     could have said;
 *   - after the client resets, the backend hangs up and every timeout has
 *     passed: the server counts no connection, the proxy holds none (its
 *     connection list, pools and counters are empty), no timer runs, and
 *     the site table is referenced by the server alone (each request takes
 *     a reference and gives it back once); nothing leaks.
 *
 * Debugging one input: FUZZ_TRACE=1 prints the ops as they run, FUZZ_DUMP=1
 * what the client got and what each backend connection got. */
#include "fuzz_support.h"

#include "eddy.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"
#include "proxy/proxy.h"

#include <sys/socket.h>
#include <sys/un.h>

/* ------------------------------------------------------------ requests -- */

typedef struct kind {
    const char *name;
    const char *request; /* pushed at the start */
    const char *rest;    /* op 3's push 1: the rest of its body, or tunnel bytes */
    bool head, http10, upgrade;
    bool body;           /* the request has a body (its end may never come) */
    bool expect;         /* eddy may answer 100 Continue first */
} kind;

static const kind KINDS[] = {
    {"GET", "GET /r?q=1 HTTP/1.1\r\nHost: h\r\nX-Trace: 1\r\n\r\n", "ping", false, false, false,
     false, false},
    {"HEAD", "HEAD /r HTTP/1.1\r\nHost: h\r\n\r\n", "ping", true, false, false, false, false},
    {"POST-CL", "POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello", " world", false,
     false, false, true, false},
    {"POST-chunked",
     "POST /r HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n",
     "6\r\n world\r\n0\r\nT: v\r\n\r\n", false, false, false, true, false},
    {"upgrade",
     "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: k\r\n\r\nearly",
     "from the client", false, false, true, false, false},
    {"HTTP/1.0", "GET /r HTTP/1.0\r\nHost: h\r\n\r\n", "ping", false, true, false, false, false},
    {"PUT-expect", "PUT /r HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
     "hello", false, false, false, true, true},
    {"DELETE-close", "DELETE /r/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "ping",
     false, false, false, false, false},
};
#define NKINDS (sizeof(KINDS) / sizeof(KINDS[0]))

static const char *const PIPELINED = "GET /again HTTP/1.1\r\nHost: h\r\n\r\n";
static const char *const GARBAGE = "\x16\x03\x01 not http\r\n\r\n";

/* ------------------------------------------------------------- script -- */

static const size_t WRITE_MAX[8] = {0, 1, 2, 7, 64, 1000, 4096, 65536};
/* Around the proxy's timeouts (cfg below: connect 200, first byte and read
 * 300, tunnel 400, idle 500) and the server's (send 1000). */
static const uint64_t ADVANCE_MS[32] = {0,   1,   5,   50,  100, 199,  200,  201,
                                        250, 299, 300, 301, 350, 399,  400,  401,
                                        450, 499, 500, 501, 600, 700,  999,  1000,
                                        1001, 1200, 1500, 2000, 3000, 5000, 10000, 20000};
static const unsigned REPEAT[16] = {1, 2, 3, 5, 10, 20, 50, 98, 99, 100, 150, 200, 500, 700,
                                    1000, 2000};
/* The most the backend writes in all (repeats included). */
#define BE_MAX_OUT (512 * 1024)

static size_t piece_len(unsigned arg, size_t left)
{
    if (arg == 31)
        return left;
    return arg < 16 ? arg + 1 : (size_t)(arg - 15) * 48;
}

/* ------------------------------------------------------------ backend -- */

#define MAX_BC 16

typedef struct bconn {
    int fd;           /* -1: closed by us */
    bool rd_eof;      /* eddy closed (or shut down) its side */
    bool wr_shut;     /* we sent FIN */
    char *in;         /* what eddy sent on it (the first IN_KEEP bytes) */
    size_t in_len, in_total;
} bconn;
#define IN_KEEP 65536

static int lfd = -1;
static char sock_path[108];

static struct {
    bconn c[MAX_BC];
    int n, cur;          /* the latest accepted: the one the backend writes on */
    char *out;           /* bytes waiting to be written on cur */
    size_t out_len, out_cap;
    char *log;           /* every byte the kernel took from us, any connection */
    size_t log_len, log_cap;
    size_t total;        /* bytes queued in all (bounded by BE_MAX_OUT) */
} B;

static eddy_loop *loop;
static bool trace;

static void grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *n = realloc(*p, c);
    FZ_SETUP(n);
    *p = n;
    *cap = c;
}

static void pump(void) { loop_advance(loop, 0); }

static void be_close(int i)
{
    if (B.c[i].fd >= 0)
        close(B.c[i].fd);
    B.c[i].fd = -1;
    if (i == B.cur) {
        B.cur = -1;
        B.out_len = 0; /* what it did not take is lost with it */
    }
}

static eddy_proxy *px;

/* Takes every connection eddy made that waits in the backlog; the newest
 * is the one the backend writes on from now. */
static bool be_accept(void)
{
    bool got = false;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return got;
        got = true;
        if (B.n == MAX_BC) {
            close(fd);
            continue;
        }
        if (B.cur >= 0)
            B.out_len = 0; /* a new exchange: what the old one did not take is dropped */
        B.c[B.n] = (bconn){.fd = fd};
        B.cur = B.n++;
        if (trace)
            fprintf(stderr, "  backend: accepted connection %d\n", B.cur);
    }
}

/* Eddy made a connection the harness has not taken: it has more open than
 * the harness has seen alive (system calls are dear; accept only then). */
static bool be_pending(void)
{
    unsigned alive = 0;
    for (int i = 0; i < B.n; i++)
        alive += B.c[i].fd >= 0 && !B.c[i].rd_eof;
    return px->backends[0].conns > alive;
}

/* Reads what eddy sent on every connection; true when anything came. */
static bool be_drain(void)
{
    char buf[16384];
    bool moved = false;
    for (int i = 0; i < B.n; i++) {
        bconn *c = &B.c[i];
        while (c->fd >= 0 && !c->rd_eof) {
            ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0) {
                moved = true;
                size_t keep = c->in_len < IN_KEEP ? IN_KEEP - c->in_len : 0;
                if (keep > (size_t)n)
                    keep = (size_t)n;
                if (keep) {
                    if (!c->in)
                        FZ_SETUP(c->in = malloc(IN_KEEP));
                    memcpy(c->in + c->in_len, buf, keep);
                    c->in_len += keep;
                }
                c->in_total += (size_t)n;
                if ((size_t)n < sizeof(buf))
                    break; /* drained: the next read would say EAGAIN */
                continue;
            }
            if (n == 0) {
                moved = true;
                c->rd_eof = true;
                if (c->wr_shut || i != B.cur)
                    be_close(i); /* nothing more to say on it */
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                moved = true;
                be_close(i); /* reset */
            }
            break;
        }
    }
    return moved;
}

/* Writes what waits on the current connection, as much as it takes; true
 * when some went. */
static bool be_flush(void)
{
    size_t off = 0;
    while (B.cur >= 0 && off < B.out_len) {
        bconn *c = &B.c[B.cur];
        if (c->wr_shut)
            break;
        ssize_t n = send(c->fd, B.out + off, B.out_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            grow(&B.log, &B.log_cap, B.log_len + (size_t)n);
            memcpy(B.log + B.log_len, B.out + off, (size_t)n);
            B.log_len += (size_t)n;
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        be_close(B.cur); /* eddy closed it: EPIPE, ECONNRESET */
        return true;
    }
    if (B.cur < 0 || B.c[B.cur].wr_shut) {
        B.out_len = 0;
        return off > 0;
    }
    if (off) {
        memmove(B.out, B.out + off, B.out_len - off);
        B.out_len -= off;
    }
    return off > 0;
}

/* Runs the loop and moves bytes both ways until nothing moves (bounded). */
static void settle(void)
{
    for (int i = 0; i < 64; i++) {
        pump();
        bool moved = be_drain();
        if (be_pending())
            moved |= be_accept();
        moved |= be_flush();
        if (!moved)
            break;
    }
}

/* There is a connection to write on: the current one, or the next eddy
 * makes (a few turns of the loop are waited for it). */
static bool be_ready(void)
{
    for (int i = 0; i < 4 && B.cur < 0; i++) {
        be_drain();
        if (be_pending() && be_accept())
            break;
        pump();
    }
    return B.cur >= 0;
}

/* The backend writes n bytes on the current connection; without one they
 * are lost. */
static void be_append(const void *p, size_t n)
{
    if (!n || B.total + n > BE_MAX_OUT || B.cur < 0)
        return;
    B.total += n;
    grow(&B.out, &B.out_cap, B.out_len + n);
    memcpy(B.out + B.out_len, p, n);
    B.out_len += n;
}

static void be_write(const void *p, size_t n)
{
    be_append(p, n);
    be_flush();
}

/* The backend ends its current connection: 0 FIN, 1 close, 2 close with
 * eddy's bytes unread. */
static void be_end(unsigned how)
{
    if (B.cur < 0)
        return;
    bconn *c = &B.c[B.cur];
    if (how == 0) {
        if (!c->wr_shut) {
            be_flush();
            if (B.cur >= 0) {
                shutdown(c->fd, SHUT_WR);
                c->wr_shut = true;
                B.out_len = 0;
            }
        }
        return;
    }
    if (how == 1)
        be_drain();
    if (B.cur >= 0)
        be_close(B.cur);
}

/* ------------------------------------------------------------- checks -- */

static bool ended(const mock_stream *m) { return mock_closed(m) || mock_write_shut(m); }

/* The status as text appears anywhere in what the backend wrote. */
static bool backend_said(int status)
{
    char s[4];
    snprintf(s, sizeof(s), "%03d", status);
    return B.log_len >= 3 && memmem(B.log, B.log_len, s, 3) != NULL;
}

static bool eddy_may_say(int status, const kind *k)
{
    switch (status) {
    case 100:
        return k->expect;
    case 400: case 408: case 413: case 414: case 431: /* the server's, to the client's bytes */
    case 500: case 501: case 505:
    case 502: case 503: case 504:                     /* the proxy's */
        return true;
    default:
        return false;
    }
}

/* Every field line of a head, by name. */
typedef bool (*field_fn)(const char *name, size_t nl, const char *value, size_t vl, void *ctx);

static void each_field(const char *h, size_t hlen, field_fn fn, void *ctx)
{
    const char *p = memmem(h, hlen, "\r\n", 2), *end = h + hlen;
    while (p && p + 2 <= end) {
        p += 2;
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < eol && *v == ' ')
                v++;
            if (!fn(p, (size_t)(colon - p), v, (size_t)(eol - v), ctx))
                FZ_CHECK(false, "bad field in a response: %.*s", (int)(eol - p > 200 ? 200 : eol - p), p);
        }
        p = eol;
    }
}

static bool name_is(const char *n, size_t nl, const char *lit)
{
    return strlen(lit) == nl && strncasecmp(n, lit, nl) == 0;
}

/* Fields of a response eddy made itself (a 502 of its own). */
static bool own_field(const char *n, size_t nl, const char *v, size_t vl, void *ctx)
{
    (void)ctx;
    if (name_is(n, nl, "Content-Type"))
        return vl == 25 && memcmp(v, "text/plain; charset=utf-8", 25) == 0;
    return name_is(n, nl, "Server") || name_is(n, nl, "Date") || name_is(n, nl, "Content-Length") ||
           name_is(n, nl, "Connection");
}

/* Fields of any response: no hop-by-hop one of the backend's. */
static bool passed_field(const char *n, size_t nl, const char *v, size_t vl, void *ctx)
{
    int status = *(int *)ctx;
    if (name_is(n, nl, "Server"))
        return vl == 4 && memcmp(v, "eddy", 4) == 0;
    if (name_is(n, nl, "Upgrade"))
        return status == 101;
    return !name_is(n, nl, "Keep-Alive") && !name_is(n, nl, "Proxy-Connection") &&
           !name_is(n, nl, "TE") && !name_is(n, nl, "Trailer");
}

/* An Upgrade line with a protocol in it (there may be several). */
static bool upgrade_named(const char *n, size_t nl, const char *v, size_t vl, void *ctx)
{
    if (name_is(n, nl, "Upgrade") && vl)
        *(bool *)ctx = true;
    return true;
}

/* What follows a 101 is a piece of the backend's bytes that began right
 * after the empty line ending one of its heads (CRLF, or the bare LF that
 * llhttp takes there, from a client's request as from a backend). */
static void check_tunnel_bytes(const char *t, size_t tl)
{
    if (!tl)
        return;
    const char *l = B.log;
    for (size_t k = 2; k + tl <= B.log_len; k++) {
        if (l[k - 1] != '\n' || (l[k - 2] != '\n' && !(k >= 3 && l[k - 2] == '\r' && l[k - 3] == '\n')))
            continue;
        if (memcmp(l + k, t, tl) == 0)
            return;
    }
    FZ_CHECK(false, "%zu tunnel bytes the backend did not send after a head: %.*s", tl,
             (int)(tl > 80 ? 80 : tl), t);
}

#define MAX_ANSWERS 40

static void check_client(const char *o, size_t len, const kind *k, const fz_answer *answers,
                         size_t nanswers, bool strict, bool open, bool waiting_body)
{
    if (k->upgrade && len >= 13 && memcmp(o, "HTTP/1.1 101 ", 13) == 0) {
        const char *he = memmem(o, len, "\r\n\r\n", 4);
        if (!he) {
            FZ_CHECK(!strict || !open, "a 101 head cut short on an open connection");
            return;
        }
        size_t hlen = (size_t)(he - o);
        /* Upgrade is a list: a 101 may carry it on several lines (the
         * checker takes it for one of eddy's own fields otherwise). */
        char *copy = malloc(hlen);
        FZ_SETUP(copy);
        memcpy(copy, o, hlen);
        for (size_t i = 0; i + 10 <= hlen; i++)
            if (copy[i] == '\r' && strncasecmp(copy + i + 2, "Upgrade:", 8) == 0)
                copy[i + 2] = 'X';
        fz_check_head(copy, hlen);
        free(copy);
        int st = 101;
        each_field(o, hlen, passed_field, &st);
        bool named = false;
        each_field(o, hlen, upgrade_named, &named);
        FZ_CHECK(named, "a 101 without Upgrade: %.*s", (int)hlen, o);
        size_t vl;
        const char *c = fz_field(o, hlen, "Connection", &vl);
        FZ_CHECK(c && vl == 7 && strncasecmp(c, "upgrade", 7) == 0,
                 "a 101 without Connection: upgrade: %.*s", (int)hlen, o);
        check_tunnel_bytes(he + 4, len - (size_t)(he + 4 - o));
        return;
    }
    fz_response rs[MAX_ANSWERS];
    fz_check_opts opt = {.allow_partial = !strict || !open,
                         .max_status = 999, /* eddy passes what eddy_respond takes */
                         .answers = answers,
                         .nanswers = nanswers,
                         .out = rs,
                         .max_out = MAX_ANSWERS};
    fz_stream_stats s = fz_check_stream_opts(o, len, &opt);
    unsigned finals = 0;
    for (unsigned i = 0; i < s.responses && i < MAX_ANSWERS; i++) {
        fz_response *r = &rs[i];
        const char *h = o + r->off;
        int st = r->status;
        finals += st >= 200;
        size_t vl;
        FZ_CHECK(st < 200 || fz_field(h, r->head_len, "Server", &vl),
                 "a response without eddy's Server field: %.*s", (int)r->head_len, h);
        FZ_CHECK(st != 101, "a 101 to a request that asked for no upgrade");
        FZ_CHECK(backend_said(st) || eddy_may_say(st, k),
                 "status %d that neither eddy nor the backend said", st);
        each_field(h, r->head_len, passed_field, &st);
        if ((st == 502 || st == 503 || st == 504) && !backend_said(st)) {
            /* Eddy's own answer: nothing of the backend's in it. */
            each_field(h, r->head_len, own_field, NULL);
            char body[64];
            int n = snprintf(body, sizeof(body), "%d %s\n", st,
                             st == 502 ? "Bad Gateway" : st == 503 ? "Service Unavailable"
                                                                   : "Gateway Timeout");
            size_t have = r->body_len < (size_t)n ? r->body_len : (size_t)n;
            FZ_CHECK(r->framing == FZ_BODY_LENGTH || r->framing == FZ_BODY_NONE,
                     "eddy's own %d not framed by its length", st);
            FZ_CHECK(memcmp(o + r->body_off, body, have) == 0 &&
                         (r->framing == FZ_BODY_NONE || !r->complete || r->body_len == (size_t)n),
                     "eddy's own %d has a body not its own: %.*s", st, (int)r->body_len,
                     o + r->body_off);
        }
    }
    /* Once eddy had every chance to finish: a request without a body that
     * the backend had all the time to answer was answered. */
    if (strict && open && !waiting_body)
        FZ_CHECK(finals >= 1, "no final response on an open connection after every timeout");
}

/* ---------------------------------------------------------------- life -- */

static eddy_config cfg;
static eddy_proxy_config pcfg;
static const char *backend_urls[1];
static eddy_server *srv;

static void remove_sock(void) { unlink(sock_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* In TMPDIR (fuzz/run.sh points it into the build tree, so a crash,
     * which skips atexit, leaves nothing in /tmp) when the path fits. */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > sizeof(sock_path) - 40)
        tmp = "/tmp";
    snprintf(sock_path, sizeof(sock_path), "%s/eddy-fuzz-proxy-%d.sock", tmp, (int)getpid());
    unlink(sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FZ_SETUP(lfd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
    FZ_SETUP(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    FZ_SETUP(listen(lfd, 64) == 0);
    atexit(remove_sock);
    static char url[128];
    snprintf(url, sizeof(url), "unix:%s", sock_path);
    backend_urls[0] = url;
    cfg = (eddy_config){
        .no_http2 = true,
        .max_body = 8192,
        .header_ms = 3000,
        .keepalive_ms = 60000,
        .send_ms = 1000,
    };
    pcfg = (eddy_proxy_config){
        .backends = backend_urls,
        .nbackends = 1,
        .connect_ms = 200,
        .first_byte_ms = 300,
        .read_ms = 300,
        .tunnel_ms = 400,
        .idle_ms = 500,
    };
    trace = getenv("FUZZ_TRACE") != NULL;
    /* Made once: their allocations (a loop's scratch space, the proxy's
     * buffers) would cost more than most inputs.  Every input leaves them
     * as it found them (checked at its end), and the proxy's passive health
     * is reset before each. */
    loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    eddy_loop_set_io_uring(loop, false);
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    char err[200];
    FZ_SETUP(eddy_proxy_new(loop, &pcfg, &px, err, sizeof(err)) == 0);
    eddy_route route = {.path = "/", .prefix = true, .body = EDDY_BODY_STREAM,
                        .handler = eddy_proxy_handler, .data = px};
    FZ_SETUP(eddy_server_route(srv, &route) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t nops = data[size - 1];
    if (nops > size - 3)
        nops = size - 3;
    const uint8_t *ops = data + size - 1 - nops;
    const uint8_t *payload = data + 2;
    size_t payload_len = size - 3 - nops, at = 0;
    const kind *k = &KINDS[(data[0] & 15) % NKINDS];
    unsigned flags = data[1];

    memset(B.c, 0, sizeof(B.c));
    B.n = 0;
    B.cur = -1;
    B.out_len = B.log_len = B.total = 0;

    /* What an earlier input left in the proxy: its backend's failures. */
    for (unsigned i = 0; i < px->nbackends; i++) {
        px->backends[i].fails = 0;
        px->backends[i].down_until = 0;
    }
    px->next = 0;
    px->keepalive = data[0] & 16 ? 0 : PROXY_DEFAULT_KEEPALIVE; /* as no_keepalive would */

    mock_stream *m = mock_stream_new(loop);
    FZ_SETUP(m && server_attach(srv, mock_stream_base(m), false));
    bool blocked = flags & 8, client_gone = false, client_eof = false, rest_sent = false;
    mock_set_write_max(m, WRITE_MAX[flags >> 5]);
    mock_block_writes(m, blocked);
    fz_answer answers[MAX_ANSWERS];
    size_t nanswers = 0;
    answers[nanswers++] = (fz_answer){.head = k->head, .http10 = k->http10};
    if (k->expect || k->upgrade) /* room for eddy's 100 Continue; for what the */
        answers[nanswers++] = (fz_answer){0}; /* tunnel's early bytes are without one */
    if (trace)
        fprintf(stderr, "input: %s, flags 0x%02x, %zu payload bytes, %zu ops\n", k->name, flags,
                payload_len, nops);
    mock_push_str(m, k->request);
    settle();

    size_t last_at = 0, last_len = 0; /* the last piece, for op 7 */
    for (size_t i = 0; i < nops; i++) {
        unsigned op = ops[i] >> 5, arg = ops[i] & 31;
        if (trace)
            fprintf(stderr, "op %zu: %u/%u (payload at %zu, clock %llu, backend conn %d, %u client conns)\n",
                    i, op, arg, at, (unsigned long long)eddy_loop_now(loop), B.cur,
                    eddy_server_connections(srv));
        switch (op) {
        case 0:
        case 6: {
            size_t n = op == 0 ? piece_len(arg, payload_len - at) : (size_t)(arg + 1) * (arg + 1);
            if (n > payload_len - at)
                n = payload_len - at;
            if (n) {
                last_at = at;
                last_len = n;
                if (be_ready())
                    be_write(payload + at, n);
                at += n;
            }
            settle();
            break;
        }
        case 1:
            for (size_t n = arg + 1; n && at < payload_len; n--) {
                last_at = at;
                last_len = 1;
                if (be_ready()) {
                    be_write(payload + at, 1);
                    settle();
                }
                at++;
            }
            break;
        case 2:
            loop_advance(loop, ADVANCE_MS[arg]);
            settle();
            break;
        case 3:
            if (client_gone)
                break;
            if (arg < 2) {
                blocked = arg == 0;
                mock_block_writes(m, blocked);
            } else if (arg < 10) {
                mock_set_write_max(m, WRITE_MAX[arg - 2]);
            } else if (arg == 10) {
                mock_push_reset(m);
                client_gone = true;
            } else if (!client_eof && nanswers < MAX_ANSWERS) {
                if (arg == 11) {
                    mock_push_eof(m);
                    client_eof = true;
                } else {
                    unsigned e = (arg - 12) % 3;
                    const char *s = e == 0 ? PIPELINED : e == 1 ? k->rest : GARBAGE;
                    if (e == 1)
                        rest_sent = true;
                    mock_push_str(m, s);
                    /* An answer each: a response, a 400, or none (the tunnel's). */
                    answers[nanswers++] = (fz_answer){0};
                }
            }
            settle();
            break;
        case 4:
            if (arg % 4 == 3)
                be_drain();
            else
                be_end(arg % 4);
            settle();
            break;
        case 5:
            for (unsigned n = 0; n <= arg; n++)
                pump();
            settle();
            break;
        case 7:
            /* In batches of up to 64 KiB, running the loop in between. */
            for (unsigned n = 0, times = REPEAT[arg % 16];
                 last_len && n < times && be_ready() && B.total + last_len <= BE_MAX_OUT;) {
                for (size_t batch = 0; n < times && batch < 65536; n++, batch += last_len)
                    be_append(payload + last_at, last_len);
                be_flush();
                settle();
            }
            settle();
            break;
        }
    }
    if (at < payload_len && be_ready())
        be_write(payload + at, payload_len - at);
    settle();
    if (flags & 3)
        be_end((flags & 3) - 1);
    settle();

    bool strict = (flags & 4) && !client_gone;
    if (strict) {
        /* The client takes all; every timeout passes (the proxy's, and the
         * server's send_ms); eddy must have finished or cut every response. */
        mock_block_writes(m, false);
        mock_set_write_max(m, 0);
        blocked = false;
        settle();
        for (int i = 0; i < 4; i++) {
            loop_advance(loop, 1001);
            settle();
        }
    }
    size_t olen;
    const char *out = mock_output(m, &olen);
    fz_dump("client", out, olen);
    for (int i = 0; i < B.n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "backend connection %d (%zu bytes in all)", i, B.c[i].in_total);
        fz_dump(what, B.c[i].in ? B.c[i].in : "", B.c[i].in_len);
    }
    fz_dump("backend wrote", B.log ? B.log : "", B.log_len);
    /* A request whose body the client never finished may wait for it. */
    bool waiting_body = (k->body && !rest_sent) || client_eof;
    check_client(out, olen, k, answers, nanswers, strict, !ended(m), waiting_body);

    /* Everyone hangs up; every deadline passes.  Nothing may be left. */
    if (!client_gone)
        mock_push_reset(m);
    settle();
    FZ_CHECK(mock_closed(m), "the client's connection not closed after a reset");
    be_drain();
    for (int i = 0; i < B.n; i++)
        be_close(i);
    loop_advance(loop, 100000);
    settle();
    FZ_CHECK(eddy_server_connections(srv) == 0, "%u connections left after resets and timeouts",
             eddy_server_connections(srv));
    FZ_CHECK(px->conns == NULL, "the proxy holds a connection after its backend left");
    for (unsigned i = 0; i < px->nbackends; i++) {
        backend *be = &px->backends[i];
        FZ_CHECK(be->active == 0 && be->conns == 0 && be->nidle == 0 && !be->idle,
                 "backend %u: %u active, %u connections, %u idle", i, be->active, be->conns,
                 be->nidle);
    }
    FZ_CHECK(loop_pending_timers(loop) == 0, "%zu timers left running",
             loop_pending_timers(loop));
    /* Each request holds a reference to the sites it is routed by, taken
     * when it begins and dropped when it is freed: none is left, and none
     * was dropped twice. */
    FZ_CHECK(srv->front.sites->refs == 1, "the site table has %u references, not 1",
             srv->front.sites->refs);
    mock_stream_free(m);
    /* Connections eddy made that were never accepted. */
    for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
        close(fd);
    for (int i = 0; i < B.n; i++)
        free(B.c[i].in);
    return 0;
}
