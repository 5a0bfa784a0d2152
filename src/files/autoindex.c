#include "files/autoindex.h"
#include "files/path.h"
#include "core/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A growing byte buffer; after a failed allocation it only remembers
 * that, so rendering can run on and check once at the end. */
typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static bool reserve(buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void put(buf *b, const char *s, size_t n)
{
    if (reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

typedef struct entry {
    size_t name_off; /* into the names buffer while reading */
    const char *name;
    bool dir;
    off_t size;
    time_t mtime;
} entry;

/* HTML text (also safe inside a quoted attribute).  With decode, %XX
 * escapes are decoded first, so a title shows "/my dir/" for
 * "/my%20dir/"; whatever they decode to is escaped like the rest. */
static void put_text(buf *b, const char *s, bool decode)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int hi, lo;
        if (decode && ch == '%' && (hi = path_hex_value(s[1])) >= 0 && (lo = path_hex_value(s[2])) >= 0) {
            ch = (unsigned char)(hi << 4 | lo);
            s += 2;
        }
        switch (ch) {
        case '<': put_str(b, "&lt;"); break;
        case '>': put_str(b, "&gt;"); break;
        case '&': put_str(b, "&amp;"); break;
        case '"': put_str(b, "&quot;"); break;
        case '\'': put_str(b, "&#39;"); break;
        default:
            /* Control characters are parse errors in HTML, even as
             * character references: show the replacement character. */
            if (ch < 0x20 || ch == 0x7f)
                put_str(b, "\xEF\xBF\xBD");
            else
                put(b, (const char *)&ch, 1);
        }
    }
}

/* A path segment for a relative href: everything but RFC 3986 unreserved
 * characters is percent-encoded, so no ':' can make it a scheme, no '?' or
 * '#' can cut it short, and nothing needs HTML escaping. */
static void put_href(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            put(b, (const char *)&ch, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            put(b, esc, 3);
        }
    }
}

static int by_kind_then_name(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->dir != b->dir)
        return a->dir ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Reads the entries to list into *ents (names kept in *names).  Returns
 * the count or a negative errno. */
static ssize_t read_entries(int dirfd, bool show_dotfiles, entry **ents, buf *names)
{
    /* A description of its own: fdopendir on a dup would share (and move)
     * dirfd's offset, and would fail on an O_PATH descriptor. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t n = 0, cap = 0;
    entry *v = NULL;
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            err = -errno;
            break;
        }
        const char *name = de->d_name;
        if (name[0] == '.' && (!show_dotfiles || !name[1] || (name[1] == '.' && !name[2])))
            continue;
        struct stat st;
        if (fstatat(fd, name, &st, 0) < 0)
            continue; /* gone since readdir, dangling link, no permission */
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            entry *nv = reallocarray(v, cap, sizeof(*nv));
            if (!nv) {
                err = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = (entry){
            .name_off = names->len,
            .dir = S_ISDIR(st.st_mode),
            .size = st.st_size,
            .mtime = st.st_mtim.tv_sec,
        };
        put(names, name, strlen(name) + 1);
    }
    closedir(d);
    if (!err && names->oom)
        err = -ENOMEM;
    if (err) {
        free(v);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        v[i].name = names->p + v[i].name_off;
    *ents = v;
    return (ssize_t)n;
}

static void put_row(buf *b, const entry *e)
{
    put_str(b, "<tr><td><a href=\"");
    put_href(b, e->name);
    put_str(b, e->dir ? "/\">" : "\">");
    put_text(b, e->name, false);
    put_str(b, e->dir ? "/</a></td><td>" : "</a></td><td>");
    char tmp[64];
    if (!e->dir) {
        snprintf(tmp, sizeof(tmp), "%jd", (intmax_t)e->size);
        put_str(b, tmp);
    }
    put_str(b, "</td><td>");
    struct tm tm;
    if (gmtime_r(&e->mtime, &tm) && strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M", &tm))
        put_str(b, tmp);
    put_str(b, "</td></tr>\n");
}

int autoindex_render(int dirfd, const char *url_path, bool show_dotfiles, char **out,
                     size_t *len)
{
    entry *ents = NULL;
    buf names = {0};
    ssize_t n = read_entries(dirfd, show_dotfiles, &ents, &names);
    if (n < 0) {
        free(names.p);
        return (int)n;
    }
    if (n > 1) /* ents is NULL for an empty directory */
        qsort(ents, (size_t)n, sizeof(*ents), by_kind_then_name);

    buf b = {0};
    put_str(&b, "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width\">\n<title>Index of ");
    put_text(&b, url_path, true);
    put_str(&b, "</title>\n<style>td,th{padding:0 1em 0 0;text-align:left}"
              "td:nth-child(2){text-align:right}</style>\n<h1>Index of ");
    put_text(&b, url_path, true);
    put_str(&b, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n");
    /* The root has no parent; "" and "//" are the root too. */
    if (url_path[strspn(url_path, "/")] != '\0')
        put_str(&b, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    for (ssize_t i = 0; i < n; i++)
        put_row(&b, &ents[i]);
    put_str(&b, "</table>\n");
    put(&b, "", 1); /* a NUL, for callers that want a string */
    free(ents);
    free(names.p);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len - 1;
    return 0;
}
