/* Open files kept between requests, per server (so per loop: no locks).
 * A hot file costs at most one fstat per millisecond instead of a path
 * walk, open and close per request: a file changed in place is seen
 * within that millisecond; each entry's path is
 * looked up again once it is older than the revalidation interval, so a
 * file replaced or deleted is noticed within it.  Lookups that failed (a
 * missing FILE.br, say) are remembered the same way. */
#ifndef EDDY_FILES_FILE_CACHE_H
#define EDDY_FILES_FILE_CACHE_H

#include "core/response.h"
#include <stdint.h>
#include <sys/stat.h>

/* Entries kept (each a file descriptor when the lookup found a file). */
#define FILE_CACHE_ENTRIES 256
/* How long an entry is trusted before the file system is asked again. */
#define FILE_CACHE_REVALIDATE_MS 1000
/* Files this small are also kept in memory, so their bodies leave in the
 * same write as their heads (and pipelined answers in one write). */
#define FILE_CACHE_INLINE_MAX 16384

typedef struct file_cache file_cache;

typedef struct cached_file {
    body_file body;        /* fd and references; conn releases it */
    struct stat st;
    int err;               /* 0, or the negative errno the lookup got */
    uint64_t checked_ms;   /* when the path was last looked up */
    uint64_t stat_ms;      /* when the descriptor was last fstat'ed */
    /* Validators, rendered once per version of the file. */
    char etag[64];
    size_t etag_len;
    char last_modified[30];
    struct timespec meta_mtime;
    off_t meta_size;
    const char *content_type; /* from the server's MIME table, looked up once */
    uint64_t no_variants_until; /* FILE.br and FILE.gz known absent until then */
    char *data;            /* the bytes of a small file, or NULL */
    struct timespec data_mtime; /* the mtime data was read at */
    off_t data_size;
    uint32_t hash;
    bool in_table;
    file_cache *cache;
    struct cached_file *hnext, *lru_prev, *lru_next;
    char rel[];            /* path under the root */
} cached_file;

file_cache *file_cache_new(int root_fd, unsigned capacity);
void file_cache_free(file_cache *fc);

/* Finds the regular file rel (a path under the root, already resolved).
 * Returns 0 and a reference in *out (release with file_cache_release or
 * by handing its body to a connection), -EISDIR for a directory, or the
 * negative errno of the lookup (-ENOENT, -EACCES, -EXDEV...).  Running out
 * of descriptors or memory (-EMFILE, -ENFILE, -ENOMEM) is never cached,
 * and never replaces an entry that was fine. */
int file_cache_get(file_cache *fc, const char *rel, uint64_t now_ms, cached_file **out);
void file_cache_release(cached_file *f);
/* The file's bytes when it is small enough to keep in memory (read now if
 * not yet, or again if it changed); NULL otherwise or on a read error. */
const char *file_cache_data(cached_file *f);
/* Renders f's ETag and Last-Modified for its current version (no-op when
 * they are up to date). */
void file_cache_validators(cached_file *f);

#endif
