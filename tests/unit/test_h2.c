/* HTTP/2 over the mock stream and the virtual clock, against nghttp2's own
 * client session: every I/O edge a connection meets (the preface a byte at
 * a time, short and blocked writes, EAGAIN, resets), every timeout (idle,
 * send, a stalled body), handlers answering later, aborted by a reset
 * stream or a closed connection, streaming with backpressure both ways,
 * and the hand-over from TLS with ALPN h2. */
#include "harness.h"
#include "http2/h2.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_STREAMS 16

typedef struct stream_seen {
    int32_t id;
    int status;
    char body[300000];
    size_t len;
    bool ended;
    uint32_t reset; /* RST_STREAM code + 1; 0: none */
} stream_seen;

/* A client: nghttp2's session on one end of a mock stream. */
typedef struct client {
    fixture *fx;
    mock_stream *m;
    nghttp2_session *ng;
    stream_seen seen[MAX_STREAMS];
    int nseen;
    bool goaway;
    uint32_t goaway_code;
    bool bytewise;         /* what it sends goes a byte per read */
    size_t sent_to_eddy;
    /* A request body to send (one stream at a time). */
    const char *upload;
    size_t upload_len, upload_at;
} client;

static stream_seen *seen_of(client *c, int32_t id)
{
    for (int i = 0; i < c->nseen; i++)
        if (c->seen[i].id == id)
            return &c->seen[i];
    assert_true(c->nseen < MAX_STREAMS);
    stream_seen *s = &c->seen[c->nseen++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    client *c = ud;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        seen_of(c, f->hd.stream_id)->status = atoi((const char *)value);
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    stream_seen *s = seen_of(ud, id);
    assert_true(s->len + len <= sizeof(s->body));
    memcpy(s->body + s->len, data, len);
    s->len += len;
    return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    client *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        c->goaway_code = f->goaway.error_code;
    }
    if (f->hd.type == NGHTTP2_RST_STREAM)
        seen_of(c, f->hd.stream_id)->reset = f->rst_stream.error_code + 1;
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        seen_of(c, f->hd.stream_id)->ended = true;
    return 0;
}

static ssize_t read_upload(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    client *c = ud;
    size_t n = c->upload_len - c->upload_at;
    if (n > len)
        n = len;
    memcpy(buf, c->upload + c->upload_at, n);
    c->upload_at += n;
    if (c->upload_at == c->upload_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void client_open(client *c, fixture *fx, const nghttp2_settings_entry *iv, size_t niv)
{
    memset(c, 0, sizeof(*c));
    c->fx = fx;
    c->m = fx_connect(fx);
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    assert_int_equal(nghttp2_session_client_new(&c->ng, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, niv), 0);
}

static void client_close(client *c)
{
    nghttp2_session_del(c->ng);
    if (!mock_closed(c->m)) {
        mock_push_reset(c->m);
        fx_run(c->fx);
    }
    mock_stream_free(c->m);
}

/* Moves bytes both ways until neither side has more. */
static void pump(client *c)
{
    for (int round = 0; round < 1000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->ng, &p)) > 0) {
            if (c->bytewise)
                for (ssize_t i = 0; i < n; i++)
                    mock_push(c->m, p + i, 1);
            else
                mock_push(c->m, p, (size_t)n);
            c->sent_to_eddy += (size_t)n;
            moved = true;
        }
        fx_run(c->fx);
        size_t len;
        const char *out = mock_output(c->m, &len);
        if (len) {
            assert_int_equal(nghttp2_session_mem_recv(c->ng, (const uint8_t *)out, len), (ssize_t)len);
            mock_clear_output(c->m);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the exchange never settled");
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

static int32_t submit(client *c, const char *method, const char *path, bool body)
{
    nghttp2_nv nv[] = {NV(":method", method), NV(":scheme", "http"), NV(":path", path),
                       NV(":authority", "t")};
    nghttp2_data_provider prd = {.read_callback = read_upload};
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, 4, body ? &prd : NULL, NULL);
    assert_true(id > 0);
    seen_of(c, id);
    return id;
}

static const nghttp2_settings_entry DEFAULTS[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};

/* ------------------------------------------------------------- handlers -- */

typedef struct held {
    eddy_request *req;
    eddy_timer t;
    int aborted, answered;
    bool register_abort;
    /* A streamed response: written in pieces as room comes. */
    size_t stream_total, stream_sent;
    int again, drains;
} held;

static held h;

static void answer_held(void *data)
{
    held *x = data;
    x->answered++;
    eddy_respond(x->req, 200, "text/plain", "late\n", 5);
}

static void on_abort(void *data)
{
    held *x = data;
    x->aborted++;
    eddy_timer_stop(eddy_request_loop(x->req), &x->t);
}

static void hold(eddy_request *req, void *data)
{
    held *x = data;
    x->req = req;
    eddy_timer_init(&x->t, answer_held, x);
    eddy_timer_start(eddy_request_loop(req), &x->t, 100);
    if (x->register_abort)
        eddy_request_on_abort(req, on_abort, x);
}

static char blob[200000];

static void stream_more(void *data)
{
    held *x = data;
    x->drains++;
    while (x->stream_sent < x->stream_total) {
        size_t n = x->stream_total - x->stream_sent < 10000 ? x->stream_total - x->stream_sent : 10000;
        int rc = eddy_stream_write(x->req, blob + x->stream_sent, n);
        if (rc == -EAGAIN) {
            x->again++;
            return;
        }
        assert_int_equal(rc, 0);
        x->stream_sent += n;
    }
    assert_int_equal(eddy_stream_end(x->req), 0);
}

static void streamer(eddy_request *req, void *data)
{
    held *x = data;
    x->req = req;
    assert_int_equal(eddy_stream_start(req, 200, "application/octet-stream", -1), 0);
    eddy_stream_on_drain(req, stream_more, x);
    stream_more(x);
    x->drains--; /* the first call was not a drain */
}

typedef struct sink {
    size_t got;
    int pieces;
    bool paused;
    eddy_request *req;
} sink;

static sink sk;

static void on_piece(eddy_request *req, const void *data, size_t len, void *ud)
{
    sink *s = ud;
    if (len == 0) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "%zu", s->got);
        eddy_respond(req, 200, "text/plain", msg, (size_t)n);
        return;
    }
    assert_memory_equal(data, blob + s->got, len);
    s->got += len;
    s->pieces++;
    eddy_request_pause(req, true); /* the test resumes it */
    s->paused = true;
}

static void take_upload(eddy_request *req, void *data)
{
    sink *s = data;
    s->req = req;
    assert_int_equal(eddy_request_read(req, on_piece, s), 0);
}

static fixture *h2_fixture(const eddy_config *cfg)
{
    memset(&h, 0, sizeof(h));
    memset(&sk, 0, sizeof(sk));
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (char)('a' + i * 7 % 26);
    fixture *fx = fx_new(cfg);
    fx_route(fx, "/held", hold, &h, false);
    fx_route(fx, "/stream", streamer, &h, false);
    eddy_route up = {.path = "/upload", .body = EDDY_BODY_STREAM, .handler = take_upload, .data = &sk};
    assert_int_equal(eddy_server_route(fx->srv, &up), 0);
    fx_write_file(fx, "big.bin", blob, sizeof(blob));
    return fx;
}

/* ---------------------------------------------------------------- tests -- */

static void get_index(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    int32_t id = submit(&c, "GET", "/", false);
    pump(&c);
    stream_seen *s = seen_of(&c, id);
    assert_int_equal(s->status, 200);
    assert_true(s->ended);
    assert_int_equal(s->len, strlen(FX_INDEX));
    assert_memory_equal(s->body, FX_INDEX, s->len);
    assert_int_equal(eddy_server_connections(fx->srv), 1);
    client_close(&c);
    fx_free(fx);
}

/* The client's last frame and its FIN arrive in one event (epoll tells of
 * the FIN once, with the bytes): the connection reads on to the EOF after
 * its short read, and closes, rather than wait for the idle timeout. */
static void last_frame_and_fin_together_close(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    int32_t id = submit(&c, "GET", "/", false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->status, 200);
    assert_int_equal(nghttp2_submit_window_update(c.ng, NGHTTP2_FLAG_NONE, 0, 1000), 0);
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c.ng, &p);
    assert_true(n > 0);
    mock_push_last(c.m, p, (size_t)n);
    fx_run(fx);
    assert_true(mock_closed(c.m));
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    client_close(&c);
    fx_free(fx);
}

/* The preface and the request arrive a byte per read: the HTTP/1.1 parser
 * sees "PRI * HTTP/2.0" form slowly and hands over all it kept. */
static void preface_bytewise(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    c.bytewise = true;
    int32_t id = submit(&c, "GET", "/", false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->status, 200);
    assert_true(seen_of(&c, id)->ended);
    client_close(&c);
    fx_free(fx);
}

/* A 200 KB file through 7-byte writes, then through a blocked socket. */
static void short_and_blocked_writes(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    mock_set_write_max(c.m, 7);
    int32_t id = submit(&c, "GET", "/big.bin", false);
    pump(&c);
    stream_seen *s = seen_of(&c, id);
    assert_int_equal(s->len, sizeof(blob));
    assert_memory_equal(s->body, blob, sizeof(blob));
    mock_set_write_max(c.m, 0);
    mock_block_writes(c.m, true);
    id = submit(&c, "GET", "/big.bin", false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->len, 0);
    mock_block_writes(c.m, false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->len, sizeof(blob));
    client_close(&c);
    fx_free(fx);
}

/* A client that takes nothing meets the send timeout: reset, closed. */
static void send_timeout(void **state)
{
    (void)state;
    eddy_config cfg = {.send_ms = 2000};
    fixture *fx = h2_fixture(&cfg);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    mock_block_writes(c.m, true);
    submit(&c, "GET", "/big.bin", false);
    pump(&c);
    fx_advance(fx, 1900);
    assert_false(mock_closed(c.m));
    fx_advance(fx, 200);
    assert_true(mock_closed(c.m));
    assert_true(mock_reset_by_owner(c.m));
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    client_close(&c);
    fx_free(fx);
}

/* A window the client never opens also meets the send timeout. */
static void zero_window_send_timeout(void **state)
{
    (void)state;
    eddy_config cfg = {.send_ms = 2000};
    fixture *fx = h2_fixture(&cfg);
    client c;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}};
    client_open(&c, fx, iv, 1);
    int32_t id = submit(&c, "GET", "/big.bin", false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->status, 200);
    assert_int_equal(seen_of(&c, id)->len, 0);
    fx_advance(fx, 2100);
    assert_true(mock_closed(c.m));
    client_close(&c);
    fx_free(fx);
}

/* With no stream open, the keep-alive timeout says GOAWAY and closes. */
static void idle_goaway(void **state)
{
    (void)state;
    eddy_config cfg = {.keepalive_ms = 3000};
    fixture *fx = h2_fixture(&cfg);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    submit(&c, "GET", "/", false);
    pump(&c);
    fx_advance(fx, 2900);
    assert_false(mock_closed(c.m));
    fx_advance(fx, 200);
    pump(&c);
    assert_true(c.goaway);
    assert_int_equal(c.goaway_code, NGHTTP2_NO_ERROR);
    assert_true(mock_closed(c.m));
    client_close(&c);
    fx_free(fx);
}

/* The server's one HTTP/2 connection. */
static h2conn *only_conn(fixture *fx)
{
    session *s = fx->srv->sessions;
    assert_non_null(s);
    assert_null(s->next);
    return (h2conn *)((char *)s - offsetof(h2conn, session));
}

/* The frame buffer's whole pages in memory (it is page-aligned; its last
 * few bytes share a page with other blocks). */
static int framebuf_resident(const h2conn *hc)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (uintptr_t)hc->framebuf;
    uintptr_t to = ((uintptr_t)hc->framebuf + hc->framebuf_len) & ~(page - 1);
    unsigned char vec[16];
    assert_true((to - from) / page <= sizeof(vec));
    assert_int_equal(mincore((void *)from, to - from, vec), 0);
    int n = 0;
    for (size_t i = 0; i < (to - from) / page; i++)
        n += vec[i] & 1;
    return n;
}

/* Idle for H2_TRIM_IDLE_MS, a connection hands its frame buffer's pages
 * back (all but a few bytes: it is page-aligned); the next request makes its
 * frames in it again and is answered whole.  Not sooner, and not while
 * the connection works. */
static void idle_trims_frame_buffer(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    submit(&c, "GET", "/", false);
    pump(&c);
    h2conn *hc = only_conn(fx);
    assert_non_null(hc->framebuf);
    assert_true(hc->framebuf_len >= H2_FRAMEBUF_MIN);
    assert_int_equal((uintptr_t)hc->framebuf % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
    assert_true(framebuf_resident(hc) > 0);
    fx_advance(fx, H2_TRIM_IDLE_MS - 10);
    assert_true(framebuf_resident(hc) > 0);
    fx_advance(fx, 20);
    assert_int_equal(framebuf_resident(hc), 0);
    for (int round = 0; round < 2; round++) {
        int32_t id = submit(&c, "GET", "/", false);
        pump(&c);
        stream_seen *st = seen_of(&c, id);
        assert_int_equal(st->status, 200);
        assert_true(st->ended);
        assert_int_equal(st->len, strlen(FX_INDEX));
        assert_memory_equal(st->body, FX_INDEX, st->len);
        assert_true(framebuf_resident(hc) > 0);
        fx_advance(fx, H2_TRIM_IDLE_MS + 10);
        assert_int_equal(framebuf_resident(hc), 0);
    }
    assert_false(mock_closed(c.m));
    client_close(&c);
    fx_free(fx);
}

/* A handler answering later from a timer: no deadline meanwhile, the
 * answer comes when the timer fires; a second stream is served at once. */
static void answered_later(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    int32_t slow = submit(&c, "GET", "/held", false);
    int32_t fast = submit(&c, "GET", "/", false);
    pump(&c);
    assert_int_equal(seen_of(&c, fast)->status, 200);
    assert_int_equal(seen_of(&c, slow)->status, 0);
    fx_advance(fx, 100);
    pump(&c);
    assert_int_equal(seen_of(&c, slow)->status, 200);
    assert_memory_equal(seen_of(&c, slow)->body, "late\n", 5);
    assert_int_equal(h.answered, 1);
    client_close(&c);
    fx_free(fx);
}

/* The client resets a held stream: its handler's abort callback runs, the
 * connection goes on. */
static void reset_stream_aborts_handler(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    h.register_abort = true;
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    int32_t slow = submit(&c, "GET", "/held", false);
    pump(&c);
    nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, slow, NGHTTP2_CANCEL);
    pump(&c);
    assert_int_equal(h.aborted, 1);
    fx_advance(fx, 200);
    assert_int_equal(h.answered, 0);
    int32_t next = submit(&c, "GET", "/", false);
    pump(&c);
    assert_int_equal(seen_of(&c, next)->status, 200);
    client_close(&c);
    fx_free(fx);
}

/* The connection is reset under a handler without an abort callback: its
 * late answer goes nowhere and everything is freed (unit-san checks). */
static void reset_under_handler_without_abort(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    submit(&c, "GET", "/held", false);
    pump(&c);
    mock_push_reset(c.m);
    fx_run(fx);
    assert_true(mock_closed(c.m));
    fx_advance(fx, 200);
    assert_int_equal(h.answered, 1);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    client_close(&c);
    fx_free(fx);
}

/* A streamed response into a client window of 1000 bytes: the handler is
 * told -EAGAIN once EDDY_STREAM_BUFFER is held, on_drain as the client
 * opens its window, and every byte arrives in order. */
static void streamed_response_backpressure(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    h.stream_total = 150000;
    client c;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}};
    client_open(&c, fx, iv, 1);
    int32_t id = submit(&c, "GET", "/stream", false);
    pump(&c);
    stream_seen *s = seen_of(&c, id);
    assert_int_equal(s->status, 200);
    assert_true(h.again >= 1);
    assert_true(s->ended);
    assert_true(h.drains >= 1);
    assert_int_equal(s->len, h.stream_total);
    assert_memory_equal(s->body, blob, h.stream_total);
    client_close(&c);
    fx_free(fx);
}

/* An upload to a streaming route whose handler pauses after each piece:
 * eddy holds what arrived, opens the window only as the handler takes it,
 * and the whole body arrives in order. */
static void streamed_upload_with_pauses(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    c.upload = blob;
    c.upload_len = 180000;
    int32_t id = submit(&c, "POST", "/upload", true);
    for (int i = 0; i < 200 && !seen_of(&c, id)->ended; i++) {
        pump(&c);
        if (sk.paused) {
            sk.paused = false;
            eddy_request_pause(sk.req, false);
        }
    }
    stream_seen *s = seen_of(&c, id);
    assert_true(s->ended);
    assert_int_equal(s->status, 200);
    assert_int_equal(sk.got, 180000);
    assert_true(sk.pieces > 1);
    s->body[s->len] = 0;
    assert_string_equal(s->body, "180000");
    client_close(&c);
    fx_free(fx);
}

/* A stalled body meets the header timeout. */
static void stalled_body_times_out(void **state)
{
    (void)state;
    eddy_config cfg = {.header_ms = 1500};
    fixture *fx = h2_fixture(&cfg);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/"),
                       NV(":authority", "t")};
    assert_true(nghttp2_submit_headers(c.ng, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL) > 0);
    pump(&c);
    fx_advance(fx, 1400);
    assert_false(mock_closed(c.m));
    fx_advance(fx, 200);
    assert_true(mock_closed(c.m));
    client_close(&c);
    fx_free(fx);
}

/* TLS with ALPN h2 (a secure mock saying so): HTTP/2 from the first byte,
 * no preface detection needed by the HTTP/1.1 parser. */
static void alpn_h2_hands_over(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    memset(&c, 0, sizeof(c));
    c.fx = fx;
    c.m = mock_stream_new(fx->loop);
    mock_set_secure(c.m, true);
    mock_set_alpn(c.m, "h2");
    assert_non_null(server_attach(fx->srv, mock_stream_base(c.m), false));
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    assert_int_equal(nghttp2_session_client_new(&c.ng, cb, &c), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c.ng, NGHTTP2_FLAG_NONE, DEFAULTS, 1);
    int32_t id = submit(&c, "GET", "/", false);
    pump(&c);
    assert_int_equal(seen_of(&c, id)->status, 200);
    client_close(&c);
    fx_free(fx);
}

/* Shutdown: GOAWAY naming the last stream, the held one answered, then the
 * connection closes and the server reports drained. */
static bool drained;
static void on_drained(void *data) { drained = true; }

static void shutdown_drains(void **state)
{
    (void)state;
    fixture *fx = h2_fixture(NULL);
    client c;
    client_open(&c, fx, DEFAULTS, 1);
    int32_t slow = submit(&c, "GET", "/held", false);
    pump(&c);
    drained = false;
    eddy_server_shutdown(fx->srv, on_drained, NULL);
    pump(&c);
    assert_true(c.goaway);
    assert_false(drained);
    fx_advance(fx, 100);
    pump(&c);
    assert_int_equal(seen_of(&c, slow)->status, 200);
    assert_true(mock_closed(c.m));
    assert_true(drained);
    client_close(&c);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_index),
        cmocka_unit_test(last_frame_and_fin_together_close),
        cmocka_unit_test(preface_bytewise),
        cmocka_unit_test(short_and_blocked_writes),
        cmocka_unit_test(send_timeout),
        cmocka_unit_test(zero_window_send_timeout),
        cmocka_unit_test(idle_goaway),
        cmocka_unit_test(idle_trims_frame_buffer),
        cmocka_unit_test(answered_later),
        cmocka_unit_test(reset_stream_aborts_handler),
        cmocka_unit_test(reset_under_handler_without_abort),
        cmocka_unit_test(streamed_response_backpressure),
        cmocka_unit_test(streamed_upload_with_pauses),
        cmocka_unit_test(stalled_body_times_out),
        cmocka_unit_test(alpn_h2_hands_over),
        cmocka_unit_test(shutdown_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
