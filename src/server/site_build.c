#include "server/site_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A redirect's or respond's data, copied from the options: a set may
 * outlive them (a reload frees the old options while the old set's last
 * requests finish). */
typedef struct answer {
    char *path, *to, *body, *type;
    size_t body_len;
    int status;
    bool append_path;
} answer;

/* What one set holds for its handlers, freed with the set (after its last
 * request). */
typedef struct holdings {
    eddy_files **files;
    size_t nfiles;
    eddy_proxy **proxies;
    size_t nproxies;
    answer **answers;
    size_t nanswers;
    delay_route *routes;   /* copies of the --delay routes */
    delay_binding *delays;
    unsigned ndelays;
    eddy_status *status;   /* --status: routed in every site; NULL: none */
} holdings;

/* The set is in use on its worker's loop: proxies check their backends
 * from now on, traffic or not. */
static void holdings_start(void *data)
{
    holdings *h = data;
    for (size_t i = 0; i < h->nproxies; i++)
        eddy_proxy_start(h->proxies[i]);
}

static void holdings_free(void *data)
{
    holdings *h = data;
    for (size_t i = 0; i < h->nfiles; i++)
        eddy_files_free(h->files[i]);
    free(h->files);
    /* A set given to a server is freed on its worker's loop after its last
     * request; one never given (a failed build, -t, a reload given up) is
     * freed on the main thread, which is safe too: a proxy never started
     * holds nothing of the loop it was made for. */
    for (size_t i = 0; i < h->nproxies; i++)
        eddy_proxy_free(h->proxies[i]);
    free(h->proxies);
    for (size_t i = 0; i < h->nanswers; i++) {
        answer *a = h->answers[i];
        free(a->path);
        free(a->to);
        free(a->body);
        free(a->type);
        free(a);
    }
    free(h->answers);
    for (unsigned i = 0; i < h->ndelays; i++)
        free(h->routes[i].path);
    free(h->routes);
    free(h->delays);
    eddy_status_free(h->status);
    free(h);
}

static char *copy(const char *s) { return s ? strdup(s) : NULL; }

/* A held copy of what p's handler answers with; NULL without memory. */
static answer *hold_answer(holdings *h, const conf_path *p)
{
    answer **grown = realloc(h->answers, (h->nanswers + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    h->answers = grown;
    answer *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    grown[h->nanswers++] = a;
    a->status = p->status;
    a->append_path = p->append_path;
    a->body_len = p->body_len;
    a->path = copy(p->path);
    a->to = copy(p->to);
    a->type = copy(p->type);
    a->body = malloc(p->body_len + 1);
    if (a->body)
        memcpy(a->body, p->body ? p->body : "", p->body_len + 1);
    if (!a->path || (p->to && !a->to) || (p->type && !a->type) || !a->body)
        return NULL;
    return a;
}

static int hold_files(holdings *h, eddy_files *f)
{
    eddy_files **grown = realloc(h->files, (h->nfiles + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    h->files = grown;
    grown[h->nfiles++] = f;
    return 0;
}

static int hold_proxy(holdings *h, eddy_proxy *p)
{
    eddy_proxy **grown = realloc(h->proxies, (h->nproxies + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    h->proxies = grown;
    grown[h->nproxies++] = p;
    return 0;
}

/* A held proxy for loop, or NULL after writing to perr why not (the
 * engine's line, else the error's name).  Thread rule: site_build runs on
 * the main thread for every worker's loop, not on that loop;
 * eddy_proxy_new does not touch the loop (it resolves names, blocking,
 * which is also why it must not run on a loop that serves), so this is
 * safe. */
static eddy_proxy *new_proxy(eddy_loop *loop, holdings *h, const eddy_proxy_config *cfg,
                             char *perr, size_t perr_len)
{
    eddy_proxy *p;
    perr[0] = 0;
    int rc = eddy_proxy_new(loop, cfg, &p, perr, perr_len);
    if (rc < 0) {
        if (!perr[0])
            snprintf(perr, perr_len, "%s", strerror(-rc));
        return NULL;
    }
    if (hold_proxy(h, p) < 0) {
        eddy_proxy_free(p);
        snprintf(perr, perr_len, "out of memory");
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------ handlers -- */

static void not_found(eddy_request *req, void *data)
{
    (void)data;
    eddy_respond(req, 404, "text/plain; charset=utf-8", "404 Not Found\n", 14);
}

static void respond(eddy_request *req, void *data)
{
    const answer *p = data;
    eddy_respond(req, p->status, p->type, p->body, p->body_len);
}

/* Bytes a path may carry as they are; the rest is percent-encoded again. */
static bool path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~/!$&'()*+,;=:@", c) != NULL;
}

/* `to`, then (append-path) the decoded path below the prefix, encoded
 * again, and the query as it came. */
static void redirect(eddy_request *req, void *data)
{
    const answer *p = data;
    size_t to_len = strlen(p->to);
    eddy_str path = eddy_request_path(req), query = eddy_request_query(req);
    eddy_str rest = {"", 0};
    size_t plen = strlen(p->path);
    if (p->append_path && path.len >= plen) {
        /* "/" as a prefix keeps its slash: "/a" below "/" is "/a". */
        size_t cut = plen > 1 && p->path[plen - 1] != '/' ? plen : plen - (p->path[plen - 1] == '/');
        rest = (eddy_str){path.ptr + cut, path.len - cut};
    }
    size_t cap = to_len + 3 * rest.len + 1 + query.len + 1;
    char *loc = malloc(cap);
    if (!loc) {
        eddy_respond(req, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
        return;
    }
    size_t n = to_len;
    memcpy(loc, p->to, to_len);
    if (rest.len && n && loc[n - 1] == '/' && rest.ptr[0] == '/')
        n--; /* "https://b/" + "/x" is "https://b/x" */
    for (size_t i = 0; i < rest.len; i++) {
        unsigned char c = (unsigned char)rest.ptr[i];
        if (path_char(c)) {
            loc[n++] = (char)c;
        } else {
            n += (size_t)snprintf(loc + n, 4, "%%%02X", c);
        }
    }
    if (p->append_path && query.len) {
        loc[n++] = '?';
        memcpy(loc + n, query.ptr, query.len);
        n += query.len;
    }
    loc[n] = 0;
    if (eddy_response_field(req, "Location", loc) < 0)
        eddy_respond(req, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
    else
        eddy_respond(req, p->status, NULL, NULL, 0);
    free(loc);
}

/* --------------------------------------------------------------- paths -- */

/* Whether prefix covers path: itself, or below it at a '/'. */
static bool covers(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    return strncmp(prefix, path, n) == 0 &&
           (path[n] == 0 || prefix[n - 1] == '/' || path[n] == '/');
}

static int fail(char *err, size_t err_len, const conf *c, conf_mark m, const char *fmt,
                const char *a, const char *b)
{
    int n = m.line ? snprintf(err, err_len, "%s:%u:%u: ", c->file, m.line, m.col) : 0;
    if (n < 0 || (size_t)n >= err_len)
        n = 0;
    snprintf(err + n, err_len - (size_t)n, fmt, a, b);
    return -1;
}

/* A path's handler comes from itself or the longest path above it with
 * one; its header rules are those of every path covering it, shortest
 * first; its body limit its own, else the nearest above, else the site's. */
static int build_site(eddy_loop *loop, const conf *c, const conf_site *cs, eddy_site *site,
                      holdings *h, char *err, size_t err_len)
{
    for (unsigned i = 0; i < cs->nnames; i++)
        if (eddy_site_name(site, cs->names[i]) < 0)
            return fail(err, err_len, c, cs->mark, "'%s' is not a host name%s", cs->names[i], "");
    for (unsigned i = 0; i < cs->nlisten; i++)
        if (eddy_site_listener(site, cli_listen_tag(cs->listen[i])) < 0)
            return fail(err, err_len, c, cs->listen_mark, "out of memory%s%s", "", "");
    for (unsigned i = 0; i < cs->rules.nheaders; i++)
        if (eddy_site_header(site, NULL, cs->rules.headers[i].op, cs->rules.headers[i].field) < 0)
            return fail(err, err_len, c, cs->mark, "cannot add header rule '%s'%s",
                        cs->rules.headers[i].field, "");
    void **data = calloc(cs->npaths + 1, sizeof(*data));
    if (!data)
        return fail(err, err_len, c, cs->mark, "out of memory%s%s", "", "");
    int rc = 0;
    /* One file server and one proxy per path that has the handler, shared
     * by the paths below it that inherit it. */
    for (unsigned i = 0; i < cs->npaths && rc == 0; i++) {
        const conf_path *p = &cs->paths[i];
        if (p->handler == CONF_PROXY) {
            eddy_proxy_config cfg = p->proxy;
            cfg.strip_prefix = p->strip_prefix ? p->path : NULL;
            char perr[256];
            if (!(data[i] = new_proxy(loop, h, &cfg, perr, sizeof(perr))))
                rc = fail(err, err_len, c, p->mark, "cannot proxy %s: %s", p->path, perr);
            continue;
        }
        if (p->handler != CONF_FILES)
            continue;
        eddy_files *f;
        int frc = eddy_files_new(loop, &p->files, &f);
        if (frc < 0) {
            rc = fail(err, err_len, c, p->root_mark, "cannot serve root '%s': %s", p->files.root,
                      strerror(-frc));
            break;
        }
        data[i] = f;
        if (hold_files(h, f) < 0) {
            eddy_files_free(f);
            rc = fail(err, err_len, c, p->mark, "out of memory%s%s", "", "");
        }
    }
    for (unsigned i = 0; i < cs->npaths && rc == 0; i++) {
        const conf_path *p = &cs->paths[i];
        const conf_path *owner = NULL; /* the path whose handler serves p */
        unsigned owner_at = 0;
        eddy_path_limits lim = {cs->rules.max_body, cs->rules.send_ms, cs->rules.body_ms};
        size_t best = 0, best_body = 0, best_send = 0, best_recv = 0;
        for (unsigned j = 0; j < cs->npaths; j++) {
            const conf_path *q = &cs->paths[j];
            size_t ql = strlen(q->path);
            if (!covers(q->path, p->path))
                continue;
            if (q->handler != CONF_NO_HANDLER && (!owner || ql > best))
                owner = q, owner_at = j, best = ql;
            /* Each limit from the longest covering path that sets it. */
            if (q->rules.max_body && ql >= best_body)
                lim.max_body = q->rules.max_body, best_body = ql;
            if (q->rules.send_ms && ql >= best_send)
                lim.send_ms = q->rules.send_ms, best_send = ql;
            if (q->rules.body_ms && ql >= best_recv)
                lim.body_ms = q->rules.body_ms, best_recv = ql;
        }
        eddy_route r = {.path = p->path, .prefix = true, .handler = not_found};
        if (owner && owner->handler == CONF_FILES)
            r.handler = eddy_files_handler, r.data = data[owner_at];
        else if (owner && owner->handler == CONF_PROXY)
            r.handler = eddy_proxy_handler, r.body = EDDY_BODY_STREAM, r.data = data[owner_at];
        else if (owner && (owner->handler == CONF_REDIRECT || owner->handler == CONF_RESPOND)) {
            if (!data[owner_at] && !(data[owner_at] = hold_answer(h, owner))) {
                rc = fail(err, err_len, c, p->mark, "out of memory%s%s", "", "");
                break;
            }
            r.handler = owner->handler == CONF_REDIRECT ? redirect : respond;
            r.data = data[owner_at];
        }
        if (eddy_site_route(site, &r) < 0) {
            rc = fail(err, err_len, c, p->mark, "cannot route %s%s", p->path, "");
            break;
        }
        if (eddy_site_limits(site, p->path, &lim) < 0)
            rc = fail(err, err_len, c, p->mark, "cannot limit %s%s", p->path, "");
        /* Header rules of the paths covering p, shortest first. */
        for (size_t len = 1; rc == 0 && len <= strlen(p->path); len++)
            for (unsigned j = 0; rc == 0 && j < cs->npaths; j++) {
                const conf_path *q = &cs->paths[j];
                if (strlen(q->path) != len || !covers(q->path, p->path))
                    continue;
                for (unsigned k = 0; k < q->rules.nheaders && rc == 0; k++)
                    if (eddy_site_header(site, p->path, q->rules.headers[k].op,
                                         q->rules.headers[k].field) < 0)
                        rc = fail(err, err_len, c, p->mark,
                                  "too many header rules for %s (with those of the paths above it)%s",
                                  p->path, "");
            }
    }
    free(data);
    return rc;
}

/* The one site flags make: files at "/", the --proxy routes and the
 * --delay routes.  A --proxy at "/" takes the place of the files there
 * (the two prefix routes would collide); the files are then made only for
 * the --delay routes, which answer from them, so a proxy alone needs no
 * root. */
static int build_flag_site(eddy_loop *loop, const cli_options *opt, eddy_site *site, holdings *h,
                           char *err, size_t err_len)
{
    bool proxy_root = false;
    int rc;
    for (unsigned i = 0; i < opt->nproxies; i++) {
        const cli_proxy *x = &opt->proxies[i];
        eddy_proxy_config cfg = {.backends = x->backends, .nbackends = x->nbackends};
        char perr[256];
        eddy_proxy *p = new_proxy(loop, h, &cfg, perr, sizeof(perr));
        if (!p) {
            snprintf(err, err_len, "cannot proxy %s: %s", x->path, perr);
            return -1;
        }
        eddy_route r = {.path = x->path, .prefix = true, .body = EDDY_BODY_STREAM,
                        .handler = eddy_proxy_handler, .data = p};
        if ((rc = eddy_site_route(site, &r)) < 0) {
            snprintf(err, err_len, "cannot add route '%s': %s", x->path, strerror(-rc));
            return -1;
        }
        proxy_root |= strcmp(x->path, "/") == 0;
    }
    eddy_files *f = NULL;
    if (!proxy_root || opt->ndelays) {
        rc = eddy_files_new(loop, &opt->files, &f);
        if (rc < 0) {
            snprintf(err, err_len, "cannot serve root '%s': %s", opt->files.root, strerror(-rc));
            return -1;
        }
        if (hold_files(h, f) < 0) {
            eddy_files_free(f);
            snprintf(err, err_len, "out of memory");
            return -1;
        }
    }
    eddy_route files = {.path = "/", .prefix = true, .handler = eddy_files_handler, .data = f};
    if (!proxy_root && (rc = eddy_site_route(site, &files)) < 0) {
        snprintf(err, err_len, "cannot add the file server: %s", strerror(-rc));
        return -1;
    }
    h->delays = calloc(opt->ndelays + 1, sizeof(*h->delays));
    h->routes = calloc(opt->ndelays + 1, sizeof(*h->routes));
    if (!h->delays || !h->routes) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < opt->ndelays; i++) {
        h->routes[i] = (delay_route){strdup(opt->delays[i].path), opt->delays[i].ms};
        if (!h->routes[i].path) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        h->ndelays++;
        h->delays[i] = (delay_binding){&h->routes[i], f};
        if ((rc = delay_register(site, &h->delays[i])) < 0) {
            snprintf(err, err_len, "cannot add route '%s': %s", opt->delays[i].path, strerror(-rc));
            return -1;
        }
    }
    return 0;
}

/* --status: its prefix in every site (a site routing that path itself
 * is refused: one would hide the other). */
static int add_status(eddy_site *site, const cli_options *opt, const holdings *h, char *err,
                      size_t err_len)
{
    if (!h->status)
        return 0;
    eddy_route r = {.path = opt->status, .prefix = true, .methods = "GET",
                    .handler = eddy_status_handler, .data = h->status};
    int rc = eddy_site_route(site, &r);
    if (rc < 0) {
        snprintf(err, err_len, "cannot route the status page at %s: %s", opt->status,
                 rc == -EEXIST ? "a site routes that path already" : strerror(-rc));
        return -1;
    }
    return 0;
}

eddy_sites *site_build(eddy_loop *loop, const cli_options *opt, char *err, size_t err_len)
{
    eddy_sites *set = eddy_sites_new();
    holdings *h = calloc(1, sizeof(*h));
    if (!set || !h) {
        eddy_sites_free(set);
        free(h);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    eddy_sites_on_free(set, holdings_free, h);
    eddy_sites_on_use(set, holdings_start, h);
    const conf *c = &opt->conf;
    int rc = 0;
    if (opt->status) {
        eddy_status_config sc = {opt->status, opt->status_allow, opt->nstatus_allow};
        if (eddy_status_new(&sc, &h->status, err, err_len) < 0)
            rc = -1;
    }
    if (rc == 0 && !c->has_sites) {
        eddy_site *site = eddy_sites_add(set);
        rc = site ? build_flag_site(loop, opt, site, h, err, err_len)
                  : (snprintf(err, err_len, "out of memory"), -1);
        if (site)
            eddy_sites_default(set, site);
        if (rc == 0)
            rc = add_status(site, opt, h, err, err_len);
    }
    for (unsigned i = 0; rc == 0 && i < c->nsites; i++) {
        eddy_site *site = eddy_sites_add(set);
        if (!site) {
            rc = fail(err, err_len, c, c->sites[i].mark, "out of memory%s%s", "", "");
            break;
        }
        if (c->sites[i].is_default)
            eddy_sites_default(set, site);
        rc = build_site(loop, c, &c->sites[i], site, h, err, err_len);
        if (rc == 0)
            rc = add_status(site, opt, h, err, err_len);
    }
    if (rc == 0 && c->no_match)
        eddy_sites_no_match(set, c->no_match);
    if (rc < 0) {
        eddy_sites_free(set);
        return NULL;
    }
    return set;
}
