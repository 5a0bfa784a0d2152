/* The TLS stream over the mock stream, against a client made with
 * OpenSSL over memory BIOs: the test carries the client's bytes into the
 * mock and the mock's output back, turning the loop in between so the
 * mock tells of readiness as a socket would.  Handshakes (TLS 1.3 and
 * 1.2, a ClientHello one byte a turn), plaintext both ways, short and
 * blocked writes of vectors and files, hostile and broken peers, version
 * and ALPN refusals, SNI, resumption by tickets across rotations,
 * reloading, and the errors eddy_tls_new reports.  Certificates are made
 * here, in a temporary directory.
 *
 * Client and server share this thread's OpenSSL error queue: the client's
 * errors are taken off it after each of its calls, so every check that it
 * is empty after the server's turn is about eddy's side alone. */
#include "harness.h"
#include "rt/stream.h"
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------ certificates -- */

static char dir[64];
static X509 *x_ec, *x_wild, *x_alt; /* the certificates served, to compare */

/* dir/name, in one of a few rotating buffers (several live at once). */
static const char *at(const char *name)
{
    static char bufs[8][192];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, long from_s, long to_s)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

#define DAY (24L * 3600)

/* ec: localhost (P-256); wild: *.example.test (RSA); alt: localhost
 * again, another key; expired and future: the ec key's; other.key: a
 * P-256 key of no certificate; rsa-other.key: an RSA key of none. */
static int make_certs(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/eddy-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(2048), *alt = EVP_EC_gen("P-256"),
             *other = EVP_EC_gen("P-256"), *rsa_other = EVP_RSA_gen(2048);
    assert_non_null(ec);
    assert_non_null(rsa);
    assert_non_null(alt);
    assert_non_null(other);
    assert_non_null(rsa_other);
    x_ec = make_cert(ec, "localhost", "DNS:localhost", -DAY, 30 * DAY);
    x_wild = make_cert(rsa, "*.example.test", "DNS:*.example.test", -DAY, 30 * DAY);
    x_alt = make_cert(alt, "localhost", "DNS:localhost", -DAY, 30 * DAY);
    X509 *expired = make_cert(ec, "localhost", "DNS:localhost", -2 * DAY, -DAY);
    X509 *future = make_cert(ec, "localhost", "DNS:localhost", DAY, 30 * DAY);
    write_cert(at("ec.crt"), x_ec);
    write_key(at("ec.key"), ec);
    write_cert(at("wild.crt"), x_wild);
    write_key(at("wild.key"), rsa);
    write_cert(at("alt.crt"), x_alt);
    write_key(at("alt.key"), alt);
    write_cert(at("expired.crt"), expired);
    write_cert(at("future.crt"), future);
    write_key(at("other.key"), other);
    write_key(at("rsa-other.key"), rsa_other);
    write_text(at("garbage.pem"), "this is not a certificate\n");
    X509_free(expired);
    X509_free(future);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(alt);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa_other);
    ERR_clear_error();
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    X509_free(x_ec);
    X509_free(x_wild);
    X509_free(x_alt);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static eddy_tls *tls_of(const char *const *certs, const char *const *keys, unsigned n,
                        unsigned min_version)
{
    eddy_tls_config cfg = {.certs = certs, .keys = keys, .npairs = n, .min_version = min_version};
    eddy_tls *tls = NULL;
    char err[256] = "";
    int rc = eddy_tls_new(&cfg, &tls, err, sizeof(err));
    if (rc != 0)
        fail_msg("eddy_tls_new: %d %s", rc, err);
    assert_int_equal(ERR_peek_error(), 0);
    return tls;
}

/* The localhost pair alone. */
static eddy_tls *tls_ec(unsigned min_version)
{
    const char *certs[] = {at("ec.crt")}, *keys[] = {at("ec.key")};
    return tls_of(certs, keys, 1, min_version);
}

/* ------------------------------------------------------------- gate -- */

/* A stream between the TLS stream and the mock that takes `budget` more
 * bytes and then says -EAGAIN, as a socket whose buffer filled: what
 * makes a TLS write stop after some records (a short count).  As the
 * io_uring stream, it tells of room only after a write said -EAGAIN (a
 * short write promises nothing). */
typedef struct gate {
    eddy_stream base;
    eddy_stream *inner;
    long budget; /* < 0: no limit */
    bool owed;   /* a write said -EAGAIN: WRITABLE is told */
} gate;

static ssize_t gate_read(eddy_stream *s, void *buf, size_t len)
{
    return stream_read(((gate *)s)->inner, buf, len);
}

static ssize_t gate_writev(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more)
{
    gate *g = (gate *)s;
    if (g->budget == 0) {
        g->owed = true;
        return -EAGAIN;
    }
    struct iovec cut[16];
    int n = 0;
    size_t room = g->budget < 0 ? (size_t)-1 : (size_t)g->budget;
    for (int i = 0; i < iovcnt && room && n < 16; i++) {
        cut[n] = iov[i];
        if (cut[n].iov_len > room)
            cut[n].iov_len = room;
        room -= cut[n].iov_len;
        n++;
    }
    ssize_t w = stream_writev(g->inner, cut, n, more);
    if (w > 0 && g->budget > 0)
        g->budget -= w;
    if (w == -EAGAIN)
        g->owed = true;
    return w;
}

static ssize_t gate_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    (void)s, (void)fd, (void)off, (void)len;
    fail_msg("TLS sends files through writes");
    return -EIO;
}

static void gate_reset(eddy_stream *s) { stream_reset(((gate *)s)->inner); }
static void gate_shutdown_write(eddy_stream *s) { stream_shutdown_write(((gate *)s)->inner); }
static void gate_close(eddy_stream *s)
{
    stream_close(((gate *)s)->inner);
    free(s);
}
static void gate_peer_addr(eddy_stream *s, peer_addr *out)
{
    stream_peer_addr(((gate *)s)->inner, out);
}

static void gate_push(eddy_stream *s) { stream_push(((gate *)s)->inner); }

static const stream_ops gate_ops = {gate_read,          gate_writev, gate_sendfile,  gate_reset,
                                    gate_shutdown_write, gate_close,  gate_peer_addr, false, NULL, NULL,
                                    gate_push};

static void gate_ready(eddy_stream *inner, unsigned events)
{
    gate *g = inner->owner;
    if (events & STREAM_WRITABLE) {
        if (!g->owed && !(events & STREAM_HUP))
            events &= ~(unsigned)STREAM_WRITABLE;
        g->owed = false;
    }
    if (events && g->base.on_ready)
        g->base.on_ready(&g->base, events);
}

static gate *gate_new(eddy_stream *inner)
{
    gate *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    g->base.ops = &gate_ops;
    g->base.loop = inner->loop;
    g->inner = inner;
    g->budget = -1;
    inner->owner = g;
    inner->on_ready = gate_ready;
    return g;
}

/* ----------------------------------------------------- owner, client -- */

/* What sits on the TLS stream, as a connection would: reads on READABLE
 * until a short read, and closes the stream once a read says EOF or an
 * error. */
typedef struct owner {
    eddy_stream *s; /* NULL once it closed the stream */
    unsigned events, calls;
    bool reads;
    ssize_t last; /* the last read's result; 1 before any */
    size_t read_size;
    char *got;
    size_t got_len, got_cap;
} owner;

static void on_ready(eddy_stream *s, unsigned events)
{
    owner *o = s->owner;
    o->events |= events;
    o->calls++;
    if (!o->reads || !(events & STREAM_READABLE))
        return;
    for (;;) {
        if (o->got_cap - o->got_len < o->read_size) {
            o->got_cap = (o->got_cap + o->read_size) * 2;
            o->got = realloc(o->got, o->got_cap);
            assert_non_null(o->got);
        }
        ssize_t n = stream_read(s, o->got + o->got_len, o->read_size);
        o->last = n;
        if (n > 0) {
            o->got_len += (size_t)n;
            if ((size_t)n < o->read_size)
                return; /* drained */
            continue;
        }
        if (n != -EAGAIN) {
            stream_close(s); /* as a connection closes */
            o->s = NULL;
        }
        return;
    }
}

typedef struct client_opts {
    int min, max;               /* versions; 0: OpenSSL's defaults */
    const char *sni;
    const char *alpn;           /* wire form, NUL-terminated */
    SSL_SESSION *session;       /* to resume */
    bool gate;                  /* a gate between TLS and the mock */
} client_opts;

typedef struct tconn {
    eddy_loop *loop;
    mock_stream *m;
    gate *g;
    owner o;
    SSL_CTX *cctx;
    SSL *cl;
    BIO *rbio, *wbio;      /* the client's: what it reads, what it wrote */
    bool bytewise;         /* client bytes reach the mock one per turn */
    bool client_failed;
    unsigned long client_err; /* the first error the client's calls queued */
    bool client_eof;
    char *rx;              /* plaintext the client received */
    size_t rx_len, rx_cap;
    unsigned tickets;      /* sessions the client was told of (not
                              resumed TLS 1.2 ones: OpenSSL's rule) */
} tconn;

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)sess;
    tconn *tc = SSL_get_app_data(ssl);
    tc->tickets++;
    return 0; /* not kept: SSL_get1_session gives the latest */
}

/* The client's error, off the shared queue. */
static void client_error(tconn *tc)
{
    unsigned long e = ERR_peek_error();
    if (!tc->client_err)
        tc->client_err = e;
    ERR_clear_error();
}

static tconn *tc_open(eddy_tls *tls, const client_opts *co)
{
    static const client_opts none;
    if (!co)
        co = &none;
    tconn *tc = calloc(1, sizeof(*tc));
    assert_non_null(tc);
    tc->loop = eddy_loop_new();
    assert_non_null(tc->loop);
    loop_use_virtual_clock(tc->loop, 1000);
    tc->m = mock_stream_new(tc->loop);
    assert_non_null(tc->m);
    eddy_stream *inner = mock_stream_base(tc->m);
    if (co->gate) {
        tc->g = gate_new(inner);
        inner = &tc->g->base;
    }
    tls_gen *gen = tls_gen_acquire(tls);
    assert_int_equal(tls_stream_new(gen, inner, &tc->o.s), 0);
    assert_true(tc->o.s->ops->secure);
    tc->o.s->owner = &tc->o;
    tc->o.s->on_ready = on_ready;
    tc->o.reads = true;
    tc->o.last = 1;
    tc->o.read_size = 16 * 1024;

    tc->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(tc->cctx);
    SSL_CTX_set_verify(tc->cctx, SSL_VERIFY_NONE, NULL); /* self-signed: compared instead */
    if (co->max && co->max < TLS1_2_VERSION) {
        /* OpenSSL's own level forbids these versions to the client. */
        SSL_CTX_set_security_level(tc->cctx, 0);
        SSL_CTX_set_cipher_list(tc->cctx, "DEFAULT:@SECLEVEL=0");
    }
    if (co->min)
        assert_int_equal(SSL_CTX_set_min_proto_version(tc->cctx, co->min), 1);
    if (co->max)
        assert_int_equal(SSL_CTX_set_max_proto_version(tc->cctx, co->max), 1);
    SSL_CTX_set_session_cache_mode(tc->cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(tc->cctx, on_new_session);
    tc->cl = SSL_new(tc->cctx);
    assert_non_null(tc->cl);
    SSL_set_app_data(tc->cl, tc);
    tc->rbio = BIO_new(BIO_s_mem());
    tc->wbio = BIO_new(BIO_s_mem());
    assert_non_null(tc->rbio);
    assert_non_null(tc->wbio);
    BIO_set_mem_eof_return(tc->rbio, -1); /* empty: "later", not EOF */
    SSL_set_bio(tc->cl, tc->rbio, tc->wbio);
    SSL_set_connect_state(tc->cl);
    if (co->sni)
        assert_int_equal(SSL_set_tlsext_host_name(tc->cl, co->sni), 1);
    if (co->alpn)
        assert_int_equal(SSL_set_alpn_protos(tc->cl, (const unsigned char *)co->alpn,
                                             (unsigned)strlen(co->alpn)),
                         0);
    if (co->session)
        assert_int_equal(SSL_set_session(tc->cl, co->session), 1);
    ERR_clear_error();
    return tc;
}

static void tc_close(tconn *tc)
{
    if (tc->o.s)
        stream_close(tc->o.s);
    assert_true(mock_closed(tc->m));
    loop_advance(tc->loop, 0);
    mock_stream_free(tc->m);
    eddy_loop_free(tc->loop);
    SSL_free(tc->cl);
    SSL_CTX_free(tc->cctx);
    free(tc->o.got);
    free(tc->rx);
    ERR_clear_error();
    free(tc);
}

/* The client handshakes, or reads what came. */
static void client_step(tconn *tc)
{
    if (tc->client_failed || tc->client_eof)
        return;
    if (!SSL_is_init_finished(tc->cl)) {
        int r = SSL_do_handshake(tc->cl);
        int e = SSL_get_error(tc->cl, r);
        if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            tc->client_failed = true;
        client_error(tc);
        if (r != 1)
            return;
    }
    for (;;) {
        if (tc->rx_cap - tc->rx_len < 16384) {
            tc->rx_cap = (tc->rx_cap + 16384) * 2;
            tc->rx = realloc(tc->rx, tc->rx_cap);
            assert_non_null(tc->rx);
        }
        size_t n;
        int r = SSL_read_ex(tc->cl, tc->rx + tc->rx_len, tc->rx_cap - tc->rx_len, &n);
        if (r == 1) {
            tc->rx_len += n;
            continue;
        }
        int e = SSL_get_error(tc->cl, r);
        if (e == SSL_ERROR_ZERO_RETURN)
            tc->client_eof = true;
        else if (e != SSL_ERROR_WANT_READ)
            tc->client_failed = true;
        client_error(tc);
        return;
    }
}

/* The loop's turn: the mock tells of readiness, the TLS stream works,
 * and it leaves nothing on the error queue. */
static void server_turn(tconn *tc)
{
    ERR_clear_error();
    loop_advance(tc->loop, 0);
    assert_int_equal(ERR_peek_error(), 0);
}

/* One round: the client acts, its bytes go to the mock, the loop turns,
 * the mock's output goes to the client.  Bytes moved either way. */
static size_t tc_round(tconn *tc)
{
    client_step(tc);
    size_t moved = 0;
    char buf[16384];
    int n;
    while ((n = BIO_read(tc->wbio, buf, sizeof(buf))) > 0) {
        moved += (size_t)n;
        if (mock_closed(tc->m))
            continue; /* the server is gone: lost */
        if (!tc->bytewise) {
            mock_push(tc->m, buf, (size_t)n);
            continue;
        }
        /* A byte a turn: a partial record draws no answer and no call
         * of the owner. */
        size_t out_before, out_now;
        mock_output(tc->m, &out_before);
        unsigned calls = tc->o.calls;
        for (int i = 0; i < n; i++) {
            mock_push(tc->m, buf + i, 1);
            server_turn(tc);
            mock_output(tc->m, &out_now);
            if (i + 1 < n) {
                assert_int_equal(out_now, out_before);
                if (calls == 0) /* after the handshake, readiness is told */
                    assert_int_equal(tc->o.calls, 0);
            }
        }
    }
    ERR_clear_error();
    server_turn(tc);
    size_t len;
    const char *out = mock_output(tc->m, &len);
    if (len) {
        assert_int_equal(BIO_write(tc->rbio, out, (int)len), (int)len);
        mock_clear_output(tc->m);
        moved += len;
    }
    return moved;
}

/* Rounds until nothing moves. */
static void tc_pump(tconn *tc)
{
    for (int i = 0; i < 1000; i++)
        if (tc_round(tc) == 0 && tc_round(tc) == 0)
            return;
    fail_msg("the exchange does not settle");
}

static bool tc_handshake(tconn *tc)
{
    tc_pump(tc);
    return SSL_is_init_finished(tc->cl) && !tc->client_failed && tc->o.s;
}

static void client_send(tconn *tc, const void *data, size_t len)
{
    size_t n;
    assert_int_equal(SSL_write_ex(tc->cl, data, len, &n), 1);
    assert_int_equal(n, len);
    tc_pump(tc);
}

/* A handshaken stream whose owner does not read (the test does). */
static tconn *tc_quiet(eddy_tls *tls, const client_opts *co)
{
    tconn *tc = tc_open(tls, co);
    tc->o.reads = false;
    assert_true(tc_handshake(tc));
    return tc;
}

static void owner_writes_the_end(tconn *tc)
{
    struct iovec iov = {"the end", 7};
    assert_int_equal(stream_writev(tc->o.s, &iov, 1, false), 7);
}

static void owner_closes(tconn *tc)
{
    stream_close(tc->o.s);
    tc->o.s = NULL;
}

/* The client read rx_len bytes, then close_notify: a clean end, not a cut. */
static void client_saw_clean_end(tconn *tc, size_t rx_len)
{
    tc_pump(tc);
    assert_true(tc->client_eof);
    assert_false(tc->client_failed);
    assert_int_equal(tc->rx_len, rx_len);
}

static bool peer_is(tconn *tc, X509 *want)
{
    X509 *peer = SSL_get1_peer_certificate(tc->cl);
    assert_non_null(peer);
    bool same = X509_cmp(peer, want) == 0;
    X509_free(peer);
    return same;
}

/* Bytes of a pattern no shift of itself matches (so any loss, repeat or
 * reordering shows). */
static void fill(char *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++) {
        size_t k = from + i;
        buf[i] = (char)(k * 7 + k / 251 + k / 65521);
    }
}

/* ---------------------------------------------------- handshake, data -- */

static void exchange_both_ways(tconn *tc)
{
    assert_int_equal(tc->o.calls, 1); /* told once: the handshake is done */
    assert_int_equal(tc->o.events, STREAM_READABLE | STREAM_WRITABLE);
    assert_int_equal(tc->o.last, -EAGAIN);
    client_send(tc, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(tc->o.got_len, 18);
    assert_memory_equal(tc->o.got, "GET / HTTP/1.1\r\n\r\n", 18);
    struct iovec iov[3] = {{"HTTP/1.1 200 OK\r\n", 17}, {"\r\n", 2}, {"hello", 5}};
    assert_int_equal(stream_writev(tc->o.s, iov, 3, false), 24);
    assert_int_equal(ERR_peek_error(), 0);
    tc_pump(tc);
    assert_int_equal(tc->rx_len, 24);
    assert_memory_equal(tc->rx, "HTTP/1.1 200 OK\r\n\r\nhello", 24);
    /* A larger upload, in records of every size the client makes. */
    size_t big = 100 * 1024 + 17;
    char *up = malloc(big);
    fill(up, big, 0);
    client_send(tc, up, big);
    assert_int_equal(tc->o.got_len, 18 + big);
    assert_memory_equal(tc->o.got + 18, up, big);
    free(up);
}

static void tls13_handshake_then_data(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_open(tls, NULL);
    /* Nothing to read before the client speaks; writes wait too. */
    server_turn(tc);
    assert_int_equal(tc->o.calls, 0);
    char b[8];
    assert_int_equal(stream_read(tc->o.s, b, sizeof(b)), -EAGAIN);
    struct iovec iov = {"x", 1};
    assert_int_equal(stream_writev(tc->o.s, &iov, 1, false), -EAGAIN);
    off_t off = 0;
    assert_int_equal(stream_sendfile(tc->o.s, 0, &off, 1), -EAGAIN);
    assert_true(tc_handshake(tc));
    assert_int_equal(SSL_version(tc->cl), TLS1_3_VERSION);
    assert_true(peer_is(tc, x_ec));
    exchange_both_ways(tc);
    char peer[16];
    peer_addr pa = {0};
    stream_peer_cached(tc->o.s, &pa, peer, sizeof(peer));
    assert_string_equal(peer, MOCK_PEER); /* the TLS stream asks the one below */
    tc_close(tc);
    eddy_tls_free(tls);
}

static void tls12_handshake_then_data(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_open(tls, &(client_opts){.max = TLS1_2_VERSION});
    assert_true(tc_handshake(tc));
    assert_int_equal(SSL_version(tc->cl), TLS1_2_VERSION);
    assert_true(peer_is(tc, x_ec));
    /* Forward secrecy and AEAD: an ECDHE suite with GCM or ChaCha20. */
    const char *suite = SSL_CIPHER_get_name(SSL_get_current_cipher(tc->cl));
    assert_non_null(strstr(suite, "ECDHE-ECDSA-"));
    exchange_both_ways(tc);
    tc_close(tc);
    eddy_tls_free(tls);
}

static void client_hello_one_byte_a_turn(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max});
        tc->bytewise = true;
        /* The first flight alone, a byte a turn: the owner hears nothing
         * while the hello is incomplete, and the server answers once. */
        assert_true(tc_round(tc) > 0);
        assert_int_equal(tc->o.calls, 0);
        assert_true(tc_handshake(tc));
        assert_int_equal(SSL_version(tc->cl), max);
        assert_int_equal(tc->o.calls, 1);
        client_send(tc, "ping", 4);
        assert_int_equal(tc->o.got_len, 4);
        assert_memory_equal(tc->o.got, "ping", 4);
        tc_close(tc);
    }
    eddy_tls_free(tls);
}

/* -------------------------------------------------- writes, sendfile -- */

/* Throttles the next write: blocked, a budget of bytes before the gate
 * says -EAGAIN, and pieces of at most some bytes per inner write. */
static void throttle(tconn *tc, unsigned k)
{
    if (k > 400) { /* enough: let the rest through */
        mock_block_writes(tc->m, false);
        mock_set_write_max(tc->m, 0);
        tc->g->budget = -1;
        return;
    }
    mock_block_writes(tc->m, k % 4 == 1);
    mock_set_write_max(tc->m, k % 3 ? 1000 + (k * 337) % 5000 : 0);
    tc->g->budget = k % 5 == 2 ? 0 : (long)(3000 + (k * 7919) % 40000);
}

typedef struct write_stats {
    unsigned eagain, shorts, calls;
} write_stats;

/* Writes the vector through the TLS stream as a connection does: a short
 * count moves on, -EAGAIN tries the same bytes again once the peer took
 * what came. */
static write_stats write_all(tconn *tc, const struct iovec *iov_in, int cnt)
{
    struct iovec iov[16];
    assert_true(cnt <= 16);
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)cnt);
    struct iovec *cur = iov;
    write_stats st = {0};
    size_t left = 0;
    for (int i = 0; i < cnt; i++)
        left += iov[i].iov_len;
    for (unsigned k = 0; left; k++) {
        throttle(tc, k);
        ssize_t n = stream_writev(tc->o.s, cur, cnt, false);
        assert_int_equal(ERR_peek_error(), 0);
        st.calls++;
        if (n == -EAGAIN) {
            st.eagain++;
        } else {
            assert_true(n > 0);
            assert_true((size_t)n <= left);
            if ((size_t)n < left)
                st.shorts++;
            left -= (size_t)n;
            for (size_t skip = (size_t)n; skip;) {
                size_t step = cur->iov_len < skip ? cur->iov_len : skip;
                cur->iov_base = (char *)cur->iov_base + step;
                cur->iov_len -= step;
                skip -= step;
                if (cur->iov_len == 0 && cnt > 1)
                    cur++, cnt--;
            }
            while (cnt > 1 && cur->iov_len == 0)
                cur++, cnt--;
        }
        tc_pump(tc);
    }
    throttle(tc, 1000);
    tc_pump(tc);
    return st;
}

static void writes_short_and_blocked_arrive_whole(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max, .gate = true});
        assert_true(tc_handshake(tc));
        /* Small pieces (gathered), one past a record, a big one, small
         * ones between and after: 100 KB and more. */
        size_t sizes[] = {5, 300, 17000, 1, 70000, 200, 16384, 3, 9000, 40};
        enum { N = sizeof(sizes) / sizeof(sizes[0]) };
        struct iovec iov[N];
        size_t total = 0;
        for (int i = 0; i < N; i++)
            total += sizes[i];
        char *all = malloc(total);
        fill(all, total, 0);
        for (size_t i = 0, o = 0; i < N; o += sizes[i], i++)
            iov[i] = (struct iovec){all + o, sizes[i]};
        assert_true(total > 100 * 1024);
        write_stats st = write_all(tc, iov, N);
        assert_true(st.eagain > 0);
        assert_true(st.shorts > 0);
        assert_int_equal(tc->rx_len, total);
        assert_memory_equal(tc->rx, all, total);
        /* The stream still works both ways after it. */
        client_send(tc, "more", 4);
        assert_memory_equal(tc->o.got, "more", 4);
        free(all);
        tc_close(tc);
    }
    eddy_tls_free(tls);
}

/* Many small vectors, each below a record, written under pressure: the
 * gathering of pieces into one record survives retries. */
static void many_small_pieces_under_pressure(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_open(tls, &(client_opts){.gate = true});
    assert_true(tc_handshake(tc));
    size_t total = 0;
    char *all = malloc(16 * 12000);
    fill(all, 16 * 12000, 5);
    for (int round = 0; round < 4; round++) {
        struct iovec iov[16];
        int n = 0;
        while (n < 16 && total < 16 * 12000 - 12000) {
            size_t len = 1 + (size_t)((round * 16 + n) * 4099) % 12000;
            iov[n++] = (struct iovec){all + total, len};
            total += len;
        }
        if (n)
            write_all(tc, iov, n);
    }
    assert_int_equal(tc->rx_len, total);
    assert_memory_equal(tc->rx, all, total);
    free(all);
    tc_close(tc);
    eddy_tls_free(tls);
}

static int temp_file(size_t len, char **content)
{
    char path[96];
    snprintf(path, sizeof(path), "%s/file-XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    *content = malloc(len);
    fill(*content, len, 11);
    assert_int_equal(write(fd, *content, len), (ssize_t)len);
    return fd;
}

/* Sends [from, to) of fd as a connection does, checking *off moves by
 * exactly what each call reports. */
static write_stats sendfile_all(tconn *tc, int fd, off_t from, off_t to)
{
    write_stats st = {0};
    off_t off = from;
    for (unsigned k = 0; off < to; k++) {
        throttle(tc, k);
        off_t before = off;
        ssize_t n = stream_sendfile(tc->o.s, fd, &off, (size_t)(to - off));
        assert_int_equal(ERR_peek_error(), 0);
        st.calls++;
        if (n == -EAGAIN) {
            st.eagain++;
            assert_int_equal(off, before);
        } else {
            assert_true(n > 0);
            assert_int_equal(off, before + n);
            assert_true(off <= to);
            if (off < to)
                st.shorts++;
        }
        tc_pump(tc);
    }
    throttle(tc, 1000);
    tc_pump(tc);
    return st;
}

static void sendfile_under_pressure(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    char *content;
    size_t len = 200 * 1024 + 123;
    int fd = temp_file(len, &content);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max, .gate = true});
        assert_true(tc_handshake(tc));
        write_stats st = sendfile_all(tc, fd, 0, (off_t)len);
        assert_true(st.eagain > 0);
        assert_true(st.shorts > 0);
        assert_int_equal(tc->rx_len, len);
        assert_memory_equal(tc->rx, content, len);
        /* A range from the middle, after a header: in order behind it. */
        struct iovec head = {"HEAD\r\n", 6};
        write_all(tc, &head, 1);
        sendfile_all(tc, fd, 70001, 150000);
        assert_int_equal(tc->rx_len, len + 6 + 150000 - 70001);
        assert_memory_equal(tc->rx + len, "HEAD\r\n", 6);
        assert_memory_equal(tc->rx + len + 6, content + 70001, 150000 - 70001);
        tc_close(tc);
    }
    /* Past the end of the file: an error, not a hang. */
    tconn *tc = tc_open(tls, NULL);
    assert_true(tc_handshake(tc));
    off_t off = (off_t)len;
    assert_true(stream_sendfile(tc->o.s, fd, &off, 10) < 0);
    assert_int_equal(off, (off_t)len);
    assert_int_equal(ERR_peek_error(), 0);
    tc_close(tc);
    close(fd);
    free(content);
    eddy_tls_free(tls);
}

/* ------------------------------------------------- peers that break -- */

/* Without pressure a file's records leave several to a write, the last
 * of them with the call that made it: 1 MiB in 64 KiB writes or so, not
 * one write per 16 KiB record. */
static void sendfile_sends_records_together(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    enum { LEN = 1 << 20 };
    char *content;
    int fd = temp_file(LEN, &content);
    size_t calls = mock_write_calls(tc->m);
    off_t off = 0;
    while (off < LEN) {
        ssize_t n = stream_sendfile(tc->o.s, fd, &off, (size_t)(LEN - off));
        assert_true(n > 0);
    }
    calls = mock_write_calls(tc->m) - calls;
    assert_true(calls >= LEN / (TLS_OUT_MAX + 1));
    assert_true(calls <= LEN / TLS_OUT_MAX + 4);
    tc_pump(tc);
    assert_int_equal(tc->rx_len, LEN);
    assert_memory_equal(tc->rx, content, LEN);
    free(content);
    close(fd);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* The same for a vector: OpenSSL returns after each record (partial
 * writes), and the records of one writev still leave together, one
 * inner write per 64 KiB written (HTTP/2's frames come this way). */
static void writev_sends_records_together(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    enum { LEN = 1 << 20, PIECE = 4 * TLS_RECORD_MAX };
    char *content = malloc(LEN);
    assert_non_null(content);
    for (size_t i = 0; i < LEN; i++)
        content[i] = (char)(i * 7 + i / 4099);
    size_t calls = mock_write_calls(tc->m);
    for (size_t off = 0; off < LEN;) {
        struct iovec iov = {content + off, PIECE};
        ssize_t n = stream_writev(tc->o.s, &iov, 1, false);
        assert_int_equal(n, PIECE);
        off += (size_t)n;
    }
    calls = mock_write_calls(tc->m) - calls;
    assert_int_equal(calls, LEN / PIECE);
    tc_pump(tc);
    assert_int_equal(tc->rx_len, LEN);
    assert_memory_equal(tc->rx, content, LEN);
    free(content);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* A write that says more follows leaves its record held (it would join
 * the next); when the more does not come, a push sends it, and pushes
 * the socket beneath. */
static void push_sends_held_records(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    size_t calls = mock_write_calls(tc->m), pushes = mock_pushes(tc->m);
    struct iovec iov = {(void *)"held back", 9};
    assert_int_equal(stream_writev(tc->o.s, &iov, 1, true), 9);
    assert_int_equal(mock_write_calls(tc->m), calls);
    tc_pump(tc);
    assert_int_equal(tc->rx_len, 0);
    stream_push(tc->o.s);
    assert_int_equal(mock_write_calls(tc->m), calls + 1);
    assert_int_equal(mock_pushes(tc->m), pushes + 1);
    assert_int_equal(mock_held(tc->m), 0);
    tc_pump(tc);
    assert_int_equal(tc->rx_len, 9);
    assert_memory_equal(tc->rx, "held back", 9);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* The owner was told, read an error (or EOF: 0) and closed. */
static void ended(tconn *tc, ssize_t want)
{
    assert_true(tc->o.calls >= 1);
    assert_null(tc->o.s);
    assert_true(mock_closed(tc->m));
    if (want == 1)
        assert_true(tc->o.last < 0 && tc->o.last != -EAGAIN);
    else
        assert_int_equal(tc->o.last, want);
    assert_int_equal(ERR_peek_error(), 0);
}

static void raw_hello(tconn *tc, const void *bytes, size_t len)
{
    mock_push(tc->m, bytes, len);
    server_turn(tc);
}

static void garbage_instead_of_a_hello(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    /* Plain HTTP on the TLS port. */
    tconn *tc = tc_open(tls, NULL);
    raw_hello(tc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    ended(tc, -EPROTO);
    tc_close(tc);
    /* A handshake record whose body is nonsense. */
    tc = tc_open(tls, NULL);
    unsigned char junk[64] = {0x16, 0x03, 0x01, 0x00, 59, 0x01, 0x00, 0x00, 55, 0x03, 0x03};
    for (size_t i = 11; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37);
    junk[43] = 200; /* a session id longer than what is left */
    raw_hello(tc, junk, sizeof(junk));
    ended(tc, -EPROTO);
    size_t len;
    const unsigned char *out = (const unsigned char *)mock_output(tc->m, &len);
    assert_true(len >= 7 && out[0] == 0x15); /* an alert went out */
    tc_close(tc);
    /* Random bytes, one at a time. */
    tc = tc_open(tls, NULL);
    for (int i = 0; i < 64 && tc->o.s; i++) {
        unsigned char c = (unsigned char)(i * 97 + 3);
        raw_hello(tc, &c, 1);
    }
    ended(tc, -EPROTO);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* The client's next flight as bytes, not yet sent. */
static size_t client_bytes(tconn *tc, char *buf, size_t cap)
{
    int n = BIO_read(tc->wbio, buf, (int)cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* Good records, then a forged one, in one piece: the owner reads the good
 * bytes (a short read), and is told again so it reads the error. */
static void bad_record_after_good_ones(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max});
        assert_true(tc_handshake(tc));
        unsigned calls = tc->o.calls;
        assert_int_equal(SSL_write(tc->cl, "good", 4), 4);
        char buf[512];
        size_t n = client_bytes(tc, buf, sizeof(buf) - 40);
        static const char forged[] = "\x17\x03\x03\x00\x20" "0123456789abcdef0123456789abcdef";
        memcpy(buf + n, forged, sizeof(forged) - 1);
        mock_push(tc->m, buf, n + sizeof(forged) - 1);
        server_turn(tc);
        assert_int_equal(tc->o.got_len, 4);
        assert_memory_equal(tc->o.got, "good", 4);
        assert_true(tc->o.calls >= calls + 2);
        ended(tc, -EPROTO);
        tc_close(tc);
    }
    /* The same with an owner that closes right after the short read:
     * what was to be told later is not (no call on a freed stream). */
    tconn *tc = tc_quiet(tls, NULL);
    assert_int_equal(SSL_write(tc->cl, "good", 4), 4);
    assert_int_equal(SSL_shutdown(tc->cl), 0);
    char buf[512];
    size_t n = client_bytes(tc, buf, sizeof(buf));
    mock_push(tc->m, buf, n);
    server_turn(tc);
    char got[64];
    assert_int_equal(stream_read(tc->o.s, got, sizeof(got)), 4);
    unsigned calls = tc->o.calls;
    stream_close(tc->o.s);
    tc->o.s = NULL;
    server_turn(tc);
    assert_int_equal(tc->o.calls, calls);
    tc_close(tc);
    eddy_tls_free(tls);
}

static void sslv3_and_sslv2_hellos_refused(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    /* SSLv3: record and client version 3.0, two suites, no extensions. */
    static const unsigned char v3[] = {
        0x16, 0x03, 0x00, 0x00, 0x2f,                         /* record */
        0x01, 0x00, 0x00, 0x2b, 0x03, 0x00,                   /* ClientHello, 3.0 */
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* random */
        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        0x00,                                                 /* session id */
        0x00, 0x04, 0x00, 0x2f, 0x00, 0x35,                   /* suites */
        0x01, 0x00,                                           /* compression */
    };
    tconn *tc = tc_open(tls, NULL);
    raw_hello(tc, v3, sizeof(v3));
    ended(tc, -EPROTO);
    size_t len;
    const unsigned char *out = (const unsigned char *)mock_output(tc->m, &len);
    assert_true(len >= 7 && out[0] == 0x15 && out[5] == 2); /* a fatal alert */
    tc_close(tc);
    /* The SSLv2 record form asking for 3.0. */
    static const unsigned char v2[] = {
        0x80, 0x1f,             /* length 31 */
        0x01, 0x03, 0x00,       /* CLIENT-HELLO, 3.0 */
        0x00, 0x06, 0x00, 0x00, 0x00, 0x10, /* suites, session id, challenge lengths */
        0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, /* suites */
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    };
    tc = tc_open(tls, NULL);
    raw_hello(tc, v2, sizeof(v2));
    ended(tc, -EPROTO);
    tc_close(tc);
    eddy_tls_free(tls);
}

static void reset_mid_handshake(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max});
        tc_round(tc); /* the hello in, the server's flight out */
        assert_false(SSL_is_init_finished(tc->cl));
        assert_int_equal(tc->o.calls, 0);
        mock_push_reset(tc->m);
        server_turn(tc);
        ended(tc, -ECONNRESET);
        tc_close(tc);
    }
    /* And after it. */
    tconn *tc = tc_open(tls, NULL);
    assert_true(tc_handshake(tc));
    mock_push_reset(tc->m);
    server_turn(tc);
    ended(tc, -ECONNRESET);
    tc_close(tc);
    eddy_tls_free(tls);
}

static void eof_mid_handshake(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    /* Before a byte came. */
    tconn *tc = tc_open(tls, NULL);
    mock_push_eof(tc->m);
    server_turn(tc);
    ended(tc, 1);
    tc_close(tc);
    /* Halfway through the hello. */
    tc = tc_open(tls, NULL);
    SSL_do_handshake(tc->cl);
    client_error(tc);
    char buf[4096];
    int n = BIO_read(tc->wbio, buf, sizeof(buf));
    assert_true(n > 20);
    raw_hello(tc, buf, (size_t)n / 2);
    assert_int_equal(tc->o.calls, 0);
    mock_push_eof(tc->m);
    server_turn(tc);
    ended(tc, 1);
    tc_close(tc);
    /* After the server's flight, before the client's Finished. */
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tc = tc_open(tls, &(client_opts){.max = max});
        tc_round(tc);
        mock_push_eof(tc->m);
        server_turn(tc);
        ended(tc, 1);
        tc_close(tc);
    }
    eddy_tls_free(tls);
}

static void eof_after_handshake_reads_zero(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        /* The peer's FIN without close_notify: an ordinary end. */
        tconn *tc = tc_open(tls, &(client_opts){.max = max});
        assert_true(tc_handshake(tc));
        client_send(tc, "last words", 10);
        mock_push_eof(tc->m);
        server_turn(tc);
        ended(tc, 0);
        assert_int_equal(tc->o.got_len, 10);
        tc_close(tc);
        /* close_notify, then FIN. */
        tc = tc_open(tls, &(client_opts){.max = max});
        assert_true(tc_handshake(tc));
        SSL_write(tc->cl, "bye", 3);
        assert_true(SSL_shutdown(tc->cl) >= 0);
        client_error(tc);
        tc_pump(tc);
        ended(tc, 0);
        assert_int_equal(tc->o.got_len, 3);
        tc_close(tc);
    }
    eddy_tls_free(tls);
}

/* Read after EOF stays 0; the owner shuts its side with close_notify,
 * which the client sees as a clean end. */
static void shutdown_write_sends_close_notify(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    owner_writes_the_end(tc);
    stream_shutdown_write(tc->o.s);
    assert_int_equal(ERR_peek_error(), 0);
    assert_true(mock_write_shut(tc->m));
    client_saw_clean_end(tc, 7);
    mock_push_eof(tc->m);
    server_turn(tc);
    char b[16];
    assert_int_equal(stream_read(tc->o.s, b, sizeof(b)), 0);
    assert_int_equal(stream_read(tc->o.s, b, sizeof(b)), 0);
    stream_reset(tc->o.s);
    assert_true(mock_reset_by_owner(tc->m));
    tc_close(tc);
    eddy_tls_free(tls);
}

/* The owner's close sends close_notify: at once when there is room; once
 * the bytes in flight went when there is not (the stream outlives the
 * owner's close until then); never after a reset; and within
 * TLS_CLOSE_NOTIFY_MS when room never comes. */
static void close_sends_close_notify(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_quiet(tls, &(client_opts){.max = max});
        owner_writes_the_end(tc);
        owner_closes(tc);
        assert_true(mock_closed(tc->m));
        client_saw_clean_end(tc, 7);
        tc_close(tc);
    }
    eddy_tls_free(tls);
}

static void close_notify_waits_for_room(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    owner_writes_the_end(tc);
    mock_block_writes(tc->m, true); /* as a send still in flight */
    owner_closes(tc);
    assert_int_equal(ERR_peek_error(), 0);
    assert_false(mock_closed(tc->m));
    server_turn(tc);
    assert_false(mock_closed(tc->m));
    mock_block_writes(tc->m, false);
    server_turn(tc);
    assert_true(mock_closed(tc->m));
    client_saw_clean_end(tc, 7);
    tc_close(tc);

    /* Room never comes: closed without it when the time is up. */
    tc = tc_quiet(tls, NULL);
    mock_block_writes(tc->m, true);
    owner_closes(tc);
    loop_advance(tc->loop, TLS_CLOSE_NOTIFY_MS - 1);
    assert_false(mock_closed(tc->m));
    loop_advance(tc->loop, 1);
    assert_true(mock_closed(tc->m));
    tc_close(tc);

    /* A reset while it waits ends it at once. */
    tc = tc_quiet(tls, NULL);
    mock_block_writes(tc->m, true);
    owner_closes(tc);
    mock_push_reset(tc->m);
    server_turn(tc);
    assert_true(mock_closed(tc->m));
    tc_close(tc);
    eddy_tls_free(tls);
}

static void reset_sends_no_close_notify(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    stream_reset(tc->o.s);
    owner_closes(tc);
    assert_true(mock_closed(tc->m));
    assert_true(mock_reset_by_owner(tc->m));
    size_t len;
    mock_output(tc->m, &len);
    assert_int_equal(len, 0); /* not one byte after the reset */
    tc_close(tc);
    eddy_tls_free(tls);
}

/* shutdown_write with no room: close_notify, then FIN, once room comes. */
static void shutdown_write_waits_for_room(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    tconn *tc = tc_quiet(tls, NULL);
    mock_block_writes(tc->m, true);
    stream_shutdown_write(tc->o.s);
    assert_false(mock_write_shut(tc->m));
    mock_block_writes(tc->m, false);
    server_turn(tc);
    assert_true(mock_write_shut(tc->m));
    client_saw_clean_end(tc, 0);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* ------------------------------------------------ versions and ALPN -- */

/* The handshake failed on both sides; the owner read an error. */
static void refused(tconn *tc)
{
    assert_false(tc_handshake(tc));
    assert_true(tc->client_failed);
    ended(tc, -EPROTO);
}

static void old_versions_refused(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int v = TLS1_VERSION; v <= TLS1_1_VERSION; v++) {
        tconn *tc = tc_open(tls, &(client_opts){.min = v, .max = v});
        refused(tc);
        tc_close(tc);
    }
    eddy_tls_free(tls);
    /* --tls-min 1.3 */
    tls = tls_ec(13);
    tconn *tc = tc_open(tls, &(client_opts){.max = TLS1_2_VERSION});
    refused(tc);
    tc_close(tc);
    tc = tc_open(tls, NULL);
    assert_true(tc_handshake(tc));
    assert_int_equal(SSL_version(tc->cl), TLS1_3_VERSION);
    tc_close(tc);
    eddy_tls_free(tls);
}

/* The protocol the client's handshake ended with ("" for none). */
static void selected(tconn *tc, const char *want)
{
    const unsigned char *sel;
    unsigned sel_len;
    SSL_get0_alpn_selected(tc->cl, &sel, &sel_len);
    assert_int_equal(sel_len, strlen(want));
    assert_memory_equal(sel, want, sel_len);
}

static void alpn(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    /* Nothing eddy speaks: no_application_protocol. */
    tconn *tc = tc_open(tls, &(client_opts){.alpn = "\x02h3"});
    refused(tc);
    tc_close(tc);
    /* h2 whenever offered, in either order; else http/1.1. */
    static const struct { const char *offer, *want; } cases[] = {
        {"\x02h2\x08http/1.1", "h2"}, {"\x08http/1.1\x02h2", "h2"}, {"\x02h2", "h2"},
        {"\x08http/1.1", "http/1.1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
            tc = tc_open(tls, &(client_opts){.max = max, .alpn = cases[i].offer});
            assert_true(tc_handshake(tc));
            selected(tc, cases[i].want);
            tc_close(tc);
        }
    }
    /* No ALPN at all: served, nothing selected. */
    tc = tc_open(tls, NULL);
    assert_true(tc_handshake(tc));
    selected(tc, "");
    tc_close(tc);
    eddy_tls_free(tls);
    /* HTTP/2 turned off: h2 alone is refused, h2 and http/1.1 gets http/1.1. */
    const char *certs[] = {at("ec.crt")}, *keys[] = {at("ec.key")};
    eddy_tls_config cfg = {.certs = certs, .keys = keys, .npairs = 1, .no_http2 = true};
    char err[256] = "";
    assert_int_equal(eddy_tls_new(&cfg, &tls, err, sizeof(err)), 0);
    tc = tc_open(tls, &(client_opts){.alpn = "\x02h2"});
    refused(tc);
    tc_close(tc);
    tc = tc_open(tls, &(client_opts){.alpn = "\x02h2\x08http/1.1"});
    assert_true(tc_handshake(tc));
    selected(tc, "http/1.1");
    tc_close(tc);
    eddy_tls_free(tls);
}

/* ACME TLS-ALPN-01 (RFC 8737): a validation offering acme-tls/1 gets
 * the challenge certificate for its SNI name and that protocol, even
 * where another pair names the host; without a challenge for the name,
 * or without SNI, the handshake fails; other clients are served as
 * before while challenges are open. */
static void acme_tls_alpn_01(void **state)
{
    (void)state;
    const char *certs[] = {at("ec.crt"), at("wild.crt")}, *keys[] = {at("ec.key"), at("wild.key")};
    eddy_tls *tls = tls_of(certs, keys, 2, 0);
    acme_challenges *c = tls_challenges_hold(tls);
    assert_int_equal(acme_alpn01_add(c, "a.example.test", "tok.thumb"), 0);
    unsigned char digest[32];
    assert_true(EVP_Digest("tok.thumb", 9, digest, NULL, EVP_sha256(), NULL));
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max, .sni = "A.example.test",
                                                .alpn = "\x0a" "acme-tls/1"});
        assert_true(tc_handshake(tc));
        selected(tc, "acme-tls/1");
        assert_true(stream_alpn_is(tc->o.s, "acme-tls/1", 10));
        X509 *peer = SSL_get1_peer_certificate(tc->cl);
        assert_non_null(peer);
        int at_ext = X509_get_ext_by_OBJ(peer, oid, -1);
        assert_true(at_ext >= 0);
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509_get_ext(peer, at_ext));
        assert_int_equal(ASN1_STRING_length(v), 34);
        assert_memory_equal(ASN1_STRING_get0_data(v) + 2, digest, 32);
        X509_free(peer);
        tc_close(tc);
        /* No challenge for the name, or no name: refused. */
        tc = tc_open(tls, &(client_opts){.max = max, .sni = "other.test", .alpn = "\x0a" "acme-tls/1"});
        refused(tc);
        tc_close(tc);
        tc = tc_open(tls, &(client_opts){.max = max, .alpn = "\x0a" "acme-tls/1"});
        refused(tc);
        tc_close(tc);
        /* A browser meanwhile: the pair for its name, and h2. */
        tc = tc_open(tls, &(client_opts){.max = max, .sni = "a.example.test", .alpn = "\x02h2"});
        assert_true(tc_handshake(tc));
        selected(tc, "h2");
        assert_true(peer_is(tc, x_wild));
        tc_close(tc);
    }
    /* Challenges no longer answered: acme-tls/1 is not a protocol eddy speaks. */
    tls_challenges_drop(tls);
    tconn *tc = tc_open(tls, &(client_opts){.sni = "a.example.test", .alpn = "\x0a" "acme-tls/1"});
    refused(tc);
    tc_close(tc);
    ASN1_OBJECT_free(oid);
    eddy_tls_free(tls);
}

/* -------------------------------------------------------------- SNI -- */

static void sni_picks_the_pair(void **state)
{
    (void)state;
    const char *certs[] = {at("ec.crt"), at("wild.crt")}, *keys[] = {at("ec.key"), at("wild.key")};
    eddy_tls *tls = tls_of(certs, keys, 2, 0);
    struct {
        const char *sni;
        X509 **want;
    } cases[] = {
        {"a.example.test", &x_wild}, {"A.Example.TEST", &x_wild}, {"localhost", &x_ec},
        {"other.test", &x_ec},       {NULL, &x_ec},               {"a.b.example.test", &x_ec},
        {"example.test", &x_ec},
    };
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            tconn *tc = tc_open(tls, &(client_opts){.max = max, .sni = cases[i].sni});
            assert_true(tc_handshake(tc));
            if (!peer_is(tc, *cases[i].want))
                fail_msg("SNI %s, TLS %x: not the expected certificate", cases[i].sni, max);
            client_send(tc, "x", 1);
            assert_int_equal(tc->o.got_len, 1);
            tc_close(tc);
        }
    }
    eddy_tls_free(tls);
}

/* ------------------------------------------------------- resumption -- */

static const unsigned char *ticket_of(SSL_SESSION *s, size_t *len)
{
    const unsigned char *t;
    SSL_SESSION_get0_ticket(s, &t, len);
    return t;
}

/* A handshake (resuming `resume` when not NULL), then the client's
 * session: *fresh tells whether its ticket is another than resume's (the
 * client reads once, so a TLS 1.3 ticket, which follows the handshake, is
 * taken). */
static SSL_SESSION *session_from(eddy_tls *tls, int max, const char *sni, SSL_SESSION *resume,
                                 bool *reused, bool *fresh)
{
    /* A copy of resume, as OpenSSL's client uses a TLS 1.3 session once
     * it has a newer one: the test resumes the same ticket again. */
    SSL_SESSION *copy = NULL;
    if (resume) {
        unsigned char der[4096], *p = der;
        const unsigned char *q = der;
        int n = i2d_SSL_SESSION(resume, NULL);
        assert_true(n > 0 && n <= (int)sizeof(der));
        assert_int_equal(i2d_SSL_SESSION(resume, &p), n);
        copy = d2i_SSL_SESSION(NULL, &q, n);
        assert_non_null(copy);
    }
    tconn *tc = tc_open(tls, &(client_opts){.max = max, .sni = sni, .session = copy});
    SSL_SESSION_free(copy);
    assert_true(tc_handshake(tc));
    client_send(tc, "x", 1);
    assert_int_equal(SSL_version(tc->cl), max);
    *reused = SSL_session_reused(tc->cl);
    if (!*reused)
        assert_int_equal(tc->tickets, 1); /* one ticket, as configured */
    SSL_SESSION *s = SSL_get1_session(tc->cl);
    assert_non_null(s);
    assert_true(SSL_SESSION_is_resumable(s));
    size_t l1 = 0, l2;
    const unsigned char *t1 = resume ? ticket_of(resume, &l1) : NULL, *t2 = ticket_of(s, &l2);
    assert_true(l2 > 16);
    *fresh = l1 != l2 || memcmp(t1, t2, l1) != 0;
    /* A clean end: OpenSSL makes the session of a connection freed
     * without close_notify unfit to resume. */
    assert_true(SSL_shutdown(tc->cl) >= 0);
    client_error(tc);
    tc_pump(tc);
    ended(tc, 0);
    tc_close(tc);
    return s;
}

static void resumption_across_rotations(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        bool reused, fresh;
        SSL_SESSION *first = session_from(tls, max, NULL, NULL, &reused, &fresh);
        assert_false(reused);
        /* Resumes on another stream. */
        SSL_SESSION *s = session_from(tls, max, NULL, first, &reused, &fresh);
        assert_true(reused);
        /* A TLS 1.3 resumption brings a fresh ticket (a client uses each
         * once), which resumes in turn; TLS 1.2 keeps the same. */
        assert_true(fresh == (max == TLS1_3_VERSION));
        SSL_SESSION *next = session_from(tls, max, NULL, s, &reused, &fresh);
        assert_true(reused);
        SSL_SESSION_free(next);
        SSL_SESSION_free(s);
        /* One rotation: the ticket is still taken, and a fresh one, under
         * the new key, comes back. */
        assert_int_equal(tls_tickets_rotate(&tls->tickets), 0);
        SSL_SESSION *renewed = session_from(tls, max, NULL, first, &reused, &fresh);
        assert_true(reused);
        assert_true(fresh);
        size_t l;
        unsigned char name[16];
        memcpy(name, ticket_of(first, &l), 16);
        assert_memory_not_equal(ticket_of(renewed, &l), name, 16); /* another key's */
        /* Two: the first ticket is refused (a full handshake, which
         * works); the renewed one still resumes. */
        assert_int_equal(tls_tickets_rotate(&tls->tickets), 0);
        s = session_from(tls, max, NULL, first, &reused, &fresh);
        assert_false(reused);
        SSL_SESSION_free(s);
        s = session_from(tls, max, NULL, renewed, &reused, &fresh);
        assert_true(reused);
        SSL_SESSION_free(s);
        SSL_SESSION_free(first);
        SSL_SESSION_free(renewed);
    }
    eddy_tls_free(tls);
}

/* The ticket keys' clock, for rotation by age. */
static uint64_t fake_sec;
static uint64_t fake_now(void) { return fake_sec; }

static void tickets_rotate_by_age(void **state)
{
    (void)state;
    eddy_tls *tls = tls_ec(0);
    fake_sec = 1000000;
    tls->tickets.now = fake_now;
    assert_int_equal(tls_tickets_rotate(&tls->tickets), 0);
    assert_int_equal(tls_tickets_rotate(&tls->tickets), 0);
    bool reused, fresh;
    SSL_SESSION *first = session_from(tls, TLS1_2_VERSION, NULL, NULL, &reused, &fresh);
    /* Within the period: the same key, the same ticket (TLS 1.2 renews
     * only when asked to). */
    fake_sec += TLS_TICKET_ROTATE_S - 1;
    SSL_SESSION *s = session_from(tls, TLS1_2_VERSION, NULL, first, &reused, &fresh);
    assert_true(reused);
    assert_false(fresh);
    SSL_SESSION_free(s);
    /* A period on: a new key, the ticket taken and replaced. */
    fake_sec += 1;
    SSL_SESSION *renewed = session_from(tls, TLS1_2_VERSION, NULL, first, &reused, &fresh);
    assert_true(reused);
    assert_true(fresh);
    /* Another period: the first key is gone, the renewed ticket's stays. */
    fake_sec += TLS_TICKET_ROTATE_S;
    s = session_from(tls, TLS1_2_VERSION, NULL, first, &reused, &fresh);
    assert_false(reused);
    SSL_SESSION_free(s);
    s = session_from(tls, TLS1_2_VERSION, NULL, renewed, &reused, &fresh);
    assert_true(reused);
    SSL_SESSION_free(s);
    SSL_SESSION_free(first);
    SSL_SESSION_free(renewed);
    /* Idle two periods and more: a ticket from before is older than the
     * one to two periods a ticket lives, whatever key it names. */
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        SSL_SESSION *old = session_from(tls, max, NULL, NULL, &reused, &fresh);
        fake_sec += 2 * TLS_TICKET_ROTATE_S + 5;
        s = session_from(tls, max, NULL, old, &reused, &fresh);
        assert_false(reused);
        SSL_SESSION_free(s);
        SSL_SESSION_free(old);
    }
    eddy_tls_free(tls);
}

/* A session resumes under SNI too: the ticket of the second pair. */
static void resumption_with_sni(void **state)
{
    (void)state;
    const char *certs[] = {at("ec.crt"), at("wild.crt")}, *keys[] = {at("ec.key"), at("wild.key")};
    eddy_tls *tls = tls_of(certs, keys, 2, 0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        bool reused, fresh;
        SSL_SESSION *first = session_from(tls, max, "a.example.test", NULL, &reused, &fresh);
        SSL_SESSION *s = session_from(tls, max, "a.example.test", first, &reused, &fresh);
        assert_true(reused);
        SSL_SESSION_free(s);
        SSL_SESSION_free(first);
    }
    eddy_tls_free(tls);
}

/* ----------------------------------------------------------- reload -- */

static void reload_keeps_open_streams(void **state)
{
    (void)state;
    copy_file(at("ec.crt"), at("live.crt"));
    copy_file(at("ec.key"), at("live.key"));
    const char *certs[] = {at("live.crt")}, *keys[] = {at("live.key")};
    eddy_tls *tls = tls_of(certs, keys, 1, 0);
    tconn *before = tc_open(tls, NULL);
    assert_true(tc_handshake(before));
    tconn *unstarted = tc_open(tls, NULL); /* opened, no byte yet */
    copy_file(at("alt.crt"), at("live.crt"));
    copy_file(at("alt.key"), at("live.key"));
    char err[256] = "";
    assert_int_equal(eddy_tls_reload(tls, err, sizeof(err)), 0);
    assert_int_equal(ERR_peek_error(), 0);
    /* The stream from before goes on both ways. */
    client_send(before, "still", 5);
    assert_memory_equal(before->o.got, "still", 5);
    struct iovec iov = {"here", 4};
    assert_int_equal(stream_writev(before->o.s, &iov, 1, false), 4);
    tc_pump(before);
    assert_memory_equal(before->rx, "here", 4);
    /* One opened before handshakes with what it began with. */
    assert_true(tc_handshake(unstarted));
    assert_true(peer_is(unstarted, x_ec));
    /* A new one gets the new certificate. */
    tconn *after = tc_open(tls, NULL);
    assert_true(tc_handshake(after));
    assert_true(peer_is(after, x_alt));
    tc_close(after);
    /* A reload from a bad file fails, says which, and the pair in use
     * keeps serving. */
    write_text(at("live.crt"), "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    assert_int_equal(eddy_tls_reload(tls, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, at("live.crt")));
    assert_int_equal(ERR_peek_error(), 0);
    copy_file(at("ec.crt"), at("live.crt")); /* alt's key: not its certificate */
    assert_int_equal(eddy_tls_reload(tls, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, at("live.key")));
    assert_int_equal(ERR_peek_error(), 0);
    after = tc_open(tls, NULL);
    assert_true(tc_handshake(after));
    assert_true(peer_is(after, x_alt));
    tc_close(after);
    /* The owner lets go while streams are open: they go on, and what
     * they hold goes with the last of them. */
    eddy_tls_free(tls);
    client_send(before, "end", 3);
    assert_memory_equal(before->o.got + 5, "end", 3);
    tc_close(before);
    client_send(unstarted, "end", 3);
    assert_memory_equal(unstarted->o.got, "end", 3);
    tc_close(unstarted);
}

/* ------------------------------------------------ eddy_tls_new errors -- */

static void new_fails(const char *cert, const char *key, const char *names, unsigned pair_at)
{
    const char *certs[2] = {at("ec.crt"), at("ec.crt")}, *keys[2] = {at("ec.key"), at("ec.key")};
    certs[pair_at] = cert;
    keys[pair_at] = key;
    eddy_tls_config cfg = {.certs = certs, .keys = keys, .npairs = pair_at + 1};
    eddy_tls *tls = NULL;
    char err[512] = "";
    int rc = eddy_tls_new(&cfg, &tls, err, sizeof(err));
    if (rc != -EINVAL || !strstr(err, names))
        fail_msg("%s / %s: %d '%s', wanted -EINVAL naming %s", cert, key, rc, err, names);
    assert_null(tls);
    assert_int_equal(ERR_peek_error(), 0);
}

static void new_reports_bad_files(void **state)
{
    (void)state;
    char missing[192];
    snprintf(missing, sizeof(missing), "%s", at("missing.crt"));
    for (unsigned i = 0; i < 2; i++) {
        new_fails(missing, at("ec.key"), missing, i);
        new_fails(at("ec.crt"), at("missing.key"), at("missing.key"), i);
        new_fails(at("garbage.pem"), at("ec.key"), at("garbage.pem"), i);
        new_fails(at("ec.crt"), at("garbage.pem"), at("garbage.pem"), i);
        new_fails(at("ec.key"), at("ec.key"), at("ec.key"), i); /* a key for a certificate */
        new_fails(at("ec.crt"), at("ec.crt"), at("ec.crt"), i); /* a certificate for a key */
        new_fails(at("ec.crt"), at("other.key"), at("other.key"), i);
        new_fails(at("ec.crt"), at("rsa-other.key"), at("rsa-other.key"), i);
        new_fails(at("wild.crt"), at("ec.key"), at("ec.key"), i);
        new_fails(at("expired.crt"), at("ec.key"), at("expired.crt"), i);
        new_fails(at("future.crt"), at("ec.key"), at("future.crt"), i);
    }
    /* A mismatched key is called that, not "not a key". */
    const char *certs[] = {at("ec.crt")}, *keys[] = {at("other.key")};
    eddy_tls_config cfg = {.certs = certs, .keys = keys, .npairs = 1};
    eddy_tls *tls = NULL;
    char err[512];
    assert_int_equal(eddy_tls_new(&cfg, &tls, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not belong"));
    /* Settings. */
    cfg.keys = (const char *const[]){at("ec.key")};
    cfg.min_version = 11;
    assert_int_equal(eddy_tls_new(&cfg, &tls, err, sizeof(err)), -EINVAL);
    cfg.min_version = 0;
    cfg.npairs = 1;
    cfg.certs = NULL;
    assert_int_equal(eddy_tls_new(&cfg, &tls, err, sizeof(err)), -EINVAL);
    assert_int_equal(ERR_peek_error(), 0);
}

/* No pair yet (ACME's first certificate still to come): every handshake
 * fails with unrecognized_name, ACME validations still get theirs.  An
 * optional pair whose files are missing is no error, and is served once a
 * reload finds them; then SNI chooses among pairs as usual. */
static void pairs_that_come_later(void **state)
{
    (void)state;
    eddy_tls_config cfg = {0};
    eddy_tls *tls = NULL;
    char err[512] = "";
    assert_int_equal(eddy_tls_new(&cfg, &tls, err, sizeof(err)), 0);
    for (int max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
        tconn *tc = tc_open(tls, &(client_opts){.max = max, .sni = "a.example.test"});
        refused(tc);
        assert_int_equal(ERR_GET_REASON(tc->client_err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
        tc_close(tc);
    }
    acme_challenges *c = tls_challenges_hold(tls);
    assert_int_equal(acme_alpn01_add(c, "a.example.test", "k"), 0);
    tconn *tc = tc_open(tls, &(client_opts){.sni = "a.example.test", .alpn = "\x0a" "acme-tls/1"});
    assert_true(tc_handshake(tc));
    selected(tc, "acme-tls/1");
    tc_close(tc);
    /* The ACME pair, not there yet: taken, and still nothing to serve. */
    unlink(at("later.crt"));
    unlink(at("later.key"));
    assert_int_equal(tls_add_pair(tls, at("later.crt"), at("later.key"), true, err, sizeof(err)), 0);
    tc = tc_open(tls, &(client_opts){.sni = "a.example.test"});
    refused(tc);
    tc_close(tc);
    /* A required pair that is missing is an error, and is not kept. */
    assert_int_equal(tls_add_pair(tls, at("none.crt"), at("none.key"), false, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "none.crt"));
    /* The files arrive; a reload serves them. */
    copy_file(at("wild.crt"), at("later.crt"));
    copy_file(at("wild.key"), at("later.key"));
    assert_int_equal(eddy_tls_reload(tls, err, sizeof(err)), 0);
    tc = tc_open(tls, &(client_opts){.sni = "a.example.test"});
    assert_true(tc_handshake(tc));
    assert_true(peer_is(tc, x_wild));
    tc_close(tc);
    /* A second pair: SNI picks, the first answers the rest. */
    assert_int_equal(tls_add_pair(tls, at("ec.crt"), at("ec.key"), false, err, sizeof(err)), 0);
    tc = tc_open(tls, &(client_opts){.sni = "localhost"});
    assert_true(tc_handshake(tc));
    assert_true(peer_is(tc, x_ec));
    tc_close(tc);
    tc = tc_open(tls, &(client_opts){.sni = "b.example.test"});
    assert_true(tc_handshake(tc));
    assert_true(peer_is(tc, x_wild));
    tc_close(tc);
    tls_challenges_drop(tls);
    eddy_tls_free(tls);
    assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls13_handshake_then_data),
        cmocka_unit_test(tls12_handshake_then_data),
        cmocka_unit_test(client_hello_one_byte_a_turn),
        cmocka_unit_test(writes_short_and_blocked_arrive_whole),
        cmocka_unit_test(many_small_pieces_under_pressure),
        cmocka_unit_test(sendfile_under_pressure),
        cmocka_unit_test(sendfile_sends_records_together),
        cmocka_unit_test(writev_sends_records_together),
        cmocka_unit_test(push_sends_held_records),
        cmocka_unit_test(garbage_instead_of_a_hello),
        cmocka_unit_test(bad_record_after_good_ones),
        cmocka_unit_test(sslv3_and_sslv2_hellos_refused),
        cmocka_unit_test(reset_mid_handshake),
        cmocka_unit_test(close_sends_close_notify),
        cmocka_unit_test(close_notify_waits_for_room),
        cmocka_unit_test(reset_sends_no_close_notify),
        cmocka_unit_test(shutdown_write_waits_for_room),
        cmocka_unit_test(eof_mid_handshake),
        cmocka_unit_test(eof_after_handshake_reads_zero),
        cmocka_unit_test(shutdown_write_sends_close_notify),
        cmocka_unit_test(old_versions_refused),
        cmocka_unit_test(alpn),
        cmocka_unit_test(acme_tls_alpn_01),
        cmocka_unit_test(pairs_that_come_later),
        cmocka_unit_test(sni_picks_the_pair),
        cmocka_unit_test(resumption_across_rotations),
        cmocka_unit_test(tickets_rotate_by_age),
        cmocka_unit_test(resumption_with_sni),
        cmocka_unit_test(reload_keeps_open_streams),
        cmocka_unit_test(new_reports_bad_files),
    };
    return cmocka_run_group_tests_name("tls", tests, make_certs, remove_certs);
}
