/* A server's sites, and how a request finds its own: by the host it names
 * (Host, :authority, or an absolute-form target's authority), compared as
 * core/host.h says.  A table is built whole and then only read; a reload
 * makes a new one, and requests keep the table they began with (counted
 * references, on one loop) until they finish. */
#ifndef EDDY_CORE_SITES_H
#define EDDY_CORE_SITES_H

#include "core/site.h"

/* What a request whose host no site names gets, without a default site. */
#define SITES_DEFAULT_NO_MATCH 421

typedef struct site_table {
    site **sites;          /* in the order given: the first whose names match wins */
    size_t nsites;
    site *fallback;        /* the default site: hosts no site names; NULL: none */
    site none;             /* what a request has before its site is chosen,
                              without a fallback: no routes, no rules */
    int no_match_status;   /* 421 or 404, without a fallback */
    bool named;            /* a site has names or listeners: requests are
                              looked at (set as the table is put to use) */
    unsigned refs;         /* the server's (while current) and each request's */
    /* Called as the table is freed, for what its routes' data hold. */
    void (*on_free)(void *data);
    void *free_data;
    /* Called as a server puts the table to use, on its loop's thread. */
    void (*on_use)(void *data);
    void *use_data;
} site_table;

/* An empty table (one reference); NULL without memory. */
site_table *site_table_new(void);
/* Appends an empty site; NULL without memory. */
site *site_table_add(site_table *t);
void site_table_ref(site_table *t);
/* Frees the table once the last reference goes. */
void site_table_unref(site_table *t);

/* Chooses req's site (once): by its host among the named sites, else the
 * fallback.  Returns 0, 400 for a host that is not one (RFC 9112 §3.2),
 * or the table's no-match status. */
int sites_choose(request *req);

/* Chooses req's site and, when its path decodes, its route, before the
 * body comes (the route decides what becomes of the body, and its limit).
 * Returns 0 or a status to answer with. */
int sites_route_early(request *req);

#endif
