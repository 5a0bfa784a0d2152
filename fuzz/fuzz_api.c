/* libFuzzer target: the response API (eddy_response_field, eddy_respond,
 * eddy_files_respond, eddy_stream_*, eddy_request_*) driven by random calls
 * on requests that handlers hold, live and stale, while the connections
 * under them block, cut short, reset and time out.
 *
 * The input is read as a stream of bytes (zeros once it runs out).  The
 * first says how it ends (bit 0: the connections are reset before the
 * server is freed).  Then each op takes one byte, OP % 16, then the bytes
 * it needs:
 *   0  send 1-3 requests in one piece (pipelined) on a connection: each
 *      GET, HEAD or POST (with Content-Length and a body), HTTP/1.0 or 1.1,
 *      keep-alive or close, to /h (held), /hb (held, body read first) or a
 *      file; 8 bytes of each say what its handler does at once
 *  1-9 on a request picked among those handlers got (answered or not, so
 *      stale handles are picked too):
 *      1 eddy_response_field (names from a list of framing and other
 *        fields in any case, or raw bytes; values likewise, CR, LF, spaces
 *        and controls included), 2 eddy_respond (fuzzed status, content
 *        type, body length), 3 eddy_files_respond, 4 eddy_stream_start
 *        (known or unknown length), 5 eddy_stream_write (lengths around the
 *        known length and EDDY_STREAM_BUFFER), 6 eddy_stream_end,
 *        7 eddy_stream_on_drain, 8 eddy_request_on_abort, 9 the accessors
 *  10 mock events on a connection: block or unblock writes, short writes,
 *     reset, EOF, reset after N bytes, a read that says EAGAIN
 *  11 advance the virtual clock (timeouts fire);  12 run what is due
 *  13 open another connection (up to 4);  14 eddy_server_shutdown
 *  15 a burst of up to 70 eddy_response_field calls (past the limit of 64)
 * Abort and drain callbacks make calls of their own, from bytes taken when
 * they were registered.  At the end writes are unblocked and the loop runs;
 * then the server is freed, with its connections open or after they were
 * reset, then the file server and the loop.
 *
 * Checked:
 *  - every call returns 0 or an error eddy.h lists for it, and the one the
 *    request's state calls for (a model of each request: answered,
 *    streaming, known length left, fields added, the client gone);
 *  - a stale handle changes nothing: every call through it says -ESTALE,
 *    an empty view or NULL, and eddy's state (every connection's request,
 *    buffers, timers; every mock's output) is the same after it;
 *    request_of (eddy's own lookup) agrees with the model on which handles
 *    are stale (a run makes at most 48 requests, so handle slots, 256 to a
 *    chunk, are never reused: the generation tag is not exercised here);
 *  - each connection's output is a well-formed sequence of responses, the
 *    i-th answering the i-th request sent (fuzz_support.h, told which were
 *    HEAD and HTTP/1.0: chunked bodies de-chunked, close-delimited bodies
 *    for HTTP/1.0 only); no CR or LF inside a field line, no field eddy owns
 *    twice, never Content-Length with Transfer-Encoding;
 *  - a response carries the handler's accepted fields, in order, last, and
 *    nothing else a handler added (a refused field, or one added through a
 *    stale handle, never appears); everything before them is a field eddy
 *    writes itself, once; its status, Content-Type and body (bytes and
 *    length) are those the handler gave; after a known length cut short
 *    (eddy_stream_end: -EMSGSIZE) or a stream to HTTP/1.0 of unknown
 *    length, the connection ends;
 *  - a stream never holds more than EDDY_STREAM_BUFFER + the write that
 *    crossed it (+ its chunk framing), measured by eddy's own count of
 *    bytes queued and not taken, since a blocked mock takes nothing; -EAGAIN
 *    only when that much is held; on_drain runs only after an -EAGAIN, for
 *    a stream still going, and does run once the client takes everything;
 *  - an abort callback runs at most once, only for a request that has one
 *    registered, and (eddy_server_free) for every request still held with
 *    one;  no leaks, no sanitizer report.
 *
 * Debugging one input: FUZZ_TRACE=1 prints the calls, FUZZ_DUMP=1 what each
 * connection received. */
#include "fuzz_support.h"

#include "core/request.h"
#include "eddy.h"
#include "http/conn.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"

#include <ctype.h>
#include <limits.h>

#define MAX_CONNS 4
#define MAX_RECS 48
#define MAX_OPS 600
#define MAX_DEPTH 3 /* callbacks calling into eddy calling callbacks */
#define ACT_BYTES 8
#define MAX_DRAIN_CALLS 4 /* drain callbacks that make calls, per request */
#define CHUNK_FRAMING 20 /* hex size (16 at most), CRLF, CRLF */

static eddy_config cfg;
static eddy_files_config files_cfg;
static const char *const op_fields[] = {"X-Op: on"};

/* ------------------------------------------------------------- input -- */

typedef struct rd {
    const uint8_t *p;
    size_t n, at;
} rd;

static uint8_t u8(rd *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static uint16_t u16(rd *r) { return (uint16_t)(u8(r) | u8(r) << 8); }
static bool more(const rd *r) { return r->at < r->n; }

/* ----------------------------------------------------------- the model -- */

enum { M_GET, M_HEAD, M_POST };
static const char *const METHODS[] = {"GET", "HEAD", "POST"};
enum { K_HOLD, K_BODY, K_FILE };
enum { ANS_NONE, ANS_RESPOND, ANS_FILES, ANS_STREAM };

typedef struct kv {
    char *name, *value;
} kv;

typedef struct rec {
    unsigned id, conn;
    int method, kind;
    bool http10, close_req;
    size_t body_len;
    char target[64];
    kv sent[6]; /* the request's fields, as sent */
    unsigned nsent;
    uint8_t act[ACT_BYTES]; /* what its handler does at once */

    eddy_request *h; /* NULL until its handler runs */
    bool dispatched, stale;
    int answer;
    int status;           /* as answered (respond, stream) */
    bool ct_given;
    char ct[300];         /* the content type given, when given */
    size_t resp_len;      /* eddy_respond's body */
    bool streaming, discard;
    int64_t length;       /* as given to eddy_stream_start (< 0: unknown) */
    int64_t left;         /* what a known length still wants; < 0 unknown */
    int64_t left_doc;     /* the same, counting dropped bytes (HEAD) */
    uint64_t sent_bytes;  /* stream bytes eddy took */
    bool ended_short;     /* eddy_stream_end said -EMSGSIZE */
    bool abort_on;        /* an abort callback is registered */
    unsigned aborts;
    uint8_t abort_act[ACT_BYTES];
    bool drain_on;
    bool eagain;          /* a write said -EAGAIN; on_drain not run since */
    unsigned drains;
    uint8_t drain_act[ACT_BYTES];
    kv fields[RESPONSE_MAX_FIELDS]; /* accepted by eddy_response_field */
    unsigned nfields;
} rec;

static eddy_loop *loop;
static eddy_server *srv;
static eddy_files *files;
static mock_stream *mocks[MAX_CONNS];
static size_t nmocks;
static rec recs[MAX_RECS];
static unsigned nrecs;
static unsigned disp[MAX_RECS]; /* records in the order their handlers ran */
static unsigned ndisp;
static bool freed;    /* eddy_server_free ran: handles are gone */
static unsigned drained_calls;
static int depth;     /* callbacks on the stack */
static bool trace;

#define TRACE(...)                                                                             \
    do {                                                                                       \
        if (trace)                                                                             \
            fprintf(stderr, __VA_ARGS__);                                                      \
    } while (0)

/* Body bytes: a function of the request and the offset, so any body seen
 * on the wire can be checked without keeping it. */
static uint8_t pat(unsigned id, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15u + (uint64_t)id * 0xC2B2AE3D27D4EB4Fu;
    return (uint8_t)(x >> 29 ^ x >> 47);
}

#define WBUF_MAX 140000
static uint8_t wbuf[WBUF_MAX];

static const uint8_t *fill(unsigned id, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        wbuf[i] = pat(id, off + i);
    return wbuf;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    FZ_SETUP(d);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* ------------------------------------------------------- return codes -- */

enum {
    RC_OK = 1 << 0, RC_ESTALE = 1 << 1, RC_EINVAL = 1 << 2, RC_EPERM = 1 << 3,
    RC_ENOSPC = 1 << 4, RC_ENOMEM = 1 << 5, RC_EALREADY = 1 << 6, RC_EAGAIN = 1 << 7,
    RC_EMSGSIZE = 1 << 8, RC_EPIPE = 1 << 9, RC_OTHER = 1 << 10,
};

static unsigned rbit(int rc)
{
    switch (rc) {
    case 0: return RC_OK;
    case -ESTALE: return RC_ESTALE;
    case -EINVAL: return RC_EINVAL;
    case -EPERM: return RC_EPERM;
    case -ENOSPC: return RC_ENOSPC;
    case -ENOMEM: return RC_ENOMEM;
    case -EALREADY: return RC_EALREADY;
    case -EAGAIN: return RC_EAGAIN;
    case -EMSGSIZE: return RC_EMSGSIZE;
    case -EPIPE: return RC_EPIPE;
    default: return RC_OTHER;
    }
}

/* rc must be in `documented` (what eddy.h lists for the call) and in
 * `expected` (what the request's state calls for). */
#define CHECK_RC(what, r, rc, documented, expected)                                            \
    do {                                                                                       \
        FZ_CHECK(rbit(rc) & (documented), "%s on request %u returned %d, not documented",     \
                 what, (r)->id, rc);                                                          \
        FZ_CHECK(rbit(rc) & (expected), "%s on request %u returned %d, expected mask 0x%x",   \
                 what, (r)->id, rc, (unsigned)(expected));                                    \
    } while (0)

/* ----------------------------------------------------- eddy's own state -- */

static request *live_req(const rec *r) { return r->h ? request_of(r->h) : NULL; }

static size_t buffered(const rec *r)
{
    request *q = live_req(r);
    return q ? q->proto->buffered(q) : 0;
}

/* The client left (the request is held without an abort callback). */
static bool client_gone(const rec *r)
{
    request *q = live_req(r);
    return q && q->aborted;
}

/* Everything a call through a stale handle could change. */
#define DIGEST_MAX 512
typedef struct digest {
    uint64_t v[DIGEST_MAX];
    size_t n;
} digest;

static void take_digest(digest *d)
{
    d->n = 0;
#define D(x)                                                                                   \
    do {                                                                                       \
        if (d->n < DIGEST_MAX)                                                                 \
            d->v[d->n++] = (uint64_t)(x);                                                      \
    } while (0)
    D(srv->nconns);
    D(srv->stage_len);
    D((uintptr_t)srv->stage_owner);
    D(srv->shutting_down);
    D(loop_pending_timers(loop));
    for (session *s = srv->sessions; s; s = s->next) {
        const conn *c = conn_from_session(s);
        if (!c)
            continue;
        const request *q = c->req;
        D((uintptr_t)c);
        D((uintptr_t)q);
        D(c->phase);
        D(c->out_len);
        D(c->out_off);
        D(c->in_len);
        D(c->in_unparsed);
        D(c->deadline);
        D(c->kick);
        D(c->close_after_write);
        D(c->broken);
        D(c->zombie);
        D(c->fatal);
        D(c->out_chunked);
        if (q) {
            D(q->answered);
            D(q->aborted);
            D(q->keep_alive);
            D(q->streaming);
            D(q->stream_discard);
            D(q->drain_wanted);
            D(q->stream_left);
            D(q->stream_sent);
            D(q->nextra);
            D(q->extra_len);
            D((uintptr_t)q->on_abort);
            D((uintptr_t)q->abort_data);
            D((uintptr_t)q->on_drain);
            D((uintptr_t)q->drain_data);
        }
    }
    for (size_t i = 0; i < nmocks; i++) {
        size_t len;
        mock_output(mocks[i], &len);
        D(len);
        D(mock_closed(mocks[i]));
    }
#undef D
}

static void check_same(const digest *a, const char *what, const rec *r)
{
    digest b;
    take_digest(&b);
    FZ_CHECK(a->n == b.n && memcmp(a->v, b.v, a->n * sizeof(a->v[0])) == 0,
             "%s through the stale handle of request %u changed eddy's state", what, r->id);
    TRACE("  %s through the stale handle of request %u: refused\n", what, r->id);
}

/* eddy agrees with the model on which handles are stale. */
static void check_handles(void)
{
    for (unsigned i = 0; i < ndisp; i++) {
        rec *r = &recs[disp[i]];
        FZ_CHECK((live_req(r) != NULL) == !r->stale,
                 "request %u: handle %s, model says %s", r->id, live_req(r) ? "live" : "stale",
                 r->stale ? "stale" : "live");
    }
}

/* --------------------------------------------------- reference checks -- */

static bool tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool name_ok(const char *n)
{
    if (!*n)
        return false;
    for (; *n; n++)
        if (!tchar((unsigned char)*n))
            return false;
    return true;
}

/* A field value eddy may send: no control but HTAB, no DEL, no space or
 * tab at either end. */
static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return n == 0 || (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t');
}

static bool owned(const char *n)
{
    for (size_t i = 0; i < FZ_NOWNED; i++)
        if (strcasecmp(n, fz_owned_fields[i]) == 0)
            return true;
    return false;
}

static bool has_body(int status) { return status >= 200 && status != 204 && status != 304; }

/* ------------------------------------------------------ fuzzed strings -- */

static const char *const NAMES[] = {
    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE",
    "Trailer", "Proxy-Connection", "Date", "Server", "Content-Type", "X-A", "Set-Cookie",
    "ETag", "Cache-Control", "Location", "Content-Range", "Vary", "X-Op", "Content-Lengths",
    "Content-Length ", " X-A", "X-A:", "X A", "X-\xc3\xa9", "", "Content-Length\r\nX-B",
};
static const char *const VALUES[] = {
    "", "1", "chunked", "close", "keep-alive", "0", "text/html", "a, b", "v\tw", " lead",
    "trail ", "\ttab", "a\r\nX-Injected: 1", "a\nb", "a\rb", "\x7f", "\x01", "\xff\xfe",
    "x\r\n\r\nHTTP/1.1 200 OK", "e\xcc\x81", "100000000000000000000",
};

/* A name or value: from the list, its case scrambled by bits, or raw
 * bytes (up to the first NUL). */
static void fuzz_string(rd *in, char *out, size_t cap, const char *const *list, size_t nlist)
{
    uint8_t sel = u8(in);
    if (sel < 160) {
        const char *s = list[sel % nlist];
        uint8_t bits = u8(in);
        size_t n = strlen(s);
        if (n >= cap)
            n = cap - 1;
        for (size_t i = 0; i < n; i++) {
            char ch = s[i];
            if ((bits >> (i % 8)) & 1 && ch >= 'a' && ch <= 'z')
                ch = (char)(ch - 32);
            else if ((bits >> (i % 8)) & 1 && ch >= 'A' && ch <= 'Z')
                ch = (char)(ch + 32);
            out[i] = ch;
        }
        out[n] = 0;
        return;
    }
    size_t n = u8(in);
    if (sel >= 250)
        n = n * 4; /* long values: heads past eddy's 1 KB stack buffer */
    if (n >= cap)
        n = cap - 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = u8(in);
        if (!b)
            break;
        out[k++] = (char)b;
    }
    out[k] = 0;
    if (sel >= 250 && k < n) { /* input ran out: pad, still a value */
        memset(out + k, 'v', n - k);
        out[n] = 0;
    }
}

static const char *const CTYPES[] = {
    "text/plain", "application/octet-stream", "", "a/b; charset=utf-8", "x\r\nX-Injected: 1",
    "x\n", "\ttab", "trail ", "text/html\r\n\r\nHTTP/1.1 200 OK", "\x7f",
};

/* NULL, one from the list, or raw bytes. */
static const char *fuzz_ctype(rd *in, char *buf, size_t cap)
{
    uint8_t sel = u8(in);
    if (sel < 64)
        return NULL;
    if (sel < 200)
        return CTYPES[sel % (sizeof(CTYPES) / sizeof(CTYPES[0]))];
    fuzz_string(in, buf, cap, VALUES, sizeof(VALUES) / sizeof(VALUES[0]));
    return buf;
}

static const int STATUSES[] = {200, 201, 204, 206, 205, 299, 301, 304, 404, 418, 500, 599,
                               600, 999, 1000, 199, 100, 0, -1, INT_MIN, 226, 304};

static int fuzz_status(rd *in)
{
    uint8_t sel = u8(in);
    if (sel < 240)
        return STATUSES[sel % (sizeof(STATUSES) / sizeof(STATUSES[0]))];
    return (int)u16(in) - 100;
}

static const size_t LENGTHS[] = {0,     1,     2,     3,     10,    100,   1000,   4095,
                                 16384, 32768, 65535, 65536, 65537, 70000, 131072, 150000};

/* ------------------------------------------------------------ calls -- */

static void api_op(rec *r, rd *in);

static void on_abort(void *data)
{
    rec *r = data;
    TRACE("  abort callback of request %u\n", r->id);
    FZ_CHECK(r->abort_on, "abort callback of request %u, which has none registered", r->id);
    FZ_CHECK(!r->stale, "abort callback of request %u, already stale", r->id);
    FZ_CHECK(++r->aborts == 1, "abort callback of request %u ran %u times", r->id, r->aborts);
    r->abort_on = false;
    /* Still valid until this returns: calls of its own. */
    if (depth < MAX_DEPTH && !freed) {
        depth++;
        rd act = {r->abort_act, ACT_BYTES, 0};
        unsigned n = u8(&act) % 3;
        for (unsigned i = 0; i < n && !r->stale; i++)
            api_op(r, &act);
        depth--;
    }
    r->stale = true; /* gone once this returns */
}

static void on_drain(void *data)
{
    rec *r = data;
    TRACE("  drain callback of request %u\n", r->id);
    FZ_CHECK(r->drain_on && !r->stale, "drain callback of request %u (registered %d, stale %d)",
             r->id, r->drain_on, r->stale);
    FZ_CHECK(r->streaming, "drain callback of request %u, not streaming", r->id);
    FZ_CHECK(r->eagain, "drain callback of request %u without an -EAGAIN before", r->id);
    FZ_CHECK(buffered(r) == 0, "drain callback of request %u with %zu bytes still queued", r->id,
             buffered(r));
    r->eagain = false;
    r->drains++;
    /* A few times only: a callback that always writes until -EAGAIN again
     * never lets conn_run return while the mock takes every byte at once
     * (a socket would say EAGAIN). */
    if (depth < MAX_DEPTH && r->drains <= MAX_DRAIN_CALLS) {
        depth++;
        rd act = {r->drain_act, ACT_BYTES, 0};
        unsigned n = u8(&act) % 3;
        for (unsigned i = 0; i < n && !r->stale; i++)
            api_op(r, &act);
        depth--;
    }
}

static void do_field(rec *r, const char *name, const char *value)
{
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_response_field(r->h, name, value);
        FZ_CHECK(rc == -ESTALE, "eddy_response_field on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_response_field", r);
        return;
    }
    unsigned expected = 0;
    if (r->streaming) {
        expected = RC_EALREADY;
    } else {
        if (!name_ok(name) || !value_ok(value))
            expected |= RC_EINVAL;
        if (owned(name))
            expected |= RC_EPERM;
        if (r->nfields >= RESPONSE_MAX_FIELDS)
            expected |= RC_ENOSPC;
        if (!expected)
            expected = RC_OK | RC_ENOMEM;
    }
    int rc = eddy_response_field(r->h, name, value);
    TRACE("  field %u [%s] [%s] -> %d\n", r->id, name, value, rc);
    CHECK_RC("eddy_response_field", r, rc,
             RC_OK | RC_EINVAL | RC_EPERM | RC_ENOSPC | RC_ENOMEM | RC_EALREADY | RC_ESTALE, expected);
    if (rc == 0) {
        r->fields[r->nfields].name = dupn(name, strlen(name));
        r->fields[r->nfields].value = dupn(value, strlen(value));
        r->nfields++;
    }
}

static void op_field(rec *r, rd *in)
{
    char name[300], value[1100];
    fuzz_string(in, name, sizeof(name), NAMES, sizeof(NAMES) / sizeof(NAMES[0]));
    fuzz_string(in, value, sizeof(value), VALUES, sizeof(VALUES) / sizeof(VALUES[0]));
    do_field(r, name, value);
}

static void op_field_burst(rec *r, rd *in)
{
    unsigned n = 1 + u8(in) % 70;
    for (unsigned i = 0; i < n && (!r->stale || i == 0); i++) {
        char name[16], value[16];
        snprintf(name, sizeof(name), "X-B%u", i);
        snprintf(value, sizeof(value), "v%u", i);
        do_field(r, name, value);
    }
}

/* The model after a call answered the request (its handle is stale). */
static void answered(rec *r, int how, int status, const char *ct)
{
    r->answer = how;
    r->status = status;
    r->ct_given = ct != NULL;
    if (ct)
        snprintf(r->ct, sizeof(r->ct), "%s", ct);
    r->stale = true;
}

static void op_respond(rec *r, rd *in)
{
    int status = fuzz_status(in);
    char ctbuf[300];
    const char *ct = fuzz_ctype(in, ctbuf, sizeof(ctbuf));
    uint8_t sel = u8(in);
    size_t len = sel < 200 ? LENGTHS[sel % 16] : u16(in);
    if (len > WBUF_MAX)
        len = WBUF_MAX;
    const uint8_t *body = fill(r->id, 0, len);
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_respond(r->h, status, ct, body, len);
        FZ_CHECK(rc == -ESTALE, "eddy_respond on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_respond", r);
        return;
    }
    unsigned expected;
    if (r->streaming)
        expected = RC_EALREADY;
    else if (status < 200 || status > 999 || (ct && !value_ok(ct)))
        expected = RC_EINVAL;
    else
        expected = RC_OK;
    bool gone = client_gone(r);
    int rc = eddy_respond(r->h, status, ct, body, len);
    TRACE("  respond %u status %d ct %s len %zu -> %d\n", r->id, status, ct ? ct : "(null)", len,
          rc);
    CHECK_RC("eddy_respond", r, rc, RC_OK | RC_EINVAL | RC_EALREADY | RC_ESTALE, expected);
    if (rc == 0) {
        answered(r, gone ? ANS_NONE : ANS_RESPOND, status, ct);
        r->resp_len = len;
    }
}

static const char *const FILE_PATHS[] = {
    "/", "/a.txt", "/data.bin", "/index.html", "/sub", "/sub/", "/list/", "/nope", "/.env",
    "/a%2etxt", "/%zz", "/a%00b", "/../a.txt", "", "a.txt", "/list?x",
};

/* A path eddy_files_respond cannot decode: a bad escape or an encoded NUL. */
static bool path_bad(const char *p)
{
    for (; *p; p++) {
        if (*p != '%')
            continue;
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
            return true;
        if (p[1] == '0' && p[2] == '0')
            return true;
        p += 2;
    }
    return false;
}

static void op_files(rec *r, rd *in)
{
    const char *path = FILE_PATHS[u8(in) % (sizeof(FILE_PATHS) / sizeof(FILE_PATHS[0]))];
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_files_respond(files, r->h, path);
        FZ_CHECK(rc == -ESTALE, "eddy_files_respond on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_files_respond", r);
        return;
    }
    bool gone = client_gone(r);
    /* A client gone: dropped before the path is looked at. */
    unsigned expected = r->streaming ? RC_EALREADY : path_bad(path) && !gone ? RC_EINVAL : RC_OK;
    int rc = eddy_files_respond(files, r->h, path);
    TRACE("  files %u %s -> %d\n", r->id, path, rc);
    CHECK_RC("eddy_files_respond", r, rc, RC_OK | RC_EINVAL | RC_EALREADY | RC_ESTALE, expected);
    if (rc == 0)
        answered(r, gone ? ANS_NONE : ANS_FILES, 0, NULL);
}

static const int64_t STREAM_LENGTHS[] = {-1, -1, 0, 1, 10, 100, 5000, 65536, 70000, 200000, -2,
                                         INT64_MAX};

static void op_stream_start(rec *r, rd *in)
{
    int status = fuzz_status(in);
    char ctbuf[300];
    const char *ct = fuzz_ctype(in, ctbuf, sizeof(ctbuf));
    uint8_t sel = u8(in);
    int64_t length = sel < 200 ? STREAM_LENGTHS[sel % 12] : (int64_t)u16(in);
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_stream_start(r->h, status, ct, length);
        FZ_CHECK(rc == -ESTALE, "eddy_stream_start on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_stream_start", r);
        return;
    }
    bool gone = client_gone(r);
    unsigned expected;
    if (r->streaming)
        expected = RC_EALREADY;
    else if (status < 200 || status > 999 || (ct && !value_ok(ct)))
        expected = RC_EINVAL;
    else if (gone)
        expected = RC_EPIPE;
    else
        expected = RC_OK;
    int rc = eddy_stream_start(r->h, status, ct, length);
    TRACE("  stream_start %u status %d ct %s length %lld -> %d\n", r->id, status,
          ct ? ct : "(null)", (long long)length, rc);
    CHECK_RC("eddy_stream_start", r, rc, RC_OK | RC_EALREADY | RC_EINVAL | RC_EPIPE | RC_ESTALE,
             expected);
    if (rc == -EPIPE) {
        answered(r, ANS_NONE, 0, NULL); /* finished: nobody to stream to */
    } else if (rc == 0) {
        r->answer = ANS_STREAM;
        r->status = status;
        r->ct_given = ct != NULL;
        if (ct)
            snprintf(r->ct, sizeof(r->ct), "%s", ct);
        r->streaming = true;
        r->discard = !has_body(status) || r->method == M_HEAD;
        r->length = has_body(status) ? length : -1;
        r->left = r->left_doc = has_body(status) && length >= 0 ? length : -1;
        r->sent_bytes = 0;
    }
}

static void op_stream_write(rec *r, rd *in)
{
    uint8_t sel = u8(in);
    size_t len;
    if (sel < 160)
        len = LENGTHS[sel % 16];
    else if (sel < 220 && r->left >= 0)
        len = (size_t)(r->left > WBUF_MAX ? WBUF_MAX : r->left) + (sel % 3) - 1; /* left -1, 0, +1 */
    else
        len = u16(in);
    if (len > WBUF_MAX)
        len = WBUF_MAX;
    const uint8_t *data = fill(r->id, r->sent_bytes, len);
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_stream_write(r->h, data, len);
        FZ_CHECK(rc == -ESTALE, "eddy_stream_write on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_stream_write", r);
        return;
    }
    size_t before = buffered(r);
    unsigned expected;
    if (!r->streaming)
        expected = RC_EINVAL;
    else if (client_gone(r))
        expected = RC_EPIPE;
    else if (r->discard) {
        /* Dropped bytes are "counted": past a known length is -EMSGSIZE
         * when counted as a whole, eddy counts each write alone. */
        expected = RC_OK;
        if (r->left_doc >= 0 && (int64_t)len > r->left_doc)
            expected = RC_EMSGSIZE | ((int64_t)len <= r->left ? RC_OK : 0);
    } else if (r->left >= 0 && (int64_t)len > r->left)
        expected = RC_EMSGSIZE;
    else if (len == 0)
        expected = RC_OK;
    else if (before >= EDDY_STREAM_BUFFER)
        expected = RC_EAGAIN;
    else
        expected = RC_OK;
    int rc = eddy_stream_write(r->h, data, len);
    TRACE("  stream_write %u len %zu (left %lld, buffered %zu) -> %d\n", r->id, len,
          (long long)r->left, before, rc);
    CHECK_RC("eddy_stream_write", r, rc,
             RC_OK | RC_EAGAIN | RC_EMSGSIZE | RC_EPIPE | RC_EINVAL | RC_ESTALE, expected);
    if (rc == -EAGAIN)
        r->eagain = true;
    if (rc != 0)
        return;
    if (r->discard) {
        if (r->left_doc >= 0)
            r->left_doc -= (int64_t)len < r->left_doc ? (int64_t)len : r->left_doc;
        return;
    }
    r->sent_bytes += len;
    if (r->left >= 0)
        r->left -= (int64_t)len;
    size_t after = buffered(r);
    FZ_CHECK(len ? after <= EDDY_STREAM_BUFFER - 1 + len + CHUNK_FRAMING : after == before,
             "stream of request %u holds %zu bytes after a write of %zu (%zu before)", r->id,
             after, len, before);
}

static void op_stream_end(rec *r)
{
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_stream_end(r->h);
        FZ_CHECK(rc == -ESTALE, "eddy_stream_end on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_stream_end", r);
        return;
    }
    unsigned expected;
    if (!r->streaming)
        expected = RC_EINVAL;
    else if (r->discard || r->left <= 0)
        expected = RC_OK;
    else
        expected = RC_EMSGSIZE;
    int rc = eddy_stream_end(r->h);
    TRACE("  stream_end %u (left %lld) -> %d\n", r->id, (long long)r->left, rc);
    CHECK_RC("eddy_stream_end", r, rc, RC_OK | RC_EMSGSIZE | RC_EINVAL | RC_ESTALE, expected);
    if (rc == 0 || rc == -EMSGSIZE) {
        r->streaming = false;
        r->ended_short = rc == -EMSGSIZE;
        r->stale = true;
    }
}

static void op_on_drain(rec *r, rd *in)
{
    bool with = u8(in) % 4 != 0;
    uint8_t act[ACT_BYTES];
    for (int i = 0; i < ACT_BYTES; i++)
        act[i] = u8(in);
    if (r->stale) {
        digest d;
        take_digest(&d);
        eddy_stream_on_drain(r->h, with ? on_drain : NULL, r);
        check_same(&d, "eddy_stream_on_drain", r);
        return;
    }
    TRACE("  on_drain %u %s\n", r->id, with ? "set" : "cleared");
    eddy_stream_on_drain(r->h, with ? on_drain : NULL, r);
    r->drain_on = with;
    /* A drain eddy already went through (with no callback then) is over. */
    r->eagain = live_req(r)->drain_wanted;
    memcpy(r->drain_act, act, ACT_BYTES);
}

static void op_on_abort(rec *r, rd *in)
{
    bool with = u8(in) % 4 != 0;
    uint8_t act[ACT_BYTES];
    for (int i = 0; i < ACT_BYTES; i++)
        act[i] = u8(in);
    if (r->stale) {
        digest d;
        take_digest(&d);
        int rc = eddy_request_on_abort(r->h, with ? on_abort : NULL, r);
        FZ_CHECK(rc == -ESTALE, "eddy_request_on_abort on stale request %u: %d", r->id, rc);
        check_same(&d, "eddy_request_on_abort", r);
        return;
    }
    int rc = eddy_request_on_abort(r->h, with ? on_abort : NULL, r);
    TRACE("  on_abort %u %s -> %d\n", r->id, with ? "set" : "cleared", rc);
    CHECK_RC("eddy_request_on_abort", r, rc, RC_OK | RC_ESTALE, RC_OK);
    r->abort_on = with;
    memcpy(r->abort_act, act, ACT_BYTES);
}

static bool str_is(eddy_str s, const char *lit)
{
    return s.ptr && s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Reads every byte of a view: ASan checks it is still valid memory. */
static unsigned touch(eddy_str s)
{
    unsigned sum = 0;
    for (size_t i = 0; i < s.len; i++)
        sum += (unsigned char)s.ptr[i];
    return sum;
}

static const char *const HEADER_NAMES[] = {"X-Id", "x-id", "HOST", "Content-Length", "nope", "",
                                           "X-Id ", "connection"};

static void op_accessors(rec *r, rd *in)
{
    const char *hname = HEADER_NAMES[u8(in) % (sizeof(HEADER_NAMES) / sizeof(HEADER_NAMES[0]))];
    size_t plen = u8(in) % 8;
    char peer[8];
    memset(peer, 'Z', sizeof(peer));
    if (r->stale) {
        digest d;
        take_digest(&d);
        eddy_str e[5] = {eddy_request_method(r->h), eddy_request_target(r->h),
                         eddy_request_path(r->h), eddy_request_query(r->h),
                         eddy_request_body(r->h)};
        for (int i = 0; i < 5; i++)
            FZ_CHECK(e[i].len == 0, "accessor %d of stale request %u: %zu bytes", i, r->id,
                     e[i].len);
        FZ_CHECK(eddy_request_header(r->h, hname).ptr == NULL, "header of stale request %u",
                 r->id);
        size_t it = 0;
        eddy_str n, v;
        FZ_CHECK(!eddy_request_field_next(r->h, &it, &n, &v), "field_next of stale request %u",
                 r->id);
        FZ_CHECK(eddy_request_version(r->h) == -ESTALE, "version of stale request %u", r->id);
        FZ_CHECK(eddy_request_loop(r->h) == NULL, "loop of stale request %u", r->id);
        size_t pl = eddy_request_peer(r->h, peer, plen);
        FZ_CHECK(pl == 0 && (plen == 0 || peer[0] == 0), "peer of stale request %u", r->id);
        check_same(&d, "the accessors", r);
        return;
    }
    FZ_CHECK(str_is(eddy_request_method(r->h), METHODS[r->method]), "method of request %u",
             r->id);
    FZ_CHECK(str_is(eddy_request_target(r->h), r->target), "target of request %u", r->id);
    FZ_CHECK(str_is(eddy_request_path(r->h), r->kind == K_BODY ? "/hb" : "/h"),
             "path of request %u", r->id);
    char q[16];
    snprintf(q, sizeof(q), "%u", r->id);
    FZ_CHECK(str_is(eddy_request_query(r->h), q), "query of request %u", r->id);
    FZ_CHECK(eddy_request_version(r->h) == (r->http10 ? 10 : 11), "version of request %u: %d",
             r->id, eddy_request_version(r->h));
    FZ_CHECK(eddy_request_loop(r->h) == loop, "loop of request %u", r->id);
    eddy_str hv = eddy_request_header(r->h, hname);
    const char *want = NULL;
    for (unsigned i = 0; i < r->nsent && *hname; i++)
        if (strcasecmp(r->sent[i].name, hname) == 0) {
            want = r->sent[i].value;
            break;
        }
    FZ_CHECK(want ? str_is(hv, want) : hv.ptr == NULL, "header %s of request %u", hname, r->id);
    size_t it = 0;
    eddy_str n, v;
    unsigned k = 0;
    while (eddy_request_field_next(r->h, &it, &n, &v)) {
        FZ_CHECK(k < r->nsent && str_is(n, r->sent[k].name) && str_is(v, r->sent[k].value),
                 "field %u of request %u: %.*s", k, r->id, (int)n.len, n.ptr);
        k++;
    }
    FZ_CHECK(k == r->nsent, "request %u: %u fields of %u", r->id, k, r->nsent);
    eddy_str b = eddy_request_body(r->h);
    touch(b);
    if (r->kind == K_BODY) {
        FZ_CHECK(b.len == r->body_len, "body of request %u: %zu bytes of %zu", r->id, b.len,
                 r->body_len);
        for (size_t i = 0; i < b.len; i++)
            FZ_CHECK((uint8_t)b.ptr[i] == pat(r->id + 1000, i), "body byte %zu of request %u", i,
                     r->id);
    } else {
        FZ_CHECK(b.len == 0, "body of request %u on a route that drops it", r->id);
    }
    size_t pl = eddy_request_peer(r->h, peer, plen);
    if (plen) {
        FZ_CHECK(pl == strlen(peer) && pl < plen, "peer of request %u: %zu", r->id, pl);
        FZ_CHECK(strncmp(peer, "mock", pl) == 0 || strncmp(peer, "-", pl) == 0,
                 "peer of request %u: %s", r->id, peer);
    } else {
        FZ_CHECK(pl == 0 && peer[0] == 'Z', "peer of request %u with no room", r->id);
    }
}

/* One call on r, its kind and arguments taken from in. */
static void api_op(rec *r, rd *in)
{
    switch (u8(in) % 9) {
    case 0: op_field(r, in); break;
    case 1: op_respond(r, in); break;
    case 2: op_files(r, in); break;
    case 3: op_stream_start(r, in); break;
    case 4: op_stream_write(r, in); break;
    case 5: op_stream_end(r); break;
    case 6: op_on_drain(r, in); break;
    case 7: op_on_abort(r, in); break;
    default: op_accessors(r, in); break;
    }
}

/* ------------------------------------------------------------- routes -- */

static void handler(eddy_request *req, void *data)
{
    (void)data;
    eddy_str q = eddy_request_query(req);
    unsigned id = 0;
    for (size_t i = 0; i < q.len && i < 4; i++)
        id = id * 10 + (unsigned)(q.ptr[i] - '0');
    FZ_CHECK(id < nrecs, "a handler got request %u of %u", id, nrecs);
    rec *r = &recs[id];
    FZ_CHECK(!r->dispatched && r->kind != K_FILE, "request %u dispatched twice", id);
    r->dispatched = true;
    r->h = req;
    disp[ndisp++] = id;
    TRACE("  handler: request %u\n", id);
    rd act = {r->act, ACT_BYTES, 0};
    op_accessors(r, &act);
    uint8_t how = u8(&act);
    /* The callbacks' own calls: the bytes after these. */
    if (how & 1) {
        r->abort_on = true;
        memcpy(r->abort_act, r->act + 3, ACT_BYTES - 3);
        FZ_CHECK(eddy_request_on_abort(req, on_abort, r) == 0, "on_abort in the handler");
    }
    if (how & 2) {
        r->drain_on = true;
        memcpy(r->drain_act, r->act + 3, ACT_BYTES - 3);
        eddy_stream_on_drain(req, on_drain, r);
    }
    unsigned n = (how >> 2) % 4;
    depth++;
    for (unsigned i = 0; i < n; i++)
        api_op(r, &act);
    depth--;
}

/* ---------------------------------------------------------- requests -- */

static void add_sent(rec *r, const char *name, const char *value)
{
    r->sent[r->nsent].name = dupn(name, strlen(name));
    r->sent[r->nsent].value = dupn(value, strlen(value));
    r->nsent++;
}

static const char *const DIRECT_PATHS[] = {"/a.txt", "/", "/data.bin", "/nope", "/sub", "/list/"};

/* Appends one request to buf; returns its length, 0 when no more fit. */
static size_t make_request(rd *in, unsigned conn_i, char *buf, size_t cap)
{
    if (nrecs == MAX_RECS)
        return 0;
    rec *r = &recs[nrecs];
    memset(r, 0, sizeof(*r));
    r->id = nrecs;
    r->conn = conn_i;
    uint8_t f = u8(in);
    r->method = (f & 3) % 3;
    r->http10 = f & 4;
    r->kind = (f >> 3) % 4 == 3 ? K_FILE : (f >> 3) % 4 == 2 ? K_BODY : K_HOLD;
    r->close_req = f & 0x40;
    r->body_len = r->method == M_POST ? (size_t)u8(in) * 4 : 0;
    for (int i = 0; i < ACT_BYTES; i++)
        r->act[i] = u8(in);
    if (r->kind == K_FILE)
        snprintf(r->target, sizeof(r->target), "%s",
                 DIRECT_PATHS[u8(in) % (sizeof(DIRECT_PATHS) / sizeof(DIRECT_PATHS[0]))]);
    else
        snprintf(r->target, sizeof(r->target), "%s?%u", r->kind == K_BODY ? "/hb" : "/h", r->id);
    char id[16], cl[24];
    snprintf(id, sizeof(id), "%u", r->id);
    add_sent(r, "Host", "t");
    add_sent(r, "X-Id", id);
    if (r->http10 && !r->close_req)
        add_sent(r, "Connection", "keep-alive");
    else if (!r->http10 && r->close_req)
        add_sent(r, "Connection", "close");
    if (r->method == M_POST) {
        snprintf(cl, sizeof(cl), "%zu", r->body_len);
        add_sent(r, "Content-Length", cl);
    }
    add_sent(r, "x-trace", "a b\tc");
    size_t n = (size_t)snprintf(buf, cap, "%s %s HTTP/1.%c\r\n", METHODS[r->method], r->target,
                                r->http10 ? '0' : '1');
    for (unsigned i = 0; i < r->nsent; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s: %s\r\n", r->sent[i].name, r->sent[i].value);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    FZ_SETUP(n + r->body_len < cap);
    for (size_t i = 0; i < r->body_len; i++)
        buf[n + i] = (char)pat(r->id + 1000, i);
    n += r->body_len;
    nrecs++;
    TRACE("  request %u on conn %u: %s %s HTTP/1.%c%s, %zu body bytes\n", r->id, conn_i,
          METHODS[r->method], r->target, r->http10 ? '0' : '1', r->close_req ? " close" : "",
          r->body_len);
    return n;
}

static void op_send(rd *in, unsigned conn_i)
{
    char buf[3 * 1400];
    size_t len = 0;
    unsigned k = 1 + u8(in) % 3;
    for (unsigned i = 0; i < k; i++) {
        size_t n = make_request(in, conn_i, buf + len, sizeof(buf) - len);
        if (!n)
            break;
        len += n;
    }
    if (len)
        mock_push(mocks[conn_i], buf, len);
}

/* ------------------------------------------------------------- script -- */

static const size_t WRITE_MAX[8] = {0, 1, 7, 100, 1000, 4096, 65536, 0};
static const size_t RESET_AFTER[8] = {0, 1, 17, 100, 300, 2000, 10000, 80000};
/* Around the deadlines of cfg (header 3000, keep-alive 5000, send 4000)
 * and the 2000 ms linger. */
static const uint64_t ADVANCE_MS[16] = {0,    1,    100,  1999, 2000, 2001, 2999, 3000,
                                        3999, 4000, 4001, 5000, 6000, 10000, 60000, 100000};

static void op_mock(rd *in)
{
    size_t ci = u8(in) % nmocks;
    mock_stream *m = mocks[ci];
    uint8_t a = u8(in);
    switch (a % 8) {
    case 0: mock_block_writes(m, true); break;
    case 1: mock_block_writes(m, false); break;
    case 2: mock_set_write_max(m, WRITE_MAX[(a >> 3) % 8]); break;
    case 3: mock_push_reset(m); break;
    case 4: mock_push_eof(m); break;
    case 5: mock_reset_after(m, RESET_AFTER[(a >> 3) % 8]); break;
    case 6: mock_push_eagain(m); break;
    default: mock_set_write_max(m, 0); break;
    }
    TRACE("  mock event %u on conn %zu\n", a % 8, ci);
}

static rec *pick(rd *in)
{
    uint8_t b = u8(in);
    return ndisp ? &recs[disp[b % ndisp]] : NULL;
}

static void shutdown_done(void *data)
{
    (void)data;
    FZ_CHECK(eddy_server_connections(srv) == 0, "shutdown done with %u connections",
             eddy_server_connections(srv));
    drained_calls++;
}

/* ----------------------------------------------------- output checks -- */

typedef struct body_cmp {
    const rec *r;
    uint64_t off;
} body_cmp;

static void cmp_piece(void *ctx, const char *d, size_t n)
{
    body_cmp *b = ctx;
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((uint8_t)d[i] == pat(b->r->id, b->off + i),
                 "body byte %llu of the response to request %u is wrong",
                 (unsigned long long)(b->off + i), b->r->id);
    b->off += n;
}

/* Fields eddy writes itself (and the operator's X-Op): what may come
 * before the handler's. */
static const char *const EDDY_FIELDS[] = {
    "Server", "Date", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection",
    "ETag", "Last-Modified", "Vary", "Content-Encoding", "Cache-Control", "Content-Range",
    "Accept-Ranges", "Location", "Allow", "Retry-After", "X-Op",
};
#define NEDDY (sizeof(EDDY_FIELDS) / sizeof(EDDY_FIELDS[0]))

static void check_response(const rec *r, const char *o, const fz_response *resp)
{
    const char *h = o + resp->off;
    size_t hlen = resp->head_len;
    /* Field lines, after the status line. */
    const char *lines[RESPONSE_FIELDS_ALL + 32];
    size_t lens[RESPONSE_FIELDS_ALL + 32], nl = 0;
    const char *p = memmem(h, hlen, "\r\n", 2), *end = h + hlen;
    FZ_CHECK(p, "a head of one line");
    for (p += 2; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        FZ_CHECK(nl < sizeof(lines) / sizeof(lines[0]), "%zu fields in a head", nl);
        lines[nl] = p;
        lens[nl++] = (size_t)(eol - p);
        p = eol + 2;
    }
    /* The handler's fields come last, in order, exactly those accepted. */
    unsigned nf = r->kind == K_FILE ? 0 : r->nfields;
    FZ_CHECK(nl >= nf, "response to request %u: %zu fields, %u of them the handler's", r->id, nl,
             nf);
    for (unsigned i = 0; i < nf; i++) {
        const char *l = lines[nl - nf + i];
        size_t ln = lens[nl - nf + i];
        size_t a = strlen(r->fields[i].name), b = strlen(r->fields[i].value);
        FZ_CHECK(ln == a + 2 + b && memcmp(l, r->fields[i].name, a) == 0 &&
                     memcmp(l + a, ": ", 2) == 0 && memcmp(l + a + 2, r->fields[i].value, b) == 0,
                 "response to request %u: field %u is [%.*s], added [%s: %s]", r->id, i,
                 (int)ln, l, r->fields[i].name, r->fields[i].value);
    }
    /* Before them, only eddy's own, each once. */
    unsigned seen[NEDDY] = {0};
    for (size_t i = 0; i < nl - nf; i++) {
        const char *colon = memchr(lines[i], ':', lens[i]);
        size_t n = colon ? (size_t)(colon - lines[i]) : 0;
        size_t k = 0;
        while (k < NEDDY && !(strlen(EDDY_FIELDS[k]) == n && memcmp(EDDY_FIELDS[k], lines[i], n) == 0))
            k++;
        FZ_CHECK(k < NEDDY, "response to request %u has a field no one added: [%.*s]", r->id,
                 (int)lens[i], lines[i]);
        FZ_CHECK(++seen[k] == 1, "response to request %u: %s twice", r->id, EDDY_FIELDS[k]);
    }
    if (r->kind == K_FILE || r->answer == ANS_FILES)
        return;
    FZ_CHECK(r->answer == ANS_RESPOND || r->answer == ANS_STREAM,
             "a response to request %u, which its handler never answered (status %d)", r->id,
             resp->status);
    FZ_CHECK(resp->status == r->status, "request %u answered %d, sent %d", r->id, r->status,
             resp->status);
    size_t vl;
    const char *ct = fz_field(h, hlen, "Content-Type", &vl);
    if (r->ct_given)
        FZ_CHECK(ct && vl == strlen(r->ct) && memcmp(ct, r->ct, vl) == 0,
                 "request %u: Content-Type [%.*s], given [%s]", r->id, ct ? (int)vl : 0,
                 ct ? ct : "", r->ct);
    else
        FZ_CHECK(!ct, "request %u: a Content-Type, none given", r->id);
    const char *cl = fz_field(h, hlen, "Content-Length", &vl);
    uint64_t clen = 0;
    if (cl)
        fz_parse_u64(cl, vl, &clen);
    bool body = has_body(r->status) && r->method != M_HEAD;
    body_cmp cmp = {r, 0};
    if (r->answer == ANS_RESPOND) {
        if (has_body(r->status))
            FZ_CHECK(cl && clen == r->resp_len, "request %u: Content-Length for %zu bytes", r->id,
                     r->resp_len);
        if (!body) {
            FZ_CHECK(resp->framing == FZ_BODY_NONE, "request %u: a body for a HEAD or %d", r->id,
                     r->status);
            return;
        }
        FZ_CHECK(resp->framing == FZ_BODY_LENGTH, "request %u: framing %d", r->id, resp->framing);
        cmp_piece(&cmp, o + resp->body_off, resp->body_len);
        FZ_CHECK(!resp->complete || resp->body_len == r->resp_len, "request %u: body %zu of %zu",
                 r->id, resp->body_len, r->resp_len);
        return;
    }
    /* A stream. */
    if (!body) {
        FZ_CHECK(resp->framing == FZ_BODY_NONE, "request %u: a streamed body for a HEAD or %d",
                 r->id, r->status);
        if (has_body(r->status) && r->length >= 0)
            FZ_CHECK(cl && clen == (uint64_t)r->length, "request %u: HEAD Content-Length", r->id);
        return;
    }
    if (r->length >= 0) {
        FZ_CHECK(resp->framing == FZ_BODY_LENGTH && clen == (uint64_t)r->length,
                 "request %u: stream of %lld bytes framed %d with %llu", r->id,
                 (long long)r->length, resp->framing, (unsigned long long)clen);
        cmp_piece(&cmp, o + resp->body_off, resp->body_len);
        FZ_CHECK(resp->body_len <= r->sent_bytes, "request %u: %zu body bytes, %llu written",
                 r->id, resp->body_len, (unsigned long long)r->sent_bytes);
        FZ_CHECK(!resp->complete || r->left == 0, "request %u: a whole body with %lld left",
                 r->id, (long long)r->left);
        if (r->ended_short)
            FZ_CHECK(!resp->complete, "request %u: short stream ended complete", r->id);
        return;
    }
    if (r->http10) {
        FZ_CHECK(resp->framing == FZ_BODY_CLOSE, "request %u: HTTP/1.0 stream framed %d", r->id,
                 resp->framing);
        cmp_piece(&cmp, o + resp->body_off, resp->body_len);
    } else {
        FZ_CHECK(resp->framing == FZ_BODY_CHUNKED, "request %u: unknown length framed %d", r->id,
                 resp->framing);
        size_t used;
        fz_chunked(o + resp->body_off, resp->body_len, &used, cmp_piece, &cmp);
    }
    FZ_CHECK(cmp.off <= r->sent_bytes, "request %u: %llu body bytes, %llu written", r->id,
             (unsigned long long)cmp.off, (unsigned long long)r->sent_bytes);
    if (resp->complete)
        FZ_CHECK(r->stale && cmp.off == r->sent_bytes,
                 "request %u: a complete body of %llu bytes, %llu written", r->id,
                 (unsigned long long)cmp.off, (unsigned long long)r->sent_bytes);
}

static void check_output(size_t ci)
{
    size_t len;
    const char *o = mock_output(mocks[ci], &len);
    fz_dump("output", o, len);
    fz_answer answers[MAX_RECS];
    const rec *mine[MAX_RECS];
    size_t n = 0;
    for (unsigned i = 0; i < nrecs; i++)
        if (recs[i].conn == ci) {
            answers[n] = (fz_answer){.head = recs[i].method == M_HEAD, .http10 = recs[i].http10};
            mine[n++] = &recs[i];
        }
    fz_response resp[MAX_RECS];
    memset(resp, 0, sizeof(resp));
    fz_check_opts opt = {.allow_partial = true, .max_status = 999, .answers = answers,
                         .nanswers = n, .out = resp, .max_out = MAX_RECS};
    fz_stream_stats s = fz_check_stream_opts(o, len, &opt);
    for (unsigned i = 0; i < s.responses + s.partial && i < n; i++)
        if (resp[i].head_len)
            check_response(mine[i], o, &resp[i]);
}

/* ------------------------------------------------------------- setup -- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    files_cfg = (eddy_files_config){
        .root = fz_make_root(),
        .mime_types = fz_mime_types_path(),
        .autoindex = true,
        .cache_control = "no-cache",
    };
    /* HTTP/1.1 alone: the HTTP/2 preface leads to fuzz_h2's ground. */
    cfg = (eddy_config){
        .no_http2 = true,
        .max_body = 8192,
        .header_ms = 3000,
        .keepalive_ms = 5000,
        .send_ms = 4000,
        .response_fields = op_fields,
        .nresponse_fields = 1,
    };
    return 0;
}

static void new_conn(void)
{
    mock_stream *m = mock_stream_new(loop);
    FZ_SETUP(m);
    mocks[nmocks++] = m;
    FZ_SETUP(server_attach(srv, mock_stream_base(m), false));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd in = {data, size, 0};
    trace = getenv("FUZZ_TRACE") != NULL;
    nrecs = ndisp = 0;
    nmocks = 0;
    freed = false;
    drained_calls = 0;
    depth = 0;
    loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    FZ_SETUP(fz_serve_files(srv, loop, &files_cfg, &files) == 0);
    FZ_SETUP(fz_route(srv, "/h", handler, false) == 0);
    FZ_SETUP(fz_route(srv, "/hb", handler, true) == 0);
    new_conn();
    unsigned cur = 0;
    bool shut = false;
    bool reset = u8(&in) & 1;

    for (unsigned k = 0; k < MAX_OPS && more(&in); k++) {
        uint8_t op = u8(&in) % 16;
        TRACE("op %u: %u (clock %llu, %u conns, %u requests)\n", k, op,
              (unsigned long long)eddy_loop_now(loop), eddy_server_connections(srv), nrecs);
        switch (op) {
        case 0:
            cur = u8(&in) % nmocks;
            op_send(&in, cur);
            break;
        case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: {
            rec *r = pick(&in);
            if (!r)
                break;
            switch (op) {
            case 1: op_field(r, &in); break;
            case 2: op_respond(r, &in); break;
            case 3: op_files(r, &in); break;
            case 4: op_stream_start(r, &in); break;
            case 5: op_stream_write(r, &in); break;
            case 6: op_stream_end(r); break;
            case 7: op_on_drain(r, &in); break;
            case 8: op_on_abort(r, &in); break;
            default: op_accessors(r, &in); break;
            }
            break;
        }
        case 10: op_mock(&in); break;
        case 11: loop_advance(loop, ADVANCE_MS[u8(&in) % 16]); break;
        case 12: loop_advance(loop, 0); break;
        case 13:
            if (nmocks < MAX_CONNS)
                new_conn();
            break;
        case 14:
            shut = true;
            eddy_server_shutdown(srv, shutdown_done, NULL);
            break;
        default: {
            rec *r = pick(&in);
            if (r)
                op_field_burst(r, &in);
            break;
        }
        }
        check_handles();
    }

    TRACE("end: writes unblocked (clock %llu, %u conns)\n", (unsigned long long)eddy_loop_now(loop),
          eddy_server_connections(srv));
    /* The clients take everything: streams waiting on -EAGAIN hear of it. */
    for (size_t i = 0; i < nmocks; i++) {
        mock_block_writes(mocks[i], false);
        mock_set_write_max(mocks[i], 0);
    }
    loop_advance(loop, 0);
    loop_advance(loop, 0);
    check_handles();
    for (unsigned i = 0; i < ndisp; i++) {
        rec *r = &recs[disp[i]];
        if (r->stale || !r->streaming)
            continue;
        size_t b = buffered(r);
        FZ_CHECK(b <= EDDY_STREAM_BUFFER + WBUF_MAX + CHUNK_FRAMING, "stream %u holds %zu", r->id, b);
        if (r->eagain && r->drain_on && !client_gone(r) && b == 0)
            FZ_CHECK(false, "request %u: all taken after an -EAGAIN, on_drain never ran", r->id);
    }
    /* A body that cannot end well (a known length not reached) or that only
     * the end of the connection delimits (HTTP/1.0): the connection ends. */
    for (unsigned i = 0; i < ndisp; i++) {
        rec *r = &recs[disp[i]];
        bool must_end = r->ended_short || (r->answer == ANS_STREAM && r->stale && !r->streaming &&
                                           !r->discard && r->length < 0 && r->http10);
        if (must_end)
            FZ_CHECK(mock_closed(mocks[r->conn]) || mock_write_shut(mocks[r->conn]),
                     "request %u: connection %u still open after its stream ended (%s)", r->id,
                     r->conn, r->ended_short ? "short" : "HTTP/1.0");
    }
    if (shut && drained_calls == 0)
        FZ_CHECK(eddy_server_connections(srv) > 0, "shutdown with no connection left, never done");

    /* Free the server with its connections open, or after resets. */
    TRACE("end: server freed%s\n", reset ? " after resets" : " with connections open");
    if (reset) {
        for (size_t i = 0; i < nmocks; i++)
            mock_push_reset(mocks[i]);
        loop_advance(loop, 0);
        for (size_t i = 0; i < nmocks; i++)
            FZ_CHECK(mock_closed(mocks[i]), "connection %zu not closed after a reset", i);
    }
    check_handles();
    bool waiting[MAX_RECS] = {0};
    for (unsigned i = 0; i < ndisp; i++) {
        rec *r = &recs[disp[i]];
        waiting[r->id] = !r->stale && r->abort_on;
    }
    eddy_server_free(srv);
    freed = true;
    for (unsigned i = 0; i < nrecs; i++)
        FZ_CHECK(!waiting[i] || recs[i].aborts == 1,
                 "request %u held with an abort callback: %u calls when the server was freed", i,
                 recs[i].aborts);
    for (size_t i = 0; i < nmocks; i++)
        FZ_CHECK(mock_closed(mocks[i]), "connection %zu open after eddy_server_free", i);
    for (size_t i = 0; i < nmocks; i++)
        check_output(i);
    eddy_files_free(files);
    loop_advance(loop, 0);
    eddy_loop_free(loop);
    for (size_t i = 0; i < nmocks; i++)
        mock_stream_free(mocks[i]);
    for (unsigned i = 0; i < nrecs; i++) {
        rec *r = &recs[i];
        for (unsigned k = 0; k < r->nfields; k++) {
            free(r->fields[k].name);
            free(r->fields[k].value);
        }
        for (unsigned k = 0; k < r->nsent; k++) {
            free(r->sent[k].name);
            free(r->sent[k].value);
        }
    }
    return 0;
}
