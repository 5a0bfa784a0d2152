/* Challenges waiting for the CA to look, shared by the ACME client's
 * thread, which adds and removes them, and every worker, which answers
 * them: HTTP-01 tokens with their key authorizations (RFC 8555 §8.3),
 * and TLS-ALPN-01 certificates per name (RFC 8737).  Lookups take a lock
 * held for a copy or a reference count: workers only look while the CA
 * validates, and never wait on the client's thread's work. */
#ifndef EDDY_ACME_CHALLENGE_H
#define EDDY_ACME_CHALLENGE_H

#include "eddy.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <sys/types.h>

/* Where HTTP-01 tokens are fetched from (RFC 8555 §8.3). */
#define ACME_HTTP01_PREFIX "/.well-known/acme-challenge/"
/* The ALPN protocol TLS-ALPN-01 validation offers (RFC 8737 §6.2). */
#define ACME_ALPN_PROTOCOL "acme-tls/1"
/* Challenges open at once; an order has one per name. */
#define ACME_CHALLENGES_MAX 64

typedef struct acme_challenges acme_challenges;

acme_challenges *acme_challenges_new(void);
/* Once no worker can look any more. */
void acme_challenges_free(acme_challenges *c);

/* An HTTP-01 token and its key authorization (both copied): 0, -EINVAL
 * for a token that is not base64url, -ENOSPC, -ENOMEM.  A token added
 * again replaces its key authorization. */
int acme_http01_add(acme_challenges *c, const char *token, const char *key_auth);
void acme_http01_remove(acme_challenges *c, const char *token);
/* Copies token's key authorization into buf (NUL-terminated): its length,
 * -ENOENT for no such token, -ENOSPC when buf is too small. */
ssize_t acme_http01_lookup(acme_challenges *c, const char *token, size_t token_len, char *buf,
                           size_t len);
/* The handler for ACME_HTTP01_PREFIX (data: the acme_challenges): 200
 * with the key authorization for a token being validated, 404 otherwise. */
void acme_http01_handler(eddy_request *req, void *data);

/* Whether name is one a certificate can be asked for by HTTP-01 or
 * TLS-ALPN-01: labels of letters, digits and inner hyphens, at most 253
 * bytes, no wildcard. */
bool acme_name_ok(const char *name);

/* A TLS-ALPN-01 challenge for name: makes its certificate (see
 * acme_alpn_cert) with a fresh key.  0, -EINVAL, -ENOSPC, -ENOMEM. */
int acme_alpn01_add(acme_challenges *c, const char *name, const char *key_auth);
void acme_alpn01_remove(acme_challenges *c, const char *name);
/* The certificate and key to answer an acme-tls/1 handshake for name
 * (case-insensitive) with, each with a reference for the caller; -ENOENT
 * when none is open. */
int acme_alpn01_lookup(acme_challenges *c, const char *name, X509 **cert, EVP_PKEY **key);

/* RFC 8737 §3: a self-signed certificate for name (its only SAN) with the
 * critical acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holding the
 * SHA-256 of key_auth as an OCTET STRING.  NULL on failure. */
X509 *acme_alpn_cert(const char *name, const char *key_auth, EVP_PKEY *key);

#endif
