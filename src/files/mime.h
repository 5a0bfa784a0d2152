/* Content-Type by file name: a table loaded once per server from a
 * mime.types file, over built-in types for the formats every site uses. */
#ifndef EDDY_FILES_MIME_H
#define EDDY_FILES_MIME_H

typedef struct mime_table mime_table;

/* Loads extension->type pairs from a mime.types file (Debian's media-types
 * format: "type ext1 ext2 ...", '#' starts a comment; when an extension is
 * listed twice the later line wins, as in nginx and Apache).  On any
 * failure to read it (absent, unreadable, a directory) the table holds only
 * the built-in types.  NULL only when out of memory.
 *
 * The web essentials (html, js, css, svg, json, wasm, the image and font
 * formats, txt, pdf, xml, map) always keep their built-in types, so a
 * distribution's odd mapping cannot break a site.  A few more built-ins
 * (media, archives, manifests) are used only when the file lacks them. */
mime_table *mime_table_load(const char *path);
void mime_table_free(mime_table *t);

/* The Content-Type for a file name (a path is fine: its last segment is
 * used), by its last extension, case-insensitive; "application/octet-stream"
 * when unknown or when there is no extension (".htaccess" has none).
 * text/ types and application/javascript, json, xml and manifest+json carry
 * "; charset=utf-8".  The string lives as long as the table.  A NULL table
 * means the built-in types alone. */
const char *mime_table_lookup(const mime_table *t, const char *name);

#endif
