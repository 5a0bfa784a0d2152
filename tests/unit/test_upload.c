/* Request bodies streamed to a handler (EDDY_BODY_STREAM) over the mock
 * stream: pieces in order, chunked, backpressure that stops reading,
 * Expect: 100-continue answered when the handler reads, answering early,
 * a client leaving mid-body, and reading on a route that does not stream. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct upload {
    eddy_request *req;
    char got[200000];
    size_t len;
    int pieces, ends;
    bool read_at_once;     /* call eddy_request_read from the handler */
    bool pause_after_first;
    bool pause_every;      /* pause after every piece */
    bool answer_after_first; /* answer 413 on the first piece */
    bool answer_at_end;
    bool aborted;
} upload;

static upload up;

static void on_piece(eddy_request *req, const void *data, size_t len, void *ud)
{
    upload *u = ud;
    if (len == 0) {
        u->ends++;
        if (u->answer_at_end) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "got %zu in %d\n", u->len, u->pieces);
            assert_int_equal(eddy_respond(req, 200, "text/plain", msg, (size_t)n), 0);
        }
        return;
    }
    assert_true(u->len + len <= sizeof(u->got));
    memcpy(u->got + u->len, data, len);
    u->len += len;
    u->pieces++;
    if ((u->pause_after_first && u->pieces == 1) || u->pause_every)
        assert_int_equal(eddy_request_pause(req, true), 0);
    if (u->answer_after_first && u->pieces == 1)
        eddy_respond(req, 413, "text/plain", "too much\n", 9);
}

static void left(void *data) { ((upload *)data)->aborted = true; }

static void take_upload(eddy_request *req, void *data)
{
    upload *u = data;
    u->req = req;
    eddy_request_on_abort(req, left, u);
    if (u->read_at_once)
        assert_int_equal(eddy_request_read(req, on_piece, u), 0);
}

static fixture *upload_fixture(const eddy_config *cfg)
{
    memset(&up, 0, sizeof(up));
    up.read_at_once = true;
    up.answer_at_end = true;
    fixture *fx = fx_new(cfg);
    eddy_route r = {.path = "/up", .body = EDDY_BODY_STREAM, .handler = take_upload, .data = &up};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    return fx;
}

static void done_with(fixture *fx, mock_stream *m)
{
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

static void pieces_arrive_in_order(void **state)
{
    (void)state;
    fixture *fx = upload_fixture(NULL);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 30\r\n\r\n0123456789");
    fx_run(fx);
    assert_non_null(up.req);
    assert_int_equal(up.len, 10); /* the handler has it before the rest comes */
    mock_push_str(m, "abcdefghij");
    mock_push_str(m, "ABCDEFGHIJ" "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    assert_int_equal(up.len, 30);
    assert_memory_equal(up.got, "0123456789abcdefghijABCDEFGHIJ", 30);
    assert_int_equal(up.ends, 1);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "got 30 in 3\n"));
    assert_before(out, "got 30", FX_INDEX); /* the pipelined one after */
    free(out);
    done_with(fx, m);
}

/* Body bytes that came with the head are handed over and dropped; the
 * head alone is kept, and the rest of the body is read 64 KiB at a time
 * into the loop's scratch, not a few KiB at a time behind the head. */
static void body_after_the_head_comes_in_large_reads(void **state)
{
    (void)state;
    fixture *fx = upload_fixture(NULL);
    mock_stream *m = fx_connect(fx);
    static char big[60000];
    memset(big, 'x', sizeof(big));
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 60005\r\n\r\n01234");
    mock_push(m, big, sizeof(big));
    fx_run(fx);
    assert_int_equal(up.len, 60005);
    assert_int_equal(up.ends, 1);
    assert_int_equal(up.pieces, 2);
    done_with(fx, m);
}

static void chunked_and_larger_than_max_body(void **state)
{
    (void)state;
    eddy_config cfg = {.max_body = 16};
    fixture *fx = upload_fixture(&cfg);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "10\r\n0123456789abcdef\r\n");
    mock_push_str(m, "10\r\nghijklmnopqrstuv\r\n0\r\n\r\n");
    fx_run(fx);
    assert_int_equal(up.len, 32);
    assert_memory_equal(up.got, "0123456789abcdefghijklmnopqrstuv", 32);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    free(out);
    done_with(fx, m);
}

/* max_body is not a streamed body's limit, whatever its framing: with a
 * Content-Length, pieces beyond it still come and the end too. */
static void content_length_larger_than_max_body(void **state)
{
    (void)state;
    eddy_config cfg = {.max_body = 16};
    for (int pause = 0; pause < 2; pause++) {
        fixture *fx = upload_fixture(&cfg);
        up.pause_every = pause;
        mock_stream *m = fx_connect(fx);
        mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 30\r\n\r\n0123456789");
        mock_push_str(m, "abcdefghij");
        mock_push_str(m, "ABCDEFGHIJ");
        for (int i = 0; i < 4; i++) {
            fx_run(fx);
            if (pause && up.req)
                eddy_request_pause(up.req, false);
        }
        assert_int_equal(up.len, 30);
        assert_int_equal(up.ends, 1);
        char *out = fx_output(m);
        if (!strstr(out, "got 30 in 3\n"))
            fail_msg("pause %d: out:\n%s", pause, out);
        free(out);
        done_with(fx, m);
    }
}

static void pause_stops_reading(void **state)
{
    (void)state;
    eddy_config cfg = {.header_ms = 3000};
    fixture *fx = upload_fixture(&cfg);
    up.pause_after_first = true;
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n01234");
    fx_run(fx);
    mock_push_str(m, "56789");
    mock_push_str(m, "abcdefghij");
    fx_run(fx);
    assert_int_equal(up.pieces, 1);
    assert_int_equal(up.len, 5);
    /* A paused body is the handler's time: no timeout. */
    fx_advance(fx, 10000);
    assert_false(mock_ended(m));
    assert_false(up.aborted);
    assert_int_equal(eddy_request_pause(up.req, false), 0);
    fx_run(fx);
    assert_int_equal(up.len, 20);
    assert_int_equal(up.ends, 1);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "got 20 in 3\n"));
    free(out);
    done_with(fx, m);
}

/* Paused on a Content-Length body's last piece: llhttp still owes the
 * message's end, with no byte left to carry it, and resuming must bring
 * it, whether the last piece was waiting when the handler resumed or came
 * after. */
static void pause_on_the_last_piece(void **state)
{
    (void)state;
    for (int split = 0; split < 2; split++) {
        fixture *fx = upload_fixture(NULL);
        up.pause_every = true;
        mock_stream *m = fx_connect(fx);
        mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234");
        if (!split)
            mock_push_str(m, "56789");
        fx_run(fx);
        if (split) {
            assert_int_equal(up.len, 5);
            assert_int_equal(eddy_request_pause(up.req, false), 0);
            fx_run(fx);
            mock_push_str(m, "56789");
            fx_run(fx);
            assert_int_equal(up.len, 10);
        }
        assert_int_equal(up.ends, 0); /* paused: not even the end */
        assert_int_equal(eddy_request_pause(up.req, false), 0);
        fx_run(fx);
        if (!split) {
            assert_int_equal(up.len, 10);
            assert_int_equal(up.ends, 0); /* the second piece, paused again */
            assert_int_equal(eddy_request_pause(up.req, false), 0);
            fx_run(fx);
        }
        assert_int_equal(up.ends, 1);
        char *out = fx_output(m);
        if (!strstr(out, "got 10 in 2\n"))
            fail_msg("split %d: pieces %d len %zu ends %d out:\n%s", split, up.pieces, up.len,
                     up.ends, out);
        free(out);
        done_with(fx, m);
    }
}

static void stalled_upload_times_out(void **state)
{
    (void)state;
    eddy_config cfg = {.header_ms = 3000};
    fixture *fx = upload_fixture(&cfg);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n01234");
    fx_run(fx);
    fx_advance(fx, 3500); /* reading, and the client sends no more */
    assert_true(up.aborted);
    assert_true(mock_ended(m));
    mock_stream_free(m);
    fx_free(fx);
}

static void read_later(void *data)
{
    upload *u = data;
    eddy_request_read(u->req, on_piece, u);
}

static void continue_when_the_handler_reads(void **state)
{
    (void)state;
    fixture *fx = upload_fixture(NULL);
    up.read_at_once = false;
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    fx_run(fx);
    char *out = fx_output(m);
    assert_null(strstr(out, "100 Continue")); /* not before the handler wants it */
    free(out);
    eddy_timer t;
    eddy_timer_init(&t, read_later, &up);
    eddy_timer_start(fx->loop, &t, 100);
    fx_advance(fx, 100);
    out = fx_output(m);
    assert_non_null(strstr(out, "HTTP/1.1 100 Continue\r\n\r\n"));
    free(out);
    mock_push_str(m, "data");
    fx_run(fx);
    out = fx_output(m);
    if (!strstr(out, "got 4 in 1\n"))
        fail_msg("pieces %d len %zu ends %d out:\n%s", up.pieces, up.len, up.ends, out);
    free(out);
    done_with(fx, m);
}

static void early_answer_closes(void **state)
{
    (void)state;
    fixture *fx = upload_fixture(NULL);
    up.answer_after_first = true;
    up.answer_at_end = false;
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789");
    fx_run(fx);
    mock_push_str(m, "more body the handler never sees");
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "HTTP/1.1 413 Content Too Large\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    free(out);
    assert_int_equal(up.pieces, 1);
    assert_int_equal(up.ends, 0);
    assert_true(mock_ended(m));
    done_with(fx, m);
}

/* An answer before the body's end closes the connection, but the client
 * may still be sending: eddy sends its FIN and drains what comes for a
 * while (a lingering close), since closing a socket with unread input
 * resets it and the client could lose the answer.  Answered from a piece,
 * and from the handler before it reads (nothing of the body came yet). */
static void early_answer_lingers(void **state)
{
    (void)state;
    for (int before = 0; before < 2; before++) {
        fixture *fx = upload_fixture(NULL);
        up.answer_after_first = !before;
        up.read_at_once = !before;
        up.answer_at_end = false;
        mock_stream *m = fx_connect(fx);
        mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
        if (!before)
            mock_push_str(m, "0123456789");
        fx_run(fx);
        if (before)
            eddy_respond(up.req, 413, "text/plain", "too much\n", 9);
        fx_run(fx);
        char *out = fx_output(m);
        assert_non_null(strstr(out, "HTTP/1.1 413 Content Too Large\r\n"));
        free(out);
        if (!mock_write_shut(m) || mock_closed(m))
            fail_msg("answered %s: %s", before ? "before reading" : "from a piece",
                     mock_closed(m) ? "closed at once" : "no FIN");
        mock_push_str(m, "more body the handler never sees");
        fx_run(fx);
        assert_false(mock_closed(m)); /* drained */
        fx_advance(fx, 2000);         /* until the linger time runs out */
        assert_true(mock_closed(m));
        assert_int_equal(eddy_server_connections(fx->srv), 0);
        mock_stream_free(m);
        fx_free(fx);
    }
}

static void client_leaving_mid_body_aborts(void **state)
{
    (void)state;
    fixture *fx = upload_fixture(NULL);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    fx_run(fx);
    mock_push_reset(m);
    fx_run(fx);
    assert_true(up.aborted);
    assert_int_equal(up.ends, 0);
    assert_int_equal(eddy_request_read(up.req, on_piece, &up), -ESTALE);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    mock_stream_free(m);
    fx_free(fx);
}

static void plain_route_read_gets_the_end(void **state)
{
    (void)state;
    memset(&up, 0, sizeof(up));
    up.read_at_once = true;
    up.answer_at_end = true;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/plain", take_upload, &up, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "POST /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    fx_run(fx);
    assert_int_equal(up.ends, 1);
    assert_int_equal(up.len, 0); /* dropped: the route does not take bodies */
    char *out = fx_output(m);
    assert_non_null(strstr(out, "got 0 in 0\n"));
    free(out);
    done_with(fx, m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pieces_arrive_in_order),
        cmocka_unit_test(body_after_the_head_comes_in_large_reads),
        cmocka_unit_test(chunked_and_larger_than_max_body),
        cmocka_unit_test(content_length_larger_than_max_body),
        cmocka_unit_test(pause_stops_reading),
        cmocka_unit_test(pause_on_the_last_piece),
        cmocka_unit_test(stalled_upload_times_out),
        cmocka_unit_test(continue_when_the_handler_reads),
        cmocka_unit_test(early_answer_closes),
        cmocka_unit_test(early_answer_lingers),
        cmocka_unit_test(client_leaving_mid_body_aborts),
        cmocka_unit_test(plain_route_read_gets_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
