/*
 * process.h -- process plumbing: the pid file (atomic, beside a lock
 * file), detaching from the terminal, process titles, signalling a running
 * master, and dropping privileges.
 */
#ifndef RD_PROCESS_H
#define RD_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

/* Exit statuses of the master's children (workers, the status process)
 * that the master understands. */
#define RD_WORKER_EXIT_OK     0
#define RD_WORKER_EXIT_FATAL  2   /* a problem only an operator can fix: respawn slowly */

/* Lock "<path>.lock" (never renamed, so two masters starting at once meet
 * on it and only one wins), then write our pid to path atomically (temp
 * file + rename).  Refuses when a live master holds the lock.  Returns the
 * lock's fd, to keep open while we live (children close it), or -1 with
 * err. */
int   rd_pidfile_create(const char *path, char *err, size_t errlen);
/* Unlink path and its lock file, then let go of the lock. */
void  rd_pidfile_remove(const char *path, int fd);

/* The pid of the live master named by path, or -1 with err saying why
 * (missing, empty, garbage, stale: a pid file whose lock no one holds). */
pid_t rd_pidfile_live(const char *path, char *err, size_t errlen);

/* The master's pid, for its children to tell whether it still lives
 * (comparing getppid() with 1 fails where the master is pid 1). */
extern pid_t rd_master_pid;

/* Double fork, setsid, chdir /, stdio to /dev/null.  The first process
 * exits only when the daemon calls rd_daemon_ready() (status 0) or dies
 * before it (status 1), so a service manager finds the pid file written.
 * Returns the fd to pass to rd_daemon_ready, or -1 with err. */
int   rd_daemonize(char *err, size_t errlen);
void  rd_daemon_ready(int fd);

/* chown path to user (when root and user is set); for log files the
 * workers must reopen after dropping privileges. */
void  rd_chown_to_user(const char *path, const char *user);

/* Rewrite argv in place so ps shows title; call rd_proctitle_init first. */
void  rd_proctitle_init(int argc, char **argv);
void  rd_proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* setgid/initgroups/setuid to user, then not dumpable (no core file, no
 * ptrace by the user's other processes); -1 with err. */
int   rd_drop_privileges(const char *user, char *err, size_t errlen);

/* A worker's or the folder's signals: handler for QUIT, TERM, INT and USR1;
 * HUP and PIPE ignored, CHLD default; nothing blocked. */
void  rd_child_signals(void (*handler)(int));

#endif
