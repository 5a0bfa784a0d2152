#include "core/sites.h"
#include "core/host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

site_table *site_table_new(void)
{
    site_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    site_init(&t->none);
    t->no_match_status = SITES_DEFAULT_NO_MATCH;
    t->refs = 1;
    return t;
}

site *site_table_add(site_table *t)
{
    site *s = malloc(sizeof(*s));
    site **sites = s ? realloc(t->sites, (t->nsites + 1) * sizeof(*sites)) : NULL;
    if (!sites) {
        free(s);
        return NULL;
    }
    site_init(s);
    t->sites = sites;
    sites[t->nsites++] = s;
    return s;
}

void site_table_ref(site_table *t) { t->refs++; }

void site_table_unref(site_table *t)
{
    if (!t || --t->refs)
        return;
    if (t->on_free)
        t->on_free(t->free_data);
    for (size_t i = 0; i < t->nsites; i++) {
        site_free(t->sites[i]);
        free(t->sites[i]);
    }
    free(t->sites);
    site_free(&t->none);
    free(t);
}

/* The authority of an absolute-form target ("http://a.example/x"), which
 * stands for the host when there is one (RFC 9112 §3.2.2). */
static bool target_authority(eddy_str t, eddy_str *out)
{
    const char *sep = t.len && t.ptr[0] != '/' ? memchr(t.ptr, ':', t.len) : NULL;
    if (!sep || (size_t)(t.ptr + t.len - sep) < 3 || sep[1] != '/' || sep[2] != '/')
        return false;
    const char *a = sep + 3, *end = t.ptr + t.len;
    const char *stop = a;
    while (stop < end && *stop != '/' && *stop != '?' && *stop != '#')
        stop++;
    *out = (eddy_str){a, (size_t)(stop - a)};
    return true;
}

/* The first site whose names cover the host and which takes the
 * request's listener; then a site with no names limited to that listener;
 * then the default site (if it takes the listener). */
int sites_choose(request *req)
{
    if (req->site_chosen)
        return 0;
    site_table *t = req->table;
    req->site_chosen = true;
    site *fallback = t->fallback && site_takes_listener(t->fallback, req->listener) ? t->fallback
                                                                                     : NULL;
    if (!t->named) {
        req->site = fallback ? fallback : &t->none;
        return fallback ? 0 : t->no_match_status;
    }
    eddy_str name = {"Host", 4}, host;
    if (req->method_id == METHOD_CONNECT || !target_authority(request_span(req, req->target), &host))
        request_fields(req, &name, &host, 1);
    char norm[HOST_MAX + 1];
    int n = host.ptr && host.len ? host_normalize(host.ptr, host.len, norm) : 0;
    if (n < 0)
        return 400; /* RFC 9112 §3.2: a Host that is not one */
    for (size_t i = 0; n > 0 && i < t->nsites; i++)
        if (site_names(t->sites[i], norm, (size_t)n) &&
            site_takes_listener(t->sites[i], req->listener)) {
            req->site = t->sites[i];
            return 0;
        }
    /* A site without names, limited to listeners, takes any host there. */
    for (size_t i = 0; i < t->nsites; i++)
        if (!t->sites[i]->nnames && t->sites[i]->nlisteners &&
            site_takes_listener(t->sites[i], req->listener)) {
            req->site = t->sites[i];
            return 0;
        }
    req->site = fallback ? fallback : &t->none;
    return fallback ? 0 : t->no_match_status;
}

int sites_route_early(request *req)
{
    int st = sites_choose(req);
    if (st)
        return st;
    if (request_split_target(req) == 0 && request_decode_path(req) == 0) {
        eddy_str path = request_decoded_path(req);
        req->route = site_find_route(req->site, path.ptr, path.len);
        req->routed = true;
    }
    return 0;
}

/* ------------------------------------------------------------ public API -- */

struct eddy_sites {
    site_table t;
};

struct eddy_site {
    site s;
};

eddy_sites *eddy_sites_new(void) { return (eddy_sites *)site_table_new(); }

void eddy_sites_free(eddy_sites *set)
{
    if (set)
        site_table_unref(&set->t);
}

eddy_site *eddy_sites_add(eddy_sites *set) { return (eddy_site *)site_table_add(&set->t); }

void eddy_sites_default(eddy_sites *set, eddy_site *s) { set->t.fallback = &s->s; }

int eddy_sites_no_match(eddy_sites *set, int status)
{
    if (status != 421 && status != 404)
        return -EINVAL;
    set->t.no_match_status = status;
    return 0;
}

void eddy_sites_on_free(eddy_sites *set, eddy_callback cb, void *data)
{
    set->t.on_free = cb;
    set->t.free_data = data;
}

void eddy_sites_on_use(eddy_sites *set, eddy_callback cb, void *data)
{
    set->t.on_use = cb;
    set->t.use_data = data;
}

int eddy_site_name(eddy_site *s, const char *name)
{
    return name ? site_add_name(&s->s, name) : -EINVAL;
}

int eddy_site_listener(eddy_site *s, unsigned tag)
{
    return tag > EDDY_LISTENER_TAG_MAX ? -EINVAL : site_add_listener(&s->s, (uint16_t)tag);
}

int eddy_site_route(eddy_site *s, const eddy_route *r) { return site_add_route(&s->s, r); }

int eddy_site_header(eddy_site *s, const char *path, enum eddy_header_op op, const char *field)
{
    if (!field || (op != EDDY_HEADER_ADD && op != EDDY_HEADER_SET && op != EDDY_HEADER_REMOVE))
        return -EINVAL;
    header_rules *rules = &s->s.headers;
    if (path) {
        route *r = site_route_of(&s->s, path, true);
        if (!r)
            return -ENOENT;
        rules = &r->headers;
    }
    enum header_op hop = op == EDDY_HEADER_ADD ? HEADER_ADD
                         : op == EDDY_HEADER_SET ? HEADER_SET : HEADER_REMOVE;
    return header_rules_add(rules, hop, field);
}

int eddy_site_limits(eddy_site *s, const char *path, const eddy_path_limits *limits)
{
    route *r = path && limits ? site_route_of(&s->s, path, true) : NULL;
    if (!r)
        return -ENOENT;
    r->max_body = limits->max_body;
    r->send_ms = limits->send_ms;
    r->body_ms = limits->body_ms;
    return 0;
}
