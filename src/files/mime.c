#include "files/mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OCTET_STREAM "application/octet-stream"
/* Longest extension kept.  Debian's longest one that a last-extension
 * lookup can reach is 25 bytes; longer ones are skipped, not truncated. */
#define EXT_MAX 64
/* RFC 6838 §4.2: type and subtype names are at most 127 characters. */
#define TYPE_PART_MAX 127

typedef struct mime_entry {
    const char *ext;
    const char *type;
} mime_entry;

/* Web essentials: these win over the file, since a site breaks when its
 * scripts, styles or fonts are mistyped (browsers refuse module scripts
 * and, under nosniff, styles and scripts of the wrong type).  Text types
 * carry their charset so browsers need not guess. */
static const mime_entry essentials[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"}, /* source maps */
    {"wasm", "application/wasm"},               /* streaming compile needs it */
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"pdf", "application/pdf"},
    {"xml", "application/xml; charset=utf-8"},
};

/* Common types for when there is no mime.types file (minimal containers);
 * the file, when present, overrides these. */
static const mime_entry fallbacks[] = {
    {"webmanifest", "application/manifest+json; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"otf", "font/otf"},
    {"ttf", "font/ttf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Strings read from the file live in chunks freed with the table. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

typedef struct slot {
    const char *ext;  /* lowercase; NULL for an empty slot */
    const char *type;
    bool pinned;      /* an essential: the file cannot change it */
} slot;

struct mime_table {
    slot *slots;      /* open addressing, linear probing */
    size_t cap;       /* a power of two, at least twice count */
    size_t count;
    chunk *chunks;
};

static uint32_t hash_ext(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static char *arena_alloc(mime_table *t, size_t n)
{
    chunk *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_copy(mime_table *t, const char *s, size_t n, const char *suffix)
{
    size_t sl = suffix ? strlen(suffix) : 0;
    char *p = arena_alloc(t, n + sl + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    memcpy(p + n, suffix ? suffix : "", sl);
    p[n + sl] = '\0';
    return p;
}

/* The slot holding ext (lowercase, n bytes), or the empty slot where it
 * would go. */
static slot *find_slot(const mime_table *t, const char *ext, size_t n)
{
    size_t mask = t->cap - 1;
    for (size_t i = hash_ext(ext, n) & mask;; i = (i + 1) & mask) {
        slot *s = &t->slots[i];
        if (!s->ext || (strncmp(s->ext, ext, n) == 0 && s->ext[n] == '\0'))
            return s;
    }
}

static bool grow(mime_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    slot *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = calloc(cap, sizeof(slot));
    if (!t->slots) {
        t->slots = old;
        return false;
    }
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].ext)
            *find_slot(t, old[i].ext, strlen(old[i].ext)) = old[i];
    free(old);
    return true;
}

/* Maps ext to type.  copy_ext says ext is a scratch buffer to be copied
 * into the arena.  Returns false only when out of memory. */
static bool put(mime_table *t, const char *ext, size_t n, const char *type, bool pinned,
                bool copy_ext)
{
    if ((t->count + 1) * 2 > t->cap && !grow(t))
        return false;
    slot *s = find_slot(t, ext, n);
    if (s->ext) {
        if (s->pinned && !pinned)
            return true;
    } else {
        s->ext = copy_ext ? arena_copy(t, ext, n, NULL) : ext;
        if (!s->ext)
            return false;
        t->count++;
    }
    s->type = type;
    s->pinned = pinned;
    return true;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "type/subtype", each a non-empty token of at most TYPE_PART_MAX. */
static bool valid_type(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return false;
    size_t tl = (size_t)(slash - s), sl = n - tl - 1;
    if (tl == 0 || sl == 0 || tl > TYPE_PART_MAX || sl > TYPE_PART_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s + i != slash && !is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Types a browser would otherwise decode in a guessed charset. */
static bool wants_charset(const char *s, size_t n)
{
    static const char *const apps[] = {"application/javascript", "application/json",
                                       "application/xml", "application/manifest+json"};
    if (n > 5 && strncasecmp(s, "text/", 5) == 0)
        return true;
    for (size_t i = 0; i < COUNT(apps); i++)
        if (strlen(apps[i]) == n && strncasecmp(s, apps[i], n) == 0)
            return true;
    return false;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/* One line of mime.types.  Malformed parts are skipped, not fatal: one
 * bad line must not cost the rest of the file.  False only when out of
 * memory. */
static bool parse_line(mime_table *t, char *line, size_t n)
{
    n = strnlen(line, n);
    char *hash = memchr(line, '#', n);
    if (hash)
        n = (size_t)(hash - line);
    size_t i = 0;
    while (i < n && is_space(line[i]))
        i++;
    size_t ts = i;
    while (i < n && !is_space(line[i]))
        i++;
    size_t tl = i - ts;
    if (tl == 0 || !valid_type(line + ts, tl))
        return true;
    const char *type = NULL; /* copied on the first extension that uses it */
    while (i < n) {
        while (i < n && is_space(line[i]))
            i++;
        size_t es = i;
        bool ok = true;
        char ext[EXT_MAX];
        for (; i < n && !is_space(line[i]); i++) {
            unsigned char ch = (unsigned char)line[i];
            /* A dot or slash could never be part of a last extension. */
            if (ch < 0x20 || ch == 0x7f || ch == '.' || ch == '/' || i - es >= EXT_MAX)
                ok = false;
            else
                ext[i - es] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        size_t el = i - es;
        if (!ok || el == 0)
            continue;
        const slot *s = find_slot(t, ext, el);
        if (s->ext && s->pinned)
            continue;
        if (!type) {
            bool cs = wants_charset(line + ts, tl);
            type = arena_copy(t, line + ts, tl, cs ? "; charset=utf-8" : NULL);
            if (!type)
                return false;
        }
        if (!put(t, ext, el, type, false, true))
            return false;
    }
    return true;
}

static mime_table *builtin_table(void)
{
    mime_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    for (size_t i = 0; i < COUNT(essentials); i++)
        if (!put(t, essentials[i].ext, strlen(essentials[i].ext), essentials[i].type, true, false))
            goto oom;
    for (size_t i = 0; i < COUNT(fallbacks); i++)
        if (!put(t, fallbacks[i].ext, strlen(fallbacks[i].ext), fallbacks[i].type, false, false))
            goto oom;
    return t;
oom:
    mime_table_free(t);
    return NULL;
}

mime_table *mime_table_load(const char *path)
{
    mime_table *t = builtin_table();
    if (!t || !path)
        return t;
    FILE *f = fopen(path, "re");
    if (!f)
        return t;
    char *line = NULL;
    size_t cap = 0;
    bool oom = false;
    errno = 0;
    for (ssize_t n; !oom && (n = getline(&line, &cap, f)) >= 0; errno = 0)
        oom = !parse_line(t, line, (size_t)n);
    /* getline also stops at a read error (EISDIR for a directory, EIO):
     * a half-read file would make types depend on where it broke, so fall
     * back to the built-ins alone. */
    bool read_error = false;
    if (!oom && !feof(f)) {
        oom = errno == ENOMEM;
        read_error = !oom;
    }
    free(line);
    fclose(f);
    if (oom || read_error) {
        mime_table_free(t);
        return oom ? NULL : builtin_table();
    }
    return t;
}

void mime_table_free(mime_table *t)
{
    if (!t)
        return;
    for (chunk *c = t->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(t->slots);
    free(t);
}

/* The last extension of the last path segment; NULL when there is none.
 * A leading dot names a hidden file, not a type. */
static const char *extension(const char *name, size_t *len)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return NULL;
    *len = strlen(dot + 1);
    return dot + 1;
}

/* The built-in types alone (no table): a linear scan. */
static const char *builtin_lookup(const char *name)
{
    size_t n;
    const char *e = extension(name, &n);
    if (!e)
        return OCTET_STREAM;
    for (size_t i = 0; i < COUNT(essentials); i++)
        if (strcasecmp(e, essentials[i].ext) == 0)
            return essentials[i].type;
    for (size_t i = 0; i < COUNT(fallbacks); i++)
        if (strcasecmp(e, fallbacks[i].ext) == 0)
            return fallbacks[i].type;
    return OCTET_STREAM;
}

const char *mime_table_lookup(const mime_table *t, const char *name)
{
    if (!t)
        return builtin_lookup(name);
    size_t n;
    const char *e = extension(name, &n);
    if (!e || n > EXT_MAX)
        return OCTET_STREAM;
    char ext[EXT_MAX];
    for (size_t i = 0; i < n; i++)
        ext[i] = (char)(e[i] >= 'A' && e[i] <= 'Z' ? e[i] + 32 : e[i]);
    const slot *s = find_slot(t, ext, n);
    return s->ext ? s->type : OCTET_STREAM;
}

