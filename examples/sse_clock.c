/* Server-sent events on one thread: GET /clock is a text/event-stream that
 * carries the time, one event "data: <unix seconds>" a second, to every
 * client for as long as it stays; GET / is a page that shows it.  Thousands
 * of clients cost one timer between them and about 1.3 KiB each (eddy's
 * connection and the request head it keeps, and a list link here), and
 * "/" is answered at once all the while.  Everything here is eddy's public
 * API.
 *
 *   build/examples/sse_clock [--listen HOST:PORT] [--no-io-uring]
 *                                     (default 127.0.0.1:7878, io_uring if allowed)
 *   curl -N http://127.0.0.1:7878/clock
 */
#include <eddy.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* A client is its request and a place in one list: the one timer walks
 * the list, so a client needs no timer or buffer of its own. */
typedef struct client {
    struct client *prev, *next;
    eddy_request *req;
} client;

typedef struct clock_server {
    eddy_loop *loop;
    eddy_server *srv;
    eddy_timer tick;  /* one for all clients */
    client clients;   /* the list's head; clients.next is the first */
    time_t due;       /* the second the tick waits for; the one before
                         is the latest every client has */
    bool stopping;
} clock_server;

static const char PAGE[] =
    "<!doctype html>\n<meta charset=\"utf-8\">\n<title>sse_clock</title>\n"
    "<p>Server time: <b id=\"t\">waiting</b>\n"
    "<script>\n"
    "new EventSource(\"/clock\").onmessage = function (e) {\n"
    "  document.getElementById(\"t\").textContent =\n"
    "    new Date(e.data * 1000).toLocaleTimeString() + \" (\" + e.data + \")\";\n"
    "};\n"
    "</script>\n";

static void unlink_client(client *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
}

/* The client left: after this returns its request is gone, so it must
 * leave the list now, before the next tick writes to it. */
static void gone(void *data)
{
    client *c = data;
    unlink_client(c);
    free(c);
}

static void send_time(client *c, time_t now)
{
    char event[40];
    int n = snprintf(event, sizeof(event), "data: %lld\n\n", (long long)now);
    int rc = eddy_stream_write(c->req, event, (size_t)n);
    if (rc == -EAGAIN)
        return; /* 64 KiB still unsent: skip this second; the client gets a
                   later one, which is all a clock's client wants */
    if (rc < 0) {
        /* -EPIPE, the client left: gone() has normally forgotten it before
         * any write can see this, but should it not have, end it here. */
        unlink_client(c);
        eddy_stream_end(c->req);
        free(c);
    }
}

/* Sends the second just begun to every client, then waits for the next
 * one, so all clients see each second once and at once.  The loop's clock
 * is read once per turn, so the timer may fire a moment early: then it only
 * waits the rest. */
static void on_tick(void *data)
{
    clock_server *cs = data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec >= cs->due) {
        for (client *c = cs->clients.next, *next; c != &cs->clients; c = next) {
            next = c->next; /* send_time may free c */
            send_time(c, ts.tv_sec);
        }
        cs->due = ts.tv_sec + 1;
    }
    eddy_timer_start(cs->loop, &cs->tick, 1000 - (uint64_t)ts.tv_nsec / 1000000);
}

static void handle_clock(eddy_request *req, void *data)
{
    clock_server *cs = data;
    if (cs->stopping) {
        eddy_respond(req, 503, "text/plain", "stopping\n", 9);
        return;
    }
    client *c = malloc(sizeof(*c));
    if (!c) {
        eddy_respond(req, 503, "text/plain", "busy\n", 5);
        return;
    }
    eddy_response_field(req, "Cache-Control", "no-cache");
    if (eddy_stream_start(req, 200, "text/event-stream", -1) < 0) {
        free(c); /* the client already left */
        return;
    }
    eddy_str method = eddy_request_method(req);
    if (method.len == 4 && !memcmp(method.ptr, "HEAD", 4)) {
        eddy_stream_end(req); /* the head alone: nothing else would end it */
        free(c);
        return;
    }
    c->req = req;
    c->next = &cs->clients;
    c->prev = cs->clients.prev;
    c->prev->next = c;
    cs->clients.prev = c;
    eddy_request_on_abort(req, gone, c);
    send_time(c, cs->due - 1); /* the latest second now, not in up to one */
    /* Returning without ending the stream: the timer goes on with it. */
}

static void handle_page(eddy_request *req, void *data)
{
    eddy_respond(req, 200, "text/html; charset=utf-8", PAGE, sizeof(PAGE) - 1);
}

/* ------------------------------------------------------------ stopping -- */

static void stopped(void *loop) { eddy_loop_stop(loop); }

/* SIGINT or SIGTERM, on the loop's thread: end every stream properly (a
 * chunked body's last chunk), then let the server close once all is sent. */
static void stop(void *data)
{
    clock_server *cs = data;
    cs->stopping = true;
    eddy_timer_stop(cs->loop, &cs->tick);
    eddy_server_shutdown(cs->srv, stopped, cs->loop);
    while (cs->clients.next != &cs->clients) {
        client *c = cs->clients.next;
        unlink_client(c);
        eddy_stream_end(c->req);
        free(c);
    }
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

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7878";
    bool io_uring = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            addr = argv[++i];
        } else if (!strcmp(argv[i], "--no-io-uring")) {
            io_uring = false;
        } else {
            fprintf(stderr, "usage: sse_clock [--listen HOST:PORT] [--no-io-uring]\n");
            return 2;
        }
    }
    /* Each client is a descriptor: take the hard limit, not the usual 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Blocked before any thread starts, so only wait_signal() takes them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* The send timeout (a response the client stops taking) at 10 s, not
     * 60: a client that takes nothing only holds memory, and would hold up
     * a graceful stop. */
    eddy_config cfg = {.send_ms = 10000};
    clock_server cs = {.clients = {&cs.clients, &cs.clients, NULL}};
    eddy_async *async;
    char bound[80];
    pthread_t signals;
    if (!(cs.loop = eddy_loop_new()) || eddy_server_new(cs.loop, &cfg, &cs.srv) < 0 ||
        !(async = eddy_async_new(cs.loop, stop, &cs))) {
        fprintf(stderr, "sse_clock: cannot start\n");
        return 2;
    }
    eddy_loop_set_io_uring(cs.loop, io_uring);
    eddy_server_route(cs.srv, &(eddy_route){.path = "/", .methods = "GET", .handler = handle_page});
    eddy_server_route(cs.srv, &(eddy_route){.path = "/clock", .methods = "GET",
                                            .handler = handle_clock, .data = &cs});
    if (eddy_server_listen(cs.srv, addr, bound, sizeof(bound)) < 0) {
        fprintf(stderr, "sse_clock: cannot listen on %s\n", addr);
        return 2;
    }
    if (pthread_create(&signals, NULL, wait_signal, async) != 0) {
        fprintf(stderr, "sse_clock: cannot start\n");
        return 2;
    }
    eddy_timer_init(&cs.tick, on_tick, &cs);
    on_tick(&cs); /* no clients yet: it only sets the timer */
    printf("sse_clock listening on http://%s/\n", bound);
    fflush(stdout);
    eddy_loop_run(cs.loop);
    pthread_join(signals, NULL); /* it has sent: the async can go */
    eddy_async_free(async);
    eddy_server_free(cs.srv);
    eddy_loop_free(cs.loop);
    return 0;
}
