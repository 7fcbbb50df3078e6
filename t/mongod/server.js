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
 * findAndModify (basic), for documents kept up to date by upserts;
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
 * value (Long(2^53 + 1) is not the double 2^53, Long(2^53) is), also as
 * $group keys, _id and index keys; $add/$subtract/$multiply/$divide give
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
 * Numeric types.  JavaScript has one number type; MongoDB has int32, int64
 * and double, and drivers care.  This server keeps the distinction:
 *   - stored documents: each collection records, per field path, which
 *     numeric BSON type its values had on insert (int / long / double, or
 *     "mixed"); find returns values with that type.  A path whose values
 *     had mixed types falls back to "by value" (below).
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
 * Indexes.  createIndexes records the index (listIndexes shows it) and,
 * for the first field of its key, keeps a hash map value -> documents.
 * A find filter or a FIRST $match stage whose top level has that field
 * with a scalar, {$eq: v} or {$in: [...]} condition reads candidates from
 * the map instead of scanning (then applies the full filter with mingo as
 * usual), so a $match on {phone: {$in: [...]}} over millions of documents
 * is fast.  Unique indexes are enforced on _id and on single-field unique
 * indexes only.  A TTL index (expireAfterSeconds) is recorded and listed,
 * but its documents never expire.
 *
 * Environment:
 *   MONGOD_TEST_VERBOSE=1 (or --verbose)  log every command to stderr.
 *
 * Known deviations from MongoDB (deliberate or "good enough for tests"):
 *   - no auth, TLS, compression, sessions (lsid is accepted and ignored),
 *     transactions, retryable-write bookkeeping, write concern, read
 *     concern, collations, capped collections, views, change streams,
 *     explain, $out/$merge, text/geo indexes;
 *   - semantics of queries and expressions not listed above are mingo's;
 *     query paths through nested arrays are resolved as mingo does;
 *   - numeric types inside arrays are tracked per collection path as a
 *     whole, and types of operators not listed above are chosen by value;
 *   - Decimal128 and int64 values outside +-2^53 are stored, returned and
 *     compared exactly, but arithmetic on them is done in doubles;
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
        const e = (m[4] ? Number(m[4]) : 0) - frac.length;
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
        const f = Number(v.toString());
        if (cmpNum(v, f) === 0) return eqKey(f);
        let { n, d } = x;
        while (d > 1n && n % 10n === 0n) { n /= 10n; d /= 10n; }
        return `d${n}/${d}`;
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

const MONGO_ACCUMULATOR_OPS = { $min: accMinMax(1), $max: accMinMax(-1) };

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
    }),
    pipeline: Object.assign({}, pipelineOps, {
        $group: typedGroup(getTctx),
        $project: pairwiseStage(pipelineOps.$project, getTctx),
        $addFields: pairwiseStage(pipelineOps.$addFields, getTctx),
        $set: pairwiseStage(pipelineOps.$set, getTctx),
        $sort: sortStage,
    }),
    projection: projectionOps,
    query: Object.assign({}, queryOps, MONGO_QUERY_OPS),
    window: windowOps,
});

const SUPPORTED_STAGES = new Set(Object.keys(pipelineOps).filter((s) => s !== '$out' && s !== '$merge'));

/* ------------------------------------------------------------------ */
/* storage                                                            */
/* ------------------------------------------------------------------ */

/* _id uniqueness and hash indexes use MongoDB's equality (eqKey). */
const idKey = (v) => groupKey(v === undefined ? null : v);
const hashKey = eqKey;

class HashIndex {
    constructor(field) {
        this.field = field;
        this.map = new Map();
        this.other = [];        /* documents with arrays, objects, exotic types */
    }
    add(doc) {
        const v = this.field.includes('.') ? mingoUtil.resolve(doc, this.field) : doc[this.field];
        const k = hashKey(v);
        if (k === undefined) { this.other.push(doc); return; }
        const b = this.map.get(k);
        if (b) b.push(doc); else this.map.set(k, [doc]);
    }
    rebuild(docs) {
        this.map = new Map();
        this.other = [];
        for (const d of docs) this.add(d);
    }
    /* candidates for "field in values", or null when the values cannot be looked up */
    lookup(values) {
        const keys = [];
        const seen = new Set();
        for (const v of values) {
            const k = hashKey(v);
            if (k === undefined) return null;
            if (!seen.has(k)) { seen.add(k); keys.push(k); }
        }
        if (keys.every((k) => typeof k === 'number')) keys.sort((a, b) => a - b);
        const out = [];
        for (const k of keys) {
            const b = this.map.get(k);
            if (b) for (let i = 0; i < b.length; i++) out.push(b[i]);
        }
        for (const d of this.other) out.push(d);
        return out;
    }
}

class Collection {
    constructor(db, name) {
        this.db = db;
        this.name = name;
        this.docs = [];
        this.ids = new Map();
        this.schema = new Map();
        this.indexes = [{ v: 2, key: { _id: 1 }, name: '_id_' }];
        this.hash = new Map();          /* field -> HashIndex */
    }
    get ns() { return `${this.db.name}.${this.name}`; }

    addIndex(spec) {
        this.indexes.push(spec);
        const f = Object.keys(spec.key)[0];
        if (f && f !== '_id' && typeof spec.key[f] !== 'string' && !this.hash.has(f)) {
            const h = new HashIndex(f);
            h.rebuild(this.docs);
            this.hash.set(f, h);
        }
    }
    uniqueFields() {
        return this.indexes.filter((i) => i.unique && Object.keys(i.key).length === 1 && i.name !== '_id_');
    }
    insertOne(doc) {
        const k = idKey(doc._id);
        if (this.ids.has(k)) return dupKeyError(this, '_id_', { _id: doc._id });
        for (const ix of this.uniqueFields()) {
            const f = Object.keys(ix.key)[0];
            const h = this.hash.get(f);
            const v = mingoUtil.resolve(doc, f);
            const hk = hashKey(v);
            if (h && hk !== undefined && h.map.has(hk) &&
                h.map.get(hk).some((d) => bsonEquals(mingoUtil.resolve(d, f), v))) {
                return dupKeyError(this, ix.name, { [f]: v === undefined ? null : v });
            }
        }
        this.ids.set(k, doc);
        this.docs.push(doc);
        for (const h of this.hash.values()) h.add(doc);
        return null;
    }
    reindex() {
        this.ids = new Map();
        for (const d of this.docs) this.ids.set(idKey(d._id), d);
        for (const h of this.hash.values()) h.rebuild(this.docs);
    }
    /* Documents that may match filter: from a hash index when the filter's
     * top level pins an indexed field, else all. */
    candidates(filter) {
        if (!isPlainObject(filter) || this.hash.size === 0) return this.docs;
        for (const [f, h] of this.hash) {
            if (!Object.prototype.hasOwnProperty.call(filter, f)) continue;
            const c = filter[f];
            let values = null;
            if (c instanceof RegExp) continue;
            if (isPlainObject(c)) {
                const ks = Object.keys(c);
                if (ks.length === 1 && ks[0] === '$eq') values = [c.$eq];
                else if (ks.length === 1 && ks[0] === '$in' && Array.isArray(c.$in)) values = c.$in;
                else if (ks.some((x) => x[0] === '$')) continue;
                else continue;
            } else if (Array.isArray(c)) {
                continue;
            } else {
                values = [c];
            }
            const r = h.lookup(values);
            if (r) return r;
        }
        return this.docs;
    }
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

/* filter, then sort in MongoDB's order, skip, limit, project */
function runFind(coll, filter, projection, sort, skip, limit) {
    const docs = coll ? coll.candidates(filter) : [];
    const proj = projection && Object.keys(projection).length ? projection : undefined;
    const q = new Query(filter || {}, { context: TYPED_CONTEXT });
    if (!sort || !Object.keys(sort).length) {
        let cur = q.find(docs, proj);
        if (skip) cur = cur.skip(skip);
        if (limit) cur = cur.limit(limit);
        return cur.all();
    }
    let items = sortDocs(q.find(docs).all(), sort);
    if (skip) items = items.slice(skip);
    if (limit) items = items.slice(0, limit);
    if (proj) items = new Query({}, { context: TYPED_CONTEXT }).find(items, proj).all();
    return items;
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

/* Upsert seed: the equality parts of a query. */
function seedFromQuery(q) {
    const seed = {};
    if (!isPlainObject(q)) return seed;
    for (const k of Object.keys(q)) {
        if (k[0] === '$') continue;
        const v = q[k];
        if (isPlainObject(v) && Object.keys(v).some((x) => x[0] === '$')) {
            if (Object.prototype.hasOwnProperty.call(v, '$eq')) mingoUtil.setValue(seed, k, v.$eq);
            continue;
        }
        mingoUtil.setValue(seed, k, v);
    }
    return seed;
}

function isUpdateOperatorDoc(u) {
    return isPlainObject(u) && Object.keys(u).length > 0 && Object.keys(u)[0][0] === '$';
}

function applyUpdate(coll, doc, u, arrayFilters, isUpsert) {
    if (Array.isArray(u)) throw new CmdError(2, 'BadValue', 'pipeline-style updates are not supported by the test server');
    if (isUpdateOperatorDoc(u)) {
        const before = JSON.stringify(BSON.EJSON.serialize(doc));
        const setOnInsert = u.$setOnInsert;
        const mod = Object.assign({}, u);
        delete mod.$setOnInsert;
        if (Object.keys(mod).length) mingoUpdater.update(doc, mod, arrayFilters, undefined, { cloneMode: 'none' });
        if (isUpsert && isPlainObject(setOnInsert)) {
            for (const k of Object.keys(setOnInsert)) mingoUtil.setValue(doc, k, setOnInsert[k]);
        }
        return JSON.stringify(BSON.EJSON.serialize(doc)) !== before;
    }
    if (!isPlainObject(u)) throw badValue('Update document must be an object');
    const id = doc._id;
    const before = JSON.stringify(BSON.EJSON.serialize(doc));
    for (const k of Object.keys(doc)) delete doc[k];
    if (id !== undefined) doc._id = id;
    for (const k of Object.keys(u)) if (k !== '_id') doc[k] = u[k];
    if (doc._id === undefined && u._id !== undefined) doc._id = u._id;
    return JSON.stringify(BSON.EJSON.serialize(doc)) !== before;
}

/* Record the numeric types of every field of a document that arrived in a
 * command body (literal types recorded by plainCmd) or was modified by an
 * update (then by value). */
function noteDocTypes(coll, doc) {
    const walk = (c, k, path) => {
        const v = c[k];
        if (typeof v === 'number') {
            noteType(coll.schema, path, (c[LIT] && c[LIT][k]) || valueType(v));
            return;
        }
        if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) walk(v, i, path + '.$'); return; }
        if (isPlainObject(v)) for (const kk of Object.keys(v)) walk(v, kk, path ? path + '.' + kk : kk);
    };
    for (const k of Object.keys(doc)) walk(doc, k, k);
}

function prepareDoc(raw, coll) {
    const d = BSON.deserialize(raw, DESER_RAW);
    const out = {};     /* like mongod, _id always comes first */
    out._id = d._id === undefined ? new ObjectId() : plainValue(d._id, coll.schema, '_id');
    for (const k of Object.keys(d)) if (k !== '_id') out[k] = plainValue(d[k], coll.schema, k);
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
                if (src[LIT]) Object.defineProperty(doc, LIT, { value: src[LIT], enumerable: false });
                noteDocTypes(coll, doc);
            }
            const err = coll.insertOne(doc);
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
        const name = collName(cmd, 'find');
        const coll = getColl(ctx.db, name, false);
        const filter = cmd.filter === undefined ? {} : cmd.filter;
        if (!isPlainObject(filter)) throw typeMismatch("BSON field 'FindCommandRequest.filter' is the wrong type, expected type 'object'");
        const skip = optInt(cmd, 'skip', 0);
        let limit = optInt(cmd, 'limit');
        let singleBatch = !!cmd.singleBatch;
        if (limit !== undefined && limit < 0) { limit = -limit; singleBatch = true; }
        let batchSize = optInt(cmd, 'batchSize', 0);
        let items;
        try {
            items = withDeadline(ctx.deadline, () => runFind(coll, filter, cmd.projection, cmd.sort, skip, limit));
        } catch (e) {
            throw mingoError(e);
        }
        if (limit && (batchSize === undefined || batchSize > limit)) batchSize = limit;
        return cursorReply(`${ctx.db}.${name}`, items, coll ? coll.schema : null, batchSize, singleBatch);
    },

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
        const target = cmd.aggregate;
        if (typeof target !== 'string') {
            throw new CmdError(40324, 'Location40324', 'database-level aggregation ({aggregate: 1}) is not supported by the test server');
        }
        const pipeline = cmd.pipeline;
        if (!Array.isArray(pipeline)) throw typeMismatch("BSON field 'aggregate.pipeline' is the wrong type, expected type 'array'");
        if (cmd.explain) throw new CmdError(2, 'BadValue', 'explain is not supported by the test server');
        if (!isPlainObject(cmd.cursor)) {
            throw new CmdError(9, 'FailedToParse', "The 'cursor' option is required, except for aggregate with the explain argument");
        }
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
        const batchSize = optInt(cmd.cursor, 'batchSize', 0);
        const coll = getColl(ctx.db, target, false);
        let input = coll ? coll.docs : [];
        if (coll && pipeline.length && isPlainObject(pipeline[0].$match)) input = coll.candidates(pipeline[0].$match);
        let out;
        try {
            currentTctx = { schema: coll ? coll.schema : null };
            const agg = new Aggregator(pipeline, {
                context: TYPED_CONTEXT,
                variables: isPlainObject(cmd.let) ? cmd.let : undefined,
                collectionResolver: (n) => {
                    const c = getColl(ctx.db, n, false);
                    return c ? c.docs : [];
                },
            });
            /* maxTimeMS is checked while the stages process documents */
            out = withDeadline(ctx.deadline, () => agg.run(input));
        } catch (e) {
            throw mingoError(e);
        } finally {
            currentTctx = { schema: null };
        }
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
                matched = runFind(coll, q, undefined, undefined, 0, s.limit ? 1 : 0);
            } catch (e) {
                throw mingoError(e);
            }
            if (!matched.length) continue;
            const dead = new Set(matched);
            coll.docs = coll.docs.filter((d) => !dead.has(d));
            n += matched.length;
            coll.reindex();
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
                let matched = runFind(coll, s.q || {});
                if (!s.multi) matched = matched.slice(0, 1);
                if (matched.length) {
                    n += matched.length;
                    for (const d of matched) {
                        if (applyUpdate(coll, d, s.u, s.arrayFilters, false)) nModified++;
                        noteDocTypes(coll, d);
                    }
                    coll.reindex();
                } else if (s.upsert) {
                    const doc = seedFromQuery(s.q);
                    if (isUpdateOperatorDoc(s.u)) applyUpdate(coll, doc, s.u, s.arrayFilters, true);
                    else Object.assign(doc, s.u);
                    const full = {};
                    full._id = doc._id !== undefined ? doc._id : new ObjectId();
                    Object.assign(full, doc);
                    noteDocTypes(coll, full);
                    const err = coll.insertOne(full);
                    if (err) throw Object.assign(new CmdError(err.code, 'DuplicateKey', err.errmsg));
                    n++;
                    upserted.push({ index: i, _id: full._id });
                }
            } catch (e) {
                const ce = mingoError(e);
                writeErrors.push({ index: i, code: ce.code, errmsg: ce.message });
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
            matched = runFind(coll, cmd.query || {}, undefined, cmd.sort, 0, 1);
        } catch (e) {
            throw mingoError(e);
        }
        const d = matched[0];
        const schema = coll.schema;
        if (cmd.remove) {
            if (d) {
                coll.docs = coll.docs.filter((x) => x !== d);
                coll.reindex();
            }
            return { lastErrorObject: { n: d ? 1 : 0 }, value: d ? wrapDoc(d, schema) : null, ok: 1 };
        }
        if (d) {
            const before = BSON.deserialize(serialize(wrapDoc(d, schema)));
            const updatedExisting = true;
            applyUpdate(coll, d, cmd.update, cmd.arrayFilters, false);
            noteDocTypes(coll, d);
            coll.reindex();
            return { lastErrorObject: { n: 1, updatedExisting }, value: cmd.new ? wrapDoc(d, schema) : before, ok: 1 };
        }
        if (cmd.upsert) {
            const doc = seedFromQuery(cmd.query);
            if (isUpdateOperatorDoc(cmd.update)) applyUpdate(coll, doc, cmd.update, cmd.arrayFilters, true);
            else Object.assign(doc, cmd.update);
            const full = { _id: doc._id !== undefined ? doc._id : new ObjectId() };
            Object.assign(full, doc);
            noteDocTypes(coll, full);
            const err = coll.insertOne(full);
            if (err) throw new CmdError(err.code, 'DuplicateKey', err.errmsg);
            return { lastErrorObject: { n: 1, updatedExisting: false, upserted: full._id }, value: cmd.new ? wrapDoc(full, schema) : null, ok: 1 };
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
            if (ix.unique && Object.keys(ix.key).length === 1) {
                const f = Object.keys(ix.key)[0];
                const seen = new Map();
                for (const d of coll.docs) {
                    const v = mingoUtil.resolve(d, f);
                    const k = idKey(v === undefined ? null : v);
                    if (seen.has(k)) {
                        throw new CmdError(11000, 'DuplicateKey', dupKeyError(coll, iname, { [f]: v === undefined ? null : v }).errmsg);
                    }
                    seen.set(k, true);
                }
            }
            coll.addIndex(ix);
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
        return await fn(cmd, ctx);
    } catch (e) {
        const ce = e instanceof CmdError ? e : mingoError(e);
        if (!(e instanceof CmdError) && OPTS.verbose) log(`conn${conn.id} ${name} failed: ${e && e.stack || e}`);
        const r = { ok: 0, errmsg: ce.message, code: ce.code, codeName: ce.codeName };
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
    server = net.createServer(onConnection);
    server.on('error', (e) => {
        log(`listen error: ${e.message}`);
        process.exit(1);
    });
    server.listen({ host: opts.host, port: opts.port }, () => {
        const a = server.address();
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

if (require.main === module) start(OPTS);

module.exports = { start, commands };
