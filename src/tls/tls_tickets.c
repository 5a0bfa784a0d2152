/* Session ticket keys, shared by every worker's handshakes: a returning
 * client resumes whichever worker the kernel hands it to.  Keys live in
 * memory only (a restart makes new ones, as a leaked file cannot then
 * decrypt old sessions) and rotate by age. */
#include "tls/tls.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

static uint64_t monotonic_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Makes keys[0] a new key, keeping the one before it; with the lock held. */
static int rotate_locked(tls_tickets *t)
{
    tls_ticket_key k;
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_priv_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_priv_bytes(k.hmac, sizeof(k.hmac)) != 1)
        return -1;
    k.born = t->now();
    memmove(&t->keys[1], &t->keys[0], sizeof(t->keys[0]) * (TLS_TICKET_KEYS - 1));
    t->keys[0] = k;
    if (t->nkeys < TLS_TICKET_KEYS)
        t->nkeys++;
    return 0;
}

int tls_tickets_init(tls_tickets *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->now = monotonic_sec;
    return rotate_locked(t);
}

void tls_tickets_destroy(tls_tickets *t)
{
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    pthread_mutex_destroy(&t->lock);
}

int tls_tickets_rotate(tls_tickets *t)
{
    pthread_mutex_lock(&t->lock);
    int rc = rotate_locked(t);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static int set_mac_key(EVP_MAC_CTX *mac, const unsigned char *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(mac, key, 32, params);
}

/* enc 1: seal a new ticket with the current key.  enc 0: find the key a
 * ticket names; 1 when it is current, 2 when it is the one before (the
 * client gets a fresh ticket), 0 when unknown (a full handshake).  In TLS
 * 1.3 always 2 for a known key: OpenSSL sends a ticket after a resumption
 * only when asked to renew, and a client uses each ticket once (RFC 8446
 * §C.4; browsers do), so without a fresh one every other connection would
 * be a full handshake. */
int tls_tickets_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                   EVP_MAC_CTX *mac, int enc)
{
    tls_tickets *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    tls_ticket_key k;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    uint64_t now = t->now();
    if (now - t->keys[0].born >= TLS_TICKET_ROTATE_S && rotate_locked(t) < 0) {
        pthread_mutex_unlock(&t->lock);
        return -1;
    }
    if (enc) {
        k = t->keys[0];
        rc = 1;
    } else {
        /* Rotation happens on the first handshake after a period, so
         * after an idle spell the key before can be older than two
         * periods: its tickets are no longer taken then. */
        for (unsigned i = 0; i < t->nkeys; i++)
            if (memcmp(name, t->keys[i].name, sizeof(t->keys[i].name)) == 0 &&
                now - t->keys[i].born < 2 * TLS_TICKET_ROTATE_S) {
                k = t->keys[i];
                rc = i == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
                break;
            }
    }
    pthread_mutex_unlock(&t->lock);
    if (rc == 0)
        return 0;
    if (enc) {
        memcpy(name, k.name, sizeof(k.name));
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
            rc = -1;
    } else if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        rc = -1;
    }
    if (rc > 0 && set_mac_key(mac, k.hmac) != 1)
        rc = -1;
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
