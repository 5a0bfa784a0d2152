/* Metrics and the status page over mock connections: counters that match
 * the requests sent, the Prometheus text and JSON they are shown as, the
 * allow list, and the dashboard's files. */
#include "harness.h"

#include "metrics/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWORKERS 2
#define SLOT 1 /* the fixture's server is worker 2 of 2 */

typedef struct world {
    fixture *fx;
    eddy_metrics *m;
    eddy_status *st;
} world;

static void never_answers(eddy_request *req, void *data)
{
    (void)data;
    (void)req; /* held: its connection is busy until the server goes */
}

/* A server counting into slot SLOT, with the status page at /status for
 * the mock's peer (allow NULL: the default, loopback alone). */
static world *world_new(const char *allow)
{
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->fx = fx_new(NULL);
    assert_int_equal(eddy_metrics_new(NWORKERS, &w->m), 0);
    assert_int_equal(eddy_server_metrics(w->fx->srv, w->m, SLOT), 0);
    const char *blocks[] = {allow};
    eddy_status_config sc = {"/status", allow ? blocks : NULL, allow ? 1 : 0};
    char err[256];
    assert_int_equal(eddy_status_new(&sc, &w->st, err, sizeof(err)), 0);
    eddy_route r = {.path = "/status", .prefix = true, .methods = "GET",
                    .handler = eddy_status_handler, .data = w->st};
    assert_int_equal(eddy_server_route(w->fx->srv, &r), 0);
    fx_route(w->fx, "/hold", never_answers, NULL, false);
    return w;
}

static void world_free(world *w)
{
    fx_free(w->fx);
    eddy_status_free(w->st);
    eddy_metrics_free(w->m);
    free(w);
}

/* The body after the head of a single response. */
static const char *body_of(const char *out)
{
    const char *b = strstr(out, "\r\n\r\n");
    assert_non_null(b);
    return b + 4;
}

static void counters_match_the_requests(void **state)
{
    (void)state;
    world *w = world_new("192.0.2.0/24");
    static const char sent[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
                               "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                               "DELETE /status HTTP/1.1\r\nHost: t\r\n\r\n";
    mock_stream *c = fx_connect(w->fx);
    mock_push_str(c, sent);
    fx_run(w->fx);
    size_t out_len;
    mock_output(c, &out_len);
    /* Open and idle while it waits for its next request. */
    metrics_values *v = metrics_read(w->m);
    assert_int_equal(v[0].requests[METRICS_H1][1], 3);
    assert_int_equal(v[0].requests[METRICS_H1][3], 2); /* 404, 405 */
    assert_int_equal(v[0].requests[METRICS_H2][1], 0);
    assert_int_equal(v[0].bytes_in, strlen(sent));
    assert_int_equal(v[0].bytes_out, out_len);
    assert_int_equal(v[0].conns_open, 1);
    assert_int_equal(v[0].conns_idle, 1);
    assert_int_equal(v[0].duration_count, 5);
    assert_int_equal(v[0].duration[0], 5); /* the virtual clock stood still */
    assert_int_equal(v[1].duration_count, 0); /* worker 1 served nothing */
    assert_int_equal(v[SLOT + 1].duration_count, 5);
    free(v);
    /* A request a handler holds makes its connection busy. */
    mock_push_str(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    free(fx_exchange(w->fx, "GARBAGE\r\n\r\n", NULL)); /* 400, on a second connection */
    v = metrics_read(w->m);
    assert_int_equal(v[0].conns_open, 1);
    assert_int_equal(v[0].conns_idle, 0);
    assert_int_equal(v[0].requests[METRICS_H1][3], 3);
    free(v);
    mock_push_reset(c);
    fx_run(w->fx);
    mock_stream_free(c);
    world_free(w);
}

/* Every line is a comment or NAME{LABELS} VALUE, and the families are
 * each worker's and their sum. */
static void prometheus_text(void **state)
{
    (void)state;
    world *w = world_new("192.0.2.1");
    free(fx_exchange(w->fx, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    char *out = fx_exchange(w->fx, "GET /status/metrics HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));
    const char *text = body_of(out);
    assert_non_null(strstr(text, "# TYPE eddy_requests_total counter\n"));
    assert_non_null(strstr(text, "\neddy_requests_total{protocol=\"http/1.1\",class=\"2xx\"} 1\n"));
    assert_non_null(strstr(text, "\neddy_requests_total{worker=\"2\",protocol=\"http/1.1\",class=\"2xx\"} 1\n"));
    assert_non_null(strstr(text, "\neddy_requests_total{worker=\"1\",protocol=\"h2\",class=\"5xx\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE eddy_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "\neddy_request_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "\neddy_request_duration_seconds_bucket{worker=\"2\",le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "\neddy_request_duration_seconds_count 1\n"));
    static const char *const families[] = {
        "eddy_received_bytes_total counter", "eddy_sent_bytes_total counter",
        "eddy_connections_open gauge", "eddy_connections_idle gauge",
        "eddy_connections_accepted_total counter", "eddy_tls_handshakes_total counter",
        "eddy_accept_pauses_total counter"};
    char want[96];
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        snprintf(want, sizeof(want), "# TYPE %s\n", families[i]);
        assert_int_equal(count_of(text, want), 1);
    }
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends */
        if (line[0] != '#') {
            const char *sp = memchr(line, ' ', (size_t)(nl - line));
            assert_non_null(sp);
            assert_true(strncmp(line, "eddy_", 5) == 0);
            char *end;
            strtod(sp + 1, &end);
            assert_ptr_equal(end, nl);
        }
        line = nl + 1;
    }
    free(out);
    world_free(w);
}

static void json_shape(void **state)
{
    (void)state;
    world *w = world_new("192.0.2.1/32");
    free(fx_exchange(w->fx, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", NULL));
    char *out = fx_exchange(w->fx, "GET /status/json HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    json_error_t jerr;
    json_t *root = json_loads(body_of(out), 0, &jerr);
    assert_non_null(root);
    assert_true(json_is_real(json_object_get(root, "time")));
    assert_int_equal(json_array_size(json_object_get(root, "buckets_le")), METRICS_NBOUNDS);
    json_t *workers = json_object_get(root, "workers");
    assert_int_equal(json_array_size(workers), NWORKERS);
    json_t *total = json_object_get(root, "total");
    json_int_t n4 = -1, open = -1, idle = -1, ok = -1, paused = -1, count = -1;
    json_t *buckets = NULL;
    assert_int_equal(json_unpack(total, "{s:{s:{s:I}}, s:{s:I, s:I}, s:{s:I}, s:{s:I},"
                                        " s:{s:o, s:I}}",
                                 "requests", "http/1.1", "4xx", &n4,
                                 "connections", "open", &open, "idle", &idle,
                                 "tls_handshakes", "ok", &ok,
                                 "accept_pauses", "max_conns", &paused,
                                 "duration", "buckets", &buckets, "count", &count),
                     0);
    assert_int_equal(n4, 1);
    assert_int_equal(open, 1); /* this request's own connection */
    assert_int_equal(idle, 0);
    assert_int_equal(ok, 0);
    assert_int_equal(paused, 0);
    assert_int_equal(count, 1);
    assert_int_equal(json_array_size(buckets), METRICS_NBUCKETS);
    json_int_t w2 = -1;
    assert_int_equal(json_unpack(json_array_get(workers, SLOT), "{s:{s:{s:I}}}", "requests",
                                 "http/1.1", "4xx", &w2), 0);
    assert_int_equal(w2, 1);
    assert_non_null(json_object_get(total, "bytes_in"));
    assert_non_null(json_object_get(total, "bytes_out"));
    json_decref(root);
    free(out);
    world_free(w);
}

static void forbidden_outside_the_allow_list(void **state)
{
    (void)state;
    world *w = world_new(NULL); /* loopback alone; the mock is 192.0.2.1 */
    static const char *const paths[] = {"/status", "/status/metrics", "/status/json",
                                        "/status/dygraph.min.js"};
    for (size_t i = 0; i < 4; i++) {
        char req[96];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
        char *out = fx_exchange(w->fx, req, NULL);
        assert_non_null(strstr(out, "HTTP/1.1 403 Forbidden\r\n"));
        assert_null(strstr(out, "eddy_"));
        free(out);
    }
    world_free(w);
}

static void dashboard_and_its_files(void **state)
{
    (void)state;
    world *w = world_new("192.0.2.1");
    static const struct {
        const char *path, *type, *contains;
    } cases[] = {
        {"/status", "text/html; charset=utf-8", "src=\"/status/dygraph.min.js\""},
        {"/status/", "text/html; charset=utf-8", "data-base=\"/status\""},
        {"/status/dashboard.js", "text/javascript; charset=utf-8", "data-points"},
        {"/status/dashboard.css", "text/css; charset=utf-8", ".chart"},
        {"/status/dygraph.min.js", "text/javascript; charset=utf-8", "Dygraph"},
        {"/status/dygraph.min.css", "text/css; charset=utf-8", "dygraph"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[96], type[96];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", cases[i].path);
        snprintf(type, sizeof(type), "Content-Type: %s\r\n", cases[i].type);
        char *out = fx_exchange(w->fx, req, NULL);
        assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(out, type));
        assert_non_null(strstr(body_of(out), cases[i].contains));
        free(out);
    }
    char *out = fx_exchange(w->fx, "GET /status/nothing.js HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    free(out);
    out = fx_exchange(w->fx, "POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    free(out);
    world_free(w);
}

/* A server with no metrics attached answers 503 rather than nothing. */
static void status_without_metrics(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    const char *allow[] = {"0.0.0.0/0"};
    eddy_status_config sc = {"/s", allow, 1};
    eddy_status *st;
    char err[256];
    assert_int_equal(eddy_status_new(&sc, &st, err, sizeof(err)), 0);
    eddy_route r = {.path = "/s", .prefix = true, .handler = eddy_status_handler, .data = st};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    char *out = fx_exchange(fx, "GET /s/metrics HTTP/1.1\r\nHost: t\r\n\r\n", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 503 "));
    free(out);
    fx_free(fx);
    eddy_status_free(st);
}

static void bad_configurations(void **state)
{
    (void)state;
    static const char *const paths[] = {"/", "status", "/a//b", "/a/../b", "/a b", "/x/", "/%41"};
    char err[256];
    eddy_status *st;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        eddy_status_config sc = {paths[i], NULL, 0};
        assert_int_equal(eddy_status_new(&sc, &st, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "status path"));
    }
    static const char *const blocks[] = {"10.0.0.0/33", "::1/129", "localhost", "10.0.0.0/", ""};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        eddy_status_config sc = {"/status", &blocks[i], 1};
        assert_int_equal(eddy_status_new(&sc, &st, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "not an address or a block"));
    }
    eddy_metrics *m;
    assert_int_equal(eddy_metrics_new(0, &m), -EINVAL);
    assert_int_equal(eddy_metrics_new(1, &m), 0);
    fixture *fx = fx_new(NULL);
    assert_int_equal(eddy_server_metrics(fx->srv, m, 1), -EINVAL);
    fx_free(fx);
    eddy_metrics_free(m);
}

/* Each worker's slot is whole cache lines of its own. */
static void slots_share_no_cache_line(void **state)
{
    (void)state;
    eddy_metrics *m;
    assert_int_equal(eddy_metrics_new(3, &m), 0);
    assert_int_equal(sizeof(metrics_slot) % 64, 0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal((uintptr_t)&m->slots[i] % 64, 0);
    eddy_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_match_the_requests),
        cmocka_unit_test(prometheus_text),
        cmocka_unit_test(json_shape),
        cmocka_unit_test(forbidden_outside_the_allow_list),
        cmocka_unit_test(dashboard_and_its_files),
        cmocka_unit_test(status_without_metrics),
        cmocka_unit_test(bad_configurations),
        cmocka_unit_test(slots_share_no_cache_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
