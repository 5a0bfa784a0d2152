#include "server/errlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The descriptor lines go to.  Reopening replaces the file behind this
 * same number with dup2, which is atomic: a thread writing meanwhile
 * writes to the old file or the new, never to a closed or reused number. */
static int log_fd = STDERR_FILENO;
static char log_path[4096];
static atomic_int log_level = ERRLOG_INFO;

#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)

int errlog_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void errlog_set_level(enum errlog_level level) { atomic_store(&log_level, (int)level); }

bool errlog_wants(enum errlog_level level) { return (int)level <= atomic_load(&log_level); }

int errlog_open(const char *path, enum errlog_level level)
{
    errlog_set_level(level);
    errlog_close();
    if (!path || strcmp(path, "-") == 0)
        return 0;
    if (strlen(path) >= sizeof(log_path))
        return -ENAMETOOLONG;
    int fd = open(path, OPEN_FLAGS, 0640);
    if (fd < 0)
        return -errno;
    snprintf(log_path, sizeof(log_path), "%s", path);
    log_fd = fd;
    return 0;
}

int errlog_reopen(void)
{
    if (log_fd == STDERR_FILENO)
        return 0;
    int fd = open(log_path, OPEN_FLAGS, 0640);
    if (fd < 0)
        return -errno;
    int rc = dup2(fd, log_fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

void errlog_close(void)
{
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = STDERR_FILENO;
    log_path[0] = 0;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to say it */
        s += w;
        n -= (size_t)w;
    }
}

/* Formats after `head` bytes of line, makes it one line and ends it. */
static size_t finish_line(char *line, size_t head, const char *fmt, va_list ap)
{
    int n = vsnprintf(line + head, ERRLOG_LINE_MAX - head - 1, fmt, ap);
    size_t len = head + (n < 0 ? 0 : (size_t)n);
    if (len > ERRLOG_LINE_MAX - 2)
        len = ERRLOG_LINE_MAX - 2; /* cut */
    /* What a message quotes (a path, a peer's words) must not forge
     * another line or reach a terminal as an escape. */
    for (size_t i = head; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    return len;
}

static size_t stamp(char *line, enum errlog_level level)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return n + (size_t)snprintf(line + n, 32, " [%s] eddy: ", level_names[level]);
}

void errlog(enum errlog_level level, const char *fmt, ...)
{
    if (!errlog_wants(level))
        return;
    char line[ERRLOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t len = finish_line(line, stamp(line, level), fmt, ap);
    va_end(ap);
    write_all(log_fd, line, len);
}

void errlog_fail(const char *fmt, ...)
{
    char line[ERRLOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t len = finish_line(line, 0, fmt, ap);
    va_end(ap);
    char plain[ERRLOG_LINE_MAX + 8];
    int n = snprintf(plain, sizeof(plain), "eddy: %.*s", (int)len, line);
    write_all(STDERR_FILENO, plain, (size_t)n);
    if (log_fd != STDERR_FILENO)
        errlog(ERRLOG_ERROR, "%.*s", (int)len - 1, line);
}
