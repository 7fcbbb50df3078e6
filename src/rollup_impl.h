/*
 * rollup_impl.h -- what the rollup files share and nothing else includes:
 * the handle, the epoch (which names the mark field), and the small
 * helpers every step uses.  rollup.h states the protocol; docs/design.md,
 * "How rollup mode works", proves it.
 *
 *   rollup.c          the handle, the epoch, the indexes, the lease, reset
 *   rollup_fold.c     one fold step: claim, mark, apply; a new epoch when
 *                     marks no batch accounts for appear; the lag
 *   rollup_phone.c    one phone's rollup recomputed from its marks
 *   rollup_read.c     a report: rollups plus the exact tail
 *   rollup_admin.c    reporterctl's rebuild and phone list
 *   rollup_verify.c   the background verification; the TTL index check
 *   rollup_follow.c   the records' change stream
 *
 * Every handle reads from the primary with the local read concern and
 * writes with w: majority, whatever mongodb.uri says (README: "Read and
 * write concerns").
 */
#ifndef RD_ROLLUP_IMPL_H
#define RD_ROLLUP_IMPL_H

#include <mongoc/mongoc.h>

#include "rollup.h"

#define RD_ROLLUP_DUPLICATE_KEY  11000
#define RD_ROLLUP_FOLD_MAX_MS    600000     /* one batch's $group: the folder's own limit */
#define RD_ROLLUP_EPOCH_ID       "epoch"    /* _id of the epoch document in the batches */
#define RD_ROLLUP_WTIMEOUT_MS    30000      /* w: majority's wait, then an error to retry */

struct rd_rollup {
    struct rd_store      *store;
    mongoc_collection_t  *records, *rollups, *batches;
    const struct rd_conf *conf;
    char                  owner[128];
    int64_t               lease_expires;    /* what we last wrote, 0: none */
    void                (*hook)(const char *step);
    char                  epoch[RD_ROLLUP_EPOCH_LEN + 1];  /* "": not known yet */
    char                  field[sizeof(RD_ROLLUP_FIELD) + RD_ROLLUP_EPOCH_LEN + 1];
    int                   indexed;          /* the indexes of this epoch exist */
    int                   stale;            /* a rollup of another epoch was seen */
    int64_t               epoch_read_at;    /* a report's last read of the epoch */
    mongoc_change_stream_t *stream;         /* the records' change stream, NULL: closed */
    char                  stream_epoch[RD_ROLLUP_EPOCH_LEN + 1];   /* whose marks it filters */
    int64_t               stream_retry_at;  /* refused: not before then */
    int64_t               token_saved_at;
};

/* err = "<what>: <driver error>", *klass its class; RD_ERROR. */
int     rd_rollup_fail(const bson_error_t *e, const char *what, int *klass, char *err,
                       size_t errlen);
/* doc's key as an int64 when it is a number, else def. */
int64_t rd_rollup_int64(const bson_t *doc, const char *key, int64_t def);
/* s's counts and sums, each under its field name. */
void    rd_rollup_append_sums(bson_t *doc, const struct rd_phone_sums *s);
/* The test hook, if set. */
void    rd_rollup_point(const struct rd_rollup *r, const char *step);
/* The first document coll finds for filter and opts (NULL: none), copied
 * into *out (initialised here only on RD_OK: destroy it then).  RD_OK,
 * RD_AGAIN (none) or RD_ERROR with "<what>: <driver error>". */
int     rd_rollup_find_one(mongoc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                           bson_t *out, const char *what, int *klass, char *err, size_t errlen);
/* An aggregation over the records, on the primary. */
int     rd_rollup_aggregate(struct rd_rollup *r, const bson_t *pipeline, int max_time_ms,
                            rd_store_row_cb cb, void *arg, int *klass, char *err,
                            size_t errlen);

/*
 * The current epoch, from the batches collection, into r->epoch and
 * r->field.  create: make one when there is none (the folder), and its
 * indexes.  RD_OK; RD_AGAIN: none yet (create == 0); RD_ERROR.
 */
int     rd_rollup_epoch(struct rd_rollup *r, int create, int *klass, char *err, size_t errlen);
/* End the epoch r knows (if it is still the current one) and take the
 * next: made by this folder, or by the one that replaced it first. */
int     rd_rollup_new_epoch(struct rd_rollup *r, int *klass, char *err, size_t errlen);

/* What a recompute found: the phone's records it read (valid and
 * invalid), and whether it wrote a rollup that differs from the old one. */
struct rd_rollup_recount {
    int64_t records;
    int     changed;
};

/*
 * Phone's rollup recomputed from its records marked in this epoch up to
 * `upto` and swapped in with a compare-and-swap on what was there (see
 * rollup_phone.c).  upto < 0: up to the rollup's own last (--rebuild;
 * a rollup of another epoch is left alone).  upto >= 0: the rollup must
 * cover batch upto (a missing one, or one of another epoch, is made
 * anew).  A sum beyond 64 bits makes an overflow rollup.  With upto < 0
 * a rollup equal to what its records give is left as it is.  *out (may
 * be NULL) says what was read and done.  RD_OK or RD_ERROR (err says why,
 * *klass its class).
 */
int     rd_rollup_recompute(struct rd_rollup *r, int64_t phone, int64_t upto,
                            struct rd_rollup_recount *out, int *klass, char *err, size_t errlen);

#endif
