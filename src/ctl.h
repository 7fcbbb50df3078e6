/*
 * ctl.h -- reporterctl's subcommands that live in files of their own.
 * Each takes the loaded configuration and its own argv (argv[0] is the
 * subcommand) and returns the process exit status.
 */
#ifndef RD_CTL_H
#define RD_CTL_H

#include "conf.h"

int rd_ctl_import(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_bench(struct rd_conf *conf, int argc, char **argv);
int rd_ctl_status(struct rd_conf *conf, int argc, char **argv);

#endif
