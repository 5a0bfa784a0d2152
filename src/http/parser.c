#include "http/parser.h"
#include "http/rules.h"
#include "http/server.h"

#include <string.h>
#include <strings.h>

static conn *conn_of(llhttp_t *p) { return p->data; }

/* Ends parsing with `status` as the answer: a callback's -1 becomes an
 * llhttp error, and parser_error_status() finds the status here. */
static int reject(conn *c, int status)
{
    c->parse_status = (uint16_t)status;
    return -1;
}

/* Spans of one token may arrive in several callbacks when the token crosses
 * a read; the bytes are contiguous in the connection's buffer, so extending
 * the span to the new end is enough.  The head-size limit is checked here,
 * as the bytes arrive, so a head can never grow past it. */
static int span_extend(conn *c, span *s, const char *at, size_t len)
{
    size_t end = (size_t)(at + len - c->req_base);
    if (end > c->srv->max_header_bytes)
        return reject(c, 431);
    if (s->len == 0)
        s->off = (uint32_t)(at - c->req_base);
    s->len = (uint32_t)end - s->off;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    conn *c = conn_of(p);
    c->req_base = NULL;
    if (conn_request_begin(c) < 0)
        return reject(c, 503); /* no memory for one more request */
    c->field_name = (span){0, 0};
    c->field_value = (span){0, 0};
    c->nfields = 0;
    c->trailer_field = false;
    c->method_unknown = false;
    c->te = (te_summary){0};
    c->has_te = false;
    c->body_bytes = 0;
    c->framing_bytes = 0;
    c->keep_body = false;
    c->stream_body = false;
    c->body_dispatched = false;
    c->step_owed = false;
    c->continue_pending = false;
    c->piece_len = 0;
    c->phase = PHASE_HEAD;
    c->parse_status = 0;
    conn_head_started(c);
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    if (!c->req_base)
        c->req_base = at;
    return span_extend(c, &c->req->method, at, len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    if ((size_t)(at + len - c->req_base) > c->srv->max_request_line)
        return reject(c, 414);
    return span_extend(c, &c->req->target, at, len);
}

static int on_version(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    return span_extend(c, &c->req->version, at, len);
}

static int on_version_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    request *r = c->req;
    const char *b = c->req_base;
    /* request-line = method SP request-target SP HTTP-version: exactly one
     * space each (RFC 9112 §3); llhttp alone accepts several. */
    uint32_t m_end = r->method.off + r->method.len, t_end = r->target.off + r->target.len;
    if (b[m_end] != ' ' || r->target.off != m_end + 1 || b[t_end] != ' ' ||
        r->version.off != t_end + 1 + 5)
        return reject(c, 400);
    if (r->version.off + r->version.len > c->srv->max_request_line)
        return reject(c, 414);
    if (p->http_major == 2 && p->http_minor == 0 && p->method == HTTP_PRI && r->target.len == 1 &&
        b[r->target.off] == '*' && c->srv->h2_callbacks && !c->had_request &&
        !c->stream->ops->secure)
        return reject(c, PARSE_H2_PREFACE); /* HTTP/2 with prior knowledge */
    if (p->http_major >= 2)
        return reject(c, 505); /* a version eddy does not speak on this connection */
    if (p->http_major != 1 || p->http_minor > 1)
        return reject(c, 400);
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    request *r = c->req;
    /* A fragment is never part of a request-target (RFC 9112 §3.2). */
    if (memchr(c->req_base + r->target.off, '#', r->target.len))
        return reject(c, 400);
    return 0;
}

/* Trailer fields (after a chunked body) are discarded: checked piece by
 * piece as they pass, never kept, so they cost no buffer. */
static bool in_trailers(const conn *c) { return c->phase == PHASE_BODY; }

/* Chunk extensions and trailer fields are not kept either, but they are
 * not content: without a bound of their own a client could send them
 * forever.  Together they get the head's budget (--max-header-bytes). */
static int count_framing(conn *c, size_t len, int status)
{
    c->framing_bytes += len;
    return c->framing_bytes > c->srv->max_header_bytes ? reject(c, status) : 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_framing(conn_of(p), len, 400);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    if (c->field_name.len == 0 && !c->trailer_field && ++c->nfields > c->srv->max_headers)
        return reject(c, 431);
    if (in_trailers(c)) {
        c->trailer_field = true;
        return count_framing(c, len, 431);
    }
    return span_extend(c, &c->field_name, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    if (in_trailers(c))
        return field_value_ok(at, len) ? count_framing(c, len, 431) : reject(c, 400);
    span *v = &c->field_value;
    if (len == 0)
        return 0; /* an empty value: llhttp reports it past the line's end */
    if (v->len == 0) {
        /* The value must follow its colon on the same line: only OWS
         * between.  Anything else is a continuation line (obs-fold, RFC
         * 9112 §5.2), whatever the line before held. */
        const char *q = at;
        while (q > c->req_base && (q[-1] == ' ' || q[-1] == '\t'))
            q--;
        if (q == c->req_base || q[-1] != ':')
            return reject(c, 400);
    } else if (at != c->req_base + v->off + v->len) {
        return reject(c, 400); /* a gap inside one value: obs-fold */
    }
    return span_extend(c, v, at, len);
}

static bool name_is(const conn *c, const char *name)
{
    size_t n = strlen(name);
    return c->field_name.len == n && strncasecmp(c->req_base + c->field_name.off, name, n) == 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    if (in_trailers(c)) {
        c->trailer_field = false;
        return 0;
    }
    const char *v = c->req_base + c->field_value.off;
    size_t vlen = c->field_value.len;
    if (c->field_name.len == 0)
        return reject(c, 400); /* an empty field name */
    /* A value spanning lines is obs-fold (RFC 9112 §5.2): its CRLF shows
     * up inside the merged span and fails the value check. */
    if (!field_value_ok(v, vlen))
        return reject(c, 400);
    if (name_is(c, "host")) {
        c->req->host_count++;
        if (!rules_host_ok(v, vlen))
            return reject(c, 400);
    } else if (name_is(c, "transfer-encoding")) {
        c->has_te = true;
        rules_transfer_encoding(v, vlen, &c->te);
    } else if (name_is(c, "expect")) {
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (vlen != 12 || strncasecmp(v, "100-continue", 12) != 0)
            return reject(c, 417);
        c->req->expect_continue = true;
    }
    c->field_name = (span){0, 0};
    c->field_value = (span){0, 0};
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    request *r = c->req;
    const char *target = c->req_base + r->target.off;
    bool asterisk = r->target.len == 1 && target[0] == '*';
    if (asterisk != (p->method == HTTP_OPTIONS && asterisk))
        return reject(c, 400); /* asterisk-form is for OPTIONS only */
    if (p->http_major != 1 || p->http_minor > 1)
        return reject(c, 400); /* no version at all: an HTTP/0.9 request */
    if (p->http_minor == 1 && r->host_count != 1)
        return reject(c, 400); /* RFC 9112 §3.2: exactly one Host */
    if (c->has_te) {
        if (p->http_minor == 0)
            return reject(c, 400); /* RFC 9112 §6.1: faulty framing */
        int st = rules_te_status(&c->te);
        if (st)
            return reject(c, st);
    }
    r->keep_alive = llhttp_should_keep_alive(p);
    r->is_head = p->method == HTTP_HEAD;
    r->method_id = (uint8_t)request_method_id(c->req_base + r->method.off, r->method.len);
    r->version_major = (uint8_t)p->http_major;
    r->version_minor = (uint8_t)p->http_minor;
    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    r->has_body = has_body;
    /* eddy speaks only HTTP/1.1 here: an Upgrade offer is ignored and the
     * request served as is (RFC 9110 §7.8); CONNECT is refused and the
     * connection closed, since what follows it is not HTTP. */
    p->upgrade = 0;
    if (p->method == HTTP_CONNECT)
        r->keep_alive = false;
    if (has_body) {
        /* The route decides what becomes of the body, and its limit:
         * found now, before the body comes. */
        int st = sites_route_early(r);
        if (st)
            return reject(c, st);
        const route *rt = r->route;
        c->keep_body = rt && rt->body == EDDY_BODY_WHOLE;
        c->stream_body = rt && rt->body == EDDY_BODY_STREAM;
    }
    uint64_t max_body = request_max_body(r, c->srv->max_body);
    /* A streamed body is the handler's to limit: it may be larger than
     * memory, which is what streaming is for. */
    if (!(p->flags & F_CHUNKED) && p->content_length > max_body && !c->stream_body)
        return reject(c, 413);
    if (r->expect_continue && has_body && p->http_minor == 1) {
        if (c->stream_body)
            c->continue_pending = true; /* when the handler reads */
        else
            conn_queue(c, "HTTP/1.1 100 Continue\r\n\r\n", 25); /* RFC 9110 §10.1.1 */
    }
    c->phase = PHASE_BODY;
    c->head_len_known = false;
    /* A streamed body's handler runs now, before the body: stop here. */
    return c->stream_body ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    if (!c->head_len_known) {
        c->req->head_len = (uint32_t)(at - c->req_base);
        c->head_len_known = true;
    }
    c->body_bytes += len;
    if (c->stream_body) {
        /* Handed to the handler by feed(), outside llhttp: stop after it.
         * An empty span (llhttp closes the body's open span with one at
         * the end of every call) is no piece, and max_body is no limit
         * here: the handler sets its own. */
        if (!len)
            return 0;
        c->piece = at;
        c->piece_len = (uint32_t)len;
        return HPE_PAUSED;
    }
    if (c->body_bytes > request_max_body(c->req, c->srv->max_body))
        return reject(c, 413); /* chunked bodies are counted as they come */
    if (c->keep_body && request_keep_body(c->req, at, len) < 0)
        return reject(c, 503); /* out of memory: this request, not the server */
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    c->phase = PHASE_HANDLER;
    /* Stop here: the request is answered before the next one is parsed. */
    return HPE_PAUSED;
}

void parser_settings_init(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_method = on_method;
    s->on_url = on_url;
    s->on_url_complete = on_url_complete;
    s->on_version = on_version;
    s->on_version_complete = on_version_complete;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_chunk_extension_name = on_chunk_extension;
    s->on_chunk_extension_value = on_chunk_extension;
    s->on_message_complete = on_message_complete;
}

void parser_start(conn *c)
{
    llhttp_init(&c->parser, HTTP_REQUEST, &c->srv->parser_settings);
    c->parser.data = c;
}

int parser_error_status(const conn *c)
{
    if (c->parse_status)
        return c->parse_status;
    const llhttp_t *p = &c->parser;
    switch (llhttp_get_errno(p)) {
    case HPE_INVALID_VERSION:
        /* A well-formed version eddy does not speak (HTTP/3.0). */
        return p->http_major >= 2 && p->http_major <= 9 ? 505 : 400;
    case HPE_PAUSED_H2_UPGRADE:
        return 505; /* the HTTP/2 connection preface */
    default:
        return 400;
    }
}
