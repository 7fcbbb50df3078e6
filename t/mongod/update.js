/*
 * update.js -- TEST-ONLY MongoDB server (see README.md): writes to
 * documents: per-document numeric types, update operators ($inc as mongod
 * does it, the others mingo's), upserts and the documents of an insert.
 */
'use strict';

const BSON = require('bson');
const { ObjectId } = BSON;
const mingoUtil = require('mingo/util');
const mingoUpdater = require('mingo/updater');
const { TYPES, LIT, CmdError, badValue, typeMismatch, isPlainObject, noteType, plainValue, wrapValue,
    DESER_RAW, hasOwn } = require('./values.js');
const { valueType, bsonCompare, typedNum, safeAdd, safeIdentical, typedStore, safeDebug } = require('./compare.js');
const { typeName, bsonString } = require('./query.js');

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
 *   - otherwise the sum is SafeNum's (typed numbers, compare.js): int32 past
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

module.exports = { typeDoc, retypeDoc, isUpdateOperatorDoc, updatePlan, computeInc, applyInc, minMaxBefore, updateWritten,
    applyUpdate, upsertDoc, typedId, prepareDoc, docsFrom };
