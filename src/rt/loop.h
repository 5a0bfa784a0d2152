/* The executor: epoll for descriptors, a binary heap for timers, a queue of
 * deferred callbacks.  Nothing here knows HTTP. */
#ifndef EDDY_RT_LOOP_H
#define EDDY_RT_LOOP_H

#include "eddy.h"
#include <stdbool.h>
#include <sys/epoll.h>
#include <time.h>

typedef struct eddy_io eddy_io;
typedef void (*eddy_io_cb)(eddy_io *io, uint32_t events);

/* A descriptor watched by the loop.  Embedded in its owner. */
struct eddy_io {
    int fd;
    eddy_io_cb cb;
    void *data;
};

/* Registers fd for `events` (EPOLLIN, EPOLLOUT, EPOLLET...).  A registered
 * descriptor keeps eddy_loop_run() alive unless `weak` (signal watchers). */
int loop_io_add(eddy_loop *loop, eddy_io *io, int fd, uint32_t events, bool weak);
/* Unregisters io.  Call before closing its fd. */
void loop_io_del(eddy_loop *loop, eddy_io *io, bool weak);
/* The same for an fd about to be closed that was never duplicated:
 * closing it removes it from epoll, so no epoll_ctl is spent. */
void loop_io_forget(eddy_loop *loop, eddy_io *io, bool weak);

/* One turn: wait up to the next timer (or not at all when `nowait`), run
 * ready I/O, expired timers, then deferred callbacks. */
void loop_run_once(eddy_loop *loop, bool nowait);
/* True while something could still make work (I/O, timers, deferred). */
bool loop_alive(const eddy_loop *loop);
size_t loop_pending_timers(const eddy_loop *loop);

/* Wall-clock seconds, read with the monotonic clock once per turn. */
time_t loop_wall_sec(const eddy_loop *loop);
/* The turn's monotonic reading in microseconds (no system call), for
 * stamping when something began. */
uint64_t loop_now_us(const eddy_loop *loop);
/* The monotonic clock read now (a vDSO call), for measuring a span that
 * ends mid-turn; the virtual clock under tests. */
uint64_t loop_read_us(const eddy_loop *loop);
/* Unix milliseconds, from the coarse wall clock read once per turn. */
uint64_t loop_wall_ms(const eddy_loop *loop);

/* Tests: replace the clocks with a virtual one that moves only by
 * loop_advance(), which then runs what became due (timers, deferred, and
 * any I/O already ready) without blocking. */
void loop_use_virtual_clock(eddy_loop *loop, uint64_t start_ms);
void loop_advance(eddy_loop *loop, uint64_t ms);

/* The loop's io_uring (ring.h), or NULL while it runs on epoll alone. */
struct loop_ring *loop_ring_get(const eddy_loop *loop);
/* Delivers socket input the kernel already holds for io_uring streams, so
 * a caller about to judge connections idle sees it (no-op on epoll). */
void loop_settle(eddy_loop *loop);
/* Something other than a registered descriptor keeps run() alive while
 * held (+1), until released (-1). */
void loop_hold(eddy_loop *loop, int delta);

/* Scratch space shared by every connection of this loop for reads:
 * a connection holds no read buffer of its own while idle. */
char *loop_scratch(eddy_loop *loop, size_t *len);

#endif
