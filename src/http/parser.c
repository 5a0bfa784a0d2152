#include "http/parser.h"
#include "http/server.h"

#include <string.h>
#include <strings.h>

static conn *conn_of(llhttp_t *p) { return p->data; }

/* Spans of one token may arrive in several callbacks when the token crosses
 * a read; the bytes are contiguous in the connection's buffer, so extending
 * the span to the new end is enough. */
static int span_extend(conn *c, span *s, const char *at, size_t len)
{
    size_t end = (size_t)(at + len - c->req_base);
    if (end > c->srv->max_header_bytes) {
        /* Checked here, not only after a read: a whole oversized head can
         * arrive in one read and complete before anyone looks. */
        c->parse_status = 431;
        return -1;
    }
    if (s->len == 0)
        s->off = (uint32_t)(at - c->req_base);
    s->len = (uint32_t)end - s->off;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    conn *c = conn_of(p);
    eddy_request *r = &c->req;
    memset(r, 0, sizeof(*r));
    r->c = c;
    c->req_base = NULL;
    c->field_name = (span){0, 0};
    c->field_value = (span){0, 0};
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
    return span_extend(c, &c->req.method, at, len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    return span_extend(c, &c->req.target, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    return span_extend(c, &c->field_name, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn *c = conn_of(p);
    return span_extend(c, &c->field_value, at, len);
}

static bool name_is(const conn *c, const char *name)
{
    size_t n = strlen(name);
    return c->field_name.len == n && strncasecmp(c->req_base + c->field_name.off, name, n) == 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    if (name_is(c, "host"))
        c->req.host_count++;
    c->field_name = (span){0, 0};
    c->field_value = (span){0, 0};
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn *c = conn_of(p);
    c->req.keep_alive = llhttp_should_keep_alive(p);
    /* eddy speaks only HTTP/1.1 here: an Upgrade offer is ignored and the
     * request served as is (RFC 9110 §7.8).  CONNECT is refused later. */
    if (p->method != HTTP_CONNECT)
        p->upgrade = 0;
    c->req.is_head = p->method == HTTP_HEAD;
    c->phase = PHASE_BODY;
    c->head_len_known = false;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    (void)len;
    conn *c = conn_of(p);
    if (!c->head_len_known) {
        c->req.head_len = (uint32_t)(at - c->req_base);
        c->head_len_known = true;
    }
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
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

void parser_start(conn *c)
{
    llhttp_init(&c->parser, HTTP_REQUEST, &c->srv->parser_settings);
    c->parser.data = c;
}

int parser_error_status(const conn *c)
{
    const llhttp_t *p = &c->parser;
    switch (llhttp_get_errno(p)) {
    case HPE_USER:
        return c->parse_status ? c->parse_status : 400;
    case HPE_INVALID_VERSION:
        /* A well-formed version eddy does not speak (HTTP/2.0, HTTP/3.0). */
        return p->http_major >= 2 && p->http_major <= 9 ? 505 : 400;
    case HPE_INVALID_METHOD:
        return 400;
    case HPE_INVALID_TRANSFER_ENCODING:
        return 501;
    default:
        return 400;
    }
}

int parser_split_target(eddy_request *r, const char *base)
{
    const char *t = base + r->target.off;
    size_t len = r->target.len;
    size_t start = 0;
    if (len == 1 && t[0] == '*') {
        r->path = r->target;
        r->query = (span){r->target.off + 1, 0};
        return 0;
    }
    if (len && t[0] != '/') {
        /* absolute-form (RFC 9112 §3.2.2): skip scheme and authority. */
        const char *sep = memmem(t, len, "://", 3);
        if (!sep)
            return 400;
        size_t i = (size_t)(sep - t) + 3;
        while (i < len && t[i] != '/' && t[i] != '?')
            i++;
        start = i;
    }
    size_t q = start;
    while (q < len && t[q] != '?')
        q++;
    r->path = (span){r->target.off + (uint32_t)start, (uint32_t)(q - start)};
    if (q < len)
        r->query = (span){r->target.off + (uint32_t)q + 1, (uint32_t)(len - q - 1)};
    else
        r->query = (span){r->target.off + (uint32_t)len, 0};
    return 0;
}
