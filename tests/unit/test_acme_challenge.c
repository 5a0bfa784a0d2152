/* The challenges the ACME client opens for the CA: HTTP-01 tokens (the
 * store, and the handler answering them through a server), TLS-ALPN-01
 * certificates (their acmeIdentifier and name checked by parsing them
 * back), and lookups from one thread while another adds and removes. */
#include "harness.h"
#include "acme/challenge.h"
#include "acme/jws.h"

#include <errno.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void http01_store(void **state)
{
    (void)state;
    acme_challenges *c = acme_challenges_new();
    assert_non_null(c);
    char buf[128];
    assert_int_equal(acme_http01_add(c, "tok_A-1", "tok_A-1.thumb"), 0);
    assert_int_equal(acme_http01_lookup(c, "tok_A-1", 7, buf, sizeof(buf)), 13);
    assert_string_equal(buf, "tok_A-1.thumb");
    /* Tokens are case-sensitive, and a prefix is not the token. */
    assert_int_equal(acme_http01_lookup(c, "TOK_A-1", 7, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(acme_http01_lookup(c, "tok_A-", 6, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(acme_http01_lookup(c, "tok_A-1", 7, buf, 13), -ENOSPC);
    /* Added again: replaced. */
    assert_int_equal(acme_http01_add(c, "tok_A-1", "second"), 0);
    assert_int_equal(acme_http01_lookup(c, "tok_A-1", 7, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "second");
    acme_http01_remove(c, "tok_A-1");
    assert_int_equal(acme_http01_lookup(c, "tok_A-1", 7, buf, sizeof(buf)), -ENOENT);
    acme_http01_remove(c, "never-added");
    /* Not base64url: refused. */
    assert_int_equal(acme_http01_add(c, "", "x"), -EINVAL);
    assert_int_equal(acme_http01_add(c, "a/b", "x"), -EINVAL);
    assert_int_equal(acme_http01_add(c, "a.b", "x"), -EINVAL);
    assert_int_equal(acme_http01_add(c, "a=", "x"), -EINVAL);
    /* Full, then room again after a removal. */
    char token[16];
    for (int i = 0; i < ACME_CHALLENGES_MAX; i++) {
        snprintf(token, sizeof(token), "t%d", i);
        assert_int_equal(acme_http01_add(c, token, token), 0);
    }
    assert_int_equal(acme_http01_add(c, "one-more", "x"), -ENOSPC);
    acme_http01_remove(c, "t7");
    assert_int_equal(acme_http01_add(c, "one-more", "x"), 0);
    assert_int_equal(acme_http01_lookup(c, "t63", 3, buf, sizeof(buf)), 3);
    acme_challenges_free(c);
}

static void http01_answered_by_the_server(void **state)
{
    (void)state;
    fixture *fx = fx_new(NULL);
    acme_challenges *c = acme_challenges_new();
    eddy_route r = {.path = "/.well-known/acme-challenge", .prefix = true, .methods = "GET",
                    .handler = acme_http01_handler, .data = c};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    assert_int_equal(acme_http01_add(c, "Tok3n_x", "Tok3n_x.Thumbprint"), 0);
    bool closed;
    char *out = fx_exchange(fx, "GET /.well-known/acme-challenge/Tok3n_x HTTP/1.1\r\nHost: a.test\r\n\r\n",
                            &closed);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/octet-stream\r\n"));
    assert_non_null(strstr(out, "Content-Length: 18\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nTok3n_x.Thumbprint"));
    free(out);
    /* Unknown, removed, not a token, nothing after the prefix: 404. */
    const char *misses[] = {"/.well-known/acme-challenge/other", "/.well-known/acme-challenge/",
                            "/.well-known/acme-challenge/Tok3n_x/x",
                            "/.well-known/acme-challenge/Tok3n%21", "/.well-known/acme-challenge"};
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n", misses[i]);
        out = fx_exchange(fx, req, &closed);
        assert_non_null(strstr(out, "HTTP/1.1 404 "));
        free(out);
    }
    acme_http01_remove(c, "Tok3n_x");
    out = fx_exchange(fx, "GET /.well-known/acme-challenge/Tok3n_x HTTP/1.1\r\nHost: a.test\r\n\r\n",
                      &closed);
    assert_non_null(strstr(out, "HTTP/1.1 404 "));
    free(out);
    /* Only GET (and HEAD). */
    out = fx_exchange(fx, "POST /.well-known/acme-challenge/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                      &closed);
    assert_non_null(strstr(out, "HTTP/1.1 405 "));
    free(out);
    fx_free(fx);
    acme_challenges_free(c);
}

/* The certificate's acmeIdentifier: critical, DER OCTET STRING of
 * SHA-256(key authorization); one SAN, the name; self-signed by key. */
static void alpn_cert_contents(void **state)
{
    (void)state;
    EVP_PKEY *key = acme_key_new();
    X509 *x = acme_alpn_cert("Www.Example.test", "tok.thumb", key);
    assert_non_null(x);
    assert_int_equal(X509_verify(x, key), 1);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int at = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(at >= 0);
    X509_EXTENSION *ext = X509_get_ext(x, at);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    unsigned char digest[32];
    assert_true(EVP_Digest("tok.thumb", 9, digest, NULL, EVP_sha256(), NULL));
    assert_int_equal(ASN1_STRING_length(v), 34);
    const unsigned char *d = ASN1_STRING_get0_data(v);
    assert_int_equal(d[0], 0x04); /* OCTET STRING */
    assert_int_equal(d[1], 32);
    assert_memory_equal(d + 2, digest, 32);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, 0);
    assert_int_equal(g->type, GEN_DNS);
    assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), "Www.Example.test");
    GENERAL_NAMES_free(sans);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    /* Names it does not make certificates for. */
    const char *bad[] = {"", "*.example.test", "a..b", "-a.test", "a-.test", "a b.test", "a/b",
                         "x.test.", "é.test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(acme_alpn_cert(bad[i], "k", key));
    char longlabel[80];
    memset(longlabel, 'a', 64);
    strcpy(longlabel + 64, ".test");
    assert_null(acme_alpn_cert(longlabel, "k", key));
    /* 69 bytes: too long for a CN, so the subject is empty and the SAN
     * critical. */
    longlabel[1] = '.';
    assert_non_null(x = acme_alpn_cert(longlabel, "k", key));
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    int crit = 0;
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    assert_int_equal(crit, 1);
    GENERAL_NAMES_free(sans);
    assert_int_equal(X509_check_host(x, longlabel, 0, 0, NULL), 1);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void alpn01_store(void **state)
{
    (void)state;
    acme_challenges *c = acme_challenges_new();
    X509 *cert;
    EVP_PKEY *key;
    assert_int_equal(acme_alpn01_lookup(c, "a.test", &cert, &key), -ENOENT);
    assert_int_equal(acme_alpn01_add(c, "a.test", "ka"), 0);
    assert_int_equal(acme_alpn01_add(c, "*.a.test", "ka"), -EINVAL);
    /* Case-insensitive, like DNS. */
    assert_int_equal(acme_alpn01_lookup(c, "A.TEST", &cert, &key), 0);
    assert_int_equal(X509_verify(cert, key), 1);
    assert_int_equal(X509_check_host(cert, "a.test", 0, 0, NULL), 1);
    /* The caller's references outlive the challenge. */
    acme_alpn01_remove(c, "a.test");
    X509 *cert2;
    EVP_PKEY *key2;
    assert_int_equal(acme_alpn01_lookup(c, "a.test", &cert2, &key2), -ENOENT);
    assert_int_equal(X509_check_host(cert, "a.test", 0, 0, NULL), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    /* HTTP-01 and TLS-ALPN-01 entries do not answer for each other. */
    assert_int_equal(acme_http01_add(c, "b", "kb"), 0);
    char buf[16];
    assert_int_equal(acme_alpn01_lookup(c, "b", &cert, &key), -ENOENT);
    assert_int_equal(acme_alpn01_add(c, "c.test", "kc"), 0);
    assert_int_equal(acme_http01_lookup(c, "c.test", 6, buf, sizeof(buf)), -ENOENT);
    acme_challenges_free(c); /* frees what is still open */
}

/* Workers look while the client's thread adds and removes. */
static atomic_bool stop_churn;

static void *churn(void *data)
{
    acme_challenges *c = data;
    while (!atomic_load(&stop_churn)) {
        acme_http01_add(c, "tok", "tok.value");
        acme_http01_remove(c, "tok");
    }
    return NULL;
}

static void lookups_while_another_thread_changes(void **state)
{
    (void)state;
    acme_challenges *c = acme_challenges_new();
    atomic_store(&stop_churn, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn, c), 0);
    int found = 0;
    for (int i = 0; i < 20000; i++) {
        char buf[32];
        ssize_t n = acme_http01_lookup(c, "tok", 3, buf, sizeof(buf));
        if (n >= 0) {
            assert_string_equal(buf, "tok.value");
            found++;
        } else {
            assert_int_equal(n, -ENOENT);
        }
    }
    atomic_store(&stop_churn, true);
    pthread_join(t, NULL);
    acme_challenges_free(c);
    print_message("found %d of 20000\n", found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http01_store),
        cmocka_unit_test(http01_answered_by_the_server),
        cmocka_unit_test(alpn_cert_contents),
        cmocka_unit_test(alpn01_store),
        cmocka_unit_test(lookups_while_another_thread_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
