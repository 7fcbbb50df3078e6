/*
 * rollup.c -- rollup mode's MongoDB side: the indexes, the lease, one fold
 * step (claim, mark, apply a batch), a report from rollups plus the tail,
 * and reporterctl's rebuild and reset.  rollup.h states the protocol.
 *
 * Only what MongoDB 4.4 offers on a standalone server: single-document
 * atomic updates, unique _id, multi-document updates that may yield, no
 * transactions, no snapshot reads, no change streams, no update pipelines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "rollup.h"
#include "util.h"

#define DUPLICATE_KEY        11000
#define INDEX_OPTIONS_CONFLICT  85     /* the same keys under another name */
#define FOLD_MAX_TIME_MS     600000     /* one batch's $group: the folder's own limit */
#define CLAIM_MAX_BYTES      (8 << 20)  /* a batch document's id list, under 16 MB */
#define BATCHES_KEPT         100        /* done batch documents kept for the record */

struct rd_rollup {
    struct rd_store     *store;
    mongoc_collection_t *records, *rollups, *batches;
    const struct rd_conf *conf;
    char                 owner[128];
    int64_t              lease_expires; /* what we last wrote, 0: none */
    void               (*hook)(const char *step);
};

/* s's counts and sums, each under its field name, into doc. */
static void
append_sums(bson_t *doc, const struct rd_phone_sums *s)
{
    size_t i;

    for (i = 0; i < RD_REPORT_NSUMS; i++)
        BSON_APPEND_INT64(doc, rd_report_sums[i].key,
                          *(const int64_t *) ((const char *) s + rd_report_sums[i].off));
}

struct rd_rollup *
rd_rollup_new(struct rd_store *st, const struct rd_conf *conf, const char *owner)
{
    struct rd_rollup *r = calloc(1, sizeof(*r));
    mongoc_client_t  *c = rd_store_client(st);
    char              name[512];

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
    return r;
}

void
rd_rollup_free(struct rd_rollup *r)
{
    if (r == NULL)
        return;
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

static void
point(const struct rd_rollup *r, const char *step)
{
    if (r->hook != NULL)
        r->hook(step);
}

static int
fail(const bson_error_t *e, const char *what, int *klass, char *err, size_t errlen)
{
    char msg[512];

    rd_store_error(e, klass, msg, sizeof(msg));
    snprintf(err, errlen, "%s: %s", what, msg);
    return RD_ERROR;
}

/* ------------------------------------------------------------------ */
/* indexes                                                            */
/* ------------------------------------------------------------------ */

int
rd_rollup_indexes(struct rd_rollup *r, int *klass, char *err, size_t errlen)
{
    bson_t      *cmd;
    bson_error_t e;
    bool         ok;

    cmd = BCON_NEW("createIndexes", BCON_UTF8(mongoc_collection_get_name(r->records)),
                   "indexes", "[",
                       "{", "key", "{", RD_ROLLUP_FIELD, BCON_INT32(1), "_id", BCON_INT32(1), "}",
                            "name", BCON_UTF8("reporterd_claim"), "}",
                       "{", "key", "{", "phone", BCON_INT32(1), RD_ROLLUP_FIELD, BCON_INT32(1), "}",
                            "name", BCON_UTF8("reporterd_tail"), "}",
                   "]");
    ok = mongoc_collection_write_command_with_opts(r->records, cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    /* The same keys under other names serve as well (hints name keys). */
    return ok || e.code == INDEX_OPTIONS_CONFLICT ? RD_OK
                                                   : fail(&e, "createIndexes", klass, err, errlen);
}

/* ------------------------------------------------------------------ */
/* the lease                                                          */
/* ------------------------------------------------------------------ */

int
rd_rollup_lease(struct rd_rollup *r, int64_t ttl_ms, int *klass, char *err, size_t errlen)
{
    bson_t      *query, *update, reply;
    bson_error_t e;
    bson_iter_t  it;
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
    if (!ok && e.code == DUPLICATE_KEY) {
        bson_destroy(&reply);
        query = BCON_NEW("_id", BCON_UTF8("lease"));
        snprintf(err, errlen, "the lease is held by another folder");
        {
            mongoc_cursor_t *cur = mongoc_collection_find_with_opts(r->batches, query, NULL, NULL);
            const bson_t    *doc;

            if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "owner")
                && BSON_ITER_HOLDS_UTF8(&it))
                snprintf(err, errlen, "the lease is held by %s", bson_iter_utf8(&it, NULL));
            mongoc_cursor_destroy(cur);
        }
        bson_destroy(query);
        return RD_DECLINED;
    }
    bson_destroy(&reply);
    if (!ok)
        return fail(&e, "lease", klass, err, errlen);
    r->lease_expires = expires;
    point(r, "lease");
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

/* ------------------------------------------------------------------ */
/* folding                                                            */
/* ------------------------------------------------------------------ */

static int64_t
int64_of(const bson_t *doc, const char *key, int64_t def)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return def;
}

/* The oldest batch not done (*doc a copy, to destroy), else RD_AGAIN. */
static int
oldest_open(struct rd_rollup *r, bson_t *doc, int *klass, char *err, size_t errlen)
{
    bson_t          *filter, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    int              rc = RD_AGAIN;

    filter = BCON_NEW("_id", "{", "$gte", BCON_INT64(0), "}",
                      "state", "{", "$in", "[", BCON_UTF8("claimed"), BCON_UTF8("applying"), "]", "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1));
    cur = mongoc_collection_find_with_opts(r->batches, filter, opts, NULL);
    if (mongoc_cursor_next(cur, &d)) {
        bson_copy_to(d, doc);
        rc = RD_OK;
    } else if (mongoc_cursor_error(cur, &e)) {
        rc = fail(&e, "finding open batches", klass, err, errlen);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    return rc;
}

/* The highest batch number, 0 when there is none. */
static int
highest(struct rd_rollup *r, int64_t *n, int *klass, char *err, size_t errlen)
{
    bson_t          *filter, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    int              rc = RD_OK;

    filter = BCON_NEW("_id", "{", "$gte", BCON_INT64(0), "}");
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->batches, filter, opts, NULL);
    *n = 0;
    if (mongoc_cursor_next(cur, &d))
        *n = int64_of(d, "_id", 0);
    else if (mongoc_cursor_error(cur, &e))
        rc = fail(&e, "finding the last batch", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    return rc;
}

/* Claim batch n: up to rollup.batch unmarked records in _id order, listed
 * in the batch document.  RD_AGAIN: nothing unmarked; RD_DECLINED:
 * another folder inserted batch n first. */
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

    BSON_APPEND_NULL(&filter, RD_ROLLUP_FIELD);
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64(r->conf->rollup.batch),
                    "projection", "{", "_id", BCON_INT32(1), "}",
                    "hint", "{", RD_ROLLUP_FIELD, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    BSON_APPEND_INT64(&doc, "_id", n);
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
        rc = fail(&e, "claim", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_append_array_end(&doc, &ids);
    BSON_APPEND_INT64(&doc, "records", i);
    if (rc == RD_OK && i == 0)
        rc = RD_AGAIN;
    if (rc == RD_OK && !mongoc_collection_insert_one(r->batches, &doc, NULL, NULL, &e)) {
        if (e.code == DUPLICATE_KEY)
            rc = RD_DECLINED;
        else
            rc = fail(&e, "claim", klass, err, errlen);
    }
    if (rc == RD_OK)
        point(r, "claim");
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
    bson_t       sel = BSON_INITIALIZER, in, ids, *update;
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
    BSON_APPEND_NULL(&sel, RD_ROLLUP_FIELD);
    update = BCON_NEW("$set", "{", RD_ROLLUP_FIELD, BCON_INT64(n), "}");
    ok = mongoc_collection_update_many(r->records, &sel, update, NULL, NULL, &e);
    bson_destroy(&sel);
    bson_destroy(update);
    if (!ok)
        return fail(&e, "mark", klass, err, errlen);
    point(r, "mark");
    return RD_OK;
}

/* Move batch n from state `from` to `to` (a no-op if another folder did). */
static int
advance(struct rd_rollup *r, int64_t n, const char *from, const char *to,
        const struct rd_rollup_step *s, int *klass, char *err, size_t errlen)
{
    bson_t      *sel, *update;
    bson_error_t e;
    bool         ok;

    sel = BCON_NEW("_id", BCON_INT64(n), "state", BCON_UTF8(from));
    if (strcmp(to, "done") == 0)
        update = BCON_NEW("$set", "{", "state", BCON_UTF8(to),
                                       "done_at", BCON_DATE_TIME(rd_wall_ms()),
                                       "phones", BCON_INT64(s->phones),
                                       "bad_phone", BCON_INT64(s->bad_phone),
                                       "invalid", BCON_INT64(s->invalid), "}",
                          "$unset", "{", "ids", BCON_UTF8(""), "}");
    else
        update = BCON_NEW("$set", "{", "state", BCON_UTF8(to), "}");
    ok = mongoc_collection_update_one(r->batches, sel, update, NULL, NULL, &e);
    bson_destroy(sel);
    bson_destroy(update);
    return ok ? RD_OK : fail(&e, "batch state", klass, err, errlen);
}

/* Add one phone's share of batch n to its rollup, unless applied. */
static int
apply_phone(struct rd_rollup *r, int64_t n, const struct rd_phone_sums *s, int *applied,
            int *klass, char *err, size_t errlen)
{
    bson_t       sel = BSON_INITIALIZER, update = BSON_INITIALIZER, child, lt, opts = BSON_INITIALIZER;
    bson_error_t e;
    bool         ok;

    BSON_APPEND_INT64(&sel, "_id", s->phone);
    BSON_APPEND_DOCUMENT_BEGIN(&sel, "last", &lt);
    BSON_APPEND_INT64(&lt, "$lt", n);
    bson_append_document_end(&sel, &lt);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &child);
    append_sums(&child, s);
    bson_append_document_end(&update, &child);
    if (s->cnt > 0) {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$min", &child);
        BSON_APPEND_INT64(&child, "min_ms", s->min_ms);
        bson_append_document_end(&update, &child);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &child);
        BSON_APPEND_INT64(&child, "max_ms", s->max_ms);
        bson_append_document_end(&update, &child);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &child);
    BSON_APPEND_INT64(&child, "last", n);
    bson_append_document_end(&update, &child);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    ok = mongoc_collection_update_one(r->rollups, &sel, &update, &opts, NULL, &e);
    bson_destroy(&sel);
    bson_destroy(&update);
    bson_destroy(&opts);
    *applied = ok;
    if (!ok && e.code == DUPLICATE_KEY)
        return RD_OK;           /* its last is n or later: applied before */
    return ok ? RD_OK : fail(&e, "apply", klass, err, errlen);
}

/* Mark a phone's rollup as overflowed (reports on it answer Error) and
 * batch n as applied to it, so that folding goes on. */
static int
apply_overflow(struct rd_rollup *r, int64_t n, int64_t phone, int *klass, char *err,
               size_t errlen)
{
    bson_t      *sel, *update, *opts;
    bson_error_t e;
    bool         ok;

    sel = BCON_NEW("_id", BCON_INT64(phone), "last", "{", "$lt", BCON_INT64(n), "}");
    update = BCON_NEW("$set", "{", "overflow", BCON_BOOL(true), "last", BCON_INT64(n), "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    ok = mongoc_collection_update_one(r->rollups, sel, update, opts, NULL, &e);
    bson_destroy(sel);
    bson_destroy(update);
    bson_destroy(opts);
    return ok || e.code == DUPLICATE_KEY ? RD_OK : fail(&e, "apply", klass, err, errlen);
}

struct apply_ctx {
    struct rd_rollup      *r;
    int64_t                n;
    struct rd_rollup_step *step;
    int                   *klass;
};

static int
apply_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct apply_ctx    *a = arg;
    struct rd_phone_sums s;
    int                  rc, applied;

    memset(&s, 0, sizeof(s));
    rc = rd_report_parse_sums(row, &s, err, errlen);
    if (rc == RD_DECLINED) {
        /* Records whose phone is not an integer: no report asks for them. */
        a->step->bad_phone += int64_of(row, "cnt", 0) + int64_of(row, "invalid", 0);
        return 0;
    }
    if (rc != RD_OK) {
        /* A sum beyond 64 bits ($sum turned it into a double): that phone
         * is poisoned, not the folding (live mode refuses it too). */
        a->step->overflowed++;
        return apply_overflow(a->r, a->n, int64_of(row, "_id", 0), a->klass, err, errlen) == RD_OK
               ? 0 : -1;
    }
    if (apply_phone(a->r, a->n, &s, &applied, a->klass, err, errlen) != RD_OK) {
        if (strstr(err, "overflow") == NULL)
            return -1;
        a->step->overflowed++;  /* $inc beyond 64 bits on the server */
        return apply_overflow(a->r, a->n, s.phone, a->klass, err, errlen) == RD_OK ? 0 : -1;
    }
    a->step->invalid += s.invalid;
    if (applied && a->step->phones++ == 0)
        point(a->r, "apply");
    return 0;
}

static void prune(struct rd_rollup *r, int64_t n);
static int  recompute(struct rd_rollup *r, int64_t phone, int64_t upto, char *err,
                      size_t errlen);

struct phones_ctx {
    int64_t *v;
    size_t   n, cap;
    int64_t  bad;               /* records whose phone is not an integer */
};

static int
phone_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct phones_ctx *c = arg;
    bson_iter_t        it;
    int64_t           *nv;
    double             x;

    if (!bson_iter_init_find(&it, row, "_id"))
        return 0;
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        x = bson_iter_double(&it);
        if (!(x >= -0x1p63 && x < 0x1p63 && x == (double) (int64_t) x)) {
            c->bad += int64_of(row, "n", 0);
            return 0;
        }
    } else if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it)) {
        c->bad += int64_of(row, "n", 0);
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        nv = realloc(c->v, c->cap * sizeof(*nv));
        if (nv == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->v = nv;
    }
    c->v[c->n++] = bson_iter_as_int64(&it);
    return 0;
}

/* An adopted range (from..n]: each phone with records marked in it is
 * recomputed from all its records marked up to n (adopt()). */
static int
finish_adopted(struct rd_rollup *r, int64_t n, int64_t from, struct rd_rollup_step *step,
               int *klass, char *err, size_t errlen)
{
    struct phones_ctx c;
    bson_t           *p;
    size_t            k;
    int               rc;

    memset(&c, 0, sizeof(c));
    step->resumed = 1;
    p = BCON_NEW("0", "{", "$match", "{", RD_ROLLUP_FIELD, "{", "$gte", BCON_INT64(from),
                                                               "$lte", BCON_INT64(n), "}", "}", "}",
                 "1", "{", "$group", "{", "_id", BCON_UTF8("$phone"),
                                          "n", "{", "$sum", BCON_INT32(1), "}", "}", "}");
    rc = rd_store_aggregate(r->store, p, FOLD_MAX_TIME_MS, phone_row, &c, klass, err, errlen);
    bson_destroy(p);
    for (k = 0; rc == RD_OK && k < c.n; k++) {
        rc = recompute(r, c.v[k], n, err, errlen);
        if (rc != RD_OK)
            *klass = RD_STORE_TRANSIENT;
        step->phones++;
    }
    free(c.v);
    step->bad_phone = c.bad;
    if (rc != RD_OK)
        return RD_ERROR;
    return advance(r, n, "applying", "done", step, klass, err, errlen);
}

/* Bring batch n (as its document says) to done. */
static int
finish(struct rd_rollup *r, const bson_t *batch, struct rd_rollup_step *step,
       int *klass, char *err, size_t errlen)
{
    struct apply_ctx a;
    bson_t           p = BSON_INITIALIZER, stage, m;
    uint32_t         i = 0;
    int64_t          n = int64_of(batch, "_id", 0);
    int              rc, k2;
    const char      *state = "claimed";
    bson_iter_t      it;

    step->batch = n;
    step->records = int64_of(batch, "records", 0);
    if (bson_iter_init_find(&it, batch, "from") && BSON_ITER_HOLDS_INT64(&it))
        return finish_adopted(r, n, bson_iter_int64(&it), step, klass, err, errlen);
    if (bson_iter_init_find(&it, batch, "state") && BSON_ITER_HOLDS_UTF8(&it))
        state = bson_iter_utf8(&it, NULL);
    if (strcmp(state, "claimed") == 0) {
        if (mark(r, batch, n, klass, err, errlen) != RD_OK
            || advance(r, n, "claimed", "applying", step, klass, err, errlen) != RD_OK)
            return RD_ERROR;
    }
    /* Every record the batch claimed is marked now (by n, or by a batch a
     * racing folder claimed): the set marked n is final. */
    BSON_APPEND_DOCUMENT_BEGIN(&p, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_INT64(&m, RD_ROLLUP_FIELD, n);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(&p, &stage);
    i = 1;
    rd_report_append_group(&p, &i);
    a.r = r;
    a.n = n;
    a.step = step;
    a.klass = &k2;
    k2 = RD_STORE_PERMANENT;
    rc = rd_store_aggregate(r->store, &p, FOLD_MAX_TIME_MS, apply_row, &a, klass, err, errlen);
    bson_destroy(&p);
    if (rc != RD_OK) {
        if (k2 != RD_STORE_PERMANENT)
            *klass = k2;
        return RD_ERROR;
    }
    if (advance(r, n, "applying", "done", step, klass, err, errlen) != RD_OK)
        return RD_ERROR;
    prune(r, n);
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

/*
 * Records marked with batch numbers above every batch document (the
 * batches collection was dropped, renamed by a reload, restored from an
 * older backup): they belong to no batch that will ever be applied, and a
 * new batch reusing one of their numbers would leave them in neither the
 * rollups nor the tail once a phone's last passed it.  Adopt them: one
 * batch, numbered the highest mark m, covering every mark above h, born
 * applying.  RD_OK: adopted (or someone else did); RD_AGAIN: none.
 */
static int
adopt(struct rd_rollup *r, int64_t h, int *klass, char *err, size_t errlen)
{
    bson_t          *filter, *opts, doc = BSON_INITIALIZER;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    int64_t          m = 0;
    int              rc = RD_OK;

    filter = BCON_NEW(RD_ROLLUP_FIELD, "{", "$gt", BCON_INT64(h), "}");
    opts = BCON_NEW("sort", "{", RD_ROLLUP_FIELD, BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                    "projection", "{", RD_ROLLUP_FIELD, BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->records, filter, opts, NULL);
    if (mongoc_cursor_next(cur, &d))
        m = int64_of(d, RD_ROLLUP_FIELD, 0);
    else if (mongoc_cursor_error(cur, &e))
        rc = fail(&e, "looking for unknown batch marks", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    if (rc != RD_OK)
        return rc;
    if (m <= h)
        return RD_AGAIN;
    BSON_APPEND_INT64(&doc, "_id", m);
    BSON_APPEND_UTF8(&doc, "state", "applying");
    BSON_APPEND_INT64(&doc, "from", h + 1);
    BSON_APPEND_UTF8(&doc, "by", r->owner);
    BSON_APPEND_DATE_TIME(&doc, "claimed_at", rd_wall_ms());
    if (!mongoc_collection_insert_one(r->batches, &doc, NULL, NULL, &e) && e.code != DUPLICATE_KEY)
        rc = fail(&e, "adopting unknown batch marks", klass, err, errlen);
    bson_destroy(&doc);
    return rc;
}

int
rd_rollup_fold(struct rd_rollup *r, struct rd_rollup_step *step, int *klass,
               char *err, size_t errlen)
{
    bson_t  batch;
    int64_t n, count;
    int     rc, tries;

    memset(step, 0, sizeof(*step));
    for (tries = 0; tries < 8; tries++) {
        bson_init(&batch);
        rc = oldest_open(r, &batch, klass, err, errlen);
        if (rc == RD_OK) {
            step->resumed = 1;
            rc = finish(r, &batch, step, klass, err, errlen);
            bson_destroy(&batch);
            return rc;
        }
        bson_destroy(&batch);
        if (rc != RD_AGAIN)
            return rc;
        if (highest(r, &n, klass, err, errlen) != RD_OK)
            return RD_ERROR;
        rc = adopt(r, n, klass, err, errlen);
        if (rc == RD_ERROR)
            return rc;
        if (rc == RD_OK)
            continue;           /* the next round finishes it */
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
                step->resumed = int64_of(&batch, "_id", 0) != n + 1;
                rc = finish(r, &batch, step, klass, err, errlen);
            } else if (rc == RD_AGAIN) {
                rc = RD_OK;     /* another folder finished it already */
                step->batch = n + 1;
                step->records = count;
            }
            bson_destroy(&batch);
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
    bson_t           filter = BSON_INITIALIZER, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_iter_t      it;
    bson_error_t     e;
    int64_t          c;

    BSON_APPEND_NULL(&filter, RD_ROLLUP_FIELD);
    opts = BCON_NEW("hint", "{", RD_ROLLUP_FIELD, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    c = mongoc_collection_count_documents(r->records, &filter, opts, NULL, NULL, &e);
    bson_destroy(opts);
    if (c < 0) {
        bson_destroy(&filter);
        return fail(&e, "counting unfolded records", klass, err, errlen);
    }
    *unfolded = c;
    *behind_s = 0;
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}",
                    "hint", "{", RD_ROLLUP_FIELD, BCON_INT32(1), "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->records, &filter, opts, NULL);
    if (mongoc_cursor_next(cur, &d) && bson_iter_init_find(&it, d, "_id")
        && BSON_ITER_HOLDS_OID(&it)) {
        int64_t t = (int64_t) bson_oid_get_time_t(bson_iter_oid(&it));
        int64_t now = rd_wall_ms() / 1000;

        *behind_s = now > t ? now - t : 0;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return RD_OK;
}

/* ------------------------------------------------------------------ */
/* reports                                                            */
/* ------------------------------------------------------------------ */

/* The phones' rollups into stats[], their last batches into last[]. */
static int
read_rollups(struct rd_rollup *r, struct rd_phone_sums *stats, int64_t *last, size_t n,
             int max_time_ms, int *klass, char *err, size_t errlen)
{
    bson_t           filter = BSON_INITIALIZER, in, arr, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    bson_iter_t      it;
    char             key[24];
    const char      *k;
    size_t           i;
    int              rc = RD_OK;

    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    for (i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t) i, &k, key, sizeof(key));
        BSON_APPEND_INT64(&arr, k, stats[i].phone);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    opts = BCON_NEW("maxTimeMS", BCON_INT32(max_time_ms));
    cur = mongoc_collection_find_with_opts(r->rollups, &filter, opts, NULL);
    while (rc == RD_OK && mongoc_cursor_next(cur, &d)) {
        struct rd_phone_sums s, *into;

        memset(&s, 0, sizeof(s));
        if (bson_iter_init_find(&it, d, "overflow") && bson_iter_as_bool(&it)) {
            snprintf(err, errlen, "phone %lld: the sums of its records overflow 64-bit "
                     "integers", (long long) int64_of(d, "_id", 0));
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
            break;
        }
        if (rd_report_parse_sums(d, &s, err, errlen) != RD_OK) {
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
            break;
        }
        into = rd_report_find(stats, n, s.phone);
        if (into == NULL)
            continue;
        if (rd_report_sums_add(into, &s, err, errlen) != RD_OK) {
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
            break;
        }
        last[into - stats] = int64_of(d, "last", 0);
    }
    if (rc == RD_OK && mongoc_cursor_error(cur, &e))
        rc = fail(&e, "reading rollups", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return rc;
}

/*
 * The tail: each phone's records unmarked or marked after its rollup's
 * last batch, one $or branch per phone (an index range on {phone, rb}
 * that marking only ever moves a record forward in), grouped by _id first
 * so that a record the scan meets twice counts once.
 */
static bson_t *
tail_pipeline(const struct rd_phone_sums *stats, const int64_t *last, size_t n)
{
    bson_t      *p = bson_new(), stage, m, or, br, rb, no;
    char         key[24];
    const char  *k;
    uint32_t     i;

    BSON_APPEND_DOCUMENT_BEGIN(p, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_ARRAY_BEGIN(&m, "$or", &or);
    for (i = 0; i < n; i++) {
        bson_uint32_to_string(i, &k, key, sizeof(key));
        BSON_APPEND_DOCUMENT_BEGIN(&or, k, &br);
        BSON_APPEND_INT64(&br, "phone", stats[i].phone);
        BSON_APPEND_DOCUMENT_BEGIN(&br, RD_ROLLUP_FIELD, &rb);
        BSON_APPEND_DOCUMENT_BEGIN(&rb, "$not", &no);
        BSON_APPEND_INT64(&no, "$lte", last[i]);
        bson_append_document_end(&rb, &no);
        bson_append_document_end(&br, &rb);
        bson_append_document_end(&or, &br);
    }
    bson_append_array_end(&m, &or);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(p, &stage);
    BSON_APPEND_DOCUMENT_BEGIN(p, "1", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &m);
    BSON_APPEND_UTF8(&m, "_id", "$_id");
    BSON_APPEND_DOCUMENT_BEGIN(&m, "phone", &br);
    BSON_APPEND_UTF8(&br, "$first", "$phone");
    bson_append_document_end(&m, &br);
    BSON_APPEND_DOCUMENT_BEGIN(&m, "start_date", &br);
    BSON_APPEND_UTF8(&br, "$first", "$start_date");
    bson_append_document_end(&m, &br);
    BSON_APPEND_DOCUMENT_BEGIN(&m, "end_date", &br);
    BSON_APPEND_UTF8(&br, "$first", "$end_date");
    bson_append_document_end(&m, &br);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(p, &stage);
    i = 2;
    rd_report_append_group(p, &i);
    return p;
}

int
rd_rollup_report(struct rd_rollup *r, struct rd_phone_sums *stats, size_t n,
                 int max_time_ms, int *klass, char *err, size_t errlen)
{
    struct rd_report_rows t;
    int64_t        *last, t0, spent;
    bson_t         *p;
    int             rc, half;

    if (n == 0)
        return RD_OK;
    last = calloc(n, sizeof(*last));
    if (last == NULL) {
        *klass = RD_STORE_PERMANENT;
        snprintf(err, errlen, "out of memory");
        return RD_ERROR;
    }
    /* Half of max_time_ms for the rollups; the tail is not started once
     * that is spent (rd_conf_budget() counts the two so). */
    half = max_time_ms / 2 > 0 ? max_time_ms / 2 : 1;
    t0 = rd_now_ms();
    rc = read_rollups(r, stats, last, n, half, klass, err, errlen);
    spent = rd_now_ms() - t0;
    if (rc == RD_OK && (spent > half || spent >= max_time_ms)) {
        *klass = RD_STORE_TIMEOUT;
        snprintf(err, errlen, "reading the rollups took %lld ms, over half of "
                 "mongodb.max_time_ms (%d ms)", (long long) spent, max_time_ms);
        rc = RD_ERROR;
    }
    if (rc == RD_OK) {
        p = tail_pipeline(stats, last, n);
        t.stats = stats;
        t.n = n;
        rc = rd_store_aggregate(r->store, p, (int) (max_time_ms - spent), rd_report_rows_add, &t,
                                klass, err, errlen);
        bson_destroy(p);
    }
    free(last);
    return rc;
}

/* ------------------------------------------------------------------ */
/* reporterctl                                                        */
/* ------------------------------------------------------------------ */

struct rebuild_ctx {
    struct rd_phone_sums s;
    int                  rows;
};

static int
rebuild_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct rebuild_ctx  *b = arg;
    struct rd_phone_sums s;

    memset(&s, 0, sizeof(s));
    if (rd_report_parse_sums(row, &s, err, errlen) != RD_OK
        || rd_report_sums_add(&b->s, &s, err, errlen) != RD_OK)
        return -1;
    b->rows++;
    return 0;
}

/* The matched or deleted count of a write's reply. */
static int64_t
count_of(const bson_t *reply, const char *key)
{
    return int64_of(reply, key, 0);
}

/*
 * One phone's rollup recomputed from its records marked up to `upto`, and
 * swapped in only if its document has not changed meanwhile (compare and
 * swap on last; an insert when there was none).  upto < 0: up to its own
 * last L, keeping L (--rebuild: every record marked up to L is final,
 * batch L was wholly marked before it was applied and every earlier one is
 * done).  upto >= 0: an adopted range ending at upto (adopt()), unless the
 * document is there already.  RD_AGAIN: it changed, read it again.
 */
static int
recompute_phone(struct rd_rollup *r, int64_t phone, int64_t upto, char *err, size_t errlen)
{
    struct rebuild_ctx b;
    bson_t            *sel, p = BSON_INITIALIZER, stage, m, lte, doc = BSON_INITIALIZER, reply;
    mongoc_cursor_t   *cur;
    const bson_t      *d;
    bson_error_t       e;
    uint32_t           i;
    int64_t            last = -1, target;
    int                klass, rc;
    bool               ok;

    sel = BCON_NEW("_id", BCON_INT64(phone));
    cur = mongoc_collection_find_with_opts(r->rollups, sel, NULL, NULL);
    if (mongoc_cursor_next(cur, &d))
        last = int64_of(d, "last", 0);
    ok = !mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(sel);
    if (!ok) {
        snprintf(err, errlen, "phone %lld: %s", (long long) phone, e.message);
        return RD_ERROR;
    }
    if (upto < 0 ? last < 0 : last >= upto)
        return RD_OK;           /* nothing to rebuild, or adopted already */
    target = upto < 0 ? last : upto;
    BSON_APPEND_DOCUMENT_BEGIN(&p, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_INT64(&m, "phone", phone);
    BSON_APPEND_DOCUMENT_BEGIN(&m, RD_ROLLUP_FIELD, &lte);
    BSON_APPEND_INT64(&lte, "$lte", target);
    bson_append_document_end(&m, &lte);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(&p, &stage);
    i = 1;
    rd_report_append_group(&p, &i);
    memset(&b, 0, sizeof(b));
    b.s.phone = phone;
    rc = rd_store_aggregate(r->store, &p, FOLD_MAX_TIME_MS, rebuild_row, &b, &klass, err, errlen);
    bson_destroy(&p);
    if (rc != RD_OK)
        return RD_ERROR;
    if (b.s.cnt + b.s.invalid > 0) {
        BSON_APPEND_INT64(&doc, "_id", phone);
        append_sums(&doc, &b.s);
        if (b.s.cnt > 0) {
            BSON_APPEND_INT64(&doc, "min_ms", b.s.min_ms);
            BSON_APPEND_INT64(&doc, "max_ms", b.s.max_ms);
        }
        BSON_APPEND_INT64(&doc, "last", target);
    }
    if (last < 0) {
        if (b.s.cnt + b.s.invalid == 0) {
            bson_destroy(&doc);
            return RD_OK;
        }
        ok = mongoc_collection_insert_one(r->rollups, &doc, NULL, &reply, &e);
        rc = !ok && e.code == DUPLICATE_KEY ? RD_AGAIN : RD_OK;
        ok = ok || rc == RD_AGAIN;
        sel = NULL;
    } else {
        sel = BCON_NEW("_id", BCON_INT64(phone), "last", BCON_INT64(last));
        if (b.s.cnt + b.s.invalid == 0) {
            ok = mongoc_collection_delete_one(r->rollups, sel, NULL, &reply, &e);
            rc = ok && count_of(&reply, "deletedCount") == 0 ? RD_AGAIN : RD_OK;
        } else {
            ok = mongoc_collection_replace_one(r->rollups, sel, &doc, NULL, &reply, &e);
            rc = ok && count_of(&reply, "matchedCount") == 0 ? RD_AGAIN : RD_OK;
        }
    }
    bson_destroy(&reply);
    bson_destroy(&doc);
    if (sel != NULL)
        bson_destroy(sel);
    if (!ok) {
        snprintf(err, errlen, "phone %lld: %s", (long long) phone, e.message);
        return RD_ERROR;
    }
    return rc;
}

/* recompute_phone() until it holds (a phone being folded meanwhile). */
static int
recompute(struct rd_rollup *r, int64_t phone, int64_t upto, char *err, size_t errlen)
{
    int rc, tries = 0;

    while ((rc = recompute_phone(r, phone, upto, err, errlen)) == RD_AGAIN && ++tries < 100)
        ;
    if (rc == RD_AGAIN)
        snprintf(err, errlen, "phone %lld: its rollup kept changing", (long long) phone);
    return rc == RD_OK ? RD_OK : RD_ERROR;
}

int
rd_rollup_rebuild(struct rd_rollup *r, int64_t *phones, char *err, size_t errlen)
{
    int64_t *v;
    size_t   n, k;
    int      rc = RD_OK;

    *phones = 0;
    if (rd_rollup_phones(r, &v, &n, err, errlen) != RD_OK)
        return RD_ERROR;
    for (k = 0; k < n && rc == RD_OK; k++) {
        rc = recompute(r, v[k], -1, err, errlen);
        if (rc == RD_OK)
            (*phones)++;
    }
    free(v);
    return rc;
}

int
rd_rollup_reset(struct rd_rollup *r, char *err, size_t errlen)
{
    bson_error_t e;

    if ((!mongoc_collection_drop_with_opts(r->rollups, NULL, &e)
         && strstr(e.message, "ns not found") == NULL)
        || (!mongoc_collection_drop_with_opts(r->batches, NULL, &e)
            && strstr(e.message, "ns not found") == NULL)) {
        snprintf(err, errlen, "drop: %s", e.message);
        return RD_ERROR;
    }
    return RD_OK;
}

int
rd_rollup_phones(struct rd_rollup *r, int64_t **phones, size_t *n, char *err, size_t errlen)
{
    bson_t          *filter, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    int64_t         *v = NULL, *nv;
    size_t           cap = 0;
    int              rc = RD_OK;

    *n = 0;
    filter = bson_new();
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "projection", "{", "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->rollups, filter, opts, NULL);
    while (rc == RD_OK && mongoc_cursor_next(cur, &d)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                snprintf(err, errlen, "out of memory");
                rc = RD_ERROR;
                break;
            }
            v = nv;
        }
        v[(*n)++] = int64_of(d, "_id", 0);
    }
    if (rc == RD_OK && mongoc_cursor_error(cur, &e)) {
        snprintf(err, errlen, "reading rollups: %s", e.message);
        rc = RD_ERROR;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    if (rc != RD_OK) {
        free(v);
        v = NULL;
        *n = 0;
    }
    *phones = v;
    return rc;
}
