/* The access log over mock connections: one line per response, in the
 * combined log format, written whole; quoting that no field can break;
 * reopening after a rename (log rotation) with no line lost.  The JSON
 * format: test_access_json.c. */
#include "harness.h"

#include "core/access_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* A server logging to a fresh empty file named in path. */
static fixture *logging_fixture(char path[24])
{
    strcpy(path, "/tmp/eddy-access-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    eddy_config cfg = {.access_log = path};
    return fx_new(&cfg);
}

static void one_line_per_response(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = logging_fixture(path);
    free(fx_exchange(fx,
                     "GET /index.html?q=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\n"
                     "User-Agent: tool \"quoted\" \\ caf\xc3\xa9\r\n\r\n"
                     "HEAD /missing HTTP/1.1\r\nHost: t\r\n\r\n",
                     NULL));
    free(fx_exchange(fx, "GARBAGE\r\n\r\n", NULL));
    /* Nothing is written until the buffer fills or a second passes. */
    assert_string_equal(slurp(path), "");
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    const char *log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 3);
    assert_non_null(strstr(log, MOCK_PEER " - - ["));
    assert_non_null(strstr(log, " +0000] \"GET /index.html?q=1 HTTP/1.1\" 200 13 \"http://r/\" "
                                "\"tool \\x22quoted\\x22 \\x5c caf\\xc3\\xa9\"\n"));
    assert_non_null(strstr(log, "\"HEAD /missing HTTP/1.1\" 404 0 \"-\" \"-\"\n"));
    assert_non_null(strstr(log, "\"-\" 400 "));
    fx_free(fx);
    unlink(path);
}

/* A keep-alive connection asks for its peer's address once (a system call
 * on a socket), however many requests it logs. */
static void peer_is_asked_once_per_connection(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = logging_fixture(path);
    mock_stream *m = fx_connect(fx);
    for (int i = 0; i < 3; i++) {
        mock_push_str(m, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n");
        fx_run(fx);
    }
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    assert_int_equal(count_of(slurp(path), MOCK_PEER " - - ["), 3);
    assert_int_equal(mock_peer_asks(m), 1);
    free(fx_output(m));
    fx_free(fx);
    mock_stream_free(m);
    unlink(path);
}

/* Long fields are cut so a line stays whole and within one atomic write. */
static void long_fields_are_cut_to_one_line(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = logging_fixture(path);
    char *req = malloc(12000), *q = req;
    q += sprintf(q, "GET /");
    memset(q, 'p', 1500); /* a long target */
    q += 1500;
    q += sprintf(q, " HTTP/1.1\r\nHost: t\r\nReferer: ");
    memset(q, 'r', 3000);
    q += 3000;
    q += sprintf(q, "\r\nUser-Agent: ");
    memset(q, 'u', 6000);
    q += 6000;
    strcpy(q, "\r\n\r\n");
    free(fx_exchange(fx, req, NULL));
    free(req);
    fx_free(fx);
    const char *log = slurp(path);
    size_t len = strlen(log);
    assert_true(len <= 4096);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_true(len > 3000 && log[len - 2] == '"');
    assert_non_null(strstr(log, "ppp"));
    assert_non_null(strstr(log, "\" 404 "));
    assert_non_null(strstr(log, "rrr\" \"uuu"));
    unlink(path);
}

static void lines_flush_when_the_buffer_fills_and_at_free(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = logging_fixture(path);
    /* Each line is about 90 bytes: enough of them overflow the buffer,
     * and what overflowed is written at once, in whole lines. */
    int n = ACCESS_LOG_BUFFER / 60;
    for (int i = 0; i < n; i++)
        free(fx_exchange(fx, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    const char *log = slurp(path);
    size_t len = strlen(log);
    assert_true(len > 0 && log[len - 1] == '\n');
    assert_true(count_of(log, "\n") < n);
    fx_free(fx); /* the rest */
    assert_int_equal(count_of(slurp(path), "\"GET / HTTP/1.1\" 200 13 \"-\" \"-\"\n"), n);
    unlink(path);
}

/* logrotate renames the file, then SIGUSR1 reopens it: lines logged
 * before (still buffered) go to the renamed file, later ones to a new file
 * at the path; none is lost. */
static void reopen_after_a_rename(void **state)
{
    (void)state;
    char path[24], old[40];
    fixture *fx = logging_fixture(path);
    free(fx_exchange(fx, "GET /before HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    snprintf(old, sizeof(old), "%s.1", path);
    assert_int_equal(rename(path, old), 0);
    assert_int_equal(eddy_server_reopen_logs(fx->srv), 0);
    free(fx_exchange(fx, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    const char *log = slurp(old);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_non_null(strstr(log, "\"GET /before HTTP/1.1\" 404 "));
    log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 1);
    assert_non_null(strstr(log, "\"GET /after HTTP/1.1\" 404 "));
    fx_free(fx);
    unlink(path);
    unlink(old);
}

/* A path that cannot be opened again keeps the file open now. */
static void failed_reopen_keeps_the_old_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/eddy-logdir-XXXXXX", path[64], moved[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(moved, sizeof(moved), "%s.log", dir);
    eddy_config cfg = {.access_log = path};
    fixture *fx = fx_new(&cfg);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(eddy_server_reopen_logs(fx->srv), -ENOENT);
    free(fx_exchange(fx, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    fx_free(fx);
    assert_int_equal(count_of(slurp(moved), "\"GET / HTTP/1.1\" 200 "), 1);
    unlink(moved);
}

/* Without a file to reopen (no log, standard output) there is nothing to do. */
static void reopen_without_a_file(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    assert_int_equal(eddy_server_reopen_logs(fx->srv), 0);
    fx_free(fx);
    eddy_config cfg = {.access_log = "-"};
    fx = fx_new(&cfg);
    assert_int_equal(eddy_server_reopen_logs(fx->srv), 0);
    fx_free(fx);
}

static void unwritable_path_fails_server_creation(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    eddy_server *srv = NULL;
    eddy_config cfg = {.access_log = "/nonexistent-dir/access.log"};
    assert_int_equal(eddy_server_new(loop, &cfg, &srv), -ENOENT);
    assert_null(srv);
    eddy_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_line_per_response),
        cmocka_unit_test(peer_is_asked_once_per_connection),
        cmocka_unit_test(long_fields_are_cut_to_one_line),
        cmocka_unit_test(lines_flush_when_the_buffer_fills_and_at_free),
        cmocka_unit_test(reopen_after_a_rename),
        cmocka_unit_test(failed_reopen_keeps_the_old_file),
        cmocka_unit_test(reopen_without_a_file),
        cmocka_unit_test(unwritable_path_fails_server_creation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
