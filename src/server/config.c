#include "server/config.h"
#include "server/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A loader's state: the document, where errors go, and how many. */
typedef struct loader {
    const char *name;
    yaml_document_t doc;
    FILE *errs;
    int nerrors;
    unsigned long visits; /* nodes looked at, against CONFIG_MAX_NODES */
    cli_options *opt;
    conf *c;
    eddy_sites *scratch;  /* checks names and header rules as sites will */
    eddy_site *scratch_site;
    conf_mark no_match_at;
} loader;

static conf_mark mark_of(const yaml_node_t *n)
{
    return (conf_mark){(unsigned)n->start_mark.line + 1, (unsigned)n->start_mark.column + 1};
}

static void verror_at(loader *ld, conf_mark m, const char *fmt, va_list ap)
{
    ld->nerrors++;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One line each, whatever a value quoted in it holds: a newline must
     * not forge another error, nor an escape reach the terminal. */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (ld->nerrors > CONFIG_MAX_ERRORS) {
        if (ld->nerrors == CONFIG_MAX_ERRORS + 1)
            fprintf(ld->errs, "%s: more errors than %d; the rest are not shown\n", ld->name,
                    CONFIG_MAX_ERRORS);
        return;
    }
    fprintf(ld->errs, "%s:%u:%u: %s\n", ld->name, m.line, m.col, msg);
}

static void error_at(loader *ld, conf_mark m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at(loader *ld, conf_mark m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_at(ld, m, fmt, ap);
    va_end(ap);
}

static void error_node(loader *ld, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_node(loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_at(ld, mark_of(n), fmt, ap);
    va_end(ap);
}

static yaml_node_t *node(loader *ld, int id)
{
    yaml_node_t *n = yaml_document_get_node(&ld->doc, id);
    if (n && ++ld->visits == CONFIG_MAX_NODES)
        error_node(ld, n, "more than %d nodes (aliases repeating a large part?)", CONFIG_MAX_NODES);
    return ld->visits >= CONFIG_MAX_NODES ? NULL : n;
}

/* A copy the conf owns; NULL without memory (counted as an error). */
static char *keep(loader *ld, const char *s, size_t len)
{
    conf *c = ld->c;
    if (c->nstrings == c->cap_strings) {
        size_t cap = c->cap_strings ? 2 * c->cap_strings : 64;
        char **grown = realloc(c->strings, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        c->strings = grown;
        c->cap_strings = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = 0;
    c->strings[c->nstrings++] = copy;
    return copy;
}

/* A scalar's text, owned by the conf; NULL (after an error) for another kind. */
static char *scalar(loader *ld, yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        error_node(ld, n, "%s wants a single value, not a %s", what,
                   n->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (memchr(v, 0, len)) {
        error_node(ld, n, "%s: a NUL byte in the value", what);
        return NULL;
    }
    char *copy = keep(ld, v, len);
    if (!copy)
        error_node(ld, n, "out of memory");
    return copy;
}

static int boolean(loader *ld, yaml_node_t *n, const char *what, bool *out)
{
    char *v = scalar(ld, n, what);
    if (!v)
        return -1;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v[0] == 't';
        return 0;
    }
    error_node(ld, n, "%s wants true or false, not '%s'", what, v);
    return -1;
}

static int number(loader *ld, yaml_node_t *n, const char *what, uint64_t min, uint64_t max,
                  uint64_t *out)
{
    char *v = scalar(ld, n, what);
    if (!v)
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (*v < '0' || *v > '9' || *end || errno || x < min || x > max) {
        error_node(ld, n, "%s wants a whole number from %llu to %llu, not '%s'", what,
                   (unsigned long long)min, (unsigned long long)max, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* Calls fn for each item: a sequence's, or a lone scalar as a list of one. */
static void each_item(loader *ld, yaml_node_t *n, void (*fn)(loader *, yaml_node_t *, void *),
                      void *data)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        fn(ld, n, data);
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(ld, *it);
        if (!item)
            return;
        fn(ld, item, data);
    }
}

/* The keys each mapping takes, with what their values are: the loader
 * refuses others, and the reference (config_reference) is printed from
 * these, so the two cannot disagree. */
typedef struct key_doc {
    const char *key, *value, *meaning;
} key_doc;

static const key_doc top_keys[] = {
    {"sites", "list of sites", "the sites served; without it, the flags' keys make one"},
    {"no-match", "421 or 404",
     "what a request whose host no site names gets, when no site is the default (default 421)"},
    {NULL, NULL, NULL},
};

static const key_doc site_keys[] = {
    {"names", "list", "host names the site answers to: `example.com`, or `*.example.com` for "
                      "every name below it; compared without case, port and trailing dot"},
    {"default", "true/false", "the site for hosts no site names (one site at most)"},
    {"listen", "list", "addresses, as written in `listen` or `listen-tls`, whose connections "
                       "the site alone takes (a site without names then takes any host "
                       "there); default: every address"},
    {"tls", "list of {cert, key}", "certificate chains and keys (PEM) for the site's names, "
                                   "chosen by SNI"},
    {"acme", "true/false", "get and renew a certificate for the site's names by ACME (the "
                           "acme-* keys say from where)"},
    {"headers", "mapping", "header rules for every response of the site"},
    {"limits", "mapping", "limits for every request of the site"},
    {"paths", "list of paths", "what serves each path prefix: the longest that covers a "
                               "request's path wins"},
    {NULL, NULL, NULL},
};

static const key_doc path_keys[] = {
    {"path", "/PREFIX", "the prefix: the path and everything below it at a `/` (`/api` takes "
                        "`/api` and `/api/x`, not `/apix`)"},
    {"files", "mapping", "serve files from a directory"},
    {"redirect", "mapping", "send clients elsewhere"},
    {"respond", "mapping", "answer with a fixed status and body"},
    {"proxy", "mapping", "forward requests to backends (a reverse proxy)"},
    {"headers", "mapping", "header rules for responses under the path, after the site's and "
                           "those of shorter paths"},
    {"limits", "mapping", "limits for requests under the path (a longer path's win)"},
    {NULL, NULL, NULL},
};

static const key_doc files_keys[] = {
    {"root", "DIR", "the directory served; a request's whole path is looked up under it"},
    {"dotfiles", "true/false", "serve names starting with `.` (default false: 404)"},
    {"autoindex", "true/false", "list directories without an index page (default false: 404)"},
    {"index", "list", "names of a directory's own page, tried in order (default index.html)"},
    {"cache-control", "VALUE", "Cache-Control field for files (default: none)"},
    {"precompressed", "true/false", "serve a file's .br or .gz copy to clients that accept the "
                                    "coding, when not older than the file (default true)"},
    {"mime-types", "FILE", "the mime.types file (default /etc/mime.types)"},
    {NULL, NULL, NULL},
};

static const key_doc redirect_keys[] = {
    {"to", "URL", "where clients are sent (a URL, or a path on this site)"},
    {"status", "301/302/303/307/308", "the redirect's status (default 308: permanent, the "
                                      "method kept)"},
    {"append-path", "true/false", "put the request's path below the prefix, and its query, "
                                  "after `to` (default false)"},
    {NULL, NULL, NULL},
};

static const key_doc respond_keys[] = {
    {"status", "200..599", "the status (default 200)"},
    {"body", "TEXT", "the body (default: empty)"},
    {"type", "VALUE", "its Content-Type (default: none)"},
    {NULL, NULL, NULL},
};

/* A bound as the reference writes it (the constants are plain numbers). */
#define BOUND_(n) #n
#define BOUND(n) BOUND_(n)

static const key_doc proxy_keys[] = {
    {"to", "URL or list", "the backends (required): `http://HOST[:PORT]` (a name, an IPv4 or "
                          "an [IPv6] address; port 80 when left out; no path) or `unix:/PATH`; "
                          "a name's every address is a backend, resolved at start and reload"},
    {"balance", "round-robin/least-conn", "how a backend is chosen: each in turn, or the one "
                                          "with the fewest requests in flight (default "
                                          "round-robin)"},
    {"host", "VALUE", "the Host sent to the backends (default: the client's)"},
    {"strip-prefix", "true/false", "take the path's prefix off the request's path before "
                                   "forwarding (`/api/x` goes as `/x`; default false: as it is)"},
    {"forwarded", "x-forwarded/forwarded/both/none", "how the backend learns who the client "
                                                     "is: X-Forwarded-For, -Proto and -Host, "
                                                     "Forwarded (RFC 7239), both, or neither "
                                                     "(default x-forwarded)"},
    {"trust", "ADDRESS[/BITS] or list", "proxies in front of eddy (`10.0.0.0/8`, `::1`), whose "
                                        "forwarding fields are kept and added to; others' are "
                                        "dropped (default: none)"},
    {"keepalive", "1.." BOUND(CONFIG_MAX_PROXY_KEEPALIVE) " or off",
     "idle connections kept per backend for later requests; off closes each after its "
     "response (default 128)"},
    {"max-conns", "N", "connections to one backend at once; a backend at its limit is passed "
                       "over (default 0: no limit)"},
    {"idle-timeout", "SECONDS", "an idle kept connection is closed (default 4)"},
    {"connect-timeout", "SECONDS", "time to connect to a backend, else 504 (default 5)"},
    {"first-byte-timeout", "SECONDS", "from the request sent to the response's first byte, "
                                      "else 504 (default 60)"},
    {"read-timeout", "SECONDS", "between reads of the response, and while the backend takes "
                                "no more of the request body (default 60)"},
    {"tunnel-timeout", "SECONDS", "an upgraded connection (WebSocket) with no byte either way "
                                  "is closed (default 300)"},
    {"max-fails", "1.." BOUND(CONFIG_MAX_PROXY_FAILS),
     "failures in a row that mark a backend down (default 3)"},
    {"fail-timeout", "SECONDS", "how long a backend marked down is skipped (default 10)"},
    {"health", "/PATH", "GET this path on every backend; one answering other than 2xx or 3xx "
                        "is skipped until it passes (default: no checks)"},
    {"health-interval", "SECONDS", "how often health is checked (default 5)"},
    {NULL, NULL, NULL},
};

static const key_doc headers_keys[] = {
    {"set", "mapping", "`Name: value`: the field alone, replacing any of that name"},
    {"add", "mapping", "`Name: value` (or a list of values): added, whatever is there"},
    {"remove", "list", "names: no field of the name is sent"},
    {NULL, NULL, NULL},
};

static const key_doc limits_keys[] = {
    {"max-body", "BYTES", "largest request body, else 413 (default: the max-body key)"},
    {"send-timeout", "SECONDS", "time a client may stop taking a response, then closed "
                                "(default: the send-timeout key)"},
    {"body-timeout", "SECONDS", "time a client may stop sending a request body, then closed "
                                "(default: the header-timeout key)"},
    {NULL, NULL, NULL},
};

static const key_doc pair_keys[] = {
    {"cert", "FILE", "certificate chain (PEM, leaf first)"},
    {"key", "FILE", "its private key (PEM)"},
    {NULL, NULL, NULL},
};

static bool documented(const key_doc *keys, const char *key)
{
    for (; keys && keys->key; keys++)
        if (strcmp(keys->key, key) == 0)
            return true;
    return false;
}

/* One key of a mapping: its name, the key node, the value node. */
typedef struct entry {
    const char *key;
    yaml_node_t *key_node, *value;
} entry;

/* Walks a mapping: fn gets each entry; a key given twice is an error, and
 * fn's false return says the key is unknown. */
static void each_entry(loader *ld, yaml_node_t *map, const char *what, const key_doc *keys,
                       bool (*fn)(loader *, entry *, void *), void *data)
{
    if (map->type != YAML_MAPPING_NODE) {
        error_node(ld, map, "%s wants a mapping of keys to values", what);
        return;
    }
    if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > CONFIG_MAX_KEYS) {
        error_node(ld, map, "%s has more than %d keys", what, CONFIG_MAX_KEYS);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
        if (!k || !v)
            return;
        if (k->type != YAML_SCALAR_NODE) {
            error_node(ld, k, "a key in %s must be a name", what);
            continue;
        }
        if (strlen((const char *)k->data.scalar.value) != k->data.scalar.length) {
            error_node(ld, k, "a key in %s holds a NUL byte", what);
            continue;
        }
        entry e = {(const char *)k->data.scalar.value, k, v};
        bool twice = false;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !twice; q++) {
            yaml_node_t *qk = yaml_document_get_node(&ld->doc, q->key);
            twice = qk && qk->type == YAML_SCALAR_NODE &&
                    strcmp((const char *)qk->data.scalar.value, e.key) == 0;
        }
        if (twice) {
            error_node(ld, k, "%s: '%s' is given twice", what, e.key);
            continue;
        }
        if ((keys && !documented(keys, e.key)) || !fn(ld, &e, data))
            error_node(ld, k, "unknown key '%s' in %s", e.key, what);
    }
}

/* ------------------------------------------------------------- headers -- */

static void add_header(loader *ld, conf_rules *r, yaml_node_t *at, enum eddy_header_op op,
                       const char *field)
{
    int rc = eddy_site_header(ld->scratch_site, NULL, op, field);
    if (rc == -ENOSPC) {
        /* The scratch site filled up: a fresh one checks the rest. */
        eddy_sites_free(ld->scratch);
        ld->scratch = eddy_sites_new();
        ld->scratch_site = ld->scratch ? eddy_sites_add(ld->scratch) : NULL;
        if (!ld->scratch_site) {
            error_node(ld, at, "out of memory");
            return;
        }
        rc = eddy_site_header(ld->scratch_site, NULL, op, field);
    }
    if (rc == -EPERM) {
        error_node(ld, at, "'%s' is a field eddy owns (framing, Date, Server, Content-Type)", field);
        return;
    }
    if (rc < 0) {
        error_node(ld, at, "'%s' is not a field eddy can send: a token for a name, and a value "
                           "without control characters", field);
        return;
    }
    if (r->nheaders == CONFIG_MAX_HEADER_RULES) {
        error_node(ld, at, "at most %d header rules here", CONFIG_MAX_HEADER_RULES);
        return;
    }
    conf_header *h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h));
    if (!h) {
        error_node(ld, at, "out of memory");
        return;
    }
    r->headers = h;
    h[r->nheaders++] = (conf_header){op, (char *)field};
}

typedef struct header_ctx {
    conf_rules *rules;
    enum eddy_header_op op;
    const char *name;
} header_ctx;

static void header_value(loader *ld, yaml_node_t *n, void *data)
{
    header_ctx *h = data;
    char *v = scalar(ld, n, h->name);
    if (!v)
        return;
    size_t len = strlen(h->name) + 2 + strlen(v);
    char *field = malloc(len + 1);
    if (!field) {
        error_node(ld, n, "out of memory");
        return;
    }
    snprintf(field, len + 1, "%s: %s", h->name, v);
    char *kept = keep(ld, field, len);
    free(field);
    if (kept)
        add_header(ld, h->rules, n, h->op, kept);
}

static bool header_field(loader *ld, entry *e, void *data)
{
    header_ctx h = *(header_ctx *)data;
    h.name = e->key;
    if (!*e->key || strpbrk(e->key, ": \t")) {
        error_node(ld, e->key_node, "'%s' is not a field name (a token: no ':' or space)", e->key);
        return true;
    }
    if (h.op == EDDY_HEADER_SET && e->value->type == YAML_SEQUENCE_NODE) {
        error_node(ld, e->value, "set gives a field one value; add gives it several");
        return true;
    }
    each_item(ld, e->value, header_value, &h);
    return true;
}

static void header_removal(loader *ld, yaml_node_t *n, void *data)
{
    char *name = scalar(ld, n, "remove");
    if (name)
        add_header(ld, data, n, EDDY_HEADER_REMOVE, name);
}

static bool headers_key(loader *ld, entry *e, void *data)
{
    conf_rules *r = data;
    if (strcmp(e->key, "remove") == 0) {
        each_item(ld, e->value, header_removal, r);
        return true;
    }
    header_ctx h = {r, EDDY_HEADER_SET, NULL};
    if (strcmp(e->key, "add") == 0)
        h.op = EDDY_HEADER_ADD;
    else if (strcmp(e->key, "set") != 0)
        return false;
    each_entry(ld, e->value, e->key, NULL, header_field, &h);
    return true;
}

/* Seconds (fractions allowed) as milliseconds, as the timeout flags take them. */
static void seconds(loader *ld, yaml_node_t *n, const char *what, unsigned *ms)
{
    char *v = scalar(ld, n, what);
    if (!v)
        return;
    char *end;
    double s = strtod(v, &end);
    if (end == v || *end || !(s > 0) || s > CONFIG_MAX_TIMEOUT_S) {
        error_node(ld, n, "%s wants seconds above 0 and at most a day (like 30 or 0.5), not '%s'",
                   what, v);
        return;
    }
    *ms = s * 1000 < 1 ? 1 : (unsigned)(s * 1000 + 0.5);
}

static bool limits_key(loader *ld, entry *e, void *data)
{
    conf_rules *r = data;
    if (strcmp(e->key, "max-body") == 0)
        number(ld, e->value, "max-body", 1, UINT64_MAX, &r->max_body);
    else if (strcmp(e->key, "send-timeout") == 0)
        seconds(ld, e->value, "send-timeout", &r->send_ms);
    else if (strcmp(e->key, "body-timeout") == 0)
        seconds(ld, e->value, "body-timeout", &r->body_ms);
    else
        return false;
    return true;
}

/* `headers` and `limits`, in a site or a path. */
static bool rules_key(loader *ld, entry *e, conf_rules *r)
{
    if (strcmp(e->key, "headers") == 0)
        each_entry(ld, e->value, "headers", headers_keys, headers_key, r);
    else if (strcmp(e->key, "limits") == 0)
        each_entry(ld, e->value, "limits", limits_keys, limits_key, r);
    else
        return false;
    return true;
}

/* ------------------------------------------------------------ handlers -- */

static void index_name(loader *ld, yaml_node_t *n, void *data)
{
    conf_path *p = data;
    char *v = scalar(ld, n, "index");
    if (!v)
        return;
    if (!*v || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        error_node(ld, n, "index wants file names, like index.html, not '%s'", v);
        return;
    }
    if (p->files.nindex == CLI_MAX_INDEX) {
        error_node(ld, n, "at most %d index names", CLI_MAX_INDEX);
        return;
    }
    const char **names = (const char **)p->files.index;
    if (!names) {
        names = calloc(CLI_MAX_INDEX, sizeof(*names));
        if (!names) {
            error_node(ld, n, "out of memory");
            return;
        }
        p->files.index = names;
    }
    names[p->files.nindex++] = v;
}

static bool one_line(loader *ld, yaml_node_t *n, const char *what, const char *v)
{
    for (const char *q = v; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
            error_node(ld, n, "%s must be one line of text", what);
            return false;
        }
    return true;
}

static bool files_key(loader *ld, entry *e, void *data)
{
    conf_path *p = data;
    eddy_files_config *f = &p->files;
    bool precompressed = true;
    if (strcmp(e->key, "root") == 0) {
        f->root = scalar(ld, e->value, "root");
        p->root_mark = mark_of(e->value);
    } else if (strcmp(e->key, "dotfiles") == 0) {
        boolean(ld, e->value, "dotfiles", &f->dotfiles);
    } else if (strcmp(e->key, "autoindex") == 0) {
        boolean(ld, e->value, "autoindex", &f->autoindex);
    } else if (strcmp(e->key, "index") == 0) {
        each_item(ld, e->value, index_name, p);
    } else if (strcmp(e->key, "cache-control") == 0) {
        char *v = scalar(ld, e->value, "cache-control");
        if (v && one_line(ld, e->value, "cache-control", v))
            f->cache_control = v;
    } else if (strcmp(e->key, "precompressed") == 0) {
        if (boolean(ld, e->value, "precompressed", &precompressed) == 0)
            f->no_precompressed = !precompressed;
    } else if (strcmp(e->key, "mime-types") == 0) {
        f->mime_types = scalar(ld, e->value, "mime-types");
    } else {
        return false;
    }
    return true;
}

static bool redirect_key(loader *ld, entry *e, void *data)
{
    conf_path *p = data;
    uint64_t st;
    if (strcmp(e->key, "to") == 0) {
        char *v = scalar(ld, e->value, "to");
        if (v && !*v)
            error_node(ld, e->value, "to wants a URL or a path to send clients to");
        else if (v && one_line(ld, e->value, "to", v))
            p->to = v;
    } else if (strcmp(e->key, "status") == 0) {
        if (number(ld, e->value, "status", 300, 399, &st) == 0) {
            if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308)
                error_node(ld, e->value, "a redirect's status is 301, 302, 303, 307 or 308, not %llu",
                           (unsigned long long)st);
            else
                p->status = (int)st;
        }
    } else if (strcmp(e->key, "append-path") == 0) {
        boolean(ld, e->value, "append-path", &p->append_path);
    } else {
        return false;
    }
    return true;
}

static bool respond_key(loader *ld, entry *e, void *data)
{
    conf_path *p = data;
    uint64_t st;
    if (strcmp(e->key, "status") == 0) {
        if (number(ld, e->value, "status", 200, 599, &st) == 0)
            p->status = (int)st;
    } else if (strcmp(e->key, "body") == 0) {
        p->body = scalar(ld, e->value, "body");
        p->body_len = p->body ? strlen(p->body) : 0;
    } else if (strcmp(e->key, "type") == 0) {
        char *v = scalar(ld, e->value, "type");
        if (v && one_line(ld, e->value, "type", v))
            p->type = v;
    } else {
        return false;
    }
    return true;
}

/* Whether map (a mapping, or not) has key. */
static bool has_key(loader *ld, yaml_node_t *map, const char *key)
{
    if (map->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return true;
    }
    return false;
}

/* An item of a proxy's `to`. */
static void proxy_backend(loader *ld, yaml_node_t *n, void *data)
{
    eddy_proxy_config *x = data;
    char *v = scalar(ld, n, "to");
    if (!v || !one_line(ld, n, "to", v))
        return;
    if (!cli_backend_url(v)) {
        error_node(ld, n, "to wants http://HOST[:PORT] or unix:/PATH, not '%s'", v);
        return;
    }
    if (x->nbackends == CONFIG_MAX_BACKENDS) {
        error_node(ld, n, "at most %d backends in a proxy", CONFIG_MAX_BACKENDS);
        return;
    }
    const char **list = (const char **)x->backends;
    if (!list) {
        list = calloc(CONFIG_MAX_BACKENDS, sizeof(*list));
        if (!list) {
            error_node(ld, n, "out of memory");
            return;
        }
        x->backends = list;
    }
    list[x->nbackends++] = v;
}

/* Whether v is an address, or a CIDR block: ADDRESS/BITS, BITS at most the
 * address's (checked here rather than when the proxy is made, so that the
 * error points at the value). */
static bool address_or_block(const char *v)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(v, '/');
    size_t len = slash ? (size_t)(slash - v) : strlen(v);
    if (len == 0 || len >= sizeof(addr))
        return false;
    memcpy(addr, v, len);
    addr[len] = 0;
    unsigned char bin[16];
    int max_bits = inet_pton(AF_INET, addr, bin) == 1    ? 32
                   : inet_pton(AF_INET6, addr, bin) == 1 ? 128
                                                         : -1;
    if (max_bits < 0)
        return false;
    if (!slash)
        return true;
    const char *b = slash + 1;
    char *end;
    errno = 0;
    long bits = *b >= '0' && *b <= '9' ? strtol(b, &end, 10) : -1;
    return bits >= 0 && !*end && !errno && bits <= max_bits;
}

/* An item of a proxy's `trust`. */
static void proxy_trusted(loader *ld, yaml_node_t *n, void *data)
{
    eddy_proxy_config *x = data;
    char *v = scalar(ld, n, "trust");
    if (!v)
        return;
    if (!address_or_block(v)) {
        error_node(ld, n, "trust wants an address or a CIDR block, like 10.0.0.0/8 or ::1, "
                          "not '%s'", v);
        return;
    }
    if (x->ntrusted == CONFIG_MAX_TRUSTED) {
        error_node(ld, n, "at most %d trusted addresses in a proxy", CONFIG_MAX_TRUSTED);
        return;
    }
    const char **list = (const char **)x->trusted;
    if (!list) {
        list = calloc(CONFIG_MAX_TRUSTED, sizeof(*list));
        if (!list) {
            error_node(ld, n, "out of memory");
            return;
        }
        x->trusted = list;
    }
    list[x->ntrusted++] = v;
}

/* keepalive: a count, or off (no connection kept). */
static void proxy_keepalive(loader *ld, yaml_node_t *n, eddy_proxy_config *x)
{
    char *v = scalar(ld, n, "keepalive");
    if (!v)
        return;
    if (strcmp(v, "off") == 0) {
        x->no_keepalive = true;
        return;
    }
    char *end;
    errno = 0;
    unsigned long long k = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (*v < '0' || *v > '9' || *end || errno || k < 1 || k > CONFIG_MAX_PROXY_KEEPALIVE) {
        error_node(ld, n, "keepalive wants a number from 1 to %d, or off, not '%s'",
                   CONFIG_MAX_PROXY_KEEPALIVE, v);
        return;
    }
    x->keepalive = (unsigned)k;
}

/* A word of a few, as its index in words (NULL-ended); -1 after an error. */
static int one_of(loader *ld, yaml_node_t *n, const char *what, const char *const *words,
                  const char *wanted)
{
    char *v = scalar(ld, n, what);
    if (!v)
        return -1;
    for (int i = 0; words[i]; i++)
        if (strcmp(v, words[i]) == 0)
            return i;
    error_node(ld, n, "%s is %s, not '%s'", what, wanted, v);
    return -1;
}

static bool proxy_key(loader *ld, entry *e, void *data)
{
    conf_path *p = data;
    eddy_proxy_config *x = &p->proxy;
    uint64_t v;
    int w;
    /* In the order of enum eddy_balance and enum eddy_forwarded. */
    static const char *const balances[] = {"round-robin", "least-conn", NULL};
    static const char *const forwardings[] = {"x-forwarded", "forwarded", "both", "none", NULL};
    if (strcmp(e->key, "to") == 0) {
        each_item(ld, e->value, proxy_backend, x);
    } else if (strcmp(e->key, "balance") == 0) {
        if ((w = one_of(ld, e->value, "balance", balances, "round-robin or least-conn")) >= 0)
            x->balance = (enum eddy_balance)w;
    } else if (strcmp(e->key, "host") == 0) {
        char *h = scalar(ld, e->value, "host");
        if (h && !*h)
            error_node(ld, e->value, "host wants the Host value sent to the backends");
        else if (h && one_line(ld, e->value, "host", h))
            x->host = h;
    } else if (strcmp(e->key, "strip-prefix") == 0) {
        boolean(ld, e->value, "strip-prefix", &p->strip_prefix);
    } else if (strcmp(e->key, "forwarded") == 0) {
        if ((w = one_of(ld, e->value, "forwarded", forwardings,
                        "x-forwarded, forwarded, both or none")) >= 0)
            x->forwarded = (enum eddy_forwarded)w;
    } else if (strcmp(e->key, "trust") == 0) {
        each_item(ld, e->value, proxy_trusted, x);
    } else if (strcmp(e->key, "keepalive") == 0) {
        proxy_keepalive(ld, e->value, x);
    } else if (strcmp(e->key, "max-conns") == 0) {
        if (number(ld, e->value, "max-conns", 0, UINT_MAX, &v) == 0)
            x->max_conns = (unsigned)v;
    } else if (strcmp(e->key, "max-fails") == 0) {
        if (number(ld, e->value, "max-fails", 1, CONFIG_MAX_PROXY_FAILS, &v) == 0)
            x->max_fails = (unsigned)v;
    } else if (strcmp(e->key, "health") == 0) {
        char *h = scalar(ld, e->value, "health");
        if (h && h[0] != '/')
            error_node(ld, e->value, "health wants a path starting with '/', like /health, "
                                     "not '%s'", h);
        else if (h && one_line(ld, e->value, "health", h))
            x->health_path = h;
    } else if (strcmp(e->key, "idle-timeout") == 0) {
        seconds(ld, e->value, "idle-timeout", &x->idle_ms);
    } else if (strcmp(e->key, "connect-timeout") == 0) {
        seconds(ld, e->value, "connect-timeout", &x->connect_ms);
    } else if (strcmp(e->key, "first-byte-timeout") == 0) {
        seconds(ld, e->value, "first-byte-timeout", &x->first_byte_ms);
    } else if (strcmp(e->key, "read-timeout") == 0) {
        seconds(ld, e->value, "read-timeout", &x->read_ms);
    } else if (strcmp(e->key, "tunnel-timeout") == 0) {
        seconds(ld, e->value, "tunnel-timeout", &x->tunnel_ms);
    } else if (strcmp(e->key, "fail-timeout") == 0) {
        seconds(ld, e->value, "fail-timeout", &x->fail_ms);
    } else if (strcmp(e->key, "health-interval") == 0) {
        seconds(ld, e->value, "health-interval", &x->health_ms);
    } else {
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- paths -- */

static bool path_key(loader *ld, entry *e, void *data)
{
    conf_path *p = data;
    enum conf_handler h = CONF_NO_HANDLER;
    if (strcmp(e->key, "path") == 0) {
        char *v = scalar(ld, e->value, "path");
        if (v && v[0] != '/')
            error_node(ld, e->value, "a path begins with '/', like /static, not '%s'", v);
        else if (v)
            one_line(ld, e->value, "path", v);
        p->path = v; /* given, even if wrong: one error for it is enough */
        return true;
    }
    if (rules_key(ld, e, &p->rules))
        return true;
    if (strcmp(e->key, "files") == 0)
        h = CONF_FILES;
    else if (strcmp(e->key, "redirect") == 0)
        h = CONF_REDIRECT;
    else if (strcmp(e->key, "respond") == 0)
        h = CONF_RESPOND;
    else if (strcmp(e->key, "proxy") == 0)
        h = CONF_PROXY;
    else
        return false;
    if (p->handler != CONF_NO_HANDLER) {
        error_node(ld, e->key_node, "a path has one handler: files, redirect, respond or proxy");
        return true;
    }
    p->handler = h;
    if (h == CONF_FILES) {
        p->files.root = NULL;
        each_entry(ld, e->value, "files", files_keys, files_key, p);
        if (!p->files.root)
            error_node(ld, e->key_node, "files wants a root: the directory served");
    } else if (h == CONF_REDIRECT) {
        p->status = 308;
        each_entry(ld, e->value, "redirect", redirect_keys, redirect_key, p);
        if (!p->to)
            error_node(ld, e->key_node, "redirect wants to: where clients are sent");
    } else if (h == CONF_PROXY) {
        each_entry(ld, e->value, "proxy", proxy_keys, proxy_key, p);
        if (!p->proxy.nbackends)
            error_node(ld, e->key_node, "proxy wants to: the backends requests go to "
                                        "(http://HOST[:PORT] or unix:/PATH)");
        /* An interval alone checks nothing: a mistake, not a setting (a
         * health path given wrong has its own error already). */
        if (p->proxy.health_ms && !p->proxy.health_path && !has_key(ld, e->value, "health"))
            error_node(ld, e->key_node, "health-interval is how often health is checked, and "
                                        "there is no health path");
    } else {
        p->status = 200;
        each_entry(ld, e->value, "respond", respond_keys, respond_key, p);
    }
    return true;
}

static void site_path(loader *ld, yaml_node_t *n, void *data)
{
    conf_site *s = data;
    if (s->npaths == CONFIG_MAX_PATHS) {
        error_node(ld, n, "at most %d paths in a site", CONFIG_MAX_PATHS);
        return;
    }
    conf_path *paths = realloc(s->paths, (s->npaths + 1) * sizeof(*paths));
    if (!paths) {
        error_node(ld, n, "out of memory");
        return;
    }
    s->paths = paths;
    conf_path *p = &paths[s->npaths++];
    memset(p, 0, sizeof(*p));
    p->mark = mark_of(n);
    each_entry(ld, n, "a path", path_keys, path_key, p);
    if (n->type != YAML_MAPPING_NODE)
        return;
    if (!p->path) {
        error_node(ld, n, "a path wants path: the prefix it covers, like /");
        return;
    }
    for (unsigned i = 0; i + 1 < s->npaths; i++)
        if (s->paths[i].path && strcmp(s->paths[i].path, p->path) == 0)
            error_node(ld, n, "path %s is given twice in this site (line %u)", p->path,
                       s->paths[i].mark.line);
}

/* ---------------------------------------------------------------- sites -- */

/* A name as hosts are compared: lowercase, no trailing dot. */
static void name_key(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    for (; name[n] && n + 1 < cap; n++)
        out[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = 0;
}

static void site_name(loader *ld, yaml_node_t *n, void *data)
{
    conf_site *s = data;
    char *v = scalar(ld, n, "names");
    if (!v)
        return;
    if (eddy_site_name(ld->scratch_site, v) < 0) {
        error_node(ld, n, "'%s' is not a host name (like example.com or *.example.com, no port)", v);
        return;
    }
    if (s->nnames == CONFIG_MAX_NAMES) {
        error_node(ld, n, "at most %d names in a site", CONFIG_MAX_NAMES);
        return;
    }
    char k[300], other[300];
    name_key(v, k, sizeof(k));
    for (unsigned i = 0; i < ld->c->nsites; i++) {
        conf_site *o = &ld->c->sites[i];
        for (unsigned j = 0; j < o->nnames; j++) {
            name_key(o->names[j], other, sizeof(other));
            if (strcmp(k, other) == 0) {
                error_node(ld, n, "duplicate host: %s is named by %s at line %u", v,
                           o == s ? "this site already" : "the site", o->mark.line);
                return;
            }
        }
    }
    char **names = realloc(s->names, (s->nnames + 1) * sizeof(*names));
    if (!names) {
        error_node(ld, n, "out of memory");
        return;
    }
    s->names = names;
    names[s->nnames++] = v;
}

static void site_listen(loader *ld, yaml_node_t *n, void *data)
{
    conf_site *s = data;
    char *v = scalar(ld, n, "listen");
    if (!v)
        return;
    if (s->nlisten == CLI_MAX_LISTEN * 2) {
        error_node(ld, n, "at most %d addresses in a site's listen", CLI_MAX_LISTEN * 2);
        return;
    }
    char **l = realloc(s->listen, (s->nlisten + 1) * sizeof(*l));
    if (!l) {
        error_node(ld, n, "out of memory");
        return;
    }
    s->listen = l;
    l[s->nlisten++] = v;
}

typedef struct pair_ctx {
    char *cert, *key;
} pair_ctx;

static bool pair_key(loader *ld, entry *e, void *data)
{
    pair_ctx *p = data;
    if (strcmp(e->key, "cert") == 0)
        p->cert = scalar(ld, e->value, "cert");
    else if (strcmp(e->key, "key") == 0)
        p->key = scalar(ld, e->value, "key");
    else
        return false;
    return true;
}

static void site_pair(loader *ld, yaml_node_t *n, void *data)
{
    conf_site *s = data;
    pair_ctx p = {0};
    each_entry(ld, n, "a tls pair", pair_keys, pair_key, &p);
    if (n->type != YAML_MAPPING_NODE)
        return;
    if (!p.cert || !p.key) {
        error_node(ld, n, "a tls pair wants cert: and key: (PEM files)");
        return;
    }
    char **certs = realloc(s->certs, (s->ncerts + 1) * sizeof(*certs));
    if (certs)
        s->certs = certs;
    char **keys = certs ? realloc(s->keys, (s->ncerts + 1) * sizeof(*keys)) : NULL;
    if (!keys) {
        error_node(ld, n, "out of memory");
        return;
    }
    s->keys = keys;
    s->certs[s->ncerts] = p.cert;
    s->keys[s->ncerts++] = p.key;
}

static bool site_key(loader *ld, entry *e, void *data)
{
    conf_site *s = data;
    if (strcmp(e->key, "names") == 0) {
        /* An empty list names nothing: such a site is reached by nothing. */
        s->names_given = e->value->type == YAML_SCALAR_NODE ||
                         (e->value->type == YAML_SEQUENCE_NODE &&
                          e->value->data.sequence.items.top > e->value->data.sequence.items.start);
        each_item(ld, e->value, site_name, s);
    }
    else if (strcmp(e->key, "default") == 0)
        boolean(ld, e->value, "default", &s->is_default);
    else if (strcmp(e->key, "listen") == 0) {
        s->listen_mark = mark_of(e->value);
        each_item(ld, e->value, site_listen, s);
    }
    else if (strcmp(e->key, "acme") == 0)
        boolean(ld, e->value, "acme", &s->acme);
    else if (strcmp(e->key, "tls") == 0)
        each_item(ld, e->value, site_pair, s);
    else if (strcmp(e->key, "paths") == 0) {
        if (e->value->type != YAML_SEQUENCE_NODE)
            error_node(ld, e->value, "paths wants a list of paths (- path: /...)");
        else
            each_item(ld, e->value, site_path, s);
    } else
        return rules_key(ld, e, &s->rules);
    return true;
}

static void one_site(loader *ld, yaml_node_t *n, void *data)
{
    (void)data;
    conf *c = ld->c;
    if (c->nsites == CONFIG_MAX_SITES) {
        error_node(ld, n, "at most %d sites", CONFIG_MAX_SITES);
        return;
    }
    conf_site *sites = realloc(c->sites, (c->nsites + 1) * sizeof(*sites));
    if (!sites) {
        error_node(ld, n, "out of memory");
        return;
    }
    c->sites = sites;
    conf_site *s = &sites[c->nsites++];
    memset(s, 0, sizeof(*s));
    s->mark = mark_of(n);
    each_entry(ld, n, "a site", site_keys, site_key, s);
    if (n->type != YAML_MAPPING_NODE)
        return;
    if (!s->names_given && !s->is_default && !s->nlisten)
        error_node(ld, n, "a site wants names:, listen:, or default: true");
    if (s->acme && !s->nnames)
        error_node(ld, n, "acme gets a certificate for the site's names, and it has none");
    for (unsigned i = 0; s->acme && i < s->nnames; i++)
        if (s->names[i][0] == '*')
            error_node(ld, n, "acme cannot get a certificate for %s: ACME's HTTP-01 and "
                              "TLS-ALPN-01 validate one name at a time, not wildcards",
                       s->names[i]);
    for (unsigned i = 0; s->is_default && i + 1 < c->nsites; i++)
        if (c->sites[i].is_default) {
            error_node(ld, n, "a second default site (the first is at line %u)",
                       c->sites[i].mark.line);
            break;
        }
}

/* ------------------------------------------------------------ top level -- */

/* Keys that make the one site of flags: refused beside `sites`. */
static bool flag_site_key(const char *key)
{
    static const char *const keys[] = {"root", "dotfiles", "autoindex", "cache-control",
                                       "index", "no-precompressed", "delay", "proxy"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

typedef struct flag_ctx {
    const char *key;
} flag_ctx;

static void flag_value(loader *ld, yaml_node_t *n, void *data)
{
    flag_ctx *f = data;
    char *v = scalar(ld, n, f->key);
    char err[256];
    if (v && cli_set(ld->opt, f->key, v, err, sizeof(err)) < 0)
        error_node(ld, n, "%s", err + (strncmp(err, "--", 2) == 0 ? 2 : 0)); /* a key, not a flag */
}

static bool top_key(loader *ld, entry *e, void *data)
{
    (void)data;
    conf *c = ld->c;
    if (strcmp(e->key, "sites") == 0) {
        c->has_sites = true;
        if (e->value->type != YAML_SEQUENCE_NODE)
            error_node(ld, e->value, "sites wants a list of sites (- names: ...)");
        else
            each_item(ld, e->value, one_site, NULL);
        return true;
    }
    if (strcmp(e->key, "no-match") == 0) {
        uint64_t st;
        if (number(ld, e->value, "no-match", 400, 499, &st) == 0) {
            if (st != 421 && st != 404)
                error_node(ld, e->value, "no-match is 421 or 404, not %llu", (unsigned long long)st);
            else
                c->no_match = (int)st;
        }
        ld->no_match_at = mark_of(e->key_node);
        return true;
    }
    enum cli_key kind = cli_key_kind(e->key);
    if (kind == CLI_KEY_UNKNOWN)
        return false;
    flag_ctx f = {e->key};
    if (kind == CLI_KEY_SWITCH && e->value->type == YAML_SCALAR_NODE) {
        bool on;
        if (boolean(ld, e->value, e->key, &on) == 0) {
            char err[256];
            if (cli_set(ld->opt, e->key, on ? "true" : "false", err, sizeof(err)) < 0)
                error_node(ld, e->value, "%s", err);
        }
    } else if (kind == CLI_KEY_LIST) {
        each_item(ld, e->value, flag_value, &f);
    } else {
        flag_value(ld, e->value, &f);
    }
    return true;
}

/* After the whole file: what only the whole tells. */
static void check_top(loader *ld, yaml_node_t *root)
{
    conf *c = ld->c;
    if (!c->has_sites) {
        if (c->no_match)
            error_at(ld, ld->no_match_at, "no-match is for hosts no site names, and there are no sites");
        return;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && flag_site_key((const char *)k->data.scalar.value))
            error_node(ld, k, "%s makes the one site of flags; with sites, give it in a site's "
                              "paths", (const char *)k->data.scalar.value);
    }
    bool has_default = false;
    for (unsigned i = 0; i < c->nsites; i++)
        has_default |= c->sites[i].is_default;
    if (has_default && c->no_match)
        error_at(ld, ld->no_match_at, "no-match is for hosts no site names, and the default site takes them");
}

/* Where libyaml stopped: its mark, or for a reader error (bad UTF-8, a
 * control character), which has only a byte offset, the line and column
 * of that byte. */
static void parse_error(loader *ld, const yaml_parser_t *parser, const char *text, size_t len)
{
    conf_mark m = {(unsigned)parser->problem_mark.line + 1, (unsigned)parser->problem_mark.column + 1};
    if (parser->error == YAML_READER_ERROR) {
        m = (conf_mark){1, 1};
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            bool eol = text[i] == '\n' || (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n'));
            m = eol ? (conf_mark){m.line + 1, 1} : (conf_mark){m.line, m.col + 1};
        }
    }
    error_at(ld, m, "%s%s%s", parser->problem ? parser->problem : "not YAML",
             parser->context ? " " : "", parser->context ? parser->context : "");
}

/* An empty document, or one that is just null: no keys, all defaults. */
static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

int config_load_text(const char *name, const char *text, size_t len, cli_options *opt, conf *c,
                     FILE *errs)
{
    loader ld = {.name = name, .errs = errs, .opt = opt, .c = c};
    c->file = name;
    if (len > CONFIG_MAX_BYTES) {
        fprintf(errs, "%s: larger than %d bytes\n", name, CONFIG_MAX_BYTES);
        return 1;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(errs, "%s: out of memory\n", name);
        return 1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ld.doc)) {
        parse_error(&ld, &parser, text, len);
        yaml_parser_delete(&parser);
        return ld.nerrors;
    }
    /* One document: what follows a second "---" would be silently unread. */
    yaml_document_t more;
    if (!yaml_parser_load(&parser, &more)) {
        parse_error(&ld, &parser, text, len);
    } else {
        yaml_node_t *extra = yaml_document_get_root_node(&more);
        if (extra)
            error_node(&ld, extra, "a second document: a configuration is one");
        yaml_document_delete(&more);
    }
    yaml_parser_delete(&parser);
    if (ld.nerrors) {
        yaml_document_delete(&ld.doc);
        return ld.nerrors;
    }
    ld.scratch = eddy_sites_new();
    ld.scratch_site = ld.scratch ? eddy_sites_add(ld.scratch) : NULL;
    yaml_node_t *root = yaml_document_get_root_node(&ld.doc);
    if (!ld.scratch_site) {
        fprintf(errs, "%s: out of memory\n", name);
        ld.nerrors++;
    } else if (root && !is_null(root)) {
        each_entry(&ld, root, "the configuration", NULL, top_key, NULL);
        if (root->type == YAML_MAPPING_NODE && ld.visits < CONFIG_MAX_NODES)
            check_top(&ld, root);
    }
    eddy_sites_free(ld.scratch);
    yaml_document_delete(&ld.doc);
    return ld.nerrors;
}

int config_load_file(const char *path, cli_options *opt, conf *c, FILE *errs)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(errs, "%s: cannot read: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
        fprintf(errs, "%s: %s\n", path,
                S_ISREG(st.st_mode) ? "larger than the 1 MiB a configuration may be"
                                    : "not a regular file");
        close(fd);
        return -1;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (text && got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!text || got != (size_t)st.st_size) {
        fprintf(errs, "%s: cannot read: %s\n", path, text ? strerror(errno) : "out of memory");
        free(text);
        return -1;
    }
    /* Kept: the options point into the conf's copies, not into this. */
    int n = config_load_text(path, text, got, opt, c, errs);
    free(text);
    return n;
}

static void free_rules(conf_rules *r) { free(r->headers); }

void config_free(conf *c)
{
    for (unsigned i = 0; i < c->nsites; i++) {
        conf_site *s = &c->sites[i];
        for (unsigned j = 0; j < s->npaths; j++) {
            free((void *)s->paths[j].files.index);
            free((void *)s->paths[j].proxy.backends);
            free((void *)s->paths[j].proxy.trusted);
            free_rules(&s->paths[j].rules);
        }
        free(s->paths);
        free(s->names);
        free(s->certs);
        free(s->keys);
        free(s->listen);
        free_rules(&s->rules);
    }
    free(c->sites);
    for (size_t i = 0; i < c->nstrings; i++)
        free(c->strings[i]);
    free(c->strings);
    memset(c, 0, sizeof(*c));
}

static void reference_table(FILE *out, const char *title, const key_doc *keys)
{
    fprintf(out, "\n%s\n\n| key | value | meaning |\n|---|---|---|\n", title);
    for (; keys->key; keys++)
        fprintf(out, "| `%s` | %s | %s |\n", keys->key, keys->value, keys->meaning);
}

void config_reference(FILE *out)
{
    fprintf(out, "Top level: every flag is a key of the same name, without `--`; a flag given "
                 "on the command line wins over the file (a list flag replaces the file's "
                 "list). Switches take true or false, lists a list or one value.\n\n"
                 "| key | value | meaning |\n|---|---|---|\n");
    for (const key_doc *k = top_keys; k->key; k++)
        fprintf(out, "| `%s` | %s | %s |\n", k->key, k->value, k->meaning);
    cli_keys_reference(out);
    reference_table(out, "A site (an item of `sites`):", site_keys);
    reference_table(out, "A path (an item of a site's `paths`), with one handler "
                         "(`files`, `redirect`, `respond` or `proxy`) or none (rules only; the "
                         "handler is then the longest shorter path's):", path_keys);
    reference_table(out, "`files`:", files_keys);
    reference_table(out, "`redirect`:", redirect_keys);
    reference_table(out, "`respond`:", respond_keys);
    reference_table(out, "`proxy` (timeouts take fractions, like `0.5`):", proxy_keys);
    reference_table(out, "`headers` (of a site or a path):", headers_keys);
    reference_table(out, "`limits` (of a site or a path):", limits_keys);
    reference_table(out, "An item of a site's `tls`:", pair_keys);
}
