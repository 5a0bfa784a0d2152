/* URL path to root-relative path: decoding, dot segments, hostile input. */
#include "harness.h"
#include "files/path.h"
#include "core/path.h"

#include <string.h>

/* The two steps a request's path takes: decoded once by the core, then
 * made relative to the root by the file server. */
static int resolve(const char *url, bool dotfiles, resolved_path *rp)
{
    char decoded[512];
    size_t n;
    int st = path_normalize(url, strlen(url), decoded, &n);
    return st ? st : path_resolve(decoded, n, dotfiles, rp);
}

static void expect(const char *url, int status, const char *rel)
{
    resolved_path rp;
    int st = resolve(url, false, &rp);
    if (st != status)
        fail_msg("%s: status %d, wanted %d", url, st, status);
    if (status == 0 && strcmp(rp.rel, rel) != 0)
        fail_msg("%s: resolved to '%s', wanted '%s'", url, rp.rel, rel);
}

static void plain_paths(void **state)
{
    (void)state;
    expect("/", 0, ".");
    expect("", 0, ".");
    expect("/index.html", 0, "index.html");
    expect("/a/b/c.txt", 0, "a/b/c.txt");
    expect("//a///b/", 0, "a/b");
}

static void percent_decoding(void **state)
{
    (void)state;
    expect("/hello%20world.txt", 0, "hello world.txt");
    expect("/%41%62", 0, "Ab");
    expect("/bad%zz", 400, NULL);
    expect("/bad%4", 400, NULL);
    expect("/bad%", 400, NULL);
    expect("/nul%00.html", 400, NULL);
}

static void dot_segments_never_climb_out(void **state)
{
    (void)state;
    expect("/a/./b/../c", 0, "a/c");
    expect("/..", 0, ".");
    expect("/../../etc/passwd", 0, "etc/passwd");
    expect("/a/../../etc/passwd", 0, "etc/passwd");
    expect("/%2e%2e/%2e%2e/etc/passwd", 0, "etc/passwd");
    expect("/a%2f..%2f..%2fetc/passwd", 0, "etc/passwd");
    expect("/a/..%2F..%2Fsecret", 0, "secret");
}

static void dotfiles_are_hidden(void **state)
{
    (void)state;
    expect("/.git/config", 404, NULL);
    expect("/a/.env", 404, NULL);
    expect("/%2egit/config", 404, NULL);
    expect("/...", 404, NULL);
}

static void dotfiles_when_allowed(void **state)
{
    (void)state;
    resolved_path rp;
    assert_int_equal(resolve("/.well-known/x", true, &rp), 0);
    assert_string_equal(rp.rel, ".well-known/x");
    assert_int_equal(resolve("/a/../../.env", true, &rp), 0);
    assert_string_equal(rp.rel, ".env");
}

static void trailing_slash_is_reported(void **state)
{
    (void)state;
    resolved_path rp;
    assert_int_equal(resolve("/dir/", false, &rp), 0);
    assert_true(rp.trailing_slash);
    assert_int_equal(resolve("/dir", false, &rp), 0);
    assert_false(rp.trailing_slash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_paths),
        cmocka_unit_test(percent_decoding),
        cmocka_unit_test(dot_segments_never_climb_out),
        cmocka_unit_test(dotfiles_are_hidden),
        cmocka_unit_test(dotfiles_when_allowed),
        cmocka_unit_test(trailing_slash_is_reported),
    };
    return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
