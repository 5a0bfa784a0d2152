/* An in-memory stream for tests: input delivered in scripted pieces,
 * output captured, and EAGAIN, short writes, EOF and resets on demand.
 * Readiness is signalled on the loop's next turn, as a socket would be. */
#ifndef EDDY_RT_MOCK_STREAM_H
#define EDDY_RT_MOCK_STREAM_H

#include "rt/stream.h"

typedef struct mock_stream mock_stream;

mock_stream *mock_stream_new(eddy_loop *loop);
eddy_stream *mock_stream_base(mock_stream *m);
/* Frees the mock; its owner must have closed it, and no turn of the loop
 * may run in between if it was not. */
void mock_stream_free(mock_stream *m);

/* Input script.  One read returns at most one piece. */
void mock_push(mock_stream *m, const void *data, size_t len);
void mock_push_str(mock_stream *m, const char *s);
void mock_push_bytewise(mock_stream *m, const char *s); /* one piece per byte */
void mock_push_eagain(mock_stream *m);  /* one read returns -EAGAIN */
void mock_push_eof(mock_stream *m);     /* reads return 0 from here on */
/* The peer's last bytes and its FIN arriving together: told once, with
 * STREAM_RDHUP, as edge-triggered epoll does; reading the bytes brings no
 * further event, so an owner must read on to the EOF by itself. */
void mock_push_last(mock_stream *m, const void *data, size_t len);
void mock_push_reset(mock_stream *m);   /* reads and writes fail with ECONNRESET */

/* Output behaviour. */
void mock_set_write_max(mock_stream *m, size_t max); /* short writes; 0 = no limit */
void mock_block_writes(mock_stream *m, bool blocked); /* -EAGAIN while blocked */
void mock_reset_after(mock_stream *m, size_t bytes);  /* peer resets after taking this much */

/* Says it is TLS (stream_ops.secure, its version "TLSv1.3"), as a TLS
 * stream's plaintext side; before its owner takes it. */
void mock_set_secure(mock_stream *m, bool secure);
/* What a secure mock says ALPN chose ("h2"); proto must outlive the mock. */
void mock_set_alpn(mock_stream *m, const char *proto);

const char *mock_output(const mock_stream *m, size_t *len);
void mock_clear_output(mock_stream *m);
bool mock_closed(const mock_stream *m);
bool mock_write_shut(const mock_stream *m); /* eddy sent FIN (it is lingering) */
bool mock_reset_by_owner(const mock_stream *m); /* eddy closed with RST */
size_t mock_write_calls(const mock_stream *m);
/* Bytes a socket would hold back: written with `more` and not sent along
 * yet by a write without it, a sendfile or a push; and pushes so far. */
size_t mock_held(const mock_stream *m);
size_t mock_pushes(const mock_stream *m);
/* The peer address a mock reports: MOCK_PEER; and how often it was asked. */
#define MOCK_PEER "192.0.2.1"
size_t mock_peer_asks(const mock_stream *m);

#endif
