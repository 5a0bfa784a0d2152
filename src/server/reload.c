/* SIGHUP: the configuration read again, checked whole, then applied.
 *
 * Checked first, on the main thread: the flags and the file (cli_parse),
 * every worker's sites (site_build opens each root), the certificates.
 * Any failure keeps everything in use.  Then each worker, on its own
 * thread, takes its new sites (requests in flight finish on the old ones),
 * stops listening on removed addresses (their connections go on) and
 * listens on added ones; addresses that stay are never closed, so no
 * connection is refused.  Keys that only a restart can change (workers,
 * limits, timeouts...) are named in the error log and keep their old values. */
#include "server/errlog.h"
#include "server/site_build.h"
#include "server/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest a reload waits for one worker to apply its part. */
#define RELOAD_WORKER_WAIT_MS 5000

void worker_apply(void *data)
{
    worker *w = data;
    reload_job *job = w->job;
    int rc = eddy_server_use_sites(w->srv, job->sites);
    job->sites = NULL;
    if (rc < 0 && !job->err[0])
        snprintf(job->err, sizeof(job->err), "worker %u: cannot use the sites: %s", w->index,
                 strerror(-rc));
    for (unsigned i = 0; i < job->nclose; i++)
        eddy_server_unlisten(w->srv, job->close[i]);
    for (unsigned i = 0; i < job->nopen + job->nopen_tls; i++) {
        bool tls = i >= job->nopen;
        const char *addr = tls ? job->open_tls[i - job->nopen] : job->open[i];
        char *bound = tls ? job->bound_tls[i - job->nopen] : job->bound[i];
        unsigned tag = tls ? job->open_tls_tag[i - job->nopen] : job->open_tag[i];
        rc = eddy_server_listen_tagged(w->srv, addr, tls ? job->tls : NULL, tag, bound, 80);
        if (rc < 0) {
            bound[0] = 0;
            if (!job->err[0])
                snprintf(job->err, sizeof(job->err), "cannot listen on %s: %s", addr,
                         strerror(-rc));
        }
    }
    atomic_store(&w->job_done, true);
}

/* Hands job to w and waits until it is done; false if w did not answer. */
static bool run_job(worker *w, reload_job *job)
{
    atomic_store(&w->job_done, false);
    w->job = job;
    eddy_async_send(w->apply);
    struct timespec tick = {0, 1000000};
    for (int ms = 0; ms < RELOAD_WORKER_WAIT_MS; ms++) {
        if (atomic_load(&w->job_done))
            return true;
        nanosleep(&tick, NULL);
    }
    return false;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_list(const char *const *a, unsigned na, const char *const *b, unsigned nb)
{
    if (na != nb)
        return false;
    for (unsigned i = 0; i < na; i++)
        if (!same_text(a[i], b[i]))
            return false;
    return true;
}

/* Names, in the error log, the keys whose change waits for a restart. */
static void restart_only(const cli_options *o, const cli_options *n, bool tls_now)
{
    const eddy_config *a = &o->config, *b = &n->config;
    struct {
        const char *key;
        bool changed;
    } keys[] = {
        {"workers", o->workers != n->workers},
        {"max-conns", a->max_conns != b->max_conns},
        {"max-request-line", a->max_request_line != b->max_request_line},
        {"max-header-bytes", a->max_header_bytes != b->max_header_bytes},
        {"max-headers", a->max_headers != b->max_headers},
        {"max-body", a->max_body != b->max_body},
        {"header-timeout", a->header_ms != b->header_ms},
        {"keepalive-timeout", a->keepalive_ms != b->keepalive_ms},
        {"send-timeout", a->send_ms != b->send_ms},
        {"hsts", a->hsts_seconds != b->hsts_seconds},
        {"no-http2", a->no_http2 != b->no_http2},
        {"h2-max-streams", a->h2_max_streams != b->h2_max_streams},
        {"access-log", !same_text(a->access_log, b->access_log)},
        {"access-log-format", a->access_log_format != b->access_log_format},
        {"error-log", !same_text(o->error_log, n->error_log)},
        {"header", !same_list(a->response_fields, a->nresponse_fields, b->response_fields,
                              b->nresponse_fields)},
        {"redirect-https", o->redirect_https != n->redirect_https},
        {"no-io-uring", o->no_io_uring != n->no_io_uring},
        /* The counters are made at start, for --status alone: turned on
         * by a reload, the page answers 503 until a restart.  Its path,
         * status-allow and turning it off follow a reload with the sites. */
        {"status (turned on)", !o->status && n->status},
        {"user", !same_text(o->user, n->user)},
        {"tls-min", o->tls.min_version != n->tls.min_version},
        {"listen-tls (the first; no TLS before)", !tls_now && n->nlisten_tls},
        {"acme-domain", !same_list(o->acme.names, o->acme.nnames, n->acme.names, n->acme.nnames)},
        {"acme-email", !same_text(o->acme.email, n->acme.email)},
        {"acme-directory", !same_text(o->acme.directory, n->acme.directory)},
        {"acme-ca-root", !same_text(o->acme.ca_root, n->acme.ca_root)},
        {"acme-challenge", o->acme.challenge != n->acme.challenge},
        {"acme-retry", o->acme.retry_ms != n->acme.retry_ms},
        {"state-dir", !same_text(o->acme.state_dir, n->acme.state_dir)},
    };
    /* The sites with acme, in order, and their names. */
    bool acme_sites = false;
    unsigned i = 0, j = 0;
    for (;; i++, j++) {
        while (i < o->conf.nsites && !o->conf.sites[i].acme)
            i++;
        while (j < n->conf.nsites && !n->conf.sites[j].acme)
            j++;
        if (i >= o->conf.nsites || j >= n->conf.nsites) {
            acme_sites = (i >= o->conf.nsites) != (j >= n->conf.nsites);
            break;
        }
        const conf_site *x = &o->conf.sites[i], *y = &n->conf.sites[j];
        if (!same_list((const char *const *)x->names, x->nnames, (const char *const *)y->names,
                       y->nnames)) {
            acme_sites = true;
            break;
        }
    }
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (keys[k].changed)
            errlog(ERRLOG_WARN, "SIGHUP: %s changed; it takes effect at the next start",
                    keys[k].key);
    if (acme_sites)
        errlog(ERRLOG_WARN, "SIGHUP: the sites' acme names changed; they take effect at the "
                            "next start");
}

static bool kept(const char (*list)[80], unsigned n, const char *addr)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(list[i], addr) == 0)
            return true;
    return false;
}

/* The listener plan: what to close (by bound address) and open. */
static void plan_listeners(const program *p, const cli_options *n, bool tls, reload_job *job)
{
    for (unsigned i = 0; i < p->nlisten; i++)
        if (!cli_listed(n->listen, n->nlisten, p->listen[i]))
            job->close[job->nclose++] = p->bound[i];
    for (unsigned i = 0; i < p->nlisten_tls; i++)
        if (!cli_listed(n->listen_tls, n->nlisten_tls, p->listen_tls[i]))
            job->close[job->nclose++] = p->bound_tls[i];
    for (unsigned i = 0; i < n->nlisten; i++)
        if (!kept(p->listen, p->nlisten, n->listen[i])) {
            job->open_tag[job->nopen] = cli_listen_tag(n->listen[i]);
            job->open[job->nopen++] = n->listen[i];
        }
    for (unsigned i = 0; tls && i < n->nlisten_tls; i++)
        if (!kept(p->listen_tls, p->nlisten_tls, n->listen_tls[i])) {
            job->open_tls_tag[job->nopen_tls] = cli_listen_tag(n->listen_tls[i]);
            job->open_tls[job->nopen_tls++] = n->listen_tls[i];
        }
}

/* One kind of listener after the jobs: the kept addresses, then the ones
 * opened (those that bound). */
static unsigned record_kind(char (*listen)[80], char (*bound)[80], unsigned n,
                            const char *const *wanted, unsigned nwanted, const char *const *opened,
                            char (*opened_bound)[80], unsigned nopened)
{
    char l[CLI_MAX_LISTEN][80], b[CLI_MAX_LISTEN][80];
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        if (cli_listed(wanted, nwanted, listen[i])) {
            memcpy(l[k], listen[i], 80);
            memcpy(b[k++], bound[i], 80);
        }
    for (unsigned i = 0; i < nopened && k < CLI_MAX_LISTEN; i++)
        if (opened_bound[i][0]) {
            snprintf(l[k], 80, "%s", opened[i]);
            memcpy(b[k++], opened_bound[i], 80);
        }
    memcpy(listen, l, sizeof(l));
    memcpy(bound, b, sizeof(b));
    return k;
}

static void record_listeners(program *p, const cli_options *n, reload_job *first)
{
    p->nlisten = record_kind(p->listen, p->bound, p->nlisten, n->listen, n->nlisten, first->open,
                             first->bound, first->nopen);
    p->nlisten_tls = record_kind(p->listen_tls, p->bound_tls, p->nlisten_tls, n->listen_tls,
                                 n->nlisten_tls, first->open_tls, first->bound_tls,
                                 first->nopen_tls);
}

void reload(program *p)
{
    char err[512];
    cli_options *n = calloc(1, sizeof(*n));
    reload_job *jobs = calloc(p->nworkers, sizeof(*jobs));
    if (!n || !jobs) {
        errlog(ERRLOG_ERROR, "SIGHUP: keeping the configuration in use: out of memory");
        free(n);
        free(jobs);
        return;
    }
    if (cli_parse(p->argc, p->argv, n, err, sizeof(err)) < 0) {
        errlog(ERRLOG_ERROR, "SIGHUP: keeping the configuration in use: %s", err);
        goto drop;
    }
    /* Every worker's sites built before anything changes. */
    for (unsigned i = 0; i < p->nworkers; i++) {
        jobs[i].sites = site_build(p->w[i].loop, n, err, sizeof(err));
        if (!jobs[i].sites) {
            errlog(ERRLOG_ERROR, "SIGHUP: keeping the configuration in use: %s", err);
            goto drop;
        }
    }
    /* The certificates last: once swapped, the rest cannot fail. */
    if (p->tls) {
        const cli_options *c = p->current;
        bool same = same_list(c->tls.certs, c->tls.npairs, n->tls.certs, n->tls.npairs) &&
                    same_list(c->tls.keys, c->tls.npairs, n->tls.keys, n->tls.npairs);
        int rc = same ? eddy_tls_reload(p->tls, err, sizeof(err))
                      : eddy_tls_set_pairs(p->tls, n->tls.certs, n->tls.keys, n->tls.npairs, err,
                                           sizeof(err));
        if (rc < 0) {
            errlog(ERRLOG_ERROR, "SIGHUP: keeping the configuration in use: %s", err);
            goto drop;
        }
    }
    restart_only(p->first, n, p->tls != NULL);
    for (unsigned i = 0; i < p->nworkers; i++) {
        plan_listeners(p, n, p->tls != NULL, &jobs[i]);
        jobs[i].tls = p->tls;
    }
    /* The first worker binds new addresses (port 0 picks one); the others
     * listen where it bound. */
    for (unsigned i = 0; i < p->nworkers; i++) {
        reload_job *job = &jobs[i];
        if (i > 0) {
            job->nopen = job->nopen_tls = 0;
            for (unsigned k = 0; k < jobs[0].nopen; k++)
                if (jobs[0].bound[k][0]) {
                    job->open_tag[job->nopen] = jobs[0].open_tag[k];
                    job->open[job->nopen++] = jobs[0].bound[k];
                }
            for (unsigned k = 0; k < jobs[0].nopen_tls; k++)
                if (jobs[0].bound_tls[k][0]) {
                    job->open_tls_tag[job->nopen_tls] = jobs[0].open_tls_tag[k];
                    job->open_tls[job->nopen_tls++] = jobs[0].bound_tls[k];
                }
        }
        if (!run_job(&p->w[i], job)) {
            /* Its loop is stuck: the job may still run, so nothing here
             * may be freed; say so and stop. */
            errlog(ERRLOG_ERROR, "SIGHUP: worker %u did not answer; the reload is partial",
                    p->w[i].index);
            return;
        }
        if (job->err[0])
            errlog(ERRLOG_ERROR, "SIGHUP: %s", job->err);
    }
    record_listeners(p, n, &jobs[0]);
    for (unsigned i = 0; i < jobs[0].nopen; i++)
        if (jobs[0].bound[i][0])
            printf("eddy listening on http://%s/\n", jobs[0].bound[i]);
    for (unsigned i = 0; i < jobs[0].nopen_tls; i++)
        if (jobs[0].bound_tls[i][0])
            printf("eddy listening on https://%s/\n", jobs[0].bound_tls[i]);
    fflush(stdout);
    errlog_set_level((enum errlog_level)n->log_level); /* the one log key a reload applies */
    errlog(ERRLOG_INFO, "SIGHUP: configuration reloaded");
    /* n is now in use; the previous options go unless eddy started with
     * them (restart-only keys are compared with those). */
    if (p->current != p->first) {
        cli_free(p->current);
        free(p->current);
    }
    p->current = n;
    free(jobs);
    return;
drop:
    for (unsigned i = 0; i < p->nworkers; i++)
        eddy_sites_free(jobs[i].sites);
    free(jobs);
    cli_free(n);
    free(n);
}
