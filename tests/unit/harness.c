#include "harness.h"
#include "rt/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void fx_write_file(fixture *fx, const char *name, const char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->root, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static fixture *fixture_new(const eddy_config *cfg, bool files)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->root, sizeof(fx->root), "/tmp/eddy-unit-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    fx_write_file(fx, "index.html", FX_INDEX, strlen(FX_INDEX));
    fx_write_file(fx, "404.html", FX_404, strlen(FX_404));
    fx->loop = eddy_loop_new();
    assert_non_null(fx->loop);
    loop_use_virtual_clock(fx->loop, 1000);
    assert_int_equal(eddy_server_new(fx->loop, cfg, &fx->srv), 0);
    if (!files)
        return fx;
    eddy_files_config fc = {.root = fx->root};
    assert_int_equal(eddy_files_new(fx->loop, &fc, &fx->files), 0);
    eddy_route r = {.path = "/", .prefix = true, .handler = eddy_files_handler, .data = fx->files};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
    return fx;
}

fixture *fx_new(const eddy_config *cfg) { return fixture_new(cfg, true); }
fixture *fx_new_without_files(const eddy_config *cfg) { return fixture_new(cfg, false); }

static int rm_entry(const char *root, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    return unlink(path);
}

void fx_free(fixture *fx)
{
    fx_run(fx);
    eddy_server_free(fx->srv);
    eddy_files_free(fx->files);
    fx_run(fx); /* deferred notifications of closed mocks */
    eddy_loop_free(fx->loop);
    rm_entry(fx->root, "index.html");
    rm_entry(fx->root, "404.html");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

void fx_route(fixture *fx, const char *path, eddy_handler h, void *data, bool body)
{
    eddy_route r = {.path = path, .body = body, .handler = h, .data = data};
    assert_int_equal(eddy_server_route(fx->srv, &r), 0);
}

mock_stream *fx_connect(fixture *fx)
{
    mock_stream *m = mock_stream_new(fx->loop);
    assert_non_null(m);
    assert_non_null(server_attach(fx->srv, mock_stream_base(m), false));
    return m;
}

void fx_run(fixture *fx) { loop_advance(fx->loop, 0); }
void fx_advance(fixture *fx, uint64_t ms) { loop_advance(fx->loop, ms); }

char *fx_output(mock_stream *m)
{
    size_t len;
    const char *out = mock_output(m, &len);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, out, len);
    copy[len] = 0;
    return copy;
}

void assert_before(const char *out, const char *first, const char *second)
{
    const char *a = strstr(out, first), *b = strstr(out, second);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
}

int count_of(const char *h, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = strstr(h, needle); p; p = strstr(p + nl, needle))
        n++;
    return n;
}

static char *exchange(fixture *fx, const char *bytes, bool bytewise, bool *closed)
{
    mock_stream *m = fx_connect(fx);
    if (bytewise)
        mock_push_bytewise(m, bytes);
    else
        mock_push_str(m, bytes);
    fx_run(fx);
    char *out = fx_output(m);
    if (closed)
        *closed = mock_ended(m);
    /* Hang up so the connection is gone before its mock is. */
    mock_push_reset(m);
    fx_run(fx);
    mock_stream_free(m);
    return out;
}

char *fx_exchange(fixture *fx, const char *bytes, bool *closed)
{
    return exchange(fx, bytes, false, closed);
}

char *fx_exchange_bytewise(fixture *fx, const char *bytes, bool *closed)
{
    return exchange(fx, bytes, true, closed);
}

bool mock_ended(const mock_stream *m) { return mock_closed(m) || mock_write_shut(m); }

int connect_tcp(const char *bound)
{
    char host[64], port[8];
    assert_int_equal(parse_host_port(bound, host, sizeof(host), port, sizeof(port)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* Completes in the kernel whether or not the server accepts yet: the
     * backlog holds it. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}
