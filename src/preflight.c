/*
 * preflight.c -- what `reporterd -t` checks beyond the file itself, so that
 * a configuration it passes does not fail at start: the user: exists, the
 * pid file's and the error log's directories exist and can be written by
 * whoever will write there; and where `reporterd -s` finds the pid file
 * when the configuration does not load.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"

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
    /* as the kernel will decide it: groups, ACLs, read-only mounts */
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
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
        /* workers reopen the log after they dropped to user: (a start as
         * root gives the file to user: itself) */
        if (pw != NULL && geteuid() != 0 && stat(conf->error_log, &st) == 0 && pw->pw_uid != 0
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

/* ${NAME} and ${NAME:-default} in s expanded from the environment into
 * out; -1 when a NAME without a default is unset. */
static int
expand(const char *s, char *out, size_t len)
{
    size_t o = 0, n;
    char   name[256];

    while (*s != '\0' && o + 1 < len) {
        const char *close, *def = NULL, *val;

        if (s[0] != '$' || s[1] != '{' || (close = strchr(s, '}')) == NULL) {
            out[o++] = *s++;
            continue;
        }
        n = strcspn(s + 2, ":}");
        if (n == 0 || n >= sizeof(name))
            return -1;
        memcpy(name, s + 2, n);
        name[n] = '\0';
        if (s[2 + n] == ':' && s[3 + n] == '-')
            def = s + 4 + n;
        val = getenv(name);
        if (val == NULL || *val == '\0') {
            if (def == NULL && val == NULL)
                return -1;
            if (def != NULL) {
                n = (size_t) (close - def);
                if (o + n >= len)
                    return -1;
                memcpy(out + o, def, n);
                o += n;
            }
        } else {
            n = strlen(val);
            if (o + n >= len)
                return -1;
            memcpy(out + o, val, n);
            o += n;
        }
        s = close + 1;
    }
    out[o] = '\0';
    return 0;
}

const char *
rd_preflight_pid_path(const char *conf_path, char *buf, size_t len)
{
    char  line[PATH_MAX + 16], value[PATH_MAX], *v, *end;
    FILE *f = fopen(conf_path, "r");

    snprintf(buf, len, "%s", RD_PREFLIGHT_DEFAULT_PID);
    if (f == NULL)
        return NULL;            /* no file: no guess at whose daemon to signal */
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
        if (expand(v, value, sizeof(value)) != 0) {
            fclose(f);
            return NULL;        /* a ${NAME} that cannot be resolved */
        }
        v = value;
        if (*v != '\0') {
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
