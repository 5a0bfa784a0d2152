/* The server: listeners, routes, the set of connections, and what they
 * share within one loop (staging buffer for output, the cached Date). */
#ifndef EDDY_HTTP_SERVER_H
#define EDDY_HTTP_SERVER_H

#include "eddy.h"
#include "core/front.h"
#include "http/conn.h"
#include "http/session.h"
#include "rt/listener.h"

#define SERVER_DEFAULT_MAX_REQUEST_LINE 8192
#define SERVER_DEFAULT_MAX_HEADER_BYTES 16384
#define SERVER_DEFAULT_MAX_HEADERS 100
#define SERVER_DEFAULT_MAX_BODY (1024 * 1024)
#define SERVER_DEFAULT_KEEPALIVE_MS 75000
#define SERVER_DEFAULT_HEADER_MS 30000
#define SERVER_DEFAULT_SEND_MS 60000
/* Output staged per turn before it is written with one writev. */
#define SERVER_STAGE_BYTES (64 * 1024)

struct eddy_server {
    eddy_loop *loop;
    accept_gate gate;
    front front;            /* sites, requests, access log, Date */
    unsigned max_request_line, max_header_bytes, max_headers;
    uint64_t max_body;
    unsigned keepalive_ms, header_ms, send_ms;
    eddy_log_fn event_log;  /* operator events; NULL: none */
    void *event_log_data;
    session *sessions;      /* every connection with an open stream or a held request */
    unsigned nconns;
    bool shutting_down;
    unsigned busy;          /* loop entries on the stack (server_enter) */
    bool free_pending;      /* freed from beneath one: free when they return */
    bool freeing;
    bool settling;          /* shutdown is delivering input already received */
    eddy_callback on_drained;
    void *drained_data;
    llhttp_settings_t parser_settings;
    /* HTTP/2: nghttp2's callbacks and options (NULL when turned off). */
    struct nghttp2_session_callbacks *h2_callbacks;
    struct nghttp2_option *h2_option;
    unsigned h2_max_streams;
    /* Output staging: responses produced while processing one connection's
     * input go here and leave in one writev; nothing stays between turns. */
    conn *stage_owner;
    size_t stage_len;
    char stage[SERVER_STAGE_BYTES];
};

/* Adds a connection over any stream (the listener's sockets, or a mock);
 * gated: counted by the accept gate.  NULL if it could not be made. */
conn *server_attach(eddy_server *srv, eddy_stream *stream, bool gated);
/* Routes r in every site, of this table and the ones to come (ACME's
 * answers); served on plain listeners under eddy_server_redirect_https. */
int server_every_site(eddy_server *srv, const eddy_route *r);
/* Around every entry from the loop that may reach a handler or callback:
 * eddy_server_free() called beneath completes at the outermost leave. */
static inline void server_enter(eddy_server *srv) { srv->busy++; }
void server_leave(eddy_server *srv);
/* Takes s into the server's list (a connection, once made). */
void server_add_session(eddy_server *srv, session *s);
/* Called by a connection as it is freed; gated: it counted against the
 * accept gate. */
void server_session_freed(eddy_server *srv, session *s, bool gated);

#endif
