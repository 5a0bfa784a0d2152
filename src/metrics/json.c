/* The same counters as one JSON object, for the dashboard:
 *   {"time": unix seconds, "buckets_le": [seconds...],
 *    "total": {...}, "workers": [{...}, ...]}
 * each {...} holding requests by protocol and class, bytes, connections,
 * TLS handshakes, accept pauses and the cumulative duration histogram. */
#include "metrics/metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const protocols[METRICS_PROTOS] = {"http/1.1", "h2"};

static json_t *values_json(const metrics_values *v)
{
    json_t *req = json_object();
    for (int p = 0; p < METRICS_PROTOS; p++) {
        json_t *by_class = json_object();
        for (int c = 0; c < METRICS_CLASSES; c++) {
            char key[4] = {(char)('1' + c), 'x', 'x', 0};
            json_object_set_new(by_class, key, json_integer((json_int_t)v->requests[p][c]));
        }
        json_object_set_new(req, protocols[p], by_class);
    }
    json_t *hist = json_array();
    for (int b = 0; b < METRICS_NBUCKETS; b++)
        json_array_append_new(hist, json_integer((json_int_t)v->duration[b]));
    return json_pack("{s:o, s:I, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I},"
                     " s:{s:o, s:f, s:I}}",
                     "requests", req,
                     "bytes_in", (json_int_t)v->bytes_in,
                     "bytes_out", (json_int_t)v->bytes_out,
                     "connections", "open", (json_int_t)v->conns_open,
                     "idle", (json_int_t)v->conns_idle,
                     "accepted", (json_int_t)v->conns_accepted,
                     "tls_handshakes", "ok", (json_int_t)v->tls[METRICS_TLS_OK],
                     "failed", (json_int_t)v->tls[METRICS_TLS_FAILED],
                     "accept_pauses", "max_conns", (json_int_t)v->pauses[METRICS_PAUSE_MAX_CONNS],
                     "no_fds", (json_int_t)v->pauses[METRICS_PAUSE_NO_FDS],
                     "duration", "buckets", hist,
                     "sum", (double)v->duration_sum_us / 1e6,
                     "count", (json_int_t)v->duration_count);
}

char *metrics_json(const eddy_metrics *m, size_t *len)
{
    metrics_values *v = metrics_read(m);
    if (!v)
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *le = json_array(), *workers = json_array();
    for (int b = 0; b < METRICS_NBOUNDS; b++)
        json_array_append_new(le, json_real((double)metrics_bounds_us[b] / 1e6));
    for (unsigned i = 1; i <= m->nworkers; i++)
        json_array_append_new(workers, values_json(&v[i]));
    json_t *root = json_pack("{s:f, s:o, s:o, s:o}", "time", ts.tv_sec + ts.tv_nsec / 1e9,
                             "buckets_le", le, "total", values_json(&v[0]), "workers", workers);
    free(v);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text)
        *len = strlen(text);
    return text;
}
