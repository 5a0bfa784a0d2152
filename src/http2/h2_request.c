/* One request per HTTP/2 stream: its head becomes a neutral request, the
 * core's response becomes HEADERS and DATA frames.  Bodies leave as flow
 * control lets them: memory (copied only if it must outlive the handler's
 * call), file ranges read straight into the output queue (one copy, the
 * same as a TLS record's), and streamed pieces. */
#include "http2/h2.h"
#include "core/access_log.h"
#include "core/buf.h"
#include "core/front.h"
#include "http/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------------------------------------- requests -- */

/* Finds field `name` (lowercase, as HTTP/2 sends them) in st's head. */
static bool find_field(const h2stream *st, const char *name, eddy_str *value)
{
    size_t nl = strlen(name);
    for (uint32_t off = st->fields_off; off < st->fields_end;) {
        const char *n = st->head + off;
        size_t l = strlen(n);
        const char *v = n + l + 1;
        size_t vl = strlen(v);
        if (l == nl && memcmp(n, name, nl) == 0) {
            *value = (eddy_str){v, vl};
            return true;
        }
        off += (uint32_t)(l + vl + 2);
    }
    return false;
}

int64_t h2_head_grow(h2stream *st, size_t n)
{
    if (buf_grow(&st->head, &st->head_cap, (size_t)st->head_len + n, 256) < 0)
        return -1;
    uint32_t at = st->head_len;
    st->head_len += (uint32_t)n;
    return at;
}

static bool authority_matches_host(const h2stream *st, eddy_str host)
{
    return host.len == st->authority_len &&
           strncasecmp(host.ptr, st->head + st->authority_off, host.len) == 0;
}

int h2_request_begin(h2stream *st)
{
    h2conn *c = st->c;
    server_t *srv = c->srv;
    if (!st->fields_off)
        st->fields_off = st->head_len; /* no pseudo-header came (nghttp2 refuses that) */
    /* :authority stands for Host (RFC 9113 §8.3.1); both must agree. */
    st->fields_end = st->head_len;
    eddy_str host;
    if (st->has_authority && st->has_host && find_field(st, "host", &host) &&
        !authority_matches_host(st, host) && !st->refuse)
        st->refuse = 400;
    if (st->has_authority && !st->has_host) {
        uint32_t al = st->authority_len;
        int64_t at = h2_head_grow(st, 5 + al + 1);
        if (at < 0)
            return -ENOMEM;
        char *p = st->head + at;
        memcpy(p, "host", 5);
        memcpy(p + 5, st->head + st->authority_off, al);
        p[5 + al] = 0;
    }
    st->fields_end = st->head_len;
    /* The request line eddy logs: "METHOD PATH HTTP/2.0". */
    bool connect = st->method_len == 7 && memcmp(st->head + st->method_off, "CONNECT", 7) == 0;
    uint32_t t_off = connect ? st->authority_off : st->path_off;
    uint32_t t_len = connect ? st->authority_len : st->path_len;
    int64_t at = h2_head_grow(st, st->method_len + 1 + t_len + 1 + 8);
    if (at < 0)
        return -ENOMEM;
    uint32_t line = (uint32_t)at;
    char *p = st->head + line;
    memcpy(p, st->head + st->method_off, st->method_len);
    p[st->method_len] = ' ';
    memcpy(p + st->method_len + 1, st->head + t_off, t_len);
    memcpy(p + st->method_len + 1 + t_len, " HTTP/2.0", 9);

    request *r = request_new(&srv->front, &h2_proto, st, (const char *const *)&st->head);
    if (!r)
        return -ENOMEM;
    st->req = r;
    r->method = (span){line, st->method_len};
    r->target = (span){line + st->method_len + 1, t_len};
    r->version = (span){line + st->method_len + 1 + t_len + 1 + 5, 3};
    r->head_len = st->head_len;
    r->version_major = 2;
    r->version_minor = 0;
    r->keep_alive = !c->draining;
    r->method_id = (uint8_t)request_method_id(st->head + st->method_off, st->method_len);
    r->is_head = r->method_id == METHOD_HEAD;
    r->secure = c->stream->ops->secure;
    r->listener = c->listener;
    r->host_count = st->has_authority || st->has_host;
    st->body_mode = EDDY_BODY_DROP;
    r->has_body = !st->end_recv;
    if (st->end_recv || st->refuse)
        return 0;
    /* A body comes: routes that take one are found now, before it does. */
    int chosen = sites_route_early(r);
    if (chosen) {
        st->refuse = (uint16_t)chosen;
        return 0;
    }
    if (r->route)
        st->body_mode = (uint8_t)r->route->body;
    eddy_str cl;
    uint64_t max_body = request_max_body(r, srv->max_body);
    if (st->body_mode != EDDY_BODY_STREAM && find_field(st, "content-length", &cl)) {
        /* nghttp2 has checked it is a number and will hold the DATA to it. */
        uint64_t v = 0;
        for (size_t i = 0; i < cl.len && v <= max_body; i++)
            v = v * 10 + (uint64_t)(cl.ptr[i] - '0');
        if (v > max_body)
            st->refuse = 413;
    }
    return 0;
}

/* The handler holds the request from here until it answers. */
static void dispatch(h2stream *st)
{
    request *r = st->req;
    st->dispatched = true;
    st->c->held++;
    if (st->body_mode == EDDY_BODY_STREAM)
        r->body_paused = true; /* until the handler reads */
    if (r->method_id != METHOD_CONNECT && request_split_target(r) != 0) {
        response_simple(r, 400, NULL, 0);
        return;
    }
    site_dispatch(r);
}

void h2_stream_abort(h2stream *st)
{
    request *r = st->req;
    r->aborted = true;
    eddy_callback cb = r->on_abort;
    if (!cb)
        return; /* it answers later, into nothing */
    r->on_abort = NULL;
    st->in_close = true;
    cb(r->abort_data); /* the handler lets go */
    st->in_close = false;
    if (st->req) {
        request_free(st->req);
        st->req = NULL;
        h2_conn_unhold(st->c);
    }
}

void h2_stream_run(h2stream *st)
{
    h2conn *c = st->c;
    if (st->closed) {
        if (st->req && st->dispatched)
            h2_stream_abort(st);
        else if (st->req) {
            request_free(st->req);
            st->req = NULL;
        }
        if (!st->req)
            h2_stream_free(st);
        return;
    }
    request *r = st->req;
    if (!r)
        return;
    if (st->refuse && !st->responded) {
        if (!st->dispatched) {
            st->dispatched = true;
            c->held++;
        }
        r->is_head = false;
        response_simple(r, st->refuse, NULL, 0);
        return;
    }
    if (!st->dispatched) {
        if (st->end_recv || st->body_mode == EDDY_BODY_STREAM)
            dispatch(st);
        return;
    }
    if (r->drain_wanted && st->mem_len < EDDY_STREAM_BUFFER) {
        /* A streamed response's buffer drained: its handler may write. */
        r->drain_wanted = false;
        if (r->on_drain) {
            r->on_drain(r->drain_data);
            if (st->req != r)
                return;
        }
    }
    if (st->body_mode != EDDY_BODY_STREAM || !r->body_fn || r->body_paused)
        return;
    if (st->in_len) {
        uint32_t n = st->in_len;
        st->in_len = 0;
        /* Copied out first: the handler may pause, answer or read more. */
        char *piece = st->in;
        st->in = NULL;
        st->in_cap = 0;
        request_body_piece(r, piece, n);
        free(piece);
        if (!c->closed)
            nghttp2_session_consume(c->ng, st->id, n); /* the client may send more */
        if (st->req != r || c->closed)
            return;
    }
    if (st->end_recv && !st->end_told && !r->body_paused && st->in_len == 0) {
        st->end_told = true;
        request_body_piece(r, NULL, 0);
    }
}

/* ------------------------------------------------------------ responses -- */

void h2_body_release(h2stream *st)
{
    if (st->file)
        st->file->release(st->file);
    st->file = NULL;
    st->file_left = 0;
    free(st->parts);
    st->parts = NULL;
    free(st->owned);
    st->owned = NULL;
    st->owned_cap = 0;
    st->mem = NULL;
    st->mem_len = 0;
    st->body_eof = true;
}

#define NV(n, v, vl) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE})

/* Submits resp's head, with a body from st's source when `body`. */
static int submit_head(h2stream *st, const response *resp, bool body)
{
    h2conn *c = st->c;
    request *r = st->req;
    nghttp2_nv nv[RESPONSE_FIELDS_ALL + 5];
    size_t n = 0;
    char status[4], length[24];
    status[0] = (char)('0' + resp->status / 100 % 10);
    status[1] = (char)('0' + resp->status / 10 % 10);
    status[2] = (char)('0' + resp->status % 10);
    nv[n++] = NV(":status", status, 3);
    nv[n++] = NV("server", "eddy", 4);
    nv[n++] = NV("date", front_date(r->front), 29);
    if (resp->content_type)
        nv[n++] = NV("content-type", resp->content_type, strlen(resp->content_type));
    if (resp->content_length >= 0)
        nv[n++] = NV("content-length", length,
                     (size_t)(buf_put_u64(length, (uint64_t)resp->content_length) - length));
    /* HTTP/2 field names are lowercase (RFC 9113 §8.2.1). */
    size_t names = 0;
    for (size_t i = 0; i < resp->nfields; i++)
        names += resp->fields[i].name_len;
    char stack[2048], *lower = names <= sizeof(stack) ? stack : malloc(names);
    if (!lower)
        return -ENOMEM;
    char *q = lower;
    for (size_t i = 0; i < resp->nfields && n < sizeof(nv) / sizeof(nv[0]); i++) {
        const resp_field *f = &resp->fields[i];
        for (uint32_t k = 0; k < f->name_len; k++) {
            char ch = f->name[k];
            q[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        nv[n++] = (nghttp2_nv){(uint8_t *)q, (uint8_t *)f->value, f->name_len, f->value_len,
                               NGHTTP2_NV_FLAG_NONE};
        q += f->name_len;
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = h2_read_body};
    int rv = nghttp2_submit_response(c->ng, st->id, nv, n, body ? &prd : NULL);
    if (lower != stack)
        free(lower);
    return rv;
}

/* Whether a stream can still take a response. */
static bool can_answer(const h2stream *st) { return !st->c->closed && !st->closed; }

static void h2_respond(request *r, const response *resp)
{
    h2stream *st = r->conn;
    h2conn *c = st->c;
    st->responded = true;
    st->body_eof = true;
    st->mem = resp->data;
    st->mem_len = resp->data_len;
    st->file = resp->file;
    st->parts = resp->parts;
    st->file_off = resp->parts ? 0 : resp->file_off;
    st->file_left = resp->parts ? 0 : resp->file_len;
    if (!can_answer(st)) {
        h2_body_release(st);
        return;
    }
    bool body = resp->data_len || resp->file || resp->parts;
    if (submit_head(st, resp, body) != 0) {
        h2_body_release(st);
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        h2_kick(c);
        return;
    }
    if (st->mem_len) {
        /* The handler's bytes are good only during this call: what flow
         * control or a full queue keeps back is copied. */
        h2_pump(c);
        if (st->mem_len && !st->closed) {
            char *copy = malloc(st->mem_len);
            if (!copy) {
                h2_body_release(st);
                nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
            } else {
                memcpy(copy, st->mem, st->mem_len);
                st->owned = copy;
                st->owned_cap = st->mem_len;
                st->mem = copy;
            }
        }
    }
    h2_kick(c);
}

static void h2_finish(request *r)
{
    h2stream *st = r->conn;
    h2conn *c = st->c;
    bool held = st->dispatched;
    request_free(r);
    st->req = NULL;
    if (st->closed && !st->in_close && !st->queued)
        h2_stream_free(st);
    if (held)
        h2_conn_unhold(c); /* may free c */
    else
        h2_kick(c);
}

static void h2_stream_head(request *r, const response *resp)
{
    h2stream *st = r->conn;
    st->responded = true;
    st->body_eof = r->stream_discard;
    if (!can_answer(st))
        return;
    if (submit_head(st, resp, !r->stream_discard) != 0)
        nghttp2_submit_rst_stream(st->c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    h2_kick(st->c);
}

/* nghttp2 waits on a streamed body: tell it there is more (or the end). */
static void resume(h2stream *st)
{
    if (st->deferred && can_answer(st)) {
        st->deferred = false;
        nghttp2_session_resume_data(st->c->ng, st->id);
    }
    h2_kick(st->c);
}

static void h2_stream_data(request *r, const void *data, size_t len)
{
    h2stream *st = r->conn;
    if (!can_answer(st))
        return;
    size_t start = st->owned && st->mem_len ? (size_t)(st->mem - st->owned) : 0;
    if (start + st->mem_len + len > st->owned_cap) {
        /* Unsent bytes move to the front, then the buffer grows if it must. */
        if (start && st->mem_len)
            memmove(st->owned, st->mem, st->mem_len);
        start = 0;
        if (st->mem_len + len > st->owned_cap) {
            size_t cap = st->owned_cap ? st->owned_cap : 16384;
            while (cap < st->mem_len + len)
                cap *= 2;
            char *nb = realloc(st->owned, cap);
            if (!nb) {
                nghttp2_submit_rst_stream(st->c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
                h2_kick(st->c);
                return;
            }
            st->owned = nb;
            st->owned_cap = cap;
        }
    }
    memcpy(st->owned + start + st->mem_len, data, len);
    st->mem = st->owned + start;
    st->mem_len += len;
    resume(st);
}

static void h2_stream_end(request *r, bool complete)
{
    h2stream *st = r->conn;
    st->body_eof = true;
    if (!can_answer(st))
        return;
    if (!complete) /* the length promised was not reached: the body is broken */
        nghttp2_submit_rst_stream(st->c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    resume(st);
}

static size_t h2_buffered(const request *r)
{
    const h2stream *st = r->conn;
    return st->mem_len;
}

static void h2_body_flow(request *r)
{
    h2stream *st = r->conn;
    if (!r->body_paused)
        h2_ready(st);
}

static bool h2_field_next(const request *r, size_t *it, eddy_str *name, eddy_str *value)
{
    const h2stream *st = r->conn;
    size_t off = *it ? *it : st->fields_off;
    if (off >= st->fields_end)
        return false;
    const char *n = st->head + off;
    size_t nl = strlen(n);
    const char *v = n + nl + 1;
    size_t vl = strlen(v);
    *name = (eddy_str){n, nl};
    *value = (eddy_str){v, vl};
    *it = off + nl + vl + 2;
    return true;
}

static void h2_peer_name(const request *r, char *buf, size_t len)
{
    const h2stream *st = r->conn;
    stream_peer_cached(st->c->stream, &st->c->peer, buf, len);
}

static const char *h2_tls_version(const request *r)
{
    const h2stream *st = r->conn;
    return stream_tls_version(st->c->stream);
}

const proto_ops h2_proto = {
    .respond = h2_respond,
    .finish = h2_finish,
    .stream_head = h2_stream_head,
    .stream_data = h2_stream_data,
    .stream_end = h2_stream_end,
    .buffered = h2_buffered,
    .body_flow = h2_body_flow,
    .field_next = h2_field_next,
    .peer_name = h2_peer_name,
    .tls_version = h2_tls_version,
};

/* ---------------------------------------------------------- DATA frames -- */

/* Moves to the next part of a multipart body once the current one is sent. */
static void next_part(h2stream *st)
{
    file_parts *fp = st->parts;
    while (fp && !st->mem_len && !st->file_left && fp->next < fp->n) {
        const file_part *p = &fp->part[fp->next++];
        st->mem = (const char *)&fp->part[fp->n] + p->head_off;
        st->mem_len = p->head_len;
        st->file_off = p->off;
        st->file_left = p->len;
    }
}

static bool more_parts(const h2stream *st) { return st->parts && st->parts->next < st->parts->n; }

ssize_t h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                     nghttp2_data_source *src, void *user)
{
    h2stream *st = src->ptr;
    next_part(st);
    uint64_t avail = st->mem_len + (uint64_t)st->file_left;
    if (avail == 0) {
        if (!st->body_eof) {
            st->deferred = true; /* stream_data or stream_end resumes it */
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t n = avail < len ? (size_t)avail : len;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && st->body_eof && !more_parts(st))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int h2_send_body(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
                 nghttp2_data_source *src, void *user)
{
    h2conn *c = user;
    h2stream *st = src->ptr;
    if (c->out_len - c->out_off >= H2_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    char *p = h2_out_reserve(c, 9 + len);
    if (!p)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(p, framehd, 9);
    p += 9;
    size_t k = len < st->mem_len ? len : st->mem_len;
    if (k) {
        memcpy(p, st->mem, k);
        st->mem += k;
        st->mem_len -= k;
    }
    for (size_t done = k; done < len;) {
        ssize_t got = pread(st->file->fd, p + done, len - done, st->file_off);
        if (got <= 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* the file shrank: framing is lost */
        done += (size_t)got;
        st->file_off += got;
        st->file_left -= got;
    }
    if (st->owned && !st->mem_len)
        st->mem = st->owned; /* drained: appends start at the front again */
    if (st->req && st->req->drain_wanted && st->mem_len < EDDY_STREAM_BUFFER)
        h2_ready(st);
    return 0;
}
