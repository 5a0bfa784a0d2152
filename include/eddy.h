/* eddy: a concurrent HTTP/1.1 server for Linux and the small async runtime
 * under it.  This header is the whole public API: an embedding program needs
 * nothing else.
 *
 * Model: one eddy_loop per thread.  Everything attached to a loop (timers,
 * servers, requests) is used from that loop's thread only; loops share
 * nothing, so N threads run N independent loops.
 *
 * Errors: functions that can fail return 0 (or a non-negative value) on
 * success and a negative errno on failure.
 *
 * Memory: what may allocate says so (-ENOMEM).  Arming a timer that is not
 * armed may (re-arming never does); deferring never does.  A server takes
 * memory per connection when it accepts one (refusing the connection if it
 * cannot) and per request as its first byte arrives (answering 503 or
 * closing if it cannot); a connection's timeouts are armed then and never
 * need memory again, so none is ever lost.  Responses copy what they are
 * given (eddy_respond, eddy_response_field, eddy_stream_write) into memory
 * sized to what the client has not taken yet.
 */
#ifndef EDDY_H
#define EDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_VERSION "0.1.0"

/* ---------------------------------------------------------------- loop -- */

typedef struct eddy_loop eddy_loop;

eddy_loop *eddy_loop_new(void);
/* Frees the loop, after running what is still deferred.  Timers and
 * servers attached to it must be gone first (a server freed from inside
 * one of its callbacks is gone once this returns). */
void eddy_loop_free(eddy_loop *loop);
/* Runs until eddy_loop_stop() is called or nothing is left to wait for
 * (no timers, no watched descriptors, no deferred callbacks). */
int eddy_loop_run(eddy_loop *loop);
/* Sockets are driven through io_uring when the kernel allows it (one
 * system call per turn of the loop instead of a few per request); false
 * keeps the loop on epoll alone.  Call before the loop first runs. */
void eddy_loop_set_io_uring(eddy_loop *loop, bool enable);
/* Makes eddy_loop_run() return after the current turn. */
void eddy_loop_stop(eddy_loop *loop);
/* Milliseconds on the loop's monotonic clock, read once per turn. */
uint64_t eddy_loop_now(const eddy_loop *loop);

typedef void (*eddy_callback)(void *data);

/* A callback deferred to the next turn of the loop, after I/O and timers.
 * Owned by its user (embed it in your own struct), so deferring never
 * allocates and never fails; cancel it before freeing what it points to. */
typedef struct eddy_deferred {
    struct eddy_deferred *next, *prev; /* private */
    eddy_callback cb;
    void *data;
} eddy_deferred;

void eddy_deferred_init(eddy_deferred *d, eddy_callback cb, void *data);
/* Queues d to run once on the next turn (no-op if already queued).  One
 * deferred from inside a deferred callback waits for the turn after. */
void eddy_defer(eddy_loop *loop, eddy_deferred *d);
/* Unqueues d if queued; safe on one that is not. */
void eddy_defer_cancel(eddy_loop *loop, eddy_deferred *d);

/* A wake-up another thread can send: cb(data) then runs on the loop's own
 * thread (several sends before it runs may run it once).  The only eddy
 * call that is safe from any thread is eddy_async_send(). */
typedef struct eddy_async eddy_async;
eddy_async *eddy_async_new(eddy_loop *loop, eddy_callback cb, void *data);
void eddy_async_send(eddy_async *a);
/* From the loop's thread, once no other thread can still send. */
void eddy_async_free(eddy_async *a);

/* -------------------------------------------------------------- timers -- */

/* A timer is owned by its user (embed it in your own struct); the loop only
 * links it into a heap.  Arming, re-arming and cancelling are O(log n) in
 * pending timers.  Re-arming an armed timer never allocates and never
 * fails; arming an unarmed one allocates only when more timers are armed
 * at once than ever before on this loop, and may then fail. */
typedef struct eddy_timer {
    uint64_t deadline;       /* loop milliseconds; private */
    uint32_t heap_index;     /* 0 when not armed; private */
    uint32_t seq;            /* tie-break: equal deadlines fire in arming order */
    eddy_callback cb;
    void *data;
} eddy_timer;

void eddy_timer_init(eddy_timer *t, eddy_callback cb, void *data);
/* (Re)arms t to fire once, after_ms from the loop's current time (a time
 * past the clock's end saturates: never).  Returns 0, or -ENOMEM with t
 * left unarmed. */
int eddy_timer_start(eddy_loop *loop, eddy_timer *t, uint64_t after_ms);
/* Cancels t if armed; safe to call on a timer that is not armed. */
void eddy_timer_stop(eddy_loop *loop, eddy_timer *t);
static inline int eddy_timer_armed(const eddy_timer *t) { return t->heap_index != 0; }

/* -------------------------------------------------------------- server -- */

typedef struct eddy_server eddy_server;
typedef struct eddy_request eddy_request;

/* A handler either answers at once (eddy_respond*) or keeps the request and
 * answers later, from a timer or any other loop event.  Until it answers, the
 * connection reads no further requests (responses stay in order). */
typedef void (*eddy_handler)(eddy_request *req, void *data);

/* Receives one line (no newline) about an event an operator should see:
 * descriptors running out and accepting paused, accepting again. */
typedef void (*eddy_log_fn)(void *data, const char *message);

typedef struct eddy_config {
    unsigned max_conns;        /* connections handled at once; 0 = no limit.
                                  At the limit eddy stops accepting and lets
                                  new connections wait in the kernel backlog. */
    /* Limits; 0 means the default.  Crossing one is answered with the
     * status named and the connection is closed. */
    unsigned max_request_line; /* request line bytes (414); default 8192 */
    unsigned max_header_bytes; /* request line + fields bytes (431); default 16384 */
    unsigned max_headers;      /* number of fields (431); default 100 */
    uint64_t max_body;         /* request body bytes (413); default 1 MiB */
    /* Timeouts in milliseconds; 0 means the default.  An expired
     * connection is closed without an answer. */
    unsigned header_ms;        /* a whole request head, from its first byte; 30 s */
    unsigned keepalive_ms;     /* idle between requests; 75 s */
    unsigned send_ms;          /* a response the client stops taking; 60 s */
    /* Access log: a line per response, appended to this file ("-":
     * standard output); NULL: none.  Lines are at most 4096 bytes (long
     * fields are cut) and reach the file within a second. */
    const char *access_log;
    enum eddy_log_format {
        EDDY_LOG_COMBINED = 0, /* the combined log format (nginx's, Apache's) */
        /* One JSON object per line: time (RFC 3339, ms, UTC), client,
         * method, path (the target as received), status, bytes,
         * duration_us, protocol, tls (the version, or null), host,
         * referer, user_agent (null when absent).  Bytes that are not
         * UTF-8 become U+FFFD. */
        EDDY_LOG_JSON = 1,
    } access_log_format;
    /* Fields added to every response, each "Name: value" (--header); at
     * most 64, checked as eddy_response_field checks (-EINVAL, -EPERM). */
    const char *const *response_fields;
    unsigned nresponse_fields;
    /* Where events go (see eddy_log_fn); NULL: nowhere. */
    eddy_log_fn log;
    void *log_data;
    /* Listen with SO_REUSEPORT, so servers on several loops (threads) can
     * listen on one address and the kernel spreads connections among them. */
    bool reuse_port;
    /* > 0: responses over TLS carry Strict-Transport-Security: max-age=N. */
    unsigned hsts_seconds;
    /* HTTP/2: spoken over TLS when ALPN chose h2, and on plain listeners to
     * clients that open with its connection preface (prior knowledge).
     * no_http2 turns both off (ALPN then needs eddy_tls_config.no_http2). */
    bool no_http2;
    /* Streams one HTTP/2 connection may have open at once
     * (SETTINGS_MAX_CONCURRENT_STREAMS); 0 means the default, 100. */
    unsigned h2_max_streams;
} eddy_config;

/* Creates a server on loop.  config may be NULL for defaults; its strings are
 * copied.  Ignores SIGPIPE process-wide if it is at its default action, since
 * a peer that hangs up must cost one connection, not the process. */
int eddy_server_new(eddy_loop *loop, const eddy_config *config, eddy_server **out);
/* Closes everything at once: listeners, connections, pending requests
 * (their abort callbacks run, as if each client had left).  A handler that
 * holds a request without an abort callback must not answer it afterwards:
 * free a server only once eddy_server_shutdown() has drained it, or
 * register abort callbacks. */
void eddy_server_free(eddy_server *srv);

/* Listens on "HOST:PORT" ("127.0.0.1:8080", "[::1]:0", ":8080" for all IPv4
 * addresses).  Port 0 picks a free port; the address actually bound is
 * written to bound (e.g. "127.0.0.1:40123") when bound is not NULL. */
int eddy_server_listen(eddy_server *srv, const char *host_port, char *bound, size_t bound_len);

/* Stops listening on an address a listen call bound (as it wrote it to
 * `bound`); connections it accepted go on.  -ENOENT when not listening there. */
int eddy_server_unlisten(eddy_server *srv, const char *bound);

/* ---- HTTPS ---------------------------------------------------------------
 * TLS 1.2 and 1.3 (OpenSSL) with Mozilla's "intermediate" suites, server
 * order, no renegotiation, no compression, no 0-RTT; ALPN h2 (preferred)
 * and http/1.1;
 * resumption by session tickets whose keys (in memory, rotated hourly)
 * every server sharing the eddy_tls uses. */
typedef struct eddy_tls eddy_tls;

typedef struct eddy_tls_config {
    /* Pairs of PEM files: a certificate chain (leaf first) and its private
     * key, RSA or ECDSA.  SNI picks the first pair whose certificate names
     * the host (SAN; a wildcard covers one label); the first pair answers
     * everything else. */
    const char *const *certs;
    const char *const *keys;
    unsigned npairs;
    /* Oldest version taken: 12 (TLS 1.2; also when 0) or 13. */
    unsigned min_version;
    /* ALPN chooses http/1.1 alone, even for clients offering h2. */
    bool no_http2;
} eddy_tls_config;

/* Loads and checks every pair: readable, the key the certificate's, the
 * certificate valid now.  On failure returns -EINVAL (or -ENOMEM) and
 * writes one line naming the file and the reason to err.  The result is
 * safe to share between servers on several threads.  With no pairs, every
 * handshake fails (unrecognized_name) until certificates come (ACME). */
int eddy_tls_new(const eddy_tls_config *config, eddy_tls **out, char *err, size_t err_len);
/* Re-reads the files: handshakes from now on use them, connections open
 * keep what they began with.  On failure the pairs in use stay and err
 * says why.  Any thread. */
int eddy_tls_reload(eddy_tls *tls, char *err, size_t err_len);
/* Replaces the pairs the configuration gave (those of eddy_acme stay) and
 * loads them as eddy_tls_reload does; on failure the pairs in use stay
 * and err says why.  Any thread. */
int eddy_tls_set_pairs(eddy_tls *tls, const char *const *certs, const char *const *keys,
                       unsigned npairs, char *err, size_t err_len);
/* Drops the caller's reference; what connections still use lives on until
 * they end.  Free the servers listening with it first. */
void eddy_tls_free(eddy_tls *tls);
/* Like eddy_server_listen, for HTTPS with tls's certificates. */
int eddy_server_listen_tls(eddy_server *srv, const char *host_port, eddy_tls *tls, char *bound,
                           size_t bound_len);
/* Listens as eddy_server_listen (tls NULL) or eddy_server_listen_tls do,
 * tagging the connections it accepts with tag (0..EDDY_LISTENER_TAG_MAX,
 * else -EINVAL), which sites may be limited to (eddy_site_listener); the
 * others listen with tag 0. */
#define EDDY_LISTENER_TAG_MAX 65535
int eddy_server_listen_tagged(eddy_server *srv, const char *host_port, eddy_tls *tls, unsigned tag,
                              char *bound, size_t bound_len);
/* Listens as eddy_server_listen_tagged does on fd, a socket already bound
 * and listening (from systemd's socket activation, or from the eddy
 * process being upgraded); the server owns fd once this returns 0.  Other
 * processes and servers may accept from the same socket meanwhile. */
int eddy_server_listen_fd(eddy_server *srv, int fd, eddy_tls *tls, unsigned tag, char *bound,
                          size_t bound_len);
/* The server's listening sockets (for handing them to a new process): how
 * many there are, the first max written to fds.  They stay the server's. */
size_t eddy_server_listening_fds(const eddy_server *srv, int *fds, size_t max);
/* port > 0: from now on every request on a plain listener is answered 308
 * with the same host (from Host), path and query on https at this port
 * (left out when 443); 0: plain requests are served again. */
void eddy_server_redirect_https(eddy_server *srv, unsigned port);

/* ---- Automatic certificates (ACME, RFC 8555) ------------------------------
 * A thread of its own gets a certificate for names from an ACME CA (Let's
 * Encrypt unless told otherwise), keeps it with its key in a state
 * directory, serves it through an eddy_tls, and renews it two thirds into
 * its life (or within the window the CA suggests, when it offers renewal
 * information: RFC 9773), swapping it into every server using that eddy_tls without a
 * restart; a restart serves the stored one at once.  Failures are logged
 * with the CA's problem detail and retried after retry_ms, doubling up to
 * a day (or later when the CA asks, by Retry-After).  The CA validates by
 * HTTP-01 (fetched from a plain listener of a server given
 * eddy_server_acme, on port 80 for a public CA) or by TLS-ALPN-01 (a
 * handshake with a listener of the eddy_tls, port 443 for a public CA). */
typedef struct eddy_acme eddy_acme;

#define EDDY_ACME_LETSENCRYPT "https://acme-v02.api.letsencrypt.org/directory"
#define EDDY_ACME_LETSENCRYPT_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

enum eddy_acme_challenge { EDDY_ACME_HTTP01 = 0, EDDY_ACME_TLS_ALPN01 = 1 };

typedef struct eddy_acme_config {
    const char *const *names;  /* the certificate's names (one certificate for all) */
    unsigned nnames;
    const char *email;         /* the account's contact; NULL: none */
    const char *directory;     /* the CA's directory URL; NULL: EDDY_ACME_LETSENCRYPT */
    const char *ca_root;       /* PEM file the CA's own HTTPS is checked with; NULL: the system's */
    const char *state_dir;     /* NULL: /var/lib/eddy as root, else ~/.local/state/eddy */
    enum eddy_acme_challenge challenge;
    unsigned retry_ms;         /* the first retry's delay; 0: 60 s */
    eddy_log_fn log;           /* a line per event: obtained, renewed, failed */
    void *log_data;
} eddy_acme_config;

/* Reads or makes the account key and the state directory, and adds the
 * certificate's pair to tls (served at once when stored from an earlier
 * run).  Nothing is asked of the CA before eddy_acme_start.  -EINVAL
 * (with err) for a bad name or directory, -ENOMEM. */
int eddy_acme_new(const eddy_acme_config *config, eddy_tls *tls, eddy_acme **out, char *err,
                  size_t err_len);
/* Starts the thread: a certificate is obtained now when none is stored
 * (or it lacks a name), else when it is due. */
int eddy_acme_start(eddy_acme *acme);
/* Stops the thread (waiting for a request to the CA in flight) and frees;
 * before the eddy_tls and after the servers routed to it. */
void eddy_acme_free(eddy_acme *acme);
/* Routes /.well-known/acme-challenge/ on srv to acme's HTTP-01 answers,
 * served on plain listeners even under eddy_server_redirect_https. */
int eddy_server_acme(eddy_server *srv, eddy_acme *acme);

/* What a route's handler gets of request bodies. */
enum eddy_body {
    EDDY_BODY_DROP = 0,   /* nothing: the body is read past and dropped */
    EDDY_BODY_WHOLE = 1,  /* all of it, read (up to max_body; beyond it 413 and
                             no call) before the handler runs: eddy_request_body */
    EDDY_BODY_STREAM = 2, /* in pieces as it arrives, with backpressure, for
                             uploads larger than memory: eddy_request_read */
};

/* A route: which requests go to a handler.  Paths are matched against the
 * request's decoded path (see eddy_request_path), so "/%73leep" and
 * "/x/../sleep" both reach a "/sleep" route.  Order of matching:
 *   1. an exact route for the path (prefix false);
 *   2. else the longest prefix route that covers it; a prefix covers its
 *      own path and what lies below it at a segment boundary ("/api" takes
 *      "/api" and "/api/v1", not "/apix"; "/" takes everything);
 *   3. else 404.
 * The route found decides alone: a method it does not take gets 405 with
 * Allow listing its methods (OPTIONS gets 204 with the same Allow), never
 * another route.  OPTIONS * is answered 204; CONNECT, which names no path,
 * 405. */
typedef struct eddy_route {
    const char *path;          /* begins with '/' */
    bool prefix;               /* the path and everything below it */
    const char *methods;       /* "GET, POST" (GET brings HEAD); NULL: every method */
    enum eddy_body body;       /* what the handler gets of the request body */
    eddy_handler handler;
    void *data;
} eddy_route;

/* Adds a route (copied) to the server's default site.  -EINVAL for a path
 * not starting with '/', no handler or a bad method list; -EEXIST for a
 * path (and kind) already routed; -ENOENT when the sites given with
 * eddy_server_use_sites have no default. */
int eddy_server_route(eddy_server *srv, const eddy_route *route);

/* ---- Sites ----------------------------------------------------------------
 * A server answers for one or more sites, each with its own routes and
 * response rules, chosen per request by the host it names (Host, HTTP/2's
 * :authority, or an absolute-form target's authority; compared
 * case-insensitively, without the port and a trailing dot).  The first
 * site with a name covering the host takes it; a host no site names goes
 * to the default site, or is answered with the no-match status (421
 * Misdirected Request unless set).  A malformed Host is answered 400.
 *
 * A server starts with one default site, which eddy_server_route adds to.
 * A set built with eddy_sites_new replaces all of them at once
 * (eddy_server_use_sites): requests from then on are routed by it, those
 * in flight finish on the set they began with, and each set is freed
 * (with its on_free callback) when its last request is done. */
typedef struct eddy_sites eddy_sites;
typedef struct eddy_site eddy_site;

eddy_sites *eddy_sites_new(void);
/* A set never given to a server. */
void eddy_sites_free(eddy_sites *set);
/* Appends a site; NULL without memory. */
eddy_site *eddy_sites_add(eddy_sites *set);
/* Makes site the set's default site. */
void eddy_sites_default(eddy_sites *set, eddy_site *site);
/* Without a default site, what a host no site names is answered with: 421
 * or 404 (-EINVAL for others). */
int eddy_sites_no_match(eddy_sites *set, int status);
/* cb(data) when the set is freed: for what its routes' data hold. */
void eddy_sites_on_free(eddy_sites *set, eddy_callback cb, void *data);
/* cb(data) when a server takes the set (eddy_server_use_sites), on the
 * server's loop's thread: for what its routes' data begin there (a
 * proxy's health checks, eddy_proxy_start). */
void eddy_sites_on_use(eddy_sites *set, eddy_callback cb, void *data);
/* A name the site answers to: "example.com", or "*.example.com" for every
 * name below example.com (not itself).  -EINVAL for what is not a host
 * name (a port, a stray character, a wildcard over an IP address). */
int eddy_site_name(eddy_site *site, const char *name);
/* Limits the site to connections a listener tagged tag accepted
 * (eddy_server_listen_tagged); repeatable.  A site with no such limit
 * takes connections from every listener.  -ENOMEM. */
int eddy_site_listener(eddy_site *site, unsigned tag);
/* Like eddy_server_route, for one site of a set. */
int eddy_site_route(eddy_site *site, const eddy_route *route);

/* What a header rule does to a response's fields. */
enum eddy_header_op {
    EDDY_HEADER_ADD = 0,    /* "Name: value" added, whatever is there */
    EDDY_HEADER_SET = 1,    /* "Name: value" alone: others of the name go */
    EDDY_HEADER_REMOVE = 2, /* "Name": every field of the name goes */
};
/* A rule for every response of the site (path NULL) or of one of its
 * prefix routes (path as routed), applied after the handler's fields and
 * the site's rules; at most 64 each.  -EINVAL or -EPERM as
 * eddy_response_field says, -ENOENT for no such prefix route, -ENOSPC. */
int eddy_site_header(eddy_site *site, const char *path, enum eddy_header_op op,
                     const char *field);
/* Limits of the requests routed to one prefix route, instead of the
 * server's; 0 leaves one to the server. */
typedef struct eddy_path_limits {
    uint64_t max_body;   /* body bytes (413 past them) */
    unsigned send_ms;    /* a client may stop taking the response (closed after) */
    unsigned body_ms;    /* a client may stop sending the body (closed after);
                            the server's is its header_ms */
} eddy_path_limits;
/* Sets the limits of the prefix route at path.  -ENOENT for no such route. */
int eddy_site_limits(eddy_site *site, const char *path, const eddy_path_limits *limits);
/* Takes set: requests from now on are routed by it.  The server's own
 * settings (hsts_seconds, response_fields, eddy_server_redirect_https,
 * eddy_server_acme) apply to every site of it.  -ENOMEM (the set is then
 * freed). */
int eddy_server_use_sites(eddy_server *srv, eddy_sites *set);

/* Graceful stop: closes the listeners now, closes idle connections, lets
 * requests in flight finish (including those a handler answers later), and
 * calls done(data) once the last connection has ended. */
void eddy_server_shutdown(eddy_server *srv, eddy_callback done, void *data);

/* Connections open now (counting those whose request a handler still holds). */
unsigned eddy_server_connections(const eddy_server *srv);

/* Reopens the access log by its path (after logrotate renamed it): lines
 * buffered so far go to the old file first, new ones to the file now at
 * the path.  From the server's loop thread.  0 (also without a log, or
 * logging to standard output), or -errno with the old file kept. */
int eddy_server_reopen_logs(eddy_server *srv);

/* ------------------------------------------------------------- request -- */

/* A handler's eddy_request * is a handle.  It is valid from the handler's
 * call until the response is finished (eddy_respond, eddy_files_respond,
 * eddy_stream_end) or, for a request given an abort callback, until that
 * callback returns.  After that the handle is stale: every call through it
 * is refused (-ESTALE, an empty view, NULL) and never touches another
 * request, even one the same connection reads next.
 *
 * A string view into the request.  Views stay valid as long as the handle
 * (even when the handler answers later). */
typedef struct eddy_str {
    const char *ptr;
    size_t len;
} eddy_str;

eddy_str eddy_request_method(const eddy_request *req);
/* The request target exactly as received (path and query, percent-encoded). */
eddy_str eddy_request_target(const eddy_request *req);
/* The path routing saw: percent-decoded, dot segments removed, "//"
 * merged, never above "/" (an encoded slash separates segments like a
 * slash).  "*" for OPTIONS *. */
eddy_str eddy_request_path(const eddy_request *req);
/* The query after '?', still percent-encoded, or an empty view. */
eddy_str eddy_request_query(const eddy_request *req);
/* The first field named `name` (case-insensitive); ptr is NULL when absent. */
eddy_str eddy_request_header(const eddy_request *req, const char *name);
/* The request's fields in the order received, one per call: start with
 * *it = 0; returns false after the last.  Names as sent (any case). */
bool eddy_request_field_next(const eddy_request *req, size_t *it, eddy_str *name,
                             eddy_str *value);
/* The protocol version: 10 for HTTP/1.0, 11 for HTTP/1.1. */
int eddy_request_version(const eddy_request *req);
/* The client's address as text ("192.0.2.7", "::1"; "-" when unknown),
 * NUL-terminated in buf; returns its length. */
size_t eddy_request_peer(const eddy_request *req, char *buf, size_t len);
/* The loop the request is served on (NULL for a stale handle). */
eddy_loop *eddy_request_loop(const eddy_request *req);
/* The whole body, for a route with EDDY_BODY_WHOLE (a chunked body
 * de-chunked); an empty view for other routes.  Valid as long as the
 * handle. */
eddy_str eddy_request_body(const eddy_request *req);

/* Streamed request bodies (routes with EDDY_BODY_STREAM).  The handler
 * runs as soon as the head is complete; the body waits until it asks:
 * fn(req, data, len, ud) then gets each piece as it arrives (data valid
 * during the call only), and once more with len 0 when the body has ended.
 * Pieces never come from inside eddy_request_read itself.  Expect:
 * 100-continue is answered when the handler first reads.  Answering before
 * the end is allowed: the rest of the body is not read and the connection
 * closes after the answer.  max_body does not apply (the handler decides;
 * answering 413 stops the upload).  On other routes eddy_request_read
 * gets the end at once (the body, if any, was dropped or is in
 * eddy_request_body).  -ESTALE for a stale handle. */
typedef void (*eddy_body_fn)(eddy_request *req, const void *data, size_t len, void *ud);
int eddy_request_read(eddy_request *req, eddy_body_fn fn, void *ud);
/* Backpressure for a streamed body: while paused, no piece is delivered
 * and eddy reads nothing more from the connection, so TCP slows the client
 * down; a paused body is not timed out.  May be called from fn. */
int eddy_request_pause(eddy_request *req, bool paused);

/* Called if the client goes away before the request is answered.  After it
 * returns the request is gone (its handle stale): cancel whatever would
 * have answered it.  Without one, the request stays valid and answering it
 * does nothing; one registered after the client left runs when the server
 * is freed, if the request is not answered by then.  -ESTALE for a stale
 * handle. */
int eddy_request_on_abort(eddy_request *req, eddy_callback cb, void *data);

/* Adds a field to the response req is about to get (from eddy_respond,
 * eddy_files_respond or eddy_stream_start), after the fields eddy and the
 * operator add.  Both strings are copied.  Returns 0, or:
 *   -EINVAL   name is not a token, or value holds CR, LF, NUL or another
 *             control, or begins or ends with a space (never sent);
 *   -EPERM    a field eddy owns: Content-Length, Transfer-Encoding,
 *             Connection, Keep-Alive, Upgrade, TE, Trailer,
 *             Proxy-Connection, Date, Server, Content-Type;
 *   -ENOSPC   more than 64 fields;  -ENOMEM;  -EALREADY while streaming;
 *   -ESTALE   once answered. */
int eddy_response_field(eddy_request *req, const char *name, const char *value);

/* Answers with a body held in memory; body is copied.  content_type may be
 * NULL (no Content-Type).  Returns 0, -EINVAL for a status outside
 * 200..999 or a content_type eddy_response_field would refuse as a value
 * (the request is then not answered), -EALREADY while streaming, -ESTALE
 * once answered. */
int eddy_respond(eddy_request *req, int status, const char *content_type,
                 const void *body, size_t len);
/* A streamed response: the head now, the body in pieces as the handler
 * makes them, with backpressure.  With a known length the body must be
 * exactly that long; with length < 0 it is sent chunked to HTTP/1.1
 * clients and delimited by closing the connection for HTTP/1.0 ones.  A
 * request the handler streams to is held like one answered later: give it
 * an abort callback, since a client may leave mid-stream. */
#define EDDY_STREAM_BUFFER 65536 /* bytes held for a stream before -EAGAIN */

/* Sends the head.  -EALREADY if streaming already, -EINVAL for a
 * status outside 200..999 or a content_type eddy_response_field would refuse
 * as a value, -EPIPE if the client already left (the request is then
 * finished). */
int eddy_stream_start(eddy_request *req, int status, const char *content_type, int64_t length);
/* Queues len bytes (copied).  Returns 0, or:
 *   -EAGAIN    EDDY_STREAM_BUFFER bytes are still waiting for the client:
 *              nothing was taken; on_drain is called once they are gone;
 *   -EMSGSIZE  more than the known length (nothing taken);
 *   -EPIPE     the client left (without an abort callback; with one the
 *              handle is stale after it: -ESTALE);  -EINVAL  not streaming.
 * For HEAD, 204 and 304 the bytes are counted and dropped. */
int eddy_stream_write(eddy_request *req, const void *data, size_t len);
/* cb(data) once everything queued has gone to the client, after a write
 * said -EAGAIN. */
void eddy_stream_on_drain(eddy_request *req, eddy_callback cb, void *data);
/* Ends the body; the request is finished.  -EMSGSIZE if a known length was
 * not reached: the connection is then closed, so the client sees the body
 * cut short rather than a wrong one. */
int eddy_stream_end(eddy_request *req);

/* --------------------------------------------------------------- files -- */

/* The file server: a handler like any other, registered for the paths it
 * serves (typically the prefix "/").  GET and HEAD are served with
 * validators, conditionals, ranges and precompressed copies; OPTIONS gets
 * 204 and other methods 405 (Allow: GET, HEAD, OPTIONS). */
typedef struct eddy_files eddy_files;

typedef struct eddy_files_config {
    const char *root;          /* directory served; default "www" */
    bool dotfiles;             /* serve names starting with '.'; default: 404 */
    bool autoindex;            /* list directories without index.html; default: 404 */
    const char *cache_control; /* Cache-Control value for files; NULL: none */
    const char *mime_types;    /* mime.types file; NULL: /etc/mime.types */
    /* Names tried in order for a directory's own page; NULL (or 0 names):
     * "index.html" alone.  Each is one file name: no '/', not "." or "..". */
    const char *const *index;
    unsigned nindex;
    /* Never serve a file's .br or .gz copy in its place (default: a
     * client that accepts the coding gets the copy when it is there and
     * not older than the file). */
    bool no_precompressed;
} eddy_files_config;

/* A file server for one loop (it keeps open files cached, unlocked).  Its
 * strings are copied.  -ENOENT and the like when root cannot be opened. */
int eddy_files_new(eddy_loop *loop, const eddy_files_config *config, eddy_files **out);
/* After the servers whose routes use it. */
void eddy_files_free(eddy_files *files);
/* The handler: route it with data = the eddy_files. */
void eddy_files_handler(eddy_request *req, void *files);
/* Answers req as the file server would for `path` (a URL path like "/",
 * percent-encoded).  -EINVAL for a path that cannot be decoded (a bad
 * escape, an encoded NUL; the request is not answered), -EALREADY while
 * streaming, -ESTALE once answered. */
int eddy_files_respond(eddy_files *files, eddy_request *req, const char *path);

/* --------------------------------------------------------------- proxy -- */

/* The reverse proxy: a handler like any other, registered for the paths it
 * forwards (route it with body EDDY_BODY_STREAM; other routes get 500).
 * Each request is forwarded over HTTP/1.1 to one of the backends, rebuilt
 * from what eddy parsed (never the client's bytes), without hop-by-hop
 * fields (RFC 9110 §7.6.1: Connection and the fields it names,
 * Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer,
 * Expect), with the client told of by Forwarded or X-Forwarded-*.  Bodies
 * stream both ways as they come, with backpressure: a slow client slows
 * the backend's reads and a slow backend the client's upload.  The
 * backend's response is checked as strictly as a request (bad framing, a
 * bad field: 502, nothing passed on).  Connections to a backend are kept
 * alive and reused by later requests.
 *
 * Failures: 502 when a backend refuses or breaks the exchange before the
 * response's head, 504 when it times out (connect, first byte), 503 when
 * every backend is marked down; once the head was passed on, a failure
 * cuts the response (the client's connection closes).  A request that is
 * safe to send again (idempotent method, no body bytes sent yet) goes to
 * another backend when a connect fails or a reused connection turns out
 * closed.  Passive health: a backend failing max_fails times in a row is
 * skipped for fail_ms; active health: GET health_path every health_ms,
 * a backend answering other than 2xx or 3xx is skipped until it passes.
 * The path goes as the client wrote it (percent-encoded), the query too. */
typedef struct eddy_proxy eddy_proxy;

enum eddy_balance {
    EDDY_BALANCE_ROUND_ROBIN = 0, /* each backend in turn */
    EDDY_BALANCE_LEAST_CONN = 1,  /* the one with the fewest requests in flight */
};

/* How the backend learns who the client is.  Fields of the same names the
 * client sent are dropped, unless it connected from a trusted address:
 * then they are kept and the client's address is appended. */
enum eddy_forwarded {
    EDDY_FORWARDED_X = 0,       /* X-Forwarded-For, -Proto, -Host (the default) */
    EDDY_FORWARDED_RFC7239 = 1, /* Forwarded: for=...;proto=...;host=... */
    EDDY_FORWARDED_BOTH = 2,
    EDDY_FORWARDED_NONE = 3,    /* neither: such fields pass as any other */
};

typedef struct eddy_proxy_config {
    /* "http://HOST[:PORT]" (a name, an IPv4 address or an [IPv6] one; port
     * 80 when left out; no path) or "unix:/PATH".  A name is resolved when
     * the proxy is made, and each address it has is a backend. */
    const char *const *backends;
    unsigned nbackends;
    enum eddy_balance balance;
    /* The Host sent: NULL keeps the client's (HTTP/2's :authority). */
    const char *host;
    /* Taken off the start of the path before forwarding when the path
     * lies at or below it ("/api" makes "/api/x" "/x" and "/api" "/");
     * NULL: the path goes as it is. */
    const char *strip_prefix;
    enum eddy_forwarded forwarded;
    /* Addresses or CIDR blocks ("10.0.0.0/8", "::1") of proxies in front
     * of eddy, whose forwarding fields are kept. */
    const char *const *trusted;
    unsigned ntrusted;
    /* Idle connections kept per backend for later requests: 0 means the
     * default (128); no_keepalive closes each after its response. */
    unsigned keepalive;
    bool no_keepalive;
    /* Connections to one backend at once (0: no limit); a backend at its
     * limit is passed over like one that is down. */
    unsigned max_conns;
    /* Timeouts in milliseconds; 0 means the default. */
    unsigned idle_ms;          /* an idle kept connection is closed; 4 s */
    unsigned connect_ms;       /* connecting (504 past it); 5 s */
    unsigned first_byte_ms;    /* from the request sent to the response's first byte (504); 60 s */
    unsigned read_ms;          /* between reads of the response, and while the
                                  backend takes no more of the request body; 60 s */
    unsigned tunnel_ms;        /* an upgraded connection (WebSocket) with no byte either way; 300 s */
    /* Passive health: failures in a row that mark a backend down (0: 3),
     * and for how long (0: 10 s). */
    unsigned max_fails;
    unsigned fail_ms;
    /* Active health: GET this path (NULL: no checks) every health_ms (0: 5 s). */
    const char *health_path;
    unsigned health_ms;
} eddy_proxy_config;

/* A proxy for one loop: it keeps its own connections and health state.
 * Resolves names now (a blocking lookup: make proxies off the loops that
 * serve).  Strings are copied.  -EINVAL (with a line in err) for a bad
 * backend, trusted address or path, -ENOENT for a name with no address,
 * -ENOMEM. */
int eddy_proxy_new(eddy_loop *loop, const eddy_proxy_config *config, eddy_proxy **out, char *err,
                   size_t err_len);
/* After the servers whose routes use it; requests it still forwards are
 * answered 502 or cut. */
void eddy_proxy_free(eddy_proxy *proxy);
/* Starts the active health checks, on the proxy's loop's thread (a
 * proxy not started starts them with its first request).  Idempotent. */
void eddy_proxy_start(eddy_proxy *proxy);
/* The handler: route it with data = the eddy_proxy and body EDDY_BODY_STREAM. */
void eddy_proxy_handler(eddy_request *req, void *proxy);

/* ------------------------------------------------------------- metrics -- */

/* Counters for a program's servers, one slot per worker: requests by
 * status class and protocol, bytes in and out, open and idle connections,
 * TLS handshakes, accept pauses and a request-duration histogram.  Each
 * server counts into its own slot from its own thread (relaxed atomic
 * stores, no lock, slots on separate cache lines); the status handler
 * reads every slot, from any worker, without stopping them. */
typedef struct eddy_metrics eddy_metrics;

/* For nworkers servers (> 0, else -EINVAL); -ENOMEM. */
int eddy_metrics_new(unsigned nworkers, eddy_metrics **out);
/* After every server attached to it. */
void eddy_metrics_free(eddy_metrics *m);
/* srv counts into slot worker (0..nworkers-1, shown as worker="worker+1")
 * from now on; attach before it listens.  -EINVAL for a slot out of range. */
int eddy_server_metrics(eddy_server *srv, eddy_metrics *m, unsigned worker);

/* The status page: a handler (route it at path as a prefix, GET) that
 * answers clients inside the allow blocks, others 403:
 *   path          a live dashboard (HTML, charts polling path/json)
 *   path/metrics  Prometheus text format 0.0.4, each worker and the sum
 *   path/json     the same as one JSON object
 * from the eddy_metrics the serving server counts into (503 without). */
typedef struct eddy_status eddy_status;

typedef struct eddy_status_config {
    const char *path;            /* "/status": segments of letters, digits, -._~ */
    /* Addresses or blocks ("10.0.0.0/8", "::1") allowed; none: 127.0.0.1
     * and ::1 alone.  At most 64. */
    const char *const *allow;
    unsigned nallow;
} eddy_status_config;

/* -EINVAL (with a line in err) for a bad path or block; -ENOMEM.  Strings
 * are copied; the result is read-only, shareable between threads. */
int eddy_status_new(const eddy_status_config *config, eddy_status **out, char *err,
                    size_t err_len);
/* After the servers whose routes use it. */
void eddy_status_free(eddy_status *status);
/* The handler: route it with data = the eddy_status. */
void eddy_status_handler(eddy_request *req, void *status);

#ifdef __cplusplus
}
#endif
#endif
