/* Command-line flags of the eddy program. */
#ifndef EDDY_SERVER_CLI_H
#define EDDY_SERVER_CLI_H

#include "eddy.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "server/config.h"
#include "server/delay.h"

#define CLI_DEFAULT_LISTEN "127.0.0.1:7878"
#define CLI_MAX_LISTEN 16
#define CLI_MAX_DELAYS 16
#define CLI_MAX_HEADERS 64
/* How long SIGTERM waits for requests in flight before cutting them. */
#define CLI_DEFAULT_SHUTDOWN_MS 30000
#define CLI_MAX_WORKERS 256
#define CLI_MAX_CERTS 32
#define CLI_MAX_ACME_NAMES 32
#define CLI_MAX_INDEX 16
#define CLI_MAX_PROXIES 16
#define CLI_MAX_STATUS_ALLOW 64

/* One --proxy PATH=URL[,URL...]: its own copy of the value, cut in place
 * into the path and the backends (the value itself is left whole: a
 * reload parses the same argv again). */
typedef struct cli_proxy {
    char *spec;                               /* owned: PATH\0URL\0URL... */
    const char *path;                         /* into spec */
    const char *backends[CONFIG_MAX_BACKENDS]; /* into spec */
    unsigned nbackends;
} cli_proxy;

typedef struct cli_options {
    eddy_config config;
    eddy_files_config files;
    const char *listen[CLI_MAX_LISTEN];
    unsigned nlisten;
    const char *listen_tls[CLI_MAX_LISTEN];
    unsigned nlisten_tls;
    const char *certs[CLI_MAX_CERTS], *keys[CLI_MAX_CERTS]; /* --cert, --key */
    unsigned ncerts, nkeys;
    eddy_tls_config tls;   /* the pairs above, --tls-min */
    bool redirect_https;   /* --redirect-https */
    const char *acme_names[CLI_MAX_ACME_NAMES]; /* --acme-domain */
    eddy_acme_config acme; /* the names above, --acme-* and --state-dir */
    bool acme_challenge_set; /* --acme-challenge was given */
    const char *headers[CLI_MAX_HEADERS]; /* --header, for config.response_fields */
    delay_route delays[CLI_MAX_DELAYS];
    unsigned ndelays;
    cli_proxy proxies[CLI_MAX_PROXIES]; /* --proxy */
    unsigned nproxies;
    unsigned shutdown_ms;  /* --shutdown-timeout */
    unsigned workers;      /* --workers, or the default chosen by cli_parse */
    bool no_io_uring;      /* --no-io-uring */
    const char *status;    /* --status PATH; NULL: off */
    const char *status_allow[CLI_MAX_STATUS_ALLOW]; /* --status-allow */
    unsigned nstatus_allow;
    const char *error_log; /* --error-log; NULL or "-": stderr */
    unsigned log_level;    /* --log-level: an enum errlog_level */
    const char *user;      /* --user: run as this user once listening */
    const char *index[CLI_MAX_INDEX]; /* --index, for files.index */
    const char *site_option; /* a flag of the one site flags make (--root...)
                                given, which a file with sites refuses */
    const char *config_file; /* -c */
    conf conf;             /* what the file said beyond the flags' keys */
    bool test_only;        /* -t: check the configuration, serve nothing */
    bool help, version, config_reference;
} cli_options;

/* Returns 0, or -1 after writing one line about the problem to err (a
 * configuration file's errors go to stderr first, one line each). */
int cli_parse(int argc, char **argv, cli_options *opt, char *err, size_t err_len);

/* The tag a listen or listen-tls address is listened with, which sites
 * limited to it name: the same for every worker and across reloads (a
 * hash of the address as given, 1..EDDY_LISTENER_TAG_MAX). */
unsigned cli_listen_tag(const char *addr);

/* Whether url names a backend as the proxy takes one: "http://..." or
 * "unix:/..." (the proxy itself checks the rest when it is made). */
bool cli_backend_url(const char *url);

/* The port of "HOST:PORT" (0 when there is none). */
unsigned cli_port_of(const char *addr);

/* Whether s is one of list's n strings. */
bool cli_listed(const char *const *list, unsigned n, const char *s);

/* What a configuration key (a flag's name without "--") takes. */
enum cli_key { CLI_KEY_UNKNOWN, CLI_KEY_SWITCH, CLI_KEY_VALUE, CLI_KEY_LIST };
enum cli_key cli_key_kind(const char *key);
/* Sets a key as its flag would ("true" or "false" for a switch); value
 * must outlive opt.  0, or -1 with a line in err. */
int cli_set(cli_options *opt, const char *key, const char *value, char *err, size_t err_len);
/* The flags' keys for the configuration reference: a Markdown table row
 * each (key, value, meaning). */
void cli_keys_reference(FILE *out);
void cli_usage(FILE *out);
void cli_free(cli_options *opt);

#endif
