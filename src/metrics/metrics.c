#include "metrics/metrics.h"
#include "core/request.h"
#include "http/server.h"
#include "rt/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const uint64_t metrics_bounds_us[METRICS_NBOUNDS] = {METRICS_BOUNDS};

int eddy_metrics_new(unsigned nworkers, eddy_metrics **out)
{
    if (nworkers == 0)
        return -EINVAL;
    eddy_metrics *m = calloc(1, sizeof(*m));
    /* Whole cache lines per slot (sizeof is a multiple of the alignment). */
    metrics_slot *slots = m ? aligned_alloc(alignof(metrics_slot), nworkers * sizeof(*slots)) : NULL;
    if (!slots) {
        free(m);
        return -ENOMEM;
    }
    memset(slots, 0, nworkers * sizeof(*slots));
    for (unsigned i = 0; i < nworkers; i++)
        slots[i].owner = m;
    m->nworkers = nworkers;
    m->slots = slots;
    *out = m;
    return 0;
}

void eddy_metrics_free(eddy_metrics *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

int eddy_server_metrics(eddy_server *srv, eddy_metrics *m, unsigned worker)
{
    if (!m || worker >= m->nworkers)
        return -EINVAL;
    metrics_slot *slot = &m->slots[worker];
    metrics_set(&slot->conns_open, srv->nconns);
    srv->front.metrics = slot;
    return 0;
}

void metrics_response(metrics_slot *m, const request *req, int status)
{
    int proto = req->version_major == 2 ? METRICS_H2 : METRICS_H1;
    if (status >= 100 && status < 600)
        metrics_add(&m->requests[proto][status / 100 - 1], 1);
    uint64_t now = loop_read_us(req->front->loop);
    uint64_t us = now > req->start_us ? now - req->start_us : 0;
    unsigned b = 0;
    while (b < METRICS_NBOUNDS && us > metrics_bounds_us[b])
        b++;
    metrics_add(&m->duration[b], 1);
    metrics_add(&m->duration_sum_us, us);
}

static void read_slot(const metrics_slot *s, metrics_values *v)
{
    for (int p = 0; p < METRICS_PROTOS; p++)
        for (int c = 0; c < METRICS_CLASSES; c++)
            v->requests[p][c] = metrics_get(&s->requests[p][c]);
    v->bytes_in = metrics_get(&s->bytes_in);
    v->bytes_out = metrics_get(&s->bytes_out);
    v->conns_open = metrics_get(&s->conns_open);
    /* Two gauges read a moment apart: never below zero. */
    uint64_t busy = metrics_get(&s->conns_busy);
    v->conns_idle = (int64_t)busy >= 0 && busy < v->conns_open ? v->conns_open - busy : 0;
    v->conns_accepted = metrics_get(&s->conns_accepted);
    for (int i = 0; i < 2; i++) {
        v->tls[i] = metrics_get(&s->tls[i]);
        v->pauses[i] = metrics_get(&s->pauses[i]);
    }
    uint64_t sum = 0;
    for (int b = 0; b < METRICS_NBUCKETS; b++)
        v->duration[b] = sum += metrics_get(&s->duration[b]);
    v->duration_count = sum;
    v->duration_sum_us = metrics_get(&s->duration_sum_us);
}

_Static_assert(sizeof(metrics_values) % sizeof(uint64_t) == 0, "metrics_values holds uint64_t alone");

static void add_values(metrics_values *to, const metrics_values *v)
{
    /* Every field is a uint64_t: add them as an array. */
    uint64_t *t = (uint64_t *)to;
    const uint64_t *f = (const uint64_t *)v;
    for (size_t i = 0; i < sizeof(*v) / sizeof(uint64_t); i++)
        t[i] += f[i];
}

metrics_values *metrics_read(const eddy_metrics *m)
{
    metrics_values *v = calloc(m->nworkers + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (unsigned i = 0; i < m->nworkers; i++) {
        read_slot(&m->slots[i], &v[i + 1]);
        add_values(&v[0], &v[i + 1]);
    }
    return v;
}
