/*
 * worker.h -- one worker process: connect after fork, consume tasks, have
 * the database aggregate them, publish results, ack.
 */
#ifndef RD_WORKER_H
#define RD_WORKER_H

#include "conf.h"

/* Exit statuses the master understands. */
#define RD_WORKER_EXIT_OK     0
#define RD_WORKER_EXIT_FATAL  2   /* configuration problem: do not respawn */

/* Run the worker cycle in a freshly forked child; returns its exit status.
 * chan is the worker's end of the master channel (-1: none). */
int rd_worker_main(const struct rd_conf *conf, int chan, int generation);

#endif
