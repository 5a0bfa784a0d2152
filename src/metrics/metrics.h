/* Per-worker counters behind eddy_metrics: each server counts into a slot
 * of its own, written by its loop's thread alone, so a count is a relaxed
 * load and store (no lock, no atomic read-modify-write); the status page,
 * on any worker, reads every slot with relaxed loads.  Slots are aligned
 * to cache lines so workers never write to a line another one writes. */
#ifndef EDDY_METRICS_METRICS_H
#define EDDY_METRICS_METRICS_H

#include "eddy.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

struct request;

enum { METRICS_H1, METRICS_H2, METRICS_PROTOS };
#define METRICS_CLASSES 5 /* 1xx .. 5xx */
enum { METRICS_TLS_OK, METRICS_TLS_FAILED };
enum { METRICS_PAUSE_MAX_CONNS, METRICS_PAUSE_NO_FDS };

/* Upper bounds of the request-duration buckets, in microseconds; one more
 * bucket (+Inf) follows the last.  From 10 µs: most answers eddy makes
 * take well under 100 µs, and percentiles estimated inside one bucket
 * would say nothing. */
#define METRICS_BOUNDS                                                                        \
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
        1000000, 2500000, 5000000, 10000000
#define METRICS_NBOUNDS 19
#define METRICS_NBUCKETS (METRICS_NBOUNDS + 1)
extern const uint64_t metrics_bounds_us[METRICS_NBOUNDS];

typedef _Atomic uint64_t counter;

/* One worker's counters.  Gauges are stored whole by the same thread. */
typedef struct metrics_slot {
    alignas(64) counter requests[METRICS_PROTOS][METRICS_CLASSES];
    counter bytes_in, bytes_out;      /* on client connections, as plaintext */
    counter conns_open;               /* gauge */
    counter conns_busy;               /* gauge: with a request (HTTP/2: a stream) open */
    counter conns_accepted;
    counter tls[2];                   /* handshakes done, failed */
    counter pauses[2];                /* accepting stopped: limit, descriptors */
    counter duration[METRICS_NBUCKETS]; /* per bucket, not cumulative */
    counter duration_sum_us;
    eddy_metrics *owner;              /* set once when attached */
} metrics_slot;

struct eddy_metrics {
    unsigned nworkers;
    metrics_slot *slots;              /* nworkers of them */
};

/* Single writer: a plain add that cannot tear or be reordered into a lost
 * update, because no other thread writes c. */
static inline void metrics_add(counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void metrics_set(counter *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t metrics_get(const counter *c)
{
    return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

/* Hooks; each takes the slot the server counts into, NULL for none. */
static inline void metrics_bytes_in(metrics_slot *m, ssize_t n)
{
    if (m && n > 0)
        metrics_add(&m->bytes_in, (uint64_t)n);
}
static inline void metrics_bytes_out(metrics_slot *m, ssize_t n)
{
    if (m && n > 0)
        metrics_add(&m->bytes_out, (uint64_t)n);
}
/* A connection took its first request (+1) or let its last go (-1). */
static inline void metrics_busy(metrics_slot *m, int delta)
{
    if (m)
        metrics_add(&m->conns_busy, (uint64_t)(int64_t)delta);
}
static inline void metrics_count(metrics_slot *m, counter *c)
{
    if (m)
        metrics_add(c, 1);
}
/* A response was finished with status: counted by class and protocol,
 * timed from the request's start. */
void metrics_response(metrics_slot *m, const struct request *req, int status);

/* Every slot summed, and each slot, read with relaxed loads: what the
 * renderers print.  Gauges may be a moment apart from each other. */
typedef struct metrics_values {
    uint64_t requests[METRICS_PROTOS][METRICS_CLASSES];
    uint64_t bytes_in, bytes_out, conns_open, conns_idle, conns_accepted;
    uint64_t tls[2], pauses[2];
    uint64_t duration[METRICS_NBUCKETS]; /* cumulative, as Prometheus has them */
    uint64_t duration_count, duration_sum_us;
} metrics_values;

/* values[0] is the sum, values[1..n] the workers: n + 1 entries. */
metrics_values *metrics_read(const eddy_metrics *m);

/* The text formats, in a buffer the caller frees; NULL without memory. */
char *metrics_prometheus(const eddy_metrics *m, size_t *len);
char *metrics_json(const eddy_metrics *m, size_t *len);

#endif
