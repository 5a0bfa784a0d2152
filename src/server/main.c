/* The eddy program: flags, listeners, signals.  Thin on purpose: the work
 * is in the library an embedding program uses the same way. */
#include "eddy.h"
#include "rt/loop.h"
#include "server/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct program {
    eddy_loop *loop;
    eddy_server *srv;
    eddy_io signals;
    eddy_timer shutdown_timer; /* bounds the graceful stop */
    unsigned shutdown_ms;
    bool stopping;
} program;

static void drained(void *data)
{
    program *p = data;
    eddy_loop_stop(p->loop);
}

static void shutdown_expired(void *data)
{
    program *p = data;
    fprintf(stderr, "eddy: shutdown timeout, cutting %u connection(s)\n",
            eddy_server_connections(p->srv));
    eddy_loop_stop(p->loop); /* eddy_server_free() then closes the rest */
}

static void on_signal(eddy_io *io, uint32_t events)
{
    (void)events;
    program *p = io->data;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (p->stopping) {
            fprintf(stderr, "eddy: second signal, exiting now\n");
            _exit(1);
        }
        p->stopping = true;
        fprintf(stderr, "eddy: %s, finishing requests in flight\n",
                si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        eddy_timer_start(p->loop, &p->shutdown_timer, p->shutdown_ms);
        eddy_server_shutdown(p->srv, drained, p);
    }
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

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "eddy: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

/* Sets everything up; returns 0 when serving, or 2 after one line on
 * stderr.  main() frees whatever was made either way. */
static int start(program *p, cli_options *opt)
{
    p->loop = eddy_loop_new();
    if (!p->loop)
        return fail("cannot create the event loop: %s%s", strerror(errno), "");
    int rc = eddy_server_new(p->loop, &opt->config, &p->srv);
    if (rc < 0)
        return fail("cannot serve root '%s': %s", opt->config.root, strerror(-rc));
    for (unsigned i = 0; i < opt->ndelays; i++)
        if ((rc = delay_register(p->srv, &opt->delays[i])) < 0)
            return fail("cannot add route '%s': %s", opt->delays[i].path, strerror(-rc));

    /* Signals arrive as loop events, so shutdown runs on the loop's thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        return fail("cannot watch signals: %s%s", strerror(errno), "");
    p->shutdown_ms = opt->shutdown_ms;
    eddy_timer_init(&p->shutdown_timer, shutdown_expired, p);
    p->signals.cb = on_signal;
    p->signals.data = p;
    loop_io_add(p->loop, &p->signals, sfd, EPOLLIN, true);

    char bound[CLI_MAX_LISTEN][80];
    for (unsigned i = 0; i < opt->nlisten; i++) {
        rc = eddy_server_listen(p->srv, opt->listen[i], bound[i], sizeof(bound[i]));
        if (rc == -EINVAL)
            return fail("--listen wants HOST:PORT, like 127.0.0.1:7878 or [::1]:0, not '%s'%s",
                        opt->listen[i], "");
        if (rc < 0)
            return fail("cannot listen on %s: %s", opt->listen[i], strerror(-rc));
    }
    for (unsigned i = 0; i < opt->nlisten; i++)
        printf("eddy listening on http://%s/\n", bound[i]);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    cli_options opt;
    char err[256];
    int status = 0;
    if (cli_parse(argc, argv, &opt, err, sizeof(err)) < 0) {
        fprintf(stderr, "eddy: %s\n", err);
        status = 2;
    } else if (opt.help) {
        cli_usage(stdout);
    } else if (opt.version) {
        printf("eddy %s\n", EDDY_VERSION);
    } else {
        raise_fd_limit();
        program p = {0};
        p.signals.fd = -1;
        status = start(&p, &opt);
        if (status == 0)
            eddy_loop_run(p.loop);
        if (p.loop) {
            eddy_timer_stop(p.loop, &p.shutdown_timer);
            if (p.signals.fd >= 0) {
                loop_io_del(p.loop, &p.signals, true);
                close(p.signals.fd);
            }
        }
        eddy_server_free(p.srv);
        eddy_loop_free(p.loop);
    }
    cli_free(&opt);
    return status;
}
