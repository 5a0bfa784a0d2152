/* Sites: the routes requests are handled by and the rules their responses
 * follow, chosen by the request's host (core/sites.h holds a server's
 * sites).  A site is built, then shared read-only by every request routed
 * to it. */
#ifndef EDDY_CORE_SITE_H
#define EDDY_CORE_SITE_H

#include "core/request.h"

/* What an operator asks of a response's fields (the configuration's
 * `headers`, the --header flag). */
enum header_op {
    HEADER_ADD,    /* one more field, whatever is there */
    HEADER_SET,    /* this field alone: others of the name are dropped */
    HEADER_REMOVE, /* none of the name */
};

typedef struct header_rule {
    enum header_op op;
    resp_field field; /* the value is empty for HEADER_REMOVE; one block, owned */
} header_rule;

/* Most header rules a site, or a path of it, may have. */
#define SITE_MAX_HEADER_RULES RESPONSE_MAX_FIELDS

typedef struct header_rules {
    header_rule *rule;
    size_t n;
} header_rules;

typedef struct route {
    char *path;
    size_t path_len;
    bool prefix;           /* the path and everything below it */
    enum eddy_body body;   /* what the handler gets of request bodies */
    char *methods;         /* the Allow value ("GET, HEAD"), NULL: any method */
    eddy_handler handler;
    void *data;
    header_rules headers;  /* applied after the site's */
    uint64_t max_body;     /* 0: the server's */
    unsigned send_ms;      /* a client may stop taking a response; 0: the server's */
    unsigned body_ms;      /* ... stop sending a body; 0: the server's header timeout */
} route;

/* Longest name a site may have (a DNS name, or "*." and one). */
#define SITE_NAME_MAX 255

struct site {
    char **names;          /* normalized: "example.com", "*.example.com" */
    size_t nnames;
    uint16_t *listeners;   /* the listener tags it takes connections from;
                              none: every listener */
    size_t nlisteners;
    route *routes;
    size_t nroutes;
    unsigned body_routes;  /* routes taking bodies or limiting them: only then
                              is a route looked up before the body */
    header_rules headers;  /* every response of the site */
};

void site_init(site *s);
void site_free(site *s);
/* Adds a name the site answers to: normalized (core/host.h), "*.NAME"
 * for every name below NAME.  -EINVAL for what is not a host name. */
int site_add_name(site *s, const char *name);
int site_add_route(site *s, const eddy_route *r);
/* The route of path and kind, to give it header rules or a body limit. */
route *site_route_of(site *s, const char *path, bool prefix);
/* Adds a rule: "Name: value" for ADD and SET, "Name" for REMOVE.
 * -EINVAL or -EPERM when it is not a field a handler may add
 * (response_field_check), -ENOSPC past SITE_MAX_HEADER_RULES. */
int header_rules_add(header_rules *rules, enum header_op op, const char *line);
void header_rules_free(header_rules *rules);
/* Limits the site to a listener's connections; -ENOMEM. */
int site_add_listener(site *s, uint16_t tag);
/* Whether the site takes connections from the listener tagged tag. */
bool site_takes_listener(const site *s, uint16_t tag);
/* Whether the site's names cover a normalized host. */
bool site_names(const site *s, const char *host, size_t len);
/* The route for a decoded path: an exact route, else the longest prefix;
 * NULL when none. */
const route *site_find_route(const site *s, const char *path, size_t len);
/* Routes req to its handler (or, for a plain request while the server
 * redirects to https, answers 308): 400 for a path that
 * does not decode, 404 for no route, 405 with Allow for a method the
 * route does not take.  The site is chosen first (sites.h). */
void site_dispatch(request *req);

#endif
