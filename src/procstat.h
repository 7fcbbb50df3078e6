/*
 * procstat.h -- what Prometheus calls a process's standard figures
 * (process_cpu_seconds_total, process_resident_memory_bytes, ...), read
 * from /proc for a process of the same machine: the status process reports
 * the master's.
 */
#ifndef RD_PROCSTAT_H
#define RD_PROCSTAT_H

#include <sys/types.h>

struct rd_procstat {
    double cpu_seconds;         /* user + system time */
    double start_time;          /* seconds since the epoch */
    double resident_bytes;
    double virtual_bytes;
    long   open_fds;            /* -1: /proc/PID/fd cannot be read (another user) */
    long   max_fds;             /* the soft RLIMIT_NOFILE; -1 when unknown */
};

/* 0, or -1 when /proc/PID/stat cannot be read (the process is gone). */
int rd_procstat_read(pid_t pid, struct rd_procstat *ps);

#endif
