#include "core/front.h"
#include "core/access_log.h"
#include "core/date.h"
#include "rt/loop.h"

#include <errno.h>
#include <string.h>

int front_init(front *f, eddy_loop *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->sites = site_table_new();
    if (!f->sites || !(f->sites->fallback = site_table_add(f->sites))) {
        site_table_unref(f->sites);
        f->sites = NULL;
        return -ENOMEM;
    }
    return 0;
}

void front_free(front *f)
{
    site_table_unref(f->sites);
    f->sites = NULL;
    access_log_close(f->log);
    f->log = NULL;
    request_pool_free(&f->requests);
}

void front_use_sites(front *f, site_table *t)
{
    site_table_unref(f->sites);
    f->sites = t;
}

const char *front_date(front *f)
{
    time_t now = loop_wall_sec(f->loop);
    if (now != f->date_sec) {
        http_date_format(now, f->date); /* once a second, not per response */
        f->date_sec = now;
    }
    return f->date;
}
