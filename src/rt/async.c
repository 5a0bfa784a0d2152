#include "rt/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct eddy_async {
    eddy_io io;
    eddy_loop *loop;
    eddy_callback cb;
    void *data;
};

static void on_wake(eddy_io *io, uint32_t events)
{
    (void)events;
    eddy_async *a = io->data;
    uint64_t n;
    /* Drain the counter: sends that piled up wake us once. */
    while (read(io->fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
        ;
    a->cb(a->data);
}

eddy_async *eddy_async_new(eddy_loop *loop, eddy_callback cb, void *data)
{
    eddy_async *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        free(a);
        return NULL;
    }
    a->loop = loop;
    a->cb = cb;
    a->data = data;
    a->io.cb = on_wake;
    a->io.data = a;
    /* Weak: waiting for a wake-up alone does not keep a loop running. */
    if (loop_io_add(loop, &a->io, fd, EPOLLIN | EPOLLET, true) < 0) {
        close(fd);
        free(a);
        return NULL;
    }
    return a;
}

void eddy_async_send(eddy_async *a)
{
    uint64_t one = 1;
    /* eventfd writes are atomic; EAGAIN only when the counter is full,
     * and then a wake-up is pending anyway. */
    ssize_t n = write(a->io.fd, &one, sizeof(one));
    (void)n;
}

void eddy_async_free(eddy_async *a)
{
    if (!a)
        return;
    loop_io_del(a->loop, &a->io, true);
    close(a->io.fd);
    free(a);
}
