/*
 * compare.js -- TEST-ONLY MongoDB server (see README.md): MongoDB's BSON
 * comparison order across types, exact comparison of numbers of every type,
 * group and _id keys, and typed arithmetic (mongod's SafeNum and
 * Decimal128) as $inc and $sum need it.
 */
'use strict';

const BSON = require('bson');
const { Long } = BSON;
const { NUMERIC, isInt32, isPlainObject } = require('./values.js');

function valueType(v) {
    if (typeof v === 'number') {
        if (!Number.isInteger(v) || Math.abs(v) >= 9223372036854775808) return 'double';
        return isInt32(v) ? 'int' : 'long';
    }
    if (v instanceof Date) return 'date';
    if (v && typeof v === 'object' && v._bsontype === 'Long') return 'long';
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


/* A number of any type as a JS number, or undefined if not numeric.
 * (int64 outside +-2^53 and decimals are approximated: see README.md.) */
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

module.exports = { valueType, bsonRank, cmp3, exactNum, isNaNum, cmpNum, definedKeys, bsonCompare, nullish,
    eqKey, groupKey, canonString, bsonEquals, INT64_MIN_BIG, INT64_MAX_BIG, decParts, decAdd, decToBson,
    decFromDouble34, typedNum, safeAdd, safeIdentical, typedStore, safeDebug, numValue };
