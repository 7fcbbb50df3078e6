/*
 * rollup.c -- rollup mode's handle on its three collections, the epoch
 * that names the mark field, the indexes, and the folders' lease; the
 * helpers the other rollup files share (rollup_impl.h).
 *
 * Only what MongoDB 4.4 offers on a standalone server: single-document
 * atomic updates, unique _id, multi-document updates that may yield, no
 * transactions, no snapshot reads.  On a replica set every read goes to
 * the primary and every write waits for a majority, whatever the uri's
 * read preference and write concern (README: "Read and write concerns").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rollup_impl.h"
#include "util.h"

#define INDEX_OPTIONS_CONFLICT  85     /* the same keys under another name */
#define NS_NOT_FOUND            26

struct rd_rollup *
rd_rollup_new(struct rd_store *st, const struct rd_conf *conf, const char *owner)
{
    struct rd_rollup       *r = calloc(1, sizeof(*r));
    mongoc_client_t        *c = rd_store_client(st);
    mongoc_read_prefs_t    *primary;
    mongoc_read_concern_t  *local;
    mongoc_write_concern_t *majority;
    char                    name[512];
    int                     i;

    if (r == NULL)
        return NULL;
    r->store = st;
    r->conf = conf;
    snprintf(r->owner, sizeof(r->owner), "%s", owner);
    snprintf(name, sizeof(name), "%s_batches", conf->rollup.collection);
    r->records = mongoc_client_get_collection(c, conf->mongodb.database,
                                              conf->mongodb.collection);
    r->rollups = mongoc_client_get_collection(c, conf->mongodb.database,
                                              conf->rollup.collection);
    r->batches = mongoc_client_get_collection(c, conf->mongodb.database, name);
    primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    local = mongoc_read_concern_new();
    mongoc_read_concern_set_level(local, MONGOC_READ_CONCERN_LEVEL_LOCAL);
    majority = mongoc_write_concern_new();
    mongoc_write_concern_set_w(majority, MONGOC_WRITE_CONCERN_W_MAJORITY);
    /* A majority that cannot be reached (a secondary down in a
     * primary-secondary-arbiter set) is an error to retry, not a hang. */
    mongoc_write_concern_set_wtimeout_int64(majority, RD_ROLLUP_WTIMEOUT_MS);
    for (i = 0; i < 3; i++) {
        mongoc_collection_t *coll = i == 0 ? r->records : i == 1 ? r->rollups : r->batches;

        mongoc_collection_set_read_prefs(coll, primary);
        mongoc_collection_set_read_concern(coll, local);
        mongoc_collection_set_write_concern(coll, majority);
    }
    mongoc_read_prefs_destroy(primary);
    mongoc_read_concern_destroy(local);
    mongoc_write_concern_destroy(majority);
    return r;
}

void
rd_rollup_free(struct rd_rollup *r)
{
    if (r == NULL)
        return;
    rd_rollup_follow_stop(r);
    mongoc_collection_destroy(r->records);
    mongoc_collection_destroy(r->rollups);
    mongoc_collection_destroy(r->batches);
    free(r);
}

void
rd_rollup_set_hook(struct rd_rollup *r, void (*hook)(const char *step))
{
    r->hook = hook;
}

void
rd_rollup_point(const struct rd_rollup *r, const char *step)
{
    if (r->hook != NULL)
        r->hook(step);
}

int
rd_rollup_fail(const bson_error_t *e, const char *what, int *klass, char *err, size_t errlen)
{
    char msg[512];

    rd_store_error(e, klass, msg, sizeof(msg));
    snprintf(err, errlen, "%s: %s", what, msg);
    return RD_ERROR;
}

int64_t
rd_rollup_int64(const bson_t *doc, const char *key, int64_t def)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return def;
}

void
rd_rollup_append_sums(bson_t *doc, const struct rd_phone_sums *s)
{
    size_t i;

    for (i = 0; i < RD_REPORT_NSUMS; i++)
        BSON_APPEND_INT64(doc, rd_report_sums[i].key,
                          *(const int64_t *) ((const char *) s + rd_report_sums[i].off));
}

int
rd_rollup_find_one(mongoc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                   bson_t *out, const char *what, int *klass, char *err, size_t errlen)
{
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t    *d;
    bson_error_t     e;
    int              rc = RD_AGAIN;

    if (mongoc_cursor_next(cur, &d)) {
        bson_copy_to(d, out);
        rc = RD_OK;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = rd_rollup_fail(&e, what, klass, err, errlen);
    }
    mongoc_cursor_destroy(cur);
    return rc;
}

int
rd_rollup_aggregate(struct rd_rollup *r, const bson_t *pipeline, int max_time_ms,
                    rd_store_row_cb cb, void *arg, int *klass, char *err, size_t errlen)
{
    return rd_store_aggregate_in(r->store, r->records, pipeline, max_time_ms, cb, arg,
                                 klass, err, errlen);
}

/* ------------------------------------------------------------------ */
/* the epoch                                                          */
/* ------------------------------------------------------------------ */

static int
valid_epoch(const char *s, uint32_t len)
{
    uint32_t i;

    if (len != RD_ROLLUP_EPOCH_LEN)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void
set_epoch(struct rd_rollup *r, const char *e)
{
    if (strcmp(r->epoch, e) != 0)
        r->indexed = 0;
    snprintf(r->epoch, sizeof(r->epoch), "%s", e);
    snprintf(r->field, sizeof(r->field), "%s%s", RD_ROLLUP_FIELD, e);
}

/* The epoch document's e into buf: RD_OK, RD_AGAIN (none), RD_ERROR. */
static int
read_epoch(struct rd_rollup *r, char *buf, int *klass, char *err, size_t errlen)
{
    bson_t     *filter = BCON_NEW("_id", BCON_UTF8(RD_ROLLUP_EPOCH_ID)), d;
    bson_iter_t it;
    uint32_t    len = 0;
    const char *s = NULL;
    int         rc;

    rc = rd_rollup_find_one(r->batches, filter, NULL, &d, "reading the epoch", klass, err, errlen);
    bson_destroy(filter);
    if (rc != RD_OK)
        return rc;
    if (bson_iter_init_find(&it, &d, "e") && BSON_ITER_HOLDS_UTF8(&it))
        s = bson_iter_utf8(&it, &len);
    if (s != NULL && valid_epoch(s, len)) {
        memcpy(buf, s, len + 1);
    } else {
        *klass = RD_STORE_PERMANENT;
        snprintf(err, errlen, "%s: the document {_id: \"%s\"} has no epoch e of %d "
                 "hex digits (written by hand?): delete it to start a new epoch",
                 mongoc_collection_get_name(r->batches), RD_ROLLUP_EPOCH_ID,
                 RD_ROLLUP_EPOCH_LEN);
        rc = RD_ERROR;
    }
    bson_destroy(&d);
    return rc;
}

static void
new_epoch_text(char *buf)
{
    unsigned char b[RD_ROLLUP_EPOCH_LEN / 2];
    size_t        i;

    if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
        uint64_t x = (uint64_t) rd_wall_ms() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) clock();

        for (i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char) (x >> (8 * i));
    }
    for (i = 0; i < sizeof(b); i++)
        sprintf(buf + 2 * i, "%02x", b[i]);
}

int
rd_rollup_epoch(struct rd_rollup *r, int create, int *klass, char *err, size_t errlen)
{
    char         buf[RD_ROLLUP_EPOCH_LEN + 1];
    bson_t      *doc;
    bson_error_t e;
    int          rc, tries;

    for (tries = 0; tries < 3; tries++) {
        rc = read_epoch(r, buf, klass, err, errlen);
        if (rc == RD_OK) {
            set_epoch(r, buf);
            return RD_OK;
        }
        if (rc == RD_ERROR || !create)
            return rc;
        new_epoch_text(buf);
        doc = BCON_NEW("_id", BCON_UTF8(RD_ROLLUP_EPOCH_ID), "e", BCON_UTF8(buf),
                       "by", BCON_UTF8(r->owner), "created", BCON_DATE_TIME(rd_wall_ms()));
        if (mongoc_collection_insert_one(r->batches, doc, NULL, NULL, &e)) {
            bson_destroy(doc);
            set_epoch(r, buf);
            return RD_OK;
        }
        bson_destroy(doc);
        if (e.code != RD_ROLLUP_DUPLICATE_KEY)
            return rd_rollup_fail(&e, "making a new epoch", klass, err, errlen);
        /* another folder made one first: read it */
    }
    *klass = RD_STORE_TRANSIENT;
    snprintf(err, errlen, "the epoch document keeps vanishing");
    return RD_ERROR;
}

int
rd_rollup_new_epoch(struct rd_rollup *r, int *klass, char *err, size_t errlen)
{
    bson_t      *sel = BCON_NEW("_id", BCON_UTF8(RD_ROLLUP_EPOCH_ID), "e", BCON_UTF8(r->epoch));
    bson_error_t e;
    bool         ok;

    /* Only the epoch we know: a folder that replaced it first wins. */
    ok = mongoc_collection_delete_one(r->batches, sel, NULL, NULL, &e);
    bson_destroy(sel);
    if (!ok)
        return rd_rollup_fail(&e, "ending the epoch", klass, err, errlen);
    r->epoch[0] = '\0';
    r->indexed = 0;
    return rd_rollup_epoch(r, 1, klass, err, errlen);
}

int
rd_rollup_current_epoch(struct rd_rollup *r, char *epoch, size_t len, char *err, size_t errlen)
{
    char buf[RD_ROLLUP_EPOCH_LEN + 1];
    int  klass, rc = read_epoch(r, buf, &klass, err, errlen);

    if (rc == RD_ERROR)
        return RD_ERROR;
    snprintf(epoch, len, "%s", rc == RD_OK ? buf : "");
    return RD_OK;
}

/* ------------------------------------------------------------------ */
/* indexes                                                            */
/* ------------------------------------------------------------------ */

int
rd_rollup_other_indexes(struct rd_rollup *r, char *buf, size_t len)
{
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_iter_t      it;
    const char      *name;
    char             claim[64], tail[64];
    size_t           at = 0;
    int              n = 0;

    buf[0] = '\0';
    snprintf(claim, sizeof(claim), "reporterd_claim_%s", r->epoch);
    snprintf(tail, sizeof(tail), "reporterd_tail_%s", r->epoch);
    cur = mongoc_collection_find_indexes_with_opts(r->records, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (!bson_iter_init_find(&it, d, "name") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        name = bson_iter_utf8(&it, NULL);
        if ((strncmp(name, "reporterd_claim", 15) != 0 && strncmp(name, "reporterd_tail", 14) != 0)
            || strcmp(name, claim) == 0 || strcmp(name, tail) == 0)
            continue;
        n++;
        if (at < len)
            at += (size_t) snprintf(buf + at, len - at, "%s%s", at ? ", " : "", name);
    }
    if (mongoc_cursor_error(cur, NULL))
        n = -1;
    mongoc_cursor_destroy(cur);
    return n;
}

int
rd_rollup_indexes(struct rd_rollup *r, int *klass, char *err, size_t errlen)
{
    bson_t      *cmd;
    bson_error_t e;
    char         claim[64], tail[64];
    bool         ok;

    if (rd_rollup_epoch(r, 1, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    snprintf(claim, sizeof(claim), "reporterd_claim_%s", r->epoch);
    snprintf(tail, sizeof(tail), "reporterd_tail_%s", r->epoch);
    cmd = BCON_NEW("createIndexes", BCON_UTF8(mongoc_collection_get_name(r->records)),
                   "indexes", "[",
                       "{", "key", "{", r->field, BCON_INT32(1), "_id", BCON_INT32(1), "}",
                            "name", BCON_UTF8(claim), "}",
                       "{", "key", "{", "phone", BCON_INT32(1), r->field, BCON_INT32(1), "}",
                            "name", BCON_UTF8(tail), "}",
                   "]");
    ok = mongoc_collection_write_command_with_opts(r->records, cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    /* The same keys under other names serve as well (hints name keys). */
    if (!ok && e.code != INDEX_OPTIONS_CONFLICT)
        return rd_rollup_fail(&e, "createIndexes", klass, err, errlen);
    r->indexed = 1;
    return RD_OK;
}

/* ------------------------------------------------------------------ */
/* the lease                                                          */
/* ------------------------------------------------------------------ */

/* Who holds the lease, into err (best effort). */
static void
lease_holder(struct rd_rollup *r, char *err, size_t errlen)
{
    bson_t     *query = BCON_NEW("_id", BCON_UTF8("lease")), d;
    bson_iter_t it;
    int         klass;

    snprintf(err, errlen, "the lease is held by another folder");
    if (rd_rollup_find_one(r->batches, query, NULL, &d, "lease", &klass, err, errlen) == RD_OK) {
        if (bson_iter_init_find(&it, &d, "owner") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(err, errlen, "the lease is held by %s", bson_iter_utf8(&it, NULL));
        else
            snprintf(err, errlen, "the lease is held by another folder");
        bson_destroy(&d);
    } else {
        snprintf(err, errlen, "the lease is held by another folder");
    }
    bson_destroy(query);
}

int
rd_rollup_lease(struct rd_rollup *r, int64_t ttl_ms, int *klass, char *err, size_t errlen)
{
    bson_t      *query, *update, reply;
    bson_error_t e;
    int64_t      now = rd_wall_ms(), expires;
    bool         ok;

    /* Ours already, or expired: take it.  Held by another: the upsert's
     * insert of _id "lease" fails with a duplicate key. */
    query = BCON_NEW("_id", BCON_UTF8("lease"),
                     "$or", "[", "{", "owner", BCON_UTF8(r->owner), "}",
                                 "{", "expires", "{", "$lt", BCON_DATE_TIME(now), "}", "}", "]");
    /* Every renewal writes a value of its own (rd_rollup_release). */
    expires = now + ttl_ms > r->lease_expires ? now + ttl_ms : r->lease_expires + 1;
    update = BCON_NEW("$set", "{", "owner", BCON_UTF8(r->owner),
                                   "expires", BCON_DATE_TIME(expires), "}");
    ok = mongoc_collection_find_and_modify(r->batches, query, NULL, update, NULL,
                                           false, true, true, &reply, &e);
    bson_destroy(query);
    bson_destroy(update);
    bson_destroy(&reply);
    if (!ok && e.code == RD_ROLLUP_DUPLICATE_KEY) {
        lease_holder(r, err, errlen);
        return RD_DECLINED;
    }
    if (!ok)
        return rd_rollup_fail(&e, "lease", klass, err, errlen);
    r->lease_expires = expires;
    rd_rollup_point(r, "lease");
    return RD_OK;
}

/* Only the lease as we last wrote it: a folder of the same daemon that
 * renewed it since (a reload's new folder) keeps it. */
void
rd_rollup_release(struct rd_rollup *r)
{
    bson_t *sel;

    if (r->lease_expires == 0)
        return;
    sel = BCON_NEW("_id", BCON_UTF8("lease"), "owner", BCON_UTF8(r->owner),
                   "expires", BCON_DATE_TIME(r->lease_expires));

    mongoc_collection_delete_one(r->batches, sel, NULL, NULL, NULL);
    bson_destroy(sel);
}

int
rd_rollup_reset(struct rd_rollup *r, char *err, size_t errlen)
{
    bson_error_t e;

    if ((!mongoc_collection_drop_with_opts(r->rollups, NULL, &e)
         && e.code != NS_NOT_FOUND && strstr(e.message, "ns not found") == NULL)
        || (!mongoc_collection_drop_with_opts(r->batches, NULL, &e)
            && e.code != NS_NOT_FOUND && strstr(e.message, "ns not found") == NULL)) {
        snprintf(err, errlen, "drop: %s", e.message);
        return RD_ERROR;
    }
    return RD_OK;
}
