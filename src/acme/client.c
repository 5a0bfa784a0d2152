#include "acme/client.h"
#include "acme/jws.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JOSE "Content-Type: application/jose+json"

/* One response: status, the fields the protocol reads, and the body. */
typedef struct reply {
    long status;
    char *body;
    size_t len;
    char location[1024];
    char nonce[256];
    char content_type[128];
    unsigned retry_after_s;  /* 0: none given */
} reply;

struct acme_client {
    acme_client_config cfg;
    CURL *curl;
    char *new_nonce, *new_account, *new_order;
    char *renewal_info;      /* RFC 9773's endpoint; NULL when the CA has none */
    char *kid;               /* the account's URL, once known */
    char nonce[256];         /* the last Replay-Nonce seen; "" when none */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_start(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void say(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

acme_client *acme_client_new(const acme_client_config *cfg)
{
    pthread_once(&curl_once, curl_start);
    acme_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (!(c->curl = curl_easy_init())) {
        free(c);
        return NULL;
    }
    return c;
}

void acme_client_free(acme_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c->new_nonce);
    free(c->new_account);
    free(c->new_order);
    free(c->renewal_info);
    free(c->kid);
    free(c);
}

/* ------------------------------------------------------------- HTTP -- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = size * n;
    if (r->len + len > ACME_BODY_MAX)
        return 0; /* too big: the transfer fails */
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    b[r->len] = 0;
    return len;
}

/* Copies a field's value (trimmed) into out when the line is that field. */
static bool field(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
    return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = size * n;
    char retry[32];
    field(p, len, "Location", r->location, sizeof(r->location));
    field(p, len, "Replay-Nonce", r->nonce, sizeof(r->nonce));
    field(p, len, "Content-Type", r->content_type, sizeof(r->content_type));
    if (field(p, len, "Retry-After", retry, sizeof(retry))) {
        /* Seconds; an HTTP date is taken as a minute. */
        char *e;
        unsigned long s = strtoul(retry, &e, 10);
        r->retry_after_s = *e == 0 && e != retry ? (unsigned)(s > 86400 ? 86400 : s) : 60;
    }
    return len;
}

/* libcurl's progress callback: a transfer ends early once the owner is
 * stopping (a zero wait says so), so shutdown never waits on the CA. */
static int on_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    acme_client *c = ud;
    return c->cfg.wait(c->cfg.wait_ud, 0) ? 0 : 1;
}

static void reply_free(reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* One exchange: GET (body NULL, head false), HEAD (head), or POST of a
 * JWS.  0, or -1 with err set for a transport failure (any status is 0). */
static int http(acme_client *c, const char *url, const char *body, bool head, const char *accept,
                reply *r, char *err, size_t err_len)
{
    memset(r, 0, sizeof(*r));
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL;
    if (body)
        hdrs = curl_slist_append(hdrs, JOSE);
    if (accept) {
        char a[128];
        snprintf(a, sizeof(a), "Accept: %s", accept);
        hdrs = curl_slist_append(hdrs, a);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "eddy/" EDDY_VERSION " (ACME)");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)ACME_HTTP_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    if (c->cfg.ca_root)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_root);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        say(err, err_len, "%s: %s", url, curl_easy_strerror(rc));
        reply_free(r);
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->nonce[0])
        snprintf(c->nonce, sizeof(c->nonce), "%s", r->nonce);
    return 0;
}

/* The CA's problem document (RFC 7807, RFC 8555 §6.7) in one line: its
 * type (without the ACME prefix), its detail and the subproblems'. */
static void problem(const reply *r, const char *what, char *err, size_t err_len)
{
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    if (type && strncmp(type, "urn:ietf:params:acme:error:", 27) == 0)
        type += 27;
    int n = snprintf(err, err_len, "%s: HTTP %ld%s%s%s%s", what, r->status, type ? " " : "",
                     type ? type : "", detail ? ": " : "", detail ? detail : "");
    json_t *subs = json_object_get(j, "subproblems");
    for (size_t i = 0; n > 0 && (size_t)n < err_len && i < json_array_size(subs); i++) {
        json_t *s = json_array_get(subs, i);
        const char *d = json_string_value(json_object_get(s, "detail"));
        const char *id = json_string_value(json_object_get(json_object_get(s, "identifier"), "value"));
        n += snprintf(err + n, err_len - (size_t)n, "; %s: %s", id ? id : "?", d ? d : "?");
    }
    json_decref(j);
}

static bool is_problem(const reply *r, const char *type)
{
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "type"));
    bool is = t && strcmp(t, type) == 0;
    json_decref(j);
    return is;
}

static int fresh_nonce(acme_client *c, char *err, size_t err_len)
{
    reply r;
    if (http(c, c->new_nonce, NULL, true, NULL, &r, err, err_len) < 0)
        return -1;
    bool ok = r.nonce[0] != 0;
    if (!ok)
        say(err, err_len, "%s: no Replay-Nonce (HTTP %ld)", c->new_nonce, r.status);
    reply_free(&r);
    return ok ? 0 : -1;
}

/* A signed POST (payload NULL: POST-as-GET), with a fresh nonce when none
 * is left and the retries a badNonce calls for (RFC 8555 §6.5). */
static int post(acme_client *c, const char *url, const char *payload, const char *accept,
                reply *r, char *err, size_t err_len)
{
    for (int attempt = 0; attempt <= ACME_BADNONCE_RETRIES; attempt++) {
        if (!c->nonce[0] && fresh_nonce(c, err, err_len) < 0)
            return -1;
        char *jws = acme_jws(c->cfg.account_key, c->kid, c->nonce, url, payload);
        c->nonce[0] = 0; /* used */
        if (!jws) {
            say(err, err_len, "cannot sign a request to %s", url);
            return -1;
        }
        int rc = http(c, url, jws, false, accept, r, err, err_len);
        free(jws);
        if (rc < 0)
            return -1;
        if (r->status == 400 && is_problem(r, "urn:ietf:params:acme:error:badNonce")) {
            reply_free(r);
            continue; /* its Replay-Nonce is the one to use */
        }
        return 0;
    }
    say(err, err_len, "%s: badNonce %d times", url, ACME_BADNONCE_RETRIES + 1);
    return -1;
}

static json_t *body_json(const reply *r) { return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL; }

static char *dup_member(json_t *j, const char *name)
{
    const char *v = json_string_value(json_object_get(j, name));
    return v ? strdup(v) : NULL;
}

/* ---------------------------------------------------------- account -- */

static int load_directory(acme_client *c, char *err, size_t err_len)
{
    reply r;
    if (http(c, c->cfg.directory, NULL, false, NULL, &r, err, err_len) < 0)
        return -1;
    json_t *dir = body_json(&r);
    if (r.status != 200 || !dir) {
        problem(&r, "directory", err, err_len);
        json_decref(dir);
        reply_free(&r);
        return -1;
    }
    free(c->new_nonce);
    free(c->new_account);
    free(c->new_order);
    c->new_nonce = dup_member(dir, "newNonce");
    c->new_account = dup_member(dir, "newAccount");
    c->new_order = dup_member(dir, "newOrder");
    free(c->renewal_info);
    c->renewal_info = dup_member(dir, "renewalInfo");
    json_decref(dir);
    reply_free(&r);
    if (!c->new_nonce || !c->new_account || !c->new_order) {
        say(err, err_len, "%s: not an ACME directory (newNonce, newAccount, newOrder)",
            c->cfg.directory);
        free(c->new_order);
        c->new_order = NULL;
        return -1;
    }
    return 0;
}

int acme_client_account(acme_client *c, char *err, size_t err_len)
{
    if (load_directory(c, err, err_len) < 0)
        return -1;
    reply r;
    json_t *req = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (c->cfg.email) {
        char contact[320];
        snprintf(contact, sizeof(contact), "mailto:%s", c->cfg.email);
        json_object_set_new(req, "contact", json_pack("[s]", contact));
    }
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    free(c->kid);
    c->kid = NULL; /* newAccount is signed with the jwk */
    int rc = payload ? post(c, c->new_account, payload, NULL, &r, err, err_len) : -1;
    free(payload);
    if (rc < 0)
        return -1;
    if ((r.status != 200 && r.status != 201) || !r.location[0]) {
        problem(&r, "new account", err, err_len);
        reply_free(&r);
        return -1;
    }
    c->kid = strdup(r.location);
    reply_free(&r);
    return c->kid ? 0 : -1;
}

/* ------------------------------------------------------------ order -- */

/* POST-as-GET url until its "status" is no longer one of the waiting ones
 * (pending, processing; ready too when want is "valid" and the caller
 * acts first); the object, or NULL with err. */
static json_t *poll_status(acme_client *c, const char *url, const char *what, const char *want,
                    char *err, size_t err_len)
{
    unsigned waited = 0;
    for (;;) {
        reply r;
        if (post(c, url, NULL, NULL, &r, err, err_len) < 0)
            return NULL;
        json_t *j = body_json(&r);
        if (r.status != 200 || !j) {
            problem(&r, what, err, err_len);
            json_decref(j);
            reply_free(&r);
            return NULL;
        }
        const char *status = json_string_value(json_object_get(j, "status"));
        if (!status || strcmp(status, want) == 0 ||
            (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0)) {
            reply_free(&r);
            return j;
        }
        unsigned ms = r.retry_after_s ? r.retry_after_s * 1000 : ACME_POLL_DEFAULT_MS;
        if (ms > ACME_POLL_MAX_MS)
            ms = ACME_POLL_MAX_MS;
        reply_free(&r);
        json_decref(j);
        if (waited >= ACME_POLL_TOTAL_MS) {
            say(err, err_len, "%s: still %s after %u s", what, status, waited / 1000);
            return NULL;
        }
        if (!c->cfg.wait(c->cfg.wait_ud, ms)) {
            say(err, err_len, "stopped");
            return NULL;
        }
        waited += ms;
    }
}

static const char *challenge_name(enum acme_challenge_type t)
{
    return t == ACME_TLS_ALPN01 ? "tls-alpn-01" : "http-01";
}

/* Answers one authorization: finds its challenge of our type, opens it in
 * the store, tells the CA, and waits for the verdict. */
static int authorize(acme_client *c, const char *url, char *err, size_t err_len)
{
    json_t *authz = poll_status(c, url, "authorization", "pending", err, err_len);
    if (!authz)
        return -1;
    const char *status = json_string_value(json_object_get(authz, "status"));
    const char *name = json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    int rc = -1;
    if (status && strcmp(status, "valid") == 0) {
        json_decref(authz);
        return 0; /* already (a recent order for the name) */
    }
    if (!status || strcmp(status, "pending") != 0 || !name) {
        say(err, err_len, "authorization for %s is %s", name ? name : "?", status ? status : "?");
        json_decref(authz);
        return -1;
    }
    const char *type = challenge_name(c->cfg.challenge);
    json_t *ch = NULL, *chs = json_object_get(authz, "challenges");
    for (size_t i = 0; i < json_array_size(chs); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(chs, i), "type"));
        if (t && strcmp(t, type) == 0)
            ch = json_array_get(chs, i);
    }
    const char *ch_url = json_string_value(json_object_get(ch, "url"));
    const char *token = json_string_value(json_object_get(ch, "token"));
    if (!ch_url || !token) {
        say(err, err_len, "the CA offers no %s challenge for %s", type, name);
        json_decref(authz);
        return -1;
    }
    char *ka = acme_key_authorization(token, c->cfg.account_key);
    int added = !ka ? -1
                : c->cfg.challenge == ACME_TLS_ALPN01 ? acme_alpn01_add(c->cfg.challenges, name, ka)
                                                      : acme_http01_add(c->cfg.challenges, token, ka);
    free(ka);
    if (added < 0) {
        say(err, err_len, "cannot open the %s challenge for %s", type, name);
        json_decref(authz);
        return -1;
    }
    reply r;
    if (post(c, ch_url, "{}", NULL, &r, err, err_len) == 0) {
        if (r.status != 200)
            problem(&r, "challenge", err, err_len);
        else
            rc = 0;
        reply_free(&r);
    }
    json_t *done = rc == 0 ? poll_status(c, url, "authorization", "valid", err, err_len) : NULL;
    if (done) {
        const char *st = json_string_value(json_object_get(done, "status"));
        if (st && strcmp(st, "valid") == 0) {
            rc = 0;
        } else {
            /* The challenge's error says why (the CA could not reach us,
             * or got a wrong answer). */
            rc = -1;
            json_t *dchs = json_object_get(done, "challenges");
            const char *detail = NULL;
            for (size_t i = 0; i < json_array_size(dchs); i++) {
                json_t *e = json_object_get(json_array_get(dchs, i), "error");
                if (e)
                    detail = json_string_value(json_object_get(e, "detail"));
            }
            say(err, err_len, "%s for %s failed: %s", type, name, detail ? detail : st ? st : "?");
        }
        json_decref(done);
    } else {
        rc = -1;
    }
    if (c->cfg.challenge == ACME_TLS_ALPN01)
        acme_alpn01_remove(c->cfg.challenges, name);
    else
        acme_http01_remove(c->cfg.challenges, token);
    json_decref(authz);
    return rc;
}

int acme_client_order(acme_client *c, const char *const *names, size_t n, EVP_PKEY *cert_key,
                      const char *replaces, char **chain, unsigned *retry_after_s, char *err,
                      size_t err_len)
{
    *chain = NULL;
    *retry_after_s = 0;
    if (!c->kid && acme_client_account(c, err, err_len) < 0)
        return -1;
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value", names[i]));
    json_t *req = json_pack("{s:o}", "identifiers", ids);
    if (replaces && c->renewal_info) /* RFC 9773 §5: the CA may ease limits for it */
        json_object_set_new(req, "replaces", json_string(replaces));
    char *payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    reply r;
    int rc = payload ? post(c, c->new_order, payload, NULL, &r, err, err_len) : -1;
    free(payload);
    if (rc < 0)
        return -1;
    json_t *order = body_json(&r);
    if (r.status != 201 || !order || !r.location[0]) {
        problem(&r, "new order", err, err_len);
        *retry_after_s = r.retry_after_s;
        json_decref(order);
        reply_free(&r);
        return -1;
    }
    char *order_url = strdup(r.location);
    reply_free(&r);
    rc = order_url ? 0 : -1;
    json_t *authzs = json_object_get(order, "authorizations");
    for (size_t i = 0; rc == 0 && i < json_array_size(authzs); i++) {
        const char *u = json_string_value(json_array_get(authzs, i));
        rc = u ? authorize(c, u, err, err_len) : -1;
    }
    /* Finalize with a CSR, then wait for the certificate. */
    char *csr = rc == 0 ? acme_csr(cert_key, names, n) : NULL;
    const char *finalize = json_string_value(json_object_get(order, "finalize"));
    if (rc == 0 && (!csr || !finalize)) {
        say(err, err_len, "cannot finalize the order (%s)", csr ? "no finalize URL" : "no CSR");
        rc = -1;
    }
    if (rc == 0) {
        json_t *f = json_pack("{s:s}", "csr", csr);
        char *fp = json_dumps(f, JSON_COMPACT);
        json_decref(f);
        rc = fp ? post(c, finalize, fp, NULL, &r, err, err_len) : -1;
        free(fp);
        if (rc == 0) {
            if (r.status != 200) {
                problem(&r, "finalize", err, err_len);
                *retry_after_s = r.retry_after_s;
                rc = -1;
            }
            reply_free(&r);
        }
    }
    free(csr);
    json_t *done = rc == 0 ? poll_status(c, order_url, "order", "valid", err, err_len) : NULL;
    const char *cert_url = json_string_value(json_object_get(done, "certificate"));
    const char *st = json_string_value(json_object_get(done, "status"));
    if (rc == 0 && done && (!st || strcmp(st, "valid") != 0 || !cert_url)) {
        say(err, err_len, "order is %s, not valid", st ? st : "?");
        rc = -1;
    } else if (rc == 0 && !done) {
        rc = -1;
    }
    if (rc == 0 && post(c, cert_url, NULL, "application/pem-certificate-chain", &r, err, err_len) == 0) {
        if (r.status == 200 && r.body && strstr(r.body, "-----BEGIN CERTIFICATE-----")) {
            *chain = r.body;
            r.body = NULL;
        } else {
            problem(&r, "certificate", err, err_len);
            rc = -1;
        }
        reply_free(&r);
    } else if (rc == 0) {
        rc = -1;
    }
    json_decref(done);
    json_decref(order);
    free(order_url);
    return rc;
}

/* ---------------------------------------------------- renewal info -- */

int acme_client_directory(acme_client *c, char *err, size_t err_len)
{
    if (c->new_order)
        return 0;
    return load_directory(c, err, err_len);
}

/* RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial's
 * DER value bytes). */
char *acme_cert_id(X509 *x)
{
    const ASN1_OCTET_STRING *kid = NULL;
    AUTHORITY_KEYID *aki = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL, NULL);
    if (aki)
        kid = aki->keyid;
    unsigned char *der = NULL;
    int dlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
    char *out = NULL;
    if (kid && dlen > 2) {
        /* Past the tag and the length (short or long form). */
        size_t hdr = (der[1] & 0x80) ? 2 + (der[1] & 0x7f) : 2;
        char *a = acme_b64url(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
        char *b = (size_t)dlen > hdr ? acme_b64url(der + hdr, (size_t)dlen - hdr) : NULL;
        if (a && b && (out = malloc(strlen(a) + 1 + strlen(b) + 1)))
            sprintf(out, "%s.%s", a, b);
        free(a);
        free(b);
    }
    OPENSSL_free(der);
    AUTHORITY_KEYID_free(aki);
    return out;
}

static bool rfc3339(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return false;
    if (*end == '.')
        while (*++end >= '0' && *end <= '9')
            ;
    if (*end != 'Z' && *end != 'z')
        return false; /* offsets other than UTC are not what CAs send */
    *out = timegm(&tm);
    return true;
}

int acme_client_renewal_window(acme_client *c, X509 *leaf, time_t *start, time_t *end,
                               unsigned *poll_s)
{
    *poll_s = 0;
    if (!c->renewal_info)
        return -1;
    char *id = acme_cert_id(leaf);
    if (!id)
        return -1;
    size_t n = strlen(c->renewal_info) + 1 + strlen(id) + 1;
    char *url = malloc(n);
    int rc = -1;
    reply r;
    char err[256];
    if (url) {
        snprintf(url, n, "%s%s%s", c->renewal_info,
                 c->renewal_info[strlen(c->renewal_info) - 1] == '/' ? "" : "/", id);
        if (http(c, url, NULL, false, NULL, &r, err, sizeof(err)) == 0) {
            json_t *j = r.status == 200 ? body_json(&r) : NULL;
            json_t *w = json_object_get(j, "suggestedWindow");
            if (rfc3339(json_string_value(json_object_get(w, "start")), start) &&
                rfc3339(json_string_value(json_object_get(w, "end")), end) && *end > *start) {
                rc = 0;
                *poll_s = r.retry_after_s;
            }
            json_decref(j);
            reply_free(&r);
        }
    }
    free(url);
    free(id);
    return rc;
}
