/* Routing: exact and prefix routes, method limits, and the one decoded
 * path that routes and the file server both see. */
#include "harness.h"
#include "core/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers with the route's name and the path it was given. */
static void named(eddy_request *req, void *data)
{
    char body[256];
    eddy_str p = eddy_request_path(req);
    int n = snprintf(body, sizeof(body), "%s %.*s", (const char *)data, (int)p.len, p.ptr);
    eddy_respond(req, 200, "text/plain", body, (size_t)n);
}

static void add_named(fixture *fx, const char *path, bool prefix, const char *methods,
                  const char *name)
{
    eddy_route r = {.path = path, .prefix = prefix, .methods = methods, .handler = named,
                    .data = (void *)name};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
}

/* The body of the answer to one GET of target. */
static char *get(fixture *fx, const char *method, const char *target)
{
    char req[512];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, target);
    return fx_exchange(fx, req, NULL);
}

static void expect_body(fixture *fx, const char *target, const char *body)
{
    char *out = get(fx, "GET", target);
    const char *b = strstr(out, "\r\n\r\n");
    assert_non_null(b);
    if (strcmp(b + 4, body) != 0)
        fail_msg("GET %s: got '%s', wanted '%s'", target, b + 4, body);
    free(out);
}

static void decoded_paths_reach_their_route(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    add_named(fx, "/sleep", false, NULL, "sleep");
    expect_body(fx, "/sleep", "sleep /sleep");
    expect_body(fx, "/%73leep", "sleep /sleep");
    expect_body(fx, "/x/../sleep", "sleep /sleep");
    expect_body(fx, "/./sleep", "sleep /sleep");
    expect_body(fx, "//sleep", "sleep /sleep");
    expect_body(fx, "/a%2f..%2fsleep?q=1", "sleep /sleep");
    expect_body(fx, "http://t/%2e%2e/sleep", "sleep /sleep");
    /* The file server sees the same decoded path: /x/../ is the index. */
    char *out = get(fx, "GET", "/x/../");
    assert_non_null(strstr(out, FX_INDEX));
    free(out);
    fx_free(fx);
}

static void bad_escapes_are_400_before_routing(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    add_named(fx, "/", true, NULL, "all");
    char *out = get(fx, "GET", "/a%zz");
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    free(out);
    out = get(fx, "GET", "/a%00b");
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    free(out);
    fx_free(fx);
}

static void exact_before_longest_prefix(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    add_named(fx, "/", true, NULL, "root");
    add_named(fx, "/api", true, NULL, "api");
    add_named(fx, "/api/v2/", true, NULL, "v2");
    add_named(fx, "/api/v2/ping", false, NULL, "ping");
    expect_body(fx, "/", "root /");
    expect_body(fx, "/apix", "root /apix");
    expect_body(fx, "/api", "api /api");
    expect_body(fx, "/api/", "api /api/");
    expect_body(fx, "/api/v1/x", "api /api/v1/x");
    expect_body(fx, "/api/v2", "api /api/v2"); /* "/api/v2/" covers what is below it */
    expect_body(fx, "/api/v2/x", "v2 /api/v2/x");
    expect_body(fx, "/api/v2/ping", "ping /api/v2/ping");
    expect_body(fx, "/api/v2/ping/x", "v2 /api/v2/ping/x");
    fx_free(fx);
}

static void unrouted_paths_are_404_without_files(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    add_named(fx, "/only", false, NULL, "only");
    char *out = get(fx, "GET", "/");
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    assert_null(strstr(out, FX_INDEX));
    free(out);
    out = get(fx, "GET", "/only/x");
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    free(out);
    fx_free(fx);
}

static void methods_limit_a_route(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    add_named(fx, "/form", false, "POST,GET", "form");
    char *out = get(fx, "DELETE", "/form");
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(out, "Allow: POST, GET, HEAD\r\n"));
    free(out);
    out = get(fx, "OPTIONS", "/form");
    assert_non_null(strstr(out, "HTTP/1.1 204 No Content\r\n"));
    assert_non_null(strstr(out, "Allow: POST, GET, HEAD\r\n"));
    free(out);
    /* HEAD comes with GET: the answer without its body. */
    out = get(fx, "HEAD", "/form");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\nServer"));
    assert_non_null(strstr(out, "Content-Length: 10\r\n"));
    assert_null(strstr(out, "form /form"));
    free(out);
    out = fx_exchange(fx, "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", NULL);
    assert_non_null(strstr(out, "form /form"));
    free(out);
    /* Another route never takes a method the matching one refuses. */
    out = get(fx, "PUT", "/form");
    assert_non_null(strstr(out, "HTTP/1.1 405"));
    free(out);
    fx_free(fx);
}

static void bad_routes_are_refused(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    eddy_route r = {.path = "nope", .handler = named};
    assert_int_equal(eddy_server_route(fx->srv, &r), -EINVAL);
    r = (eddy_route){.path = "/x"};
    assert_int_equal(eddy_server_route(fx->srv, &r), -EINVAL);
    r = (eddy_route){.path = "/x", .methods = "GET, P(ST", .handler = named};
    assert_int_equal(eddy_server_route(fx->srv, &r), -EINVAL);
    r = (eddy_route){.path = "/x", .methods = " , ", .handler = named};
    assert_int_equal(eddy_server_route(fx->srv, &r), -EINVAL);
    r = (eddy_route){.path = "/x", .handler = named};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    assert_int_equal(eddy_server_route(fx->srv, &r), -EEXIST);
    r.prefix = true; /* the prefix route for the same path is another route */
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    fx_free(fx);
}

static void connect_and_asterisk(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    add_named(fx, "/", true, NULL, "root");
    bool closed;
    char *out = fx_exchange(fx, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", &closed);
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_true(closed);
    free(out);
    out = get(fx, "OPTIONS", "*");
    assert_non_null(strstr(out, "HTTP/1.1 204 No Content\r\n"));
    free(out);
    fx_free(fx);
}

static void normalize(const char *in, int status, const char *want)
{
    char out[256];
    size_t n;
    int st = path_normalize(in, strlen(in), out, &n);
    if (st != status)
        fail_msg("%s: status %d, wanted %d", in, st, status);
    if (status == 0 && (strcmp(out, want) != 0 || n != strlen(want)))
        fail_msg("%s: '%s', wanted '%s'", in, out, want);
    if (status == 0 && !strchr(out, '%'))
        assert_true(path_is_normal(out, n)); /* decoding again changes nothing */
}

static void path_normalization(void **state)
{
    (void)state;
    normalize("", 0, "/");
    normalize("/", 0, "/");
    normalize("/a/b/", 0, "/a/b/");
    normalize("/a/./b/../c", 0, "/a/c");
    normalize("/a/.", 0, "/a/");
    normalize("/a/..", 0, "/");
    normalize("/../../x", 0, "/x");
    normalize("//a///b", 0, "/a/b");
    normalize("/%2e%2E/x", 0, "/x");
    normalize("/a%2Fb", 0, "/a/b");
    normalize("/%25", 0, "/%");
    normalize("a/b", 0, "/a/b");
    normalize("/.a/..b/...", 0, "/.a/..b/...");
    normalize("/x%", 400, NULL);
    normalize("/x%4", 400, NULL);
    normalize("/x%g0", 400, NULL);
    normalize("/x%00", 400, NULL);
    assert_false(path_is_normal("/a/./b", 6));
    assert_false(path_is_normal("/a/..", 5));
    assert_false(path_is_normal("/a%20", 5));
    assert_false(path_is_normal("/a//b", 5));
    assert_true(path_is_normal("/a/.b/..c", 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decoded_paths_reach_their_route),
        cmocka_unit_test(bad_escapes_are_400_before_routing),
        cmocka_unit_test(exact_before_longest_prefix),
        cmocka_unit_test(unrouted_paths_are_404_without_files),
        cmocka_unit_test(methods_limit_a_route),
        cmocka_unit_test(bad_routes_are_refused),
        cmocka_unit_test(connect_and_asterisk),
        cmocka_unit_test(path_normalization),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
