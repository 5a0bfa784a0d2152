/* The loop's io_uring.  A turn's socket reads and writes are queued as
 * submissions and handed to the kernel by the one system call that also
 * waits for the next events, instead of a recv() and a send() per request:
 * on this kind of machine a system call costs about a microsecond, as much
 * as the rest of a small request's work.  The loop's epoll descriptor is
 * watched through the ring too, so listeners, wake-ups and anything else
 * registered with loop_io_add() work as before.
 *
 * Only ring.c and uring_stream.c see io_uring; the rest of the loop sees
 * this interface.  A kernel without io_uring (or one that forbids it)
 * leaves the loop on plain epoll. */
#ifndef EDDY_RT_RING_H
#define EDDY_RT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_uring_sqe;
typedef struct loop_ring loop_ring;
typedef struct uring_stream uring_stream;

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

/* What a completion is for: kept in the low bits of its user_data, the
 * rest being the stream it is for (none for the first two). */
enum { RING_OP_IGNORE = 0, RING_OP_EPOLL = 1, RING_OP_RECV = 2, RING_OP_SEND = 3,
       RING_OP_POLLOUT = 4, RING_OP_HANGUP = 5, RING_OP_MASK = 7 };

/* A ring watching epfd, or NULL when io_uring cannot be used here. */
loop_ring *ring_new(int epfd);
void ring_free(loop_ring *r);

/* A submission slot, sent with the next wait (or at once when the queue
 * is full); the caller fills it and sets its user_data. */
struct io_uring_sqe *ring_sqe(loop_ring *r);
/* Makes sure the next n ring_sqe() calls land in one submission (linked
 * operations must). */
void ring_reserve(loop_ring *r, unsigned n);
/* Queues s to have its receive armed just before the next wait, when it
 * is known whether the connection still wants one. */
int ring_want_arm(loop_ring *r, uring_stream *s);

/* Submits what is queued and waits up to timeout_ms (-1: no limit, 0: not
 * at all) for completions. */
void ring_enter(loop_ring *r, int timeout_ms);
/* Dispatches the completions; true when the epoll descriptor has events
 * to collect (it is watched again from the next ring_enter()). */
bool ring_dispatch(loop_ring *r);
/* Dispatches what the kernel already has for the streams (completions
 * posted, or work it runs when asked), without submitting or waiting;
 * nothing while completions are being dispatched. */
void ring_settle(loop_ring *r);
/* Streams with operations in flight; the loop drains them before freeing
 * the ring. */
void ring_track(loop_ring *r, int delta);
size_t ring_live(const loop_ring *r);

char *ring_buf(loop_ring *r, unsigned bid);
void ring_buf_put(loop_ring *r, unsigned bid);

/* Room for len bytes to send in the current staging arena (its number in
 * *arena), or NULL when it is full.  Two arenas take turns: one fills
 * while the other's sends, submitted and completed (without waiting) by
 * the last ring_enter(), are released one by one with ring_unstage(). */
char *ring_stage(loop_ring *r, size_t len, unsigned *arena);
void ring_unstage(loop_ring *r, unsigned arena);

/* Implemented by uring_stream.c. */
void uring_stream_arm(uring_stream *s);
void uring_stream_complete(uring_stream *s, unsigned op, int res, unsigned flags);

#endif
