/* TLS for eddy's listeners, with OpenSSL: the certificate pairs (eddy_tls,
 * tls_config.c), the session ticket keys every worker shares
 * (tls_tickets.c), and the stream that wraps a socket stream in TLS
 * (tls_stream.c), below the protocol layer: a connection reads and writes
 * plaintext through it as through any stream.
 *
 * One eddy_tls serves the servers of every worker; handshakes on several
 * threads at once take what they need under its lock or through
 * OpenSSL's own reference counts. */
#ifndef EDDY_TLS_TLS_H
#define EDDY_TLS_TLS_H

#include "eddy.h"
#include "acme/challenge.h"
#include "rt/stream.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

/* Ticket keys: a new one every TLS_TICKET_ROTATE_S; tickets made with the
 * one before are still taken (and replaced with a fresh ticket), so a
 * ticket lives between one and two periods.  Sessions are good as long. */
#define TLS_TICKET_ROTATE_S 3600
#define TLS_TICKET_KEYS 2
/* Plaintext one SSL_write takes at most: a full record. */
#define TLS_RECORD_MAX 16384
/* Records made while more plaintext follows at once are held and go out
 * together, up to this much: a 1 MiB body leaves in 64 KiB sends rather
 * than one send per 16 KiB record. */
#define TLS_OUT_MAX (4 * (TLS_RECORD_MAX + 256))
/* A closed stream's close_notify waits at most this long for room behind
 * bytes still in flight (a send on io_uring), then the socket closes
 * without it. */
#define TLS_CLOSE_NOTIFY_MS 10000

typedef struct tls_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];  /* AES-256-CBC */
    unsigned char hmac[32]; /* HMAC-SHA256 */
    uint64_t born;          /* tls_now_sec() when made */
} tls_ticket_key;

typedef struct tls_tickets {
    pthread_mutex_t lock;
    tls_ticket_key keys[TLS_TICKET_KEYS]; /* [0]: current, [1]: the one before */
    unsigned nkeys;
    uint64_t (*now)(void);                /* seconds; a test's clock or monotonic */
} tls_tickets;

/* One loading of the certificate files: a context per pair, the first the
 * default.  Reloading makes a new generation; connections keep the one
 * they started with, which is freed with the last of them. */
typedef struct tls_gen {
    atomic_uint refs;
    eddy_tls *tls;
    unsigned n;            /* pairs loaded: ctx[0..n) and leaf[0..n) */
    unsigned cap;          /* room in both; with n == 0, ctx[0] has no certificate */
    SSL_CTX **ctx;
    X509 **leaf;           /* each pair's certificate, for SNI */
} tls_gen;

struct eddy_tls {
    atomic_uint refs;      /* the owner's, and one per generation */
    pthread_mutex_t lock;  /* guards current */
    tls_gen *current;
    pthread_mutex_t load_lock; /* one loading at a time; guards the pairs */
    char **certs, **keys;  /* the files, re-read by eddy_tls_reload */
    bool *optional;        /* a pair whose files may not be there yet (ACME's) */
    unsigned npairs;
    unsigned min_version;  /* 12 or 13 */
    bool no_http2;         /* ALPN offers http/1.1 alone */
    tls_tickets tickets;
    /* ACME challenges to answer (TLS-ALPN-01 here, RFC 8737; HTTP-01 by
     * the servers' route), one store for every eddy_acme of this eddy_tls;
     * NULL: none. */
    _Atomic(acme_challenges *) challenges;
    unsigned challenge_holders; /* eddy_acme's using it (made and freed on
                                   one thread, the program's) */
};

/* The challenge store every eddy_acme of tls fills, made by the first;
 * handshakes offering ALPN acme-tls/1 then get the challenge certificate
 * open for their SNI name (and nothing else: without one the handshake
 * fails with unrecognized_name).  NULL without memory. */
acme_challenges *tls_challenges_hold(eddy_tls *tls);
/* The last holder's drop frees the store: no more answers. */
void tls_challenges_drop(eddy_tls *tls);
/* The handshake was an ACME validation (ALPN acme-tls/1): the connection
 * carries no HTTP and is to be closed. */
bool tls_is_acme_handshake(SSL *ssl);

/* Adds a pair and loads them all again (as eddy_tls_reload, whose errors
 * it gives); an optional pair's missing files are no error: it is loaded
 * by the first reload that finds them.  Any thread. */
int tls_add_pair(eddy_tls *tls, const char *cert, const char *key, bool optional, char *err,
                 size_t err_len);

/* The generation new handshakes use, with a reference for the caller. */
tls_gen *tls_gen_acquire(eddy_tls *tls);
void tls_gen_release(tls_gen *gen);

/* Ticket keys (tls_tickets.c). */
int tls_tickets_init(tls_tickets *t);
void tls_tickets_destroy(tls_tickets *t);
/* OpenSSL's ticket key callback: SSL_CTX_set_tlsext_ticket_key_evp_cb. */
int tls_tickets_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                   EVP_MAC_CTX *mac, int enc);
/* Makes a new current key now (tests; the callback rotates by age). */
int tls_tickets_rotate(tls_tickets *t);

/* Wraps inner (a connected socket stream) in a server-side TLS stream
 * using gen's contexts; takes gen's reference and owns inner.  The
 * handshake runs as bytes arrive; reads say -EAGAIN until it is done and
 * an error once it failed. */
int tls_stream_new(tls_gen *gen, eddy_stream *inner, eddy_stream **out);
/* Counts the stream's handshake, done or failed, into m (NULL: nowhere). */
struct metrics_slot;
void tls_stream_metrics(eddy_stream *s, struct metrics_slot *m);

#endif
