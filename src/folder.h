/*
 * folder.h -- the rollup folder process (folder.c).
 */
#ifndef RD_FOLDER_H
#define RD_FOLDER_H

#include "conf.h"

/* The process's whole life; its exit status (RD_WORKER_EXIT_*). */
int rd_folder_main(const struct rd_conf *conf, int chan);

#endif
