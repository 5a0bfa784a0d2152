#include "core/access_json.h"

#include <stdio.h>
#include <string.h>

/* Bytes of the well-formed UTF-8 sequence starting s (n bytes left), or 0:
 * overlong forms, surrogates and code points past U+10FFFF are not. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

/* A JSON string of s (null when s is NULL) taking at most max bytes (at
 * least 6): whole characters and escapes only, so a cut leaves it valid. */
static char *put_string(char *p, size_t max, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        memcpy(p, "null", 4);
        return p + 4;
    }
    char *end = p + max - 1; /* the closing quote's place */
    *p++ = '"';
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        char esc[6] = {'\\'};
        const char *out = esc;
        size_t len = 2, used = 1;
        if (*u == '"' || *u == '\\') {
            esc[1] = (char)*u;
        } else if (*u == '\n' || *u == '\r' || *u == '\t') {
            esc[1] = *u == '\n' ? 'n' : *u == '\r' ? 'r' : 't';
        } else if (*u < 0x20 || *u == 0x7f) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*u >> 4];
            esc[5] = hex[*u & 15];
            len = 6;
        } else if (*u < 0x80) {
            out = (const char *)u;
            len = 1;
        } else if ((used = utf8_len(u, n - i)) != 0) {
            out = (const char *)u;
            len = used;
        } else {
            out = "\\ufffd"; /* one per byte that is not UTF-8 */
            len = 6;
            used = 1;
        }
        if ((size_t)(end - p) < len)
            break;
        memcpy(p, out, len);
        p += len;
        i += used;
    }
    *p++ = '"';
    return p;
}

static char *put_raw(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_cstring(char *p, size_t max, const char *s)
{
    return put_string(p, max, s, s ? strlen(s) : 0);
}

size_t access_json_line(char *line, size_t cap, const access_entry *e)
{
    char *p = line;
    p += snprintf(p, 64, "{\"time\":\"%.19s.%03uZ\",\"client\":", e->time_sec, e->time_ms % 1000);
    p = put_cstring(p, 64, e->client);
    p = put_raw(p, ",\"method\":");
    p = put_string(p, ACCESS_JSON_METHOD_MAX, e->method.ptr, e->method.len);
    p = put_raw(p, ",\"path\":");
    p = put_string(p, ACCESS_JSON_PATH_MAX, e->path.ptr, e->path.len);
    p += snprintf(p, 128, ",\"status\":%d,\"bytes\":%lld,\"duration_us\":%llu,\"protocol\":",
                  e->status, (long long)(e->bytes > 0 ? e->bytes : 0),
                  (unsigned long long)e->duration_us);
    p = put_cstring(p, 16, e->protocol);
    p = put_raw(p, ",\"tls\":");
    p = put_cstring(p, 16, e->tls);
    p = put_raw(p, ",\"host\":");
    p = put_string(p, ACCESS_JSON_HOST_MAX, e->host.ptr, e->host.len);
    p = put_raw(p, ",\"referer\":");
    p = put_string(p, ACCESS_JSON_REFERER_MAX, e->referer.ptr, e->referer.len);
    p = put_raw(p, ",\"user_agent\":");
    /* What is left, but for the closing "}\n". */
    p = put_string(p, (size_t)(line + cap - 2 - p), e->user_agent.ptr, e->user_agent.len);
    *p++ = '}';
    *p++ = '\n';
    return (size_t)(p - line);
}
