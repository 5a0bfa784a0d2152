#include "server/delay.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest delay accepted: a day. */
#define DELAY_MAX_SECONDS 86400.0

typedef struct pending {
    eddy_timer timer;
    eddy_request *req;
    eddy_files *files;
} pending;

static void answer(void *data)
{
    pending *p = data;
    eddy_files_respond(p->files, p->req, "/");
    free(p);
}

static void client_left(void *data)
{
    pending *p = data;
    eddy_timer_stop(eddy_request_loop(p->req), &p->timer);
    free(p);
}

static void handle(eddy_request *req, void *data)
{
    const delay_binding *b = data;
    pending *p = malloc(sizeof(*p));
    if (!p) {
        eddy_respond(req, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
        return;
    }
    p->req = req;
    p->files = b->files;
    eddy_timer_init(&p->timer, answer, p);
    if (eddy_timer_start(eddy_request_loop(req), &p->timer, b->route->ms) < 0) {
        free(p);
        eddy_respond(req, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
        return;
    }
    eddy_request_on_abort(req, client_left, p);
}

int delay_parse(const char *spec, delay_route *out)
{
    const char *eq = strrchr(spec, '=');
    if (!eq || spec[0] != '/' || eq == spec)
        return -EINVAL;
    char *end;
    double secs = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !isfinite(secs) || secs < 0 || secs > DELAY_MAX_SECONDS)
        return -EINVAL;
    out->path = strndup(spec, (size_t)(eq - spec));
    if (!out->path)
        return -ENOMEM;
    out->ms = (uint64_t)llround(secs * 1000.0);
    return 0;
}

int delay_register(eddy_site *site, delay_binding *b)
{
    eddy_route r = {.path = b->route->path, .handler = handle, .data = b};
    return eddy_site_route(site, &r);
}
