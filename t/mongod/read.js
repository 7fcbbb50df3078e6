/*
 * read.js -- TEST-ONLY MongoDB server (see README.md): reads: cursors,
 * query planning (index bounds, interval scans, the plan chosen), find,
 * count and aggregate with their explain output, and serverStatus.
 */
'use strict';

const BSON = require('bson');
const { Long, Double, ObjectId } = BSON;
const { Aggregator } = require('mingo/aggregator');
const { Query } = require('mingo/query');
const mingoUtil = require('mingo/util');
const {
    BATCH_BYTES, DEFAULT_BATCH, SERVER_VERSION, CmdError, badValue, typeMismatch, isPlainObject, wrapDoc, serialize,
} = require('./values.js');
const { cmp3, isNaNum } = require('./compare.js');
const {
    mongoTruthy, tick, withDeadline, LT, LTE, GTE, GT, typeName, sortDocs, TYPED_CONTEXT, SUPPORTED_STAGES,
    setTctx } = require('./query.js');
const { NUM_CH, MINKEY_CH, MAXKEY_CH, KEY_END, encNumber, encValue, succ, getColl } = require('./storage.js');

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
    constructor(ns, id, batchName, batch, extra, cursorExtra) {
        this.ns = ns;
        this.id = id;
        this.batchName = batchName;
        this.batch = batch;
        this.extra = extra || {};
        this.cursorExtra = cursorExtra || {};      /* more fields of the cursor document */
    }
    toBuffer() {
        /* build { cursor: { <batchName>: [...], id, ns, ...cursorExtra }, ok: 1, ...extra } by hand */
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
        const tail = serialize(Object.assign({ id: this.id, ns: this.ns }, this.cursorExtra));   /* {id, ns, ...} */
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

/* ------------------------------------------------------------------ */
/* find, aggregate and count, with their explain output               */
/* ------------------------------------------------------------------ */

let listenPort = 0;
const setListenPort = (p) => { listenPort = p; };

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
        setTctx({ schema: coll ? coll.schema : null });
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
        setTctx({ schema: null });
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

module.exports = { setListenPort, cursors, continueCursor, RawReply, cursorReply, totals, runFind, collName, optInt,
    mingoError, sleep, execFind, execCount, checkPipeline, execAggregate, aggregateExplain, explainCommand,
    serverStatus };
