/* What an ACME client (RFC 8555) signs and sends, with OpenSSL and
 * jansson: ECDSA P-256 keys, the account's JWK and its thumbprint
 * (RFC 7638), requests as flattened JWS objects signed ES256 (RFC 7515,
 * 7518), challenge key authorizations, and certificate signing requests.
 * Nothing here does I/O; acme_client.c sends what this makes. */
#ifndef EDDY_ACME_JWS_H
#define EDDY_ACME_JWS_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

/* The longest commonName X.509 allows (ub-common-name). */
#define ACME_CN_MAX 64

/* base64url without padding (RFC 7515 §2), NUL-terminated; NULL without
 * memory.  The caller frees it. */
char *acme_b64url(const void *data, size_t len);

/* A new ECDSA P-256 key (accounts and certificates alike); NULL on failure. */
EVP_PKEY *acme_key_new(void);
/* The key as PKCS#8 PEM (malloc'd, *len bytes, NUL-terminated), or NULL. */
char *acme_key_pem(EVP_PKEY *key, size_t *len);
/* A key from PEM; NULL when it is not a P-256 private key. */
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);

/* The public key as the JWK an account is known by, members in the order
 * RFC 7638 hashes them: {"crv":"P-256","kty":"EC","x":"…","y":"…"}.
 * malloc'd, or NULL. */
char *acme_jwk(EVP_PKEY *key);
/* base64url(SHA-256(acme_jwk(key))): RFC 7638's thumbprint; malloc'd. */
char *acme_thumbprint(EVP_PKEY *key);
/* A challenge's key authorization: token "." thumbprint (RFC 8555 §8.1). */
char *acme_key_authorization(const char *token, EVP_PKEY *account);

/* One request to url as a flattened JWS (RFC 8555 §6.2): the protected
 * header names the account by kid (its URL), or carries its jwk when kid
 * is NULL (new accounts); payload is JSON text, or NULL for POST-as-GET
 * (an empty payload).  malloc'd JSON text, or NULL. */
char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload);

/* A subjectAltName extension of n DNS names; critical when the subject
 * is empty (RFC 5280 §4.2.1.6).  NULL on failure. */
X509_EXTENSION *acme_san_extension(const char *const *names, size_t n, bool critical);

/* A PKCS#10 request for names (the first also the subject's CN when it
 * fits in one), signed
 * with the certificate's key, as DER in base64url: the "csr" of an
 * order's finalization (RFC 8555 §7.4).  malloc'd, or NULL. */
char *acme_csr(EVP_PKEY *key, const char *const *names, size_t n);

#endif
