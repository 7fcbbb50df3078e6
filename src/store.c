/*
 * store.c -- MongoDB adapter: client, aggregation, error classes, and the
 * bulk inserts reporterctl uses, and the driver's log hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "log.h"
#include "store.h"
#include "util.h"

struct rd_store {
    mongoc_client_t     *client;
    mongoc_collection_t *coll;
    const struct rd_conf_mongo *conf;
};

struct rd_store *
rd_store_new(const struct rd_conf_mongo *c, const char *appname, int *klass,
             char *err, size_t errlen)
{
    const struct rd_conf_mongo_limits *l = &c->limits;
    struct rd_store *st;
    mongoc_uri_t    *uri;
    bson_error_t     e;

    *klass = RD_STORE_PERMANENT;
    uri = mongoc_uri_new_with_error(c->uri, &e);
    if (uri == NULL) {
        snprintf(err, errlen, "mongodb.uri: %s", e.message);
        return NULL;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, appname);
    /* Exactly what rd_conf_budget() counted (the uri's own values when it
     * sets them): every blocking call stays inside the heartbeat budget. */
    if (!mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                        l->connect_timeout_ms)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                           l->server_selection_timeout_ms)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_SERVERSELECTIONTRYONCE,
                                          l->server_selection_try_once)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                           l->socket_timeout_ms)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, l->retry_reads)) {
        mongoc_uri_destroy(uri);
        snprintf(err, errlen, "mongodb.uri: cannot set the driver's timeouts");
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        mongoc_uri_destroy(uri);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->conf = c;
    st->client = mongoc_client_new_from_uri_with_error(uri, &e);
    if (st->client == NULL) {
        /* A mongodb+srv:// uri's hosts come from DNS, here: a failed
         * lookup, or records being changed, is fixed from outside. */
        if (mongoc_uri_get_srv_hostname(uri) != NULL)
            *klass = RD_STORE_TRANSIENT;
        snprintf(err, errlen, "mongodb client: %s", e.message);
        mongoc_uri_destroy(uri);
        free(st);
        return NULL;
    }
    mongoc_uri_destroy(uri);
    mongoc_client_set_error_api(st->client, MONGOC_ERROR_API_VERSION_2);
    st->coll = mongoc_client_get_collection(st->client, c->database, c->collection);
    return st;
}

struct rd_store *
rd_store_open(const struct rd_conf_mongo *c, const char *appname, char *err, size_t errlen)
{
    int  klass;

    return rd_store_new(c, appname, &klass, err, errlen);
}

void
rd_store_close(struct rd_store *st)
{
    if (st == NULL)
        return;
    mongoc_collection_destroy(st->coll);
    mongoc_client_destroy(st->client);
    free(st);
}

/* Server error codes that mean "away, busy or electing", or credentials
 * being rotated (18 AuthenticationFailed): try again later. */
static int
transient_code(uint32_t code)
{
    static const uint32_t codes[] = {
        6, 7, 18, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150
    };
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

int
rd_store_classify(uint32_t domain, uint32_t code, const char *message)
{
    switch (domain) {
    case MONGOC_ERROR_STREAM:
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_PROTOCOL:
        return RD_STORE_TRANSIENT;
    case MONGOC_ERROR_CLIENT:
        return code == MONGOC_ERROR_CLIENT_AUTHENTICATE ? RD_STORE_TRANSIENT
                                                        : RD_STORE_PERMANENT;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_QUERY:
        if (code == RD_STORE_MAX_TIME_MS_EXPIRED)
            return RD_STORE_TIMEOUT;
        if (transient_code(code) || strstr(message, "not master") != NULL
            || strstr(message, "node is recovering") != NULL)
            return RD_STORE_TRANSIENT;
        return RD_STORE_PERMANENT;
    default:
        return RD_STORE_PERMANENT;
    }
}

void
rd_store_error(const bson_error_t *e, int *klass, char *err, size_t errlen)
{
    *klass = rd_store_classify(e->domain, e->code, e->message);
    snprintf(err, errlen, "%s (domain %u, code %u)", e->message, e->domain, e->code);
}

mongoc_client_t *
rd_store_client(struct rd_store *st)
{
    return st->client;
}

int
rd_store_ping(struct rd_store *st, int *klass, char *err, size_t errlen)
{
    bson_t       cmd = BSON_INITIALIZER;
    bson_error_t e;
    bool         ok;

    BSON_APPEND_INT32(&cmd, "ping", 1);
    ok = mongoc_client_command_simple(st->client, st->conf->database, &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    if (!ok) {
        rd_store_error(&e, klass, err, errlen);
        return RD_ERROR;
    }
    return RD_OK;
}

int
rd_store_aggregate(struct rd_store *st, const bson_t *pipeline, int max_time_ms,
                   rd_store_row_cb cb, void *arg, int *klass, char *err, size_t errlen)
{
    return rd_store_aggregate_in(st, st->coll, pipeline, max_time_ms, cb, arg, klass,
                                 err, errlen);
}

int
rd_store_aggregate_in(struct rd_store *st, struct _mongoc_collection_t *coll,
                      const bson_t *pipeline, int max_time_ms, rd_store_row_cb cb, void *arg,
                      int *klass, char *err, size_t errlen)
{
    mongoc_cursor_t *cur;
    const bson_t    *row;
    bson_t           opts = BSON_INITIALIZER;
    bson_error_t     e;
    int              rc = RD_OK;

    BSON_APPEND_INT32(&opts, "maxTimeMS", max_time_ms);
    /* A $group past 100 MB (a rollup report's tail grouped by _id, a
     * batch being folded) spills to disk instead of failing. */
    BSON_APPEND_BOOL(&opts, "allowDiskUse", true);
    (void) st;
    cur = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, &opts, NULL);
    while (rc == RD_OK && mongoc_cursor_next(cur, &row)) {
        if (cb(row, arg, err, errlen) != 0) {
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
        }
    }
    if (rc == RD_OK && mongoc_cursor_error(cur, &e)) {
        rd_store_error(&e, klass, err, errlen);
        rc = RD_ERROR;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    return rc;
}

int
rd_store_insert_many(struct rd_store *st, const bson_t **docs, size_t n,
                     char *err, size_t errlen)
{
    bson_error_t e;
    bson_t       opts = BSON_INITIALIZER;
    bool         ok;

    BSON_APPEND_BOOL(&opts, "ordered", false);
    ok = mongoc_collection_insert_many(st->coll, docs, n, &opts, NULL, &e);
    bson_destroy(&opts);
    if (!ok) {
        snprintf(err, errlen, "insert: %s", e.message);
        return RD_ERROR;
    }
    return RD_OK;
}

int
rd_store_index_phone(struct rd_store *st, char *err, size_t errlen)
{
    bson_t       keys = BSON_INITIALIZER, cmd = BSON_INITIALIZER, arr, idx;
    bson_error_t e;
    bool         ok;

    BSON_APPEND_INT32(&keys, "phone", 1);
    BSON_APPEND_UTF8(&cmd, "createIndexes", st->conf->collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
    BSON_APPEND_DOCUMENT(&idx, "key", &keys);
    BSON_APPEND_UTF8(&idx, "name", "phone_1");
    bson_append_document_end(&arr, &idx);
    bson_append_array_end(&cmd, &arr);
    ok = mongoc_collection_write_command_with_opts(st->coll, &cmd, NULL, NULL, &e);
    bson_destroy(&keys);
    bson_destroy(&cmd);
    if (!ok) {
        snprintf(err, errlen, "createIndexes: %s", e.message);
        return RD_ERROR;
    }
    return RD_OK;
}

int
rd_store_any(struct rd_store *st, int *any, char *err, size_t errlen)
{
    bson_t           filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
    const bson_t    *doc;
    bson_error_t     e;
    mongoc_cursor_t *cur;
    int              rc = RD_OK;

    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);
    cur = mongoc_collection_find_with_opts(st->coll, &filter, &opts, NULL);
    *any = mongoc_cursor_next(cur, &doc);
    if (!*any && mongoc_cursor_error(cur, &e)) {
        snprintf(err, errlen, "find: %s", e.message);
        rc = RD_ERROR;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return rc;
}

int
rd_store_drop(struct rd_store *st, char *err, size_t errlen)
{
    bson_error_t e;

    if (!mongoc_collection_drop_with_opts(st->coll, NULL, &e)
        && strstr(e.message, "ns not found") == NULL) {
        snprintf(err, errlen, "drop: %s", e.message);
        return RD_ERROR;
    }
    return RD_OK;
}

/* Runs under the driver's log mutex: no driver call in here. */
static void
mongoc_handler(mongoc_log_level_t level, const char *domain,
               const char *message, void *user_data)
{
    (void) user_data;
    rd_log(level <= MONGOC_LOG_LEVEL_WARNING ? RD_LOG_WARN : RD_LOG_DEBUG,
           "mongoc %s: %s", domain, message);
}

void
rd_store_capture_log(void)
{
    mongoc_log_set_handler(mongoc_handler, NULL);
}
