/*
 * master.h -- the master process: spawn and supervise workers, reload
 * generations on HUP, stop on TERM/INT (fast) and QUIT (graceful),
 * reopen logs on USR1.  It never does report work.
 */
#ifndef RD_MASTER_H
#define RD_MASTER_H

#include "conf.h"

/* Runs until stopped; takes ownership of conf.  Returns the exit status. */
int rd_master_run(struct rd_conf *conf, const char *conf_path, int pidfd);

#endif
