#include "files/file_response.h"
#include "files/conditional.h"
#include "files/file_cache.h"
#include "files/encoding.h"
#include "files/mime.h"
#include "files/range.h"
#include "http/response.h"
#include "http/server.h"
#include "rt/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for the fields a file response adds (validators, Vary, coding,
 * Content-Range) besides Cache-Control, whose length the operator sets. */
#define FILE_FIELDS_BYTES 320

/* REL.suffix from the cache when it is a regular file not older than the
 * original: a stale precompressed copy must never be served in its place. */
static cached_file *find_variant(eddy_server *srv, const char *rel, const char *suffix,
                                 const struct stat *orig)
{
    char path[4096 + 8];
    cached_file *v;
    size_t rl = strlen(rel), sl = strlen(suffix);
    if (rl + sl >= sizeof(path))
        return NULL;
    memcpy(path, rel, rl);
    memcpy(path + rl, suffix, sl + 1);
    if (file_cache_get(srv->files, path, eddy_loop_now(srv->loop), &v) < 0)
        return NULL;
    const struct stat *st = &v->st;
    if (st->st_mtim.tv_sec < orig->st_mtim.tv_sec ||
        (st->st_mtim.tv_sec == orig->st_mtim.tv_sec && st->st_mtim.tv_nsec < orig->st_mtim.tv_nsec)) {
        file_cache_release(v);
        return NULL;
    }
    return v;
}

static void release_if(cached_file *f)
{
    if (f)
        file_cache_release(f);
}

/* Picks the representation: the file itself, or its .br / .gz copy when
 * the client accepts that coding.  Returns the coding's name (NULL for
 * identity); *vary tells whether any variant exists. */
static const char *choose_variant(eddy_request *req, const char *rel, eddy_str ae, cached_file **f,
                                  bool *vary)
{
    eddy_server *srv = req->c->srv;
    uint64_t now = eddy_loop_now(srv->loop);
    *vary = false;
    if (now < (*f)->no_variants_until)
        return NULL;
    cached_file *br = find_variant(srv, rel, ".br", &(*f)->st);
    cached_file *gz = find_variant(srv, rel, ".gz", &(*f)->st);
    *vary = br || gz;
    if (!*vary) /* most files have none: ask again when entries revalidate */
        (*f)->no_variants_until = now + FILE_CACHE_REVALIDATE_MS;
    const char *coding = NULL;
    if (*vary) {
        switch (encoding_pick(ae.ptr, ae.len, br != NULL, gz != NULL)) {
        case CODING_BR:
            file_cache_release(*f);
            *f = br;
            br = NULL;
            coding = "br";
            break;
        case CODING_GZIP:
            file_cache_release(*f);
            *f = gz;
            gz = NULL;
            coding = "gzip";
            break;
        case CODING_IDENTITY:
            break;
        }
    }
    release_if(br);
    release_if(gz);
    return coding;
}

/* The request fields a file response looks at, found in one pass. */
enum { F_ACCEPT_ENCODING, F_IF_MATCH, F_IF_NONE_MATCH, F_IF_MODIFIED_SINCE,
       F_IF_UNMODIFIED_SINCE, F_RANGE, F_IF_RANGE, F_COUNT };
#define NAME(s) {s, sizeof(s) - 1}
static const eddy_str field_names[F_COUNT] = {
    NAME("accept-encoding"), NAME("if-match"), NAME("if-none-match"), NAME("if-modified-since"),
    NAME("if-unmodified-since"), NAME("range"), NAME("if-range")};
#undef NAME

static enum cond_result evaluate_conditions(const eddy_str *fv, const char *etag, size_t elen,
                                            time_t mtime)
{
    eddy_str im = fv[F_IF_MATCH], inm = fv[F_IF_NONE_MATCH];
    eddy_str ims = fv[F_IF_MODIFIED_SINCE], ius = fv[F_IF_UNMODIFIED_SINCE];
    cond_fields f = {
        .if_match = im.ptr, .if_match_len = im.len,
        .if_none_match = inm.ptr, .if_none_match_len = inm.len,
        .if_modified_since = ims.ptr, .if_modified_since_len = ims.len,
        .if_unmodified_since = ius.ptr, .if_unmodified_since_len = ius.len,
    };
    return cond_evaluate(&f, true, etag, elen, mtime);
}

static char *append(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Sends len bytes of f from off: from memory for a small file (they join
 * the head in one write), else with sendfile.  Takes f. */
static void send_body(conn *c, cached_file *f, uint64_t off, uint64_t len)
{
    const char *data = file_cache_data(f);
    if (data) {
        conn_queue(c, data + off, len);
        file_cache_release(f);
    } else {
        conn_queue_file(c, &f->body, (off_t)off, (off_t)len);
    }
}

/* 206 with several ranges: multipart/byteranges, each part its own head. */
static void send_multipart(eddy_request *req, cached_file *f, const char *ctype, const byte_range *r,
                           size_t n, uint64_t size, const char *fields)
{
    conn *c = req->c;
    char boundary[40];
    /* Unique per response so no body can contain it by chance. */
    snprintf(boundary, sizeof(boundary), "eddy-%016llx%08x",
             (unsigned long long)eddy_loop_now(c->srv->loop) ^ (unsigned long long)size,
             c->srv->multipart_seq++);
    size_t bytes = range_multipart_tail(NULL, 0, boundary);
    for (size_t i = 0; i < n; i++)
        bytes += range_part_head(NULL, 0, boundary, ctype, &r[i], size);
    /* +1: the writers end what they write with a NUL, as snprintf does. */
    file_parts *fp = malloc(sizeof(*fp) + (n + 1) * sizeof(file_part) + bytes + 1);
    if (!fp) {
        file_cache_release(f);
        response_error(c, 500);
        return;
    }
    fp->n = n + 1;
    fp->next = 0;
    char *heads = (char *)&fp->part[n + 1];
    size_t off = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t len = i < n ? range_part_head(heads + off, bytes - off + 1, boundary, ctype, &r[i], size)
                           : range_multipart_tail(heads + off, bytes - off + 1, boundary);
        fp->part[i] = (file_part){
            .off = i < n ? (off_t)r[i].first : 0,
            .len = i < n ? (off_t)(r[i].last - r[i].first + 1) : 0,
            .head_off = (uint32_t)off,
            .head_len = (uint32_t)len,
        };
        off += len;
    }
    char ctype_mp[80];
    snprintf(ctype_mp, sizeof(ctype_mp), "multipart/byteranges; boundary=%s", boundary);
    response_head(c, 206, ctype_mp, (int64_t)range_multipart_length(boundary, ctype, r, n, size),
                  fields);
    conn_queue_file_parts(c, &f->body, fp);
    conn_response_done(c);
}

void file_respond(eddy_request *req, cached_file *f, const char *rel, int status)
{
    conn *c = req->c;
    eddy_server *srv = c->srv;
    if (!f->content_type)
        f->content_type = mime_table_lookup(srv->mime, rel);
    const char *ctype = f->content_type;
    if (status != 200) {
        /* An error page: the status is the point, not the file. */
        response_head(c, status, ctype, f->st.st_size, NULL);
        if (req->is_head)
            file_cache_release(f);
        else
            send_body(c, f, 0, (uint64_t)f->st.st_size);
        conn_response_done(c);
        return;
    }
    eddy_str fv[F_COUNT];
    request_fields(req, field_names, fv, F_COUNT);
    bool vary;
    const char *coding = choose_variant(req, rel, fv[F_ACCEPT_ENCODING], &f, &vary);
    const struct stat *st = &f->st;
    file_cache_validators(f);
    const char *etag = f->etag;
    size_t elen = f->etag_len;
    /* A modification time in the future is not a date we can vouch for:
     * Last-Modified is then the response's Date (RFC 9110 §8.8.2.1). */
    time_t now = loop_wall_sec(srv->loop);
    time_t mtime = st->st_mtim.tv_sec > now ? now : st->st_mtim.tv_sec;
    const char *last_modified = mtime == st->st_mtim.tv_sec ? f->last_modified : server_date(srv);
    size_t cc_len = srv->cache_control_len;
    char stack_fields[FILE_FIELDS_BYTES + 256];
    char *fields = stack_fields;
    size_t cap = FILE_FIELDS_BYTES + cc_len + 32;
    if (cap > sizeof(stack_fields) && !(fields = malloc(cap))) {
        file_cache_release(f);
        response_error(c, 500);
        return;
    }
    /* Fields every answer about this representation carries, 304 included;
     * put together from pieces rendered once per file version. */
    char *p = fields;
    p = append(p, "ETag: ", 6);
    p = append(p, etag, elen);
    p = append(p, "\r\nLast-Modified: ", 17);
    p = append(p, last_modified, 29);
    p = append(p, "\r\n", 2);
    if (vary)
        p = append(p, "Vary: Accept-Encoding\r\n", 23);
    if (coding) {
        p = append(p, "Content-Encoding: ", 18);
        p = append(p, coding, strlen(coding));
        p = append(p, "\r\n", 2);
    }
    if (cc_len) {
        p = append(p, "Cache-Control: ", 15);
        p = append(p, srv->cache_control, cc_len);
        p = append(p, "\r\n", 2);
    }
    *p = 0;
    int n = (int)(p - fields);
    uint64_t size = (uint64_t)st->st_size;

    switch (evaluate_conditions(fv, etag, elen, mtime)) {
    case COND_NOT_MODIFIED:
        file_cache_release(f);
        response_head(c, 304, NULL, -1, fields);
        conn_response_done(c);
        goto out;
    case COND_PRECONDITION_FAILED:
        file_cache_release(f);
        response_simple(req, 412, NULL);
        goto out;
    case COND_PROCEED:
        break;
    }

    eddy_str range = fv[F_RANGE], if_range = fv[F_IF_RANGE];
    /* Range applies to GET only (RFC 9110 §14.2); If-Range that does not
     * match asks for the whole representation instead. */
    if (range.ptr && c->parser.method == HTTP_GET &&
        (!if_range.ptr || cond_if_range(if_range.ptr, if_range.len, etag, elen, mtime))) {
        byte_range r[RANGE_MAX_PARTS];
        size_t nr;
        switch (range_parse(range.ptr, range.len, size, r, RANGE_MAX_PARTS, &nr)) {
        case RANGE_UNSATISFIABLE: {
            file_cache_release(f);
            snprintf(fields + n, cap - (size_t)n, "Content-Range: bytes */%llu\r\n",
                     (unsigned long long)size);
            response_simple(req, 416, fields);
            goto out;
        }
        case RANGE_OK:
            if (nr == 1) {
                snprintf(fields + n, cap - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
                         (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                         (unsigned long long)size);
                uint64_t len = r[0].last - r[0].first + 1;
                response_head(c, 206, ctype, (int64_t)len, fields);
                send_body(c, f, r[0].first, len);
                conn_response_done(c);
            } else {
                send_multipart(req, f, ctype, r, nr, size, fields);
            }
            goto out;
        case RANGE_IGNORE:
            break;
        }
    }
    memcpy(fields + n, "Accept-Ranges: bytes\r\n", 23);
    response_head(c, 200, ctype, st->st_size, fields);
    if (req->is_head)
        file_cache_release(f);
    else
        send_body(c, f, 0, size);
    conn_response_done(c);
out:
    if (fields != stack_fields)
        free(fields);
}
