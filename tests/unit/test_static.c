/* File serving through a connection: methods, directories, symlinks and
 * the root boundary, connection semantics around them. */
#include "harness.h"

#include "files/static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void in_root(fixture *fx, char *path, size_t len, const char *name)
{
    snprintf(path, len, "%s/%s", fx->root, name);
}

static void methods_other_than_get_and_head_get_405(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char *out = fx_exchange(fx, "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(out, "Allow: GET, HEAD, OPTIONS\r\n"));
    free(out);
    fx_free(fx);
}

static void directory_without_slash_redirects(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char dir[128];
    in_root(fx, dir, sizeof(dir), "docs");
    assert_int_equal(mkdir(dir, 0755), 0);
    fx_write_file(fx, "docs/index.html", "docs\n", 5);
    char *out = fx_exchange(fx, "GET /docs?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 301 Moved Permanently\r\n"));
    assert_non_null(strstr(out, "Location: /docs/?x=1\r\n"));
    free(out);
    out = fx_exchange(fx, "GET /docs/ HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "\r\n\r\ndocs\n"));
    free(out);
    char f[160];
    in_root(fx, f, sizeof(f), "docs/index.html");
    unlink(f);
    rmdir(dir);
    fx_free(fx);
}

static void nothing_outside_the_root(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char link[128], inside[128];
    in_root(fx, link, sizeof(link), "escape");
    in_root(fx, inside, sizeof(inside), "same");
    assert_int_equal(symlink("/etc/passwd", link), 0);
    assert_int_equal(symlink("index.html", inside), 0);
    const char *hostile[] = {
        "GET /escape HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /../../../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /.hidden HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        char *out = fx_exchange(fx, hostile[i], NULL);
        assert_null(strstr(out, "root:"));
        assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
        assert_non_null(strstr(out, FX_404));
        free(out);
    }
    char *out = fx_exchange(fx, "GET /same HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n")); /* links inside are followed */
    assert_non_null(strstr(out, FX_INDEX));
    free(out);
    unlink(link);
    unlink(inside);
    fx_free(fx);
}

static void builtin_404_without_404_html(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char p[128];
    in_root(fx, p, sizeof(p), "404.html");
    unlink(p);
    char *out = fx_exchange(fx, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(out, "<h1>404 Not Found</h1>"));
    free(out);
    fx_write_file(fx, "404.html", FX_404, strlen(FX_404));
    fx_free(fx);
}

static void http10_closes_unless_asked(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    bool closed;
    char *out = fx_exchange(fx, "GET / HTTP/1.0\r\n\r\n", &closed);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_true(closed);
    free(out);
    out = fx_exchange(fx, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &closed);
    assert_non_null(strstr(out, "Connection: keep-alive\r\n"));
    assert_false(closed);
    free(out);
    fx_free(fx);
}

static void connection_close_mid_pipeline(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    bool closed;
    char *out = fx_exchange(fx,
                         "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                         "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                         &closed);
    assert_int_equal(count_of(out, "HTTP/1.1 "), 2); /* the third is never answered */
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    assert_true(closed);
    free(out);
    fx_free(fx);
}

static void absolute_form_target(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char *out = fx_exchange(fx, "GET http://t/index.html?q HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, FX_INDEX));
    free(out);
    fx_free(fx);
}

/* A FIFO in the root is not a file to serve, and opening it must not wait
 * for a writer (that would stop the whole loop). */
static void fifo_is_not_served_and_never_blocks(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char p[128];
    in_root(fx, p, sizeof(p), "pipe");
    assert_int_equal(mkfifo(p, 0600), 0);
    char *out = fx_exchange(fx, "GET /pipe HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    free(out);
    int root = open(fx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = static_open_checked(root, "pipe"); /* the fallback opens it at once too */
    assert_true(fd >= 0);
    close(fd);
    close(root);
    unlink(p);
    fx_free(fx);
}

/* Where openat2 is missing, the checked open must keep the same promise:
 * links that stay inside are followed, every way out is refused. */
static void checked_open_stays_beneath(void **state)
{
    (void)state;
    char top[] = "/tmp/eddy-checked-XXXXXX";
    assert_non_null(mkdtemp(top));
    char p[256], q[256];
#define AT(buf, name) (snprintf(buf, sizeof(buf), "%s/%s", top, name), buf)
    assert_int_equal(mkdir(AT(p, "root"), 0700), 0);
    assert_int_equal(mkdir(AT(p, "rootx"), 0700), 0); /* shares root's prefix */
    FILE *fp = fopen(AT(p, "root/in.txt"), "w");
    fputs("in\n", fp);
    fclose(fp);
    fp = fopen(AT(p, "rootx/out.txt"), "w");
    fputs("out\n", fp);
    fclose(fp);
    assert_int_equal(symlink("in.txt", AT(p, "root/rel")), 0);
    assert_int_equal(symlink(AT(q, "root/in.txt"), AT(p, "root/abs")), 0);
    assert_int_equal(symlink("../rootx/out.txt", AT(p, "root/prefix")), 0);
    assert_int_equal(symlink("/etc/passwd", AT(p, "root/passwd")), 0);
    int root = open(AT(p, "root"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(root >= 0);

    const char *inside[] = {"in.txt", "rel", "abs"};
    for (size_t i = 0; i < 3; i++) {
        int fd = static_open_checked(root, inside[i]);
        assert_true(fd >= 0);
        close(fd);
    }
    assert_int_equal(static_open_checked(root, "prefix"), -EXDEV);
    assert_int_equal(static_open_checked(root, "passwd"), -EXDEV);
    assert_int_equal(static_open_checked(root, "../rootx/out.txt"), -EXDEV);
    assert_int_equal(static_open_checked(root, "missing"), -ENOENT);

    close(root);
    const char *names[] = {"root/in.txt", "root/rel", "root/abs", "root/prefix", "root/passwd",
                           "rootx/out.txt"};
    for (size_t i = 0; i < 6; i++)
        unlink(AT(p, names[i]));
    rmdir(AT(p, "root"));
    rmdir(AT(p, "rootx"));
    rmdir(top);
#undef AT
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(methods_other_than_get_and_head_get_405),
        cmocka_unit_test(directory_without_slash_redirects),
        cmocka_unit_test(nothing_outside_the_root),
        cmocka_unit_test(builtin_404_without_404_html),
        cmocka_unit_test(http10_closes_unless_asked),
        cmocka_unit_test(connection_close_mid_pipeline),
        cmocka_unit_test(absolute_form_target),
        cmocka_unit_test(checked_open_stays_beneath),
        cmocka_unit_test(fifo_is_not_served_and_never_blocks),
    };
    return cmocka_run_group_tests_name("static", tests, NULL, NULL);
}
