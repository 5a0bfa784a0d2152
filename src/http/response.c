#include "http/response.h"
#include "core/buf.h"
#include "http/server.h"

#include <stdlib.h>
#include <string.h>

/* The whole status line, as one literal for the statuses eddy knows. */
static const char *status_line(int status, size_t *len)
{
    switch (status) {
#define LINE(code, text)                                                                        \
    case code:                                                                                  \
        *len = sizeof("HTTP/1.1 " #code " " text "\r\n") - 1;                                  \
        return "HTTP/1.1 " #code " " text "\r\n";
    RESPONSE_STATUSES(LINE)
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

/* Bytes of the head besides the content type and the fields. */
#define HEAD_FIXED_BYTES 240

/* Queues the status line and fields; false when they could not be put
 * together (the connection is then ended and resp's body released). */
static bool queue_head(request *req, const response *resp, bool chunked)
{
    conn *c = req->conn;
    /* Answering before a streamed body ended leaves the rest unread. */
    bool closing = !req->keep_alive || c->draining || c->fatal || c->phase == PHASE_BODY;
    if (closing)
        req->keep_alive = false; /* said: kept to, whatever comes after */
    size_t ct_len = resp->content_type ? strlen(resp->content_type) : 0;
    size_t need = HEAD_FIXED_BYTES + ct_len;
    for (size_t i = 0; i < resp->nfields; i++)
        need += resp->fields[i].name_len + resp->fields[i].value_len + 4;
    char buf[1024];
    char *p = buf;
    if (need > sizeof(buf) && !(p = malloc(need))) {
        c->fatal = true; /* cannot say it: end the connection instead */
        if (resp->file)
            resp->file->release(resp->file);
        free(resp->parts);
        return false;
    }
    char *start = p;
    size_t line_len;
    const char *line = status_line(resp->status, &line_len);
    if (line) {
        p = put(p, line, line_len);
    } else {
        p = PUT_LIT(p, "HTTP/1.1 ");
        p = buf_put_u64(p, (uint64_t)resp->status);
        p = PUT_LIT(p, " Unknown\r\n");
    }
    p = PUT_LIT(p, "Server: eddy\r\nDate: ");
    p = put(p, front_date(req->front), 29);
    p = PUT_LIT(p, "\r\n");
    if (resp->content_type) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, resp->content_type, ct_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (resp->content_length >= 0) {
        p = PUT_LIT(p, "Content-Length: ");
        p = buf_put_u64(p, (uint64_t)resp->content_length);
        p = PUT_LIT(p, "\r\n");
    }
    if (chunked)
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    if (resp->status == 101)
        p = PUT_LIT(p, "Connection: upgrade\r\n"); /* its Upgrade is among the fields */
    else if (closing)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (req->version_minor == 0)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    for (size_t i = 0; i < resp->nfields; i++) {
        const resp_field *f = &resp->fields[i];
        p = put(p, f->name, f->name_len);
        p = PUT_LIT(p, ": ");
        p = put(p, f->value, f->value_len);
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_LIT(p, "\r\n");
    conn_queue(c, start, (size_t)(p - start));
    if (start != buf)
        free(start);
    return true;
}

void response_h1(request *req, const response *resp)
{
    conn *c = req->conn;
    if (!queue_head(req, resp, false))
        return;
    if (resp->data_len)
        conn_queue(c, resp->data, resp->data_len);
    else if (resp->parts)
        conn_queue_file_parts(c, resp->file, resp->parts);
    else if (resp->file)
        conn_queue_file(c, resp->file, resp->file_off, resp->file_len);
}

/* ---------------------------------------------------- streamed bodies -- */

void response_h1_stream_head(request *req, const response *resp)
{
    conn *c = req->conn;
    bool unknown = resp->content_length < 0 && !req->stream_discard;
    /* An unknown length is chunked for HTTP/1.1; an HTTP/1.0 client can
     * only be told where it ends by the connection closing. */
    c->out_chunked = unknown && req->version_minor >= 1;
    if (unknown && !c->out_chunked)
        req->keep_alive = false;
    queue_head(req, resp, c->out_chunked);
    conn_kick(c);
}

void response_h1_tunnel(request *req, const response *resp)
{
    conn *c = req->conn;
    c->out_chunked = false;
    queue_head(req, resp, false);
    conn_tunnel(c);
}

void response_h1_stream_data(request *req, const void *data, size_t len)
{
    conn *c = req->conn;
    if (c->out_chunked) {
        char size[20];
        int n = 0;
        for (size_t v = len; v; v >>= 4)
            n++;
        for (int i = n - 1, k = 0; i >= 0; i--, k++)
            size[k] = "0123456789abcdef"[(len >> (4 * i)) & 15];
        size[n] = '\r';
        size[n + 1] = '\n';
        conn_queue(c, size, (size_t)n + 2);
        conn_queue(c, data, len);
        conn_queue(c, "\r\n", 2);
    } else {
        conn_queue(c, data, len);
    }
    conn_kick(c);
}

void response_h1_stream_end(request *req, bool complete)
{
    conn *c = req->conn;
    if (!complete)
        req->keep_alive = false; /* the framing promised cannot be kept */
    else if (c->out_chunked)
        conn_queue(c, "0\r\n\r\n", 5);
    c->out_chunked = false;
}

void response_error(conn *c, int status)
{
    if (!c->req && conn_request_begin(c) < 0) {
        /* Bytes that never began a request (a bare CR), and no memory for
         * one to answer them with: end the connection instead. */
        c->broken = true;
        return;
    }
    c->fatal = true;
    if (c->phase == PHASE_BODY && c->body_dispatched && !c->req->answered &&
        !c->req->streaming && c->req->on_abort) {
        /* A handler reading this body (a proxy) holds the request: the
         * body is broken, so it is told as if the client had left, and
         * lets go before eddy answers in its place. */
        eddy_callback cb = c->req->on_abort;
        c->req->on_abort = NULL;
        cb(c->req->abort_data);
    }
    c->req->keep_alive = false;
    c->req->is_head = false;
    response_simple(c->req, status, NULL, 0);
}
