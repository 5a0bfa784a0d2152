/* Answering with a file: picks the representation (precompressed copies),
 * evaluates conditionals (304/412), honours ranges (206/416), and sends
 * the body with sendfile. */
#ifndef EDDY_FILES_FILE_RESPONSE_H
#define EDDY_FILES_FILE_RESPONSE_H

#include "files/file_cache.h"
#include "files/static.h"

/* Answers req with the regular file f (rel: its path under the root, for
 * its type and precompressed copies).  status 200 gets the full
 * treatment; any other (an error page) is sent as it is.  Takes f. */
void file_respond(eddy_files *fs, request *req, cached_file *f, const char *rel, int status);

#endif
