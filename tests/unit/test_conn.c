/* The connection state machine over mock streams and the virtual clock:
 * every I/O edge a socket can show, observed as a client would see it. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET_ROOT "GET / HTTP/1.1\r\nHost: t\r\n\r\n"

static const eddy_config small_limits = {
    .max_header_bytes = 1024, .keepalive_ms = 5000, .header_ms = 3000, .send_ms = 4000};

/* A handler answering from memory, so pipelined answers can coalesce. */
static void hello(eddy_request *req, void *data)
{
    (void)data;
    eddy_respond(req, 200, "text/plain", "hi\n", 3);
}

static void get_root_serves_index(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    bool closed;
    char *out = fx_exchange(fx, GET_ROOT, &closed);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(strstr(out, "Date: Sun, 06 Nov 1994 08:49:3"));
    assert_non_null(strstr(out, "Server: eddy\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n" FX_INDEX));
    assert_false(closed); /* HTTP/1.1 keeps alive */
    free(out);
    fx_free(fx);
}

static void request_one_byte_at_a_time(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char *out = fx_exchange_bytewise(
        fx, "GET /missing HTTP/1.1\r\nHost: t\r\nX-Long-Name: some value\r\n\r\n" GET_ROOT, NULL);
    char *second = strstr(out, "HTTP/1.1 200 OK");
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found"));
    assert_non_null(second);
    assert_true(strstr(out, "HTTP/1.1 404") < second);
    assert_non_null(strstr(out, FX_404));
    assert_non_null(strstr(second, FX_INDEX));
    free(out);
    fx_free(fx);
}

static void two_requests_in_one_read_coalesce(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/hi", hello, NULL, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /hi HTTP/1.1\r\nHost: t\r\n\r\nGET /hi?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    char *out = fx_output(m);
    assert_int_equal(count_of(out, "HTTP/1.1 200 OK"), 2);
    assert_int_equal(count_of(out, "\r\n\r\nhi\n"), 2);
    /* Both answers left in a single write. */
    assert_int_equal(mock_write_calls(m), 1);
    free(out);
    fx_free(fx);
    mock_stream_free(m);
}

static void read_eagain_between_pieces(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET / HT");
    mock_push_eagain(m);
    mock_push_str(m, "TP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    free(out);
    fx_free(fx);
    mock_stream_free(m);
}

/* Short writes must deliver exactly what one big write would have. */
static void short_writes_deliver_everything(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *whole = fx_connect(fx);
    mock_stream *bits = fx_connect(fx);
    mock_set_write_max(bits, 7);
    mock_push_str(whole, GET_ROOT GET_ROOT);
    mock_push_str(bits, GET_ROOT GET_ROOT);
    fx_run(fx);
    size_t a, b;
    const char *oa = mock_output(whole, &a);
    const char *ob = mock_output(bits, &b);
    assert_true(a > 100);
    assert_int_equal(a, b);
    assert_memory_equal(oa, ob, a);
    assert_true(mock_write_calls(bits) > a / 7);
    fx_free(fx);
    mock_stream_free(whole);
    mock_stream_free(bits);
}

static void write_eagain_waits_for_writable(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = fx_connect(fx);
    mock_block_writes(m, true);
    mock_push_str(m, GET_ROOT GET_ROOT);
    fx_run(fx);
    size_t len;
    mock_output(m, &len);
    assert_int_equal(len, 0);
    assert_false(mock_closed(m));
    mock_block_writes(m, false);
    fx_run(fx);
    char *out = fx_output(m);
    assert_int_equal(count_of(out, "HTTP/1.1 200 OK"), 2);
    assert_int_equal(count_of(out, FX_INDEX), 2);
    free(out);
    fx_free(fx);
    mock_stream_free(m);
}

static void client_hangs_up_mid_response(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = fx_connect(fx);
    mock_reset_after(m, 20);
    mock_push_str(m, GET_ROOT);
    fx_run(fx);
    size_t len;
    mock_output(m, &len);
    assert_int_equal(len, 20);
    assert_true(mock_ended(m));
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    fx_free(fx);
    mock_stream_free(m);
}

static void eof_after_request_answers_then_closes(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET_ROOT);
    mock_push_eof(m);
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, FX_INDEX));
    assert_true(mock_ended(m));
    free(out);
    fx_free(fx);
    mock_stream_free(m);
}

static void head_has_no_body(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char *out = fx_exchange(fx, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "Content-Length: 13\r\n"));
    assert_null(strstr(out, FX_INDEX));
    assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n");
    free(out);
    fx_free(fx);
}

static void bad_requests_get_400_and_close(void **state)
{
    (void)state;
    const char *bad[] = {
        "HELLO\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                      /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
    };
    fixture *fx = fx_new(NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[256];
        /* The request behind is never answered: framing is in doubt. */
        snprintf(req, sizeof(req), "%s%s", bad[i], GET_ROOT);
        bool closed;
        char *out = fx_exchange(fx, req, &closed);
        assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_int_equal(count_of(out, "HTTP/1.1"), 1);
        assert_true(closed);
        free(out);
    }
    fx_free(fx);
}

static void oversized_head_gets_431(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    char req[2048];
    memset(req, 'a', sizeof(req));
    memcpy(req, "GET / HTTP/1.1\r\nHost: t\r\nX: ", 28);
    req[sizeof(req) - 1] = 0;
    bool closed; /* the head never ends: the limit must trip anyway */
    char *out = fx_exchange(fx, req, &closed);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    assert_true(closed);
    free(out);
    fx_free(fx);
}

static void head_just_under_limit_is_served(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    char req[1025];
    memset(req, 'a', sizeof(req));
    memcpy(req, "GET / HTTP/1.1\r\nHost: t\r\nX: ", 28);
    memcpy(req + 1024 - 4, "\r\n\r\n", 5); /* exactly 1024 bytes */
    char *out = fx_exchange_bytewise(fx, req, NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    free(out);
    fx_free(fx);
}

static void idle_connection_closed_by_keepalive_timeout(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, GET_ROOT);
    fx_run(fx);
    fx_advance(fx, 4999);
    assert_false(mock_closed(m));
    fx_advance(fx, 1);
    assert_true(mock_closed(m));
    assert_false(mock_reset_by_owner(m)); /* an idle close is graceful */
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    fx_free(fx);
    mock_stream_free(m);
}

static void empty_lines_do_not_keep_a_connection_open(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    mock_stream *fresh = fx_connect(fx);
    mock_stream *kept = fx_connect(fx);
    mock_push_str(kept, GET_ROOT);
    fx_run(fx);
    for (int t = 0; t < 2900; t += 500) { /* CRLF every 0.5 s */
        mock_push_str(fresh, "\r\n");
        mock_push_str(kept, "\r\n");
        fx_advance(fx, 500);
    }
    /* The new one had header_ms (3 s) from connect, the kept one
     * keepalive_ms (5 s) from its last answer: empty lines extend neither. */
    assert_true(mock_closed(fresh));
    assert_false(mock_closed(kept));
    for (int t = 0; t < 2100; t += 500) {
        mock_push_str(kept, "\r\n");
        fx_advance(fx, 500);
    }
    assert_true(mock_closed(kept));
    fx_free(fx);
    mock_stream_free(fresh);
    mock_stream_free(kept);
}

static void slow_head_closed_by_header_timeout(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET / HT");
    fx_advance(fx, 2000);
    mock_push_str(m, "TP/1.1\r\n"); /* progress does not extend the deadline */
    fx_advance(fx, 999);
    assert_false(mock_closed(m));
    fx_advance(fx, 1);
    assert_true(mock_ended(m));
    fx_free(fx);
    mock_stream_free(m);
}

static void stalled_reader_closed_by_send_timeout(void **state)
{
    (void)state;
    fixture *fx = fx_new(&small_limits);
    mock_stream *m = fx_connect(fx);
    mock_block_writes(m, true);
    mock_push_str(m, GET_ROOT);
    fx_advance(fx, 3999);
    assert_false(mock_closed(m));
    fx_advance(fx, 1);
    assert_true(mock_closed(m));
    /* Reset, so the kernel drops what the client never took. */
    assert_true(mock_reset_by_owner(m));
    fx_free(fx);
    mock_stream_free(m);
}

static void lingering_close_is_bounded(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = fx_connect(fx);
    /* A request eddy will not answer follows one that closes. */
    mock_push_str(m, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
    fx_run(fx);
    assert_true(mock_write_shut(m)); /* FIN sent after the answer... */
    assert_false(mock_closed(m));    /* ...and what the client sends is drained */
    mock_push_str(m, "more bytes the client had in flight");
    fx_run(fx);
    assert_false(mock_closed(m));
    fx_advance(fx, 2000); /* until the linger time runs out */
    assert_true(mock_closed(m));
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    fx_free(fx);
    mock_stream_free(m);
}

/* ------------------------------------------------ answering later -- */

typedef struct later {
    eddy_timer t;
    eddy_request *req;
    int aborted;
} later;

static later pending_later;

static void answer_later(void *data)
{
    later *l = data;
    eddy_respond(l->req, 200, "text/plain", "late\n", 5);
}

static void on_abort(void *data)
{
    later *l = data;
    l->aborted++;
    eddy_timer_stop(eddy_request_loop(l->req), &l->t);
}

static void slow(eddy_request *req, void *data)
{
    (void)data;
    later *l = &pending_later;
    l->req = req;
    eddy_str path = eddy_request_path(req);
    assert_int_equal(path.len, 5);
    eddy_timer_init(&l->t, answer_later, l);
    eddy_timer_start(eddy_request_loop(req), &l->t, 1000);
    eddy_request_on_abort(req, on_abort, l);
}

/* The held request's late answer came first, then the index pipelined
 * behind it: answers stay in request order. */
static void assert_late_then_index(mock_stream *m)
{
    char *out = fx_output(m);
    assert_before(out, "late\n", FX_INDEX);
    assert_int_equal(count_of(out, "HTTP/1.1 "), 2);
    free(out);
}

static void handler_answers_from_timer(void **state)
{
    (void)state;
    pending_later = (later){0};
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/slow", slow, NULL, false);
    mock_stream *m = fx_connect(fx);
    mock_stream *other = fx_connect(fx);
    /* A request pipelined behind the slow one waits its turn. */
    mock_push_str(m, "GET /slow HTTP/1.1\r\nHost: t\r\nX-Trace: 42\r\n\r\n" GET_ROOT);
    fx_run(fx);
    size_t len;
    mock_output(m, &len);
    assert_int_equal(len, 0);
    /* The request's views stay valid while it is held. */
    eddy_str trace = eddy_request_header(pending_later.req, "x-trace");
    assert_int_equal(trace.len, 2);
    assert_memory_equal(trace.ptr, "42", 2);
    /* Meanwhile another connection is served at once. */
    mock_push_str(other, GET_ROOT);
    fx_run(fx);
    char *o = fx_output(other);
    assert_non_null(strstr(o, FX_INDEX));
    free(o);
    fx_advance(fx, 999);
    mock_output(m, &len);
    assert_int_equal(len, 0);
    fx_advance(fx, 1);
    assert_late_then_index(m);
    assert_int_equal(pending_later.aborted, 0);
    fx_free(fx);
    mock_stream_free(m);
    mock_stream_free(other);
}

/* A body that arrives after its head is read apart from it (in the loop's
 * scratch, in large reads), while the head stays where the request's
 * views point: a held request keeps its fields, and a request pipelined
 * behind the body waits its turn intact. */
static void body_after_head_keeps_the_held_request(void **state)
{
    (void)state;
    static const char *heads[] = {
        "POST /slow HTTP/1.1\r\nHost: t\r\nX-Trace: 42\r\nContent-Length: 100000\r\n\r\n",
        "POST /slow HTTP/1.1\r\nHost: t\r\nX-Trace: 42\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (int chunked = 0; chunked < 2; chunked++) {
        pending_later = (later){0};
        fixture *fx = fx_new(NULL);
        fx_route(fx, "/slow", slow, NULL, false);
        mock_stream *m = fx_connect(fx);
        mock_push_str(m, heads[chunked]);
        fx_run(fx);
        size_t n = 100000;
        char *body = malloc(n + 64);
        memset(body, 'b', n);
        if (chunked) {
            /* Two chunks of 50000 (c350 in hex), split across the pieces. */
            size_t at = 0;
            at += (size_t)sprintf(body + at, "c350\r\n");
            memset(body + at, 'b', 50000);
            at += 50000;
            at += (size_t)sprintf(body + at, "\r\nc350\r\n");
            memset(body + at, 'b', 50000);
            at += 50000;
            at += (size_t)sprintf(body + at, "\r\n0\r\n\r\n");
            n = at;
        }
        mock_push(m, body, 30000);
        mock_push_eagain(m);
        char *rest = malloc(n - 30000 + sizeof(GET_ROOT));
        memcpy(rest, body + 30000, n - 30000);
        memcpy(rest + n - 30000, GET_ROOT, sizeof(GET_ROOT) - 1);
        mock_push(m, rest, n - 30000 + sizeof(GET_ROOT) - 1);
        free(body);
        free(rest);
        fx_run(fx);
        size_t len;
        mock_output(m, &len);
        assert_int_equal(len, 0);
        assert_false(mock_closed(m));
        eddy_str trace = eddy_request_header(pending_later.req, "x-trace");
        assert_int_equal(trace.len, 2);
        assert_memory_equal(trace.ptr, "42", 2);
        assert_int_equal(eddy_request_path(pending_later.req).len, 5);
        fx_advance(fx, 1000);
        assert_late_then_index(m);
        fx_free(fx);
        mock_stream_free(m);
    }
}

/* A fixture with one connection whose GET /slow the `slow` handler holds. */
static mock_stream *connect_held(fixture **out)
{
    pending_later = (later){0};
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/slow", slow, NULL, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    *out = fx;
    return m;
}

static void client_leaves_while_handler_waits(void **state)
{
    (void)state;
    fixture *fx;
    mock_stream *m = connect_held(&fx);
    mock_push_reset(m);
    fx_run(fx);
    assert_true(mock_ended(m));
    assert_int_equal(pending_later.aborted, 1);
    assert_int_equal(eddy_server_connections(fx->srv), 0);
    fx_advance(fx, 2000); /* the cancelled timer never fires */
    size_t len;
    mock_output(m, &len);
    assert_int_equal(len, 0);
    fx_free(fx);
    mock_stream_free(m);
}

static void set_flag(void *data) { *(int *)data = 1; }

static void shutdown_waits_for_held_requests(void **state)
{
    (void)state;
    pending_later = (later){0};
    fixture *fx = fx_new(NULL);
    fx_route(fx, "/slow", slow, NULL, false);
    mock_stream *busy = fx_connect(fx);
    mock_stream *idle = fx_connect(fx);
    mock_push_str(busy, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    mock_push_str(idle, GET_ROOT);
    fx_run(fx);
    int done = 0;
    eddy_server_shutdown(fx->srv, set_flag, &done);
    fx_run(fx);
    /* An idle keep-alive connection takes one more request, answered with
     * Connection: close, for CONN_DRAIN_IDLE_MS. */
    assert_false(mock_closed(idle));
    free(fx_output(idle));
    fx_advance(fx, CONN_DRAIN_IDLE_MS / 2);
    mock_push_str(idle, GET_ROOT);
    fx_run(fx);
    char *late = fx_output(idle);
    assert_non_null(strstr(late, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(late, "Connection: close\r\n"));
    assert_true(mock_ended(idle));
    free(late);
    assert_false(mock_closed(busy));
    assert_int_equal(done, 0);
    fx_advance(fx, 1000);
    char *out = fx_output(busy);
    assert_non_null(strstr(out, "late\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_true(mock_ended(busy));
    assert_true(mock_closed(busy));
    assert_int_equal(done, 1);
    free(out);
    fx_free(fx);
    mock_stream_free(busy);
    mock_stream_free(idle);
}

/* Without another request, a draining idle connection closes once
 * CONN_DRAIN_IDLE_MS have passed, and the server is drained. */
static void shutdown_closes_idle_after_grace(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *idle = fx_connect(fx);
    mock_push_str(idle, GET_ROOT);
    fx_run(fx);
    free(fx_output(idle));
    int done = 0;
    eddy_server_shutdown(fx->srv, set_flag, &done);
    fx_run(fx);
    assert_false(mock_closed(idle));
    fx_advance(fx, CONN_DRAIN_IDLE_MS - 1);
    assert_false(mock_closed(idle));
    assert_int_equal(done, 0);
    fx_advance(fx, 1);
    assert_true(mock_closed(idle));
    assert_int_equal(done, 1);
    fx_free(fx);
    mock_stream_free(idle);
}

static void server_freed_while_handler_waits(void **state)
{
    (void)state;
    fixture *fx;
    mock_stream *m = connect_held(&fx);
    fx_free(fx); /* the abort callback runs; nothing is freed twice */
    assert_int_equal(pending_later.aborted, 1);
    mock_stream_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_root_serves_index),
        cmocka_unit_test(request_one_byte_at_a_time),
        cmocka_unit_test(two_requests_in_one_read_coalesce),
        cmocka_unit_test(read_eagain_between_pieces),
        cmocka_unit_test(short_writes_deliver_everything),
        cmocka_unit_test(write_eagain_waits_for_writable),
        cmocka_unit_test(client_hangs_up_mid_response),
        cmocka_unit_test(eof_after_request_answers_then_closes),
        cmocka_unit_test(head_has_no_body),
        cmocka_unit_test(bad_requests_get_400_and_close),
        cmocka_unit_test(oversized_head_gets_431),
        cmocka_unit_test(head_just_under_limit_is_served),
        cmocka_unit_test(idle_connection_closed_by_keepalive_timeout),
        cmocka_unit_test(empty_lines_do_not_keep_a_connection_open),
        cmocka_unit_test(slow_head_closed_by_header_timeout),
        cmocka_unit_test(stalled_reader_closed_by_send_timeout),
        cmocka_unit_test(lingering_close_is_bounded),
        cmocka_unit_test(handler_answers_from_timer),
        cmocka_unit_test(body_after_head_keeps_the_held_request),
        cmocka_unit_test(client_leaves_while_handler_waits),
        cmocka_unit_test(shutdown_waits_for_held_requests),
        cmocka_unit_test(shutdown_closes_idle_after_grace),
        cmocka_unit_test(server_freed_while_handler_waits),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
