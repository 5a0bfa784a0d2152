/* A backend's response, parsed by llhttp (strict, as eddy's requests) and
 * checked as strictly as a client's request: a framing eddy cannot be sure
 * of, a field that is not a field, or a head too large is a 502 and
 * nothing of it reaches the client.  1xx heads are read past (eddy answers
 * a client's 100-continue itself); the final head goes to the client with
 * eddy's own framing, and the body in pieces as llhttp de-chunks it. */
#include "proxy/proxy.h"
#include "core/fields.h"

#include <string.h>
#include <strings.h>

static exchange *x_of(llhttp_t *p) { return p->data; }
static reply *rp_of(llhttp_t *p) { return &x_of(p)->rp; }

/* A callback's -1 ends parsing with an error: a 502. */
#define BAD (-1)

static int extend(reply *rp, uint32_t *off, uint32_t *len, const char *at, size_t n)
{
    uint32_t pos = (uint32_t)(at - rp->base);
    if (*len == 0)
        *off = pos;
    else if (pos != *off + *len)
        return BAD; /* a gap inside one name or value: obs-fold */
    *len += (uint32_t)n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    reply *rp = rp_of(p);
    rp->nfields = 0;
    rp->cur = (reply_field){0, 0, 0, 0};
    rp->te = (te_summary){0};
    rp->has_te = false;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    reply *rp = rp_of(p);
    if (rp->head_done) { /* trailers: dropped, but bounded */
        rp->head_bytes += (uint32_t)len;
        return rp->head_bytes > PROXY_RESPONSE_HEAD_MAX ? BAD : 0;
    }
    if (rp->cur.name_len == 0 && rp->nfields == RESPONSE_MAX_OWN_FIELDS)
        return BAD;
    return extend(rp, &rp->cur.name_off, &rp->cur.name_len, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    reply *rp = rp_of(p);
    if (rp->head_done || len == 0)
        return rp->head_done && !field_value_ok(at, len) ? BAD : 0;
    if (rp->cur.value_len == 0) {
        /* The value follows its colon on the same line (else obs-fold). */
        const char *q = at;
        while (q > rp->base && (q[-1] == ' ' || q[-1] == '\t'))
            q--;
        if (q == rp->base || q[-1] != ':')
            return BAD;
    }
    return extend(rp, &rp->cur.value_off, &rp->cur.value_len, at, len);
}

static bool name_is(const reply *rp, const reply_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(rp->base + f->name_off, name, n) == 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    reply *rp = rp_of(p);
    if (rp->head_done)
        return 0;
    reply_field f = rp->cur;
    rp->cur = (reply_field){0, 0, 0, 0};
    if (f.name_len == 0 || !field_value_ok(rp->base + f.value_off, f.value_len))
        return BAD;
    if (f.value_len == 0)
        f.value_off = f.name_off; /* any place in the buffer: nothing is read */
    if (name_is(rp, &f, "transfer-encoding")) {
        rp->has_te = true;
        rules_transfer_encoding(rp->base + f.value_off, f.value_len, &rp->te);
    }
    rp->f[rp->nfields++] = f;
    return 0;
}

/* Fields that are the hop's or eddy's: never passed to the client. */
static bool dropped(const reply *rp, const reply_field *f, const reply_field *conn, unsigned nconn,
                    bool switching)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
        "trailer", "content-length", "date", "server",
    };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (name_is(rp, f, hop[i]))
            return true;
    if (name_is(rp, f, "upgrade"))
        return !switching; /* a 101 says what it switches to */
    /* Fields the Connection field lists are the hop's too. */
    for (unsigned i = 0; i < nconn; i++)
        if (field_list_has(rp->base + conn[i].value_off, conn[i].value_len,
                           rp->base + f->name_off, f->name_len))
            return true;
    return false;
}

static int on_headers_complete(llhttp_t *p)
{
    exchange *x = x_of(p);
    reply *rp = &x->rp;
    int status = p->status_code;
    if (p->http_major != 1 || p->http_minor > 1 || status < 100 || status > 999)
        return BAD;
    bool switching = status == 101;
    if (switching && !x->upgrade)
        return BAD; /* no upgrade was asked for */
    if (switching) {
        /* A 101 names what it switches to (RFC 9110 §7.8): without it the
         * client would get a tunnel to it knows not what. */
        bool named = false;
        for (unsigned i = 0; i < rp->nfields; i++)
            named |= name_is(rp, &rp->f[i], "upgrade") && rp->f[i].value_len > 0;
        if (!named)
            return BAD;
    }
    if (status < 200 && !switching)
        return 1;  /* 1xx: read past, and bodiless whatever its fields say (RFC 9112
                      §6.3; llhttp would read one by its Content-Length or chunks, and
                      exchange_body pass it to the client before any head) */
    if (rp->has_te && (p->http_minor == 0 || rules_te_status(&rp->te) != 0))
        return BAD; /* only "chunked", and only from HTTP/1.1 (RFC 9112 §6.1) */
    reply_field conn[RESPONSE_MAX_OWN_FIELDS];
    unsigned nconn = 0;
    for (unsigned i = 0; i < rp->nfields; i++)
        if (name_is(rp, &rp->f[i], "connection"))
            conn[nconn++] = rp->f[i];
    resp_field fields[RESPONSE_MAX_OWN_FIELDS];
    size_t n = 0;
    const char *ctype = NULL;
    char *base = (char *)rp->base;
    for (unsigned i = 0; i < rp->nfields; i++) {
        const reply_field *f = &rp->f[i];
        if (dropped(rp, f, conn, nconn, switching))
            continue;
        if (name_is(rp, f, "content-type")) {
            if (ctype)
                return BAD; /* twice: the client would get both, eddy's and another */
            /* The core wants it as a C string: the CR after it is ours to
             * overwrite, the head being in a buffer of ours. */
            base[f->value_off + f->value_len] = 0;
            ctype = base + f->value_off;
            continue;
        }
        fields[n++] = (resp_field){base + f->name_off, base + f->value_off, f->name_len,
                                   f->value_len};
    }
    bool no_body = x->req && x->req->is_head;
    int64_t length = -1;
    if (!(p->flags & F_CHUNKED) && (p->flags & F_CONTENT_LENGTH))
        length = (int64_t)p->content_length;
    response resp = {
        .status = status,
        .content_type = ctype,
        .content_length = length,
        .fields = fields,
        .nfields = n,
    };
    rp->head_done = true;
    if (switching) /* what follows the head is the tunnel's */
        return exchange_tunnel(x, &resp) < 0 ? BAD : 2;
    if (exchange_head(x, &resp) < 0)
        return BAD;
    /* HEAD: the length a GET would get, and no body follows; nor does one
     * after a 204 or 304, whatever its fields say (RFC 9112 §6.3). */
    return no_body || status == 204 || status == 304 ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    if (len)
        exchange_body(x_of(p), at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    exchange *x = x_of(p);
    if (x->tunnel)
        return HPE_PAUSED;
    if (!x->rp.head_done)
        return 0; /* a 1xx head ended: the final one comes next */
    exchange_complete(x);
    return HPE_PAUSED; /* whatever follows is not this response's */
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    reply *rp = rp_of(p);
    /* Not passed on, but bounded: a backend could send them forever. */
    rp->head_bytes += (uint32_t)len;
    return rp->head_bytes > PROXY_RESPONSE_HEAD_MAX ? BAD : 0;
}

void reply_settings_init(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
    s->on_chunk_extension_name = on_chunk_extension;
    s->on_chunk_extension_value = on_chunk_extension;
}

void reply_start(upconn *uc, exchange *x)
{
    llhttp_init(&uc->parser, HTTP_RESPONSE, &uc->px->reply_settings);
    uc->parser.data = x;
    reply *rp = &x->rp;
    rp->base = NULL;
    rp->nfields = 0;
    rp->cur = (reply_field){0, 0, 0, 0};
    rp->te = (te_summary){0};
    rp->has_te = false;
    rp->head_done = false;
    rp->head_bytes = 0;
    rp->any = false;
}
