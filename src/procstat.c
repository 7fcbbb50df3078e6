/*
 * procstat.c -- a process's standard figures from /proc/PID/stat, /proc/
 * PID/fd, /proc/PID/limits and /proc/stat's btime (proc(5)).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

/* The boot time, seconds since the epoch: /proc/stat's btime line. */
static double
boot_time(void)
{
    char  line[256];
    FILE *f = fopen("/proc/stat", "r");
    long long bt = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return (double) bt;
}

static long
count_fds(pid_t pid)
{
    char           path[64];
    DIR           *d;
    struct dirent *e;
    long           n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long) pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long
max_fds(pid_t pid)
{
    char  path[64], line[256], soft[32];
    FILE *f;
    long  v = -1;

    snprintf(path, sizeof(path), "/proc/%ld/limits", (long) pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%31s", soft) == 1) {
            v = strcmp(soft, "unlimited") == 0 ? -1 : atol(soft);
            break;
        }
    fclose(f);
    return v;
}

int
rd_procstat_read(pid_t pid, struct rd_procstat *ps)
{
    char                path[64], buf[1024], *p;
    FILE               *f;
    size_t              n;
    unsigned long long  utime, stime, start, vsize;
    long long           rss;
    double              tick = (double) sysconf(_SC_CLK_TCK);

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long) pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name in parentheses may hold spaces and parentheses:
     * the fields go on after the last ')', from field 3 (state) */
    p = strrchr(buf, ')');
    if (p == NULL || tick <= 0
        || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                  "%*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
        return -1;
    ps->cpu_seconds = (double) (utime + stime) / tick;
    ps->start_time = boot_time() + (double) start / tick;
    ps->virtual_bytes = (double) vsize;
    ps->resident_bytes = (double) rss * (double) sysconf(_SC_PAGESIZE);
    ps->open_fds = count_fds(pid);
    ps->max_fds = max_fds(pid);
    return 0;
}
