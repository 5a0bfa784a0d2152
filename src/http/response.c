#include "http/response.h"
#include "http/access_log.h"
#include "http/server.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>

#define STATUSES(X)                                                                         \
    X(100, "Continue") X(200, "OK") X(204, "No Content") X(206, "Partial Content")            \
    X(301, "Moved Permanently") X(304, "Not Modified") X(400, "Bad Request")                  \
    X(403, "Forbidden") X(404, "Not Found") X(405, "Method Not Allowed")                      \
    X(408, "Request Timeout") X(411, "Length Required") X(412, "Precondition Failed")         \
    X(413, "Content Too Large") X(414, "URI Too Long") X(416, "Range Not Satisfiable")        \
    X(431, "Request Header Fields Too Large") X(500, "Internal Server Error")                 \
    X(501, "Not Implemented") X(503, "Service Unavailable") X(505, "HTTP Version Not Supported")

const char *status_reason(int status)
{
    switch (status) {
#define REASON(code, text) case code: return text;
    STATUSES(REASON)
#undef REASON
    default: return "Unknown";
    }
}

/* The whole status line, as one literal for the statuses eddy knows. */
static const char *status_line(int status, size_t *len)
{
    switch (status) {
#define LINE(code, text)                                                                        \
    case code:                                                                                  \
        *len = sizeof("HTTP/1.1 " #code " " text "\r\n") - 1;                                  \
        return "HTTP/1.1 " #code " " text "\r\n";
    STATUSES(LINE)
#undef LINE
    default: return NULL;
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put(p, lit, sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

void response_head(conn *c, int status, const char *content_type, int64_t content_length,
                   const char *extra)
{
    eddy_request *r = &c->req;
    bool closing = !r->keep_alive || c->draining || c->fatal;
    size_t ct_len = content_type ? strlen(content_type) : 0;
    size_t extra_len = extra ? strlen(extra) : 0;
    char buf[512];
    char *big = NULL;
    char *p = buf;
    if (ct_len + extra_len > sizeof(buf) - 200) {
        big = malloc(ct_len + extra_len + 200);
        if (!big) {
            c->fatal = true;
            return;
        }
        p = big;
    }
    char *start = p;
    size_t line_len;
    const char *line = status_line(status, &line_len);
    if (line) {
        p = put(p, line, line_len);
    } else {
        p = PUT_LIT(p, "HTTP/1.1 ");
        p = put_u64(p, (uint64_t)status);
        p = PUT_LIT(p, " Unknown\r\n");
    }
    p = PUT_LIT(p, "Server: eddy\r\nDate: ");
    p = put(p, server_date(c->srv), 29);
    p = PUT_LIT(p, "\r\n");
    if (content_type) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, content_type, ct_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (content_length >= 0) {
        p = PUT_LIT(p, "Content-Length: ");
        p = put_u64(p, (uint64_t)content_length);
        p = PUT_LIT(p, "\r\n");
    }
    if (closing)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    if (extra)
        p = put(p, extra, extra_len);
    p = PUT_LIT(p, "\r\n");
    conn_queue(c, start, (size_t)(p - start));
    free(big);
    if (c->srv->log && status >= 200)
        access_log_response(c->srv->log, c, status, r->is_head ? 0 : content_length);
}

/* 1xx, 204 and 304 never carry content (RFC 9110 §6.4.1). */
static bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

static void respond_text(conn *c, int status, const char *extra)
{
    if (!status_has_body(status)) {
        response_head(c, status, NULL, -1, extra);
        conn_response_done(c);
        return;
    }
    char body[96];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, status_reason(status));
    response_head(c, status, "text/plain; charset=utf-8", n, extra);
    if (!c->req.is_head)
        conn_queue(c, body, (size_t)n);
    conn_response_done(c);
}

void response_error(conn *c, int status)
{
    c->fatal = true;
    c->req.keep_alive = false;
    c->req.is_head = false;
    respond_text(c, status, NULL);
}

void response_simple(eddy_request *req, int status, const char *extra)
{
    respond_text(req->c, status, extra);
}

/* ------------------------------------------------------------ public API -- */

int eddy_respond(eddy_request *req, int status, const char *content_type,
                 const void *body, size_t len)
{
    if (req->answered)
        return -EALREADY;
    if (status < 100 || status > 999)
        return -EINVAL;
    conn *c = req->c;
    if (req->aborted) {
        conn_response_done(c);
        return 0;
    }
    bool no_body = !status_has_body(status);
    response_head(c, status, content_type, no_body ? -1 : (int64_t)len, NULL);
    if (!no_body && !req->is_head && len)
        conn_queue(c, body, len);
    conn_response_done(c);
    return 0;
}

static eddy_str view(const eddy_request *req, span s)
{
    if (!req->c->req_base)
        return (eddy_str){"", 0};
    return (eddy_str){req->c->req_base + s.off, s.len};
}

eddy_str eddy_request_method(const eddy_request *req) { return view(req, req->method); }
eddy_str eddy_request_path(const eddy_request *req) { return view(req, req->path); }
eddy_str eddy_request_query(const eddy_request *req) { return view(req, req->query); }
eddy_loop *eddy_request_loop(const eddy_request *req) { return req->c->srv->loop; }

eddy_str eddy_request_body(const eddy_request *req)
{
    const req_body *b = req->c->body;
    return b ? (eddy_str){b->data, b->len} : (eddy_str){"", 0};
}

void eddy_request_on_abort(eddy_request *req, eddy_callback cb, void *data)
{
    req->on_abort = cb;
    req->abort_data = data;
}

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static char lower(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

void request_fields(const eddy_request *req, const eddy_str *names, eddy_str *out, size_t n)
{
    /* One pass over the head for all the names (the first of each wins). */
    for (size_t i = 0; i < n; i++)
        out[i] = (eddy_str){NULL, 0};
    const char *base = req->c->req_base;
    if (!base || !req->c->head_len_known)
        return;
    const char *end = base + req->head_len;
    const char *p = memchr(base, '\n', req->head_len);
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol || eol - line <= 1)
            break; /* the empty line ends the head */
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        size_t name_len = colon ? (size_t)(colon - line) : 0;
        char first = lower(line[0]);
        for (size_t i = 0; name_len && i < n; i++) {
            if (out[i].ptr || name_len != names[i].len || first != lower(names[i].ptr[0]) ||
                strncasecmp(line, names[i].ptr, name_len))
                continue;
            const char *v = colon + 1, *ve = eol;
            while (v < ve && is_ows(*v))
                v++;
            while (ve > v && (ve[-1] == '\r' || is_ows(ve[-1])))
                ve--;
            out[i] = (eddy_str){v, (size_t)(ve - v)};
        }
        p = eol;
    }
}

eddy_str eddy_request_header(const eddy_request *req, const char *name)
{
    eddy_str v, want = {name, strlen(name)};
    if (!want.len)
        return (eddy_str){NULL, 0};
    request_fields(req, &want, &v, 1);
    return v;
}
