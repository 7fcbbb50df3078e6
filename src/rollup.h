/*
 * rollup.h -- rollup mode's data in MongoDB: per-phone partial aggregates
 * folded from the call records in numbered batches, and the reading of a
 * report from them plus the exact tail of records not folded yet.
 *
 * The collections (mongodb.database):
 *
 *   <mongodb.collection>       the call records; a record folded by batch N
 *                              of epoch E carries rb_E: N (int64), set once,
 *                              never changed
 *   <rollup.collection>        one document per phone: _id the phone (int64),
 *                              e: the epoch, the integer fields of struct
 *                              rd_phone_sums and last: the last batch of
 *                              epoch e applied to it
 *   <rollup.collection>_batches  one document per batch, _id N (int64):
 *                              state claimed -> applying -> done, the _ids
 *                              it claims until it is done; the epoch,
 *                              _id "epoch"; and the folders' lease, _id "lease"
 *
 * The epoch (8 hex digits) is made by the first folder that finds the
 * batches collection without one: a dropped or replaced batches
 * collection, or a reload that names another rollup.collection, starts a
 * new epoch whose marks live in a field of their own.  Marks of another
 * epoch, or an `rb` written by anybody else, are not marks of this one: a
 * record is folded at most once per epoch, and nothing another deployment
 * or an older folder writes can be mistaken for a mark.  A rollup is used
 * only with the marks of its own epoch.
 *
 * The protocol and the proof that a report is exact at every moment are
 * in docs/design.md ("How rollup mode works").  In short:
 *
 *   claim   N = highest batch + 1; insert {_id: N, e, state: claimed, ids}
 *           listing up to rollup.batch unmarked records in _id order (a
 *           duplicate key: someone else claimed N first);
 *   mark    updateMany({_id: {$in: ids}, rb_E: null}, {$set: {rb_E: N}}):
 *           re-runnable, and a no-op once done;
 *   apply   claimed -> applying; aggregate the records marked N per phone
 *           and update each phone's rollup guarded on e, last < N and on
 *           every sum staying within 64 bits; a missing rollup, or one of
 *           another epoch, is recomputed from all the phone's marks instead;
 *           -> done.
 *
 * Batches are finished strictly in order: a folder always works on the
 * oldest open batch before claiming a new one.  A report reads the
 * rollups of its phones first, then aggregates, grouped by _id first so
 * that a record seen twice counts once, the records of each phone that
 * are unmarked or marked after its rollup's last batch -- or all of them
 * when it has no rollup of the current epoch.
 */
#ifndef RD_ROLLUP_H
#define RD_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "report.h"
#include "store.h"

#define RD_ROLLUP_FIELD     "rb_"       /* the batch mark on a record: rb_<epoch> */
#define RD_ROLLUP_EPOCH_LEN 8           /* hex digits */

struct rd_rollup;

/* What one fold step did, for the folder's log and /metrics. */
struct rd_rollup_step {
    int64_t  batch;             /* the batch worked on, 0: none */
    int64_t  records;           /* records it claimed */
    int64_t  phones;            /* rollup documents it updated */
    int64_t  bad_phone;         /* records whose phone is not an integer */
    int64_t  invalid;           /* records left out of the figures */
    int64_t  overflowed;        /* phones whose sums overflowed 64 bits: their
                                   rollups are marked so, reports on them
                                   answer Error */
    int      resumed;           /* it was an open batch left by a folder */
    int      new_epoch;         /* the epoch changed during the step (one was
                                   made, or marks no batch accounts for were
                                   found: the batches collection restored from
                                   an older backup) */
    char     epoch[RD_ROLLUP_EPOCH_LEN + 1];    /* the epoch it folded in */
};

/*
 * Handles on the three collections of st's database.  owner names this
 * folder in the lease and in the batches it claims ("host:pid").  No I/O.
 */
struct rd_rollup *rd_rollup_new(struct rd_store *st, const struct rd_conf *conf,
                                const char *owner);
void rd_rollup_free(struct rd_rollup *r);

/* Find the epoch, or make one, and create the indexes rollup mode needs
 * on the records collection, if missing: {rb_E: 1, _id: 1} (the claim)
 * and {phone: 1, rb_E: 1} (the tail). */
int  rd_rollup_indexes(struct rd_rollup *r, int *klass, char *err, size_t errlen);

/*
 * Take or renew the folders' lease for ttl_ms.  RD_OK: held by us;
 * RD_DECLINED: another owner holds an unexpired one (err names it).
 * Correctness never depends on it; it keeps hosts from folding twice.
 */
int  rd_rollup_lease(struct rd_rollup *r, int64_t ttl_ms, int *klass,
                     char *err, size_t errlen);
/* Give the lease up (graceful stop), if we hold it. */
void rd_rollup_release(struct rd_rollup *r);

/*
 * One step: finish the oldest open batch, or claim a new one and finish
 * it.  RD_OK with *step filled; RD_AGAIN: nothing to fold; RD_ERROR with
 * *klass and err.
 */
int  rd_rollup_fold(struct rd_rollup *r, struct rd_rollup_step *step, int *klass,
                    char *err, size_t errlen);

/* Unfolded records and the age in seconds of the oldest (its ObjectId's
 * time; 0 when its _id is not an ObjectId or none is left). */
int  rd_rollup_lag(struct rd_rollup *r, int64_t *unfolded, int64_t *behind_s,
                   int *klass, char *err, size_t errlen);

/*
 * A report in rollup mode: add to stats[] (as rd_report_init() left it,
 * n distinct phones) the rollups of those phones, then their tail.  The
 * same figures live mode computes over some set of records between those
 * committed before the call and those committed before its return.
 */
int  rd_rollup_report(struct rd_rollup *r, struct rd_phone_sums *stats, size_t n,
                      int max_time_ms, int *klass, char *err, size_t errlen);

/*
 * reporterctl rollup --rebuild: recompute every phone's rollup from the
 * records folded so far (after records were deleted or edited).  Safe
 * while daemons run and fold; see docs/design.md.  *phones: rollups rebuilt.
 * A phone that cannot be rebuilt is reported through skip(phone, why)
 * and the others go on; RD_OK when none was skipped, RD_ERROR otherwise
 * (err: the first reason, or why no phone could be listed).
 */
int  rd_rollup_rebuild(struct rd_rollup *r, int64_t *phones,
                       void (*skip)(int64_t phone, const char *why),
                       char *err, size_t errlen);

/* One phone's rollup recomputed from its records folded so far, as
 * --rebuild does it (--verify --repair); RD_OK or RD_ERROR. */
int  rd_rollup_repair(struct rd_rollup *r, int64_t phone, int *klass, char *err,
                      size_t errlen);

/* The names of reporterd's indexes of other epochs into buf (", "
 * between them), for --status: they are left for the operator to drop,
 * since a folder of another configuration may still use them.  Their
 * number, -1 on error. */
int  rd_rollup_other_indexes(struct rd_rollup *r, char *buf, size_t len);

/* The current epoch ("" when no folder made one yet) for --status; RD_OK
 * or RD_ERROR. */
int  rd_rollup_current_epoch(struct rd_rollup *r, char *epoch, size_t len, char *err,
                             size_t errlen);

/* Drop the rollup and batches collections (import --drop, seed --drop:
 * the records are dropped too, so folding starts again from batch 1). */
int  rd_rollup_reset(struct rd_rollup *r, char *err, size_t errlen);

/* The phones that have a rollup document, in order, for --verify:
 * *phones is malloc'ed (free it); RD_OK or RD_ERROR. */
int  rd_rollup_phones(struct rd_rollup *r, int64_t **phones, size_t *n,
                      char *err, size_t errlen);

/* What a verification step did (rollup_verify.c). */
struct rd_rollup_verify {
    int64_t  phones;            /* phones recomputed from their records */
    int64_t  records;           /* records that read */
    int64_t  cost;              /* what it took of the budget: records, and 1
                                   for a phone without any */
    int64_t  drifted;           /* rollups that differed and were rewritten */
    int64_t  cycles;            /* cycles that ended in this step (0 or 1) */
    int64_t  cycle_ms;          /* the length of the one that ended */
};

/*
 * The background verification: phones of the current epoch's rollups, in
 * _id order from where the previous step stopped (any folder's), each
 * recomputed from its records marked up to its last batch and rewritten
 * when it differs (a record deleted, corrected or replaced after it was
 * folded), until `budget` records were read or the last phone is done
 * (a cycle ends; the next step starts over), or rd_now_ms() passes
 * deadline.  drift(phone) is called for each phone rewritten.  A phone
 * that cannot be recomputed is passed (charged 1): RD_ERROR then, err
 * naming the first, with the rest done and the position kept.
 */
int  rd_rollup_verify(struct rd_rollup *r, int64_t budget, int64_t deadline,
                      struct rd_rollup_verify *v, void (*drift)(int64_t phone), int *klass,
                      char *err, size_t errlen);

/* What following the change stream did (rollup_follow.c). */
struct rd_rollup_followed {
    int64_t  events;            /* deletes, updates and replaces read */
    int64_t  corrected;         /* rollups they made differ, rewritten */
    int64_t  unknown;           /* events without a pre-image: left to the
                                   verification */
    int64_t  lag_ms;            /* now - the last event's wallTime */
    int      opened;            /* the stream was (re)opened */
    int      resumed;           /* from the saved token */
    int      lost;              /* the saved token could not be resumed from */
    int      invalidated;       /* the records collection was dropped or
                                   renamed: the stream ended */
    int64_t  cleared;           /* rollups deleted for it */
};

/*
 * Follow the records' change stream for up to wait_ms when nothing comes
 * (replica sets; pre-images turned on here): each delete, update or
 * replace of a record folded in this epoch makes its phones' rollups be
 * recomputed.  RD_OK; RD_AGAIN: no epoch yet; RD_DECLINED: the server has
 * no change streams or pre-images (why says which; tried again a minute
 * later); RD_ERROR (the stream reopens at the next call from its saved
 * token).
 */
int  rd_rollup_follow(struct rd_rollup *r, int wait_ms, struct rd_rollup_followed *f,
                      char *why, size_t len, int *klass, char *err, size_t errlen);
/* Close the change stream, if open. */
void rd_rollup_follow_stop(struct rd_rollup *r);
/* Whether the change stream is open. */
int  rd_rollup_following(const struct rd_rollup *r);

/* Whether the records collection has a TTL index: RD_OK none, RD_DECLINED
 * one (why: which, and what to do), RD_ERROR. */
int  rd_rollup_ttl(struct rd_rollup *r, char *why, size_t len, int *klass, char *err,
                   size_t errlen);

/* reporterd -t in rollup mode: the TTL check against conf's database.
 * RD_OK; RD_DECLINED (a TTL index: why says which); RD_ERROR (it could
 * not be checked: why says why). */
int  rd_rollup_preflight(const struct rd_conf *conf, char *why, size_t len);

/* Delete every rollup document, so that every report reads its phones
 * whole from the records (exact, as slow as live mode); *removed: how
 * many.  While rollup mode is refused. */
int  rd_rollup_clear(struct rd_rollup *r, int64_t *removed, int *klass, char *err,
                     size_t errlen);

/* Called with "claim", "mark", "apply" (after the first phone of a batch)
 * and "lease" right after each such write: the folder's test hook, which
 * can kill the process there (REPORTERD_TEST_FOLDER_KILL, test builds). */
void rd_rollup_set_hook(struct rd_rollup *r, void (*hook)(const char *step));

#endif
