/*
 * metrics.c -- the shared counters and histograms.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "metrics.h"

struct rd_metrics        *rd_metrics;
struct rd_metrics_worker *rd_metrics_self;

const double rd_metrics_bounds[RD_METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

int
rd_metrics_init(void)
{
    void *p = mmap(NULL, sizeof(struct rd_metrics), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    memset(p, 0, sizeof(struct rd_metrics));
    rd_metrics = p;
    return 0;
}

void
rd_metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static void
observe(struct rd_histogram *h, double seconds)
{
    int i;

    for (i = 0; i < RD_METRICS_BUCKETS && seconds > rd_metrics_bounds[i]; i++)
        ;
    rd_metrics_add(&h->buckets[i], 1);
    rd_metrics_add(&h->sum_us, seconds > 0 ? (uint64_t) (seconds * 1e6) : 0);
    rd_metrics_add(&h->count, 1);
}

void
rd_metrics_task(enum rd_outcome outcome, double seconds)
{
    if (rd_metrics == NULL)
        return;
    rd_metrics_add(&rd_metrics->tasks[outcome], 1);
    if (outcome == RD_OUT_COMPLETE || outcome == RD_OUT_ERROR)
        observe(&rd_metrics->task_seconds, seconds);
}

void
rd_metrics_db(double seconds)
{
    if (rd_metrics != NULL)
        observe(&rd_metrics->db_seconds, seconds);
}

void
rd_metrics_invalid(uint64_t records)
{
    if (rd_metrics != NULL && records > 0)
        rd_metrics_add(&rd_metrics->invalid_records, records);
}

void
rd_metrics_journal(int ok)
{
    if (rd_metrics != NULL)
        rd_metrics_add(ok ? &rd_metrics->journal_writes : &rd_metrics->journal_write_errors, 1);
}

void
rd_metrics_state(int broker_up, int db_up)
{
    if (rd_metrics_self == NULL)
        return;
    __atomic_store_n(&rd_metrics_self->broker_up, broker_up, __ATOMIC_RELAXED);
    __atomic_store_n(&rd_metrics_self->db_up, db_up, __ATOMIC_RELAXED);
}

void
rd_metrics_node(const char *node)
{
    if (rd_metrics_self != NULL)
        snprintf(rd_metrics_self->node, sizeof(rd_metrics_self->node), "%s", node);
}

void
rd_metrics_problem(const char *why)
{
    if (rd_metrics_self != NULL)
        snprintf(rd_metrics_self->problem, sizeof(rd_metrics_self->problem), "%s", why);
}
