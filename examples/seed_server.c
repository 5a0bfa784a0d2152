/* The seed's server, embedded: "/" answers hello.html, "/sleep" answers the
 * same after five seconds without holding up anyone else, and anything else
 * gets 404.html.  Everything here is eddy's public API.
 *
 *   build/examples/seed_server [HOST:PORT] [ROOT]   (defaults 127.0.0.1:7878, www)
 */
#include <eddy.h>

#include <stdio.h>
#include <stdlib.h>

#define SLEEP_MS 5000

typedef struct sleeper {
    eddy_timer timer;
    eddy_request *req;
    eddy_files *files;
} sleeper;

static void wake(void *data)
{
    sleeper *s = data;
    eddy_files_respond(s->files, s->req, "/"); /* the same page "/" serves */
    free(s);
}

static void gone(void *data)
{
    sleeper *s = data; /* the client left: nobody to answer */
    eddy_timer_stop(eddy_request_loop(s->req), &s->timer);
    free(s);
}

static void handle_sleep(eddy_request *req, void *files)
{
    sleeper *s = malloc(sizeof(*s));
    if (!s) {
        eddy_respond(req, 503, "text/plain", "busy\n", 5);
        return;
    }
    s->req = req;
    s->files = files;
    eddy_timer_init(&s->timer, wake, s);
    eddy_timer_start(eddy_request_loop(req), &s->timer, SLEEP_MS);
    eddy_request_on_abort(req, gone, s);
    /* Returning without answering: the timer answers later. */
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:7878";
    eddy_files_config files_cfg = {.root = argc > 2 ? argv[2] : "www"};
    eddy_loop *loop = eddy_loop_new();
    eddy_files *files;
    eddy_server *srv;
    char bound[80];
    int rc;
    if (!loop || eddy_files_new(loop, &files_cfg, &files) < 0 ||
        eddy_server_new(loop, NULL, &srv) < 0) {
        fprintf(stderr, "seed_server: cannot start\n");
        return 2;
    }
    /* Everything is a file under the root, except /sleep. */
    eddy_server_route(srv, &(eddy_route){.path = "/", .prefix = true,
                                         .handler = eddy_files_handler, .data = files});
    eddy_server_route(srv, &(eddy_route){.path = "/sleep", .handler = handle_sleep, .data = files});
    if ((rc = eddy_server_listen(srv, addr, bound, sizeof(bound))) < 0) {
        fprintf(stderr, "seed_server: cannot listen on %s\n", addr);
        return 2;
    }
    printf("seed_server listening on http://%s/\n", bound);
    fflush(stdout);
    eddy_loop_run(loop);
    eddy_server_free(srv);
    eddy_files_free(files);
    eddy_loop_free(loop);
    return 0;
}
