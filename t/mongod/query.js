/*
 * query.js -- TEST-ONLY MongoDB server (see README.md): the query and
 * aggregation adapter over mingo: result type inference, the maxTimeMS
 * deadline, MongoDB's query and expression operators where they differ from
 * mingo's (comparison, arithmetic, $type), $sort, the typed $group /
 * $project / $addFields / $set stages and the mingo context they run in.
 */
'use strict';

const BSON = require('bson');
const { ObjectId } = BSON;
const { Context, evalExpr } = require('mingo/core');
const { Lazy } = require('mingo/lazy');
const mingoUtil = require('mingo/util');
const accumulatorOps = require('mingo/operators/accumulator');
const expressionOps = require('mingo/operators/expression');
const pipelineOps = require('mingo/operators/pipeline');
const projectionOps = require('mingo/operators/projection');
const queryOps = require('mingo/operators/query');
const windowOps = require('mingo/operators/window');
const { TYPES, DERIVED, LIT, NUMERIC, isInt32, CmdError, badValue, isPlainObject, hasOwn } = require('./values.js');
const { valueType, bsonRank, isNaNum, definedKeys, bsonCompare, nullish, eqKey, groupKey, bsonEquals, decParts,
    decAdd, decToBson, decFromDouble34, numValue } = require('./compare.js');

/* ------------------------------------------------------------------ */
/* type inference for aggregation expressions                         */
/* ------------------------------------------------------------------ */

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

/* The BSON types of the numbers $let bound, beside its variables. */
const VAR_TYPES = Symbol('variable types');

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
            const vars = opts && opts.local && opts.local.variables;
            return dot < 0 && vars && vars[VAR_TYPES] ? vars[VAR_TYPES][e.slice(2)] : undefined;
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
/* Decimal128 arithmetic as mongod does it: when an operand of $add or
 * $subtract is a decimal, every number is taken as a decimal (integers
 * exactly, doubles as Decimal128(double, kRoundTo34Digits)) and so is the
 * result. */
const isDec = (v) => v !== null && typeof v === 'object' && v._bsontype === 'Decimal128';
function asDec(v) {
    if (isDec(v)) return decParts(v);
    if (v !== null && typeof v === 'object' && v._bsontype === 'Long') return { n: BigInt(v.toString()), e: 0 };
    const x = numValue(v);
    return Number.isInteger(x) ? { n: BigInt(x), e: 0 } : decFromDouble34(x);
}
const decNeg = (p) => (p.nan ? p : p.inf ? { inf: -p.inf } : { n: -p.n, e: p.e });

const ARITH_OPS = {
    $add: (obj, expr, options) => {
        tick();
        const args = evalExpr(obj, Array.isArray(expr) ? expr : [expr], options);
        if (args.some(isDec) && args.every((v) => numValue(v) !== undefined)) {
            return decToBson(args.reduce((t, v) => decAdd(t, asDec(v)), { n: 0n, e: 0 }));
        }
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
        if (x !== undefined && y !== undefined) {
            return isDec(a) || isDec(b) ? decToBson(decAdd(asDec(a), decNeg(asDec(b)))) : x - y;
        }
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
 * stages" (int64 beyond +-2^53 is approximated: see README.md). */
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

/* {$toLong: x} as mongod converts (mingo stops at 2^53): a double or
 * decimal truncated when within [-2^63, 2^63), true 1, false 0, a date
 * its ms, null null; anything else a ConversionFailure. */
function exprToLong(obj, expr, options) {
    const v = evalExpr(obj, Array.isArray(expr) ? expr[0] : expr, options);
    if (v === null || v === undefined) return null;
    if (v === true || v === false) return v ? 1 : 0;
    if (v instanceof Date) return v.getTime();
    const fail = (why) => new CmdError(241, 'ConversionFailure', `${why} in $convert with no onError value`);
    if (typeof v === 'string') {
        if (!/^-?\d+$/.test(v)) throw fail(`Failed to parse number '${v}'`);
        return Number(v);
    }
    if (typeof v === 'object' && v._bsontype === 'Long') return v;
    if (isDec(v)) {
        const p = decParts(v);
        if (p.nan || p.inf) throw fail('Attempt to convert NaN or infinite value to integer');
        const t = p.e >= 0 ? p.n * 10n ** BigInt(p.e) : p.n / 10n ** BigInt(-p.e);
        if (t < -(2n ** 63n) || t >= 2n ** 63n) throw fail('Conversion would overflow target type');
        return t >= -(2n ** 53n) && t <= 2n ** 53n ? Number(t) : BSON.Long.fromString(t.toString());
    }
    const x = numValue(v);
    if (x === undefined) throw fail(`Unsupported conversion from ${typeName(v)} to long`);
    if (!Number.isFinite(x)) throw fail('Attempt to convert NaN or infinite value to integer');
    if (x < -(2 ** 63) || x >= 2 ** 63) throw fail('Conversion would overflow target type');
    return Math.trunc(x);
}

/* container[key] evaluated against doc, and its type when a number: a
 * $cond's test is evaluated once (exprType alone would evaluate it again
 * to know the branch, which mongod never does). */
function evalTyped(container, key, doc, options) {
    const e = container[key];
    if (isPlainObject(e) && hasOwn(e, '$cond') && Object.keys(e).length === 1) {
        const a = e.$cond;
        if (Array.isArray(a) && a.length === 3) {
            return evalTyped(a, mongoTruthy(evalExpr(doc, a[0], options)) ? 1 : 2, doc, options);
        }
        if (isPlainObject(a)) return evalTyped(a, mongoTruthy(evalExpr(doc, a.if, options)) ? 'then' : 'else', doc, options);
    }
    const v = evalExpr(doc, e, options);
    return [v, typeof v === 'number' ? exprType(container, key, doc, options, currentTctx) : undefined];
}

/* {$let: {vars, in}} as mingo's, keeping the type of each number bound
 * (a double of integral value stays a double for $type "$$v"). */
function typedLet(obj, expr, options) {
    const outer = options.local && options.local.variables;
    const variables = {};
    const types = Object.assign({}, outer && outer[VAR_TYPES]);
    for (const key of Object.keys(expr.vars)) {
        [variables[key], types[key]] = evalTyped(expr.vars, key, obj, options);
    }
    variables[VAR_TYPES] = types;
    /* options is mingo's ComputeOptions (not exported): a copy, scoped */
    return evalExpr(obj, expr.in, options.constructor.init(options).update({ variables }));
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
/* a x 10^e (a >= 0, e < -place) to `place` digits after the point: the
 * coefficient of 10^-place, truncated, or rounded half to even. */
function roundCoefficient(a, e, place, mode) {
    const div = 10n ** BigInt(-place - e);
    let q = a / div;
    const r = a % div;
    if (mode === 'round' && (r * 2n > div || (r * 2n === div && (q & 1n) === 1n))) q += 1n;
    return q;
}

function decimalRound(x, place, mode) {
    if (typeof x !== 'number' || !Number.isFinite(x)) return x;
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(x.toPrecision(15));
    if (!m) return x;
    const neg = m[1] === '-';
    const frac = m[3] || '';
    const digits = BigInt(m[2] + frac);
    const exp = (m[4] ? Number(m[4]) : 0) - frac.length;     /* |x| = digits * 10^exp */
    if (exp >= -place) return Number(x.toPrecision(15));
    const v = Number(`${roundCoefficient(digits, exp, place, mode)}e${-place}`);
    return neg ? -v : v;
}

/* $trunc / $round of a Decimal128 to `place` digits, as a Decimal128
 * (MongoDB rounds a decimal half to even). */
function decimalRoundDec(x, place, mode) {
    const p = decParts(x);
    if (p.nan || p.inf || p.e >= -place) return x;
    const neg = p.n < 0n;
    const q = roundCoefficient(neg ? -p.n : p.n, p.e, place, mode);
    return decToBson({ n: neg ? -q : q, e: -place });
}

function roundLike(mode, name) {
    return (obj, expr, options) => {
        const args = evalExpr(obj, Array.isArray(expr) ? expr : [expr], options);
        const n = args[0];
        const place = args.length > 1 && args[1] !== undefined ? args[1] : 0;
        if (n === null || n === undefined) return null;
        const dec = isDec(n);
        if (typeof n !== 'number' && !dec) {
            throw new CmdError(51081, 'Location51081', `${name} only supports numeric types, not ${typeName(n)}`);
        }
        if (typeof place !== 'number' || !Number.isInteger(place) || place < -20 || place >= 100) {
            throw new CmdError(51083, 'Location51083', `cannot apply ${name} with precision value ${place} value must be in [-20, 100)`);
        }
        if (dec) return decimalRoundDec(n, place, mode);
        if (Number.isInteger(n) && place >= 0) return n;
        return decimalRound(n, place, mode);
    };
}

/* The type context of the running aggregate (collection schema). */
let currentTctx = { schema: null };
const getTctx = () => currentTctx;
const setTctx = (t) => { currentTctx = t; };

const TYPED_CONTEXT = Context.init({
    accumulator: Object.assign({}, accumulatorOps, MONGO_ACCUMULATOR_OPS),
    expression: Object.assign({}, expressionOps, MONGO_EXPRESSION_OPS, {
        $round: roundLike('round', '$round'),
        $trunc: roundLike('trunc', '$trunc'),
        $type: exprTypeOp,
        $isNumber: exprIsNumber,
        $let: typedLet,
        $toLong: exprToLong,
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

module.exports = { setTctx, mongoTruthy, maxTimeExpired, tick, withDeadline, LT, LTE, GTE, GT, typeName, bsonString,
    sortDocs, TYPED_CONTEXT, SUPPORTED_STAGES };
