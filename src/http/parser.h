/* llhttp glue: fills a connection's request from the bytes llhttp
 * walks over, as offsets into the request head (no copies), and pauses at
 * the end of each message so requests are answered one at a time. */
#ifndef EDDY_HTTP_PARSER_H
#define EDDY_HTTP_PARSER_H

#include "http/conn.h"

void parser_settings_init(llhttp_settings_t *s);
void parser_start(conn *c);
/* The status answering a parse error (400, 413, 414, 431, 505...). */
int parser_error_status(const conn *c);

#endif
