#include "core/front.h"
#include "core/access_log.h"
#include "core/date.h"
#include "rt/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int front_init(front *f, eddy_loop *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    front_set_hsts(f, 0);
    f->sites = site_table_new();
    if (!f->sites || !(f->sites->fallback = site_table_add(f->sites))) {
        site_table_unref(f->sites);
        f->sites = NULL;
        return -ENOMEM;
    }
    return 0;
}

void front_set_hsts(front *f, unsigned seconds)
{
    f->hsts_value[0] = 0;
    if (seconds)
        snprintf(f->hsts_value, sizeof(f->hsts_value), "max-age=%u", seconds);
    f->hsts = (resp_field){"Strict-Transport-Security", f->hsts_value, 25,
                           (uint32_t)strlen(f->hsts_value)};
}

void front_free(front *f)
{
    header_rules_free(&f->headers);
    free((char *)f->every_site.path);
    free((char *)f->every_site.methods);
    f->every_site.path = f->every_site.methods = NULL;
    site_table_unref(f->sites);
    f->sites = NULL;
    access_log_close(f->log);
    f->log = NULL;
    request_pool_free(&f->requests);
}

int front_use_sites(front *f, site_table *t)
{
    t->named = false;
    for (size_t i = 0; i < t->nsites; i++)
        t->named |= t->sites[i]->nnames > 0 || t->sites[i]->nlisteners > 0;
    for (size_t i = 0; f->every_site.path && i < t->nsites; i++) {
        int rc = site_add_route(t->sites[i], &f->every_site);
        if (rc < 0) {
            site_table_unref(t);
            return rc;
        }
    }
    site_table_unref(f->sites);
    f->sites = t;
    if (t->on_use)
        t->on_use(t->use_data);
    return 0;
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
