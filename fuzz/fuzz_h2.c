/* libFuzzer target: an HTTP/2 connection driven by a script of frames.
 *
 * Each connection opens with the client preface and an empty SETTINGS.
 * Then the input is read as ops, one byte each (OP << 5 | ARG), and the
 * bytes an op needs after it (zeros once the input runs out):
 *   0  HEADERS opening a stream: path PATHS[ARG % 16]; the next byte picks
 *      the method (GET, HEAD, POST, OPTIONS), END_STREAM (bit 2), extra
 *      fields (bits 3-5: range, if-none-match, a 3000-byte field, host,
 *      content-length, an uppercase name, te: gzip, connection), and
 *      whether the block is split into HEADERS + CONTINUATION (bit 6);
 *      encoded by a client's HPACK deflater, so the table stays in step
 *  1  DATA on the last stream opened (or, ARG bit 4, on stream ARG & 15),
 *      (ARG & 7) * 1000 bytes, END_STREAM when ARG bit 3
 *  2  control frames: ARG % 8 = PING, SETTINGS (two settings from the
 *      next 6 bytes), SETTINGS ACK, WINDOW_UPDATE (stream and increment
 *      from the next 5 bytes), RST_STREAM (on the last stream), PRIORITY,
 *      GOAWAY, an empty DATA; ARG / 8 + 1 copies
 *  3  raw bytes: the next ARG + 1 bytes as they are (garbage frames)
 *  4  mock I/O: ARG % 8 = block writes, unblock, short writes of
 *      WRITE_MAX[ARG / 8], a read that says EAGAIN, reset after
 *      RESET_AFTER[ARG / 8] bytes, EOF, reset, the next op's bytes a byte
 *      at a time
 *  5  advance the virtual clock by ADVANCE_MS[ARG]
 *  6  ARG % 4: run what is due; open another connection (up to 4) and make
 *      it current; make the next current; graceful server shutdown
 *  7  RST_STREAM right after a new HEADERS, ARG + 1 times (rapid reset)
 *
 * Routes: files under the root and those of fuzz_routes.h.
 *
 * Checked: what eddy writes on each connection is a sequence of well-formed
 * frames (possibly cut short at the end): SETTINGS first; every frame within
 * the client's maximum size; HEADERS and DATA only on client streams (odd),
 * each header block decoding (nghttp2's inflater) to a :status of
 * three digits first and lowercase names after; GOAWAY, PING, SETTINGS on
 * stream 0.  After every connection is reset and the clock has passed every
 * deadline, the server counts no connection and every held request was
 * answered or aborted exactly once; nothing leaks.
 *
 * Debugging one input: FUZZ_TRACE=1 prints the ops as they run, FUZZ_DUMP=1
 * what each connection received. */
#include "fuzz_support.h"

#include "eddy.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"
#include "fuzz_routes.h"

#include <nghttp2/nghttp2.h>

#define MAX_CONNS 4

static eddy_config cfg;
static eddy_files_config files_cfg;

static const char *const PATHS[16] = {
    "/",      "/a.txt",   "/slow",     "/slow?30", "/hold",   "/hold?/a.txt", "/big", "/hi",
    "/echo",  "/slowbody", "/nope",    "/list/",   "/slowbig", "/data.bin", "*",   "/%2e%2e/x",
};
static const size_t WRITE_MAX[4] = {1, 9, 100, 4096};
static const size_t RESET_AFTER[4] = {0, 30, 500, 20000};
/* Around cfg's deadlines (header 3000, keep-alive 5000, send 4000) and the
 * handlers' timers (30, 500, 1000). */
static const uint64_t ADVANCE_MS[32] = {0,    1,    10,   30,   100,  499,  500,  999,
                                        1000, 1001, 1500, 2000, 2999, 3000, 3001, 3999,
                                        4000, 4001, 4999, 5000, 5001, 6000, 8000, 10000,
                                        0,    0,    5,    50,   250,  2500, 20000, 75000};

typedef struct input {
    const uint8_t *p;
    size_t n, at;
} input;

static uint8_t next8(input *in) { return in->at < in->n ? in->p[in->at++] : 0; }

/* One client connection: its mock, its HPACK deflater, its streams. */
typedef struct client {
    mock_stream *m;
    nghttp2_hd_deflater *deflater;
    uint32_t next_id, last_id;
    /* The largest SETTINGS_HEADER_TABLE_SIZE this client sent: eddy's
     * encoder may grow its table up to it, so the checking decoder must
     * accept that much. */
    uint32_t hd_table_max;
    bool bytewise; /* the next op's bytes go a byte per piece */
} client;

static bool trace;

static void push(client *cl, const uint8_t *p, size_t n)
{
    if (!n)
        return;
    if (cl->bytewise) {
        cl->bytewise = false;
        for (size_t i = 0; i < n; i++)
            mock_push(cl->m, p + i, 1);
    } else {
        mock_push(cl->m, p, n);
    }
}

static size_t frame_head(uint8_t *o, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    o[0] = (uint8_t)(len >> 16);
    o[1] = (uint8_t)(len >> 8);
    o[2] = (uint8_t)len;
    o[3] = type;
    o[4] = flags;
    o[5] = (uint8_t)(sid >> 24 & 0x7f);
    o[6] = (uint8_t)(sid >> 16);
    o[7] = (uint8_t)(sid >> 8);
    o[8] = (uint8_t)sid;
    return 9;
}

static void push_frame(client *cl, uint8_t type, uint8_t flags, uint32_t sid, const void *payload,
                       size_t len)
{
    uint8_t *buf = malloc(9 + len);
    FZ_SETUP(buf);
    frame_head(buf, len, type, flags, sid);
    if (len)
        memcpy(buf + 9, payload, len);
    push(cl, buf, 9 + len);
    free(buf);
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

static char big_value[3001];

static void op_headers(client *cl, unsigned arg, input *in)
{
    uint8_t how = next8(in);
    static const char *const methods[4] = {"GET", "HEAD", "POST", "OPTIONS"};
    const char *path = PATHS[arg % 16];
    const char *method = path[0] == '*' ? "OPTIONS" : methods[how & 3];
    nghttp2_nv nv[12] = {NV(":method", method), NV(":scheme", "http"), NV(":path", path),
                         NV(":authority", "fuzz.test")};
    size_t n = 4;
    switch (how >> 3 & 7) {
    case 1: nv[n++] = (nghttp2_nv)NV("range", "bytes=0-3,5-9"); break;
    case 2: nv[n++] = (nghttp2_nv)NV("if-none-match", "*"); break;
    case 3: nv[n++] = (nghttp2_nv)NV("x-big", big_value); break;
    case 4: nv[n++] = (nghttp2_nv)NV("host", "other.test"); break;
    case 5: nv[n++] = (nghttp2_nv)NV("content-length", "100"); break;
    case 6: nv[n++] = (nghttp2_nv)NV("X-Upper", "1"); break;
    case 7: nv[n++] = (nghttp2_nv)NV("te", "gzip"); break;
    default: break;
    }
    uint8_t block[8192];
    ssize_t len = nghttp2_hd_deflate_hd(cl->deflater, block, sizeof(block), nv, n);
    FZ_SETUP(len >= 0);
    uint32_t sid = cl->next_id;
    cl->next_id += 2;
    cl->last_id = sid;
    uint8_t end = how & 4 ? NGHTTP2_FLAG_END_STREAM : 0;
    if ((how & 64) && len > 2) {
        size_t half = (size_t)len / 2;
        push_frame(cl, NGHTTP2_HEADERS, end, sid, block, half);
        push_frame(cl, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, sid, block + half,
                   (size_t)len - half);
    } else {
        push_frame(cl, NGHTTP2_HEADERS, end | NGHTTP2_FLAG_END_HEADERS, sid, block, (size_t)len);
    }
}

static void op_data(client *cl, unsigned arg)
{
    static uint8_t zeros[7000];
    uint32_t sid = arg & 16 ? arg & 15 : cl->last_id;
    push_frame(cl, NGHTTP2_DATA, arg & 8 ? NGHTTP2_FLAG_END_STREAM : 0, sid, zeros,
               (arg & 7) * 1000u);
}

static void op_control(client *cl, unsigned arg, input *in)
{
    for (unsigned copies = arg / 8 + 1; copies; copies--) {
        uint8_t p[8] = {0};
        switch (arg % 8) {
        case 0: push_frame(cl, NGHTTP2_PING, 0, 0, p, 8); break;
        case 1:
            for (int i = 0; i < 6; i++)
                p[i] = next8(in);
            if ((p[0] << 8 | p[1]) == NGHTTP2_SETTINGS_HEADER_TABLE_SIZE) {
                uint32_t v = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
                if (v > cl->hd_table_max)
                    cl->hd_table_max = v;
            }
            push_frame(cl, NGHTTP2_SETTINGS, 0, 0, p, 6);
            break;
        case 2: push_frame(cl, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0); break;
        case 3: {
            uint32_t sid = next8(in) & 15;
            for (int i = 0; i < 4; i++)
                p[i] = next8(in);
            p[0] &= 0x7f;
            push_frame(cl, NGHTTP2_WINDOW_UPDATE, 0, sid, p, 4);
            break;
        }
        case 4:
            p[3] = 8; /* CANCEL */
            push_frame(cl, NGHTTP2_RST_STREAM, 0, cl->last_id, p, 4);
            break;
        case 5: p[4] = 16; push_frame(cl, NGHTTP2_PRIORITY, 0, cl->last_id, p, 5); break;
        case 6: push_frame(cl, NGHTTP2_GOAWAY, 0, 0, p, 8); break;
        default: push_frame(cl, NGHTTP2_DATA, 0, cl->last_id, NULL, 0); break;
        }
    }
}

static bool client_open(client *cl, eddy_server *srv, eddy_loop *loop)
{
    cl->m = mock_stream_new(loop);
    FZ_SETUP(cl->m);
    FZ_SETUP(nghttp2_hd_deflate_new(&cl->deflater, 4096) == 0);
    cl->next_id = 1;
    cl->last_id = 1;
    cl->hd_table_max = 4096; /* HPACK's initial size */
    cl->bytewise = false;
    mock_push(cl->m, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    uint8_t settings[9];
    frame_head(settings, 0, NGHTTP2_SETTINGS, 0, 0);
    mock_push(cl->m, settings, 9);
    return server_attach(srv, mock_stream_base(cl->m), false) != NULL;
}

/* ------------------------------------------------------------- checking -- */

static uint32_t get24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint32_t get31(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) & 0x7fffffffu;
}

/* One header block of a response: :status first, three digits; names lowercase. */
static void check_block(nghttp2_hd_inflater *inf, const uint8_t *p, size_t len)
{
    bool first = true;
    /* On to FINAL even once every byte is taken: only end_headers lets
     * the next block open with a table size update. */
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &flags, p, len, 1);
        FZ_CHECK(used >= 0, "eddy's header block does not decode: %zd", used);
        p += used;
        len -= (size_t)used;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            if (first)
                FZ_CHECK(nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0 && nv.valuelen == 3,
                         "a response's first field is not :status");
            else
                for (size_t i = 0; i < nv.namelen; i++)
                    FZ_CHECK(!(nv.name[i] >= 'A' && nv.name[i] <= 'Z'), "an uppercase field name");
            first = false;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inf);
            break;
        }
        if (used == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
            break;
    }
}

static void check_output(const client *cl)
{
    size_t len;
    const uint8_t *o = (const uint8_t *)mock_output(cl->m, &len);
    fz_dump("output", (const char *)o, len);
    nghttp2_hd_inflater *inf;
    FZ_SETUP(nghttp2_hd_inflate_new(&inf) == 0);
    FZ_SETUP(nghttp2_hd_inflate_change_table_size(inf, cl->hd_table_max) == 0);
    size_t at = 0;
    bool first = true;
    uint8_t *block = NULL;
    size_t block_len = 0;
    while (len - at >= 9) {
        uint32_t flen = get24(o + at);
        uint8_t type = o[at + 3], flags = o[at + 4];
        uint32_t sid = get31(o + at + 5);
        FZ_CHECK(flen <= 16384, "a frame of %u bytes: beyond the client's maximum", flen);
        if (first)
            FZ_CHECK(type == NGHTTP2_SETTINGS && !(flags & NGHTTP2_FLAG_ACK), "the first frame is not SETTINGS");
        first = false;
        if (len - at - 9 < flen)
            break; /* cut short at the end */
        const uint8_t *payload = o + at + 9;
        switch (type) {
        case NGHTTP2_DATA:
        case NGHTTP2_HEADERS:
        case NGHTTP2_CONTINUATION:
            /* Raw bytes may have opened any client stream: odd, not 0. */
            FZ_CHECK(sid & 1, "frame type %u on stream %u", type, sid);
            break;
        case NGHTTP2_RST_STREAM:
            FZ_CHECK(sid != 0, "RST_STREAM on stream 0");
            break;
        case NGHTTP2_SETTINGS:
        case NGHTTP2_PING:
        case NGHTTP2_GOAWAY:
            FZ_CHECK(sid == 0, "frame type %u on stream %u", type, sid);
            break;
        case NGHTTP2_WINDOW_UPDATE:
            break;
        default:
            FZ_CHECK(false, "eddy sent a frame of type %u", type);
        }
        if (type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION) {
            uint8_t *nb = realloc(block, block_len + flen + 1);
            FZ_SETUP(nb);
            block = nb;
            memcpy(block + block_len, payload, flen);
            block_len += flen;
            if (flags & NGHTTP2_FLAG_END_HEADERS) {
                check_block(inf, block, block_len);
                block_len = 0;
            }
        }
        at += 9 + flen;
    }
    free(block);
    nghttp2_hd_inflate_del(inf);
}

/* -------------------------------------------------------------- running -- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(big_value, 'v', sizeof(big_value) - 1);
    files_cfg = (eddy_files_config){
        .root = fz_make_root(),
        .mime_types = fz_mime_types_path(),
        .autoindex = true,
        .cache_control = "no-cache",
    };
    cfg = (eddy_config){
        .max_header_bytes = 2048,
        .max_headers = 30,
        .max_body = 8192,
        .header_ms = 3000,
        .keepalive_ms = 5000,
        .send_ms = 4000,
        .h2_max_streams = 8,
    };
    return 0;
}

static void shutdown_done(void *data) { *(bool *)data = true; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size, 0};
    fz_routes_reset();
    trace = getenv("FUZZ_TRACE") != NULL;
    eddy_loop *loop = eddy_loop_new();
    FZ_SETUP(loop);
    loop_use_virtual_clock(loop, 1000);
    eddy_server *srv;
    FZ_SETUP(eddy_server_new(loop, &cfg, &srv) == 0);
    FZ_SETUP(fz_serve_files(srv, loop, &files_cfg, &fz_files) == 0);
    FZ_SETUP(fz_add_routes(srv) == 0);

    client cls[MAX_CONNS];
    size_t ncls = 0, cur = 0;
    bool shut = false, drained = false;
    FZ_SETUP(client_open(&cls[ncls++], srv, loop));
    while (in.at < in.n) {
        uint8_t b = next8(&in);
        unsigned op = b >> 5, arg = b & 31;
        client *cl = &cls[cur];
        if (trace)
            fprintf(stderr, "op %u/%u on conn %zu (clock %llu, %u conns)\n", op, arg, cur,
                    (unsigned long long)eddy_loop_now(loop), eddy_server_connections(srv));
        switch (op) {
        case 0: op_headers(cl, arg, &in); break;
        case 1: op_data(cl, arg); break;
        case 2: op_control(cl, arg, &in); break;
        case 3: {
            uint8_t raw[32];
            size_t n = 0;
            for (; n < arg + 1u && in.at < in.n; n++)
                raw[n] = next8(&in);
            push(cl, raw, n);
            break;
        }
        case 4:
            switch (arg % 8) {
            case 0: mock_block_writes(cl->m, true); break;
            case 1: mock_block_writes(cl->m, false); break;
            case 2: mock_set_write_max(cl->m, WRITE_MAX[arg / 8]); break;
            case 3: mock_push_eagain(cl->m); break;
            case 4: mock_reset_after(cl->m, RESET_AFTER[arg / 8]); break;
            case 5: mock_push_eof(cl->m); break;
            case 6: mock_push_reset(cl->m); break;
            default: cl->bytewise = true; break;
            }
            break;
        case 5: loop_advance(loop, ADVANCE_MS[arg]); break;
        case 6:
            switch (arg % 4) {
            case 0: loop_advance(loop, 0); break;
            case 1:
                if (ncls < MAX_CONNS) {
                    FZ_SETUP(client_open(&cls[ncls], srv, loop) || shut);
                    cur = ncls++;
                }
                break;
            case 2: cur = (cur + 1) % ncls; break;
            default:
                if (!shut) {
                    shut = true;
                    eddy_server_shutdown(srv, shutdown_done, &drained);
                }
                break;
            }
            break;
        default:
            for (unsigned i = 0; i <= arg; i++) {
                op_headers(cl, 0, &(input){(const uint8_t *)"\x04", 1, 0});
                uint8_t code[4] = {0, 0, 0, 8};
                push_frame(cl, NGHTTP2_RST_STREAM, 0, cl->last_id, code, 4);
            }
            break;
        }
    }
    loop_advance(loop, 0);
    for (size_t i = 0; i < ncls; i++)
        check_output(&cls[i]);
    if (shut)
        FZ_CHECK(drained == (eddy_server_connections(srv) == 0),
                 "shutdown: drained %d with %u connections", drained, eddy_server_connections(srv));

    /* Everyone hangs up; then every deadline passes.  Nothing may be left. */
    for (size_t i = 0; i < ncls; i++)
        mock_push_reset(cls[i].m);
    loop_advance(loop, 0);
    for (size_t i = 0; i < ncls; i++)
        FZ_CHECK(mock_closed(cls[i].m), "connection %zu not closed after a reset", i);
    fz_finish(loop, srv, shut, &drained);
    for (size_t i = 0; i < ncls; i++) {
        mock_stream_free(cls[i].m);
        nghttp2_hd_deflate_del(cls[i].deflater);
    }
    return 0;
}
