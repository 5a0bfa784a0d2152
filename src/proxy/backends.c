/* Where a proxy's requests go: its backends' addresses (names resolved
 * once, when the proxy is made, never on a serving loop), which one takes
 * the next request, and which are skipped for failing. */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t err_len, int rc, const char *fmt, const char *a, const char *b)
{
    snprintf(err, err_len, fmt, a, b);
    return rc;
}

static int add_backend(eddy_proxy *px, const char *url, char *err, size_t err_len)
{
    if (px->nbackends == PROXY_MAX_BACKENDS)
        return fail(err, err_len, -EINVAL, "more than %s backends (with %s)", "64", url);
    backend *be = &px->backends[px->nbackends];
    memset(be, 0, sizeof(*be));
    return 0;
}

/* "unix:/PATH" */
static int add_unix(eddy_proxy *px, const char *url, char *err, size_t err_len)
{
    const char *path = url + 5;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path))
        return fail(err, err_len, -EINVAL,
                    "backend '%s': a unix socket's path is absolute and at most 107 bytes%s", url,
                    "");
    int rc = add_backend(px, url, err, err_len);
    if (rc < 0)
        return rc;
    backend *be = &px->backends[px->nbackends++];
    memcpy(sun.sun_path, path, strlen(path) + 1);
    memcpy(&be->addr, &sun, sizeof(sun));
    be->addr_len = (socklen_t)sizeof(sun);
    snprintf(be->name, sizeof(be->name), "%s", url);
    snprintf(be->authority, sizeof(be->authority), "localhost");
    return 0;
}

/* "http://HOST[:PORT]": every address HOST has is a backend. */
static int add_http(eddy_proxy *px, const char *url, char *err, size_t err_len)
{
    const char *hp = url + 7, *end = hp + strlen(hp);
    if (end > hp && end[-1] == '/')
        end--; /* "http://host:port/" is the same as without the slash */
    char host[256], port[8] = "80";
    const char *h = hp, *h_end, *p = NULL;
    if (*h == '[') {
        h_end = memchr(h, ']', (size_t)(end - h));
        if (!h_end)
            return fail(err, err_len, -EINVAL, "backend '%s': an IPv6 address lacks its ']'%s", url, "");
        h++;
        p = h_end + 1 < end && h_end[1] == ':' ? h_end + 2 : NULL;
        if (!p && h_end + 1 != end)
            return fail(err, err_len, -EINVAL, "backend '%s': ':PORT' or nothing follows ']'%s",
                        url, "");
    } else {
        h_end = memchr(h, ':', (size_t)(end - h));
        if (h_end)
            p = h_end + 1;
        else
            h_end = end;
    }
    size_t hl = (size_t)(h_end - h);
    if (hl == 0 || hl >= sizeof(host))
        return fail(err, err_len, -EINVAL, "backend '%s' names no host%s", url, "");
    memcpy(host, h, hl);
    host[hl] = 0;
    for (size_t i = 0; i < hl; i++)
        if (host[i] == '/' || host[i] == '?' || host[i] == '#' || host[i] == '@' ||
            (unsigned char)host[i] <= ' ')
            return fail(err, err_len, -EINVAL,
                        "backend '%s': a backend is http://HOST[:PORT], without a path%s", url, "");
    if (p) {
        size_t pl = (size_t)(end - p);
        unsigned long v = 0;
        for (size_t i = 0; i < pl; i++) {
            if (p[i] < '0' || p[i] > '9')
                return fail(err, err_len, -EINVAL,
                            "backend '%s': a backend is http://HOST[:PORT], without a path%s", url,
                            "");
            v = v * 10 + (unsigned long)(p[i] - '0');
            if (v > 65535)
                break;
        }
        if (pl == 0 || v == 0 || v > 65535)
            return fail(err, err_len, -EINVAL, "backend '%s': the port is 1 to 65535%s", url, "");
        snprintf(port, sizeof(port), "%lu", v);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return fail(err, err_len, gai == EAI_MEMORY ? -ENOMEM : -ENOENT,
                    "backend '%s': cannot resolve the host: %s", url, gai_strerror(gai));
    int rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        bool dup = false; /* some resolvers repeat an address */
        for (unsigned i = 0; i < px->nbackends; i++)
            dup |= px->backends[i].addr_len == ai->ai_addrlen &&
                   memcmp(&px->backends[i].addr, ai->ai_addr, ai->ai_addrlen) == 0;
        if (dup || (rc = add_backend(px, url, err, err_len)) < 0)
            continue;
        backend *be = &px->backends[px->nbackends++];
        memcpy(&be->addr, ai->ai_addr, ai->ai_addrlen);
        be->addr_len = ai->ai_addrlen;
        char text[INET6_ADDRSTRLEN];
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, a, text, sizeof(text));
        snprintf(be->name, sizeof(be->name), ai->ai_family == AF_INET ? "%s:%s" : "[%s]:%s", text,
                 port);
        /* Host as the URL wrote it; the port only when not 80. */
        bool v6 = strchr(host, ':') != NULL;
        snprintf(be->authority, sizeof(be->authority), "%s%s%s%s%s", v6 ? "[" : "", host,
                 v6 ? "]" : "", strcmp(port, "80") ? ":" : "", strcmp(port, "80") ? port : "");
    }
    freeaddrinfo(res);
    return rc;
}

/* "10.0.0.0/8", "::1", "192.0.2.7" */
static int add_trusted(eddy_proxy *px, const char *text, char *err, size_t err_len)
{
    if (px->ntrusted == PROXY_MAX_TRUSTED)
        return fail(err, err_len, -EINVAL, "more than %s trusted addresses (with %s)", "64", text);
    if (net_block_parse(text, &px->trusted[px->ntrusted]) < 0)
        return fail(err, err_len, -EINVAL,
                    "'%s' is not an address or a block (like 10.0.0.0/8 or ::1)%s", text, "");
    px->ntrusted++;
    return 0;
}

int backends_init(eddy_proxy *px, const eddy_proxy_config *cfg, char *err, size_t err_len)
{
    if (!cfg->nbackends || !cfg->backends)
        return fail(err, err_len, -EINVAL, "a proxy needs at least one backend%s%s", "", "");
    px->backends = calloc(PROXY_MAX_BACKENDS, sizeof(*px->backends));
    if (!px->backends)
        return fail(err, err_len, -ENOMEM, "out of memory%s%s", "", "");
    for (unsigned i = 0; i < cfg->nbackends; i++) {
        const char *url = cfg->backends[i];
        int rc;
        if (!url)
            return fail(err, err_len, -EINVAL, "a backend is missing%s%s", "", "");
        if (strncmp(url, "unix:", 5) == 0)
            rc = add_unix(px, url, err, err_len);
        else if (strncmp(url, "http://", 7) == 0)
            rc = add_http(px, url, err, err_len);
        else if (strncmp(url, "https://", 8) == 0)
            rc = fail(err, err_len, -EINVAL,
                      "backend '%s': eddy speaks plain HTTP to backends (http://HOST[:PORT])%s",
                      url, "");
        else
            rc = fail(err, err_len, -EINVAL,
                      "backend '%s' is neither http://HOST[:PORT] nor unix:/PATH%s", url, "");
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < cfg->ntrusted; i++) {
        int rc = cfg->trusted[i] ? add_trusted(px, cfg->trusted[i], err, err_len)
                                 : fail(err, err_len, -EINVAL, "a trusted address is missing%s%s",
                                        "", "");
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool usable(const eddy_proxy *px, const backend *be, uint64_t now)
{
    return !be->check_failed && be->down_until <= now;
}

backend *backend_pick(eddy_proxy *px, uint64_t tried, bool *all_down)
{
    uint64_t now = eddy_loop_now(px->loop);
    backend *best = NULL;
    unsigned n = px->nbackends;
    bool skipped_other = false, any_untried = false;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (px->next + k) % n;
        backend *be = &px->backends[i];
        if (tried & (UINT64_C(1) << i))
            continue;
        any_untried = true;
        if (!usable(px, be, now))
            continue;
        if (px->max_conns && be->conns >= px->max_conns && !be->nidle) {
            skipped_other = true;
            continue;
        }
        if (px->balance == EDDY_BALANCE_ROUND_ROBIN) {
            best = be;
            break;
        }
        if (!best || be->active < best->active)
            best = be;
    }
    if (best && px->balance == EDDY_BALANCE_ROUND_ROBIN)
        px->next = (unsigned)(best - px->backends + 1) % n;
    else if (best)
        px->next = (px->next + 1) % n; /* ties go round */
    *all_down = !best && any_untried && !skipped_other;
    return best;
}

void backend_failed(eddy_proxy *px, backend *be)
{
    if (++be->fails >= px->max_fails) {
        be->down_until = eddy_loop_now(px->loop) + px->fail_ms;
        be->fails = 0;
    }
}

void backend_ok(backend *be) { be->fails = 0; }

bool proxy_trusts(const eddy_proxy *px, const char *peer)
{
    return net_block_match(px->trusted, px->ntrusted, peer);
}
