/*
 * conf_parse.c -- rd_conf_load(): reporterd.yaml read into a struct
 * rd_conf against the option table (conf.c), then handed to conf_check.c.
 *
 * Fields start from their rows' defaults.  libyaml's document API loads
 * exactly one document whose root is a mapping (or nothing).  Each node is
 * visited at most once (an alias would be a second visit), tags are
 * refused, a sequence is valid only for a list key (rabbitmq.host, one
 * level of scalars) and a mapping only where the table has a section, so
 * no document can make the walk deeper or longer than the schema.
 * Unknown and duplicate keys are errors.  Each scalar has ${VAR} and
 * ${VAR:-default} expanded here, then is converted to its row's type with
 * its range checked, judged alone, by conf_value.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "conf_impl.h"

#define RD_CONF_MAX_FILE    (1024 * 1024)


/*
 * ${VAR} and ${VAR:-default} come from the environment (the default when
 * VAR is unset or empty), "$$" is a "$" and any other "$" is itself.  A
 * value that is exactly ${VAR:-} and comes out empty leaves its key unset
 * (rd_conf_scalar).
 */
static int
rd_conf_expand(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *node, char **out)
{
    const char  *s, *name, *end, *def, *val;
    char         var[256];
    size_t       size, nlen;
    FILE        *f;
    int          rc;

    *out = NULL;
    f = open_memstream(out, &size);
    if (f == NULL)
        return rd_conf_error(ctx, &node->start_mark, opt->name,
                             "out of memory");

    rc = 0;
    s = (const char *) node->data.scalar.value;

    while (*s != '\0' && rc == 0) {
        if (s[0] != '$' || (s[1] != '$' && s[1] != '{')) {
            fputc(*s++, f);
            continue;
        }
        if (s[1] == '$') {
            fputc('$', f);
            s += 2;
            continue;
        }

        name = s + 2;
        for (end = name; isalnum((unsigned char) *end) || *end == '_'; end++)
            /* void */ ;
        nlen = end - name;

        def = NULL;
        if (end[0] == ':' && end[1] == '-') {
            def = end + 2;
            end = strchr(def, '}');
        }

        if (nlen == 0 || nlen >= sizeof(var) || isdigit((unsigned char) *name)
            || end == NULL || *end != '}')
        {
            rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                               "malformed \"${\": use ${NAME}, "
                               "${NAME:-default} or $$ for a \"$\"");
            break;
        }

        memcpy(var, name, nlen);
        var[nlen] = '\0';
        val = getenv(var);

        if (def != NULL && (val == NULL || *val == '\0')) {
            fwrite(def, 1, end - def, f);
        } else if (val == NULL) {
            rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                               "environment variable %s is not set "
                               "(use ${%s:-default} for a default)", var, var);
        } else {
            fputs(val, f);
        }
        s = end + 1;
    }

    if (ferror(f) && rc == 0)
        rc = rd_conf_error(ctx, &node->start_mark, opt->name,
                           "out of memory");
    fclose(f);
    if (rc != 0 || *out == NULL) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}




/* Whether raw is exactly ${NAME:-}. */
static int
rd_conf_optional(const char *raw)
{
    size_t n;

    if (strncmp(raw, "${", 2) != 0 || !(isalpha((unsigned char) raw[2]) || raw[2] == '_'))
        return 0;
    for (n = 2; isalnum((unsigned char) raw[n]) || raw[n] == '_'; n++)
        ;
    return strcmp(raw + n, ":-}") == 0;
}


static int
rd_conf_is_null(yaml_node_t *node)
{
    static const char *const  nulls[] = { "", "~", "null", "Null", "NULL" };
    size_t                    i;

    if (node->type != YAML_SCALAR_NODE
        || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    {
        return 0;
    }
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp((char *) node->data.scalar.value, nulls[i]) == 0)
            return 1;
    }
    return 0;
}


static int
rd_conf_scalar(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *node)
{
    const char  *raw;
    char        *value, msg[256];
    size_t       start, end;
    int          rc;

    raw = (const char *) node->data.scalar.value;

    if (rd_conf_is_null(node)) {
        if (opt->def != NULL)
            return rd_conf_error(ctx, &node->start_mark, opt->name,
                                 "a value is required");
        return 0;
    }
    if (strlen(raw) != node->data.scalar.length)
        return rd_conf_error(ctx, &node->start_mark, opt->name,
                             "contains a NUL byte");

    if (rd_conf_expand(ctx, opt, node, &value) != 0)
        return -1;
    /* "${NAME:-}", an empty default written out, that comes out empty:
     * the key is left unset, as if the line were not there */
    if (value[0] == '\0' && rd_conf_optional(raw)) {
        free(value);
        return 0;
    }

    rc = rd_conf_set(ctx->conf, opt, value, msg, sizeof(msg));
    if (rc != 0) {
        rd_conf_error(ctx, &node->start_mark, opt->name, "%s", msg);

    } else {
        rd_conf_key(ctx, opt)->given = 1;
        rd_conf_key(ctx, opt)->from_env = strstr(raw, "${") != NULL;

        /* a password written in the file, not taken from the environment */
        if (strstr(raw, "${") == NULL
            && ((opt->flags & RD_CONF_SECRET)
                || ((opt->flags & RD_CONF_URI)
                    && rd_conf_uri_password(value, &start, &end))))
        {
            ctx->literal_secret = 1;
        }
    }

    free(value);
    return rc;
}


static const char *
rd_conf_node_type(yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? "a scalar"
           : node->type == YAML_SEQUENCE_NODE ? "a sequence"
           : node->type == YAML_MAPPING_NODE ? "a mapping" : "nothing";
}


/*
 * Mark a node as visited: a node reached twice is an alias.  Explicit tags
 * are refused too; libyaml gives untagged nodes the default tags.
 */
static int
rd_conf_visit(struct rd_conf_ctx *ctx, yaml_node_t *node,
    const yaml_mark_t *mark, const char *key)
{
    size_t       i;
    const char  *tag;

    i = node - ctx->doc->nodes.start;
    if (ctx->visited[i])
        return rd_conf_error(ctx, mark, key, "aliases are not allowed");
    ctx->visited[i] = 1;

    tag = node->type == YAML_MAPPING_NODE ? YAML_DEFAULT_MAPPING_TAG
          : node->type == YAML_SEQUENCE_NODE ? YAML_DEFAULT_SEQUENCE_TAG
          : YAML_DEFAULT_SCALAR_TAG;
    if (node->tag == NULL || strcmp((char *) node->tag, tag) != 0)
        return rd_conf_error(ctx, &node->start_mark, key,
                             "tags are not allowed (%s)",
                             node->tag ? (char *) node->tag : "?");
    return 0;
}


/*
 * A list key written as a sequence: each item a scalar, expanded as a
 * value alone would be, none empty; the items joined by ',' (the form a
 * single scalar, e.g. from the environment, takes) and set as one value.
 */
static int
rd_conf_sequence(struct rd_conf_ctx *ctx, const struct rd_conf_opt *opt,
    yaml_node_t *seq)
{
    yaml_node_item_t  *it;
    yaml_node_t       *item;
    char              *value, *joined = NULL, *p, msg[256];
    size_t             len = 0, n;
    int                rc, env = 0;

    if (seq->data.sequence.items.start == seq->data.sequence.items.top)
        return rd_conf_error(ctx, &seq->start_mark, opt->name,
                             "an empty sequence: give at least one value");
    for (it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top;
         it++)
    {
        item = yaml_document_get_node(ctx->doc, *it);
        if (rd_conf_visit(ctx, item, &item->start_mark, opt->name) != 0)
            goto fail;
        if (item->type != YAML_SCALAR_NODE || rd_conf_is_null(item)) {
            rd_conf_error(ctx, &item->start_mark, opt->name,
                          "each item of the sequence must be a value, not %s",
                          item->type == YAML_SCALAR_NODE ? "empty"
                                                         : rd_conf_node_type(item));
            goto fail;
        }
        if (strlen((char *) item->data.scalar.value) != item->data.scalar.length) {
            rd_conf_error(ctx, &item->start_mark, opt->name, "contains a NUL byte");
            goto fail;
        }
        if (rd_conf_expand(ctx, opt, item, &value) != 0)
            goto fail;
        env |= strstr((char *) item->data.scalar.value, "${") != NULL;
        n = strlen(value);
        if (n == 0) {
            free(value);
            rd_conf_error(ctx, &item->start_mark, opt->name, "an empty item");
            goto fail;
        }
        p = realloc(joined, len + n + 2);
        if (p == NULL) {
            free(value);
            rd_conf_error(ctx, NULL, opt->name, "out of memory");
            goto fail;
        }
        joined = p;
        if (len > 0)
            joined[len++] = ',';
        memcpy(joined + len, value, n + 1);
        len += n;
        free(value);
    }
    rc = rd_conf_set(ctx->conf, opt, joined, msg, sizeof(msg));
    if (rc != 0) {
        rd_conf_error(ctx, &seq->start_mark, opt->name, "%s", msg);
    } else {
        rd_conf_key(ctx, opt)->given = 1;
        rd_conf_key(ctx, opt)->from_env = env;
    }
    free(joined);
    return rc;

fail:
    free(joined);
    return -1;
}


static int
rd_conf_mapping(struct rd_conf_ctx *ctx, yaml_node_t *map,
    const char *section)
{
    yaml_node_pair_t          *pair;
    yaml_node_t               *key, *value;
    const struct rd_conf_opt  *opt;
    struct rd_conf_key        *k;
    const char                *kname;
    char                       name[128];

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top;
         pair++)
    {
        key = yaml_document_get_node(ctx->doc, pair->key);
        value = yaml_document_get_node(ctx->doc, pair->value);

        if (rd_conf_visit(ctx, key, &key->start_mark, section) != 0)
            return -1;
        if (key->type != YAML_SCALAR_NODE)
            return rd_conf_error(ctx, &key->start_mark, section,
                                 "a key must be a scalar, not %s",
                                 rd_conf_node_type(key));

        kname = (const char *) key->data.scalar.value;
        snprintf(name, sizeof(name), "%s%s%s", section ? section : "",
                 section ? "." : "", kname);

        opt = NULL;
        if (strlen(kname) == key->data.scalar.length
            && strchr(kname, '.') == NULL)
        {
            opt = rd_conf_find(name);
        }
        if (opt == NULL)
            return rd_conf_error(ctx, &key->start_mark, name, "unknown key");

        k = rd_conf_key(ctx, opt);
        if (k->seen)
            return rd_conf_error(ctx, &key->start_mark, name,
                                 "duplicate key (first at line %zu)",
                                 k->mark.line + 1);
        k->seen = 1;
        k->mark = key->start_mark;

        if (rd_conf_visit(ctx, value, &key->start_mark, name) != 0)
            return -1;

        if (opt->type == RD_CONF_SECTION) {
            if (value->type == YAML_MAPPING_NODE) {
                k->given = 1;
                if (rd_conf_mapping(ctx, value, opt->name) != 0)
                    return -1;

            } else if (!rd_conf_is_null(value)) {
                return rd_conf_error(ctx, &value->start_mark, name,
                                     "expected a mapping, not %s",
                                     rd_conf_node_type(value));
            }

        } else if (value->type == YAML_SEQUENCE_NODE
                   && (opt->flags & RD_CONF_LIST)) {
            if (rd_conf_sequence(ctx, opt, value) != 0)
                return -1;

        } else if (value->type != YAML_SCALAR_NODE) {
            return rd_conf_error(ctx, &value->start_mark, name,
                                 "expected a single value, not %s",
                                 rd_conf_node_type(value));

        } else if (rd_conf_scalar(ctx, opt, value) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
rd_conf_yaml_error(struct rd_conf_ctx *ctx, yaml_parser_t *parser,
    const char *buf)
{
    yaml_mark_t  mark;
    size_t       i;

    switch (parser->error) {

    case YAML_MEMORY_ERROR:
        return rd_conf_error(ctx, NULL, NULL, "out of memory");

    case YAML_READER_ERROR:
        /* the reader reports 0:0; find the line from the byte offset */
        memset(&mark, 0, sizeof(mark));
        for (i = 0; i < parser->problem_offset && buf[i] != '\0'; i++) {
            if (buf[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else {
                mark.column++;
            }
        }
        return rd_conf_error(ctx, &mark, NULL, "%s (byte %zu)",
                             parser->problem, parser->problem_offset);

    default:
        if (parser->context != NULL)
            return rd_conf_error(ctx, &parser->problem_mark, NULL,
                                 "%s (%s at line %zu)", parser->problem,
                                 parser->context,
                                 parser->context_mark.line + 1);
        return rd_conf_error(ctx, &parser->problem_mark, NULL, "%s",
                             parser->problem ? parser->problem : "error");
    }
}


/* Exactly one document, whose root is a mapping (or nothing at all). */
static int
rd_conf_parse(struct rd_conf_ctx *ctx)
{
    yaml_parser_t     parser;
    yaml_document_t   doc, extra;
    yaml_node_t      *root;
    struct stat       st;
    const char       *op;
    char             *buf;
    size_t            len;
    int               rc;

    buf = rd_conf_slurp(ctx->path, RD_CONF_MAX_FILE, &len, &st, &op);
    if (buf == NULL)
        return rd_conf_error(ctx, NULL, NULL, "%s: %s", op, strerror(errno));

    if (!yaml_parser_initialize(&parser)) {
        free(buf);
        return rd_conf_error(ctx, NULL, NULL, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (unsigned char *) buf, len);

    if (!yaml_parser_load(&parser, &doc)) {
        rc = rd_conf_yaml_error(ctx, &parser, buf);
        goto done;
    }

    rc = 0;
    root = yaml_document_get_root_node(&doc);

    if (root != NULL) {
        if (!yaml_parser_load(&parser, &extra)) {
            rc = rd_conf_yaml_error(ctx, &parser, buf);

        } else {
            if (yaml_document_get_root_node(&extra) != NULL)
                rc = rd_conf_error(ctx, &extra.start_mark, NULL,
                                   "only one YAML document is allowed");
            yaml_document_delete(&extra);
        }
    }

    if (rc == 0 && root != NULL && !rd_conf_is_null(root)) {
        ctx->doc = &doc;
        ctx->visited = calloc(doc.nodes.top - doc.nodes.start, 1);

        if (ctx->visited == NULL)
            rc = rd_conf_error(ctx, NULL, NULL, "out of memory");
        else if (rd_conf_visit(ctx, root, &root->start_mark, NULL) != 0)
            rc = -1;
        else if (root->type != YAML_MAPPING_NODE)
            rc = rd_conf_error(ctx, &root->start_mark, NULL,
                               "the top level must be a mapping of keys, "
                               "not %s", rd_conf_node_type(root));
        else
            rc = rd_conf_mapping(ctx, root, NULL);

        free(ctx->visited);
        ctx->visited = NULL;
        ctx->doc = NULL;
    }

    yaml_document_delete(&doc);

    if (rc == 0 && (st.st_mode & S_IROTH) && ctx->literal_secret)
        ctx->conf->world_readable_secret = 1;

done:
    yaml_parser_delete(&parser);
    free(buf);
    return rc;
}


/* Through rd_conf_set() like any value, so a bad row in the table fails
 * every load instead of passing unnoticed. */
static int
rd_conf_defaults(struct rd_conf_ctx *ctx)
{
    const struct rd_conf_opt  *opt;
    char                       msg[256];

    for (opt = rd_conf_opts; opt < rd_conf_opts + rd_conf_nopts; opt++) {
        if (opt->def != NULL
            && rd_conf_set(ctx->conf, opt, opt->def, msg, sizeof(msg)) != 0)
        {
            return rd_conf_error(ctx, NULL, opt->name,
                                 "built-in default: %s", msg);
        }
    }
    return 0;
}


struct rd_conf *
rd_conf_load(const char *path, char *err, size_t errlen)
{
    struct rd_conf_ctx  *ctx;
    struct rd_conf      *conf;

    ctx = calloc(1, sizeof(*ctx) + rd_conf_nopts * sizeof(ctx->keys[0]));
    conf = calloc(1, sizeof(*conf));
    if (ctx == NULL || conf == NULL || (conf->path = strdup(path)) == NULL) {
        free(ctx);
        free(conf);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }

    ctx->path = path;
    ctx->conf = conf;
    ctx->err = err;
    ctx->errlen = errlen;

    if (rd_conf_defaults(ctx) != 0
        || rd_conf_parse(ctx) != 0
        || rd_conf_finish(ctx) != 0)
    {
        rd_conf_free(conf);
        conf = NULL;
    }

    free(ctx);
    return conf;
}
