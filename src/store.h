/*
 * store.h -- reporterd's side of MongoDB (mongo-c-driver 1.23).
 *
 * One single-threaded mongoc_client_t per process, created after fork,
 * with the timeouts of conf->limits (see rd_conf_budget() in conf.h).
 * Errors are sorted into transient (the database is away or busy: try
 * the task again later) and permanent (the request itself is wrong).
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include <stddef.h>

#include <bson/bson.h>

#include "conf.h"

struct rd_store;

enum rd_store_error_class {
    RD_STORE_TRANSIENT = 1,
    RD_STORE_PERMANENT
};

typedef int (*rd_store_row_cb)(const bson_t *row, void *arg, char *err, size_t errlen);

struct rd_store *rd_store_open(const struct rd_conf_mongo *conf, const char *appname,
                               char *err, size_t errlen);
void rd_store_close(struct rd_store *st);

/* RD_OK, or RD_ERROR with *klass set and err filled. */
int  rd_store_ping(struct rd_store *st, int *klass, char *err, size_t errlen);
int  rd_store_aggregate(struct rd_store *st, const bson_t *pipeline, int max_time_ms,
                        rd_store_row_cb cb, void *arg, int *klass,
                        char *err, size_t errlen);

/* For reporterctl. */
int  rd_store_insert_many(struct rd_store *st, const bson_t **docs, size_t n,
                          char *err, size_t errlen);
int  rd_store_index_phone(struct rd_store *st, char *err, size_t errlen);
int  rd_store_drop(struct rd_store *st, char *err, size_t errlen);

#endif
