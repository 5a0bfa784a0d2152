#include "core/response.h"
#include "core/access_log.h"
#include "metrics/metrics.h"
#include "core/fields.h"
#include "core/request.h"
#include "core/front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *status_reason(int status)
{
    switch (status) {
#define REASON(code, text) case code: return text;
    RESPONSE_STATUSES(REASON)
#undef REASON
    default: return "Unknown";
    }
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

static void drop_body(response *resp)
{
    if (resp->file)
        resp->file->release(resp->file);
    free(resp->parts);
    resp->file = NULL;
    resp->parts = NULL;
    resp->data = NULL;
    resp->data_len = 0;
}

/* Fields whose meaning is eddy's: message framing and connection
 * management (RFC 9110 §7.6.1, RFC 9112 §6), and those eddy writes itself. */
static const char *const owned_fields[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "proxy-connection", "date", "server", "content-type",
};

bool response_value_ok(const char *value, size_t value_len)
{
    if (value_len > UINT32_MAX / 2 || !field_value_ok(value, value_len))
        return false;
    /* Surrounding whitespace is not part of a value. */
    return !value_len || (value[0] != ' ' && value[0] != '\t' && value[value_len - 1] != ' ' &&
                          value[value_len - 1] != '\t');
}

int response_field_check(const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0 || name_len > UINT16_MAX)
        return -EINVAL;
    for (size_t i = 0; i < name_len; i++)
        if (!field_is_tchar((unsigned char)name[i]))
            return -EINVAL;
    if (!response_value_ok(value, value_len))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(owned_fields) / sizeof(owned_fields[0]); i++)
        if (strlen(owned_fields[i]) == name_len && strncasecmp(name, owned_fields[i], name_len) == 0)
            return -EPERM;
    return 0;
}

static bool same_name(const resp_field *a, const resp_field *b)
{
    return a->name_len == b->name_len && strncasecmp(a->name, b->name, a->name_len) == 0;
}

static size_t drop_named(resp_field *f, size_t n, const resp_field *name)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!same_name(&f[i], name))
            f[kept++] = f[i];
    return kept;
}

/* The operator's rules over the fields gathered so far: SET and REMOVE
 * drop each field of the name (eddy's and the handler's alike), SET and
 * ADD put one among eddy's, so the handler's stay last (eddy.h promises
 * them after the operator's). */
static void apply_rules(resp_field *own, size_t *nown, resp_field *handler, size_t *nhandler,
                        const header_rules *rules)
{
    for (size_t r = 0; r < rules->n; r++) {
        const header_rule *rule = &rules->rule[r];
        if (rule->op != HEADER_ADD) {
            *nown = drop_named(own, *nown, &rule->field);
            *nhandler = drop_named(handler, *nhandler, &rule->field);
        }
        if (rule->op != HEADER_REMOVE && *nown + *nhandler < RESPONSE_FIELDS_ALL)
            own[(*nown)++] = rule->field;
    }
}

/* The response's own fields and Strict-Transport-Security, what the
 * server's, the site's and the route's rules make of them, then the
 * handler's. */
static size_t all_fields(const request *req, const response *resp, resp_field *out)
{
    const front *f = req->front;
    resp_field handler[RESPONSE_MAX_FIELDS];
    size_t n = 0, nh = 0;
    for (size_t i = 0; i < resp->nfields && n < RESPONSE_FIELDS_ALL; i++)
        out[n++] = resp->fields[i];
    if (req->secure && f->hsts.value_len && n < RESPONSE_FIELDS_ALL)
        out[n++] = f->hsts;
    const char *p = req->extra;
    for (unsigned i = 0; i < req->nextra && nh < RESPONSE_MAX_FIELDS; i++) {
        size_t nl = strlen(p), vl = strlen(p + nl + 1);
        handler[nh++] = (resp_field){p, p + nl + 1, (uint32_t)nl, (uint32_t)vl};
        p += nl + vl + 2;
    }
    apply_rules(out, &n, handler, &nh, &f->headers);
    apply_rules(out, &n, handler, &nh, &req->site->headers);
    if (req->route)
        apply_rules(out, &n, handler, &nh, &req->route->headers);
    for (size_t i = 0; i < nh && n < RESPONSE_FIELDS_ALL; i++)
        out[n++] = handler[i];
    return n;
}

void response_with_fields(request *req, response *resp,
                          void (*send)(request *req, const response *resp))
{
    const front *f = req->front;
    if (!f->headers.n && !req->site->headers.n && !req->nextra &&
        !(req->secure && f->hsts.value_len) && !(req->route && req->route->headers.n)) {
        send(req, resp);
        return;
    }
    resp_field fields[RESPONSE_FIELDS_ALL];
    size_t n = all_fields(req, resp, fields);
    resp->fields = fields;
    resp->nfields = n;
    send(req, resp);
    resp->fields = NULL; /* they were on this stack */
    resp->nfields = 0;
}

void response_send(request *req, response *resp)
{
    if (req->answered || req->streaming) {
        drop_body(resp);
        return;
    }
    if (req->aborted) { /* the client left: nothing to send, just let go */
        drop_body(resp);
        req->proto->finish(req);
        return;
    }
    if (!status_has_body(resp->status)) {
        resp->content_length = -1;
        drop_body(resp);
    } else if (req->is_head) {
        drop_body(resp); /* the length a GET would get stays */
    }
    response_with_fields(req, resp, req->proto->respond);
    front *f = req->front;
    if (f->log && resp->status >= 200)
        access_log_response(f->log, req, resp->status, req->is_head ? 0 : resp->content_length);
    if (f->metrics)
        metrics_response(f->metrics, req, resp->status);
    req->proto->finish(req);
}

void response_simple(request *req, int status, const resp_field *fields, size_t nfields)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, status_reason(status));
    bool has_body = status_has_body(status);
    response resp = {
        .status = status,
        .content_type = has_body ? "text/plain; charset=utf-8" : NULL,
        .content_length = has_body ? n : -1,
        .fields = fields,
        .nfields = nfields,
        .data = body,
        .data_len = has_body ? (size_t)n : 0,
    };
    response_send(req, &resp);
}

/* ------------------------------------------------------------ public API -- */

int eddy_response_field(eddy_request *h, const char *name, const char *value)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    if (req->answered || req->streaming)
        return -EALREADY;
    if (!name || !value)
        return -EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    int rc = response_field_check(name, nl, value, vl);
    if (rc < 0)
        return rc;
    if (req->nextra >= RESPONSE_MAX_FIELDS)
        return -ENOSPC;
    size_t need = (size_t)req->extra_len + nl + vl + 2;
    if (need > req->extra_cap) {
        size_t cap = req->extra_cap ? req->extra_cap : 128;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(req->extra, cap);
        if (!nb)
            return -ENOMEM;
        req->extra = nb;
        req->extra_cap = (uint32_t)cap;
    }
    memcpy(req->extra + req->extra_len, name, nl + 1);
    memcpy(req->extra + req->extra_len + nl + 1, value, vl + 1);
    req->extra_len = (uint32_t)need;
    req->nextra++;
    return 0;
}

int response_head_check(const request *req, int status, const char *content_type)
{
    if (req->answered || req->streaming)
        return -EALREADY;
    if (status < 200 || status > 999)
        return -EINVAL; /* a 1xx is not an answer */
    if (content_type && !response_value_ok(content_type, strlen(content_type)))
        return -EINVAL; /* it goes into the head as it is */
    return 0;
}

int eddy_respond(eddy_request *h, int status, const char *content_type, const void *body,
                 size_t len)
{
    request *req = request_of(h);
    if (!req)
        return -ESTALE;
    int rc = response_head_check(req, status, content_type);
    if (rc < 0)
        return rc;
    response resp = {
        .status = status,
        .content_type = content_type,
        .content_length = (int64_t)len,
        .data = body,
        .data_len = len,
    };
    response_send(req, &resp);
    return 0;
}
