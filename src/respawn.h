/*
 * respawn.h -- when the master replaces a child that died unasked.
 *
 *   a crash loop      a child that dies within RD_THROTTLE_WINDOW_MS of its
 *                     start without finishing a task is replaced after a
 *                     delay doubling from 1 s to 60 s (Postfix's throttle);
 *                     one that did work, or lived longer, at once.
 *   a fatal problem   a child exiting with RD_WORKER_EXIT_FATAL met a
 *                     problem outside the configuration file that only an
 *                     operator can fix: it is tried again after 30 s,
 *                     doubling to 10 min, its reason kept for /healthz.
 */
#ifndef RD_RESPAWN_H
#define RD_RESPAWN_H

#include <stdint.h>
#include <sys/types.h>

#define RD_THROTTLE_WINDOW_MS 5000

struct rd_respawn {
    int64_t at_ms;              /* 0: nothing scheduled */
    int64_t delay_ms;           /* last throttle delay */
    int64_t fatal_ms;           /* last delay after a fatal exit, 0: none */
    char    problem[256];       /* and its reason */
};

/* Schedule the replacement of child `what` `pid`, which died (`how`) after
 * `lived` ms, `worked` or not; `fatal`: the reason of a fatal exit, else
 * NULL.  Logs the decision. */
void rd_respawn_schedule(struct rd_respawn *r, const char *what, pid_t pid, const char *how,
                         int64_t lived, int worked, const char *fatal, int64_t now);

/* The child is serving again: forget a fatal problem.  1 if there was one. */
int  rd_respawn_recovered(struct rd_respawn *r);

#endif
