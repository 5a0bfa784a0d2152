/* Streamed responses: a head now, the body in pieces as the handler makes
 * them, with backpressure (a full buffer says -EAGAIN, on_drain says when
 * to go on), so a stream costs at most EDDY_STREAM_BUFFER plus one write. */
#include "core/access_log.h"
#include "metrics/metrics.h"
#include "core/request.h"
#include "core/front.h"

#include <errno.h>
#include <string.h>

int eddy_stream_start(eddy_request *h, int status, const char *content_type, int64_t length)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    int rc = response_head_check(req, status, content_type);
    if (rc < 0)
        return rc;
    if (req->aborted) {
        req->proto->finish(req); /* nobody to stream to */
        return -EPIPE;
    }
    response resp = {.status = status, .content_type = content_type, .content_length = length};
    stream_begin(req, &resp);
    return 0;
}

void stream_begin(request *req, response *resp)
{
    bool body = status_has_body(resp->status);
    if (!body)
        resp->content_length = -1;
    req->streaming = true;
    req->stream_discard = !body || req->is_head;
    req->stream_status = resp->status;
    req->stream_left = body ? resp->content_length : -1;
    req->stream_sent = 0;
    response_with_fields(req, resp, req->proto->stream_head);
}

int stream_tunnel(request *req, response *resp)
{
    if (!req->proto->tunnel)
        return -ENOTSUP;
    resp->status = 101;
    resp->content_type = NULL;
    resp->content_length = -1;
    req->streaming = true;
    req->stream_discard = false;
    req->stream_status = 101;
    req->stream_left = -1;
    req->stream_sent = 0;
    req->keep_alive = false; /* what follows is not HTTP */
    response_with_fields(req, resp, req->proto->tunnel);
    return 0;
}

void stream_put(request *req, const void *data, size_t len)
{
    if (len == 0 || req->stream_discard)
        return;
    req->proto->stream_data(req, data, len);
    if (req->stream_left >= 0)
        req->stream_left -= (int64_t)len;
    req->stream_sent += len;
}

void stream_set_more(request *req, bool more)
{
    bool was = req->stream_more;
    req->stream_more = more;
    if (was && !more && !req->aborted && req->proto->stream_push)
        req->proto->stream_push(req);
}

void stream_cut(request *req)
{
    stream_set_more(req, false);
    if (!req->aborted) {
        req->proto->stream_end(req, false);
        front *f = req->front;
        if (f->log)
            access_log_response(f->log, req, req->stream_status, (int64_t)req->stream_sent);
        if (f->metrics)
            metrics_response(f->metrics, req, req->stream_status);
    }
    req->streaming = false;
    req->proto->finish(req);
}

int eddy_stream_write(eddy_request *h, const void *data, size_t len)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    if (!req->streaming || req->answered)
        return -EINVAL;
    if (req->aborted)
        return -EPIPE;
    if (req->stream_left >= 0 && (uint64_t)req->stream_left < len)
        return -EMSGSIZE;
    if (len == 0 || req->stream_discard)
        return 0;
    if (req->proto->buffered(req) >= EDDY_STREAM_BUFFER) {
        req->drain_wanted = true;
        return -EAGAIN;
    }
    stream_put(req, data, len);
    return 0;
}

void eddy_stream_on_drain(eddy_request *h, eddy_callback cb, void *data)
{
    request *req = request_of(h);
    if (!req)
        return;
    req->on_drain = cb;
    req->drain_data = data;
}

int eddy_stream_end(eddy_request *h)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    if (!req->streaming || req->answered)
        return -EINVAL;
    bool complete = req->stream_left <= 0 || req->stream_discard;
    stream_set_more(req, false);
    if (!req->aborted) {
        req->proto->stream_end(req, complete);
        front *f = req->front;
        if (f->log)
            access_log_response(f->log, req, req->stream_status, (int64_t)req->stream_sent);
        if (f->metrics)
            metrics_response(f->metrics, req, req->stream_status);
    }
    req->streaming = false;
    req->proto->finish(req);
    return complete ? 0 : -EMSGSIZE;
}
