/* Certificate pairs and the TLS settings every handshake gets. */
#include "tls/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mozilla's "intermediate" configuration: TLS 1.2 suites with forward
 * secrecy and AEAD only (TLS 1.3's are OpenSSL's defaults, all AEAD). */
#define TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                 \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3: the same three, AES-128 first (the cheapest where AES has
 * instructions; ChaCha20 is put first for clients that prefer it). */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

/* ALPN, in the wire's length-prefixed form, eddy's preference first. */
static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h1[] = "\x08http/1.1";
static const unsigned char alpn_acme[] = "\x0a" ACME_ALPN_PROTOCOL;

/* The most recent OpenSSL error as text, or what errno says. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : errno ? strerror(errno) : "unknown error";
}

/* ------------------------------------------------------------ handshake -- */

/* SSL app data of a handshake answering an ACME TLS-ALPN-01 validation. */
static char acme_marker;

bool tls_is_acme_handshake(SSL *ssl) { return SSL_get_app_data(ssl) == &acme_marker; }

acme_challenges *tls_challenges_hold(eddy_tls *tls)
{
    if (tls->challenge_holders == 0) {
        acme_challenges *c = acme_challenges_new();
        if (!c)
            return NULL;
        atomic_store(&tls->challenges, c);
    }
    tls->challenge_holders++;
    return atomic_load(&tls->challenges);
}

void tls_challenges_drop(eddy_tls *tls)
{
    if (--tls->challenge_holders == 0)
        acme_challenges_free(atomic_exchange(&tls->challenges, NULL));
}

/* Whether the ClientHello's ALPN list names proto (RFC 7301 §3.1: a
 * 2-byte length, then 1-byte-length-prefixed names). */
static bool offers_alpn(SSL *ssl, const char *proto)
{
    const unsigned char *p;
    size_t len, plen = strlen(proto);
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                   &len) ||
        len < 2 || (size_t)(p[0] << 8 | p[1]) != len - 2)
        return false;
    for (size_t i = 2; i < len;) {
        size_t n = p[i];
        if (n == 0 || i + 1 + n > len)
            return false;
        if (n == plen && memcmp(p + i + 1, proto, n) == 0)
            return true;
        i += 1 + n;
    }
    return false;
}

/* The ClientHello's host_name (RFC 6066 §3) into buf; false when absent
 * or malformed.  (SSL_get_servername knows it only after this stage.) */
static bool hello_host_name(SSL *ssl, char *buf, size_t len)
{
    const unsigned char *p;
    size_t n;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) || n < 5 ||
        (size_t)(p[0] << 8 | p[1]) != n - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
        return false;
    size_t hl = (size_t)(p[3] << 8 | p[4]);
    if (hl == 0 || hl + 5 > n || hl >= len || memchr(p + 5, 0, hl))
        return false;
    memcpy(buf, p + 5, hl);
    buf[hl] = 0;
    return true;
}

/* Before anything is chosen: an ACME TLS-ALPN-01 validation (ALPN
 * acme-tls/1) is answered with the challenge certificate for its name
 * and nothing else (RFC 8737 §3); without one open, it fails. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    tls_gen *gen = arg;
    acme_challenges *c = atomic_load(&gen->tls->challenges);
    if (!c || !offers_alpn(ssl, ACME_ALPN_PROTOCOL)) {
        if (gen->n > 0)
            return SSL_CLIENT_HELLO_SUCCESS;
        /* No certificate yet (the first is still being obtained). */
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    char name[256];
    X509 *cert;
    EVP_PKEY *key;
    if (!hello_host_name(ssl, name, sizeof(name)) || acme_alpn01_lookup(c, name, &cert, &key) < 0) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    bool ok = SSL_use_certificate(ssl, cert) == 1 && SSL_use_PrivateKey(ssl, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_app_data(ssl, &acme_marker);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* SNI: the first pair whose certificate names the host (SAN, else the
 * subject's CN; a wildcard covers one label, RFC 6125 §6.4.3); none: the
 * default pair. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    tls_gen *gen = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || gen->n < 2 || tls_is_acme_handshake(ssl))
        return SSL_TLSEXT_ERR_OK; /* (another context would drop the challenge's certificate) */
    for (unsigned i = 0; i < gen->n; i++) {
        if (X509_check_host(gen->leaf[i], name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1) {
            if (i > 0 && !SSL_set_SSL_CTX(ssl, gen->ctx[i]))
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* A client that offers ALPN must offer something eddy speaks (RFC 7301
 * §3.2: no_application_protocol); one that offers none gets HTTP/1.1.
 * h2 is chosen whenever the client offers it, unless turned off. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    const eddy_tls *tls = arg;
    const unsigned char *protos = tls->no_http2 ? alpn_h1 : alpn_h2;
    unsigned len = tls->no_http2 ? sizeof(alpn_h1) - 1 : sizeof(alpn_h2) - 1;
    if (tls_is_acme_handshake(ssl)) {
        protos = alpn_acme;
        len = sizeof(alpn_acme) - 1;
    }
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, protos, len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ------------------------------------------------------------- contexts -- */

static int fail(char *err, size_t err_len, const char *fmt, const char *file, const char *why)
{
    if (err && err_len)
        snprintf(err, err_len, fmt, file, why);
    ERR_clear_error();
    return -EINVAL;
}

/* A context with every setting but a certificate. */
static SSL_CTX *ctx_bare(const eddy_tls *tls)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, tls->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* Server order, with ChaCha20 first for a client that prefers it
     * (one without AES instructions); no renegotiation, no compression;
     * a peer closing without close_notify is an ordinary end. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES);
    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS);
    /* Short writes are fine (the connection keeps the rest), buffers are
     * let go while a connection idles. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Resumption by tickets alone, whose keys every worker shares: no
     * per-context session cache to grow; no 0-RTT (replayable). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Records are read as many as arrived at once, not header then body:
     * one inner read instead of two per record. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"eddy", 4);
    SSL_CTX_set_timeout(ctx, TLS_TICKET_ROTATE_S);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, (void *)tls); /* read only */
    return ctx;
}

/* A context for one pair, checked: readable, a key that is the
 * certificate's, a certificate valid now.  -ENOENT (and nothing in err)
 * for an optional pair whose files are not there yet. */
static int ctx_new(const eddy_tls *tls, const char *cert, const char *key, bool optional,
                   SSL_CTX **out, X509 **leaf, char *err, size_t err_len)
{
    FILE *f = fopen(cert, "r");
    if (!f && optional && errno == ENOENT)
        return -ENOENT;
    if (!f)
        return fail(err, err_len, "cannot read certificate '%s': %s", cert, strerror(errno));
    fclose(f);
    if (!(f = fopen(key, "r")))
        return fail(err, err_len, "cannot read key '%s': %s", key, strerror(errno));
    fclose(f);
    SSL_CTX *ctx = ctx_bare(tls);
    if (!ctx)
        return fail(err, err_len, "cannot make a TLS context for '%s': %s", cert, ssl_reason());
    int rc = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        rc = fail(err, err_len, "certificate '%s' is not a PEM certificate chain: %s", cert,
                  ssl_reason());
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL compares a key of the certificate's type as it loads
         * it: a mismatch fails here, not in the check below. */
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            rc = fail(err, err_len, "key '%s' does not belong to certificate '%s'", key, cert);
        else
            rc = fail(err, err_len, "key '%s' is not a PEM private key: %s", key, ssl_reason());
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        rc = fail(err, err_len, "key '%s' does not belong to certificate '%s'", key, cert);
        goto out;
    }
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        rc = fail(err, err_len, "certificate '%s' has expired%s", cert, "");
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        rc = fail(err, err_len, "certificate '%s' is not valid yet%s", cert, "");
        goto out;
    }
    *leaf = x;
    X509_up_ref(x);
out:
    if (rc < 0)
        SSL_CTX_free(ctx);
    else
        *out = ctx;
    return rc;
}

static void gen_free(tls_gen *g)
{
    for (unsigned i = 0; i < g->cap; i++) {
        SSL_CTX_free(g->ctx[i]);
        X509_free(g->leaf[i]);
    }
    free(g->ctx);
    free(g->leaf);
    free(g);
}

static void tls_unref(eddy_tls *tls)
{
    if (atomic_fetch_sub(&tls->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < tls->npairs; i++) {
        free(tls->certs[i]);
        free(tls->keys[i]);
    }
    free(tls->certs);
    free(tls->keys);
    free(tls->optional);
    tls_tickets_destroy(&tls->tickets);
    pthread_mutex_destroy(&tls->lock);
    pthread_mutex_destroy(&tls->load_lock);
    free(tls);
}

/* Loads every pair anew (with load_lock held); on success the generation
 * holds a reference to tls (its ticket keys).  Optional pairs whose files
 * are not there yet are left out; with no pair at all, one context without
 * a certificate answers ACME validations and fails other handshakes. */
static int gen_load(eddy_tls *tls, tls_gen **out, char *err, size_t err_len)
{
    unsigned cap = tls->npairs ? tls->npairs : 1;
    tls_gen *g = calloc(1, sizeof(*g));
    if (!g || !(g->ctx = calloc(cap, sizeof(*g->ctx))) ||
        !(g->leaf = calloc(cap, sizeof(*g->leaf)))) {
        if (g)
            free(g->ctx);
        free(g);
        return fail(err, err_len, "out of memory loading certificates%s%s", "", "");
    }
    g->cap = cap;
    for (unsigned i = 0; i < tls->npairs; i++) {
        int rc = ctx_new(tls, tls->certs[i], tls->keys[i], tls->optional[i], &g->ctx[g->n],
                         &g->leaf[g->n], err, err_len);
        if (rc == -ENOENT)
            continue;
        if (rc < 0) {
            gen_free(g);
            return rc;
        }
        g->n++;
    }
    if (g->n == 0 && !(g->ctx[0] = ctx_bare(tls))) {
        gen_free(g);
        return fail(err, err_len, "cannot make a TLS context: %s%s", ssl_reason(), "");
    }
    for (unsigned i = 0; i < cap && g->ctx[i]; i++) {
        /* SNI is read by the context a handshake starts with: the first. */
        SSL_CTX_set_tlsext_servername_callback(g->ctx[i], on_servername);
        SSL_CTX_set_tlsext_servername_arg(g->ctx[i], g);
        SSL_CTX_set_client_hello_cb(g->ctx[i], on_client_hello, g);
        SSL_CTX_set_app_data(g->ctx[i], &tls->tickets);
    }
    atomic_init(&g->refs, 1);
    g->tls = tls;
    atomic_fetch_add(&tls->refs, 1);
    *out = g;
    return 0;
}

/* Makes the pairs' generation the current one (load_lock held). */
static int reload_locked(eddy_tls *tls, char *err, size_t err_len)
{
    tls_gen *g;
    int rc = gen_load(tls, &g, err, err_len);
    if (rc < 0)
        return rc; /* the pairs in use stay */
    pthread_mutex_lock(&tls->lock);
    tls_gen *old = tls->current;
    tls->current = g;
    pthread_mutex_unlock(&tls->lock);
    tls_gen_release(old); /* freed with its last connection */
    return 0;
}

/* Appends a pair to the list (load_lock held, or before any thread). */
static int add_pair(eddy_tls *tls, const char *cert, const char *key, bool optional)
{
    unsigned n = tls->npairs;
    char **certs = realloc(tls->certs, (n + 1) * sizeof(char *));
    if (certs)
        tls->certs = certs;
    char **keys = realloc(tls->keys, (n + 1) * sizeof(char *));
    if (keys)
        tls->keys = keys;
    bool *opt = realloc(tls->optional, (n + 1) * sizeof(bool));
    if (opt)
        tls->optional = opt;
    char *c = strdup(cert), *k = strdup(key);
    if (!certs || !keys || !opt || !c || !k) {
        free(c);
        free(k);
        return -ENOMEM;
    }
    tls->certs[n] = c;
    tls->keys[n] = k;
    tls->optional[n] = optional;
    tls->npairs++;
    return 0;
}

int tls_add_pair(eddy_tls *tls, const char *cert, const char *key, bool optional, char *err,
                 size_t err_len)
{
    pthread_mutex_lock(&tls->load_lock);
    int rc = add_pair(tls, cert, key, optional);
    if (rc == 0 && (rc = reload_locked(tls, err, err_len)) < 0) {
        /* Not taken: the list is as it was. */
        tls->npairs--;
        free(tls->certs[tls->npairs]);
        free(tls->keys[tls->npairs]);
    } else if (rc < 0) {
        fail(err, err_len, "out of memory adding '%s'%s", cert, "");
    }
    pthread_mutex_unlock(&tls->load_lock);
    return rc;
}

tls_gen *tls_gen_acquire(eddy_tls *tls)
{
    pthread_mutex_lock(&tls->lock);
    tls_gen *g = tls->current;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&tls->lock);
    return g;
}

void tls_gen_release(tls_gen *gen)
{
    if (!gen || atomic_fetch_sub(&gen->refs, 1) != 1)
        return;
    eddy_tls *tls = gen->tls;
    gen_free(gen);
    tls_unref(tls);
}

/* ---------------------------------------------------------------- API -- */

int eddy_tls_new(const eddy_tls_config *config, eddy_tls **out, char *err, size_t err_len)
{
    if (!config || (config->npairs && (!config->certs || !config->keys)))
        return fail(err, err_len, "TLS needs a certificate and its key%s%s", "", "");
    if (config->min_version && config->min_version != 12 && config->min_version != 13)
        return fail(err, err_len, "the oldest TLS version must be 1.2 or 1.3%s%s", "", "");
    eddy_tls *tls = calloc(1, sizeof(*tls));
    if (!tls)
        return fail(err, err_len, "out of memory%s%s", "", "");
    atomic_init(&tls->refs, 1);
    pthread_mutex_init(&tls->lock, NULL);
    pthread_mutex_init(&tls->load_lock, NULL);
    tls->min_version = config->min_version ? config->min_version : 12;
    tls->no_http2 = config->no_http2;
    int rc = tls_tickets_init(&tls->tickets);
    for (unsigned i = 0; rc == 0 && i < config->npairs; i++)
        rc = add_pair(tls, config->certs[i], config->keys[i], false);
    if (rc < 0) {
        tls_unref(tls);
        return fail(err, err_len, "out of memory%s%s", "", "");
    }
    if ((rc = gen_load(tls, &tls->current, err, err_len)) < 0) {
        tls_unref(tls);
        return rc;
    }
    *out = tls;
    return 0;
}

int eddy_tls_reload(eddy_tls *tls, char *err, size_t err_len)
{
    pthread_mutex_lock(&tls->load_lock);
    int rc = reload_locked(tls, err, err_len);
    pthread_mutex_unlock(&tls->load_lock);
    return rc;
}

/* The pair list, taken apart from tls for a swap. */
typedef struct pair_list {
    char **certs, **keys;
    bool *optional;
    unsigned n;
} pair_list;

static pair_list take_pairs(eddy_tls *tls)
{
    pair_list l = {tls->certs, tls->keys, tls->optional, tls->npairs};
    tls->certs = tls->keys = NULL;
    tls->optional = NULL;
    tls->npairs = 0;
    return l;
}

static void free_pairs(pair_list *l)
{
    for (unsigned i = 0; i < l->n; i++) {
        free(l->certs[i]);
        free(l->keys[i]);
    }
    free(l->certs);
    free(l->keys);
    free(l->optional);
}

int eddy_tls_set_pairs(eddy_tls *tls, const char *const *certs, const char *const *keys,
                       unsigned npairs, char *err, size_t err_len)
{
    pthread_mutex_lock(&tls->load_lock);
    pair_list old = take_pairs(tls);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < npairs; i++)
        rc = add_pair(tls, certs[i], keys[i], false);
    for (unsigned i = 0; rc == 0 && i < old.n; i++)
        if (old.optional[i]) /* ACME's stay */
            rc = add_pair(tls, old.certs[i], old.keys[i], true);
    if (rc < 0)
        fail(err, err_len, "out of memory%s%s", "", "");
    else
        rc = reload_locked(tls, err, err_len);
    if (rc < 0) {
        pair_list fresh = take_pairs(tls);
        free_pairs(&fresh);
        tls->certs = old.certs, tls->keys = old.keys, tls->optional = old.optional;
        tls->npairs = old.n;
    } else {
        free_pairs(&old);
    }
    pthread_mutex_unlock(&tls->load_lock);
    return rc;
}

void eddy_tls_free(eddy_tls *tls)
{
    if (!tls)
        return;
    pthread_mutex_lock(&tls->lock);
    tls_gen *g = tls->current;
    tls->current = NULL;
    pthread_mutex_unlock(&tls->lock);
    tls_gen_release(g);
    tls_unref(tls);
}
