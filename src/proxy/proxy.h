/* The reverse proxy's inside (eddy.h says what it promises).
 *
 *   backends.c  where requests go: addresses, choosing one, health
 *   upconn.c    connections to a backend: connect, keep-alive pool, I/O
 *   forward.c   the request head a backend gets, rebuilt from the parsed one
 *   reply.c     the backend's response head, checked and parsed (llhttp)
 *   proxy.c     the handler: one exchange per request, bodies both ways
 *   health.c    active checks
 *
 * Everything of a proxy lives on its loop's thread; a proxy is made on
 * another thread (the program builds sites off the loops), so nothing
 * touches the loop before the first request reaches the handler. */
#ifndef EDDY_PROXY_PROXY_H
#define EDDY_PROXY_PROXY_H

#include "eddy.h"
#include "core/request.h"
#include "core/netblock.h"
#include "core/response.h"
#include "rt/loop.h"
#include "rt/stream.h"
#include "http/rules.h"
#include "llhttp.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Defaults of eddy_proxy_config (eddy.h). */
#define PROXY_DEFAULT_KEEPALIVE 128
/* Below the keep-alive timeouts backends commonly use (Node, uvicorn,
 * Apache: 5 s), so eddy closes an idle connection before the backend
 * does and rarely sends a request into one the backend is closing. */
#define PROXY_DEFAULT_IDLE_MS 4000
#define PROXY_DEFAULT_CONNECT_MS 5000
#define PROXY_DEFAULT_FIRST_BYTE_MS 60000
#define PROXY_DEFAULT_READ_MS 60000
#define PROXY_DEFAULT_TUNNEL_MS 300000
#define PROXY_DEFAULT_MAX_FAILS 3
#define PROXY_DEFAULT_FAIL_MS 10000
#define PROXY_DEFAULT_HEALTH_MS 5000
/* Most backends one proxy has (after names are resolved). */
#define PROXY_MAX_BACKENDS 64
/* Most trusted address blocks. */
#define PROXY_MAX_TRUSTED 64
/* A request head as forwarded (the client's is at most the server's
 * max_header_bytes, 16 KiB by default, plus what eddy adds); past it the
 * request is answered 431. */
#define PROXY_HEAD_MAX (64 * 1024)
/* A backend's response head: past it, or past RESPONSE_MAX_OWN_FIELDS
 * fields, the response is a 502. */
#define PROXY_RESPONSE_HEAD_MAX (64 * 1024)
/* How long the client's last partial packet of a response is held for the
 * backend's next bytes (so they fill it) before it is sent as it is. */
#define PROXY_PUSH_MS 1
/* One read from a backend: the most a response adds to what waits for a
 * slow client beyond EDDY_STREAM_BUFFER. */
#define PROXY_READ_BYTES (64 * 1024)
/* Tokens of one Connection field list honoured (fields they name are
 * dropped); more is a 400 from a client, a 502 from a backend. */
#define PROXY_MAX_CONNECTION_TOKENS 16

typedef struct backend backend;
typedef struct upconn upconn;
typedef struct exchange exchange;

/* One address requests may go to. */
struct backend {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char name[128];        /* "127.0.0.1:9000", "[::1]:80", "unix:/run/app.sock" */
    char authority[272];   /* Host for a client that sent none: the URL's */
    unsigned active;       /* requests in flight to it (least-conn) */
    unsigned conns;        /* connections open to it (max_conns) */
    unsigned fails;        /* failures in a row (passive health) */
    uint64_t down_until;   /* loop ms: skipped before this (passive health) */
    bool check_failed;     /* the last active check failed: skipped */
    upconn *idle;          /* kept connections, most recent first */
    unsigned nidle;
    upconn *check;         /* the active check in flight, if any */
};


struct eddy_proxy {
    eddy_loop *loop;
    backend *backends;
    unsigned nbackends;
    unsigned next;         /* round-robin position */
    enum eddy_balance balance;
    enum eddy_forwarded forwarded;
    char *host;            /* NULL: the client's */
    char *strip_prefix;    /* NULL: none */
    size_t strip_len;
    net_block trusted[PROXY_MAX_TRUSTED]; /* whose forwarding fields are believed */
    unsigned ntrusted;
    unsigned keepalive;    /* 0: none */
    unsigned max_conns;
    unsigned idle_ms, connect_ms, first_byte_ms, read_ms, tunnel_ms;
    unsigned max_fails, fail_ms;
    char *health_path;     /* NULL: no active checks */
    unsigned health_ms;
    eddy_timer health_timer;
    bool started;          /* the loop is in use (the first request came) */
    upconn *conns;         /* every connection, for freeing */
    exchange *free_exchanges; /* reused, so a request costs no malloc */
    llhttp_settings_t reply_settings;
    char head[PROXY_HEAD_MAX];     /* a request head being composed */
    char rbuf[PROXY_READ_BYTES];   /* where backends' bytes are read */
};

/* ---- backends.c ---- */

/* Parses and resolves cfg's backends and trusted blocks into px: 0, or
 * -EINVAL / -ENOENT / -ENOMEM with a line in err. */
int backends_init(eddy_proxy *px, const eddy_proxy_config *cfg, char *err, size_t err_len);
/* The backend a request goes to, skipping those down, at max_conns, or
 * already tried (bit i of tried: backends[i]); NULL when none is left.
 * *all_down: none was skipped but for being down. */
backend *backend_pick(eddy_proxy *px, uint64_t tried, bool *all_down);
/* Outcomes for passive health. */
void backend_failed(eddy_proxy *px, backend *be);
void backend_ok(backend *be);
/* Whether the client at peer (text, as eddy_request_peer writes it) is in
 * a trusted block. */
bool proxy_trusts(const eddy_proxy *px, const char *peer);

/* ---- upconn.c ---- */

enum upconn_state {
    UC_CONNECTING,   /* connect() in flight */
    UC_BUSY,         /* carrying an exchange */
    UC_IDLE,         /* kept for a later request */
    UC_CHECK,        /* an active health check */
};

/* One connection to a backend.  What it does with its events depends on
 * its owner: the exchange it carries (proxy.c) or the health check. */
struct upconn {
    eddy_proxy *px;
    backend *be;
    upconn *all_next, *all_prev; /* px->conns */
    upconn *idle_next;           /* be->idle */
    eddy_stream *stream;         /* NULL while connecting */
    eddy_io io;                  /* the connect in flight */
    int fd;
    enum upconn_state state;
    eddy_timer timer;            /* connect, first byte, read, idle */
    exchange *x;                 /* UC_BUSY: the exchange */
    /* Bytes written that the socket did not take yet. */
    char *out;
    uint32_t out_off, out_len, out_cap;
    /* A response head arriving in pieces, kept until it is whole. */
    char *in;
    uint32_t in_len, in_cap;
    llhttp_t parser;
    unsigned requests;           /* requests it carried (reused when > 0) */
    bool watched : 1;            /* io is registered with the loop (connecting) */
    bool readable : 1;           /* input may be waiting unread */
    bool writable : 1;
    bool eof : 1;                /* the backend closed its side (read EOF) */
    bool peer_fin : 1;           /* the stream said the backend sent FIN: a short
                                    read does not mean drained, EOF is next */
};

/* Opens a connection to be (connect in flight): the callback is
 * upconn_connected (proxy.c or health.c, by state).  -errno when it fails at once. */
int upconn_open(eddy_proxy *px, backend *be, enum upconn_state state, upconn **out);
/* A kept connection to be, taken off its list; NULL when none. */
upconn *upconn_take_idle(backend *be);
/* Keeps uc for a later request (or closes it when the pool is full). */
void upconn_keep(upconn *uc);
/* Closes uc (reset: abortively, dropping what is unsent) and frees it. */
void upconn_close(upconn *uc, bool reset);
/* Writes iov after what is pending; what the socket does not take is
 * kept.  0, or -errno when the connection failed. */
int upconn_write(upconn *uc, const struct iovec *iov, int n);
/* Writes what is pending: 1 when all of it is gone, 0 when some waits,
 * -errno on failure. */
int upconn_flush(upconn *uc);
static inline bool upconn_pending(const upconn *uc) { return uc->out_len > uc->out_off; }
/* Arms uc's timer to fire after ms. */
void upconn_arm(upconn *uc, unsigned ms);

/* ---- forward.c ---- */

/* How the body is framed to the backend. */
enum fwd_body {
    FWD_NONE,     /* no body */
    FWD_LENGTH,   /* the client's Content-Length passes */
    FWD_CHUNKED,  /* sent chunked: its length is not known yet */
};

/* Writes the head req is forwarded with into buf: 0 with *len and *body
 * set, or the status to answer the client with (400: a Connection list
 * too long; 431: too large).  `upgrade`: the client's Upgrade (and
 * Connection: upgrade) are forwarded for a tunnel. */
int forward_head(const eddy_proxy *px, const backend *be, const request *req, bool upgrade,
                 char *buf, size_t cap, size_t *len, enum fwd_body *body);

/* ---- reply.c ---- */

/* A field of a backend's response head, as offsets from reply.base (the
 * head may move into a buffer of its own while it arrives in pieces). */
typedef struct reply_field {
    uint32_t name_off, name_len, value_off, value_len;
} reply_field;

/* A backend's response as llhttp parses it. */
typedef struct reply {
    const char *base;      /* the buffer the head is in */
    reply_field f[RESPONSE_MAX_OWN_FIELDS];
    unsigned nfields;
    reply_field cur;       /* the field being parsed */
    te_summary te;         /* Transfer-Encoding, over all its fields */
    bool has_te;
    bool head_done;        /* the final (non-1xx) head went to the client */
    uint32_t head_bytes;   /* chunk extension and trailer bytes so far */
    bool any;              /* some byte of the response came */
} reply;

/* llhttp's callbacks for responses; parser.data is the exchange. */
void reply_settings_init(llhttp_settings_t *s);
/* Starts parsing a response on uc (a request was just sent on it). */
void reply_start(upconn *uc, exchange *x);

/* ---- proxy.c, called by reply.c ---- */

/* The final head is parsed and checked: resp holds its status, fields
 * (hop-by-hop ones gone), content type and length.  Returns 0, or -1 when
 * parsing must stop (the client left, the head could not be sent). */
int exchange_head(exchange *x, response *resp);
/* The backend switched protocols (101) as the client asked: 0, or -1
 * when the tunnel cannot be. */
int exchange_tunnel(exchange *x, response *resp);
/* A piece of the response body (de-chunked). */
void exchange_body(exchange *x, const char *data, size_t len);
/* The response is complete. */
void exchange_complete(exchange *x);

/* One proxied request, from the handler's call until it is answered or
 * the client leaves.  Reused from eddy_proxy.free_exchanges. */
struct exchange {
    eddy_proxy *px;
    eddy_request *h;       /* the client's request (its handle) */
    request *req;          /* what h stands for; NULL once it is stale */
    upconn *uc;            /* the connection carrying it, if any */
    backend *be;           /* the backend it went to */
    exchange *next_free;
    uint64_t tried;        /* backends tried (bit i: backends[i]) */
    enum fwd_body body;    /* how its body goes to the backend */
    uint64_t body_sent;    /* body bytes taken from the client */
    uint64_t max_body;     /* the most it may send (413 past it) */
    int last_status;       /* what the last failed attempt would answer */
    bool reading : 1;      /* the client's body is being read */
    bool body_done : 1;    /* ... and has all gone to the backend */
    bool responding : 1;   /* the response's head went to the client */
    bool complete : 1;     /* the backend's response ended */
    bool waiting_client : 1; /* backend reads wait for the client to drain */
    bool reused : 1;       /* sent on a kept connection */
    bool upgrade : 1;      /* the client's Upgrade went to the backend */
    bool tunnel : 1;       /* the backend said 101: raw bytes both ways */
    bool client_eof : 1;   /* the tunnel's client sent its FIN */
    bool push_due : 1;     /* the timer is PROXY_PUSH_MS's: the client's
                              held packet goes if nothing comes by then */
    uint64_t read_deadline; /* loop ms: the response's read timeout */
    reply rp;              /* last: large, and set up by reply_start */
};

#endif
