#include "server/cli.h"
#include "server/errlog.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest timeout a flag accepts: a day. */
#define CLI_MAX_TIMEOUT_S 86400.0

enum opt_kind { OPT_LISTEN, OPT_LISTEN_TLS, OPT_CERT, OPT_KEY, OPT_TLS_MIN, OPT_ACME_DOMAIN,
                OPT_ACME_TEXT, OPT_ACME_CHALLENGE, OPT_ACME_SECONDS, OPT_ROOT, OPT_DELAY, OPT_PROXY, OPT_HEADER, OPT_COUNT, OPT_BYTES, OPT_SECONDS, OPT_SWITCH,
                OPT_TEXT, OPT_PROG_SECONDS, OPT_PROG_COUNT, OPT_PROG_SWITCH, OPT_PROG_TEXT, OPT_FILES_SWITCH,
                OPT_FILES_TEXT, OPT_INDEX, OPT_LOG, OPT_STATUS_ALLOW };

typedef struct opt_spec {
    const char *name;
    const char *arg; /* what the value is, for --help */
    enum opt_kind kind;
    size_t offset; /* into eddy_config (OPT_PROG_*: into cli_options,
                      OPT_FILES_*: into eddy_files_config) */
    const char *help;
} opt_spec;

#define CFG(field) offsetof(eddy_config, field)
#define FILES(field) offsetof(eddy_files_config, field)
#define ACME(field) offsetof(eddy_acme_config, field)

static const opt_spec specs[] = {
    {"--listen", "HOST:PORT", OPT_LISTEN, 0,
     "address to listen on; repeatable; IPv6 as [::1]:PORT;\n"
     "port 0 picks a free port (default " CLI_DEFAULT_LISTEN ")"},
    {"--listen-tls", "HOST:PORT", OPT_LISTEN_TLS, 0,
     "address to listen on for HTTPS; repeatable; needs --cert\n"
     "and --key"},
    {"--cert", "CERT.pem", OPT_CERT, 0,
     "certificate chain (PEM, leaf first) for HTTPS; repeatable,\n"
     "each with the --key given in the same position; SNI picks\n"
     "the one naming the host, the first answers the rest"},
    {"--key", "KEY.pem", OPT_KEY, 0, "private key (PEM, RSA or ECDSA) of the --cert before"},
    {"--tls-min", "1.2|1.3", OPT_TLS_MIN, 0, "oldest TLS version taken (default 1.2)"},
    {"--acme-domain", "NAME", OPT_ACME_DOMAIN, 0,
     "get and renew a certificate for NAME from an ACME CA (Let's\n"
     "Encrypt by default); repeatable: one certificate for all;\n"
     "needs --listen-tls, and --listen for HTTP-01"},
    {"--acme-email", "ADDRESS", OPT_ACME_TEXT, ACME(email),
     "contact address of the ACME account (default: none)"},
    {"--acme-directory", "URL", OPT_ACME_TEXT, ACME(directory),
     "the CA's ACME directory (default Let's Encrypt's:\n" EDDY_ACME_LETSENCRYPT ";\n"
     "staging: " EDDY_ACME_LETSENCRYPT_STAGING ")"},
    {"--acme-ca-root", "FILE", OPT_ACME_TEXT, ACME(ca_root),
     "PEM file to check the CA's own HTTPS with (a private or\n"
     "test CA; default: the system's)"},
    {"--acme-challenge", "http-01|tls-alpn-01", OPT_ACME_CHALLENGE, 0,
     "how the CA checks the names (default http-01 with a\n"
     "--listen address, else tls-alpn-01)"},
    {"--acme-retry", "SECONDS", OPT_ACME_SECONDS, ACME(retry_ms),
     "wait after a failed attempt, doubled each time up to a\n"
     "day (default 60)"},
    {"--state-dir", "DIR", OPT_ACME_TEXT, ACME(state_dir),
     "where the ACME account key and certificates are kept\n"
     "(default /var/lib/eddy as root, else ~/.local/state/eddy)"},
    {"--redirect-https", "", OPT_PROG_SWITCH, offsetof(cli_options, redirect_https),
     "answer every request on the plain --listen addresses with\n"
     "308 to the same host and path on the first --listen-tls port"},
    {"--hsts", "SECONDS", OPT_COUNT, CFG(hsts_seconds),
     "add Strict-Transport-Security: max-age=SECONDS to responses\n"
     "over HTTPS (default: none)"},
    {"--no-http2", "", OPT_SWITCH, CFG(no_http2),
     "speak HTTP/1.1 alone: no h2 by ALPN, no h2c with prior\n"
     "knowledge (default: both)"},
    {"--h2-max-streams", "N", OPT_COUNT, CFG(h2_max_streams),
     "streams one HTTP/2 connection may have open at once\n(default 100)"},
    {"--root", "DIR", OPT_ROOT, 0, "directory to serve (default www)"},
    {"--workers", "N", OPT_PROG_COUNT, offsetof(cli_options, workers),
     "threads serving, each with its own loop (default: one per\n"
     "CPU; 1 when --max-conns is given)"},
    {"--max-conns", "N", OPT_COUNT, CFG(max_conns),
     "connections handled at once (per worker); more wait in the\n"
     "kernel's backlog until one ends (default 0: no limit)"},
    {"--delay", "PATH=SECONDS", OPT_DELAY, 0,
     "answer PATH as / is answered, after SECONDS; repeatable"},
    {"--proxy", "PATH=URL[,URL...]", OPT_PROXY, 0,
     "forward requests under PATH to the backends, each\n"
     "http://HOST[:PORT] or unix:/PATH, in turn; repeatable;\n"
     "PATH / takes the place of the files"},
    {"--max-request-line", "BYTES", OPT_BYTES, CFG(max_request_line),
     "longest request line, else 414 (default 8192)"},
    {"--max-header-bytes", "BYTES", OPT_BYTES, CFG(max_header_bytes),
     "largest request head, else 431 (default 16384)"},
    {"--max-headers", "N", OPT_COUNT, CFG(max_headers),
     "most fields in a request head, else 431 (default 100)"},
    {"--max-body", "BYTES", OPT_BYTES, CFG(max_body),
     "largest request body, else 413 (default 1048576)"},
    {"--header-timeout", "SECONDS", OPT_SECONDS, CFG(header_ms),
     "time for a whole request head to arrive (default 30)"},
    {"--keepalive-timeout", "SECONDS", OPT_SECONDS, CFG(keepalive_ms),
     "time a connection may idle between requests (default 75)"},
    {"--send-timeout", "SECONDS", OPT_SECONDS, CFG(send_ms),
     "time a client may stop taking a response (default 60)"},
    {"--dotfiles", "", OPT_FILES_SWITCH, FILES(dotfiles), "serve names starting with '.' (default: 404)"},
    {"--autoindex", "", OPT_FILES_SWITCH, FILES(autoindex),
     "list directories that have no index.html (default: 404)"},
    {"--cache-control", "VALUE", OPT_FILES_TEXT, FILES(cache_control),
     "Cache-Control field for files, like 'max-age=3600'\n(default: none)"},
    {"--index", "NAME", OPT_INDEX, 0,
     "a directory's own page, tried in order; repeatable\n"
     "(default index.html)"},
    {"--no-precompressed", "", OPT_FILES_SWITCH, FILES(no_precompressed),
     "never serve a file's .br or .gz copy in its place (default:\n"
     "to clients that accept the coding, when not older)"},
    {"--header", "'NAME: VALUE'", OPT_HEADER, 0,
     "add this field to every response; repeatable (framing\n"
     "fields, Date, Server and Content-Type stay eddy's)"},
    {"--access-log", "PATH", OPT_TEXT, CFG(access_log),
     "append a line per response (combined log format) to PATH;\n"
     "'-' for standard output (default: none)"},
    {"--access-log-format", "combined|json", OPT_LOG, 0,
     "the access log's lines: the combined log format, or one\n"
     "JSON object each (default combined)"},
    {"--error-log", "PATH", OPT_PROG_TEXT, offsetof(cli_options, error_log),
     "append eddy's own lines (errors, warnings, events) to PATH;\n"
     "'-' for standard error (default)"},
    {"--log-level", ERRLOG_LEVELS, OPT_LOG, 0,
     "the least important lines the error log keeps (default info)"},
    {"--status", "PATH", OPT_PROG_TEXT, offsetof(cli_options, status),
     "on every site, a live dashboard at PATH, Prometheus metrics\n"
     "at PATH/metrics and JSON at PATH/json (default: off)"},
    {"--status-allow", "CIDR", OPT_STATUS_ALLOW, 0,
     "addresses allowed to see --status, others get 403;\n"
     "repeatable (default 127.0.0.1/32 and ::1/128)"},
    {"--no-io-uring", "", OPT_PROG_SWITCH, offsetof(cli_options, no_io_uring),
     "drive sockets with epoll alone (default: io_uring when the\n"
     "kernel allows it, batching a turn's reads and writes into\n"
     "one system call)"},
    {"--shutdown-timeout", "SECONDS", OPT_PROG_SECONDS, offsetof(cli_options, shutdown_ms),
     "on SIGTERM/SIGINT, time for requests in flight to finish\n"
     "before they are cut (default 30)"},
    {"--user", "NAME", OPT_PROG_TEXT, offsetof(cli_options, user),
     "once the ports are bound and the keys read, run as this\n"
     "user and its groups (needed as root with a port below 1024;\n"
     "default: stay who started eddy)"},
};

void cli_usage(FILE *out)
{
    fprintf(out, "usage: eddy [options]\nServes files over HTTP/1.1, HTTP/2 and HTTPS.\n\n");
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        /* Help text lines after the first are indented under it. */
        char col[48];
        snprintf(col, sizeof(col), "%s%s%s", specs[i].name, *specs[i].arg ? " " : "", specs[i].arg);
        fprintf(out, "  %-30s ", col);
        for (const char *h = specs[i].help; *h; h++) {
            fputc(*h, out);
            if (*h == '\n')
                fprintf(out, "  %-30s ", "");
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-30s read the configuration from FILE (YAML; every flag\n"
                 "  %-30s is a key of the same name, and wins over it)\n",
            "-c, --config FILE", "");
    fprintf(out, "  %-30s check the configuration (with -c) and exit: 0 good,\n"
                 "  %-30s 2 with a FILE:LINE:COL: line per error\n",
            "-t, --test", "");
    fprintf(out, "  %-30s print the configuration file's keys (Markdown)\n",
            "--config-reference");
    fprintf(out, "  %-30s show this help\n  %-30s show the version\n", "--help", "--version");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds_ms(const char *s, unsigned *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v <= 0 || v > CLI_MAX_TIMEOUT_S)
        return -1;
    long long r = llround(v * 1000.0);
    *ms = r < 1 ? 1 : (unsigned)r;
    return 0;
}

unsigned cli_port_of(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
}

bool cli_backend_url(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "unix:/", 6) == 0;
}

/* --proxy PATH=URL[,URL...]: the path up to the first '=' (a prefix is
 * rarely written with one; a backend's URL may hold one, in a unix path). */
static int add_proxy(cli_options *opt, const char *val, char *err, size_t err_len)
{
    if (opt->nproxies == CLI_MAX_PROXIES) {
        snprintf(err, err_len, "at most %d --proxy routes", CLI_MAX_PROXIES);
        return -1;
    }
    for (const char *q = val; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
            snprintf(err, err_len, "--proxy must be one line of text");
            return -1;
        }
    const char *eq = strchr(val, '=');
    if (val[0] != '/' || !eq || !eq[1]) {
        snprintf(err, err_len,
                 "--proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, not '%s'", val);
        return -1;
    }
    cli_proxy *p = &opt->proxies[opt->nproxies];
    memset(p, 0, sizeof(*p));
    p->spec = strdup(val);
    if (!p->spec) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    char *cut = p->spec + (eq - val);
    *cut = 0;
    p->path = p->spec;
    for (unsigned i = 0; i < opt->nproxies; i++)
        if (strcmp(opt->proxies[i].path, p->path) == 0) {
            snprintf(err, err_len, "--proxy routes %s twice", p->path);
            free(p->spec);
            return -1;
        }
    for (char *url = cut + 1, *next; url; url = next) {
        next = strchr(url, ',');
        if (next)
            *next++ = 0;
        if (!cli_backend_url(url) || p->nbackends == CONFIG_MAX_BACKENDS) {
            if (p->nbackends == CONFIG_MAX_BACKENDS)
                snprintf(err, err_len, "at most %d backends in a --proxy", CONFIG_MAX_BACKENDS);
            else
                snprintf(err, err_len, "--proxy wants backends as http://HOST[:PORT] or "
                                       "unix:/PATH, not '%s'", url);
            free(p->spec);
            return -1;
        }
        p->backends[p->nbackends++] = url;
    }
    opt->nproxies++;
    return 0;
}

static void free_proxies(cli_options *opt)
{
    for (unsigned i = 0; i < opt->nproxies; i++)
        free(opt->proxies[i].spec);
    opt->nproxies = 0;
}

static const opt_spec *find_spec(const char *name)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* --access-log-format and --log-level: a name from a short list. */
static int log_choice(cli_options *opt, const opt_spec *sp, const char *val, char *err,
                      size_t err_len)
{
    if (strcmp(sp->name, "--log-level") == 0) {
        int level = errlog_level_parse(val);
        if (level < 0) {
            snprintf(err, err_len, "--log-level wants %s, not '%s'", ERRLOG_LEVELS, val);
            return -1;
        }
        opt->log_level = (unsigned)level;
        return 0;
    }
    if (strcmp(val, "combined") != 0 && strcmp(val, "json") != 0) {
        snprintf(err, err_len, "--access-log-format wants combined or json, not '%s'", val);
        return -1;
    }
    opt->config.access_log_format = val[0] == 'j' ? EDDY_LOG_JSON : EDDY_LOG_COMBINED;
    return 0;
}

static int apply(cli_options *opt, const opt_spec *sp, const char *val, char *err, size_t err_len)
{
    bool prog = sp->kind == OPT_PROG_SECONDS || sp->kind == OPT_PROG_COUNT ||
                sp->kind == OPT_PROG_SWITCH || sp->kind == OPT_PROG_TEXT;
    bool files = sp->kind == OPT_FILES_SWITCH || sp->kind == OPT_FILES_TEXT;
    bool acme = sp->kind == OPT_ACME_TEXT || sp->kind == OPT_ACME_SECONDS;
    char *base = prog    ? (char *)opt
                 : files ? (char *)&opt->files
                 : acme  ? (char *)&opt->acme
                         : (char *)&opt->config;
    uint64_t n;
    if (sp->kind == OPT_ROOT || files || sp->kind == OPT_DELAY || sp->kind == OPT_INDEX ||
        sp->kind == OPT_PROXY)
        opt->site_option = sp->name; /* what the one site of flags is made of */
    switch (sp->kind) {
    case OPT_INDEX:
        if (opt->files.nindex == CLI_MAX_INDEX) {
            snprintf(err, err_len, "at most %d --index names", CLI_MAX_INDEX);
            return -1;
        }
        if (!*val || strchr(val, '/') || strcmp(val, ".") == 0 || strcmp(val, "..") == 0) {
            snprintf(err, err_len, "--index wants a file name, like index.html, not '%s'", val);
            return -1;
        }
        opt->index[opt->files.nindex++] = val;
        opt->files.index = opt->index;
        return 0;
    case OPT_LISTEN:
        if (opt->nlisten == CLI_MAX_LISTEN) {
            snprintf(err, err_len, "at most %d --listen addresses", CLI_MAX_LISTEN);
            return -1;
        }
        opt->listen[opt->nlisten++] = val;
        return 0;
    case OPT_LISTEN_TLS:
        if (opt->nlisten_tls == CLI_MAX_LISTEN) {
            snprintf(err, err_len, "at most %d --listen-tls addresses", CLI_MAX_LISTEN);
            return -1;
        }
        opt->listen_tls[opt->nlisten_tls++] = val;
        return 0;
    case OPT_CERT:
    case OPT_KEY: {
        unsigned *count = sp->kind == OPT_CERT ? &opt->ncerts : &opt->nkeys;
        if (*count == CLI_MAX_CERTS) {
            snprintf(err, err_len, "at most %d %s files", CLI_MAX_CERTS, sp->name);
            return -1;
        }
        (sp->kind == OPT_CERT ? opt->certs : opt->keys)[(*count)++] = val;
        return 0;
    }
    case OPT_TLS_MIN:
        if (strcmp(val, "1.2") != 0 && strcmp(val, "1.3") != 0) {
            snprintf(err, err_len, "--tls-min wants 1.2 or 1.3, not '%s'", val);
            return -1;
        }
        opt->tls.min_version = val[2] == '3' ? 13 : 12;
        return 0;
    case OPT_ACME_DOMAIN:
        if (opt->acme.nnames == CLI_MAX_ACME_NAMES) {
            snprintf(err, err_len, "at most %d --acme-domain names", CLI_MAX_ACME_NAMES);
            return -1;
        }
        opt->acme_names[opt->acme.nnames++] = val;
        opt->acme.names = opt->acme_names;
        return 0;
    case OPT_ACME_CHALLENGE:
        if (strcmp(val, "http-01") == 0)
            opt->acme.challenge = EDDY_ACME_HTTP01;
        else if (strcmp(val, "tls-alpn-01") == 0)
            opt->acme.challenge = EDDY_ACME_TLS_ALPN01;
        else {
            snprintf(err, err_len, "--acme-challenge wants http-01 or tls-alpn-01, not '%s'", val);
            return -1;
        }
        opt->acme_challenge_set = true;
        return 0;
    case OPT_ROOT:
        opt->files.root = val;
        return 0;
    case OPT_HEADER: {
        if (opt->config.nresponse_fields == CLI_MAX_HEADERS) {
            snprintf(err, err_len, "at most %d --header fields", CLI_MAX_HEADERS);
            return -1;
        }
        const char *colon = strchr(val, ':');
        if (!colon || colon == val) {
            snprintf(err, err_len, "--header wants 'NAME: VALUE', like 'X-Frame-Options: DENY', not '%s'",
                     val);
            return -1;
        }
        opt->headers[opt->config.nresponse_fields++] = val;
        opt->config.response_fields = opt->headers;
        return 0;
    }
    case OPT_DELAY:
        if (opt->ndelays == CLI_MAX_DELAYS) {
            snprintf(err, err_len, "at most %d --delay routes", CLI_MAX_DELAYS);
            return -1;
        }
        if (delay_parse(val, &opt->delays[opt->ndelays]) < 0) {
            snprintf(err, err_len, "--delay wants PATH=SECONDS, like /sleep=5, not '%s'", val);
            return -1;
        }
        opt->ndelays++;
        return 0;
    case OPT_PROXY:
        return add_proxy(opt, val, err, err_len);
    case OPT_STATUS_ALLOW:
        if (opt->nstatus_allow == CLI_MAX_STATUS_ALLOW) {
            snprintf(err, err_len, "at most %d --status-allow blocks", CLI_MAX_STATUS_ALLOW);
            return -1;
        }
        opt->status_allow[opt->nstatus_allow++] = val; /* checked with --status, at the end */
        return 0;
    case OPT_LOG:
        return log_choice(opt, sp, val, err, err_len);
    case OPT_PROG_COUNT:
        if (parse_u64(val, CLI_MAX_WORKERS, &n) < 0 || n == 0) {
            snprintf(err, err_len, "%s wants a number from 1 to %d, not '%s'", sp->name,
                     CLI_MAX_WORKERS, val);
            return -1;
        }
        *(unsigned *)(base + sp->offset) = (unsigned)n;
        return 0;
    case OPT_COUNT:
        if (parse_u64(val, UINT_MAX, &n) < 0) {
            snprintf(err, err_len, "%s wants a whole number, not '%s'", sp->name, val);
            return -1;
        }
        *(unsigned *)(base + sp->offset) = (unsigned)n;
        return 0;
    case OPT_BYTES:
        if (strcmp(sp->name, "--max-body") == 0) {
            if (parse_u64(val, UINT64_MAX, &n) < 0 || n == 0) {
                snprintf(err, err_len, "%s wants a number of bytes above 0, not '%s'", sp->name, val);
                return -1;
            }
            *(uint64_t *)(base + sp->offset) = n;
            return 0;
        }
        if (parse_u64(val, UINT32_MAX / 2, &n) < 0 || n < 64) {
            snprintf(err, err_len, "%s wants a number of bytes from 64, not '%s'", sp->name, val);
            return -1;
        }
        *(unsigned *)(base + sp->offset) = (unsigned)n;
        return 0;
    case OPT_SWITCH:
    case OPT_PROG_SWITCH:
    case OPT_FILES_SWITCH:
        *(bool *)(base + sp->offset) = true;
        return 0;
    case OPT_TEXT:
    case OPT_PROG_TEXT:
    case OPT_FILES_TEXT:
    case OPT_ACME_TEXT:
        for (const char *q = val; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                snprintf(err, err_len, "%s must be one line of text", sp->name);
                return -1;
            }
        *(const char **)(base + sp->offset) = val;
        return 0;
    case OPT_SECONDS:
    case OPT_PROG_SECONDS:
    case OPT_ACME_SECONDS:
        if (parse_seconds_ms(val, (unsigned *)(base + sp->offset)) < 0) {
            snprintf(err, err_len, "%s wants seconds above 0 (like 30 or 0.5), not '%s'", sp->name,
                     val);
            return -1;
        }
        return 0;
    }
    return -1;
}

#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static bool is_switch(const opt_spec *sp)
{
    return sp->kind == OPT_SWITCH || sp->kind == OPT_PROG_SWITCH || sp->kind == OPT_FILES_SWITCH;
}

static bool is_list(const opt_spec *sp)
{
    return sp->kind == OPT_LISTEN || sp->kind == OPT_LISTEN_TLS || sp->kind == OPT_CERT ||
           sp->kind == OPT_KEY || sp->kind == OPT_ACME_DOMAIN || sp->kind == OPT_HEADER ||
           sp->kind == OPT_DELAY || sp->kind == OPT_INDEX || sp->kind == OPT_PROXY ||
           sp->kind == OPT_STATUS_ALLOW;
}

/* A list flag on the command line replaces what the file listed. */
static void clear_list(cli_options *opt, const opt_spec *sp)
{
    switch (sp->kind) {
    case OPT_LISTEN: opt->nlisten = 0; break;
    case OPT_LISTEN_TLS: opt->nlisten_tls = 0; break;
    case OPT_CERT: opt->ncerts = 0; break;
    case OPT_KEY: opt->nkeys = 0; break;
    case OPT_ACME_DOMAIN: opt->acme.nnames = 0; break;
    case OPT_HEADER: opt->config.nresponse_fields = 0; break;
    case OPT_INDEX: opt->files.nindex = 0; break;
    case OPT_DELAY:
        for (unsigned i = 0; i < opt->ndelays; i++)
            free(opt->delays[i].path);
        opt->ndelays = 0;
        break;
    case OPT_PROXY: free_proxies(opt); break;
    case OPT_STATUS_ALLOW: opt->nstatus_allow = 0; break;
    default: break;
    }
}

unsigned cli_listen_tag(const char *addr)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        h = (h ^ *p) * 16777619u;
    return 1 + h % EDDY_LISTENER_TAG_MAX;
}

enum cli_key cli_key_kind(const char *key)
{
    char name[48];
    snprintf(name, sizeof(name), "--%s", key);
    const opt_spec *sp = strlen(key) < 40 ? find_spec(name) : NULL;
    return !sp ? CLI_KEY_UNKNOWN : is_switch(sp) ? CLI_KEY_SWITCH : is_list(sp) ? CLI_KEY_LIST
                                                                            : CLI_KEY_VALUE;
}

int cli_set(cli_options *opt, const char *key, const char *value, char *err, size_t err_len)
{
    char name[48];
    snprintf(name, sizeof(name), "--%s", key);
    const opt_spec *sp = strlen(key) < 40 ? find_spec(name) : NULL;
    if (!sp) {
        snprintf(err, err_len, "unknown key '%s'", key);
        return -1;
    }
    if (!is_switch(sp))
        return apply(opt, sp, value, err, err_len);
    bool on = strcmp(value, "true") == 0;
    if (!on && strcmp(value, "false") != 0) {
        snprintf(err, err_len, "%s wants true or false, not '%s'", key, value);
        return -1;
    }
    if (on)
        return apply(opt, sp, "", err, err_len);
    char *base = sp->kind == OPT_PROG_SWITCH    ? (char *)opt
                 : sp->kind == OPT_FILES_SWITCH ? (char *)&opt->files
                                                : (char *)&opt->config;
    *(bool *)(base + sp->offset) = false;
    return 0;
}

void cli_keys_reference(FILE *out)
{
    for (size_t i = 0; i < NSPECS; i++) {
        const opt_spec *sp = &specs[i];
        fprintf(out, "| `%s` | ", sp->name + 2);
        for (const char *v = is_switch(sp) ? "true/false" : is_list(sp) ? "list" : sp->arg; *v; v++)
            fputc(*v == '|' ? '/' : *v, out); /* a table's cell */
        fprintf(out, " | ");
        for (const char *h = sp->help; *h; h++)
            fputc(*h == '\n' ? ' ' : *h == '|' ? '/' : *h, out);
        fprintf(out, " |\n");
    }
}

/* -c FILE, -t and --config-reference, which are not keys of the file. */
static int program_flag(const char *a, int *i, int argc, char **argv, cli_options *opt, char *err,
                        size_t err_len)
{
    if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0) {
        opt->test_only = true;
        return 1;
    }
    if (strcmp(a, "--config-reference") == 0) {
        opt->config_reference = true;
        return 1;
    }
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "option '%s' needs a configuration file", a);
            return -1;
        }
        opt->config_file = argv[++*i];
        return 1;
    }
    if (strncmp(a, "--config=", 9) == 0) {
        opt->config_file = a + 9;
        return 1;
    }
    return 0;
}

bool cli_listed(const char *const *list, unsigned n, const char *s)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* A site's listen names addresses listened on; no two addresses share a
 * tag (a hash: two would take each other's sites). */
static int check_site_listeners(const cli_options *opt, char *err, size_t err_len)
{
    const conf *c = &opt->conf;
    for (unsigned i = 0; i < c->nsites; i++)
        for (unsigned j = 0; j < c->sites[i].nlisten; j++) {
            const char *a = c->sites[i].listen[j];
            if (!cli_listed(opt->listen, opt->nlisten, a) && !cli_listed(opt->listen_tls, opt->nlisten_tls, a)) {
                snprintf(err, err_len, "%s:%u:%u: a site listens on '%s', which is not in listen or "
                                       "listen-tls (write it the same way)",
                         c->file, c->sites[i].listen_mark.line, c->sites[i].listen_mark.col, a);
                return -1;
            }
        }
    const char *all[2 * CLI_MAX_LISTEN];
    unsigned n = 0;
    for (unsigned i = 0; i < opt->nlisten; i++)
        all[n++] = opt->listen[i];
    for (unsigned i = 0; i < opt->nlisten_tls; i++)
        all[n++] = opt->listen_tls[i];
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            if (strcmp(all[i], all[j]) != 0 && cli_listen_tag(all[i]) == cli_listen_tag(all[j])) {
                snprintf(err, err_len, "the addresses '%s' and '%s' hash alike; write one "
                                       "differently (like 0.0.0.0:80 for :80)", all[i], all[j]);
                return -1;
            }
    return 0;
}

int cli_parse(int argc, char **argv, cli_options *opt, char *err, size_t err_len)
{
    memset(opt, 0, sizeof(*opt));
    opt->files.root = "www";
    opt->shutdown_ms = CLI_DEFAULT_SHUTDOWN_MS;
    opt->log_level = ERRLOG_INFO;
    for (int i = 1; i < argc; i++)
        if (program_flag(argv[i], &i, argc, argv, opt, err, err_len) < 0)
            return -1;
    if (opt->config_file) {
        int n = config_load_file(opt->config_file, opt, &opt->conf, stderr);
        if (n != 0) {
            if (n > 0)
                snprintf(err, err_len, "%s: %d error%s", opt->config_file, n, n > 1 ? "s" : "");
            else
                snprintf(err, err_len, "cannot use configuration file '%s'", opt->config_file);
            return -1;
        }
    } else if (opt->test_only) {
        snprintf(err, err_len, "-t checks a configuration file: give it with -c FILE");
        return -1;
    }
    bool given[NSPECS] = {false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
        int p = program_flag(a, &i, argc, argv, opt, err, err_len);
        if (p)
            continue;
        /* Accept both "--flag value" and "--flag=value". */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            a = name;
            val = eq + 1;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            opt->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            opt->version = true;
            continue;
        }
        const opt_spec *sp = find_spec(a);
        if (!sp) {
            snprintf(err, err_len, "unknown option '%s' (see --help)", argv[i]);
            return -1;
        }
        if (is_list(sp) && !given[sp - specs])
            clear_list(opt, sp);
        given[sp - specs] = true;
        if (is_switch(sp)) {
            if (val) {
                snprintf(err, err_len, "option '%s' takes no value", a);
                return -1;
            }
            apply(opt, sp, "", err, err_len);
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, err_len, "option '%s' needs a value (see --help)", a);
                return -1;
            }
            val = argv[++i];
        }
        if (apply(opt, sp, val, err, err_len) < 0)
            return -1;
    }
    if (opt->conf.has_sites && opt->site_option) {
        snprintf(err, err_len,
                 "%s is for the one site flags make; with sites in %s, give it in a site's paths",
                 opt->site_option, opt->config_file);
        return -1;
    }
    /* The sites' certificates join the flags' in the one set SNI picks from. */
    for (unsigned i = 0; i < opt->conf.nsites; i++)
        for (unsigned j = 0; j < opt->conf.sites[i].ncerts; j++) {
            if (opt->ncerts == CLI_MAX_CERTS) {
                snprintf(err, err_len, "at most %d certificates in all", CLI_MAX_CERTS);
                return -1;
            }
            opt->certs[opt->ncerts++] = opt->conf.sites[i].certs[j];
            opt->keys[opt->nkeys++] = opt->conf.sites[i].keys[j];
        }
    bool site_acme = false;
    for (unsigned i = 0; i < opt->conf.nsites; i++)
        site_acme |= opt->conf.sites[i].acme;
    if (opt->ncerts != opt->nkeys) {
        snprintf(err, err_len, "each --cert needs its --key (%u certificates, %u keys)", opt->ncerts,
                 opt->nkeys);
        return -1;
    }
    if (opt->nlisten_tls && !opt->ncerts && !opt->acme.nnames && !site_acme) {
        snprintf(err, err_len, "--listen-tls needs a --cert and its --key, or --acme-domain");
        return -1;
    }
    if ((opt->acme.nnames || site_acme) && !opt->nlisten_tls) {
        snprintf(err, err_len, "--acme-domain gets a certificate for --listen-tls, and there is none");
        return -1;
    }
    if (!opt->acme.nnames && !site_acme && (opt->acme.email || opt->acme.directory || opt->acme.ca_root ||
                              opt->acme.state_dir || opt->acme.retry_ms || opt->acme_challenge_set)) {
        snprintf(err, err_len, "the --acme-* and --state-dir flags need --acme-domain");
        return -1;
    }
    if (!opt->acme_challenge_set && !opt->nlisten)
        opt->acme.challenge = EDDY_ACME_TLS_ALPN01; /* nowhere to answer HTTP-01 */
    if ((opt->acme.nnames || site_acme) && opt->acme.challenge == EDDY_ACME_HTTP01 && !opt->nlisten) {
        snprintf(err, err_len, "--acme-challenge http-01 is answered on a --listen address, and there is none");
        return -1;
    }
    if (opt->ncerts && !opt->nlisten_tls) {
        snprintf(err, err_len, "--cert is for --listen-tls addresses, and there are none");
        return -1;
    }
    if (opt->nstatus_allow && !opt->status) {
        snprintf(err, err_len, "--status-allow is for the status page, and --status is not given");
        return -1;
    }
    if (opt->status) { /* the page's own checks, of the path and the blocks */
        eddy_status_config sc = {opt->status, opt->status_allow, opt->nstatus_allow};
        eddy_status *st;
        if (eddy_status_new(&sc, &st, err, err_len) < 0)
            return -1;
        eddy_status_free(st);
    }
    if (opt->redirect_https && !opt->nlisten_tls) {
        snprintf(err, err_len, "--redirect-https needs a --listen-tls address to send clients to");
        return -1;
    }
    opt->tls.certs = opt->certs;
    opt->tls.keys = opt->keys;
    opt->tls.npairs = opt->ncerts;
    opt->tls.no_http2 = opt->config.no_http2;
    /* The default plain address only when no address at all is given. */
    if (opt->nlisten == 0 && opt->nlisten_tls == 0)
        opt->listen[opt->nlisten++] = CLI_DEFAULT_LISTEN;
    if (check_site_listeners(opt, err, err_len) < 0)
        return -1;
    if (opt->workers == 0) {
        /* A connection limit is a promise about the whole server; with one
         * worker it holds exactly, so that is the default under it. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        opt->workers = opt->config.max_conns || cpus < 1 ? 1
                       : cpus > CLI_MAX_WORKERS ? CLI_MAX_WORKERS : (unsigned)cpus;
    }
    return 0;
}

void cli_free(cli_options *opt)
{
    config_free(&opt->conf);
    for (unsigned i = 0; i < opt->ndelays; i++)
        free(opt->delays[i].path);
    opt->ndelays = 0;
    free_proxies(opt);
}
