#include "files/static.h"
#include "files/mime.h"
#include "files/path.h"
#include "http/response.h"
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char builtin_404[] =
    "<!doctype html>\n<title>404 Not Found</title>\n<h1>404 Not Found</h1>\n";

/* Opens rel under dirfd; the kernel refuses any resolution that would leave
 * dirfd (by "..", an absolute symlink or one that climbs out). */
static int open_beneath(int dirfd, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

/* Sends an open regular file with the given status; takes fd. */
static void send_file(eddy_request *req, int status, int fd, const struct stat *st,
                      const char *name)
{
    conn *c = req->c;
    response_head(c, status, mime_for(name), st->st_size, NULL);
    if (req->is_head)
        close(fd);
    else
        conn_queue_file(c, fd, 0, st->st_size);
    conn_response_done(c);
}

static void not_found(eddy_request *req)
{
    conn *c = req->c;
    int fd = open_beneath(c->srv->root_fd, "404.html");
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        send_file(req, 404, fd, &st, "404.html");
        return;
    }
    if (fd >= 0)
        close(fd);
    response_head(c, 404, "text/html; charset=utf-8", sizeof(builtin_404) - 1, NULL);
    if (!req->is_head)
        conn_queue(c, builtin_404, sizeof(builtin_404) - 1);
    conn_response_done(c);
}

/* A directory named without its trailing slash: send the client to the
 * slash form so relative links in its index resolve (query kept). */
static void redirect_to_slash(eddy_request *req, const char *path, size_t len)
{
    conn *c = req->c;
    eddy_str q = eddy_request_query(req);
    size_t need = len + q.len + 32;
    char *loc = malloc(need);
    if (!loc) {
        response_error(c, 500);
        return;
    }
    /* Location is a URL path as received: still percent-encoded. */
    int n = snprintf(loc, need, "Location: %.*s/%s%.*s\r\n", (int)len, path, q.len ? "?" : "",
                     (int)q.len, q.ptr);
    (void)n;
    response_simple(req, 301, loc);
    free(loc);
}

static void serve_path(eddy_request *req, const char *path, size_t len)
{
    conn *c = req->c;
    resolved_path rp;
    int st = path_resolve(path, len, &rp);
    if (st == 404) {
        not_found(req);
        return;
    }
    if (st) {
        response_simple(req, st, NULL);
        return;
    }
    int fd = open_beneath(c->srv->root_fd, rp.rel);
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (!rp.trailing_slash) {
            close(fd);
            redirect_to_slash(req, path, len);
            return;
        }
        int index = open_beneath(fd, "index.html");
        close(fd);
        fd = index;
        if (fd >= 0 && fstat(fd, &sb) < 0) {
            close(fd);
            fd = -errno;
        }
        if (fd >= 0) {
            if (!S_ISREG(sb.st_mode)) {
                close(fd);
                fd = -ENOENT;
            } else {
                send_file(req, 200, fd, &sb, "index.html");
                return;
            }
        }
    } else if (fd >= 0 && !S_ISREG(sb.st_mode)) {
        close(fd);
        fd = -ENOENT;
    }
    if (fd == -EACCES || fd == -EPERM) {
        response_simple(req, 403, NULL);
        return;
    }
    if (fd < 0) {
        not_found(req); /* includes EXDEV: a path that tried to leave the root */
        return;
    }
    send_file(req, 200, fd, &sb, rp.rel);
}

#define FILE_METHODS "Allow: GET, HEAD, OPTIONS\r\n"

/* Files answer GET and HEAD; OPTIONS says so; every other method eddy
 * knows is refused with the same list (TRACE included: nothing is ever
 * echoed).  Methods eddy does not know never get here: they are 501. */
static void serve(eddy_request *req, const char *path, size_t len)
{
    switch (req->c->parser.method) {
    case HTTP_GET:
    case HTTP_HEAD:
        serve_path(req, path, len);
        return;
    case HTTP_OPTIONS:
        response_simple(req, 204, FILE_METHODS);
        return;
    default:
        response_simple(req, 405, FILE_METHODS);
        return;
    }
}

void static_serve(eddy_request *req)
{
    eddy_str p = eddy_request_path(req);
    serve(req, p.ptr, p.len);
}

int eddy_respond_file(eddy_request *req, const char *path)
{
    if (req->answered)
        return -EALREADY;
    if (req->aborted) {
        conn_response_done(req->c);
        return 0;
    }
    serve(req, path, strlen(path));
    return 0;
}
