/*
 * status_tasks.c -- GET /tasks/<correlation_id> for the status process:
 * the journal's documents for one id, read on a MongoDB client pool made
 * after fork and after the privilege drop, each lookup with a time limit
 * of its own.  The status process serves connections on threads of their
 * own when this route is on, so a slow database holds back only the
 * lookups, never /healthz or /metrics; and a lookup waits at most
 * POP_WAIT_MS for one of the pool's clients (all busy: 503).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "journal.h"
#include "json_check.h"
#include "status_tasks.h"
#include "store.h"
#include "util.h"

#define POP_WAIT_MS  2000

static mongoc_client_pool_t *pool;

/* A client of the pool, waiting at most POP_WAIT_MS; NULL: none came. */
static mongoc_client_t *
pop_bounded(void)
{
    int64_t          until = rd_now_ms() + POP_WAIT_MS;
    mongoc_client_t *c;

    while ((c = mongoc_client_pool_try_pop(pool)) == NULL && rd_now_ms() < until)
        rd_sleep_ms(10, NULL);
    return c;
}
static const struct rd_conf *tconf;

int
rd_status_tasks_open(const struct rd_conf *c, char *err, size_t errlen)
{
    mongoc_uri_t *uri;
    bson_error_t  e;

    uri = mongoc_uri_new_with_error(c->mongodb.uri, &e);
    if (uri == NULL) {
        snprintf(err, errlen, "mongodb.uri: %s", e.message);
        return RD_ERROR;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "reporterd status");
    if (!mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, RD_JOURNAL_CONNECT_MS)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                           RD_JOURNAL_CONNECT_MS)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                           RD_JOURNAL_LOOKUP_MS + 1000)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, 16)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false)) {
        mongoc_uri_destroy(uri);
        snprintf(err, errlen, "mongodb.uri: cannot set the lookups' timeouts");
        return RD_ERROR;
    }
    pool = mongoc_client_pool_new_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (pool == NULL) {
        snprintf(err, errlen, "mongodb client pool: %s", e.message);
        return RD_ERROR;
    }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    tconf = c;
    return RD_OK;
}

void
rd_status_tasks_close(void)
{
    if (pool != NULL)
        mongoc_client_pool_destroy(pool);
    pool = NULL;
}

struct found {
    char   *buf;
    size_t  len, cap;
    int     n;
    int     failed;
};

static int
add(struct found *f, const char *s, size_t n)
{
    char *p;

    if (f->len + n + 1 > f->cap) {
        f->cap = (f->len + n + 1) * 2;
        p = realloc(f->buf, f->cap);
        if (p == NULL) {
            f->failed = 1;
            return -1;
        }
        f->buf = p;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    f->buf[f->len] = '\0';
    return 0;
}

static int
collect(const bson_t *doc, void *arg)
{
    struct found *f = arg;
    size_t        n;
    char         *json = bson_as_relaxed_extended_json(doc, &n);
    int           rc;

    if (json == NULL) {
        f->failed = 1;
        return -1;
    }
    rc = add(f, f->n > 0 ? "," : "[", 1) == 0 && add(f, json, n) == 0 ? 0 : -1;
    bson_free(json);
    f->n++;
    return rc;
}

/* The body {"error": text} and its length: valid JSON whatever bytes text
 * holds (a driver's message may be cut in the middle of a character). */
static char *
json_error(const char *text, size_t *len)
{
    char *q = rd_json_quote(text, strlen(text)), *out;
    int   n;

    if (q == NULL)
        return NULL;
    out = malloc(strlen(q) + 16);
    n = out == NULL ? -1 : sprintf(out, "{\"error\":%s}\n", q);
    free(q);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t) n;
    return out;
}

/* An id some task can have: 1 to RD_CORRELATION_ID_MAX bytes of UTF-8
 * (task ids are JSON strings or integers' text; NUL never reaches here,
 * see status.c). */
static int
possible_id(const char *id)
{
    const char *end = id + strlen(id);
    size_t      n;

    if (id == end || end - id > RD_CORRELATION_ID_MAX)
        return 0;
    for (; id < end; id += n)
        if ((n = rd_utf8_seq(id, end)) == 0)
            return 0;
    return 1;
}

char *
rd_status_tasks_get(const char *id, unsigned *code, size_t *len)
{
    mongoc_client_t *client;
    struct found     f = { NULL, 0, 0, 0, 0 };
    bson_t           filter;
    char             err[512] = "", text[1024] = "";
    int              klass = 0, rc;

    *len = 0;
    if (pool == NULL || !possible_id(id)) {
        *code = 404;
        return json_error("no task has that correlation_id", len);
    }
    rd_journal_filter_ids(&filter, &id, 1, 0);
    client = pop_bounded();
    if (client == NULL) {
        bson_destroy(&filter);
        *code = 503;
        return json_error("every database client is busy with lookups (the database is slow "
                          "or away): try again", len);
    }
    rc = rd_journal_find(client, tconf, &filter, collect, &f, &klass, err, sizeof(err));
    mongoc_client_pool_push(pool, client);
    bson_destroy(&filter);
    if (rc != RD_OK || f.failed) {
        free(f.buf);
        *code = rc != RD_OK ? 503 : 500;
        snprintf(text, sizeof(text), "the journal cannot be read now: %s",
                 rc != RD_OK ? (err[0] != '\0' ? err : "no reason given") : "out of memory");
        return json_error(text, len);
    }
    if (f.n == 0) {
        *code = 404;
        snprintf(text, sizeof(text), "no task has the correlation_id \"%s\"", id);
        return json_error(text, len);
    }
    /* one document as itself, several as an array */
    if (add(&f, f.n > 1 ? "]\n" : "\n", f.n > 1 ? 2 : 1) != 0) {
        free(f.buf);
        return NULL;
    }
    *code = 200;
    *len = f.len;
    if (f.n == 1) {
        memmove(f.buf, f.buf + 1, f.len);   /* drop the "[" */
        *len = f.len - 1;
    }
    return f.buf;
}
