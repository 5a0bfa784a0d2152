/* The eddy program's workers, and what a reload (SIGHUP) hands them. */
#ifndef EDDY_SERVER_WORKER_H
#define EDDY_SERVER_WORKER_H

#include "server/cli.h"

#include <pthread.h>
#include <stdatomic.h>

/* What a reload asks of one worker, on its own thread. */
typedef struct reload_job {
    eddy_sites *sites;                 /* taken by the worker's server */
    const char *close[2 * CLI_MAX_LISTEN]; /* addresses bound, to stop listening on */
    unsigned nclose;
    const char *open[CLI_MAX_LISTEN];  /* to listen on (plain) */
    unsigned open_tag[CLI_MAX_LISTEN]; /* their tags (cli_listen_tag of the address given) */
    unsigned nopen;
    const char *open_tls[CLI_MAX_LISTEN];
    unsigned open_tls_tag[CLI_MAX_LISTEN];
    unsigned nopen_tls;
    eddy_tls *tls;
    char bound[CLI_MAX_LISTEN][80];    /* what open[i] bound ("" on failure) */
    char bound_tls[CLI_MAX_LISTEN][80];
    char err[256];                     /* the first failure, if any */
} reload_job;

typedef struct worker {
    eddy_loop *loop;
    eddy_server *srv;
    eddy_async *stop;   /* graceful: finish what is in flight */
    eddy_async *cut;    /* the shutdown timeout ran out */
    eddy_async *apply;  /* a reload: do *job */
    eddy_async *reopen; /* SIGUSR1: reopen the access log */
    reload_job *job;
    atomic_bool job_done;
    pthread_t thread;
    unsigned index;     /* 1-based, for log lines */
    eddy_metrics *metrics; /* --status: its server counts into slot index - 1 */
    bool running;
    atomic_bool done;
} worker;

/* What the main thread keeps between reloads. */
typedef struct program {
    int argc;
    char **argv;
    cli_options *first;   /* the options eddy started with (restart-only keys) */
    cli_options *current; /* the options last applied */
    worker *w;
    unsigned nworkers;
    eddy_tls *tls;        /* NULL: no TLS listener */
    /* Each address listened on as given, and as the first worker bound it. */
    char listen[CLI_MAX_LISTEN][80], listen_tls[CLI_MAX_LISTEN][80];
    char bound[CLI_MAX_LISTEN][80], bound_tls[CLI_MAX_LISTEN][80];
    unsigned nlisten, nlisten_tls;
} program;

/* Runs on the worker's thread: swaps the sites, stops and starts listening. */
void worker_apply(void *data);
/* SIGHUP: reads the configuration again and, once every part of it is
 * known good, gives it to the workers; else keeps what is in use and says
 * why in the error log. */
void reload(program *p);

#endif
