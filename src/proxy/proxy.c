/* The proxy handler: one exchange per request.  It picks a backend, takes
 * a kept connection to it or opens one, sends the rebuilt head, streams
 * the client's body as it comes (pausing the client while the backend
 * takes no more), and streams the response back (pausing the backend's
 * reads while the client takes no more).  Failures before the response's
 * head are answered (502, 503, 504), and retried on another backend when
 * the request may safely go twice; after it, the response is cut. */
#include "proxy/proxy.h"
#include "core/fields.h"
#include "core/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void health_start(eddy_proxy *px);
void health_stop(eddy_proxy *px);

/* ------------------------------------------------------------ exchanges -- */

static exchange *exchange_get(eddy_proxy *px)
{
    exchange *x = px->free_exchanges;
    if (x)
        px->free_exchanges = x->next_free;
    else if (!(x = malloc(sizeof(*x))))
        return NULL;
    memset(x, 0, offsetof(exchange, rp)); /* the rest of rp: reply_start's */
    x->rp.any = false;
    x->rp.head_done = false;
    x->px = px;
    return x;
}

/* The exchange is over: its backend has one request fewer in flight. */
static void exchange_put(exchange *x)
{
    if (x->be)
        x->be->active--;
    x->next_free = x->px->free_exchanges;
    x->px->free_exchanges = x;
}

static bool idempotent(const request *req)
{
    switch (req->method_id) {
    case METHOD_GET: case METHOD_HEAD: case METHOD_PUT: case METHOD_DELETE:
    case METHOD_OPTIONS: case METHOD_TRACE:
        return true;
    default:
        return false;
    }
}

/* May the request go to another backend?  RFC 9110 §9.2.2: idempotent,
 * and all of it still at hand (no body byte taken from the client). */
static bool retryable(const exchange *x)
{
    return x->req && idempotent(x->req) && x->body_sent == 0 && !x->rp.any;
}

static void answer(exchange *x, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, status_reason(status));
    eddy_respond(x->h, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Ends x with status (before the response's head) or a cut response. */
static void fail_client(exchange *x, int status)
{
    if (x->uc) {
        upconn_close(x->uc, true);
        x->uc = NULL;
    }
    if (x->req) {
        if (x->responding)
            stream_cut(x->req);
        else
            answer(x, status);
    }
    x->req = NULL;
    exchange_put(x);
}

static void attempt(exchange *x);
static void stale(exchange *x);

/* The backend failed x: try another if x may go twice (retry), else
 * answer status. */
static void attempt_failed(exchange *x, int status, bool retry)
{
    if (x->uc) {
        upconn_close(x->uc, true);
        x->uc = NULL;
    }
    if (retry && retryable(x)) {
        x->last_status = status;
        x->be->active--;
        x->be = NULL;
        attempt(x);
        return;
    }
    fail_client(x, status);
}

/* ----------------------------------------------------- to the backend -- */

static void on_piece(eddy_request *h, const void *data, size_t len, void *ud);
static void tunnel_piece(exchange *x, const void *data, size_t len);

/* After a write: what the backend has not taken holds the client's body
 * back and runs the read timeout; once all is sent the first byte is
 * awaited. */
static void after_write(exchange *x)
{
    upconn *uc = x->uc;
    eddy_proxy *px = x->px;
    if (upconn_pending(uc)) {
        if (x->reading && x->req)
            eddy_request_pause(x->h, true);
        x->push_due = false;
        upconn_arm(uc, px->read_ms);
        return;
    }
    if (x->reading && x->req)
        eddy_request_pause(x->h, false);
    if (x->tunnel) {
        if (x->client_eof)
            stream_shutdown_write(uc->stream); /* the client's FIN, passed on */
        upconn_arm(uc, px->tunnel_ms);
        return;
    }
    if (x->responding)
        return; /* the response's reads keep their own timer */
    if (x->body_done)
        upconn_arm(uc, px->first_byte_ms);
    else
        eddy_timer_stop(px->loop, &uc->timer); /* the client's pace: eddy's body timeout */
}

static void send_head(exchange *x)
{
    eddy_proxy *px = x->px;
    upconn *uc = x->uc;
    size_t len;
    enum fwd_body body;
    int st = forward_head(px, x->be, x->req, x->upgrade, px->head, sizeof(px->head), &len, &body);
    if (st) {
        upconn_keep(uc); /* nothing was sent on it */
        x->uc = NULL;
        fail_client(x, st);
        return;
    }
    x->body = body;
    uc->state = UC_BUSY;
    reply_start(uc, x);
    struct iovec v = {px->head, len};
    int rc = upconn_write(uc, &v, 1);
    if (rc < 0 && x->reused) {
        stale(x);
        return;
    }
    if (rc < 0) {
        backend_failed(px, x->be);
        attempt_failed(x, 502, true);
        return;
    }
    uc->requests++;
    if (body == FWD_NONE) {
        x->body_done = true;
    } else if (!x->reading) {
        x->reading = true;
        eddy_request_read(x->h, on_piece, x);
    }
    after_write(x);
}

static void on_piece(eddy_request *h, const void *data, size_t len, void *ud)
{
    exchange *x = ud;
    eddy_proxy *px = x->px;
    upconn *uc = x->uc;
    if (x->tunnel) {
        tunnel_piece(x, data, len);
        return;
    }
    if (len == 0) {
        x->reading = false;
        if (!uc || x->complete)
            return;
        if (x->body == FWD_CHUNKED) {
            struct iovec v = {"0\r\n\r\n", 5};
            if (upconn_write(uc, &v, 1) < 0) {
                x->body_done = true; /* the response may still come */
                return;
            }
        }
        x->body_done = true;
        after_write(x);
        return;
    }
    x->body_sent += len;
    if (x->body_sent > x->max_body) {
        /* The client may send no more: 413 (or a cut response). */
        fail_client(x, 413);
        return;
    }
    if (!uc) /* between backends: cannot happen, the body is paused */
        return;
    char size[20];
    struct iovec v[3];
    int n = 0;
    if (x->body == FWD_CHUNKED)
        v[n++] = (struct iovec){size, (size_t)snprintf(size, sizeof(size), "%zx\r\n", len)};
    v[n++] = (struct iovec){(void *)data, len};
    if (x->body == FWD_CHUNKED)
        v[n++] = (struct iovec){"\r\n", 2};
    if (upconn_write(uc, v, n) < 0) {
        if (x->responding) {
            /* The backend answered and stopped reading: its answer stands. */
            x->reading = false;
            eddy_request_pause(h, true);
            return;
        }
        backend_failed(px, x->be);
        attempt_failed(x, 502, false);
        return;
    }
    after_write(x);
}

/* ---------------------------------------------------- from the backend -- */

int exchange_head(exchange *x, response *resp)
{
    if (!x->req)
        return -1;
    backend_ok(x->be);
    x->responding = true;
    stream_begin(x->req, resp);
    return 0;
}

void exchange_body(exchange *x, const char *data, size_t len)
{
    if (x->req)
        stream_put(x->req, data, len);
}

void exchange_complete(exchange *x) { x->complete = true; }

/* The response to the client ends here, as it is (a known length not
 * reached closes the connection), and x is over. */
static void end_response(exchange *x)
{
    if (x->req)
        eddy_stream_end(x->h);
    x->req = NULL;
    exchange_put(x);
}

int exchange_tunnel(exchange *x, response *resp)
{
    if (!x->req || stream_tunnel(x->req, resp) < 0)
        return -1;
    backend_ok(x->be);
    x->responding = true;
    x->tunnel = true;
    x->reading = true;
    eddy_request_read(x->h, on_piece, x);
    upconn_arm(x->uc, x->px->tunnel_ms);
    return 0;
}

/* The tunnel is over (either side closed, or it idled too long): what
 * each side was sent stays sent, then both close. */
static void end_tunnel(exchange *x)
{
    if (x->uc) {
        upconn_close(x->uc, false);
        x->uc = NULL;
    }
    end_response(x);
}

/* Client bytes for the backend, as they are. */
static void tunnel_piece(exchange *x, const void *data, size_t len)
{
    upconn *uc = x->uc;
    if (len == 0) {
        x->reading = false;
        x->client_eof = true;
        if (!upconn_pending(uc))
            stream_shutdown_write(uc->stream);
        return;
    }
    struct iovec v = {(void *)data, len};
    if (upconn_write(uc, &v, 1) < 0) {
        end_tunnel(x);
        return;
    }
    after_write(x);
}

static void read_response(exchange *x);

/* The response goes on and all the backend sent so far went to the
 * client: its next bytes are awaited for read_ms.  While they are coming
 * at once, the client's last packet is held for them (stream_set_more);
 * when the backend's socket is empty, only for PROXY_PUSH_MS, after which
 * what is held goes as it is.  A tunnel's bytes are never held. */
static void await_backend(exchange *x)
{
    upconn *uc = x->uc;
    eddy_proxy *px = x->px;
    if (x->tunnel) {
        x->push_due = false;
        upconn_arm(uc, px->tunnel_ms);
        return;
    }
    x->read_deadline = eddy_loop_now(px->loop) + px->read_ms;
    x->push_due = x->responding && x->req && !uc->readable;
    if (x->responding && x->req)
        stream_set_more(x->req, true);
    upconn_arm(uc, x->push_due ? PROXY_PUSH_MS : px->read_ms);
}

static void on_client_drained(void *data)
{
    exchange *x = data;
    x->waiting_client = false;
    if (x->uc) {
        await_backend(x);
        read_response(x);
    }
}

/* The response ended: the client's side is finished and the connection
 * kept when it can carry another request. */
static void finish(exchange *x, size_t leftover)
{
    upconn *uc = x->uc;
    x->uc = NULL;
    bool reuse = !leftover && x->body_done && !upconn_pending(uc) && x->px->keepalive &&
                 llhttp_should_keep_alive(&uc->parser);
    if (reuse)
        upconn_keep(uc);
    else
        upconn_close(uc, false);
    end_response(x);
}

/* Runs the parser over len bytes at from.  False when x is over. */
static bool execute(exchange *x, const char *from, size_t len)
{
    upconn *uc = x->uc;
    llhttp_errno_t e = llhttp_execute(&uc->parser, from, len);
    if (x->tunnel && (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE)) {
        /* Bytes after the 101 are the tunnel's first. */
        const char *at = llhttp_get_error_pos(&uc->parser);
        if (x->req && at && at < from + len)
            stream_put(x->req, at, (size_t)(from + len - at));
        return true;
    }
    if (e == HPE_PAUSED && x->complete) {
        size_t used = (size_t)(llhttp_get_error_pos(&uc->parser) - from);
        finish(x, len - used);
        return false;
    }
    if (e != HPE_OK) {
        if (!x->responding)
            backend_failed(x->px, x->be);
        attempt_failed(x, 502, false);
        return false;
    }
    return true;
}

/* Feeds n bytes at data to the parser.  A head that arrives in pieces is
 * gathered in a buffer of the connection's, so its fields stay in one
 * place until it is whole.  False when x is over. */
static bool feed(exchange *x, const char *data, size_t n)
{
    upconn *uc = x->uc;
    reply *rp = &x->rp;
    rp->any = true;
    if (!rp->head_done && uc->in_len) {
        size_t room = PROXY_RESPONSE_HEAD_MAX - uc->in_len, take = n < room ? n : room;
        char *from = uc->in + uc->in_len;
        memcpy(from, data, take);
        uc->in_len += (uint32_t)take;
        rp->base = uc->in;
        if (!execute(x, from, take))
            return false;
        if (!rp->head_done) {
            if (uc->in_len < PROXY_RESPONSE_HEAD_MAX)
                return true;
            backend_failed(x->px, x->be);
            attempt_failed(x, 502, false); /* a head too large */
            return false;
        }
        free(uc->in);
        uc->in = NULL;
        uc->in_len = 0;
        data += take;
        n -= take;
        if (!n)
            return true;
        if (x->tunnel) { /* the parser is done: the rest is the tunnel's */
            if (x->req)
                stream_put(x->req, data, n);
            return true;
        }
    }
    rp->base = data;
    if (!execute(x, data, n))
        return false;
    if (!rp->head_done) {
        if (n >= PROXY_RESPONSE_HEAD_MAX || !(uc->in = malloc(PROXY_RESPONSE_HEAD_MAX))) {
            backend_failed(x->px, x->be);
            attempt_failed(x, 502, false);
            return false;
        }
        memcpy(uc->in, data, n);
        uc->in_len = (uint32_t)n;
    }
    return true;
}

/* A kept connection that turned out closed before any of the response
 * came: no fault of the backend's (it closed an idle connection as eddy
 * reused it), so the request goes again, to the same backend too, when it
 * may go twice; else 502. */
static void stale(exchange *x)
{
    backend *be = x->be;
    if (!retryable(x)) {
        attempt_failed(x, 502, false);
        return;
    }
    upconn_close(x->uc, true);
    x->uc = NULL;
    be->active--;
    x->be = NULL;
    x->tried &= ~(UINT64_C(1) << (be - x->px->backends));
    x->last_status = 502;
    attempt(x);
}

/* The backend closed or failed (rc: 0 for EOF, else -errno). */
static void backend_gone(exchange *x, ssize_t rc)
{
    upconn *uc = x->uc;
    if (x->rp.head_done && rc == 0) {
        /* A body delimited by the close ends well; any other is cut. */
        llhttp_errno_t e = llhttp_finish(&uc->parser);
        if ((e == HPE_OK || e == HPE_PAUSED) && x->complete) {
            uc->eof = true;
            finish(x, 0);
            return;
        }
        fail_client(x, 502);
        return;
    }
    if (x->responding) {
        fail_client(x, 502);
        return;
    }
    bool nothing = !x->rp.any;
    if (nothing && x->reused) {
        stale(x);
        return;
    }
    backend_failed(x->px, x->be);
    attempt_failed(x, 502, nothing);
}

static void read_response(exchange *x)
{
    eddy_proxy *px = x->px;
    while (x->uc && x->uc->readable && !x->waiting_client) {
        upconn *uc = x->uc;
        ssize_t n = stream_read(uc->stream, px->rbuf, sizeof(px->rbuf));
        if (n == -EAGAIN) {
            uc->readable = false;
            return;
        }
        /* A short read drained the socket (reading again would only say
         * EAGAIN) unless the backend's FIN is waiting behind it. */
        if (n > 0 && (size_t)n < sizeof(px->rbuf) && !uc->peer_fin)
            uc->readable = false;
        if (n <= 0) {
            if (x->tunnel)
                end_tunnel(x);
            else
                backend_gone(x, n);
            return;
        }
        if (x->tunnel) {
            upconn_arm(uc, px->tunnel_ms);
            if (x->req)
                stream_put(x->req, px->rbuf, (size_t)n);
        } else {
            if (!feed(x, px->rbuf, (size_t)n))
                return;
            await_backend(x);
        }
        if (x->responding && x->req &&
            x->req->proto->buffered(x->req) >= EDDY_STREAM_BUFFER) {
            /* The client takes no more for now: so neither do we. */
            x->waiting_client = true;
            x->push_due = false;
            x->req->drain_wanted = true;
            eddy_stream_on_drain(x->h, on_client_drained, x);
            eddy_timer_stop(px->loop, &uc->timer);
            return;
        }
    }
}

void proxy_upconn_ready(upconn *uc, unsigned events)
{
    exchange *x = uc->x;
    if (uc->state == UC_CONNECTING || !x)
        return;
    if ((events & STREAM_WRITABLE) && upconn_pending(uc)) {
        int rc = upconn_flush(uc);
        if (rc < 0 && x->tunnel) {
            end_tunnel(x);
            return;
        }
        if (rc < 0) {
            if (x->responding) {
                x->reading = false;
            } else {
                backend_failed(x->px, x->be);
                attempt_failed(x, 502, false);
                return;
            }
        } else if (rc == 1) {
            after_write(x);
        }
    }
    read_response(x);
}

void proxy_upconn_connected(upconn *uc, int err)
{
    exchange *x = uc->x;
    if (err) {
        backend_failed(x->px, x->be);
        attempt_failed(x, 502, true);
        return;
    }
    uc->state = UC_BUSY;
    send_head(x);
}

void proxy_upconn_timeout(upconn *uc)
{
    exchange *x = uc->x;
    if (x->push_due) {
        /* The backend paused mid-response: the client gets what it has. */
        x->push_due = false;
        if (x->req)
            stream_set_more(x->req, false);
        uint64_t now = eddy_loop_now(x->px->loop);
        if (x->read_deadline > now) {
            upconn_arm(uc, (unsigned)(x->read_deadline - now));
            return;
        }
    }
    if (x->tunnel) {
        end_tunnel(x); /* nothing either way for tunnel_ms */
        return;
    }
    if (!x->responding)
        backend_failed(x->px, x->be);
    /* Only a connect that timed out lets the request go elsewhere: once
     * sent, it may be at work. */
    attempt_failed(x, 504, uc->state == UC_CONNECTING);
}

/* -------------------------------------------------------------- attempt -- */

static void attempt(exchange *x)
{
    eddy_proxy *px = x->px;
    bool all_down;
    backend *be = backend_pick(px, x->tried, &all_down);
    if (!be) {
        /* Every backend tried: the last failure; none to try: down. */
        fail_client(x, x->tried && x->last_status ? x->last_status : 503);
        return;
    }
    x->tried |= UINT64_C(1) << (be - px->backends);
    x->be = be;
    be->active++;
    if (x->reading)
        eddy_request_pause(x->h, true); /* until the head is on its way */
    upconn *uc = upconn_take_idle(be);
    if (uc) {
        x->uc = uc;
        uc->x = x;
        x->reused = true;
        send_head(x);
        return;
    }
    x->reused = false;
    int rc = upconn_open(px, be, UC_CONNECTING, &uc);
    if (rc < 0) {
        backend_failed(px, be);
        attempt_failed(x, rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM ? 503 : 502, true);
        return;
    }
    x->uc = uc;
    uc->x = x;
}

static void on_abort(void *data)
{
    exchange *x = data;
    x->req = NULL; /* the handle is stale once this returns */
    if (x->uc) {
        /* Reset: the backend sees the request abandoned and may stop. */
        upconn_close(x->uc, true);
        x->uc = NULL;
    }
    exchange_put(x);
}

/* The length the client declared, or -1. */
static int64_t declared_length(const request *req)
{
    eddy_str name, value;
    for (size_t it = 0; req->proto->field_next(req, &it, &name, &value);)
        if (name.len == 14 && strncasecmp(name.ptr, "content-length", 14) == 0) {
            uint64_t v = 0;
            for (size_t i = 0; i < value.len && v < (UINT64_C(1) << 60); i++)
                v = v * 10 + (uint64_t)(value.ptr[i] - '0');
            return (int64_t)v;
        }
    return -1;
}

/* Whether the client asks to switch protocols (RFC 9110 §7.8) in a way
 * a tunnel can carry: HTTP/1.1, no body, Upgrade listed in Connection,
 * and not to HTTP/2 (whose h2c upgrade needs its hop-by-hop settings). */
static bool wants_upgrade(const request *req)
{
    if (!req->proto->tunnel || req->version_major != 1 || req->version_minor != 1 ||
        req->has_body)
        return false;
    eddy_str name, value, upgrade = {NULL, 0};
    bool listed = false;
    for (size_t it = 0; req->proto->field_next(req, &it, &name, &value);) {
        if (name.len == 7 && strncasecmp(name.ptr, "upgrade", 7) == 0)
            upgrade = value;
        else if (name.len == 10 && strncasecmp(name.ptr, "connection", 10) == 0)
            listed |= field_list_has(value.ptr, value.len, "upgrade", 7);
    }
    return listed && upgrade.len && !(upgrade.len >= 3 && strncasecmp(upgrade.ptr, "h2c", 3) == 0);
}

void eddy_proxy_handler(eddy_request *h, void *data)
{
    eddy_proxy *px = data;
    request *req = request_of(h);
    if (!req)
        return;
    eddy_proxy_start(px);
    if (!req->route || req->route->body != EDDY_BODY_STREAM) {
        eddy_respond(h, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
        return;
    }
    uint64_t max_body = request_max_body(req, req->front->max_body);
    int64_t cl = declared_length(req);
    if (cl > 0 && (uint64_t)cl > max_body) {
        eddy_respond(h, 413, "text/plain; charset=utf-8", "413 Content Too Large\n", 22);
        return;
    }
    exchange *x = exchange_get(px);
    if (!x) {
        eddy_respond(h, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
        return;
    }
    x->h = h;
    x->req = req;
    x->max_body = max_body;
    x->upgrade = wants_upgrade(req);
    eddy_request_on_abort(h, on_abort, x);
    attempt(x);
}

/* ---------------------------------------------------------------- life -- */

void eddy_proxy_start(eddy_proxy *px)
{
    if (px->started)
        return;
    px->started = true;
    health_start(px);
}

int eddy_proxy_new(eddy_loop *loop, const eddy_proxy_config *cfg, eddy_proxy **out, char *err,
                   size_t err_len)
{
    if (err_len)
        err[0] = 0;
    if (!loop || !cfg || !out)
        return -EINVAL;
    eddy_proxy *px = calloc(1, sizeof(*px));
    if (!px)
        return -ENOMEM;
    px->loop = loop;
    px->balance = cfg->balance;
    px->forwarded = cfg->forwarded;
    px->keepalive = cfg->no_keepalive ? 0 : cfg->keepalive ? cfg->keepalive
                                                            : PROXY_DEFAULT_KEEPALIVE;
    px->max_conns = cfg->max_conns;
#define OR(v, d) ((v) ? (v) : (d))
    px->idle_ms = OR(cfg->idle_ms, PROXY_DEFAULT_IDLE_MS);
    px->connect_ms = OR(cfg->connect_ms, PROXY_DEFAULT_CONNECT_MS);
    px->first_byte_ms = OR(cfg->first_byte_ms, PROXY_DEFAULT_FIRST_BYTE_MS);
    px->read_ms = OR(cfg->read_ms, PROXY_DEFAULT_READ_MS);
    px->tunnel_ms = OR(cfg->tunnel_ms, PROXY_DEFAULT_TUNNEL_MS);
    px->max_fails = OR(cfg->max_fails, PROXY_DEFAULT_MAX_FAILS);
    px->fail_ms = OR(cfg->fail_ms, PROXY_DEFAULT_FAIL_MS);
    px->health_ms = OR(cfg->health_ms, PROXY_DEFAULT_HEALTH_MS);
#undef OR
    int rc = 0;
    if ((unsigned)cfg->balance > EDDY_BALANCE_LEAST_CONN ||
        (unsigned)cfg->forwarded > EDDY_FORWARDED_NONE) {
        snprintf(err, err_len, "unknown balance or forwarded mode");
        rc = -EINVAL;
    }
    if (!rc && cfg->host && (!*cfg->host || !response_value_ok(cfg->host, strlen(cfg->host)))) {
        snprintf(err, err_len, "'%s' is no Host value", cfg->host);
        rc = -EINVAL;
    }
    if (!rc && cfg->strip_prefix && cfg->strip_prefix[0] != '/') {
        snprintf(err, err_len, "strip prefix '%s' does not begin with '/'", cfg->strip_prefix);
        rc = -EINVAL;
    }
    if (!rc && cfg->health_path &&
        (cfg->health_path[0] != '/' || !response_value_ok(cfg->health_path,
                                                           strlen(cfg->health_path)) ||
         strchr(cfg->health_path, ' '))) {
        snprintf(err, err_len, "health check path '%s' is not a path", cfg->health_path);
        rc = -EINVAL;
    }
    if (!rc && ((cfg->host && !(px->host = strdup(cfg->host))) ||
                (cfg->health_path && !(px->health_path = strdup(cfg->health_path))))) {
        snprintf(err, err_len, "out of memory");
        rc = -ENOMEM;
    }
    if (!rc && cfg->strip_prefix && strcmp(cfg->strip_prefix, "/") != 0) {
        if (!(px->strip_prefix = strdup(cfg->strip_prefix))) {
            snprintf(err, err_len, "out of memory");
            rc = -ENOMEM;
        } else {
            px->strip_len = strlen(px->strip_prefix);
        }
    }
    if (!rc)
        rc = backends_init(px, cfg, err, err_len);
    if (rc < 0) {
        eddy_proxy_free(px);
        return rc;
    }
    reply_settings_init(&px->reply_settings);
    eddy_timer_init(&px->health_timer, NULL, px);
    *out = px;
    return 0;
}

void eddy_proxy_free(eddy_proxy *px)
{
    if (!px)
        return;
    if (px->started)
        health_stop(px);
    /* Requests still in flight: their clients get 502 or a cut body. */
    for (upconn *uc = px->conns, *next; uc; uc = next) {
        next = uc->all_next;
        if (uc->x && uc->state != UC_CHECK) {
            exchange *x = uc->x;
            fail_client(x, 502); /* closes uc */
        } else {
            upconn_close(uc, false);
        }
    }
    while (px->free_exchanges) {
        exchange *x = px->free_exchanges;
        px->free_exchanges = x->next_free;
        free(x);
    }
    free(px->backends);
    free(px->host);
    free(px->strip_prefix);
    free(px->health_path);
    free(px);
}
