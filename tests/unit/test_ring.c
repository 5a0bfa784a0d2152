/* The io_uring ring hands each completion to the target its submission
 * named, with its tag, whatever the target is: here a probe that is not a
 * stream.  A NOP and a failing read reach it with every tag and their
 * results, before_wait() runs once per ring_want_arm() and its
 * submissions go with that wait, a submission without a target is
 * ignored, and the ring's own target, the epoll watch, still reports. */
#include "harness.h"
#include "rt/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NOP_TAG_FROM_HOOK 6

typedef struct probe {
    char before; /* the target is not first: handlers get its address back */
    ring_target target;
    loop_ring *r;
    unsigned calls;
    unsigned tag_seen;  /* a bit per tag completed */
    unsigned last_tag;
    int last_res;
    unsigned hooks;     /* before_wait() runs */
} probe;

static probe *of_target(ring_target *t)
{
    return (probe *)(void *)((char *)t - offsetof(probe, target));
}

static void complete(ring_target *t, unsigned tag, int res, unsigned flags)
{
    probe *p = of_target(t);
    p->calls++;
    p->tag_seen |= 1u << tag;
    p->last_tag = tag;
    p->last_res = res;
}

static void before_wait(ring_target *t)
{
    probe *p = of_target(t);
    p->hooks++;
    struct io_uring_sqe *sqe = ring_sqe(p->r);
    io_uring_prep_nop(sqe);
    ring_sqe_set_target(sqe, &p->target, NOP_TAG_FROM_HOOK);
}

static const ring_target_ops probe_ops = {complete, before_wait};

typedef struct rig {
    int epfd;
    loop_ring *r;
    probe p;
} rig;

static int setup(void **state)
{
    rig *g = calloc(1, sizeof(*g));
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(g->epfd >= 0);
    g->r = ring_new(g->epfd);
    g->p.target.ops = &probe_ops;
    g->p.r = g->r;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    rig *g = *state;
    ring_free(g->r);
    close(g->epfd);
    free(g);
    return 0;
}

#define RING_OR_SKIP(g)                                                                            \
    rig *g = *state;                                                                               \
    if (!g->r)                                                                                     \
        skip(); /* no io_uring on this kernel */

/* Enters and dispatches until the probe has `calls` completions (about
 * two seconds at most); true if the epoll watch reported meanwhile. */
static bool run_until(rig *g, unsigned calls)
{
    bool epoll_ready = false;
    for (int i = 0; i < 20 && g->p.calls < calls; i++) {
        ring_enter(g->r, 100);
        epoll_ready |= ring_dispatch(g->r);
    }
    assert_int_equal(g->p.calls, calls);
    return epoll_ready;
}

static void nop_reaches_its_target_with_tag_and_result(void **state)
{
    RING_OR_SKIP(g);
    struct io_uring_sqe *sqe = ring_sqe(g->r);
    io_uring_prep_nop(sqe);
    ring_sqe_set_target(sqe, &g->p.target, 5);
    assert_false(run_until(g, 1)); /* nothing for the epoll watch */
    assert_int_equal(g->p.last_tag, 5);
    assert_int_equal(g->p.last_res, 0);
    assert_int_equal(g->p.hooks, 0);
}

static void every_tag_and_a_failure_come_back(void **state)
{
    RING_OR_SKIP(g);
    for (unsigned tag = 0; tag <= RING_TAG_MASK; tag++) {
        struct io_uring_sqe *sqe = ring_sqe(g->r);
        io_uring_prep_nop(sqe);
        ring_sqe_set_target(sqe, &g->p.target, tag);
    }
    run_until(g, RING_TAG_MASK + 1);
    assert_int_equal(g->p.tag_seen, (1u << (RING_TAG_MASK + 1)) - 1);
    /* A read of no descriptor: its error is the completion's result. */
    char c;
    struct io_uring_sqe *sqe = ring_sqe(g->r);
    io_uring_prep_read(sqe, -1, &c, 1, 0);
    ring_sqe_set_target(sqe, &g->p.target, 3);
    run_until(g, RING_TAG_MASK + 2);
    assert_int_equal(g->p.last_tag, 3);
    assert_int_equal(g->p.last_res, -EBADF);
}

static void before_wait_submits_with_the_wait(void **state)
{
    RING_OR_SKIP(g);
    assert_int_equal(ring_want_arm(g->r, &g->p.target), 0);
    assert_int_equal(g->p.hooks, 0); /* not yet: just before the wait */
    ring_enter(g->r, 1000);          /* returns once the hook's NOP completed */
    assert_int_equal(g->p.hooks, 1);
    ring_dispatch(g->r);
    assert_int_equal(g->p.calls, 1);
    assert_int_equal(g->p.last_tag, NOP_TAG_FROM_HOOK);
    /* Once per ring_want_arm(). */
    ring_enter(g->r, 0);
    ring_dispatch(g->r);
    assert_int_equal(g->p.hooks, 1);
    assert_int_equal(g->p.calls, 1);
}

static void untargeted_is_ignored_and_epoll_still_reports(void **state)
{
    RING_OR_SKIP(g);
    struct io_uring_sqe *sqe = ring_sqe(g->r);
    io_uring_prep_nop(sqe);
    ring_sqe_set_target(sqe, NULL, 0);
    int efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(efd >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    assert_int_equal(epoll_ctl(g->epfd, EPOLL_CTL_ADD, efd, &ev), 0);
    bool ready = false;
    for (int i = 0; i < 20 && !ready; i++) {
        ring_enter(g->r, 100);
        ready = ring_dispatch(g->r);
    }
    assert_true(ready);
    assert_int_equal(g->p.calls, 0);
    close(efd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nop_reaches_its_target_with_tag_and_result, setup, teardown),
        cmocka_unit_test_setup_teardown(every_tag_and_a_failure_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(before_wait_submits_with_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(untargeted_is_ignored_and_epoll_still_reports, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
