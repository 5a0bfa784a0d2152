#include "core/access_log.h"
#include "core/request.h"
#include "rt/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line kept: longer fields are cut to fit (a line is never split).
 * At most PIPE_BUF, so one line is always one atomic write. */
#define LINE_MAX_BYTES 4096
/* Of a line, the most the quoted request line and Referer may take; the
 * User-Agent gets the rest. */
#define QUOTED_REQUEST_MAX 2048
#define QUOTED_REFERER_MAX 1024
_Static_assert(LINE_MAX_BYTES <= PIPE_BUF, "a line must fit one atomic pipe write");

struct access_log {
    eddy_loop *loop;
    int fd;
    bool own_fd;
    eddy_timer flush_timer;
    time_t stamp_sec;
    char stamp[32];        /* "26/Nov/2026:13:05:18 +0000", once a second */
    size_t len;
    char buf[ACCESS_LOG_BUFFER];
};

static void on_flush_timer(void *data) { access_log_flush(data); }

int access_log_open(eddy_loop *loop, const char *path, access_log **out)
{
    access_log *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    log->loop = loop;
    log->stamp_sec = -1;
    if (strcmp(path, "-") == 0) {
        log->fd = STDOUT_FILENO;
    } else {
        log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log->fd < 0) {
            int rc = -errno;
            free(log);
            return rc;
        }
        log->own_fd = true;
    }
    eddy_timer_init(&log->flush_timer, on_flush_timer, log);
    *out = log;
    return 0;
}

void access_log_flush(access_log *log)
{
    eddy_timer_stop(log->loop, &log->flush_timer);
    size_t off = 0;
    while (off < log->len) {
        /* Whole lines, at most PIPE_BUF bytes per write: a pipe keeps such a
         * write in one piece even with other workers writing to it (a file
         * opened O_APPEND does so for any size). */
        size_t n = log->len - off;
        if (n > PIPE_BUF) {
            n = PIPE_BUF;
            while (n && log->buf[off + n - 1] != '\n')
                n--;
        }
        ssize_t w = write(log->fd, log->buf + off, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* a full disk, a closed pipe: these lines are lost */
        off += (size_t)w;
    }
    log->len = 0;
}

void access_log_close(access_log *log)
{
    if (!log)
        return;
    access_log_flush(log);
    if (log->own_fd)
        close(log->fd);
    free(log);
}

static const char *stamp(access_log *log)
{
    time_t now = loop_wall_sec(log->loop);
    if (now != log->stamp_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(log->stamp, sizeof(log->stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        log->stamp_sec = now;
    }
    return log->stamp;
}

/* Appends s as a quoted field of at most max bytes (s is cut to fit):
 * '"', '\' and bytes that are not printable ASCII become \xHH, so a line
 * can be neither broken nor forged. */
static char *put_quoted(char *p, size_t max, const char *s, size_t n)
{
    char *end = p + max;
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    if (!s) {
        *p++ = '-';
    } else {
        for (size_t i = 0; i < n && p + 5 < end; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = hex[ch >> 4];
                *p++ = hex[ch & 15];
            } else {
                *p++ = (char)ch;
            }
        }
    }
    *p++ = '"';
    return p;
}

void access_log_response(access_log *log, const request *r, int status, int64_t body_bytes)
{
    char addr[64];
    r->proto->peer_name(r, addr, sizeof(addr));

    /* The request line as received, when eddy got as far as reading one. */
    const char *req_line = NULL;
    size_t req_len = 0;
    if (*r->base && r->method.len) {
        uint32_t last = r->method.off + r->method.len;
        if (r->target.len)
            last = r->target.off + r->target.len;
        if (r->version.len)
            last = r->version.off + r->version.len;
        req_line = *r->base + r->method.off;
        req_len = last - r->method.off;
    }
    static const eddy_str names[] = {{"referer", 7}, {"user-agent", 10}};
    eddy_str fields[2];
    request_fields(r, names, fields, 2);

    /* Written in place: room for a whole line is made first. */
    if (sizeof(log->buf) - log->len < LINE_MAX_BYTES)
        access_log_flush(log);
    char *line = log->buf + log->len, *p = line;
    p += snprintf(p, 128, "%s - - [%s] ", addr, stamp(log));
    p = put_quoted(p, QUOTED_REQUEST_MAX, req_line, req_len);
    p += snprintf(p, 64, " %d %lld ", status, (long long)(body_bytes > 0 ? body_bytes : 0));
    p = put_quoted(p, QUOTED_REFERER_MAX, fields[0].ptr, fields[0].len);
    *p++ = ' ';
    p = put_quoted(p, (size_t)(line + LINE_MAX_BYTES - 1 - p), fields[1].ptr, fields[1].len);
    *p++ = '\n';
    log->len += (size_t)(p - line);
    if (!eddy_timer_armed(&log->flush_timer) &&
        eddy_timer_start(log->loop, &log->flush_timer, ACCESS_LOG_FLUSH_MS) < 0)
        access_log_flush(log); /* no timer to flush it later: now, then */
}
