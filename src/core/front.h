/* The core's side of one server on one loop: what every request of it
 * shares.  The request pool outlives every table of sites, since requests
 * of an old table may still be finishing after a reload. */
#ifndef EDDY_CORE_FRONT_H
#define EDDY_CORE_FRONT_H

#include "core/request.h"
#include "core/sites.h"
#include <time.h>

struct access_log;

typedef struct front {
    eddy_loop *loop;
    request_pool requests; /* every request's slot */
    site_table *sites;     /* what new requests are routed by */
    struct access_log *log; /* NULL: no access log */
    /* IMF-fixdate, refreshed when the loop's second changes. */
    time_t date_sec;
    char date[32];
} front;

/* With a table of one default site; -ENOMEM. */
int front_init(front *f, eddy_loop *loop);
void front_free(front *f);
/* Makes t (whose reference the front takes) the table new requests get;
 * requests begun earlier finish on theirs. */
void front_use_sites(front *f, site_table *t);
/* The current Date value (29 characters). */
const char *front_date(front *f);

#endif
