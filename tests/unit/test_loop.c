/* The executor: timers in deadline order, cancellation, many timers,
 * deferred callbacks on the next turn — all on the virtual clock. */
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct record {
    int order[16];
    int n;
} record;

typedef struct tagged {
    eddy_timer t;
    record *rec;
    int tag;
} tagged;

static void note(void *data)
{
    tagged *x = data;
    x->rec->order[x->rec->n++] = x->tag;
}

static void timers_fire_in_deadline_order(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 0);
    record rec = {0};
    tagged t[5];
    uint64_t after[5] = {50, 10, 30, 10, 20};
    for (int i = 0; i < 5; i++) {
        t[i] = (tagged){.rec = &rec, .tag = i};
        eddy_timer_init(&t[i].t, note, &t[i]);
        assert_int_equal(eddy_timer_start(loop, &t[i].t, after[i]), 0);
    }
    loop_advance(loop, 9);
    assert_int_equal(rec.n, 0);
    loop_advance(loop, 1); /* t=10: both 10 ms timers, in arming order */
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    loop_advance(loop, 100);
    assert_int_equal(rec.n, 5);
    assert_int_equal(rec.order[2], 4);
    assert_int_equal(rec.order[3], 2);
    assert_int_equal(rec.order[4], 0);
    assert_false(loop_alive(loop));
    eddy_loop_free(loop);
}

static void stopped_and_rearmed_timers(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 0);
    record rec = {0};
    tagged a = {.rec = &rec, .tag = 1}, b = {.rec = &rec, .tag = 2};
    eddy_timer_init(&a.t, note, &a);
    eddy_timer_init(&b.t, note, &b);
    eddy_timer_start(loop, &a.t, 10);
    eddy_timer_start(loop, &b.t, 20);
    eddy_timer_stop(loop, &a.t);
    eddy_timer_stop(loop, &a.t); /* stopping twice is harmless */
    assert_false(eddy_timer_armed(&a.t));
    eddy_timer_start(loop, &b.t, 5); /* re-arming moves it */
    loop_advance(loop, 5);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.order[0], 2);
    loop_advance(loop, 100);
    assert_int_equal(rec.n, 1);
    eddy_loop_free(loop);
}

static void count(void *data) { (*(int *)data)++; }

static void hundred_thousand_timers(void **state)
{
    (void)state;
    enum { N = 100000 };
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 0);
    eddy_timer *t = calloc(N, sizeof(*t));
    int fired = 0;
    srand(7);
    for (int i = 0; i < N; i++) {
        eddy_timer_init(&t[i], count, &fired);
        eddy_timer_start(loop, &t[i], (uint64_t)(rand() % 5000) + 1);
    }
    assert_int_equal(loop_pending_timers(loop), N);
    for (int i = 0; i < N; i += 2) /* cancel half, from anywhere in the heap */
        eddy_timer_stop(loop, &t[i]);
    assert_int_equal(loop_pending_timers(loop), N / 2);
    loop_advance(loop, 5000);
    assert_int_equal(fired, N / 2);
    assert_int_equal(loop_pending_timers(loop), 0);
    free(t);
    eddy_loop_free(loop);
}

typedef struct chain {
    eddy_loop *loop;
    int runs;
    eddy_deferred d;
} chain;

static void again(void *data)
{
    chain *c = data;
    if (++c->runs < 3)
        eddy_defer(c->loop, &c->d);
}

static void deferred_runs_on_next_turn(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 0);
    chain c = {loop, 0, {0}};
    eddy_deferred_init(&c.d, again, &c);
    eddy_defer(loop, &c.d);
    eddy_defer(loop, &c.d); /* queued once */
    assert_int_equal(c.runs, 0); /* not run inline */
    loop_run_once(loop, true);
    assert_int_equal(c.runs, 1); /* one per turn: a callback that defers waits */
    loop_run_once(loop, true);
    assert_int_equal(c.runs, 2);
    loop_run_once(loop, true);
    assert_int_equal(c.runs, 3);
    assert_false(loop_alive(loop));
    eddy_loop_free(loop);
}

static void count_run(void *data) { ++*(int *)data; }

static void cancelled_deferred_never_runs(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 0);
    int runs[3] = {0};
    eddy_deferred d[3];
    for (int i = 0; i < 3; i++) {
        eddy_deferred_init(&d[i], count_run, &runs[i]);
        eddy_defer(loop, &d[i]);
    }
    eddy_defer_cancel(loop, &d[1]);
    eddy_defer_cancel(loop, &d[1]); /* twice is harmless */
    loop_run_once(loop, true);
    assert_int_equal(runs[0], 1);
    assert_int_equal(runs[1], 0);
    assert_int_equal(runs[2], 1);
    /* Cancelled, it can be queued again; still queued at free, it runs. */
    eddy_defer(loop, &d[1]);
    eddy_loop_free(loop);
    assert_int_equal(runs[1], 1);
}

static void timers_saturate_and_rearm_in_place(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    loop_use_virtual_clock(loop, 1000);
    int fired = 0;
    eddy_timer t;
    eddy_timer_init(&t, count_run, &fired);
    assert_int_equal(eddy_timer_start(loop, &t, UINT64_MAX), 0);
    assert_int_equal(t.deadline, UINT64_MAX); /* not wrapped into the past */
    loop_advance(loop, 100000);
    assert_int_equal(fired, 0);
    assert_int_equal(eddy_timer_start(loop, &t, 10), 0); /* re-armed earlier */
    assert_int_equal(loop_pending_timers(loop), 1);
    loop_advance(loop, 10);
    assert_int_equal(fired, 1);
    eddy_loop_free(loop);
}

static void run_returns_when_nothing_is_left(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new(); /* real clock */
    int fired = 0;
    eddy_timer t;
    eddy_timer_init(&t, count, &fired);
    eddy_timer_start(loop, &t, 20);
    uint64_t start = eddy_loop_now(loop);
    eddy_loop_run(loop);
    assert_int_equal(fired, 1);
    assert_true(eddy_loop_now(loop) - start >= 20);
    eddy_loop_free(loop);
}

typedef struct watcher {
    eddy_io io;
    eddy_loop *loop;
    struct watcher *victim;
    int calls;
} watcher;

static void on_event(eddy_io *io, uint32_t events)
{
    (void)events;
    watcher *w = io->data;
    w->calls++;
    if (w->victim && w->victim->io.fd >= 0) {
        /* Remove the other watcher while its event waits in this batch. */
        loop_io_del(w->loop, &w->victim->io, false);
        close(w->victim->io.fd);
        w->victim->io.fd = -1;
    }
}

static void watcher_removed_mid_batch_sees_no_event(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    watcher w[2] = {{.loop = loop}, {.loop = loop}};
    w[0].victim = &w[1];
    w[1].victim = &w[0];
    for (int i = 0; i < 2; i++) {
        int fd = eventfd(1, EFD_NONBLOCK); /* readable from the start */
        w[i].io.cb = on_event;
        w[i].io.data = &w[i];
        assert_int_equal(loop_io_add(loop, &w[i].io, fd, EPOLLIN | EPOLLET, false), 0);
    }
    loop_run_once(loop, true);
    /* Whichever ran first removed the other, whose event never arrived. */
    assert_int_equal(w[0].calls + w[1].calls, 1);
    for (int i = 0; i < 2; i++)
        if (w[i].io.fd >= 0) {
            loop_io_del(loop, &w[i].io, false);
            close(w[i].io.fd);
        }
    eddy_loop_free(loop);
}

typedef struct waker {
    eddy_async *a;
    int sends;
} waker;

static void *send_from_thread(void *data)
{
    waker *w = data;
    for (int i = 0; i < w->sends; i++)
        eddy_async_send(w->a);
    return NULL;
}

static void stop_loop(void *data) { eddy_loop_stop(data); }

static void async_wakes_the_loop_from_another_thread(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    eddy_async *a = eddy_async_new(loop, stop_loop, loop);
    assert_non_null(a);
    /* Something to keep the loop alive until the wake-up stops it. */
    eddy_timer guard;
    int fired = 0;
    eddy_timer_init(&guard, count, &fired);
    eddy_timer_start(loop, &guard, 10000);
    waker w = {a, 1000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_from_thread, &w), 0);
    eddy_loop_run(loop); /* returns once the callback ran */
    pthread_join(t, NULL);
    assert_int_equal(fired, 0);
    eddy_timer_stop(loop, &guard);
    eddy_async_free(a);
    eddy_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_deadline_order),
        cmocka_unit_test(stopped_and_rearmed_timers),
        cmocka_unit_test(hundred_thousand_timers),
        cmocka_unit_test(deferred_runs_on_next_turn),
        cmocka_unit_test(cancelled_deferred_never_runs),
        cmocka_unit_test(timers_saturate_and_rearm_in_place),
        cmocka_unit_test(run_returns_when_nothing_is_left),
        cmocka_unit_test(watcher_removed_mid_batch_sees_no_event),
        cmocka_unit_test(async_wakes_the_loop_from_another_thread),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
