/* Sites: a request goes to the site whose names cover its host (Host,
 * an absolute-form target's authority), else to the default site, else
 * gets the no-match status; header rules and body limits per site and
 * path; a new set of sites replaces the old while held requests finish on
 * theirs. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers with the route's name, and a field the rules may act on. */
static void named(eddy_request *req, void *data)
{
    eddy_response_field(req, "X-Handler", "yes");
    eddy_respond(req, 200, "text/plain", data, strlen(data));
}

static void add_route(eddy_site *s, const char *path, const char *name)
{
    eddy_route r = {.path = path, .prefix = true, .handler = named, .data = (void *)name};
    assert_int_equal(eddy_site_route(s, &r), 0);
}

static char *get_host(fixture *fx, const char *target, const char *host)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, host);
    return fx_exchange(fx, req, NULL);
}

static void expect(fixture *fx, const char *target, const char *host, const char *want)
{
    char *out = get_host(fx, target, host);
    if (!strstr(out, want))
        fail_msg("GET %s with Host %s: wanted '%s' in:\n%s", target, host, want, out);
    free(out);
}

/* Two named sites and a default: a.test, *.b.test, and the rest. */
static eddy_sites *two_sites(void)
{
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set), *b = eddy_sites_add(set), *d = eddy_sites_add(set);
    assert_int_equal(eddy_site_name(a, "a.test"), 0);
    assert_int_equal(eddy_site_name(a, "www.a.test"), 0);
    assert_int_equal(eddy_site_name(b, "*.b.test"), 0);
    add_route(a, "/", "site a");
    add_route(b, "/", "site b");
    add_route(d, "/", "default site");
    eddy_sites_default(set, d);
    return set;
}

static void host_chooses_the_site(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    assert_int_equal(eddy_server_use_sites(fx->srv, two_sites()), 0);
    expect(fx, "/", "a.test", "site a");
    expect(fx, "/", "WWW.A.Test", "site a");          /* any case */
    expect(fx, "/", "a.test:8080", "site a");         /* the port ignored */
    expect(fx, "/", "a.test.", "site a");             /* a trailing dot too */
    expect(fx, "/", "x.b.test", "site b");            /* a wildcard, */
    expect(fx, "/", "y.x.b.test", "site b");          /* at any depth, */
    expect(fx, "/", "b.test", "default site");        /* not the name itself */
    expect(fx, "/", "c.test", "default site");
    expect(fx, "/", "", "default site");               /* an empty Host */
    expect(fx, "/", "[::1]:80", "default site");
    /* An absolute-form target's authority stands for Host (RFC 9112 §3.2.2). */
    expect(fx, "http://a.test/x", "c.test", "site a");
    expect(fx, "http://c.test/x", "a.test", "default site");
    /* A Host that is not one is 400 (RFC 9112 §3.2). */
    expect(fx, "/", "a test", "HTTP/1.1 400 ");
    expect(fx, "/", "a.test:x", "HTTP/1.1 400 ");
    expect(fx, "/", "a..test", "HTTP/1.1 400 ");
    fx_free(fx);
}

static void no_default_site_is_421_or_404(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set);
    assert_int_equal(eddy_site_name(a, "a.test"), 0);
    add_route(a, "/", "site a");
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);
    expect(fx, "/", "a.test", "site a");
    expect(fx, "/", "c.test", "HTTP/1.1 421 Misdirected Request\r\n");
    /* A body the request has is not read: the connection closes. */
    bool closed = false;
    char *out = fx_exchange(fx, "POST / HTTP/1.1\r\nHost: c.test\r\nContent-Length: 3\r\n\r\nabc",
                            &closed);
    assert_non_null(strstr(out, "HTTP/1.1 421 "));
    assert_true(closed);
    free(out);

    set = eddy_sites_new();
    a = eddy_sites_add(set);
    assert_int_equal(eddy_site_name(a, "a.test"), 0);
    add_route(a, "/", "site a");
    assert_int_equal(eddy_sites_no_match(set, 404), 0);
    assert_int_equal(eddy_sites_no_match(set, 500), -EINVAL);
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);
    expect(fx, "/", "c.test", "HTTP/1.1 404 Not Found\r\n");
    /* No default site: nothing for eddy_server_route to add to. */
    eddy_route r = {.path = "/x", .handler = named, .data = "x"};
    assert_int_equal(eddy_server_route(fx->srv, &r), -ENOENT);
    assert_int_equal(eddy_server_use_sites(fx->srv, eddy_sites_new()), 0);
    assert_int_equal(eddy_server_route(fx->srv, &r), -ENOENT);
    expect(fx, "/", "a.test", "HTTP/1.1 421 ");
    fx_free(fx);
}

static void names_are_checked(void **state)
{
    (void)state;
    eddy_sites *set = eddy_sites_new();
    eddy_site *s = eddy_sites_add(set);
    assert_int_equal(eddy_site_name(s, "Example.COM."), 0);
    assert_int_equal(eddy_site_name(s, "*.example.com"), 0);
    assert_int_equal(eddy_site_name(s, "127.0.0.1"), 0);
    assert_int_equal(eddy_site_name(s, "[::1]"), 0);
    assert_int_equal(eddy_site_name(s, "example.com:80"), -EINVAL);
    assert_int_equal(eddy_site_name(s, "*.[::1]"), -EINVAL);
    assert_int_equal(eddy_site_name(s, "a b"), -EINVAL);
    assert_int_equal(eddy_site_name(s, "a.*.com"), -EINVAL);
    assert_int_equal(eddy_site_name(s, ""), -EINVAL);
    assert_int_equal(eddy_site_name(s, NULL), -EINVAL);
    eddy_sites_free(set);
}

static void header_rules_by_site_and_path(void **state)
{
    (void)state;
    const char *server_fields[] = {"X-Server: s", "X-Frame-Options: DENY"};
    eddy_config cfg = {.response_fields = server_fields, .nresponse_fields = 2};
    fixture *fx = fx_new_without_files(&cfg);
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set);
    add_route(a, "/", "root");
    add_route(a, "/static", "static");
    eddy_sites_default(set, a);
    assert_int_equal(eddy_site_header(a, NULL, EDDY_HEADER_SET, "X-Frame-Options: SAMEORIGIN"), 0);
    assert_int_equal(eddy_site_header(a, NULL, EDDY_HEADER_ADD, "X-Site: a"), 0);
    assert_int_equal(eddy_site_header(a, "/static", EDDY_HEADER_SET, "Cache-Control: max-age=60"), 0);
    assert_int_equal(eddy_site_header(a, "/static", EDDY_HEADER_REMOVE, "X-Handler"), 0);
    assert_int_equal(eddy_site_header(a, "/static", EDDY_HEADER_REMOVE, "x-site"), 0);
    assert_int_equal(eddy_site_header(a, "/nowhere", EDDY_HEADER_ADD, "X-A: b"), -ENOENT);
    assert_int_equal(eddy_site_header(a, NULL, EDDY_HEADER_ADD, "Content-Length: 1"), -EPERM);
    assert_int_equal(eddy_site_header(a, NULL, EDDY_HEADER_ADD, "X-A: b\r\nX-B: c"), -EINVAL);
    assert_int_equal(eddy_site_header(a, NULL, EDDY_HEADER_REMOVE, "X-A: b"), -EINVAL);
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);

    char *out = get_host(fx, "/page", "a");
    assert_non_null(strstr(out, "X-Server: s\r\n"));
    assert_non_null(strstr(out, "X-Frame-Options: SAMEORIGIN\r\n")); /* the site's SET wins */
    assert_null(strstr(out, "DENY"));
    assert_non_null(strstr(out, "X-Site: a\r\n"));
    assert_non_null(strstr(out, "X-Handler: yes\r\n"));
    assert_before(out, "X-Site: a\r\n", "X-Handler: yes\r\n"); /* a handler's come last */
    assert_before(out, "X-Server: s\r\n", "X-Handler: yes\r\n");
    assert_null(strstr(out, "Cache-Control"));
    free(out);
    out = get_host(fx, "/static/x.css", "a");
    assert_non_null(strstr(out, "Cache-Control: max-age=60\r\n"));
    assert_null(strstr(out, "X-Handler")); /* a handler's field removed */
    assert_null(strstr(out, "X-Site"));    /* and the site's, for this path */
    assert_non_null(strstr(out, "X-Frame-Options: SAMEORIGIN\r\n"));
    free(out);
    /* Rules apply to eddy's own answers too, once the site is known. */
    out = get_host(fx, "/a%zz", "a");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    assert_non_null(strstr(out, "X-Site: a\r\n"));
    free(out);
    fx_free(fx);
}

static void body_limit_by_path(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL); /* the server's limit: 1 MiB */
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set);
    eddy_route up = {.path = "/up", .prefix = true, .body = EDDY_BODY_WHOLE, .handler = named,
                     .data = "up"};
    assert_int_equal(eddy_site_route(a, &up), 0);
    add_route(a, "/", "root");
    eddy_path_limits four = {.max_body = 4};
    assert_int_equal(eddy_site_limits(a, "/up", &four), 0);
    assert_int_equal(eddy_site_limits(a, "/none", &four), -ENOENT);
    eddy_sites_default(set, a);
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);
    char *out = fx_exchange(fx, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    free(out);
    out = fx_exchange(fx, "POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 413 "));
    free(out);
    out = fx_exchange(fx,
                      "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                      NULL);
    assert_non_null(strstr(out, "HTTP/1.1 413 "));
    free(out);
    out = fx_exchange(fx, "POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde", NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    free(out);
    fx_free(fx);
}

/* A path's send and body timeouts, on the virtual clock: a client that
 * stops taking a response, or stops sending a body, is closed after its
 * path's time, while elsewhere the server's (longer) ones hold. */
static void timeouts_by_path(void **state)
{
    (void)state;
    eddy_config cfg = {.send_ms = 10000, .header_ms = 10000};
    fixture *fx = fx_new_without_files(&cfg);
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set);
    add_route(a, "/", "root");
    eddy_route up = {.path = "/up", .prefix = true, .body = EDDY_BODY_WHOLE, .handler = named,
                     .data = "up"};
    assert_int_equal(eddy_site_route(a, &up), 0);
    add_route(a, "/quick", "quick");
    eddy_path_limits quick = {.send_ms = 500}, upload = {.body_ms = 500};
    assert_int_equal(eddy_site_limits(a, "/quick", &quick), 0);
    assert_int_equal(eddy_site_limits(a, "/up", &upload), 0);
    eddy_sites_default(set, a);
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);

    /* Responses nobody takes. */
    mock_stream *slow = fx_connect(fx), *fast = fx_connect(fx);
    mock_block_writes(slow, true);
    mock_block_writes(fast, true);
    mock_push_str(slow, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    mock_push_str(fast, "GET /quick HTTP/1.1\r\nHost: a\r\n\r\n");
    fx_run(fx);
    fx_advance(fx, 600);
    assert_true(mock_closed(fast));   /* its path's 500 ms */
    assert_false(mock_closed(slow));  /* the server's 10 s */
    fx_advance(fx, 10000);
    assert_true(mock_closed(slow));
    mock_stream_free(slow);
    mock_stream_free(fast);

    /* Bodies that stop coming. */
    mock_stream *up1 = fx_connect(fx), *other = fx_connect(fx);
    mock_push_str(up1, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    mock_push_str(other, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    fx_run(fx);
    fx_advance(fx, 600);
    assert_true(mock_ended(up1));
    assert_false(mock_ended(other));
    fx_advance(fx, 10000);
    assert_true(mock_ended(other));
    mock_stream_free(up1);
    mock_stream_free(other);
    fx_free(fx);
}

/* A held request and what the old set's on_free saw. */
static eddy_request *held;
static int freed;

static void hold(eddy_request *req, void *data)
{
    (void)data;
    held = req;
}

static void count_free(void *data)
{
    (void)data;
    freed++;
}

static void count_use(void *data) { ++*(int *)data; }

static void held_requests_finish_on_their_sites(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    eddy_sites *old = eddy_sites_new();
    eddy_site *s = eddy_sites_add(old);
    eddy_route r = {.path = "/held", .handler = hold};
    assert_int_equal(eddy_site_route(s, &r), 0);
    add_route(s, "/", "old");
    eddy_sites_default(old, s);
    eddy_sites_on_free(old, count_free, NULL);
    int used = 0;
    eddy_sites_on_use(old, count_use, &used);
    assert_int_equal(used, 0);
    assert_int_equal(eddy_server_use_sites(fx->srv, old), 0);
    assert_int_equal(used, 1); /* told as the server takes it */

    mock_stream *m = fx_connect(fx);
    mock_push_str(m, "GET /held HTTP/1.1\r\nHost: a\r\n\r\n");
    fx_run(fx);
    assert_non_null(held);

    eddy_sites *fresh = eddy_sites_new();
    s = eddy_sites_add(fresh);
    add_route(s, "/", "new");
    eddy_sites_default(fresh, s);
    assert_int_equal(eddy_server_use_sites(fx->srv, fresh), 0);
    assert_int_equal(freed, 0); /* the held request keeps the old set */
    expect(fx, "/x", "a", "new");

    assert_int_equal(eddy_respond(held, 200, "text/plain", "late", 4), 0);
    fx_run(fx);
    assert_int_equal(freed, 1);
    /* The connection's next request is routed by the new set. */
    mock_push_str(m, "GET /held HTTP/1.1\r\nHost: a\r\n\r\n");
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "late"));
    assert_non_null(strstr(out, "new"));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

/* Sites limited to listeners: a named one takes its names there only, a
 * nameless one any host there; the default only where it listens. */
static char *get_on(fixture *fx, uint16_t tag, const char *host)
{
    mock_stream *m = fx_connect(fx);
    ((conn *)((eddy_stream *)m)->owner)->listener = tag;
    char req[256];
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    mock_push_str(m, req);
    fx_run(fx);
    char *out = fx_output(m);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    return out;
}

static void expect_on(fixture *fx, uint16_t tag, const char *host, const char *want)
{
    char *out = get_on(fx, tag, host);
    if (!strstr(out, want))
        fail_msg("listener %u, Host %s: wanted '%s' in:\n%s", tag, host, want, out);
    free(out);
}

static void sites_limited_to_listeners(void **state)
{
    (void)state;
    fixture *fx = fx_new_without_files(NULL);
    eddy_sites *set = eddy_sites_new();
    eddy_site *a = eddy_sites_add(set), *inner = eddy_sites_add(set), *d = eddy_sites_add(set);
    assert_int_equal(eddy_site_name(a, "a.test"), 0);
    assert_int_equal(eddy_site_listener(a, 1), 0);
    assert_int_equal(eddy_site_listener(inner, 2), 0);
    assert_int_equal(eddy_site_listener(d, 3), 0);
    assert_int_equal(eddy_site_listener(d, EDDY_LISTENER_TAG_MAX + 1), -EINVAL);
    add_route(a, "/", "site a");
    add_route(inner, "/", "inner");
    add_route(d, "/", "default");
    eddy_sites_default(set, d);
    assert_int_equal(eddy_server_use_sites(fx->srv, set), 0);
    expect_on(fx, 1, "a.test", "site a");
    expect_on(fx, 2, "a.test", "inner");      /* a.test is not served on 2 */
    expect_on(fx, 2, "other", "inner");
    expect_on(fx, 3, "a.test", "default");
    expect_on(fx, 3, "other", "default");
    expect_on(fx, 1, "other", "HTTP/1.1 421 "); /* the default does not listen on 1 */
    expect_on(fx, 0, "a.test", "HTTP/1.1 421 ");
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_chooses_the_site),
        cmocka_unit_test(no_default_site_is_421_or_404),
        cmocka_unit_test(names_are_checked),
        cmocka_unit_test(header_rules_by_site_and_path),
        cmocka_unit_test(body_limit_by_path),
        cmocka_unit_test(timeouts_by_path),
        cmocka_unit_test(held_requests_finish_on_their_sites),
        cmocka_unit_test(sites_limited_to_listeners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
