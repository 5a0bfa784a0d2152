/* What the ACME client signs: base64url, keys and their PEM, the JWK and
 * its thumbprint, JWS requests (checked by verifying them with OpenSSL
 * after turning the raw signature back into DER), key authorizations and
 * CSRs (parsed back and verified). */
#include "harness.h"
#include "acme/jws.h"

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* base64url back to bytes (malloc'd, *len), or NULL when it is not. */
static unsigned char *unb64url(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *std = malloc(n + 4);
    assert_non_null(std);
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i] != '+' && s[i] != '/' && s[i] != '=');
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    }
    size_t pad = (4 - n % 4) % 4;
    assert_true(pad < 3);
    memset(std + n, '=', pad);
    std[n + pad] = 0;
    unsigned char *out = malloc(n + 4);
    assert_non_null(out);
    int got = EVP_DecodeBlock(out, (unsigned char *)std, (int)(n + pad));
    free(std);
    assert_true(got >= 0);
    *len = (size_t)got - pad;
    return out;
}

static void b64url_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } v[] = {{"", 0, ""},           {"f", 1, "Zg"},          {"fo", 2, "Zm8"},
             {"foo", 3, "Zm9v"},    {"foob", 4, "Zm9vYg"},   {"\xfb\xff", 2, "-_8"},
             {"\xfb\xef\xbe", 3, "----"}, {"\xff\xff\xff", 3, "____"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *got = acme_b64url(v[i].in, v[i].len);
        assert_string_equal(got, v[i].out);
        free(got);
    }
}

static void key_pem_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *key = acme_key_new();
    assert_non_null(key);
    size_t len;
    char *pem = acme_key_pem(key, &len);
    assert_non_null(pem);
    assert_int_equal(strlen(pem), len);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    EVP_PKEY *back = acme_key_from_pem(pem, len);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    char *a = acme_jwk(key), *b = acme_jwk(back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(pem);
    EVP_PKEY_free(back);
    EVP_PKEY_free(key);
    /* Not P-256: refused. */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);
    pem = acme_key_pem(rsa, &len);
    assert_null(acme_key_from_pem(pem, len));
    free(pem);
    EVP_PKEY_free(rsa);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    pem = acme_key_pem(p384, &len);
    assert_null(acme_key_from_pem(pem, len));
    free(pem);
    EVP_PKEY_free(p384);
    assert_null(acme_key_from_pem("garbage", 7));
}

/* The JWK has exactly RFC 7638's members in its order, no spaces, and
 * its x and y are the key's point. */
static void jwk_and_thumbprint(void **state)
{
    (void)state;
    EVP_PKEY *key = acme_key_new();
    char *jwk = acme_jwk(key);
    assert_non_null(jwk);
    static const char head[] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"";
    assert_memory_equal(jwk, head, sizeof(head) - 1);
    assert_null(strchr(jwk, ' '));
    json_error_t err;
    json_t *j = json_loads(jwk, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    unsigned char point[65];
    size_t plen;
    assert_true(EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", point, sizeof(point), &plen));
    assert_int_equal(plen, 65);
    size_t xl, yl;
    unsigned char *x = unb64url(json_string_value(json_object_get(j, "x")), &xl);
    unsigned char *y = unb64url(json_string_value(json_object_get(j, "y")), &yl);
    assert_int_equal(xl, 32);
    assert_int_equal(yl, 32);
    assert_memory_equal(x, point + 1, 32);
    assert_memory_equal(y, point + 33, 32);
    /* The thumbprint: SHA-256 of exactly that text. */
    unsigned char digest[32];
    assert_true(EVP_Q_digest(NULL, "SHA256", NULL, jwk, strlen(jwk), digest, NULL));
    char *want = acme_b64url(digest, 32);
    char *thumb = acme_thumbprint(key);
    assert_string_equal(thumb, want);
    assert_int_equal(strlen(thumb), 43);
    char *ka = acme_key_authorization("tok-EN_1", key);
    assert_memory_equal(ka, "tok-EN_1.", 9);
    assert_string_equal(ka + 9, thumb);
    free(ka);
    free(thumb);
    free(want);
    free(x);
    free(y);
    json_decref(j);
    free(jwk);
    EVP_PKEY_free(key);
}

/* Verifies a flattened JWS made by acme_jws with key; returns its
 * protected header (parsed) and payload (decoded, NUL-terminated). */
static json_t *verify_jws(const char *text, EVP_PKEY *key, char **payload)
{
    json_error_t err;
    json_t *jws = json_loads(text, 0, &err);
    assert_non_null(jws);
    assert_int_equal(json_object_size(jws), 3);
    const char *prot = json_string_value(json_object_get(jws, "protected"));
    const char *pay = json_string_value(json_object_get(jws, "payload"));
    const char *sig = json_string_value(json_object_get(jws, "signature"));
    assert_non_null(prot);
    assert_non_null(pay);
    assert_non_null(sig);
    size_t slen;
    unsigned char *raw = unb64url(sig, &slen);
    assert_int_equal(slen, 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    assert_true(ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)));
    unsigned char *der = NULL;
    int dlen = i2d_ECDSA_SIG(es, &der);
    assert_true(dlen > 0);
    size_t ilen = strlen(prot) + 1 + strlen(pay);
    char *input = malloc(ilen + 1);
    snprintf(input, ilen + 1, "%s.%s", prot, pay);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)dlen, (unsigned char *)input, ilen), 1);
    /* One bit off in what was signed: no longer verifies. */
    input[0] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)dlen, (unsigned char *)input, ilen), 1);
    EVP_MD_CTX_free(md);
    free(input);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    free(raw);
    size_t hl, pl;
    unsigned char *head = unb64url(prot, &hl);
    unsigned char *body = unb64url(pay, &pl);
    json_t *h = json_loadb((char *)head, hl, 0, &err);
    assert_non_null(h);
    *payload = malloc(pl + 1);
    memcpy(*payload, body, pl);
    (*payload)[pl] = 0;
    free(head);
    free(body);
    json_decref(jws);
    return h;
}

static void jws_with_kid_and_with_jwk(void **state)
{
    (void)state;
    EVP_PKEY *key = acme_key_new();
    /* Signatures are randomized: several, to meet short r or s (padding). */
    for (int i = 0; i < 40; i++) {
        char *text = acme_jws(key, "https://ca.test/acct/17", "n0nce-A", "https://ca.test/new-order",
                              "{\"identifiers\":[]}");
        assert_non_null(text);
        char *payload;
        json_t *h = verify_jws(text, key, &payload);
        assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(h, "nonce")), "n0nce-A");
        assert_string_equal(json_string_value(json_object_get(h, "url")), "https://ca.test/new-order");
        assert_string_equal(json_string_value(json_object_get(h, "kid")), "https://ca.test/acct/17");
        assert_null(json_object_get(h, "jwk"));
        assert_string_equal(payload, "{\"identifiers\":[]}");
        free(payload);
        json_decref(h);
        free(text);
    }
    /* A new account: the jwk instead of a kid; POST-as-GET: empty payload. */
    char *text = acme_jws(key, NULL, "n2", "https://ca.test/new-acct", NULL);
    char *payload;
    json_t *h = verify_jws(text, key, &payload);
    assert_null(json_object_get(h, "kid"));
    char *want = acme_jwk(key);
    char *got = json_dumps(json_object_get(h, "jwk"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, want);
    assert_string_equal(payload, "");
    free(got);
    free(want);
    free(payload);
    json_decref(h);
    free(text);
    EVP_PKEY_free(key);
}

static void csr_names_and_signature(void **state)
{
    (void)state;
    EVP_PKEY *key = acme_key_new();
    const char *names[] = {"example.test", "www.example.test", "*.img.example.test"};
    char *csr = acme_csr(key, names, 3);
    assert_non_null(csr);
    size_t len;
    unsigned char *der = unb64url(csr, &len);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, key), 1);
    char cn[64];
    assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "example.test");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    GENERAL_NAMES *sans = NULL;
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name)
            sans = X509V3_EXT_d2i(e);
    }
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 3);
    for (int i = 0; i < 3; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        assert_int_equal(g->type, GEN_DNS);
        assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), names[i]);
    }
    GENERAL_NAMES_free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    /* Another key did not sign it. */
    EVP_PKEY *other = acme_key_new();
    assert_int_not_equal(X509_REQ_verify(req, other), 1);
    EVP_PKEY_free(other);
    X509_REQ_free(req);
    free(der);
    free(csr);
    assert_null(acme_csr(key, names, 0));
    /* A first name longer than a CN may be: no CN, the SAN still. */
    const char *longname[] = {"a-very-long-label-that-goes-on-and-on.another-long-label.example.test"};
    csr = acme_csr(key, longname, 1);
    assert_non_null(csr);
    der = unb64url(csr, &len);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, key), 1);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    X509_REQ_free(req);
    free(der);
    free(csr);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b64url_vectors),
        cmocka_unit_test(key_pem_round_trip),
        cmocka_unit_test(jwk_and_thumbprint),
        cmocka_unit_test(jws_with_kid_and_with_jwk),
        cmocka_unit_test(csr_names_and_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
