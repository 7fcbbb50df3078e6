/*
 * values.js -- TEST-ONLY MongoDB server (see README.md): the shared ground
 * of its modules: wire and size constants, the command options and log,
 * command errors and mongod's code names, and the conversion between BSON
 * values (numeric wrappers) and the plain JS values the server computes
 * with, keeping each number's BSON type per field path.
 */
'use strict';

const BSON = require('bson');
const { Long, Double, Int32 } = BSON;

/* The command line's options: server.js fills them in when it runs as a
 * program; a module user (replset.js, mongod-preload.js) gets these. */
const OPTS = { host: '127.0.0.1', port: 0, verbose: false, ttlMonitorSleepSecs: 60 };

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
const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

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

module.exports = { DEFAULT_BATCH, OPTS, log, OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG, MAX_BSON, MAX_MESSAGE, MAX_WRITE_BATCH,
    BATCH_BYTES, SERVER_VERSION, SERVER_VERSION_ARRAY, MAX_WIRE_VERSION, TYPES, DERIVED, LIT, NUMERIC,
    INT32_MAX, isInt32, CmdError, badValue, typeMismatch, isPlainObject, plainCmd, noteType, plainValue,
    wrapDoc, wrapValue, serialize, DESER_RAW, hasOwn, codeName };
