/* Listening sockets that accept without blocking the loop, under a shared
 * concurrency limit: at the limit they stop accepting and leave new
 * connections waiting in the kernel's backlog (nothing is refused); when a
 * connection ends, accepting resumes.  This is for_each_concurrent(limit). */
#ifndef EDDY_RT_LISTENER_H
#define EDDY_RT_LISTENER_H

#include "rt/loop.h"
#include <stdbool.h>
#include <stdint.h>

/* Kernel backlog for each listening socket. */
#define LISTENER_BACKLOG 4096
/* Connections taken per wake-up before yielding to other work. */
#define LISTENER_ACCEPT_BATCH 64
/* Out of descriptors: wait this long before trying accept again. */
#define LISTENER_EMFILE_RETRY_MS 100
/* TCP_NOTSENT_LOWAT of every accepted socket (inherited from the
 * listener, so it costs no call per connection): a send stops queueing
 * once this many bytes wait unsent, which makes the kernel push a large
 * body while the sending call runs instead of leaving most of it queued
 * for the peer's ACKs to push from the receiver's side.  Measured with a
 * 1 MiB file: the client reads it about 4% faster (interleaved pairs),
 * eddy makes no more calls. */
#define LISTENER_NOTSENT_LOWAT (16 * 1024)

typedef struct listener listener;
typedef struct accept_gate accept_gate;

/* Receives each accepted non-blocking socket, with the data and tag of the
 * listener that took it; it owns fd from then on.  It must call
 * gate_release() once that connection has ended. */
typedef void (*listener_accept_cb)(void *data, void *listener_data, uint32_t tag, int fd);
/* accept() ran out of a resource (err: EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * and accepting waits; then err 0 once it succeeds again.  Once each. */
typedef void (*listener_starved_cb)(void *data, int err);

struct accept_gate {
    eddy_loop *loop;
    unsigned active;   /* connections accepted and not yet released */
    unsigned limit;    /* 0 = none */
    eddy_deferred resume;  /* accepting again once below the limit */
    listener *listeners;
    listener_accept_cb on_accept;
    listener_starved_cb on_starved; /* optional */
    void *data;
    bool starved;      /* the last accept failed for lack of a resource */
    bool reuse_port;   /* listen with SO_REUSEPORT (one listener per worker) */
};

void gate_init(accept_gate *g, eddy_loop *loop, unsigned limit,
               listener_accept_cb on_accept, void *data);
/* One connection ended: accepting resumes if the limit held it back. */
void gate_release(accept_gate *g);
/* Closes every listener of the gate (shutdown). */
void gate_close_all(accept_gate *g);

/* Binds "HOST:PORT" ("[::1]:0", "127.0.0.1:80", ":80") and starts accepting
 * into gate, handing data and tag with each connection.  Writes the bound
 * address as "HOST:PORT" into bound. */
int listener_open(accept_gate *g, const char *host_port, void *data, uint32_t tag, char *bound,
                  size_t bound_len);

/* Accepts into gate from fd, a socket already bound and listening (handed
 * over by systemd or an eddy being upgraded); takes fd unless it fails.
 * Writes its address into bound as listener_open does. */
int listener_adopt(accept_gate *g, int fd, void *data, uint32_t tag, char *bound, size_t bound_len);
/* The gate's listening sockets: how many, the first max of them in fds. */
size_t listener_fds(const accept_gate *g, int *fds, size_t max);

/* Closes the gate's listeners bound to `bound` (as listener_open wrote
 * it); connections they accepted go on.  -ENOENT for none. */
int listener_close_bound(accept_gate *g, const char *bound);
/* Splits "HOST:PORT" / "[V6]:PORT"; host may come back empty.  Exposed for tests. */
int parse_host_port(const char *s, char *host, size_t host_len, char *port, size_t port_len);

#endif
