/* The Prometheus text exposition format (0.0.4): every family once, its
 * summed series (no worker label) first, then one series per worker
 * (worker="1".."N", as eddy's log lines number them). */
#include "metrics/metrics.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *buf;
    size_t len, cap;
    bool failed;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !o->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *grown = realloc(o->buf, cap);
        if (!grown)
            o->failed = true;
        else
            o->buf = grown, o->cap = cap;
    }
}

/* The labels of series i: none for the sum, worker="i" for a worker; with
 * more labels after, a comma between. */
static void labels(out *o, unsigned i, const char *more)
{
    if (i == 0 && !*more)
        return;
    put(o, "{");
    if (i)
        put(o, "worker=\"%u\"%s", i, *more ? "," : "");
    put(o, "%s}", more);
}

static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one value per series, at offset `at` of metrics_values. */
static void simple(out *o, const metrics_values *v, unsigned n, const char *name,
                   const char *type, const char *help, size_t at)
{
    family(o, name, type, help);
    for (unsigned i = 0; i <= n; i++) {
        put(o, "%s", name);
        labels(o, i, "");
        put(o, " %llu\n", (unsigned long long)*(const uint64_t *)((const char *)&v[i] + at));
    }
}

/* A counter family of two series per worker told apart by one label
 * (label=names[0] or names[1]), from the uint64_t[2] at offset `at`. */
static void pair(out *o, const metrics_values *v, unsigned n, const char *name, const char *help,
                 const char *label, const char *const names[2], size_t at)
{
    char more[64];
    family(o, name, "counter", help);
    for (unsigned i = 0; i <= n; i++)
        for (int r = 0; r < 2; r++) {
            snprintf(more, sizeof(more), "%s=\"%s\"", label, names[r]);
            put(o, "%s", name);
            labels(o, i, more);
            put(o, " %llu\n", (unsigned long long)((const uint64_t *)((const char *)&v[i] + at))[r]);
        }
}

static const char *const protocols[METRICS_PROTOS] = {"http/1.1", "h2"};

static void render(out *o, const metrics_values *v, unsigned n)
{
    char more[96];
    family(o, "eddy_requests_total", "counter",
           "Responses finished, by protocol and status class.");
    for (unsigned i = 0; i <= n; i++)
        for (int p = 0; p < METRICS_PROTOS; p++)
            for (int c = 0; c < METRICS_CLASSES; c++) {
                snprintf(more, sizeof(more), "protocol=\"%s\",class=\"%dxx\"", protocols[p], c + 1);
                put(o, "eddy_requests_total");
                labels(o, i, more);
                put(o, " %llu\n", (unsigned long long)v[i].requests[p][c]);
            }
    simple(o, v, n, "eddy_received_bytes_total", "counter",
           "Bytes read from client connections (after TLS decryption).",
           offsetof(metrics_values, bytes_in));
    simple(o, v, n, "eddy_sent_bytes_total", "counter",
           "Bytes written to client connections (before TLS encryption).",
           offsetof(metrics_values, bytes_out));
    simple(o, v, n, "eddy_connections_open", "gauge", "Client connections open now.",
           offsetof(metrics_values, conns_open));
    simple(o, v, n, "eddy_connections_idle", "gauge",
           "Open client connections with no request in progress (keep-alive).",
           offsetof(metrics_values, conns_idle));
    simple(o, v, n, "eddy_connections_accepted_total", "counter", "Client connections accepted.",
           offsetof(metrics_values, conns_accepted));
    static const char *const results[2] = {"ok", "failed"};
    pair(o, v, n, "eddy_tls_handshakes_total", "TLS handshakes, by result.", "result", results,
         offsetof(metrics_values, tls));
    static const char *const reasons[2] = {"max_conns", "no_fds"};
    pair(o, v, n, "eddy_accept_pauses_total",
         "Times accepting stopped: at --max-conns, or out of descriptors.", "reason", reasons,
         offsetof(metrics_values, pauses));
    family(o, "eddy_request_duration_seconds", "histogram",
           "From a request's first byte to its response's last byte queued.");
    for (unsigned i = 0; i <= n; i++) {
        for (int b = 0; b < METRICS_NBUCKETS; b++) {
            if (b < METRICS_NBOUNDS)
                snprintf(more, sizeof(more), "le=\"%g\"", (double)metrics_bounds_us[b] / 1e6);
            else
                snprintf(more, sizeof(more), "le=\"+Inf\"");
            put(o, "eddy_request_duration_seconds_bucket");
            labels(o, i, more);
            put(o, " %llu\n", (unsigned long long)v[i].duration[b]);
        }
        put(o, "eddy_request_duration_seconds_sum");
        labels(o, i, "");
        put(o, " %.6f\n", (double)v[i].duration_sum_us / 1e6);
        put(o, "eddy_request_duration_seconds_count");
        labels(o, i, "");
        put(o, " %llu\n", (unsigned long long)v[i].duration_count);
    }
}

char *metrics_prometheus(const eddy_metrics *m, size_t *len)
{
    metrics_values *v = metrics_read(m);
    if (!v)
        return NULL;
    out o = {.cap = 16384};
    o.buf = malloc(o.cap);
    o.failed = !o.buf;
    render(&o, v, m->nworkers);
    free(v);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
