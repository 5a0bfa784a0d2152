/* The eddy program: flags, workers, signals.  Thin on purpose: the work is
 * in the library, which an embedding program uses the same way.
 *
 * Each worker is a thread with a loop and a server of its own, sharing
 * nothing: every worker listens on every address with SO_REUSEPORT and
 * the kernel spreads connections among them.  The main thread only waits
 * for signals and tells the workers to stop. */
#include "eddy.h"
#include "server/cli.h"
#include "server/errlog.h"
#include "server/service.h"
#include "server/site_build.h"
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* While stopping, how often the main thread checks on the workers. */
#define MAIN_POLL_MS 50

static void worker_drained(void *data)
{
    worker *w = data;
    eddy_loop_stop(w->loop);
}

static void worker_stop(void *data)
{
    worker *w = data;
    eddy_server_shutdown(w->srv, worker_drained, w);
}

static void worker_cut(void *data)
{
    worker *w = data;
    eddy_loop_stop(w->loop); /* eddy_server_free() then closes the rest */
}

/* SIGUSR1, on the worker's thread: its access log opened again by path. */
static void worker_reopen(void *data)
{
    worker *w = data;
    int rc = eddy_server_reopen_logs(w->srv);
    if (rc < 0)
        errlog(ERRLOG_ERROR, "worker %u: cannot reopen the access log: %s; still writing to the "
                             "file open before", w->index, strerror(-rc));
    else
        errlog(ERRLOG_DEBUG, "worker %u: access log reopened", w->index);
}

static void *worker_main(void *data)
{
    worker *w = data;
    eddy_loop_run(w->loop);
    atomic_store(&w->done, true);
    return NULL;
}

/* Operator events from a worker's server, to the error log.  The library
 * gives no level: accepting again is news, the rest (accept failing, a
 * flood) a warning. */
static void log_event(void *data, const char *message)
{
    worker *w = data;
    bool news = strncmp(message, "accepting connections again", 27) == 0;
    errlog(news ? ERRLOG_INFO : ERRLOG_WARN, "worker %u: %s", w->index, message);
}

/* The ACME thread's events: a failure says when it tries again. */
static void log_acme(void *data, const char *message)
{
    errlog(strstr(message, "trying again") ? ERRLOG_ERROR : ERRLOG_INFO, "%s", message);
}

static int fail(const char *fmt, const char *a, const char *b)
{
    errlog_fail(fmt, a, b);
    return 2;
}

/* The sockets handed over (service.h) for each listen and listen-tls
 * address: [0, nlisten) plain, then TLS. */
typedef struct handed {
    int fds[SERVICE_MAX_INHERITED];
    unsigned n;
} handed;

/* Listens on copies of the sockets handed over for one address: worker k
 * of nworkers takes those at k, k + nworkers, ...; when there are fewer
 * than workers, it shares the one at k mod n (all accept from one queue). */
static int listen_handed(worker *w, unsigned nworkers, const handed *h, eddy_tls *tls,
                         unsigned tag, char *bound, size_t bound_len)
{
    unsigned k = w->index - 1;
    for (unsigned j = k < h->n ? k : k % h->n; j < h->n; j += nworkers) {
        int fd = fcntl(h->fds[j], F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return -errno;
        int rc = eddy_server_listen_fd(w->srv, fd, tls, tag, bound, bound_len);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        if (k >= h->n)
            break; /* a shared one */
    }
    return 0;
}

/* Sets up one worker, listening on `addrs` then `tls_addrs` (for the
 * first worker the flags' addresses; for the others the addresses it
 * actually bound, so port 0 means one port for all), or on the sockets
 * handed over for them.  Returns 0, or 2 after a line on stderr. */
static int worker_setup(worker *w, cli_options *opt, eddy_tls *tls, eddy_acme **acme, unsigned nacme,
                        const char *const *addrs, const char *const *tls_addrs, char bound[][80],
                        char bound_tls[][80], const handed *hd)
{
    w->loop = eddy_loop_new();
    if (!w->loop)
        return fail("cannot create an event loop: %s%s", strerror(errno), "");
    eddy_loop_set_io_uring(w->loop, !opt->no_io_uring);
    eddy_config cfg = opt->config;
    cfg.reuse_port = opt->workers > 1;
    cfg.log = log_event;
    cfg.log_data = w;
    int rc = eddy_server_new(w->loop, &cfg, &w->srv);
    if (rc == -EINVAL || rc == -EPERM)
        return fail("a --header is not a field eddy can send: %s%s",
                    "it needs a token for a name and a value without control characters, and ",
                    "framing fields, Date, Server and Content-Type stay eddy's");
    if (rc < 0)
        return fail("cannot start a server: %s%s", strerror(-rc), "");
    if (w->metrics && (rc = eddy_server_metrics(w->srv, w->metrics, w->index - 1)) < 0)
        return fail("cannot count metrics: %s%s", strerror(-rc), "");
    char err[512];
    eddy_sites *sites = site_build(w->loop, opt, err, sizeof(err));
    if (!sites)
        return fail("%s%s", err, "");
    if ((rc = eddy_server_use_sites(w->srv, sites)) < 0)
        return fail("cannot use the sites: %s%s", strerror(-rc), "");
    for (unsigned i = 0; i < nacme; i++)
        if ((rc = eddy_server_acme(w->srv, acme[i])) < 0)
            return fail("cannot route ACME's challenges: %s%s", strerror(-rc), "");
    w->stop = eddy_async_new(w->loop, worker_stop, w);
    w->cut = eddy_async_new(w->loop, worker_cut, w);
    w->apply = eddy_async_new(w->loop, worker_apply, w);
    w->reopen = eddy_async_new(w->loop, worker_reopen, w);
    if (!w->stop || !w->cut || !w->apply || !w->reopen)
        return fail("cannot create a wake-up: %s%s", strerror(errno), "");
    for (unsigned i = 0; i < opt->nlisten; i++) {
        if (hd[i].n) {
            rc = listen_handed(w, opt->workers, &hd[i], NULL, cli_listen_tag(opt->listen[i]),
                               bound ? bound[i] : NULL, bound ? 80 : 0);
            if (rc < 0)
                return fail("cannot listen on the socket handed over for %s: %s", addrs[i],
                            strerror(-rc));
            continue;
        }
        rc = eddy_server_listen_tagged(w->srv, addrs[i], NULL, cli_listen_tag(opt->listen[i]),
                                       bound ? bound[i] : NULL, bound ? 80 : 0);
        if (rc == -EINVAL)
            return fail("--listen wants HOST:PORT, like 127.0.0.1:7878 or [::1]:0, not '%s'%s",
                        addrs[i], "");
        if (rc < 0)
            return fail("cannot listen on %s: %s", addrs[i], strerror(-rc));
    }
    for (unsigned i = 0; i < opt->nlisten_tls; i++) {
        const handed *h = &hd[opt->nlisten + i];
        if (h->n) {
            rc = listen_handed(w, opt->workers, h, tls, cli_listen_tag(opt->listen_tls[i]),
                               bound_tls ? bound_tls[i] : NULL, bound_tls ? 80 : 0);
            if (rc < 0)
                return fail("cannot listen on the socket handed over for %s: %s", tls_addrs[i],
                            strerror(-rc));
            continue;
        }
        rc = eddy_server_listen_tagged(w->srv, tls_addrs[i], tls, cli_listen_tag(opt->listen_tls[i]),
                                       bound_tls ? bound_tls[i] : NULL,
                                    bound_tls ? 80 : 0);
        if (rc == -EINVAL)
            return fail("--listen-tls wants HOST:PORT, like 127.0.0.1:8443 or [::1]:0, not '%s'%s",
                        tls_addrs[i], "");
        if (rc < 0)
            return fail("cannot listen on %s: %s", tls_addrs[i], strerror(-rc));
    }
    if (opt->redirect_https)
        eddy_server_redirect_https(w->srv, cli_port_of(tls_addrs[0]));
    return 0;
}

static void worker_teardown(worker *w)
{
    if (w->running)
        pthread_join(w->thread, NULL);
    eddy_server_free(w->srv);
    eddy_async_free(w->stop);
    eddy_async_free(w->cut);
    eddy_async_free(w->apply);
    eddy_async_free(w->reopen);
    eddy_loop_free(w->loop);
}

static bool all_done(worker *w, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (w[i].running && !atomic_load(&w[i].done))
            return false;
    return true;
}

/* SIGUSR2: a new process of the binary at eddy's path takes every
 * worker's listening sockets; once it listens, this one stops as on
 * SIGTERM (no connection is refused meanwhile: the sockets stay open in
 * it).  True when it took over.  The listener lists change only on a
 * reload or a stop, which this thread asks for, so reading them from here
 * races with nothing. */
static bool upgrade(program *p)
{
    int *fds = calloc(SERVICE_MAX_INHERITED, sizeof(*fds));
    if (!fds) {
        errlog(ERRLOG_ERROR, "SIGUSR2: out of memory, still serving");
        return false;
    }
    size_t n = 0;
    bool fit = true;
    for (unsigned i = 0; i < p->nworkers && fit; i++) {
        size_t room = SERVICE_MAX_INHERITED - n;
        size_t got = eddy_server_listening_fds(p->w[i].srv, fds + n, room);
        fit = got <= room;
        n += fit ? got : 0;
    }
    char err[512];
    pid_t pid = -1;
    if (fit)
        pid = service_upgrade(p->argv, fds, (unsigned)n, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "more than %d listening sockets", SERVICE_MAX_INHERITED);
    free(fds);
    if (pid < 0) {
        errlog(ERRLOG_ERROR, "SIGUSR2: upgrade failed: %s; still serving", err);
        return false;
    }
    errlog(ERRLOG_INFO, "SIGUSR2: PID %d took over the listening sockets; finishing requests in flight",
           (int)pid);
    return true;
}

/* SIGUSR1 (logrotate's postrotate): the error log here, each worker's
 * access log on its own thread, every buffered line to the old file. */
static void reopen_logs(program *p)
{
    int rc = errlog_reopen();
    if (rc < 0)
        errlog(ERRLOG_ERROR, "SIGUSR1: cannot reopen the error log: %s; still writing to the "
                             "file open before", strerror(-rc));
    for (unsigned i = 0; i < p->nworkers; i++)
        eddy_async_send(p->w[i].reopen);
    errlog(ERRLOG_INFO, "SIGUSR1: reopening the logs");
}

/* Waits for SIGINT/SIGTERM (reloading on SIGHUP, reopening logs on SIGUSR1), stops the workers
 * gracefully, and cuts them when the shutdown timeout runs out; a second
 * signal exits at once. */
static void wait_and_stop(program *p, const sigset_t *set)
{
    worker *w = p->w;
    unsigned n = p->nworkers;
    siginfo_t si;
    for (;;) {
        if (sigwaitinfo(set, &si) < 0)
            continue; /* EINTR */
        if (si.si_signo == SIGHUP) {
            service_reloading();
            reload(p);
            service_reloaded();
            continue;
        }
        if (si.si_signo == SIGUSR1) {
            reopen_logs(p);
            continue;
        }
        if (si.si_signo == SIGUSR2 && !upgrade(p))
            continue;
        break;
    }
    if (si.si_signo != SIGUSR2)
        errlog(ERRLOG_INFO, "%s, finishing requests in flight",
               si.si_signo == SIGINT ? "SIGINT" : "SIGTERM");
    service_stopping();
    for (unsigned i = 0; i < n; i++)
        eddy_async_send(w[i].stop);
    struct timespec start, now, poll = {0, MAIN_POLL_MS * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!all_done(w, n)) {
        int sig = sigtimedwait(set, &si, &poll);
        if (sig == SIGUSR1)
            reopen_logs(p); /* logrotate may come while requests finish */
        if (sig == SIGINT || sig == SIGTERM) {
            errlog(ERRLOG_WARN, "second signal, exiting now");
            _exit(1);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= p->current->shutdown_ms) {
            unsigned left = 0;
            for (unsigned i = 0; i < n; i++)
                left += eddy_server_connections(w[i].srv); /* racy: a log line only */
            errlog(ERRLOG_WARN, "shutdown timeout, cutting %u connection(s)", left);
            for (unsigned i = 0; i < n; i++)
                eddy_async_send(w[i].cut);
            break;
        }
    }
}

/* Which way file bodies go out over TLS on this host, for the startup
 * line: eddy encrypts in user space (read into its buffers, then
 * written); the kernel's TLS offload needs its "tls" module. */
static const char *tls_offload_line(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    char line[256] = "";
    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        fclose(f);
    }
    bool kernel = false;
    char *save;
    for (char *tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        kernel |= strcmp(tok, "tls") == 0;
    return kernel ? "records encrypted in user space (this kernel has the tls module; eddy "
                    "does not hand records to it yet)"
                  : "records encrypted in user space (no kernel TLS here: 'tls' is not in "
                    "/proc/sys/net/ipv4/tcp_available_ulp)";
}

static int serve(cli_options *opt, int argc, char **argv)
{
    worker *w = calloc(opt->workers, sizeof(*w));
    for (unsigned i = 0; w && i < opt->workers; i++)
        w[i].index = i + 1;
    if (!w)
        return fail("out of memory%s%s", "", "");
    /* --status: counters each worker's server writes and any worker reads. */
    eddy_metrics *metrics = NULL;
    if (opt->status && eddy_metrics_new(opt->workers, &metrics) < 0) {
        free(w);
        return fail("out of memory%s%s", "", "");
    }
    for (unsigned i = 0; i < opt->workers; i++)
        w[i].metrics = metrics;
    /* Signals are taken by the main thread alone, with sigwaitinfo:
     * blocked here, before any worker starts, they stay blocked in all. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char bound[CLI_MAX_LISTEN][80], bound_tls[CLI_MAX_LISTEN][80];
    const char *addrs[CLI_MAX_LISTEN], *tls_addrs[CLI_MAX_LISTEN];
    int status = 0;
    eddy_tls *tls = NULL;
    /* Sockets handed over (systemd, or the eddy this one replaces), each
     * matched to the address it is bound to; the others are bound here. */
    inherited *inh = calloc(1, sizeof(*inh));
    handed *hd = calloc(2 * CLI_MAX_LISTEN, sizeof(*hd));
    if (!inh || !hd) {
        free(inh);
        free(hd);
        free(w);
        return fail("out of memory%s%s", "", "");
    }
    {
        char err[512];
        if (service_inherited(inh, err, sizeof(err)) < 0 ||
            service_check_user(opt, err, sizeof(err)) < 0)
            status = fail("%s%s", err, "");
        for (unsigned i = 0; status == 0 && i < opt->nlisten; i++)
            hd[i].n = service_match(inh, opt->listen[i], hd[i].fds, SERVICE_MAX_INHERITED);
        for (unsigned i = 0; status == 0 && i < opt->nlisten_tls; i++)
            hd[opt->nlisten + i].n = service_match(inh, opt->listen_tls[i], hd[opt->nlisten + i].fds,
                                                   SERVICE_MAX_INHERITED);
        if (status == 0 && service_all_taken(inh, err, sizeof(err)) < 0)
            status = fail("%s%s", err, "");
    }
    /* One eddy_acme for --acme-domain's names, one per site with acme. */
    eddy_acme *acme[1 + CONFIG_MAX_SITES];
    unsigned nacme = 0;
    bool site_acme = false;
    for (unsigned i = 0; i < opt->conf.nsites; i++)
        site_acme |= opt->conf.sites[i].acme;
    if (opt->ncerts || opt->acme.nnames || site_acme) {
        char err[512];
        if (eddy_tls_new(&opt->tls, &tls, err, sizeof(err)) < 0)
            status = fail("%s%s", err, "");
    }
    opt->acme.log = log_acme;
    if (status == 0 && opt->acme.nnames) {
        char err[512];
        if (eddy_acme_new(&opt->acme, tls, &acme[nacme++], err, sizeof(err)) < 0)
            status = fail("%s%s", err, ""), nacme--;
    }
    for (unsigned i = 0; status == 0 && i < opt->conf.nsites; i++) {
        const conf_site *cs = &opt->conf.sites[i];
        if (!cs->acme)
            continue;
        char err[512];
        eddy_acme_config ac = opt->acme;
        ac.names = (const char *const *)cs->names;
        ac.nnames = cs->nnames;
        if (eddy_acme_new(&ac, tls, &acme[nacme++], err, sizeof(err)) < 0)
            status = fail("%s%s", err, ""), nacme--;
    }
    const char *log = opt->config.access_log;
    if (log && strcmp(log, "-") != 0) {
        /* Tried here once so its failure is told apart from the root's;
         * each worker's server then opens it for itself. */
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            status = fail("cannot open access log '%s': %s", log, strerror(errno));
        else
            close(fd);
    }
    if (status == 0)
        status = worker_setup(&w[0], opt, tls, acme, nacme, opt->listen, opt->listen_tls, bound, bound_tls,
                              hd);
    for (unsigned i = 0; i < opt->nlisten; i++)
        addrs[i] = bound[i];
    for (unsigned i = 0; i < opt->nlisten_tls; i++)
        tls_addrs[i] = bound_tls[i];
    if (status == 0 && opt->redirect_https) /* the port bound, when the flag said 0 */
        eddy_server_redirect_https(w[0].srv, cli_port_of(bound_tls[0]));
    for (unsigned i = 1; i < opt->workers && status == 0; i++)
        status = worker_setup(&w[i], opt, tls, acme, nacme, addrs, tls_addrs, NULL, NULL, hd);
    /* Every worker listens on copies of its own. */
    service_inherited_close(inh);
    free(hd);
    if (status == 0) {
        /* Ports bound, keys read: the rest runs as --user. */
        char err[512];
        if (service_drop_user(opt, err, sizeof(err)) < 0)
            status = fail("%s%s", err, "");
    }
    for (unsigned i = 0; i < opt->workers && status == 0; i++) {
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            status = fail("cannot start a worker thread: %s%s", strerror(errno), "");
            break;
        }
        w[i].running = true;
    }
    if (status == 0) {
        for (unsigned i = 0; i < opt->nlisten; i++)
            printf("eddy listening on http://%s/\n", bound[i]);
        for (unsigned i = 0; i < opt->nlisten_tls; i++)
            printf("eddy listening on https://%s/\n", bound_tls[i]);
        if (tls)
            printf("eddy TLS: %s\n", tls_offload_line());
        fflush(stdout);
        service_ready(inh);
        for (unsigned i = 0; i < nacme; i++) {
            int rc = eddy_acme_start(acme[i]);
            if (rc < 0)
                errlog(ERRLOG_ERROR, "cannot start the ACME thread: %s", strerror(-rc));
        }
        program p = {.argc = argc, .argv = argv, .first = opt, .current = opt, .w = w,
                     .nworkers = opt->workers, .tls = tls, .nlisten = opt->nlisten,
                     .nlisten_tls = opt->nlisten_tls};
        for (unsigned i = 0; i < opt->nlisten; i++) {
            snprintf(p.listen[i], 80, "%s", opt->listen[i]);
            memcpy(p.bound[i], bound[i], 80);
        }
        for (unsigned i = 0; i < opt->nlisten_tls; i++) {
            snprintf(p.listen_tls[i], 80, "%s", opt->listen_tls[i]);
            memcpy(p.bound_tls[i], bound_tls[i], 80);
        }
        wait_and_stop(&p, &set);
        if (p.current != opt) {
            cli_free(p.current);
            free(p.current);
        }
    } else {
        for (unsigned i = 0; i < opt->workers; i++)
            if (w[i].running)
                eddy_async_send(w[i].cut);
    }
    for (unsigned i = 0; i < opt->workers; i++)
        worker_teardown(&w[i]);
    for (unsigned i = 0; i < nacme; i++)
        eddy_acme_free(acme[i]); /* after the servers routed to it, before its eddy_tls */
    eddy_tls_free(tls); /* after the servers: connections hold what they use */
    eddy_metrics_free(metrics); /* after the servers counting into it */
    free(w);
    free(inh);
    return status;
}

/* -t: what serving would load, loaded and let go: the certificates, an
 * access log that opens, and one worker's sites (every root opened). */
static int check_only(cli_options *opt)
{
    char err[512];
    if (opt->ncerts) {
        eddy_tls *tls;
        if (eddy_tls_new(&opt->tls, &tls, err, sizeof(err)) < 0)
            return fail("%s%s", err, "");
        eddy_tls_free(tls);
    }
    const char *log = opt->config.access_log;
    if (log && strcmp(log, "-") != 0) {
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail("cannot open access log '%s': %s", log, strerror(errno));
        close(fd);
    }
    eddy_loop *loop = eddy_loop_new();
    if (!loop)
        return fail("cannot create an event loop: %s%s", strerror(errno), "");
    eddy_sites *sites = site_build(loop, opt, err, sizeof(err));
    eddy_sites_free(sites);
    eddy_loop_free(loop);
    if (!sites)
        return fail("%s%s", err, "");
    printf("eddy: %s: the configuration is good\n", opt->config_file);
    return 0;
}

int main(int argc, char **argv)
{
    cli_options opt;
    char err[512];
    int status = 0, rc;
    if (cli_parse(argc, argv, &opt, err, sizeof(err)) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        status = 2;
    } else if (opt.help) {
        cli_usage(stdout);
    } else if (opt.version) {
        printf("eddy %s\n", EDDY_VERSION);
    } else if (opt.config_reference) {
        config_reference(stdout);
    } else if ((rc = errlog_open(opt.error_log, (enum errlog_level)opt.log_level)) < 0) {
        fprintf(stderr, "eddy: cannot open error log '%s': %s\n", opt.error_log, strerror(-rc));
        status = 2;
    } else if (opt.test_only) {
        status = check_only(&opt);
    } else {
        service_remember_binary(argv[0]);
        service_raise_fd_limit(&opt);
        status = serve(&opt, argc, argv);
    }
    errlog_close();
    cli_free(&opt);
    return status;
}
