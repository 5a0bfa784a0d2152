/* The loop's io_uring.  A turn's socket reads and writes are queued as
 * submissions and handed to the kernel by the one system call that also
 * waits for the next events, instead of a recv() and a send() per request:
 * on this kind of machine a system call costs about a microsecond, as much
 * as the rest of a small request's work.  The loop's epoll descriptor is
 * watched through the ring too, so listeners, wake-ups and anything else
 * registered with loop_io_add() work as before.
 *
 * The ring knows nothing of what it carries.  Each submission names a
 * ring_target, a small struct its user embeds, plus a tag of RING_TAG_BITS
 * telling the user which of its operations it was: both are packed into
 * the submission's user_data (the target's address, aligned so its low
 * bits are free, or'ed with the tag; 0 for a completion to ignore).  Each
 * completion is dispatched to its target's complete() with that tag: one
 * indirect call, nothing allocated.  The epoll watch is a target of the
 * ring's own; each io_uring socket stream is another.
 *
 * The loop only sets the ring up, enters it and dispatches; submissions
 * are its users' own.  A kernel without io_uring (or one that forbids it)
 * leaves the loop on plain epoll. */
#ifndef EDDY_RT_RING_H
#define EDDY_RT_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loop_ring loop_ring;
typedef struct ring_target ring_target;

/* What a target does with the ring's events. */
typedef struct ring_target_ops {
    /* A submission made for this target with `tag` completed: res and
     * flags as the kernel gave them. */
    void (*complete)(ring_target *t, unsigned tag, int res, unsigned flags);
    /* Asked for with ring_want_arm(): runs just before the next wait, and
     * may queue submissions that go with it.  NULL if never asked for. */
    void (*before_wait)(ring_target *t);
} ring_target_ops;

/* Tags are 0 to RING_TAG_MASK, kept in the low bits of a target's address. */
#define RING_TAG_BITS 3
#define RING_TAG_MASK ((1u << RING_TAG_BITS) - 1)

/* Embedded by the ring's users (first, or anywhere: the handlers get its
 * address back).  Its alignment leaves the tag bits of its address free. */
struct ring_target {
    _Alignas(1 << RING_TAG_BITS) const ring_target_ops *ops;
};

/* The user_data naming target t (NULL: none, the completion is ignored)
 * and tag; for cancelling a submission as well as making one. */
static inline uint64_t ring_target_data(const ring_target *t, unsigned tag)
{
    return t ? (uint64_t)(uintptr_t)t | tag : 0;
}
/* Makes sqe's completion go to t with tag (t NULL: ignored).  After the
 * io_uring_prep_*() call, which may clear user_data. */
static inline void ring_sqe_set_target(struct io_uring_sqe *sqe, const ring_target *t,
                                       unsigned tag)
{
    io_uring_sqe_set_data64(sqe, ring_target_data(t, tag));
}

/* Receive buffers the kernel picks from when data arrives, so an idle
 * connection holds none.  A receive that fills one switches its stream to
 * plain recv() until the socket drains (a large head or an upload). */
#define RING_BUF_SIZE 2048
#define RING_BUF_GROUP 0 /* the ring's one group of receive buffers */
/* A turn's small writes are copied into a staging arena, so the caller may
 * reuse its memory at once; larger writes go out with a plain send(). */
#define RING_SEND_MAX 16384

/* How long bytes a closed stream still holds (accepted before a graceful
 * close, not yet taken by the socket) may take to leave; then they are
 * dropped and the socket closed. */
#define ORPHAN_SEND_MS 10000

/* A ring watching epfd, or NULL when io_uring cannot be used here. */
loop_ring *ring_new(int epfd);
void ring_free(loop_ring *r);

/* A submission slot, sent with the next wait (or at once when the queue
 * is full); the caller fills it and names its target with
 * ring_sqe_set_target(). */
struct io_uring_sqe *ring_sqe(loop_ring *r);
/* Makes sure the next n ring_sqe() calls land in one submission (linked
 * operations must). */
void ring_reserve(loop_ring *r, unsigned n);
/* Queues t's before_wait() to run just before the next wait (a stream
 * arms its receive there, when it is known whether the connection still
 * wants one).  Once per call: a target asks again each turn it wants it. */
int ring_want_arm(loop_ring *r, ring_target *t);

/* Submits what is queued and waits up to timeout_ms (-1: no limit, 0: not
 * at all) for completions. */
void ring_enter(loop_ring *r, int timeout_ms);
/* Dispatches the completions; true when the epoll descriptor has events
 * to collect (it is watched again from the next ring_enter()). */
bool ring_dispatch(loop_ring *r);
/* Dispatches what the kernel already has for the targets (completions
 * posted, or work it runs when asked), without submitting or waiting;
 * nothing while completions are being dispatched. */
void ring_settle(loop_ring *r);
/* Targets with operations in flight, counted by their users; the loop
 * drains them before freeing the ring. */
void ring_track(loop_ring *r, int delta);
size_t ring_live(const loop_ring *r);
/* Turns the ring alone (submit, wait up to wait_ms, dispatch) at most
 * `turns` times while targets are live, then submits what is queued: the
 * last operations of closed streams (cancels, then closes) reach the
 * kernel without the rest of the loop running. */
void ring_flush(loop_ring *r, int turns, int wait_ms);

/* Receive buffer bid (a completion's flags >> IORING_CQE_BUFFER_SHIFT). */
char *ring_buf(loop_ring *r, unsigned bid);
/* True when p points into one of the ring's receive buffers. */
bool ring_buf_holds(const loop_ring *r, const char *p);
/* Gives the buffer p points into back to the kernel; false, doing nothing,
 * when p is not in one of the ring's buffers (memory of the caller's). */
bool ring_buf_put(loop_ring *r, const char *p);

/* Room for len bytes to send in the current staging arena (its number in
 * *arena), or NULL when it is full.  Two arenas take turns: one fills
 * while the other's sends, submitted and completed (without waiting) by
 * the last ring_enter(), are released one by one with ring_unstage(). */
char *ring_stage(loop_ring *r, size_t len, unsigned *arena);
void ring_unstage(loop_ring *r, unsigned arena);

#endif
