/* A site: the routes requests are handled by, and what every response of
 * it shares (the access log, the Date value).  One per server today; the
 * configuration file will make several, chosen by Host. */
#ifndef EDDY_CORE_SITE_H
#define EDDY_CORE_SITE_H

#include "core/request.h"
#include <time.h>

struct access_log;

typedef struct route {
    char *path;
    size_t path_len;
    bool prefix;           /* the path and everything below it */
    enum eddy_body body;   /* what the handler gets of request bodies */
    char *methods;         /* the Allow value ("GET, HEAD"), NULL: any method */
    eddy_handler handler;
    void *data;
} route;

struct site {
    eddy_loop *loop;
    request_pool requests; /* every request's slot; outlives them all */
    route *routes;
    size_t nroutes;
    unsigned body_routes;  /* routes taking bodies: only then is a route looked up early */
    struct access_log *log; /* NULL: no access log */
    resp_field *fields;    /* added to every response (--header); owned */
    size_t nfields;
    /* Strict-Transport-Security, on responses over TLS: hsts_value is
     * "max-age=N", empty for none. */
    resp_field hsts;
    char hsts_value[24];
    unsigned redirect_https_port; /* > 0: plain requests get 308 to https */
    /* Paths under this prefix are served on plain listeners even while
     * redirect_https is set (ACME's HTTP-01: the CA fetches it over plain
     * HTTP, before a certificate exists); NULL: none. */
    const char *unredirected_prefix;
    /* IMF-fixdate, refreshed when the loop's second changes. */
    time_t date_sec;
    char date[32];
};

void site_init(site *s, eddy_loop *loop);
void site_free(site *s);
int site_add_route(site *s, const eddy_route *r);
/* Adds "Name: value" to every response; -EINVAL or -EPERM when it is not
 * a field a handler may add (response_field_check), -ENOSPC past 64. */
int site_add_field(site *s, const char *line);
/* The route for a decoded path: an exact route, else the longest prefix;
 * NULL when none. */
const route *site_find_route(const site *s, const char *path, size_t len);
/* Adds Strict-Transport-Security: max-age=seconds to responses over TLS
 * (0: none). */
void site_set_hsts(site *s, unsigned seconds);
/* Routes req to its handler (or, for a plain request while
 * redirect_https_port is set, answers 308 to https): 400 for a path that does not decode, 404 for
 * no route, 405 with Allow for a method the route does not take. */
void site_dispatch(request *req);
/* The current Date value (29 characters). */
const char *site_date(site *s);

#endif
