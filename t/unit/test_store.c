/*
 * test_store.c -- the MongoDB adapter's decisions that need no server:
 * which errors are transient, permanent or a query timeout, and which
 * failures to create a client are worth retrying (a mongodb+srv:// name
 * that does not resolve) and which are not (an invalid uri).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "store.h"
#include "tap.h"

static void
classify(uint32_t domain, uint32_t code, const char *message, int want,
         const char *name)
{
    is_int(rd_store_classify(domain, code, message), want, "%s (domain %u, code %u)",
           name, domain, code);
}

static void
test_classify(void)
{
    classify(MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
             "Failed to read 4 bytes: socket error or timeout", RD_STORE_TRANSIENT,
             "network error");
    classify(MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
             "No suitable servers found", RD_STORE_TRANSIENT, "no server");
    classify(MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY,
             "Corrupt or malicious reply received.", RD_STORE_TRANSIENT, "bad reply");

    /* credentials being rotated */
    classify(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
             "Authentication failed.", RD_STORE_TRANSIENT, "client-side authentication error");
    classify(MONGOC_ERROR_SERVER, 18, "Authentication failed.", RD_STORE_TRANSIENT,
             "server code 18 AuthenticationFailed");
    classify(MONGOC_ERROR_QUERY, 18, "Authentication failed.", RD_STORE_TRANSIENT,
             "code 18 in the query domain (error API 1)");
    classify(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_TOO_BIG,
             "Attempted to send an RPC larger than the max allowed message size",
             RD_STORE_PERMANENT, "other client errors stay permanent");

    /* the query's own time limit */
    classify(MONGOC_ERROR_SERVER, 50, "operation exceeded time limit", RD_STORE_TIMEOUT,
             "server code 50 MaxTimeMSExpired");
    classify(MONGOC_ERROR_QUERY, 50, "operation exceeded time limit", RD_STORE_TIMEOUT,
             "code 50 in the query domain");
    ok(RD_STORE_TIMEOUT != RD_STORE_TRANSIENT,
       "a timeout is not transient to callers that only test for transient");

    classify(MONGOC_ERROR_SERVER, 11600, "interrupted at shutdown", RD_STORE_TRANSIENT,
             "server shutting down");
    classify(MONGOC_ERROR_SERVER, 10058, "not master", RD_STORE_TRANSIENT,
             "\"not master\" by message");
    classify(MONGOC_ERROR_SERVER, 40324, "Unrecognized pipeline stage name: '$x'",
             RD_STORE_PERMANENT, "unknown stage");
    classify(MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG,
             "Invalid opts", RD_STORE_PERMANENT, "bad options");
    classify(MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, "invalid BSON",
             RD_STORE_PERMANENT, "bad BSON");
}

/* A configuration with this uri, through the real loader. */
static struct rd_conf *
conf_with_uri(const char *uri)
{
    static char     path[] = "/tmp/test_store_XXXXXX";
    struct rd_conf *conf;
    char            err[1024];
    FILE           *f;
    int             fd;

    fd = mkstemp(path);
    f = fd < 0 ? NULL : fdopen(fd, "w");
    if (f == NULL || fprintf(f, "mongodb:\n  uri: \"%s\"\n", uri) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    conf = rd_conf_load(path, err, sizeof(err));
    unlink(path);
    strcpy(path + strlen(path) - 6, "XXXXXX");
    if (conf == NULL) {
        printf("# %s\n", err);
        exit(2);
    }
    return conf;
}

static void
test_open(void)
{
    struct rd_conf       *conf;
    struct rd_conf_mongo  bad;
    struct rd_store      *st;
    char                  err[512];
    int                   klass;

    /* a name under .invalid never resolves (RFC 6761) */
    conf = conf_with_uri("mongodb+srv://cluster0.reporterd-test.invalid/calls");
    klass = 0;
    err[0] = '\0';
    st = rd_store_new(&conf->mongodb, "test_store", &klass, err, sizeof(err));
    ok(st == NULL, "an unresolvable mongodb+srv:// name: no client");
    is_int(klass, RD_STORE_TRANSIENT, "  a failed lookup is transient (%s)", err);
    rd_store_close(st);
    rd_conf_free(conf);

    conf = conf_with_uri("mongodb://127.0.0.1:1/?appname=test");
    klass = 0;
    st = rd_store_new(&conf->mongodb, "test_store", &klass, err, sizeof(err));
    ok(st != NULL, "a mongodb:// uri: a client, without connecting (%s)", st ? "" : err);
    rd_store_close(st);

    /* the loader rejects such a uri; the store still tells it apart */
    bad = conf->mongodb;
    bad.uri = "mongodb+srv://db.example:27017/";
    klass = 0;
    st = rd_store_new(&bad, "test_store", &klass, err, sizeof(err));
    ok(st == NULL, "an invalid uri: no client");
    is_int(klass, RD_STORE_PERMANENT, "  an invalid uri is permanent (%s)", err);
    rd_store_close(st);
    rd_conf_free(conf);
}

int
main(void)
{
    mongoc_init();
    test_classify();
    test_open();
    mongoc_cleanup();
    return done_testing();
}
