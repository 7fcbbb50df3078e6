/*
 * preflight.h -- reporterd -t's checks beyond the file (preflight.c), and
 * the pid file `reporterd -s` uses when the configuration does not load.
 */
#ifndef RD_PREFLIGHT_H
#define RD_PREFLIGHT_H

#include <stddef.h>

#include "conf.h"

#ifndef RD_DEFAULT_PID
#define RD_DEFAULT_PID  "/usr/local/var/run/reporterd.pid"
#endif
#define RD_PREFLIGHT_DEFAULT_PID RD_DEFAULT_PID

/* user: exists; the directories of pid and error_log exist and the
 * invoking user can write in them; an existing error_log file can be
 * written by user:.  0 with done saying what was checked, -1 with err. */
int rd_preflight(const struct rd_conf *conf, char *done, size_t donelen, char *err,
                 size_t errlen);

/* The pid file of the configuration at conf_path when it does not load:
 * its top-level `pid:` scalar read as text, ${NAME} and ${NAME:-default}
 * expanded (relative to the file's directory), or the default when it has
 * none.  Into buf, returned; NULL when the file cannot be read or a
 * ${NAME} cannot be resolved. */
const char *rd_preflight_pid_path(const char *conf_path, char *buf, size_t len);

#endif
