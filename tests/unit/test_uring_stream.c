/* The io_uring socket stream over real loopback TCP: bytes in order
 * whatever their pacing, input held back while its owner does not read, a
 * bulk upload, EOF and resets (also while input is held, and after the
 * peer's FIN); writes staged and sent with the turn,
 * -EAGAIN then WRITABLE while one is in flight, a full socket, and closes
 * that still deliver (or, abortive, drop) what was written.  The tests of
 * what both socket streams must report alike run on the epoll one too. */
#include "harness.h"
#include "rt/ring.h"
#include "rt/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct owner {
    unsigned events;   /* every event seen, or'ed */
    unsigned calls;
    bool reads;        /* read on READABLE */
    char got[256 * 1024];
    size_t got_len;
    ssize_t last;      /* the last read's result */
    size_t read_size;  /* bytes asked per read */
} owner;

static void on_ready(eddy_stream *s, unsigned events)
{
    owner *o = s->owner;
    o->events |= events;
    o->calls++;
    if (!o->reads || !(events & STREAM_READABLE))
        return;
    for (;;) {
        size_t want = o->read_size;
        if (want > sizeof(o->got) - o->got_len)
            want = sizeof(o->got) - o->got_len;
        ssize_t n = stream_read(s, o->got + o->got_len, want);
        o->last = n;
        if (n <= 0)
            return;
        o->got_len += (size_t)n;
        if ((size_t)n < want && !(o->events & STREAM_RDHUP))
            return; /* short: drained, as conn.c assumes until the peer's
                       FIN, after which only reading finds the EOF */
    }
}

/* Which socket stream pair_on() makes: the ring's, or the epoll one, for
 * the tests of what both must do alike (the second group in main()). */
static bool on_epoll;

static int use_epoll(void **state)
{
    (void)state;
    on_epoll = true;
    return 0;
}

typedef struct pair {
    eddy_loop *loop;
    bool owns_loop;
    eddy_stream *s;
    int peer;
    owner o;
} pair;

/* A ring-driven stream on one end of a loopback TCP connection, on
 * `loop`, or on a loop of its own when that is NULL.  NULL without
 * io_uring. */
static pair *pair_on(eddy_loop *loop)
{
    pair *p = calloc(1, sizeof(*p));
    p->owns_loop = !loop;
    p->loop = loop ? loop : eddy_loop_new();
    if (on_epoll)
        eddy_loop_set_io_uring(p->loop, false);
    loop_run_once(p->loop, true); /* sets the ring up */
    if (!loop_ring_get(p->loop) && !on_epoll) {
        if (p->owns_loop)
            eddy_loop_free(p->loop);
        free(p);
        return NULL;
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof(sa);
    /* Small buffers, set before the connection exists (a window cannot
     * shrink after), so a socket fills with little data. */
    int small = 16 * 1024;
    setsockopt(l, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    p->peer = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(p->peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(connect(p->peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    assert_true(fd >= 0);
    close(l);
    assert_int_equal(socket_stream_new(p->loop, fd, &p->s), 0);
    p->s->owner = &p->o;
    p->s->on_ready = on_ready;
    p->o.reads = true;
    p->o.read_size = 64 * 1024;
    p->o.last = 1; /* no read yet */
    return p;
}

static void pair_free(pair *p)
{
    if (p->s)
        stream_close(p->s);
    close(p->peer);
    if (p->owns_loop)
        eddy_loop_free(p->loop);
    free(p);
}

#define PAIR_OR_SKIP(p)                                                                            \
    pair *p = pair_on(NULL);                                                                       \
    if (!p)                                                                                        \
        skip(); /* no io_uring on this kernel */

/* Turns of the loop until cond holds (or about two seconds pass). */
#define TURN_UNTIL(p, cond)                                                                        \
    do {                                                                                           \
        for (int turn_ = 0; turn_ < 2000 && !(cond); turn_++) {                                    \
            loop_run_once((p)->loop, true);                                                        \
            if (!(cond))                                                                           \
                usleep(1000);                                                                      \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static void fill(char *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (from + i) % 23);
}

static bool pattern_ok(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (char)('a' + i % 23))
            return false;
    return true;
}

/* Reads from the peer until `want` bytes came or it ends. */
static size_t peer_read(pair *p, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd pf = {.fd = p->peer, .events = POLLIN};
        if (poll(&pf, 1, 0) == 0) {
            loop_run_once(p->loop, true);
            if (poll(&pf, 1, 20) == 0)
                continue;
        }
        ssize_t n = recv(p->peer, buf + got, want - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* The peer leaves abortively: the stream's socket gets a reset. */
static void reset_peer(pair *p)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(p->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(p->peer);
    p->peer = socket(AF_INET, SOCK_STREAM, 0); /* for pair_free */
}

static void bytes_arrive_in_order_one_at_a_time(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    char msg[64];
    fill(msg, sizeof(msg), 0);
    for (size_t i = 0; i < sizeof(msg); i++) {
        assert_int_equal(send(p->peer, msg + i, 1, 0), 1);
        TURN_UNTIL(p, p->o.got_len == i + 1);
    }
    assert_true(pattern_ok(p->o.got, p->o.got_len));
    assert_int_equal(p->o.last, 1); /* short reads: the socket was drained */
    pair_free(p);
}

static void unread_input_waits_for_its_owner(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    p->o.reads = false; /* a handler holds the request */
    char msg[6000];
    fill(msg, sizeof(msg), 0);
    assert_int_equal(send(p->peer, msg, 100, 0), 100);
    TURN_UNTIL(p, p->o.events & STREAM_READABLE);
    assert_int_equal(send(p->peer, msg + 100, sizeof(msg) - 100, 0), (ssize_t)sizeof(msg) - 100);
    for (int i = 0; i < 20; i++)
        loop_run_once(p->loop, true);
    assert_int_equal(p->o.calls, 1); /* nothing more taken from the socket */
    /* The owner reads at last, in small pieces: all of it, in order. */
    p->o.read_size = 7;
    p->o.reads = true;
    on_ready(p->s, STREAM_READABLE);
    TURN_UNTIL(p, p->o.got_len == sizeof(msg));
    assert_true(pattern_ok(p->o.got, p->o.got_len));
    pair_free(p);
}

static void bulk_upload_read_whole(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[200 * 1024];
    fill(big, sizeof(big), 0);
    size_t sent = 0;
    while (sent < sizeof(big)) {
        ssize_t n = send(p->peer, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
        loop_run_once(p->loop, true);
    }
    TURN_UNTIL(p, p->o.got_len == sizeof(big));
    assert_true(pattern_ok(p->o.got, p->o.got_len));
    pair_free(p);
}

static void peer_end_is_eof(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    assert_int_equal(send(p->peer, "abc", 3, 0), 3);
    shutdown(p->peer, SHUT_WR);
    TURN_UNTIL(p, p->o.last == 0);
    assert_int_equal(p->o.got_len, 3);
    assert_true(p->o.events & STREAM_RDHUP);
    pair_free(p);
}

static void peer_reset_is_hup(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    reset_peer(p);
    TURN_UNTIL(p, p->o.events & STREAM_HUP);
    assert_int_equal(p->o.last, -ECONNRESET);
    pair_free(p);
}

/* The peer closes (FIN) and the owner has seen the EOF, but its answer
 * goes on (a stream of events, an answer given later): the peer's kernel
 * answers the next bytes with a reset, which must reach the owner as HUP
 * at once, not wait for a later write to fail. */
static void reset_after_eof_reaches_the_owner(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    close(p->peer);
    p->peer = socket(AF_INET, SOCK_STREAM, 0); /* for pair_free */
    TURN_UNTIL(p, p->o.last == 0);
    assert_true(p->o.events & STREAM_RDHUP);
    assert_false(p->o.events & STREAM_HUP);
    struct iovec v = {"data: 1\n\n", 9};
    assert_int_equal(stream_writev(p->s, &v, 1, false), 9);
    TURN_UNTIL(p, p->o.events & STREAM_HUP);
    pair_free(p);
}

/* A handler holds a request with more input behind it, so no receive is
 * armed: a reset must still reach the owner. */
static void held_input_still_notices_reset(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    p->o.reads = false;
    static const char req[] = "GET / HTTP/1.1\r\n\r\nGET /";
    assert_int_equal(send(p->peer, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    TURN_UNTIL(p, p->o.events & STREAM_READABLE);
    reset_peer(p);
    TURN_UNTIL(p, p->o.events & STREAM_HUP);
    /* The held bytes are still there to read, then the reset. */
    char buf[64];
    assert_int_equal(stream_read(p->s, buf, sizeof(buf)), (ssize_t)sizeof(req) - 1);
    assert_int_equal(stream_read(p->s, buf, sizeof(buf)), -ECONNRESET);
    pair_free(p);
}

/* The peer's FIN while input is held: told once, and the bytes sent before
 * it are all read before the EOF. */
static void held_input_notices_fin_once(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    p->o.reads = false;
    char msg[3000];
    fill(msg, sizeof(msg), 0);
    assert_int_equal(send(p->peer, msg, 100, 0), 100);
    TURN_UNTIL(p, p->o.events & STREAM_READABLE);
    assert_int_equal(send(p->peer, msg + 100, sizeof(msg) - 100, 0), (ssize_t)sizeof(msg) - 100);
    shutdown(p->peer, SHUT_WR);
    TURN_UNTIL(p, p->o.events & STREAM_RDHUP);
    unsigned calls = p->o.calls;
    for (int i = 0; i < 20; i++)
        loop_run_once(p->loop, true);
    assert_int_equal(p->o.calls, calls); /* not reported again and again */
    p->o.reads = true;
    on_ready(p->s, STREAM_READABLE);
    TURN_UNTIL(p, p->o.last == 0);
    assert_int_equal(p->o.got_len, sizeof(msg));
    assert_true(pattern_ok(p->o.got, p->o.got_len));
    pair_free(p);
}

/* The same when the FIN came behind input the owner holds, so a poll saw
 * it: a reset after it still reaches the owner, while the input is held
 * and after it was all read. */
static void reset_after_fin_behind_held_input_reaches_the_owner(void **state)
{
    (void)state;
    for (int read_first = 0; read_first < 2; read_first++) {
        PAIR_OR_SKIP(p);
        p->o.reads = false;
        char msg[100];
        fill(msg, sizeof(msg), 0);
        assert_int_equal(send(p->peer, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
        TURN_UNTIL(p, p->o.events & STREAM_READABLE);
        close(p->peer);
        p->peer = socket(AF_INET, SOCK_STREAM, 0); /* for pair_free */
        TURN_UNTIL(p, p->o.events & STREAM_RDHUP);
        if (read_first) {
            p->o.reads = true;
            on_ready(p->s, STREAM_READABLE);
            TURN_UNTIL(p, p->o.last == 0);
            assert_int_equal(p->o.got_len, sizeof(msg));
        }
        assert_false(p->o.events & STREAM_HUP);
        struct iovec v = {"data: 1\n\n", 9};
        assert_int_equal(stream_writev(p->s, &v, 1, false), 9);
        TURN_UNTIL(p, p->o.events & STREAM_HUP);
        pair_free(p);
    }
}

static void write_in_flight_then_writable(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    char msg[300];
    fill(msg, sizeof(msg), 0);
    struct iovec a = {msg, 100}, b = {msg + 100, 200};
    assert_int_equal(stream_writev(p->s, &a, 1, false), 100);
    /* Staged, not yet sent: the next write must wait its turn. */
    assert_int_equal(stream_writev(p->s, &b, 1, false), -EAGAIN);
    TURN_UNTIL(p, p->o.events & STREAM_WRITABLE);
    assert_int_equal(stream_writev(p->s, &b, 1, false), 200);
    char got[300];
    assert_int_equal(peer_read(p, got, sizeof(got)), sizeof(got));
    assert_true(pattern_ok(got, sizeof(got)));
    pair_free(p);
}

/* Fills the socket with a large (direct) write until it takes no more. */
static size_t fill_socket(pair *p, char *big, size_t cap)
{
    size_t off = 0;
    for (;;) {
        struct iovec v = {big + off, cap - off > 65536 ? 65536 : cap - off};
        ssize_t n = stream_writev(p->s, &v, 1, false);
        if (n == -EAGAIN)
            break;
        assert_true(n > 0);
        off += (size_t)n;
        assert_true(off < cap);
        TURN_UNTIL(p, true);
    }
    return off;
}

/* The peer takes up to `chunk` bytes at a time, without waiting, and the
 * loop turns once after each. */
static void peer_take(pair *p, char *got, size_t *have, size_t chunk)
{
    ssize_t n = recv(p->peer, got + *have, chunk, MSG_DONTWAIT);
    if (n > 0)
        *have += (size_t)n;
    loop_run_once(p->loop, true);
}

static void full_socket_keeps_order(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[1024 * 1024], got[1024 * 1024];
    fill(big, sizeof(big), 0);
    size_t off = fill_socket(p, big, sizeof(big) - 1000);
    p->o.events = 0;
    /* The peer reads: WRITABLE comes, and small writes follow in order. */
    size_t have = 0;
    while (!(p->o.events & STREAM_WRITABLE))
        peer_take(p, got, &have, sizeof(got) - have);
    for (int i = 0; i < 10; i++) {
        struct iovec v = {big + off, 100};
        ssize_t n;
        while ((n = stream_writev(p->s, &v, 1, false)) == -EAGAIN)
            peer_take(p, got, &have, sizeof(got) - have);
        assert_int_equal(n, 100);
        off += 100;
    }
    have += peer_read(p, got + have, off - have);
    assert_int_equal(have, off);
    assert_true(pattern_ok(got, have));
    pair_free(p);
}

/* A large write the socket took only part of, with no -EAGAIN after it:
 * the owner still hears when there is room (conn.c's stage flush stops
 * at such a write and waits; with nothing to wake it, a proxied body
 * stalled). */
static void short_write_then_writable(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[1024 * 1024], got[1024 * 1024];
    fill(big, sizeof(big), 0);
    struct iovec v = {big, sizeof(big)};
    ssize_t n = stream_writev(p->s, &v, 1, false);
    assert_true(n > 0 && (size_t)n < sizeof(big));
    p->o.events = 0;
    size_t have = 0;
    for (int i = 0; i < 2000 && !(p->o.events & STREAM_WRITABLE); i++) {
        peer_take(p, got, &have, sizeof(got) - have);
        usleep(500);
    }
    assert_true(p->o.events & STREAM_WRITABLE);
    have += peer_read(p, got + have, (size_t)n - have);
    assert_int_equal(have, (size_t)n);
    assert_true(pattern_ok(got, have));
    pair_free(p);
}

static void close_delivers_staged_and_remaining_bytes(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[1024 * 1024], got[1024 * 1024];
    fill(big, sizeof(big), 0);
    size_t off = fill_socket(p, big, sizeof(big) - 1000);
    /* The peer takes just enough for the socket to have room again, so a
     * staged write is likely taken only in part. */
    size_t have = 0;
    p->o.events = 0;
    while (!(p->o.events & STREAM_WRITABLE))
        peer_take(p, got, &have, 4096);
    struct iovec v = {big + off, RING_SEND_MAX};
    assert_int_equal(stream_writev(p->s, &v, 1, false), RING_SEND_MAX);
    off += RING_SEND_MAX;
    stream_close(p->s); /* graceful: everything still goes */
    p->s = NULL;
    have += peer_read(p, got + have, off - have);
    assert_int_equal(have, off);
    assert_true(pattern_ok(got, have));
    char c;
    assert_int_equal(peer_read(p, &c, 1), 0); /* then FIN */
    pair_free(p);
}

static void reset_close_drops_unsent(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[1024 * 1024];
    fill(big, sizeof(big), 0);
    fill_socket(p, big, sizeof(big));
    stream_reset(p->s);
    stream_close(p->s);
    p->s = NULL;
    for (int i = 0; i < 5; i++)
        loop_run_once(p->loop, true);
    ssize_t n;
    static char sink[1 << 20];
    while ((n = recv(p->peer, sink, sizeof(sink), 0)) > 0)
        ;
    assert_true(n < 0 && errno == ECONNRESET);
    assert_int_equal(ring_live(loop_ring_get(p->loop)), 0); /* nothing left behind */
    pair_free(p);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Bytes a gracefully closed stream holds for a peer that never reads are
 * dropped after ORPHAN_SEND_MS, and the stream with them. */
static void orphan_send_is_bounded(void **state)
{
    (void)state;
    PAIR_OR_SKIP(p);
    static char big[1024 * 1024];
    fill(big, sizeof(big), 0);
    fill_socket(p, big, sizeof(big) - 1000);
    /* Staged writes until one is refused for good: the stream then keeps
     * its bytes, waiting for room the peer never makes. */
    int refused = 0;
    while (refused < 100) {
        struct iovec v = {big, RING_SEND_MAX};
        if (stream_writev(p->s, &v, 1, false) == -EAGAIN)
            refused++;
        else
            refused = 0;
        loop_run_once(p->loop, true);
        usleep(1000);
    }
    stream_close(p->s);
    p->s = NULL;
    loop_ring *r = loop_ring_get(p->loop);
    uint64_t start = now_ms();
    while (ring_live(r) && now_ms() - start < ORPHAN_SEND_MS + 3000) {
        loop_run_once(p->loop, true);
        usleep(5000);
    }
    assert_int_equal(ring_live(r), 0);
    assert_true(now_ms() - start >= ORPHAN_SEND_MS - 1000);
    pair_free(p);
}

/* More connections with data in one turn than the ring has receive
 * buffers: every one still gets its bytes. */
static void more_senders_than_buffers(void **state)
{
    (void)state;
    enum { N = 100 };
    pair *first = pair_on(NULL);
    if (!first)
        skip();
    static pair *ps[N];
    ps[0] = first;
    for (int i = 1; i < N; i++)
        assert_non_null(ps[i] = pair_on(first->loop));
    loop_run_once(first->loop, true); /* every receive armed */
    char msg[100];
    fill(msg, sizeof(msg), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(send(ps[i]->peer, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
    usleep(20000); /* all of it waiting before the next turn */
    bool all = false;
    for (int turn = 0; turn < 1000 && !all; turn++) {
        loop_run_once(first->loop, true);
        all = true;
        for (int i = 0; i < N; i++)
            all = all && ps[i]->o.got_len == sizeof(msg);
    }
    for (int i = 0; i < N; i++)
        assert_true(ps[i]->o.got_len == sizeof(msg) && pattern_ok(ps[i]->o.got, sizeof(msg)));
    for (int i = N - 1; i >= 0; i--)
        pair_free(ps[i]); /* the first, which owns the loop, last */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_arrive_in_order_one_at_a_time),
        cmocka_unit_test(unread_input_waits_for_its_owner),
        cmocka_unit_test(bulk_upload_read_whole),
        cmocka_unit_test(peer_end_is_eof),
        cmocka_unit_test(peer_reset_is_hup),
        cmocka_unit_test(reset_after_eof_reaches_the_owner),
        cmocka_unit_test(held_input_still_notices_reset),
        cmocka_unit_test(held_input_notices_fin_once),
        cmocka_unit_test(reset_after_fin_behind_held_input_reaches_the_owner),
        cmocka_unit_test(write_in_flight_then_writable),
        cmocka_unit_test(full_socket_keeps_order),
        cmocka_unit_test(short_write_then_writable),
        cmocka_unit_test(close_delivers_staged_and_remaining_bytes),
        cmocka_unit_test(reset_close_drops_unsent),
        cmocka_unit_test(more_senders_than_buffers),
        cmocka_unit_test(orphan_send_is_bounded),
    };
    /* The same events from the epoll stream. */
    const struct CMUnitTest epoll_tests[] = {
        cmocka_unit_test(bytes_arrive_in_order_one_at_a_time),
        cmocka_unit_test(peer_end_is_eof),
        cmocka_unit_test(peer_reset_is_hup),
        cmocka_unit_test(reset_after_eof_reaches_the_owner),
        cmocka_unit_test(held_input_still_notices_reset),
        cmocka_unit_test(held_input_notices_fin_once),
        cmocka_unit_test(reset_after_fin_behind_held_input_reaches_the_owner),
        cmocka_unit_test(full_socket_keeps_order),
        cmocka_unit_test(short_write_then_writable),
    };
    int failed = cmocka_run_group_tests_name("io_uring stream", tests, NULL, NULL);
    return failed + cmocka_run_group_tests_name("epoll stream", epoll_tests, use_epoll, NULL);
}
