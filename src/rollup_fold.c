/*
 * rollup_fold.c -- one fold step of the folder's batch state machine:
 * claim a batch, mark its records, apply it to the phones' rollups, and
 * start a new epoch when marks no batch accounts for appear; and the
 * folder's lag.  rollup.h states the
 * protocol, docs/design.md proves it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

#define CLAIM_MAX_BYTES      (8 << 20)  /* a batch document's id list, under 16 MB */
#define BATCHES_KEPT         100        /* done batch documents kept for the record */
#define APPLY_TRIES          100        /* a rollup that keeps changing under us */

/* The oldest batch of this epoch not done (*doc a copy, to destroy), else
 * RD_AGAIN. */
static int
oldest_open(struct rd_rollup *r, bson_t *doc, int *klass, char *err, size_t errlen)
{
    bson_t *filter, *opts;
    int     rc;

    filter = BCON_NEW("_id", "{", "$gte", BCON_INT64(0), "}", "e", BCON_UTF8(r->epoch),
                      "state", "{", "$in", "[", BCON_UTF8("claimed"), BCON_UTF8("applying"), "]", "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1));
    rc = rd_rollup_find_one(r->batches, filter, opts, doc, "finding open batches", klass, err, errlen);
    bson_destroy(filter);
    bson_destroy(opts);
    return rc;
}

/* The highest batch number of any epoch, 0 when there is none: numbers
 * are never reused in one batches collection. */
static int
highest(struct rd_rollup *r, int64_t *n, int *klass, char *err, size_t errlen)
{
    bson_t *filter, *opts, d;
    int     rc;

    filter = BCON_NEW("_id", "{", "$gte", BCON_INT64(0), "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");
    rc = rd_rollup_find_one(r->batches, filter, opts, &d, "finding the last batch", klass, err, errlen);
    bson_destroy(filter);
    bson_destroy(opts);
    *n = 0;
    if (rc == RD_OK) {
        *n = rd_rollup_int64(&d, "_id", 0);
        bson_destroy(&d);
    }
    return rc == RD_ERROR ? RD_ERROR : RD_OK;
}

/* Claim batch n: up to rollup.batch records unmarked in this epoch, in
 * _id order, listed in the batch document.  RD_AGAIN: nothing unmarked;
 * RD_DECLINED: another folder inserted batch n first. */
static int
claim(struct rd_rollup *r, int64_t n, int64_t *count, int *klass, char *err, size_t errlen)
{
    bson_t           filter = BSON_INITIALIZER, *opts, doc = BSON_INITIALIZER, ids;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_iter_t      it;
    bson_error_t     e;
    char             key[24];
    const char      *k;
    uint32_t         i = 0;
    int              rc = RD_OK;

    BSON_APPEND_NULL(&filter, r->field);
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64(r->conf->rollup.batch),
                    "projection", "{", "_id", BCON_INT32(1), "}",
                    "hint", "{", r->field, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    BSON_APPEND_INT64(&doc, "_id", n);
    BSON_APPEND_UTF8(&doc, "e", r->epoch);
    BSON_APPEND_UTF8(&doc, "state", "claimed");
    BSON_APPEND_UTF8(&doc, "by", r->owner);
    BSON_APPEND_DATE_TIME(&doc, "claimed_at", rd_wall_ms());
    BSON_APPEND_ARRAY_BEGIN(&doc, "ids", &ids);
    cur = mongoc_collection_find_with_opts(r->records, &filter, opts, NULL);
    while (mongoc_cursor_next(cur, &d)) {
        if (!bson_iter_init_find(&it, d, "_id"))
            continue;
        bson_uint32_to_string(i++, &k, key, sizeof(key));
        bson_append_iter(&ids, k, -1, &it);
        if (ids.len > CLAIM_MAX_BYTES)
            break;              /* large _ids: a smaller batch */
    }
    if (mongoc_cursor_error(cur, &e))
        rc = rd_rollup_fail(&e, "claim", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_append_array_end(&doc, &ids);
    BSON_APPEND_INT64(&doc, "records", i);
    if (rc == RD_OK && i == 0)
        rc = RD_AGAIN;
    if (rc == RD_OK && !mongoc_collection_insert_one(r->batches, &doc, NULL, NULL, &e)) {
        if (e.code == RD_ROLLUP_DUPLICATE_KEY)
            rc = RD_DECLINED;
        else
            rc = rd_rollup_fail(&e, "claim", klass, err, errlen);
    }
    if (rc == RD_OK)
        rd_rollup_point(r, "claim");
    *count = i;
    bson_destroy(&filter);
    bson_destroy(opts);
    bson_destroy(&doc);
    return rc;
}

/* Mark the records a batch lists and that are still unmarked. */
static int
mark(struct rd_rollup *r, const bson_t *batch, int64_t n, int *klass, char *err, size_t errlen)
{
    bson_t       sel = BSON_INITIALIZER, in, ids, update = BSON_INITIALIZER, set;
    bson_iter_t  it;
    bson_error_t e;
    uint32_t     len;
    const uint8_t *data;
    bool         ok;

    if (!bson_iter_init_find(&it, batch, "ids") || !BSON_ITER_HOLDS_ARRAY(&it))
        return RD_OK;           /* done already: the list is gone */
    bson_iter_array(&it, &len, &data);
    if (!bson_init_static(&ids, data, len))
        return RD_OK;
    BSON_APPEND_DOCUMENT_BEGIN(&sel, "_id", &in);
    BSON_APPEND_ARRAY(&in, "$in", &ids);
    bson_append_document_end(&sel, &in);
    BSON_APPEND_NULL(&sel, r->field);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_INT64(&set, r->field, n);
    bson_append_document_end(&update, &set);
    ok = mongoc_collection_update_many(r->records, &sel, &update, NULL, NULL, &e);
    bson_destroy(&sel);
    bson_destroy(&update);
    if (!ok)
        return rd_rollup_fail(&e, "mark", klass, err, errlen);
    rd_rollup_point(r, "mark");
    return RD_OK;
}

/* Move batch n from state `from` to `to`.  RD_DECLINED: the batch is not
 * in state `from` (another folder moved it on, or the batches collection
 * lost it: the caller starts over). */
static int
advance(struct rd_rollup *r, int64_t n, const char *from, const char *to,
        const struct rd_rollup_step *s, int *klass, char *err, size_t errlen)
{
    bson_t      *sel, *update, reply;
    bson_error_t e;
    bool         ok;
    int64_t      matched;

    sel = BCON_NEW("_id", BCON_INT64(n), "e", BCON_UTF8(r->epoch), "state", BCON_UTF8(from));
    if (strcmp(to, "done") == 0)
        update = BCON_NEW("$set", "{", "state", BCON_UTF8(to),
                                       "done_at", BCON_DATE_TIME(rd_wall_ms()),
                                       "phones", BCON_INT64(s->phones),
                                       "bad_phone", BCON_INT64(s->bad_phone),
                                       "invalid", BCON_INT64(s->invalid), "}",
                          "$unset", "{", "ids", BCON_UTF8(""), "}");
    else
        update = BCON_NEW("$set", "{", "state", BCON_UTF8(to), "}");
    ok = mongoc_collection_update_one(r->batches, sel, update, NULL, &reply, &e);
    matched = rd_rollup_int64(&reply, "matchedCount", 0);
    bson_destroy(&reply);
    bson_destroy(sel);
    bson_destroy(update);
    if (!ok)
        return rd_rollup_fail(&e, "batch state", klass, err, errlen);
    return matched == 1 ? RD_OK : RD_DECLINED;
}

/* Mark a phone's rollup as overflowed (reports on it answer Error) and
 * batch n as applied to it, so that folding goes on. */
static int
apply_overflow(struct rd_rollup *r, int64_t n, int64_t phone, int *klass, char *err,
               size_t errlen)
{
    bson_t      *sel, *update;
    bson_error_t e;
    bool         ok;

    sel = BCON_NEW("_id", BCON_INT64(phone), "e", BCON_UTF8(r->epoch),
                   "last", "{", "$lt", BCON_INT64(n), "}");
    update = BCON_NEW("$set", "{", "overflow", BCON_BOOL(true), "last", BCON_INT64(n), "}");
    ok = mongoc_collection_update_one(r->rollups, sel, update, NULL, NULL, &e);
    bson_destroy(sel);
    bson_destroy(update);
    return ok ? RD_OK : rd_rollup_fail(&e, "apply", klass, err, errlen);
}

/* The guarded $inc: {_id, e, prev <= last < n, and f <= INT64_MAX - delta
 * for each sum f this batch adds to}: it adds batch n only to a rollup
 * that covers every earlier batch of the phone (prev, its highest mark
 * below n: a rollup restored from an older backup, or written late by a
 * stalled recomputation, is behind), and no sum can overflow on the
 * server: a rollup it would overflow simply does not match. */
static void
apply_update(const struct rd_rollup *r, int64_t n, int64_t prev, const struct rd_phone_sums *s,
             bson_t *sel, bson_t *update)
{
    bson_t child;
    size_t i;

    BSON_APPEND_INT64(sel, "_id", s->phone);
    BSON_APPEND_UTF8(sel, "e", r->epoch);
    BSON_APPEND_DOCUMENT_BEGIN(sel, "last", &child);
    BSON_APPEND_INT64(&child, "$gte", prev);
    BSON_APPEND_INT64(&child, "$lt", n);
    bson_append_document_end(sel, &child);
    for (i = 0; i < RD_REPORT_NSUMS; i++) {
        int64_t d = *(const int64_t *) ((const char *) s + rd_report_sums[i].off);

        if (d <= 0)
            continue;
        BSON_APPEND_DOCUMENT_BEGIN(sel, rd_report_sums[i].key, &child);
        BSON_APPEND_INT64(&child, "$lte", INT64_MAX - d);
        bson_append_document_end(sel, &child);
    }
    BSON_APPEND_DOCUMENT_BEGIN(update, "$inc", &child);
    rd_rollup_append_sums(&child, s);
    bson_append_document_end(update, &child);
    if (s->cnt > 0) {
        BSON_APPEND_DOCUMENT_BEGIN(update, "$min", &child);
        BSON_APPEND_INT64(&child, "min_ms", s->min_ms);
        bson_append_document_end(update, &child);
        BSON_APPEND_DOCUMENT_BEGIN(update, "$max", &child);
        BSON_APPEND_INT64(&child, "max_ms", s->max_ms);
        bson_append_document_end(update, &child);
    }
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &child);
    BSON_APPEND_INT64(&child, "last", n);
    bson_append_document_end(update, &child);
}

/* Whether adding s to the rollup doc would take a sum past 64 bits (or
 * the rollup holds a sum that is not an integer). */
static int
would_overflow(const bson_t *doc, const struct rd_phone_sums *s)
{
    bson_iter_t it;
    size_t      i;

    for (i = 0; i < RD_REPORT_NSUMS; i++) {
        int64_t d = *(const int64_t *) ((const char *) s + rd_report_sums[i].off);

        if (d <= 0)
            continue;
        if (!bson_iter_init_find(&it, doc, rd_report_sums[i].key)
            || !(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))
            || bson_iter_as_int64(&it) > INT64_MAX - d)
            return 1;
    }
    return 0;
}

enum { APPLIED, APPLIED_BEFORE, OVERFLOWED };

/* The phone's highest mark below n (0: none), one key of {phone, rb_E}:
 * every batch below n is done, so it is final. */
static int
prev_mark(struct rd_rollup *r, int64_t phone, int64_t n, int64_t *prev, int *klass, char *err,
          size_t errlen)
{
    bson_t filter = BSON_INITIALIZER, lt, *opts, d;
    int    rc;

    BSON_APPEND_INT64(&filter, "phone", phone);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, r->field, &lt);
    BSON_APPEND_INT64(&lt, "$lt", n);
    bson_append_document_end(&filter, &lt);
    opts = BCON_NEW("sort", "{", r->field, BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(0), r->field, BCON_INT32(1), "}",
                    "hint", "{", "phone", BCON_INT32(1), r->field, BCON_INT32(1), "}");
    rc = rd_rollup_find_one(r->records, &filter, opts, &d, "apply", klass, err, errlen);
    bson_destroy(&filter);
    bson_destroy(opts);
    *prev = 0;
    if (rc == RD_OK) {
        *prev = rd_rollup_int64(&d, r->field, 0);
        bson_destroy(&d);
    }
    return rc == RD_ERROR ? RD_ERROR : RD_OK;
}

/*
 * Add one phone's share of batch n to its rollup.  When the guarded
 * update matches nothing, the rollup says why: missing, of another epoch,
 * or behind (last < prev): recomputed from all the phone's marks up to n;
 * applied before (last >= n); or full (a sum would overflow: marked so).
 */
static int
apply_phone(struct rd_rollup *r, int64_t n, const struct rd_phone_sums *s, int *how,
            int *klass, char *err, size_t errlen)
{
    bson_t           sel, update, reply, *q;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    bson_iter_t      it;
    int64_t          prev, last;
    int              tries, rc;
    bool             ok;

    if (prev_mark(r, s->phone, n, &prev, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    for (tries = 0; tries < APPLY_TRIES; tries++) {
        bson_init(&sel);
        bson_init(&update);
        apply_update(r, n, prev, s, &sel, &update);
        ok = mongoc_collection_update_one(r->rollups, &sel, &update, NULL, &reply, &e);
        bson_destroy(&sel);
        bson_destroy(&update);
        if (ok && rd_rollup_int64(&reply, "matchedCount", 0) == 1) {
            bson_destroy(&reply);
            *how = APPLIED;
            return RD_OK;
        }
        bson_destroy(&reply);
        if (!ok)
            return rd_rollup_fail(&e, "apply", klass, err, errlen);

        q = BCON_NEW("_id", BCON_INT64(s->phone));
        cur = mongoc_collection_find_with_opts(r->rollups, q, NULL, NULL);
        bson_destroy(q);
        if (!mongoc_cursor_next(cur, &d)) {
            if (mongoc_cursor_error(cur, &e)) {
                mongoc_cursor_destroy(cur);
                return rd_rollup_fail(&e, "apply", klass, err, errlen);
            }
            d = NULL;
        }
        last = d != NULL ? rd_rollup_int64(d, "last", 0) : 0;
        if (d == NULL || !bson_iter_init_find(&it, d, "e") || !BSON_ITER_HOLDS_UTF8(&it)
            || strcmp(bson_iter_utf8(&it, NULL), r->epoch) != 0 || last < prev) {
            /* None of this epoch (never folded, lost, another epoch's),
             * or one that is behind: every mark of this phone up to n is
             * final, batch n's too. */
            mongoc_cursor_destroy(cur);
            rc = rd_rollup_recompute(r, s->phone, n, NULL, klass, err, errlen);
            *how = APPLIED;
            return rc;
        }
        if (last >= n) {
            mongoc_cursor_destroy(cur);
            *how = APPLIED_BEFORE;
            return RD_OK;
        }
        if ((bson_iter_init_find(&it, d, "overflow") && bson_iter_as_bool(&it))
            || would_overflow(d, s)) {
            mongoc_cursor_destroy(cur);
            *how = OVERFLOWED;
            return apply_overflow(r, n, s->phone, klass, err, errlen);
        }
        mongoc_cursor_destroy(cur);     /* it changed between the two: again */
    }
    *klass = RD_STORE_TRANSIENT;
    snprintf(err, errlen, "apply: phone %lld: its rollup kept changing", (long long) s->phone);
    return RD_ERROR;
}

/* Batch n's rows, one per phone value the $group met: kept, merged per
 * phone (MongoDB groups numerically equal phones together; a row per
 * numeric type would be merged here all the same), then applied. */
struct rows_ctx {
    struct rd_phone_sums  *v;
    size_t                 n, cap;
    int64_t               *over;        /* phones whose sums came back past 64 bits */
    size_t                 nover, capover;
    struct rd_rollup_step *step;
};

static int
push64(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    int64_t *nv;

    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        nv = realloc(*v, *cap * sizeof(**v));
        if (nv == NULL)
            return -1;
        *v = nv;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int
batch_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct rows_ctx     *c = arg;
    struct rd_phone_sums s, *nv;
    int64_t              phone;
    int                  rc;

    memset(&s, 0, sizeof(s));
    rc = rd_report_parse_row(row, &s, err, errlen);
    if (rc == RD_DECLINED) {
        /* Records whose phone is not an integer: no report asks for them. */
        c->step->bad_phone += rd_rollup_int64(row, "n", 0);
        return 0;
    }
    if (rc != RD_OK) {
        /* A sum past 64 bits within the batch ($sum made it a double). */
        if (rd_report_parse_phone(row, &phone, err, errlen) != RD_OK)
            return -1;
        if (push64(&c->over, &c->nover, &c->capover, phone) != 0)
            goto oom;
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        nv = realloc(c->v, c->cap * sizeof(*nv));
        if (nv == NULL)
            goto oom;
        c->v = nv;
    }
    c->v[c->n++] = s;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int
by_phone(const void *a, const void *b)
{
    int64_t x = ((const struct rd_phone_sums *) a)->phone;
    int64_t y = ((const struct rd_phone_sums *) b)->phone;

    return x < y ? -1 : x > y;
}

/* Apply the batch's rows: merged per phone, each added to its rollup, or
 * recomputed when its sums pass 64 bits (which marks it overflowed). */
static int
apply_rows(struct rd_rollup *r, int64_t n, struct rows_ctx *c, int *klass, char *err,
           size_t errlen)
{
    size_t i, j, k;
    int    how = APPLIED;

    if (c->n > 1)               /* a batch of no phone at all has no rows */
        qsort(c->v, c->n, sizeof(*c->v), by_phone);
    for (i = 0, k = 0; i < c->n; i = j) {
        struct rd_phone_sums s = c->v[i];
        int                  over = 0;

        for (j = i + 1; j < c->n && c->v[j].phone == s.phone; j++)
            if (rd_report_sums_add(&s, &c->v[j], err, errlen) != RD_OK)
                over = 1;
        if (over) {
            if (push64(&c->over, &c->nover, &c->capover, s.phone) != 0) {
                snprintf(err, errlen, "out of memory");
                return RD_ERROR;
            }
            continue;
        }
        c->v[k++] = s;
    }
    c->n = k;
    for (i = 0; i < c->n; i++) {
        if (apply_phone(r, n, &c->v[i], &how, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        if (how == OVERFLOWED)
            c->step->overflowed++;
        c->step->invalid += c->v[i].invalid;
        if (how != APPLIED_BEFORE && c->step->phones++ == 0)
            rd_rollup_point(r, "apply");
    }
    for (i = 0; i < c->nover; i++) {
        if (rd_rollup_recompute(r, c->over[i], n, NULL, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        c->step->overflowed++;
    }
    return RD_OK;
}

/* Drop done batch documents but the last BATCHES_KEPT: finding the open
 * ones stays cheap.  Best effort. */
static void
prune(struct rd_rollup *r, int64_t n)
{
    bson_t *sel;

    if (n <= BATCHES_KEPT || n % 16 != 0)
        return;
    sel = BCON_NEW("_id", "{", "$gte", BCON_INT64(0), "$lt", BCON_INT64(n - BATCHES_KEPT), "}",
                   "state", BCON_UTF8("done"));
    mongoc_collection_delete_many(r->batches, sel, NULL, NULL, NULL);
    bson_destroy(sel);
}

/* Bring batch n (as its document says) to done.  RD_DECLINED: the batch
 * document went away meanwhile (the batches collection was dropped): the
 * step starts over, in whatever epoch is current then. */
static int
finish(struct rd_rollup *r, const bson_t *batch, struct rd_rollup_step *step,
       int *klass, char *err, size_t errlen)
{
    struct rows_ctx  c;
    bson_t           p = BSON_INITIALIZER, stage, m;
    uint32_t         i = 0;
    int64_t          n = rd_rollup_int64(batch, "_id", 0);
    int              rc;
    const char      *state = "claimed";
    bson_iter_t      it;

    step->batch = n;
    step->records = rd_rollup_int64(batch, "records", 0);
    if (bson_iter_init_find(&it, batch, "state") && BSON_ITER_HOLDS_UTF8(&it))
        state = bson_iter_utf8(&it, NULL);
    if (strcmp(state, "claimed") == 0) {
        if (mark(r, batch, n, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        rc = advance(r, n, "claimed", "applying", step, klass, err, errlen);
        if (rc != RD_OK)
            return rc;
    }
    /* Every record the batch claimed is marked now (by n, or by a batch a
     * racing folder claimed): the set marked n is final. */
    BSON_APPEND_DOCUMENT_BEGIN(&p, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_INT64(&m, r->field, n);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(&p, &stage);
    i = 1;
    rd_report_append_group(&p, &i);
    memset(&c, 0, sizeof(c));
    c.step = step;
    rc = rd_rollup_aggregate(r, &p, RD_ROLLUP_FOLD_MAX_MS, batch_row, &c, klass, err, errlen);
    bson_destroy(&p);
    if (rc == RD_OK)
        rc = apply_rows(r, n, &c, klass, err, errlen);
    free(c.v);
    free(c.over);
    if (rc != RD_OK)
        return RD_ERROR;
    rc = advance(r, n, "applying", "done", step, klass, err, errlen);
    if (rc == RD_OK)
        prune(r, n);
    return rc == RD_DECLINED ? RD_OK : rc;
}

/*
 * Whether records carry marks of this epoch above every batch document:
 * the batches collection was restored from an older backup (its epoch
 * document with it) while batches were folded.  A folder may still be
 * marking one of those batches; numbers would be reused.  Nothing of this
 * epoch can be trusted to go on: the caller starts a new one.  RD_OK:
 * there are; RD_AGAIN: none.
 */
static int
marks_above(struct rd_rollup *r, int64_t h, int *klass, char *err, size_t errlen)
{
    bson_t *filter, *opts, d;
    int     rc;

    filter = BCON_NEW(r->field, "{", "$gt", BCON_INT64(h), "}");
    opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", r->field, BCON_INT32(1), "}",
                    "hint", "{", r->field, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    rc = rd_rollup_find_one(r->records, filter, opts, &d, "looking for marks of unknown batches",
                            klass, err, errlen);
    if (rc == RD_OK)
        bson_destroy(&d);
    bson_destroy(filter);
    bson_destroy(opts);
    return rc;
}

/* The epoch as the batches collection says now (made if missing), and
 * its indexes. */
static int
current(struct rd_rollup *r, int *klass, char *err, size_t errlen)
{
    if (rd_rollup_epoch(r, 1, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    return r->indexed ? RD_OK : rd_rollup_indexes(r, klass, err, errlen);
}

int
rd_rollup_fold(struct rd_rollup *r, struct rd_rollup_step *step, int *klass,
               char *err, size_t errlen)
{
    bson_t  batch;
    int64_t n, count;
    int     rc, tries;
    char    was[RD_ROLLUP_EPOCH_LEN + 1];

    memset(step, 0, sizeof(*step));
    for (tries = 0; tries < 8; tries++) {
        snprintf(was, sizeof(was), "%s", r->epoch);
        if (current(r, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        if (was[0] != '\0' && strcmp(was, r->epoch) != 0)
            step->new_epoch = 1;
        snprintf(step->epoch, sizeof(step->epoch), "%s", r->epoch);
        if (rd_rollup_following(r) && strcmp(r->stream_epoch, r->epoch) != 0) {
            /* A new epoch: nothing is folded in it before the stream of
             * its own marks is open (the caller opens it), or a change to
             * a record folded meanwhile would come before the stream. */
            rd_rollup_follow_stop(r);
            return RD_AGAIN;
        }
        bson_init(&batch);
        rc = oldest_open(r, &batch, klass, err, errlen);
        if (rc == RD_OK) {
            step->resumed = 1;
            rc = finish(r, &batch, step, klass, err, errlen);
            bson_destroy(&batch);
            if (rc == RD_DECLINED)
                continue;       /* its document vanished: start over */
            return rc;
        }
        bson_destroy(&batch);
        if (rc != RD_AGAIN)
            return rc;
        if (highest(r, &n, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        rc = marks_above(r, n, klass, err, errlen);
        if (rc == RD_ERROR)
            return rc;
        if (rc == RD_OK) {
            if (rd_rollup_new_epoch(r, klass, err, errlen) != RD_OK)
                return RD_ERROR;
            step->new_epoch = 1;
            continue;
        }
        rc = claim(r, n + 1, &count, klass, err, errlen);
        if (rc == RD_AGAIN || rc == RD_ERROR)
            return rc;
        /* Claimed (or lost the race for n + 1): the next round finishes
         * the oldest open batch, which is ours unless one came before. */
        step->resumed = 0;
        if (rc == RD_OK) {
            bson_init(&batch);
            rc = oldest_open(r, &batch, klass, err, errlen);
            if (rc == RD_OK) {
                step->resumed = rd_rollup_int64(&batch, "_id", 0) != n + 1;
                rc = finish(r, &batch, step, klass, err, errlen);
            } else if (rc == RD_AGAIN) {
                rc = RD_OK;     /* another folder finished it already */
                step->batch = n + 1;
                step->records = count;
            }
            bson_destroy(&batch);
            if (rc == RD_DECLINED)
                continue;
            return rc;
        }
    }
    snprintf(err, errlen, "lost the race for a new batch %d times", tries);
    *klass = RD_STORE_TRANSIENT;
    return RD_ERROR;
}

/* ------------------------------------------------------------------ */
/* lag                                                                */
/* ------------------------------------------------------------------ */

int
rd_rollup_lag(struct rd_rollup *r, int64_t *unfolded, int64_t *behind_s, int *klass,
              char *err, size_t errlen)
{
    bson_t           filter = BSON_INITIALIZER, *opts = NULL, *fopts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_iter_t      it;
    bson_error_t     e;
    int64_t          c;
    int              rc;

    /* Before any folder made an epoch, every record is unfolded. */
    rc = r->epoch[0] ? RD_OK : rd_rollup_epoch(r, 0, klass, err, errlen);
    if (rc == RD_ERROR)
        return rc;
    if (rc == RD_OK) {
        BSON_APPEND_NULL(&filter, r->field);
        opts = BCON_NEW("hint", "{", r->field, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    }
    c = mongoc_collection_count_documents(r->records, &filter, opts, NULL, NULL, &e);
    if (opts != NULL)
        bson_destroy(opts);
    if (c < 0) {
        bson_destroy(&filter);
        return rd_rollup_fail(&e, "counting unfolded records", klass, err, errlen);
    }
    *unfolded = c;
    *behind_s = 0;
    fopts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1),
                     "projection", "{", "_id", BCON_INT32(1), "}");
    if (rc == RD_OK)
        BCON_APPEND(fopts, "hint", "{", r->field, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->records, &filter, fopts, NULL);
    if (mongoc_cursor_next(cur, &d)) {
        if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            int64_t t = (int64_t) bson_oid_get_time_t(bson_iter_oid(&it));
            int64_t now = rd_wall_ms() / 1000;

            *behind_s = now > t ? now - t : 0;
        }
        rc = RD_OK;
    } else {
        rc = mongoc_cursor_error(cur, &e) ? rd_rollup_fail(&e, "finding the oldest unfolded record",
                                                          klass, err, errlen) : RD_OK;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(fopts);
    bson_destroy(&filter);
    return rc;
}
