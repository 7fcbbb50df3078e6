/*
 * charges.h -- deliveries that may have crashed a worker, counted by
 * reporterd itself and shared by every process.
 *
 * The broker cannot tell a worker that crashed on a task from a dropped
 * connection (both requeue it with redelivered set, and quorum queues
 * count both in x-delivery-count), so neither is used.  Instead a worker
 * charges a delivery's fingerprint before it starts working on it and
 * takes the charge back when it is done with it, whatever the outcome
 * (answered, dead-lettered, put back, an ordered stop).  A charge left
 * behind is a worker that died holding the delivery.  Before it starts, a
 * worker reads the charges left behind: more than
 * rabbitmq.max_redeliveries, and the task is dead-lettered.  Prefetched
 * deliveries a worker never started are never charged; identical bodies
 * worked on at the same moment by two workers see each other's charge.
 *
 * Queries that ran out of time are counted beside, per fingerprint: the
 * worker puts such a task back until it has timed out more than
 * rabbitmq.max_redeliveries times, then answers it with an Error result.
 *
 * The table is a shared mapping the master makes before forking
 * (rd_charges_init) and lives as long as the master: a restart of the
 * master forgets it.  Without the mapping nothing is counted.
 */
#ifndef RD_CHARGES_H
#define RD_CHARGES_H

#include <stddef.h>
#include <stdint.h>

#define RD_CHARGES_SLOTS 1024

struct rd_charge {
    uint64_t fp;                /* 0: free */
    uint64_t count;             /* attempts begun and not ended */
    uint64_t timeouts;          /* queries that ran out of time */
    uint64_t attempts;          /* deliveries begun since it was settled,
                                   whatever became of them */
    int64_t  at_ms;             /* last charge: among idle entries the oldest
                                   makes room */
};

/* In the master, before forking: make the table; -1 with errno. */
int      rd_charges_init(void);

/* The fingerprint of a message body: FNV-1a, never 0. */
uint64_t rd_charge_fingerprint(const char *body, size_t len);

/* Charge fp once; returns the charges it had before. */
uint64_t rd_charge_begin(uint64_t fp);

/* Take one charge of fp back. */
void     rd_charge_end(uint64_t fp);

/* The delivery was answered or dead-lettered (and acked): take back our
 * charge and the `prior` charges we saw at rd_charge_begin, and forget the
 * timeouts, so the same body sent again starts afresh. */
void     rd_charge_settle(uint64_t fp, uint64_t prior);

/* How many times fp was begun since it was last settled, this time
 * included: the attempts a task took (1 when nothing was counted). */
uint64_t rd_charge_attempts(uint64_t fp);

/* Count one more timeout of fp's query; the count so far, this one
 * included (UINT64_MAX when nothing can be counted). */
uint64_t rd_charge_timeout(uint64_t fp);

#endif
