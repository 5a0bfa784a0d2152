/* libFuzzer target: the configuration file (src/server/config.c, with the
 * flags' code it sets top-level keys through, src/server/cli.c).
 *
 * The input is a whole file, loaded by config_load_text into options set
 * up as cli_parse sets them.  Checked on every input:
 *  - the error count is >= 0, and the loader wrote nothing exactly when it
 *    is 0; it wrote one "NAME:LINE:COL: message" line per error up to
 *    CONFIG_MAX_ERRORS, then one line saying the rest are not shown, and
 *    nothing else (a value quoted in a message never splits it); LINE is
 *    within the input.  (The file's name has a byte, 0xff, no YAML scalar
 *    can hold, so a value echoed in a message cannot pass for an error
 *    line.)
 *  - config_free and cli_free release everything (libFuzzer's leak check).
 * On a file with no error, what the loader promises of its model:
 *  - sites: at most CONFIG_MAX_SITES, at most one default; names are host
 *    names eddy takes, none twice across the file (without case or
 *    trailing dot); acme only with names, none a wildcard;
 *  - paths: begin with '/', one line, none twice in a site; files has a
 *    root and file-name index entries; a redirect has a target and a 3xx
 *    redirect status; respond a status from 200 to 599 and body_len the
 *    body's length; a proxy 1 to CONFIG_MAX_BACKENDS backends of its two
 *    schemes, at most CONFIG_MAX_TRUSTED trusted addresses, its enums,
 *    keepalive, max-fails and timeouts within their bounds, a health path
 *    beginning with '/' (and an interval only with one);
 *  - header rules: at most CONFIG_MAX_HEADER_RULES each, every one taken
 *    by eddy_site_header; no-match is 0, 404 or 421, and only with sites
 *    and no default; no key of the one site of flags beside sites;
 * and then cli_parse reads the same bytes (a memfd, as -c FILE) and must
 * agree: no error from the file itself (only its checks across keys may
 * refuse it), the same sites, and, when it accepts, the sites' tls pairs
 * in the server's list. */
#include "fuzz_support.h"

#include "server/cli.h"
#include "server/config.h"

#include <sys/mman.h>

/* No YAML scalar holds a raw 0xff byte (values are UTF-8). */
#define FZ_NAME "c\xff"
#define FZ_NAME_LEN 2

static void fresh(cli_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->files.root = "www";
    opt->shutdown_ms = CLI_DEFAULT_SHUTDOWN_MS;
}

/* ------------------------------------------------------- the error lines -- */

static void check_errors(const uint8_t *data, size_t size, int n, const char *out, size_t out_len)
{
    FZ_CHECK(n >= 0, "error count %d", n);
    FZ_CHECK((n == 0) == (out_len == 0), "%d errors, %zu bytes written:\n%.*s", n, out_len,
             (int)out_len, out);
    if (n == 0)
        return;
    FZ_CHECK(out[out_len - 1] == '\n', "errors not ended by a newline");
    FZ_CHECK(strlen(out) == out_len, "a NUL byte in the errors");
    if (size > CONFIG_MAX_BYTES)
        FZ_CHECK(n == 1, "an oversized input gave %d errors", n);
    /* Line breaks as YAML 1.1 has them: CR LF, CR, LF, NEL, LS, PS. */
    unsigned input_lines = 1;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
            i++;
        if (data[i] == '\r' || data[i] == '\n')
            input_lines++;
        else if (data[i] == 0xc2 && i + 1 < size && data[i + 1] == 0x85)
            input_lines++, i++;
        else if (data[i] == 0xe2 && i + 2 < size && data[i + 1] == 0x80 &&
                 (data[i + 2] == 0xa8 || data[i + 2] == 0xa9))
            input_lines++, i += 2;
    }
    int want = n <= CONFIG_MAX_ERRORS ? n : CONFIG_MAX_ERRORS + 1;
    int real = 0;
    for (const char *line = out; line < out + out_len; line = strchr(line, '\n') + 1) {
        FZ_CHECK(strncmp(line, FZ_NAME ":", FZ_NAME_LEN + 1) == 0, "a line not an error's: %.*s",
                 (int)(strchr(line, '\n') - line), line);
        real++;
        const char *p = line + FZ_NAME_LEN + 1;
        if (*p == ' ')
            continue; /* about the whole file: too large, too many errors */
        char *end;
        unsigned long l = strtoul(p, &end, 10);
        FZ_CHECK(end != p && *end == ':', "no LINE in: %.*s", (int)(strchr(line, '\n') - line), line);
        p = end + 1;
        unsigned long col = strtoul(p, &end, 10);
        FZ_CHECK(end != p && end[0] == ':' && end[1] == ' ', "no COL in: %.*s",
                 (int)(strchr(line, '\n') - line), line);
        /* libyaml may point one line past the last (the end of the stream). */
        FZ_CHECK(l >= 1 && l <= input_lines + 1, "line %lu of a %u-line input", l, input_lines);
        FZ_CHECK(col >= 1 && col <= size + 1, "column %lu of a %zu-byte input", col, size);
    }
    FZ_CHECK(real == want, "%d errors counted, %d lines written (want %d):\n%s", n, real, want, out);
}

/* ------------------------------------------------------------- the model -- */

/* A host name as sites compare them: lowercase, no trailing dot. */
static void host_key(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    for (; name[n] && n + 1 < cap; n++)
        out[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = 0;
}

static bool one_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Every rule is one the core takes (a scratch site per rule: no bound). */
static void check_rules(const conf_rules *r)
{
    FZ_CHECK(r->nheaders <= CONFIG_MAX_HEADER_RULES, "%u header rules", r->nheaders);
    FZ_CHECK(r->send_ms <= CONFIG_MAX_TIMEOUT_S * 1000 && r->body_ms <= CONFIG_MAX_TIMEOUT_S * 1000,
             "timeouts %u and %u ms", r->send_ms, r->body_ms);
    for (unsigned i = 0; i < r->nheaders; i++) {
        eddy_sites *set = eddy_sites_new();
        eddy_site *s = set ? eddy_sites_add(set) : NULL;
        FZ_SETUP(s);
        int rc = eddy_site_header(s, NULL, r->headers[i].op, r->headers[i].field);
        FZ_CHECK(rc == 0, "header rule '%s' (op %d) refused by the core: %d", r->headers[i].field,
                 r->headers[i].op, rc);
        eddy_sites_free(set);
    }
}

static void check_path(const conf_site *s, unsigned at)
{
    const conf_path *p = &s->paths[at];
    FZ_CHECK(p->path && p->path[0] == '/' && one_line(p->path), "path '%s'",
             p->path ? p->path : "(none)");
    for (unsigned j = 0; j < at; j++)
        FZ_CHECK(strcmp(s->paths[j].path, p->path) != 0, "path %s twice", p->path);
    switch (p->handler) {
    case CONF_FILES:
        FZ_CHECK(p->files.root, "files without a root at %s", p->path);
        FZ_CHECK(p->files.nindex <= CLI_MAX_INDEX, "%u index names", p->files.nindex);
        for (unsigned i = 0; i < p->files.nindex; i++) {
            const char *x = p->files.index[i];
            FZ_CHECK(*x && !strchr(x, '/') && strcmp(x, ".") && strcmp(x, ".."), "index '%s'", x);
        }
        FZ_CHECK(!p->files.cache_control || one_line(p->files.cache_control), "cache-control");
        break;
    case CONF_REDIRECT:
        FZ_CHECK(p->to && *p->to && one_line(p->to), "redirect target at %s", p->path);
        FZ_CHECK(p->status == 301 || p->status == 302 || p->status == 303 || p->status == 307 ||
                     p->status == 308,
                 "redirect status %d", p->status);
        break;
    case CONF_RESPOND:
        FZ_CHECK(p->status >= 200 && p->status <= 599, "respond status %d", p->status);
        FZ_CHECK(p->body_len == (p->body ? strlen(p->body) : 0), "body_len %zu", p->body_len);
        FZ_CHECK(!p->type || one_line(p->type), "respond type");
        break;
    case CONF_PROXY: {
        const eddy_proxy_config *x = &p->proxy;
        FZ_CHECK(x->nbackends >= 1 && x->nbackends <= CONFIG_MAX_BACKENDS, "%u backends at %s",
                 x->nbackends, p->path);
        for (unsigned i = 0; i < x->nbackends; i++)
            FZ_CHECK(cli_backend_url(x->backends[i]) && one_line(x->backends[i]), "backend '%s'",
                     x->backends[i]);
        FZ_CHECK(x->ntrusted <= CONFIG_MAX_TRUSTED, "%u trusted", x->ntrusted);
        for (unsigned i = 0; i < x->ntrusted; i++)
            FZ_CHECK(x->trusted[i] && *x->trusted[i], "trusted %u", i);
        FZ_CHECK(x->balance == EDDY_BALANCE_ROUND_ROBIN || x->balance == EDDY_BALANCE_LEAST_CONN,
                 "balance %d", (int)x->balance);
        FZ_CHECK((unsigned)x->forwarded <= EDDY_FORWARDED_NONE, "forwarded %d", (int)x->forwarded);
        FZ_CHECK(x->keepalive <= CONFIG_MAX_PROXY_KEEPALIVE && !(x->keepalive && x->no_keepalive),
                 "keepalive %u, off %d", x->keepalive, x->no_keepalive);
        FZ_CHECK(x->max_fails <= CONFIG_MAX_PROXY_FAILS, "max-fails %u", x->max_fails);
        unsigned ms[] = {x->idle_ms, x->connect_ms, x->first_byte_ms, x->read_ms,
                         x->tunnel_ms, x->fail_ms, x->health_ms};
        for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
            FZ_CHECK(ms[i] <= CONFIG_MAX_TIMEOUT_S * 1000, "a proxy timeout of %u ms", ms[i]);
        FZ_CHECK(!x->health_path || (x->health_path[0] == '/' && one_line(x->health_path)),
                 "health '%s'", x->health_path);
        FZ_CHECK(!x->health_ms || x->health_path, "health-interval without health");
        FZ_CHECK(!x->host || (*x->host && one_line(x->host)), "host");
        FZ_CHECK(!x->strip_prefix, "strip_prefix set before site_build");
        break;
    }
    case CONF_NO_HANDLER:
        break;
    default:
        FZ_CHECK(false, "handler %d", (int)p->handler);
    }
    check_rules(&p->rules);
}

static void check_model(const cli_options *opt)
{
    const conf *c = &opt->conf;
    FZ_CHECK(c->nsites <= CONFIG_MAX_SITES, "%u sites", c->nsites);
    FZ_CHECK(c->has_sites || c->nsites == 0, "sites without has_sites");
    FZ_CHECK(!c->has_sites || !opt->site_option, "%s beside sites", opt->site_option);
    FZ_CHECK(c->no_match == 0 || c->no_match == 404 || c->no_match == 421, "no-match %d",
             c->no_match);
    /* The proxy key: routes of the one site, as --proxy makes them. */
    FZ_CHECK(opt->nproxies <= CLI_MAX_PROXIES, "%u proxies", opt->nproxies);
    for (unsigned i = 0; i < opt->nproxies; i++) {
        const cli_proxy *x = &opt->proxies[i];
        FZ_CHECK(x->path[0] == '/' && one_line(x->path), "proxy path '%s'", x->path);
        FZ_CHECK(x->nbackends >= 1 && x->nbackends <= CONFIG_MAX_BACKENDS, "%u backends",
                 x->nbackends);
        for (unsigned j = 0; j < x->nbackends; j++)
            FZ_CHECK(cli_backend_url(x->backends[j]) && !strchr(x->backends[j], ','),
                     "backend '%s'", x->backends[j]);
        for (unsigned j = 0; j < i; j++)
            FZ_CHECK(strcmp(opt->proxies[j].path, x->path) != 0, "proxy path %s twice", x->path);
    }
    unsigned defaults = 0;
    eddy_sites *scratch = eddy_sites_new();
    eddy_site *names_site = scratch ? eddy_sites_add(scratch) : NULL;
    FZ_SETUP(names_site);
    for (unsigned i = 0; i < c->nsites; i++) {
        const conf_site *s = &c->sites[i];
        defaults += s->is_default;
        FZ_CHECK(s->nnames || s->is_default || s->nlisten, "a site nothing can reach");
        FZ_CHECK(s->nnames <= CONFIG_MAX_NAMES, "%u names", s->nnames);
        FZ_CHECK(!s->acme || s->nnames > 0, "acme without names");
        for (unsigned j = 0; j < s->nnames; j++) {
            const char *name = s->names[j];
            FZ_CHECK(!s->acme || name[0] != '*', "acme for %s", name);
            FZ_CHECK(eddy_site_name(names_site, name) == 0, "name '%s' refused by the core", name);
            char k[300], other[300];
            host_key(name, k, sizeof(k));
            for (unsigned i2 = 0; i2 <= i; i2++)
                for (unsigned j2 = 0; j2 < (i2 == i ? j : c->sites[i2].nnames); j2++) {
                    host_key(c->sites[i2].names[j2], other, sizeof(other));
                    FZ_CHECK(strcmp(k, other) != 0, "host %s twice", name);
                }
        }
        for (unsigned j = 0; j < s->ncerts; j++)
            FZ_CHECK(s->certs[j] && s->keys[j], "a tls pair without both files");
        FZ_CHECK(s->npaths <= CONFIG_MAX_PATHS, "%u paths", s->npaths);
        for (unsigned j = 0; j < s->npaths; j++)
            check_path(s, j);
        check_rules(&s->rules);
    }
    eddy_sites_free(scratch);
    FZ_CHECK(defaults <= 1, "%u default sites", defaults);
    FZ_CHECK(!c->no_match || (c->has_sites && defaults == 0), "no-match %d with %s", c->no_match,
             c->has_sites ? "a default site" : "no sites");
}

/* ------------------------------------------------------------- cli_parse -- */

static int memfd = -1;
static char memfd_path[64];

/* The same bytes through cli_parse -c, which adds its checks across keys. */
static void check_cli_parse(const uint8_t *data, size_t size, const cli_options *loaded)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
        FZ_SETUP(memfd >= 0);
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    }
    FZ_SETUP(ftruncate(memfd, 0) == 0);
    FZ_SETUP(size == 0 || pwrite(memfd, data, size, 0) == (ssize_t)size);
    char *argv[] = {"eddy", "-c", memfd_path, NULL};
    cli_options opt;
    char err[512] = "";
    int rc = cli_parse(3, argv, &opt, err, sizeof(err));
    if (rc < 0) {
        /* The file loaded without error: only a check across keys refuses. */
        const char *tail = strrchr(err, ' ');
        FZ_CHECK(!(tail && (strcmp(tail, " error") == 0 || strcmp(tail, " errors") == 0)) &&
                     strncmp(err, "cannot use configuration file", 29) != 0,
                 "cli_parse found errors the loader did not: %s", err);
    } else {
        FZ_CHECK(opt.nlisten + opt.nlisten_tls > 0, "no address");
        FZ_CHECK(opt.workers >= 1 && opt.workers <= CLI_MAX_WORKERS, "%u workers", opt.workers);
        FZ_CHECK(opt.ncerts == opt.nkeys && opt.tls.npairs == opt.ncerts, "%u certs, %u keys",
                 opt.ncerts, opt.nkeys);
        unsigned site_pairs = 0;
        for (unsigned i = 0; i < opt.conf.nsites; i++)
            site_pairs += opt.conf.sites[i].ncerts;
        FZ_CHECK(opt.ncerts >= site_pairs, "%u certs for %u site pairs", opt.ncerts, site_pairs);
    }
    /* The same file, the same model. */
    FZ_CHECK(opt.conf.nsites == loaded->conf.nsites, "%u sites, then %u", loaded->conf.nsites,
             opt.conf.nsites);
    for (unsigned i = 0; i < opt.conf.nsites; i++) {
        FZ_CHECK(opt.conf.sites[i].nnames == loaded->conf.sites[i].nnames, "site %u's names", i);
        FZ_CHECK(opt.conf.sites[i].npaths == loaded->conf.sites[i].npaths, "site %u's paths", i);
    }
    cli_free(&opt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_options opt;
    fresh(&opt);
    char *out = NULL;
    size_t out_len = 0;
    FILE *errs = open_memstream(&out, &out_len);
    FZ_SETUP(errs);
    int n = config_load_text(FZ_NAME, (const char *)data, size, &opt, &opt.conf, errs);
    fclose(errs);
    check_errors(data, size, n, out, out_len);
    free(out);
    if (n == 0) {
        check_model(&opt);
        check_cli_parse(data, size, &opt);
    }
    cli_free(&opt); /* config_free, and the delay routes' paths */
    return 0;
}
