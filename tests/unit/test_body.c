/* Request bodies handed to routes that take them (eddy_server_route_body):
 * whole, chunked, byte by byte, over the limit, held by a handler; and
 * dropped for every other route. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int calls;

/* Answers with what it got: the body's length, then the body. */
static void echo(eddy_request *req, void *data)
{
    (void)data;
    calls++;
    eddy_str b = eddy_request_body(req);
    char *out = malloc(b.len + 32);
    int n = snprintf(out, 32, "%zu:", b.len);
    memcpy(out + n, b.ptr, b.len);
    eddy_respond(req, 200, "text/plain", out, (size_t)n + b.len);
    free(out);
}

static fixture *body_fixture(const eddy_config *cfg)
{
    calls = 0;
    fixture *fx = fx_new(cfg);
    fx_route(fx, "/echo", echo, NULL, true);
    fx_route(fx, "/plain", echo, NULL, false);
    return fx;
}

static void content_length_and_chunked_bodies(void **state)
{
    (void)state;
    fixture *fx = body_fixture(NULL);
    const char *req =
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\nchunk\r\n6\r\ned bod\r\n1\r\ny\r\n0\r\nX-Trailer: t\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        bool closed;
        char *out = bytewise ? fx_exchange_bytewise(fx, req, &closed) : fx_exchange(fx, req, &closed);
        assert_false(closed);
        char *a = strstr(out, "\r\n\r\n11:hello world");
        char *b = strstr(out, "\r\n\r\n12:chunked body");
        char *c0 = strstr(out, "\r\n\r\n0:");
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c0);
        assert_true(a < b && b < c0);
        assert_int_equal(count_of(out, "\r\n\r\n0:"), 2); /* empty body, and none at all */
        free(out);
    }
    assert_int_equal(calls, 8);
    fx_free(fx);
}

static void other_routes_never_see_a_body(void **state)
{
    (void)state;
    fixture *fx = body_fixture(NULL);
    char *out = fx_exchange(fx,
                            "POST /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                            "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n",
                            NULL);
    assert_non_null(strstr(out, "\r\n\r\n0:"));
    assert_non_null(strstr(out, FX_INDEX)); /* the body was read past, not parsed */
    free(out);
    fx_free(fx);
}

static void body_over_the_limit_never_reaches_the_handler(void **state)
{
    (void)state;
    eddy_config cfg = {.max_body = 8};
    fixture *fx = body_fixture(&cfg);
    bool closed;
    char *out = fx_exchange(fx,
                            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
                            &closed);
    assert_non_null(strstr(out, "HTTP/1.1 413 "));
    assert_true(closed);
    free(out);
    out = fx_exchange(fx, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n12345678", NULL);
    assert_non_null(strstr(out, "\r\n\r\n8:12345678")); /* at the limit: fine */
    free(out);
    assert_int_equal(calls, 1);
    fx_free(fx);
}

/* A handler that keeps the request: the body stays valid until it answers. */
static eddy_request *held;
static void hold(eddy_request *req, void *data)
{
    (void)data;
    held = req;
}

static void held_request_keeps_its_body(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/hold", hold, NULL, true);
    held = NULL;
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n");
    mock_push_str(m, "abc");
    mock_push_str(m, "def" "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_non_null(held);
    fx_advance(fx, 5000);
    eddy_str b = eddy_request_body(held);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.ptr, "abcdef", 6);
    eddy_respond(held, 200, "text/plain", b.ptr, b.len); /* echoing its own body is fine */
    fx_run(fx);
    char *out = fx_output(m);
    assert_before(out, "\r\n\r\nabcdef", FX_INDEX);
    free(out);
    fx_free(fx);
    mock_stream_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_and_chunked_bodies),
        cmocka_unit_test(other_routes_never_see_a_body),
        cmocka_unit_test(body_over_the_limit_never_reaches_the_handler),
        cmocka_unit_test(held_request_keeps_its_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
