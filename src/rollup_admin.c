/*
 * rollup_admin.c -- reporterctl's side of rollup mode: --rebuild (every
 * rollup of the current epoch recomputed from its marks, going on past a
 * phone that fails), one phone's repair, the list of phones that
 * have a rollup; and reporterd -t's check that rollup mode can run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup_impl.h"
#include "util.h"

int
rd_rollup_rebuild(struct rd_rollup *r, int64_t *phones,
                  void (*skip)(int64_t phone, const char *why), char *err, size_t errlen)
{
    int64_t *v;
    size_t   n, k, skipped = 0;
    char     why[1024];
    int      klass, rc;

    *phones = 0;
    rc = rd_rollup_epoch(r, 0, &klass, err, errlen);
    if (rc == RD_AGAIN)
        return RD_OK;           /* no folder made an epoch: nothing folded */
    if (rc != RD_OK || rd_rollup_phones(r, &v, &n, err, errlen) != RD_OK)
        return RD_ERROR;
    for (k = 0; k < n; k++) {
        if (rd_rollup_recompute(r, v[k], -1, NULL, &klass, why, sizeof(why)) == RD_OK) {
            (*phones)++;
            continue;
        }
        if (skipped++ == 0)
            snprintf(err, errlen, "%s", why);
        if (skip != NULL)
            skip(v[k], why);
    }
    free(v);
    return skipped == 0 ? RD_OK : RD_ERROR;
}

int
rd_rollup_preflight(const struct rd_conf *conf, char *why, size_t len)
{
    struct rd_store  *st;
    struct rd_rollup *r;
    char              err[512];
    int               klass, rc;

    st = rd_store_new(&conf->mongodb, "reporterd -t", &klass, err, sizeof(err));
    if (st == NULL || (r = rd_rollup_new(st, conf, "reporterd -t")) == NULL) {
        snprintf(why, len, "%s", st == NULL ? err : "out of memory");
        rd_store_close(st);
        return RD_ERROR;
    }
    rc = rd_rollup_ttl(r, why, len, &klass, err, sizeof(err));
    if (rc == RD_ERROR)
        snprintf(why, len, "%s", err);
    rd_rollup_free(r);
    rd_store_close(st);
    return rc;
}

int
rd_rollup_repair(struct rd_rollup *r, int64_t phone, int *klass, char *err, size_t errlen)
{
    int rc = rd_rollup_epoch(r, 0, klass, err, errlen);

    if (rc == RD_AGAIN)
        return RD_OK;           /* nothing folded: nothing to repair */
    return rc == RD_OK ? rd_rollup_recompute(r, phone, -1, NULL, klass, err, errlen) : rc;
}

int
rd_rollup_phones(struct rd_rollup *r, int64_t **phones, size_t *n, char *err, size_t errlen)
{
    bson_t          *filter, *opts;
    mongoc_cursor_t *cur;
    const bson_t    *d;
    bson_error_t     e;
    int64_t         *v = NULL, *nv, phone;
    size_t           cap = 0;
    char             why[256];
    int              rc = RD_OK;

    *n = 0;
    filter = bson_new();
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "projection", "{", "_id", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(r->rollups, filter, opts, NULL);
    while (rc == RD_OK && mongoc_cursor_next(cur, &d)) {
        if (rd_report_parse_phone(d, &phone, why, sizeof(why)) != RD_OK)
            continue;           /* not a rollup of ours */
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
        v[(*n)++] = phone;
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
