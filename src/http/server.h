/* The server: listeners, routes, the set of connections, and what they
 * share within one loop (staging buffer for output, the cached Date). */
#ifndef EDDY_HTTP_SERVER_H
#define EDDY_HTTP_SERVER_H

#include "eddy.h"
#include "http/conn.h"
#include "files/mime.h"
#include "rt/listener.h"

#define SERVER_DEFAULT_ROOT "www"
#define SERVER_DEFAULT_MAX_REQUEST_LINE 8192
#define SERVER_DEFAULT_MAX_HEADER_BYTES 16384
#define SERVER_DEFAULT_MAX_HEADERS 100
#define SERVER_DEFAULT_MAX_BODY (1024 * 1024)
#define SERVER_DEFAULT_KEEPALIVE_MS 75000
#define SERVER_DEFAULT_HEADER_MS 30000
#define SERVER_DEFAULT_SEND_MS 60000
#define SERVER_DEFAULT_MIME_TYPES "/etc/mime.types"
/* Output staged per turn before it is written with one writev. */
#define SERVER_STAGE_BYTES (64 * 1024)

typedef struct route {
    char *path;
    size_t path_len;
    eddy_handler handler;
    void *data;
    bool with_body;        /* the handler gets the request body */
} route;

struct eddy_server {
    eddy_loop *loop;
    accept_gate gate;
    char *root;
    int root_fd;
    unsigned max_request_line, max_header_bytes, max_headers;
    uint64_t max_body;
    unsigned keepalive_ms, header_ms, send_ms;
    bool dotfiles, autoindex;
    char *cache_control;
    size_t cache_control_len;
    mime_table *mime;
    struct access_log *log; /* NULL: no access log */
    eddy_log_fn event_log;  /* operator events; NULL: none */
    void *event_log_data;
    struct file_cache *files;
    uint32_t multipart_seq;  /* makes multipart boundaries unique */
    route *routes;
    size_t nroutes;
    unsigned body_routes;   /* routes with_body: only then is a route looked up early */
    conn *conns;            /* every connection with an open stream or a held request */
    unsigned nconns;
    bool shutting_down;
    bool settling;          /* shutdown is delivering input already received */
    eddy_callback on_drained;
    void *drained_data;
    llhttp_settings_t parser_settings;
    /* Output staging: responses produced while processing one connection's
     * input go here and leave in one writev; nothing stays between turns. */
    conn *stage_owner;
    size_t stage_len;
    char stage[SERVER_STAGE_BYTES];
    /* IMF-fixdate, refreshed when the loop's second changes. */
    time_t date_sec;
    char date[32];
};

/* Adds a connection over any stream (the listener's sockets, or a mock). */
conn *server_attach(eddy_server *srv, eddy_stream *stream);
/* Called by a connection as it is freed. */
void server_conn_freed(eddy_server *srv, conn *c, bool gated);
/* The current Date value (29 characters). */
const char *server_date(eddy_server *srv);
const route *server_find_route(const eddy_server *srv, const char *path, size_t len);

#endif
