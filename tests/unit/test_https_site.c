/* What HTTPS changes above the stream: Strict-Transport-Security on
 * responses over TLS only (--hsts), and plain requests redirected to https
 * (--redirect-https), and connections an ACME validation opened, over mock
 * streams (a "secure" mock stands for a TLS stream's plaintext side). */
#include "harness.h"
#include "http/server.h"

#include <stdlib.h>
#include <string.h>

/* One exchange on a new connection, plain or secure. */
static char *exchange(fixture *fx, bool secure, const char *bytes)
{
    mock_stream *m = mock_stream_new(fx->loop);
    assert_non_null(m);
    mock_set_secure(m, secure);
    assert_non_null(server_attach(fx->srv, mock_stream_base(m), false));
    mock_push_str(m, bytes);
    fx_run(fx);
    char *out = fx_output(m);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    return out;
}

static void hsts_only_over_tls(void **state)
{
    (void)state;
    eddy_config cfg = {.hsts_seconds = 31536000};
    fixture *fx = fx_new(&cfg);
    const char *get = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    char *out = exchange(fx, true, get);
    assert_non_null(strstr(out, "\r\nStrict-Transport-Security: max-age=31536000\r\n"));
    free(out);
    /* Errors over TLS carry it too. */
    out = exchange(fx, true, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    assert_non_null(strstr(out, "Strict-Transport-Security: max-age=31536000"));
    free(out);
    out = exchange(fx, false, get);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_null(strstr(out, "Strict-Transport-Security"));
    free(out);
    fx_free(fx);
}

static void no_hsts_by_default(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    char *out = exchange(fx, true, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_null(strstr(out, "Strict-Transport-Security"));
    free(out);
    fx_free(fx);
}

static void expect_location(fixture *fx, const char *req, const char *location)
{
    char *out = exchange(fx, false, req);
    if (!strstr(out, "HTTP/1.1 308 ") || !strstr(out, location))
        fail_msg("%s: wanted 308 and '%s', got:\n%s", req, location, out);
    free(out);
}

static void plain_requests_redirect_to_https(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    eddy_server_redirect_https(fx->srv, 8443);
    expect_location(fx, "GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\n\r\n",
                    "\r\nLocation: https://example.com:8443/a/b?x=1&y\r\n");
    /* The port of Host is the plain one: replaced. */
    expect_location(fx, "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                    "\r\nLocation: https://example.com:8443/\r\n");
    expect_location(fx, "GET /v6 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
                    "\r\nLocation: https://[::1]:8443/v6\r\n");
    /* Any method: 308 keeps it (and the body) for the client's retry. */
    expect_location(fx, "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
                    "\r\nLocation: https://h:8443/form\r\n");
    /* Absolute form: the path and query, not the scheme it named. */
    expect_location(fx, "GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
                    "\r\nLocation: https://h:8443/p?q\r\n");
    /* An empty query is kept: "/x?" and "/x" are different targets. */
    expect_location(fx, "GET /x? HTTP/1.1\r\nHost: h\r\n\r\n",
                    "\r\nLocation: https://h:8443/x?\r\n");
    expect_location(fx, "GET http://h/x? HTTP/1.1\r\nHost: h\r\n\r\n",
                    "\r\nLocation: https://h:8443/x?\r\n");
    /* 443 is https's own port: left out. */
    eddy_server_redirect_https(fx->srv, 443);
    expect_location(fx, "GET /x HTTP/1.1\r\nHost: h:80\r\n\r\n", "\r\nLocation: https://h/x\r\n");
    /* Without a Host there is nowhere to send the client. */
    char *out = exchange(fx, false, "GET /x HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    free(out);
    /* Over TLS the request is served. */
    out = exchange(fx, true, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    free(out);
    /* Off again: plain requests are served. */
    eddy_server_redirect_https(fx->srv, 0);
    out = exchange(fx, false, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    free(out);
    fx_free(fx);
}

/* A connection whose TLS handshake chose acme-tls/1 was an ACME
 * validation: it carries no HTTP, so a request on it is not answered and
 * the connection closes (RFC 8737 §3). */
static void acme_tls_alpn_connection_closes(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    mock_stream *m = mock_stream_new(fx->loop);
    assert_non_null(m);
    mock_set_secure(m, true);
    mock_set_alpn(m, "acme-tls/1");
    assert_non_null(server_attach(fx->srv, mock_stream_base(m), false));
    mock_push_str(m, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    fx_run(fx);
    size_t len;
    mock_output(m, &len);
    assert_int_equal(len, 0);
    assert_true(mock_closed(m));
    mock_stream_free(m);
    /* http/1.1 on the same server: served. */
    m = mock_stream_new(fx->loop);
    mock_set_secure(m, true);
    mock_set_alpn(m, "http/1.1");
    assert_non_null(server_attach(fx->srv, mock_stream_base(m), false));
    mock_push_str(m, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    fx_run(fx);
    char *out = fx_output(m);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    free(out);
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hsts_only_over_tls),
        cmocka_unit_test(no_hsts_by_default),
        cmocka_unit_test(plain_requests_redirect_to_https),
        cmocka_unit_test(acme_tls_alpn_connection_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
