/*
 * fuzz_conf.c -- libFuzzer target for the configuration loader: any file
 * either loads (and dumps) or is refused with one error line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char     path[64];
    struct rd_conf *conf;
    char            err[1024];
    FILE           *f;

    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/reporterd-fuzz-conf.%ld.yaml", (long) getpid());
        setenv("RD_FUZZ_VAR", "from-env", 1);
    }
    f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    conf = rd_conf_load(path, err, sizeof(err));
    if (conf != NULL) {
        FILE *null = fopen("/dev/null", "w");

        if (null != NULL) {
            rd_conf_dump(conf, null);
            fclose(null);
        }
        rd_conf_free(conf);
    } else if (strchr(err, '\n') != NULL) {
        abort();                    /* an error is one line */
    }
    return 0;
}
