/*
 * charges.c -- the shared table of charged deliveries (see charges.h).
 * Lock-free: a slot is claimed with a compare-and-swap on its
 * fingerprint, so a process killed at any instant leaves no lock behind.
 */
#include <string.h>
#include <sys/mman.h>

#include "charges.h"
#include "util.h"

#define PROBES 16

static struct rd_charge *table;     /* RD_CHARGES_SLOTS entries, shared */

int
rd_charges_init(void)
{
    void *p = mmap(NULL, RD_CHARGES_SLOTS * sizeof(struct rd_charge), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    memset(p, 0, RD_CHARGES_SLOTS * sizeof(struct rd_charge));
    table = p;
    return 0;
}

uint64_t
rd_charge_fingerprint(const char *body, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    size_t   i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) body[i];
        h *= 1099511628211ULL;
    }
    return h != 0 ? h : 1;
}

static uint64_t
weight(const struct rd_charge *c)
{
    return __atomic_load_n(&c->count, __ATOMIC_RELAXED)
           + __atomic_load_n(&c->timeouts, __ATOMIC_RELAXED);
}

/* fp's entry; with claim, a free one, or else the idle entry (no attempt
 * in flight) charged least and longest ago, taken over by compare-and-swap
 * so two processes never share one.  NULL: not found, or no room. */
static struct rd_charge *
find(uint64_t fp, int claim)
{
    struct rd_charge *t = table, *victim;
    uint64_t          seen, old;
    size_t            i, at;
    int               round;

    for (round = 0; round < 4; round++) {
        victim = NULL;
        old = 0;
        for (i = 0; i < PROBES; i++) {
            at = (fp + i) % RD_CHARGES_SLOTS;
            seen = __atomic_load_n(&t[at].fp, __ATOMIC_ACQUIRE);
            if (seen == fp)
                return &t[at];
            if (seen == 0) {
                if (!claim)
                    return NULL;
                if (__atomic_compare_exchange_n(&t[at].fp, &seen, fp, 0, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE) || seen == fp)
                    return &t[at];
                continue;
            }
            if (__atomic_load_n(&t[at].count, __ATOMIC_ACQUIRE) != 0)
                continue;                       /* in flight, or a crash: keep it */
            if (victim == NULL || weight(&t[at]) < weight(victim)
                || (weight(&t[at]) == weight(victim) && t[at].at_ms < victim->at_ms)) {
                victim = &t[at];
                old = seen;
            }
        }
        if (!claim || victim == NULL)
            return NULL;
        if (__atomic_compare_exchange_n(&victim->fp, &old, fp, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&victim->timeouts, 0, __ATOMIC_RELEASE);
            __atomic_store_n(&victim->attempts, 0, __ATOMIC_RELEASE);
            return victim;
        }
    }
    return NULL;
}

uint64_t
rd_charge_begin(uint64_t fp)
{
    struct rd_charge *c;

    if (table == NULL || (c = find(fp, 1)) == NULL)
        return 0;
    __atomic_store_n(&c->at_ms, rd_now_ms(), __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->attempts, 1, __ATOMIC_ACQ_REL);
    return __atomic_fetch_add(&c->count, 1, __ATOMIC_ACQ_REL);
}

uint64_t
rd_charge_attempts(uint64_t fp)
{
    struct rd_charge *c;
    uint64_t          n;

    if (table == NULL || (c = find(fp, 0)) == NULL)
        return 1;
    n = __atomic_load_n(&c->attempts, __ATOMIC_ACQUIRE);
    return n > 0 ? n : 1;
}

void
rd_charge_end(uint64_t fp)
{
    struct rd_charge *c;
    uint64_t          n;

    if (table == NULL || (c = find(fp, 0)) == NULL)
        return;
    n = __atomic_load_n(&c->count, __ATOMIC_ACQUIRE);
    while (n > 0 && !__atomic_compare_exchange_n(&c->count, &n, n - 1, 0, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE))
        ;
}

uint64_t
rd_charge_timeout(uint64_t fp)
{
    struct rd_charge *c;

    if (table == NULL || (c = find(fp, 1)) == NULL)
        return UINT64_MAX;          /* cannot count: this timeout is the last */
    __atomic_store_n(&c->at_ms, rd_now_ms(), __ATOMIC_RELAXED);
    return __atomic_add_fetch(&c->timeouts, 1, __ATOMIC_ACQ_REL);
}

void
rd_charge_settle(uint64_t fp, uint64_t prior)
{
    struct rd_charge *c;
    uint64_t          n, left;

    if (table == NULL || (c = find(fp, 0)) == NULL)
        return;
    n = __atomic_load_n(&c->count, __ATOMIC_ACQUIRE);
    do
        left = n > prior + 1 ? n - prior - 1 : 0;
    while (!__atomic_compare_exchange_n(&c->count, &n, left, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE));
    __atomic_store_n(&c->timeouts, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&c->attempts, 0, __ATOMIC_RELEASE);
}
