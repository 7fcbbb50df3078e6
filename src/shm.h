/*
 * shm.h -- keeping libmongoc's counters out of /dev/shm without asking
 * the operator for MONGOC_DISABLE_SHM=1: the entry points call
 * rd_shm_reexec() first thing in main().
 */
#ifndef RD_SHM_H
#define RD_SHM_H

#include <stddef.h>

/* Without MONGOC_DISABLE_SHM in the environment: unlink the segment
 * libmongoc's constructor made for this pid, set the variable and exec
 * /proc/self/exe with argv again (once: the variable is the guard).
 * Returns 0 when nothing was to be done, or -1 with err when the exec
 * failed; the caller then runs on and warns once its log is open.
 * With the variable: puts back the process name the exec made "exe". */
int rd_shm_reexec(char **argv, char *err, size_t errlen);

#endif
