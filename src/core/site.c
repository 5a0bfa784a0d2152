#include "core/site.h"
#include "core/fields.h"
#include "core/host.h"
#include "core/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void site_init(site *s)
{
    memset(s, 0, sizeof(*s));
}

void header_rules_free(header_rules *rules)
{
    for (size_t i = 0; i < rules->n; i++)
        free((char *)rules->rule[i].field.name); /* one block: name, then value */
    free(rules->rule);
    rules->rule = NULL;
    rules->n = 0;
}

void site_free(site *s)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].path);
        free(s->routes[i].methods);
        header_rules_free(&s->routes[i].headers);
    }
    free(s->routes);
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    free(s->listeners);
    header_rules_free(&s->headers);
    memset(s, 0, sizeof(*s));
}

int site_add_name(site *s, const char *name)
{
    bool wild = strncmp(name, "*.", 2) == 0;
    const char *h = name + (wild ? 2 : 0);
    size_t len = strlen(h);
    char norm[HOST_MAX + 3] = "*.";
    if (host_without_port(h, len) != len)
        return -EINVAL; /* a name, not a port */
    int n = host_normalize(h, len, norm + 2);
    if (n < 0 || (wild && norm[2] == '['))
        return -EINVAL; /* no wildcard over an IP literal */
    char *copy = strdup(wild ? norm : norm + 2);
    char **names = copy ? realloc(s->names, (s->nnames + 1) * sizeof(*names)) : NULL;
    if (!names) {
        free(copy);
        return -ENOMEM;
    }
    s->names = names;
    names[s->nnames++] = copy;
    return 0;
}

int site_add_listener(site *s, uint16_t tag)
{
    uint16_t *l = realloc(s->listeners, (s->nlisteners + 1) * sizeof(*l));
    if (!l)
        return -ENOMEM;
    s->listeners = l;
    l[s->nlisteners++] = tag;
    return 0;
}

bool site_takes_listener(const site *s, uint16_t tag)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        if (s->listeners[i] == tag)
            return true;
    return s->nlisteners == 0;
}

bool site_names(const site *s, const char *host, size_t len)
{
    for (size_t i = 0; i < s->nnames; i++)
        if (host_name_matches(s->names[i], host, len))
            return true;
    return false;
}

/* 308 to the same host, path and query on https (RFC 9110 §15.4.9: the
 * method and body are kept by the client). */
static void redirect_https(request *req)
{
    const front *f = req->front;
    eddy_str name = {"Host", 4}, host;
    request_fields(req, &name, &host, 1);
    size_t hlen = host.ptr ? host_without_port(host.ptr, host.len) : 0;
    eddy_str path = request_span(req, req->path), query = request_span(req, req->query);
    if (!hlen || path.len == 0 || path.ptr[0] != '/') {
        response_simple(req, 400, NULL, 0); /* nowhere to send it */
        return;
    }
    size_t cap = 8 + hlen + 6 + path.len + 1 + query.len + 1;
    char *loc = malloc(cap);
    if (!loc) {
        response_simple(req, 503, NULL, 0);
        return;
    }
    /* A '?' with nothing after it is part of the target too: the query
     * starts past the path's end only when the target had one. */
    bool had_query = req->query.off > req->path.off + req->path.len;
    char port[8] = "";
    if (f->redirect_https_port != 443)
        snprintf(port, sizeof(port), ":%u", f->redirect_https_port);
    int n = snprintf(loc, cap, "https://%.*s%s%.*s%s%.*s", (int)hlen, host.ptr, port, (int)path.len,
                     path.ptr, had_query ? "?" : "", (int)query.len, query.ptr);
    resp_field location = {"Location", loc, 8, (uint32_t)n};
    response_simple(req, 308, &location, 1);
    free(loc);
}

static bool list_has(const char *list, const char *m, size_t len)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && memcmp(p, m, len) == 0)
            return true;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

/* "GET,POST" or "GET, POST" -> "GET, HEAD, POST": tokens checked, HEAD
 * added where GET is (a HEAD is a GET without its body), no duplicates. */
static int parse_methods(const char *in, char **out)
{
    /* Each token may gain ", " before it, and GET a ", HEAD" after. */
    size_t cap = 3 * strlen(in) + sizeof(", HEAD") + 1;
    char *list = malloc(cap);
    if (!list)
        return -ENOMEM;
    size_t n = 0;
    list[0] = 0;
    for (const char *p = in; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ' ')
            if (!field_is_tchar((unsigned char)*p++)) {
                free(list);
                return -EINVAL;
            }
        size_t len = (size_t)(p - tok);
        for (int pass = 0; len && pass < 2; pass++) {
            const char *m = pass ? "HEAD" : tok;
            size_t ml = pass ? 4 : len;
            if (pass && !(len == 3 && memcmp(tok, "GET", 3) == 0))
                break;
            if (list_has(list, m, ml))
                continue;
            if (n)
                memcpy(list + n, ", ", 2), n += 2;
            memcpy(list + n, m, ml);
            n += ml;
            list[n] = 0;
        }
    }
    if (n == 0) {
        free(list);
        return -EINVAL;
    }
    *out = list;
    return 0;
}

int site_add_route(site *s, const eddy_route *r)
{
    if (!r || !r->path || r->path[0] != '/' || !r->handler)
        return -EINVAL;
    size_t len = strlen(r->path);
    if (site_route_of(s, r->path, r->prefix))
        return -EEXIST;
    if (r->body != EDDY_BODY_DROP && r->body != EDDY_BODY_WHOLE && r->body != EDDY_BODY_STREAM)
        return -EINVAL;
    route add = {.path_len = len, .prefix = r->prefix, .body = r->body,
                 .handler = r->handler, .data = r->data};
    if (r->methods) {
        int rc = parse_methods(r->methods, &add.methods);
        if (rc < 0)
            return rc;
    }
    route *routes = realloc(s->routes, (s->nroutes + 1) * sizeof(*routes));
    add.path = strdup(r->path);
    if (!routes || !add.path) {
        if (routes)
            s->routes = routes;
        free(add.path);
        free(add.methods);
        return -ENOMEM;
    }
    s->routes = routes;
    routes[s->nroutes++] = add;
    s->body_routes += r->body != EDDY_BODY_DROP;
    return 0;
}

int header_rules_add(header_rules *rules, enum header_op op, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon && op != HEADER_REMOVE)
        return -EINVAL;
    if (colon && op == HEADER_REMOVE)
        return -EINVAL; /* a name alone */
    size_t name_len = colon ? (size_t)(colon - line) : strlen(line);
    const char *v = colon ? colon + 1 : line + name_len;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    int rc = response_field_check(line, name_len, v, vlen);
    if (rc < 0)
        return rc;
    if (rules->n >= SITE_MAX_HEADER_RULES)
        return -ENOSPC;
    char *block = malloc(name_len + vlen + 2);
    header_rule *rule = realloc(rules->rule, (rules->n + 1) * sizeof(*rule));
    if (rule)
        rules->rule = rule;
    if (!block || !rule) {
        free(block);
        return -ENOMEM;
    }
    memcpy(block, line, name_len);
    block[name_len] = 0;
    memcpy(block + name_len + 1, v, vlen);
    block[name_len + 1 + vlen] = 0;
    rule[rules->n++] = (header_rule){op, {block, block + name_len + 1, (uint32_t)name_len,
                                          (uint32_t)vlen}};
    return 0;
}

route *site_route_of(site *s, const char *path, bool prefix)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < s->nroutes; i++)
        if (s->routes[i].prefix == prefix && s->routes[i].path_len == len &&
            memcmp(s->routes[i].path, path, len) == 0)
            return &s->routes[i];
    return NULL;
}

/* A prefix matches its own path and what lies below it, at a segment
 * boundary: "/api" takes "/api" and "/api/x", not "/apix". */
static bool prefix_matches(const route *r, const char *path, size_t len)
{
    if (len < r->path_len || memcmp(path, r->path, r->path_len) != 0)
        return false;
    return len == r->path_len || r->path[r->path_len - 1] == '/' || path[r->path_len] == '/';
}

const route *site_find_route(const site *s, const char *path, size_t len)
{
    const route *best = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        const route *r = &s->routes[i];
        if (!r->prefix) {
            if (r->path_len == len && memcmp(r->path, path, len) == 0)
                return r; /* an exact route wins over every prefix */
        } else if ((!best || r->path_len > best->path_len) && prefix_matches(r, path, len)) {
            best = r;
        }
    }
    return best;
}

static bool unredirected(const request *req)
{
    const char *prefix = req->front->every_site.path;
    if (!prefix)
        return false;
    eddy_str path = request_span(req, req->path);
    size_t n = strlen(prefix);
    return path.len >= n && memcmp(path.ptr, prefix, n) == 0 &&
           (path.len == n || path.ptr[n] == '/');
}

void site_dispatch(request *req)
{
    int chosen = sites_choose(req);
    if (chosen) {
        response_simple(req, chosen, NULL, 0);
        return;
    }
    if (req->front->redirect_https_port && !req->secure && !unredirected(req)) {
        redirect_https(req);
        return;
    }
    if (req->method_id == METHOD_CONNECT) {
        /* authority-form names no path: no route can take it. */
        resp_field allow = FIELD_LIT("Allow", "");
        response_simple(req, 405, &allow, 1);
        return;
    }
    int st = request_decode_path(req);
    if (st) {
        response_simple(req, st, NULL, 0);
        return;
    }
    eddy_str path = request_decoded_path(req);
    if (path.len == 1 && path.ptr[0] == '*') {
        response_simple(req, 204, NULL, 0); /* OPTIONS *: the server is here */
        return;
    }
    const route *r = req->routed ? req->route : site_find_route(req->site, path.ptr, path.len);
    req->route = r;
    req->routed = true;
    if (!r) {
        response_simple(req, 404, NULL, 0);
        return;
    }
    if (r->methods) {
        eddy_str m = request_span(req, req->method);
        if (!list_has(r->methods, m.ptr, m.len)) {
            resp_field allow = {"Allow", r->methods, 5, (uint32_t)strlen(r->methods)};
            response_simple(req, req->method_id == METHOD_OPTIONS ? 204 : 405, &allow, 1);
            return;
        }
    }
    r->handler(request_handle(req), r->data);
}
