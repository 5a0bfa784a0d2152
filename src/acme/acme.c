/* eddy_acme: certificates obtained and renewed on a thread of their own.
 *
 * The state directory keeps, per CA, the account key
 * (accounts/HOST.key) and, per certificate, one file with its key and
 * chain (certs/NAME/pair.pem, 0600): one file, so one rename replaces
 * both and a crash never pairs a key with another's certificate.  That
 * file is an optional pair of the eddy_tls: served once it exists,
 * reloaded (in every worker at once: they share the eddy_tls) when it is
 * renewed. */
#include "eddy.h"
#include "acme/challenge.h"
#include "acme/client.h"
#include "acme/jws.h"
#include "acme/state.h"
#include "core/site.h"
#include "http/server.h"
#include "tls/tls.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A failure is retried after retry_ms, doubling each time up to this. */
#define ACME_RETRY_MAX_MS (24u * 3600 * 1000)
#define ACME_RETRY_DEFAULT_MS 60000u
/* Renewal information (RFC 9773) is asked again when the CA's Retry-After
 * says, at most a day later, and after this when it says nothing. */
#define ACME_ARI_POLL_DEFAULT_S (6 * 3600)
#define ACME_ARI_POLL_MAX_S 86400u

struct eddy_acme {
    eddy_acme_config cfg;      /* strings below are copies */
    char **names;
    char *email, *directory, *ca_root;
    char state_dir[1024];
    char cert_dir[1200];       /* state_dir/certs/NAMES[0] */
    char pair_path[1300];
    char account_dir[1100];
    char account_file[300];
    eddy_tls *tls;
    acme_challenges *challenges;
    EVP_PKEY *account_key;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool stopping;
    /* The CA's suggested window for the stored certificate, and the
     * moment picked in it; 0: none (no renewal information). */
    time_t ari_start, ari_end, ari_pick;
};

static void logf_(eddy_acme *a, const char *fmt, ...)
{
    if (!a->cfg.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    a->cfg.log(a->cfg.log_data, line);
}

/* Sleeps ms unless eddy_acme_free comes first (then false). */
static bool wait_ms(void *ud, unsigned ms)
{
    eddy_acme *a = ud;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->lock);
    while (!a->stopping && pthread_cond_timedwait(&a->cond, &a->lock, &until) == 0)
        ;
    bool go_on = !a->stopping;
    pthread_mutex_unlock(&a->lock);
    return go_on;
}

/* The directory URL's host (and port) as a file name: one account per CA. */
static void account_name(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t i = 0;
    for (; *p && *p != '/' && i + 1 < len; p++)
        out[i++] = (*p == ':' || *p == '[' || *p == ']') ? '_' : *p;
    out[i] = 0;
}

static int fail(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
    snprintf(err, len, fmt, a, b);
    return -EINVAL;
}

/* The account's key: the stored one, or a new one stored now. */
static int load_account(eddy_acme *a, char *err, size_t err_len)
{
    char *pem;
    size_t len;
    int rc = acme_state_read(a->account_dir, a->account_file, &pem, &len);
    if (rc == 0) {
        a->account_key = acme_key_from_pem(pem, len);
        free(pem);
        if (!a->account_key)
            return fail(err, err_len, "%s/%s is not a P-256 key", a->account_dir, a->account_file);
        return 0;
    }
    if (rc != -ENOENT)
        return fail(err, err_len, "cannot read %s: %s", a->account_file, strerror(-rc));
    a->account_key = acme_key_new();
    pem = a->account_key ? acme_key_pem(a->account_key, &len) : NULL;
    rc = pem ? acme_state_write(a->account_dir, a->account_file, pem, len, 0600) : -ENOMEM;
    free(pem);
    if (rc < 0)
        return fail(err, err_len, "cannot write the account key in %s: %s", a->account_dir,
                    strerror(-rc));
    return 0;
}

static void acme_free_fields(eddy_acme *a)
{
    for (unsigned i = 0; a->names && i < a->cfg.nnames; i++)
        free(a->names[i]);
    free(a->names);
    free(a->email);
    free(a->directory);
    free(a->ca_root);
    EVP_PKEY_free(a->account_key);
    if (a->challenges)
        tls_challenges_drop(a->tls);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

int eddy_acme_new(const eddy_acme_config *cfg, eddy_tls *tls, eddy_acme **out, char *err,
                  size_t err_len)
{
    if (!cfg || cfg->nnames == 0 || !cfg->names || !tls)
        return fail(err, err_len, "ACME needs at least one name%s%s", "", "");
    eddy_acme *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    a->cfg = *cfg;
    a->tls = tls;
    a->names = calloc(cfg->nnames, sizeof(char *));
    a->directory = strdup(cfg->directory ? cfg->directory : EDDY_ACME_LETSENCRYPT);
    a->email = cfg->email ? strdup(cfg->email) : NULL;
    a->ca_root = cfg->ca_root ? strdup(cfg->ca_root) : NULL;
    a->challenges = tls_challenges_hold(tls);
    bool ok = a->names && a->directory && a->challenges && (!cfg->email || a->email) &&
              (!cfg->ca_root || a->ca_root);
    for (unsigned i = 0; ok && i < cfg->nnames; i++)
        ok = (a->names[i] = strdup(cfg->names[i])) != NULL;
    if (!ok) {
        acme_free_fields(a);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < cfg->nnames; i++) {
        if (!acme_name_ok(cfg->names[i])) {
            int rc = fail(err, err_len, "--acme-domain '%s' is not a domain name a certificate can be asked for%s",
                          cfg->names[i], "");
            acme_free_fields(a);
            return rc;
        }
    }
    int rc = 0;
    if (cfg->state_dir)
        snprintf(a->state_dir, sizeof(a->state_dir), "%s", cfg->state_dir);
    else
        rc = acme_state_default_dir(geteuid() == 0, getenv("XDG_STATE_HOME"), getenv("HOME"),
                                    a->state_dir, sizeof(a->state_dir));
    if (rc < 0) {
        rc = fail(err, err_len, "no state directory: give --state-dir%s%s", "", "");
        acme_free_fields(a);
        return rc;
    }
    char host[200];
    account_name(a->directory, host, sizeof(host));
    snprintf(a->account_dir, sizeof(a->account_dir), "%s/accounts", a->state_dir);
    snprintf(a->account_file, sizeof(a->account_file), "%s.key", host);
    snprintf(a->cert_dir, sizeof(a->cert_dir), "%s/certs/%s", a->state_dir, a->names[0]);
    snprintf(a->pair_path, sizeof(a->pair_path), "%s/pair.pem", a->cert_dir);
    if ((rc = acme_state_mkdir(a->account_dir)) < 0 || (rc = acme_state_mkdir(a->cert_dir)) < 0) {
        rc = fail(err, err_len, "cannot make the state directory %s: %s", a->state_dir, strerror(-rc));
        acme_free_fields(a);
        return rc;
    }
    if ((rc = load_account(a, err, err_len)) < 0 ||
        (rc = tls_add_pair(tls, a->pair_path, a->pair_path, true, err, err_len)) < 0) {
        acme_free_fields(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ------------------------------------------------------------ thread -- */

/* The stored certificate's leaf, or NULL when there is none. */
static X509 *stored_leaf(eddy_acme *a)
{
    FILE *f = fopen(a->pair_path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

/* When x is due for renewal by its own dates (unix seconds): two thirds
 * into its life; 0 when it lacks a name (the names changed) or its dates
 * cannot be read. */
static time_t own_schedule(eddy_acme *a, X509 *x, time_t *not_after)
{
    for (unsigned i = 0; i < a->cfg.nnames; i++)
        if (X509_check_host(x, a->names[i], 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1)
            return 0; /* ask again */
    struct tm tb, ta;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tb) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &ta) != 1)
        return 0;
    time_t b = timegm(&tb), e = timegm(&ta);
    *not_after = e;
    time_t due = b + (e - b) * 2 / 3;
    return due > 0 ? due : 1;
}

/* A uniformly random moment in [start, end) (RFC 9773 §4.2: spread the
 * CA's load over its window). */
static time_t pick_in(time_t start, time_t end)
{
    uint64_t r = 0;
    RAND_bytes((unsigned char *)&r, sizeof(r));
    return start + (time_t)(r % (uint64_t)(end - start));
}

/* When the stored certificate is to be renewed (0: now, or there is none):
 * within the CA's suggested window when it offers renewal information,
 * else two thirds into its life.  *poll_at: when to ask the CA again (0:
 * no need).  *cert_id: the certificate's identifier for "replaces". */
static time_t next_renewal(eddy_acme *a, acme_client *c, time_t *not_after, time_t *poll_at,
                           char **cert_id)
{
    *poll_at = 0;
    X509 *x = stored_leaf(a);
    if (!x)
        return 0;
    time_t due = own_schedule(a, x, not_after);
    char err[256];
    time_t start, end, now = time(NULL);
    unsigned poll_s;
    if (due && c && acme_client_directory(c, err, sizeof(err)) == 0 &&
        acme_client_renewal_window(c, x, &start, &end, &poll_s) == 0) {
        if (start != a->ari_start || end != a->ari_end) {
            a->ari_start = start;
            a->ari_end = end;
            a->ari_pick = end <= now ? now : pick_in(start > now ? start : now, end);
        }
        due = a->ari_pick ? a->ari_pick : 1;
        *poll_at = now + (poll_s ? (time_t)(poll_s > ACME_ARI_POLL_MAX_S ? ACME_ARI_POLL_MAX_S : poll_s)
                                 : ACME_ARI_POLL_DEFAULT_S);
    }
    if (cert_id)
        *cert_id = acme_cert_id(x);
    X509_free(x);
    return due;
}

/* Obtains a certificate and stores it with its key: 0, or -1 with err. */
static int obtain(eddy_acme *a, acme_client *c, const char *replaces, unsigned *retry_after_s,
                  char *err, size_t err_len)
{
    EVP_PKEY *key = acme_key_new();
    char *chain = NULL;
    int rc = key ? acme_client_order(c, (const char *const *)a->names, a->cfg.nnames, key, replaces,
                                     &chain, retry_after_s, err, err_len)
                 : -1;
    size_t klen = 0;
    char *kpem = rc == 0 ? acme_key_pem(key, &klen) : NULL;
    if (rc == 0 && kpem) {
        size_t clen = strlen(chain);
        char *pair = malloc(klen + clen + 1);
        if (pair) {
            memcpy(pair, kpem, klen);
            memcpy(pair + klen, chain, clen + 1);
            int w = acme_state_write(a->cert_dir, "pair.pem", pair, klen + clen, 0600);
            if (w < 0) {
                snprintf(err, err_len, "cannot write %.900s: %s", a->pair_path, strerror(-w));
                rc = -1;
            }
            free(pair);
        } else {
            rc = -1;
        }
    } else if (rc == 0) {
        rc = -1;
    }
    free(kpem);
    free(chain);
    EVP_PKEY_free(key);
    return rc;
}

static void log_in_use(eddy_acme *a, time_t not_after, time_t due)
{
    char until[32] = "?", renew[32] = "?";
    struct tm t;
    if (gmtime_r(&not_after, &t))
        strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S", &t);
    if (gmtime_r(&due, &t))
        strftime(renew, sizeof(renew), "%Y-%m-%d %H:%M:%S", &t);
    logf_(a, "ACME: certificate for %s%s in use, valid until %s UTC, renewal at %s UTC%s",
          a->names[0], a->cfg.nnames > 1 ? " and more" : "", until, renew,
          a->ari_end ? " (the CA's renewal window)" : "");
}

static void *acme_main(void *data)
{
    eddy_acme *a = data;
    acme_client_config cc = {
        .directory = a->directory,
        .ca_root = a->ca_root,
        .email = a->email,
        .account_key = a->account_key,
        .challenges = a->challenges,
        .challenge = a->cfg.challenge == EDDY_ACME_TLS_ALPN01 ? ACME_TLS_ALPN01 : ACME_HTTP01,
        .wait = wait_ms,
        .wait_ud = a,
    };
    acme_client *c = acme_client_new(&cc);
    unsigned first = a->cfg.retry_ms ? a->cfg.retry_ms : ACME_RETRY_DEFAULT_MS;
    unsigned backoff = first;
    char err[1024];
    while (c) {
        time_t not_after = 0, poll_at;
        char *cert_id = NULL;
        time_t due = next_renewal(a, c, &not_after, &poll_at, &cert_id), now = time(NULL);
        if (due > now) {
            free(cert_id);
            /* Waits at most a day at a time (the clock may jump), and
             * asks the CA's renewal information again when it said to. */
            time_t until = poll_at && poll_at < due ? poll_at : due;
            time_t left = until > now ? until - now : 1;
            if (!wait_ms(a, (unsigned)(left > 86400 ? 86400 : left) * 1000))
                break;
            continue;
        }
        logf_(a, "ACME: %s a certificate for %s%s from %s", due ? "renewing" : "obtaining",
              a->names[0], a->cfg.nnames > 1 ? " and more" : "", a->directory);
        unsigned retry_s = 0;
        int rc = obtain(a, c, due ? cert_id : NULL, &retry_s, err, sizeof(err));
        free(cert_id);
        if (rc == 0) {
            char rerr[512];
            if (eddy_tls_reload(a->tls, rerr, sizeof(rerr)) < 0) {
                snprintf(err, sizeof(err), "the new certificate does not load: %s", rerr);
            } else {
                backoff = first;
                a->ari_start = a->ari_end = a->ari_pick = 0; /* a new certificate's window */
                time_t next = next_renewal(a, c, &not_after, &poll_at, NULL);
                log_in_use(a, not_after, next);
                continue;
            }
        }
        if (atomic_load(&a->stopping))
            break;
        unsigned wait = backoff;
        if (retry_s && (uint64_t)retry_s * 1000 > wait)
            wait = retry_s > ACME_RETRY_MAX_MS / 1000 ? ACME_RETRY_MAX_MS : retry_s * 1000;
        logf_(a, "ACME: %s; trying again in %u s", err, (wait + 999) / 1000);
        if (!wait_ms(a, wait))
            break;
        backoff = backoff > ACME_RETRY_MAX_MS / 2 ? ACME_RETRY_MAX_MS : backoff * 2;
    }
    acme_client_free(c);
    return NULL;
}

int eddy_acme_start(eddy_acme *a)
{
    if (a->started)
        return -EALREADY;
    int rc = pthread_create(&a->thread, NULL, acme_main, a);
    if (rc != 0)
        return -rc;
    a->started = true;
    return 0;
}

void eddy_acme_free(eddy_acme *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->started)
        pthread_join(a->thread, NULL); /* a request in flight ends within its timeout */
    acme_free_fields(a);
}

int eddy_server_acme(eddy_server *srv, eddy_acme *a)
{
    eddy_route r = {.path = "/.well-known/acme-challenge", .prefix = true, .methods = "GET",
                    .handler = acme_http01_handler, .data = a->challenges};
    /* Every site: the CA asks with the name's Host, whichever site has it;
     * over plain HTTP (RFC 8555 §8.3: port 80), never redirected.  The
     * eddy_acme's of one eddy_tls share its store: routed once. */
    if (srv->front.every_site.data == a->challenges)
        return 0;
    return server_every_site(srv, &r);
}
