/* Routes the connection fuzzers share (fuzz_conn over HTTP/1.1, fuzz_h2
 * over HTTP/2), with the bookkeeping that checks every request a handler
 * held was answered or aborted exactly once:
 *   /slow  held; answered from a timer after 1000 ms (or ?N ms), with an
 *          abort callback that cancels the timer;
 *   /slowbig  as /slow, answered with 70000 bytes;
 *   /hold  held without an abort callback; its timer answers (after 500 ms
 *          or ?N) even when the client left, with the file the query names
 *          ("/hold?/a.txt") or a small body;
 *   /big   answered at once with 70000 bytes;  /hi  with 3 bytes;
 *   /echo  takes the whole body and answers with it;
 *   /slowbody  takes the whole body, then as /slow. */
#ifndef EDDY_FUZZ_ROUTES_H
#define EDDY_FUZZ_ROUTES_H

#include "fuzz_support.h"
#include "eddy.h"
#include <errno.h>
#include "rt/loop.h"

static eddy_files *fz_files; /* of the current input's loop */

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
        rc = eddy_files_respond(fz_files, req, path);
        if (rc == -EINVAL) /* a path that does not decode: not answered, as documented */
            rc = eddy_respond(req, 400, "text/plain", "bad path\n", 9);
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

static void fz_routes_reset(void)
{
    pending = NULL;
    held = done = 0;
}

static int fz_add_routes(eddy_server *srv)
{
    int rc = 0;
    rc |= fz_route(srv, "/slow", slow, false);
    rc |= fz_route(srv, "/slowbig", slow_big, false);
    rc |= fz_route(srv, "/hold", hold_noabort, false);
    rc |= fz_route(srv, "/big", big, false);
    rc |= fz_route(srv, "/hi", hi, false);
    rc |= fz_route(srv, "/echo", echo, true);
    rc |= fz_route(srv, "/slowbody", slow, true);
    return rc;
}

/* The end of an input, once every client has reset: every deadline
 * passes, then no connection may be left, every held request must have
 * been answered or aborted, and a shutdown must have reported drained;
 * then the server, the file server and the loop are freed. */
static void fz_finish(eddy_loop *loop, eddy_server *srv, bool shut, const bool *drained)
{
    loop_advance(loop, 100000);
    FZ_CHECK(eddy_server_connections(srv) == 0, "%u connections left after resets and timeouts",
             eddy_server_connections(srv));
    FZ_CHECK(pending == NULL && done == held, "held %u requests, %u answered or aborted", held,
             done);
    if (shut)
        FZ_CHECK(*drained, "shutdown never reported drained");
    eddy_server_free(srv);
    eddy_files_free(fz_files);
    loop_advance(loop, 0);
    eddy_loop_free(loop);
}

#endif
