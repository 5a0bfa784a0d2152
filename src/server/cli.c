#include <stdio.h>

#include "server/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void cli_usage(FILE *out)
{
    fprintf(out,
            "usage: eddy [options]\n"
            "Serves files over HTTP/1.1.\n"
            "\n"
            "  --listen HOST:PORT    address to listen on; repeatable; IPv6 as [::1]:PORT;\n"
            "                        port 0 picks a free port (default " CLI_DEFAULT_LISTEN ")\n"
            "  --root DIR            directory to serve (default www)\n"
            "  --max-conns N         connections handled at once; more wait in the\n"
            "                        kernel's backlog until one ends (default 0: no limit)\n"
            "  --delay PATH=SECONDS  answer PATH as / is answered, after SECONDS; repeatable\n"
            "  --help                show this help\n"
            "  --version             show the version\n");
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > UINT_MAX || s[0] == '-')
        return -1;
    *out = (unsigned)v;
    return 0;
}

int cli_parse(int argc, char **argv, cli_options *opt, char *err, size_t err_len)
{
    memset(opt, 0, sizeof(*opt));
    opt->config.root = "www";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
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
        bool takes_value = strcmp(a, "--listen") == 0 || strcmp(a, "--root") == 0 ||
                           strcmp(a, "--max-conns") == 0 || strcmp(a, "--delay") == 0;
        if (!takes_value) {
            snprintf(err, err_len, "unknown option '%s' (see --help)", argv[i]);
            return -1;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, err_len, "option '%s' needs a value (see --help)", a);
                return -1;
            }
            val = argv[++i];
        }
        if (strcmp(a, "--listen") == 0) {
            if (opt->nlisten == CLI_MAX_LISTEN) {
                snprintf(err, err_len, "at most %d --listen addresses", CLI_MAX_LISTEN);
                return -1;
            }
            opt->listen[opt->nlisten++] = val;
        } else if (strcmp(a, "--root") == 0) {
            opt->config.root = val;
        } else if (strcmp(a, "--max-conns") == 0) {
            if (parse_uint(val, &opt->config.max_conns) < 0) {
                snprintf(err, err_len, "--max-conns wants a whole number, not '%s'", val);
                return -1;
            }
        } else if (strcmp(a, "--delay") == 0) {
            if (opt->ndelays == CLI_MAX_DELAYS) {
                snprintf(err, err_len, "at most %d --delay routes", CLI_MAX_DELAYS);
                return -1;
            }
            if (delay_parse(val, &opt->delays[opt->ndelays]) < 0) {
                snprintf(err, err_len,
                         "--delay wants PATH=SECONDS, like /sleep=5, not '%s'", val);
                return -1;
            }
            opt->ndelays++;
        }
    }
    if (opt->nlisten == 0)
        opt->listen[opt->nlisten++] = CLI_DEFAULT_LISTEN;
    return 0;
}

void cli_free(cli_options *opt)
{
    for (unsigned i = 0; i < opt->ndelays; i++)
        free(opt->delays[i].path);
    opt->ndelays = 0;
}
