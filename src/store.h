/*
 * store.h -- reporterd's side of MongoDB (mongo-c-driver 1.23).
 *
 * One single-threaded mongoc_client_t per process, created after fork,
 * with the timeouts of conf->limits (see rd_conf_budget() in conf.h).
 * Errors are sorted into classes:
 *
 *   RD_STORE_TRANSIENT  the database is away, busy, electing, or refuses
 *                       our credentials (they may be being rotated): try
 *                       the task again later.
 *   RD_STORE_PERMANENT  the request itself is wrong: trying again gives
 *                       the same answer.
 *   RD_STORE_TIMEOUT    the query ran out of mongodb.max_time_ms (server
 *                       code 50, MaxTimeMSExpired).  Permanent for this
 *                       task as far as the store knows (callers that test
 *                       only for RD_STORE_TRANSIENT treat it so); told
 *                       apart so that a caller can count timeouts.
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "conf.h"

struct rd_store;
struct _mongoc_collection_t;

enum rd_store_error_class {
    RD_STORE_TRANSIENT = 1,
    RD_STORE_PERMANENT,
    RD_STORE_TIMEOUT
};

#define RD_STORE_MAX_TIME_MS_EXPIRED  50    /* server error code */

typedef int (*rd_store_row_cb)(const bson_t *row, void *arg, char *err, size_t errlen);

/*
 * Create the client.  No I/O happens, except the DNS lookups of a
 * mongodb+srv:// uri.  NULL on failure, with err and *klass:
 * RD_STORE_TRANSIENT when those lookups failed (try again later),
 * RD_STORE_PERMANENT when the uri or its options are invalid.
 */
struct rd_store *rd_store_new(const struct rd_conf_mongo *conf, const char *appname,
                              int *klass, char *err, size_t errlen);
/* rd_store_new() for one-shot tools, which report any failure and stop. */
struct rd_store *rd_store_open(const struct rd_conf_mongo *conf, const char *appname,
                               char *err, size_t errlen);
void rd_store_close(struct rd_store *st);

/* The class of a libmongoc error (bson_error_t's domain, code, message). */
int  rd_store_classify(uint32_t domain, uint32_t code, const char *message);

/* A libmongoc error as "<message> (domain D, code C)" with its class. */
void rd_store_error(const bson_error_t *e, int *klass, char *err, size_t errlen);

/* The client, for modules with collections of their own (rollup.c). */
struct _mongoc_client_t *rd_store_client(struct rd_store *st);

/* RD_OK, or RD_ERROR with *klass set and err filled. */
int  rd_store_ping(struct rd_store *st, int *klass, char *err, size_t errlen);
int  rd_store_aggregate(struct rd_store *st, const bson_t *pipeline, int max_time_ms,
                        rd_store_row_cb cb, void *arg, int *klass,
                        char *err, size_t errlen);
/* The same on another collection handle of st's client (its own read
 * preference and concerns: rollup mode's). */
int  rd_store_aggregate_in(struct rd_store *st, struct _mongoc_collection_t *coll,
                           const bson_t *pipeline, int max_time_ms, rd_store_row_cb cb,
                           void *arg, int *klass, char *err, size_t errlen);

/* For reporterctl. */
int  rd_store_insert_many(struct rd_store *st, const bson_t **docs, size_t n,
                          char *err, size_t errlen);
int  rd_store_index_phone(struct rd_store *st, char *err, size_t errlen);
int  rd_store_drop(struct rd_store *st, char *err, size_t errlen);
/* Whether the records collection holds any document (*any 0 or 1). */
int  rd_store_any(struct rd_store *st, int *any, char *err, size_t errlen);

/* Route libmongoc's own log through rd_log (warnings and above as warn,
 * the rest as debug).  First thing in main: the driver's default handler
 * writes to stdout and stderr. */
void rd_store_capture_log(void);

#endif
