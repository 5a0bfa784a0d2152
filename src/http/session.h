/* What the server keeps of each client connection, whatever protocol it
 * speaks: a place in its list, and the calls shutdown and free make.  A
 * protocol's connection embeds one and hands it to server_add_session();
 * the server never looks further. */
#ifndef EDDY_HTTP_SESSION_H
#define EDDY_HTTP_SESSION_H

#include <stdbool.h>

typedef struct session session;

typedef struct session_ops {
    /* Shutdown began: requests from now on are answered as the last ones
     * (nothing may be freed here). */
    void (*mark_draining)(session *s);
    /* Close once what is in flight is answered; may free s at once. */
    void (*drain)(session *s);
    /* Close now (the server is being freed); frees s, or leaves it to a
     * handler that still holds a request, out of the server's list. */
    void (*abort)(session *s);
} session_ops;

struct session {
    const session_ops *ops;
    session *prev, *next;
};

#endif
