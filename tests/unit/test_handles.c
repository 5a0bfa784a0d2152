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

/* ------------------------------------------- freeing from callbacks -- */

static int aborts;

static void count_abort(void *data)
{
    (void)data;
    aborts++;
}

static void hold_counted(eddy_request *req, void *data)
{
    (void)data;
    eddy_request_on_abort(req, count_abort, NULL);
}

static void free_server(eddy_request *req, void *data)
{
    fixture *fx = data;
    eddy_respond(req, 200, "text/plain", "bye\n", 4);
    eddy_server_free(fx->srv);
    eddy_server_free(fx->srv); /* twice from beneath is still one free */
    fx->srv = NULL;
}

static void server_freed_from_a_handler(void **state)
{
    (void)state;
    aborts = 0;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/held", hold_counted, NULL, false);
    fx_route(fx, "/free", free_server, fx, false);
    mock_stream *a = fx_connect(fx), *b = fx_connect(fx);
    mock_push_str(a, GET("/held"));
    fx_run(fx);
    /* The free comes from b's handler, with a request pipelined behind it
     * that must not be dispatched to a server being freed. */
    mock_push_str(b, GET("/free") GET("/held"));
    fx_run(fx);
    assert_int_equal(aborts, 1); /* a's held request was told */
    assert_true(mock_closed(a));
    assert_true(mock_closed(b));
    fx_run(fx);
    mock_stream_free(a);
    mock_stream_free(b);
    fx_free(fx);
}

static fixture *abort_fx;

static void free_on_abort(void *data)
{
    (void)data;
    aborts++;
    eddy_server_free(abort_fx->srv);
    abort_fx->srv = NULL;
}

static void hold_freeing(eddy_request *req, void *data)
{
    (void)data;
    eddy_request_on_abort(req, free_on_abort, NULL);
}

static void server_freed_from_an_abort_callback(void **state)
{
    (void)state;
    aborts = 0;
    fixture *fx = abort_fx = fx_new(NULL);
    fx_route(fx, "/held", hold_freeing, NULL, false);
    mock_stream *a = fx_connect(fx), *b = fx_connect(fx);
    mock_push_str(a, GET("/held"));
    mock_push_str(b, GET("/held"));
    fx_run(fx);
    mock_push_reset(a);
    fx_run(fx);
    assert_null(fx->srv);
    assert_int_equal(aborts, 2); /* b's request aborted by the free, once */
    mock_stream_free(a);
    mock_stream_free(b);
    fx_free(fx);
}

/* A callback registered after the client left (the request held without
 * one until then) still runs when the server is freed, as eddy_server_free
 * promises for every pending request: the handler lets go there, and never
 * calls through a handle whose slot the free released. */
static eddy_request *late_req;

static void answer_on_abort(void *data)
{
    (void)data;
    aborts++;
    /* Valid until the callback returns: answering does nothing. */
    assert_int_equal(eddy_request_path(late_req).len, 5);
    assert_int_equal(eddy_respond(late_req, 200, "text/plain", "x", 1), 0);
}

static void late_abort_callback_runs_when_the_server_is_freed(void **state)
{
    (void)state;
    aborts = 0;
    fixture *fx = handles_fixture();
    mock_stream *a = fx_connect(fx), *b = fx_connect(fx);
    mock_push_str(a, GET("/hold"));
    fx_run(fx);
    eddy_request *first = holding;
    mock_push_str(b, GET("/hold"));
    fx_run(fx);
    late_req = holding;
    mock_push_reset(a);
    mock_push_reset(b);
    fx_run(fx);
    /* Both clients are gone; the handler registers afterwards. */
    assert_int_equal(eddy_request_on_abort(first, count_abort, NULL), 0);
    assert_int_equal(eddy_request_on_abort(late_req, answer_on_abort, NULL), 0);
    assert_int_equal(eddy_server_connections(fx->srv), 2);
    assert_int_equal(aborts, 0);
    eddy_server_free(fx->srv);
    fx->srv = NULL;
    assert_int_equal(aborts, 2);
    mock_stream_free(a);
    mock_stream_free(b);
    fx_free(fx);
}

static void stop_loop(eddy_request *req, void *data)
{
    eddy_loop_stop(data);
    eddy_respond(req, 204, NULL, "", 0);
}

static void loop_stopped_from_a_handler(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/stop", stop_loop, fx->loop, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET("/stop"));
    /* The connection keeps the loop alive: only the stop ends the run. */
    assert_int_equal(eddy_loop_run(fx->loop), 0);
    fx_run(fx);
    char *out = fx_output(m);
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
        cmocka_unit_test(server_freed_from_a_handler),
        cmocka_unit_test(server_freed_from_an_abort_callback),
        cmocka_unit_test(late_abort_callback_runs_when_the_server_is_freed),
        cmocka_unit_test(loop_stopped_from_a_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
