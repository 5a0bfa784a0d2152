#include "rt/loop.h"
#include "rt/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Events taken from the kernel per epoll_wait; more simply wait a turn. */
#define LOOP_MAX_EVENTS 256
/* Read scratch: big enough for a typical burst of pipelined requests. */
#define LOOP_SCRATCH_BYTES (64 * 1024)

/* How long freeing a loop waits for its streams' last operations. */
#define LOOP_DRAIN_MS 2000
/* Turns of the ring alone, without waiting, when the loop stops. */
#define LOOP_STOP_TURNS 4

struct eddy_loop {
    int epfd;
    bool stop;
    bool virtual_clock;
    bool ring_tried; /* io_uring set up, or found unusable, or refused */
    loop_ring *ring;
    uint64_t now_ms;
    uint64_t now_us;           /* the same reading, in microseconds */
    time_t wall_sec;
    uint64_t wall_ms;          /* the coarse wall clock, Unix milliseconds */
    time_t virtual_wall_base;
    size_t strong_io;          /* registered descriptors that keep run() alive */
    uint32_t timer_seq;
    /* Timer heap, 1-based so a timer's heap_index 0 means "not armed". */
    eddy_timer **heap;
    size_t heap_len, heap_cap;
    /* Callbacks deferred to the next turn: a circular list through the
     * callers' own eddy_deferred, so queueing never allocates and a
     * cancelled one is unlinked wherever it is. */
    eddy_deferred defers;
    eddy_deferred defer_mark; /* ends the part of the queue due this turn */
    size_t ndefers;
    /* The batch epoll_wait returned, while it is dispatched: a watcher
     * removed by an earlier callback must not see its later events. */
    struct epoll_event *batch;
    int batch_next, batch_len;
    char scratch[LOOP_SCRATCH_BYTES];
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void update_clock(eddy_loop *loop)
{
    if (loop->virtual_clock) {
        loop->wall_sec = loop->virtual_wall_base + (time_t)(loop->now_ms / 1000);
        return;
    }
    loop->now_us = mono_us();
    loop->now_ms = loop->now_us / 1000u;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    loop->wall_sec = ts.tv_sec;
    loop->wall_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void run_deferred(eddy_loop *loop);

eddy_loop *eddy_loop_new(void)
{
    eddy_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->defers.next = loop->defers.prev = &loop->defers;
    update_clock(loop);
    return loop;
}

void eddy_loop_free(eddy_loop *loop)
{
    if (!loop)
        return;
    if (loop->ring) {
        /* Closed streams may still wait for their last completions. */
        ring_flush(loop->ring, LOOP_DRAIN_MS / 10, 10);
        ring_free(loop->ring);
    }
    /* What is still deferred runs now (a server freed from a callback
     * finishes here): nothing queued is left to dangle. */
    while (loop->ndefers)
        run_deferred(loop);
    close(loop->epfd);
    free(loop->heap);
    free(loop);
}

uint64_t eddy_loop_now(const eddy_loop *loop) { return loop->now_ms; }
time_t loop_wall_sec(const eddy_loop *loop) { return loop->wall_sec; }
uint64_t loop_now_us(const eddy_loop *loop)
{
    return loop->virtual_clock ? loop->now_ms * 1000u : loop->now_us;
}
uint64_t loop_read_us(const eddy_loop *loop)
{
    return loop->virtual_clock ? loop->now_ms * 1000u : mono_us();
}
uint64_t loop_wall_ms(const eddy_loop *loop)
{
    return loop->virtual_clock ? (uint64_t)loop->virtual_wall_base * 1000u + loop->now_ms
                               : loop->wall_ms;
}
void eddy_loop_stop(eddy_loop *loop) { loop->stop = true; }
size_t loop_pending_timers(const eddy_loop *loop) { return loop->heap_len; }

void eddy_loop_set_io_uring(eddy_loop *loop, bool enable)
{
    if (!loop->ring)
        loop->ring_tried = !enable;
}

loop_ring *loop_ring_get(const eddy_loop *loop) { return loop->ring; }

void loop_settle(eddy_loop *loop)
{
    if (loop->ring)
        ring_settle(loop->ring);
}

void loop_hold(eddy_loop *loop, int delta) { loop->strong_io += (size_t)(ssize_t)delta; }

char *loop_scratch(eddy_loop *loop, size_t *len)
{
    *len = sizeof(loop->scratch);
    return loop->scratch;
}

/* ------------------------------------------------------------ deferred -- */

void eddy_deferred_init(eddy_deferred *d, eddy_callback cb, void *data)
{
    memset(d, 0, sizeof(*d));
    d->cb = cb;
    d->data = data;
}

static void defer_unlink(eddy_deferred *d)
{
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

void eddy_defer(eddy_loop *loop, eddy_deferred *d)
{
    if (d->next)
        return; /* already queued: once is enough */
    eddy_deferred *head = &loop->defers;
    d->prev = head->prev;
    d->next = head;
    head->prev->next = d;
    head->prev = d;
    loop->ndefers++;
}

void eddy_defer_cancel(eddy_loop *loop, eddy_deferred *d)
{
    if (!d->next)
        return;
    defer_unlink(d);
    loop->ndefers--;
}

static void run_deferred(eddy_loop *loop)
{
    /* Only those queued before this turn's run: one that defers itself
     * again waits for the next turn.  The rest stay linked in the queue,
     * so cancelling any of them (from a callback) just unlinks it. */
    eddy_deferred *head = &loop->defers;
    eddy_deferred *last = head->prev;
    if (last == head)
        return;
    eddy_deferred *mark = &loop->defer_mark;
    mark->prev = last; /* after the last one due now */
    mark->next = head;
    last->next = mark;
    head->prev = mark;
    while (head->next != mark) {
        eddy_deferred *d = head->next;
        defer_unlink(d);
        loop->ndefers--;
        d->cb(d->data);
    }
    defer_unlink(mark);
}

/* -------------------------------------------------------------- timers -- */

static bool timer_before(const eddy_timer *a, const eddy_timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return (int32_t)(a->seq - b->seq) < 0;
}

static void heap_set(eddy_loop *loop, size_t i, eddy_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = (uint32_t)i;
}

static void sift_up(eddy_loop *loop, size_t i)
{
    eddy_timer *t = loop->heap[i];
    while (i > 1 && timer_before(t, loop->heap[i / 2])) {
        heap_set(loop, i, loop->heap[i / 2]);
        i /= 2;
    }
    heap_set(loop, i, t);
}

static void sift_down(eddy_loop *loop, size_t i)
{
    eddy_timer *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > loop->heap_len)
            break;
        if (c + 1 <= loop->heap_len && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

void eddy_timer_init(eddy_timer *t, eddy_callback cb, void *data)
{
    memset(t, 0, sizeof(*t));
    t->cb = cb;
    t->data = data;
}

void eddy_timer_stop(eddy_loop *loop, eddy_timer *t)
{
    size_t i = t->heap_index;
    if (i == 0)
        return;
    t->heap_index = 0;
    eddy_timer *last = loop->heap[loop->heap_len--];
    if (i > loop->heap_len)
        return; /* t was the last slot */
    heap_set(loop, i, last);
    if (i > 1 && timer_before(last, loop->heap[i / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

int eddy_timer_start(eddy_loop *loop, eddy_timer *t, uint64_t after_ms)
{
    /* Saturates: a deadline past the clock's end is "never", not a wrap
     * into the past. */
    uint64_t deadline = after_ms > UINT64_MAX - loop->now_ms ? UINT64_MAX : loop->now_ms + after_ms;
    if (t->heap_index) {
        /* Re-arming keeps the timer's slot: never allocates, never fails. */
        t->deadline = deadline;
        t->seq = loop->timer_seq++;
        size_t i = t->heap_index;
        if (i > 1 && timer_before(t, loop->heap[i / 2]))
            sift_up(loop, i);
        else
            sift_down(loop, i);
        return 0;
    }
    if (loop->heap_len + 1 >= loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 256;
        eddy_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
        if (!heap)
            return -ENOMEM; /* t stays unarmed: the caller must know */
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    t->deadline = deadline;
    t->seq = loop->timer_seq++;
    loop->heap[++loop->heap_len] = t;
    sift_up(loop, loop->heap_len);
    return 0;
}

static void run_timers(eddy_loop *loop)
{
    /* Timers armed by a callback for "now" wait for the next turn, so a
     * zero-delay timer that re-arms itself cannot starve I/O. */
    uint32_t seq_limit = loop->timer_seq;
    while (loop->heap_len) {
        eddy_timer *t = loop->heap[1];
        if (t->deadline > loop->now_ms || (int32_t)(t->seq - seq_limit) >= 0)
            break;
        eddy_timer_stop(loop, t);
        t->cb(t->data);
    }
}

/* ------------------------------------------------------------------ io -- */

int loop_io_add(eddy_loop *loop, eddy_io *io, int fd, uint32_t events, bool weak)
{
    io->fd = fd;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    if (!weak)
        loop->strong_io++;
    return 0;
}

void loop_io_forget(eddy_loop *loop, eddy_io *io, bool weak)
{
    if (io->fd < 0)
        return;
    if (!weak)
        loop->strong_io--;
    for (int i = loop->batch_next; i < loop->batch_len; i++)
        if (loop->batch[i].data.ptr == io)
            loop->batch[i].data.ptr = NULL;
}

void loop_io_del(eddy_loop *loop, eddy_io *io, bool weak)
{
    if (io->fd < 0)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    loop_io_forget(loop, io, weak);
}

bool loop_alive(const eddy_loop *loop)
{
    return loop->strong_io || loop->heap_len || loop->ndefers;
}

void loop_run_once(eddy_loop *loop, bool nowait)
{
    int timeout = -1;
    if (nowait || loop->ndefers || loop->virtual_clock)
        timeout = 0;
    else if (loop->heap_len) {
        uint64_t d = loop->heap[1]->deadline;
        timeout = d <= loop->now_ms ? 0 : (int)(d - loop->now_ms > 60000 ? 60000 : d - loop->now_ms);
    }
    if (!loop->ring_tried && !loop->virtual_clock) {
        /* Set up here, in the thread that runs the loop: the ring is
         * created for a single submitting thread. */
        loop->ring_tried = true;
        loop->ring = ring_new(loop->epfd);
    }
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int n;
    if (loop->ring) {
        ring_enter(loop->ring, timeout);
        update_clock(loop);
        n = ring_dispatch(loop->ring) ? epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, 0) : 0;
    } else {
        n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, timeout);
        update_clock(loop);
    }
    loop->batch = evs;
    loop->batch_len = n;
    for (int i = 0; i < n; i++) {
        loop->batch_next = i + 1;
        eddy_io *io = evs[i].data.ptr;
        if (io)
            io->cb(io, evs[i].events);
    }
    loop->batch = NULL;
    loop->batch_len = loop->batch_next = 0;
    run_timers(loop);
    run_deferred(loop);
}

int eddy_loop_run(eddy_loop *loop)
{
    loop->stop = false;
    while (!loop->stop && loop_alive(loop))
        loop_run_once(loop, false);
    /* Streams closed in the last turn still wait on the ring (a receive
     * to cancel, then the close itself): they reach the kernel now, so
     * their peers see the FIN when the loop stops, not when it is freed
     * (a drained worker's loop waits on the other workers for that). */
    if (loop->ring)
        ring_flush(loop->ring, LOOP_STOP_TURNS, 0);
    return 0;
}

/* ------------------------------------------------------- virtual clock -- */

void loop_use_virtual_clock(eddy_loop *loop, uint64_t start_ms)
{
    loop->virtual_clock = true;
    loop->now_ms = start_ms;
    loop->virtual_wall_base = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    update_clock(loop);
}

void loop_advance(eddy_loop *loop, uint64_t ms)
{
    /* Step through each due deadline in order, so a timer that arms another
     * inside the window sees the time it would have seen for real. */
    uint64_t target = loop->now_ms + ms;
    for (;;) {
        loop_run_once(loop, true);
        if (loop->ndefers)
            continue;
        if (loop->heap_len && loop->heap[1]->deadline <= target) {
            if (loop->heap[1]->deadline > loop->now_ms)
                loop->now_ms = loop->heap[1]->deadline;
            continue;
        }
        break;
    }
    loop->now_ms = target;
    loop_run_once(loop, true);
}
