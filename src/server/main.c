/* The eddy program: flags, workers, signals.  Thin on purpose: the work is
 * in the library, which an embedding program uses the same way.
 *
 * Each worker is a thread with a loop and a server of its own, sharing
 * nothing: every worker listens on every address with SO_REUSEPORT and
 * the kernel spreads connections among them.  The main thread only waits
 * for signals and tells the workers to stop. */
#include "eddy.h"
#include "server/cli.h"
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

static void *worker_main(void *data)
{
    worker *w = data;
    eddy_loop_run(w->loop);
    atomic_store(&w->done, true);
    return NULL;
}

/* Connections and cached files each hold a descriptor: take the hard
 * limit instead of the usual soft 1024, so --max-conns is what bounds us. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Operator events from a worker's server: one line each on stderr, in a
 * single write so lines from several workers never mix. */
static void log_event(void *data, const char *message)
{
    worker *w = data;
    char line[320];
    int n = snprintf(line, sizeof(line), "eddy: worker %u: %s\n", w->index, message);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, stderr);
}

/* The ACME thread's events: one line each on stderr. */
static void log_acme(void *data, const char *message)
{
    char line[1100];
    int n = snprintf(line, sizeof(line), "eddy: %s\n", message);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, stderr);
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "eddy: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

/* The port of a bound "HOST:PORT". */
static unsigned port_of(const char *bound)
{
    const char *colon = strrchr(bound, ':');
    return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
}

/* Sets up one worker, listening on `addrs` then `tls_addrs` (for the
 * first worker the flags' addresses; for the others the addresses it
 * actually bound, so port 0 means one port for all).  Returns 0, or 2
 * after a line on stderr. */
static int worker_setup(worker *w, cli_options *opt, eddy_tls *tls, eddy_acme **acme, unsigned nacme,
                        const char *const *addrs, const char *const *tls_addrs, char bound[][80],
                        char bound_tls[][80])
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
    if (!w->stop || !w->cut || !w->apply)
        return fail("cannot create a wake-up: %s%s", strerror(errno), "");
    for (unsigned i = 0; i < opt->nlisten; i++) {
        rc = eddy_server_listen_tagged(w->srv, addrs[i], NULL, cli_listen_tag(opt->listen[i]),
                                       bound ? bound[i] : NULL, bound ? 80 : 0);
        if (rc == -EINVAL)
            return fail("--listen wants HOST:PORT, like 127.0.0.1:7878 or [::1]:0, not '%s'%s",
                        addrs[i], "");
        if (rc < 0)
            return fail("cannot listen on %s: %s", addrs[i], strerror(-rc));
    }
    for (unsigned i = 0; i < opt->nlisten_tls; i++) {
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
        eddy_server_redirect_https(w->srv, port_of(tls_addrs[0]));
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
    eddy_loop_free(w->loop);
}

static bool all_done(worker *w, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (w[i].running && !atomic_load(&w[i].done))
            return false;
    return true;
}

/* Waits for SIGINT/SIGTERM (reloading on SIGHUP), stops the workers
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
        if (si.si_signo != SIGHUP)
            break;
        reload(p);
    }
    fprintf(stderr, "eddy: %s, finishing requests in flight\n",
            si.si_signo == SIGINT ? "SIGINT" : "SIGTERM");
    for (unsigned i = 0; i < n; i++)
        eddy_async_send(w[i].stop);
    struct timespec start, now, poll = {0, MAIN_POLL_MS * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!all_done(w, n)) {
        if (sigtimedwait(set, &si, &poll) >= 0 && si.si_signo != SIGHUP) {
            fprintf(stderr, "eddy: second signal, exiting now\n");
            _exit(1);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= p->current->shutdown_ms) {
            unsigned left = 0;
            for (unsigned i = 0; i < n; i++)
                left += eddy_server_connections(w[i].srv); /* racy: a log line only */
            fprintf(stderr, "eddy: shutdown timeout, cutting %u connection(s)\n", left);
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
    /* Signals are taken by the main thread alone, with sigwaitinfo:
     * blocked here, before any worker starts, they stay blocked in all. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char bound[CLI_MAX_LISTEN][80], bound_tls[CLI_MAX_LISTEN][80];
    const char *addrs[CLI_MAX_LISTEN], *tls_addrs[CLI_MAX_LISTEN];
    int status = 0;
    eddy_tls *tls = NULL;
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
        status = worker_setup(&w[0], opt, tls, acme, nacme, opt->listen, opt->listen_tls, bound, bound_tls);
    for (unsigned i = 0; i < opt->nlisten; i++)
        addrs[i] = bound[i];
    for (unsigned i = 0; i < opt->nlisten_tls; i++)
        tls_addrs[i] = bound_tls[i];
    if (status == 0 && opt->redirect_https) /* the port bound, when the flag said 0 */
        eddy_server_redirect_https(w[0].srv, port_of(bound_tls[0]));
    for (unsigned i = 1; i < opt->workers && status == 0; i++)
        status = worker_setup(&w[i], opt, tls, acme, nacme, addrs, tls_addrs, NULL, NULL);
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
        for (unsigned i = 0; i < nacme; i++) {
            int rc = eddy_acme_start(acme[i]);
            if (rc < 0)
                fprintf(stderr, "eddy: cannot start the ACME thread: %s\n", strerror(-rc));
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
    free(w);
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
    int status = 0;
    if (cli_parse(argc, argv, &opt, err, sizeof(err)) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        status = 2;
    } else if (opt.help) {
        cli_usage(stdout);
    } else if (opt.version) {
        printf("eddy %s\n", EDDY_VERSION);
    } else if (opt.config_reference) {
        config_reference(stdout);
    } else if (opt.test_only) {
        status = check_only(&opt);
    } else {
        raise_fd_limit();
        status = serve(&opt, argc, argv);
    }
    cli_free(&opt);
    return status;
}
