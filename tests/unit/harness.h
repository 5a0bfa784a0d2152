/* Shared set-up for unit tests: a loop on a virtual clock, a server over a
 * temporary root, and connections on mock streams. */
#ifndef EDDY_TEST_HARNESS_H
#define EDDY_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include "eddy.h"
#include "http/server.h"
#include "rt/loop.h"
#include "rt/mock_stream.h"

/* Body of the test root's index.html and 404.html. */
#define FX_INDEX "<p>hello</p>\n"
#define FX_404 "<p>nothing here</p>\n"

typedef struct fixture {
    eddy_loop *loop;
    eddy_server *srv;
    eddy_files *files;     /* serving root, routed at the prefix "/" */
    char root[64];
} fixture;

fixture *fx_new(const eddy_config *cfg);
/* The same with no file server routed: only the routes a test adds. */
fixture *fx_new_without_files(const eddy_config *cfg);
void fx_free(fixture *fx);
/* Routes the exact path to h (with the whole body when body). */
void fx_route(fixture *fx, const char *path, eddy_handler h, void *data, bool body);
/* A connection over a fresh mock stream. */
mock_stream *fx_connect(fixture *fx);
/* Runs the loop until nothing is due at the current virtual time. */
void fx_run(fixture *fx);
void fx_advance(fixture *fx, uint64_t ms);
/* Writes a file under the root. */
void fx_write_file(fixture *fx, const char *name, const char *data, size_t len);

/* Sends raw bytes on a fresh connection, runs the loop, and returns all
 * the connection wrote (caller frees); *closed tells if eddy closed it. */
char *fx_exchange(fixture *fx, const char *bytes, bool *closed);
/* The same, with the bytes delivered one at a time. */
char *fx_exchange_bytewise(fixture *fx, const char *bytes, bool *closed);

/* The mock's output as a NUL-terminated copy (caller frees). */
char *fx_output(mock_stream *m);
/* True once eddy ended its side: closed, or sent FIN and lingers. */
bool mock_ended(const mock_stream *m);
/* Asserts both occur in out, first before second (answers in order). */
void assert_before(const char *out, const char *first, const char *second);
/* Occurrences of needle in haystack. */
int count_of(const char *haystack, const char *needle);
/* A blocking TCP client socket connected to bound ("127.0.0.1:PORT"). */
int connect_tcp(const char *bound);

#endif
