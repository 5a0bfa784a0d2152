#ifndef EDDY_FILES_MIME_H
#define EDDY_FILES_MIME_H

/* Content-Type for a file name, by its extension. */
const char *mime_for(const char *name);

#endif
