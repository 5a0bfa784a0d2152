/* Graceful shutdown on the io_uring path, over real loopback sockets: a
 * request the kernel already received when the shutdown begins is
 * answered (with Connection: close), not dropped with the idle
 * connections, even when its completion has not been dispatched yet; and
 * connections closed as the loop stops are closed in the kernel when
 * eddy_loop_run returns, not only when the loop is freed. */
#include "harness.h"
#include "rt/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUEST "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define PAGE "hello\n"

/* Turns the loop, reading what the server sends, until `until` appears in
 * what was read (or the server closes, when until is NULL); about 2 s at
 * most.  Returns the bytes read, NUL-terminated. */
static size_t collect(eddy_loop *loop, int fd, char *buf, size_t cap, const char *until)
{
    size_t len = 0;
    for (int turn = 0; turn < 2000; turn++) {
        loop_run_once(loop, true);
        ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (n > 0)
            len += (size_t)n;
        buf[len] = 0;
        if (n == 0 && !until)
            return len;
        if (until && strstr(buf, until))
            return len;
        if (n <= 0)
            usleep(1000);
    }
    fail_msg("no %s after 2 s; got: %s", until ? until : "EOF", buf);
    return len;
}

static void set_flag(void *data) { *(int *)data = 1; }

/* A loop with its io_uring set up; the test is skipped without one. */
static eddy_loop *ring_loop(void)
{
    eddy_loop *loop = eddy_loop_new();
    loop_run_once(loop, true); /* sets the ring up */
    if (!loop_ring_get(loop)) {
        eddy_loop_free(loop);
        skip(); /* no io_uring on this kernel */
    }
    return loop;
}

static void answer_ok(eddy_request *req, void *data)
{
    (void)data;
    eddy_respond(req, 200, "text/plain", "ok\n", 3);
}

static void request_received_before_shutdown_is_answered(void **state)
{
    (void)state;
    eddy_loop *loop = ring_loop();
    char root[] = "/tmp/eddy-shutdown-XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[64];
    snprintf(path, sizeof(path), "%s/index.html", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(PAGE, f);
    fclose(f);

    eddy_files_config files_cfg = {.root = root};
    eddy_files *files;
    assert_int_equal(eddy_files_new(loop, &files_cfg, &files), 0);
    eddy_server *srv;
    assert_int_equal(eddy_server_new(loop, NULL, &srv), 0);
    eddy_route r = {.path = "/", .prefix = true, .handler = eddy_files_handler, .data = files};
    assert_int_equal(eddy_server_route(srv, &r), 0);
    char bound[64];
    assert_int_equal(eddy_server_listen(srv, "127.0.0.1:0", bound, sizeof(bound)), 0);
    int fd = connect_tcp(bound);

    /* One keep-alive exchange; then the connection idles with its
     * receive submitted. */
    static char buf[8192];
    assert_int_equal(send(fd, REQUEST, strlen(REQUEST), 0), (ssize_t)strlen(REQUEST));
    collect(loop, fd, buf, sizeof(buf), PAGE);
    for (int i = 0; i < 5; i++)
        loop_run_once(loop, true);

    /* The next request reaches the kernel, and the shutdown begins before
     * the loop has turned: the receive has completed (or will, once asked)
     * but nothing has been dispatched. */
    assert_int_equal(send(fd, REQUEST, strlen(REQUEST), 0), (ssize_t)strlen(REQUEST));
    int done = 0;
    eddy_server_shutdown(srv, set_flag, &done);
    size_t len = collect(loop, fd, buf, sizeof(buf), NULL);
    assert_true(len > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 "));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_non_null(strstr(buf, PAGE));
    for (int i = 0; i < 2000 && !done; i++)
        loop_run_once(loop, true);
    assert_int_equal(done, 1);

    close(fd);
    eddy_server_free(srv);
    eddy_files_free(files);
    eddy_loop_free(loop);
    unlink(path);
    rmdir(root);
}

static void stop_loop(void *data) { eddy_loop_stop(data); }

/* A keep-alive connection closes at the end of the drain; the server,
 * drained, stops the loop from that same turn.  The client sees its FIN
 * once eddy_loop_run has returned, with the loop not yet freed (a program's
 * drained worker waits there for the others). */
static void stopped_loop_has_closed_its_connections(void **state)
{
    (void)state;
    eddy_loop *loop = ring_loop();
    eddy_server *srv;
    assert_int_equal(eddy_server_new(loop, NULL, &srv), 0);
    eddy_route r = {.path = "/", .prefix = true, .handler = answer_ok};
    assert_int_equal(eddy_server_route(srv, &r), 0);
    char bound[64];
    assert_int_equal(eddy_server_listen(srv, "127.0.0.1:0", bound, sizeof(bound)), 0);
    int fd = connect_tcp(bound);
    static char buf[4096];
    assert_int_equal(send(fd, REQUEST, strlen(REQUEST), 0), (ssize_t)strlen(REQUEST));
    collect(loop, fd, buf, sizeof(buf), "ok\n");
    eddy_server_shutdown(srv, stop_loop, loop);
    eddy_loop_run(loop); /* the drain's grace, then the close, then the stop */
    char c;
    assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), 0); /* EOF, not EAGAIN */
    close(fd);
    eddy_server_free(srv);
    eddy_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_received_before_shutdown_is_answered),
        cmocka_unit_test(stopped_loop_has_closed_its_connections),
    };
    return cmocka_run_group_tests_name("shutdown_ring", tests, NULL, NULL);
}
