/*
 * notify.c -- sd_notify(3) for Type=notify units; no-ops without
 * libsystemd or outside systemd (no NOTIFY_SOCKET).
 */
#include "notify.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void
rd_notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
rd_notify_reloading(void)
{
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void
rd_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

#else

void
rd_notify_ready(const char *status)
{
    (void) status;
}

void
rd_notify_reloading(void)
{
}

void
rd_notify_stopping(void)
{
}

#endif
