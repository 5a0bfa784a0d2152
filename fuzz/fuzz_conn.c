/* libFuzzer target: the whole connection state machine, driven by a script.
 *
 * Input layout (so seeds read as HTTP): the last byte is K, the number of
 * op bytes; the K bytes before it are the ops, in order; everything before
 * them is the payload the ops cut into pieces.  When the ops run out, what
 * is left of the payload is delivered in one piece.
 *
 * An op byte is OP << 5 | ARG:
 *   0  push the next piece of the payload, PIECE_LEN(ARG) bytes
 *   1  push the next ARG + 1 bytes one byte per piece
 *   2  a read that says EAGAIN
 *   3  short writes: at most WRITE_MAX[ARG % 8] bytes per write (0: no limit)
 *   4  ARG < 4: block writes (ARG odd) or unblock them (ARG even);
 *      else the peer resets after taking RESET_AFTER[ARG % 8] more bytes
 *   5  advance the virtual clock by ADVANCE_MS[ARG] (timeouts fire)
 *   6  ARG % 8: 0 EOF, 1 reset, 2 open another connection (up to 4) and
 *      make it current, 3 make the next connection current, 4 graceful
 *      server shutdown, 5..7 run what is due now
 *   7  push the next (ARG + 1)^2 bytes as one piece
 * Ops act on the current connection.  The clock does not move by itself,
 * so the loop only runs what is due when an op says so (5, 6.5-7), and at
 * the end.
 *
 * Routes (besides files under the root, with autoindex and dotfiles on):
 *   /slow  held; answered from a timer after 1000 ms (or ?N ms), with an
 *          abort callback that cancels the timer: aborts while a handler
 *          holds a request;
 *   /slowbig  as /slow, answered with 70000 bytes (more than the output
 *          stage, so the answer itself writes, and may fail, inside
 *          eddy_respond);
 *   /hold  held without an abort callback; its timer answers (after 500 ms
 *          or ?N) even when the client left (a zombie connection), with the
 *          file the query names ("/hold?/a.txt") or a small body;
 *   /big   answered at once with 70000 bytes (more than the output stage);
 *   /hi    answered at once with 3 bytes.
 *
 * Checked: each connection's output is a well-formed sequence of responses,
 * possibly cut short at its end (fuzz_support.h); after every connection
 * is reset and the clock has passed every deadline, the server counts no
 * connection and every held request was answered or aborted exactly once;
 * nothing leaks.
 *
 * Debugging one input: FUZZ_TRACE=1 prints the ops as they run, FUZZ_DUMP=1
 * what each connection received. */
#include "fuzz_support.h"

#include "eddy.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"

#define MAX_CONNS 4

static eddy_config cfg;
static eddy_files_config files_cfg;
static eddy_files *files; /* of the current input's loop */

/* ---------------------------------------------------------------- routes -- */

typedef struct later {
    eddy_timer t;
    eddy_request *req;
    bool abortable, big;
    bool answering; /* inside answer_later: an abort now must not free it */
    struct later *prev, *next;
} later;

static later *pending;      /* held requests, answered or aborted later */
static unsigned held, done; /* held requests; those answered or aborted */

static void later_unlink(later *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        pending = l->next;
    if (l->next)
        l->next->prev = l->prev;
}

static uint64_t query_ms(eddy_request *req, uint64_t dflt)
{
    eddy_str q = eddy_request_query(req);
    uint64_t v = 0;
    if (q.len == 0 || q.len > 5)
        return dflt;
    for (size_t i = 0; i < q.len; i++) {
        if (q.ptr[i] < '0' || q.ptr[i] > '9')
            return dflt;
        v = v * 10 + (uint64_t)(q.ptr[i] - '0');
    }
    return v;
}

/* Reads every byte of a view: ASan checks it is still valid memory. */
static unsigned touch(eddy_str s)
{
    unsigned sum = 0;
    for (size_t i = 0; i < s.len; i++)
        sum += (unsigned char)s.ptr[i];
    return sum;
}

static char big_body[70000];

static void answer_later(void *data)
{
    later *l = data;
    eddy_request *req = l->req;
    later_unlink(l);
    /* The views stay valid until the answer, even for a client that left. */
    unsigned sum = touch(eddy_request_path(req)) + touch(eddy_request_method(req)) +
                   touch(eddy_request_header(req, "x-trace")) + touch(eddy_request_body(req));
    eddy_str q = eddy_request_query(req);
    int rc;
    l->answering = true;
    if (l->big) {
        rc = eddy_respond(req, 200, "application/octet-stream", big_body, sizeof(big_body));
    } else if (!l->abortable && q.len && q.ptr[0] == '/' && q.len < 256) {
        char path[256];
        memcpy(path, q.ptr, q.len);
        path[q.len] = 0;
        rc = eddy_files_respond(files, req, path);
    } else {
        char body[32];
        int n = snprintf(body, sizeof(body), "late %u\n", sum);
        rc = eddy_respond(req, 200, "text/plain", body, (size_t)n);
    }
    FZ_CHECK(rc == 0, "answering a held request failed: %d", rc);
    done++;
    free(l);
}

static void on_abort(void *data)
{
    later *l = data;
    FZ_CHECK(l->abortable, "abort callback of a request that registered none");
    if (l->answering)
        return; /* the write of our own answer failed; answer_later frees l */
    eddy_timer_stop(eddy_request_loop(l->req), &l->t);
    later_unlink(l);
    done++;
    free(l);
}

static void hold(eddy_request *req, bool abortable, bool big, uint64_t dflt_ms)
{
    later *l = calloc(1, sizeof(*l));
    FZ_SETUP(l);
    l->req = req;
    l->abortable = abortable;
    l->big = big;
    l->next = pending;
    if (pending)
        pending->prev = l;
    pending = l;
    held++;
    eddy_timer_init(&l->t, answer_later, l);
    eddy_timer_start(eddy_request_loop(req), &l->t, query_ms(req, dflt_ms));
    if (abortable)
        eddy_request_on_abort(req, on_abort, l);
}

static void slow(eddy_request *req, void *data) { (void)data; hold(req, true, false, 1000); }
static void slow_big(eddy_request *req, void *data) { (void)data; hold(req, true, true, 1000); }
static void hold_noabort(eddy_request *req, void *data) { (void)data; hold(req, false, false, 500); }

static void big(eddy_request *req, void *data)
{
    (void)data;
    FZ_CHECK(eddy_respond(req, 200, "application/octet-stream", big_body, sizeof(big_body)) == 0,
             "respond failed");
}

static void hi(eddy_request *req, void *data)
{
    (void)data;
    FZ_CHECK(eddy_respond(req, 200, "text/plain", "hi\n", 3) == 0, "respond failed");
}

/* Routes that take bodies: answered at once with the body, or held. */
static void echo(eddy_request *req, void *data)
{
    (void)data;
    eddy_str b = eddy_request_body(req);
    touch(b);
    FZ_CHECK(eddy_respond(req, 200, "application/octet-stream", b.ptr, b.len) == 0,
             "respond failed");
}

/* ---------------------------------------------------------------- script -- */

static const size_t WRITE_MAX[8] = {0, 1, 2, 7, 64, 1000, 4096, 65536};
static const size_t RESET_AFTER[8] = {0, 1, 17, 100, 300, 2000, 10000, 80000};
/* Around the deadlines of cfg below (header 3000, keep-alive 5000, send
 * 4000), the 2000 ms linger, and the handlers' timers (500, 1000). */
static const uint64_t ADVANCE_MS[32] = {0,    0,    1,    5,    10,   50,   100,  250,
                                        499,  500,  999,  1000, 1001, 1500, 1999, 2000,
                                        2001, 2500, 2999, 3000, 3001, 3999, 4000, 4001,
                                        4999, 5000, 5001, 6000, 8000, 10000, 20000, 75000};

static size_t piece_len(unsigned arg, size_t left)
{
    if (arg == 31)
        return left;
    return arg < 16 ? arg + 1 : (size_t)(arg - 15) * 48;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static void shutdown_done(void *data) { *(bool *)data = true; }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < sizeof(big_body); i++)
        big_body[i] = (char)('A' + i % 23);
    files_cfg = (eddy_files_config){
        .root = fz_make_root(),
        .mime_types = fz_mime_types_path(),
        .dotfiles = true,
        .autoindex = true,
        .cache_control = "no-cache",
    };
    cfg = (eddy_config){
        .max_request_line = 1024,
        .max_header_bytes = 2048,
        .max_headers = 30,
        .max_body = 8192,
        .header_ms = 3000,
        .keepalive_ms = 5000,
        .send_ms = 4000,
    };
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t nops = data[size - 1];
    if (nops > size - 1)
        nops = size - 1;
    const uint8_t *ops = data + size - 1 - nops;
    const uint8_t *payload = data;
    size_t payload_len = size - 1 - nops, at = 0;

    pending = NULL;
    held = done = 0;
    eddy_loop *loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    eddy_server *srv;
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    FZ_SETUP(fz_serve_files(srv, loop, &files_cfg, &files) == 0);
    FZ_SETUP(fz_route(srv, "/slow", slow, false) == 0);
    FZ_SETUP(fz_route(srv, "/slowbig", slow_big, false) == 0);
    FZ_SETUP(fz_route(srv, "/hold", hold_noabort, false) == 0);
    FZ_SETUP(fz_route(srv, "/big", big, false) == 0);
    FZ_SETUP(fz_route(srv, "/hi", hi, false) == 0);
    FZ_SETUP(fz_route(srv, "/echo", echo, true) == 0);
    FZ_SETUP(fz_route(srv, "/slowbody", slow, true) == 0);

    mock_stream *mocks[MAX_CONNS] = {0};
    size_t nmocks = 0, cur = 0;
    bool shut = false, drained = false;
    mocks[nmocks++] = mock_stream_new(loop);
    FZ_SETUP(mocks[0] && server_attach(srv, mock_stream_base(mocks[0]), false));

    bool trace = getenv("FUZZ_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "script: %zu payload bytes, %zu ops\n", payload_len, nops);
    for (size_t k = 0; k < nops; k++) {
        unsigned op = ops[k] >> 5, arg = ops[k] & 31;
        mock_stream *m = mocks[cur];
        if (trace)
            fprintf(stderr, "op %zu: %u/%u on conn %zu (payload at %zu, clock %llu, %u conns)\n", k,
                    op, arg, cur, at, (unsigned long long)eddy_loop_now(loop),
                    eddy_server_connections(srv));
        switch (op) {
        case 0:
        case 7: {
            size_t n = min_sz(op == 0 ? piece_len(arg, payload_len - at) : (size_t)(arg + 1) * (arg + 1),
                              payload_len - at);
            if (n) /* an empty piece would read as EOF */
                mock_push(m, payload + at, n);
            at += n;
            break;
        }
        case 1:
            for (size_t n = min_sz(arg + 1, payload_len - at); n; n--)
                mock_push(m, payload + at++, 1);
            break;
        case 2:
            mock_push_eagain(m);
            break;
        case 3:
            mock_set_write_max(m, WRITE_MAX[arg % 8]);
            break;
        case 4:
            if (arg < 4)
                mock_block_writes(m, arg & 1);
            else
                mock_reset_after(m, RESET_AFTER[arg % 8]);
            break;
        case 5:
            loop_advance(loop, ADVANCE_MS[arg]);
            break;
        case 6:
            switch (arg % 8) {
            case 0:
                mock_push_eof(m);
                break;
            case 1:
                mock_push_reset(m);
                break;
            case 2:
                if (nmocks < MAX_CONNS) {
                    mock_stream *nm = mock_stream_new(loop);
                    FZ_SETUP(nm);
                    mocks[nmocks] = nm;
                    cur = nmocks++;
                    /* After a shutdown a new connection is drained at once. */
                    FZ_SETUP(server_attach(srv, mock_stream_base(nm), false));
                }
                break;
            case 3:
                cur = (cur + 1) % nmocks;
                break;
            case 4:
                if (!shut) {
                    shut = true;
                    eddy_server_shutdown(srv, shutdown_done, &drained);
                }
                break;
            default:
                loop_advance(loop, 0);
                break;
            }
            break;
        }
    }
    if (at < payload_len)
        mock_push(mocks[cur], payload + at, payload_len - at);
    loop_advance(loop, 0);

    for (size_t i = 0; i < nmocks; i++) {
        size_t len;
        const char *out = mock_output(mocks[i], &len);
        fz_dump("output", out, len);
        fz_check_stream(out, len, true);
    }
    if (shut)
        FZ_CHECK(drained == (eddy_server_connections(srv) == 0),
                 "shutdown: drained %d with %u connections", drained,
                 eddy_server_connections(srv));

    /* Everyone hangs up; then every deadline passes (held requests are
     * answered by their timers, zombies freed).  Nothing may be left. */
    for (size_t i = 0; i < nmocks; i++)
        mock_push_reset(mocks[i]);
    loop_advance(loop, 0);
    for (size_t i = 0; i < nmocks; i++)
        FZ_CHECK(mock_closed(mocks[i]), "connection %zu not closed after a reset", i);
    loop_advance(loop, 100000);
    unsigned left = eddy_server_connections(srv);
    FZ_CHECK(left == 0, "%u connections left after resets and timeouts",
             eddy_server_connections(srv));
    FZ_CHECK(pending == NULL && done == held, "held %u requests, %u answered or aborted", held,
             done);
    if (shut)
        FZ_CHECK(drained, "shutdown never reported drained");

    eddy_server_free(srv);
    eddy_files_free(files);
    loop_advance(loop, 0);
    eddy_loop_free(loop);
    for (size_t i = 0; i < nmocks; i++)
        mock_stream_free(mocks[i]);
    return 0;
}
