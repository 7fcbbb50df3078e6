/*
 * rollup_phone.c -- one phone's rollup recomputed from its records marked
 * in the current epoch, swapped in by compare-and-swap on what was there.
 * Used where adding a batch to a rollup is not possible: the rollup is
 * missing (never made, or its collection was dropped), belongs to another
 * epoch, or is behind the phone's marks; by --rebuild and by the
 * verification that follows deletes and corrections (rollup_verify.c),
 * which write only a rollup that differs from its records.
 *
 * Why the result is exact: when it is asked to cover batch `upto`, every
 * batch up to upto is wholly marked (batches finish in order, and upto is
 * being applied), so the records marked up to upto are final.  The swap
 * happens only if the rollup still has the epoch, last and version v it
 * was read with (a missing one: the insert fails with a duplicate key if
 * someone made it meanwhile): a concurrent apply (which moves last) or
 * recompute (which moves v) makes this one read again, so that sums read
 * before a delete never overwrite sums read after it.  A rollup of another epoch is only ever read by reports of that
 * epoch, with that epoch's marks, so replacing it never makes a report
 * wrong, only slower until the phone is folded again.
 */
#include <stdio.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

#define RECOMPUTE_TRIES  100

struct sums_ctx {
    struct rd_phone_sums s;
    int                  overflow;      /* a sum beyond 64 bits */
};

static int
sums_row(const bson_t *row, void *arg, char *err, size_t errlen)
{
    struct sums_ctx     *b = arg;
    struct rd_phone_sums s;
    int                  rc;

    memset(&s, 0, sizeof(s));
    rc = rd_report_parse_row(row, &s, err, errlen);
    if (rc == RD_DECLINED)
        return 0;               /* an array of phones: not this phone's record */
    if (rc != RD_OK || rd_report_sums_add(&b->s, &s, err, errlen) != RD_OK)
        b->overflow = 1;
    return 0;
}

/* Whether the rollup document d holds exactly what b computed. */
static int
same_as(const bson_t *d, const struct sums_ctx *b)
{
    struct rd_phone_sums old;
    bson_iter_t          it;
    char                 why[128];
    int                  overflow;

    overflow = bson_iter_init_find(&it, d, "overflow") && bson_iter_as_bool(&it);
    if (overflow || b->overflow)
        return overflow && b->overflow;
    memset(&old, 0, sizeof(old));
    return rd_report_parse_sums(d, &old, why, sizeof(why)) == RD_OK
           && rd_report_sums_equal(&old, &b->s);
}

/* One try.  RD_AGAIN: the rollup changed under us. */
static int
recompute_once(struct rd_rollup *r, int64_t phone, int64_t upto, struct rd_rollup_recount *out,
               int *klass, char *err, size_t errlen)
{
    struct sums_ctx  b;
    bson_t          *sel, p = BSON_INITIALIZER, stage, m, lte, doc = BSON_INITIALIZER, reply;
    bson_value_t     old_e, old_last, old_v;
    bson_t           old = BSON_INITIALIZER;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    bson_iter_t      it;
    uint32_t         i;
    int64_t          last = -1, target;
    int              found = 0, ours = 0, rc;
    bool             ok;

    old_e.value_type = old_last.value_type = old_v.value_type = BSON_TYPE_NULL;
    sel = BCON_NEW("_id", BCON_INT64(phone));
    cur = mongoc_collection_find_with_opts(r->rollups, sel, NULL, NULL);
    bson_destroy(sel);
    if (mongoc_cursor_next(cur, &d)) {
        found = 1;
        if (bson_iter_init_find(&it, d, "e"))
            bson_value_copy(bson_iter_value(&it), &old_e);
        if (bson_iter_init_find(&it, d, "last"))
            bson_value_copy(bson_iter_value(&it), &old_last);
        if (bson_iter_init_find(&it, d, "v"))
            bson_value_copy(bson_iter_value(&it), &old_v);
        ours = old_e.value_type == BSON_TYPE_UTF8
               && strcmp(old_e.value.v_utf8.str, r->epoch) == 0;
        last = ours ? rd_rollup_int64(d, "last", 0) : -1;
        bson_concat(&old, d);
    }
    ok = !mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    if (!ok) {
        rc = rd_rollup_fail(&e, "reading a rollup", klass, err, errlen);
        goto done;
    }
    rc = RD_OK;
    if (upto < 0 ? !ours : last >= upto)
        goto done;              /* nothing to rebuild, or covered already */
    target = upto < 0 ? last : upto;

    BSON_APPEND_DOCUMENT_BEGIN(&p, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &m);
    BSON_APPEND_INT64(&m, "phone", phone);
    BSON_APPEND_DOCUMENT_BEGIN(&m, r->field, &lte);
    BSON_APPEND_INT64(&lte, "$lte", target);
    bson_append_document_end(&m, &lte);
    bson_append_document_end(&stage, &m);
    bson_append_document_end(&p, &stage);
    i = 1;
    rd_report_append_group(&p, &i);
    memset(&b, 0, sizeof(b));
    b.s.phone = phone;
    rc = rd_rollup_aggregate(r, &p, RD_ROLLUP_FOLD_MAX_MS, sums_row, &b, klass, err, errlen);
    bson_destroy(&p);
    if (rc != RD_OK)
        goto done;
    out->records = b.s.cnt + b.s.invalid;
    if (upto < 0 && same_as(&old, &b))
        goto done;              /* the rollup is right: nothing to write */
    out->changed = 1;

    BSON_APPEND_INT64(&doc, "_id", phone);
    BSON_APPEND_UTF8(&doc, "e", r->epoch);
    if (b.overflow) {
        BSON_APPEND_BOOL(&doc, "overflow", true);
    } else {
        rd_rollup_append_sums(&doc, &b.s);
        if (b.s.cnt > 0) {
            BSON_APPEND_INT64(&doc, "min_ms", b.s.min_ms);
            BSON_APPEND_INT64(&doc, "max_ms", b.s.max_ms);
        }
    }
    BSON_APPEND_INT64(&doc, "last", target);
    BSON_APPEND_INT64(&doc, "v", (found ? rd_rollup_int64(&old, "v", 0) : 0) + 1);
    if (!found) {
        ok = mongoc_collection_insert_one(r->rollups, &doc, NULL, &reply, &e);
        rc = !ok && e.code == RD_ROLLUP_DUPLICATE_KEY ? RD_AGAIN : RD_OK;
        ok = ok || rc == RD_AGAIN;
    } else {
        sel = bson_new();
        BSON_APPEND_INT64(sel, "_id", phone);
        BSON_APPEND_VALUE(sel, "e", &old_e);            /* null: missing */
        BSON_APPEND_VALUE(sel, "last", &old_last);
        BSON_APPEND_VALUE(sel, "v", &old_v);            /* null: missing */
        ok = mongoc_collection_replace_one(r->rollups, sel, &doc, NULL, &reply, &e);
        rc = ok && rd_rollup_int64(&reply, "matchedCount", 0) == 0 ? RD_AGAIN : RD_OK;
        bson_destroy(sel);
    }
    bson_destroy(&reply);
    if (!ok)
        rc = rd_rollup_fail(&e, "writing a rollup", klass, err, errlen);

done:
    bson_destroy(&old);
    bson_destroy(&doc);
    bson_value_destroy(&old_e);
    bson_value_destroy(&old_last);
    bson_value_destroy(&old_v);
    return rc;
}

int
rd_rollup_recompute(struct rd_rollup *r, int64_t phone, int64_t upto,
                    struct rd_rollup_recount *out, int *klass, char *err, size_t errlen)
{
    struct rd_rollup_recount ignored;
    char                     msg[512];
    int                      rc, tries = 0;

    if (out == NULL)
        out = &ignored;
    do {
        out->records = 0;
        out->changed = 0;
    } while ((rc = recompute_once(r, phone, upto, out, klass, msg, sizeof(msg))) == RD_AGAIN
             && ++tries < RECOMPUTE_TRIES);
    if (rc == RD_AGAIN) {
        *klass = RD_STORE_TRANSIENT;
        snprintf(err, errlen, "phone %lld: its rollup kept changing", (long long) phone);
        return RD_ERROR;
    }
    if (rc != RD_OK)
        snprintf(err, errlen, "phone %lld: %s", (long long) phone, msg);
    return rc;
}
