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
 * Routes: files under the root (autoindex and dotfiles on), and those of
 * fuzz_routes.h (held, aborted, answered late, big, bodies).
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
#include "fuzz_routes.h"

#define MAX_CONNS 4

static eddy_config cfg;
static eddy_files_config files_cfg;

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
    /* HTTP/1.1 alone: the HTTP/2 preface leads to fuzz_h2's ground. */
    cfg = (eddy_config){
        .no_http2 = true,
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

    fz_routes_reset();
    eddy_loop *loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    eddy_server *srv;
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    FZ_SETUP(fz_serve_files(srv, loop, &files_cfg, &fz_files) == 0);
    FZ_SETUP(fz_add_routes(srv) == 0);

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
    fz_finish(loop, srv, shut, &drained);
    for (size_t i = 0; i < nmocks; i++)
        mock_stream_free(mocks[i]);
    return 0;
}
