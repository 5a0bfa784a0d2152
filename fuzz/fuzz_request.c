/* libFuzzer target: one chunk of request bytes on a fresh connection.
 *
 * The input is delivered in a single read to a new connection over the mock
 * stream, on a server with small limits over a temporary root (made once,
 * in LLVMFuzzerInitialize).  The loop runs until nothing is due; then:
 *  - what eddy wrote is a sequence of well-formed responses: each starts
 *    with "HTTP/1.1 ", its head ends with CRLFCRLF and holds only field
 *    lines, its body is as long as its Content-Length, and nothing follows
 *    an answer that said Connection: close;
 *  - after the peer half-closes, the connection ends (closed or lingering
 *    with FIN sent) and still writes nothing malformed;
 *  - after a reset, the server counts no connection.
 * Every allocation of an iteration is released in that iteration (loop,
 * server and mock included), so -detect_leaks=1 sees exact leaks. */
#include "fuzz_support.h"

#include "eddy.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"

static eddy_config cfg;
static eddy_files_config files_cfg;

/* A routed handler answering at once, from what it reads of the request:
 * every view the API offers is walked byte by byte (ASan checks each one
 * lies inside the kept head).  The body holds only lengths, never request
 * bytes, so it cannot look like a response. */
static void echo(eddy_request *req, void *data)
{
    (void)data;
    static const char *const names[] = {"host",  "x-a",   "range", "accept-encoding",
                                        "cookie", "if-match", "content-length", ""};
    unsigned sum = 0;
    size_t total = 0;
    eddy_str views[3] = {eddy_request_method(req), eddy_request_path(req), eddy_request_query(req)};
    for (size_t i = 0; i < 3; i++) {
        FZ_CHECK(views[i].ptr != NULL, "a request view is NULL");
        for (size_t k = 0; k < views[i].len; k++)
            sum += (unsigned char)views[i].ptr[k];
        total += views[i].len;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        eddy_str h = eddy_request_header(req, names[i]);
        if (!h.ptr)
            continue;
        for (size_t k = 0; k < h.len; k++) {
            FZ_CHECK(h.ptr[k] != '\r' && h.ptr[k] != '\n', "a header value holds CR or LF");
            sum += (unsigned char)h.ptr[k];
        }
        total += h.len;
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "%zu %u\n", total, sum);
    FZ_CHECK(eddy_respond(req, 200, "text/plain", body, (size_t)n) == 0, "respond failed");
    /* Answered: the handle is stale. */
    FZ_CHECK(eddy_respond(req, 200, NULL, "", 0) == -ESTALE, "second answer accepted");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    files_cfg = (eddy_files_config){
        .root = fz_make_root(),
        .mime_types = fz_mime_types_path(),
        .autoindex = true,
        .cache_control = "max-age=60",
    };
    /* HTTP/1.1 alone: the HTTP/2 preface leads to fuzz_h2's ground. */
    cfg = (eddy_config){
        .no_http2 = true,
        .max_request_line = 1024,
        .max_header_bytes = 2048,
        .max_headers = 20,
        .max_body = 4096,
    };
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* an empty read is EOF on the mock: nothing to deliver */
    eddy_loop *loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    eddy_server *srv;
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    eddy_files *files;
    FZ_SETUP(fz_serve_files(srv, loop, &files_cfg, &files) == 0);
    FZ_SETUP(fz_route(srv, "/echo", echo, false) == 0);

    mock_stream *m = mock_stream_new(loop);
    FZ_SETUP(m);
    FZ_SETUP(server_attach(srv, mock_stream_base(m), false));
    mock_push(m, data, size);
    loop_advance(loop, 0);

    size_t len;
    const char *out = mock_output(m, &len);
    fz_dump("output", out, len);
    /* Writes are never short or blocked here: every answer is complete. */
    fz_check_stream(out, len, false);

    /* The client half-closes: whatever was waiting ends the connection. */
    mock_push_eof(m);
    loop_advance(loop, 0);
    out = mock_output(m, &len);
    fz_check_stream(out, len, false);
    FZ_CHECK(mock_closed(m) || mock_write_shut(m), "connection alive after EOF (%u open)",
             eddy_server_connections(srv));

    /* Then resets: nothing may be left. */
    mock_push_reset(m);
    loop_advance(loop, 0);
    FZ_CHECK(eddy_server_connections(srv) == 0, "%u connections after a reset",
             eddy_server_connections(srv));
    FZ_CHECK(mock_closed(m), "stream not closed after a reset");

    eddy_server_free(srv);
    eddy_files_free(files);
    loop_advance(loop, 0);
    eddy_loop_free(loop);
    mock_stream_free(m);
    return 0;
}
