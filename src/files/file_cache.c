#include "files/file_cache.h"
#include "files/conditional.h"
#include "files/static.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Hash buckets: a power of two, twice the entries. */
#define BUCKETS_PER_ENTRY 2

struct file_cache {
    int root_fd;
    unsigned capacity, count;
    uint32_t mask;
    cached_file **buckets;
    cached_file lru; /* sentinel: lru.lru_next is the most recently used */
};

static uint32_t hash_rel(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void lru_unlink(cached_file *f)
{
    f->lru_prev->lru_next = f->lru_next;
    f->lru_next->lru_prev = f->lru_prev;
}

static void lru_push_front(file_cache *fc, cached_file *f)
{
    f->lru_next = fc->lru.lru_next;
    f->lru_prev = &fc->lru;
    fc->lru.lru_next->lru_prev = f;
    fc->lru.lru_next = f;
}

static void destroy(cached_file *f)
{
    if (f->body.fd >= 0)
        close(f->body.fd);
    free(f->data);
    free(f);
}

void file_cache_validators(cached_file *f)
{
    const struct stat *st = &f->st;
    if (f->meta_size == st->st_size && f->meta_mtime.tv_sec == st->st_mtim.tv_sec &&
        f->meta_mtime.tv_nsec == st->st_mtim.tv_nsec)
        return;
    f->etag_len = etag_make(f->etag, (uint64_t)st->st_size, st->st_mtim.tv_sec,
                            st->st_mtim.tv_nsec, st->st_ino);
    http_date_format(st->st_mtim.tv_sec, f->last_modified);
    f->meta_size = st->st_size;
    f->meta_mtime = st->st_mtim;
}

const char *file_cache_data(cached_file *f)
{
    if (f->err || f->st.st_size > FILE_CACHE_INLINE_MAX)
        return NULL;
    if (f->data && f->data_size == f->st.st_size && f->data_mtime.tv_sec == f->st.st_mtim.tv_sec &&
        f->data_mtime.tv_nsec == f->st.st_mtim.tv_nsec)
        return f->data;
    char *data = realloc(f->data, (size_t)f->st.st_size + 1);
    if (!data)
        return NULL;
    f->data = data;
    ssize_t n = pread(f->body.fd, data, (size_t)f->st.st_size, 0);
    if (n != f->st.st_size) {
        f->data_size = -1; /* changed under us: send it with sendfile */
        return NULL;
    }
    f->data_size = n;
    f->data_mtime = f->st.st_mtim;
    return data;
}

static void release_body(body_file *b) { file_cache_release((cached_file *)b); }

void file_cache_release(cached_file *f)
{
    if (--f->body.refs == 0)
        destroy(f);
}

/* Takes f out of the table; it lives on while requests still use it. */
static void evict(file_cache *fc, cached_file *f)
{
    cached_file **pp = &fc->buckets[f->hash & fc->mask];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    lru_unlink(f);
    f->in_table = false;
    fc->count--;
    file_cache_release(f);
}

file_cache *file_cache_new(int root_fd, unsigned capacity)
{
    file_cache *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return NULL;
    uint32_t n = 16;
    while (n < capacity * BUCKETS_PER_ENTRY)
        n *= 2;
    fc->buckets = calloc(n, sizeof(*fc->buckets));
    if (!fc->buckets) {
        free(fc);
        return NULL;
    }
    fc->root_fd = root_fd;
    fc->capacity = capacity;
    fc->mask = n - 1;
    fc->lru.lru_next = fc->lru.lru_prev = &fc->lru;
    return fc;
}

void file_cache_free(file_cache *fc)
{
    if (!fc)
        return;
    while (fc->lru.lru_next != &fc->lru)
        evict(fc, fc->lru.lru_next);
    free(fc->buckets);
    free(fc);
}

/* Looks rel up in the file system: a new entry (not yet in the table). */
static cached_file *lookup(file_cache *fc, const char *rel, uint32_t hash, uint64_t now_ms)
{
    size_t len = strlen(rel);
    cached_file *f = calloc(1, sizeof(*f) + len + 1);
    if (!f)
        return NULL;
    memcpy(f->rel, rel, len + 1);
    f->hash = hash;
    f->cache = fc;
    f->checked_ms = now_ms;
    f->stat_ms = now_ms;
    f->meta_size = -1;
    f->body.refs = 1;
    f->body.release = release_body;
    f->body.fd = static_open_beneath(fc->root_fd, rel);
    if (f->body.fd < 0) {
        f->err = f->body.fd;
    } else if (fstat(f->body.fd, &f->st) < 0) {
        f->err = -errno;
    } else if (S_ISDIR(f->st.st_mode)) {
        f->err = -EISDIR;
    } else if (!S_ISREG(f->st.st_mode)) {
        f->err = -ENOENT; /* devices, fifos, sockets: never served */
    }
    if (f->err && f->body.fd >= 0) {
        close(f->body.fd);
        f->body.fd = -1;
    }
    return f;
}

static bool temporary(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -ENOBUFS;
}

static bool same_file(const cached_file *a, const cached_file *b)
{
    if (a->err || b->err)
        return a->err == b->err;
    return a->st.st_ino == b->st.st_ino && a->st.st_dev == b->st.st_dev &&
           a->st.st_size == b->st.st_size && a->st.st_mtim.tv_sec == b->st.st_mtim.tv_sec &&
           a->st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec;
}

static void insert(file_cache *fc, cached_file *f)
{
    if (fc->count == fc->capacity)
        evict(fc, fc->lru.lru_prev); /* the least recently used */
    cached_file **b = &fc->buckets[f->hash & fc->mask];
    f->hnext = *b;
    *b = f;
    lru_push_front(fc, f);
    f->in_table = true; /* takes the caller's reference as the table's own */
    fc->count++;
}

int file_cache_get(file_cache *fc, const char *rel, uint64_t now_ms, cached_file **out)
{
    uint32_t hash = hash_rel(rel);
    cached_file *f = fc->buckets[hash & fc->mask];
    while (f && (f->hash != hash || strcmp(f->rel, rel) != 0))
        f = f->hnext;
    if (f && now_ms - f->checked_ms >= FILE_CACHE_REVALIDATE_MS) {
        cached_file *fresh = lookup(fc, rel, hash, now_ms);
        if (!fresh)
            return -ENOMEM;
        if (temporary(fresh->err)) {
            /* Out of descriptors or memory says nothing about the file:
             * keep what we know, and look again next time. */
            file_cache_release(fresh);
        } else if (same_file(f, fresh)) {
            f->checked_ms = now_ms;
            f->stat_ms = now_ms; /* fresh's fstat matched ours */
            file_cache_release(fresh); /* keep the descriptor we have */
        } else {
            evict(fc, f);
            insert(fc, fresh);
            f = fresh;
        }
    } else if (!f) {
        if (!(f = lookup(fc, rel, hash, now_ms)))
            return -ENOMEM;
        if (temporary(f->err)) {
            int err = f->err;
            file_cache_release(f); /* never cached: the file may be fine */
            return err;
        }
        insert(fc, f);
    }
    lru_unlink(f);
    lru_push_front(fc, f);
    if (f->err)
        return f->err;
    /* A file rewritten in place keeps its descriptor but not its size or
     * mtime: an fstat (at most one per millisecond, shared by all requests
     * in it) keeps validators and Content-Length true to the bytes sent.
     * Renames and deletions wait for revalidation. */
    if (f->stat_ms != now_ms) {
        if (fstat(f->body.fd, &f->st) < 0)
            return -errno;
        f->stat_ms = now_ms;
    }
    f->body.refs++;
    *out = f;
    return 0;
}
