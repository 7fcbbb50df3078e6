/*
 * notify.h -- telling a service manager what the master is doing
 * (sd_notify: READY, RELOADING, STOPPING, STATUS).  Built with libsystemd
 * when configure finds it; otherwise these calls do nothing.
 */
#ifndef RD_NOTIFY_H
#define RD_NOTIFY_H

void rd_notify_ready(const char *status);
void rd_notify_reloading(void);
void rd_notify_stopping(void);

#endif
