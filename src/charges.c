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

static struct rd_charge *
find(uint64_t fp, int claim)
{
    struct rd_charge *t = table, *victim = NULL;
    uint64_t          seen;
    size_t            i, at;

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
        if (victim == NULL || weight(&t[at]) < weight(victim)
            || (weight(&t[at]) == weight(victim) && t[at].at_ms < victim->at_ms))
            victim = &t[at];
    }
    if (!claim || victim == NULL)
        return NULL;
    /* Full around here: the least charged entry makes room. */
    __atomic_store_n(&victim->count, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&victim->timeouts, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&victim->fp, fp, __ATOMIC_RELEASE);
    return victim;
}

uint64_t
rd_charge_begin(uint64_t fp)
{
    struct rd_charge *c;

    if (table == NULL || (c = find(fp, 1)) == NULL)
        return 0;
    __atomic_store_n(&c->at_ms, rd_now_ms(), __ATOMIC_RELAXED);
    return __atomic_fetch_add(&c->count, 1, __ATOMIC_ACQ_REL);
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
