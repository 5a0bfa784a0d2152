#include "server/service.h"
#include "server/errlog.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

extern char **environ;

/* The variable an upgrading eddy names its readiness pipe in. */
#define READY_ENV "EDDY_UPGRADE_READY_FD"

/* ------------------------------------------------------------ sockets -- */

int service_inherited(inherited *in, char *err, size_t err_len)
{
    memset(in, 0, sizeof(*in));
    in->ready_fd = -1;
    const char *ready = getenv(READY_ENV);
    if (ready) {
        in->ready_fd = atoi(ready);
        unsetenv(READY_ENV);
        if (in->ready_fd >= 0)
            fcntl(in->ready_fd, F_SETFD, FD_CLOEXEC);
    }
    int n = sd_listen_fds(1); /* checks LISTEN_PID, unsets LISTEN_* */
    if (n < 0) {
        snprintf(err, err_len, "cannot take the sockets in LISTEN_FDS: %s", strerror(-n));
        return -1;
    }
    if ((unsigned)n > SERVICE_MAX_INHERITED) {
        snprintf(err, err_len, "%d sockets handed over (LISTEN_FDS); eddy takes at most %d", n,
                 SERVICE_MAX_INHERITED);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
            (sd_is_socket(fd, AF_INET, 0, -1) <= 0 && sd_is_socket(fd, AF_INET6, 0, -1) <= 0)) {
            snprintf(err, err_len,
                     "descriptor %d handed over (LISTEN_FDS) is not a listening TCP socket", fd);
            return -1;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        in->fd[in->n++] = fd;
    }
    return 0;
}

/* Splits "HOST:PORT", "[V6]:PORT", ":PORT" (every IPv4 address, as the
 * listener takes it) into host and port; false when it is none of those. */
static bool split(const char *addr, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= port_len)
        return false;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= host_len)
        return false;
    memcpy(host, h, hl);
    host[hl] = 0;
    strcpy(port, colon + 1);
    return true;
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b, bool any_port)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr && (any_port || x->sin_port == y->sin_port);
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
               (any_port || x->sin6_port == y->sin6_port);
    }
    return false;
}

unsigned service_match(inherited *in, const char *addr, int *fds, unsigned max)
{
    char host[256], port[8];
    if (!in->n || !split(addr, host, sizeof(host), port, sizeof(port)))
        return 0;
    struct addrinfo hints = {.ai_family = host[0] ? AF_UNSPEC : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
        return 0;
    bool any_port = strcmp(port, "0") == 0;
    unsigned found = 0;
    for (unsigned i = 0; i < in->n && found < max; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (in->taken[i] || getsockname(in->fd[i], (struct sockaddr *)&ss, &sl) < 0)
            continue;
        /* The listener binds the first address a name resolves to. */
        if (same_address((struct sockaddr *)&ss, res->ai_addr, any_port)) {
            in->taken[i] = true;
            fds[found++] = in->fd[i];
        }
    }
    freeaddrinfo(res);
    return found;
}

int service_all_taken(const inherited *in, char *err, size_t err_len)
{
    for (unsigned i = 0; i < in->n; i++) {
        if (in->taken[i])
            continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[64] = "?", port[8] = "?";
        if (getsockname(in->fd[i], (struct sockaddr *)&ss, &sl) == 0)
            getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                        NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(err, err_len,
                 "the socket handed over for %s%s%s:%s matches no listen or listen-tls address: "
                 "add it to them (an unused socket would leave its clients waiting)",
                 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
        return -1;
    }
    return 0;
}

void service_inherited_close(inherited *in)
{
    for (unsigned i = 0; i < in->n; i++)
        close(in->fd[i]);
    in->n = 0;
}

/* --------------------------------------------------------------- user -- */

/* The first port below 1024 (not 0) among n addresses, or 0. */
static unsigned privileged_port(const char *const *addrs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned port = cli_port_of(addrs[i]);
        if (port && port < 1024)
            return port;
    }
    return 0;
}

int service_check_user(const cli_options *opt, char *err, size_t err_len)
{
    if (geteuid() != 0 || opt->user)
        return 0;
    unsigned low = privileged_port(opt->listen, opt->nlisten);
    if (!low)
        low = privileged_port(opt->listen_tls, opt->nlisten_tls);
    if (!low)
        return 0;
    snprintf(err, err_len,
             "running as root with port %u: give --user NAME (eddy binds the ports, reads the "
             "keys, then runs as NAME), or start eddy as that user with CAP_NET_BIND_SERVICE",
             low);
    return -1;
}

int service_drop_user(const cli_options *opt, char *err, size_t err_len)
{
    if (!opt->user)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(opt->user);
    if (!pw) {
        snprintf(err, err_len, "--user %s: %s", opt->user,
                 errno ? strerror(errno) : "no such user");
        return -1;
    }
    if (geteuid() != 0) {
        if (pw->pw_uid == geteuid())
            return 0; /* already that user */
        snprintf(err, err_len, "--user %s: only root can become another user (running as uid %u)",
                 opt->user, (unsigned)geteuid());
        return -1;
    }
    /* The logs eddy opened as root become the user's, as nginx does with
     * its workers': SIGUSR1 and an upgraded eddy open them again as it. */
    const char *logs[] = {opt->config.access_log, opt->error_log};
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
        if (logs[i] && strcmp(logs[i], "-") != 0 && chown(logs[i], pw->pw_uid, (gid_t)-1) < 0) {
            snprintf(err, err_len, "--user %s: cannot give it %s: %s", opt->user, logs[i],
                     strerror(errno));
            return -1;
        }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, err_len, "--user %s: cannot switch to it: %s", opt->user, strerror(errno));
        return -1;
    }
    /* Make sure there is no way back (a uid 0 user, a failed call). */
    if (pw->pw_uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
        snprintf(err, err_len, "--user %s: root privileges were not dropped", opt->user);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------- descriptor limit -- */

void service_raise_fd_limit(const cli_options *opt)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    unsigned conns = opt->config.max_conns;
    /* A connection may hold two: its own and a backend's (the proxy). */
    rlim_t need = conns ? (rlim_t)opt->workers * conns * 2 + SERVICE_FD_RESERVE : rl.rlim_max;
    rlim_t want = need < rl.rlim_max ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (conns && need > rl.rlim_max)
        errlog(ERRLOG_WARN,
               "--max-conns %u on %u worker(s) needs about %llu descriptors, and the limit is "
               "%llu (raise it: LimitNOFILE= in the unit, or ulimit -Hn)",
               conns, opt->workers, (unsigned long long)need, (unsigned long long)rl.rlim_max);
}

/* ------------------------------------------------------------ systemd -- */

void service_ready(inherited *in)
{
    sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving", (unsigned long)getpid());
    if (in->ready_fd >= 0) {
        ssize_t w = write(in->ready_fd, "1", 1);
        (void)w; /* the old eddy gone: nothing to tell */
        close(in->ready_fd);
        in->ready_fd = -1;
    }
}

void service_reloading(void) { sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration"); }

void service_reloaded(void) { sd_notify(0, "READY=1\nSTATUS=serving"); }

void service_stopping(void) { sd_notify(0, "STOPPING=1\nSTATUS=finishing requests in flight"); }

/* ------------------------------------------------------------ upgrade -- */

static char binary[4096];

void service_remember_binary(const char *argv0)
{
    /* /proc/self/exe would name the file as it was; an upgrade wants what
     * is at the path now (a package replaces the file). */
    if (strchr(argv0, '/')) {
        if (!realpath(argv0, binary))
            snprintf(binary, sizeof(binary), "%s", argv0);
    } else {
        snprintf(binary, sizeof(binary), "%s", argv0); /* looked up in PATH */
    }
}

/* Writes v in decimal at p (async-signal-safe, for the child). */
static void put_decimal(char *p, unsigned long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = digits[--n];
    *p = 0;
}

pid_t service_upgrade(char **argv, const int *fds, unsigned n, char *err, size_t err_len)
{
    if (!binary[0] || !n) {
        snprintf(err, err_len, "nothing to hand over");
        return -1;
    }
    /* The environment, built before fork: after it only async-signal-safe
     * calls may run (the other threads' locks are frozen in the child). */
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 4, sizeof(*envp));
    static char fds_var[32], pid_var[40], ready_var[48];
    if (!envp) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    size_t e = 0;
    /* NOTIFY_SOCKET stays: the new process tells systemd it is ready. */
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "LISTEN_", 7) != 0 &&
            strncmp(environ[i], READY_ENV "=", sizeof(READY_ENV)) != 0)
            envp[e++] = environ[i];
    snprintf(fds_var, sizeof(fds_var), "LISTEN_FDS=%u", n);
    snprintf(ready_var, sizeof(ready_var), READY_ENV "=%u", SD_LISTEN_FDS_START + n);
    strcpy(pid_var, "LISTEN_PID=");
    envp[e++] = fds_var;
    envp[e++] = pid_var;
    envp[e++] = ready_var;
    envp[e] = NULL;

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, err_len, "cannot make a pipe: %s", strerror(errno));
        free(envp);
        return -1;
    }
    /* The child first parks each descriptor above 3..3+n, so moving them
     * into place never overwrites one not moved yet. */
    int park = SD_LISTEN_FDS_START + (int)n + 1;
    int *parked = calloc(n + 1, sizeof(*parked));
    if (!parked) {
        snprintf(err, err_len, "out of memory");
        free(envp);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (unsigned i = 0; i <= n; i++)
            if ((parked[i] = fcntl(i < n ? fds[i] : pipefd[1], F_DUPFD_CLOEXEC, park)) < 0)
                _exit(127);
        for (unsigned i = 0; i <= n; i++)
            if (dup2(parked[i], SD_LISTEN_FDS_START + (int)i) < 0) /* clears CLOEXEC */
                _exit(127);
        put_decimal(pid_var + strlen("LISTEN_PID="), (unsigned long)getpid());
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* eddy blocks its signals in every thread */
        if (strchr(binary, '/'))
            execve(binary, argv, envp);
        else
            execvpe(binary, argv, envp);
        _exit(127);
    }
    int saved = errno;
    free(envp);
    free(parked);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        snprintf(err, err_len, "cannot start a process: %s", strerror(saved));
        return -1;
    }
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    char c = 0;
    int rc;
    do
        rc = poll(&p, 1, SERVICE_UPGRADE_READY_MS);
    while (rc < 0 && errno == EINTR);
    bool ready = rc == 1 && read(pipefd[0], &c, 1) == 1 && c == '1';
    close(pipefd[0]);
    if (ready)
        return pid;
    /* The pipe closed: the new process is ending (its exit closes the pipe
     * a moment before it can be waited for). */
    int status = 0;
    pid_t got = 0;
    for (int i = 0; rc != 0 && i < 200 && (got = waitpid(pid, &status, WNOHANG)) == 0; i++)
        usleep(10000);
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(err, err_len, "the new eddy (PID %d) was not listening within %d s", (int)pid,
                 rc == 0 ? SERVICE_UPGRADE_READY_MS / 1000 : 2);
    } else if (WIFEXITED(status)) {
        snprintf(err, err_len, "the new eddy (%s) exited with status %d before listening%s", binary,
                 WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (could it be run?)" : "");
    } else {
        snprintf(err, err_len, "the new eddy (%s) ended by signal %d before listening", binary,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    return -1;
}
