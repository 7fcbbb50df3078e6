/*
 * log.c -- the error log.  Each process (master, worker, reporterctl) has
 * its own copy of this state after fork; nothing here is shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int  log_fd = STDERR_FILENO;
static int  log_level = RD_LOG_INFO;
static char log_path[4096];
static char log_role[16] = "master";

const char *const rd_log_levels[] = { "debug", "info", "warn", "error", NULL };

const char *
rd_log_level_name(int level)
{
    if (level == RD_LOG_ALERT)
        return "alert";
    if (level < RD_LOG_DEBUG || level > RD_LOG_ERROR)
        return "unknown";
    return rd_log_levels[level];
}

void
rd_log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void
rd_log_set_level(int level)
{
    log_level = level;
}

int
rd_log_fd(void)
{
    return log_fd;
}

static int
open_target(const char *target, char *err, size_t errlen)
{
    int fd;

    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "open(\"%s\") failed: %s", target, strerror(errno));
    return fd;
}

static int log_has_stderr;      /* stderr is the log file (rd_log_take_stderr) */

int
rd_log_open(const char *target, int level, char *err, size_t errlen)
{
    int fd = open_target(target, err, errlen);

    if (fd < 0)
        return -1;
    if (log_fd != STDERR_FILENO && log_fd != fd)
        close(log_fd);
    log_fd = fd;
    if (log_has_stderr && fd != STDERR_FILENO)
        dup2(fd, STDERR_FILENO);
    log_level = level;
    if (target != log_path)
        snprintf(log_path, sizeof(log_path), "%s", target);
    return 0;
}

int
rd_log_reopen(void)
{
    char err[512];

    if (log_path[0] != '\0' && strcmp(log_path, "stderr") != 0
        && rd_log_open(log_path, log_level, err, sizeof(err)) != 0) {
        rd_error("reopening the log failed: %s", err);
        return -1;
    }
    rd_info("log reopened");
    return 0;
}

void
rd_log_take_stderr(void)
{
    if (log_fd == STDERR_FILENO || dup2(log_fd, STDERR_FILENO) < 0)
        return;
    log_has_stderr = 1;
}

void
rd_log(int level, const char *fmt, ...)
{
    char            line[4096];
    struct timespec ts;
    struct tm       tm;
    va_list         ap;
    int             n, m;

    if (level < log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = (int) strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - n, ".%03ld [%s] %ld %s: ",
                  ts.tv_nsec / 1000000, rd_log_level_name(level), (long) getpid(),
                  log_role);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int) sizeof(line) - 2)
        n = (int) sizeof(line) - 2;
    line[n++] = '\n';
    while (write(log_fd, line, n) < 0 && errno == EINTR)
        ;
}
