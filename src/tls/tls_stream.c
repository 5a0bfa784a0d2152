/* A server-side TLS stream over another stream (a socket, or a mock in
 * tests).  OpenSSL reads and writes records through a BIO whose calls are
 * the inner stream's, so the io_uring and epoll streams both carry TLS
 * unchanged, and the owner sees plaintext with the stream contract: reads
 * until the inner stream says -EAGAIN (edge-triggered readiness stays
 * right), short writes, -EAGAIN, and one error for good once the session
 * failed.  A failed handshake is an ordinary close: nothing is logged. */
#include "tls/tls.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Plaintext gathered from several small pieces before one SSL_write, and
 * file bytes on their way to encryption: one buffer per thread. */
#define TLS_STAGE (4 * TLS_RECORD_MAX)

typedef struct tls_stream {
    eddy_stream base;
    eddy_stream *inner;
    SSL *ssl;
    tls_gen *gen;
    struct metrics_slot *metrics; /* counts the handshake; NULL: nowhere */
    int err;               /* < 0 once the session failed: every call says it */
    int io_err;            /* what the inner stream said last, when it failed */
    bool handshaken;
    bool eof;              /* close_notify or the peer's EOF */
    bool inner_eof;        /* the inner stream read 0: BIO_eof() says so */
    bool write_wants_read; /* a write waits on the peer: tell of readable as writable */
    bool more;             /* hold the records being made: more follow at once */
    bool inner_short;      /* the last inner read gave less than asked: drained */
    char *out;             /* records held (TLS_OUT_MAX), freed once they went */
    uint32_t out_len, out_off;
    bool aborting;         /* reset: no close_notify */
    bool shut_pending;     /* shutdown_write waits to send close_notify, then FIN */
    bool closing;          /* closed by the owner; close_notify waits for room */
    eddy_deferred tell;    /* the end, found behind a short read, told next turn */
    eddy_timer close_timer; /* bounds closing */
} tls_stream;

static _Thread_local unsigned char stage[TLS_STAGE];

/* ------------------------------------------------------------------ BIO -- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Sends the held records and then data: bytes of data taken (the held
 * ones went first, whole), or -1 with the retry flag once the stream said
 * -EAGAIN (so it tells when it has room; a short write is not enough for
 * that, hence the loop).  more: bytes follow at once, which the transport
 * may wait for. */
static int send_out(BIO *b, tls_stream *ts, const char *data, int len, bool more)
{
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        size_t held = ts->out_len - ts->out_off;
        if (held)
            iov[n++] = (struct iovec){ts->out + ts->out_off, held};
        if (len)
            iov[n++] = (struct iovec){(void *)data, (size_t)len};
        if (!n)
            return 0;
        ssize_t w = stream_writev(ts->inner, iov, n, more);
        if (w == -EAGAIN || w == 0) {
            BIO_set_retry_write(b);
            return -1;
        }
        if (w < 0) {
            ts->io_err = (int)w;
            return -1;
        }
        if ((size_t)w < held) {
            ts->out_off += (uint32_t)w;
            continue;
        }
        ts->out_len = ts->out_off = 0;
        if ((size_t)w > held || !len)
            return (int)((size_t)w - held);
    }
}

/* While an SSL_write's plaintext has more behind it (ts->more), its
 * records are held, and the held ones go when the next does not fit:
 * what is sent then always has bytes behind it, and the last records go
 * when the write ends (flush_out), so no send holds the tail back. */
static int bio_write(BIO *b, const char *data, int len)
{
    tls_stream *ts = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!ts->more || len > TLS_OUT_MAX)
        return send_out(b, ts, data, len, false);
    if (ts->out_len + (size_t)len > TLS_OUT_MAX && send_out(b, ts, NULL, 0, true) < 0)
        return -1;
    if (!ts->out && !(ts->out = malloc(TLS_OUT_MAX)))
        return send_out(b, ts, data, len, false);
    memcpy(ts->out + ts->out_len, data, (size_t)len);
    ts->out_len += (uint32_t)len;
    return len;
}

static int fail(tls_stream *ts);

/* Held records go (all of them, or -EAGAIN: the stream tells when it has
 * room); the buffer is let go once empty. */
static int flush_out(tls_stream *ts)
{
    if (ts->out_len != ts->out_off) {
        BIO *b = SSL_get_wbio(ts->ssl);
        int r = send_out(b, ts, NULL, 0, false);
        BIO_clear_retry_flags(b);
        if (r < 0)
            return ts->io_err ? fail(ts) : -EAGAIN;
    }
    free(ts->out);
    ts->out = NULL;
    return 0;
}

static int bio_read(BIO *b, char *buf, int len)
{
    tls_stream *ts = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = stream_read(ts->inner, buf, (size_t)len);
    ts->inner_short = n > 0 && n < len;
    if (n == 0)
        ts->inner_eof = true;
    if (n >= 0)
        return (int)n; /* 0: the peer's EOF */
    if (n == -EAGAIN) {
        BIO_set_retry_read(b);
        return -1;
    }
    ts->io_err = (int)n;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_stream *ts = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* writes go straight to the stream */
    case BIO_CTRL_EOF:
        /* OpenSSL asks after a read of 0: only a BIO at EOF lets
         * SSL_OP_IGNORE_UNEXPECTED_EOF make it an ordinary end. */
        return ts->inner_eof;
    default:
        return 0;
    }
}

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "eddy stream");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl))
        bio_method = m;
    else
        BIO_meth_free(m);
}

/* ------------------------------------------------------------- session -- */

/* The session failed: every later call says err (a reset from the inner
 * stream stays a reset; anything else is a protocol error). */
static int fail(tls_stream *ts)
{
    ERR_clear_error(); /* the queue is per thread: leave it empty */
    ts->err = ts->io_err ? ts->io_err : -EPROTO;
    return ts->err;
}

/* 0 once the handshake is done, -EAGAIN while it waits on the peer. */
static int handshake(tls_stream *ts)
{
    int r = SSL_do_handshake(ts->ssl);
    metrics_slot *m = ts->metrics;
    if (r == 1) {
        ts->handshaken = true;
        metrics_count(m, m ? &m->tls[METRICS_TLS_OK] : NULL);
        return 0;
    }
    int e = SSL_get_error(ts->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    metrics_count(m, m ? &m->tls[METRICS_TLS_FAILED] : NULL);
    return fail(ts);
}

void tls_stream_metrics(eddy_stream *s, metrics_slot *m) { ((tls_stream *)s)->metrics = m; }

static ssize_t tls_read(eddy_stream *s, void *buf, size_t len)
{
    tls_stream *ts = (tls_stream *)s;
    if (ts->err)
        return ts->err;
    if (!ts->handshaken) {
        int rc = handshake(ts);
        if (rc < 0)
            return rc;
    }
    /* Until the inner stream runs dry (a short read of it, as the owner
     * judges a socket, or -EAGAIN), a record at a time: the owner takes a
     * short read of this stream to mean "drained". */
    size_t got = 0;
    ts->inner_short = false;
    while (got < len && !ts->eof) {
        size_t n;
        int r = SSL_read_ex(ts->ssl, (char *)buf + got, len - got, &n);
        if (r == 1) {
            got += n;
            if (ts->inner_short && !SSL_has_pending(ts->ssl))
                break; /* no need to hear -EAGAIN from the socket */
            continue;
        }
        int e = SSL_get_error(ts->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            ts->eof = true;
            break;
        }
        if (e == SSL_ERROR_WANT_WRITE)
            break; /* an answer to the peer (a key update) waits for room */
        fail(ts);
        break;
    }
    if (got) {
        /* A short read means "drained" to the owner, which waits for the
         * next event: when the end (close_notify, or an error) came behind
         * the data, no event of the inner stream may follow, so one is
         * told on the next turn and the next read says it. */
        if (got < len && (ts->eof || ts->err))
            eddy_defer(ts->base.loop, &ts->tell);
        return (ssize_t)got;
    }
    if (ts->err)
        return ts->err;
    return ts->eof ? 0 : -EAGAIN;
}

static void tell_owner(void *data)
{
    tls_stream *ts = data;
    if (ts->base.on_ready)
        ts->base.on_ready(&ts->base, STREAM_READABLE | (ts->err ? 0 : STREAM_RDHUP));
}

/* One SSL_write: bytes taken (a record at least: with partial writes
 * OpenSSL returns after each record), or -EAGAIN / error.  When it makes
 * several records, or more plaintext follows, its records are held while
 * they fit; they go with the next write, or here once all of len is taken
 * and none follows at once.  A lone record (a small answer) goes as it is
 * made, with whatever was held before it: no copy. */
static ssize_t write_some(tls_stream *ts, const void *p, size_t len, bool more)
{
    ts->more = more || len > TLS_RECORD_MAX;
    size_t n;
    int r = SSL_write_ex(ts->ssl, p, len, &n);
    ts->more = false;
    if (r == 1) {
        /* Taken: the caller writes the rest of len next (its records join
         * these), or the records go now; if they find no room, they go
         * when the stream says it has some (on_inner_ready). */
        if (!more && n == len && flush_out(ts) < 0 && ts->err)
            return ts->err;
        return (ssize_t)n;
    }
    int e = SSL_get_error(ts->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_WANT_READ) {
        ts->write_wants_read = true;
        return -EAGAIN;
    }
    return fail(ts);
}

/* Small pieces are gathered into one record; a large one is written in
 * place.  A write that found no room is retried by the owner with the
 * same bytes first, as OpenSSL wants (the record it made is pending). */
static ssize_t tls_writev(eddy_stream *s, const struct iovec *iov, int iovcnt, bool more)
{
    tls_stream *ts = (tls_stream *)s;
    if (ts->err)
        return ts->err;
    if (!ts->handshaken)
        return -EAGAIN;
    size_t total = 0, off = 0;
    int i = 0;
    while (i < iovcnt) {
        if (off == iov[i].iov_len) {
            i++, off = 0;
            continue;
        }
        const char *p = (const char *)iov[i].iov_base + off;
        size_t len = iov[i].iov_len - off;
        bool last = i == iovcnt - 1;
        if (len < TLS_RECORD_MAX && !last) {
            /* Gather up to a record's worth from this piece on. */
            len = 0;
            for (int j = i; j < iovcnt && len < TLS_RECORD_MAX; j++) {
                size_t o = j == i ? off : 0;
                size_t take = iov[j].iov_len - o;
                if (take > TLS_RECORD_MAX - len)
                    take = TLS_RECORD_MAX - len;
                memcpy(stage + len, (const char *)iov[j].iov_base + o, take);
                len += take;
                last = j == iovcnt - 1 && o + take == iov[j].iov_len;
            }
            p = (const char *)stage;
        }
        ssize_t n = write_some(ts, p, len, more || !last);
        if (n < 0) {
            if (total)
                break;
            return n;
        }
        total += (size_t)n;
        /* Advance over n bytes of the vector. */
        for (size_t left = (size_t)n; left && i < iovcnt;) {
            size_t step = iov[i].iov_len - off;
            if (step > left)
                step = left;
            off += step;
            left -= step;
            if (off == iov[i].iov_len)
                i++, off = 0;
        }
    }
    return (ssize_t)total;
}

/* Without kernel TLS a file's bytes come through user space to be
 * encrypted: read a stage at a time, then written record by record. */
static ssize_t tls_sendfile(eddy_stream *s, int fd, off_t *off, size_t len)
{
    tls_stream *ts = (tls_stream *)s;
    if (ts->err)
        return ts->err;
    if (!ts->handshaken)
        return -EAGAIN;
    size_t total = 0;
    while (total < len) {
        size_t want = len - total < TLS_STAGE ? len - total : TLS_STAGE;
        ssize_t got = pread(fd, stage, want, *off);
        if (got <= 0) {
            if (total)
                break;
            return got < 0 ? -errno : -EIO; /* the file shrank under us */
        }
        size_t done = 0;
        while (done < (size_t)got) {
            ssize_t n = write_some(ts, stage + done, (size_t)got - done,
                                   total + (size_t)got < len);
            if (n < 0) {
                total += done;
                *off += (off_t)done;
                return total ? (ssize_t)total : n;
            }
            done += (size_t)n;
        }
        total += done;
        *off += (off_t)done;
    }
    return (ssize_t)total;
}

static void tls_reset(eddy_stream *s)
{
    tls_stream *ts = (tls_stream *)s;
    ts->aborting = true;
    stream_reset(ts->inner);
}

/* Sends close_notify, so the peer can tell the end from a cut: 0 once it
 * went (or cannot go: no session, or a failed one), -EAGAIN while bytes in
 * flight leave no room for it. */
static int send_close_notify(tls_stream *ts)
{
    if (!ts->handshaken || ts->err || ts->aborting)
        return 0;
    int r = SSL_shutdown(ts->ssl);
    if (r >= 0)
        return 0; /* 0: sent; the peer's own close_notify is not awaited */
    int e = SSL_get_error(ts->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE && !ts->io_err) {
        ERR_clear_error();
        return -EAGAIN;
    }
    fail(ts);
    return 0;
}

/* close_notify, then FIN (once the alert found room). */
static void tls_shutdown_write(eddy_stream *s)
{
    tls_stream *ts = (tls_stream *)s;
    if (send_close_notify(ts) == -EAGAIN) {
        ts->shut_pending = true;
        return;
    }
    stream_shutdown_write(ts->inner);
}

static void tls_free(tls_stream *ts)
{
    eddy_timer_stop(ts->base.loop, &ts->close_timer);
    free(ts->out);
    SSL_free(ts->ssl);
    stream_close(ts->inner);
    tls_gen_release(ts->gen);
    free(ts);
}

static void on_close_timeout(void *data) { tls_free(data); }

/* The owner is done with the stream; close_notify still goes first when
 * the close is not a reset (a send in flight delays it: the stream stays
 * until the inner one can take it, within TLS_CLOSE_NOTIFY_MS). */
static void tls_close(eddy_stream *s)
{
    tls_stream *ts = (tls_stream *)s;
    eddy_defer_cancel(ts->base.loop, &ts->tell);
    ts->base.on_ready = NULL;
    if (send_close_notify(ts) == -EAGAIN &&
        eddy_timer_start(ts->base.loop, &ts->close_timer, TLS_CLOSE_NOTIFY_MS) == 0) {
        ts->closing = true;
        return;
    }
    tls_free(ts);
}

static void tls_peer_addr(eddy_stream *s, peer_addr *out)
{
    stream_peer_addr(((tls_stream *)s)->inner, out);
}

static size_t tls_alpn(eddy_stream *s, const unsigned char **proto)
{
    unsigned len = 0;
    SSL_get0_alpn_selected(((tls_stream *)s)->ssl, proto, &len);
    return len;
}

static const char *tls_version(eddy_stream *s)
{
    return SSL_get_version(((tls_stream *)s)->ssl); /* a static string */
}

/* The records held for plaintext that was to follow go, and the socket
 * sends what it held below them.  A failure shows at the next write. */
static void tls_push(eddy_stream *s)
{
    tls_stream *ts = (tls_stream *)s;
    if (ts->err || !ts->handshaken)
        return;
    if (flush_out(ts) == 0)
        stream_push(ts->inner);
}

static const stream_ops tls_ops = {tls_read,          tls_writev, tls_sendfile,  tls_reset,
                                   tls_shutdown_write, tls_close,  tls_peer_addr, true,
                                   tls_alpn,          tls_version, tls_push};

/* The handshake runs here, beneath the owner, which hears of the stream
 * only once it can read (or the handshake failed and a read says so). */
static void on_inner_ready(eddy_stream *inner, unsigned events)
{
    tls_stream *ts = inner->owner;
    if (ts->closing) {
        if ((events & STREAM_HUP) || send_close_notify(ts) != -EAGAIN)
            tls_free(ts);
        return;
    }
    if (ts->shut_pending && (events & (STREAM_WRITABLE | STREAM_HUP)) &&
        send_close_notify(ts) != -EAGAIN) {
        ts->shut_pending = false;
        stream_shutdown_write(ts->inner);
    }
    if (!ts->handshaken && !ts->err) {
        if (handshake(ts) == -EAGAIN)
            return; /* the header timeout bounds a stalled handshake */
        events |= STREAM_READABLE | STREAM_WRITABLE;
    }
    if (ts->out && (events & (STREAM_WRITABLE | STREAM_HUP)))
        flush_out(ts); /* an error shows in the owner's next call */
    if (ts->write_wants_read && (events & STREAM_READABLE)) {
        ts->write_wants_read = false;
        events |= STREAM_WRITABLE;
    }
    if (ts->base.on_ready)
        ts->base.on_ready(&ts->base, events);
}

int tls_stream_new(tls_gen *gen, eddy_stream *inner, eddy_stream **out)
{
    pthread_once(&bio_once, bio_method_make);
    tls_stream *ts = calloc(1, sizeof(*ts));
    SSL *ssl = bio_method && ts ? SSL_new(gen->ctx[0]) : NULL;
    BIO *bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        free(ts);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, ts);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_accept_state(ssl);
    ts->base.ops = &tls_ops;
    ts->base.loop = inner->loop;
    ts->inner = inner;
    ts->ssl = ssl;
    ts->gen = gen;
    eddy_deferred_init(&ts->tell, tell_owner, ts);
    eddy_timer_init(&ts->close_timer, on_close_timeout, ts);
    inner->owner = ts;
    inner->on_ready = on_inner_ready;
    *out = &ts->base;
    return 0;
}
