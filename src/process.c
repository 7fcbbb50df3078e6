/*
 * process.c -- pid file, daemonize, process titles, privilege drop, and the
 * signals of the master's children (workers, the folder).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process.h"

/* The lock file beside the pid file: "<path>.lock". */
static int
lock_path(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    if ((size_t) snprintf(buf, len, "%s.lock", path) >= len) {
        snprintf(err, errlen, "pid file path \"%s\" is too long", path);
        return -1;
    }
    return 0;
}

/* The pid written in path, or -1 with err. */
static pid_t
read_pid(const char *path, char *err, size_t errlen)
{
    char     buf[32], *end;
    long     pid;
    int      fd;
    ssize_t  n;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open pid file \"%s\": %s (is reporterd running?)",
                 path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        snprintf(err, errlen, "pid file \"%s\" is empty", path);
        return -1;
    }
    buf[n] = '\0';
    errno = 0;
    pid = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || pid <= 1) {
        snprintf(err, errlen, "pid file \"%s\" does not hold a pid", path);
        return -1;
    }
    return (pid_t) pid;
}

/* Whether a live master holds the lock file (it never lets go of it). */
static int
lock_held(const char *lock)
{
    int  fd, held;

    fd = open(lock, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

pid_t
rd_pidfile_live(const char *path, char *err, size_t errlen)
{
    char   lock[4096];
    pid_t  pid;

    if (lock_path(path, lock, sizeof(lock), err, errlen) != 0)
        return -1;
    pid = read_pid(path, err, errlen);
    if (pid < 0)
        return -1;
    if (!lock_held(lock)) {
        snprintf(err, errlen, "pid file \"%s\" is stale: process %ld is not a running "
                 "reporterd master", path, (long) pid);
        return -1;
    }
    return pid;
}

/* Lock "<path>.lock", which no one renames: two masters that start at the
 * same moment meet on the same file and only one gets the lock.  An exiting
 * master unlinks the file before it lets go of it, so whoever locked a file
 * that is no longer under the name tries again. */
static int
lock_take(const char *path, const char *lock, char *err, size_t errlen)
{
    struct stat  a, b;
    char         why[256];
    pid_t        live;
    int          fd, tries;

    for (tries = 0; tries < 100; tries++) {
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "open(\"%s\") failed: %s", lock, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK)
                snprintf(err, errlen, "flock(\"%s\") failed: %s", lock, strerror(errno));
            else if ((live = read_pid(path, why, sizeof(why))) > 0)
                snprintf(err, errlen, "reporterd is already running with pid %ld "
                         "(pid file \"%s\")", (long) live, path);
            else
                snprintf(err, errlen, "reporterd is already running: another master "
                         "holds \"%s\"", lock);
            close(fd);
            return -1;
        }
        if (fstat(fd, &a) != 0) {
            snprintf(err, errlen, "fstat(\"%s\") failed: %s", lock, strerror(errno));
            close(fd);
            return -1;
        }
        if (stat(lock, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return fd;
        close(fd);
    }
    snprintf(err, errlen, "\"%s\" keeps being replaced", lock);
    return -1;
}

int
rd_pidfile_create(const char *path, char *err, size_t errlen)
{
    char  lock[4096], tmp[4096], buf[32];
    int   lfd, fd, n;

    if (lock_path(path, lock, sizeof(lock), err, errlen) != 0)
        return -1;
    n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long) getpid());
    if (n >= (int) sizeof(tmp)) {
        snprintf(err, errlen, "pid file path \"%s\" is too long", path);
        return -1;
    }
    lfd = lock_take(path, lock, err, errlen);
    if (lfd < 0)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", tmp, strerror(errno));
        goto fail;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    if (write(fd, buf, n) != n || fsync(fd) != 0) {
        snprintf(err, errlen, "write(\"%s\") failed: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename(\"%s\", \"%s\") failed: %s", tmp, path, strerror(errno));
        goto fail;
    }
    return lfd;

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    unlink(lock);
    close(lfd);
    return -1;
}

void
rd_pidfile_remove(const char *path, int fd)
{
    char  lock[4096], err[64];

    if (fd < 0)
        return;
    unlink(path);
    if (lock_path(path, lock, sizeof(lock), err, sizeof(err)) == 0)
        unlink(lock);
    close(fd);
}

pid_t rd_master_pid;

int
rd_daemonize(char *err, size_t errlen)
{
    int   fds[2], fd;
    char  c;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe() failed: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        /* The foreground process: exit once the daemon is ready. */
        ssize_t n;

        close(fds[1]);
        do
            n = read(fds[0], &c, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 && c == 'R' ? 0 : 1);
    }
    close(fds[0]);
    if (setsid() < 0) {
        snprintf(err, errlen, "setsid() failed: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed: %s", strerror(errno));
        return -1;
    }
    if (pid > 0)
        _exit(0);
    umask(022);
    if (chdir("/") != 0) {
        snprintf(err, errlen, "chdir(\"/\") failed: %s", strerror(errno));
        return -1;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
        snprintf(err, errlen, "open(\"/dev/null\") failed: %s", strerror(errno));
        return -1;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    return fds[1];
}

void
rd_daemon_ready(int fd)
{
    char c = 'R';

    if (fd < 0)
        return;
    while (write(fd, &c, 1) < 0 && errno == EINTR)
        ;
    close(fd);
}

void
rd_chown_to_user(const char *path, const char *user)
{
    struct passwd *pw;

    if (user == NULL || geteuid() != 0 || strcmp(path, "stderr") == 0)
        return;
    pw = getpwnam(user);
    if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) != 0)
        return;             /* the worker's reopen will report it */
}

/* ps shows the memory argv[] pointed into at exec: the argv strings and,
 * right after them, the environment.  Move both elsewhere and reuse that
 * contiguous area for the title (what nginx and postgres do). */
static char   *title_start;
static size_t  title_len;
/* Our copy of the environment, kept reachable for the process's life even
 * if a later setenv() swaps environ for an array of its own (volatile: a
 * store the compiler may not drop, or leak checkers call it lost). */
static char  **volatile title_environ;

void
rd_proctitle_init(int argc, char **argv)
{
    extern char **environ;
    char         *start, *end, **env;
    int           i, n;

    if (argc <= 0 || argv[0] == NULL)
        return;
    start = argv[0];
    end = argv[0] + strlen(argv[0]) + 1;
    for (i = 1; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    for (n = 0; environ[n] != NULL; n++)
        if (environ[n] == end)
            end = environ[n] + strlen(environ[n]) + 1;
    env = malloc((n + 1) * sizeof(char *));
    if (env == NULL)
        return;
    for (i = 0; i < n; i++)
        env[i] = strdup(environ[i]);
    env[n] = NULL;
    environ = title_environ = env;
    for (i = 0; i < argc; i++)
        argv[i] = strdup(argv[i]);
    title_start = start;
    title_len = end - start;
}

void
rd_proctitle_set(const char *fmt, ...)
{
    char    buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    prctl(PR_SET_NAME, buf, 0, 0, 0);
    if (title_start == NULL || title_len < 2)
        return;
    memset(title_start, '\0', title_len);
    snprintf(title_start, title_len - 1, "%s", buf);
}

int
rd_drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw;

    if (user == NULL || geteuid() != 0)
        return 0;
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errlen, "user \"%s\" not found%s%s", user,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    if (setgid(pw->pw_gid) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0
        || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "switching to user \"%s\" failed: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        snprintf(err, errlen, "switching to user \"%s\" failed: root can be regained", user);
        return -1;
    }
    /* Our memory holds passwords: no core file, and no ptrace or
     * /proc/<pid>/mem, environ for other processes of this user.  The
     * kernel clears the flag on setuid unless fs.suid_dumpable says
     * otherwise; clear it whatever that says.  setuid also clears the
     * parent-death signal: callers set it again. */
    if (prctl(PR_SET_DUMPABLE, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_DUMPABLE) failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void
rd_child_signals(void (*handler)(int))
{
    struct sigaction sa;
    sigset_t         all;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}
