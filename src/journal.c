/*
 * journal.c -- the task journal (journal.h): its documents, the worker's
 * writer with its own short limits, the indexes, and the lookups.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

struct rd_journal {
    char                   host[256];
    mongoc_client_t       *client;
    mongoc_collection_t   *coll;
    const struct rd_conf  *conf;
};

static const char *const outcome_names[RD_OUT_MAX] = {
    "complete", "error", "requeued", "dead_lettered"
};

/* The result's top-level fields, its data array cut where the document
 * would pass RD_JOURNAL_MAX_RESULT. */
static void
append_result(bson_t *set, const bson_t *full, int64_t json_len)
{
    bson_iter_t it, data;
    bson_t      res, arr, note;
    int64_t     total = 0, kept = 0, bytes = 0;
    char        key[24];
    const char *k;

    if (full->len <= RD_JOURNAL_MAX_RESULT) {
        BSON_APPEND_DOCUMENT(set, "result", full);
        BSON_APPEND_NULL(set, "result_truncated");
        return;
    }
    BSON_APPEND_DOCUMENT_BEGIN(set, "result", &res);
    if (bson_iter_init(&it, full)) {
        while (bson_iter_next(&it)) {
            if (strcmp(bson_iter_key(&it), "data") != 0 || !BSON_ITER_HOLDS_ARRAY(&it)) {
                bson_append_iter(&res, NULL, 0, &it);
                continue;
            }
            bson_append_array_begin(&res, "data", 4, &arr);
            if (bson_iter_recurse(&it, &data)) {
                while (bson_iter_next(&data)) {
                    const uint8_t *p;
                    uint32_t       n = 64;

                    total++;
                    if (BSON_ITER_HOLDS_DOCUMENT(&data))
                        bson_iter_document(&data, &n, &p);
                    bytes += n + 16;
                    if (bytes > RD_JOURNAL_MAX_RESULT - RD_JOURNAL_MAX_RESULT / 16)
                        continue;
                    bson_uint32_to_string((uint32_t) kept, &k, key, sizeof(key));
                    bson_append_iter(&arr, k, -1, &data);
                    kept++;
                }
            }
            bson_append_array_end(&res, &arr);
        }
    }
    bson_append_document_end(set, &res);
    BSON_APPEND_DOCUMENT_BEGIN(set, "result_truncated", &note);
    BSON_APPEND_INT64(&note, "json_bytes", json_len);
    BSON_APPEND_INT64(&note, "phones", total);
    BSON_APPEND_INT64(&note, "phones_kept", kept);
    bson_append_document_end(set, &note);
}

/* A dead letter's first bytes: text when they are UTF-8, else binary. */
static void
append_body(bson_t *set, const char *body, size_t len)
{
    size_t n = len < RD_JOURNAL_MAX_BODY ? len : RD_JOURNAL_MAX_BODY;

    /* never cut a UTF-8 sequence in two */
    while (n > 0 && n < len && ((unsigned char) body[n] & 0xc0) == 0x80)
        n--;
    BSON_APPEND_INT64(set, "body_size", (int64_t) len);
    if (bson_utf8_validate(body, n, false))
        bson_append_utf8(set, "body_prefix", -1, body, (int) n);
    else
        bson_append_binary(set, "body_prefix", -1, BSON_SUBTYPE_BINARY, (const uint8_t *) body,
                           (uint32_t) (len < RD_JOURNAL_MAX_BODY ? len : RD_JOURNAL_MAX_BODY));
}

int
rd_journal_update(const struct rd_journal_entry *e, bson_t *selector, bson_t *update,
                  char *err, size_t errlen)
{
    bson_t       set, worker, inc, push, each, arr;
    bson_t       full;
    bson_error_t be;

    bson_init(selector);
    bson_init(update);
    BSON_APPEND_UTF8(selector, "_id", e->message_id);

    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_UTF8(&set, "message_id", e->message_id);
    if (e->task == NULL)
        BSON_APPEND_NULL(&set, "correlation_id");
    else if (e->task->id_is_string)
        BSON_APPEND_UTF8(&set, "correlation_id", e->task->id_text);
    else
        BSON_APPEND_INT64(&set, "correlation_id", e->task->id_int);
    if (e->amqp_correlation_id != NULL && e->amqp_correlation_id[0] != '\0'
        && bson_utf8_validate(e->amqp_correlation_id, strlen(e->amqp_correlation_id), false))
        BSON_APPEND_UTF8(&set, "amqp_correlation_id", e->amqp_correlation_id);
    BSON_APPEND_UTF8(&set, "outcome", outcome_names[e->outcome]);
    if (e->reason != NULL && bson_utf8_validate(e->reason, strlen(e->reason), false))
        BSON_APPEND_UTF8(&set, "reason", e->reason);
    else
        BSON_APPEND_NULL(&set, "reason");
    BSON_APPEND_INT64(&set, "attempts", e->attempts);
    BSON_APPEND_DOCUMENT_BEGIN(&set, "worker", &worker);
    BSON_APPEND_INT64(&worker, "pid", e->pid);
    BSON_APPEND_UTF8(&worker, "host", e->host != NULL ? e->host : "");
    bson_append_document_end(&set, &worker);
    BSON_APPEND_DATE_TIME(&set, "received", e->received_ms);
    BSON_APPEND_DATE_TIME(&set, "answered", e->answered_ms);
    BSON_APPEND_DOUBLE(&set, "total_duration", e->total_duration);
    if (e->result != NULL) {
        if (!bson_init_from_json(&full, e->result, (ssize_t) e->result_len, &be)) {
            bson_append_document_end(update, &set);
            snprintf(err, errlen, "the result is not JSON: %s", be.message);
            return RD_ERROR;
        }
        append_result(&set, &full, (int64_t) e->result_len);
        bson_destroy(&full);
    } else {
        BSON_APPEND_NULL(&set, "result");
    }
    if (e->body != NULL)
        append_body(&set, e->body, e->body_len);
    bson_append_document_end(update, &set);

    BSON_APPEND_DOCUMENT_BEGIN(update, "$inc", &inc);
    BSON_APPEND_INT32(&inc, "answers", 1);
    bson_append_document_end(update, &inc);
    BSON_APPEND_DOCUMENT_BEGIN(update, "$push", &push);
    BSON_APPEND_DOCUMENT_BEGIN(&push, "answered_at", &each);
    BSON_APPEND_ARRAY_BEGIN(&each, "$each", &arr);
    BSON_APPEND_DATE_TIME(&arr, "0", e->answered_ms);
    bson_append_array_end(&each, &arr);
    BSON_APPEND_INT32(&each, "$slice", -RD_JOURNAL_MAX_ANSWERS);
    bson_append_document_end(&push, &each);
    bson_append_document_end(update, &push);
    return RD_OK;
}

void
rd_journal_dead_letter_id(const char *amqp_message_id, uint64_t fingerprint, char *out,
                          size_t size)
{
    if (amqp_message_id != NULL && amqp_message_id[0] != '\0'
        && bson_utf8_validate(amqp_message_id, strlen(amqp_message_id), false))
        snprintf(out, size, "%s", amqp_message_id);
    else
        snprintf(out, size, "body-%016" PRIx64, fingerprint);
}

/* The writer. */

struct rd_journal *
rd_journal_new(const struct rd_conf *c, const char *appname, char *err, size_t errlen)
{
    struct rd_journal *j;
    mongoc_uri_t      *uri;
    bson_error_t       e;

    uri = mongoc_uri_new_with_error(c->mongodb.uri, &e);
    if (uri == NULL) {
        snprintf(err, errlen, "mongodb.uri: %s", e.message);
        return NULL;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, appname);
    /* Ours whatever the uri says: rd_conf_budget() counted these. */
    if (!mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, RD_JOURNAL_CONNECT_MS)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                           RD_JOURNAL_CONNECT_MS)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_SERVERSELECTIONTRYONCE, true)
        || !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, RD_JOURNAL_SOCKET_MS)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, false)
        || !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false)) {
        mongoc_uri_destroy(uri);
        snprintf(err, errlen, "mongodb.uri: cannot set the journal's timeouts");
        return NULL;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        mongoc_uri_destroy(uri);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->client = mongoc_client_new_from_uri_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (j->client == NULL) {
        snprintf(err, errlen, "journal client: %s", e.message);
        free(j);
        return NULL;
    }
    mongoc_client_set_error_api(j->client, MONGOC_ERROR_API_VERSION_2);
    j->conf = c;
    if (gethostname(j->host, sizeof(j->host) - 1) != 0)
        snprintf(j->host, sizeof(j->host), "unknown");
    j->coll = mongoc_client_get_collection(j->client, c->mongodb.database,
                                           c->journal.collection);
    return j;
}

void
rd_journal_close(struct rd_journal *j)
{
    if (j == NULL)
        return;
    mongoc_collection_destroy(j->coll);
    mongoc_client_destroy(j->client);
    free(j);
}

static int
create_index(struct rd_journal *j, const char *field, const char *name, int64_t ttl,
             char *err, size_t errlen)
{
    bson_t       cmd = BSON_INITIALIZER, arr, idx, key;
    bson_error_t e;
    bool         ok;

    BSON_APPEND_UTF8(&cmd, "createIndexes", j->conf->journal.collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    BSON_APPEND_INT32(&key, field, 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", name);
    if (ttl >= 0)
        BSON_APPEND_INT64(&idx, "expireAfterSeconds", ttl);
    bson_append_document_end(&arr, &idx);
    bson_append_array_end(&cmd, &arr);
    BSON_APPEND_INT32(&cmd, "maxTimeMS", RD_JOURNAL_MAX_TIME_MS);
    ok = mongoc_collection_write_command_with_opts(j->coll, &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    if (!ok) {
        snprintf(err, errlen, "createIndexes %s: %s", name, e.message);
        return RD_ERROR;
    }
    return RD_OK;
}

int
rd_journal_prepare(struct rd_journal *j, int64_t *changed, char *err, size_t errlen)
{
    mongoc_cursor_t *cur;
    const bson_t    *ix;
    bson_iter_t      it;
    bson_error_t     e;
    bson_t           cmd = BSON_INITIALIZER, sub;
    int64_t          want = j->conf->journal.retention, have = -1;
    int              ttl = 0, by_id = 0;
    bool             ok;

    *changed = -1;
    cur = mongoc_collection_find_indexes_with_opts(j->coll, NULL);
    while (mongoc_cursor_next(cur, &ix)) {
        if (!bson_iter_init_find(&it, ix, "name") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        if (strcmp(bson_iter_utf8(&it, NULL), "correlation_id_1") == 0)
            by_id = 1;
        if (strcmp(bson_iter_utf8(&it, NULL), RD_JOURNAL_TTL_INDEX) != 0)
            continue;
        ttl = 1;
        if (bson_iter_init_find(&it, ix, "expireAfterSeconds") && BSON_ITER_HOLDS_NUMBER(&it))
            have = bson_iter_as_int64(&it);
    }
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        snprintf(err, errlen, "listIndexes: %s", e.message);
        return RD_ERROR;
    }
    mongoc_cursor_destroy(cur);

    if (!by_id && create_index(j, "correlation_id", "correlation_id_1", -1, err, errlen) != RD_OK)
        return RD_ERROR;
    if (!ttl)
        return create_index(j, "answered", RD_JOURNAL_TTL_INDEX, want, err, errlen);
    if (have == want)
        return RD_OK;

    /* journal.retention changed: the index keeps its name and key, only
     * its expiry moves. */
    BSON_APPEND_UTF8(&cmd, "collMod", j->conf->journal.collection);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "index", &sub);
    BSON_APPEND_UTF8(&sub, "name", RD_JOURNAL_TTL_INDEX);
    BSON_APPEND_INT64(&sub, "expireAfterSeconds", want);
    bson_append_document_end(&cmd, &sub);
    ok = mongoc_collection_command_simple(j->coll, &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    if (!ok) {
        snprintf(err, errlen, "collMod %s (expireAfterSeconds %" PRId64 " -> %" PRId64 "): %s",
                 RD_JOURNAL_TTL_INDEX, have, want, e.message);
        return RD_ERROR;
    }
    *changed = have;
    return RD_OK;
}

int
rd_journal_write(struct rd_journal *j, const struct rd_journal_entry *entry, char *err,
                 size_t errlen)
{
    struct rd_journal_entry  mine = *entry;
    bson_t                   sel, upd, opts = BSON_INITIALIZER;
    bson_error_t             e;
    int                      rc = RD_OK;

    mine.pid = (long) getpid();
    mine.host = j->host;
    if (rd_journal_update(&mine, &sel, &upd, err, errlen) != RD_OK) {
        rc = RD_ERROR;
    } else {
        BSON_APPEND_BOOL(&opts, "upsert", true);
        BSON_APPEND_INT32(&opts, "maxTimeMS", RD_JOURNAL_MAX_TIME_MS);
        if (!mongoc_collection_update_one(j->coll, &sel, &upd, &opts, NULL, &e)) {
            snprintf(err, errlen, "%s (domain %u, code %u)", e.message, e.domain, e.code);
            rc = RD_ERROR;
        }
    }
    bson_destroy(&sel);
    bson_destroy(&upd);
    bson_destroy(&opts);
    rd_metrics_journal(rc == RD_OK);
    return rc;
}

/* Lookups. */

/* The integer whose canonical text id is ("123", "-5"; not "0123", "+1"). */
static int
canonical_int(const char *id, int64_t *v)
{
    char  back[32], *end;

    errno = 0;
    *v = strtoll(id, &end, 10);
    if (errno != 0 || end == id || *end != '\0')
        return 0;
    snprintf(back, sizeof(back), "%" PRId64, *v);
    return strcmp(back, id) == 0;
}

void
rd_journal_filter_ids(bson_t *filter, const char *const *ids, size_t n, int with_message_id)
{
    bson_t  arr, alt;
    char    key[16];
    const char *k;
    size_t  i, at = 0;
    int64_t v;

    bson_init(filter);
    BSON_APPEND_ARRAY_BEGIN(filter, "$or", &arr);
    for (i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t) at++, &k, key, sizeof(key));
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &alt);
        BSON_APPEND_UTF8(&alt, "correlation_id", ids[i]);
        bson_append_document_end(&arr, &alt);
        if (canonical_int(ids[i], &v)) {
            bson_uint32_to_string((uint32_t) at++, &k, key, sizeof(key));
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &alt);
            BSON_APPEND_INT64(&alt, "correlation_id", v);
            bson_append_document_end(&arr, &alt);
        }
        if (with_message_id) {
            bson_uint32_to_string((uint32_t) at++, &k, key, sizeof(key));
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &alt);
            BSON_APPEND_UTF8(&alt, "_id", ids[i]);
            bson_append_document_end(&arr, &alt);
        }
    }
    bson_append_array_end(filter, &arr);
}

int
rd_journal_find(mongoc_client_t *client, const struct rd_conf *conf, const bson_t *filter,
                rd_journal_doc_cb cb, void *arg, int *klass, char *err, size_t errlen)
{
    mongoc_collection_t *coll;
    mongoc_cursor_t     *cur;
    const bson_t        *doc;
    bson_t               opts = BSON_INITIALIZER, sort;
    bson_error_t         e;
    int                  rc = RD_OK;

    coll = mongoc_client_get_collection(client, conf->mongodb.database, conf->journal.collection);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "answered", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", RD_JOURNAL_LOOKUP_MAX);
    BSON_APPEND_INT32(&opts, "maxTimeMS", RD_JOURNAL_LOOKUP_MS);
    cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    while (rc == RD_OK && mongoc_cursor_next(cur, &doc))
        if (cb(doc, arg) != 0)
            rc = RD_DECLINED;
    if (rc == RD_OK && mongoc_cursor_error(cur, &e)) {
        *klass = rd_store_classify(e.domain, e.code, e.message);
        snprintf(err, errlen, "%s (domain %u, code %u)", e.message, e.domain, e.code);
        rc = RD_ERROR;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    return rc == RD_DECLINED ? RD_OK : rc;
}

static void
iso_time(int64_t ms, char *out, size_t size)
{
    time_t    s = (time_t) (ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}

void
rd_journal_status_line(const bson_t *doc, char *out, size_t size)
{
    bson_iter_t it;
    const char *mid = "?", *outcome = "?", *reason = NULL;
    char        cid[300] = "-", when[80] = "?", times[48] = "";
    int64_t     answers = 1, attempts = 0;
    double      dur = 0;

    if (bson_iter_init(&it, doc)) {
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);

            if (strcmp(k, "_id") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                mid = bson_iter_utf8(&it, NULL);
            else if (strcmp(k, "correlation_id") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                snprintf(cid, sizeof(cid), "\"%s\"", bson_iter_utf8(&it, NULL));
            else if (strcmp(k, "correlation_id") == 0 && BSON_ITER_HOLDS_INT(&it))
                snprintf(cid, sizeof(cid), "%" PRId64, bson_iter_as_int64(&it));
            else if (strcmp(k, "outcome") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                outcome = bson_iter_utf8(&it, NULL);
            else if (strcmp(k, "reason") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                reason = bson_iter_utf8(&it, NULL);
            else if (strcmp(k, "answers") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
                answers = bson_iter_as_int64(&it);
            else if (strcmp(k, "attempts") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
                attempts = bson_iter_as_int64(&it);
            else if (strcmp(k, "total_duration") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
                dur = bson_iter_as_double(&it);
            else if (strcmp(k, "answered") == 0 && BSON_ITER_HOLDS_DATE_TIME(&it))
                iso_time(bson_iter_date_time(&it), when, sizeof(when));
        }
    }
    if (answers == 2)
        snprintf(times, sizeof(times), " (answered twice)");
    else if (answers > 2)
        snprintf(times, sizeof(times), " (answered %" PRId64 " times)", answers);
    snprintf(out, size, "%s %s %s%s at %s, %" PRId64 " attempt%s, %.3f s%s%s", cid, mid, outcome,
             times, when, attempts, attempts == 1 ? "" : "s", dur, reason ? ": " : "",
             reason ? reason : "");
}
