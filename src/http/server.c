#include "http/server.h"
#include "core/access_log.h"
#include "http/parser.h"
#include "http2/h2.h"
#include "metrics/metrics.h"
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* listener_data: the eddy_tls of a TLS listener, NULL for plain HTTP;
 * tag: the listener's, which sites may be limited to. */
static void on_accept(void *data, void *listener_data, uint32_t tag, int fd)
{
    eddy_server *srv = data;
    metrics_slot *m = srv->front.metrics;
    metrics_count(m, m ? &m->conns_accepted : NULL);
    if (srv->gate.limit && srv->gate.active == srv->gate.limit) /* this one closed the gate */
        metrics_count(m, m ? &m->pauses[METRICS_PAUSE_MAX_CONNS] : NULL);
    eddy_stream *stream;
    if (socket_stream_new(srv->loop, fd, &stream) < 0) {
        close(fd);
        gate_release(&srv->gate);
        return;
    }
    if (listener_data) {
        eddy_stream *plain = stream;
        tls_gen *gen = tls_gen_acquire(listener_data);
        if (tls_stream_new(gen, plain, &stream) < 0) {
            tls_gen_release(gen);
            stream_close(plain);
            gate_release(&srv->gate);
            return;
        }
        tls_stream_metrics(stream, m);
    }
    conn *c = server_attach(srv, stream, true);
    if (!c) {
        stream_close(stream);
        gate_release(&srv->gate);
        return;
    }
    c->listener = (uint16_t)tag;
}

static void on_starved(void *data, int err)
{
    eddy_server *srv = data;
    metrics_slot *m = srv->front.metrics;
    if (err)
        metrics_count(m, m ? &m->pauses[METRICS_PAUSE_NO_FDS] : NULL);
    if (!srv->event_log)
        return;
    char msg[200];
    if (err)
        snprintf(msg, sizeof(msg),
                 "cannot accept: %s; new connections wait in the backlog "
                 "(%u open here, retrying every %d ms)",
                 strerror(err), srv->nconns, LISTENER_EMFILE_RETRY_MS);
    else
        snprintf(msg, sizeof(msg), "accepting connections again (%u open here)", srv->nconns);
    srv->event_log(srv->event_log_data, msg);
}

int eddy_server_new(eddy_loop *loop, const eddy_config *config, eddy_server **out)
{
    eddy_config defaults = {0};
    if (!config)
        config = &defaults;
    eddy_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    if (front_init(&srv->front, loop) < 0) {
        free(srv);
        return -ENOMEM;
    }
#define OR_DEFAULT(v, d) ((v) ? (v) : (d))
    srv->max_request_line = OR_DEFAULT(config->max_request_line, SERVER_DEFAULT_MAX_REQUEST_LINE);
    srv->max_header_bytes = OR_DEFAULT(config->max_header_bytes, SERVER_DEFAULT_MAX_HEADER_BYTES);
    srv->max_headers = OR_DEFAULT(config->max_headers, SERVER_DEFAULT_MAX_HEADERS);
    srv->max_body = OR_DEFAULT(config->max_body, SERVER_DEFAULT_MAX_BODY);
    srv->front.max_body = srv->max_body;
    srv->keepalive_ms = OR_DEFAULT(config->keepalive_ms, SERVER_DEFAULT_KEEPALIVE_MS);
    srv->header_ms = OR_DEFAULT(config->header_ms, SERVER_DEFAULT_HEADER_MS);
    srv->send_ms = OR_DEFAULT(config->send_ms, SERVER_DEFAULT_SEND_MS);
    for (unsigned i = 0; i < config->nresponse_fields; i++) {
        int rc = header_rules_add(&srv->front.headers, HEADER_ADD, config->response_fields[i]);
        if (rc < 0) {
            eddy_server_free(srv);
            return rc;
        }
    }
    if (config->access_log) {
        int rc = access_log_open(loop, config->access_log, config->access_log_format,
                                 &srv->front.log);
        if (rc < 0) {
            eddy_server_free(srv);
            return rc;
        }
    }
    parser_settings_init(&srv->parser_settings);
    srv->h2_max_streams = OR_DEFAULT(config->h2_max_streams, H2_DEFAULT_MAX_STREAMS);
    if (!config->no_http2 && h2_server_init(srv) < 0) {
        eddy_server_free(srv);
        return -ENOMEM;
    }
#undef OR_DEFAULT
    gate_init(&srv->gate, loop, config->max_conns, on_accept, srv);
    srv->gate.on_starved = on_starved;
    front_set_hsts(&srv->front, config->hsts_seconds);
    srv->event_log = config->log;
    srv->event_log_data = config->log_data;
    srv->gate.reuse_port = config->reuse_port;

    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    *out = srv;
    return 0;
}

int eddy_server_reopen_logs(eddy_server *srv)
{
    return srv->front.log ? access_log_reopen(srv->front.log) : 0;
}

static void server_destroy(eddy_server *srv)
{
    srv->freeing = true;
    srv->busy++; /* abort callbacks calling eddy_server_free change nothing */
    gate_close_all(&srv->gate);
    while (srv->sessions)
        srv->sessions->ops->abort(srv->sessions);
    front_free(&srv->front);
    h2_server_free(srv);
    free(srv);
}

void eddy_server_free(eddy_server *srv)
{
    if (!srv || srv->freeing || srv->free_pending)
        return;
    if (srv->busy) {
        /* Beneath a callback of this server's: stop taking new work now,
         * free once the callback's caller has returned. */
        srv->free_pending = true;
        gate_close_all(&srv->gate);
        return;
    }
    server_destroy(srv);
}

void server_leave(eddy_server *srv)
{
    if (--srv->busy == 0 && srv->free_pending)
        server_destroy(srv);
}

int eddy_server_listen(eddy_server *srv, const char *host_port, char *bound, size_t bound_len)
{
    if (srv->shutting_down)
        return -ESHUTDOWN;
    return listener_open(&srv->gate, host_port, NULL, 0, bound, bound_len);
}

int eddy_server_listen_tls(eddy_server *srv, const char *host_port, eddy_tls *tls, char *bound,
                           size_t bound_len)
{
    if (srv->shutting_down)
        return -ESHUTDOWN;
    if (!tls)
        return -EINVAL;
    return listener_open(&srv->gate, host_port, tls, 0, bound, bound_len);
}

int eddy_server_listen_tagged(eddy_server *srv, const char *host_port, eddy_tls *tls, unsigned tag,
                              char *bound, size_t bound_len)
{
    if (srv->shutting_down)
        return -ESHUTDOWN;
    if (tag > EDDY_LISTENER_TAG_MAX)
        return -EINVAL;
    return listener_open(&srv->gate, host_port, tls, tag, bound, bound_len);
}

int eddy_server_listen_fd(eddy_server *srv, int fd, eddy_tls *tls, unsigned tag, char *bound,
                          size_t bound_len)
{
    if (srv->shutting_down)
        return -ESHUTDOWN;
    if (tag > EDDY_LISTENER_TAG_MAX || fd < 0)
        return -EINVAL;
    return listener_adopt(&srv->gate, fd, tls, tag, bound, bound_len);
}

size_t eddy_server_listening_fds(const eddy_server *srv, int *fds, size_t max)
{
    return listener_fds(&srv->gate, fds, max);
}

int eddy_server_unlisten(eddy_server *srv, const char *bound)
{
    return bound ? listener_close_bound(&srv->gate, bound) : -EINVAL;
}

int eddy_server_route(eddy_server *srv, const eddy_route *r)
{
    site *fallback = srv->front.sites->fallback;
    return fallback ? site_add_route(fallback, r) : -ENOENT;
}

int server_every_site(eddy_server *srv, const eddy_route *r)
{
    front *f = &srv->front;
    if (f->every_site.path)
        return -EEXIST;
    site_table *t = f->sites;
    for (size_t i = 0; i < t->nsites; i++) {
        int rc = site_add_route(t->sites[i], r);
        if (rc < 0)
            return rc;
    }
    f->every_site = *r;
    f->every_site.path = strdup(r->path);
    f->every_site.methods = r->methods ? strdup(r->methods) : NULL;
    if (!f->every_site.path || (r->methods && !f->every_site.methods))
        return -ENOMEM;
    return 0;
}

int eddy_server_use_sites(eddy_server *srv, eddy_sites *set)
{
    return front_use_sites(&srv->front, (site_table *)set);
}

void eddy_server_redirect_https(eddy_server *srv, unsigned port)
{
    srv->front.redirect_https_port = port;
}

unsigned eddy_server_connections(const eddy_server *srv) { return srv->nconns; }

conn *server_attach(eddy_server *srv, eddy_stream *stream, bool gated)
{
    conn *c = conn_new(srv, stream, gated);
    if (!c)
        return NULL;
    server_add_session(srv, &c->session);
    return c;
}

static void finish_shutdown(eddy_server *srv)
{
    eddy_callback cb = srv->on_drained;
    srv->on_drained = NULL;
    if (cb)
        cb(srv->drained_data);
}

void server_add_session(eddy_server *srv, session *s)
{
    s->prev = NULL;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nconns++;
    if (srv->front.metrics)
        metrics_set(&srv->front.metrics->conns_open, srv->nconns);
    if (srv->shutting_down) {
        server_enter(srv);
        s->ops->mark_draining(s);
        s->ops->drain(s); /* may answer a request (and free s) */
        server_leave(srv);
    }
}

void server_session_freed(eddy_server *srv, session *s, bool gated)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nconns--;
    if (srv->front.metrics)
        metrics_set(&srv->front.metrics->conns_open, srv->nconns);
    if (gated)
        gate_release(&srv->gate);
    if (srv->shutting_down && srv->nconns == 0 && !srv->settling)
        finish_shutdown(srv);
}

void eddy_server_shutdown(eddy_server *srv, eddy_callback done, void *data)
{
    if (srv->free_pending || srv->freeing)
        return;
    srv->on_drained = done;
    srv->drained_data = data;
    server_enter(srv); /* handlers and done may run beneath */
    if (!srv->shutting_down) {
        srv->shutting_down = true;
        gate_close_all(&srv->gate);
        /* A request the kernel already received counts as sent before the
         * shutdown: with io_uring it may be waiting in a completion not yet
         * dispatched, where the idle check's read cannot see it.  So every
         * connection is marked first, what the ring holds is delivered
         * (and answered with Connection: close), then the idle close. */
        for (session *s = srv->sessions; s; s = s->next)
            s->ops->mark_draining(s);
        srv->settling = true;
        loop_settle(srv->loop);
        srv->settling = false;
        /* drain may free s: take next first. */
        for (session *s = srv->sessions, *next; s; s = next) {
            next = s->next;
            s->ops->drain(s);
        }
    }
    if (srv->nconns == 0)
        finish_shutdown(srv);
    server_leave(srv);
}
