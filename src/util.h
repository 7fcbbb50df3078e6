/*
 * util.h -- clocks, the task_received timestamp, sleeping that watches
 * the stop flags, and jittered exponential backoff.
 */
#ifndef RD_UTIL_H
#define RD_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes shared by the modules (nginx style). */
#define RD_OK        0
#define RD_ERROR    -1
#define RD_AGAIN    -2     /* nothing yet: try again */
#define RD_DECLINED -3     /* refused for a reason that is not an error */

int64_t rd_now_ms(void);               /* CLOCK_MONOTONIC */
double  rd_now_sec(void);              /* CLOCK_MONOTONIC, fractional */
int64_t rd_wall_ms(void);              /* CLOCK_REALTIME: ms since the epoch */

/* "%Y-%m-%d %H:%M:%S.%f" in local time, 6 digits of microseconds. */
void    rd_format_wall_time(char *buf, size_t len);

/* Sleep up to ms, waking early when *stop becomes non-zero. */
void    rd_sleep_ms(int64_t ms, volatile sig_atomic_t *stop);

/* Backoff: next delay after `prev` ms, doubling from `base` up to `cap`,
 * with +-20% jitter. */
int64_t rd_backoff_next(int64_t prev, int64_t base, int64_t cap);

#endif
