#include "acme/jws.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* P-256: a coordinate, and half of an ES256 signature (r or s). */
#define P256_BYTES 32

char *acme_b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

EVP_PKEY *acme_key_new(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }

static char *bio_text(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (out) {
        memcpy(out, data, (size_t)n);
        out[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return out;
}

char *acme_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
        out = bio_text(b, len);
    BIO_free(b);
    return out;
}

static bool is_p256(EVP_PKEY *key)
{
    char group[32];
    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          NULL) &&
           strcmp(group, "prime256v1") == 0;
}

EVP_PKEY *acme_key_from_pem(const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (key && !is_p256(key)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

/* The JWK as a jansson object: x and y from the uncompressed point. */
static json_t *jwk_object(EVP_PKEY *key)
{
    unsigned char point[1 + 2 * P256_BYTES];
    size_t n = 0;
    if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &n) ||
        n != sizeof(point) || point[0] != 0x04)
        return NULL;
    char *x = acme_b64url(point + 1, P256_BYTES);
    char *y = acme_b64url(point + 1 + P256_BYTES, P256_BYTES);
    json_t *jwk = x && y ? json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x,
                                     "y", y)
                         : NULL;
    free(x);
    free(y);
    return jwk;
}

/* Compact, members sorted: RFC 7638's form for these four members. */
static char *dump(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

char *acme_jwk(EVP_PKEY *key)
{
    json_t *jwk = jwk_object(key);
    char *out = dump(jwk);
    json_decref(jwk);
    return out;
}

char *acme_thumbprint(EVP_PKEY *key)
{
    char *jwk = acme_jwk(key);
    if (!jwk)
        return NULL;
    unsigned char digest[32];
    unsigned int dlen = 0;
    char *out = NULL;
    if (EVP_Digest(jwk, strlen(jwk), digest, &dlen, EVP_sha256(), NULL))
        out = acme_b64url(digest, dlen);
    free(jwk);
    return out;
}

char *acme_key_authorization(const char *token, EVP_PKEY *account)
{
    char *thumb = acme_thumbprint(account);
    if (!thumb)
        return NULL;
    size_t tlen = strlen(token), hlen = strlen(thumb);
    char *out = malloc(tlen + 1 + hlen + 1);
    if (out) {
        memcpy(out, token, tlen);
        out[tlen] = '.';
        memcpy(out + tlen + 1, thumb, hlen + 1);
    }
    free(thumb);
    return out;
}

/* ES256 over input: the raw r || s JWS wants (RFC 7518 §3.4), not the
 * DER that OpenSSL makes. */
static char *sign_es256(EVP_PKEY *key, const char *input)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dlen = sizeof(der);
    char *out = NULL;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, der, &dlen, (const unsigned char *)input, strlen(input)) == 1) {
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
        unsigned char raw[2 * P256_BYTES];
        if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, P256_BYTES) == P256_BYTES &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + P256_BYTES, P256_BYTES) == P256_BYTES)
            out = acme_b64url(raw, sizeof(raw));
        ECDSA_SIG_free(sig);
    }
    EVP_MD_CTX_free(md);
    return out;
}

char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload)
{
    json_t *head = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "url", url);
    if (head && kid)
        json_object_set_new(head, "kid", json_string(kid));
    else if (head)
        json_object_set_new(head, "jwk", jwk_object(key));
    char *head_text = dump(head);
    json_decref(head);
    char *protected_b64 = head_text ? acme_b64url(head_text, strlen(head_text)) : NULL;
    char *payload_b64 = acme_b64url(payload ? payload : "", payload ? strlen(payload) : 0);
    char *out = NULL;
    if (protected_b64 && payload_b64) {
        size_t plen = strlen(protected_b64), blen = strlen(payload_b64);
        char *input = malloc(plen + 1 + blen + 1);
        if (input) {
            memcpy(input, protected_b64, plen);
            input[plen] = '.';
            memcpy(input + plen + 1, payload_b64, blen + 1);
            char *sig = sign_es256(key, input);
            json_t *jws = sig ? json_pack("{s:s, s:s, s:s}", "protected", protected_b64, "payload",
                                          payload_b64, "signature", sig)
                              : NULL;
            out = dump(jws);
            json_decref(jws);
            free(sig);
            free(input);
        }
    }
    free(head_text);
    free(protected_b64);
    free(payload_b64);
    return out;
}

X509_EXTENSION *acme_san_extension(const char *const *names, size_t n, bool critical)
{
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    bool ok = sans != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        ok = g && dns && ASN1_STRING_set(dns, names[i], -1);
        if (ok) {
            GENERAL_NAME_set0_value(g, GEN_DNS, dns);
            ok = sk_GENERAL_NAME_push(sans, g) > 0;
            if (!ok)
                GENERAL_NAME_free(g);
        } else {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(g);
        }
    }
    X509_EXTENSION *ext = ok ? X509V3_EXT_i2d(NID_subject_alt_name, critical, sans) : NULL;
    GENERAL_NAMES_free(sans);
    return ext;
}

char *acme_csr(EVP_PKEY *key, const char *const *names, size_t n)
{
    if (n == 0)
        return NULL;
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subject = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    char *out = NULL;
    /* The CN is optional (the SANs name the certificate) and at most 64
     * bytes: a longer first name leaves the subject empty. */
    bool cn = strlen(names[0]) <= ACME_CN_MAX;
    bool ok = req && subject && exts && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
              (!cn || X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                                 (const unsigned char *)names[0], -1, -1, 0)) &&
              X509_REQ_set_subject_name(req, subject) && X509_REQ_set_pubkey(req, key);
    X509_EXTENSION *ext = ok ? acme_san_extension(names, n, false) : NULL;
    ok = ok && ext && sk_X509_EXTENSION_push(exts, ext) > 0;
    if (!ok)
        X509_EXTENSION_free(ext);
    ok = ok && X509_REQ_add_extensions(req, exts) && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    unsigned char *der = NULL;
    int dlen = ok ? i2d_X509_REQ(req, &der) : -1;
    if (dlen > 0)
        out = acme_b64url(der, (size_t)dlen);
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return out;
}
