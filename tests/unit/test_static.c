/* File serving through a connection: methods, directories, symlinks and
 * the root boundary, connection semantics around them. */
#include "harness.h"

#include "files/static.h"

#include <errno.h>
#include <limits.h>
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

/* A fixture whose file server takes fc (its root replaced by the
 * fixture's own). */
static fixture *fx_with_files(const eddy_files_config *fc)
{
    fixture *fx = fx_new_without_files(NULL);
    eddy_files_config c = *fc;
    c.root = fx->root;
    assert_int_equal(eddy_files_new(fx->loop, &c, &fx->files), 0);
    /* As harness.c routes its own: every path under "/". */
    eddy_route r = {.path = "/", .prefix = true, .handler = eddy_files_handler, .data = fx->files};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    return fx;
}

static void make_dir(fixture *fx, const char *name)
{
    char p[160];
    in_root(fx, p, sizeof(p), name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void get_expect(fixture *fx, const char *path, const char *status, const char *body)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    char *out = fx_exchange(fx, req, NULL);
    assert_non_null(strstr(out, status));
    if (body) {
        const char *b = strstr(out, "\r\n\r\n");
        assert_non_null(b);
        assert_string_equal(b + 4, body);
    }
    free(out);
}

/* Index names are tried in order; the first regular file wins, and the
 * list replaces index.html rather than adding to it. */
static void index_names_in_order(void **state)
{
    (void)state;
    static const char *const names[] = {"home.html", "index.htm"};
    eddy_files_config fc = {.index = names, .nindex = 2};
    fixture *fx = fx_with_files(&fc);
    make_dir(fx, "both");
    fx_write_file(fx, "both/home.html", "home\n", 5);
    fx_write_file(fx, "both/index.htm", "htm\n", 4);
    make_dir(fx, "htm");
    fx_write_file(fx, "htm/index.htm", "htm\n", 4);
    make_dir(fx, "none");
    fx_write_file(fx, "none/index.html", "html\n", 5);
    make_dir(fx, "dirs"); /* a directory by an index name is not a page */
    make_dir(fx, "dirs/home.html");
    fx_write_file(fx, "dirs/index.htm", "htm\n", 4);

    get_expect(fx, "/both/", "HTTP/1.1 200 OK\r\n", "home\n");
    get_expect(fx, "/htm/", "HTTP/1.1 200 OK\r\n", "htm\n");
    get_expect(fx, "/dirs/", "HTTP/1.1 200 OK\r\n", "htm\n");
    get_expect(fx, "/none/", "HTTP/1.1 404 Not Found\r\n", FX_404);
    get_expect(fx, "/", "HTTP/1.1 404 Not Found\r\n", FX_404); /* root has index.html */
    fx_free(fx);
}

/* No names (NULL, or 0 of them): index.html alone, as before. */
static void default_index_is_index_html(void **state)
{
    (void)state;
    static const char *const names[] = {"home.html"};
    eddy_files_config none = {0}, zero = {.index = names, .nindex = 0};
    const eddy_files_config *configs[] = {&none, &zero};
    for (size_t i = 0; i < 2; i++) {
        fixture *fx = fx_with_files(configs[i]);
        make_dir(fx, "both");
        fx_write_file(fx, "both/home.html", "home\n", 5);
        fx_write_file(fx, "both/index.html", "html\n", 5);
        make_dir(fx, "home");
        fx_write_file(fx, "home/home.html", "home\n", 5);
        get_expect(fx, "/both/", "HTTP/1.1 200 OK\r\n", "html\n");
        get_expect(fx, "/", "HTTP/1.1 200 OK\r\n", FX_INDEX);
        get_expect(fx, "/home/", "HTTP/1.1 404 Not Found\r\n", FX_404);
        fx_free(fx);
    }
}

static int files_new_with(fixture *fx, const char *const *names, unsigned n)
{
    eddy_files_config fc = {.root = fx->root, .index = names, .nindex = n};
    eddy_files *fs = NULL;
    int rc = eddy_files_new(fx->loop, &fc, &fs);
    eddy_files_free(fs);
    return rc;
}

/* Each index name is one file name, and there are at most FILES_MAX_INDEX. */
static void bad_index_names_refused(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    const char *bad[] = {"a/b", "..", ".", "", "/index.html", "a\tb", "a\x7f", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *names[] = {"index.html", bad[i]};
        assert_int_equal(files_new_with(fx, names, 2), -EINVAL);
    }
    char longest[NAME_MAX + 2];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[NAME_MAX + 1] = 0;
    const char *too_long[] = {longest};
    assert_int_equal(files_new_with(fx, too_long, 1), -EINVAL);
    longest[NAME_MAX] = 0;
    assert_int_equal(files_new_with(fx, too_long, 1), 0);

    const char *many[FILES_MAX_INDEX + 1];
    for (size_t i = 0; i < FILES_MAX_INDEX + 1; i++)
        many[i] = "index.html";
    assert_int_equal(files_new_with(fx, many, FILES_MAX_INDEX), 0);
    assert_int_equal(files_new_with(fx, many, FILES_MAX_INDEX + 1), -EINVAL);
    const char *fine[] = {"index.html", "h\xc3\xa9.html", ".index", "index"};
    assert_int_equal(files_new_with(fx, fine, 4), 0);
    fx_free(fx);
}

#define CSS "body{color:red}\n"
#define CSS_GZ "not-really-gzip\n"

static char *get_css_gzip(bool no_precompressed)
{
    eddy_files_config fc = {.no_precompressed = no_precompressed};
    fixture *fx = fx_with_files(&fc);
    fx_write_file(fx, "a.css", CSS, strlen(CSS));
    fx_write_file(fx, "a.css.gz", CSS_GZ, strlen(CSS_GZ)); /* not older */
    char *out = fx_exchange(fx, "GET /a.css HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n",
                            NULL);
    fx_free(fx);
    return out;
}

/* no_precompressed: a.css as if a.css.gz were not there, with no Vary;
 * without it the copy is served, so the test tells the two apart. */
static void no_precompressed_serves_the_file(void **state)
{
    (void)state;
    char *out = get_css_gzip(true);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(out, "Content-Encoding:"));
    assert_null(strstr(out, "Vary:"));
    assert_non_null(strstr(out, "\r\n\r\n" CSS));
    assert_null(strstr(out, CSS_GZ));
    free(out);

    out = get_css_gzip(false);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Encoding: gzip\r\n"));
    assert_non_null(strstr(out, "Vary: Accept-Encoding\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n" CSS_GZ));
    free(out);
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
        cmocka_unit_test(index_names_in_order),
        cmocka_unit_test(default_index_is_index_html),
        cmocka_unit_test(bad_index_names_refused),
        cmocka_unit_test(no_precompressed_serves_the_file),
    };
    return cmocka_run_group_tests_name("static", tests, NULL, NULL);
}
