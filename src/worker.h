/*
 * worker.h -- one worker process: connect after fork, consume tasks, have
 * the database aggregate them, publish results, ack.
 */
#ifndef RD_WORKER_H
#define RD_WORKER_H

#include "conf.h"
#include "process.h"            /* RD_WORKER_EXIT_* */

/* Run the worker cycle in a freshly forked child; returns its exit status.
 * chan is the worker's end of the master channel (-1: none). */
int rd_worker_main(const struct rd_conf *conf, int chan, int generation);

#endif
