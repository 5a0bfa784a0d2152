/* Serving files under the server's root. */
#ifndef EDDY_FILES_STATIC_H
#define EDDY_FILES_STATIC_H

#include "http/conn.h"

/* Answers req from the file its path names (the default handler). */
void static_serve(eddy_request *req);

#endif
