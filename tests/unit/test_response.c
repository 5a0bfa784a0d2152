/* The response API as a handler uses it: fields it adds (checked, never
 * sent when refused), fields an operator adds to every response. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

static int last_rc[16];

static void with_fields(eddy_request *req, void *data)
{
    (void)data;
    int i = 0;
    last_rc[i++] = eddy_response_field(req, "Set-Cookie", "a=1; Path=/");
    last_rc[i++] = eddy_response_field(req, "Set-Cookie", "b=2");
    last_rc[i++] = eddy_response_field(req, "X-Bad Name", "v");
    last_rc[i++] = eddy_response_field(req, "X-Split", "a\r\nInjected: yes");
    last_rc[i++] = eddy_response_field(req, "X-Nul", "a\nb");
    last_rc[i++] = eddy_response_field(req, "", "v");
    last_rc[i++] = eddy_response_field(req, "Content-Length", "5");
    last_rc[i++] = eddy_response_field(req, "transfer-encoding", "chunked");
    last_rc[i++] = eddy_response_field(req, "Connection", "close");
    last_rc[i++] = eddy_response_field(req, "X-Space", " padded");
    last_rc[i++] = eddy_response_field(req, "X-Empty", "");
    eddy_respond(req, 200, "text/plain", "ok\n", 3);
    last_rc[i++] = eddy_response_field(req, "X-Late", "v");
}

static void handler_fields_are_checked(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/f", with_fields, NULL, false);
    char *out = fx_exchange(fx, GET("/f"), NULL);
    int want[] = {0, 0, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EPERM, -EPERM, -EPERM, -EINVAL, 0,
                  -ESTALE}; /* answered: the handle is stale */
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (last_rc[i] != want[i])
            fail_msg("call %zu: %d, wanted %d", i, last_rc[i], want[i]);
    assert_non_null(strstr(out, "\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nX-Empty: \r\n\r\nok\n"));
    assert_null(strstr(out, "Injected"));
    assert_int_equal(count_of(out, "Content-Length"), 1);
    assert_null(strstr(out, "Connection: close"));
    /* The fields were this request's: the next one has none. */
    free(out);
    out = fx_exchange(fx, GET("/"), NULL);
    assert_null(strstr(out, "Set-Cookie"));
    free(out);
    fx_free(fx);
}

static void operator_fields_go_on_every_response(void **state)
{
    (void)state;
    const char *lines[] = {"X-Frame-Options: DENY", "Strict-Transport-Security:  max-age=60 "};
    eddy_config cfg = {.response_fields = lines, .nresponse_fields = 2};
    fixture *fx = fx_new(&cfg);
    fx_route(fx, "/f", with_fields, NULL, false);
    const char *reqs[] = {GET("/"), GET("/missing"), GET("/f"),
                          "GET / HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n",
                          "GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        char *out = fx_exchange(fx, reqs[i], NULL);
        if (!strstr(out, "\r\nX-Frame-Options: DENY\r\nStrict-Transport-Security: max-age=60\r\n"))
            fail_msg("request %zu: no operator fields in\n%s", i, out);
        free(out);
    }
    fx_free(fx);
}

static void operator_fields_are_checked(void **state)
{
    (void)state;
    const char *bad[] = {"NoColon", ": v", "X Y: v", "X: a\rb", "Content-Length: 1", "Date: x"};
    int want[] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EPERM, -EPERM};
    eddy_loop *loop = eddy_loop_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        eddy_config cfg = {.response_fields = &bad[i], .nresponse_fields = 1};
        eddy_server *srv = NULL;
        assert_int_equal(eddy_server_new(loop, &cfg, &srv), want[i]);
        assert_null(srv);
    }
    eddy_loop_free(loop);
}

/* Echoes what the request API tells about the request. */
static void describe(eddy_request *req, void *data)
{
    (void)data;
    char body[1024], peer[64];
    size_t n = 0, it = 0;
    eddy_str name, value;
    eddy_request_peer(req, peer, sizeof(peer));
    n += (size_t)snprintf(body + n, sizeof(body) - n, "v%d peer=%s\n", eddy_request_version(req),
                          peer);
    while (eddy_request_field_next(req, &it, &name, &value))
        n += (size_t)snprintf(body + n, sizeof(body) - n, "[%.*s]=[%.*s]\n", (int)name.len,
                              name.ptr, (int)value.len, value.ptr);
    eddy_respond(req, 200, "text/plain", body, n);
}

static void request_fields_in_order(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/d", describe, NULL, false);
    char *out = fx_exchange(fx,
                            "GET /d HTTP/1.1\r\nHost: t\r\nX-B: 2\r\nx-a:1 \r\nX-B:\t3\r\n"
                            "Empty:\r\n\r\n"
                            "GET /d HTTP/1.0\r\n\r\n",
                            NULL);
    assert_non_null(strstr(out, "v11 peer="));
    assert_non_null(strstr(out, "\n[Host]=[t]\n[X-B]=[2]\n[x-a]=[1]\n[X-B]=[3]\n[Empty]=[]\n"));
    assert_non_null(strstr(out, "v10 peer="));
    free(out);
    fx_free(fx);
}

/* The content type is a field value too: refused like one (-EINVAL), the
 * request left unanswered, never written into the head. */
static int ct_rc[8];

static void bad_content_types(eddy_request *req, void *data)
{
    (void)data;
    int i = 0;
    ct_rc[i++] = eddy_respond(req, 200, "text/plain\r\nX-Injected: 1", "x", 1);
    ct_rc[i++] = eddy_respond(req, 200, "text/plain\n", "x", 1);
    ct_rc[i++] = eddy_respond(req, 200, " text/plain", "x", 1);
    ct_rc[i++] = eddy_respond(req, 200, "text/\x7fplain", "x", 1);
    ct_rc[i++] = eddy_stream_start(req, 200, "a\r\n\r\nHTTP/1.1 200 OK", -1);
    ct_rc[i++] = eddy_stream_start(req, 200, "text/plain\t", 1);
    ct_rc[i++] = eddy_respond(req, 200, "text/plain; charset=\"utf-8\"", "ok\n", 3);
}

static void content_type_is_checked(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/c", bad_content_types, NULL, false);
    char *out = fx_exchange(fx, GET("/c"), NULL);
    int want[] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, 0};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (ct_rc[i] != want[i])
            fail_msg("call %zu: %d, wanted %d", i, ct_rc[i], want[i]);
    assert_int_equal(count_of(out, "HTTP/1.1 "), 1);
    assert_null(strstr(out, "Injected"));
    assert_non_null(strstr(out, "\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nok\n"));
    free(out);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handler_fields_are_checked),
        cmocka_unit_test(operator_fields_go_on_every_response),
        cmocka_unit_test(operator_fields_are_checked),
        cmocka_unit_test(request_fields_in_order),
        cmocka_unit_test(content_type_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
