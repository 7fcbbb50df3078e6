/*
 * fuzz_task.c -- libFuzzer target for the task parser and validator, for
 * the result built from whatever it accepts, and for writing that task
 * back (rd_task_to_json must give a body that parses to the same task).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
        struct rd_task again;

        json = rd_task_to_json(&t);
        if (json == NULL
            || rd_task_parse(json, strlen(json), &limits, &again, err, sizeof(err)) != RD_TASK_OK
            || again.nphones != t.nphones || again.id_is_string != t.id_is_string
            || strcmp(again.id_text, t.id_text) != 0
            || memcmp(again.phones, t.phones, t.nphones * sizeof(*t.phones)) != 0)
            abort();
        rd_task_free(&again);
        free(json);
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
