#include "core/request.h"
#include "core/path.h"
#include "core/site.h"

#include <errno.h>
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

static eddy_str view(const eddy_request *req, span s)
{
    if (!req->base)
        return (eddy_str){"", 0};
    return (eddy_str){req->base + s.off, s.len};
}

int request_decode_path(eddy_request *req)
{
    eddy_str raw = view(req, req->path);
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

eddy_str request_decoded_path(const eddy_request *req)
{
    if (req->decoded)
        return (eddy_str){req->decoded, req->decoded_len};
    return view(req, req->path);
}

int request_keep_body(eddy_request *req, const char *data, size_t len)
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

void request_release(eddy_request *req)
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

void request_fields(const eddy_request *req, const eddy_str *names, eddy_str *out, size_t n)
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

eddy_str eddy_request_method(const eddy_request *req) { return view(req, req->method); }
eddy_str eddy_request_target(const eddy_request *req) { return view(req, req->target); }
eddy_str eddy_request_path(const eddy_request *req) { return request_decoded_path(req); }
eddy_str eddy_request_query(const eddy_request *req) { return view(req, req->query); }
eddy_loop *eddy_request_loop(const eddy_request *req) { return req->site->loop; }

eddy_str eddy_request_body(const eddy_request *req)
{
    const req_body *b = req->body;
    return b ? (eddy_str){b->data, b->len} : (eddy_str){"", 0};
}

eddy_str eddy_request_header(const eddy_request *req, const char *name)
{
    eddy_str v, want = {name, strlen(name)};
    if (!want.len)
        return (eddy_str){NULL, 0};
    request_fields(req, &want, &v, 1);
    return v;
}

bool eddy_request_field_next(const eddy_request *req, size_t *it, eddy_str *name,
                             eddy_str *value)
{
    return req->proto->field_next(req, it, name, value);
}

int eddy_request_version(const eddy_request *req)
{
    return req->version_major * 10 + req->version_minor;
}

size_t eddy_request_peer(const eddy_request *req, char *buf, size_t len)
{
    if (len == 0)
        return 0;
    req->proto->peer_name(req, buf, len);
    return strlen(buf);
}

void eddy_request_on_abort(eddy_request *req, eddy_callback cb, void *data)
{
    req->on_abort = cb;
    req->abort_data = data;
}
