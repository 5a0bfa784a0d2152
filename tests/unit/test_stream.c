/* Streamed responses over the mock stream: chunked and known lengths,
 * HTTP/1.0, HEAD, backpressure with a client that stops reading, a client
 * that leaves mid-stream, and writes from a timer (outside any read). */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One stream a test drives by hand. */
typedef struct streamer {
    eddy_request *req;
    int64_t length;       /* for eddy_stream_start */
    bool aborted;
    int drains;
} streamer;

static streamer st;

static void left(void *data)
{
    streamer *s = data;
    s->aborted = true;
    s->req = NULL;
}

static void drained(void *data)
{
    streamer *s = data;
    s->drains++;
}

static void start_stream(eddy_request *req, void *data)
{
    streamer *s = data;
    s->req = req;
    eddy_request_on_abort(req, left, s);
    eddy_stream_on_drain(req, drained, s);
    assert_int_equal(eddy_stream_start(req, 200, "text/plain", s->length), 0);
    assert_int_equal(eddy_stream_start(req, 200, "text/plain", s->length), -EALREADY);
    assert_int_equal(eddy_respond(req, 200, NULL, "x", 1), -EALREADY);
    assert_int_equal(eddy_response_field(req, "X-Late", "v"), -EALREADY);
}

static fixture *stream_fixture(int64_t length)
{
    memset(&st, 0, sizeof(st));
    st.length = length;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/s", start_stream, &st, false);
    return fx;
}

static void unknown_length_is_chunked(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(-1);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_non_null(st.req);
    /* From a timer, as a real stream would: written on the next turn. */
    assert_int_equal(eddy_stream_write(st.req, "hello", 5), 0);
    assert_int_equal(eddy_stream_write(st.req, "", 0), 0); /* not a last chunk */
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
    assert_null(strstr(out, "Content-Length"));
    free(out);
    char big[300];
    memset(big, 'b', sizeof(big));
    assert_int_equal(eddy_stream_write(st.req, big, sizeof(big)), 0);
    assert_int_equal(eddy_stream_end(st.req), 0);
    assert_int_equal(eddy_stream_end(st.req), -ESTALE); /* done: the handle is stale */
    fx_run(fx);
    out = fx_output(m);
    assert_non_null(strstr(out, "\r\n12c\r\nbbbb"));
    assert_non_null(strstr(out, "bb\r\n0\r\n\r\nHTTP/1.1 200 OK")); /* then the pipelined one */
    assert_non_null(strstr(out, FX_INDEX));
    assert_false(mock_ended(m));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void known_length_is_kept(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(8);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_int_equal(eddy_stream_write(st.req, "1234", 4), 0);
    assert_int_equal(eddy_stream_write(st.req, "56789", 5), -EMSGSIZE);
    assert_int_equal(eddy_stream_write(st.req, "5678", 4), 0);
    assert_int_equal(eddy_stream_end(st.req), 0);
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "Content-Length: 8\r\n"));
    assert_null(strstr(out, "chunked"));
    assert_non_null(strstr(out, "\r\n\r\n12345678"));
    assert_false(mock_ended(m));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void short_known_length_closes(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(8);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_int_equal(eddy_stream_write(st.req, "1234", 4), 0);
    assert_int_equal(eddy_stream_end(st.req), -EMSGSIZE);
    fx_run(fx);
    assert_true(mock_ended(m)); /* the client sees a body cut short */
    mock_stream_free(m);
    fx_free(fx);
}

static void http10_is_close_delimited(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(-1);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    fx_run(fx);
    assert_int_equal(eddy_stream_write(st.req, "abc", 3), 0);
    assert_int_equal(eddy_stream_end(st.req), 0);
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_null(strstr(out, "chunked"));
    assert_non_null(strstr(out, "\r\n\r\nabc"));
    assert_true(mock_ended(m));
    free(out);
    mock_stream_free(m);
    fx_free(fx);
}

static void head_gets_no_body(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(-1);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "HEAD /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_int_equal(eddy_stream_write(st.req, "abc", 3), 0);
    assert_int_equal(eddy_stream_end(st.req), 0);
    fx_run(fx);
    char *out = fx_output(m);
    assert_null(strstr(out, "chunked"));
    assert_null(strstr(out, "abc"));
    assert_false(mock_ended(m));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void client_that_stops_reading_bounds_the_buffer(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(-1);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    mock_block_writes(m, true);
    char piece[1000];
    memset(piece, 'p', sizeof(piece));
    int taken = 0, rc;
    while ((rc = eddy_stream_write(st.req, piece, sizeof(piece))) == 0 && taken < 1000)
        taken++;
    assert_int_equal(rc, -EAGAIN);
    /* Bounded: the buffer's worth and the write that crossed it. */
    assert_true(taken * sizeof(piece) >= EDDY_STREAM_BUFFER);
    assert_true(taken * sizeof(piece) < EDDY_STREAM_BUFFER + sizeof(piece) + 64);
    fx_run(fx);
    assert_int_equal(st.drains, 0);
    mock_block_writes(m, false);
    fx_run(fx);
    assert_int_equal(st.drains, 1);
    assert_int_equal(eddy_stream_write(st.req, piece, sizeof(piece)), 0);
    assert_int_equal(eddy_stream_end(st.req), 0);
    fx_run(fx);
    size_t len;
    mock_output(m, &len);
    assert_true(len > (size_t)(taken + 1) * sizeof(piece));
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void stalled_client_hits_the_send_timeout(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    st.length = -1;
    eddy_config cfg = {.send_ms = 4000};
    fixture *fx = fx_new(&cfg);
    fx_route(fx, "/s", start_stream, &st, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    /* A quiet stream is not timed out: its handler's time is its own. */
    fx_advance(fx, 10000);
    assert_false(st.aborted);
    assert_int_equal(eddy_stream_write(st.req, "tick", 4), 0);
    fx_run(fx);
    fx_advance(fx, 10000);
    assert_false(st.aborted);
    /* A client slow for a while, then taking it all, is not either. */
    mock_block_writes(m, true);
    assert_int_equal(eddy_stream_write(st.req, "slow", 4), 0);
    fx_run(fx);
    fx_advance(fx, 2000);
    mock_block_writes(m, false);
    fx_run(fx);
    fx_advance(fx, 10000);
    assert_false(st.aborted);
    /* A client that takes nothing is. */
    mock_block_writes(m, true);
    assert_int_equal(eddy_stream_write(st.req, "tock", 4), 0);
    fx_run(fx);
    fx_advance(fx, 3000);
    assert_false(st.aborted);
    fx_advance(fx, 1500);
    assert_true(st.aborted);
    assert_true(mock_closed(m));
    mock_stream_free(m);
    fx_free(fx);
}

static void ticking_stream_to_a_stalled_client_times_out(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    st.length = -1;
    eddy_config cfg = {.send_ms = 4000};
    fixture *fx = fx_new(&cfg);
    fx_route(fx, "/s", start_stream, &st, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    mock_block_writes(m, true);
    /* Each write queues more, but the client takes none of it: the send
     * clock must not restart with every write. */
    for (int s = 0; s < 10 && !st.aborted; s++) {
        assert_int_equal(eddy_stream_write(st.req, "tick", 4), 0);
        fx_run(fx);
        fx_advance(fx, 1000);
    }
    assert_true(st.aborted);
    mock_stream_free(m);
    fx_free(fx);
}

static void client_leaving_mid_stream_aborts(void **state)
{
    (void)state;
    fixture *fx = stream_fixture(-1);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_int_equal(eddy_stream_write(st.req, "abc", 3), 0);
    mock_push_reset(m);
    fx_run(fx);
    assert_true(st.aborted);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    mock_stream_free(m);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_length_is_chunked),
        cmocka_unit_test(known_length_is_kept),
        cmocka_unit_test(short_known_length_closes),
        cmocka_unit_test(http10_is_close_delimited),
        cmocka_unit_test(head_gets_no_body),
        cmocka_unit_test(client_that_stops_reading_bounds_the_buffer),
        cmocka_unit_test(stalled_client_hits_the_send_timeout),
        cmocka_unit_test(ticking_stream_to_a_stalled_client_times_out),
        cmocka_unit_test(client_leaving_mid_stream_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
