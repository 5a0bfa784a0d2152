#include "core/request.h"
#include "core/path.h"
#include "core/front.h"
#include "core/site.h"
#include "rt/loop.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum req_method request_method_id(const char *m, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(m, lit, len) == 0)
    switch (len ? m[0] : 0) {
    case 'G': return IS("GET") ? METHOD_GET : METHOD_OTHER;
    case 'H': return IS("HEAD") ? METHOD_HEAD : METHOD_OTHER;
    case 'P': return IS("POST") ? METHOD_POST : IS("PUT") ? METHOD_PUT
                   : IS("PATCH") ? METHOD_PATCH : METHOD_OTHER;
    case 'D': return IS("DELETE") ? METHOD_DELETE : METHOD_OTHER;
    case 'O': return IS("OPTIONS") ? METHOD_OPTIONS : METHOD_OTHER;
    case 'C': return IS("CONNECT") ? METHOD_CONNECT : METHOD_OTHER;
    case 'T': return IS("TRACE") ? METHOD_TRACE : METHOD_OTHER;
    default: return METHOD_OTHER;
    }
#undef IS
}

eddy_str request_span(const request *req, span s)
{
    if (!*req->base)
        return (eddy_str){"", 0};
    return (eddy_str){*req->base + s.off, s.len};
}

int request_split_target(request *r)
{
    const char *t = *r->base + r->target.off;
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

int request_decode_path(request *req)
{
    if (req->decoded)
        return 0; /* decoded before the body came (the route was wanted then) */
    eddy_str raw = request_span(req, req->path);
    if (raw.len == 1 && raw.ptr[0] == '*')
        return 0; /* asterisk-form: not a path */
    if (raw.len && raw.ptr[0] == '/' && path_is_normal(raw.ptr, raw.len))
        return 0; /* the common case: the raw bytes are the path */
    char *out = malloc(raw.len + 2);
    if (!out)
        return 503;
    size_t n;
    int st = path_normalize(raw.ptr, raw.len, out, &n);
    if (st) {
        free(out);
        return st;
    }
    free(req->decoded);
    req->decoded = out;
    req->decoded_len = (uint32_t)n;
    return 0;
}

eddy_str request_decoded_path(const request *req)
{
    if (req->decoded)
        return (eddy_str){req->decoded, req->decoded_len};
    return request_span(req, req->path);
}

int request_keep_body(request *req, const char *data, size_t len)
{
    /* One block: the header, then the bytes; cap counts the whole block. */
    size_t have = req->body ? req->body->len : 0;
    size_t cap = req->body ? req->body->cap : 0;
    size_t need = sizeof(req_body) + have + len;
    if (need > cap) {
        size_t ncap = cap ? cap : 1024;
        while (ncap < need)
            ncap *= 2;
        if (ncap > UINT32_MAX)
            return -ENOMEM;
        req_body *nb = realloc(req->body, ncap);
        if (!nb)
            return -ENOMEM;
        req->body = nb;
        req->body->cap = (uint32_t)ncap;
    }
    memcpy(req->body->data + have, data, len);
    req->body->len = (uint32_t)(have + len);
    return 0;
}

/* ------------------------------------------------------------ the pool -- */

struct request_chunk {
    struct request_chunk *next;
    eddy_request slot[REQUEST_CHUNK];
};

#define HANDLE_ADDR_BITS 48
#define HANDLE_ADDR_MASK ((UINT64_C(1) << HANDLE_ADDR_BITS) - 1)

static eddy_request *slot_of(request *r) { return (eddy_request *)((char *)r - offsetof(eddy_request, req)); }

request *request_new(front *f, const proto_ops *proto, void *conn, const char *const *base)
{
    request_pool *p = &f->requests;
    if (!p->free_head) {
        struct request_chunk *c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->next = p->chunks;
        p->chunks = c;
        for (size_t i = 0; i < REQUEST_CHUNK; i++)
            c->slot[i].next_free = i + 1 < REQUEST_CHUNK ? &c->slot[i + 1] : NULL;
        p->free_head = &c->slot[0];
        p->free_tail = &c->slot[REQUEST_CHUNK - 1];
    }
    eddy_request *h = p->free_head;
    p->free_head = h->next_free;
    if (!p->free_head)
        p->free_tail = NULL;
    h->next_free = NULL;
    h->live = true;
    h->gen++;
    request *r = &h->req;
    memset(r, 0, sizeof(*r));
    r->proto = proto;
    r->conn = conn;
    r->front = f;
    r->table = f->sites;
    site_table_ref(r->table);
    r->site = r->table->fallback ? r->table->fallback : &r->table->none;
    r->base = base;
    r->start_us = loop_now_us(f->loop); /* the turn's clock: no system call */
    return r;
}

void request_free(request *r)
{
    if (!r)
        return;
    request_release(r);
    eddy_request *h = slot_of(r);
    request_pool *p = &r->front->requests;
    site_table_unref(r->table);
    h->live = false;
    if (p->free_tail)
        p->free_tail->next_free = h;
    else
        p->free_head = h;
    p->free_tail = h;
}

eddy_request *request_handle(request *r)
{
    eddy_request *h = slot_of(r);
    if ((uintptr_t)h > HANDLE_ADDR_MASK)
        return h; /* an address the tag cannot share: checked by liveness only */
    return (eddy_request *)((uintptr_t)h | (uintptr_t)h->gen << HANDLE_ADDR_BITS);
}

request *request_of(const eddy_request *h)
{
    uintptr_t v = (uintptr_t)h;
    eddy_request *slot = (eddy_request *)(v & HANDLE_ADDR_MASK);
    bool tagged = slot != (eddy_request *)v;
    if (!slot || !slot->live || (tagged && slot->gen != (uint16_t)(v >> HANDLE_ADDR_BITS)))
        return NULL;
    return &slot->req;
}

void request_pool_free(request_pool *p)
{
    for (struct request_chunk *c = p->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->chunks = NULL;
    p->free_head = p->free_tail = NULL;
}

void request_release(request *req)
{
    free(req->decoded);
    req->decoded = NULL;
    free(req->body);
    req->body = NULL;
    free(req->extra);
    req->extra = NULL;
    req->extra_len = req->extra_cap = 0;
    req->nextra = 0;
}

static char lower(char ch) { return (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); }

void request_fields(const request *req, const eddy_str *names, eddy_str *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (eddy_str){NULL, 0};
    size_t it = 0;
    eddy_str name, value;
    while (req->proto->field_next(req, &it, &name, &value)) {
        char first = lower(name.ptr[0]);
        for (size_t i = 0; i < n; i++) {
            if (out[i].ptr || name.len != names[i].len || first != lower(names[i].ptr[0]) ||
                strncasecmp(name.ptr, names[i].ptr, name.len))
                continue;
            out[i] = value;
        }
    }
}

/* ------------------------------------------------------------ public API -- */

/* Public calls take handles; a stale one gets an empty answer or -ESTALE. */
#define EMPTY ((eddy_str){"", 0})

eddy_str eddy_request_method(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? request_span(r, r->method) : EMPTY;
}

eddy_str eddy_request_target(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? request_span(r, r->target) : EMPTY;
}

eddy_str eddy_request_path(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? request_decoded_path(r) : EMPTY;
}

eddy_str eddy_request_query(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? request_span(r, r->query) : EMPTY;
}

eddy_loop *eddy_request_loop(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? r->front->loop : NULL;
}

eddy_str eddy_request_body(const eddy_request *h)
{
    const request *r = request_of(h);
    const req_body *b = r ? r->body : NULL;
    return b ? (eddy_str){b->data, b->len} : EMPTY;
}

eddy_str eddy_request_header(const eddy_request *h, const char *name)
{
    const request *r = request_of(h);
    eddy_str v, want = {name, name ? strlen(name) : 0};
    if (!r || !want.len)
        return (eddy_str){NULL, 0};
    request_fields(r, &want, &v, 1);
    return v;
}

bool eddy_request_field_next(const eddy_request *h, size_t *it, eddy_str *name, eddy_str *value)
{
    const request *r = request_of(h);
    return r && r->proto->field_next(r, it, name, value);
}

int eddy_request_version(const eddy_request *h)
{
    const request *r = request_of(h);
    return r ? r->version_major * 10 + r->version_minor : -ESTALE;
}

size_t eddy_request_peer(const eddy_request *h, char *buf, size_t len)
{
    const request *r = request_of(h);
    if (len == 0)
        return 0;
    if (!r) {
        buf[0] = 0;
        return 0;
    }
    r->proto->peer_name(r, buf, len);
    return strlen(buf);
}

void request_body_piece(request *req, const char *data, size_t len)
{
    if (req->body_fn && !req->answered && !req->aborted)
        req->body_fn(request_handle(req), data, len, req->body_data);
}

int eddy_request_read(eddy_request *h, eddy_body_fn fn, void *ud)
{
    request *r = request_of(h);
    if (!r)
        return -ESTALE;
    if (!fn)
        return -EINVAL;
    r->body_fn = fn;
    r->body_data = ud;
    r->body_paused = false;
    r->proto->body_flow(r);
    return 0;
}

int eddy_request_pause(eddy_request *h, bool paused)
{
    request *r = request_of(h);
    if (!r)
        return -ESTALE;
    if (r->body_paused != paused) {
        r->body_paused = paused;
        r->proto->body_flow(r);
    }
    return 0;
}

int eddy_request_on_abort(eddy_request *h, eddy_callback cb, void *data)
{
    request *r = request_of(h);
    if (!r)
        return -ESTALE;
    r->on_abort = cb;
    r->abort_data = data;
    return 0;
}

uint64_t request_max_body(const request *req, uint64_t server_max)
{
    return req->route && req->route->max_body ? req->route->max_body : server_max;
}

unsigned request_send_ms(const request *req, unsigned server_ms)
{
    return req && req->route && req->route->send_ms ? req->route->send_ms : server_ms;
}

unsigned request_body_ms(const request *req, unsigned server_ms)
{
    return req && req->route && req->route->body_ms ? req->route->body_ms : server_ms;
}
