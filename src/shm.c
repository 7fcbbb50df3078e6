/*
 * shm.c -- running without libmongoc's shared-memory counters.
 *
 * Debian's libmongoc initialises itself in a library constructor, before
 * main(), and unless MONGOC_DISABLE_SHM is in the environment at that
 * moment it creates /dev/shm/mongoc-<pid> and maps it.  Only
 * mongoc_cleanup() in the process that made it removes the segment, so a
 * SIGKILL, a crash, or the first process of `daemon: on` leaving through
 * _exit() leaves it behind, one per start, until /dev/shm fills (where
 * libmongoc 1.23.1 can SIGBUS).  Setting the variable in main() is too
 * late, so main() drops the segment's name and runs itself again with the
 * variable set: the exec keeps the pid, and the new image's constructor
 * keeps its counters in private memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "shm.h"

#define RD_SHM_VAR "MONGOC_DISABLE_SHM"

int
rd_shm_reexec(char **argv, char *err, size_t errlen)
{
    char        name[32], comm[17];
    const char *base;

    if (getenv(RD_SHM_VAR) != NULL) {
        /* After our exec the kernel names the process after the path. */
        memset(comm, 0, sizeof(comm));
        if (argv[0] != NULL && prctl(PR_GET_NAME, comm, 0, 0, 0) == 0
            && strcmp(comm, "exe") == 0)
        {
            base = strrchr(argv[0], '/');
            prctl(PR_SET_NAME, base != NULL ? base + 1 : argv[0], 0, 0, 0);
        }
        return 0;
    }
    snprintf(name, sizeof(name), "/mongoc-%ld", (long) getpid());
    shm_unlink(name);
    if (setenv(RD_SHM_VAR, "1", 1) == 0)
        execv("/proc/self/exe", argv);
    snprintf(err, errlen, "execv(\"/proc/self/exe\") with " RD_SHM_VAR "=1 failed: %s; "
             "libmongoc's counters stay in an unlinked shared memory segment", strerror(errno));
    return -1;
}
