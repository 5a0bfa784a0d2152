/* The status page: a handler like the others, routed at a prefix in every
 * site.  PATH is the dashboard, PATH/metrics the Prometheus text, PATH/json
 * the same as JSON, PATH/NAME the dashboard's files built into the binary.
 * The counters are those of the eddy_metrics the serving server counts
 * into, so one page shows every worker whichever worker answers it. */
#include "metrics/assets.h"
#include "metrics/metrics.h"
#include "core/netblock.h"
#include "core/request.h"
#include "core/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most --status-allow blocks. */
#define STATUS_MAX_ALLOW 64
/* Where the dashboard's page says the status path. */
#define STATUS_BASE_MARK "@BASE@"

struct eddy_status {
    char *path;
    net_block allow[STATUS_MAX_ALLOW];
    unsigned nallow;
    char *page;            /* the dashboard with the path filled in */
    size_t page_len;
};

static int fail(char *err, size_t err_len, const char *what, const char *text)
{
    snprintf(err, err_len, what, text);
    return -EINVAL;
}

/* A path the page can name in its links as it is: segments of unreserved
 * characters, none empty, "." or "..", and not "/" alone. */
static bool plain_path(const char *p)
{
    if (p[0] != '/' || !p[1])
        return false;
    for (const char *seg = p + 1;; ) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++) {
            char c = seg[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~'))
                return false;
        }
        if (!seg[n])
            return true;
        seg += n + 1;
    }
}

static const status_asset *asset(const char *name, size_t len)
{
    for (size_t i = 0; i < status_nassets; i++)
        if (strlen(status_assets[i].name) == len && memcmp(status_assets[i].name, name, len) == 0)
            return &status_assets[i];
    return NULL;
}

/* The dashboard's page with every mark replaced by the path. */
static int fill_page(eddy_status *st)
{
    const status_asset *a = asset("dashboard.html", 14);
    if (!a)
        return -ENOENT;
    size_t mark = strlen(STATUS_BASE_MARK), plen = strlen(st->path), n = 0;
    for (size_t i = 0; i + mark <= a->len; i++)
        n += memcmp(a->data + i, STATUS_BASE_MARK, mark) == 0;
    st->page = malloc(a->len + n * plen + 1);
    if (!st->page)
        return -ENOMEM;
    char *w = st->page;
    for (size_t i = 0; i < a->len;) {
        if (i + mark <= a->len && memcmp(a->data + i, STATUS_BASE_MARK, mark) == 0) {
            memcpy(w, st->path, plen);
            w += plen;
            i += mark;
        } else {
            *w++ = (char)a->data[i++];
        }
    }
    st->page_len = (size_t)(w - st->page);
    return 0;
}

int eddy_status_new(const eddy_status_config *cfg, eddy_status **out, char *err, size_t err_len)
{
    static const char *const loopback[] = {"127.0.0.1/32", "::1/128"};
    if (!cfg->path || !plain_path(cfg->path))
        return fail(err, err_len, "the status path wants /NAME (letters, digits, '-', '.', '_', '~'), "
                                  "like /status, not '%s'", cfg->path ? cfg->path : "");
    if (cfg->nallow > STATUS_MAX_ALLOW)
        return fail(err, err_len, "at most %s status-allow blocks", "64");
    const char *const *allow = cfg->nallow ? cfg->allow : loopback;
    unsigned nallow = cfg->nallow ? cfg->nallow : 2;
    eddy_status *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    for (unsigned i = 0; i < nallow; i++)
        if (net_block_parse(allow[i], &st->allow[st->nallow++]) < 0) {
            eddy_status_free(st);
            return fail(err, err_len, "'%s' is not an address or a block (like 10.0.0.0/8 or ::1)",
                        allow[i]);
        }
    st->path = strdup(cfg->path);
    int rc = st->path ? fill_page(st) : -ENOMEM;
    if (rc < 0) {
        eddy_status_free(st);
        snprintf(err, err_len, "cannot make the status page: %s", strerror(-rc));
        return rc;
    }
    *out = st;
    return 0;
}

void eddy_status_free(eddy_status *st)
{
    if (!st)
        return;
    free(st->path);
    free(st->page);
    free(st);
}

static void answer(eddy_request *req, const char *type, const char *cache, const void *body,
                   size_t len)
{
    eddy_response_field(req, "Cache-Control", cache);
    eddy_respond(req, 200, type, body, len);
}

static const char *type_of(const char *name, size_t len)
{
    if (len > 3 && memcmp(name + len - 3, ".js", 3) == 0)
        return "text/javascript; charset=utf-8";
    if (len > 4 && memcmp(name + len - 4, ".css", 4) == 0)
        return "text/css; charset=utf-8";
    return "text/html; charset=utf-8";
}

void eddy_status_handler(eddy_request *req, void *data)
{
    const eddy_status *st = data;
    char peer[64];
    eddy_request_peer(req, peer, sizeof(peer));
    if (!net_block_match(st->allow, st->nallow, peer)) {
        eddy_respond(req, 403, "text/plain; charset=utf-8", "403 Forbidden\n", 14);
        return;
    }
    const request *r = request_of(req);
    metrics_slot *slot = r ? r->front->metrics : NULL;
    if (!slot) {
        static const char msg[] = "503 Service Unavailable: this server keeps no metrics\n";
        eddy_respond(req, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
        return;
    }
    eddy_str path = eddy_request_path(req);
    size_t plen = strlen(st->path);
    const char *rest = path.ptr + plen; /* the route covers the path: "" or "/..." */
    size_t rest_len = path.len - plen;
    if (rest_len <= 1) {
        answer(req, "text/html; charset=utf-8", "no-store", st->page, st->page_len);
        return;
    }
    rest++, rest_len--;
    char *text = NULL;
    size_t len = 0;
    const char *type = NULL;
    if (rest_len == 7 && memcmp(rest, "metrics", 7) == 0) {
        text = metrics_prometheus(slot->owner, &len);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (rest_len == 4 && memcmp(rest, "json", 4) == 0) {
        text = metrics_json(slot->owner, &len);
        type = "application/json";
    } else {
        const status_asset *a = memchr(rest, '/', rest_len) ? NULL : asset(rest, rest_len);
        if (!a) {
            eddy_respond(req, 404, "text/plain; charset=utf-8", "404 Not Found\n", 14);
            return;
        }
        answer(req, type_of(rest, rest_len), "max-age=3600", a->data, a->len);
        return;
    }
    if (!text) {
        eddy_respond(req, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
        return;
    }
    answer(req, type, "no-store", text, len);
    free(text);
}
