/* Serving files under the server's root: methods, paths, directories. */
#ifndef EDDY_FILES_STATIC_H
#define EDDY_FILES_STATIC_H

#include "core/request.h"
#include "files/file_cache.h"
#include "files/mime.h"

#define FILES_DEFAULT_ROOT "www"
#define FILES_DEFAULT_MIME_TYPES "/etc/mime.types"
#define FILES_DEFAULT_INDEX "index.html"
/* Index names a server takes: each one a directory misses costs a lookup
 * (and a cache entry), so a long list slows every directory request. */
#define FILES_MAX_INDEX 16

/* One file server: a root and how to serve it, with its own cache of open
 * files (so one per loop: no locks). */
struct eddy_files {
    eddy_loop *loop;
    char *root;
    int root_fd;
    bool dotfiles, autoindex;
    bool no_precompressed; /* never a FILE.br / FILE.gz in FILE's place */
    char **index;          /* names tried for a directory, in order */
    unsigned nindex;       /* at least 1 (FILES_DEFAULT_INDEX) */
    char *cache_control;
    size_t cache_control_len;
    mime_table *mime;
    file_cache *cache;
    uint32_t multipart_seq; /* makes multipart boundaries unique */
};
/* Opens rel under dirfd; the kernel refuses any resolution that would
 * leave dirfd.  Returns the fd or a negative errno (-EXDEV: it leads out). */
int static_open_beneath(int dirfd, const char *rel);
/* The same where openat2 is missing (ENOSYS): an ordinary open, then a
 * check in /proc/self/fd that the file it reached lies under dirfd.
 * Links that stay inside are followed, absolute ones included. */
int static_open_checked(int dirfd, const char *rel);

#endif
