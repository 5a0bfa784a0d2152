#include "files/file_response.h"
#include "files/conditional.h"
#include "files/file_cache.h"
#include "files/encoding.h"
#include "files/mime.h"
#include "files/range.h"
#include "rt/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most fields a file response adds: ETag, Last-Modified, Vary,
 * Content-Encoding, Cache-Control, and Content-Range or Accept-Ranges. */
#define FILE_FIELDS_MAX 6

/* REL.suffix from the cache when it is a regular file not older than the
 * original: a stale precompressed copy must never be served in its place. */
static cached_file *find_variant(eddy_files *fs, const char *rel, const char *suffix,
                                 const struct stat *orig)
{
    char path[4096 + 8];
    cached_file *v;
    size_t rl = strlen(rel), sl = strlen(suffix);
    if (rl + sl >= sizeof(path))
        return NULL;
    memcpy(path, rel, rl);
    memcpy(path + rl, suffix, sl + 1);
    if (file_cache_get(fs->cache, path, eddy_loop_now(fs->loop), &v) < 0)
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
static const char *choose_variant(eddy_files *fs, const char *rel, eddy_str ae, cached_file **f,
                                  bool *vary)
{
    uint64_t now = eddy_loop_now(fs->loop);
    *vary = false;
    /* no_precompressed: the copies might as well not exist, so the answer
     * never depends on Accept-Encoding and needs no Vary. */
    if (fs->no_precompressed || now < (*f)->no_variants_until)
        return NULL;
    cached_file *br = find_variant(fs, rel, ".br", &(*f)->st);
    cached_file *gz = find_variant(fs, rel, ".gz", &(*f)->st);
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

/* Answers with len bytes of f from off: from memory for a small file
 * (they join the head in one write), else from the file.  Takes f. */
static void send_file_body(request *req, response *resp, cached_file *f, uint64_t off,
                           uint64_t len)
{
    const char *data = req->is_head ? NULL : file_cache_data(f);
    if (data) {
        resp->data = data + off;
        resp->data_len = len;
        response_send(req, resp);
        file_cache_release(f);
        return;
    }
    resp->file = &f->body;
    resp->file_off = (off_t)off;
    resp->file_len = (off_t)len;
    response_send(req, resp);
}

/* 206 with several ranges: multipart/byteranges, each part its own head. */
static void send_multipart(eddy_files *fs, request *req, response *resp, cached_file *f,
                           const byte_range *r, size_t n, uint64_t size)
{
    const char *ctype = resp->content_type;
    char boundary[40];
    /* Unique per response so no body can contain it by chance. */
    snprintf(boundary, sizeof(boundary), "eddy-%016llx%08x",
             (unsigned long long)eddy_loop_now(fs->loop) ^ (unsigned long long)size,
             fs->multipart_seq++);
    size_t bytes = range_multipart_tail(NULL, 0, boundary);
    for (size_t i = 0; i < n; i++)
        bytes += range_part_head(NULL, 0, boundary, ctype, &r[i], size);
    /* +1: the writers end what they write with a NUL, as snprintf does. */
    file_parts *fp = malloc(sizeof(*fp) + (n + 1) * sizeof(file_part) + bytes + 1);
    if (!fp) {
        file_cache_release(f);
        response_simple(req, 503, NULL, 0);
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
    resp->status = 206;
    resp->content_type = ctype_mp;
    resp->content_length = (int64_t)range_multipart_length(boundary, ctype, r, n, size);
    resp->file = &f->body;
    resp->parts = fp;
    response_send(req, resp);
}

void file_respond(eddy_files *fs, request *req, cached_file *f, const char *rel, int status)
{
    if (!f->content_type)
        f->content_type = mime_table_lookup(fs->mime, rel);
    const char *ctype = f->content_type;
    response resp = {.status = status, .content_type = ctype, .content_length = f->st.st_size};
    if (status != 200) {
        /* An error page: the status is the point, not the file. */
        send_file_body(req, &resp, f, 0, (uint64_t)f->st.st_size);
        return;
    }
    eddy_str fv[F_COUNT];
    request_fields(req, field_names, fv, F_COUNT);
    bool vary;
    const char *coding = choose_variant(fs, rel, fv[F_ACCEPT_ENCODING], &f, &vary);
    const struct stat *st = &f->st;
    file_cache_validators(f);
    const char *etag = f->etag;
    size_t elen = f->etag_len;
    /* A modification time in the future is not a date we can vouch for:
     * Last-Modified is then the response's Date (RFC 9110 §8.8.2.1). */
    time_t now = loop_wall_sec(fs->loop);
    time_t mtime = st->st_mtim.tv_sec > now ? now : st->st_mtim.tv_sec;
    char now_date[30];
    const char *last_modified = f->last_modified;
    if (mtime != st->st_mtim.tv_sec) {
        http_date_format(now, now_date);
        last_modified = now_date;
    }
    /* Fields every answer about this representation carries, 304 included;
     * their values were rendered once per file version. */
    resp_field fields[FILE_FIELDS_MAX];
    size_t n = 0;
    fields[n++] = (resp_field){"ETag", etag, 4, (uint32_t)elen};
    fields[n++] = (resp_field){"Last-Modified", last_modified, 13, 29};
    if (vary)
        fields[n++] = FIELD_LIT("Vary", "Accept-Encoding");
    if (coding)
        fields[n++] = (resp_field){"Content-Encoding", coding, 16, (uint32_t)strlen(coding)};
    if (fs->cache_control_len)
        fields[n++] = (resp_field){"Cache-Control", fs->cache_control, 13,
                              (uint32_t)fs->cache_control_len};
    resp.fields = fields;
    resp.nfields = n;
    resp.content_length = st->st_size; /* of the representation chosen */
    uint64_t size = (uint64_t)st->st_size;
    char content_range[80];

    switch (evaluate_conditions(fv, etag, elen, mtime)) {
    case COND_NOT_MODIFIED:
        file_cache_release(f);
        resp.status = 304;
        response_send(req, &resp);
        return;
    case COND_PRECONDITION_FAILED:
        file_cache_release(f);
        response_simple(req, 412, NULL, 0);
        return;
    case COND_PROCEED:
        break;
    }

    eddy_str range = fv[F_RANGE], if_range = fv[F_IF_RANGE];
    /* Range applies to GET only (RFC 9110 §14.2); If-Range that does not
     * match asks for the whole representation instead. */
    if (range.ptr && req->method_id == METHOD_GET &&
        (!if_range.ptr || cond_if_range(if_range.ptr, if_range.len, etag, elen, mtime))) {
        byte_range r[RANGE_MAX_PARTS];
        size_t nr;
        switch (range_parse(range.ptr, range.len, size, r, RANGE_MAX_PARTS, &nr)) {
        case RANGE_UNSATISFIABLE: {
            file_cache_release(f);
            int len = snprintf(content_range, sizeof(content_range), "bytes */%llu",
                               (unsigned long long)size);
            fields[n++] = (resp_field){"Content-Range", content_range, 13, (uint32_t)len};
            response_simple(req, 416, fields, n);
            return;
        }
        case RANGE_OK:
            if (nr == 1) {
                int len = snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%llu",
                                   (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                                   (unsigned long long)size);
                fields[n++] = (resp_field){"Content-Range", content_range, 13, (uint32_t)len};
                resp.nfields = n;
                resp.status = 206;
                resp.content_length = (int64_t)byte_range_len(&r[0]);
                send_file_body(req, &resp, f, r[0].first, byte_range_len(&r[0]));
            } else {
                send_multipart(fs, req, &resp, f, r, nr, size);
            }
            return;
        case RANGE_IGNORE:
            break;
        }
    }
    fields[n++] = FIELD_LIT("Accept-Ranges", "bytes");
    resp.nfields = n;
    send_file_body(req, &resp, f, 0, size);
}
