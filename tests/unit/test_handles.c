/* Request handles: a handle that outlived its request is refused and never
 * touches another request, whether the request was answered, aborted, or
 * its slot has served many requests since. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

static eddy_request *kept;      /* a handle a handler should not have kept */
static eddy_request *holding;   /* the request a handler holds */
static bool abort_called;

static void answer_and_keep(eddy_request *req, void *data)
{
    (void)data;
    kept = req;
    eddy_respond(req, 200, "text/plain", "first\n", 6);
}

static void on_abort(void *data)
{
    (void)data;
    abort_called = true;
}

static void hold(eddy_request *req, void *data)
{
    holding = req;
    if (data)
        eddy_request_on_abort(req, on_abort, NULL);
}

static fixture *handles_fixture(void)
{
    kept = holding = NULL;
    abort_called = false;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/keep", answer_and_keep, NULL, false);
    fx_route(fx, "/hold", hold, NULL, false);
    fx_route(fx, "/hold-abortable", hold, (void *)1, false);
    return fx;
}

static void expect_stale(eddy_request *h)
{
    assert_int_equal(eddy_respond(h, 200, "text/plain", "late\n", 5), -ESTALE);
    assert_int_equal(eddy_response_field(h, "X-Late", "1"), -ESTALE);
    assert_int_equal(eddy_stream_start(h, 200, NULL, -1), -ESTALE);
    assert_int_equal(eddy_stream_write(h, "x", 1), -ESTALE);
    assert_int_equal(eddy_stream_end(h), -ESTALE);
    assert_int_equal(eddy_request_on_abort(h, on_abort, NULL), -ESTALE);
    assert_int_equal(eddy_request_version(h), -ESTALE);
    assert_int_equal(eddy_request_path(h).len, 0);
    assert_int_equal(eddy_request_method(h).len, 0);
    assert_null(eddy_request_header(h, "host").ptr);
    assert_null(eddy_request_loop(h));
    size_t it = 0;
    eddy_str n, v;
    assert_false(eddy_request_field_next(h, &it, &n, &v));
}

static void answered_handle_never_answers_the_next_request(void **state)
{
    (void)state;
    fixture *fx = handles_fixture();
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET("/keep") GET("/hold"));
    fx_run(fx);
    assert_non_null(kept);
    assert_non_null(holding);
    /* The same connection now holds /hold: the kept handle must not reach it. */
    expect_stale(kept);
    fx_run(fx);
    char *out = fx_output(m);
    assert_int_equal(count_of(out, "HTTP/1.1 "), 1);
    assert_null(strstr(out, "late"));
    free(out);
    /* The held request is still its handler's to answer. */
    eddy_str path = eddy_request_path(holding);
    assert_int_equal(path.len, 5);
    assert_memory_equal(path.ptr, "/hold", 5);
    assert_int_equal(eddy_respond(holding, 200, "text/plain", "second\n", 7), 0);
    fx_run(fx);
    out = fx_output(m);
    assert_before(out, "first\n", "second\n");
    free(out);
    expect_stale(holding);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void aborted_handle_is_stale_after_its_callback(void **state)
{
    (void)state;
    fixture *fx = handles_fixture();
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET("/hold-abortable"));
    fx_run(fx);
    assert_non_null(holding);
    mock_push_reset(m);
    fx_run(fx);
    assert_true(abort_called);
    expect_stale(holding);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    mock_stream_free(m);
    fx_free(fx);
}

static void held_without_callback_stays_valid_until_answered(void **state)
{
    (void)state;
    fixture *fx = handles_fixture();
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET("/hold"));
    fx_run(fx);
    mock_push_reset(m);
    fx_run(fx);
    /* The client left, but with no abort callback the handle stays valid;
     * answering does nothing, and then the handle is done. */
    assert_int_equal(eddy_request_path(holding).len, 5);
    assert_int_equal(eddy_respond(holding, 200, "text/plain", "x", 1), 0);
    expect_stale(holding);
    fx_run(fx);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    mock_stream_free(m);
    fx_free(fx);
}

static void reused_slots_keep_old_handles_stale(void **state)
{
    (void)state;
    fixture *fx = handles_fixture();
    mock_stream *m = fx_connect(fx);
    eddy_request *first = NULL;
    /* More requests than a chunk of slots, so slots are reused. */
    for (int i = 0; i < 600; i++) {
        mock_push_str(m, GET("/keep"));
        fx_run(fx);
        if (!first)
            first = kept;
        assert_int_equal(eddy_respond(kept, 200, NULL, "", 0), -ESTALE);
    }
    expect_stale(first);
    mock_clear_output(m);
    mock_push_str(m, GET("/hold"));
    fx_run(fx);
    assert_int_equal(eddy_respond(first, 200, NULL, "", 0), -ESTALE);
    assert_int_equal(eddy_respond(holding, 204, NULL, "", 0), 0);
    fx_run(fx);
    char *out = fx_output(m);
    assert_int_equal(count_of(out, "HTTP/1.1 "), 1);
    assert_non_null(strstr(out, "HTTP/1.1 204"));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answered_handle_never_answers_the_next_request),
        cmocka_unit_test(aborted_handle_is_stale_after_its_callback),
        cmocka_unit_test(held_without_callback_stays_valid_until_answered),
        cmocka_unit_test(reused_slots_keep_old_handles_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
