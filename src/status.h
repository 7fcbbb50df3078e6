/*
 * status.h -- the status process: GET /metrics (Prometheus text format)
 * and GET /healthz, served with libmicrohttpd from the shared counters.
 * The master forks and supervises it like a worker; the master itself
 * stays single-threaded.  It binds its port, then drops to `user:` like
 * the workers, and reopens its log on USR1.
 */
#ifndef RD_STATUS_H
#define RD_STATUS_H

#include "conf.h"

/* Run the status process; returns its exit status. */
int rd_status_main(const struct rd_conf *conf);

#endif
