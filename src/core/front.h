/* The core's side of one server on one loop: what every request of it
 * shares.  The request pool outlives every table of sites, since requests
 * of an old table may still be finishing after a reload. */
#ifndef EDDY_CORE_FRONT_H
#define EDDY_CORE_FRONT_H

#include "core/request.h"
#include "core/sites.h"
#include <time.h>

struct access_log;
struct metrics_slot;

typedef struct front {
    eddy_loop *loop;
    request_pool requests; /* every request's slot */
    site_table *sites;     /* what new requests are routed by */
    struct access_log *log; /* NULL: no access log */
    struct metrics_slot *metrics; /* this worker's counters; NULL: none */
    /* The server's own, over every site of every table: */
    header_rules headers;  /* --header: rules before the site's */
    /* Strict-Transport-Security, on responses over TLS: hsts_value is
     * "max-age=N", empty for none. */
    resp_field hsts;
    char hsts_value[24];
    unsigned redirect_https_port; /* > 0: plain requests get 308 to https */
    uint64_t max_body;     /* the server's body limit, for handlers that
                              stream a body and keep to the limit themselves */
    /* A route every site gets (ACME's HTTP-01 answers), served on plain
     * listeners even while redirecting to https: the CA fetches it over
     * plain HTTP, before a certificate exists.  path NULL: none. */
    eddy_route every_site;
    /* IMF-fixdate, refreshed when the loop's second changes. */
    time_t date_sec;
    char date[32];
} front;

/* With a table of one default site; -ENOMEM. */
int front_init(front *f, eddy_loop *loop);
void front_free(front *f);
/* Makes t (whose reference the front takes) the table new requests get,
 * with every_site routed in each of its sites; requests begun earlier
 * finish on theirs.  -ENOMEM or -EEXIST (t is then released). */
int front_use_sites(front *f, site_table *t);
/* Adds Strict-Transport-Security: max-age=seconds to responses over TLS
 * (0: none). */
void front_set_hsts(front *f, unsigned seconds);
/* The current Date value (29 characters). */
const char *front_date(front *f);

#endif
