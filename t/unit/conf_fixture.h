/*
 * conf_fixture.h -- what the reporterd.yaml unit tests (test_conf.c,
 * test_conf_checks.c) share: one temp file each case writes its YAML to,
 * the example configuration, and load / fails, which match error messages
 * as "PATH:LINE:COL: KEY: message".
 */
#ifndef RD_CONF_FIXTURE_H
#define RD_CONF_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static char  path[] = "/tmp/test_conf_XXXXXX";
static char  err[1024];

static const char  example[] =
    "# reporterd.yaml\n"
    "daemon: off\n"
    "worker_processes: 2\n"
    "pid: /usr/local/var/run/reporterd.pid\n"
    "error_log: stderr\n"
    "log_level: info\n"
    "rabbitmq:\n"
    "  host: 127.0.0.1\n"
    "  port: 5672\n"
    "  user: guest\n"
    "  password: guest\n"
    "  vhost: /\n"
    "  task_queue: reports.tasks\n"
    "  result_queue: reports.results\n"
    "  prefetch: 1\n"
    "mongodb:\n"
    "  uri: mongodb://127.0.0.1:27017/\n"
    "  database: calls\n"
    "  collection: calls\n";


static void
spew(const char *file, const char *text, size_t len)
{
    FILE  *f;

    f = fopen(file, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        perror(file);
        exit(2);
    }
}


static struct rd_conf *
load(const char *yaml)
{
    spew(path, yaml, strlen(yaml));
    err[0] = '\0';
    return rd_conf_load(path, err, sizeof(err));
}


/* The load fails and the message contains "PATH:" + where. */
static void
fails(const char *yaml, const char *where, const char *name)
{
    struct rd_conf  *conf;
    char             want[1024];

    conf = load(yaml);
    snprintf(want, sizeof(want), "%s:%s", path, where);
    if (!ok(conf == NULL, "%s: rejected", name))
        rd_conf_free(conf);
    like(err, want, "%s: message", name);
}


/* Creates the temp file; 2 (the exit status) if it cannot. */
static int
fixture_open(void)
{
    int  fd;

    fd = mkstemp(path);
    if (fd == -1) {
        perror("mkstemp");
        return 2;
    }
    close(fd);
    return 0;
}

#endif
