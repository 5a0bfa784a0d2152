/* Shared by the libFuzzer targets: a temporary document root made once per
 * process, a failure macro that aborts with a message (libFuzzer then saves
 * the input), and a checker for the bytes eddy wrote on one connection. */
#ifndef EDDY_FUZZ_SUPPORT_H
#define EDDY_FUZZ_SUPPORT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "eddy.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* An invariant of eddy failed: say which, then abort so libFuzzer keeps the
 * input as a crash artifact. */
#define FZ_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "\nFUZZ INVARIANT FAILED at %s:%d: %s\n  ", __FILE__, __LINE__,  \
                    #cond);                                                                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The harness itself could not go on (no temp dir, out of descriptors). */
#define FZ_SETUP(cond)                                                                         \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz setup failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* ---------------------------------------------------------- document root -- */

static char fz_root[512];

static inline void fz_write(const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", fz_root, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FZ_SETUP(fd >= 0);
    FZ_SETUP(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static inline void fz_write_str(const char *name, const char *s) { fz_write(name, s, strlen(s)); }

static inline void fz_mkdir(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", fz_root, name);
    FZ_SETUP(mkdir(path, 0755) == 0);
}

static inline int fz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fz_remove_root(void)
{
    if (fz_root[0])
        nftw(fz_root, fz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The test root: index.html and 404.html as the unit tests have them, a
 * text file with precompressed siblings (newer, so they are served), a file
 * of a few KB for ranges and short writes, a dotfile, a directory with an
 * index and one without (listed when autoindex is on), and a tiny
 * mime.types so a server costs little to make. */
static inline const char *fz_make_root(void)
{
    if (fz_root[0])
        return fz_root;
    const char *tmp = getenv("TMPDIR");
    snprintf(fz_root, sizeof(fz_root), "%s/eddy-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FZ_SETUP(mkdtemp(fz_root) != NULL);
    atexit(fz_remove_root);
    fz_write_str("index.html", "<p>hello</p>\n");
    fz_write_str("404.html", "<p>nothing here</p>\n");
    fz_write_str("a.txt", "0123456789abcdefghijklmnopqrstuvwxyz\n");
    char blob[5000];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (char)('a' + i % 26);
    fz_write("data.bin", blob, sizeof(blob));
    fz_write_str(".env", "SECRET=1\n");
    fz_mkdir("sub");
    fz_write_str("sub/index.html", "<p>sub</p>\n");
    fz_mkdir("list");
    fz_write_str("list/x.txt", "x\n");
    fz_write_str("list/a b&<c>.txt", "y\n");
    fz_mkdir("list/deeper");
    fz_write_str("mime.types", "text/html html htm\ntext/plain txt\n"
                               "application/octet-stream bin\n# comment\n");
    /* Precompressed siblings, dated after the original so they are served
     * (a stale one never is). */
    fz_write_str("a.txt.gz", "GZ-not-really\n");
    fz_write_str("a.txt.br", "BR-not-really\n");
    struct stat st;
    char path[1024];
    snprintf(path, sizeof(path), "%s/a.txt", fz_root);
    FZ_SETUP(stat(path, &st) == 0);
    struct timespec times[2] = {{0, UTIME_NOW}, st.st_mtim};
    times[1].tv_sec += 1;
    snprintf(path, sizeof(path), "%s/a.txt.gz", fz_root);
    FZ_SETUP(utimensat(AT_FDCWD, path, times, 0) == 0);
    snprintf(path, sizeof(path), "%s/a.txt.br", fz_root);
    FZ_SETUP(utimensat(AT_FDCWD, path, times, 0) == 0);
    return fz_root;
}

static inline char *fz_mime_types_path(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/mime.types", fz_make_root());
    return path;
}

/* FUZZ_DUMP=1 in the environment: show what eddy wrote (to debug a seed or
 * a crash by running the target on that one input). */
static inline void fz_dump(const char *what, const char *o, size_t len)
{
    static int on = -1;
    if (on < 0)
        on = getenv("FUZZ_DUMP") != NULL;
    if (!on)
        return;
    fprintf(stderr, "---- %s (%zu bytes)\n", what, len);
    fwrite(o, 1, len, stderr);
    fprintf(stderr, "\n---- end\n");
}

/* ------------------------------------------------------- response checker -- */

static inline bool fz_starts(const char *p, size_t avail, const char *lit)
{
    size_t n = strlen(lit);
    return avail >= n && memcmp(p, lit, n) == 0;
}

/* The next response begins at p: all of "HTTP/1.1 ", or, when the stream
 * may end mid-write (allow_partial), as much of it as there is. */
static inline bool fz_next_response(const char *p, size_t avail, bool allow_partial)
{
    if (avail >= 9)
        return memcmp(p, "HTTP/1.1 ", 9) == 0;
    return allow_partial && memcmp(p, "HTTP/1.1 ", avail) == 0;
}

/* "Name: value" line lookup inside one head; returns the value or NULL. */
static inline const char *fz_field(const char *head, size_t hlen, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

static inline bool fz_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t x = 0;
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *out = x;
    return true;
}

typedef struct fz_stream_stats {
    unsigned responses;  /* complete heads seen */
    unsigned final_seen; /* responses with status >= 200 */
    bool closed;         /* a Connection: close response was seen */
    bool partial;        /* the stream ends inside a response */
} fz_stream_stats;

/* Fields only eddy writes (eddy_response_field refuses them, -EPERM): each
 * at most once in a head. */
static const char *const fz_owned_fields[] = {
    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE",
    "Trailer", "Proxy-Connection", "Date", "Server", "Content-Type",
};
#define FZ_NOWNED (sizeof(fz_owned_fields) / sizeof(fz_owned_fields[0]))

/* Checks one head, [h, h + hlen) without its final CRLFCRLF: a status line
 * (status 100..max_status) then well-formed field lines, nothing a request
 * or a handler could have smuggled in (bare CR or LF, NUL, a line without a
 * colon), and no field eddy owns twice, nor both Content-Length and
 * Transfer-Encoding.  Returns the status. */
static inline int fz_check_head_max(const char *h, size_t hlen, int max_status)
{
    FZ_CHECK(hlen >= 13, "head too short: %zu bytes", hlen);
    FZ_CHECK(memcmp(h, "HTTP/1.1 ", 9) == 0, "head does not start with HTTP/1.1");
    FZ_CHECK(h[9] >= '1' && h[9] <= '9' && h[10] >= '0' && h[10] <= '9' && h[11] >= '0' &&
                 h[11] <= '9' && h[12] == ' ',
             "bad status line: %.*s", (int)(hlen < 40 ? hlen : 40), h);
    int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    FZ_CHECK(status <= max_status, "status %d above %d", status, max_status);
    unsigned owned[FZ_NOWNED] = {0};
    const char *end = h + hlen, *p = h;
    bool first = true;
    while (p <= end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        for (const char *q = p; q < eol; q++)
            FZ_CHECK(*q != '\r' && *q != '\n' && *q != '\0',
                     "control byte 0x%02x inside a response head line: %.*s",
                     (unsigned char)*q, (int)(eol - p > 200 ? 200 : eol - p), p);
        if (!first) {
            const char *colon = memchr(p, ':', (size_t)(eol - p));
            FZ_CHECK(colon && colon > p, "response field line without a name: %.*s",
                     (int)(eol - p > 200 ? 200 : eol - p), p);
            for (const char *q = p; q < colon; q++)
                FZ_CHECK(*q > 0x20 && *q < 0x7f, "bad byte in a response field name");
            FZ_CHECK(colon + 1 < eol && colon[1] == ' ', "field without ': '");
            for (size_t i = 0; i < FZ_NOWNED; i++)
                if (strlen(fz_owned_fields[i]) == (size_t)(colon - p) &&
                    strncasecmp(p, fz_owned_fields[i], (size_t)(colon - p)) == 0)
                    FZ_CHECK(++owned[i] == 1, "%s twice in one head: %.*s", fz_owned_fields[i],
                             (int)(hlen > 600 ? 600 : hlen), h);
        }
        first = false;
        if (eol == end)
            break;
        p = eol + 2;
    }
    FZ_CHECK(!(owned[0] && owned[1]), "both Content-Length and Transfer-Encoding: %.*s",
             (int)(hlen > 600 ? 600 : hlen), h);
    return status;
}

static inline int fz_check_head(const char *h, size_t hlen) { return fz_check_head_max(h, hlen, 599); }

/* Walks a chunked body as eddy writes it: lowercase hex sizes without
 * leading zeros or extensions, each chunk followed by CRLF, then "0" CRLF
 * CRLF (no trailers).  piece (may be NULL) gets the data of each chunk, as
 * much of it as there is.  Returns true at the end of the body, with *used
 * the bytes it took; false when the bytes run out first (*used: all). */
static inline bool fz_chunked(const char *p, size_t avail, size_t *used,
                              void (*piece)(void *ctx, const char *d, size_t n), void *ctx)
{
    size_t at = 0;
    for (;;) {
        size_t digits = 0;
        uint64_t size = 0;
        while (at + digits < avail && digits < 17) {
            char ch = p[at + digits];
            int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (v < 0)
                break;
            size = size << 4 | (uint64_t)v;
            digits++;
        }
        if (at + digits == avail)
            goto out; /* the size line is cut short */
        FZ_CHECK(digits > 0 && digits <= 16, "bad chunk size line: %.*s",
                 (int)(avail - at > 40 ? 40 : avail - at), p + at);
        FZ_CHECK(p[at] != '0' || digits == 1, "chunk size with a leading zero: %.*s",
                 (int)digits, p + at);
        at += digits;
        if (avail - at < 2) {
            FZ_CHECK(p[at] == '\r', "chunk size not followed by CRLF");
            goto out;
        }
        FZ_CHECK(p[at] == '\r' && p[at + 1] == '\n', "chunk size not followed by CRLF: %.*s",
                 (int)(avail - at > 40 ? 40 : avail - at), p + at);
        at += 2;
        if (size == 0) {
            /* The last chunk: no trailers, the body ends with CRLF. */
            size_t rem = avail - at;
            FZ_CHECK(memcmp(p + at, "\r\n", rem < 2 ? rem : 2) == 0,
                     "last chunk not followed by CRLF (trailers?): %.*s",
                     (int)(rem > 40 ? 40 : rem), p + at);
            if (rem < 2)
                goto out;
            *used = at + 2;
            return true;
        }
        size_t have = avail - at < size ? avail - at : (size_t)size;
        if (piece && have)
            piece(ctx, p + at, have);
        at += have;
        if (have < size)
            goto out;
        size_t rem = avail - at;
        FZ_CHECK(memcmp(p + at, "\r\n", rem < 2 ? rem : 2) == 0,
                 "chunk data not followed by CRLF: %.*s", (int)(rem > 40 ? 40 : rem), p + at);
        if (rem < 2)
            goto out;
        at += 2;
    }
out:
    *used = avail;
    return false;
}

/* What the checker may know of the request a response answers. */
typedef struct fz_answer {
    bool head;   /* a HEAD: no body, whatever the head announces */
    bool http10; /* an HTTP/1.0 request: never chunked; an unknown length
                    is delimited by closing the connection */
} fz_answer;

enum fz_framing { FZ_BODY_NONE, FZ_BODY_LENGTH, FZ_BODY_CHUNKED, FZ_BODY_CLOSE };

/* One response the checker found. */
typedef struct fz_response {
    size_t off;       /* where it starts */
    size_t head_len;  /* its head, without the final CRLFCRLF; 0 if cut short */
    size_t body_off;  /* its body on the wire (chunk framing included) */
    size_t body_len;  /* as much of it as there is */
    int status;
    enum fz_framing framing;
    bool complete;    /* the whole body is there */
} fz_response;

typedef struct fz_check_opts {
    bool allow_partial;       /* the stream may stop inside its last response */
    int max_status;           /* highest status accepted; 0: 599 */
    const fz_answer *answers; /* answers[i]: what response i answers; NULL: HEAD is guessed */
    size_t nanswers;
    fz_response *out;         /* each response found, up to max_out */
    size_t max_out;
} fz_check_opts;

/* Walks what eddy wrote on one connection: a sequence of responses, each a
 * head ending in CRLFCRLF and the body its framing announces: Content-Length
 * bytes, a chunked body, or (to an HTTP/1.0 request, with Connection: close)
 * everything up to the end; none for 1xx, 204, 304 and answers to HEAD.
 * Without answers, a response with a Content-Length and no body is taken for
 * the answer to a HEAD when the next response or the end follows at once.
 * With allow_partial the stream may stop inside the last response (the
 * connection was cut, or is still sending); otherwise it must end on a
 * response boundary. */
static inline fz_stream_stats fz_check_stream_opts(const char *o, size_t len,
                                                   const fz_check_opts *opt)
{
    fz_stream_stats s = {0};
    bool allow_partial = opt->allow_partial;
    int max_status = opt->max_status ? opt->max_status : 599;
    size_t p = 0;
    while (p < len) {
        size_t rem = len - p;
        FZ_CHECK(!s.closed, "%zu bytes after a Connection: close response: %.*s", rem,
                 (int)(rem > 80 ? 80 : rem), o + p);
        FZ_CHECK(!opt->answers || s.responses < opt->nanswers,
                 "response %u answers no request: %.*s", s.responses, (int)(rem > 80 ? 80 : rem),
                 o + p);
        fz_response *r = opt->out && s.responses < opt->max_out ? &opt->out[s.responses] : NULL;
        if (r)
            *r = (fz_response){.off = p};
        if (rem < 9) {
            FZ_CHECK(allow_partial && memcmp(o + p, "HTTP/1.1 ", rem) == 0,
                     "stream ends in a fragment: %.*s", (int)rem, o + p);
            s.partial = true;
            break;
        }
        FZ_CHECK(memcmp(o + p, "HTTP/1.1 ", 9) == 0, "response %u does not start with HTTP/1.1: %.*s",
                 s.responses, (int)(rem > 80 ? 80 : rem), o + p);
        const char *he = memmem(o + p, rem, "\r\n\r\n", 4);
        if (!he) {
            FZ_CHECK(allow_partial, "response head not terminated by CRLFCRLF: %.*s",
                     (int)(rem > 300 ? 300 : rem), o + p);
            s.partial = true;
            break;
        }
        size_t hlen = (size_t)(he - (o + p));
        int status = fz_check_head_max(o + p, hlen, max_status);
        const fz_answer *ans = opt->answers ? &opt->answers[s.responses] : NULL;
        s.responses++;
        const char *h = o + p;
        size_t vl;
        const char *cl = fz_field(h, hlen, "Content-Length", &vl);
        uint64_t clen = 0;
        if (cl)
            FZ_CHECK(fz_parse_u64(cl, vl, &clen), "bad Content-Length: %.*s", (int)vl, cl);
        const char *te = fz_field(h, hlen, "Transfer-Encoding", &vl);
        if (te)
            FZ_CHECK(vl == 7 && memcmp(te, "chunked", 7) == 0, "Transfer-Encoding: %.*s",
                     (int)vl, te);
        const char *conn = fz_field(h, hlen, "Connection", &vl);
        bool close = conn && vl == 5 && memcmp(conn, "close", 5) == 0;
        const char *cr = fz_field(h, hlen, "Content-Range", &vl);
        if (status == 206 && cr && fz_starts(cr, vl, "bytes ") && cr[6] != '*') {
            /* One range: its bounds and the length must agree. */
            char tmp[80];
            FZ_CHECK(vl < sizeof(tmp), "long Content-Range");
            memcpy(tmp, cr, vl);
            tmp[vl] = 0;
            unsigned long long f, l, sz;
            FZ_CHECK(sscanf(tmp, "bytes %llu-%llu/%llu", &f, &l, &sz) == 3,
                     "bad Content-Range: %s", tmp);
            FZ_CHECK(f <= l && l < sz, "Content-Range out of order: %s", tmp);
            FZ_CHECK(!cl || clen == l - f + 1, "Content-Length %llu vs Content-Range %s",
                     (unsigned long long)clen, tmp);
        }
        size_t body_at = p + hlen + 4;
        size_t next;
        if (r) {
            r->head_len = hlen;
            r->status = status;
            r->body_off = body_at;
        }
        enum fz_framing framing = FZ_BODY_NONE;
        bool complete = true;
        if (status < 200 || status == 204 || status == 304) {
            FZ_CHECK(!cl, "status %d with a Content-Length", status);
            FZ_CHECK(!te, "status %d with a Transfer-Encoding", status);
            next = body_at;
        } else if (ans && ans->head) {
            s.final_seen++;
            next = body_at; /* the answer to a HEAD: its head alone */
        } else if (te) {
            FZ_CHECK(!ans || !ans->http10, "a chunked body to an HTTP/1.0 request");
            s.final_seen++;
            framing = FZ_BODY_CHUNKED;
            size_t used;
            complete = fz_chunked(o + body_at, len - body_at, &used, NULL, NULL);
            if (!complete) {
                FZ_CHECK(allow_partial, "chunked body cut short (%zu bytes)", len - body_at);
                s.partial = true;
            }
            next = body_at + used;
        } else if (!cl && ans) {
            /* Delimited by the end of the connection: HTTP/1.0 only. */
            FZ_CHECK(ans->http10, "status %d without Content-Length or chunked to HTTP/1.1",
                     status);
            FZ_CHECK(close, "a body delimited by closing without Connection: close");
            s.final_seen++;
            framing = FZ_BODY_CLOSE;
            complete = false; /* a close-delimited body is never known complete */
            next = len;
        } else if (ans) {
            s.final_seen++;
            framing = FZ_BODY_LENGTH;
            if (clen <= len - body_at) {
                next = body_at + (size_t)clen;
                FZ_CHECK(next == len || fz_next_response(o + next, len - next, allow_partial),
                         "body of status %d does not match Content-Length %llu (%zu bytes follow)",
                         status, (unsigned long long)clen, len - body_at);
            } else {
                FZ_CHECK(allow_partial, "body of status %d cut short: Content-Length %llu, %zu bytes",
                         status, (unsigned long long)clen, len - body_at);
                s.partial = true;
                complete = false;
                next = len;
            }
        } else {
            FZ_CHECK(cl, "status %d without Content-Length", status);
            s.final_seen++;
            framing = FZ_BODY_LENGTH;
            if (clen <= len - body_at &&
                (body_at + clen == len ||
                 fz_next_response(o + body_at + clen, len - body_at - clen, allow_partial))) {
                next = body_at + (size_t)clen; /* the body, then the end or the next answer */
            } else if (body_at == len || fz_starts(o + body_at, len - body_at, "HTTP/1.1 ")) {
                next = body_at; /* the answer to a HEAD */
                framing = FZ_BODY_NONE;
            } else {
                FZ_CHECK(allow_partial && clen > len - body_at,
                         "body of status %d does not match Content-Length %llu (%zu bytes follow)",
                         status, (unsigned long long)clen, len - body_at);
                s.partial = true;
                if (r) {
                    r->framing = framing;
                    r->body_len = len - body_at;
                }
                break;
            }
        }
        if (r) {
            r->framing = framing;
            r->body_len = next - body_at;
            r->complete = complete;
        }
        if (close)
            s.closed = true;
        p = next;
    }
    return s;
}

static inline fz_stream_stats fz_check_stream(const char *o, size_t len, bool allow_partial)
{
    fz_check_opts opt = {.allow_partial = allow_partial};
    return fz_check_stream_opts(o, len, &opt);
}

/* Routes an exact path to h (with the whole body when body). */
static inline int fz_route(eddy_server *srv, const char *path, eddy_handler h, bool body)
{
    eddy_route r = {.path = path, .body = body, .handler = h};
    return eddy_server_route(srv, &r);
}

/* A file server for fz_root routed at "/", as the eddy program has. */
static inline int fz_serve_files(eddy_server *srv, eddy_loop *loop, const eddy_files_config *c,
                                 eddy_files **out)
{
    int rc = eddy_files_new(loop, c, out);
    if (rc < 0)
        return rc;
    eddy_route r = {.path = "/", .prefix = true, .handler = eddy_files_handler, .data = *out};
    return eddy_server_route(srv, &r);
}

#endif
