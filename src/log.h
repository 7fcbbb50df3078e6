/*
 * log.h -- the process's error log: one line per event with time, level,
 * pid and role, written with a single write(2) so lines from the master
 * and its workers never interleave.  Reopened on USR1 for logrotate.
 */
#ifndef RD_LOG_H
#define RD_LOG_H

#include <stddef.h>

/* Levels, lowest first.  log_level may name debug..error; an alert (a bug
 * or a lost invariant) is always written. */
enum rd_log_level {
    RD_LOG_DEBUG = 0,
    RD_LOG_INFO,
    RD_LOG_WARN,
    RD_LOG_ERROR,
    RD_LOG_ALERT
};

/* The names log_level accepts, by level, NULL-terminated. */
extern const char *const rd_log_levels[];
/* Any level's name ("alert" too), "unknown" out of range. */
const char *rd_log_level_name(int level);

/* Role printed on every line: "master", "worker", "reporterctl". */
void rd_log_set_role(const char *role);

/* Open "stderr" or a file path (O_APPEND); 0 or -1 with err filled. */
int  rd_log_open(const char *target, int level, char *err, size_t errlen);
/* Reopen the same path (USR1) and say how it went in the log ("log
 * reopened", or the error, the old fd kept); 0 or -1. */
int  rd_log_reopen(void);
void rd_log_set_level(int level);
int  rd_log_fd(void);
/* Once detached: point stderr at the log file, now and after each reopen,
 * so what libraries and sanitizers write there is kept, not lost in
 * /dev/null.  Nothing when the log is stderr itself. */
void rd_log_take_stderr(void);

void rd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define rd_debug(...) rd_log(RD_LOG_DEBUG, __VA_ARGS__)
#define rd_info(...)  rd_log(RD_LOG_INFO, __VA_ARGS__)
#define rd_warn(...)  rd_log(RD_LOG_WARN, __VA_ARGS__)
#define rd_error(...) rd_log(RD_LOG_ERROR, __VA_ARGS__)
#define rd_alert(...) rd_log(RD_LOG_ALERT, __VA_ARGS__)

#endif
