/* The listener over real loopback sockets: accepting honours the
 * concurrency limit without refusing anyone, and resumes as connections end. */
#include "harness.h"
#include "rt/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct acceptor {
    accept_gate gate;
    int fds[8];
    int n;
} acceptor;

static void took(void *data, void *listener_data, uint32_t tag, int fd)
{
    (void)tag;
    acceptor *a = data;
    assert_true(a->n < 8);
    a->fds[a->n++] = fd;
}

/* A few turns of the real loop, enough for pending accepts to happen. */
static void turns(eddy_loop *loop)
{
    for (int i = 0; i < 5; i++) {
        loop_run_once(loop, true);
        usleep(2000);
    }
}

/* a accepts on a fresh 127.0.0.1 port (written to bound, 64 bytes) under
 * limit (0 = none). */
static void start_accepting(acceptor *a, eddy_loop *loop, unsigned limit, char *bound)
{
    gate_init(&a->gate, loop, limit, took, a);
    assert_int_equal(listener_open(&a->gate, "127.0.0.1:0", NULL, 0, bound, 64), 0);
}

static void limit_holds_new_connections_in_backlog(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    acceptor a = {0};
    char bound[64];
    start_accepting(&a, loop, 2, bound);
    int c1 = connect_tcp(bound), c2 = connect_tcp(bound), c3 = connect_tcp(bound);
    turns(loop);
    assert_int_equal(a.n, 2);          /* the third waits in the backlog */
    assert_int_equal(a.gate.active, 2);
    close(a.fds[0]);                   /* one connection ends... */
    gate_release(&a.gate);
    turns(loop);
    assert_int_equal(a.n, 3);          /* ...and the waiting one is taken */
    /* Nothing was refused: the third client's socket is still connected. */
    assert_int_equal(send(c3, "x", 1, MSG_NOSIGNAL), 1);
    for (int i = 1; i < a.n; i++)
        close(a.fds[i]);
    gate_close_all(&a.gate);
    close(c1);
    close(c2);
    close(c3);
    eddy_loop_free(loop);
}

/* Accepted sockets carry the listener's send low-water mark. */
/* ... and TCP_NODELAY, so a response written in pieces (a proxied or
 * streamed body) never waits on the client's delayed ACK. */
static void accepted_sockets_have_the_notsent_lowat(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    acceptor a = {0};
    char bound[64];
    start_accepting(&a, loop, 0, bound);
    int c = connect_tcp(bound);
    turns(loop);
    assert_int_equal(a.n, 1);
    int lowat = 0;
    socklen_t len = sizeof(lowat);
    assert_int_equal(getsockopt(a.fds[0], IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &len), 0);
    assert_int_equal(lowat, LISTENER_NOTSENT_LOWAT);
    int nodelay = 0;
    len = sizeof(nodelay);
    assert_int_equal(getsockopt(a.fds[0], IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    assert_int_equal(nodelay, 1);
    close(a.fds[0]);
    gate_release(&a.gate);
    gate_close_all(&a.gate);
    close(c);
    eddy_loop_free(loop);
}

static void no_limit_takes_everyone(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    acceptor a = {0};
    char bound[64];
    start_accepting(&a, loop, 0, bound);
    int c[6];
    for (int i = 0; i < 6; i++)
        c[i] = connect_tcp(bound);
    turns(loop);
    assert_int_equal(a.n, 6);
    for (int i = 0; i < 6; i++) {
        close(a.fds[i]);
        close(c[i]);
    }
    gate_close_all(&a.gate);
    eddy_loop_free(loop);
}

static void host_port_forms(void **state)
{
    (void)state;
    char h[64], p[8];
    assert_int_equal(parse_host_port("127.0.0.1:80", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_string_equal(p, "80");
    assert_int_equal(parse_host_port("[::1]:0", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(parse_host_port(":8080", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "");
    assert_int_equal(parse_host_port("::1:80", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(parse_host_port("host", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(parse_host_port("host:", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(parse_host_port("host:99999", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(parse_host_port("host:8x", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(parse_host_port("[::1]80", h, sizeof(h), p, sizeof(p)), -EINVAL);
}

static void port_in_use_is_an_error(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    acceptor a = {0}, b = {0};
    gate_init(&a.gate, loop, 0, took, &a);
    gate_init(&b.gate, loop, 0, took, &b);
    char bound[64];
    assert_int_equal(listener_open(&a.gate, "127.0.0.1:0", NULL, 0, bound, sizeof(bound)), 0);
    assert_int_equal(listener_open(&b.gate, bound, NULL, 0, NULL, 0), -EADDRINUSE);
    gate_close_all(&a.gate);
    eddy_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_holds_new_connections_in_backlog),
        cmocka_unit_test(no_limit_takes_everyone),
        cmocka_unit_test(accepted_sockets_have_the_notsent_lowat),
        cmocka_unit_test(host_port_forms),
        cmocka_unit_test(port_in_use_is_an_error),
    };
    return cmocka_run_group_tests_name("listener", tests, NULL, NULL);
}
