/*
 * cpus.h -- how many CPUs this process may use, for worker_processes:
 * auto: the CPUs online, within its affinity mask (taskset, cpuset) and
 * its cgroup v2 CPU quota (cpu.max, as `docker run --cpus` and Kubernetes
 * limits set it), rounded up.
 */
#ifndef RD_CPUS_H
#define RD_CPUS_H

/*
 * The usable CPUs, at least 1.  root is where the cgroup v2 file system is
 * mounted ("/sys/fs/cgroup"), self the process's cgroup file
 * ("/proc/self/cgroup"): parameters so that tests can hand in their own.
 * The quota of the process's cgroup and of every cgroup above it counts.
 */
long rd_cpus_usable(const char *root, const char *self);

/* The quota of one cpu.max file's text ("max 100000", "150000 100000"):
 * CPUs rounded up, or 0 for none / unreadable. */
long rd_cpus_quota(const char *cpu_max);

#endif
