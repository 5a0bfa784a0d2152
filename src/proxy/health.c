/* Active health checks: every health_ms, each backend gets GET
 * health_path on a connection of its own; an answer other than 2xx or 3xx
 * within connect_ms, or none, marks it down until a check passes.  They
 * begin with eddy_proxy_start, on the loop's thread (a proxy is made off
 * it), or with the first request. */
#include "proxy/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough of a response for its status line's "HTTP/1.x NNN". */
#define HEALTH_STATUS_BYTES 12

static void check_done(upconn *uc, bool ok)
{
    backend *be = uc->be;
    be->check = NULL;
    be->check_failed = !ok;
    if (ok) {
        be->fails = 0;
        be->down_until = 0;
    }
    upconn_close(uc, !ok);
}

static void tick(void *data)
{
    eddy_proxy *px = data;
    for (unsigned i = 0; i < px->nbackends; i++) {
        backend *be = &px->backends[i];
        if (be->check)
            continue; /* the last one still runs (its timeout decides) */
        upconn *uc;
        if (upconn_open(px, be, UC_CHECK, &uc) < 0) {
            be->check_failed = true;
            continue;
        }
        be->check = uc;
    }
    eddy_timer_start(px->loop, &px->health_timer, px->health_ms);
}

void health_start(eddy_proxy *px)
{
    if (!px->health_path)
        return;
    px->health_timer.cb = tick;
    eddy_timer_start(px->loop, &px->health_timer, 0);
}

void health_stop(eddy_proxy *px) { eddy_timer_stop(px->loop, &px->health_timer); }

void health_connected(upconn *uc, int err)
{
    eddy_proxy *px = uc->px;
    if (err) {
        check_done(uc, false);
        return;
    }
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: eddy-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     px->health_path, uc->be->authority);
    struct iovec v = {head, n < (int)sizeof(head) ? (size_t)n : sizeof(head)};
    if (upconn_write(uc, &v, 1) < 0)
        check_done(uc, false);
    /* The connect timer goes on: the whole check has connect_ms. */
}

void health_ready(upconn *uc, unsigned events)
{
    if ((events & STREAM_WRITABLE) && upconn_pending(uc) && upconn_flush(uc) < 0) {
        check_done(uc, false);
        return;
    }
    if (!uc->readable)
        return;
    char buf[HEALTH_STATUS_BYTES];
    if (!uc->in && !(uc->in = malloc(HEALTH_STATUS_BYTES))) {
        check_done(uc, false);
        return;
    }
    while (uc->in_len < HEALTH_STATUS_BYTES) {
        ssize_t n = stream_read(uc->stream, buf, HEALTH_STATUS_BYTES - uc->in_len);
        if (n == -EAGAIN) {
            uc->readable = false;
            return;
        }
        if (n <= 0) {
            check_done(uc, false);
            return;
        }
        memcpy(uc->in + uc->in_len, buf, (size_t)n);
        uc->in_len += (uint32_t)n;
    }
    const char *s = uc->in;
    bool ok = memcmp(s, "HTTP/1.", 7) == 0 && (s[7] == '0' || s[7] == '1') && s[8] == ' ' &&
              (s[9] == '2' || s[9] == '3') && s[10] >= '0' && s[10] <= '9' && s[11] >= '0' &&
              s[11] <= '9';
    check_done(uc, ok);
}

void health_timeout(upconn *uc) { check_done(uc, false); }
