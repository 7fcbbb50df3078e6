#!/usr/bin/env node
/*
 * #####################################################################
 * ##                                                                 ##
 * ##   TEST-ONLY MongoDB wire-protocol server.  NOT A DATABASE.      ##
 * ##                                                                 ##
 * ##   Never point anything but reporterd's test suite and demos at  ##
 * ##   it: no persistence, no auth, no TLS, no replication, no       ##
 * ##   transactions, no durability, no resource limits.  Everything ##
 * ##   lives in this process's memory and is gone when it exits.     ##
 * ##                                                                 ##
 * #####################################################################
 *
 * Why it exists: the MongoDB server cannot be installed on the project's
 * machines, so reporterd's integration tests talk to this stand-in.  Every
 * test that uses it must also pass unchanged against a real MongoDB
 * (REPORTERD_TEST_MONGODB_URI; see t/lib/harness.js), and
 * t/integration/mongod.test.js is this server's own self-test, written to
 * pass against both.
 *
 * Usage:
 *     node t/mongod/server.js --port 0 [--host 127.0.0.1] [--verbose]
 *
 *   Prints exactly one line, "listening HOST:PORT", on stdout once it
 *   accepts connections (--port 0 picks an ephemeral port).  Logs go to
 *   stderr.  Exits on SIGTERM / SIGINT.
 *
 *   Replica-set mode, for tests of read preferences, lag, write concern
 *   and step-downs: --replset NAME [--members N] [--lag-ms MS], one port
 *   per member, one data set per member; see t/mongod/replset.js, which
 *   documents it.  What follows describes the standalone, and each member
 *   but for what that file says (roles, write and read concerns).
 *
 * Wire protocol: OP_MSG (2013) with kind-0 bodies and kind-1 document
 * sequences, checksumPresent (the CRC is skipped, not verified) and
 * moreToCome (no reply is sent); legacy OP_QUERY (2004) for commands on
 * "<db>.$cmd" (the hello/isMaster handshake of mongo-c-driver 1.23 and of
 * older drivers), answered with OP_REPLY (1).  No compression is advertised
 * and OP_COMPRESSED is refused.
 *
 * Version: it presents itself as MongoDB 4.4, the release reporterd claims
 * to support: buildInfo "4.4.0-test", maxWireVersion 9.
 *
 * Commands, only those something sends: hello/isMaster/ismaster and
 * endSessions (the handshake and shutdown of both drivers); ping,
 * aggregate, getMore and killCursors (the daemon); insert, createIndexes
 * and drop (reporterctl); find, delete, listIndexes and dropDatabase (the
 * test suites through the Node driver); buildInfo and configureFailPoint
 * (the self-test and the failure tests); update (multi, upsert) and
 * findAndModify (basic), for documents kept up to date by upserts, with
 * mongod's own $inc (section "$inc": an int64 past 2^63 fails the write
 * with BadValue, an int32 past 2^31 becomes an int64); count, explain and
 * serverStatus (index use, documents examined).  Every command takes
 * writeConcern and readConcern as a standalone mongod does (w: 1 or
 * "majority", j, wtimeout; levels "local", "majority", "available"), and
 * refuses w > 1 as it does (section "writeConcern and readConcern").
 * collMod, only to change a TTL index's expireAfterSeconds (the journal).
 * Anything else gets {ok: 0, code: 59, codeName: "CommandNotFound"} like
 * MongoDB.
 *
 * Query and aggregation semantics come from the "mingo" package: whatever
 * operators mingo implements work, with mingo's semantics, except where
 * reporterd depends on MongoDB's own (section "MongoDB's comparison order
 * and arithmetic"): values of different types compare in MongoDB's BSON
 * order (MinKey < missing < null < numbers < string < object < array <
 * binData < ObjectId < bool < date < timestamp < regex < MaxKey) in the
 * expression operators $eq/$ne/$lt/$lte/$gt/$gte/$cmp/$min/$max, the
 * $min/$max accumulators, $sort and $group, so {$lt: [null, 10]} is
 * true; query operators $eq/$ne/$lt/$lte/$gt/$gte/$in/$nin compare only
 * within a type ({x: {$lt: 10}} matches neither null nor a missing x,
 * {x: {$lte: null}} matches both); numbers of all types compare by exact
 * value across int32, int64, double and Decimal128 (Long(2^53 + 1) is not
 * the double 2^53, Long(2^53) is; Decimal128("8.00") is 8), also as $group
 * keys (the group's _id is the first value seen, as in mongod), _id and
 * index keys; $type names types as MongoDB does ("decimal", and int /
 * long / double by the value's own type), in expressions and queries;
 * $sum over Decimal128 values is a Decimal128; $add/$subtract/$multiply/$divide give
 * null for null or missing operands and MongoDB's errors (16554, 16555,
 * 16556, 16608, 16609, 16613) for other types.  An unknown pipeline stage
 * gets MongoDB's code 40324 "Unrecognized pipeline stage name: '$x'".
 *
 * maxTimeMS (find, aggregate) is checked while documents are processed,
 * every few hundred documents or comparisons: an operation that runs out
 * of time stops there with {code: 50, codeName: "MaxTimeMSExpired",
 * errmsg: "operation exceeded time limit"}.
 *
 * Injected errors: MongoDB's test command configureFailPoint with the
 * fail points failCommand, maxTimeAlwaysTimeOut and maxTimeNeverTimeOut
 * (section "fail points"), run against the admin database as on a mongod
 * started with enableTestCommands=1.
 *
 * Numeric types.  JavaScript has one number type; MongoDB has int32, int64,
 * double and Decimal128, and drivers care.  This server keeps the
 * distinction (Decimal128 values and int64 beyond +-2^53 are kept as bson
 * objects, which carry their type):
 *   - stored documents: each document records, per field path, which
 *     numeric BSON type its values have (section "per-document numeric
 *     types"), from the insert and then from every update that writes the
 *     path; find returns each value with its own type, so a collection
 *     may hold 8 as int32, int64 and double side by side.  An array whose
 *     elements have different numeric types falls back to "by value"
 *     (below).
 *   - aggregation: $group, $project, $addFields and $set are wrapped so
 *     that each output field carries the type MongoDB would give it:
 *     $sum follows MongoDB's widening (int -> long -> double, per group,
 *     over the values actually summed, so a $sum over a $cond that picks
 *     a double in some documents and the int 0 in others is double exactly
 *     when a double was added), $avg and $divide give double,
 *     $subtract of two dates gives long, $multiply/$add widen, $round,
 *     $abs, $ceil, $floor, $trunc keep their argument's type, $cond and
 *     $ifNull take the type of the branch chosen for that document,
 *     $min/$max/$first/$last keep the chosen value's type, $count and
 *     {$sum: 1} give int (long on overflow).  Literal numbers in the
 *     pipeline keep the type the client encoded them with.
 *   - "by value": an integral number fitting int32 is int32, a larger
 *     integral one int64, anything else double.  Used for operators the
 *     type rules above do not cover.
 *
 * Indexes.  Every index with an ordinary key pattern (1 / -1 fields) is a
 * sorted list of keys, compound keys included (section "index keys"): the
 * _id index and any {a: 1, b: 1, ...}.  A find, count, update, delete,
 * findAndModify or the first $match of an aggregate is planned as mongod
 * does it for the operators reporterd sends (section "query planning"):
 * equality ($eq, scalar, $in) on a prefix of an index's fields, then
 * intervals on the next field ($lt/$lte/$gt/$gte within the operand's
 * type, $not/$ne/$nin as complements, so {rb: {$not: {$lte: 5}}} scans
 * [MinKey, -inf.0) and (5, MaxKey]); a top-level $or uses one index scan
 * per branch; a sort is taken from index order when the index gives it,
 * and then a limit stops the scan.  hint is honoured.  Candidates are
 * always tested against the whole filter.  explain (find, count,
 * aggregate; verbosity queryPlanner / executionStats / allPlansExecution)
 * answers the winning plan and executionStats.totalKeysExamined /
 * totalDocsExamined / nReturned where mongod 4.4 puts them (an aggregate's
 * under stages[0].$cursor, a pipeline that is only a $match at the top);
 * serverStatus answers the running totals in
 * metrics.queryExecutor.scanned (keys) and .scannedObjects (documents).
 * Unique indexes (any number of fields) are enforced; an upsert whose
 * insert would duplicate an _id fails with E11000.  Arrays in an indexed
 * field (multikey), embedded documents and a few rare types are not
 * encoded: such documents are examined by every scan of that index.
 * A TTL index (expireAfterSeconds) is recorded and listed, but its
 * documents never expire.
 *
 * Limits: one thread, one event loop.  Every command runs to completion
 * before the next starts, so there are no yields (MongoDB's cursors see
 * concurrent writes; this server's never interleave with them: a cursor
 * holds the result computed when it was opened) and one slow command
 * stalls every client.  Inserts and index maintenance cost O(log n) per
 * key; a delete rewrites the collection's document list (O(n) per
 * statement).  Sized for tests: millions of small documents in memory.
 *
 * Environment:
 *   MONGOD_TEST_VERBOSE=1 (or --verbose)  log every command to stderr.
 *
 * Known deviations from MongoDB (deliberate or "good enough for tests"):
 *   - no auth, TLS, compression, sessions (lsid is accepted and ignored),
 *     transactions, retryable-write bookkeeping, collations, capped
 *     collections, views, change streams, $out/$merge, text/geo/hashed
 *     indexes, partial and sparse indexes;
 *   - writeConcern and readConcern are accepted on every command (mongod
 *     refuses some on some commands) and every read concern level is
 *     taken as "local", which on a standalone is what each of the three
 *     levels reporterd may send returns; only w > 1 and tag sets fail;
 *   - the planner scores indexes by the fields they bound instead of
 *     racing candidate plans; explain has no rejectedPlans and only
 *     top-level counters are exact (keysExamined does not count the one
 *     key mongod reads past the end of a range); explain of update,
 *     delete and findAndModify is not supported;
 *   - semantics of queries and expressions not listed above are mingo's;
 *     query paths through nested arrays are resolved as mingo does;
 *   - numeric types inside an array are tracked per document for the
 *     array as a whole, and types of operators not listed above are
 *     chosen by value; a find projection that computes fields types them
 *     by the collection's paths;
 *   - Decimal128 and int64 values outside +-2^53 are stored, returned and
 *     compared exactly, and $inc on them is exact, but other arithmetic on
 *     them is done in doubles ($avg of decimals is a double; a $sum that
 *     mixes decimals with doubles is exact in value, but its exponent,
 *     i.e. its trailing zeros, may differ from mongod's);
 *   - $inc through array elements (a.0.b, a.$, a.$[x]) and the other
 *     update operators are mingo's; their results are typed by value;
 *   - cursors never time out; getMore ignores maxTimeMS; maxTimeMS does
 *     not cover the time spent serializing the reply;
 *   - failCommand: no failAllCommands, threadName, writeConcernError or
 *     errorExtraInfo; no error labels are added unless errorLabels asks;
 *   - drop of a missing collection fails with NamespaceNotFound (26) as in
 *     MongoDB 4.4;
 *   - document and message size limits are not enforced on input.
 */
'use strict';

const net = require('node:net');
const BSON = require('bson');
const { Long, Double, Int32, ObjectId } = BSON;
const { Context, evalExpr } = require('mingo/core');
const { Aggregator } = require('mingo/aggregator');
const { Query } = require('mingo/query');
const { Lazy } = require('mingo/lazy');
const mingoUtil = require('mingo/util');
const mingoUpdater = require('mingo/updater');
const accumulatorOps = require('mingo/operators/accumulator');
const expressionOps = require('mingo/operators/expression');
const pipelineOps = require('mingo/operators/pipeline');
const projectionOps = require('mingo/operators/projection');
const queryOps = require('mingo/operators/query');
const windowOps = require('mingo/operators/window');

/* ------------------------------------------------------------------ */
/* options                                                            */
/* ------------------------------------------------------------------ */

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 0, verbose: !!process.env.MONGOD_TEST_VERBOSE };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') o.port = Number(argv[++i]);
        else if (a.startsWith('--port=')) o.port = Number(a.slice(7));
        else if (a === '--host' || a === '--bind_ip') o.host = argv[++i];
        else if (a.startsWith('--host=')) o.host = a.slice(7);
        else if (a === '--verbose' || a === '-v') o.verbose = true;
        /* replica-set mode: the options are t/mongod/replset.js's */
        else if (a === '--replset' || a === '--members' || a === '--lag-ms') (o.replset = o.replset || []).push(a, argv[++i]);
        else if (a === '--help' || a === '-h') {
            process.stdout.write('usage: node server.js --port PORT [--host 127.0.0.1] [--verbose]\n' +
                'TEST-ONLY MongoDB wire-protocol server (see the header of this file).\n');
            process.exit(0);
        } else {
            process.stderr.write(`mongod-test: unknown argument: ${a}\n`);
            process.exit(2);
        }
    }
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
        process.stderr.write('mongod-test: --port must be 0..65535\n');
        process.exit(2);
    }
    return o;
}

const OPTS = require.main === module ? parseArgs(process.argv.slice(2)) : { host: '127.0.0.1', port: 0, verbose: false };

function log(msg) {
    process.stderr.write(`mongod-test[${process.pid}] ${new Date().toISOString()} ${msg}\n`);
}

/* ------------------------------------------------------------------ */
/* constants                                                          */
/* ------------------------------------------------------------------ */

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const OP_MSG = 2013;
const MAX_BSON = 16777216;
const MAX_MESSAGE = 48000000;
const MAX_WRITE_BATCH = 100000;
const BATCH_BYTES = MAX_BSON - 64 * 1024;   /* room for the cursor envelope */
const DEFAULT_BATCH = 101;
/* The MongoDB release reporterd claims to support (README): 4.4. */
const SERVER_VERSION = '4.4.0-test';
const SERVER_VERSION_ARRAY = [4, 4, 0, 0];
const MAX_WIRE_VERSION = 9;

const TYPES = Symbol('bsonTypes');      /* per-document: dotted path -> 'int'|'long'|'double'|'value'|... */
const DERIVED = Symbol('derived');      /* on a TYPES object: collection schema does not apply */
const LIT = Symbol('literalTypes');     /* on command containers: key -> numeric BSON type */
const NUMERIC = new Set(['int', 'long', 'double']);

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const isInt32 = (v) => Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;

class CmdError extends Error {
    constructor(code, codeName, errmsg) {
        super(errmsg);
        this.code = code;
        this.codeName = codeName;
    }
}
const badValue = (msg) => new CmdError(2, 'BadValue', msg);
const typeMismatch = (msg) => new CmdError(14, 'TypeMismatch', msg);

const isPlainObject = (v) => v !== null && typeof v === 'object' &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/* ------------------------------------------------------------------ */
/* BSON <-> plain JS                                                  */
/* ------------------------------------------------------------------ */

/* Numeric BSON wrapper -> [plain value, type] or null if not numeric. */
function unwrapNumber(v) {
    switch (v._bsontype) {
    case 'Int32': return [v.value, 'int'];
    case 'Double': return [v.value, 'double'];
    case 'Long': {
        const n = v.toNumber();
        return [Number.isSafeInteger(n) ? n : v, 'long'];
    }
    default: return null;
    }
}

/* Command bodies and statements: plain values, with the BSON type of every
 * numeric literal recorded on its container under the LIT symbol. */
function plainCmd(v) {
    if (v === null || typeof v !== 'object') return v;
    if (v._bsontype) {
        const u = unwrapNumber(v);
        return u ? u[0] : v;
    }
    if (Array.isArray(v) || isPlainObject(v)) {
        const out = Array.isArray(v) ? new Array(v.length) : {};
        let lit = null;
        for (const k of Object.keys(v)) {
            const e = v[k];
            if (e !== null && typeof e === 'object' && e._bsontype) {
                const u = unwrapNumber(e);
                if (u) {
                    out[k] = u[0];
                    (lit || (lit = {}))[k] = u[1];
                    continue;
                }
            }
            out[k] = plainCmd(e);
        }
        if (lit) Object.defineProperty(out, LIT, { value: lit, enumerable: false });
        return out;
    }
    return v;
}

/* Stored documents: plain values, numeric types recorded in the collection's
 * schema (path -> type or 'mixed'). */
function noteType(schema, path, t) {
    const cur = schema.get(path);
    if (cur === undefined) schema.set(path, t);
    else if (cur !== t && cur !== 'mixed') schema.set(path, 'mixed');
}

function plainDoc(v, schema, path) {
    if (Array.isArray(v)) {
        const out = new Array(v.length);
        const p = path + '.$';
        for (let i = 0; i < v.length; i++) out[i] = plainValue(v[i], schema, p);
        return out;
    }
    const out = {};
    for (const k of Object.keys(v)) out[k] = plainValue(v[k], schema, path ? path + '.' + k : k);
    return out;
}

function plainValue(e, schema, path) {
    if (e === null || typeof e !== 'object') return e;
    if (e._bsontype) {
        const u = unwrapNumber(e);
        if (!u) return e;
        noteType(schema, path, u[1]);
        return u[0];
    }
    if (Array.isArray(e) || isPlainObject(e)) return plainDoc(e, schema, path);
    return e;
}

function wrapNumber(v, t) {
    if (t === 'double' || !Number.isFinite(v)) return new Double(v);
    if (Number.isInteger(v) && v >= -9223372036854775808 && v < 9223372036854775808) {
        if (t === 'long') return Long.fromNumber(v);
        if (v >= INT32_MIN && v <= INT32_MAX) return new Int32(v);
        return Long.fromNumber(v);
    }
    return new Double(v);
}

/* Plain document -> object ready for BSON.serialize with the right numeric
 * types.  types: per-document TYPES map (or undefined); schema: the
 * collection's path -> type map (or null). */
function wrapDoc(doc, schema) {
    const types = doc[TYPES];
    const sch = types && types[DERIVED] ? null : schema;
    return wrapValue(doc, '', types, sch);
}

function typeAt(path, types, schema) {
    if (types && Object.prototype.hasOwnProperty.call(types, path)) return types[path];
    if (schema) return schema.get(path);
    return undefined;
}

function wrapValue(v, path, types, schema) {
    if (typeof v === 'number') return wrapNumber(v, typeAt(path, types, schema));
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
        const p = path + '.$';
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = wrapValue(v[i], p, types, schema);
        return out;
    }
    if (isPlainObject(v)) {
        const out = {};
        for (const k of Object.keys(v)) {
            const e = v[k];
            if (e === undefined) continue;
            out[k] = wrapValue(e, path ? path + '.' + k : k, types, schema);
        }
        return out;
    }
    return v;
}

const SER_OPTS = { ignoreUndefined: true };
const serialize = (obj) => BSON.serialize(obj, SER_OPTS);
const DESER_RAW = { promoteValues: false };

/* ------------------------------------------------------------------ */
/* type inference for aggregation expressions                         */
/* ------------------------------------------------------------------ */

function valueType(v) {
    if (typeof v === 'number') {
        if (!Number.isInteger(v) || Math.abs(v) >= 9223372036854775808) return 'double';
        return isInt32(v) ? 'int' : 'long';
    }
    if (v instanceof Date) return 'date';
    if (v && typeof v === 'object' && v._bsontype === 'Long') return 'long';
    return undefined;
}

function widen(a, b) {
    if (!NUMERIC.has(a) || !NUMERIC.has(b)) return undefined;
    if (a === 'double' || b === 'double') return 'double';
    if (a === 'long' || b === 'long') return 'long';
    return 'int';
}

function fieldType(doc, path, tctx) {
    const types = doc && typeof doc === 'object' ? doc[TYPES] : undefined;
    if (types && Object.prototype.hasOwnProperty.call(types, path)) {
        const t = types[path];
        if (t !== 'value') return t;
    } else if (!(types && types[DERIVED]) && tctx.schema) {
        const t = tctx.schema.get(path);
        if (t && t !== 'mixed') return t;
    }
    return valueType(mingoUtil.resolve(doc, path));
}

function mongoTruthy(v) {
    return !(v === false || v === null || v === undefined || v === 0);
}

const INT_OPS = new Set(['$size', '$strLenCP', '$strLenBytes', '$indexOfArray', '$indexOfCP',
    '$indexOfBytes', '$week', '$year', '$month', '$dayOfMonth', '$hour', '$minute', '$second',
    '$millisecond', '$dayOfWeek', '$dayOfYear', '$isoWeek', '$isoWeekYear', '$isoDayOfWeek',
    '$cmp', '$strcasecmp', '$toInt']);
const DOUBLE_OPS = new Set(['$divide', '$avg', '$sqrt', '$exp', '$ln', '$log', '$log10',
    '$toDouble', '$stdDevPop', '$stdDevSamp', '$sin', '$cos', '$tan', '$asin', '$acos', '$atan',
    '$atan2', '$degreesToRadians', '$radiansToDegrees']);
const SAME_AS_ARG_OPS = new Set(['$abs', '$ceil', '$floor', '$trunc', '$round']);

/* BSON type of container[key] evaluated against doc, or undefined when the
 * rules do not say (the value then decides). */
function exprType(container, key, doc, opts, tctx) {
    const e = container[key];
    if (typeof e === 'number') return (container[LIT] && container[LIT][key]) || valueType(e);
    if (typeof e === 'string') {
        if (e.startsWith('$$')) {
            const dot = e.indexOf('.');
            const v = dot < 0 ? e : e.slice(0, dot);
            if ((v === '$$ROOT' || v === '$$CURRENT') && dot > 0) return fieldType(doc, e.slice(dot + 1), tctx);
            return undefined;
        }
        if (e[0] === '$') return fieldType(doc, e.slice(1), tctx);
        return 'string';
    }
    if (e instanceof Date) return 'date';
    if (!isPlainObject(e)) return undefined;
    const keys = Object.keys(e);
    if (keys.length !== 1 || keys[0][0] !== '$') return undefined;
    const op = keys[0];
    const a = e[op];
    if (DOUBLE_OPS.has(op)) return 'double';
    if (INT_OPS.has(op)) return 'int';
    if (op === '$toLong') return 'long';
    if (op === '$literal') return exprType(e, op, doc, opts, tctx);
    if (op === '$add' || op === '$multiply' || op === '$mod' || (op === '$sum' && Array.isArray(a) && a.length !== 1)) {
        const args = Array.isArray(a) ? a : [a];
        let t = 'int';
        for (let i = 0; i < args.length; i++) {
            const ti = exprType(args, i, doc, opts, tctx);
            if (ti === 'date' && op === '$add') return 'date';
            t = widen(t, ti);
            if (!t) return undefined;
        }
        return t;
    }
    if (op === '$subtract') {
        if (!Array.isArray(a) || a.length !== 2) return undefined;
        const t0 = exprType(a, 0, doc, opts, tctx);
        const t1 = exprType(a, 1, doc, opts, tctx);
        if (t0 === 'date' && t1 === 'date') return 'long';
        if (t0 === 'date') return 'date';
        return widen(t0, t1);
    }
    if (SAME_AS_ARG_OPS.has(op)) {
        if (Array.isArray(a)) return a.length ? exprType(a, 0, doc, opts, tctx) : undefined;
        return exprType(e, op, doc, opts, tctx);
    }
    if (op === '$cond') {
        if (Array.isArray(a) && a.length === 3) {
            const c = evalExpr(doc, a[0], opts);
            return exprType(a, mongoTruthy(c) ? 1 : 2, doc, opts, tctx);
        }
        if (isPlainObject(a)) {
            const c = evalExpr(doc, a.if, opts);
            return exprType(a, mongoTruthy(c) ? 'then' : 'else', doc, opts, tctx);
        }
        return undefined;
    }
    if (op === '$ifNull' && Array.isArray(a) && a.length >= 2) {
        for (let i = 0; i < a.length - 1; i++) {
            const v = evalExpr(doc, a[i], opts);
            if (v !== null && v !== undefined) return exprType(a, i, doc, opts, tctx);
        }
        return exprType(a, a.length - 1, doc, opts, tctx);
    }
    return undefined;
}

/* ------------------------------------------------------------------ */
/* MongoDB's comparison order and arithmetic                          */
/* ------------------------------------------------------------------ */

/*
 * mingo compares values of different types its own way ({$lt: [null, 10]}
 * is false, {$lte: null} misses absent fields, a Long never equals a
 * double).  MongoDB compares across types by a fixed type order, and
 * numbers of every type by exact value.  Everything below follows
 * mongod 4.4 (canonicalizeBSONType, BSONElement/Value::compare,
 * ComparisonMatchExpression) and replaces mingo's operators where
 * reporterd depends on them: query $eq/$ne/$lt/$lte/$gt/$gte/$in/$nin,
 * expression $eq/$ne/$lt/$lte/$gt/$gte/$cmp, $min/$max (accumulators and
 * expressions), $sort, $group keys, and $add/$subtract/$multiply/
 * $divide with null, missing and wrongly typed operands.
 *
 * Values here are what the stored documents hold: JS numbers (int32,
 * int64 within +-2^53, double), Long objects (int64 outside that range),
 * Decimal128, strings, booleans, null, undefined (= missing), Date,
 * RegExp, arrays, plain objects and the other bson classes.
 */

/* Canonical type rank (mongod's canonicalizeBSONType): MinKey < missing /
 * undefined < null < numbers < string < object < array < binData <
 * ObjectId < bool < date < timestamp < regex < DBRef < code < MaxKey. */
function bsonRank(v) {
    if (v === undefined) return 0;
    if (v === null) return 5;
    switch (typeof v) {
    case 'number': case 'bigint': return 10;
    case 'string': return 15;
    case 'boolean': return 40;
    default: break;
    }
    if (Array.isArray(v)) return 25;
    if (v instanceof Date) return 45;
    if (v instanceof RegExp) return 50;
    switch (v._bsontype) {
    case undefined: break;
    case 'Long': case 'Int32': case 'Double': case 'Decimal128': return 10;
    case 'BSONSymbol': return 15;
    case 'Binary': return 30;
    case 'ObjectId': case 'ObjectID': return 35;
    case 'Timestamp': return 47;
    case 'BSONRegExp': return 50;
    case 'DBRef': return 55;
    case 'Code': return v.scope ? 65 : 60;
    case 'MinKey': return -1;
    case 'MaxKey': return 127;
    default: break;
    }
    if (v instanceof Uint8Array) return 30;
    return 20;
}

const cmp3 = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/* Exact value of a number of any BSON type: {nan}, {inf: +-1} or the
 * rational n / d (d > 0). */
const DEC_RE = /^(-)?(\d+)(?:\.(\d+))?(?:E([+-]?\d+))?$/i;
function exactNum(v) {
    if (typeof v === 'number') {
        if (Number.isNaN(v)) return { nan: true };
        if (!Number.isFinite(v)) return { inf: v > 0 ? 1 : -1 };
        let x = v;
        let d = 1n;
        while (!Number.isInteger(x)) { x *= 2; d *= 2n; }     /* exact: doubles are m * 2^e */
        return { n: BigInt(x), d };
    }
    if (typeof v === 'bigint') return { n: v, d: 1n };
    switch (v._bsontype) {
    case 'Long': return { n: BigInt(v.toString()), d: 1n };
    case 'Int32': case 'Double': return exactNum(v.value);
    case 'Decimal128': {
        const s = v.toString();
        if (/nan/i.test(s)) return { nan: true };
        if (/inf/i.test(s)) return { inf: s[0] === '-' ? -1 : 1 };
        const m = DEC_RE.exec(s);
        if (!m) return { nan: true };
        const frac = m[3] || '';
        let n = BigInt(m[2] + frac);
        if (m[1]) n = -n;
        if (n === 0n) return { n, d: 1n };
        let e = (m[4] ? Number(m[4]) : 0) - frac.length;
        while (e < 0 && n % 10n === 0n) { n /= 10n; e++; }      /* 8.00 is 8 / 1 */
        return e >= 0 ? { n: n * 10n ** BigInt(e), d: 1n } : { n, d: 10n ** BigInt(-e) };
    }
    default: return { nan: true };
    }
}

function isNaNum(v) {
    if (typeof v === 'number') return Number.isNaN(v);
    return v !== null && typeof v === 'object' && v._bsontype === 'Decimal128' && /nan/i.test(v.toString());
}

/* Numbers of any types, by exact value; NaN is below every number and
 * equal to NaN (mongod's compareDoubles / compareElementValues). */
function cmpNum(a, b) {
    if (typeof a === 'number' && typeof b === 'number') {
        if (a < b) return -1;
        if (a > b) return 1;
        if (a === b) return 0;
        if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
        return 1;
    }
    const x = exactNum(a);
    const y = exactNum(b);
    if (x.nan || y.nan) return x.nan ? (y.nan ? 0 : -1) : 1;
    if (x.inf || y.inf) return cmp3(x.inf || 0, y.inf || 0) || 0;
    return cmp3(x.n * y.d, y.n * x.d);
}

/* Strings by code point (UTF-8 byte order), not by UTF-16 unit. */
function cmpStr(a, b) {
    if (a === b) return 0;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
        let x = a.charCodeAt(i);
        let y = b.charCodeAt(i);
        if (x !== y) {
            if (x >= 0xd800 && y >= 0xd800) {
                x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
                y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
            }
            return x < y ? -1 : 1;
        }
    }
    return cmp3(a.length, b.length);
}

function cmpBytes(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return cmp3(a.length, b.length);
}

const definedKeys = (o) => Object.keys(o).filter((k) => o[k] !== undefined);

/* Documents and arrays element by element: type rank, then field name,
 * then value; the shorter one first when one is a prefix of the other. */
function cmpFields(a, ka, b, kb, names) {
    const n = Math.min(ka.length, kb.length);
    for (let i = 0; i < n; i++) {
        const x = a[ka[i]];
        const y = b[kb[i]];
        let c = cmp3(bsonRank(x === undefined ? null : x), bsonRank(y === undefined ? null : y));
        if (c) return c;
        if (names && (c = cmpStr(ka[i], kb[i]))) return c;
        if ((c = bsonCompare(x === undefined ? null : x, y === undefined ? null : y))) return c;
    }
    return cmp3(ka.length, kb.length);
}

/* MongoDB's total order of values (Value::compare): -1, 0 or 1.  A
 * missing value (undefined) sorts below null, as in aggregation
 * expressions. */
function bsonCompare(a, b) {
    if (typeof a === 'number' && typeof b === 'number') return cmpNum(a, b);
    const ra = bsonRank(a);
    const rb = bsonRank(b);
    if (ra !== rb) return ra < rb ? -1 : 1;
    switch (ra) {
    case 0: case 5: case -1: case 127: return 0;
    case 10: return cmpNum(a, b);
    case 15: return cmpStr(String(a.valueOf()), String(b.valueOf()));
    case 20: {
        const ka = definedKeys(a);
        const kb = definedKeys(b);
        return cmpFields(a, ka, b, kb, true);
    }
    case 25: return cmpFields(a, Object.keys(a), b, Object.keys(b), false);
    case 30: {
        const ba = a._bsontype ? a.buffer.subarray(0, a.position) : a;
        const bb = b._bsontype ? b.buffer.subarray(0, b.position) : b;
        return cmp3(ba.length, bb.length) || cmp3(a.sub_type || 0, b.sub_type || 0) || cmpBytes(ba, bb);
    }
    case 35: return cmp3(a.toHexString(), b.toHexString());
    case 40: return cmp3(a, b);
    case 45: return cmp3(a.getTime(), b.getTime());
    case 47: return cmp3(a.t, b.t) || cmp3(a.i, b.i);
    case 50: {
        const pa = a instanceof RegExp ? [a.source, a.flags] : [a.pattern, a.options];
        const pb = b instanceof RegExp ? [b.source, b.flags] : [b.pattern, b.options];
        return cmpStr(pa[0], pb[0]) || cmpStr(pa[1], pb[1]);
    }
    case 55: return cmpStr(String(a.collection), String(b.collection)) || bsonCompare(a.oid, b.oid);
    default: return cmpStr(String(a.code), String(b.code));
    }
}

const nullish = (v) => v === null || v === undefined;

/* Map key under which values MongoDB calls equal meet: numbers of every
 * type by exact value (Long(2^53+1) and the double 2^53 differ, Long(2^53)
 * and 2^53 meet), null and missing together.  undefined for values that
 * have no key (documents, arrays, binData...): compare those. */
function eqKey(v) {
    if (v === undefined || v === null) return null;
    switch (typeof v) {
    case 'number': return Number.isInteger(v) && !Number.isSafeInteger(v) ? 'l' + BigInt(v) : v;
    case 'string': return 's' + v;
    case 'boolean': return v;
    default: break;
    }
    if (v instanceof Date) return 'D' + v.getTime();
    switch (v._bsontype) {
    case 'Long': {
        const n = v.toNumber();
        return Number.isSafeInteger(n) ? n : 'l' + v.toString();
    }
    case 'Int32': case 'Double': return eqKey(v.value);
    case 'ObjectId': case 'ObjectID': return 'o' + v.toHexString();
    case 'Decimal128': {
        const x = exactNum(v);
        if (x.nan) return NaN;
        if (x.inf) return x.inf * Infinity;
        if (x.d === 1n) {       /* an integer: the key of the int64 / double of that value */
            const k = Number(x.n);
            return Number.isSafeInteger(k) ? eqKey(k) : 'l' + x.n;
        }
        const f = Number(v.toString());
        return cmpNum(v, f) === 0 ? eqKey(f) : `d${x.n}/${x.d}`;      /* exactNum's n / d is reduced */
    }
    default: return undefined;
    }
}

/* A key for any value ($group _id): eqKey, or a canonical string. */
function groupKey(v) {
    const k = eqKey(v);
    return k !== undefined ? k : 'J' + canonString(v);
}

function canonString(v) {
    const k = eqKey(v);
    if (k !== undefined) return typeof k === 'number' ? 'n' + (Object.is(k, -0) ? 0 : k) : String(k);
    if (Array.isArray(v)) return '[' + v.map((e) => canonString(e === undefined ? null : e)).join(',') + ']';
    if (isPlainObject(v)) return '{' + definedKeys(v).map((f) => JSON.stringify(f) + ':' + canonString(v[f])).join(',') + '}';
    return 'x' + bsonRank(v) + JSON.stringify(BSON.EJSON.serialize({ v }, { relaxed: false }));
}

const bsonEquals = (a, b) => bsonCompare(a, b) === 0;

/* ---- typed numbers: mongod's SafeNum and Decimal128 arithmetic ---- */

/*
 * $inc and $sum need each operand's BSON type, not only its value: mongod
 * adds two numbers as SafeNum does (src/mongo/util/safe_num.cpp, 4.4 to
 * 7.0): int32 + int32 is int32, or int64 when the sum leaves int32;
 * int32/int64 + int64 is int64, or invalid when the sum leaves int64 (the
 * caller fails); a Decimal128 operand makes the sum a Decimal128 (a double
 * taken to 15 significant digits first, Decimal128::kRoundTo15Digits);
 * otherwise a double operand makes it a double.  A typed number is
 * {t: 'int' | 'long' | 'double' | 'decimal', v}, v a JS number (int,
 * double), a BigInt (long) or decimal parts {n: coefficient, e: exponent}
 * (or {nan} / {inf: +-1}).
 */
const INT64_MIN_BIG = -(2n ** 63n);
const INT64_MAX_BIG = 2n ** 63n - 1n;
const DEC_DIGITS = 34;

function decParts(d) {
    const s = d.toString();
    if (/nan/i.test(s)) return { nan: true };
    if (/inf/i.test(s)) return { inf: s[0] === '-' ? -1 : 1 };
    const m = DEC_RE.exec(s);
    if (!m) return { nan: true };
    const frac = m[3] || '';
    const n = BigInt(m[2] + frac);
    return { n: m[1] ? -n : n, e: (m[4] ? Number(m[4]) : 0) - frac.length };
}

/* Round a coefficient to 34 digits, half to even, as decimal128 does. */
function decRound(n, e) {
    const neg = n < 0n;
    const a = neg ? -n : n;
    const digits = a.toString().length;
    if (digits <= DEC_DIGITS) return { n, e };
    const k = digits - DEC_DIGITS;
    const div = 10n ** BigInt(k);
    let q = a / div;
    const r = a % div;
    const half = div / 2n;
    if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
    let ne = e + k;
    if (q.toString().length > DEC_DIGITS) { q /= 10n; ne++; }
    return { n: neg ? -q : q, e: ne };
}

function decAdd(a, b) {
    if (a.nan || b.nan) return { nan: true };
    if (a.inf || b.inf) {
        if (a.inf && b.inf && a.inf !== b.inf) return { nan: true };
        return { inf: a.inf || b.inf };
    }
    const e = Math.min(a.e, b.e);
    return decRound(a.n * 10n ** BigInt(a.e - e) + b.n * 10n ** BigInt(b.e - e), e);
}

const decEqual = (a, b) => !a.nan && !b.nan &&
    (a.inf || b.inf ? a.inf === b.inf : a.n * 10n ** BigInt(a.e - Math.min(a.e, b.e)) === b.n * 10n ** BigInt(b.e - Math.min(a.e, b.e)));

function decToBson(p) {
    if (p.nan) return BSON.Decimal128.fromString('NaN');
    if (p.inf) return BSON.Decimal128.fromString(p.inf > 0 ? 'Infinity' : '-Infinity');
    return BSON.Decimal128.fromString(`${p.n}E${p.e}`);
}

/* Decimal128(double, kRoundTo15Digits): 15 significant digits, trailing
 * zeros kept (1.5 -> 1.50000000000000); 0, NaN and infinities as they are. */
function decFromDouble15(x) {
    if (Number.isNaN(x)) return { nan: true };
    if (!Number.isFinite(x)) return { inf: x > 0 ? 1 : -1 };
    if (x === 0) return { n: 0n, e: 0 };
    const m = /^(-?)(\d)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(x.toPrecision(15));
    const frac = m[3] || '';
    const n = BigInt(m[2] + frac);
    return { n: m[1] ? -n : n, e: (m[4] ? Number(m[4]) : 0) - frac.length };
}

/* Decimal128(double, kRoundTo34Digits): the double's exact value, rounded
 * to 34 digits. */
function decFromDouble34(x) {
    if (Number.isNaN(x)) return { nan: true };
    if (!Number.isFinite(x)) return { inf: x > 0 ? 1 : -1 };
    const { n, d } = exactNum(x);
    const k = d.toString(2).length - 1;        /* d = 2^k: n / 2^k = n * 5^k / 10^k */
    return decRound(n * 5n ** BigInt(k), -k);
}

/* A stored or command value as a typed number (t: its BSON type when the
 * value is a JS number), or null when it is not a number. */
function typedNum(v, t) {
    if (typeof v === 'number') {
        const tt = NUMERIC.has(t) ? t : valueType(v);
        if (tt === 'long') return Number.isInteger(v) ? { t: 'long', v: BigInt(v) } : { t: 'double', v };
        if (tt === 'int' && !isInt32(v)) return typedNum(v, undefined);
        return { t: tt, v };
    }
    if (v === null || typeof v !== 'object') return null;
    switch (v._bsontype) {
    case 'Long': return { t: 'long', v: BigInt(v.toString()) };
    case 'Int32': return { t: 'int', v: v.value };
    case 'Double': return { t: 'double', v: v.value };
    case 'Decimal128': return { t: 'decimal', v: decParts(v) };
    default: return null;
    }
}

const typedDouble = (a) => (a.t === 'long' ? Number(a.v) : a.t === 'decimal' ? numValue(decToBson(a.v)) : a.v);
const typedDec = (a) => (a.t === 'decimal' ? a.v : a.t === 'double' ? decFromDouble15(a.v) : { n: BigInt(a.v), e: 0 });

/* SafeNum::addInternal: the sum, or null when it is not representable. */
function safeAdd(a, b) {
    if (a.t === 'int' && b.t === 'int') {
        const s = a.v + b.v;
        return isInt32(s) ? { t: 'int', v: s } : { t: 'long', v: BigInt(s) };
    }
    if ((a.t === 'int' || a.t === 'long') && (b.t === 'int' || b.t === 'long')) {
        const s = BigInt(a.v) + BigInt(b.v);
        return s < INT64_MIN_BIG || s > INT64_MAX_BIG ? null : { t: 'long', v: s };
    }
    if (a.t === 'decimal' || b.t === 'decimal') return { t: 'decimal', v: decAdd(typedDec(a), typedDec(b)) };
    return { t: 'double', v: typedDouble(a) + typedDouble(b) };
}

/* SafeNum::isIdentical: same type and same value (decimals by value). */
function safeIdentical(a, b) {
    if (a.t !== b.t) return false;
    return a.t === 'decimal' ? decEqual(a.v, b.v) : a.v === b.v;
}

/* The stored form of a typed number: [value, type for the document's
 * types map (undefined when the value carries its own)]. */
function typedStore(a) {
    switch (a.t) {
    case 'long': {
        const n = Number(a.v);
        return Number.isSafeInteger(n) ? [n, 'long'] : [Long.fromBigInt(a.v), undefined];
    }
    case 'decimal': return [decToBson(a.v), undefined];
    default: return [a.v, a.t];
    }
}

/* SafeNum::debugString, as mongod prints the current value in errors. */
function safeDebug(a) {
    switch (a.t) {
    case 'int': return `(NumberInt)${a.v}`;
    case 'long': return `(NumberLong)${a.v}`;
    case 'double': return `(NumberDouble)${a.v}`;
    default: return `(NumberDecimal)${decToBson(a.v).toString()}`;
    }
}

/* ---- maxTimeMS: a deadline checked while documents are processed ---- */

const TICK_EVERY = 128;
let deadline = Infinity;
let tickLeft = TICK_EVERY;

function maxTimeExpired() {
    return new CmdError(50, 'MaxTimeMSExpired', 'operation exceeded time limit');
}

/* Called for every document (and comparison) an operation processes. */
function tick() {
    if (--tickLeft < 0) {
        tickLeft = TICK_EVERY;
        if (Date.now() >= deadline) throw maxTimeExpired();
    }
}

/* Run fn (synchronous) under the operation's deadline. */
function withDeadline(ms, fn) {
    const saved = deadline;
    deadline = ms === undefined ? Infinity : ms;
    tickLeft = 0;
    try {
        if (Date.now() >= deadline) throw maxTimeExpired();
        return fn();
    } finally {
        deadline = saved;
    }
}

/* ---- query operators ($match, find, update, delete) ---- */

const LT = 1;
const LTE = 2;
const EQ = 3;
const GTE = 4;
const GT = 5;

/* One value against the operand, as ComparisonMatchExpression does it:
 * only values of the same canonical type compare ({x: {$lt: 10}} never
 * matches null, a string or a missing x); null and missing are equal;
 * MinKey/MaxKey operands bound every type; NaN only equals NaN. */
function cmpMatch(kind, e, rhs, rr) {
    const er = bsonRank(e);
    if (er !== rr) {
        if (er + rr === 5) return kind === EQ || kind === LTE || kind === GTE;   /* null vs missing */
        if (rr === -1) return kind === GT || kind === GTE;
        if (rr === 127) return kind === LT || kind === LTE;
        return false;
    }
    if (er === 10 && (isNaNum(e) || isNaNum(rhs))) {
        return isNaNum(e) && isNaNum(rhs) && (kind === EQ || kind === LTE || kind === GTE);
    }
    const c = bsonCompare(e, rhs);
    switch (kind) {
    case LT: return c < 0;
    case LTE: return c <= 0;
    case EQ: return c === 0;
    case GTE: return c >= 0;
    default: return c > 0;
    }
}

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function fieldValue(doc, selector) {
    if (doc === null || typeof doc !== 'object') return undefined;
    if (selector.indexOf('.') < 0) return Array.isArray(doc) || !hasOwn(doc, selector) ? undefined : doc[selector];
    return mingoUtil.resolve(doc, selector, { unwrapArray: true });
}

/* Does the field's value, or one of its elements if it is an array,
 * satisfy test?  (MongoDB tries every array element, then the array.) */
function anyElement(v, dotted, test) {
    if (!Array.isArray(v)) return test(v);
    for (const e of v) {
        if (dotted && Array.isArray(e)) {
            for (const x of e) if (test(x)) return true;
        }
        if (test(e)) return true;
    }
    return test(v);
}

function queryCompare(kind) {
    return (selector, rhs) => {
        if (rhs instanceof RegExp && kind === EQ) {
            return (doc) => { tick(); return anyElement(fieldValue(doc, selector), selector.includes('.'), (e) => e instanceof RegExp && bsonEquals(e, rhs)); };
        }
        const rr = bsonRank(rhs);
        const dotted = selector.includes('.');
        return (doc) => {
            tick();
            return anyElement(fieldValue(doc, selector), dotted, (e) => cmpMatch(kind, e, rhs, rr));
        };
    };
}

/* $in: equality with any of the values (null also matches missing),
 * a regex matches strings; numbers by exact value across types. */
function inMatcher(values) {
    if (!Array.isArray(values)) throw badValue('$in needs an array');
    const keys = new Set();
    const others = [];
    const regexes = [];
    let withNull = false;
    for (const v of values) {
        if (v instanceof RegExp) { regexes.push(v); continue; }
        if (isPlainObject(v) && Object.keys(v).some((k) => k[0] === '$')) throw badValue('cannot nest $ under $in');
        if (nullish(v)) { withNull = true; continue; }
        const k = eqKey(v);
        if (k !== undefined) keys.add(k); else others.push(v);
    }
    return (e) => {
        if (nullish(e)) return withNull;
        const k = eqKey(e);
        if (k !== undefined) {
            if (keys.has(k)) return true;
        } else if (others.length) {
            const r = bsonRank(e);
            for (const o of others) if (bsonRank(o) === r && bsonEquals(e, o)) return true;
        }
        if (regexes.length && typeof e === 'string') {
            for (const re of regexes) { re.lastIndex = 0; if (re.test(e)) return true; }
        }
        return false;
    };
}

function queryIn(negate) {
    return (selector, values) => {
        const m = inMatcher(values);
        const dotted = selector.includes('.');
        return (doc) => {
            tick();
            return anyElement(fieldValue(doc, selector), dotted, m) !== negate;
        };
    };
}

const MONGO_QUERY_OPS = {
    $eq: queryCompare(EQ),
    $lt: queryCompare(LT),
    $lte: queryCompare(LTE),
    $gt: queryCompare(GT),
    $gte: queryCompare(GTE),
    $ne: (selector, rhs, options) => {
        const eq = queryCompare(EQ)(selector, rhs, options);
        return (doc) => !eq(doc);
    },
    $in: queryIn(false),
    $nin: queryIn(true),
};

/* ---- expression operators (Value::compare: missing < null < numbers) ---- */

function twoArgs(obj, expr, options, name) {
    const args = Array.isArray(expr) ? expr : [expr];
    if (args.length !== 2) {
        throw new CmdError(16020, 'Location16020', `Expression ${name} takes exactly 2 arguments. ${args.length} were passed in.`);
    }
    tick();
    return evalExpr(obj, args, options);
}

function exprCompare(name, test) {
    return (obj, expr, options) => {
        const [a, b] = twoArgs(obj, expr, options, name);
        return test(bsonCompare(a, b));
    };
}

/* $min/$max, as accumulators over a group and (mingo calls the same
 * function with the evaluated operands and expr null) as expressions
 * {$min: [a, b, ...]}: null and missing values are ignored, null if
 * nothing is left; a single array operand means its elements. */
function accMinMax(sign) {
    return (coll, expr, options) => {
        let vals = coll;
        if (expr === null) {
            if (vals.length === 1 && Array.isArray(vals[0])) vals = vals[0];
        } else {
            vals = accumulatorOps.$push(coll, expr, options);     /* evaluates expr per document */
        }
        let best;
        for (const v of vals) {
            tick();
            if (nullish(v)) continue;
            if (best === undefined || sign * bsonCompare(v, best) < 0) best = v;
        }
        return best === undefined ? null : best;
    };
}

/* ---- arithmetic with MongoDB's null handling, type errors and codes ---- */

const TYPE_NAMES = {
    '-1': 'minKey', 0: 'missing', 5: 'null', 15: 'string', 20: 'object', 25: 'array', 30: 'binData', 35: 'objectId',
    40: 'bool', 45: 'date', 47: 'timestamp', 50: 'regex', 55: 'dbPointer', 60: 'javascript', 65: 'javascriptWithScope', 127: 'maxKey',
};

function typeName(v) {
    if (v === undefined) return 'missing';
    if (typeof v === 'number') return Number.isInteger(v) ? (isInt32(v) ? 'int' : 'long') : 'double';
    if (v !== null && typeof v === 'object') {
        if (v._bsontype === 'Long') return 'long';
        if (v._bsontype === 'Decimal128') return 'decimal';
        if (v._bsontype === 'BSONSymbol') return 'symbol';
    }
    return TYPE_NAMES[bsonRank(v)] || 'object';
}

/* ---- values in error messages, as mongod's BSONElement::toString ---- */

/* printf("%.16g") then ".0" unless the text has '.', 'E' or 'N'
 * (StringBuilder::appendDoubleNice): 1 -> "1.0", 1e16 -> "1e+16.0". */
function doubleNice(x) {
    let s;
    if (Number.isNaN(x)) s = 'nan';
    else if (!Number.isFinite(x)) s = x > 0 ? 'inf' : '-inf';
    else if (x === 0) s = Object.is(x, -0) ? '-0' : '0';
    else {
        const m = /^(-?)(\d)\.(\d+)e([+-]\d+)$/.exec(x.toExponential(15));
        const exp = Number(m[4]);
        const digits = m[2] + m[3];
        if (exp < -4 || exp >= 16) {
            const frac = m[3].replace(/0+$/, '');
            s = `${m[1]}${m[2]}${frac ? '.' + frac : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
        } else {
            const int = exp >= 0 ? digits.slice(0, exp + 1) : '0';
            const frac = (exp >= 0 ? digits.slice(exp + 1) : '0'.repeat(-exp - 1) + digits).replace(/0+$/, '');
            s = `${m[1]}${int}${frac ? '.' + frac : ''}`;
        }
    }
    return /[.EN]/.test(s) ? s : s + '.0';
}

/* A value as mongod prints it; t: the BSON type of a JS number. */
function bsonString(v, t) {
    if (v === undefined) return 'undefined';
    if (v === null) return 'null';
    switch (typeof v) {
    case 'number': return (NUMERIC.has(t) ? t : valueType(v)) === 'double' ? doubleNice(v) : String(v);
    case 'boolean': return String(v);
    case 'string': return v.length > 159 ? `"${v.slice(0, 150)}..."` : `"${v}"`;
    default: break;
    }
    if (v instanceof Date) return `new Date(${v.getTime()})`;
    if (Array.isArray(v)) return v.length ? `[ ${v.map((e) => bsonString(e)).join(', ')} ]` : '[]';
    if (isPlainObject(v)) {
        const ks = definedKeys(v);
        return ks.length ? `{ ${ks.map((k) => `${k}: ${bsonString(v[k])}`).join(', ')} }` : '{}';
    }
    switch (v._bsontype) {
    case 'ObjectId': case 'ObjectID': return `ObjectId('${v.toHexString()}')`;
    case 'Long': return v.toString();
    case 'Int32': return String(v.value);
    case 'Double': return doubleNice(v.value);
    case 'Decimal128': return `NumberDecimal("${v.toString()}")`;
    case 'MinKey': return 'MinKey';
    case 'MaxKey': return 'MaxKey';
    default: return String(v);
    }
}

/* A number of any type as a JS number, or undefined if not numeric.
 * (int64 outside +-2^53 and decimals are approximated: see the header.) */
function numValue(v) {
    if (typeof v === 'number') return v;
    if (v !== null && typeof v === 'object') {
        switch (v._bsontype) {
        case 'Long': return v.toNumber();
        case 'Int32': case 'Double': return v.value;
        case 'Decimal128': return Number(v.toString());
        default: break;
        }
    }
    return undefined;
}

const ARITH_OPS = {
    $add: (obj, expr, options) => {
        tick();
        const args = evalExpr(obj, Array.isArray(expr) ? expr : [expr], options);
        let sum = 0;
        let date = false;
        for (const v of args) {
            const n = numValue(v);
            if (n !== undefined) { sum += n; continue; }
            if (v instanceof Date) {
                if (date) throw new CmdError(16612, 'Location16612', 'only one date allowed in an $add expression');
                date = true;
                sum += v.getTime();
                continue;
            }
            if (nullish(v)) return null;
            throw new CmdError(16554, 'Location16554', `$add only supports numeric or date types, not ${typeName(v)}`);
        }
        return date ? new Date(sum) : sum;
    },
    $subtract: (obj, expr, options) => {
        const [a, b] = twoArgs(obj, expr, options, '$subtract');
        const x = numValue(a);
        const y = numValue(b);
        if (x !== undefined && y !== undefined) return x - y;
        if (nullish(a) || nullish(b)) return null;
        if (a instanceof Date) {
            if (b instanceof Date) return a.getTime() - b.getTime();
            if (y !== undefined) return new Date(a.getTime() - Math.round(y));
            throw new CmdError(16613, 'Location16613', `cant $subtract a ${typeName(b)} from a Date`);
        }
        /* (sic: mongod 4.4 prints no space after "a") */
        throw new CmdError(16556, 'Location16556', `cant $subtract a${typeName(b)} from a ${typeName(a)}`);
    },
    $multiply: (obj, expr, options) => {
        tick();
        const args = evalExpr(obj, Array.isArray(expr) ? expr : [expr], options);
        let p = 1;
        for (const v of args) {
            const n = numValue(v);
            if (n !== undefined) { p *= n; continue; }
            if (nullish(v)) return null;
            throw new CmdError(16555, 'Location16555', `$multiply only supports numeric types, not ${typeName(v)}`);
        }
        return p;
    },
    $divide: (obj, expr, options) => {
        const [a, b] = twoArgs(obj, expr, options, '$divide');
        const x = numValue(a);
        const y = numValue(b);
        if (x !== undefined && y !== undefined) {
            if (y === 0) throw new CmdError(16608, 'Location16608', "can't $divide by zero");
            return x / y;
        }
        if (nullish(a) || nullish(b)) return null;
        throw new CmdError(16609, 'Location16609', `$divide only supports numeric types, not ${typeName(a)} and ${typeName(b)}`);
    },
};

const MONGO_EXPRESSION_OPS = Object.assign({
    $eq: exprCompare('$eq', (c) => c === 0),
    $ne: exprCompare('$ne', (c) => c !== 0),
    $lt: exprCompare('$lt', (c) => c < 0),
    $lte: exprCompare('$lte', (c) => c <= 0),
    $gt: exprCompare('$gt', (c) => c > 0),
    $gte: exprCompare('$gte', (c) => c >= 0),
    $cmp: exprCompare('$cmp', (c) => c),
}, ARITH_OPS);

/* $sum as mongod's AccumulatorSum adds (accumulator_sum.cpp): numbers of
 * every type, other values ignored; when a Decimal128 was among them the
 * total is a Decimal128: Decimal128() + the other numbers' total
 * (Decimal128(double, kRoundTo34Digits)) + the decimals' total.  Without a
 * decimal, mingo's double sum, typed by the rules of "typed pipeline
 * stages" (int64 beyond +-2^53 is approximated: see the header). */
function accSum(coll, expr, options) {
    let vals;
    if (expr === null) {
        vals = coll.length === 1 && Array.isArray(coll[0]) ? coll[0] : coll;
    } else if (typeof expr === 'number') {
        return coll.length * expr;
    } else {
        vals = accumulatorOps.$push(coll, expr, options);
    }
    let res = 0;
    let dec = null;
    for (const v of vals) {
        if (typeof v === 'number') {
            if (!Number.isNaN(v)) res += v;
            continue;
        }
        if (v === null || typeof v !== 'object') continue;
        if (v._bsontype === 'Decimal128') dec = decAdd(dec || { n: 0n, e: 0 }, decParts(v));
        else if (v._bsontype === 'Long') res += v.toNumber();
    }
    if (!dec) return res;
    let total = { n: 0n, e: 0 };
    if (res !== 0) total = decAdd(total, decFromDouble34(res));
    return decToBson(decAdd(total, dec));
}

const MONGO_ACCUMULATOR_OPS = { $min: accMinMax(1), $max: accMinMax(-1), $sum: accSum };

/* ---- $type and $isNumber ---- */

/* BSON type names and numbers, as $type takes and answers them. */
const TYPE_CODES = {
    1: 'double', 2: 'string', 3: 'object', 4: 'array', 5: 'binData', 6: 'undefined', 7: 'objectId', 8: 'bool',
    9: 'date', 10: 'null', 11: 'regex', 12: 'dbPointer', 13: 'javascript', 14: 'symbol', 15: 'javascriptWithScope',
    16: 'int', 17: 'timestamp', 18: 'long', 19: 'decimal', '-1': 'minKey', 127: 'maxKey',
};
const TYPE_ALIASES = new Set(Object.values(TYPE_CODES));

/* The BSON type name of a value; a JS number's from the document's types
 * (path: where it was read) or the expression's, else by value. */
function bsonTypeName(v, t) {
    if (typeof v === 'number' && NUMERIC.has(t)) return t;
    return typeName(v);
}

/* {$type: <expression>}: MongoDB's names ("decimal" where mingo says
 * "decimal128"; int / long / double of the value's own type). */
function exprTypeOp(obj, expr, options) {
    const args = Array.isArray(expr) ? expr : [expr];
    if (args.length !== 1) {
        throw new CmdError(16020, 'Location16020', `Expression $type takes exactly 1 arguments. ${args.length} were passed in.`);
    }
    const v = evalExpr(obj, args[0], options);
    return bsonTypeName(v, typeof v === 'number' ? exprType(args, 0, obj, options, currentTctx) : undefined);
}

function exprIsNumber(obj, expr, options) {
    const args = Array.isArray(expr) ? expr : [expr];
    const v = evalExpr(obj, args[0], options);
    return typeof v === 'number' || (v !== null && typeof v === 'object' &&
        ['Long', 'Int32', 'Double', 'Decimal128'].includes(v._bsontype));
}

/* {field: {$type: T}} (T an alias, "number", a type code, or an array of
 * them): the value, or an element of an array value, has type T; "array"
 * matches arrays.  Numbers are typed by the document's types. */
function queryType(selector, spec) {
    const wanted = new Set();
    for (const t of Array.isArray(spec) ? spec : [spec]) {
        if (typeof t === 'number') {
            if (!TYPE_CODES[t]) throw badValue(`Invalid numerical type code: ${t}`);
            wanted.add(TYPE_CODES[t]);
        } else if (t === 'number' || TYPE_ALIASES.has(t)) {
            wanted.add(t);
        } else {
            throw badValue(`Unknown type name alias: ${t}`);
        }
    }
    const number = wanted.has('number');
    const test = (e, types, path) => {
        const n = bsonTypeName(e, types && types[path]);
        return wanted.has(n) || (number && (n === 'int' || n === 'long' || n === 'double' || n === 'decimal'));
    };
    return (doc) => {
        tick();
        const v = fieldValue(doc, selector);
        if (v === undefined) return false;
        const types = doc !== null && typeof doc === 'object' ? doc[TYPES] : undefined;
        if (Array.isArray(v)) return wanted.has('array') || v.some((e) => test(e, types, selector + '.$'));
        return test(v, types, selector);
    };
}

/* ---- sort ---- */

/* The value a document sorts by on one key: missing sorts as null; an
 * array by its smallest (ascending) or largest (descending) element, an
 * empty array below null. */
function sortKey(doc, path, dir) {
    const v = fieldValue(doc, path);
    if (v === undefined) return null;
    if (!Array.isArray(v)) return v;
    if (v.length === 0) return undefined;
    let best;
    for (let e of v) {
        if (e === undefined) e = null;
        if (best === undefined || dir * bsonCompare(e, best) < 0) best = e;
    }
    return best;
}

function sortDocs(docs, spec) {
    if (!isPlainObject(spec)) throw badValue('$sort specification must be an object');
    const fields = Object.keys(spec);
    if (!fields.length) throw new CmdError(15976, 'Location15976', '$sort stage must have at least one sort key');
    const dirs = fields.map((f) => {
        const d = spec[f];
        if (d !== 1 && d !== -1) throw new CmdError(15975, 'Location15975', '$sort key ordering must be 1 (for ascending) or -1 (for descending)');
        return d;
    });
    const keyed = docs.map((d, i) => {
        tick();
        return { d, i, k: fields.map((f, j) => sortKey(d, f, dirs[j])) };
    });
    keyed.sort((a, b) => {
        tick();
        for (let j = 0; j < fields.length; j++) {
            const c = bsonCompare(a.k[j], b.k[j]);
            if (c) return c * dirs[j];
        }
        return a.i - b.i;
    });
    return keyed.map((x) => x.d);
}

function sortStage(coll, spec) {
    return Lazy(sortDocs(coll.collect(), spec));
}

/* ------------------------------------------------------------------ */
/* typed pipeline stages                                              */
/* ------------------------------------------------------------------ */

function newTypes(derived, from) {
    const t = from ? Object.assign({}, from) : {};
    if (derived) t[DERIVED] = true;
    return t;
}

function setTypes(obj, types) {
    Object.defineProperty(obj, TYPES, { value: types, enumerable: true, configurable: true, writable: true });
}

/* Types of the fields a $project / $addFields spec computes for one input. */
function specTypes(spec, inDoc, opts, tctx) {
    const inTypes = inDoc && typeof inDoc === 'object' ? inDoc[TYPES] : undefined;
    const types = newTypes(inTypes && inTypes[DERIVED], inTypes);
    const walk = (s, prefix) => {
        for (const k of Object.keys(s)) {
            const v = s[k];
            const path = prefix ? prefix + '.' + k : k;
            if (v === 0 || v === 1 || v === true || v === false) continue;
            if (isPlainObject(v) && Object.keys(v).length && !Object.keys(v).some((x) => x[0] === '$')) {
                walk(v, path);
                continue;
            }
            const t = exprType(s, k, inDoc, opts, tctx);
            types[path] = t || 'value';
            for (const p of Object.keys(types)) if (p.startsWith(path + '.')) delete types[p];
        }
    };
    walk(spec, '');
    return types;
}

function pairwiseStage(orig, getTctx) {
    return function (coll, expr, options) {
        const inputs = coll.collect();
        const outputs = orig(Lazy(inputs), expr, options).collect();
        if (outputs.length === inputs.length && isPlainObject(expr)) {
            const tctx = getTctx(options);
            for (let i = 0; i < outputs.length; i++) {
                tick();
                const o = outputs[i];
                if (o && typeof o === 'object' && o !== inputs[i]) setTypes(o, specTypes(expr, inputs[i], options, tctx));
            }
        }
        return Lazy(outputs);
    };
}

function accumulatorType(spec, k, part, opts, tctx) {
    const acc = spec[k];
    if (!isPlainObject(acc)) return 'value';
    const ops = Object.keys(acc);
    if (ops.length !== 1) return 'value';
    const op = ops[0];
    const arg = acc[op];
    switch (op) {
    case '$avg': case '$stdDevPop': case '$stdDevSamp':
        return 'double';
    case '$count':
        return 'int';
    case '$sum': {
        if (typeof arg === 'number') {
            return (acc[LIT] && acc[LIT].$sum) || valueType(arg) || 'value';
        }
        let t = 'int';
        for (const d of part) {
            tick();
            const v = evalExpr(d, arg, opts);
            if (typeof v !== 'number') continue;
            const ti = exprType(acc, '$sum', d, opts, tctx) || valueType(v);
            t = widen(t, ti);
            if (!t) return 'value';
        }
        return t;
    }
    case '$min': case '$max': {
        const seen = new Set();
        for (const d of part) {
            tick();
            const v = evalExpr(d, arg, opts);
            if (typeof v !== 'number') continue;
            seen.add(exprType(acc, op, d, opts, tctx) || valueType(v));
            if (seen.size > 1) return 'value';
        }
        return seen.size === 1 ? [...seen][0] : 'value';
    }
    case '$first': case '$last': {
        if (!part.length) return 'value';
        const d = op === '$first' ? part[0] : part[part.length - 1];
        return exprType(acc, op, d, opts, tctx) || 'value';
    }
    default:
        return 'value';
    }
}

function typedGroup(getTctx) {
    const orig = pipelineOps.$group;
    return function (coll, expr, options) {
        if (!isPlainObject(expr) || !Object.prototype.hasOwnProperty.call(expr, '_id')) {
            throw new CmdError(15955, 'Location15955', 'a group specification must include an _id');
        }
        const items = coll.collect();
        const tctx = getTctx(options);
        const idExpr = expr._id;
        /* groups meet by MongoDB's equality: numbers by exact value across
         * types, null and missing together (_id null) */
        const groups = new Map();
        for (const obj of items) {
            tick();
            const id = evalExpr(obj, idExpr, options);
            const k = groupKey(id);
            let g = groups.get(k);
            if (!g) groups.set(k, (g = { id: id === undefined ? null : id, docs: [] }));
            g.docs.push(obj);
        }
        const sub = Object.assign({}, expr, { _id: null });
        if (expr[LIT]) Object.defineProperty(sub, LIT, { value: expr[LIT], enumerable: false });
        const fields = Object.keys(expr).filter((k) => k !== '_id');
        const out = [];
        for (const { id: groupId, docs: part } of groups.values()) {
            const r = orig(Lazy(part), sub, options).collect()[0] || {};
            const obj = {};
            if (groupId !== undefined) obj._id = groupId;
            for (const f of fields) obj[f] = r[f];
            const types = newTypes(true);
            if (part.length) {
                if (isPlainObject(idExpr) && !Object.keys(idExpr).some((x) => x[0] === '$')) {
                    for (const k of Object.keys(idExpr)) types['_id.' + k] = exprType(idExpr, k, part[0], options, tctx) || 'value';
                } else {
                    types._id = exprType(expr, '_id', part[0], options, tctx) || 'value';
                }
            }
            for (const f of fields) types[f] = accumulatorType(expr, f, part, options, tctx);
            setTypes(obj, types);
            out.push(obj);
        }
        return Lazy(out);
    };
}

/* $round and $trunc as MongoDB does them for doubles: the value is first
 * taken to 15 significant decimal digits (as MongoDB's conversion to
 * Decimal128 does), then rounded half to even ($round) or toward zero
 * ($trunc) at the requested place.  (mingo's own $round only rounds up
 * when the next digit is > 5: 53.1851 -> 53.18.) */
function decimalRound(x, place, mode) {
    if (typeof x !== 'number' || !Number.isFinite(x)) return x;
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(x.toPrecision(15));
    if (!m) return x;
    const neg = m[1] === '-';
    const frac = m[3] || '';
    let digits = BigInt(m[2] + frac);
    const exp = (m[4] ? Number(m[4]) : 0) - frac.length;     /* |x| = digits * 10^exp */
    if (exp >= -place) return Number(x.toPrecision(15));
    const shift = BigInt(-place - exp);
    const div = 10n ** shift;
    let q = digits / div;
    const r = digits % div;
    if (mode === 'round') {
        const half = div / 2n;
        if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
    }
    digits = q;
    const v = Number(`${digits}e${-place}`);
    return neg ? -v : v;
}

function roundLike(mode, name) {
    return (obj, expr, options) => {
        const args = evalExpr(obj, Array.isArray(expr) ? expr : [expr], options);
        const n = args[0];
        const place = args.length > 1 && args[1] !== undefined ? args[1] : 0;
        if (n === null || n === undefined) return null;
        if (typeof n !== 'number') throw new CmdError(51081, 'Location51081', `${name} only supports numeric types, not ${typeof n}`);
        if (typeof place !== 'number' || !Number.isInteger(place) || place < -20 || place >= 100) {
            throw new CmdError(51083, 'Location51083', `cannot apply ${name} with precision value ${place} value must be in [-20, 100)`);
        }
        if (Number.isInteger(n) && place >= 0) return n;
        return decimalRound(n, place, mode);
    };
}

/* The type context of the running aggregate (collection schema). */
let currentTctx = { schema: null };
const getTctx = () => currentTctx;

const TYPED_CONTEXT = Context.init({
    accumulator: Object.assign({}, accumulatorOps, MONGO_ACCUMULATOR_OPS),
    expression: Object.assign({}, expressionOps, MONGO_EXPRESSION_OPS, {
        $round: roundLike('round', '$round'),
        $trunc: roundLike('trunc', '$trunc'),
        $type: exprTypeOp,
        $isNumber: exprIsNumber,
    }),
    pipeline: Object.assign({}, pipelineOps, {
        $group: typedGroup(getTctx),
        $project: pairwiseStage(pipelineOps.$project, getTctx),
        $addFields: pairwiseStage(pipelineOps.$addFields, getTctx),
        $set: pairwiseStage(pipelineOps.$set, getTctx),
        $sort: sortStage,
    }),
    projection: projectionOps,
    query: Object.assign({}, queryOps, MONGO_QUERY_OPS, { $type: queryType }),
    window: windowOps,
});

const SUPPORTED_STAGES = new Set(Object.keys(pipelineOps).filter((s) => s !== '$out' && s !== '$merge'));

/* ------------------------------------------------------------------ */
/* storage                                                            */
/* ------------------------------------------------------------------ */

/*
 * Index keys, as mongod's KeyString does it: every indexable value is
 * encoded as a string whose code-unit order (JS `<`) is MongoDB's BSON
 * order, so a compound key is the concatenation of its fields' encodings
 * and an index is one sorted list of strings.  An encoding starts with a
 * character for the value's canonical type rank; numbers of every type are
 * encoded by exact value (the double nearest to it, then the int64
 * remainder), so 1, Long(1) and 1.0 meet; null and missing are one key, as
 * in a MongoDB index.  Encodings are prefix-free (strings are escaped and
 * terminated), so "equality on a prefix, then an interval on the next
 * field" is one contiguous range of keys.  Values with no encoding here
 * (arrays, i.e. multikey documents, embedded documents, Decimal128 values
 * that are neither a double's nor an int64's, binData, strings with code
 * points above U+D7FF...) put their document in the
 * index's "other" set, which every scan of that index also returns: the
 * index stays exact for what it returns, because every candidate is then
 * tested against the whole filter.
 */
const RID = Symbol('recordId');         /* per document: insertion number, the index tie-breaker */
const rankChar = (r) => String.fromCharCode(r + 2);
const NULL_CH = rankChar(5);
const NUM_CH = rankChar(10);
const STR_CH = rankChar(15);
const OID_CH = rankChar(35);
const BOOL_CH = rankChar(40);
const DATE_CH = rankChar(45);
const MINKEY_CH = rankChar(-1);
const MAXKEY_CH = rankChar(127);
const KEY_END = '\uffff';               /* above every encoding */
const dv = new DataView(new ArrayBuffer(8));

function encDouble(x) {
    dv.setFloat64(0, x === 0 ? 0 : x);
    let a = dv.getUint16(0);
    let b = dv.getUint16(2);
    let c = dv.getUint16(4);
    let d = dv.getUint16(6);
    if (a & 0x8000) {
        a = ~a & 0xffff; b = ~b & 0xffff; c = ~c & 0xffff; d = ~d & 0xffff;
    } else {
        a |= 0x8000;
    }
    return String.fromCharCode(a, b, c, d);
}

const NUM_ZERO_REM = '\u8000';
function encNumber(x) {
    if (Number.isNaN(x)) return NUM_CH + '\u0001';
    return NUM_CH + '\u0002' + encDouble(x) + NUM_ZERO_REM;
}

function encBig(big) {
    const approx = Number(big);
    const rem = big - BigInt(approx);       /* |rem| <= 1024 for an int64 */
    return NUM_CH + '\u0002' + encDouble(approx) + String.fromCharCode(0x8000 + Number(rem));
}

const encLong = (l) => encBig(BigInt(l.toString()));

/* A Decimal128 whose value is a double's or an int64's is encoded as that
 * number, so Decimal128("8.00") meets 8 (MongoDB's KeyString encodes every
 * number by value); other decimals have no encoding here. */
function encDecimal(v) {
    const x = exactNum(v);
    if (x.nan) return encNumber(NaN);
    if (x.inf) return encNumber(x.inf * Infinity);
    if (x.d === 1n && x.n >= INT64_MIN_BIG && x.n <= INT64_MAX_BIG) return encBig(x.n);
    const f = Number(v.toString());
    return cmpNum(v, f) === 0 ? encNumber(f) : undefined;
}

/* The key encoding of one value, or undefined when it has none here. */
function encValue(v) {
    if (v === undefined || v === null) return NULL_CH;
    switch (typeof v) {
    case 'number': return encNumber(v);
    case 'string':
        if (/[\ud800-\uffff]/.test(v)) return undefined;
        return STR_CH + (v.includes('\u0000') ? v.replace(/\u0000/g, '\u0000\u0001') : v) + '\u0000\u0000';
    case 'boolean': return BOOL_CH + (v ? '1' : '0');
    default: break;
    }
    if (v instanceof Date) return DATE_CH + encDouble(v.getTime());
    switch (v._bsontype) {
    case 'ObjectId': case 'ObjectID': return OID_CH + v.toHexString();
    case 'Long': return encLong(v);
    case 'Int32': case 'Double': return encNumber(v.value);
    case 'Decimal128': return encDecimal(v);
    case 'MinKey': return MINKEY_CH;
    case 'MaxKey': return MAXKEY_CH;
    default: return undefined;
    }
}

/* The smallest string above every string that starts with s. */
function succ(s) {
    let i = s.length - 1;
    while (i >= 0 && s.charCodeAt(i) === 0xffff) i--;
    if (i < 0) return KEY_END + KEY_END;
    return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) + 1);
}

const encRid = (n) => String.fromCharCode(Math.floor(n / 4294967296) & 0xffff, (n >>> 16) & 0xffff, n & 0xffff);

const MULTIKEY = Symbol('multikey');

/* The value an index stores for path: undefined when missing, MULTIKEY
 * when an array is on the way (multikey: not encoded here). */
function indexValue(doc, path) {
    if (!path.includes('.')) {
        const v = hasOwn(doc, path) ? doc[path] : undefined;
        return Array.isArray(v) ? MULTIKEY : v;
    }
    let cur = doc;
    for (const p of path.split('.')) {
        if (Array.isArray(cur)) return MULTIKEY;
        if (!isPlainObject(cur) || !hasOwn(cur, p)) return undefined;
        cur = cur[p];
    }
    return Array.isArray(cur) ? MULTIKEY : cur;
}

/*
 * A sorted list of unique strings, each with a document: chunks of at most
 * 2 * CHUNK entries and the first key of each chunk, so that insert, remove
 * and seek cost O(log n + CHUNK) (sortedcontainers' SortedList layout).
 */
const CHUNK = 512;

function lowerBound(arr, k) {
    let lo = 0;
    let hi = arr.length;
    while (lo < hi) {
        const m = (lo + hi) >>> 1;
        if (arr[m] < k) lo = m + 1; else hi = m;
    }
    return lo;
}

class SortedKeys {
    constructor() {
        this.keys = [];         /* chunks of keys */
        this.vals = [];         /* chunks of documents */
        this.firsts = [];       /* first key of each chunk */
        this.size = 0;
    }
    chunkFor(k) {
        const f = this.firsts;
        let lo = 0;
        let hi = f.length;
        while (lo < hi) {
            const m = (lo + hi) >>> 1;
            if (f[m] <= k) lo = m + 1; else hi = m;
        }
        return lo > 0 ? lo - 1 : 0;
    }
    insert(k, v) {
        this.size++;
        if (!this.keys.length) {
            this.keys.push([k]); this.vals.push([v]); this.firsts.push(k);
            return;
        }
        const i = this.chunkFor(k);
        const ks = this.keys[i];
        const vs = this.vals[i];
        if (k > ks[ks.length - 1]) {
            ks.push(k); vs.push(v);
        } else {
            const p = lowerBound(ks, k);
            ks.splice(p, 0, k); vs.splice(p, 0, v);
            if (p === 0) this.firsts[i] = k;
        }
        if (ks.length > 2 * CHUNK) {
            this.keys.splice(i + 1, 0, ks.splice(CHUNK));
            this.vals.splice(i + 1, 0, vs.splice(CHUNK));
            this.firsts.splice(i + 1, 0, this.keys[i + 1][0]);
        }
    }
    remove(k) {
        if (!this.keys.length) return false;
        const i = this.chunkFor(k);
        const ks = this.keys[i];
        const p = lowerBound(ks, k);
        if (ks[p] !== k) return false;
        this.size--;
        ks.splice(p, 1); this.vals[i].splice(p, 1);
        if (!ks.length) {
            this.keys.splice(i, 1); this.vals.splice(i, 1); this.firsts.splice(i, 1);
        } else if (p === 0) {
            this.firsts[i] = ks[0];
        }
        return true;
    }
    /* Is there a key in [lo, hi)? */
    any(lo, hi) {
        for (const e of this.range(lo, hi)) return !!e;
        return false;
    }
    /* [key, document] for every key in [lo, hi), in order. */
    *range(lo, hi) {
        if (!this.keys.length) return;
        let i = this.chunkFor(lo);
        let p = lowerBound(this.keys[i], lo);
        for (; i < this.keys.length; i++, p = 0) {
            const ks = this.keys[i];
            const vs = this.vals[i];
            for (; p < ks.length; p++) {
                if (ks[p] >= hi) return;
                yield [ks[p], vs[p]];
            }
        }
    }
}

/* One index: its spec, and for an ordinary (1 / -1) key pattern the sorted
 * keys.  A descending field is stored with its encoding complemented, so
 * the list is in the index's order; the planner uses the fields before it. */
class Index {
    constructor(spec) {
        this.spec = spec;
        this.name = spec.name;
        this.fields = Object.keys(spec.key);
        this.dirs = this.fields.map((f) => spec.key[f]);
        this.usable = this.dirs.every((d) => d === 1 || d === -1);
        this.unique = !!spec.unique;
        this.tree = new SortedKeys();
        this.keyOf = new Map();         /* document -> its key, null when in other */
        this.other = new Set();
    }
    /* The key of doc without its record id, or undefined if it has none. */
    keyFor(doc, memo) {
        let k = '';
        for (let i = 0; i < this.fields.length; i++) {
            const f = this.fields[i];
            let e = memo && memo.get(f);
            if (e === undefined) {
                const v = indexValue(doc, f);
                e = v === MULTIKEY ? null : encValue(v);
                if (e === undefined) e = null;
                if (memo) memo.set(f, e);
            }
            if (e === null) return undefined;
            k += this.dirs[i] === -1 ? complement(e) : e;
        }
        return k;
    }
    /* Would doc collide with another document in this unique index? */
    collides(doc, memo) {
        if (!this.unique || !this.usable) return false;
        const k = this.keyFor(doc, memo);
        if (k === undefined) return false;
        for (const [, d] of this.tree.range(k, succ(k))) if (d !== doc) return true;
        return false;
    }
    add(doc, memo) {
        if (!this.usable) return;
        const k = this.keyFor(doc, memo);
        if (k === undefined) {
            this.other.add(doc);
            this.keyOf.set(doc, null);
            return;
        }
        const full = k + encRid(doc[RID]);
        this.tree.insert(full, doc);
        this.keyOf.set(doc, full);
    }
    remove(doc) {
        if (!this.usable) return;
        const full = this.keyOf.get(doc);
        if (full === undefined) return;
        this.keyOf.delete(doc);
        if (full === null) this.other.delete(doc); else this.tree.remove(full);
    }
}

function complement(s) {
    let out = '';
    for (let i = 0; i < s.length; i++) out += String.fromCharCode(0xffff - s.charCodeAt(i));
    return out;
}

/* _id uniqueness uses MongoDB's equality (eqKey) in a hash map: the
 * _id index's point lookups are O(1); its sorted keys serve ranges and
 * order. */
const idKey = (v) => groupKey(v === undefined ? null : v);

class Collection {
    constructor(db, name) {
        this.db = db;
        this.name = name;
        this.docs = [];
        this.ids = new Map();
        this.schema = new Map();
        this.typeSets = new Map();      /* interned per-document types (see internTypes) */
        this.ridSeq = 0;
        this.indexes = [];
        this.ix = new Map();            /* name -> Index */
        this.addIndex({ v: 2, key: { _id: 1 }, name: '_id_' });
    }
    get ns() { return `${this.db.name}.${this.name}`; }

    /* The shared, frozen per-document types object for a Map path -> type
     * (section "per-document numeric types"); the collection schema
     * records the types too (for documents that lose their map, such as
     * those a find projection computes). */
    internTypes(m) {
        let key = '';
        for (const [p, t] of m) key += p + '\u0000' + t + '\u0001';
        let o = this.typeSets.get(key);
        if (!o) {
            o = {};
            for (const [p, t] of m) {
                const tt = t === 'mixed' ? 'value' : t;
                o[p] = tt;
                noteType(this.schema, p, tt === 'value' ? 'mixed' : tt);
            }
            o[DERIVED] = true;
            Object.freeze(o);
            this.typeSets.set(key, o);
        }
        return o;
    }

    /* Build an index over the documents; a unique index that the documents
     * already violate is not added: the DuplicateKey error is returned. */
    addIndex(spec) {
        const ix = new Index(spec);
        for (const d of this.docs) {
            if (ix.collides(d)) {
                const key = {};
                for (const f of ix.fields) { const v = indexValue(d, f); key[f] = v === undefined ? null : v; }
                return dupKeyError(this, ix.name, key);
            }
            ix.add(d);
        }
        this.indexes.push(spec);
        this.ix.set(ix.name, ix);
        return null;
    }
    /* A unique-index violation doc would cause (other than by itself). */
    uniqueViolation(doc, memo) {
        for (const ix of this.ix.values()) {
            if (ix.name === '_id_' || !ix.unique || !ix.collides(doc, memo)) continue;
            const key = {};
            for (const f of ix.fields) { const v = indexValue(doc, f); key[f] = v === undefined ? null : v; }
            return dupKeyError(this, ix.name, key);
        }
        return null;
    }
    indexDoc(doc) {
        const memo = new Map();
        for (const ix of this.ix.values()) ix.add(doc, memo);
    }
    unindexDoc(doc) {
        for (const ix of this.ix.values()) ix.remove(doc);
    }
    insertOne(doc) {
        const k = idKey(doc._id);
        if (this.ids.has(k)) return dupKeyError(this, '_id_', { _id: doc._id });
        const memo = new Map();
        const err = this.uniqueViolation(doc, memo);
        if (err) return err;
        doc[RID] = ++this.ridSeq;
        this.ids.set(k, doc);
        this.docs.push(doc);
        for (const ix of this.ix.values()) ix.add(doc, memo);
        return null;
    }
    /* Remove a set of documents (one pass over the collection). */
    removeDocs(dead) {
        if (!dead.size) return;
        for (const d of dead) {
            this.unindexDoc(d);
            if (this.ids.get(idKey(d._id)) === d) this.ids.delete(idKey(d._id));
        }
        this.docs = this.docs.filter((d) => !dead.has(d));
    }
    /* Apply fn (which modifies doc in place) keeping the indexes right; the
     * document is restored and the error thrown when the result would change
     * _id or violate a unique index. */
    modify(doc, fn) {
        const needRestore = [...this.ix.values()].some((ix) => ix.unique && ix.name !== '_id_');
        const saved = Object.assign({}, doc);
        const savedTypes = doc[TYPES];
        const snapshot = needRestore ? BSON.deserialize(serialize({ d: doc }), { promoteValues: true }).d : null;
        const oldId = doc._id;
        this.unindexDoc(doc);
        let changed;
        try {
            changed = fn(doc);
            if (!bsonEquals(oldId === undefined ? null : oldId, doc._id === undefined ? null : doc._id)) {
                throw new CmdError(66, 'ImmutableField',
                    "Performing an update on the path '_id' would modify the immutable field '_id'");
            }
            const err = this.uniqueViolation(doc, null);
            if (err) throw Object.assign(new CmdError(11000, 'DuplicateKey', err.errmsg), { keyPattern: err.keyPattern, keyValue: err.keyValue });
        } catch (e) {
            for (const k of Object.keys(doc)) delete doc[k];
            Object.assign(doc, snapshot || saved);
            doc[TYPES] = savedTypes;
            this.indexDoc(doc);
            throw e;
        }
        this.indexDoc(doc);
        return changed;
    }
    /* An operator update of many documents at once (mingo compiles the
     * update once): the number of documents it changed.  Updates that may
     * touch _id, collections with unique secondary indexes and replacement
     * documents go one document at a time through modify().  As in mongod,
     * the documents are written one after the other: when one fails (an
     * $inc past int64), those before it stay written and the error is
     * thrown with e.nModified, the number of them that changed. */
    modifyMany(docs, u, arrayFilters) {
        const roots = updateRoots(u);
        const uniq = [...this.ix.values()].some((ix) => ix.unique && ix.name !== '_id_');
        if (!roots || roots.has('_id') || uniq || docs.length < 2) {
            let n = 0;
            for (const d of docs) {
                try {
                    if (this.modify(d, (x) => applyUpdate(this, x, u, arrayFilters, false))) n++;
                } catch (e) {
                    e.nModified = n;
                    throw e;
                }
            }
            return n;
        }
        const plan = updatePlan(u);
        let failed = null;
        let live = docs;
        const incs = [];
        if (plan.inc) {
            for (let i = 0; i < docs.length; i++) {
                try {
                    incs.push(computeInc(docs[i], plan.inc));
                } catch (e) {
                    failed = e;
                    live = docs.slice(0, i);
                    break;
                }
            }
        }
        const mod = plan.rest;
        const before = live.map((d) => rootsSignature(d, roots));
        const beforeTypes = live.map((d) => d[TYPES]);
        const mms = live.map((d) => minMaxBefore(d, u));
        for (const d of live) this.unindexDoc(d);
        try {
            if (Object.keys(mod).length && live.length) mingoUpdater.updateMany(live, {}, mod, { arrayFilters, cloneMode: 'none' });
            live.forEach((d, i) => {
                const written = updateWritten(u, d, beforeTypes[i], false, !!plan.inc, mms[i]);
                if (plan.inc) written.push(...applyInc(d, incs[i]));
                retypeDoc(this, d, written);
            });
        } finally {
            for (const d of live) this.indexDoc(d);
        }
        let n = 0;
        live.forEach((d, i) => { if (d[TYPES] !== beforeTypes[i] || rootsSignature(d, roots) !== before[i]) n++; });
        if (failed) {
            failed.nModified = n;
            throw failed;
        }
        return n;
    }
}

/* Top-level fields an operator update writes, or null when unsure. */
function updateRoots(u) {
    if (!isUpdateOperatorDoc(u)) return null;
    const roots = new Set();
    for (const op of Object.keys(u)) {
        if (op[0] !== '$' || !isPlainObject(u[op])) return null;
        for (const path of Object.keys(u[op])) {
            roots.add(path.split('.')[0]);
            if (op === '$rename') {
                if (typeof u[op][path] !== 'string') return null;
                roots.add(u[op][path].split('.')[0]);
            }
        }
    }
    return roots;
}

function rootsSignature(d, roots) {
    let sig = '';
    for (const r of roots) sig += hasOwn(d, r) && d[r] !== undefined ? canonString(d[r]) + '\u0000' : '\u0001';
    return sig;
}

function dupKeyError(coll, indexName, key) {
    const repr = BSON.EJSON.stringify(key, { relaxed: true });
    return {
        code: 11000,
        errmsg: `E11000 duplicate key error collection: ${coll.ns} index: ${indexName} dup key: ${repr}`,
        keyPattern: Object.fromEntries(Object.keys(key).map((k) => [k, 1])),
        keyValue: key,
    };
}

class Database {
    constructor(name) {
        this.name = name;
        this.collections = new Map();
    }
}

const databases = new Map();

function validateDbName(name) {
    if (typeof name !== 'string' || name.length === 0 || /[/\\. "$\u0000]/.test(name) || name.length > 63) {
        throw new CmdError(73, 'InvalidNamespace', `Invalid database name: '${name}'`);
    }
}

function validateCollName(db, name) {
    if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000') || name.startsWith('.') ||
        name.includes('$')) {
        throw new CmdError(73, 'InvalidNamespace', `Invalid collection name: ${db}.${name}`);
    }
}

function getDb(name, create) {
    let db = databases.get(name);
    if (!db && create) {
        validateDbName(name);
        db = new Database(name);
        databases.set(name, db);
    }
    return db;
}

function getColl(dbName, name, create) {
    const db = getDb(dbName, create);
    if (!db) return undefined;
    let c = db.collections.get(name);
    if (!c && create) {
        validateCollName(dbName, name);
        c = new Collection(db, name);
        db.collections.set(name, c);
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* cursors                                                            */
/* ------------------------------------------------------------------ */

const cursors = new Map();
let cursorSeq = Math.floor(Math.random() * 1e6);

/* items: plain documents; schema: collection schema for typing (or null) */
function makeCursorReply(ns, items, schema, batchSize, singleBatch, firstBatch) {
    const limit = batchSize === undefined || batchSize === null ? (firstBatch ? DEFAULT_BATCH : Infinity) : batchSize;
    const batch = [];
    let bytes = 0;
    let pos = 0;
    while (pos < items.length && batch.length < limit) {
        const raw = serialize(wrapDoc(items[pos], schema));
        if (batch.length > 0 && bytes + raw.length > BATCH_BYTES) break;
        batch.push(raw);
        bytes += raw.length;
        pos++;
    }
    let id = Long.ZERO;
    if (pos < items.length && !singleBatch) {
        cursorSeq += 1 + Math.floor(Math.random() * 1000);
        id = Long.fromNumber(cursorSeq);
        cursors.set(id.toString(), { ns, items, pos, schema });
    }
    return { id, batch };
}

function continueCursor(key, cur, batchSize) {
    const limit = batchSize ? batchSize : Infinity;
    const batch = [];
    let bytes = 0;
    while (cur.pos < cur.items.length && batch.length < limit) {
        const raw = serialize(wrapDoc(cur.items[cur.pos], cur.schema));
        if (batch.length > 0 && bytes + raw.length > BATCH_BYTES) break;
        batch.push(raw);
        bytes += raw.length;
        cur.pos++;
    }
    let id = Long.fromString(key);
    if (cur.pos >= cur.items.length) {
        cursors.delete(key);
        id = Long.ZERO;
    }
    return { id, batch };
}

/* A reply document whose cursor batch is made of pre-serialized documents. */
class RawReply {
    constructor(ns, id, batchName, batch, extra) {
        this.ns = ns;
        this.id = id;
        this.batchName = batchName;
        this.batch = batch;
        this.extra = extra || {};
    }
    toBuffer() {
        /* build { cursor: { <batchName>: [...], id, ns }, ok: 1, ...extra } by hand */
        const parts = [];
        let arrLen = 5;
        for (let i = 0; i < this.batch.length; i++) {
            const key = Buffer.from(String(i) + '\u0000', 'latin1');
            parts.push(Buffer.from([0x03]), key, this.batch[i]);
            arrLen += 1 + key.length + this.batch[i].length;
        }
        const arrHead = Buffer.alloc(4);
        arrHead.writeInt32LE(arrLen);
        const arr = Buffer.concat([arrHead, ...parts, Buffer.from([0])], arrLen);
        const tail = serialize({ id: this.id, ns: this.ns });      /* {id, ns} as a document */
        const name = Buffer.from(this.batchName + '\u0000', 'utf8');
        /* cursor doc = int32 len + (0x04 name arr) + tail elements + 0 */
        const curLen = 4 + 1 + name.length + arr.length + (tail.length - 5) + 1;
        const curHead = Buffer.alloc(4);
        curHead.writeInt32LE(curLen);
        const cursorDoc = Buffer.concat([curHead, Buffer.from([0x04]), name, arr,
            tail.subarray(4, tail.length - 1), Buffer.from([0])], curLen);
        const rest = serialize(Object.assign({ ok: new Double(1) }, this.extra));
        const cname = Buffer.from('cursor\u0000', 'latin1');
        const topLen = 4 + 1 + cname.length + cursorDoc.length + (rest.length - 5) + 1;
        const topHead = Buffer.alloc(4);
        topHead.writeInt32LE(topLen);
        return Buffer.concat([topHead, Buffer.from([0x03]), cname, cursorDoc,
            rest.subarray(4, rest.length - 1), Buffer.from([0])], topLen);
    }
}

function cursorReply(ns, items, schema, batchSize, singleBatch) {
    const { id, batch } = makeCursorReply(ns, items, schema, batchSize, singleBatch, true);
    return new RawReply(ns, id, 'firstBatch', batch);
}

/* ------------------------------------------------------------------ */
/* query planning and execution                                       */
/* ------------------------------------------------------------------ */

/*
 * The planner turns a filter into index bounds the way mongod's
 * IndexBoundsBuilder does, for the operators reporterd sends: per field a
 * union of intervals over key encodings (half-open [lo, hi), with the text
 * explain prints), "exact" when the intervals hold exactly the values that
 * match (only exact bounds may be complemented, for $not/$ne/$nin).
 * Equality (scalar, $eq, $in) gives points; $lt/$lte/$gt/$gte give a range
 * within the operand's type ({$lte: 5} is [-inf.0, 5]); $not complements
 * ({$not: {$lte: 5}} is [MinKey, -inf.0) U (5, MaxKey], so null, missing,
 * NaN and strings stay in); $exists: false is the null point (inexact).
 * Anything else leaves the field unbounded.  A top-level $and is merged;
 * a top-level $or is planned branch by branch (each branch with the rest
 * of the filter) when every branch can use an index.
 *
 * An index is scored by the number of its leading fields the bounds pin:
 * points on a prefix (at most MAX_POINTS combinations), then intervals on
 * the next field.  The best score wins (ties: the hinted index, then an
 * index whose order gives the requested sort, then the first created);
 * none scoring means a collection scan.  Every candidate is tested against
 * the whole filter, so the bounds only decide how much is read: what
 * explain and serverStatus count as keys and documents examined, as
 * mongod does (keys: index entries visited; documents: documents fetched).
 */
const MAX_POINTS = 200000;
const FULL_IV = { lo: '', hi: KEY_END, lt: '[MinKey', ht: 'MaxKey]' };

function showValue(v) {
    if (v === undefined || v === null) return 'null';
    if (typeof v === 'number') {
        if (v === Infinity) return 'inf.0';
        if (v === -Infinity) return '-inf.0';
        return Number.isNaN(v) ? 'nan.0' : String(v);
    }
    if (typeof v === 'string') return JSON.stringify(v);
    if (v instanceof Date) return `new Date(${v.getTime()})`;
    switch (v._bsontype) {
    case 'ObjectId': case 'ObjectID': return `ObjectId('${v.toHexString()}')`;
    case 'Long': return v.toString();
    case 'MinKey': return 'MinKey';
    case 'MaxKey': return 'MaxKey';
    default: return String(v);
    }
}

function pointBounds(v) {
    if (v instanceof RegExp || Array.isArray(v) || isPlainObject(v) || isNaNum(v)) return null;
    const e = encValue(v);
    if (e === undefined) return null;
    const t = showValue(v);
    return { ivs: [{ lo: e, hi: succ(e), lt: '[' + t, ht: t + ']', point: true }], exact: true };
}

/* Sorted, disjoint union of interval lists. */
function unionIvs(ivs) {
    const s = ivs.slice().sort((a, b) => cmp3(a.lo, b.lo));
    const out = [];
    for (const iv of s) {
        const last = out[out.length - 1];
        if (last && iv.lo <= last.hi) {
            if (iv.hi > last.hi) out[out.length - 1] = { lo: last.lo, hi: iv.hi, lt: last.lt, ht: iv.ht };
        } else {
            out.push(iv);
        }
    }
    return out;
}

function intersectIvs(a, b) {
    const out = [];
    for (const x of a) {
        for (const y of b) {
            const lo = x.lo >= y.lo ? x : y;
            const hi = x.hi <= y.hi ? x : y;
            if (lo.lo < hi.hi) {
                out.push({ lo: lo.lo, hi: hi.hi, lt: lo.lt, ht: hi.ht, point: lo === hi && lo.point });
            }
        }
    }
    return unionIvs(out);
}

const flipLo = (ht) => (ht.endsWith(']') ? '(' : '[') + ht.slice(0, -1);
const flipHi = (lt) => lt.slice(1) + (lt[0] === '[' ? ')' : ']');

function complementIvs(ivs) {
    const out = [];
    let cur = FULL_IV.lo;
    let curT = FULL_IV.lt;
    for (const iv of ivs) {
        if (iv.lo > cur) out.push({ lo: cur, hi: iv.lo, lt: curT, ht: flipHi(iv.lt) });
        cur = iv.hi;
        curT = flipLo(iv.ht);
    }
    if (cur < FULL_IV.hi) out.push({ lo: cur, hi: FULL_IV.hi, lt: curT, ht: FULL_IV.ht });
    return out;
}

/* {$lt/$lte/$gt/$gte: v}: the values of v's type on that side of it. */
function rangeBounds(kind, v) {
    if (isNaNum(v) || v instanceof RegExp) return null;
    if (v === null || v === undefined) {
        return kind === LTE || kind === GTE ? pointBounds(null) : { ivs: [], exact: true };
    }
    const e = encValue(v);
    if (e === undefined || e === MINKEY_CH || e === MAXKEY_CH) return null;
    const t = showValue(v);
    let tlo;
    let thi;
    let tlt;
    let tht;
    if (e[0] === NUM_CH) {
        tlo = encNumber(-Infinity); thi = succ(encNumber(Infinity)); tlt = '[-inf.0'; tht = 'inf.0]';
    } else {
        tlo = e[0]; thi = succ(e[0]); tlt = '[' + typeName(v) + ' min'; tht = typeName(v) + ' max]';
    }
    let iv;
    switch (kind) {
    case LT: iv = { lo: tlo, hi: e, lt: tlt, ht: t + ')' }; break;
    case LTE: iv = { lo: tlo, hi: succ(e), lt: tlt, ht: t + ']' }; break;
    case GT: iv = { lo: succ(e), hi: thi, lt: '(' + t, ht: tht }; break;
    default: iv = { lo: e, hi: thi, lt: '[' + t, ht: tht }; break;
    }
    return { ivs: iv.lo < iv.hi ? [iv] : [], exact: true };
}

const RANGE_KINDS = { $lt: LT, $lte: LTE, $gt: GT, $gte: GTE };

/* Bounds of one field's condition, or null when it does not bound it. */
function fieldBounds(c) {
    if (!isPlainObject(c) || !Object.keys(c).some((k) => k[0] === '$')) return pointBounds(c);
    let acc = null;
    let exact = true;
    for (const op of Object.keys(c)) {
        const v = c[op];
        let b = null;
        if (op === '$eq') b = pointBounds(v);
        else if (RANGE_KINDS[op]) b = rangeBounds(RANGE_KINDS[op], v);
        else if (op === '$in' || op === '$nin') {
            if (Array.isArray(v)) {
                const ps = v.map(pointBounds);
                if (ps.every((p) => p)) b = { ivs: unionIvs(ps.flatMap((p) => p.ivs)), exact: true };
            }
            if (b && op === '$nin') b = { ivs: complementIvs(b.ivs), exact: true };
        } else if (op === '$ne') {
            const p = pointBounds(v);
            if (p) b = { ivs: complementIvs(p.ivs), exact: true };
        } else if (op === '$not') {
            const inner = isPlainObject(v) ? fieldBounds(v) : null;
            if (inner && inner.exact) b = { ivs: complementIvs(inner.ivs), exact: true };
        } else if (op === '$exists' && !mongoTruthy(v)) {
            b = { ivs: pointBounds(null).ivs, exact: false };
        }
        if (!b) { exact = false; continue; }
        if (!b.exact) exact = false;
        acc = acc ? intersectIvs(acc, b.ivs) : b.ivs;
    }
    return acc ? { ivs: acc, exact } : null;
}

/* field -> bounds of a conjunction (the filter's top level and $and). */
function addConjunction(filter, into) {
    if (!isPlainObject(filter)) return;
    for (const k of Object.keys(filter)) {
        const c = filter[k];
        if (k === '$and' && Array.isArray(c)) {
            for (const e of c) addConjunction(e, into);
            continue;
        }
        if (k[0] === '$') continue;
        const b = fieldBounds(c);
        if (!b) continue;
        const cur = into.get(k);
        into.set(k, cur ? { ivs: intersectIvs(cur.ivs, b.ivs), exact: cur.exact && b.exact } : b);
    }
    return into;
}

/* Key ranges of index ix for a conjunction, or null if it pins no field. */
function indexScan(ix, conj) {
    if (!ix.usable) return null;
    let prefixes = [''];
    let eq = 0;
    let used = 0;
    let ranges = null;
    const bounds = {};
    for (let i = 0; i < ix.fields.length; i++) {
        const f = ix.fields[i];
        const b = conj.get(f);
        if (!b || ix.dirs[i] !== 1) break;
        const ivs = b.ivs;
        bounds[f] = ivs.map((iv) => `${iv.lt}, ${iv.ht.startsWith('[') ? iv.ht : iv.ht}`);
        used++;
        if (ivs.every((iv) => iv.point) && prefixes.length * ivs.length <= MAX_POINTS) {
            const next = [];
            for (const p of prefixes) for (const iv of ivs) next.push(p + iv.lo);
            prefixes = next;
            eq++;
            continue;
        }
        ranges = [];
        for (const p of prefixes) for (const iv of ivs) ranges.push([p + iv.lo, p + iv.hi]);
        break;
    }
    if (!used) return null;
    if (!ranges) ranges = prefixes.map((p) => [p, succ(p)]);
    ranges.sort((a, b) => cmp3(a[0], b[0]));
    for (let i = used; i < ix.fields.length; i++) bounds[ix.fields[i]] = ['[MinKey, MaxKey]'];
    for (let i = 0; i < used; i++) {
        const f = ix.fields[i];
        if (!bounds[f]) bounds[f] = ['[MinKey, MaxKey]'];
    }
    return { ix, ranges, used, eq, single: prefixes.length === 1, bounds };
}

/* Does scan s return documents in the order of sort spec? */
function scanGivesSort(s, conj, sort) {
    if (!s.single || s.ix.other.size) return false;
    const keys = Object.keys(sort).filter((k) => {
        const b = conj.get(k);
        return !(b && b.ivs.length === 1 && b.ivs[0].point && s.ix.fields.indexOf(k) >= 0 && s.ix.fields.indexOf(k) < s.eq);
    });
    for (let j = 0; j < keys.length; j++) {
        if (sort[keys[j]] !== 1 || s.ix.fields[s.eq + j] !== keys[j] || s.ix.dirs[s.eq + j] !== 1) return false;
    }
    return true;
}

function findHint(coll, hint) {
    if (hint === undefined || hint === null) return null;
    if (typeof hint === 'string') {
        const ix = coll.ix.get(hint);
        if (ix) return ix;
    } else if (isPlainObject(hint)) {
        if (!Object.keys(hint).length) return null;
        for (const ix of coll.ix.values()) if (mingoUtil.isEqual(ix.spec.key, hint)) return ix;
        if (hint.$natural !== undefined) return 'COLLSCAN';
    }
    throw badValue('hint provided does not correspond to an existing index');
}

function planConjunction(coll, conj, sort, hint) {
    if (hint === 'COLLSCAN') return null;
    let best = null;
    let bestSorted = false;
    for (const ix of coll.ix.values()) {
        if (hint && ix !== hint) continue;
        let s = indexScan(ix, conj);
        if (!s && hint) {
            s = { ix, ranges: [['', KEY_END]], used: 0, eq: 0, single: true, bounds: {} };
            for (const f of ix.fields) s.bounds[f] = ['[MinKey, MaxKey]'];
        }
        if (!s) continue;
        const sorted = !!sort && scanGivesSort(s, conj, sort);
        if (!best || s.used > best.used || (s.used === best.used && sorted && !bestSorted)) {
            best = s;
            bestSorted = sorted;
        }
    }
    if (best) best.sorted = bestSorted;
    return best;
}

/* The plan of a filter: {scans: [...]} (one per $or branch) or {scans: null}
 * for a collection scan; plan.sorted when the index order is the sort. */
function planQuery(coll, filter, sort, hintSpec) {
    const hint = findHint(coll, hintSpec);
    const hasSort = sort && Object.keys(sort).length ? sort : null;
    if (isPlainObject(filter) && Array.isArray(filter.$or) && filter.$or.length && hint !== 'COLLSCAN') {
        const rest = Object.assign({}, filter);
        delete rest.$or;
        const scans = [];
        for (const br of filter.$or) {
            const conj = addConjunction(rest, new Map());
            addConjunction(br, conj);
            const s = planConjunction(coll, conj, null, hint);
            if (!s) { scans.length = 0; break; }
            scans.push(s);
        }
        if (scans.length) return { scans, sorted: false, or: true };
    }
    const s = planConjunction(coll, addConjunction(filter, new Map()), hasSort, hint);
    return s ? { scans: [s], sorted: s.sorted, or: false } : { scans: null, sorted: false, or: false };
}

/* Documents examined and index keys examined, since the server started
 * (serverStatus metrics.queryExecutor.scannedObjects / scanned). */
const totals = { keys: 0, docs: 0, returned: 0, inserted: 0, updated: 0, deleted: 0 };

function newStats() {
    return { keys: 0, docs: 0, nReturned: 0, started: Date.now() };
}

/* Candidate documents of a plan, each once, counting what is examined. */
function* scanPlan(coll, plan, stats) {
    if (!plan.scans) {
        for (const d of coll.docs) {
            tick();
            stats.docs++;
            totals.docs++;
            yield d;
        }
        return;
    }
    const seen = plan.or ? new Set() : null;
    for (const s of plan.scans) {
        for (const [lo, hi] of s.ranges) {
            for (const e of s.ix.tree.range(lo, hi)) {
                tick();
                stats.keys++;
                totals.keys++;
                s.keysExamined = (s.keysExamined || 0) + 1;
                const d = e[1];
                if (seen) { if (seen.has(d)) continue; seen.add(d); }
                stats.docs++;
                totals.docs++;
                yield d;
            }
        }
        for (const d of s.ix.other) {
            tick();
            if (seen) { if (seen.has(d)) continue; seen.add(d); }
            stats.docs++;
            totals.docs++;
            yield d;
        }
    }
}

/* filter, then sort in MongoDB's order, skip, limit, project; the plan and
 * what it examined go to ex (explain) when given. */
function runFind(coll, filter, projection, sort, skip, limit, hint, ex) {
    const stats = ex ? ex.stats : newStats();
    if (!coll) {
        if (ex) ex.plan = { scans: null, sorted: false, eof: true };
        return [];
    }
    const plan = planQuery(coll, filter || {}, sort, hint);
    if (ex) ex.plan = plan;
    const q = new Query(filter || {}, { context: TYPED_CONTEXT });
    const hasSort = sort && Object.keys(sort).length;
    const stop = (!hasSort || plan.sorted) && limit ? (skip || 0) + limit : Infinity;
    let items = [];
    for (const d of scanPlan(coll, plan, stats)) {
        if (q.test(d)) {
            items.push(d);
            if (items.length >= stop) break;
        }
    }
    if (hasSort && !plan.sorted) items = sortDocs(items, sort);
    if (skip) items = items.slice(skip);
    if (limit) items = items.slice(0, limit);
    const proj = projection && Object.keys(projection).length ? projection : undefined;
    if (proj) items = new Query({}, { context: TYPED_CONTEXT }).find(items, proj).all();
    stats.nReturned = items.length;
    totals.returned += items.length;
    return items;
}

/* ------------------------------------------------------------------ */
/* command helpers                                                    */
/* ------------------------------------------------------------------ */

function collName(cmd, name) {
    const v = cmd[name];
    if (typeof v !== 'string') {
        throw new CmdError(73, 'InvalidNamespace',
            `collection name has invalid type ${v === null ? 'null' : typeof v}`);
    }
    return v;
}

function optInt(cmd, name, min) {
    const v = cmd[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw typeMismatch(`Field '${name}' should be a number, but got ${typeof v}`);
    }
    if (min !== undefined && v < min) throw badValue(`${name} value must be >= ${min}, got ${v}`);
    return Math.trunc(v);
}

function mingoError(e) {
    if (e instanceof CmdError) return e;
    const msg = String(e && e.message || e);
    let m = /unregistered pipeline operator (\$\w+)/.exec(msg);
    if (m) return new CmdError(40324, 'Location40324', `Unrecognized pipeline stage name: '${m[1]}'`);
    m = /accumulator '(\$\w+)' is not registered/.exec(msg) || /expression '?(\$\w+)'? is not registered/.exec(msg);
    if (m) return new CmdError(168, 'InvalidPipelineOperator', `Unrecognized expression '${m[1]}'`);
    m = /unknown query operator (\$\w+)/.exec(msg);
    if (m) return badValue(`unknown operator: ${m[1]}`);
    if (e instanceof RangeError) return new CmdError(2, 'BadValue', msg);
    return new CmdError(2, 'BadValue', msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function helloReply(conn, cmd, name) {
    const r = {
        helloOk: true,
        ismaster: true,
        isWritablePrimary: true,
        maxBsonObjectSize: new Int32(MAX_BSON),
        maxMessageSizeBytes: new Int32(MAX_MESSAGE),
        maxWriteBatchSize: new Int32(MAX_WRITE_BATCH),
        localTime: new Date(),
        logicalSessionTimeoutMinutes: new Int32(30),
        connectionId: new Int32(conn.id),
        minWireVersion: new Int32(0),
        maxWireVersion: new Int32(MAX_WIRE_VERSION),
        readOnly: false,
        ok: new Double(1),
    };
    if (name === 'hello') delete r.ismaster;
    if (cmd.client && !conn.client) {
        conn.client = cmd.client;
        const d = cmd.client.driver || {};
        log(`conn${conn.id} client ${d.name || '?'} ${d.version || ''}`.trim());
    }
    return r;
}

/* ---- per-document numeric types ---- */

/*
 * Every stored document carries its own numeric types: doc[TYPES] maps
 * each path holding a JS number (an array's elements under "path.$") to
 * 'int', 'long' or 'double', or to 'value' where the elements of one array
 * differ (then typed by value); values that carry their own type (int64
 * beyond +-2^53, Decimal128) need no entry.  The map is complete, so it is
 * marked DERIVED (the collection schema does not apply to the document),
 * and frozen: documents with the same map share one object
 * (Collection.internTypes).  A collection holding 8 as int32, int64 and
 * double thus returns each document's 8 with its own type, and $type and
 * a $group _id see it.  Updates rewrite the entries of the paths they
 * write (retypeDoc).
 */

/* Types of container[key] (a command-body value: numbers typed by plainCmd
 * under LIT, else by value) into the Map into, under path. */
function litTypes(container, key, path, into) {
    const v = container[key];
    if (typeof v === 'number') {
        noteType(into, path, (container[LIT] && container[LIT][key]) || valueType(v));
        return;
    }
    if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) litTypes(v, i, path + '.$', into);
        return;
    }
    if (isPlainObject(v)) for (const k of Object.keys(v)) litTypes(v, k, path + '.' + k, into);
}

function valueTypes(container, key, path) {
    const m = new Map();
    litTypes(container, key, path, m);
    return m;
}

/* Set the types of a document built from command-body values. */
function typeDoc(coll, doc, from) {
    const m = new Map();
    for (const k of Object.keys(doc)) litTypes(from && hasOwn(from, k) ? from : doc, k, k, m);
    doc[TYPES] = coll.internTypes(m);
}

/* After an update wrote some paths: written is a list of [path, Map of
 * the types under it, or null when they are not known (typed by value)]. */
function retypeDoc(coll, doc, written) {
    if (!written.length) return;
    const old = doc[TYPES];
    const m = new Map();
    if (old) {
        for (const p of Object.keys(old)) {
            if (!written.some(([w]) => p === w || p.startsWith(w + '.'))) m.set(p, old[p]);
        }
    }
    for (const [, sub] of written) if (sub) for (const [p, t] of sub) m.set(p, t);
    doc[TYPES] = coll.internTypes(m);
}

/* Upsert seed: the equality parts of a query, with their types. */
function seedFromQuery(coll, q) {
    const seed = {};
    const m = new Map();
    if (isPlainObject(q)) {
        for (const k of Object.keys(q)) {
            if (k[0] === '$') continue;
            const v = q[k];
            if (isPlainObject(v) && Object.keys(v).some((x) => x[0] === '$')) {
                if (hasOwn(v, '$eq')) {
                    mingoUtil.setValue(seed, k, v.$eq);
                    litTypes(v, '$eq', k, m);
                }
                continue;
            }
            mingoUtil.setValue(seed, k, v);
            litTypes(q, k, k, m);
        }
    }
    seed[TYPES] = coll.internTypes(m);
    return seed;
}

function isUpdateOperatorDoc(u) {
    return isPlainObject(u) && Object.keys(u).length > 0 && Object.keys(u)[0][0] === '$';
}

/* ---- $inc ---- */

/*
 * $inc as mongod 4.4 to 7.0 runs it (src/mongo/db/update/arithmetic_node.cpp,
 * util/safe_num.cpp; jstests/core/inc-SERVER-7446.js):
 *   - an operand that is not a number fails the statement before anything
 *     is read: TypeMismatch (14) "Cannot increment with non-numeric
 *     argument: {a: "x"}";
 *   - a missing field is created with the operand, type included;
 *   - a field that is not a number fails: TypeMismatch (14) "Cannot apply
 *     $inc to a value of non-numeric type. {_id: 1} has the field 'a' of
 *     non-numeric type string";
 *   - otherwise the sum is SafeNum's (typed numbers above): int32 past
 *     2^31 becomes int64; an int64 result past 2^63 is not stored but
 *     fails: BadValue (2) "Failed to apply $inc operations to current
 *     value ((NumberLong)9223372036854775807) for document {_id: 1}" (the
 *     value before the $inc, mongod's SafeNum::debugString, and the _id as
 *     BSONElement::toString prints it);
 *   - a sum identical to the value (same type, same value) is a no-op.
 * The update command reports these errors as the statement's write error;
 * a multi-document update that fails on one document keeps the documents
 * updated before it (each is its own write) and counts none of them in
 * n / nModified, as mongod does.  findAndModify answers the command error
 * "Plan executor error during findAndModify :: caused by :: ...".
 * Paths through array elements (a.0.b, a.$, a.$[x]) are left to mingo.
 */
const SIMPLE_PATH = (p) => p.split('.').every((c) => c.length > 0 && c[0] !== '$' && !/^\d+$/.test(c));

/* The operands of u.$inc, checked as mongod parses them: [{path, operand}],
 * or null when u has no $inc.  ops.simple: every path is left to us. */
function incOperands(u) {
    const spec = u.$inc;
    if (spec === undefined) return null;
    if (!isPlainObject(spec)) {
        throw new CmdError(9, 'FailedToParse', `Modifiers operate on fields but we found type ${typeName(spec)} ` +
            `instead. For example: {$mod: {<field>: ...}} not {$inc: ${bsonString(spec)}}`);
    }
    const ops = [];
    for (const path of Object.keys(spec)) {
        const v = spec[path];
        const operand = typedNum(v, spec[LIT] && spec[LIT][path]);
        if (!operand) {
            throw new CmdError(14, 'TypeMismatch', `Cannot increment with non-numeric argument: {${path}: ${bsonString(v)}}`);
        }
        ops.push({ path, operand });
    }
    ops.simple = ops.every((o) => SIMPLE_PATH(o.path));
    return ops;
}

/* mongod refuses an update whose operators write overlapping paths. */
function checkIncConflicts(u, ops) {
    let incSeen = false;
    for (const op of Object.keys(u)) {
        if (op === '$inc') { incSeen = true; continue; }
        if (!isPlainObject(u[op])) continue;
        for (const k of Object.keys(u[op])) {
            const targets = op === '$rename' && typeof u[op][k] === 'string' ? [k, u[op][k]] : [k];
            for (const t of targets) {
                for (const { path: p } of ops) {
                    if (t === p || t.startsWith(p + '.') || p.startsWith(t + '.')) {
                        const at = t.length < p.length ? t : p;
                        throw new CmdError(40, 'ConflictingUpdateOperators',
                            `Updating the path '${incSeen ? t : p}' would create a conflict at '${at}'`);
                    }
                }
            }
        }
    }
}

/* An operator update, parsed: {inc: $inc operands we apply (or null),
 * rest: what mingo applies}.  Throws mongod's parse errors. */
function updatePlan(u) {
    const ops = incOperands(u);
    const rest = Object.assign({}, u);
    delete rest.$setOnInsert;
    if (ops && ops.simple) {
        checkIncConflicts(u, ops);
        delete rest.$inc;
        return { inc: ops, rest };
    }
    return { inc: null, rest };
}

const idString = (doc) => (doc._id === undefined ? 'no id'
    : `_id: ${bsonString(doc._id, doc[TYPES] && doc[TYPES]._id)}`);

/* What $inc makes of doc: [{path, r: typed result}] (no-ops left out);
 * doc is not changed.  Throws the errors listed above. */
function computeInc(doc, ops) {
    const types = doc[TYPES];
    const out = [];
    for (const { path, operand } of ops) {
        const parts = path.split('.');
        let cur = doc;
        for (let i = 0; i < parts.length - 1 && cur !== undefined; i++) {
            const next = hasOwn(cur, parts[i]) ? cur[parts[i]] : undefined;
            if (next !== undefined && !isPlainObject(next)) {
                const at = parts.slice(0, i + 1).join('.');
                throw new CmdError(28, 'PathNotViable', `Cannot create field '${parts[i + 1]}' in element ` +
                    `{${parts[i]}: ${bsonString(next, types && types[at])}}`);
            }
            cur = next;
        }
        const last = parts[parts.length - 1];
        const old = cur !== undefined && hasOwn(cur, last) ? cur[last] : undefined;
        if (old === undefined) {
            out.push({ path, r: operand });
            continue;
        }
        const a = typedNum(old, types && types[path]);
        if (!a) {
            throw new CmdError(14, 'TypeMismatch', `Cannot apply $inc to a value of non-numeric type. {${idString(doc)}} ` +
                `has the field '${last}' of non-numeric type ${typeName(old)}`);
        }
        const r = safeAdd(operand, a);
        if (r && safeIdentical(r, a)) continue;
        if (!r) {
            throw new CmdError(2, 'BadValue', `Failed to apply $inc operations to current value (${safeDebug(a)}) ` +
                `for document {${idString(doc)}}`);
        }
        out.push({ path, r });
    }
    return out;
}

/* Store computeInc's results; their types, as retypeDoc takes them. */
function applyInc(doc, results) {
    const written = [];
    for (const { path, r } of results) {
        const [v, t] = typedStore(r);
        const parts = path.split('.');
        let cur = doc;
        for (let i = 0; i < parts.length - 1; i++) {
            if (!hasOwn(cur, parts[i]) || cur[parts[i]] === undefined) cur[parts[i]] = {};
            cur = cur[parts[i]];
        }
        cur[parts[parts.length - 1]] = v;
        written.push([path, new Map(t ? [[path, t]] : [])]);
    }
    return written;
}

/* The old values of the paths $min and $max may write. */
function minMaxBefore(doc, u) {
    const m = new Map();
    for (const op of ['$min', '$max']) {
        if (!isPlainObject(u[op])) continue;
        for (const p of Object.keys(u[op])) if (SIMPLE_PATH(p)) m.set(p, mingoUtil.resolve(doc, p));
    }
    return m;
}

/* The paths an operator update wrote (see retypeDoc), $inc's excepted. */
function updateWritten(u, doc, oldTypes, isUpsert, incApplied, mmBefore) {
    const w = [];
    for (const op of Object.keys(u)) {
        const spec = u[op];
        if (!isPlainObject(spec) || (op === '$inc' && incApplied)) continue;
        for (const p of Object.keys(spec)) {
            if (!SIMPLE_PATH(p)) {
                w.push([p.split('.')[0], null]);
                continue;
            }
            switch (op) {
            case '$set':
                w.push([p, valueTypes(spec, p, p)]);
                break;
            case '$setOnInsert':
                if (isUpsert) w.push([p, valueTypes(spec, p, p)]);
                break;
            case '$min': case '$max': {
                const before = mmBefore.get(p);
                const after = mingoUtil.resolve(doc, p);
                if (before === undefined ? after !== undefined : bsonCompare(before, after) !== 0) w.push([p, valueTypes(spec, p, p)]);
                break;
            }
            case '$rename': {
                const to = spec[p];
                w.push([p, null]);
                if (typeof to !== 'string') break;
                const moved = new Map();
                if (oldTypes) {
                    for (const q of Object.keys(oldTypes)) {
                        if (q === p || q.startsWith(p + '.')) moved.set(to + q.slice(p.length), oldTypes[q]);
                    }
                }
                w.push([to, moved]);
                break;
            }
            default:
                w.push([p, null]);
                break;
            }
        }
    }
    return w;
}

function applyUpdate(coll, doc, u, arrayFilters, isUpsert) {
    if (Array.isArray(u)) throw new CmdError(2, 'BadValue', 'pipeline-style updates are not supported by the test server');
    if (isUpdateOperatorDoc(u)) {
        const plan = updatePlan(u);
        const before = JSON.stringify(BSON.EJSON.serialize(doc));
        const beforeTypes = doc[TYPES];
        const inc = plan.inc ? computeInc(doc, plan.inc) : null;
        const mm = minMaxBefore(doc, u);
        if (Object.keys(plan.rest).length) mingoUpdater.update(doc, plan.rest, arrayFilters, undefined, { cloneMode: 'none' });
        if (isUpsert && isPlainObject(u.$setOnInsert)) {
            for (const k of Object.keys(u.$setOnInsert)) mingoUtil.setValue(doc, k, u.$setOnInsert[k]);
        }
        const written = updateWritten(u, doc, beforeTypes, isUpsert, !!plan.inc, mm);
        if (inc) written.push(...applyInc(doc, inc));
        retypeDoc(coll, doc, written);
        return doc[TYPES] !== beforeTypes || JSON.stringify(BSON.EJSON.serialize(doc)) !== before;
    }
    if (!isPlainObject(u)) throw badValue('Update document must be an object');
    const id = doc._id;
    const idType = doc[TYPES] && doc[TYPES]._id;
    const before = JSON.stringify(BSON.EJSON.serialize(doc));
    const beforeTypes = doc[TYPES];
    for (const k of Object.keys(doc)) delete doc[k];
    if (id !== undefined) doc._id = id;
    for (const k of Object.keys(u)) if (k !== '_id') doc[k] = u[k];
    if (doc._id === undefined && u._id !== undefined) doc._id = u._id;
    const m = new Map();
    for (const k of Object.keys(doc)) {
        if (k === '_id' && id !== undefined) { if (idType) m.set('_id', idType); } else litTypes(u, k, k, m);
    }
    doc[TYPES] = coll.internTypes(m);
    return doc[TYPES] !== beforeTypes || JSON.stringify(BSON.EJSON.serialize(doc)) !== before;
}

/* The insert half of an upsert: the query's equality fields, then the
 * update.  A document that the query did not match but that holds the same
 * _id (or unique key) makes it fail with E11000, as in mongod: an update
 * guarded by {_id: p, last: {$lt: n}} never inserts a second p. */
function upsertDoc(coll, query, update, arrayFilters) {
    const doc = seedFromQuery(coll, query);
    if (isUpdateOperatorDoc(update)) {
        applyUpdate(coll, doc, update, arrayFilters, true);
    } else {
        const seedTypes = doc[TYPES];
        Object.assign(doc, update);
        const m = new Map(Object.entries(seedTypes));
        for (const k of Object.keys(update)) {
            for (const p of [...m.keys()]) if (p === k || p.startsWith(k + '.')) m.delete(p);
            litTypes(update, k, k, m);
        }
        doc[TYPES] = coll.internTypes(m);
    }
    const full = { _id: doc._id !== undefined ? doc._id : new ObjectId() };
    Object.assign(full, doc);
    full[TYPES] = doc[TYPES];
    const err = coll.insertOne(full);
    if (err) {
        throw Object.assign(new CmdError(err.code, 'DuplicateKey', err.errmsg), { keyPattern: err.keyPattern, keyValue: err.keyValue });
    }
    return full;
}

/* A stored document's _id as a value to send, with its type. */
const typedId = (doc) => wrapValue(doc._id, '_id', doc[TYPES], null);

function prepareDoc(raw, coll) {
    const d = BSON.deserialize(raw, DESER_RAW);
    const m = new Map();
    const out = {};     /* like mongod, _id always comes first */
    out._id = d._id === undefined ? new ObjectId() : plainValue(d._id, m, '_id');
    for (const k of Object.keys(d)) if (k !== '_id') out[k] = plainValue(d[k], m, k);
    out[TYPES] = coll.internTypes(m);
    return out;
}

function docsFrom(cmd, seqs, field) {
    /* raw BSON buffers from a kind-1 sequence, or plain docs from the body */
    if (seqs[field]) return { raw: true, list: seqs[field] };
    const v = cmd[field];
    if (v === undefined) return { raw: true, list: [] };
    if (!Array.isArray(v)) throw typeMismatch(`BSON field '${cmd.__name}.${field}' is the wrong type, expected type 'array'`);
    return { raw: false, list: v };
}

/* ------------------------------------------------------------------ */
/* fail points (MongoDB's test commands)                              */
/* ------------------------------------------------------------------ */

/*
 * configureFailPoint, as mongod 4.4 runs it with enableTestCommands=1 (an
 * admin command; reply {count: <times the fail point fired so far>, ok: 1}):
 *
 *   {configureFailPoint: "failCommand",
 *    mode: "alwaysOn" | "off" | {times: n} | {skip: n} | {activationProbability: p},
 *    data: {failCommands: ["aggregate", ...],   command names it applies to
 *           errorCode: 91,                      reply {ok: 0, errmsg: "Failing command
 *                                               due to 'failCommand' failpoint", code,
 *                                               codeName}
 *           errorLabels: ["RetryableWriteError"],   added to that reply
 *           closeConnection: true,              close the connection, no reply
 *           blockConnection: true, blockTimeMS: n,  wait n ms first (interrupted by
 *                                               the command's maxTimeMS: code 50)
 *           appName: "x",                       only clients whose handshake named
 *                                               this application
 *           namespace: "db.coll"}}              only commands on this namespace
 *
 * It fires before the command runs, only for commands named in failCommands
 * (never for configureFailPoint itself) and only when it has something to do
 * (errorCode, closeConnection or blockConnection).  {times: n} counts the
 * commands it fired on, then turns itself off.
 *
 *   {configureFailPoint: "maxTimeAlwaysTimeOut", mode: ...}: every command
 *       carrying maxTimeMS fails with 50 MaxTimeMSExpired at once.
 *   {configureFailPoint: "maxTimeNeverTimeOut", mode: ...}: maxTimeMS is
 *       ignored.
 */

const FAIL_POINTS = new Map(['failCommand', 'maxTimeAlwaysTimeOut', 'maxTimeNeverTimeOut']
    .map((n) => [n, { mode: 'off', n: 0, p: 0, data: {}, entered: 0 }]));

/* Does the fail point fire now?  Consumes one of {times: n} / {skip: n}. */
function failPointFires(name) {
    const fp = FAIL_POINTS.get(name);
    switch (fp.mode) {
    case 'off':
        return false;
    case 'times':
        if (fp.n <= 0) { fp.mode = 'off'; return false; }
        if (--fp.n === 0) fp.mode = 'off';
        break;
    case 'skip':
        if (fp.n > 0) { fp.n--; return false; }
        break;
    case 'random':
        if (!(Math.random() < fp.p)) return false;
        break;
    default:
        break;
    }
    fp.entered++;
    return true;
}

/* codeName of mongod 4.4 for the codes tests inject; codes outside its
 * error_codes.yml are named "Location<code>" as mongod does. */
const CODE_NAMES = {
    1: 'InternalError', 2: 'BadValue', 6: 'HostUnreachable', 7: 'HostNotFound', 8: 'UnknownError',
    9: 'FailedToParse', 11: 'UserNotFound', 13: 'Unauthorized', 14: 'TypeMismatch', 16: 'InvalidLength',
    20: 'IllegalOperation', 24: 'LockTimeout', 26: 'NamespaceNotFound', 43: 'CursorNotFound',
    48: 'NamespaceExists', 50: 'MaxTimeMSExpired', 59: 'CommandNotFound', 64: 'WriteConcernFailed',
    72: 'InvalidOptions', 73: 'InvalidNamespace', 89: 'NetworkTimeout', 91: 'ShutdownInProgress',
    96: 'OperationFailed', 100: 'UnsatisfiableWriteConcern', 112: 'WriteConflict', 115: 'CommandNotSupported',
    125: 'CommandFailed', 133: 'FailedToSatisfyReadPreference', 134: 'ReadConcernMajorityNotAvailableYet',
    146: 'ExceededMemoryLimit', 168: 'InvalidPipelineOperator', 175: 'QueryPlanKilled',
    189: 'PrimarySteppedDown', 211: 'KeyNotFound', 237: 'CursorKilled', 251: 'NoSuchTransaction',
    262: 'ExceededTimeLimit', 266: 'FailPointSetFailed', 279: 'ClientDisconnect', 9001: 'SocketException',
    10107: 'NotWritablePrimary', 11000: 'DuplicateKey', 11600: 'InterruptedAtShutdown', 11601: 'Interrupted',
    11602: 'InterruptedDueToReplStateChange', 13435: 'NotPrimaryNoSecondaryOk', 13436: 'NotPrimaryOrSecondary',
};
const codeName = (code) => CODE_NAMES[code] || `Location${code}`;

const COMMAND_ALIASES = { ismaster: 'isMaster' };

/* The namespace a command acts on ("db.coll", or "db.$cmd"). */
function commandNs(dbName, cmd, name) {
    const v = cmd[name];
    return typeof v === 'string' && name !== 'configureFailPoint' ? `${dbName}.${v}` : `${dbName}.$cmd`;
}

/* The failCommand fail point, evaluated before every command.  Throws
 * the injected error, returns CLOSE_CONNECTION, or returns nothing (after
 * blocking if asked to) for the command to run normally. */
async function failCommand(conn, dbName, name, cmd, ctx) {
    const fp = FAIL_POINTS.get('failCommand');
    if (fp.mode === 'off' || name === 'configureFailPoint') return undefined;
    const d = fp.data;
    const canon = COMMAND_ALIASES[name] || name;
    if (!Array.isArray(d.failCommands) ||
        !d.failCommands.some((c) => typeof c === 'string' && (COMMAND_ALIASES[c] || c) === canon)) return undefined;
    if (typeof d.appName === 'string') {
        const app = conn.client && conn.client.application && conn.client.application.name;
        if (app !== d.appName) return undefined;
    }
    if (typeof d.namespace === 'string' && commandNs(dbName, cmd, name) !== d.namespace) return undefined;
    const close = d.closeConnection === true;
    const block = d.blockConnection === true;
    const code = Number.isInteger(d.errorCode) ? d.errorCode : undefined;
    if (!close && !block && code === undefined) return undefined;
    if (!failPointFires('failCommand')) return undefined;
    log(`conn${conn.id} failCommand fail point fires on ${name}: ` +
        [block && `block ${d.blockTimeMS} ms`, close && 'close the connection', code !== undefined && `error ${code}`]
            .filter(Boolean).join(', '));
    if (block) {
        if (!Number.isInteger(d.blockTimeMS)) {
            throw new CmdError(72, 'InvalidOptions', "must specify 'blockTimeMS' when 'blockConnection' is true");
        }
        if (d.blockTimeMS < 0) throw new CmdError(72, 'InvalidOptions', "'blockTimeMS' must be non-negative");
        if (Date.now() + d.blockTimeMS >= ctx.deadline) {
            await sleep(Math.max(0, ctx.deadline - Date.now()));
            throw maxTimeExpired();
        }
        await sleep(d.blockTimeMS);
    }
    if (close) return CLOSE_CONNECTION;
    if (code !== undefined) {
        const e = new CmdError(code, codeName(code), "Failing command due to 'failCommand' failpoint");
        if (Array.isArray(d.errorLabels)) e.errorLabels = d.errorLabels.filter((l) => typeof l === 'string');
        throw e;
    }
    return undefined;
}

function configureFailPoint(cmd, ctx) {
    if (ctx.db !== 'admin') {
        throw new CmdError(13, 'Unauthorized', 'configureFailPoint may only be run against the admin database.');
    }
    const name = cmd.configureFailPoint;
    const fp = typeof name === 'string' ? FAIL_POINTS.get(name) : undefined;
    if (!fp) throw new CmdError(266, 'FailPointSetFailed', `${name} not found`);
    const m = cmd.mode;
    let mode;
    let n = 0;
    let p = 0;
    if (m === undefined) {
        throw new CmdError(20, 'IllegalOperation', "When setting a failpoint, you must supply a 'mode'");
    } else if (typeof m === 'string') {
        if (m !== 'off' && m !== 'alwaysOn') throw badValue(`unknown mode: ${m}`);
        mode = m;
    } else if (isPlainObject(m)) {
        const intOpt = (k) => {
            const v = m[k];
            if (typeof v !== 'number' || !Number.isInteger(v)) throw typeMismatch(`'${k}' option to 'mode' must be an integer`);
            if (v < 0) throw badValue(`'${k}' option to 'mode' must be positive`);
            if (v > INT32_MAX) throw badValue(`'${k}' option to 'mode' is too large`);
            return v;
        };
        if (hasOwn(m, 'times')) {
            mode = 'times';
            n = intOpt('times');
        } else if (hasOwn(m, 'skip')) {
            mode = 'skip';
            n = intOpt('skip');
        } else if (hasOwn(m, 'activationProbability')) {
            mode = 'random';
            p = m.activationProbability;
            if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw badValue('activationProbability must be between 0.0 and 1.0');
        } else {
            throw badValue("'mode' must be one of 'off', 'alwaysOn', 'times', and 'random'");
        }
    } else {
        throw typeMismatch("'mode' must be a string or JSON object");
    }
    if (cmd.data !== undefined && !isPlainObject(cmd.data)) throw typeMismatch("the 'data' field must be a JSON object");
    const count = fp.entered;
    Object.assign(fp, { mode, n, p, data: cmd.data || {} });
    log(`configureFailPoint ${name}: mode ${JSON.stringify(m)}` + (cmd.data ? ` data ${JSON.stringify(cmd.data)}` : ''));
    return { count, ok: 1 };
}

/* ------------------------------------------------------------------ */
/* find, aggregate and count, with their explain output               */
/* ------------------------------------------------------------------ */

let listenPort = 0;

const serverInfo = () => ({
    host: require('node:os').hostname(), port: listenPort, version: SERVER_VERSION, gitVersion: 'test-server',
});

function ixscanStage(s, withStats) {
    const st = {
        stage: 'IXSCAN', keyPattern: s.ix.spec.key, indexName: s.ix.name, isMultiKey: s.ix.other.size > 0,
        isUnique: s.ix.unique, isSparse: false, isPartial: false, indexVersion: 2, direction: 'forward',
        indexBounds: s.bounds,
    };
    if (withStats) st.keysExamined = s.keysExamined || 0;
    return st;
}

/* mongod 4.4's plan tree for a plan (FETCH over IXSCAN or OR of IXSCANs,
 * or COLLSCAN; SORT, SKIP, LIMIT, projection and COUNT above), with the
 * execution figures when stats are given. */
function planTree(plan, q, stats) {
    const ws = !!stats;
    let st;
    if (!plan.scans) {
        st = { stage: plan.eof ? 'EOF' : 'COLLSCAN', filter: q.filter, direction: 'forward' };
        if (ws) st.docsExamined = stats.docs;
    } else {
        const leaves = plan.scans.map((s) => ixscanStage(s, ws));
        st = { stage: 'FETCH', filter: q.filter, inputStage: leaves.length === 1 ? leaves[0] : { stage: 'OR', inputStages: leaves } };
        if (ws) st.docsExamined = stats.docs;
    }
    const hasSort = !!(q.sort && Object.keys(q.sort).length);
    if (hasSort && !plan.sorted) {
        st = { stage: 'SORT', sortPattern: q.sort, memLimit: 104857600, type: 'simple', inputStage: st };
        if (q.limit) st.limitAmount = q.limit;
    }
    if (q.skip) st = { stage: 'SKIP', skipAmount: q.skip, inputStage: st };
    if (q.limit && (!hasSort || plan.sorted)) st = { stage: 'LIMIT', limitAmount: q.limit, inputStage: st };
    if (q.projection && Object.keys(q.projection).length) {
        st = { stage: 'PROJECTION_DEFAULT', transformBy: q.projection, inputStage: st };
    }
    if (q.count) st = { stage: 'COUNT', inputStage: st };
    if (ws) {
        st.nReturned = q.count ? 0 : stats.nReturned;
        st.executionTimeMillisEstimate = Date.now() - stats.started;
    }
    return st;
}

function queryPlanner(ns, plan, q, optimized) {
    const qp = { plannerVersion: 1, namespace: ns, indexFilterSet: false, parsedQuery: q.filter || {} };
    if (optimized) qp.optimizedPipeline = true;
    qp.winningPlan = planTree(plan, q, null);
    qp.rejectedPlans = [];
    return qp;
}

function executionStats(plan, q, stats) {
    return {
        executionSuccess: true,
        nReturned: stats.nReturned,
        executionTimeMillis: Date.now() - stats.started,
        totalKeysExamined: stats.keys,
        totalDocsExamined: stats.docs,
        executionStages: planTree(plan, q, stats),
    };
}

const withExec = (verbosity) => verbosity !== 'queryPlanner';

function findArgs(cmd) {
    const filter = cmd.filter === undefined ? {} : cmd.filter;
    if (!isPlainObject(filter)) throw typeMismatch("BSON field 'FindCommandRequest.filter' is the wrong type, expected type 'object'");
    const skip = optInt(cmd, 'skip', 0);
    let limit = optInt(cmd, 'limit');
    let singleBatch = !!cmd.singleBatch;
    if (limit !== undefined && limit < 0) { limit = -limit; singleBatch = true; }
    return { filter, skip, limit, singleBatch, sort: cmd.sort, projection: cmd.projection, hint: cmd.hint };
}

/* find; with ex ({stats}), the plan is left in ex.plan */
function execFind(cmd, ctx, ex) {
    const name = collName(cmd, 'find');
    const coll = getColl(ctx.db, name, false);
    const a = findArgs(cmd);
    try {
        return {
            coll, name, a,
            items: withDeadline(ctx.deadline, () => runFind(coll, a.filter, a.projection, a.sort, a.skip, a.limit, a.hint, ex)),
        };
    } catch (e) {
        throw mingoError(e);
    }
}

function execCount(cmd, ctx, ex) {
    const name = collName(cmd, 'count');
    const coll = getColl(ctx.db, name, false);
    const filter = cmd.query === undefined || cmd.query === null ? {} : cmd.query;
    if (!isPlainObject(filter)) throw typeMismatch("BSON field 'count.query' is the wrong type, expected type 'object'");
    const skip = optInt(cmd, 'skip', 0) || 0;
    const limit = Math.abs(optInt(cmd, 'limit') || 0);
    let n;
    try {
        n = withDeadline(ctx.deadline, () => runFind(coll, filter, undefined, undefined, skip, limit, cmd.hint, ex).length);
    } catch (e) {
        throw mingoError(e);
    }
    return { name, n, q: { filter, skip, limit, count: true } };
}

function checkPipeline(pipeline) {
    if (!Array.isArray(pipeline)) throw typeMismatch("BSON field 'aggregate.pipeline' is the wrong type, expected type 'array'");
    for (const st of pipeline) {
        if (!isPlainObject(st) || Object.keys(st).length !== 1) {
            throw new CmdError(40323, 'Location40323', 'A pipeline stage specification object must contain exactly one field.');
        }
        const sn = Object.keys(st)[0];
        if (!SUPPORTED_STAGES.has(sn)) {
            if (sn === '$out' || sn === '$merge') throw new CmdError(2, 'BadValue', `${sn} is not supported by the test server`);
            throw new CmdError(40324, 'Location40324', `Unrecognized pipeline stage name: '${sn}'`);
        }
    }
}

/* aggregate: a leading $match is run by the query layer (planned, using
 * indexes, counted), the rest by mingo.  With ex, per-stage output counts
 * are kept in ex.stageCounts (stages then run one at a time). */
function execAggregate(cmd, ctx, ex) {
    const target = cmd.aggregate;
    if (typeof target !== 'string') {
        throw new CmdError(40324, 'Location40324', 'database-level aggregation ({aggregate: 1}) is not supported by the test server');
    }
    const pipeline = cmd.pipeline;
    checkPipeline(pipeline);
    const coll = getColl(ctx.db, target, false);
    const match = pipeline.length && isPlainObject(pipeline[0].$match) ? pipeline[0].$match : null;
    const rest = match ? pipeline.slice(1) : pipeline;
    let out;
    try {
        currentTctx = { schema: coll ? coll.schema : null };
        const opts = {
            context: TYPED_CONTEXT,
            variables: isPlainObject(cmd.let) ? cmd.let : undefined,
            collectionResolver: (n) => {
                const c = getColl(ctx.db, n, false);
                return c ? c.docs : [];
            },
        };
        /* maxTimeMS is checked while the stages process documents */
        out = withDeadline(ctx.deadline, () => {
            let docs = runFind(coll, match || {}, undefined, undefined, 0, 0, cmd.hint, ex);
            if (ex) {
                ex.stageCounts = [];
                for (const st of rest) {
                    const t0 = Date.now();
                    docs = new Aggregator([st], opts).run(docs);
                    ex.stageCounts.push([docs.length, Date.now() - t0]);
                }
                return docs;
            }
            return rest.length ? new Aggregator(rest, opts).run(docs) : docs;
        });
    } catch (e) {
        throw mingoError(e);
    } finally {
        currentTctx = { schema: null };
    }
    return { coll, target, out, match, rest };
}

/* mongod 4.4's explain of an aggregate: a pipeline that is only a $match
 * is answered like a find (optimizedPipeline); otherwise stages[0] is the
 * $cursor stage holding queryPlanner and executionStats, followed by the
 * other stages with their nReturned. */
function aggregateExplain(cmd, ctx, verbosity) {
    const ex = { stats: newStats() };
    const r = execAggregate(cmd, ctx, ex);
    const ns = `${ctx.db}.${r.target}`;
    const q = { filter: r.match || {} };
    const exec = withExec(verbosity);
    if (!r.rest.length) {
        const res = { queryPlanner: queryPlanner(ns, ex.plan, q, true) };
        if (exec) res.executionStats = executionStats(ex.plan, q, ex.stats);
        return Object.assign(res, { serverInfo: serverInfo(), ok: 1 });
    }
    const cursor = { queryPlanner: queryPlanner(ns, ex.plan, q, false) };
    if (exec) cursor.executionStats = executionStats(ex.plan, q, ex.stats);
    const head = { $cursor: cursor };
    if (exec) {
        head.nReturned = ex.stats.nReturned;
        head.executionTimeMillisEstimate = Date.now() - ex.stats.started;
    }
    const stages = [head];
    r.rest.forEach((st, i) => {
        const o = Object.assign({}, st);
        if (exec) {
            o.nReturned = ex.stageCounts[i][0];
            o.executionTimeMillisEstimate = ex.stageCounts[i][1];
        }
        stages.push(o);
    });
    return { stages, serverInfo: serverInfo(), ok: 1 };
}

/* The explain command: {explain: {find | aggregate | count ...}, verbosity} */
function explainCommand(cmd, ctx) {
    const inner = cmd.explain;
    if (!isPlainObject(inner) || !Object.keys(inner).length) {
        throw typeMismatch("BSON field 'explain' is the wrong type, expected type 'object'");
    }
    const verbosity = cmd.verbosity === undefined ? 'allPlansExecution' : cmd.verbosity;
    if (!['queryPlanner', 'executionStats', 'allPlansExecution'].includes(verbosity)) {
        throw badValue(`verbosity string must be one of {'queryPlanner', 'executionStats', 'allPlansExecution'}`);
    }
    const name = Object.keys(inner)[0];
    const exec = withExec(verbosity);
    const finish = (plan, q, stats, ns) => {
        const res = { queryPlanner: queryPlanner(ns, plan, q, false) };
        if (exec) {
            res.executionStats = executionStats(plan, q, stats);
            if (verbosity === 'allPlansExecution') res.executionStats.allPlansExecution = [];
        }
        return Object.assign(res, { serverInfo: serverInfo(), ok: 1 });
    };
    switch (name) {
    case 'find': {
        const ex = { stats: newStats() };
        const r = execFind(inner, ctx, ex);
        return finish(ex.plan, r.a, ex.stats, `${ctx.db}.${r.name}`);
    }
    case 'count': {
        const ex = { stats: newStats() };
        const r = execCount(inner, ctx, ex);
        ex.stats.nReturned = 0;
        return finish(ex.plan, r.q, ex.stats, `${ctx.db}.${r.name}`);
    }
    case 'aggregate':
        return aggregateExplain(inner, ctx, verbosity);
    default:
        throw new CmdError(2, 'BadValue', `explain of ${name} is not supported by the test server`);
    }
}

const startedAt = Date.now();

/* serverStatus: what a benchmark reads around an operation. */
function serverStatus() {
    const up = (Date.now() - startedAt) / 1000;
    return {
        host: require('node:os').hostname(), version: SERVER_VERSION, process: 'mongod', pid: Long.fromNumber(process.pid),
        uptime: Math.floor(up), uptimeMillis: Long.fromNumber(Date.now() - startedAt), uptimeEstimate: Long.fromNumber(Math.floor(up)),
        localTime: new Date(),
        metrics: {
            document: {
                deleted: Long.fromNumber(totals.deleted), inserted: Long.fromNumber(totals.inserted),
                returned: Long.fromNumber(totals.returned), updated: Long.fromNumber(totals.updated),
            },
            queryExecutor: { scanned: Long.fromNumber(totals.keys), scannedObjects: Long.fromNumber(totals.docs) },
        },
        ok: 1,
    };
}

/* ------------------------------------------------------------------ */
/* commands                                                           */
/* ------------------------------------------------------------------ */

const commands = {
    hello: (cmd, ctx) => helloReply(ctx.conn, cmd, 'hello'),
    isMaster: (cmd, ctx) => helloReply(ctx.conn, cmd, 'isMaster'),
    ismaster: (cmd, ctx) => helloReply(ctx.conn, cmd, 'isMaster'),
    ping: () => ({ ok: 1 }),
    configureFailPoint: (cmd, ctx) => configureFailPoint(cmd, ctx),
    buildInfo: () => ({
        version: SERVER_VERSION, gitVersion: 'test-server', versionArray: SERVER_VERSION_ARRAY,
        bits: 64, debug: false, maxBsonObjectSize: MAX_BSON, storageEngines: ['memory'],
        javascriptEngine: 'none', modules: [], openssl: { running: 'disabled' }, ok: 1,
    }),
    endSessions: () => ({ ok: 1 }),

    insert: (cmd, ctx) => {
        const name = collName(cmd, 'insert');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'documents');
        if (list.length > MAX_WRITE_BATCH) {
            throw new CmdError(16, 'InvalidLength', `Write batch sizes must be between 1 and ${MAX_WRITE_BATCH}. Got ${list.length} operations.`);
        }
        const coll = getColl(ctx.db, name, true);
        const ordered = cmd.ordered !== false;
        const writeErrors = [];
        let n = 0;
        for (let i = 0; i < list.length; i++) {
            let doc;
            if (raw) {
                doc = prepareDoc(list[i], coll);
            } else {
                const src = list[i];
                if (!isPlainObject(src)) throw typeMismatch('documents must be objects');
                doc = { _id: src._id === undefined ? new ObjectId() : src._id };
                Object.assign(doc, src);
                typeDoc(coll, doc, src);
            }
            const err = coll.insertOne(doc);
            if (!err) totals.inserted++;
            if (err) {
                writeErrors.push(Object.assign({ index: i }, err));
                if (ordered) break;
            } else {
                n++;
            }
        }
        const r = { n, ok: 1 };
        if (writeErrors.length) r.writeErrors = writeErrors;
        return r;
    },

    find: (cmd, ctx) => {
        const { coll, name, a, items } = execFind(cmd, ctx, null);
        let batchSize = optInt(cmd, 'batchSize', 0);
        if (a.limit && (batchSize === undefined || batchSize > a.limit)) batchSize = a.limit;
        return cursorReply(`${ctx.db}.${name}`, items, coll ? coll.schema : null, batchSize, a.singleBatch);
    },

    count: (cmd, ctx) => ({ n: execCount(cmd, ctx, null).n, ok: 1 }),

    explain: (cmd, ctx) => explainCommand(cmd, ctx),

    serverStatus: () => serverStatus(),

    getMore: (cmd, ctx) => {
        const id = cmd.getMore;
        const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : null;
        if (key === null) throw typeMismatch("Field 'getMore' must be of type long");
        const name = collName(cmd, 'collection');
        const cur = cursors.get(key);
        if (!cur) throw new CmdError(43, 'CursorNotFound', `cursor id ${key} not found`);
        if (cur.ns !== `${ctx.db}.${name}`) {
            throw new CmdError(13, 'Unauthorized', `Requested getMore on namespace '${ctx.db}.${name}', but cursor belongs to a different namespace ${cur.ns}`);
        }
        const batchSize = optInt(cmd, 'batchSize', 0);
        const { id: nid, batch } = continueCursor(key, cur, batchSize);
        return new RawReply(cur.ns, nid, 'nextBatch', batch);
    },

    killCursors: (cmd) => {
        const ids = Array.isArray(cmd.cursors) ? cmd.cursors : [];
        const killed = [];
        const notFound = [];
        for (const id of ids) {
            const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : String(id);
            const l = Long.fromString(key);
            if (cursors.delete(key)) killed.push(l); else notFound.push(l);
        }
        return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
    },

    aggregate: (cmd, ctx) => {
        if (cmd.explain) {
            /* aggregate's explain option is queryPlanner verbosity, as in mongod */
            checkPipeline(cmd.pipeline);
            return aggregateExplain(cmd, ctx, 'queryPlanner');
        }
        if (typeof cmd.aggregate === 'string' && !Array.isArray(cmd.pipeline)) checkPipeline(cmd.pipeline);
        if (typeof cmd.aggregate === 'string' && !isPlainObject(cmd.cursor)) {
            throw new CmdError(9, 'FailedToParse', "The 'cursor' option is required, except for aggregate with the explain argument");
        }
        const batchSize = optInt(cmd.cursor, 'batchSize', 0);
        const { coll, target, out } = execAggregate(cmd, ctx, null);
        return cursorReply(`${ctx.db}.${target}`, out, coll ? coll.schema : null, batchSize, false);
    },

    delete: (cmd, ctx) => {
        const name = collName(cmd, 'delete');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'deletes');
        const coll = getColl(ctx.db, name, false);
        let n = 0;
        for (const s0 of list) {
            const s = raw ? plainCmd(BSON.deserialize(s0, DESER_RAW)) : s0;
            if (!coll) continue;
            const q = s.q || {};
            let matched;
            try {
                matched = runFind(coll, q, undefined, undefined, 0, s.limit ? 1 : 0, s.hint);
            } catch (e) {
                throw mingoError(e);
            }
            if (!matched.length) continue;
            coll.removeDocs(new Set(matched));
            n += matched.length;
            totals.deleted += matched.length;
        }
        return { n, ok: 1 };
    },

    update: (cmd, ctx) => {
        const name = collName(cmd, 'update');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'updates');
        const coll = getColl(ctx.db, name, true);
        let n = 0;
        let nModified = 0;
        const upserted = [];
        const writeErrors = [];
        for (let i = 0; i < list.length; i++) {
            const s = raw ? plainCmd(BSON.deserialize(list[i], DESER_RAW)) : list[i];
            try {
                if (isUpdateOperatorDoc(s.u)) updatePlan(s.u);      /* parse errors before anything is read */
                const matched = runFind(coll, s.q || {}, undefined, undefined, 0, s.multi ? 0 : 1, s.hint);
                if (matched.length) {
                    let m;
                    try {
                        m = coll.modifyMany(matched, s.u, s.arrayFilters);
                    } catch (e) {
                        totals.updated += e.nModified || 0;
                        throw e;
                    }
                    n += matched.length;
                    nModified += m;
                    totals.updated += m;
                } else if (s.upsert) {
                    const full = upsertDoc(coll, s.q, s.u, s.arrayFilters);
                    n++;
                    totals.inserted++;
                    upserted.push({ index: i, _id: typedId(full) });
                }
            } catch (e) {
                const ce = mingoError(e);
                const we = { index: i, code: ce.code };
                if (ce.keyPattern) Object.assign(we, { keyPattern: ce.keyPattern, keyValue: ce.keyValue });
                we.errmsg = ce.message;
                writeErrors.push(we);
                if (cmd.ordered !== false) break;
            }
        }
        const r = { n, nModified, ok: 1 };
        if (upserted.length) r.upserted = upserted;
        if (writeErrors.length) r.writeErrors = writeErrors;
        return r;
    },

    findAndModify: (cmd, ctx) => {
        const name = collName(cmd, 'findAndModify');
        const coll = getColl(ctx.db, name, true);
        let matched;
        try {
            matched = runFind(coll, cmd.query || {}, undefined, cmd.sort, 0, 1, cmd.hint);
        } catch (e) {
            throw mingoError(e);
        }
        const d = matched[0];
        const schema = coll.schema;
        if (!cmd.remove && isUpdateOperatorDoc(cmd.update)) updatePlan(cmd.update);    /* parse errors: as they are */
        if (cmd.remove) {
            if (d) {
                coll.removeDocs(new Set([d]));
                totals.deleted++;
            }
            return { lastErrorObject: { n: d ? 1 : 0 }, value: d ? wrapDoc(d, schema) : null, ok: 1 };
        }
        /* errors while the update runs, as mongod 4.4-7.0 words them
         * (find_and_modify.cpp: exception.addContext(...)) */
        const executing = (fn) => {
            try {
                return fn();
            } catch (e) {
                const ce = mingoError(e);
                throw Object.assign(new CmdError(ce.code, ce.codeName, `Plan executor error during findAndModify :: caused by :: ${ce.message}`),
                    ce.keyPattern ? { keyPattern: ce.keyPattern, keyValue: ce.keyValue } : {});
            }
        };
        if (d) {
            const before = BSON.deserialize(serialize(wrapDoc(d, schema)), DESER_RAW);
            const updatedExisting = true;
            if (executing(() => coll.modify(d, (x) => applyUpdate(coll, x, cmd.update, cmd.arrayFilters, false)))) totals.updated++;
            return { lastErrorObject: { n: 1, updatedExisting }, value: cmd.new ? wrapDoc(d, schema) : before, ok: 1 };
        }
        if (cmd.upsert) {
            const full = executing(() => upsertDoc(coll, cmd.query, cmd.update, cmd.arrayFilters));
            totals.inserted++;
            return { lastErrorObject: { n: 1, updatedExisting: false, upserted: typedId(full) }, value: cmd.new ? wrapDoc(full, schema) : null, ok: 1 };
        }
        return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
    },

    createIndexes: (cmd, ctx) => {
        const name = collName(cmd, 'createIndexes');
        if (!Array.isArray(cmd.indexes) || cmd.indexes.length === 0) {
            throw typeMismatch("BSON field 'createIndexes.indexes' is missing or not a non-empty array");
        }
        const existed = !!getColl(ctx.db, name, false);
        const coll = getColl(ctx.db, name, true);
        const before = coll.indexes.length;
        let note;
        for (const spec of cmd.indexes) {
            if (!isPlainObject(spec) || !isPlainObject(spec.key) || !Object.keys(spec.key).length) {
                throw new CmdError(9, 'FailedToParse', "The 'key' field is a required property of an index specification");
            }
            const iname = typeof spec.name === 'string' ? spec.name
                : Object.entries(spec.key).map(([k, v]) => `${k}_${v}`).join('_');
            const same = coll.indexes.find((i) => i.name === iname);
            const sameKey = coll.indexes.find((i) => mingoUtil.isEqual(i.key, spec.key));
            if (same && mingoUtil.isEqual(same.key, spec.key)) { note = 'all indexes already exist'; continue; }
            if (same) {
                throw new CmdError(86, 'IndexKeySpecsConflict',
                    `An existing index has the same name as the requested index. Requested index: ${BSON.EJSON.stringify(spec)}, existing index: ${BSON.EJSON.stringify(same)}`);
            }
            if (sameKey) {
                throw new CmdError(85, 'IndexOptionsConflict',
                    `Index already exists with a different name: ${sameKey.name}`);
            }
            const ix = { v: 2, key: spec.key, name: iname };
            for (const k of Object.keys(spec)) if (!['key', 'name', 'v', 'ns'].includes(k)) ix[k] = spec[k];
            const err = coll.addIndex(ix);
            if (err) throw Object.assign(new CmdError(11000, 'DuplicateKey', err.errmsg), { keyPattern: err.keyPattern, keyValue: err.keyValue });
        }
        const r = { numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: !existed, ok: 1 };
        if (note && before === coll.indexes.length) r.note = note;
        return r;
    },

    /* collMod, only to change a TTL index's expireAfterSeconds (by index
     * name or keyPattern), as the journal does when its retention changes. */
    collMod: (cmd, ctx) => {
        const name = collName(cmd, 'collMod');
        const coll = getColl(ctx.db, name, false);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
        const spec = cmd.index;
        if (!isPlainObject(spec)) throw new CmdError(72, 'InvalidOptions', "this test server's collMod only changes an index: 'index' is required");
        const ix = coll.indexes.find((i) => (typeof spec.name === 'string' ? i.name === spec.name
            : isPlainObject(spec.keyPattern) && mingoUtil.isEqual(i.key, spec.keyPattern)));
        if (!ix) throw new CmdError(27, 'IndexNotFound', `cannot find index ${BSON.EJSON.stringify(spec)} for ns ${ctx.db}.${name}`);
        if (typeof spec.expireAfterSeconds !== 'number' && !(spec.expireAfterSeconds instanceof Long) && !(spec.expireAfterSeconds instanceof Int32)) {
            throw new CmdError(72, 'InvalidOptions', "this test server's collMod only changes expireAfterSeconds");
        }
        if (ix.expireAfterSeconds === undefined) throw new CmdError(72, 'InvalidOptions', 'no expireAfterSeconds field to update');
        const old = ix.expireAfterSeconds;
        ix.expireAfterSeconds = spec.expireAfterSeconds;
        return { expireAfterSeconds_old: old, expireAfterSeconds_new: spec.expireAfterSeconds, ok: 1 };
    },

    listIndexes: (cmd, ctx) => {
        const name = collName(cmd, 'listIndexes');
        const coll = getColl(ctx.db, name, false);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
        const bs = isPlainObject(cmd.cursor) ? optInt(cmd.cursor, 'batchSize', 0) : undefined;
        return cursorReply(`${ctx.db}.${name}`, coll.indexes.map((i) => Object.assign({}, i)), null, bs, false);
    },

    drop: (cmd, ctx) => {
        const name = collName(cmd, 'drop');
        const db = getDb(ctx.db, false);
        const coll = db && db.collections.get(name);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', 'ns not found');
        db.collections.delete(name);
        for (const [k, c] of cursors) if (c.ns === coll.ns) cursors.delete(k);
        if (db.collections.size === 0) databases.delete(db.name);
        return { nIndexesWas: coll.indexes.length, ns: coll.ns, ok: 1 };
    },

    dropDatabase: (cmd, ctx) => {
        const db = getDb(ctx.db, false);
        if (db) {
            databases.delete(ctx.db);
            for (const [k, c] of cursors) if (c.ns.startsWith(ctx.db + '.')) cursors.delete(k);
        }
        return { dropped: ctx.db, ok: 1 };
    },
};

/* ---- writeConcern and readConcern ---- */

/* As a standalone mongod takes them: every write here is applied, durable
 * as far as this server goes, and "majority-committed" (there is nobody
 * else) when it returns, so w: 1, w: "majority", j and wtimeout change
 * nothing, and neither do the read concern levels "local", "majority" and
 * "available" (on a standalone they read the same data).  What a
 * standalone refuses (src/mongo/db/write_concern.cpp, validateWriteConcern,
 * 4.4 to 7.0) is refused before the command runs, with nothing applied:
 * w > 1, BadValue (2) "cannot use 'w' > 1 when a host is not replicated",
 * and a tag set name, BadValue "cannot use non-majority 'w' mode <name>
 * when a host is not a member of a replica set". */
function checkWriteConcern(wc) {
    if (!isPlainObject(wc)) return;
    if (typeof wc.w === 'number' && wc.w > 1) throw badValue("cannot use 'w' > 1 when a host is not replicated");
    if (typeof wc.w === 'string' && wc.w !== 'majority') {
        throw badValue(`cannot use non-majority 'w' mode ${wc.w} when a host is not a member of a replica set`);
    }
}

/* Returned by runCommand when the connection must be closed unanswered. */
const CLOSE_CONNECTION = Symbol('closeConnection');

async function runCommand(conn, dbName, cmd, seqs) {
    const name = Object.keys(cmd)[0];
    const started = Date.now();
    if (OPTS.verbose) log(`conn${conn.id} ${dbName}.$cmd ${name}`);
    const fn = name !== undefined && Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : null;
    if (!fn) {
        return { ok: 0, errmsg: `no such command: '${name}'`, code: 59, codeName: 'CommandNotFound' };
    }
    try {
        if (typeof dbName !== 'string' || !dbName) throw new CmdError(40414, 'Location40414', "BSON field 'OperationSessionInfo.$db' is missing but a required field");
        cmd.__name = name;
        const ctx = { conn, db: dbName, seqs: seqs || {}, started, deadline: Infinity };
        const mt = cmd.maxTimeMS;
        if (mt !== undefined && mt !== null) {
            if (typeof mt !== 'number' || !Number.isInteger(mt) || mt < 0 || mt > INT32_MAX) {
                throw badValue(`${mt} value for maxTimeMS is out of range [0, ${INT32_MAX}]`);
            }
            if (mt > 0 && !failPointFires('maxTimeNeverTimeOut')) ctx.deadline = started + mt;
        }
        if (await failCommand(conn, dbName, name, cmd, ctx) === CLOSE_CONNECTION) return CLOSE_CONNECTION;
        if (mt > 0 && failPointFires('maxTimeAlwaysTimeOut')) throw maxTimeExpired();
        /* replica-set mode (t/mongod/replset.js): roles, replication, write concern */
        if (replHooks.command) return await replHooks.command(fn, name, cmd, ctx);
        checkWriteConcern(cmd.writeConcern);
        return await fn(cmd, ctx);
    } catch (e) {
        const ce = e instanceof CmdError ? e : mingoError(e);
        if (!(e instanceof CmdError) && OPTS.verbose) log(`conn${conn.id} ${name} failed: ${e && e.stack || e}`);
        const r = { ok: 0, errmsg: ce.message, code: ce.code, codeName: ce.codeName };
        if (ce.keyPattern) Object.assign(r, { keyPattern: ce.keyPattern, keyValue: ce.keyValue });
        if (ce.errorLabels && ce.errorLabels.length) r.errorLabels = ce.errorLabels;
        return r;
    }
}

function replyBuffer(r) {
    if (r instanceof RawReply) return r.toBuffer();
    if (typeof r.ok === 'number') r.ok = new Double(r.ok);
    return serialize(wrapValue(r, '', undefined, null));
}

/* ------------------------------------------------------------------ */
/* wire protocol                                                      */
/* ------------------------------------------------------------------ */

let requestSeq = 0;

function header(len, responseTo, opCode) {
    const h = Buffer.alloc(16);
    h.writeInt32LE(len, 0);
    h.writeInt32LE(++requestSeq & 0x7fffffff, 4);
    h.writeInt32LE(responseTo, 8);
    h.writeInt32LE(opCode, 12);
    return h;
}

function sendMsg(conn, responseTo, body) {
    const len = 16 + 4 + 1 + body.length;
    const h = header(len, responseTo, OP_MSG);
    const fl = Buffer.alloc(5);     /* flagBits 0, section kind 0 */
    conn.sock.write(Buffer.concat([h, fl, body], len));
}

function sendReply(conn, responseTo, body) {
    const len = 16 + 20 + body.length;
    const h = header(len, responseTo, OP_REPLY);
    const r = Buffer.alloc(20);
    r.writeInt32LE(0, 0);           /* responseFlags */
    r.writeBigInt64LE(0n, 4);       /* cursorID */
    r.writeInt32LE(0, 12);          /* startingFrom */
    r.writeInt32LE(1, 16);          /* numberReturned */
    conn.sock.write(Buffer.concat([h, r, body], len));
}

function readCString(buf, pos) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new Error('unterminated cstring');
    return [buf.toString('utf8', pos, end), end + 1];
}

async function handleOpMsg(conn, f, requestID) {
    const flags = f.readUInt32LE(16);
    const checksum = (flags & 1) !== 0;
    const moreToCome = (flags & 2) !== 0;
    /* unknown required bits (2..15) must make the server fail the message */
    if (flags & 0xfffc) throw new Error(`unsupported OP_MSG flagBits 0x${flags.toString(16)}`);
    const end = f.length - (checksum ? 4 : 0);
    let pos = 20;
    let body = null;
    const seqs = {};
    while (pos < end) {
        const kind = f[pos++];
        if (kind === 0) {
            const len = f.readInt32LE(pos);
            if (body) throw new Error('OP_MSG with two kind-0 sections');
            body = f.subarray(pos, pos + len);
            pos += len;
        } else if (kind === 1) {
            const size = f.readInt32LE(pos);
            const secEnd = pos + size;
            let p = pos + 4;
            let ident;
            [ident, p] = readCString(f, p);
            const docs = [];
            while (p < secEnd) {
                const dl = f.readInt32LE(p);
                docs.push(f.subarray(p, p + dl));
                p += dl;
            }
            seqs[ident] = docs;
            pos = secEnd;
        } else {
            throw new Error(`unknown OP_MSG section kind ${kind}`);
        }
    }
    if (!body) throw new Error('OP_MSG without a body section');
    let reply;
    try {
        const cmd = plainCmd(BSON.deserialize(body, DESER_RAW));
        const dbName = cmd.$db;
        delete cmd.$db;
        reply = await runCommand(conn, dbName, cmd, seqs);
    } catch (e) {
        reply = { ok: 0, errmsg: `invalid BSON in command: ${e.message}`, code: 22, codeName: 'InvalidBSON' };
    }
    if (reply === CLOSE_CONNECTION) { conn.sock.destroy(); return; }
    if (moreToCome) return;
    /* replica-set mode (t/mongod/replset.js): an awaitable hello streams its answers */
    if (replHooks.exhaust && replHooks.exhaust(conn, requestID, reply)) return;
    sendMsg(conn, requestID, replyBuffer(reply));
}

async function handleOpQuery(conn, f, requestID) {
    let pos = 20;
    let ns;
    [ns, pos] = readCString(f, pos);
    pos += 8;      /* numberToSkip, numberToReturn */
    const qlen = f.readInt32LE(pos);
    let reply;
    if (!ns.endsWith('.$cmd')) {
        reply = { $err: 'OP_QUERY is only supported for commands by the test server', code: 5739101, ok: 0 };
    } else {
        try {
            let q = plainCmd(BSON.deserialize(f.subarray(pos, pos + qlen), DESER_RAW));
            if (isPlainObject(q.$query)) q = q.$query;
            else if (isPlainObject(q.query) && Object.keys(q)[0] === 'query') q = q.query;
            reply = await runCommand(conn, ns.slice(0, -5), q, {});
        } catch (e) {
            reply = { ok: 0, errmsg: `invalid BSON in command: ${e.message}`, code: 22, codeName: 'InvalidBSON' };
        }
    }
    if (reply === CLOSE_CONNECTION) { conn.sock.destroy(); return; }
    sendReply(conn, requestID, replyBuffer(reply));
}

async function handleFrame(conn, f) {
    const requestID = f.readInt32LE(4);
    const opCode = f.readInt32LE(12);
    if (replHooks.frame) replHooks.frame(conn, opCode, f);     /* replica-set mode: the message's flags */
    if (opCode === OP_MSG) return handleOpMsg(conn, f, requestID);
    if (opCode === OP_QUERY) return handleOpQuery(conn, f, requestID);
    if (opCode === OP_COMPRESSED) throw new Error('OP_COMPRESSED received but compression was not negotiated');
    throw new Error(`unsupported opCode ${opCode}`);
}

let connSeq = 0;
const sockets = new Set();

function onConnection(sock) {
    const conn = { id: ++connSeq, sock, remote: `${sock.remoteAddress}:${sock.remotePort}`, client: null };
    sockets.add(sock);
    sock.setNoDelay(true);
    if (OPTS.verbose) log(`conn${conn.id} accepted from ${conn.remote}`);
    let chunks = [];
    let total = 0;
    let need = -1;
    let queue = Promise.resolve();
    const fail = (e) => {
        log(`conn${conn.id} protocol error: ${e && e.message || e}; closing`);
        sock.destroy();
    };
    sock.on('data', (chunk) => {
        chunks.push(chunk);
        total += chunk.length;
        for (;;) {
            if (need < 0) {
                if (total < 4) break;
                if (chunks[0].length < 4) chunks = [Buffer.concat(chunks, total)];
                need = chunks[0].readInt32LE(0);
                if (need < 16 || need > MAX_MESSAGE) {
                    fail(new Error(`bad message length ${need}`));
                    return;
                }
            }
            if (total < need) break;
            const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
            const frame = all.subarray(0, need);
            const rest = all.subarray(need);
            chunks = rest.length ? [rest] : [];
            total = rest.length;
            need = -1;
            queue = queue.then(() => (sock.destroyed ? undefined : handleFrame(conn, frame))).catch(fail);
        }
    });
    sock.on('error', (e) => { if (OPTS.verbose) log(`conn${conn.id} socket error: ${e.message}`); });
    sock.on('close', () => {
        sockets.delete(sock);
        if (OPTS.verbose) log(`conn${conn.id} closed`);
    });
}

let server = null;

function start(opts) {
    if (opts.replset) return require('./replset.js').start(opts);      /* replica-set mode */
    server = net.createServer(onConnection);
    server.on('error', (e) => {
        log(`listen error: ${e.message}`);
        process.exit(1);
    });
    server.listen({ host: opts.host, port: opts.port }, () => {
        const a = server.address();
        listenPort = a.port;
        process.stdout.write(`listening ${a.address}:${a.port}\n`);
        log(`TEST-ONLY MongoDB wire-protocol server listening on ${a.address}:${a.port}`);
    });
    const stop = (sig) => {
        log(`${sig}: exiting`);
        server.close();
        for (const s of sockets) s.destroy();
        process.exit(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
}

/* ------------------------------------------------------------------ */
/* replica-set mode: hooks for t/mongod/replset.js                    */
/* ------------------------------------------------------------------ */

/* replset.js loads one instance of this file per member and sets these
 * hooks on each; unset, the server is the standalone described above.
 *   command(fn, name, cmd, ctx)  runs a command (fn) in the member's role
 *   frame(conn, opCode, frame)   sees each message before it is handled
 *   exhaust(conn, requestID, reply)  true when it answered the request */
const replHooks = { command: null, frame: null, exhaust: null };

const replsetInternals = () => ({
    OPTS, log, commands, onConnection, Collection, getColl, getDb, cursors, prepareDoc, wrapDoc, serialize,
    idKey, CmdError, codeName, FAIL_POINTS, failPointFires, maxTimeExpired, header, replyBuffer, RawReply,
    CLOSE_CONNECTION, OP_MSG, OP_QUERY, setListenPort: (p) => { listenPort = p; },
});

if (require.main === module) start(OPTS);

module.exports = { start, commands };
module.exports.replset = { hooks: replHooks, internals: replsetInternals };
