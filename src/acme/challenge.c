#include "acme/challenge.h"
#include "acme/jws.h"

#include <errno.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 8737 §6.1: id-pe-acmeIdentifier. */
#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"
/* How long a challenge certificate says it is good for; the CA only
 * looks at it while validating. */
#define ACME_ALPN_CERT_DAYS 7

enum kind { HTTP01 = 1, ALPN01 = 2 };

typedef struct entry {
    enum kind kind;        /* 0: free */
    char *id;              /* the token, or the name */
    char *key_auth;        /* HTTP-01's answer */
    X509 *cert;            /* TLS-ALPN-01's answer, with its key */
    EVP_PKEY *key;
} entry;

struct acme_challenges {
    pthread_mutex_t lock;
    entry e[ACME_CHALLENGES_MAX];
};

acme_challenges *acme_challenges_new(void)
{
    acme_challenges *c = calloc(1, sizeof(*c));
    if (c && pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

static void entry_clear(entry *e)
{
    free(e->id);
    free(e->key_auth);
    X509_free(e->cert);
    EVP_PKEY_free(e->key);
    memset(e, 0, sizeof(*e));
}

void acme_challenges_free(acme_challenges *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < ACME_CHALLENGES_MAX; i++)
        entry_clear(&c->e[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static bool is_b64url(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

bool acme_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                   (ch == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[len - 1] != '-';
}

/* The entry of kind for id (case-insensitive for names), or NULL. */
static entry *find(acme_challenges *c, enum kind kind, const char *id, size_t len)
{
    for (size_t i = 0; i < ACME_CHALLENGES_MAX; i++) {
        entry *e = &c->e[i];
        if (e->kind != kind || strlen(e->id) != len)
            continue;
        if (kind == HTTP01 ? memcmp(e->id, id, len) == 0 : strncasecmp(e->id, id, len) == 0)
            return e;
    }
    return NULL;
}

/* The entry for id, or a free one (id set); NULL when full or without
 * memory (*err says which).  With the lock held. */
static entry *slot(acme_challenges *c, enum kind kind, const char *id, int *err)
{
    entry *e = find(c, kind, id, strlen(id));
    if (e)
        return e;
    for (size_t i = 0; i < ACME_CHALLENGES_MAX; i++) {
        if (c->e[i].kind)
            continue;
        e = &c->e[i];
        if (!(e->id = strdup(id))) {
            *err = -ENOMEM;
            return NULL;
        }
        e->kind = kind;
        return e;
    }
    *err = -ENOSPC;
    return NULL;
}

int acme_http01_add(acme_challenges *c, const char *token, const char *key_auth)
{
    if (!is_b64url(token, strlen(token)))
        return -EINVAL;
    char *copy = strdup(key_auth);
    if (!copy)
        return -ENOMEM;
    int err = 0;
    pthread_mutex_lock(&c->lock);
    entry *e = slot(c, HTTP01, token, &err);
    if (e) {
        free(e->key_auth);
        e->key_auth = copy;
    }
    pthread_mutex_unlock(&c->lock);
    if (!e)
        free(copy);
    return err;
}

static void remove_kind(acme_challenges *c, enum kind kind, const char *id)
{
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, kind, id, strlen(id));
    if (e)
        entry_clear(e);
    pthread_mutex_unlock(&c->lock);
}

void acme_http01_remove(acme_challenges *c, const char *token) { remove_kind(c, HTTP01, token); }

ssize_t acme_http01_lookup(acme_challenges *c, const char *token, size_t token_len, char *buf,
                           size_t len)
{
    ssize_t rc = -ENOENT;
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, HTTP01, token, token_len);
    if (e) {
        size_t n = strlen(e->key_auth);
        if (n < len) {
            memcpy(buf, e->key_auth, n + 1);
            rc = (ssize_t)n;
        } else {
            rc = -ENOSPC;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void acme_http01_handler(eddy_request *req, void *data)
{
    acme_challenges *c = data;
    eddy_str path = eddy_request_path(req);
    size_t plen = sizeof(ACME_HTTP01_PREFIX) - 1;
    /* A key authorization is a token, a dot and a 43-byte thumbprint. */
    char answer[512];
    ssize_t n = -ENOENT;
    if (path.len > plen && memcmp(path.ptr, ACME_HTTP01_PREFIX, plen) == 0 &&
        is_b64url(path.ptr + plen, path.len - plen))
        n = acme_http01_lookup(c, path.ptr + plen, path.len - plen, answer, sizeof(answer));
    if (n < 0)
        eddy_respond(req, 404, "text/plain", "no such challenge\n", 18);
    else
        eddy_respond(req, 200, "application/octet-stream", answer, (size_t)n);
}

/* The acmeIdentifier extension: critical, its value the DER of an OCTET
 * STRING holding SHA-256(key_auth). */
static X509_EXTENSION *acme_identifier(const char *key_auth)
{
    unsigned char digest[32];
    if (!EVP_Digest(key_auth, strlen(key_auth), digest, NULL, EVP_sha256(), NULL))
        return NULL;
    ASN1_OBJECT *oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    unsigned char *der = NULL;
    X509_EXTENSION *ext = NULL;
    int dlen = -1;
    if (oid && inner && value && ASN1_OCTET_STRING_set(inner, digest, sizeof(digest)))
        dlen = i2d_ASN1_OCTET_STRING(inner, &der);
    if (dlen > 0 && ASN1_OCTET_STRING_set(value, der, dlen))
        ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value);
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(value);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(oid);
    return ext;
}

X509 *acme_alpn_cert(const char *name, const char *key_auth, EVP_PKEY *key)
{
    if (!acme_name_ok(name))
        return NULL; /* RFC 8737 validates no wildcards */
    /* A name longer than a CN may be (64) leaves the subject empty. */
    bool cn = strlen(name) <= ACME_CN_MAX;
    X509 *x = X509_new();
    X509_NAME *subject = X509_NAME_new();
    X509_EXTENSION *san = acme_san_extension(&name, 1, !cn);
    X509_EXTENSION *id = acme_identifier(key_auth);
    unsigned char serial[16];
    BIGNUM *sn = NULL;
    bool ok = x && subject && san && id && RAND_bytes(serial, sizeof(serial)) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* positive */
        sn = BN_bin2bn(serial, sizeof(serial), NULL);
        ok = sn && BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) &&
             X509_set_version(x, X509_VERSION_3) &&
             (!cn || X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                                (const unsigned char *)name, -1, -1, 0)) &&
             X509_set_subject_name(x, subject) && X509_set_issuer_name(x, subject) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400L * ACME_ALPN_CERT_DAYS) &&
             X509_set_pubkey(x, key) && X509_add_ext(x, san, -1) && X509_add_ext(x, id, -1) &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    BN_free(sn);
    X509_EXTENSION_free(id);
    X509_EXTENSION_free(san);
    X509_NAME_free(subject);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

int acme_alpn01_add(acme_challenges *c, const char *name, const char *key_auth)
{
    if (!acme_name_ok(name))
        return -EINVAL;
    EVP_PKEY *key = acme_key_new();
    X509 *cert = key ? acme_alpn_cert(name, key_auth, key) : NULL;
    if (!cert) {
        EVP_PKEY_free(key);
        return -ENOMEM;
    }
    int err = 0;
    pthread_mutex_lock(&c->lock);
    entry *e = slot(c, ALPN01, name, &err);
    if (e) {
        X509_free(e->cert);
        EVP_PKEY_free(e->key);
        e->cert = cert;
        e->key = key;
    }
    pthread_mutex_unlock(&c->lock);
    if (!e) {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    return err;
}

void acme_alpn01_remove(acme_challenges *c, const char *name) { remove_kind(c, ALPN01, name); }

int acme_alpn01_lookup(acme_challenges *c, const char *name, X509 **cert, EVP_PKEY **key)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, ALPN01, name, strlen(name));
    if (e && X509_up_ref(e->cert) && EVP_PKEY_up_ref(e->key)) {
        *cert = e->cert;
        *key = e->key;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}
