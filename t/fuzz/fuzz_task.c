/*
 * fuzz_task.c -- libFuzzer target for the task parser and validator, and
 * for the result built from whatever it accepts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "report.h"
#include "task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct rd_conf_task limits = { 100, 65536, 16 };
    struct rd_phone_stats stats[100];
    struct rd_task        t;
    char                  err[512], *json;
    int                   rc;

    rc = rd_task_parse((const char *) data, size, &limits, &t, err, sizeof(err));
    if (rc == RD_TASK_OK) {
        rd_report_init(stats, &t);
        json = rd_report_complete_json(&t, stats, "2023-05-09 02:27:03.049772", 0.5);
        free(json);
    } else if (rc == RD_TASK_INVALID) {
        json = rd_report_error_json(&t, err, "2023-05-09 02:27:03.049772", 0.5);
        free(json);
    }
    rd_task_free(&t);
    return 0;
}
