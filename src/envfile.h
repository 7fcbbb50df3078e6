/*
 * envfile.h -- `reporterd --env-file FILE` and `reporterctl --env-file
 * FILE`: the old Python service's dotenv files (.env, .env.local) as they
 * are.  One NAME=value per line; blank lines and lines starting with #
 * skipped; an optional "export "; a value unquoted (a " #" starts a
 * comment, trailing blanks dropped), in single quotes (as written) or in
 * double quotes (\n, \t, \r, \", \\ escapes).  The file's values win over
 * the environment's, as the old service loaded them (python-dotenv,
 * override=True).  No ${VAR} inside the file is expanded.
 */
#ifndef RD_ENVFILE_H
#define RD_ENVFILE_H

#include <stddef.h>

/* 0, or -1 with err ("FILE:LINE: why"). */
int rd_envfile_load(const char *path, char *err, size_t errlen);

#endif
