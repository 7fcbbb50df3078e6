/*
 * cpus.c -- the CPUs this process may use (cpus.h): online, affinity mask,
 * cgroup v2 quota.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

long
rd_cpus_quota(const char *cpu_max)
{
    long long quota, period;
    char      word[32];

    if (sscanf(cpu_max, "%31s %lld", word, &period) != 2 || strcmp(word, "max") == 0)
        return 0;
    quota = strtoll(word, NULL, 10);
    if (quota <= 0 || period <= 0)
        return 0;
    return (long) ((quota + period - 1) / period);
}

/* The smallest quota of the cgroup at path (relative to root) and its parents. */
static long
cgroup_quota(const char *root, char *path)
{
    char  file[4096], text[128];
    long  best = 0, q;
    FILE *f;
    char *slash;

    for (;;) {
        snprintf(file, sizeof(file), "%s%s/cpu.max", root, path);
        if ((f = fopen(file, "r")) != NULL) {
            if (fgets(text, sizeof(text), f) != NULL && (q = rd_cpus_quota(text)) > 0
                && (best == 0 || q < best))
                best = q;
            fclose(f);
        }
        slash = strrchr(path, '/');
        if (slash == NULL || path[0] == '\0')
            break;
        *slash = '\0';              /* the parent; "" is the root */
    }
    return best;
}

long
rd_cpus_usable(const char *root, const char *self)
{
    cpu_set_t set;
    char      line[4096];
    long      n = sysconf(_SC_NPROCESSORS_ONLN), q;
    FILE     *f;

    if (n < 1)
        n = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0
        && CPU_COUNT(&set) < n)
        n = CPU_COUNT(&set);
    if ((f = fopen(self, "r")) == NULL)
        return n;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "0::", 3) != 0)
            continue;               /* cgroup v1 controllers: not read */
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line + 3, "/") == 0)
            line[3] = '\0';
        q = cgroup_quota(root, line + 3);
        if (q > 0 && q < n)
            n = q;
        break;
    }
    fclose(f);
    return n;
}
