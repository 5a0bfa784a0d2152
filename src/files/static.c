#include "files/static.h"
#include "files/autoindex.h"
#include "files/file_response.h"
#include "files/path.h"
#include "http/response.h"
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char builtin_404[] =
    "<!doctype html>\n<title>404 Not Found</title>\n<h1>404 Not Found</h1>\n";

/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
 * writer, holding the whole loop; a regular file ignores it. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Set once openat2 said ENOSYS: this kernel (before 5.6) or a sandbox's
 * syscall filter lacks it, and asking again would only say so again. */
static atomic_bool no_openat2;

int static_open_beneath(int dirfd, const char *rel)
{
    if (atomic_load_explicit(&no_openat2, memory_order_relaxed))
        return static_open_checked(dirfd, rel);
    /* RESOLVE_BENEATH: "..", absolute symlinks and links that climb out
     * all fail (EXDEV) — in the kernel, with no race against renames. */
    struct open_how how = {
        .flags = OPEN_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
        return static_open_checked(dirfd, rel);
    }
    return fd < 0 ? -errno : (int)fd;
}

/* The path a descriptor stands for, as the kernel resolved it. */
static bool fd_path(int fd, char *out, size_t cap)
{
    char link[32];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1)
        return false;
    out[n] = 0;
    return true;
}

int static_open_checked(int dirfd, const char *rel)
{
    int fd = openat(dirfd, rel, OPEN_FLAGS);
    if (fd < 0)
        return -errno;
    /* The open resolved every link at once; where it landed is the only
     * thing that matters, so check that, and refuse when unsure (no /proc
     * mounted, say). */
    char root[PATH_MAX], got[PATH_MAX];
    size_t rl;
    bool inside = fd_path(dirfd, root, sizeof(root)) && fd_path(fd, got, sizeof(got)) &&
                  (rl = strlen(root), strncmp(got, root, rl) == 0) &&
                  (got[rl] == '/' || got[rl] == 0 || (rl == 1 && root[0] == '/'));
    if (!inside) {
        close(fd);
        return -EXDEV;
    }
    return fd;
}

static int cache_get(eddy_request *req, const char *rel, cached_file **f)
{
    eddy_server *srv = req->c->srv;
    return file_cache_get(srv->files, rel, eddy_loop_now(srv->loop), f);
}

static void not_found(eddy_request *req)
{
    conn *c = req->c;
    cached_file *f;
    if (cache_get(req, "404.html", &f) == 0) {
        file_respond(req, f, "404.html", 404);
        return;
    }
    response_head(c, 404, "text/html; charset=utf-8", sizeof(builtin_404) - 1, NULL);
    if (!req->is_head)
        conn_queue(c, builtin_404, sizeof(builtin_404) - 1);
    conn_response_done(c);
}

/* A directory named without its trailing slash: send the client to the
 * slash form so relative links in its index resolve (query kept). */
static void redirect_to_slash(eddy_request *req, const char *path, size_t len)
{
    eddy_str q = eddy_request_query(req);
    size_t need = len + q.len + 32;
    char *loc = malloc(need);
    if (!loc) {
        response_error(req->c, 500);
        return;
    }
    /* Location is a URL path as received: still percent-encoded. */
    snprintf(loc, need, "Location: %.*s/%s%.*s\r\n", (int)len, path, q.len ? "?" : "", (int)q.len,
             q.ptr);
    response_simple(req, 301, loc);
    free(loc);
}

static void send_listing(eddy_request *req, int dirfd, const char *path, size_t len)
{
    conn *c = req->c;
    char *url = strndup(path, len);
    char *html = NULL;
    size_t html_len = 0;
    int rc = url ? autoindex_render(dirfd, url, c->srv->dotfiles, &html, &html_len) : -ENOMEM;
    free(url);
    if (rc < 0) {
        response_simple(req, rc == -EACCES ? 403 : 500, NULL);
        return;
    }
    response_head(c, 200, "text/html; charset=utf-8", (int64_t)html_len, NULL);
    if (!req->is_head)
        conn_queue(c, html, html_len);
    free(html);
    conn_response_done(c);
}

/* A directory: its index.html, else a listing (--autoindex), else 404. */
static void serve_directory(eddy_request *req, const resolved_path *rp, const char *path,
                            size_t len)
{
    if (!rp->trailing_slash) {
        redirect_to_slash(req, path, len);
        return;
    }
    char rel[sizeof(rp->rel) + 16];
    if (strcmp(rp->rel, ".") == 0)
        snprintf(rel, sizeof(rel), "index.html");
    else
        snprintf(rel, sizeof(rel), "%s/index.html", rp->rel);
    cached_file *f;
    if (cache_get(req, rel, &f) == 0) {
        file_respond(req, f, rel, 200);
        return;
    }
    if (!req->c->srv->autoindex) {
        not_found(req);
        return;
    }
    int dirfd = static_open_beneath(req->c->srv->root_fd, rp->rel);
    if (dirfd < 0) {
        not_found(req);
        return;
    }
    send_listing(req, dirfd, path, len);
    close(dirfd);
}

static void serve_path(eddy_request *req, const char *path, size_t len)
{
    conn *c = req->c;
    resolved_path rp;
    int st = path_resolve(path, len, c->srv->dotfiles, &rp);
    if (st == 404) {
        not_found(req);
        return;
    }
    if (st) {
        response_simple(req, st, NULL);
        return;
    }
    cached_file *f;
    int rc = cache_get(req, rp.rel, &f);
    if (rc == 0) {
        file_respond(req, f, rp.rel, 200);
    } else if (rc == -EISDIR) {
        serve_directory(req, &rp, path, len);
    } else if (rc == -EACCES || rc == -EPERM) {
        response_simple(req, 403, NULL);
    } else if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -ENOBUFS) {
        /* Out of resources, not a missing file: the client may retry. */
        response_simple(req, 503, "Retry-After: 1\r\n");
    } else {
        /* ENOENT, and EXDEV: a path that tried to leave the root. */
        not_found(req);
    }
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
