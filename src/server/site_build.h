/* Turns the options (a configuration file's sites, or the one site the
 * flags make) into one worker's set of sites, through the public API as
 * an embedding program would: a file server per `files` path (each loop
 * keeps its own, unlocked), a proxy per `proxy` path and --proxy (each
 * loop keeps its own connections), and the redirect and respond
 * handlers. */
#ifndef EDDY_SERVER_SITE_BUILD_H
#define EDDY_SERVER_SITE_BUILD_H

#include "server/cli.h"

/* A set of sites for loop, or NULL after writing one line to err (with
 * FILE:LINE:COL when the file said what failed). */
eddy_sites *site_build(eddy_loop *loop, const cli_options *opt, char *err, size_t err_len);

#endif
