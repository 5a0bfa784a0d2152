/* The access log's JSON format: the line builder alone (escaping, UTF-8,
 * cutting), then through a server on mock connections: every field, over
 * "TLS" (a secure mock), over HTTP/2, and a request answered later (its
 * duration on the virtual clock). */
#include "harness.h"

#include "core/access_json.h"
#include "core/access_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static eddy_str str(const char *s) { return (eddy_str){s, strlen(s)}; }

static access_entry sample(void)
{
    return (access_entry){.time_sec = "2026-12-05T03:14:05", .time_ms = 7, .client = "::1",
                          .method = str("GET"), .path = str("/a?b=1"), .status = 200,
                          .bytes = 13, .duration_us = 1500, .protocol = "HTTP/1.1"};
}

static void every_field_in_order(void **state)
{
    (void)state;
    access_entry e = sample();
    e.tls = "TLSv1.3";
    e.host = str("example.com");
    e.referer = str("http://r/");
    e.user_agent = str("tool/1");
    char line[4096];
    size_t n = access_json_line(line, sizeof(line), &e);
    line[n] = 0;
    assert_string_equal(line,
                        "{\"time\":\"2026-12-05T03:14:05.007Z\",\"client\":\"::1\",\"method\":\"GET\","
                        "\"path\":\"/a?b=1\",\"status\":200,\"bytes\":13,\"duration_us\":1500,"
                        "\"protocol\":\"HTTP/1.1\",\"tls\":\"TLSv1.3\",\"host\":\"example.com\","
                        "\"referer\":\"http://r/\",\"user_agent\":\"tool/1\"}\n");
    /* Absent fields are null, and no bytes are 0. */
    e = sample();
    e.protocol = NULL;
    e.bytes = -1;
    n = access_json_line(line, sizeof(line), &e);
    line[n] = 0;
    assert_non_null(strstr(line, "\"bytes\":0,"));
    assert_non_null(strstr(line, "\"protocol\":null,\"tls\":null,\"host\":null,\"referer\":null,"
                                 "\"user_agent\":null}\n"));
}

static void strings_are_escaped_and_made_utf8(void **state)
{
    (void)state;
    access_entry e = sample();
    /* Quote, backslash, the short escapes, other controls, DEL; é and € as
     * they are; a stray byte, an overlong '/', a surrogate and a sequence
     * cut short each become U+FFFD. */
    e.user_agent = str("a\"b\\c\n\r\t\x01\x1f\x7f \xc3\xa9\xe2\x82\xac \xff \xc0\xaf \xed\xa0\x80 \xe2\x82");
    char line[4096];
    size_t n = access_json_line(line, sizeof(line), &e);
    line[n] = 0;
    assert_non_null(strstr(line, "\"user_agent\":\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\\u007f "
                                 "\xc3\xa9\xe2\x82\xac \\ufffd \\ufffd\\ufffd "
                                 "\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\"}\n"));
}

/* A cut string stays valid: it ends on a whole character or escape. */
static void long_strings_are_cut_whole(void **state)
{
    (void)state;
    static char quotes[6000], euros[3 * 2000 + 1], path[3000];
    memset(quotes, '"', sizeof(quotes));
    for (int i = 0; i < 2000; i++)
        memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
    memset(path, 'p', sizeof(path));
    access_entry e = sample();
    e.path = (eddy_str){path, sizeof(path)};
    e.referer = (eddy_str){euros, 3 * 2000};
    e.user_agent = (eddy_str){quotes, sizeof(quotes)};
    char line[4096 + 1];
    size_t n = access_json_line(line, 4096, &e);
    line[n] = 0;
    assert_true(n <= 4096);
    assert_int_equal(count_of(line, "\n"), 1);
    assert_true(n > 3000 && strcmp(line + n - 5, "\\\"\"}\n") == 0); /* an escape, then the end */
    const char *ref = strstr(line, "\"referer\":\"");
    assert_non_null(ref);
    const char *ref_end = strstr(ref, "\",\"user_agent\":");
    assert_non_null(ref_end);
    assert_int_equal((ref_end - ref - 11) % 3, 0); /* whole euro signs */
    assert_true(ref_end - ref - 11 <= ACCESS_JSON_REFERER_MAX - 2);
    assert_non_null(strstr(line, "ppp\",\"status\":200,"));
}

/* A server logging JSON to a fresh empty file named in path. */
static fixture *json_fixture(char path[24])
{
    strcpy(path, "/tmp/eddy-access-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    eddy_config cfg = {.access_log = path, .access_log_format = EDDY_LOG_JSON};
    return fx_new(&cfg);
}

static void over_http1_and_tls(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = json_fixture(path);
    mock_stream *m = mock_stream_new(fx->loop);
    mock_set_secure(m, true);
    assert_non_null(server_attach(fx->srv, mock_stream_base(m), false));
    mock_push_str(m, "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nReferer: http://r/\r\n"
                     "User-Agent: tool \"q\"\r\n\r\n");
    fx_run(fx);
    free(fx_output(m));
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    free(fx_exchange(fx, "HEAD /missing HTTP/1.0\r\n\r\n", NULL));
    free(fx_exchange(fx, "GARBAGE\r\n\r\n", NULL));
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    const char *log = slurp(path);
    assert_int_equal(count_of(log, "\n"), 3);
    assert_non_null(strstr(log, "{\"time\":\"1994-11-06T08:49:38.000Z\",\"client\":\"" MOCK_PEER
                                "\",\"method\":\"GET\",\"path\":\"/index.html?q=1\",\"status\":200,"
                                "\"bytes\":13,\"duration_us\":0,\"protocol\":\"HTTP/1.1\","
                                "\"tls\":\"TLSv1.3\",\"host\":\"example.com\",\"referer\":"
                                "\"http://r/\",\"user_agent\":\"tool \\\"q\\\"\"}\n"));
    assert_non_null(strstr(log, "\"method\":\"HEAD\",\"path\":\"/missing\",\"status\":404,\"bytes\":0,"
                                "\"duration_us\":0,\"protocol\":\"HTTP/1.0\",\"tls\":null,"
                                "\"host\":null,"));
    assert_non_null(strstr(log, "\"status\":400,"));
    fx_free(fx);
    unlink(path);
}

/* HTTP/2 with prior knowledge, frames written by hand: the preface, an
 * empty SETTINGS, and one HEADERS (HPACK without Huffman or indexing). */
static void over_http2(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = json_fixture(path);
    static const unsigned char block[] = {
        0x82, 0x86, 0x84,                    /* :method GET, :scheme http, :path / */
        0x01, 0x04, 'h', '2', '.', 't',      /* :authority h2.t */
        0x0f, 0x2b, 0x02, 'u', 'a',          /* user-agent ua (static index 58) */
    };
    unsigned char bytes[128];
    size_t n = 0;
    memcpy(bytes, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n += 24;
    static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    memcpy(bytes + n, settings, 9);
    n += 9;
    unsigned char head[9] = {0, 0, sizeof(block), 1, 0x05, 0, 0, 0, 1}; /* END_STREAM|END_HEADERS */
    memcpy(bytes + n, head, 9);
    n += 9;
    memcpy(bytes + n, block, sizeof(block));
    n += sizeof(block);
    mock_stream *m = fx_connect(fx);
    mock_push(m, bytes, n);
    fx_run(fx);
    free(fx_output(m));
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    const char *log = slurp(path);
    assert_non_null(strstr(log, "\"method\":\"GET\",\"path\":\"/\",\"status\":200,\"bytes\":13,"
                                "\"duration_us\":0,\"protocol\":\"HTTP/2\",\"tls\":null,"
                                "\"host\":\"h2.t\",\"referer\":null,\"user_agent\":\"ua\"}\n"));
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
    unlink(path);
}

/* duration_us runs from the request's start to its answer. */
typedef struct held {
    eddy_request *req;
    eddy_timer timer;
} held;

static void answer(void *data)
{
    held *h = data;
    eddy_respond(h->req, 200, "text/plain", "late", 4);
}

static void hold(eddy_request *req, void *data)
{
    held *h = data;
    h->req = req;
    eddy_timer_start(eddy_request_loop(req), &h->timer, 250);
}

static void duration_of_a_request_answered_later(void **state)
{
    (void)state;
    char path[24];
    fixture *fx = json_fixture(path);
    held h = {0};
    eddy_timer_init(&h.timer, answer, &h);
    fx_route(fx, "/later", hold, &h, false);
    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
    fx_run(fx);
    fx_advance(fx, 250);
    free(fx_output(m));
    fx_advance(fx, ACCESS_LOG_FLUSH_MS);
    assert_non_null(strstr(slurp(path), "\"status\":200,\"bytes\":4,\"duration_us\":250000,"));
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_in_order),
        cmocka_unit_test(strings_are_escaped_and_made_utf8),
        cmocka_unit_test(long_strings_are_cut_whole),
        cmocka_unit_test(over_http1_and_tls),
        cmocka_unit_test(over_http2),
        cmocka_unit_test(duration_of_a_request_answered_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
