/*
 * rollup_read.c -- a report in rollup mode: the phones' rollups of the
 * current epoch, then the exact tail of the records each rollup does not
 * cover, both read from the primary.  A phone without a rollup of this
 * epoch is read whole from its records: slower, never wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

#define EPOCH_READ_MS  1000     /* a report reads the epoch again after this */

/* The phones' rollups of this epoch into stats[], their last batches into
 * last[] and has[] = 1; a rollup of another epoch sets r->stale. */
static int
read_rollups(struct rd_rollup *r, struct rd_phone_sums *stats, int64_t *last, char *has,
             size_t n, int max_time_ms, int *klass, char *err, size_t errlen)
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
        int64_t              phone;

        if (rd_report_parse_phone(d, &phone, err, errlen) != RD_OK
            || (into = rd_report_find(stats, n, phone)) == NULL)
            continue;
        if (r->epoch[0] == '\0' || !bson_iter_init_find(&it, d, "e")
            || !BSON_ITER_HOLDS_UTF8(&it) || strcmp(bson_iter_utf8(&it, NULL), r->epoch) != 0) {
            r->stale = 1;       /* another epoch's: the phone is read whole */
            continue;
        }
        if (bson_iter_init_find(&it, d, "overflow") && bson_iter_as_bool(&it)) {
            snprintf(err, errlen, "phone %lld: the sums of its records overflow 64-bit "
                     "integers", (long long) phone);
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
            break;
        }
        memset(&s, 0, sizeof(s));
        if (rd_report_parse_sums(d, &s, err, errlen) != RD_OK
            || rd_report_sums_add(into, &s, err, errlen) != RD_OK) {
            *klass = RD_STORE_PERMANENT;
            rc = RD_ERROR;
            break;
        }
        last[into - stats] = rd_rollup_int64(d, "last", 0);
        has[into - stats] = 1;
    }
    if (rc == RD_OK && mongoc_cursor_error(cur, &e))
        rc = rd_rollup_fail(&e, "reading rollups", klass, err, errlen);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return rc;
}

/*
 * The tail: each phone's records unmarked or marked after its rollup's
 * last batch (an index range on {phone, rb_E} that marking only ever
 * moves a record forward in), or all of them for a phone without a
 * rollup; one $or branch per phone, grouped by _id first so that a record
 * the scan meets twice counts once.
 */
static bson_t *
tail_pipeline(const struct rd_rollup *r, const struct rd_phone_sums *stats,
              const int64_t *last, const char *has, size_t n)
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
        if (has[i]) {
            BSON_APPEND_DOCUMENT_BEGIN(&br, r->field, &rb);
            BSON_APPEND_DOCUMENT_BEGIN(&rb, "$not", &no);
            BSON_APPEND_INT64(&no, "$lte", last[i]);
            bson_append_document_end(&rb, &no);
            bson_append_document_end(&br, &rb);
        }
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
    char           *has;
    bson_t         *p;
    int             rc, half;

    if (n == 0)
        return RD_OK;
    /* The epoch is read again after a rollup of another one was seen, and
     * at least every EPOCH_READ_MS: only the current epoch's rollups are
     * followed after a change of their records (a rollup of an epoch that
     * ended keeps its sums, true to its marks, but nothing corrects it any
     * more), so a worker that knew an older one stops using its rollups
     * within that time.  No epoch at all: every phone is read whole. */
    if (r->epoch[0] == '\0' || r->stale || rd_now_ms() - r->epoch_read_at >= EPOCH_READ_MS) {
        rc = rd_rollup_epoch(r, 0, klass, err, errlen);
        if (rc == RD_ERROR)
            return rc;
        if (rc == RD_AGAIN)
            r->epoch[0] = '\0';
        r->stale = 0;
        r->epoch_read_at = rd_now_ms();
    }
    last = calloc(n, sizeof(*last));
    has = calloc(n, 1);
    if (last == NULL || has == NULL) {
        free(last);
        free(has);
        *klass = RD_STORE_PERMANENT;
        snprintf(err, errlen, "out of memory");
        return RD_ERROR;
    }
    /* Half of max_time_ms for the rollups; the tail is not started once
     * that is spent (rd_conf_budget() counts the two so). */
    half = max_time_ms / 2 > 0 ? max_time_ms / 2 : 1;
    t0 = rd_now_ms();
    rc = read_rollups(r, stats, last, has, n, half, klass, err, errlen);
    spent = rd_now_ms() - t0;
    if (rc == RD_OK && (spent > half || spent >= max_time_ms)) {
        *klass = RD_STORE_TIMEOUT;
        snprintf(err, errlen, "reading the rollups took %lld ms, over half of "
                 "mongodb.max_time_ms (%d ms)", (long long) spent, max_time_ms);
        rc = RD_ERROR;
    }
    if (rc == RD_OK) {
        p = tail_pipeline(r, stats, last, has, n);
        t.stats = stats;
        t.n = n;
        rc = rd_rollup_aggregate(r, p, (int) (max_time_ms - spent), rd_report_rows_add, &t,
                                 klass, err, errlen);
        bson_destroy(p);
    }
    free(last);
    free(has);
    return rc;
}
