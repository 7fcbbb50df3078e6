/*
 * storage.js -- TEST-ONLY MongoDB server (see README.md): the in-memory
 * store: index key encoding (mongod's KeyString order), sorted compound
 * indexes, collections (documents, indexes, unique keys, writes) and
 * databases.
 */
'use strict';

const BSON = require('bson');
const mingoUpdater = require('mingo/updater');
const { TYPES, DERIVED, CmdError, isPlainObject, noteType, serialize, hasOwn } = require('./values.js');
const { exactNum, cmpNum, groupKey, canonString, bsonEquals, INT64_MIN_BIG, INT64_MAX_BIG } = require('./compare.js');
const {
    retypeDoc, isUpdateOperatorDoc, updatePlan, computeInc, applyInc, minMaxBefore, updateWritten, applyUpdate,
} = require('./update.js');

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
     * (update.js, "per-document numeric types"); the collection schema
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
    dropIndex(name) {
        this.indexes = this.indexes.filter((i) => i.name !== name);
        this.ix.delete(name);
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

module.exports = { NUM_CH, MINKEY_CH, MAXKEY_CH, KEY_END, encNumber, encValue, succ, Index, idKey, Collection,
    databases, getDb, getColl };
