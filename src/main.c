/*
 * main.c -- reporterd's entry point and command line.
 *
 *   reporterd [-F] [-c FILE]            run (master + workers); -F
 *                                       (--foreground, or the legacy -d): in
 *                                       the foreground whatever daemon: says
 *   reporterd -t [-c FILE]              check the configuration
 *   reporterd -T [-c FILE]              check it and print it, secrets masked
 *   reporterd -s SIGNAL [-c FILE]       stop | quit | reload | reopen
 *   reporterd -v | -V | -h
 *
 * Every short option has a long one (usage()).  Exit status as sysexits.h:
 * 64 a bad command line, 78 a configuration that does not load or pass
 * -t, 1 anything else that fails.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "envfile.h"
#include "preflight.h"
#include "process.h"
#include "rollup.h"
#include "shm.h"
#include "store.h"
#include "util.h"

#ifndef RD_DEFAULT_CONF
#define RD_DEFAULT_CONF "/usr/local/etc/reporterd/reporterd.yaml"
#endif

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: reporterd [-d] [-F] [-c FILE] [-t | -T | -s SIGNAL | -v | -h]\n"
            "\n"
            "  -c, --config FILE    configuration file (default " RD_DEFAULT_CONF ")\n"
            "      --env-file FILE  read NAME=value lines (a dotenv file, such as the old\n"
            "                       service's .env.local) into the environment first\n"
            "  -F, --foreground     stay in the foreground whatever daemon: says\n"
            "  -d                   stay in the foreground whatever daemon: says\n"
            "                       (the legacy spelling of -F: elsewhere -d daemonizes)\n"
            "  -t, --test           test the configuration and exit\n"
            "  -T, --test-dump      test the configuration, print it (secrets masked) and exit\n"
            "  -s, --signal SIGNAL  send a signal to the running master: stop, quit, reload,\n"
            "                       reopen\n"
            "  -v, -V, --version    print the version and exit\n"
            "  -h, --help           print this help and exit\n"
            "\n"
            "Exit status: 0 done, 64 a bad command line, 78 a configuration that does not\n"
            "load or pass -t, 1 any other failure.\n");
}

static int
send_signal(const char *pid_path, const char *name)
{
    static const struct { const char *name; int sig; const char *abbrev; } map[] = {
        { "stop", SIGTERM, "TERM" }, { "quit", SIGQUIT, "QUIT" },
        { "reload", SIGHUP, "HUP" }, { "reopen", SIGUSR1, "USR1" }
    };
    char   err[512];
    pid_t  pid;
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, name) == 0)
            break;
    if (i == sizeof(map) / sizeof(map[0])) {
        fprintf(stderr, "reporterd: invalid signal \"%s\": use stop, quit, reload or reopen\n",
                name);
        return EX_USAGE;
    }
    pid = rd_pidfile_live(pid_path, err, sizeof(err));
    if (pid < 0) {
        fprintf(stderr, "reporterd: %s\n", err);
        return 1;
    }
    if (kill(pid, map[i].sig) != 0) {
        fprintf(stderr, "reporterd: kill(%ld, SIG%s) failed: %s\n", (long) pid,
                map[i].abbrev, strerror(errno));
        return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char     *conf_arg = RD_DEFAULT_CONF, *signal_name = NULL;
    char            conf_path[PATH_MAX], err[1024], shm_err[256] = "";
    struct rd_conf *conf;
    int             opt, test = 0, dump = 0, foreground = 0, pidfd, status, ready = -1;
    pid_t           running;

    rd_shm_reexec(argv, shm_err, sizeof(shm_err));
    rd_store_capture_log();
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "foreground", no_argument, NULL, 'F' },
        { "test", no_argument, NULL, 't' }, { "test-dump", no_argument, NULL, 'T' },
        { "signal", required_argument, NULL, 's' }, { "version", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' }, { "env-file", required_argument, NULL, 'E' },
        { NULL, 0, NULL, 0 }
    };

    while ((opt = getopt_long(argc, argv, "c:dFtTs:vVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_arg = optarg; break;
        case 'E':
            /* each in order: a later file's values win */
            if (rd_envfile_load(optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "reporterd: %s\n", err);
                return EX_CONFIG;
            }
            break;
        case 'd':
        case 'F': foreground = 1; break;
        case 't': test = 1; break;
        case 'T': test = dump = 1; break;
        case 's': signal_name = optarg; break;
        case 'v':
        case 'V':
            printf("reporterd version " PACKAGE_VERSION "\n");
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "reporterd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }
    if (signal_name != NULL && (test || (strcmp(signal_name, "stop") != 0
                                         && strcmp(signal_name, "quit") != 0
                                         && strcmp(signal_name, "reload") != 0
                                         && strcmp(signal_name, "reopen") != 0))) {
        fprintf(stderr, test ? "reporterd: -s and -t exclude each other\n"
                : "reporterd: invalid signal \"%s\": use stop, quit, reload or reopen\n",
                signal_name);
        return EX_USAGE;
    }
    /* The daemon chdirs to / and re-reads the file on reload. */
    if (realpath(conf_arg, conf_path) == NULL)
        snprintf(conf_path, sizeof(conf_path), "%s", conf_arg);

    conf = rd_conf_load(conf_path, err, sizeof(err));
    if (conf == NULL && signal_name != NULL && strcmp(signal_name, "reload") != 0) {
        /* stop, quit and reopen need only the pid file: a typo in the file
         * must not keep an operator from stopping the daemon */
        char pid_path[PATH_MAX];

        if (rd_preflight_pid_path(conf_path, pid_path, sizeof(pid_path)) == NULL) {
            fprintf(stderr, "reporterd: %s\n", err);
            return EX_CONFIG;
        }
        fprintf(stderr, "reporterd: warning: %s\nreporterd: warning: signalling the master "
                "named by %s all the same\n", err, pid_path);
        return send_signal(pid_path, signal_name);
    }
    if (conf == NULL) {
        fprintf(stderr, "reporterd: %s\n", err);
        if (test)
            fprintf(stderr, "reporterd: configuration file %s test failed\n", conf_path);
        return EX_CONFIG;
    }
    if (foreground)
        conf->daemon = 0;
    if (conf->world_readable_secret)
        fprintf(stderr, "reporterd: warning: %s holds a password and is readable by other "
                "users (chmod o-r)\n", conf_path);
    if (test) {
        char done[1024];

        if (rd_conf_notice(conf, err, sizeof(err)))
            fprintf(stderr, "reporterd: notice: %s\n", err);
        if (rd_preflight(conf, done, sizeof(done), err, sizeof(err)) != 0) {
            fprintf(stderr, "reporterd: %s\nreporterd: configuration file %s test failed\n",
                    err, conf_path);
            rd_conf_free(conf);
            return EX_CONFIG;
        }
        fprintf(stderr, "reporterd: checked: %s\n", done);
        if (conf->report.mode == RD_REPORT_ROLLUP) {
            mongoc_init();
            status = rd_rollup_preflight(conf, err, sizeof(err));
            mongoc_cleanup();
            if (status == RD_DECLINED) {
                fprintf(stderr, "reporterd: report.mode: rollup refused: %s\n"
                        "reporterd: configuration file %s test failed\n", err, conf_path);
                rd_conf_free(conf);
                return EX_CONFIG;
            }
            if (status == RD_ERROR)
                fprintf(stderr, "reporterd: notice: report.mode: rollup: could not check the "
                        "records collection for a TTL index (rollup mode is refused while "
                        "one exists): %s\n", err);
            else
                fprintf(stderr, "reporterd: report.mode: rollup: the records collection has "
                        "no TTL index\n");
        }
        if (dump)
            rd_conf_dump(conf, stdout);
        fprintf(stderr, "reporterd: configuration file %s test is successful\n", conf_path);
        rd_conf_free(conf);
        return 0;
    }
    if (signal_name != NULL) {
        status = send_signal(conf->pid, signal_name);
        rd_conf_free(conf);
        return status;
    }

    rd_proctitle_init(argc, argv);
    if (rd_log_open(conf->error_log, conf->log_level, err, sizeof(err)) != 0) {
        fprintf(stderr, "reporterd: error_log: %s\n", err);
        rd_conf_free(conf);
        return 1;
    }
    rd_chown_to_user(conf->error_log, conf->user);
    if (shm_err[0] != '\0')
        rd_warn("%s", shm_err);
    if ((running = rd_pidfile_live(conf->pid, err, sizeof(err))) > 0) {
        fprintf(stderr, "reporterd: already running with pid %ld (pid file \"%s\")\n",
                (long) running, conf->pid);
        rd_conf_free(conf);
        return 1;
    }
    if (conf->daemon) {
        if ((ready = rd_daemonize(err, sizeof(err))) < 0) {
            rd_error("%s", err);
            return 1;
        }
        rd_log_take_stderr();
    }
    pidfd = rd_pidfile_create(conf->pid, err, sizeof(err));
    if (pidfd < 0) {
        char done[512], why[512];

        /* the first run from a source checkout: say what to do */
        if (rd_preflight(conf, done, sizeof(done), why, sizeof(why)) != 0 && strlen(err) + 3 < sizeof(err))
            snprintf(err + strlen(err), sizeof(err) - strlen(err), "; %s", why);
        rd_error("%s", err);
        if (!conf->daemon && rd_log_fd() != 2)
            fprintf(stderr, "reporterd: %s\n", err);
        rd_conf_free(conf);
        return 1;
    }
    char pid_path[PATH_MAX];
    snprintf(pid_path, sizeof(pid_path), "%s", conf->pid);
    /* Titled before the start command returns, so ps shows it at once. */
    rd_proctitle_set("reporterd: master process %s", conf_path);
    rd_daemon_ready(ready);
    mongoc_init();
    status = rd_master_run(conf, conf_path, pidfd);
    rd_pidfile_remove(pid_path, pidfd);
    mongoc_cleanup();
    return status;
}
