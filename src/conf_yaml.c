/*
 * conf_yaml.c -- reporterd.yaml's YAML, walked against the option table.
 *
 * The file is loaded with libyaml's document API: exactly one document,
 * whose root is a mapping (or nothing at all).  Each node is visited at
 * most once (an alias would be a second visit), explicit tags are refused,
 * a sequence is never valid and a mapping only where the table has a
 * section, so no document can make the walk deeper or longer than the
 * schema.  Unknown and duplicate keys are errors; each scalar goes to
 * conf_value.c to be expanded and converted.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "conf_impl.h"

#define RD_CONF_MAX_FILE    (1024 * 1024)


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

    rc = rd_conf_set(ctx->conf, opt, value, msg, sizeof(msg));
    if (rc != 0) {
        rd_conf_error(ctx, &node->start_mark, opt->name, "%s", msg);

    } else {
        rd_conf_key(ctx, opt)->given = 1;

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
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
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
int
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
