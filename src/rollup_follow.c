/*
 * rollup_follow.c -- the folder follows the records' change stream: each
 * delete, update or replace of a record folded in this epoch makes the
 * rollups of its phones (before and after the change) be recomputed from
 * their marks at once, instead of when the background verification gets
 * there.  Needs a replica set and, for the phone of a deleted record, the
 * pre-images of MongoDB 6.0 (collMod changeStreamPreAndPostImages, which
 * the folder turns on); where either is missing the verification alone
 * follows changes (rollup_verify.c).
 *
 * The resume token is saved in the batches collection ({_id: "stream", e,
 * token}) after the events it covers were applied: a folder that crashes
 * replays them, and a recompute is idempotent.  A token the server cannot
 * resume from any more (the oplog rolled past it) is dropped and the
 * stream restarts from now: what changed meanwhile is left to the
 * verification, and counted.  A drop or a rename of the records
 * collection ends the stream (invalidate): every rollup is deleted, so that
 * reports read what records are left, and the stream starts again from
 * then.  The phones the events of one read name are recomputed once each,
 * after the read; an update that changes only marks (rb, rb_<epoch>: a
 * folder's, or the removal of an old epoch's) changes no sum and is passed.
 * docs/design.md states the guarantee.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

#define STREAM_ID          "stream"     /* _id of the token document in the batches */
#define EVENTS_PER_CALL    1000
#define SAVE_EVERY_MS      10000        /* the token saved this often without events */
#define RETRY_MS           60000        /* a stream the server refused, tried again */
#define NOT_A_REPLICA_SET  40573
#define HISTORY_LOST       286
#define STREAM_FATAL       280      /* ChangeStreamFatalError: e.g. a token not found */
#define INVALID_TOKEN      260
#define UNKNOWN_FIELD      40415
#define UNAUTHORIZED       13

int
rd_rollup_following(const struct rd_rollup *r)
{
    return r->stream != NULL;
}

void
rd_rollup_follow_stop(struct rd_rollup *r)
{
    mongoc_change_stream_destroy(r->stream);
    r->stream = NULL;
}

/* The saved token of this epoch into *token (RD_OK), RD_AGAIN none. */
static int
saved_token(struct rd_rollup *r, bson_t *token, int *klass, char *err, size_t errlen)
{
    bson_t     *filter = BCON_NEW("_id", BCON_UTF8(STREAM_ID), "e", BCON_UTF8(r->epoch)), d;
    bson_iter_t it;
    int         rc;

    rc = rd_rollup_find_one(r->batches, filter, NULL, &d, "reading the change stream's token",
                            klass, err, errlen);
    bson_destroy(filter);
    if (rc != RD_OK)
        return rc;
    rc = RD_AGAIN;
    if (bson_iter_init_find(&it, &d, "token") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const uint8_t *data;
        uint32_t       len;
        bson_t         t;

        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&t, data, len)) {
            bson_copy_to(&t, token);
            rc = RD_OK;
        }
    }
    bson_destroy(&d);
    return rc;
}

static int
save_token(struct rd_rollup *r, int *klass, char *err, size_t errlen)
{
    const bson_t *token = mongoc_change_stream_get_resume_token(r->stream);
    bson_t       *sel, doc = BSON_INITIALIZER, *opts;
    bson_error_t  e;
    bool          ok;

    if (token == NULL)
        return RD_OK;
    sel = BCON_NEW("_id", BCON_UTF8(STREAM_ID));
    BSON_APPEND_UTF8(&doc, "_id", STREAM_ID);
    BSON_APPEND_UTF8(&doc, "e", r->epoch);
    BSON_APPEND_DOCUMENT(&doc, "token", token);
    BSON_APPEND_DATE_TIME(&doc, "at", rd_wall_ms());
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    ok = mongoc_collection_replace_one(r->batches, sel, &doc, opts, NULL, &e);
    bson_destroy(opts);
    bson_destroy(&doc);
    bson_destroy(sel);
    if (!ok)
        return rd_rollup_fail(&e, "saving the change stream's token", klass, err, errlen);
    r->token_saved_at = rd_now_ms();
    return RD_OK;
}

/* Pre-images on the records collection (MongoDB 6.0).  RD_DECLINED: the
 * server has none (why). */
static int
pre_images(struct rd_rollup *r, char *why, size_t len, int *klass, char *err, size_t errlen)
{
    bson_t      *cmd;
    bson_error_t e;
    bool         ok;

    cmd = BCON_NEW("collMod", BCON_UTF8(mongoc_collection_get_name(r->records)),
                   "changeStreamPreAndPostImages", "{", "enabled", BCON_BOOL(true), "}");
    ok = mongoc_collection_write_command_with_opts(r->records, cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    if (ok)
        return RD_OK;
    if (e.code == UNKNOWN_FIELD || e.code == 72 || strstr(e.message, "unknown field") != NULL) {
        snprintf(why, len, "the server has no change stream pre-images (MongoDB 6.0): %s",
                 e.message);
        return RD_DECLINED;
    }
    if (e.code == UNAUTHORIZED) {
        snprintf(why, len, "the user may not turn change stream pre-images on (collMod): %s",
                 e.message);
        return RD_DECLINED;
    }
    return rd_rollup_fail(&e, "turning change stream pre-images on", klass, err, errlen);
}

/* Open the stream: from the saved token, else from now.  RD_OK, RD_DECLINED
 * (why), RD_ERROR. */
static int
open_stream(struct rd_rollup *r, int wait_ms, struct rd_rollup_followed *f, char *why,
            size_t len, int *klass, char *err, size_t errlen)
{
    bson_t        pipeline = BSON_INITIALIZER, arr, stage, m, or, br, in, ex, *opts;
    bson_t        token = BSON_INITIALIZER;
    mongoc_collection_t   *coll;
    mongoc_read_concern_t *rc_none;
    const bson_t *reply;
    bson_error_t  e;
    char          path[128], ins[128];
    int           rc, resumed;

    rc = pre_images(r, why, len, klass, err, errlen);
    if (rc != RD_OK)
        return rc;
    rc = saved_token(r, &token, klass, err, errlen);
    if (rc == RD_ERROR) {
        bson_destroy(&token);
        return rc;
    }
    resumed = rc == RD_OK;
    /* deletes, replaces, and updates other than a folder's marks */
    snprintf(path, sizeof(path), "updateDescription.updatedFields.%s", r->field);
    BSON_APPEND_ARRAY_BEGIN(&pipeline, "pipeline", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_ARRAY_BEGIN(&m, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &br);
    BSON_APPEND_DOCUMENT_BEGIN(&br, "operationType", &in);
    BCON_APPEND(&in, "$in", "[", BCON_UTF8("delete"), BCON_UTF8("replace"), BCON_UTF8("drop"),
                BCON_UTF8("rename"), BCON_UTF8("dropDatabase"), BCON_UTF8("invalidate"), "]");
    bson_append_document_end(&br, &in);
    bson_append_document_end(&or, &br);
    /* a record that arrives with a mark of this epoch (restored from an
     * export): the tail leaves it out when its batch is done */
    snprintf(ins, sizeof(ins), "fullDocument.%s", r->field);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "2", &br);
    BSON_APPEND_UTF8(&br, "operationType", "insert");
    BSON_APPEND_DOCUMENT_BEGIN(&br, ins, &ex);
    BSON_APPEND_BOOL(&ex, "$exists", true);
    bson_append_document_end(&br, &ex);
    bson_append_document_end(&or, &br);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &br);
    BSON_APPEND_UTF8(&br, "operationType", "update");
    BSON_APPEND_DOCUMENT_BEGIN(&br, path, &ex);
    BSON_APPEND_BOOL(&ex, "$exists", false);
    bson_append_document_end(&br, &ex);
    bson_append_document_end(&or, &br);
    bson_append_array_end(&m, &or);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(&arr, &stage);
    bson_append_array_end(&pipeline, &arr);
    opts = BCON_NEW("fullDocument", BCON_UTF8("updateLookup"),
                    "fullDocumentBeforeChange", BCON_UTF8("whenAvailable"),
                    "maxAwaitTimeMS", BCON_INT64(wait_ms > 0 ? wait_ms : 1));
    if (resumed)
        BSON_APPEND_DOCUMENT(opts, "resumeAfter", &token);
    /* The records' handle reads with an explicit "local" level, which mongod
     * refuses for $changeStream: the stream goes without one (majority). */
    coll = mongoc_collection_copy(r->records);
    rc_none = mongoc_read_concern_new();
    mongoc_collection_set_read_concern(coll, rc_none);
    r->stream = mongoc_collection_watch(coll, &pipeline, opts);
    mongoc_read_concern_destroy(rc_none);
    mongoc_collection_destroy(coll);
    if (mongoc_change_stream_error_document(r->stream, &e, &reply)) {
        rd_rollup_follow_stop(r);
        if (resumed && (e.code == HISTORY_LOST || e.code == INVALID_TOKEN
                        || e.code == STREAM_FATAL)) {
            bson_t *sel = BCON_NEW("_id", BCON_UTF8(STREAM_ID));

            /* from now on; what changed meanwhile is the verification's */
            mongoc_collection_delete_one(r->batches, sel, NULL, NULL, NULL);
            bson_destroy(sel);
            f->lost = 1;
            snprintf(why, len, "the change stream cannot resume from its saved token (%s)",
                     e.message);
            rc = RD_AGAIN;
        } else if (e.code == NOT_A_REPLICA_SET
                   || strstr(e.message, "only supported on replica sets") != NULL) {
            snprintf(why, len, "change streams need a replica set: %s", e.message);
            rc = RD_DECLINED;
        } else {
            rc = rd_rollup_fail(&e, "opening the change stream", klass, err, errlen);
        }
    } else {
        snprintf(r->stream_epoch, sizeof(r->stream_epoch), "%s", r->epoch);
        r->token_saved_at = rd_now_ms();
        f->opened = 1;
        f->resumed = resumed;
        /* from now: the point it starts from is kept at once, so that a
         * folder that dies before the first event resumes there */
        rc = resumed ? RD_OK : save_token(r, klass, err, errlen);
    }
    bson_destroy(opts);
    bson_destroy(&pipeline);
    bson_destroy(&token);
    return rc;
}

/* doc's phone, if doc is a record marked in this epoch. */
static int
folded_phone(const struct rd_rollup *r, const bson_t *doc, int64_t *phone)
{
    bson_iter_t it;
    bson_t      id = BSON_INITIALIZER;
    char        why[128];
    int         rc;

    if (!bson_iter_init_find(&it, doc, r->field) || !BSON_ITER_HOLDS_NUMBER(&it)
        || !bson_iter_init_find(&it, doc, "phone"))
        return 0;
    bson_append_value(&id, "_id", 3, bson_iter_value(&it));
    rc = rd_report_parse_phone(&id, phone, why, sizeof(why));
    bson_destroy(&id);
    return rc == RD_OK;
}

/* The document under key (a sub-document), if any. */
static int
sub_document(const bson_t *ev, const char *key, bson_t *out)
{
    bson_iter_t    it;
    const uint8_t *data;
    uint32_t       len;

    if (!bson_iter_init_find(&it, ev, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return 0;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(out, data, len);
}

/* Whether a field is a mark: rb_<epoch> (RD_ROLLUP_FIELD), or rb of the
 * versions before epochs. */
static int
is_mark(const char *k)
{
    return strcmp(k, "rb") == 0 || strncmp(k, RD_ROLLUP_FIELD, sizeof(RD_ROLLUP_FIELD) - 1) == 0;
}

/* Whether an update changes only marks: no record's phone or dates, so no
 * sum. */
static int
marks_only(const bson_t *ev)
{
    bson_t      ud, fields;
    bson_iter_t it;
    int         n = 0;

    if (!sub_document(ev, "updateDescription", &ud))
        return 0;
    if (sub_document(&ud, "updatedFields", &fields) && bson_iter_init(&it, &fields)) {
        while (bson_iter_next(&it)) {
            if (!is_mark(bson_iter_key(&it)))
                return 0;
            n++;
        }
    }
    if (bson_iter_init_find(&it, &ud, "removedFields") && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_iter_t a;

        if (!bson_iter_recurse(&it, &a))
            return 0;
        while (bson_iter_next(&a)) {
            if (!BSON_ITER_HOLDS_UTF8(&a) || !is_mark(bson_iter_utf8(&a, NULL)))
                return 0;
            n++;
        }
    }
    if (bson_iter_init_find(&it, &ud, "truncatedArrays") && BSON_ITER_HOLDS_ARRAY(&it)) {
        uint32_t       len;
        const uint8_t *data;

        bson_iter_array(&it, &len, &data);
        if (len > 5)            /* an empty BSON array is 5 bytes */
            return 0;
    }
    return n > 0;
}

/* One event: the phones of the record before and after it, added to
 * phones[] (room for two more).  RD_AGAIN: the stream's end (the
 * collection dropped or renamed). */
static int
read_event(struct rd_rollup *r, const bson_t *ev, struct rd_rollup_followed *f,
           int64_t *phones, size_t *np)
{
    bson_t      pre, post;
    bson_iter_t it;
    int64_t     phone;
    int         insert = 0, before = 0;

    f->events++;
    if (bson_iter_init_find(&it, ev, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it))
        f->lag_ms = rd_wall_ms() - bson_iter_date_time(&it);
    if (bson_iter_init_find(&it, ev, "operationType") && BSON_ITER_HOLDS_UTF8(&it)) {
        const char *op = bson_iter_utf8(&it, NULL);

        if (strcmp(op, "insert") != 0 && strcmp(op, "update") != 0
            && strcmp(op, "replace") != 0 && strcmp(op, "delete") != 0)
            return RD_AGAIN;    /* the collection went: the stream ends */
        insert = strcmp(op, "insert") == 0;
        if (strcmp(op, "update") == 0 && marks_only(ev))
            return RD_OK;
    }
    if (sub_document(ev, "fullDocumentBeforeChange", &pre)) {
        if (folded_phone(r, &pre, &phone)) {
            phones[(*np)++] = phone;
            before = 1;
        }
    } else if (!insert) {
        f->unknown++;           /* no pre-image: the verification will find it */
    }
    if (sub_document(ev, "fullDocument", &post) && folded_phone(r, &post, &phone)
        && (!before || phones[*np - 1] != phone))
        phones[(*np)++] = phone;
    return RD_OK;
}

static int
by_phone(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

    return (x > y) - (x < y);
}

/* Each phone of phones[] recomputed once. */
static int
recompute_phones(struct rd_rollup *r, int64_t *phones, size_t n, struct rd_rollup_followed *f,
                 int *klass, char *err, size_t errlen)
{
    struct rd_rollup_recount c;
    size_t                   i;

    if (n == 0)
        return RD_OK;
    qsort(phones, n, sizeof(*phones), by_phone);
    for (i = 0; i < n; i++) {
        if (i > 0 && phones[i] == phones[i - 1])
            continue;
        if (rd_rollup_recompute(r, phones[i], -1, &c, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        f->corrected += c.changed;
    }
    return RD_OK;
}

/* The records collection was dropped or renamed: no rollup can be trusted
 * (the records they sum are gone), so none is kept; the stream starts
 * again from now, at the next call. */
static int
invalidated(struct rd_rollup *r, struct rd_rollup_followed *f, int *klass, char *err,
            size_t errlen)
{
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(STREAM_ID));
    int64_t removed;

    rd_rollup_follow_stop(r);
    f->invalidated = 1;
    /* the token goes only once the rollups have: a folder that fails in
     * between reopens from it, reads the drop again and clears again */
    if (rd_rollup_clear(r, &removed, klass, err, errlen) != RD_OK) {
        bson_destroy(sel);
        return RD_ERROR;
    }
    mongoc_collection_delete_one(r->batches, sel, NULL, NULL, NULL);
    bson_destroy(sel);
    f->cleared = removed;
    return RD_OK;
}

int
rd_rollup_follow(struct rd_rollup *r, int wait_ms, struct rd_rollup_followed *f, char *why,
                 size_t len, int *klass, char *err, size_t errlen)
{
    const bson_t *ev;
    bson_error_t  e;
    const bson_t *reply;
    int64_t       phones[2 * EVENTS_PER_CALL];
    size_t        np = 0;
    int           rc, n = 0;

    memset(f, 0, sizeof(*f));
    why[0] = '\0';
    if (r->epoch[0] == '\0')
        return RD_AGAIN;                /* nothing folded yet */
    if (r->stream != NULL && strcmp(r->stream_epoch, r->epoch) != 0)
        rd_rollup_follow_stop(r);       /* a new epoch: its own marks, its own token */
    if (r->stream == NULL) {
        char again[512];

        if (rd_now_ms() < r->stream_retry_at)
            return RD_DECLINED;
        rc = open_stream(r, wait_ms, f, why, len, klass, err, errlen);
        if (rc == RD_AGAIN) {   /* the token was lost (f->lost; why): from now */
            rc = open_stream(r, wait_ms, f, again, sizeof(again), klass, err, errlen);
            if (rc == RD_DECLINED)
                snprintf(why, len, "%s", again);
        }
        if (rc == RD_DECLINED)
            r->stream_retry_at = rd_now_ms() + RETRY_MS;
        if (rc != RD_OK)
            return rc;
    }
    while (n < EVENTS_PER_CALL && mongoc_change_stream_next(r->stream, &ev)) {
        n++;
        if (read_event(r, ev, f, phones, &np) == RD_AGAIN)
            return invalidated(r, f, klass, err, errlen);
    }
    /* Either way the token is not saved past events not applied: the
     * stream reopened from the saved one brings them again. */
    if (mongoc_change_stream_error_document(r->stream, &e, &reply)) {
        rd_rollup_follow_stop(r);
        return rd_rollup_fail(&e, "following the change stream", klass, err, errlen);
    }
    if (recompute_phones(r, phones, np, f, klass, err, errlen) != RD_OK) {
        rd_rollup_follow_stop(r);
        return RD_ERROR;
    }
    if (n > 0 || rd_now_ms() - r->token_saved_at >= SAVE_EVERY_MS)
        return save_token(r, klass, err, errlen);
    return RD_OK;
}
