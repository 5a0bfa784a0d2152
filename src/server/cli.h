/* Command-line flags of the eddy program. */
#ifndef EDDY_SERVER_CLI_H
#define EDDY_SERVER_CLI_H

#include "eddy.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
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
    unsigned shutdown_ms;  /* --shutdown-timeout */
    unsigned workers;      /* --workers, or the default chosen by cli_parse */
    bool no_io_uring;      /* --no-io-uring */
    bool help, version;
} cli_options;

/* Returns 0, or -1 after writing one line about the problem to err. */
int cli_parse(int argc, char **argv, cli_options *opt, char *err, size_t err_len);
void cli_usage(FILE *out);
void cli_free(cli_options *opt);

#endif
