/*
 * respawn.c -- the master's respawn policy: the crash-loop throttle and the
 * slow retry of fatal exits (see respawn.h).
 */
#include <stdio.h>

#include "log.h"
#include "respawn.h"

#define THROTTLE_BASE_MS 1000
#define THROTTLE_CAP_MS  60000
#define FATAL_BASE_MS    30000
#define FATAL_CAP_MS     600000

static int64_t
doubled(int64_t prev, int64_t base, int64_t cap)
{
    return prev == 0 ? base : (prev * 2 > cap ? cap : prev * 2);
}

void
rd_respawn_schedule(struct rd_respawn *r, const char *what, pid_t pid, const char *how,
                    int64_t lived, int worked, const char *fatal, int64_t now)
{
    if (fatal != NULL) {
        r->fatal_ms = doubled(r->fatal_ms, FATAL_BASE_MS, FATAL_CAP_MS);
        r->at_ms = now + r->fatal_ms;
        snprintf(r->problem, sizeof(r->problem), "%s", fatal[0] ? fatal : "see the log");
        rd_error("%s %ld %s: %s; an operator must fix this outside the configuration "
                 "file; trying again in %lld s", what, (long) pid, how, r->problem,
                 (long long) r->fatal_ms / 1000);
        return;
    }
    if (lived < RD_THROTTLE_WINDOW_MS && !worked)
        r->delay_ms = doubled(r->delay_ms, THROTTLE_BASE_MS, THROTTLE_CAP_MS);
    else
        r->delay_ms = 0;
    r->at_ms = now + (r->delay_ms > 0 ? r->delay_ms : 1);
    if (r->delay_ms > 0)
        rd_warn("%s %ld %s after %lld ms; throttled: respawning in %lld ms",
                what, (long) pid, how, (long long) lived, (long long) r->delay_ms);
    else
        rd_warn("%s %ld %s unexpectedly; respawning", what, (long) pid, how);
}

int
rd_respawn_recovered(struct rd_respawn *r)
{
    if (r->fatal_ms == 0)
        return 0;
    r->fatal_ms = 0;
    return 1;
}
