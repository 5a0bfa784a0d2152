/* The delay route (--delay PATH=SECONDS): answers as "/" does, but only
 * after SECONDS, from a timer.  Built only on the public API, exactly as an
 * embedding program would write it; while it waits, everything else is
 * served at full speed. */
#ifndef EDDY_SERVER_DELAY_H
#define EDDY_SERVER_DELAY_H

#include "eddy.h"

typedef struct delay_route {
    char *path;
    uint64_t ms;
} delay_route;

/* Parses "PATH=SECONDS" (SECONDS may have a fraction: 0.25). */
int delay_parse(const char *spec, delay_route *out);
/* A delay route as one worker serves it: answered from its file server. */
typedef struct delay_binding {
    const delay_route *route;
    eddy_files *files;
} delay_binding;

/* Routes b->route->path (exact, any method) to the delay handler; b must
 * live as long as the site. */
int delay_register(eddy_site *site, delay_binding *b);

#endif
