/*
 * journal.h -- the task journal: one MongoDB document per task outcome,
 * so a lost result or an operator's question ("what happened to task
 * 13242421424214?") is answered without replaying the queue.
 *
 * Documents live in journal.collection of mongodb.database, keyed (_id)
 * by the result's AMQP message_id, the id reporterd computes for each
 * task and reuses for every delivery of it:
 *
 *   { _id, message_id, correlation_id (its JSON type kept),
 *     outcome: "complete" | "error" | "dead_lettered", reason,
 *     attempts, worker: {pid, host}, received, answered (dates),
 *     total_duration (seconds), answers (how many times it was answered),
 *     answered_at: [the last RD_JOURNAL_MAX_ANSWERS times],
 *     result (the result as a document; its data array cut short past
 *     RD_JOURNAL_MAX_RESULT bytes, with result_truncated saying so) }
 *
 * A dead letter with no usable id is keyed by its own AMQP message_id,
 * else "body-<fingerprint>", and keeps its size (body_size) and at most
 * RD_JOURNAL_MAX_BODY bytes of it (body_prefix).  A TTL index on
 * `answered` (expireAfterSeconds = journal.retention) bounds the
 * collection; an index on correlation_id serves lookups.
 *
 * Writes are one upsert per outcome on a client of their own, with short
 * fixed limits (RD_JOURNAL_* in conf.h), counted in rd_conf_budget():
 * the worker writes after the result is confirmed and before the ack, and
 * acks whatever the write did.  Lookups (reporterctl status, the status
 * process's GET /tasks/<id>) read with a time limit of their own.
 * Nothing here logs: errors come back in err.
 */
#ifndef RD_JOURNAL_H
#define RD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <mongoc/mongoc.h>

#include "conf.h"
#include "metrics.h"
#include "task.h"

#define RD_JOURNAL_MAX_RESULT   (1024 * 1024)   /* bytes of BSON */
#define RD_JOURNAL_MAX_BODY     256             /* a dead letter's prefix */
#define RD_JOURNAL_MAX_ANSWERS  16
#define RD_JOURNAL_LOOKUP_MS    2000            /* a lookup's maxTimeMS */
#define RD_JOURNAL_LOOKUP_MAX   100             /* documents per lookup */
#define RD_JOURNAL_TTL_INDEX    "answered_ttl"

/* One outcome, as the worker saw it. */
struct rd_journal_entry {
    const char           *message_id;
    const struct rd_task *task;         /* NULL: no usable id (a dead letter) */
    enum rd_outcome       outcome;      /* COMPLETE, ERROR or DEAD_LETTERED */
    const char           *reason;       /* the Error's text, the dead
                                           letter's reason; NULL for complete */
    const char           *result;       /* the result's JSON, or NULL */
    size_t                result_len;
    const char           *body;         /* a dead letter's body, or NULL */
    size_t                body_len;
    const char           *amqp_correlation_id;  /* a dead letter's property */
    int64_t               attempts;
    int64_t               received_ms;  /* wall clock, ms since the epoch */
    int64_t               answered_ms;
    double                total_duration;
    long                  pid;          /* rd_journal_write() fills these */
    const char           *host;
};

/* The upsert for an entry: the selector {_id} and the update document.
 * Pure, for tests.  RD_ERROR (out of memory, a result that is not JSON)
 * with err. */
int  rd_journal_update(const struct rd_journal_entry *e, bson_t *selector, bson_t *update,
                       char *err, size_t errlen);


/* The id a dead letter is kept under when it has no usable task id. */
void rd_journal_dead_letter_id(const char *amqp_message_id, uint64_t fingerprint,
                               char *out, size_t size);

struct rd_journal;

/* The worker's writer: a client of its own with the RD_JOURNAL_* limits
 * and no retried writes.  No I/O.  NULL with err. */
struct rd_journal *rd_journal_new(const struct rd_conf *conf, const char *appname,
                                  char *err, size_t errlen);
void rd_journal_close(struct rd_journal *j);

/* Make the indexes if missing; a TTL index of another retention is
 * changed with collMod.  *changed: the retention it had (seconds), or -1
 * when it was created or already right. */
int  rd_journal_prepare(struct rd_journal *j, int64_t *changed, char *err, size_t errlen);

/* Upsert one entry.  Counted on /metrics either way. */
int  rd_journal_write(struct rd_journal *j, const struct rd_journal_entry *e,
                      char *err, size_t errlen);

/* Lookups, with a client the caller owns (reporterctl's, or one popped
 * from the status process's pool).  The filter for the ids given:
 * correlation_id as a string and, when the id is an integer's canonical
 * text, as that integer too (123 and "123" are different ids: both are
 * returned); with_message_id, the message_id as well. */
void rd_journal_filter_ids(bson_t *filter, const char *const *ids, size_t n,
                           int with_message_id);

typedef int (*rd_journal_doc_cb)(const bson_t *doc, void *arg);

/* Run a find on the journal, sorted by answered, at most
 * RD_JOURNAL_LOOKUP_MAX documents, each to cb.  RD_OK, or RD_ERROR with
 * *klass (RD_STORE_*) and err. */
int  rd_journal_find(mongoc_client_t *client, const struct rd_conf *conf, const bson_t *filter,
                     rd_journal_doc_cb cb, void *arg, int *klass, char *err, size_t errlen);

/* One line for an operator: message_id, correlation_id, outcome, how
 * often and when it was answered, attempts, duration, reason. */
void rd_journal_status_line(const bson_t *doc, char *out, size_t size);

#endif
