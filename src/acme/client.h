/* An ACME client (RFC 8555) for one account at one CA, over libcurl:
 * the directory, nonces, the account, and an order from its creation to
 * the certificate chain, answering each authorization with HTTP-01 or
 * TLS-ALPN-01 through the shared challenge store.  It blocks: it runs on
 * the ACME thread (acme.c), never on a worker's loop, and every wait it
 * makes goes through the caller's wait function so it can be stopped. */
#ifndef EDDY_ACME_CLIENT_H
#define EDDY_ACME_CLIENT_H

#include "acme/challenge.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* One request's limit; the CA's answers are small. */
#define ACME_HTTP_TIMEOUT_S 30
#define ACME_BODY_MAX (1 << 20)
/* Polling an authorization or an order: the wait when the CA names none
 * (Retry-After), the longest wait honoured, and how long in all before
 * giving up on it. */
#define ACME_POLL_DEFAULT_MS 1000
#define ACME_POLL_MAX_MS 60000
#define ACME_POLL_TOTAL_MS (10 * 60 * 1000)
/* A badNonce is retried with the nonce it came with, this many times. */
#define ACME_BADNONCE_RETRIES 5

enum acme_challenge_type { ACME_HTTP01 = 1, ACME_TLS_ALPN01 = 2 };

typedef struct acme_client_config {
    const char *directory;     /* the directory URL */
    const char *ca_root;       /* PEM file to check the CA's TLS with; NULL: the system's */
    const char *email;         /* contact; NULL: none */
    EVP_PKEY *account_key;     /* the account's key (the caller keeps it) */
    acme_challenges *challenges;
    enum acme_challenge_type challenge;
    /* Sleeps ms unless stopping: false means stop now (ms 0: only asks). */
    bool (*wait)(void *ud, unsigned ms);
    void *wait_ud;
} acme_client_config;

typedef struct acme_client acme_client;

acme_client *acme_client_new(const acme_client_config *cfg);
void acme_client_free(acme_client *c);

/* Fetches the directory and finds or creates the account (newAccount with
 * the key: the CA answers with the existing one if there is one).  0, or
 * -1 with the reason in err (the CA's problem document when there is one). */
int acme_client_account(acme_client *c, char *err, size_t err_len);

/* Orders a certificate for names (all in one), answers its authorizations,
 * finalizes it with a CSR for cert_key and downloads the chain: *chain is
 * the PEM (malloc'd).  replaces: the certificate it renews (its
 * acme_cert_id), told to a CA that has renewal information; NULL: none.
 * 0, or -1 with the reason in err; *retry_after_s is set when the CA asked
 * for a wait (rate limits), else 0. */
int acme_client_order(acme_client *c, const char *const *names, size_t n, EVP_PKEY *cert_key,
                      const char *replaces, char **chain, unsigned *retry_after_s, char *err,
                      size_t err_len);

/* Fetches the directory unless it is known: 0, or -1 with err. */
int acme_client_directory(acme_client *c, char *err, size_t err_len);

/* ACME Renewal Information (RFC 9773): a certificate's unique identifier
 * (the AKI's key identifier and the serial, base64url), malloc'd; NULL
 * without an AKI. */
char *acme_cert_id(X509 *x);
/* The CA's suggested renewal window for leaf, and in *poll_s when to ask
 * again (its Retry-After; 0: it named none).  -1 when the CA offers no
 * renewal information (or the answer is not usable): the caller keeps its
 * own schedule. */
int acme_client_renewal_window(acme_client *c, X509 *leaf, time_t *start, time_t *end,
                               unsigned *poll_s);

#endif
