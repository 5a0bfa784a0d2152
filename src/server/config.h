/* The configuration file (eddy -c FILE): YAML, read with libyaml.  Its
 * top-level keys are the flags of the same name (without "--"), checked
 * by the same code as the flags; `sites` lists the sites, each with its
 * names and an ordered list of paths with one handler each.  Every error
 * is reported as FILE:LINE:COL: message. */
#ifndef EDDY_SERVER_CONFIG_H
#define EDDY_SERVER_CONFIG_H

#include "eddy.h"
#include <stdbool.h>
#include <stdio.h>

/* Largest configuration file read (a mistake, not a configuration, past it). */
#define CONFIG_MAX_BYTES (1024 * 1024)
/* Most YAML nodes visited: aliases may make a small file look huge. */
#define CONFIG_MAX_NODES 100000
/* Most sites, paths per site, names per site, and errors reported. */
#define CONFIG_MAX_SITES 256
#define CONFIG_MAX_PATHS 256
#define CONFIG_MAX_NAMES 64
#define CONFIG_MAX_ERRORS 50
/* Most keys in one mapping (each is compared with the others). */
#define CONFIG_MAX_KEYS 1000
/* Most header rules of one site or path (the core's bound). */
#define CONFIG_MAX_HEADER_RULES 64
/* Longest timeout a limit takes: a day, as the flags. */
#define CONFIG_MAX_TIMEOUT_S 86400.0
/* A proxy's backends and trusted addresses (each request looks through
 * them: a short list, a mistake past these). */
#define CONFIG_MAX_BACKENDS 64
#define CONFIG_MAX_TRUSTED 64
/* Idle connections a proxy keeps per backend: each is a descriptor held
 * in every worker, so far fewer than a process may open. */
#define CONFIG_MAX_PROXY_KEEPALIVE 10000
/* Failures in a row that mark a backend down: past this, passive health
 * checks would never fire. */
#define CONFIG_MAX_PROXY_FAILS 1000

/* Where something was written, for messages about it found later. */
typedef struct conf_mark {
    unsigned line, col; /* 1-based; 0: not from the file */
} conf_mark;

typedef struct conf_header {
    enum eddy_header_op op;
    char *field;        /* "Name: value", or "Name" for a removal */
} conf_header;

/* Rules for a site or a path and what lies below it. */
typedef struct conf_rules {
    conf_header *headers;
    unsigned nheaders;
    uint64_t max_body;  /* 0: not set here */
    unsigned send_ms;   /* 0: not set here */
    unsigned body_ms;   /* 0: not set here */
} conf_rules;

enum conf_handler { CONF_NO_HANDLER, CONF_FILES, CONF_REDIRECT, CONF_RESPOND, CONF_PROXY };

typedef struct conf_path {
    char *path;
    conf_mark mark;
    enum conf_handler handler;
    eddy_files_config files;  /* CONF_FILES; strings owned by the conf */
    conf_mark root_mark;
    int status;               /* CONF_REDIRECT (301..308), CONF_RESPOND */
    char *to;                 /* CONF_REDIRECT: the target */
    bool append_path;         /* CONF_REDIRECT: the path below this one, and
                                 the query, go after the target */
    char *body;               /* CONF_RESPOND */
    size_t body_len;
    char *type;               /* CONF_RESPOND: Content-Type, NULL: none */
    eddy_proxy_config proxy;  /* CONF_PROXY; strings owned by the conf, the
                                 backends and trusted arrays by the path;
                                 strip_prefix is left NULL (see below) */
    bool strip_prefix;        /* CONF_PROXY: strip this path, which is only
                                 known once the whole mapping is read */
    conf_rules rules;
} conf_path;

typedef struct conf_site {
    char **names;
    unsigned nnames;
    conf_mark mark;
    bool is_default;
    bool names_given;         /* `names` was there (its names may be wrong) */
    bool acme;                /* its names get a certificate by ACME */
    conf_rules rules;
    conf_path *paths;
    unsigned npaths;
    char **certs, **keys;     /* its TLS pairs: into the server's, for SNI */
    unsigned ncerts;
    char **listen;            /* addresses (of listen, listen-tls) it alone takes */
    unsigned nlisten;
    conf_mark listen_mark;
} conf_site;

typedef struct conf {
    const char *file;         /* the file's name, for messages */
    conf_site *sites;
    unsigned nsites;
    bool has_sites;           /* the file has `sites` */
    int no_match;             /* 421 or 404; 0: the default (421) */
    char **strings;           /* every string the conf and the options hold */
    size_t nstrings, cap_strings;
} conf;

struct cli_options;

/* Reads a configuration from text (name for messages) into opt and c:
 * the flags' keys as the flags would set them, the sites into c.  Writes
 * each error to errs; returns how many (0: a good file). */
int config_load_text(const char *name, const char *text, size_t len, struct cli_options *opt,
                     conf *c, FILE *errs);
/* The same from a file: -1 (after a line on errs) when it cannot be read. */
int config_load_file(const char *path, struct cli_options *opt, conf *c, FILE *errs);
void config_free(conf *c);
/* Prints the reference of every key (Markdown), as README.md carries it. */
void config_reference(FILE *out);

#endif
