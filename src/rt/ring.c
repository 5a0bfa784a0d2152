#include "rt/ring.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

_Static_assert(_Alignof(ring_target) > RING_TAG_MASK, "a target's address leaves room for a tag");

/* Submissions queued per system call; more are submitted early. */
#define RING_ENTRIES 1024
/* Receive buffers: taken only between a receive's completion and the end
 * of its dispatch, so one per connection active in a turn suffices (a
 * receive finding none is armed again the next turn).  Kept few, as their
 * pages count against the memory of every idle connection: 64 x 2 KiB. */
#define RING_BUFS 64
/* Each staging arena; a write that finds it full goes by send(). */
#define RING_ARENA_BYTES (32 * 1024)
/* Completions taken from the queue at a time. */
#define RING_CQE_BATCH 128

struct loop_ring {
    struct io_uring ring;
    int epfd;
    ring_target epoll; /* the watch on epfd */
    bool epoll_armed;
    bool epoll_ready; /* its completion came in this dispatch */
    bool dispatching;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;
    ring_target **arm;
    size_t narm, arm_cap;
    size_t live;
    unsigned stage;             /* the arena filling now */
    size_t staged[2];           /* bytes used in each arena */
    unsigned sends[2];          /* sends from each arena not yet complete */
    char arena[2][RING_ARENA_BYTES];
};

static int setup(loop_ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* One thread submits and reaps (the loop's), and completions are
     * worked only when it waits: no interrupts to deliver them early. */
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = RING_ENTRIES * 4;
    int rc = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &p);
    if (rc < 0)
        return rc;
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&r->ring);
        return -ENOSYS;
    }
    r->br_bytes = RING_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, r->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) {
        io_uring_queue_exit(&r->ring);
        return -ENOMEM;
    }
    r->br = br;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = RING_BUFS;
    reg.bgid = RING_BUF_GROUP;
    r->bufs = malloc((size_t)RING_BUFS * RING_BUF_SIZE);
    if (!r->bufs || (rc = io_uring_register_buf_ring(&r->ring, &reg, 0)) < 0) {
        free(r->bufs);
        munmap(br, r->br_bytes);
        io_uring_queue_exit(&r->ring);
        return r->bufs ? rc : -ENOMEM;
    }
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < RING_BUFS; i++)
        io_uring_buf_ring_add(r->br, ring_buf(r, i), RING_BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(RING_BUFS), (int)i);
    io_uring_buf_ring_advance(r->br, RING_BUFS);
    return 0;
}

static void epoll_complete(ring_target *t, unsigned tag, int res, unsigned flags)
{
    loop_ring *r = (loop_ring *)(void *)((char *)t - offsetof(loop_ring, epoll));
    r->epoll_armed = false;
    r->epoll_ready = true;
}

static const ring_target_ops epoll_ops = {epoll_complete, NULL};

loop_ring *ring_new(int epfd)
{
    loop_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->epfd = epfd;
    r->epoll.ops = &epoll_ops;
    if (setup(r) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

void ring_free(loop_ring *r)
{
    if (!r)
        return;
    io_uring_submit(&r->ring); /* closes queued by the last streams */
    io_uring_unregister_buf_ring(&r->ring, RING_BUF_GROUP);
    io_uring_queue_exit(&r->ring);
    munmap(r->br, r->br_bytes);
    free(r->bufs);
    free(r->arm);
    free(r);
}

void ring_reserve(loop_ring *r, unsigned n)
{
    if (io_uring_sq_space_left(&r->ring) < n)
        io_uring_submit(&r->ring);
}

struct io_uring_sqe *ring_sqe(loop_ring *r)
{
    struct io_uring_sqe *sqe;
    /* Full: submit to make room (the queue is large, so this is rare). */
    for (int i = 0; !(sqe = io_uring_get_sqe(&r->ring)); i++) {
        if (i == 100) {
            fprintf(stderr, "eddy: io_uring submission queue stuck full\n");
            abort();
        }
        io_uring_submit_and_get_events(&r->ring);
    }
    return sqe;
}

int ring_want_arm(loop_ring *r, ring_target *t)
{
    if (r->narm == r->arm_cap) {
        size_t cap = r->arm_cap ? r->arm_cap * 2 : 256;
        ring_target **arm = realloc(r->arm, cap * sizeof(*arm));
        if (!arm)
            return -ENOMEM;
        r->arm = arm;
        r->arm_cap = cap;
    }
    r->arm[r->narm++] = t;
    return 0;
}

char *ring_buf(loop_ring *r, unsigned bid) { return r->bufs + (size_t)bid * RING_BUF_SIZE; }

bool ring_buf_holds(const loop_ring *r, const char *p)
{
    return (uintptr_t)p - (uintptr_t)r->bufs < (uintptr_t)RING_BUFS * RING_BUF_SIZE;
}

bool ring_buf_put(loop_ring *r, const char *p)
{
    if (!ring_buf_holds(r, p))
        return false;
    unsigned bid = (unsigned)(((uintptr_t)p - (uintptr_t)r->bufs) / RING_BUF_SIZE);
    io_uring_buf_ring_add(r->br, ring_buf(r, bid), RING_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(RING_BUFS), 0);
    io_uring_buf_ring_advance(r->br, 1);
    return true;
}

char *ring_stage(loop_ring *r, size_t len, unsigned *arena)
{
    unsigned i = r->stage;
    if (r->staged[i] + len > RING_ARENA_BYTES)
        return NULL;
    char *p = r->arena[i] + r->staged[i];
    r->staged[i] += (len + 15) & ~(size_t)15;
    r->sends[i]++;
    *arena = i;
    return p;
}

void ring_unstage(loop_ring *r, unsigned arena) { r->sends[arena]--; }

typedef struct completion {
    uint64_t data;
    int res;
    unsigned flags;
} completion;

void ring_track(loop_ring *r, int delta) { r->live += (size_t)(ssize_t)delta; }
size_t ring_live(const loop_ring *r) { return r->live; }

void ring_enter(loop_ring *r, int timeout_ms)
{
    /* This turn's sends leave now; the other arena's left last turn and
     * are done (unless one is still counted: then keep filling this one). */
    unsigned other = r->stage ^ 1;
    if (r->sends[other] == 0) {
        r->staged[other] = 0;
        if (r->staged[r->stage])
            r->stage = other;
    }
    /* Targets' last work before the wait (a stream arms the receive it
     * still wants); one may ask again while this runs. */
    for (size_t i = 0; i < r->narm; i++)
        r->arm[i]->ops->before_wait(r->arm[i]);
    r->narm = 0;
    if (!r->epoll_armed) {
        /* One-shot, armed anew after each collection: arming checks
         * readiness, so level-triggered descriptors still pending are seen. */
        struct io_uring_sqe *sqe = ring_sqe(r);
        io_uring_prep_poll_add(sqe, r->epfd, POLLIN);
        ring_sqe_set_target(sqe, &r->epoll, 0);
        r->epoll_armed = true;
    }
    if (timeout_ms == 0) {
        io_uring_submit_and_get_events(&r->ring);
    } else {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {timeout_ms / 1000, (long long)(timeout_ms % 1000) * 1000000};
        io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
    }
}

bool ring_dispatch(loop_ring *r)
{
    r->epoll_ready = false;
    r->dispatching = true;
    for (;;) {
        struct io_uring_cqe *cqes[RING_CQE_BATCH];
        completion got[RING_CQE_BATCH];
        unsigned n = io_uring_peek_batch_cqe(&r->ring, cqes, RING_CQE_BATCH);
        for (unsigned i = 0; i < n; i++)
            got[i] = (completion){cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
        /* Handed back before dispatch: handlers may submit, which may
         * complete more. */
        io_uring_cq_advance(&r->ring, n);
        for (unsigned i = 0; i < n; i++) {
            if (!got[i].data)
                continue; /* no target: ignored */
            ring_target *t = (ring_target *)(uintptr_t)(got[i].data & ~(uint64_t)RING_TAG_MASK);
            t->ops->complete(t, (unsigned)(got[i].data & RING_TAG_MASK), got[i].res, got[i].flags);
        }
        if (n < RING_CQE_BATCH)
            break;
    }
    r->dispatching = false;
    return r->epoll_ready;
}

void ring_flush(loop_ring *r, int turns, int wait_ms)
{
    for (int i = 0; i < turns && r->live; i++) {
        ring_enter(r, wait_ms);
        ring_dispatch(r);
    }
    io_uring_submit(&r->ring); /* closes the last completions queued */
}

void ring_settle(loop_ring *r)
{
    if (r->dispatching)
        return;
    io_uring_get_events(&r->ring);
    /* An epoll collection taken here is not lost: the next ring_enter()
     * watches the descriptor again and finds it still ready. */
    ring_dispatch(r);
}
