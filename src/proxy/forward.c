/* The request head a backend gets: rebuilt from what eddy parsed, so no
 * byte of the client's framing crosses the hop (nothing to smuggle), with
 * hop-by-hop fields dropped (RFC 9110 §7.6.1) and the client told of. */
#include "proxy/proxy.h"
#include "core/fields.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct out {
    char *p, *end;
    bool full;
} out;

static void put(out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->full = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}
static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }
static void put_str(out *o, eddy_str s) { put(o, s.ptr, s.len); }

static bool is(eddy_str s, const char *name)
{
    size_t n = strlen(name);
    return s.len == n && strncasecmp(s.ptr, name, n) == 0;
}

/* A path byte that goes as it is (RFC 3986 pchar but '%', and '/'). */
static bool path_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

/* The decoded path, percent-encoded again where it must be. */
static void put_encoded(out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c && path_char_ok(c)) {
            put(o, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(o, e, 3);
        }
    }
}

/* Whether path starts with the strip prefix at a segment boundary. */
static bool has_prefix(const eddy_proxy *px, eddy_str path)
{
    return path.len >= px->strip_len && memcmp(path.ptr, px->strip_prefix, px->strip_len) == 0 &&
           (path.len == px->strip_len || path.ptr[px->strip_len] == '/' ||
            px->strip_prefix[px->strip_len - 1] == '/');
}

/* The target: the path as the client sent it (still percent-encoded, so
 * an encoded slash stays data, as the application meant it; routing saw
 * it decoded and normalized, and a backend decoding it finds the same
 * path), less the strip prefix, and the query as received.  A client that
 * spelled the prefix otherwise ("/%61pi" for "/api") gets the normalized
 * path, encoded again, with the prefix taken off that. */
static void put_target(out *o, const eddy_proxy *px, const request *req)
{
    eddy_str path = request_span(req, req->path);
    bool encode = false;
    if (px->strip_prefix && !has_prefix(px, path)) {
        path = request_decoded_path(req);
        encode = req->decoded != NULL;
    }
    if (px->strip_prefix && has_prefix(px, path)) {
        path.ptr += px->strip_len;
        path.len -= px->strip_len;
        if (!path.len || path.ptr[0] != '/')
            put(o, "/", 1); /* "/api" stripped of "/api", or "/a/b" of "/a/" */
    } else if (!path.len) {
        put(o, "/", 1); /* absolute-form with no path */
    }
    if (encode)
        put_encoded(o, path.ptr, path.len);
    else
        put_str(o, path);
    eddy_str target = request_span(req, req->target);
    if (memchr(target.ptr, '?', target.len)) {
        put(o, "?", 1);
        put_str(o, request_span(req, req->query));
    }
}

/* Whether name is one of the Connection field's tokens. */
static bool listed(const eddy_str *tokens, unsigned n, eddy_str name)
{
    for (unsigned i = 0; i < n; i++)
        if (tokens[i].len == name.len && strncasecmp(tokens[i].ptr, name.ptr, name.len) == 0)
            return true;
    return false;
}

/* Splits a Connection value into tokens: false when there are too many. */
static bool connection_tokens(eddy_str v, eddy_str *tokens, unsigned *n)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ',' || v.ptr[i] == ' ' || v.ptr[i] == '\t'))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',' && v.ptr[i] != ' ' && v.ptr[i] != '\t')
            i++;
        if (i == start)
            continue;
        if (*n == PROXY_MAX_CONNECTION_TOKENS)
            return false;
        tokens[(*n)++] = (eddy_str){v.ptr + start, i - start};
    }
    return true;
}

/* The client's address as a Forwarded node: IPv6 in quotes and brackets
 * (RFC 7239 §6). */
static void put_node(out *o, const char *peer)
{
    if (strchr(peer, ':')) {
        puts_(o, "\"[");
        puts_(o, peer);
        puts_(o, "]\"");
    } else {
        puts_(o, peer);
    }
}

/* Writes the values of every field named `name`, joined by ", ": false
 * when there is none. */
static bool put_joined(out *o, const request *req, const char *field)
{
    eddy_str name, value;
    bool any = false;
    for (size_t it = 0; req->proto->field_next(req, &it, &name, &value);) {
        if (!is(name, field))
            continue;
        if (any)
            puts_(o, ", ");
        put_str(o, value);
        any = true;
    }
    return any;
}

int forward_head(const eddy_proxy *px, const backend *be, const request *req, bool upgrade,
                 char *buf, size_t cap, size_t *len, enum fwd_body *body)
{
    out o = {buf, buf + cap, false};
    const proto_ops *pr = req->proto;
    /* What the Connection fields name goes, whoever sent it. */
    eddy_str tokens[PROXY_MAX_CONNECTION_TOKENS], name, value;
    unsigned ntokens = 0;
    eddy_str host = {NULL, 0}, cl = {NULL, 0};
    bool xff_kind = px->forwarded == EDDY_FORWARDED_X || px->forwarded == EDDY_FORWARDED_BOTH;
    bool fwd_kind = px->forwarded == EDDY_FORWARDED_RFC7239 || px->forwarded == EDDY_FORWARDED_BOTH;
    bool managed = px->forwarded != EDDY_FORWARDED_NONE;
    char peer[64];
    pr->peer_name(req, peer, sizeof(peer));
    bool trusted = managed && px->ntrusted && proxy_trusts(px, peer);
    bool had_proto = false, had_xhost = false;
    for (size_t it = 0; pr->field_next(req, &it, &name, &value);) {
        if (is(name, "connection") && !connection_tokens(value, tokens, &ntokens))
            return 400;
        else if (is(name, "host") && !host.ptr)
            host = value;
        else if (is(name, "content-length"))
            cl = value;
    }
    const char *scheme = req->secure ? "https" : "http";

    put_str(&o, request_span(req, req->method));
    put(&o, " ", 1);
    put_target(&o, px, req);
    puts_(&o, " HTTP/1.1\r\nHost: ");
    if (px->host)
        puts_(&o, px->host);
    else if (host.ptr && host.len)
        put_str(&o, host);
    else
        puts_(&o, be->authority); /* HTTP/1.0 without Host */
    puts_(&o, "\r\n");

    /* The client's fields in order, less those of the hop. */
    for (size_t it = 0; pr->field_next(req, &it, &name, &value);) {
        if (is(name, "host") || is(name, "connection") || is(name, "keep-alive") ||
            is(name, "proxy-connection") || is(name, "te") || is(name, "transfer-encoding") ||
            is(name, "trailer") || is(name, "expect") || is(name, "content-length") ||
            (is(name, "upgrade") && !upgrade) || is(name, "http2-settings") ||
            (listed(tokens, ntokens, name) && !(upgrade && is(name, "upgrade"))))
            continue;
        if (managed && (is(name, "x-forwarded-for") || is(name, "forwarded")))
            continue; /* joined with ours below, when trusted */
        if (managed && (is(name, "x-forwarded-proto") || is(name, "x-forwarded-host"))) {
            if (!(trusted && xff_kind))
                continue;
            had_proto |= is(name, "x-forwarded-proto");
            had_xhost |= is(name, "x-forwarded-host");
        }
        put_str(&o, name);
        puts_(&o, ": ");
        put_str(&o, value);
        puts_(&o, "\r\n");
    }
    if (xff_kind) {
        puts_(&o, "X-Forwarded-For: ");
        if (trusted && put_joined(&o, req, "x-forwarded-for"))
            puts_(&o, ", ");
        puts_(&o, peer);
        puts_(&o, "\r\n");
        if (!had_proto) {
            puts_(&o, "X-Forwarded-Proto: ");
            puts_(&o, scheme);
            puts_(&o, "\r\n");
        }
        if (!had_xhost && host.ptr && host.len) {
            puts_(&o, "X-Forwarded-Host: ");
            put_str(&o, host);
            puts_(&o, "\r\n");
        }
    } else if (trusted && fwd_kind) {
        /* Only Forwarded is ours: trusted X-Forwarded-For passes. */
        size_t mark = (size_t)(o.p - buf);
        puts_(&o, "X-Forwarded-For: ");
        if (put_joined(&o, req, "x-forwarded-for"))
            puts_(&o, "\r\n");
        else if (!o.full)
            o.p = buf + mark;
    }
    if (fwd_kind) {
        puts_(&o, "Forwarded: ");
        if (trusted && put_joined(&o, req, "forwarded"))
            puts_(&o, ", ");
        puts_(&o, "for=");
        put_node(&o, peer);
        puts_(&o, ";proto=");
        puts_(&o, scheme);
        if (host.ptr && host.len) {
            /* A host with a port is no token: quoted (RFC 7239 §4). */
            bool quote = memchr(host.ptr, ':', host.len) != NULL;
            puts_(&o, quote ? ";host=\"" : ";host=");
            put_str(&o, host);
            if (quote)
                put(&o, "\"", 1);
        }
        puts_(&o, "\r\n");
    } else if (trusted && xff_kind) {
        size_t mark = (size_t)(o.p - buf);
        puts_(&o, "Forwarded: ");
        if (put_joined(&o, req, "forwarded"))
            puts_(&o, "\r\n");
        else if (!o.full)
            o.p = buf + mark;
    }
    if (cl.ptr) {
        *body = FWD_LENGTH;
        puts_(&o, "Content-Length: ");
        put_str(&o, cl);
        puts_(&o, "\r\n");
    } else if (req->has_body) {
        *body = FWD_CHUNKED;
        puts_(&o, "Transfer-Encoding: chunked\r\n");
    } else {
        *body = FWD_NONE;
    }
    if (upgrade)
        puts_(&o, "Connection: upgrade\r\n");
    else if (!px->keepalive)
        puts_(&o, "Connection: close\r\n");
    puts_(&o, "\r\n");
    if (o.full)
        return 431;
    *len = (size_t)(o.p - buf);
    return 0;
}
