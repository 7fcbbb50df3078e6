/*
 * preflight.c -- what `reporterd -t` checks beyond the file itself, so that
 * a configuration it passes does not fail at start: the user: exists, the
 * pid file's and the error log's directories exist and can be written by
 * whoever will write there; and where `reporterd -s` finds the pid file
 * when the configuration does not load.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"

/* Whether uid/gid may write into (create files in) directory st. */
static int
writable_by(const struct stat *st, uid_t uid, gid_t gid)
{
    if (uid == 0)
        return 1;
    if (st->st_uid == uid)
        return (st->st_mode & (S_IWUSR | S_IXUSR)) == (S_IWUSR | S_IXUSR);
    if (st->st_gid == gid)
        return (st->st_mode & (S_IWGRP | S_IXGRP)) == (S_IWGRP | S_IXGRP);
    return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

/* path's directory exists and the invoking user may create files in it. */
static int
check_dir(const char *key, const char *path, const char *hint, char *done, size_t donelen,
          char *err, size_t errlen)
{
    char        copy[PATH_MAX], *dir;
    struct stat st;
    size_t      at = strlen(done);

    snprintf(copy, sizeof(copy), "%s", path);
    dir = dirname(copy);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: the directory \"%s\" of \"%s\" does not exist%s", key, dir,
                 path, hint);
        return -1;
    }
    if (!writable_by(&st, geteuid(), getegid())) {
        snprintf(err, errlen, "%s: the directory \"%s\" cannot be written by uid %ld%s", key,
                 dir, (long) geteuid(), hint);
        return -1;
    }
    if (at < donelen)
        snprintf(done + at, donelen - at, "%s%s directory %s writable", at ? "; " : "", key,
                 dir);
    return 0;
}

int
rd_preflight(const struct rd_conf *conf, char *done, size_t donelen, char *err, size_t errlen)
{
    struct passwd *pw = NULL;
    struct stat    st;
    size_t         at;
    const char    *hint = "";

    done[0] = '\0';
    if (conf->user != NULL) {
        errno = 0;
        pw = getpwnam(conf->user);
        if (pw == NULL) {
            snprintf(err, errlen, "user: \"%s\": no such user", conf->user);
            return -1;
        }
        snprintf(done, donelen, "user %s (uid %ld)", conf->user, (long) pw->pw_uid);
    }
    if (strcmp(conf->pid, RD_PREFLIGHT_DEFAULT_PID) == 0)
        hint = " (not installed yet? `make install` makes it; from a source checkout, set pid: "
               "to a path of your own, such as ./reporterd.pid)";
    if (check_dir("pid", conf->pid, hint, done, donelen, err, errlen) != 0)
        return -1;
    if (conf->error_log != NULL && strcmp(conf->error_log, "stderr") != 0) {
        if (check_dir("error_log", conf->error_log, "", done, donelen, err, errlen) != 0)
            return -1;
        /* workers reopen the log after they dropped to user: */
        if (pw != NULL && stat(conf->error_log, &st) == 0 && pw->pw_uid != 0
            && st.st_uid != pw->pw_uid && !(st.st_mode & S_IWOTH)
            && !(st.st_gid == pw->pw_gid && (st.st_mode & S_IWGRP))) {
            snprintf(err, errlen, "error_log: \"%s\" cannot be written by user %s, who "
                     "reopens it (chown it to %s)", conf->error_log, conf->user, conf->user);
            return -1;
        }
        at = strlen(done);
        if (pw != NULL && at < donelen)
            snprintf(done + at, donelen - at, ", its file writable by %s", conf->user);
    }
    return 0;
}

const char *
rd_preflight_pid_path(const char *conf_path, char *buf, size_t len)
{
    char  line[PATH_MAX + 16], *v, *end;
    FILE *f = fopen(conf_path, "r");

    snprintf(buf, len, "%s", RD_PREFLIGHT_DEFAULT_PID);
    if (f == NULL)
        return buf;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "pid:", 4) != 0)
            continue;               /* a top-level key only */
        for (v = line + 4; *v == ' ' || *v == '\t'; v++)
            ;
        end = v + strcspn(v, "#\r\n");
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((*v == '"' || *v == '\'') && end - v >= 2 && end[-1] == *v) {
            v++;
            end--;
        }
        *end = '\0';
        if (*v != '\0' && strstr(v, "${") == NULL) {
            char copy[PATH_MAX];

            snprintf(copy, sizeof(copy), "%s", conf_path);
            while (v[0] == '.' && v[1] == '/')
                v += 2;
            if (*v == '/')
                snprintf(buf, len, "%s", v);
            else
                snprintf(buf, len, "%s/%s", dirname(copy), v);
        }
        break;
    }
    fclose(f);
    return buf;
}
