/*
 * util.c -- clocks, timestamps, interruptible sleep and backoff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "util.h"

int64_t
rd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rd_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
rd_now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

void
rd_format_wall_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm      tm;
    size_t         n;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06ld", (long) tv.tv_usec);
}

void
rd_sleep_ms(int64_t ms, volatile sig_atomic_t *stop)
{
    int64_t         end = rd_now_ms() + ms, left;
    struct timespec ts;

    while ((stop == NULL || !*stop) && (left = end - rd_now_ms()) > 0) {
        if (left > 100)
            left = 100;
        ts.tv_sec = 0;
        ts.tv_nsec = left * 1000000;
        nanosleep(&ts, NULL);
    }
}

int64_t
rd_backoff_next(int64_t prev, int64_t base, int64_t cap)
{
    int64_t next = prev <= 0 ? base : prev * 2;
    int64_t jitter;

    if (next > cap)
        next = cap;
    jitter = next / 5;
    if (jitter > 0)
        next += (random() % (2 * jitter + 1)) - jitter;
    return next;
}
