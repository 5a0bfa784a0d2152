/* The configuration file (src/server/config.c): every key of every mapping
 * lands in the model or in the options as its flag would set them (the
 * --proxy flag's checks too, and site_build making the proxies); every
 * mistake is one "NAME:LINE:COL: message" line, counted; hostile files
 * (alias bombs, NUL bytes, huge inputs) are refused without harm; and
 * config_free releases it all (the ASan build checks for leaks). */
#include "harness.h"

#include "server/cli.h"
#include "server/config.h"
#include "server/site_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NAME "cfg.yaml"

/* ----------------------------------------------------------------- helpers -- */

/* Options as cli_parse starts them, before it reads the file. */
static void fresh(cli_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->files.root = "www";
    opt->shutdown_ms = CLI_DEFAULT_SHUTDOWN_MS;
}

/* Loads len bytes of text into opt; returns what the loader wrote (caller
 * frees) and its error count in *n. */
static char *load_n(const char *text, size_t len, cli_options *opt, int *n)
{
    char *out = NULL;
    size_t out_len = 0;
    FILE *errs = open_memstream(&out, &out_len);
    assert_non_null(errs);
    *n = config_load_text(NAME, text, len, opt, &opt->conf, errs);
    fclose(errs);
    return out;
}

static char *load(const char *text, cli_options *opt, int *n)
{
    return load_n(text, strlen(text), opt, n);
}

static int lines_in(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A good file: no error, nothing written. */
static void load_ok(const char *text, cli_options *opt)
{
    fresh(opt);
    int n;
    char *out = load(text, opt, &n);
    if (n != 0 || *out)
        fail_msg("wanted no error for:\n%s\ngot %d:\n%s", text, n, out);
    free(out);
}

/* The loader writes exactly want (one line per error) and counts them. */
static void expect_errors_n(const char *text, size_t len, const char *want)
{
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load_n(text, len, &opt, &n);
    if (strcmp(out, want) != 0)
        fail_msg("for:\n%s\nwanted:\n%sgot:\n%s", text, want, out);
    if (n != lines_in(want))
        fail_msg("for:\n%s\nwanted %d errors, got %d", text, lines_in(want), n);
    free(out);
    cli_free(&opt);
}

static void expect_errors(const char *text, const char *want)
{
    expect_errors_n(text, strlen(text), want);
}

/* A site with one path /p whose mapping ends with the given line(s). */
#define SITE_PATH(extra) "sites:\n  - names: a.test\n    paths:\n      - path: /p\n" extra

/* A temporary file holding text; the caller unlinks it. */
static void temp_file(char *path, size_t cap, const char *text, size_t len)
{
    snprintf(path, cap, "/tmp/eddy-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* ------------------------------------------------------- keys into model -- */

static const char every_key[] =
    "# every key of every mapping\n"
    "listen: [127.0.0.1:8080, \"[::1]:8081\"]\n"
    "listen-tls: 127.0.0.1:8443\n"
    "no-http2: true\n"
    "no-io-uring: false\n"
    "max-body: 5000\n"
    "header-timeout: 2.5\n"
    "header: \"X-Top: yes\"\n"
    "tls-min: \"1.3\"\n"
    "no-match: 404\n"
    "sites:\n"
    "  - names: [a.test, \"*.b.test\"]\n"
    "    default: false\n"
    "    acme: false\n"
    "    tls:\n"
    "      - cert: a.pem\n"
    "        key: a.key\n"
    "      - {cert: b.pem, key: b.key}\n"
    "    headers:\n"
    "      set: {X-Frame-Options: DENY}\n"
    "      add: {Link: [\"</a>; rel=preload\", \"</b>; rel=preload\"], X-One: \"1\"}\n"
    "      remove: Server-Timing\n"
    "    limits: {max-body: 1000, send-timeout: 2.5, body-timeout: 0.0001}\n"
    "    paths:\n"
    "      - path: /\n"
    "        files:\n"
    "          root: /srv/a\n"
    "          dotfiles: true\n"
    "          autoindex: true\n"
    "          index: [index.html, index.htm]\n"
    "          cache-control: max-age=60\n"
    "          precompressed: false\n"
    "          mime-types: /etc/mime.types\n"
    "      - path: /old\n"
    "        redirect: {to: \"https://a.test/new\", status: 301, append-path: true}\n"
    "      - path: /health\n"
    "        respond: {status: 204, body: \"ok\\n\", type: text/plain}\n"
    "        headers:\n"
    "          remove: [X-Frame-Options, Link]\n"
    "        limits: {max-body: 10}\n"
    "      - path: /rules-only\n"
    "        headers: {set: {Cache-Control: no-store}}\n"
    "  - names: c.test\n"
    "    acme: true\n"
    "    listen: 127.0.0.1:8443\n";

static void assert_header(const conf_header *h, enum eddy_header_op op, const char *field)
{
    assert_int_equal(h->op, op);
    assert_string_equal(h->field, field);
}

static void every_key_lands_in_the_model(void **state)
{
    (void)state;
    cli_options opt;
    load_ok(every_key, &opt);

    /* Top-level keys: the flags' fields, as cli_set put them. */
    assert_int_equal(opt.nlisten, 2);
    assert_string_equal(opt.listen[0], "127.0.0.1:8080");
    assert_string_equal(opt.listen[1], "[::1]:8081");
    assert_int_equal(opt.nlisten_tls, 1); /* a list key given one value */
    assert_string_equal(opt.listen_tls[0], "127.0.0.1:8443");
    assert_true(opt.config.no_http2);
    assert_false(opt.no_io_uring);
    assert_int_equal(opt.config.max_body, 5000);
    assert_int_equal(opt.config.header_ms, 2500);
    assert_int_equal(opt.config.nresponse_fields, 1);
    assert_string_equal(opt.config.response_fields[0], "X-Top: yes");
    assert_int_equal(opt.tls.min_version, 13);
    assert_null(opt.site_option); /* no key of the one site of flags */
    assert_string_equal(opt.files.root, "www");

    conf *c = &opt.conf;
    assert_string_equal(c->file, NAME);
    assert_true(c->has_sites);
    assert_int_equal(c->no_match, 404);
    assert_int_equal(c->nsites, 2);

    conf_site *a = &c->sites[0];
    assert_int_equal(a->mark.line, 12);
    assert_int_equal(a->mark.col, 5);
    assert_int_equal(a->nnames, 2);
    assert_string_equal(a->names[0], "a.test");
    assert_string_equal(a->names[1], "*.b.test");
    assert_false(a->is_default);
    assert_false(a->acme);
    assert_int_equal(a->ncerts, 2);
    assert_string_equal(a->certs[0], "a.pem");
    assert_string_equal(a->keys[0], "a.key");
    assert_string_equal(a->certs[1], "b.pem");
    assert_string_equal(a->keys[1], "b.key");
    assert_int_equal(a->rules.nheaders, 5);
    assert_header(&a->rules.headers[0], EDDY_HEADER_SET, "X-Frame-Options: DENY");
    assert_header(&a->rules.headers[1], EDDY_HEADER_ADD, "Link: </a>; rel=preload");
    assert_header(&a->rules.headers[2], EDDY_HEADER_ADD, "Link: </b>; rel=preload");
    assert_header(&a->rules.headers[3], EDDY_HEADER_ADD, "X-One: 1");
    assert_header(&a->rules.headers[4], EDDY_HEADER_REMOVE, "Server-Timing");
    assert_int_equal(a->rules.max_body, 1000);
    assert_int_equal(a->rules.send_ms, 2500);
    assert_int_equal(a->rules.body_ms, 1); /* at least a millisecond */
    assert_int_equal(a->npaths, 4);

    conf_path *files = &a->paths[0];
    assert_string_equal(files->path, "/");
    assert_int_equal(files->mark.line, 25);
    assert_int_equal(files->mark.col, 9);
    assert_int_equal(files->handler, CONF_FILES);
    assert_string_equal(files->files.root, "/srv/a");
    assert_int_equal(files->root_mark.line, 27);
    assert_int_equal(files->root_mark.col, 17);
    assert_true(files->files.dotfiles);
    assert_true(files->files.autoindex);
    assert_int_equal(files->files.nindex, 2);
    assert_string_equal(files->files.index[0], "index.html");
    assert_string_equal(files->files.index[1], "index.htm");
    assert_string_equal(files->files.cache_control, "max-age=60");
    assert_true(files->files.no_precompressed);
    assert_string_equal(files->files.mime_types, "/etc/mime.types");
    assert_int_equal(files->rules.nheaders, 0);
    assert_int_equal(files->rules.max_body, 0); /* not set here */
    assert_int_equal(files->rules.send_ms, 0);
    assert_int_equal(files->rules.body_ms, 0);

    conf_path *redirect = &a->paths[1];
    assert_string_equal(redirect->path, "/old");
    assert_int_equal(redirect->handler, CONF_REDIRECT);
    assert_string_equal(redirect->to, "https://a.test/new");
    assert_int_equal(redirect->status, 301);
    assert_true(redirect->append_path);

    conf_path *respond = &a->paths[2];
    assert_string_equal(respond->path, "/health");
    assert_int_equal(respond->handler, CONF_RESPOND);
    assert_int_equal(respond->status, 204);
    assert_string_equal(respond->body, "ok\n");
    assert_int_equal(respond->body_len, 3);
    assert_string_equal(respond->type, "text/plain");
    assert_int_equal(respond->rules.nheaders, 2);
    assert_header(&respond->rules.headers[0], EDDY_HEADER_REMOVE, "X-Frame-Options");
    assert_header(&respond->rules.headers[1], EDDY_HEADER_REMOVE, "Link");
    assert_int_equal(respond->rules.max_body, 10);

    conf_path *rules = &a->paths[3];
    assert_string_equal(rules->path, "/rules-only");
    assert_int_equal(rules->handler, CONF_NO_HANDLER);
    assert_int_equal(rules->rules.nheaders, 1);
    assert_header(&rules->rules.headers[0], EDDY_HEADER_SET, "Cache-Control: no-store");

    conf_site *cs = &c->sites[1];
    assert_int_equal(cs->nnames, 1); /* a list key given one value */
    assert_string_equal(cs->names[0], "c.test");
    assert_true(cs->acme);
    assert_int_equal(cs->npaths, 0);
    assert_int_equal(cs->ncerts, 0);
    assert_int_equal(cs->nlisten, 1); /* a list key given one value */
    assert_string_equal(cs->listen[0], "127.0.0.1:8443");
    assert_int_equal(cs->listen_mark.line, 45);
    assert_int_equal(cs->listen_mark.col, 13);
    assert_int_equal(a->nlisten, 0);

    cli_free(&opt);
    /* Everything the conf held is released, and it is empty again. */
    assert_null(opt.conf.sites);
    assert_null(opt.conf.strings);
    assert_int_equal(opt.conf.nsites, 0);
}

static void handlers_take_their_defaults(void **state)
{
    (void)state;
    cli_options opt;
    load_ok(SITE_PATH("        files: {root: www}\n"
                      "      - path: /r\n"
                      "        redirect: {to: /p}\n"
                      "      - path: /s\n"
                      "        respond: {}\n"),
            &opt);
    conf_path *p = opt.conf.sites[0].paths;
    assert_false(p[0].files.dotfiles);
    assert_false(p[0].files.autoindex);
    assert_false(p[0].files.no_precompressed); /* precompressed: true */
    assert_int_equal(p[0].files.nindex, 0);
    assert_null(p[0].files.index);
    assert_null(p[0].files.cache_control);
    assert_null(p[0].files.mime_types);
    assert_int_equal(p[1].status, 308); /* permanent, the method kept */
    assert_false(p[1].append_path);
    assert_int_equal(p[2].status, 200);
    assert_null(p[2].body);
    assert_int_equal(p[2].body_len, 0);
    assert_null(p[2].type);
    cli_free(&opt);
}

static void switches_take_true_and_false(void **state)
{
    (void)state;
    cli_options opt;
    load_ok("no-http2: true\nredirect-https: true\ndotfiles: true\n", &opt);
    assert_true(opt.config.no_http2);
    assert_true(opt.redirect_https);
    assert_true(opt.files.dotfiles);
    cli_free(&opt);

    /* false clears what was on (as when a reload starts from defaults). */
    fresh(&opt);
    opt.config.no_http2 = true;
    opt.files.autoindex = true;
    int n;
    char *out = load("no-http2: false\nautoindex: false\nno-precompressed: false\n", &opt, &n);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    free(out);
    assert_false(opt.config.no_http2);
    assert_false(opt.files.autoindex);
    assert_false(opt.files.no_precompressed);
    cli_free(&opt);
}

/* Without sites, the flags' site keys make the one site, as the flags do. */
static void flag_site_keys_make_the_one_site(void **state)
{
    (void)state;
    cli_options opt;
    load_ok("root: /srv\nindex: [home.html, index.html]\ndelay: /sleep=0.5\n"
            "cache-control: no-cache\nno-precompressed: true\n",
            &opt);
    assert_false(opt.conf.has_sites);
    assert_int_equal(opt.conf.nsites, 0);
    assert_string_equal(opt.files.root, "/srv");
    assert_int_equal(opt.files.nindex, 2);
    assert_string_equal(opt.files.index[1], "index.html");
    assert_string_equal(opt.files.cache_control, "no-cache");
    assert_true(opt.files.no_precompressed);
    assert_int_equal(opt.ndelays, 1);
    assert_string_equal(opt.delays[0].path, "/sleep");
    assert_int_equal(opt.delays[0].ms, 500);
    assert_non_null(opt.site_option);
    cli_free(&opt); /* frees the delay's path too */
}

static void a_default_site_needs_no_names(void **state)
{
    (void)state;
    cli_options opt;
    load_ok("sites:\n  - default: true\n  - names: a.test\n"
            "listen: []\n", /* an empty list sets nothing */
            &opt);
    assert_true(opt.conf.sites[0].is_default);
    assert_int_equal(opt.conf.sites[0].nnames, 0);
    assert_false(opt.conf.sites[1].is_default);
    assert_int_equal(opt.nlisten, 0);
    cli_free(&opt);
}

/* -------------------------------------------------------------- errors -- */

static void unknown_keys_are_refused_in_every_mapping(void **state)
{
    (void)state;
    expect_errors("listen: a\nbogus: 1\n",
                  NAME ":2:1: unknown key 'bogus' in the configuration\n");
    expect_errors("sites:\n  - names: a.test\n    bogus: 1\n",
                  NAME ":3:5: unknown key 'bogus' in a site\n");
    expect_errors(SITE_PATH("        bogus: 1\n"), NAME ":5:9: unknown key 'bogus' in a path\n");
    expect_errors(SITE_PATH("        files: {root: /srv, bogus: 1}\n"),
                  NAME ":5:29: unknown key 'bogus' in files\n");
    expect_errors(SITE_PATH("        redirect: {to: /x, bogus: 1}\n"),
                  NAME ":5:28: unknown key 'bogus' in redirect\n");
    expect_errors(SITE_PATH("        respond: {bogus: 1}\n"),
                  NAME ":5:19: unknown key 'bogus' in respond\n");
    expect_errors(SITE_PATH("        headers: {bogus: 1}\n"),
                  NAME ":5:19: unknown key 'bogus' in headers\n");
    expect_errors(SITE_PATH("        limits: {max-bodies: 1}\n"),
                  NAME ":5:18: unknown key 'max-bodies' in limits\n");
    expect_errors("sites:\n  - names: a.test\n    headers: {bogus: 1}\n",
                  NAME ":3:15: unknown key 'bogus' in headers\n");
    expect_errors("sites:\n  - names: a.test\n    tls: [{cert: c, key: k, chain: x}]\n",
                  NAME ":3:29: unknown key 'chain' in a tls pair\n");
    /* Keys are names: case matters, and a flag's "--" is not part of it. */
    expect_errors("Listen: a\n--listen: b\n",
                  NAME ":1:1: unknown key 'Listen' in the configuration\n"
                  NAME ":2:1: unknown key '--listen' in the configuration\n");
}

static void wrong_types_are_refused(void **state)
{
    (void)state;
    /* A list or a mapping where one value goes. */
    expect_errors("max-body: [1]\n", NAME ":1:11: max-body wants a single value, not a list\n");
    expect_errors("header-timeout: {a: 1}\n",
                  NAME ":1:17: header-timeout wants a single value, not a mapping\n");
    expect_errors("no-http2: [true]\n", NAME ":1:11: no-http2 wants a single value, not a list\n");
    expect_errors("listen: [a, [b]]\n", NAME ":1:13: listen wants a single value, not a list\n");
    expect_errors(SITE_PATH("        path: [/q]\n"),
                  NAME ":5:9: a path: 'path' is given twice\n"); /* SITE_PATH gave it */
    expect_errors("sites:\n  - names: a.test\n    paths:\n      - path: [/q]\n",
                  NAME ":4:15: path wants a single value, not a list\n"
                  NAME ":4:9: a path wants path: the prefix it covers, like /\n");
    /* A value where a mapping goes. */
    expect_errors("sites:\n  - just a name\n",
                  NAME ":2:5: a site wants a mapping of keys to values\n");
    expect_errors("sites:\n  - names: a.test\n    headers: x\n",
                  NAME ":3:14: headers wants a mapping of keys to values\n");
    expect_errors("sites:\n  - names: a.test\n    limits: [1]\n",
                  NAME ":3:13: limits wants a mapping of keys to values\n");
    expect_errors("sites:\n  - names: a.test\n    tls: a.pem\n",
                  NAME ":3:10: a tls pair wants a mapping of keys to values\n");
    expect_errors(SITE_PATH("        headers: {set: X-A}\n"),
                  NAME ":5:24: set wants a mapping of keys to values\n");
    expect_errors("[a, b]\n", NAME ":1:1: the configuration wants a mapping of keys to values\n");
    expect_errors("just text\n",
                  NAME ":1:1: the configuration wants a mapping of keys to values\n");
    /* sites and paths are lists, even of one. */
    expect_errors("sites: {names: a.test}\n",
                  NAME ":1:8: sites wants a list of sites (- names: ...)\n");
    expect_errors("sites:\n  - names: a.test\n    paths: {path: /}\n",
                  NAME ":3:12: paths wants a list of paths (- path: /...)\n");
    /* A key is a name, not a list. */
    expect_errors("? [a, b]\n: 1\n", NAME ":1:3: a key in the configuration must be a name\n");
    /* set gives one value; add takes a list. */
    expect_errors(SITE_PATH("        headers: {set: {X-A: [a, b]}}\n"),
                  NAME ":5:30: set gives a field one value; add gives it several\n");
}

static void bad_values_are_refused(void **state)
{
    (void)state;
    /* Flags' keys: the flags' own checks, named as keys. */
    expect_errors("max-body: x\n", NAME ":1:11: max-body wants a number of bytes above 0, not 'x'\n");
    expect_errors("max-body: 0\n", NAME ":1:11: max-body wants a number of bytes above 0, not '0'\n");
    expect_errors("no-http2: yes\n", NAME ":1:11: no-http2 wants true or false, not 'yes'\n");
    expect_errors("no-http2: True\n", NAME ":1:11: no-http2 wants true or false, not 'True'\n");
    expect_errors("header-timeout: 0\n",
                  NAME ":1:17: header-timeout wants seconds above 0 (like 30 or 0.5), not '0'\n");
    expect_errors("tls-min: 1.1\n", NAME ":1:10: tls-min wants 1.2 or 1.3, not '1.1'\n");
    expect_errors("workers: 0\n", NAME ":1:10: workers wants a number from 1 to 256, not '0'\n");
    expect_errors("header: no colon\n",
                  NAME ":1:9: header wants 'NAME: VALUE', like 'X-Frame-Options: DENY', not 'no "
                  "colon'\n");
    expect_errors("delay: /x\n", NAME ":1:8: delay wants PATH=SECONDS, like /sleep=5, not '/x'\n");
    expect_errors("access-log: \"a\\nb\"\n", NAME ":1:13: access-log must be one line of text\n");
    /* no-match */
    expect_errors("sites: [{default: true}]\nno-match: 500\n",
                  NAME ":2:11: no-match wants a whole number from 400 to 499, not '500'\n");
    expect_errors("sites: [{names: a.test}]\nno-match: 403\n",
                  NAME ":2:11: no-match is 421 or 404, not 403\n");
    /* Handlers' values. */
    expect_errors(SITE_PATH("        redirect: {to: /x, status: 300}\n"),
                  NAME ":5:36: a redirect's status is 301, 302, 303, 307 or 308, not 300\n");
    expect_errors(SITE_PATH("        redirect: {to: /x, status: 200}\n"),
                  NAME ":5:36: status wants a whole number from 300 to 399, not '200'\n");
    expect_errors(SITE_PATH("        redirect: {to: \"\"}\n"),
                  NAME ":5:24: to wants a URL or a path to send clients to\n"
                  NAME ":5:9: redirect wants to: where clients are sent\n");
    expect_errors(SITE_PATH("        redirect: {to: /x, append-path: 1}\n"),
                  NAME ":5:41: append-path wants true or false, not '1'\n");
    expect_errors(SITE_PATH("        respond: {status: 99}\n"),
                  NAME ":5:27: status wants a whole number from 200 to 599, not '99'\n");
    expect_errors(SITE_PATH("        respond: {status: 600}\n"),
                  NAME ":5:27: status wants a whole number from 200 to 599, not '600'\n");
    expect_errors(SITE_PATH("        respond: {type: \"a\\rb\"}\n"),
                  NAME ":5:25: type must be one line of text\n");
    expect_errors(SITE_PATH("        files: {root: /srv, index: [index.html, a/b, \"..\"]}\n"),
                  NAME ":5:49: index wants file names, like index.html, not 'a/b'\n"
                  NAME ":5:54: index wants file names, like index.html, not '..'\n");
    expect_errors(SITE_PATH("        files: {root: /srv, cache-control: \"a\\nb\"}\n"),
                  NAME ":5:44: cache-control must be one line of text\n");
    expect_errors(SITE_PATH("        limits: {max-body: 0}\n"),
                  NAME ":5:28: max-body wants a whole number from 1 to 18446744073709551615, "
                  "not '0'\n");
    expect_errors(SITE_PATH("        limits: {max-body: 18446744073709551616}\n"),
                  NAME ":5:28: max-body wants a whole number from 1 to 18446744073709551615, "
                  "not '18446744073709551616'\n");
    expect_errors(SITE_PATH("        limits: {send-timeout: 0, body-timeout: 86401}\n"),
                  NAME ":5:32: send-timeout wants seconds above 0 and at most a day (like 30 or "
                  "0.5), not '0'\n"
                  NAME ":5:49: body-timeout wants seconds above 0 and at most a day (like 30 or "
                  "0.5), not '86401'\n");
    expect_errors(SITE_PATH("        limits: {send-timeout: nan}\n"),
                  NAME ":5:32: send-timeout wants seconds above 0 and at most a day (like 30 or "
                  "0.5), not 'nan'\n");
    /* A path begins with '/'. */
    expect_errors("sites:\n  - names: a.test\n    paths:\n      - path: static\n",
                  NAME ":4:15: a path begins with '/', like /static, not 'static'\n");
    /* Header rules: fields eddy owns, names that are not tokens. */
    expect_errors(SITE_PATH("        headers: {set: {Content-Length: \"1\"}}\n"),
                  NAME ":5:41: 'Content-Length: 1' is a field eddy owns (framing, Date, Server, "
                  "Content-Type)\n");
    expect_errors(SITE_PATH("        headers: {remove: [X-A, date]}\n"),
                  NAME ":5:33: 'date' is a field eddy owns (framing, Date, Server, Content-Type)\n");
    expect_errors(SITE_PATH("        headers: {add: {\"Bad Name\": v}}\n"),
                  NAME ":5:25: 'Bad Name' is not a field name (a token: no ':' or space)\n");
    expect_errors(SITE_PATH("        headers: {add: {X-A: \"a\\x01b\"}}\n"),
                  NAME ":5:30: 'X-A: a?b' is not a field eddy can send: a token for a name, "
                  "and a value without control characters\n");
    /* Site names: a host, no port; acme wants names, and no wildcard. */
    expect_errors("sites:\n  - names: [a.test:80]\n",
                  NAME ":2:13: 'a.test:80' is not a host name (like example.com or *.example.com, "
                  "no port)\n");
    expect_errors("sites:\n  - names: [\"*.w.test\", v.test]\n    acme: true\n",
                  NAME ":2:5: acme cannot get a certificate for *.w.test: ACME's HTTP-01 and "
                  "TLS-ALPN-01 validate one name at a time, not wildcards\n");
    expect_errors("sites:\n  - default: true\n    acme: true\n",
                  NAME ":2:5: acme gets a certificate for the site's names, and it has none\n");
    expect_errors("sites:\n  - names: a.test\n    acme: on\n",
                  NAME ":3:11: acme wants true or false, not 'on'\n");
    /* A tls pair is both files. */
    expect_errors("sites:\n  - names: a.test\n    tls: [{cert: c.pem}]\n",
                  NAME ":3:11: a tls pair wants cert: and key: (PEM files)\n");
}

static void duplicates_are_refused(void **state)
{
    (void)state;
    expect_errors("listen: a\nmax-conns: 1\nlisten: b\n",
                  NAME ":3:1: the configuration: 'listen' is given twice\n");
    expect_errors("sites:\n  - names: a.test\n    acme: true\n    acme: false\n",
                  NAME ":4:5: a site: 'acme' is given twice\n");
    expect_errors(SITE_PATH("        respond: {status: 200, status: 201}\n"),
                  NAME ":5:32: respond: 'status' is given twice\n");
    /* The same host in two sites, compared without case and trailing dot. */
    expect_errors("sites:\n  - names: [x.test, A.test.]\n  - names: [b.test, a.test]\n",
                  NAME ":3:21: duplicate host: a.test is named by the site at line 2\n");
    /* ... and twice in one site. */
    expect_errors("sites:\n  - names: [a.test, b.test, A.TEST.]\n",
                  NAME ":2:29: duplicate host: A.TEST. is named by this site already at line 2\n");
    /* A wildcard and the name under it are two names. */
    cli_options opt;
    load_ok("sites:\n  - names: [a.test, \"*.a.test\"]\n", &opt);
    cli_free(&opt);
    expect_errors("sites:\n  - names: a.test\n    paths:\n      - path: /x\n"
                  "      - path: /y\n      - path: /x\n",
                  NAME ":6:9: path /x is given twice in this site (line 4)\n");
    expect_errors("sites:\n  - default: true\n  - names: a.test\n  - default: true\n",
                  NAME ":4:5: a second default site (the first is at line 2)\n");
    expect_errors(SITE_PATH("        files: {root: /srv}\n        respond: {}\n"),
                  NAME ":6:9: a path has one handler: files, redirect, respond or proxy\n");
}

static void missing_parts_are_refused(void **state)
{
    (void)state;
    expect_errors("sites:\n  - acme: false\n", NAME ":2:5: a site wants names:, listen:, or default: true\n");
    expect_errors("sites:\n  - default: false\n",
                  NAME ":2:5: a site wants names:, listen:, or default: true\n");
    expect_errors("sites:\n  - {}\n", NAME ":2:5: a site wants names:, listen:, or default: true\n");
    expect_errors(SITE_PATH("        files: {dotfiles: true}\n"),
                  NAME ":5:9: files wants a root: the directory served\n");
    expect_errors(SITE_PATH("        redirect: {status: 301}\n"),
                  NAME ":5:9: redirect wants to: where clients are sent\n");
    expect_errors("sites:\n  - names: a.test\n    paths:\n      - files: {root: /srv}\n",
                  NAME ":4:9: a path wants path: the prefix it covers, like /\n");
}

static void whole_file_rules_are_checked(void **state)
{
    (void)state;
    /* Keys of the one site flags make, beside sites: each at its key. */
    expect_errors("root: /srv\nsites:\n  - names: a.test\nindex: a.html\n",
                  NAME ":1:1: root makes the one site of flags; with sites, give it in a site's "
                  "paths\n"
                  NAME ":4:1: index makes the one site of flags; with sites, give it in a site's "
                  "paths\n");
    expect_errors("sites: [{names: a.test}]\ndotfiles: false\ndelay: /s=1\n",
                  NAME ":2:1: dotfiles makes the one site of flags; with sites, give it in a "
                  "site's paths\n"
                  NAME ":3:1: delay makes the one site of flags; with sites, give it in a site's "
                  "paths\n");
    /* no-match is for sites, and only without a default one. */
    expect_errors("listen: a\nno-match: 404\n",
                  NAME ":2:1: no-match is for hosts no site names, and there are no sites\n");
    expect_errors("no-match: 421\nsites: [{default: true}]\n",
                  NAME ":1:1: no-match is for hosts no site names, and the default site takes "
                  "them\n");
}

static void yaml_syntax_errors_say_where(void **state)
{
    (void)state;
    /* An unclosed quote: found at the end of the stream. */
    expect_errors("listen: a\nheader: \"X-A: b\n",
                  NAME ":3:1: found unexpected end of stream while scanning a quoted scalar\n");
    /* A tab where indentation goes. */
    expect_errors("sites:\n\t- names: a.test\n",
                  NAME ":2:1: found character that cannot start any token while scanning for the "
                  "next token\n");
    expect_errors("listen: [a, b\nmax-conns: 1\n",
                  NAME ":2:10: did not find expected ',' or ']' while parsing a flow sequence\n");
    expect_errors("sites:\n  - names: a\n   - names: b\n",
                  NAME ":3:4: did not find expected '-' indicator while parsing a block collection\n");
    expect_errors("listen: *nowhere\n", NAME ":1:9: found undefined alias\n");
    /* A control character the YAML reader refuses: one error (its position
     * is libyaml's byte offset, see reader_errors_say_where below). */
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load("listen: a\x01\n", &opt, &n);
    assert_int_equal(n, 1);
    assert_int_equal(lines_in(out), 1);
    assert_non_null(strstr(out, ": control characters are not allowed\n"));
    assert_memory_equal(out, NAME ":", strlen(NAME ":"));
    free(out);
    cli_free(&opt);
}

static void error_count_matches_the_lines_written(void **state)
{
    (void)state;
    /* Many mistakes in one file: each reported, in file order, each counted. */
    const char *text = "bogus: 1\n"
                       "max-body: x\n"
                       "sites:\n"
                       "  - names: [a.test, a.test]\n"
                       "    paths:\n"
                       "      - path: nope\n"
                       "        respond: {status: 1}\n";
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load(text, &opt, &n);
    assert_string_equal(out,
                        NAME ":1:1: unknown key 'bogus' in the configuration\n"
                        NAME ":2:11: max-body wants a number of bytes above 0, not 'x'\n"
                        NAME ":4:21: duplicate host: a.test is named by this site already at "
                        "line 4\n"
                        NAME ":6:15: a path begins with '/', like /static, not 'nope'\n"
                        NAME ":7:27: status wants a whole number from 200 to 599, not '1'\n");
    assert_int_equal(n, 5);
    assert_int_equal(n, lines_in(out));
    free(out);
    cli_free(&opt);
}

/* Past CONFIG_MAX_ERRORS: that many lines, then one saying it stops. */
static void errors_past_the_cap_are_not_written(void **state)
{
    (void)state;
    for (int total = CONFIG_MAX_ERRORS - 1; total <= CONFIG_MAX_ERRORS + 30; total += 31) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        for (int i = 0; i < total; i++)
            fprintf(f, "k%d: 1\n", i);
        fclose(f);
        cli_options opt;
        fresh(&opt);
        int n;
        char *out = load(text, &opt, &n);
        assert_int_equal(n, total);
        if (total < CONFIG_MAX_ERRORS) {
            assert_int_equal(lines_in(out), total);
        } else {
            assert_int_equal(lines_in(out), CONFIG_MAX_ERRORS + 1);
            char last[64];
            snprintf(last, sizeof(last), NAME ":%d:1: unknown key 'k%d' in the configuration\n",
                     CONFIG_MAX_ERRORS, CONFIG_MAX_ERRORS - 1);
            assert_non_null(strstr(out, last));
            const char *tail = NAME ": more errors than 50; the rest are not shown\n";
            assert_string_equal(out + strlen(out) - strlen(tail), tail);
        }
        free(out);
        free(text);
        cli_free(&opt);
    }
}

/* -------------------------------------------------------- hostile input -- */

/* Ten levels of ten aliases: 10^9 leaves if expanded. */
static char *billion_laughs(const char *under)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "x:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        fprintf(f, "  - &a%d [", i);
        for (int j = 0; j < 10; j++)
            fprintf(f, "%s*a%d", j ? ", " : "", i - 1);
        fprintf(f, "]\n");
    }
    fprintf(f, "%s: *a9\n", under);
    fclose(f);
    return text;
}

static void alias_bombs_are_not_expanded(void **state)
{
    (void)state;
    /* Where lists of lists are not walked, the bomb is ten wrong items. */
    char *text = billion_laughs("sites");
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load(text, &opt, &n);
    assert_int_equal(n, 11); /* x, then ten sites that are lists */
    assert_int_equal(count_of(out, ": a site wants a mapping of keys to values\n"), 10);
    free(out);
    free(text);
    cli_free(&opt);

    text = billion_laughs("listen");
    fresh(&opt);
    out = load(text, &opt, &n);
    assert_int_equal(n, 11);
    assert_int_equal(count_of(out, ": listen wants a single value, not a list\n"), 10);
    assert_int_equal(opt.nlisten, 0);
    free(out);
    free(text);
    cli_free(&opt);

    /* Where the walk does multiply (sites x tls pairs), it stops at
     * CONFIG_MAX_NODES: 30 sites of 1000 pairs each would be 150000. */
    {
        char *bomb = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&bomb, &len);
        fprintf(f, "sites:\n  - &s\n    names: a.test\n    tls: [");
        for (int i = 0; i < 1000; i++)
            fprintf(f, "%s", i ? ", *t" : "&t {cert: c.pem, key: k.pem}");
        fprintf(f, "]\n");
        for (int i = 1; i < 30; i++)
            fprintf(f, "  - *s\n");
        fclose(f);
        fresh(&opt);
        out = load(bomb, &opt, &n);
        char cap[96];
        snprintf(cap, sizeof(cap), ": more than %d nodes (aliases repeating a large part?)\n",
                 CONFIG_MAX_NODES);
        if (!strstr(out, cap))
            fail_msg("no node cap in:\n%s", out);
        assert_true(n > 0 && n <= CONFIG_MAX_ERRORS);
        assert_true(opt.conf.nsites < 30); /* the walk stopped */
        free(out);
        free(bomb);
        cli_free(&opt);
    }
}

static void empty_and_comment_only_files_are_good(void **state)
{
    (void)state;
    cli_options opt;
    load_ok("", &opt);
    assert_false(opt.conf.has_sites);
    assert_string_equal(opt.files.root, "www");
    cli_free(&opt);
    load_ok("# nothing but a comment\n", &opt);
    cli_free(&opt);
    load_ok("\n\n   \n", &opt);
    cli_free(&opt);
    load_ok("---\n", &opt);
    cli_free(&opt);
    load_ok("--- # an empty document\n...\n", &opt);
    cli_free(&opt);
    load_ok("{}\n", &opt);
    cli_free(&opt);
    load_ok("sites: []\n", &opt);
    assert_true(opt.conf.has_sites);
    cli_free(&opt);
}

static void nul_bytes_are_refused(void **state)
{
    (void)state;
    /* "\0" in a quoted scalar: the value is not a C string. */
    expect_errors("listen: \"a\\0b\"\n", NAME ":1:9: listen: a NUL byte in the value\n");
    expect_errors(SITE_PATH("        respond: {body: \"a\\0b\"}\n"),
                  NAME ":5:25: body: a NUL byte in the value\n");
    expect_errors("sites:\n  - names: \"a\\0.test\"\n", NAME ":2:12: names: a NUL byte in the value\n");
    /* A raw NUL byte: YAML refuses it as a control character. */
    static const char raw[] = "listen: a\0b\n";
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load_n(raw, sizeof(raw) - 1, &opt, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out, ": control characters are not allowed\n"));
    assert_int_equal(opt.nlisten, 0);
    free(out);
    cli_free(&opt);
}

static void oversized_input_is_refused(void **state)
{
    (void)state;
    size_t len = CONFIG_MAX_BYTES + 1;
    char *text = malloc(len);
    assert_non_null(text);
    /* A comment of CONFIG_MAX_BYTES - 1 characters and its newline: read. */
    memset(text, ' ', len);
    text[0] = '#';
    text[CONFIG_MAX_BYTES - 1] = '\n';
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load_n(text, CONFIG_MAX_BYTES, &opt, &n);
    assert_int_equal(n, 0);
    free(out);
    cli_free(&opt);
    /* One byte more: refused before YAML sees it. */
    char want[80];
    snprintf(want, sizeof(want), NAME ": larger than %d bytes\n", CONFIG_MAX_BYTES);
    expect_errors_n(text, len, want);

    /* From a file: the same limit, before reading it. */
    char path[64];
    temp_file(path, sizeof(path), text, len);
    char *errs = NULL;
    size_t errs_len = 0;
    FILE *f = open_memstream(&errs, &errs_len);
    fresh(&opt);
    assert_int_equal(config_load_file(path, &opt, &opt.conf, f), -1);
    fclose(f);
    assert_non_null(strstr(errs, ": larger than the 1 MiB a configuration may be\n"));
    free(errs);
    cli_free(&opt);
    unlink(path);
    free(text);

    /* Not a regular file, or none at all. */
    errs = NULL;
    f = open_memstream(&errs, &errs_len);
    fresh(&opt);
    assert_int_equal(config_load_file("/tmp", &opt, &opt.conf, f), -1);
    assert_int_equal(config_load_file("/nonexistent/eddy.yaml", &opt, &opt.conf, f), -1);
    fclose(f);
    assert_string_equal(errs, "/tmp: not a regular file\n"
                              "/nonexistent/eddy.yaml: cannot read: No such file or directory\n");
    free(errs);
    cli_free(&opt);
}

/* ------------------------------------------------- through cli_parse -- */

static int parse_file(const char *text, const char *extra, cli_options *opt, char *err,
                      size_t err_len, char *path, size_t path_cap)
{
    temp_file(path, path_cap, text, strlen(text));
    char *argv[] = {"eddy", "-c", path, (char *)extra, NULL};
    /* A configuration's error lines go to stderr: kept out of the test's. */
    fflush(stderr);
    int saved = dup(2);
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), 2);
    int rc = cli_parse(extra ? 4 : 3, argv, opt, err, err_len);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(null);
    return rc;
}

static void cli_parse_reads_the_file_and_checks_across_it(void **state)
{
    (void)state;
    cli_options opt;
    char err[512], path[64];
    /* A site's tls pairs join the flags' certificates. */
    assert_int_equal(parse_file("listen-tls: 127.0.0.1:0\n"
                                "sites:\n  - names: a.test\n    tls: {cert: a.pem, key: a.key}\n",
                                NULL, &opt, err, sizeof(err), path, sizeof(path)),
                     0);
    assert_int_equal(opt.tls.npairs, 1);
    assert_string_equal(opt.tls.certs[0], "a.pem");
    assert_string_equal(opt.tls.keys[0], "a.key");
    assert_int_equal(opt.nlisten, 0); /* only listen-tls was given */
    cli_free(&opt);
    unlink(path);

    /* A list flag on the command line replaces the file's list. */
    assert_int_equal(parse_file("listen: [127.0.0.1:1, 127.0.0.1:2]\n", "--listen=127.0.0.1:3", &opt,
                                err, sizeof(err), path, sizeof(path)),
                     0);
    assert_int_equal(opt.nlisten, 1);
    assert_string_equal(opt.listen[0], "127.0.0.1:3");
    cli_free(&opt);
    unlink(path);

    /* The flag of the one site beside a file with sites. */
    assert_int_equal(parse_file("sites: [{default: true}]\n", "--dotfiles", &opt, err, sizeof(err),
                                path, sizeof(path)),
                     -1);
    char want[256];
    snprintf(want, sizeof(want),
             "--dotfiles is for the one site flags make; with sites in %s, give it in a site's "
             "paths",
             path);
    assert_string_equal(err, want);
    cli_free(&opt);
    unlink(path);

    /* The file's errors are counted in the one line cli_parse gives. */
    assert_int_equal(parse_file("bogus: 1\nmax-body: x\n", NULL, &opt, err, sizeof(err), path,
                                sizeof(path)),
                     -1);
    snprintf(want, sizeof(want), "%s: 2 errors", path);
    assert_string_equal(err, want);
    cli_free(&opt);
    unlink(path);

    /* A site's listen names an address of listen or listen-tls, as written. */
    assert_int_equal(parse_file("listen: 127.0.0.1:1\nsites: [{listen: 127.0.0.1:2}]\n", NULL,
                                &opt, err, sizeof(err), path, sizeof(path)),
                     -1);
    snprintf(want, sizeof(want),
             "%s:2:18: a site listens on '127.0.0.1:2', which is not in listen or listen-tls "
             "(write it the same way)",
             path);
    assert_string_equal(err, want);
    cli_free(&opt);
    unlink(path);
    assert_int_equal(parse_file("listen: 127.0.0.1:1\nsites: [{listen: 127.0.0.1:1}]\n", NULL,
                                &opt, err, sizeof(err), path, sizeof(path)),
                     0);
    assert_int_equal(opt.conf.sites[0].nnames, 0); /* any host on that address */
    cli_free(&opt);
    unlink(path);

    /* acme in a site needs a listen-tls address, as --acme-domain does. */
    assert_int_equal(parse_file("sites: [{names: a.test, acme: true}]\n", NULL, &opt, err,
                                sizeof(err), path, sizeof(path)),
                     -1);
    assert_string_equal(err, "--acme-domain gets a certificate for --listen-tls, and there is none");
    cli_free(&opt);
    unlink(path);
}

/* --------------------------------------------------------- config_free -- */

static void config_free_releases_everything(void **state)
{
    (void)state;
    /* A model holding every kind of allocation, freed twice: the second
     * finds it empty.  Leaks fail the ASan build (make unit-san). */
    cli_options opt;
    load_ok(every_key, &opt);
    config_free(&opt.conf);
    assert_int_equal(opt.conf.nsites, 0);
    assert_int_equal(opt.conf.nstrings, 0);
    config_free(&opt.conf);
    cli_free(&opt);

    /* A half-built model after errors (names and paths partly kept). */
    fresh(&opt);
    int n;
    char *out = load("sites:\n  - names: [a.test, \"bad name\"]\n    tls: [{cert: c}]\n"
                     "    paths:\n      - path: /\n        files: {root: /srv, index: [a, a/b]}\n"
                     "        headers: {add: {X-A: [1, 2]}, remove: [Date]}\n      - path: x\n",
                     &opt, &n);
    assert_true(n > 0);
    free(out);
    cli_free(&opt);

    /* A conf never loaded. */
    conf c;
    memset(&c, 0, sizeof(c));
    config_free(&c);
}

/* ------------------------------------------------- bugs found once -- */

/* Bugs the loader had once: each asserts what it does now. */
static void header_name_with_a_colon_is_refused(void **state)
{
    (void)state;
    /* "X-A: b" is not a token, yet becomes the rule "X-A: b: c". */
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load(SITE_PATH("        headers: {set: {\"X-A: b\": c}}\n"), &opt, &n);
    assert_int_equal(n, 1);
    free(out);
    cli_free(&opt);
}

static void nul_in_a_key_is_refused(void **state)
{
    (void)state;
    /* The key is read as a C string: this sets no-http2. */
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load("\"no-http2\\0junk\": true\n", &opt, &n);
    assert_int_equal(n, 1);
    assert_false(opt.config.no_http2);
    free(out);
    cli_free(&opt);
}

static void reader_errors_say_where(void **state)
{
    (void)state;
    /* libyaml's reader errors carry problem_offset, not problem_mark. */
    static const char raw[] = "listen: a\nmax-conns: 1\nheader: \"X: \0\"\n";
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load_n(raw, sizeof(raw) - 1, &opt, &n);
    assert_int_equal(n, 1);
    assert_memory_equal(out, NAME ":3:", strlen(NAME ":3:"));
    free(out);
    cli_free(&opt);
}

static void a_second_document_is_not_ignored(void **state)
{
    (void)state;
    /* Only the first document is loaded: the rest, errors and all, unread. */
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load("listen: a\n---\nlisten: b\nbogus: [\n", &opt, &n);
    assert_true(n > 0);
    free(out);
    cli_free(&opt);
}

static void an_error_is_one_line(void **state)
{
    (void)state;
    /* Values are echoed as they are: a newline splits the error (and can
     * forge another), escapes reach the terminal. */
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load("max-body: \"1\\n" NAME ":9:9: forged\"\n", &opt, &n);
    assert_int_equal(n, 1);
    assert_int_equal(lines_in(out), 1);
    free(out);
    cli_free(&opt);
}

static void a_third_default_site_is_one_error(void **state)
{
    (void)state;
    /* Today: two errors, the second calling line 3 "the first". */
    expect_errors("sites:\n  - default: true\n  - default: true\n  - default: true\n",
                  NAME ":3:5: a second default site (the first is at line 2)\n"
                  NAME ":4:5: a second default site (the first is at line 2)\n");
}

static void a_path_with_a_control_character_is_one_error(void **state)
{
    (void)state;
    /* Today also "a path begins with '/'", of a path that does. */
    expect_errors("sites:\n  - names: a.test\n    paths:\n      - path: \"/a\\tb\"\n",
                  NAME ":4:15: path must be one line of text\n");
}

static void a_site_with_an_empty_names_list_is_refused(void **state)
{
    (void)state;
    /* names: [] and no default: a site no request can reach. */
    expect_errors("sites:\n  - names: []\n", NAME ":2:5: a site wants names:, listen:, or default: true\n");
}

static void a_mapping_of_too_many_keys_is_refused(void **state)
{
    (void)state;
    /* Each key is compared with the others for duplicates: past
     * CONFIG_MAX_KEYS a mapping is refused whole, with one error. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    for (int i = 0; i < 50000; i++)
        fprintf(f, "k%d: 1\n", i);
    fclose(f);
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load(text, &opt, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out, NAME ":1:1: the configuration has more than 1000 keys\n"));
    free(out);
    free(text);
    cli_free(&opt);
}

/* Loads text (a stream the caller filled) and wants one error, saying want. */
static void one_error(char *text, const char *want)
{
    cli_options opt;
    fresh(&opt);
    int n;
    char *out = load(text, &opt, &n);
    if (n != 1 || !strstr(out, want))
        fail_msg("%d errors, wanted one with '%s':\n%s", n, want, out);
    free(out);
    free(text);
    cli_free(&opt);
}

/* Each count bound, crossed by one: sites, paths in a site, names in a
 * site, header rules in a site. */
static void count_bounds_are_crossed(void **state)
{
    (void)state;
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "sites:\n");
    for (int i = 0; i <= CONFIG_MAX_SITES; i++)
        fprintf(f, "  - names: s%d.test\n", i);
    fclose(f);
    one_error(text, "at most 256 sites");

    f = open_memstream(&text, &len);
    fprintf(f, "sites:\n  - default: true\n    paths:\n");
    for (int i = 0; i <= CONFIG_MAX_PATHS; i++)
        fprintf(f, "      - path: /p%d\n", i);
    fclose(f);
    one_error(text, "at most 256 paths in a site");

    f = open_memstream(&text, &len);
    fprintf(f, "sites:\n  - names:\n");
    for (int i = 0; i <= CONFIG_MAX_NAMES; i++)
        fprintf(f, "      - n%d.test\n", i);
    fclose(f);
    one_error(text, "at most 64 names in a site");

    f = open_memstream(&text, &len);
    fprintf(f, "sites:\n  - default: true\n    headers:\n      add:\n");
    for (int i = 0; i <= CONFIG_MAX_HEADER_RULES; i++)
        fprintf(f, "        X-H%d: v\n", i);
    fclose(f);
    one_error(text, "at most 64 header rules here");
}

/* ------------------------------------------------------------- proxies -- */

static void a_proxy_path_takes_every_key(void **state)
{
    (void)state;
    cli_options opt;
    load_ok(SITE_PATH("        proxy:\n"
                      "          to: [\"http://127.0.0.1:8080\", \"unix:/run/app.sock\"]\n"
                      "          balance: least-conn\n"
                      "          host: app.internal\n"
                      "          strip-prefix: true\n"
                      "          forwarded: both\n"
                      "          trust: [10.0.0.0/8, \"::1\", 192.168.1.7/32]\n"
                      "          keepalive: 64\n"
                      "          max-conns: 100\n"
                      "          idle-timeout: 2.5\n"
                      "          connect-timeout: 1\n"
                      "          first-byte-timeout: 30\n"
                      "          read-timeout: 45\n"
                      "          tunnel-timeout: 600\n"
                      "          max-fails: 5\n"
                      "          fail-timeout: 0.25\n"
                      "          health: /healthz\n"
                      "          health-interval: 2\n"
                      "      - path: /p/below\n" /* no handler: the proxy above serves it */
                      "        headers: {set: {X-A: b}}\n"
                      "      - path: /q\n"
                      "        proxy: {to: \"http://b.test\", keepalive: \"off\"}\n"),
            &opt);
    conf_path *p = opt.conf.sites[0].paths;
    assert_int_equal(opt.conf.sites[0].npaths, 3);
    assert_int_equal(p[0].handler, CONF_PROXY);
    const eddy_proxy_config *x = &p[0].proxy;
    assert_int_equal(x->nbackends, 2);
    assert_string_equal(x->backends[0], "http://127.0.0.1:8080");
    assert_string_equal(x->backends[1], "unix:/run/app.sock");
    assert_int_equal(x->balance, EDDY_BALANCE_LEAST_CONN);
    assert_string_equal(x->host, "app.internal");
    assert_true(p[0].strip_prefix);
    assert_null(x->strip_prefix); /* the owner's path, set when the proxy is made */
    assert_int_equal(x->forwarded, EDDY_FORWARDED_BOTH);
    assert_int_equal(x->ntrusted, 3);
    assert_string_equal(x->trusted[0], "10.0.0.0/8");
    assert_string_equal(x->trusted[1], "::1");
    assert_string_equal(x->trusted[2], "192.168.1.7/32");
    assert_int_equal(x->keepalive, 64);
    assert_false(x->no_keepalive);
    assert_int_equal(x->max_conns, 100);
    assert_int_equal(x->idle_ms, 2500);
    assert_int_equal(x->connect_ms, 1000);
    assert_int_equal(x->first_byte_ms, 30000);
    assert_int_equal(x->read_ms, 45000);
    assert_int_equal(x->tunnel_ms, 600000);
    assert_int_equal(x->max_fails, 5);
    assert_int_equal(x->fail_ms, 250);
    assert_string_equal(x->health_path, "/healthz");
    assert_int_equal(x->health_ms, 2000);
    assert_int_equal(p[1].handler, CONF_NO_HANDLER);

    /* Defaults: every field 0 (the engine's defaults), one backend given
     * as a lone value; keepalive off. */
    x = &p[2].proxy;
    assert_int_equal(p[2].handler, CONF_PROXY);
    assert_int_equal(x->nbackends, 1);
    assert_string_equal(x->backends[0], "http://b.test");
    assert_int_equal(x->balance, EDDY_BALANCE_ROUND_ROBIN);
    assert_null(x->host);
    assert_false(p[2].strip_prefix);
    assert_int_equal(x->forwarded, EDDY_FORWARDED_X);
    assert_int_equal(x->ntrusted, 0);
    assert_null(x->trusted);
    assert_true(x->no_keepalive);
    assert_int_equal(x->keepalive, 0);
    assert_int_equal(x->max_conns, 0);
    assert_int_equal(x->idle_ms + x->connect_ms + x->first_byte_ms + x->read_ms + x->tunnel_ms, 0);
    assert_int_equal(x->max_fails + x->fail_ms + x->health_ms, 0);
    assert_null(x->health_path);
    cli_free(&opt);

    /* Each enumeration's every word, as its enum has it. */
    static const char *const fw[] = {"x-forwarded", "forwarded", "both", "none"};
    for (int i = 0; i < 4; i++) {
        char text[160];
        snprintf(text, sizeof(text), SITE_PATH("        proxy: {to: \"http://a\", forwarded: %s, "
                                               "balance: round-robin}\n"), fw[i]);
        load_ok(text, &opt);
        assert_int_equal(opt.conf.sites[0].paths[0].proxy.forwarded, i);
        assert_int_equal(opt.conf.sites[0].paths[0].proxy.balance, EDDY_BALANCE_ROUND_ROBIN);
        cli_free(&opt);
    }
}

static void proxy_mistakes_are_refused_where_they_are(void **state)
{
    (void)state;
    /* to: required, each URL of the two schemes the proxy speaks. */
    expect_errors(SITE_PATH("        proxy: {balance: least-conn}\n"),
                  NAME ":5:9: proxy wants to: the backends requests go to (http://HOST[:PORT] or "
                  "unix:/PATH)\n");
    expect_errors(SITE_PATH("        proxy: {to: []}\n"),
                  NAME ":5:9: proxy wants to: the backends requests go to (http://HOST[:PORT] or "
                  "unix:/PATH)\n");
    expect_errors(SITE_PATH("        proxy: {to: [\"http://a\", \"https://b\", \"unix:s\"]}\n"),
                  NAME ":5:34: to wants http://HOST[:PORT] or unix:/PATH, not 'https://b'\n"
                  NAME ":5:47: to wants http://HOST[:PORT] or unix:/PATH, not 'unix:s'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"ftp://a\"}\n"),
                  NAME ":5:21: to wants http://HOST[:PORT] or unix:/PATH, not 'ftp://a'\n"
                  NAME ":5:9: proxy wants to: the backends requests go to (http://HOST[:PORT] or "
                  "unix:/PATH)\n");
    expect_errors(SITE_PATH("        proxy: x\n"),
                  NAME ":5:16: proxy wants a mapping of keys to values\n"
                  NAME ":5:9: proxy wants to: the backends requests go to (http://HOST[:PORT] or "
                  "unix:/PATH)\n");
    /* Enumerations. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", balance: random}\n"),
                  NAME ":5:42: balance is round-robin or least-conn, not 'random'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", forwarded: X-Forwarded}\n"),
                  NAME ":5:44: forwarded is x-forwarded, forwarded, both or none, not "
                  "'X-Forwarded'\n");
    /* keepalive: 1 to CONFIG_MAX_PROXY_KEEPALIVE, or off. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", keepalive: 0}\n"),
                  NAME ":5:44: keepalive wants a number from 1 to 10000, or off, not '0'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", keepalive: 10001}\n"),
                  NAME ":5:44: keepalive wants a number from 1 to 10000, or off, not '10001'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", keepalive: false}\n"),
                  NAME ":5:44: keepalive wants a number from 1 to 10000, or off, not 'false'\n");
    cli_options opt;
    load_ok(SITE_PATH("        proxy: {to: \"http://a\", keepalive: 10000}\n"), &opt);
    assert_int_equal(opt.conf.sites[0].paths[0].proxy.keepalive, CONFIG_MAX_PROXY_KEEPALIVE);
    cli_free(&opt);
    /* health: a path; its interval only with it. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", health: healthz}\n"),
                  NAME ":5:41: health wants a path starting with '/', like /health, not "
                  "'healthz'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", health-interval: 5}\n"),
                  NAME ":5:9: health-interval is how often health is checked, and there is no "
                  "health path\n");
    /* Numbers and seconds. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", max-fails: 0, max-conns: -1}\n"),
                  NAME ":5:44: max-fails wants a whole number from 1 to 1000, not '0'\n"
                  NAME ":5:58: max-conns wants a whole number from 0 to 4294967295, not '-1'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", connect-timeout: 0, read-timeout: "
                            "86401}\n"),
                  NAME ":5:50: connect-timeout wants seconds above 0 and at most a day (like 30 "
                  "or 0.5), not '0'\n"
                  NAME ":5:67: read-timeout wants seconds above 0 and at most a day (like 30 or "
                  "0.5), not '86401'\n");
    /* trust: addresses and CIDR blocks. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", trust: [10.0.0.0/33, \"::1/129\", "
                            "localhost, 10.0.0.0/]}\n"),
                  NAME ":5:41: trust wants an address or a CIDR block, like 10.0.0.0/8 or ::1, "
                  "not '10.0.0.0/33'\n"
                  NAME ":5:54: trust wants an address or a CIDR block, like 10.0.0.0/8 or ::1, "
                  "not '::1/129'\n"
                  NAME ":5:65: trust wants an address or a CIDR block, like 10.0.0.0/8 or ::1, "
                  "not 'localhost'\n"
                  NAME ":5:76: trust wants an address or a CIDR block, like 10.0.0.0/8 or ::1, "
                  "not '10.0.0.0/'\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", host: \"\", strip-prefix: yes}\n"),
                  NAME ":5:39: host wants the Host value sent to the backends\n"
                  NAME ":5:57: strip-prefix wants true or false, not 'yes'\n");
    /* Unknown keys, and one handler per path. */
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\", backends: x}\n"),
                  NAME ":5:33: unknown key 'backends' in proxy\n");
    expect_errors(SITE_PATH("        proxy: {to: \"http://a\"}\n        files: {root: /srv}\n"),
                  NAME ":6:9: a path has one handler: files, redirect, respond or proxy\n");
    expect_errors(SITE_PATH("        respond: {}\n        proxy: {to: \"http://a\"}\n"),
                  NAME ":6:9: a path has one handler: files, redirect, respond or proxy\n");
}

/* Bounds of a proxy's lists, crossed by one. */
static void proxy_bounds_are_crossed(void **state)
{
    (void)state;
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, SITE_PATH("        proxy:\n          to:\n"));
    for (int i = 0; i <= CONFIG_MAX_BACKENDS; i++)
        fprintf(f, "            - http://10.0.0.%d\n", i);
    fclose(f);
    one_error(text, "at most 64 backends in a proxy");

    f = open_memstream(&text, &len);
    fprintf(f, SITE_PATH("        proxy:\n          to: http://a\n          trust:\n"));
    for (int i = 0; i <= CONFIG_MAX_TRUSTED; i++)
        fprintf(f, "            - 10.0.0.%d\n", i);
    fclose(f);
    one_error(text, "at most 64 trusted addresses in a proxy");
}

/* cli_parse on argv alone (no file); its error in err. */
static int parse_args(int argc, char **argv, cli_options *opt, char *err, size_t err_len)
{
    err[0] = 0;
    return cli_parse(argc, argv, opt, err, err_len);
}

static void proxy_flag_is_parsed_and_checked(void **state)
{
    (void)state;
    cli_options opt;
    char err[512];
    char *good[] = {"eddy", "--proxy", "/api=http://127.0.0.1:8080,unix:/run/a.sock",
                    "--proxy=/=http://[::1]:9", NULL};
    assert_int_equal(parse_args(4, good, &opt, err, sizeof(err)), 0);
    assert_int_equal(opt.nproxies, 2);
    assert_string_equal(opt.proxies[0].path, "/api");
    assert_int_equal(opt.proxies[0].nbackends, 2);
    assert_string_equal(opt.proxies[0].backends[0], "http://127.0.0.1:8080");
    assert_string_equal(opt.proxies[0].backends[1], "unix:/run/a.sock");
    assert_string_equal(opt.proxies[1].path, "/");
    assert_int_equal(opt.proxies[1].nbackends, 1);
    assert_string_equal(opt.proxies[1].backends[0], "http://[::1]:9");
    assert_string_equal(opt.site_option, "--proxy"); /* of the one site of flags */
    cli_free(&opt);
    assert_int_equal(opt.nproxies, 0);

    static const struct {
        const char *value, *want;
    } bad[] = {
        {"api=http://a", "--proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, not "
                         "'api=http://a'"},
        {"/api", "--proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, not '/api'"},
        {"/api=", "--proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, not '/api='"},
        {"=http://a", "--proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, not "
                      "'=http://a'"},
        {"/api=https://a", "--proxy wants backends as http://HOST[:PORT] or unix:/PATH, not "
                           "'https://a'"},
        {"/api=http://a,", "--proxy wants backends as http://HOST[:PORT] or unix:/PATH, not ''"},
        {"/api=http://a,,http://b", "--proxy wants backends as http://HOST[:PORT] or unix:/PATH, "
                                    "not ''"},
        {"/api=HTTP://a", "--proxy wants backends as http://HOST[:PORT] or unix:/PATH, not "
                          "'HTTP://a'"},
        {"/a\nb=http://a", "--proxy must be one line of text"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"eddy", "--proxy", (char *)bad[i].value, NULL};
        assert_int_equal(parse_args(3, argv, &opt, err, sizeof(err)), -1);
        assert_string_equal(err, bad[i].want);
        cli_free(&opt);
    }

    /* The same path twice: two routes that would collide. */
    char *twice[] = {"eddy", "--proxy", "/a=http://x", "--proxy", "/a=http://y", NULL};
    assert_int_equal(parse_args(5, twice, &opt, err, sizeof(err)), -1);
    assert_string_equal(err, "--proxy routes /a twice");
    cli_free(&opt);

    /* CLI_MAX_PROXIES routes, then one more. */
    char *many[2 + 2 * (CLI_MAX_PROXIES + 1)];
    char specs[CLI_MAX_PROXIES + 1][32];
    int n = 1;
    many[0] = "eddy";
    for (int i = 0; i <= CLI_MAX_PROXIES; i++) {
        snprintf(specs[i], sizeof(specs[i]), "/p%d=http://a", i);
        many[n++] = "--proxy";
        many[n++] = specs[i];
    }
    many[n] = NULL;
    assert_int_equal(parse_args(n - 2, many, &opt, err, sizeof(err)), 0);
    assert_int_equal(opt.nproxies, CLI_MAX_PROXIES);
    cli_free(&opt);
    assert_int_equal(parse_args(n, many, &opt, err, sizeof(err)), -1);
    assert_string_equal(err, "at most 16 --proxy routes");
    cli_free(&opt);

    /* CONFIG_MAX_BACKENDS URLs, then one more. */
    char urls[(CONFIG_MAX_BACKENDS + 1) * 16 + 8];
    size_t at = (size_t)snprintf(urls, sizeof(urls), "/b=");
    for (int i = 0; i <= CONFIG_MAX_BACKENDS; i++)
        at += (size_t)snprintf(urls + at, sizeof(urls) - at, "%shttp://h%d", i ? "," : "", i);
    char *wide[] = {"eddy", "--proxy", urls, NULL};
    assert_int_equal(parse_args(3, wide, &opt, err, sizeof(err)), -1);
    assert_string_equal(err, "at most 64 backends in a --proxy");
    cli_free(&opt);
    *strrchr(urls, ',') = 0;
    assert_int_equal(parse_args(3, wide, &opt, err, sizeof(err)), 0);
    assert_int_equal(opt.proxies[0].nbackends, CONFIG_MAX_BACKENDS);
    cli_free(&opt);
}

static void proxy_key_is_the_flags(void **state)
{
    (void)state;
    /* The top-level key: a list of the flag's values, checked alike. */
    cli_options opt;
    load_ok("proxy: [\"/a=http://x\", \"/b=unix:/s,http://y:81\"]\n", &opt);
    assert_int_equal(opt.nproxies, 2);
    assert_string_equal(opt.proxies[1].path, "/b");
    assert_int_equal(opt.proxies[1].nbackends, 2);
    assert_string_equal(opt.proxies[1].backends[1], "http://y:81");
    assert_non_null(opt.site_option);
    cli_free(&opt);
    load_ok("proxy: /=http://x\n", &opt); /* a list key given one value */
    assert_int_equal(opt.nproxies, 1);
    cli_free(&opt);
    expect_errors("proxy: [\"/a=http://x\", \"/b=ftp://y\", \"b=http://z\"]\n",
                  NAME ":1:24: proxy wants backends as http://HOST[:PORT] or unix:/PATH, not "
                  "'ftp://y'\n"
                  NAME ":1:38: proxy wants PATH=URL[,URL...], like /api=http://127.0.0.1:8080, "
                  "not 'b=http://z'\n");
    /* Beside sites, it is refused as the other keys of the one site are. */
    expect_errors("sites: [{names: a.test}]\nproxy: /=http://x\n",
                  NAME ":2:1: proxy makes the one site of flags; with sites, give it in a site's "
                  "paths\n");

    /* The flag on the command line replaces the file's list. */
    char err[512], path[64];
    assert_int_equal(parse_file("proxy: [\"/a=http://x\", \"/b=http://y\"]\n", "--proxy=/c=http://z",
                                &opt, err, sizeof(err), path, sizeof(path)),
                     0);
    assert_int_equal(opt.nproxies, 1);
    assert_string_equal(opt.proxies[0].path, "/c");
    cli_free(&opt);
    unlink(path);
    /* ... and beside a file with sites, the flag is refused. */
    assert_int_equal(parse_file("sites: [{default: true}]\n", "--proxy=/=http://z", &opt, err,
                                sizeof(err), path, sizeof(path)),
                     -1);
    char want[256];
    snprintf(want, sizeof(want),
             "--proxy is for the one site flags make; with sites in %s, give it in a site's paths",
             path);
    assert_string_equal(err, want);
    cli_free(&opt);
    unlink(path);
}

/* site_build makes the proxies (eddy_proxy_new resolves, never connects:
 * port 9 need not listen) and says where one could not be made. */
static void proxies_are_built_into_the_sites(void **state)
{
    (void)state;
    eddy_loop *loop = eddy_loop_new();
    assert_non_null(loop);
    char err[512];
    cli_options opt;
    load_ok(SITE_PATH("        proxy: {to: \"http://127.0.0.1:9\", strip-prefix: true}\n"
                      "      - path: /p/below\n"
                      "        headers: {set: {X-A: b}}\n"
                      "      - path: /\n"
                      "        proxy: {to: [\"http://127.0.0.1:9\", \"unix:/nonexistent.sock\"]}\n"),
            &opt);
    eddy_sites *set = site_build(loop, &opt, err, sizeof(err));
    if (!set)
        fail_msg("site_build: %s", err);
    eddy_sites_free(set); /* never given to a server: off the loop is fine */
    cli_free(&opt);

    /* The engine's refusal, at the path's mark. */
    load_ok(SITE_PATH("        proxy: {to: \"http://127.0.0.1:8080/no-path-here\"}\n"), &opt);
    assert_null(site_build(loop, &opt, err, sizeof(err)));
    const char *want = NAME ":4:9: cannot proxy /p: ";
    if (strncmp(err, want, strlen(want)) != 0 || !err[strlen(want)])
        fail_msg("wanted '%s' and the engine's line, got '%s'", want, err);
    cli_free(&opt);

    /* A --proxy at "/" takes the files' place: no root is opened for it,
     * unless a --delay answers from the files. */
    char *root_proxy[] = {"eddy", "--root", "/nonexistent/root", "--proxy", "/=http://127.0.0.1:9",
                          "--proxy", "/api=unix:/nonexistent.sock", "--delay", "/slow=1", NULL};
    assert_int_equal(parse_args(7, root_proxy, &opt, err, sizeof(err)), 0);
    set = site_build(loop, &opt, err, sizeof(err));
    if (!set)
        fail_msg("site_build: %s", err);
    eddy_sites_free(set);
    cli_free(&opt);
    assert_int_equal(parse_args(9, root_proxy, &opt, err, sizeof(err)), 0);
    assert_null(site_build(loop, &opt, err, sizeof(err)));
    assert_string_equal(err, "cannot serve root '/nonexistent/root': No such file or directory");
    cli_free(&opt);
    char *bad_backend[] = {"eddy", "--proxy", "/api=http://127.0.0.1:8080/no-path-here", NULL};
    assert_int_equal(parse_args(3, bad_backend, &opt, err, sizeof(err)), 0);
    assert_null(site_build(loop, &opt, err, sizeof(err)));
    want = "cannot proxy /api: ";
    if (strncmp(err, want, strlen(want)) != 0 || !err[strlen(want)])
        fail_msg("wanted '%s' and the engine's line, got '%s'", want, err);
    cli_free(&opt);
    eddy_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_key_lands_in_the_model),
        cmocka_unit_test(handlers_take_their_defaults),
        cmocka_unit_test(switches_take_true_and_false),
        cmocka_unit_test(flag_site_keys_make_the_one_site),
        cmocka_unit_test(a_default_site_needs_no_names),
        cmocka_unit_test(unknown_keys_are_refused_in_every_mapping),
        cmocka_unit_test(wrong_types_are_refused),
        cmocka_unit_test(bad_values_are_refused),
        cmocka_unit_test(duplicates_are_refused),
        cmocka_unit_test(missing_parts_are_refused),
        cmocka_unit_test(whole_file_rules_are_checked),
        cmocka_unit_test(yaml_syntax_errors_say_where),
        cmocka_unit_test(error_count_matches_the_lines_written),
        cmocka_unit_test(errors_past_the_cap_are_not_written),
        cmocka_unit_test(alias_bombs_are_not_expanded),
        cmocka_unit_test(empty_and_comment_only_files_are_good),
        cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(oversized_input_is_refused),
        cmocka_unit_test(cli_parse_reads_the_file_and_checks_across_it),
        cmocka_unit_test(config_free_releases_everything),
        cmocka_unit_test(header_name_with_a_colon_is_refused),
        cmocka_unit_test(nul_in_a_key_is_refused),
        cmocka_unit_test(reader_errors_say_where),
        cmocka_unit_test(a_second_document_is_not_ignored),
        cmocka_unit_test(an_error_is_one_line),
        cmocka_unit_test(a_third_default_site_is_one_error),
        cmocka_unit_test(a_path_with_a_control_character_is_one_error),
        cmocka_unit_test(a_site_with_an_empty_names_list_is_refused),
        cmocka_unit_test(a_mapping_of_too_many_keys_is_refused),
        cmocka_unit_test(count_bounds_are_crossed),
        cmocka_unit_test(a_proxy_path_takes_every_key),
        cmocka_unit_test(proxy_mistakes_are_refused_where_they_are),
        cmocka_unit_test(proxy_bounds_are_crossed),
        cmocka_unit_test(proxy_flag_is_parsed_and_checked),
        cmocka_unit_test(proxy_key_is_the_flags),
        cmocka_unit_test(proxies_are_built_into_the_sites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
