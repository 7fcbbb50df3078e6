/*
 * rollup_verify.c -- what keeps rollups right after a record that was
 * already folded is deleted, corrected or replaced, and what refuses
 * rollup mode where it cannot be kept right: the folder's background
 * verification (every phone recomputed from its marks, in _id order, at
 * most rollup.verify_rate records per second, a rollup that differs
 * rewritten), and the check for a TTL index on the records.
 *
 * docs/design.md states the guarantee and proves it.  In short: a
 * recompute is the compare-and-swap of rollup_phone.c, safe while folders
 * run; a change committed before the verification reaches a phone is in
 * that phone's rollup after it, so once a whole cycle has run since a
 * change, every report sees it.  Where the cycle stands is kept in the
 * batches collection ({_id: "verify", at, started}), so a folder that
 * restarts goes on where the last one stopped and the cycle's length
 * stays what the rate makes it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

#define VERIFY_ID     "verify"  /* _id of the position document in the batches */
#define PHONES_READ   64        /* phones listed per round trip */

struct position {
    int64_t at;                 /* the last phone verified in this cycle */
    int     fresh;              /* no phone yet in this cycle */
    int64_t started;            /* the cycle's start, ms since the epoch */
};

static int
read_position(struct rd_rollup *r, struct position *p, int *klass, char *err, size_t errlen)
{
    bson_t     *filter = BCON_NEW("_id", BCON_UTF8(VERIFY_ID)), d;
    bson_iter_t it;
    int         rc;

    p->fresh = 1;
    p->at = 0;
    p->started = rd_wall_ms();
    rc = rd_rollup_find_one(r->batches, filter, NULL, &d, "reading the verification's position",
                            klass, err, errlen);
    bson_destroy(filter);
    if (rc != RD_OK)
        return rc == RD_AGAIN ? RD_OK : rc;
    /* a position of another epoch is no position in this one */
    if (!bson_iter_init_find(&it, &d, "e") || !BSON_ITER_HOLDS_UTF8(&it)
        || strcmp(bson_iter_utf8(&it, NULL), r->epoch) != 0) {
        bson_destroy(&d);
        return RD_OK;
    }
    if (bson_iter_init_find(&it, &d, "at") && BSON_ITER_HOLDS_INT64(&it)) {
        p->at = bson_iter_int64(&it);
        p->fresh = 0;
    }
    if (bson_iter_init_find(&it, &d, "started") && BSON_ITER_HOLDS_DATE_TIME(&it))
        p->started = bson_iter_date_time(&it);
    bson_destroy(&d);
    return RD_OK;
}

static int
write_position(struct rd_rollup *r, const struct position *p, int *klass, char *err,
               size_t errlen)
{
    bson_t      *sel = BCON_NEW("_id", BCON_UTF8(VERIFY_ID)), doc = BSON_INITIALIZER, *opts;
    bson_error_t e;
    bool         ok;

    BSON_APPEND_UTF8(&doc, "_id", VERIFY_ID);
    if (!p->fresh)
        BSON_APPEND_INT64(&doc, "at", p->at);
    BSON_APPEND_DATE_TIME(&doc, "started", p->started);
    BSON_APPEND_UTF8(&doc, "e", r->epoch);
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    ok = mongoc_collection_replace_one(r->batches, sel, &doc, opts, NULL, &e);
    bson_destroy(opts);
    bson_destroy(&doc);
    bson_destroy(sel);
    return ok ? RD_OK : rd_rollup_fail(&e, "saving the verification's position", klass, err,
                                       errlen);
}

/* Up to PHONES_READ phones of this epoch's rollups after p, in order. */
static int
next_phones(struct rd_rollup *r, const struct position *p, int64_t *v, size_t *n, int *klass,
            char *err, size_t errlen)
{
    bson_t          *filter, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    char             why[128];
    int64_t          phone;

    filter = BCON_NEW("e", BCON_UTF8(r->epoch));
    if (!p->fresh)
        BCON_APPEND(filter, "_id", "{", "$gt", BCON_INT64(p->at), "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(PHONES_READ),
                    "projection", "{", "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->rollups, filter, opts, NULL);
    *n = 0;
    while (mongoc_cursor_next(cur, &d))
        if (rd_report_parse_phone(d, &phone, why, sizeof(why)) == RD_OK)
            v[(*n)++] = phone;
    bson_destroy(filter);
    bson_destroy(opts);
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        return rd_rollup_fail(&e, "listing rollups to verify", klass, err, errlen);
    }
    mongoc_cursor_destroy(cur);
    return RD_OK;
}

int
rd_rollup_verify(struct rd_rollup *r, int64_t budget, int64_t deadline,
                 struct rd_rollup_verify *v, void (*drift)(int64_t phone), int *klass, char *err,
                 size_t errlen)
{
    struct rd_rollup_recount c;
    struct position          p;
    int64_t                  phones[PHONES_READ];
    size_t                   n, k;
    char                     why[512];
    int                      rc, more = 1, failed = 0;

    memset(v, 0, sizeof(*v));
    if (r->epoch[0] == '\0') {
        rc = rd_rollup_epoch(r, 0, klass, err, errlen);
        if (rc != RD_OK)
            return rc == RD_AGAIN ? RD_OK : rc;     /* nothing folded yet */
    }
    if (read_position(r, &p, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    while (budget > 0 && more && rd_now_ms() < deadline) {
        if (next_phones(r, &p, phones, &n, klass, err, errlen) != RD_OK)
            goto save;          /* what was verified so far stays done */
        for (k = 0; k < n && budget > 0 && rd_now_ms() < deadline; k++) {
            if (rd_rollup_recompute(r, phones[k], -1, &c, klass, why, sizeof(why)) != RD_OK) {
                /* charged and passed: one phone does not hold the cycle */
                if (failed++ == 0)
                    snprintf(err, errlen, "%s", why);
                v->cost++;
                budget--;
                p.at = phones[k];
                p.fresh = 0;
                continue;
            }
            v->phones++;
            v->records += c.records;
            v->cost += c.records > 0 ? c.records : 1;
            budget -= c.records > 0 ? c.records : 1;
            if (c.changed) {
                v->drifted++;
                if (drift != NULL)
                    drift(phones[k]);
            }
            p.at = phones[k];
            p.fresh = 0;
        }
        if (k == n && n < PHONES_READ) {        /* past the last phone */
            int64_t now = rd_wall_ms();

            v->cycle_ms = now > p.started ? now - p.started : 1;
            v->cycles++;
            p.fresh = 1;
            p.started = now;
            more = 0;
        }
    }
    if (write_position(r, &p, klass, failed ? why : err, failed ? sizeof(why) : errlen) != RD_OK
        && !failed)
        return RD_ERROR;
    return failed ? RD_ERROR : RD_OK;
save:
    {
        char ignored[64];
        int  ignored_klass;

        write_position(r, &p, &ignored_klass, ignored, sizeof(ignored));
    }
    return RD_ERROR;
}

/* A TTL the collection itself carries (a clustered collection made with
 * expireAfterSeconds, MongoDB 5.3+; a time series' too): listIndexes does
 * not show it, listCollections' options do.  RD_OK none, RD_DECLINED one. */
static int
ttl_option(struct rd_rollup *r, char *why, size_t len, int *klass, char *err, size_t errlen)
{
    mongoc_database_t *db = mongoc_client_get_database(rd_store_client(r->store),
                                                       r->conf->mongodb.database);
    const char        *name = mongoc_collection_get_name(r->records);
    bson_t            *opts = BCON_NEW("filter", "{", "name", BCON_UTF8(name), "}");
    mongoc_cursor_t   *cur;
    const bson_t      *d;
    bson_error_t       e;
    bson_iter_t        it;
    int                found = 0;

    mongoc_database_set_read_prefs(db, mongoc_collection_get_read_prefs(r->records));
    cur = mongoc_database_find_collections_with_opts(db, opts);
    while (!found && mongoc_cursor_next(cur, &d)) {
        if (bson_iter_init_find(&it, d, "options") && BSON_ITER_HOLDS_DOCUMENT(&it)
            && bson_iter_recurse(&it, &it) && bson_iter_find(&it, "expireAfterSeconds")
            && BSON_ITER_HOLDS_NUMBER(&it)) {
            found = 1;
            snprintf(why, len, "the records collection %s expires its records itself "
                     "(created with expireAfterSeconds %" PRId64 "): MongoDB deletes them as "
                     "they expire, and rollup mode cannot follow a stream of deletes exactly; "
                     "use report.mode: live, or a collection without expiry", name,
                     bson_iter_as_int64(&it));
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        bson_destroy(opts);
        mongoc_database_destroy(db);
        return rd_rollup_fail(&e, "listing the records' collection options", klass, err, errlen);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_database_destroy(db);
    return found ? RD_DECLINED : RD_OK;
}

int
rd_rollup_ttl(struct rd_rollup *r, char *why, size_t len, int *klass, char *err, size_t errlen)
{
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    bson_iter_t      it, key;
    int              found = 0;

    cur = mongoc_collection_find_indexes_with_opts(r->records, NULL);
    while (!found && mongoc_cursor_next(cur, &d)) {
        if (!bson_iter_init_find(&it, d, "expireAfterSeconds") || !BSON_ITER_HOLDS_NUMBER(&it))
            continue;
        found = 1;
        snprintf(why, len, "the records collection %s has a TTL index",
                 mongoc_collection_get_name(r->records));
        if (bson_iter_init_find(&key, d, "key") && BSON_ITER_HOLDS_DOCUMENT(&key)
            && bson_iter_recurse(&key, &key) && bson_iter_next(&key)) {
            char field[256];

            snprintf(field, sizeof(field), "%s", bson_iter_key(&key));
            snprintf(why, len, "the records collection %s has a TTL index on %s "
                     "(expireAfterSeconds %" PRId64 "): MongoDB deletes its records as they "
                     "expire, and rollup mode cannot follow a stream of deletes exactly; "
                     "drop the index, or use report.mode: live",
                     mongoc_collection_get_name(r->records), field, bson_iter_as_int64(&it));
        }
    }
    if (mongoc_cursor_error(cur, &e)) {
        mongoc_cursor_destroy(cur);
        /* No collection yet: no index either. */
        if (e.code == 26 || strstr(e.message, "ns does not exist") != NULL
            || strstr(e.message, "ns not found") != NULL)
            return RD_OK;
        return rd_rollup_fail(&e, "listing the records' indexes", klass, err, errlen);
    }
    mongoc_cursor_destroy(cur);
    if (found)
        return RD_DECLINED;
    return ttl_option(r, why, len, klass, err, errlen);
}

int
rd_rollup_clear(struct rd_rollup *r, int64_t *removed, int *klass, char *err, size_t errlen)
{
    bson_t       filter = BSON_INITIALIZER, reply;
    bson_error_t e;
    bool         ok;

    ok = mongoc_collection_delete_many(r->rollups, &filter, NULL, &reply, &e);
    *removed = ok ? rd_rollup_int64(&reply, "deletedCount", 0) : 0;
    bson_destroy(&reply);
    return ok ? RD_OK : rd_rollup_fail(&e, "deleting the rollups", klass, err, errlen);
}
