/* Uploads of any size in constant memory: PUT or POST /upload takes the
 * request body in pieces as they arrive (a route with EDDY_BODY_STREAM and
 * eddy_request_read), counts its bytes and checksums them (CRC-32, the one
 * zlib, gzip and Python's zlib.crc32 compute), and answers
 * "bytes=<n> sum=<crc32 in hex>".  Nothing is kept but the count and the
 * checksum, so a 200 MiB upload costs what a small one does.  To show
 * backpressure the handler pauses the body after each piece and resumes it
 * on the next turn of the loop: while it is paused eddy reads nothing more
 * and TCP slows the client down.  A body beyond --max is answered 413 as
 * soon as that is known: at once for a Content-Length beyond it (before
 * Expect: 100-continue is answered, so the client sends nothing), else when
 * the count crosses it; eddy then closes the connection.  GET / says how to
 * use it.  Everything here is eddy's public API.
 *
 *   build/examples/upload_sink [--listen HOST:PORT] [--max BYTES] [--no-io-uring]
 *                              (default 127.0.0.1:7878, no limit, io_uring if allowed)
 *   curl -T big.iso http://127.0.0.1:7878/upload
 */
#include <eddy.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sink {
    eddy_loop *loop;
    eddy_server *srv;
    uint64_t max; /* bytes a body may have; 0: any */
} sink;

/* One upload in progress: its request, what it has counted so far, and the
 * deferred callback that resumes its body on the next turn. */
typedef struct upload {
    eddy_request *req;
    sink *s;
    eddy_deferred resume;
    uint64_t bytes;
    uint32_t crc; /* running, pre-inverted */
} upload;

static const char PAGE[] =
    "upload_sink: PUT or POST a body to /upload, for example\n"
    "  curl -T FILE http://HOST:PORT/upload\n"
    "and the answer is its length and CRC-32: bytes=<n> sum=<hex>\n";

/* ------------------------------------------------------------- CRC-32 -- */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ------------------------------------------------------------ uploads -- */

static void answer(eddy_request *req, int status, const char *text)
{
    eddy_respond(req, status, "text/plain", text, strlen(text));
}

static void finish(upload *u)
{
    eddy_defer_cancel(u->s->loop, &u->resume);
    free(u);
}

/* The client left mid-body: its request is gone, so nothing may resume it. */
static void gone(void *data) { finish(data); }

/* The next turn: take the next piece.  It never comes from inside this
 * call, but u is not touched afterwards all the same. */
static void resume(void *data)
{
    upload *u = data;
    eddy_request_pause(u->req, false);
}

static void on_piece(eddy_request *req, const void *data, size_t len, void *ud)
{
    upload *u = ud;
    if (len == 0) { /* the end */
        char msg[64];
        snprintf(msg, sizeof(msg), "bytes=%" PRIu64 " sum=%08" PRIx32 "\n", u->bytes,
                 ~u->crc);
        finish(u);
        answer(req, 200, msg);
        return;
    }
    u->bytes += len;
    if (u->s->max && u->bytes > u->s->max) {
        /* A chunked body (or a lying Content-Length) crossed the limit:
         * answering now stops the upload; eddy reads no more of it. */
        finish(u);
        answer(req, 413, "too large\n");
        return;
    }
    u->crc = crc_update(u->crc, data, len);
    /* Backpressure: no more pieces until resume() runs on the next turn. */
    eddy_request_pause(req, true);
    eddy_defer(u->s->loop, &u->resume);
}

static void handle_upload(eddy_request *req, void *data)
{
    sink *s = data;
    eddy_str cl = eddy_request_header(req, "Content-Length");
    if (s->max && cl.ptr) {
        /* eddy has checked it is a number; one too long to parse is too
         * large anyway. */
        uint64_t n = 0;
        bool huge = false;
        for (size_t i = 0; i < cl.len && !huge; i++) {
            huge = n > (UINT64_MAX - 9) / 10;
            n = n * 10 + (uint64_t)(cl.ptr[i] - '0');
        }
        if (huge || n > s->max) {
            /* Before reading: Expect: 100-continue is never answered, so
             * a client that waits for it sends none of the body. */
            answer(req, 413, "too large\n");
            return;
        }
    }
    upload *u = malloc(sizeof(*u));
    if (!u) {
        answer(req, 503, "busy\n");
        return;
    }
    *u = (upload){.req = req, .s = s, .crc = 0xffffffffu};
    eddy_deferred_init(&u->resume, resume, u);
    eddy_request_on_abort(req, gone, u);
    eddy_request_read(req, on_piece, u); /* pieces come from the loop */
}

static void handle_page(eddy_request *req, void *data)
{
    eddy_respond(req, 200, "text/plain; charset=utf-8", PAGE, sizeof(PAGE) - 1);
}

/* ------------------------------------------------------------ stopping -- */

static void stopped(void *loop) { eddy_loop_stop(loop); }

/* SIGINT or SIGTERM, on the loop's thread: stop listening and let uploads
 * in flight finish (a stalled one ends at the body timeout). */
static void stop(void *data)
{
    sink *s = data;
    eddy_server_shutdown(s->srv, stopped, s->loop);
}

/* The loop owns the main thread, so a thread of its own waits for the
 * signal and hands it over with the one call safe from another thread. */
static void *wait_signal(void *async)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    eddy_async_send(async);
    return NULL;
}

static bool parse_bytes(const char *text, uint64_t *out)
{
    char *end;
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || *end)
        return false;
    *out = n;
    return true;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7878";
    bool io_uring = true;
    sink s = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            addr = argv[++i];
        } else if (!strcmp(argv[i], "--max") && i + 1 < argc && parse_bytes(argv[i + 1], &s.max)) {
            i++;
        } else if (!strcmp(argv[i], "--no-io-uring")) {
            io_uring = false;
        } else {
            fprintf(stderr, "usage: upload_sink [--listen HOST:PORT] [--max BYTES] "
                            "[--no-io-uring]\n");
            return 2;
        }
    }
    crc_init();
    /* Blocked before any thread starts, so only wait_signal() takes them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    eddy_async *async;
    char bound[80];
    pthread_t signals;
    if (!(s.loop = eddy_loop_new()) || eddy_server_new(s.loop, NULL, &s.srv) < 0 ||
        !(async = eddy_async_new(s.loop, stop, &s))) {
        fprintf(stderr, "upload_sink: cannot start\n");
        return 2;
    }
    eddy_loop_set_io_uring(s.loop, io_uring);
    eddy_server_route(s.srv, &(eddy_route){.path = "/", .methods = "GET", .handler = handle_page});
    eddy_server_route(s.srv, &(eddy_route){.path = "/upload", .methods = "PUT, POST",
                                           .body = EDDY_BODY_STREAM,
                                           .handler = handle_upload, .data = &s});
    if (eddy_server_listen(s.srv, addr, bound, sizeof(bound)) < 0) {
        fprintf(stderr, "upload_sink: cannot listen on %s\n", addr);
        return 2;
    }
    if (pthread_create(&signals, NULL, wait_signal, async) != 0) {
        fprintf(stderr, "upload_sink: cannot start\n");
        return 2;
    }
    printf("upload_sink listening on http://%s/\n", bound);
    fflush(stdout);
    eddy_loop_run(s.loop);
    pthread_join(signals, NULL); /* it has sent: the async can go */
    eddy_async_free(async);
    eddy_server_free(s.srv);
    eddy_loop_free(s.loop);
    return 0;
}
