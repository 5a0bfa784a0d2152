#include "files/static.h"
#include "files/autoindex.h"
#include "files/file_response.h"
#include "files/path.h"
#include "core/path.h"
#include "rt/loop.h"

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

static int cache_get(eddy_files *fs, const char *rel, cached_file **f)
{
    return file_cache_get(fs->cache, rel, eddy_loop_now(fs->loop), f);
}

static void not_found(eddy_files *fs, request *req)
{
    cached_file *f;
    if (cache_get(fs, "404.html", &f) == 0) {
        file_respond(fs, req, f, "404.html", 404);
        return;
    }
    response resp = {
        .status = 404,
        .content_type = "text/html; charset=utf-8",
        .content_length = sizeof(builtin_404) - 1,
        .data = builtin_404,
        .data_len = sizeof(builtin_404) - 1,
    };
    response_send(req, &resp);
}

/* A directory named without its trailing slash: send the client to the
 * slash form so relative links in its index resolve.  raw is the path as
 * the client sent it (still percent-encoded); the query is kept. */
static void redirect_to_slash(request *req, eddy_str raw)
{
    eddy_str q = request_span(req, req->query);
    size_t n = raw.len + 1 + (q.len ? q.len + 1 : 0);
    char *loc = malloc(n);
    if (!loc) {
        response_simple(req, 503, NULL, 0);
        return;
    }
    memcpy(loc, raw.ptr, raw.len);
    loc[raw.len] = '/';
    if (q.len) {
        loc[raw.len + 1] = '?';
        memcpy(loc + raw.len + 2, q.ptr, q.len);
    }
    resp_field location = {"Location", loc, 8, (uint32_t)n};
    response_simple(req, 301, &location, 1);
    free(loc);
}

static void send_listing(eddy_files *fs, request *req, int dirfd, const char *path,
                         size_t len)
{
    /* The path is a span of the request's buffer, not a C string: copied
     * by length (strndup would look for a NUL past the span). */
    char *url = malloc(len + 1);
    if (url) {
        memcpy(url, path, len);
        url[len] = '\0';
    }
    char *html = NULL;
    size_t html_len = 0;
    int rc = url ? autoindex_render(dirfd, url, fs->dotfiles, &html, &html_len) : -ENOMEM;
    free(url);
    if (rc < 0) {
        response_simple(req, rc == -EACCES ? 403 : 500, NULL, 0);
        return;
    }
    response resp = {
        .status = 200,
        .content_type = "text/html; charset=utf-8",
        .content_length = (int64_t)html_len,
        .data = html,
        .data_len = html_len,
    };
    response_send(req, &resp);
    free(html);
}

/* A directory: its first index name that is a regular file, else a
 * listing (--autoindex), else 404. */
static void serve_directory(eddy_files *fs, request *req, const resolved_path *rp,
                            eddy_str raw)
{
    if (!rp->trailing_slash) {
        redirect_to_slash(req, raw);
        return;
    }
    /* Names are at most NAME_MAX (eddy_files_new): "DIR/NAME" always fits. */
    char rel[sizeof(rp->rel) + NAME_MAX + 2];
    for (unsigned i = 0; i < fs->nindex; i++) {
        if (strcmp(rp->rel, ".") == 0)
            snprintf(rel, sizeof(rel), "%s", fs->index[i]);
        else
            snprintf(rel, sizeof(rel), "%s/%s", rp->rel, fs->index[i]);
        cached_file *f;
        if (cache_get(fs, rel, &f) == 0) {
            file_respond(fs, req, f, rel, 200);
            return;
        }
    }
    if (!fs->autoindex) {
        not_found(fs, req);
        return;
    }
    int dirfd = static_open_beneath(fs->root_fd, rp->rel);
    if (dirfd < 0) {
        not_found(fs, req);
        return;
    }
    send_listing(fs, req, dirfd, raw.ptr, raw.len);
    close(dirfd);
}

/* path: decoded, dot segments removed (core/path.h); raw: as sent. */
static void serve_path(eddy_files *fs, request *req, eddy_str raw, const char *path,
                       size_t len)
{
    resolved_path rp;
    int st = path_resolve(path, len, fs->dotfiles, &rp);
    if (st == 404) {
        not_found(fs, req);
        return;
    }
    if (st) {
        response_simple(req, st, NULL, 0);
        return;
    }
    cached_file *f;
    int rc = cache_get(fs, rp.rel, &f);
    if (rc == 0) {
        file_respond(fs, req, f, rp.rel, 200);
    } else if (rc == -EISDIR) {
        serve_directory(fs, req, &rp, raw);
    } else if (rc == -EACCES || rc == -EPERM) {
        response_simple(req, 403, NULL, 0);
    } else if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -ENOBUFS) {
        /* Out of resources, not a missing file: the client may retry. */
        resp_field retry = FIELD_LIT("Retry-After", "1");
        response_simple(req, 503, &retry, 1);
    } else {
        /* ENOENT, and EXDEV: a path that tried to leave the root. */
        not_found(fs, req);
    }
}

/* Files answer GET and HEAD; OPTIONS says so; every other method is
 * refused with the same list (TRACE included: nothing is ever echoed). */
static void serve(eddy_files *fs, request *req, eddy_str raw, const char *path, size_t len)
{
    resp_field allow = FIELD_LIT("Allow", "GET, HEAD, OPTIONS");
    switch (req->method_id) {
    case METHOD_GET:
    case METHOD_HEAD:
        serve_path(fs, req, raw, path, len);
        return;
    case METHOD_OPTIONS:
        response_simple(req, 204, &allow, 1);
        return;
    default:
        response_simple(req, 405, &allow, 1);
        return;
    }
}

void eddy_files_handler(eddy_request *h, void *files)
{
    request *req = request_of(h);
    if (!req)
        return;
    eddy_str raw = request_span(req, req->path);
    eddy_str p = request_decoded_path(req);
    serve(files, req, raw, p.ptr, p.len);
}

int eddy_files_respond(eddy_files *files, eddy_request *h, const char *path)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    if (req->answered || req->streaming)
        return -EALREADY;
    if (req->aborted) {
        response_simple(req, 404, NULL, 0); /* dropped: the client left */
        return 0;
    }
    size_t len = strlen(path);
    char *decoded = malloc(len + 2);
    size_t n;
    if (!decoded)
        return -ENOMEM;
    if (path_normalize(path, len, decoded, &n) != 0) {
        free(decoded);
        return -EINVAL;
    }
    serve(files, req, (eddy_str){path, len}, decoded, n);
    free(decoded);
    return 0;
}

/* One index name: a file name in the directory itself, so never a path
 * ('/', ".", "..") and nothing that could not name a file (empty, longer
 * than NAME_MAX); control characters are refused too, as no page is named
 * so and they would only end up in logs. */
static bool index_name_ok(const char *name)
{
    if (!name || !name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, len++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
    return len <= NAME_MAX;
}

/* Copies the index names into one block (the pointers, then the strings)
 * so one free releases them.  NULL or 0 names: FILES_DEFAULT_INDEX alone. */
static int index_copy(eddy_files *fs, const eddy_files_config *config)
{
    static const char *const default_index[] = {FILES_DEFAULT_INDEX};
    const char *const *names = default_index;
    unsigned n = 1;
    if (config->index && config->nindex) {
        names = config->index;
        n = config->nindex;
    }
    if (n > FILES_MAX_INDEX)
        return -EINVAL;
    size_t bytes = n * sizeof(char *);
    for (unsigned i = 0; i < n; i++) {
        if (!index_name_ok(names[i]))
            return -EINVAL;
        bytes += strlen(names[i]) + 1;
    }
    fs->index = malloc(bytes);
    if (!fs->index)
        return -ENOMEM;
    char *p = (char *)(fs->index + n);
    for (unsigned i = 0; i < n; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(p, names[i], len);
        fs->index[i] = p;
        p += len;
    }
    fs->nindex = n;
    return 0;
}

int eddy_files_new(eddy_loop *loop, const eddy_files_config *config, eddy_files **out)
{
    eddy_files_config defaults = {0};
    if (!config)
        config = &defaults;
    eddy_files *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->loop = loop;
    fs->root_fd = -1;
    /* On any failure below, eddy_files_free() releases what was made.  The
     * index names first: a bad one is -EINVAL whatever the root is. */
    int rc = index_copy(fs, config);
    if (rc < 0) {
        eddy_files_free(fs);
        return rc;
    }
    fs->root = strdup(config->root ? config->root : FILES_DEFAULT_ROOT);
    if (!fs->root) {
        eddy_files_free(fs);
        return -ENOMEM;
    }
    fs->root_fd = open(fs->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fs->root_fd < 0) {
        rc = -errno;
        eddy_files_free(fs);
        return rc;
    }
    fs->dotfiles = config->dotfiles;
    fs->autoindex = config->autoindex;
    fs->no_precompressed = config->no_precompressed;
    fs->mime = mime_table_load(config->mime_types ? config->mime_types : FILES_DEFAULT_MIME_TYPES);
    fs->cache = file_cache_new(fs->root_fd, FILE_CACHE_ENTRIES);
    if (config->cache_control) {
        fs->cache_control = strdup(config->cache_control);
        fs->cache_control_len = strlen(config->cache_control);
    }
    if (!fs->mime || !fs->cache || (config->cache_control && !fs->cache_control)) {
        eddy_files_free(fs);
        return -ENOMEM;
    }
    *out = fs;
    return 0;
}

void eddy_files_free(eddy_files *fs)
{
    if (!fs)
        return;
    file_cache_free(fs->cache);
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    mime_table_free(fs->mime);
    free(fs->cache_control);
    free(fs->index);
    free(fs->root);
    free(fs);
}
