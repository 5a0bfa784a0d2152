#include "core/access_log.h"
#include "core/access_json.h"
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

#define LOG_OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)

struct access_log {
    eddy_loop *loop;
    int fd;
    bool own_fd;
    char *path;            /* for reopening; NULL for stdout */
    enum eddy_log_format format;
    eddy_timer flush_timer;
    time_t stamp_sec;
    char stamp[32];        /* "26/Nov/2026:13:05:18 +0000" (JSON:
                              "2026-11-26T13:05:18"), once a second */
    size_t len;
    char buf[ACCESS_LOG_BUFFER];
};

static void on_flush_timer(void *data) { access_log_flush(data); }

int access_log_open(eddy_loop *loop, const char *path, enum eddy_log_format format,
                    access_log **out)
{
    access_log *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    log->loop = loop;
    log->format = format;
    log->stamp_sec = -1;
    if (strcmp(path, "-") == 0) {
        log->fd = STDOUT_FILENO;
    } else {
        log->path = strdup(path);
        log->fd = log->path ? open(path, LOG_OPEN_FLAGS, 0644) : -1;
        if (log->fd < 0) {
            int rc = log->path ? -errno : -ENOMEM;
            free(log->path);
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
    free(log->path);
    free(log);
}

int access_log_reopen(access_log *log)
{
    if (!log->own_fd)
        return 0;
    access_log_flush(log); /* what was logged so far belongs to the old file */
    int fd = open(log->path, LOG_OPEN_FLAGS, 0644);
    if (fd < 0)
        return -errno;
    close(log->fd);
    log->fd = fd;
    return 0;
}

static const char *stamp(access_log *log)
{
    time_t now = loop_wall_sec(log->loop);
    if (now != log->stamp_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(log->stamp, sizeof(log->stamp),
                 log->format == EDDY_LOG_JSON ? "%Y-%m-%dT%H:%M:%S" : "%d/%b/%Y:%H:%M:%S +0000",
                 &tm);
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

/* The protocol as the JSON format names it; NULL before a version was
 * read.  A head refused before it was whole has its version's text only. */
static const char *protocol_name(const request *r)
{
    if (r->version_major == 2)
        return "HTTP/2";
    if (r->version_major == 1)
        return r->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    eddy_str v = request_span(r, r->version);
    if (v.len == 3 && memcmp(v.ptr, "1.", 2) == 0 && (v.ptr[2] == '0' || v.ptr[2] == '1'))
        return v.ptr[2] == '0' ? "HTTP/1.0" : "HTTP/1.1";
    return NULL;
}

static eddy_str span_or_null(const request *r, span s)
{
    eddy_str v = request_span(r, s);
    return v.len ? v : (eddy_str){NULL, 0};
}

/* A JSON line for the response to r, at line (LINE_MAX_BYTES of room). */
static size_t json_line(access_log *log, const request *r, int status, int64_t body_bytes,
                        const char *addr, char *line)
{
    static const eddy_str names[] = {{"host", 4}, {"referer", 7}, {"user-agent", 10}};
    eddy_str fields[3];
    request_fields(r, names, fields, 3);
    /* The end read now (one vDSO call), as the start was the turn's. */
    uint64_t now_us = loop_read_us(log->loop);
    access_entry e = {
        .time_sec = stamp(log),
        .time_ms = (unsigned)(loop_wall_ms(log->loop) % 1000),
        .client = addr,
        .method = span_or_null(r, r->method),
        .path = span_or_null(r, r->target),
        .host = fields[0],
        .referer = fields[1],
        .user_agent = fields[2],
        .status = status,
        .bytes = body_bytes,
        .duration_us = now_us > r->start_us ? now_us - r->start_us : 0,
        .protocol = protocol_name(r),
        .tls = r->proto->tls_version ? r->proto->tls_version(r) : NULL,
    };
    return access_json_line(line, LINE_MAX_BYTES, &e);
}

/* A combined-format line for the response to r, at line (LINE_MAX_BYTES
 * of room). */
static size_t combined_line(access_log *log, const request *r, int status, int64_t body_bytes,
                            const char *addr, char *line)
{
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
    char *p = line;
    p += snprintf(p, 128, "%s - - [%s] ", addr, stamp(log));
    p = put_quoted(p, QUOTED_REQUEST_MAX, req_line, req_len);
    p += snprintf(p, 64, " %d %lld ", status, (long long)(body_bytes > 0 ? body_bytes : 0));
    p = put_quoted(p, QUOTED_REFERER_MAX, fields[0].ptr, fields[0].len);
    *p++ = ' ';
    p = put_quoted(p, (size_t)(line + LINE_MAX_BYTES - 1 - p), fields[1].ptr, fields[1].len);
    *p++ = '\n';
    return (size_t)(p - line);
}

void access_log_response(access_log *log, const request *r, int status, int64_t body_bytes)
{
    char addr[64];
    r->proto->peer_name(r, addr, sizeof(addr));
    /* Written in place: room for a whole line is made first. */
    if (sizeof(log->buf) - log->len < LINE_MAX_BYTES)
        access_log_flush(log);
    char *line = log->buf + log->len;
    log->len += log->format == EDDY_LOG_JSON
                    ? json_line(log, r, status, body_bytes, addr, line)
                    : combined_line(log, r, status, body_bytes, addr, line);
    if (!eddy_timer_armed(&log->flush_timer) &&
        eddy_timer_start(log->loop, &log->flush_timer, ACCESS_LOG_FLUSH_MS) < 0)
        access_log_flush(log); /* no timer to flush it later: now, then */
}
