/* The proxy handler between a client on a mock stream and a backend that
 * is a real socket of the test's, driven a step at a time on the virtual
 * clock: the head the backend gets (byte-exact), strict checks of its
 * answers, framing both ways a byte at a time, timeouts, retries, health,
 * backpressure, a client leaving, and an upgrade tunnel. */
#include "harness.h"
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- backend -- */

typedef struct backend_sock {
    int lfd;          /* listening */
    int fd;           /* the connection eddy made (-1: none yet) */
    int accepted;     /* connections accepted so far */
    char url[64];
} backend_sock;

static void be_open(backend_sock *b)
{
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(b->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(b->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(b->lfd, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(b->lfd, (struct sockaddr *)&a, &len);
    snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%u", ntohs(a.sin_port));
    b->fd = -1;
    b->accepted = 0;
}

static void be_close(backend_sock *b)
{
    if (b->fd >= 0)
        close(b->fd);
    if (b->lfd >= 0)
        close(b->lfd);
    b->fd = b->lfd = -1;
}

/* Turns of eddy's loop with a short real wait, so the kernel moves bytes
 * between eddy's sockets and the test's. */
static void pump(fixture *fx)
{
    for (int i = 0; i < 3; i++) {
        fx_run(fx);
        usleep(1000);
    }
    fx_run(fx);
}

/* Accepts eddy's next connection, pumping until it comes (2 s at most). */
static void be_accept(backend_sock *b, fixture *fx)
{
    for (int i = 0; i < 2000; i++) {
        int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd >= 0) {
            if (b->fd >= 0)
                close(b->fd);
            b->fd = fd;
            b->accepted++;
            return;
        }
        pump(fx);
    }
    fail_msg("eddy never connected to the backend");
}

/* Reads what eddy sent until `until` shows up (or the connection ends):
 * a NUL-terminated copy the caller frees. */
static char *be_read(backend_sock *b, fixture *fx, const char *until, size_t *out_len)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (int i = 0; i < 2000; i++) {
        ssize_t n = recv(b->fd, buf + len, cap - len, 0);
        if (n > 0) {
            len += (size_t)n;
            if (len == cap)
                buf = realloc(buf, (cap *= 2) + 1);
            buf[len] = 0;
            if (until && memmem(buf, len, until, strlen(until)))
                break;
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN))
            break;
        pump(fx);
    }
    buf[len] = 0;
    if (out_len)
        *out_len = len;
    return buf;
}

static void be_send(backend_sock *b, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(b->fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* True once eddy closed its connection to the backend. */
static bool be_sees_close(backend_sock *b, fixture *fx)
{
    char c;
    for (int i = 0; i < 2000; i++) {
        ssize_t n = recv(b->fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return true;
        if (n > 0)
            return false;
        pump(fx);
    }
    return false;
}

/* -------------------------------------------------------------- set-up -- */

typedef struct setup {
    fixture *fx;
    eddy_proxy *px;
    backend_sock be[2];
} setup;

static setup S;

static void start(eddy_proxy_config *cfg, unsigned nbackends, const char *path)
{
    memset(&S, 0, sizeof(S));
    S.fx = fx_new_without_files(NULL);
    const char *urls[2];
    for (unsigned i = 0; i < nbackends; i++) {
        be_open(&S.be[i]);
        urls[i] = S.be[i].url;
    }
    for (unsigned i = nbackends; i < 2; i++)
        S.be[i].fd = S.be[i].lfd = -1;
    cfg->backends = urls;
    cfg->nbackends = nbackends;
    char err[200];
    assert_int_equal(eddy_proxy_new(S.fx->loop, cfg, &S.px, err, sizeof(err)), 0);
    eddy_route r = {.path = path, .prefix = true, .body = EDDY_BODY_STREAM,
                    .handler = eddy_proxy_handler, .data = S.px};
    assert_int_equal(eddy_server_route(S.fx->srv, &r), 0);
}

static void finish(mock_stream *m)
{
    if (m) {
        mock_push_reset(m);
        fx_run(S.fx);
    }
    eddy_server_free(S.fx->srv);
    S.fx->srv = NULL;
    eddy_proxy_free(S.px);
    for (int i = 0; i < 2; i++)
        be_close(&S.be[i]);
    fx_run(S.fx);
    if (m)
        mock_stream_free(m);
    /* Nothing of the proxy's is left on the loop, and it took back no
     * more than it registered (a loop that thinks itself idle stops). */
    assert_int_equal(loop_pending_timers(S.fx->loop), 0);
    assert_false(loop_alive(S.fx->loop));
    eddy_server_new(S.fx->loop, NULL, &S.fx->srv); /* fx_free frees one */
    fx_free(S.fx);
}

static mock_stream *client(const char *bytes)
{
    mock_stream *m = fx_connect(S.fx);
    mock_push_str(m, bytes);
    pump(S.fx);
    return m;
}

/* What the client got, waiting for `until` (2 s at most). */
static char *client_got(mock_stream *m, const char *until)
{
    for (int i = 0; i < 2000; i++) {
        char *out = fx_output(m);
        if (!until || strstr(out, until) || mock_closed(m))
            return out;
        free(out);
        pump(S.fx);
    }
    return fx_output(m);
}

/* --------------------------------------------------------------- tests -- */

static void forwards_a_rebuilt_head(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/api");
    mock_stream *m = client("GET /api/a%20b/../c?q=%41 HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "Connection: keep-alive, X-Drop\r\n"
                            "X-Drop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
                            "Proxy-Connection: x\r\nX-Forwarded-For: 6.6.6.6\r\n"
                            "X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n"
                            "User-Agent: t\r\nAccept: */*\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_string_equal(got, "GET /api/a%20b/../c?q=%41 HTTP/1.1\r\n"
                             "Host: example.com\r\n"
                             "User-Agent: t\r\nAccept: */*\r\n"
                             "X-Forwarded-For: " MOCK_PEER "\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: example.com\r\n\r\n");
    free(got);
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
                      "X-B: 1\r\nServer: backend\r\nDate: yesterday\r\n"
                      "Content-Type: text/x-test\r\n\r\nhello");
    char *out = client_got(m, "hello");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Server: eddy\r\n"));
    assert_null(strstr(out, "backend"));
    assert_null(strstr(out, "yesterday"));
    assert_non_null(strstr(out, "Content-Type: text/x-test\r\n"));
    assert_non_null(strstr(out, "Content-Length: 5\r\n"));
    assert_non_null(strstr(out, "X-B: 1\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nhello"));
    assert_false(mock_closed(m));
    free(out);
    finish(m);
}

static void strip_prefix_host_and_forwarded(void **state)
{
    eddy_proxy_config cfg = {.strip_prefix = "/api", .host = "inner:8080",
                             .forwarded = EDDY_FORWARDED_RFC7239};
    start(&cfg, 1, "/api");
    mock_stream *m = client("GET /api HTTP/1.1\r\nHost: ex.com:81\r\n"
                            "X-Forwarded-For: 6.6.6.6\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    /* Not trusted: the client's X-Forwarded-For goes too. */
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: inner:8080\r\n"
                             "Forwarded: for=" MOCK_PEER ";proto=http;host=\"ex.com:81\"\r\n\r\n");
    free(got);
    be_send(&S.be[0], "HTTP/1.1 204 No Content\r\n\r\n");
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 204 No Content\r\n"));
    free(out);
    mock_push_str(m, "GET /api/x/y HTTP/1.1\r\nHost: ex.com\r\n\r\n");
    pump(S.fx);
    got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_true(strncmp(got, "GET /x/y HTTP/1.1\r\n", 19) == 0);
    assert_int_equal(S.be[0].accepted, 1); /* the same connection, kept */
    free(got);
    finish(m);
}

/* The client's chunked body, a byte at a time, reaches the backend whole
 * and chunked; the backend's chunked answer, a byte at a time, reaches the
 * client. */
static void bodies_a_byte_at_a_time(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = fx_connect(S.fx);
    mock_push_bytewise(m, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    pump(S.fx);
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "0\r\n\r\n", NULL);
    char *body = strstr(got, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(got, "Transfer-Encoding: chunked\r\n"));
    /* De-chunk what came. */
    char whole[64] = "";
    const char *p = body + 4;
    for (;;) {
        unsigned long n = strtoul(p, (char **)&p, 16);
        p += 2;
        if (!n)
            break;
        strncat(whole, p, n);
        p += n + 2;
    }
    assert_string_equal(whole, "hello world");
    free(got);
    const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
    for (const char *q = resp; *q; q++) {
        char one[2] = {*q, 0};
        be_send(&S.be[0], one);
        pump(S.fx);
    }
    char *out = client_got(m, "0\r\n\r\n");
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
    const char *b = strstr(out, "\r\n\r\n") + 4;
    /* Whatever the chunk sizes, the content is abcde and the end is clean. */
    char content[16] = "";
    for (;;) {
        unsigned long n = strtoul(b, (char **)&b, 16);
        b += 2;
        if (!n)
            break;
        strncat(content, b, n);
        b += n + 2;
    }
    assert_string_equal(content, "abcde");
    assert_null(strstr(out, "X-Trailer"));
    free(out);
    finish(m);
}

/* A body delimited by the backend closing reaches an HTTP/1.1 client
 * chunked, ended cleanly, on a connection that stays open. */
static void close_delimited_body_ends_well(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil");
    pump(S.fx);
    be_send(&S.be[0], " the end");
    pump(S.fx);
    close(S.be[0].fd);
    S.be[0].fd = -1;
    char *out = client_got(m, "0\r\n\r\n");
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "until"));
    assert_non_null(strstr(out, " the end\r\n0\r\n\r\n"));
    assert_false(mock_ended(m));
    free(out);
    finish(m);
}

/* Each answer a backend must not give: 502, and none of it passes. */
static void bad_answers_are_502(void **state)
{
    static const char *bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Space : a\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\nContent-Length: 0\r\n\r\n",
        "SMTP ready\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        eddy_proxy_config cfg = {.max_fails = 1000};
        start(&cfg, 1, "/");
        mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        be_accept(&S.be[0], S.fx);
        free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
        be_send(&S.be[0], bad[i]);
        char *out = client_got(m, "\r\n\r\n");
        if (!strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"))
            fail_msg("answer %zu: got %s", i, out);
        assert_null(strstr(out, "X-"));
        free(out);
        finish(m);
    }
}

static void head_too_large_or_too_many_fields(void **state)
{
    for (int kind = 0; kind < 2; kind++) {
        eddy_proxy_config cfg = {0};
        start(&cfg, 1, "/");
        mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        be_accept(&S.be[0], S.fx);
        free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
        be_send(&S.be[0], "HTTP/1.1 200 OK\r\n");
        char line[200];
        int n = kind == 0 ? 700 : RESPONSE_MAX_OWN_FIELDS + 1;
        for (int i = 0; i < n; i++) {
            snprintf(line, sizeof(line), "X-%d: %0100d\r\n", i, 0);
            send(S.be[0].fd, line, strlen(line), MSG_NOSIGNAL);
            if (i % 50 == 0)
                pump(S.fx);
        }
        send(S.be[0].fd, "\r\n", 2, MSG_NOSIGNAL);
        char *out = client_got(m, "\r\n\r\n");
        assert_non_null(strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"));
        free(out);
        finish(m);
    }
}

static void head_and_304_keep_their_fields(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_true(strncmp(got, "HEAD /f HTTP/1.1\r\n", 18) == 0);
    free(got);
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"e\"\r\n\r\n");
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "Content-Length: 1000\r\n"));
    assert_true(strlen(strstr(out, "\r\n\r\n")) == 4); /* no body */
    free(out);
    mock_clear_output(m);
    mock_push_str(m, "GET /f HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"e\"\r\n\r\n");
    pump(S.fx);
    got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_non_null(strstr(got, "If-None-Match: \"e\"\r\n"));
    free(got);
    be_send(&S.be[0], "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n");
    out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 304 Not Modified\r\n"));
    assert_non_null(strstr(out, "ETag: \"e\"\r\n"));
    assert_int_equal(S.be[0].accepted, 1);
    free(out);
    finish(m);
}

static void first_byte_timeout_is_504(void **state)
{
    eddy_proxy_config cfg = {.first_byte_ms = 3000};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    fx_advance(S.fx, 2999);
    char *out = fx_output(m);
    assert_string_equal(out, "");
    free(out);
    fx_advance(S.fx, 1);
    out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 504 Gateway Timeout\r\n"));
    free(out);
    assert_true(be_sees_close(&S.be[0], S.fx));
    finish(m);
}

/* Between reads of a body: the response is cut, the client's connection closed. */
static void read_timeout_cuts_the_body(void **state)
{
    eddy_proxy_config cfg = {.read_ms = 2000};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    char *out = client_got(m, "abc");
    free(out);
    fx_advance(S.fx, 2000);
    pump(S.fx);
    assert_true(mock_ended(m));
    out = fx_output(m);
    assert_non_null(strstr(out, "Content-Length: 10\r\n\r\nabc"));
    assert_true(strlen(strstr(out, "abc")) == 3);
    free(out);
    finish(NULL);
    mock_stream_free(m);
}

static void refused_goes_to_the_other_backend(void **state)
{
    eddy_proxy_config cfg = {.max_fails = 1, .fail_ms = 10000};
    start(&cfg, 2, "/");
    be_close(&S.be[0]); /* refuses from now on */
    for (int i = 0; i < 3; i++) {
        mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        if (i == 0)
            be_accept(&S.be[1], S.fx);
        free(be_read(&S.be[1], S.fx, "\r\n\r\n", NULL));
        be_send(&S.be[1], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        char *out = client_got(m, "ok");
        assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
        free(out);
        mock_push_reset(m);
        fx_run(S.fx);
        mock_stream_free(m);
    }
    finish(NULL);
}

/* A POST is not sent twice: the refused backend's failure is the answer. */
static void post_is_not_retried(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 2, "/");
    be_close(&S.be[0]);
    be_close(&S.be[1]);
    mock_stream *m = client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"));
    free(out);
    finish(m);
}

static void all_down_is_503(void **state)
{
    eddy_proxy_config cfg = {.max_fails = 1, .fail_ms = 10000};
    start(&cfg, 1, "/");
    be_close(&S.be[0]);
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"));
    free(out);
    mock_clear_output(m);
    mock_push_str(m, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 503 Service Unavailable\r\n"));
    free(out);
    mock_clear_output(m);
    fx_advance(S.fx, 10000); /* down no longer: tried again (and refused) */
    mock_push_str(m, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"));
    free(out);
    finish(m);
}

static void client_leaving_resets_the_backend(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    mock_push_reset(m);
    pump(S.fx);
    assert_true(be_sees_close(&S.be[0], S.fx));
    finish(NULL);
    mock_stream_free(m);
}

/* A client that takes nothing: eddy stops reading the backend, whose
 * writes then block; once the client takes, all of it arrives. */
/* While the backend's bytes come at once, the client's last packet is
 * held for them (the mock counts what a socket would hold back): a head
 * and a body that come apart leave together.  When the backend pauses,
 * what is held goes PROXY_PUSH_MS later; the last piece is never held. */
static void held_packets_fill_or_go(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n");
    char *out = client_got(m, "\r\n\r\n");
    assert_int_equal(mock_held(m), strlen(out)); /* the head waits for its body */
    free(out);
    be_send(&S.be[0], "abc");
    out = client_got(m, "abc");
    assert_int_equal(mock_held(m), strlen(out));
    free(out);
    assert_int_equal(mock_pushes(m), 0);
    fx_advance(S.fx, PROXY_PUSH_MS - 1);
    assert_int_equal(mock_pushes(m), 0);
    fx_advance(S.fx, 1); /* the backend paused: what is held goes */
    assert_int_equal(mock_pushes(m), 1);
    assert_int_equal(mock_held(m), 0);
    be_send(&S.be[0], "def");
    out = client_got(m, "abcdef");
    free(out);
    assert_int_equal(mock_held(m), 0);
    assert_int_equal(mock_pushes(m), 1);

    /* A client that could not take the body, drained later: its last
     * packet is held for the backend too, and pushed when none comes. */
    mock_clear_output(m);
    mock_push_str(m, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    mock_block_writes(m, true);
    enum { BIG = 3 * 65536 };
    static char big[BIG + 64];
    int head = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG + 1);
    memset(big + head, '#', BIG);
    big[head + BIG] = 0;
    be_send(&S.be[0], big);
    pump(S.fx);
    mock_block_writes(m, false);
    size_t body = 0;
    for (int i = 0; i < 2000 && body < BIG; i++) {
        pump(S.fx);
        size_t len;
        const char *o = mock_output(m, &len);
        body = 0;
        for (size_t k = 0; k < len; k++)
            body += o[k] == '#';
    }
    assert_int_equal(body, BIG);
    assert_true(mock_held(m) > 0);
    fx_advance(S.fx, PROXY_PUSH_MS);
    assert_int_equal(mock_pushes(m), 2);
    assert_int_equal(mock_held(m), 0);
    be_send(&S.be[0], "z");
    out = client_got(m, "#z");
    free(out);
    assert_int_equal(mock_held(m), 0);
    finish(m);
}

static void slow_client_slows_the_backend(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    mock_block_writes(m, true);
    size_t total = 64 << 20;
    char head[80];
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", total);
    be_send(&S.be[0], head);
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    size_t sent = 0;
    int stalls = 0;
    while (sent < total && stalls < 50) {
        size_t want = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
        ssize_t n = send(S.be[0].fd, chunk, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            stalls = 0;
        } else {
            pump(S.fx);
            stalls++;
        }
    }
    /* Stopped far short of the whole: what eddy holds is bounded. */
    assert_true(sent < total / 4);
    mock_block_writes(m, false);
    size_t seen = 0;
    for (int i = 0; i < 200000 && seen < total; i++) {
        size_t want = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
        ssize_t n = want ? send(S.be[0].fd, chunk, want, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
        if (n > 0)
            sent += (size_t)n;
        fx_run(S.fx);
        size_t len;
        mock_output(m, &len);
        seen += len;
        mock_clear_output(m);
        if (n <= 0 && len == 0)
            usleep(500);
    }
    assert_true(sent == total);
    assert_true(seen > total); /* the head and the whole body */
    finish(m);
}

static void upgrade_tunnels_both_ways(void **state)
{
    eddy_proxy_config cfg = {.tunnel_ms = 5000};
    start(&cfg, 1, "/");
    mock_stream *m = client("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\nearly");
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_non_null(strstr(got, "Upgrade: websocket\r\n"));
    assert_non_null(strstr(got, "Connection: upgrade\r\n"));
    assert_non_null(strstr(got, "Sec-WebSocket-Key: k\r\n"));
    free(got);
    be_send(&S.be[0], "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: a\r\n\r\nfirst");
    char *out = client_got(m, "first");
    assert_non_null(strstr(out, "HTTP/1.1 101 "));
    assert_non_null(strstr(out, "Connection: upgrade\r\n"));
    assert_non_null(strstr(out, "Upgrade: websocket\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nfirst"));
    free(out);
    got = be_read(&S.be[0], S.fx, "early", NULL);
    assert_string_equal(got, "early");
    free(got);
    mock_push_str(m, "from client");
    pump(S.fx);
    got = be_read(&S.be[0], S.fx, "client", NULL);
    assert_string_equal(got, "from client");
    free(got);
    /* Idle past tunnel_ms: both close. */
    fx_advance(S.fx, 5000);
    pump(S.fx);
    assert_true(be_sees_close(&S.be[0], S.fx));
    assert_true(mock_ended(m));
    finish(NULL);
    mock_stream_free(m);
}

static void expect_continue_is_eddys(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    mock_stream *m = client("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                            "Expect: 100-continue\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_null(strstr(got, "Expect"));
    assert_non_null(strstr(got, "Content-Length: 5\r\n"));
    free(got);
    char *out = client_got(m, "100 Continue");
    assert_non_null(strstr(out, "HTTP/1.1 100 Continue\r\n\r\n"));
    free(out);
    mock_push_str(m, "12345");
    pump(S.fx);
    got = be_read(&S.be[0], S.fx, "12345", NULL);
    assert_string_equal(got, "12345");
    free(got);
    finish(m);
}

/* A backend whose accept queue is full never completes a connect: 504
 * once connect_ms passes (and its connections are let go). */
static void connect_timeout_is_504(void **state)
{
    eddy_proxy_config cfg = {.connect_ms = 2000};
    start(&cfg, 1, "/");
    assert_int_equal(listen(S.be[0].lfd, 0), 0);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    getsockname(S.be[0].lfd, (struct sockaddr *)&a, &len);
    int fill[4];
    for (int i = 0; i < 4; i++) { /* fill the queue (and the SYN backlog's grace) */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(20000);
    mock_stream *m = client("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(S.fx);
    char *out = fx_output(m);
    assert_string_equal(out, "");
    free(out);
    fx_advance(S.fx, 2000);
    out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 504 Gateway Timeout\r\n"));
    free(out);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    finish(m);
}

/* Two requests at once open two connections; with keepalive 1 one is
 * kept and the other closed; the kept one closes after idle_ms. */
static void keepalive_cap_and_idle_timeout(void **state)
{
    eddy_proxy_config cfg = {.keepalive = 1, .idle_ms = 3000};
    start(&cfg, 1, "/");
    mock_stream *a = client("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    int fa = S.be[0].fd;
    S.be[0].fd = -1;
    free(be_read(&(backend_sock){.fd = fa}, S.fx, "\r\n\r\n", NULL));
    mock_stream *b = client("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    int fb = S.be[0].fd;
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    assert_int_equal(S.be[0].accepted, 2);
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_int_equal(send(fa, ok, strlen(ok), MSG_NOSIGNAL), (ssize_t)strlen(ok));
    free(client_got(a, "ok"));
    be_send(&S.be[0], ok);
    free(client_got(b, "ok"));
    /* The first back is kept; the second finds the pool full. */
    assert_true(be_sees_close(&S.be[0], S.fx));
    backend_sock first = {.fd = fa};
    assert_false(be_sees_close(&first, S.fx));
    fx_advance(S.fx, 2999);
    assert_false(be_sees_close(&first, S.fx));
    fx_advance(S.fx, 1);
    assert_true(be_sees_close(&first, S.fx));
    close(fa);
    (void)fb;
    mock_push_reset(a);
    fx_run(S.fx);
    mock_stream_free(a);
    finish(b);
}

/* A backend at max_conns is passed over: with one backend, 503. */
static void max_conns_is_503(void **state)
{
    eddy_proxy_config cfg = {.max_conns = 1};
    start(&cfg, 1, "/");
    mock_stream *a = client("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    be_accept(&S.be[0], S.fx);
    free(be_read(&S.be[0], S.fx, "\r\n\r\n", NULL));
    mock_stream *b = client("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    char *out = client_got(b, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 503 Service Unavailable\r\n"));
    free(out);
    be_send(&S.be[0], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    free(client_got(a, "ok"));
    /* Free again: the kept connection takes the next request. */
    mock_clear_output(b);
    mock_push_str(b, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    pump(S.fx);
    char *got = be_read(&S.be[0], S.fx, "\r\n\r\n", NULL);
    assert_true(strncmp(got, "GET /c ", 7) == 0);
    free(got);
    mock_push_reset(a);
    fx_run(S.fx);
    mock_stream_free(a);
    finish(b);
}

/* More Connection tokens than PROXY_MAX_CONNECTION_TOKENS: 400, and the
 * backend gets none of the request. */
static void too_many_connection_tokens_is_400(void **state)
{
    eddy_proxy_config cfg = {0};
    start(&cfg, 1, "/");
    char req[1024] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: ";
    for (int i = 0; i <= PROXY_MAX_CONNECTION_TOKENS; i++)
        snprintf(req + strlen(req), sizeof(req) - strlen(req), "%sx-%d", i ? ", " : "", i);
    strcat(req, "\r\n\r\n");
    mock_stream *m = client(req);
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    free(out);
    /* A connection may have been made for it: no byte came on it. */
    int fd = accept4(S.be[0].lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd >= 0) {
        char c;
        assert_true(recv(fd, &c, 1, 0) < 0 && errno == EAGAIN);
        close(fd);
    }
    finish(m);
}

/* A head that cannot be forwarded in PROXY_HEAD_MAX: 431. */
static void head_too_large_to_forward_is_431(void **state)
{
    memset(&S, 0, sizeof(S));
    eddy_config scfg = {.max_header_bytes = 200000, .max_headers = 1000};
    eddy_proxy_config cfg = {0};
    /* start() with a server that takes large heads. */
    S.fx = fx_new_without_files(&scfg);
    be_open(&S.be[0]);
    S.be[1].fd = S.be[1].lfd = -1;
    const char *urls[] = {S.be[0].url};
    cfg.backends = urls;
    cfg.nbackends = 1;
    char err[200];
    assert_int_equal(eddy_proxy_new(S.fx->loop, &cfg, &S.px, err, sizeof(err)), 0);
    eddy_route r = {.path = "/", .prefix = true, .body = EDDY_BODY_STREAM,
                    .handler = eddy_proxy_handler, .data = S.px};
    assert_int_equal(eddy_server_route(S.fx->srv, &r), 0);
    static char req[PROXY_HEAD_MAX + 4096];
    strcpy(req, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; strlen(req) < PROXY_HEAD_MAX + 100; i++)
        snprintf(req + strlen(req), sizeof(req) - strlen(req), "X-%d: %0200d\r\n", i, 0);
    strcat(req, "\r\n");
    mock_stream *m = client(req);
    char *out = client_got(m, "\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    free(out);
    finish(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forwards_a_rebuilt_head),
        cmocka_unit_test(strip_prefix_host_and_forwarded),
        cmocka_unit_test(bodies_a_byte_at_a_time),
        cmocka_unit_test(close_delimited_body_ends_well),
        cmocka_unit_test(bad_answers_are_502),
        cmocka_unit_test(head_too_large_or_too_many_fields),
        cmocka_unit_test(head_and_304_keep_their_fields),
        cmocka_unit_test(first_byte_timeout_is_504),
        cmocka_unit_test(connect_timeout_is_504),
        cmocka_unit_test(read_timeout_cuts_the_body),
        cmocka_unit_test(refused_goes_to_the_other_backend),
        cmocka_unit_test(post_is_not_retried),
        cmocka_unit_test(all_down_is_503),
        cmocka_unit_test(client_leaving_resets_the_backend),
        cmocka_unit_test(held_packets_fill_or_go),
        cmocka_unit_test(slow_client_slows_the_backend),
        cmocka_unit_test(upgrade_tunnels_both_ways),
        cmocka_unit_test(expect_continue_is_eddys),
        cmocka_unit_test(keepalive_cap_and_idle_timeout),
        cmocka_unit_test(max_conns_is_503),
        cmocka_unit_test(too_many_connection_tokens_is_400),
        cmocka_unit_test(head_too_large_to_forward_is_431),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
