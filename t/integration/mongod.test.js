/*
 * mongod.test.js -- self-test of t/mongod/server.js, the TEST-ONLY MongoDB
 * wire-protocol server, through the official Node driver and raw wire
 * messages.  Written to pass unchanged against a real MongoDB too
 * (REPORTERD_TEST_MONGODB_URI=mongodb://...), which is how the stand-in is
 * kept honest.
 *
 * Where reporterd depends on MongoDB's behaviour, each test names the
 * behaviour in its title: BSON comparison order across types in query and
 * expression operators, $sort, $min/$max and $group keys; exact int64/double
 * equality above 2^53; numbers of every type (int32, int64, double,
 * Decimal128) equal by value in queries, indexes, $group (whose _id is the
 * first value seen) and $sort, each returned with its own type, $type's
 * names; $inc as mongod does it (int32 widening to int64, an int64
 * overflow failing with BadValue); writeConcern and readConcern as a
 * standalone takes them; MongoDB's null handling and error codes in
 * $subtract/$divide/$multiply; maxTimeMS interrupting a running
 * aggregation (code 50); errors injected with the failCommand fail point
 * (configureFailPoint, a test command: against a real server started
 * without enableTestCommands=1 those tests skip, saying so).
 *
 * REPORTERD_TEST_SCALE=1 adds a 2,000,000-document load + aggregate timing
 * (slow; not part of the normal run).
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('../lib/harness.js');

const { MongoClient, Long, Double, Int32, MaxKey, ObjectId, Decimal128 } = require('mongodb');
const BSON = require('bson');

let mongo;
let client;
let db;
let names;

before(async () => {
    mongo = await h.startMongo();
    names = h.uniqueNames('rdmongod');
    client = await h.mongoClient(mongo.uri);
    db = client.db(names.database);
});

after(async () => {
    try {
        if (client) await client.db(names.database).dropDatabase();
    } finally {
        await h.cleanup();
    }
});

/* Records with whole, edge and fractional durations; some phones empty. */
function makeRecords(seed = 7) {
    let x = seed;
    const rnd = () => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648; };
    const recs = [];
    const base = Date.UTC(2023, 4, 9, 2, 27, 3);
    const edge = [10, 15, 30, 9.999, 10.001, 15.5, 29.999, 0, 0.001];
    for (let p = 1; p <= 12; p++) {
        const n = p % 4 === 0 ? 0 : Math.floor(rnd() * 60);
        for (let i = 0; i < n; i++) {
            const d = i < edge.length && p % 3 === 1 ? edge[i] : Math.floor(rnd() * 121);
            const st = base + Math.floor(rnd() * 1e9);
            recs.push({ phone: p, start_date: new Date(st), end_date: new Date(st + Math.round(d * 1000)) });
        }
    }
    /* a big (int64) phone number */
    for (let i = 0; i < 5; i++) {
        const st = base + i * 1000;
        recs.push({ phone: 79161234567, start_date: new Date(st), end_date: new Date(st + (i * 11 + 1) * 1000) });
    }
    return recs;
}

function reportPipeline(phones, price) {
    const dur = { $divide: [{ $subtract: ['$end_date', '$start_date'] }, 1000] };
    return [
        { $match: { phone: { $in: phones } } },
        { $project: { phone: 1, dur } },
        {
            $group: {
                _id: '$phone',
                cnt_all_attempts: { $sum: 1 },
                c10: { $sum: { $cond: [{ $lt: ['$dur', 10] }, 1, 0] } },
                c1030: { $sum: { $cond: [{ $and: [{ $gte: ['$dur', 10] }, { $lt: ['$dur', 30] }] }, 1, 0] } },
                c30: { $sum: { $cond: [{ $gte: ['$dur', 30] }, 1, 0] } },
                min_price_att: { $min: { $multiply: ['$dur', price] } },
                max_price_att: { $max: { $multiply: ['$dur', price] } },
                avg_dur_att: { $avg: '$dur' },
                sum_price_att_over_15: { $sum: { $cond: [{ $gt: ['$dur', 15] }, { $multiply: ['$dur', price] }, 0] } },
            },
        },
        {
            $project: {
                _id: 0,
                phone: '$_id',
                cnt_all_attempts: 1,
                cnt_att_dur: { '10_sec': '$c10', '10_30_sec': '$c1030', '30_sec': '$c30' },
                min_price_att: { $round: ['$min_price_att', 2] },
                max_price_att: { $round: ['$max_price_att', 2] },
                avg_dur_att: { $round: ['$avg_dur_att', 2] },
                sum_price_att_over_15: { $round: ['$sum_price_att_over_15', 2] },
            },
        },
        { $sort: { phone: 1 } },
    ];
}

test('hello, ping, buildInfo and unknown commands; the server is MongoDB 4.4 (maxWireVersion 9), the release ' +
    'reporterd supports', async () => {
    const admin = client.db('admin');
    const hello = await admin.command({ hello: 1 });
    assert.equal(hello.isWritablePrimary, true);
    assert.equal(hello.ok, 1);
    assert.ok(hello.maxWireVersion >= 9, `maxWireVersion ${hello.maxWireVersion}: 4.4 or later`);
    assert.equal(hello.maxBsonObjectSize, 16777216);
    const legacy = await admin.command({ isMaster: 1 });
    assert.equal(legacy.ismaster, true);
    assert.equal((await admin.command({ ping: 1 })).ok, 1);
    const bi = await admin.command({ buildInfo: 1 });
    assert.match(bi.version, /^\d+\.\d+/);
    if (!mongo.external) {
        /* the test server claims exactly what reporterd claims to support */
        assert.equal(hello.maxWireVersion, 9);
        assert.match(bi.version, /^4\.4\./);
        assert.deepEqual(bi.versionArray.slice(0, 2), [4, 4]);
    }
    await assert.rejects(db.command({ noSuchCommandAtAll: 1 }), (e) => {
        assert.equal(e.code, 59);
        assert.equal(e.codeName, 'CommandNotFound');
        assert.match(e.message, /no such command: 'noSuchCommandAtAll'/);
        return true;
    });
});

test('insert, find with filter/projection/sort/skip/limit, getMore, countDocuments, killCursors', async () => {
    const c = db.collection('docs');
    const docs = [];
    for (let i = 0; i < 250; i++) docs.push({ i, sq: i * i, half: i / 2, tag: i % 3 === 0 ? 'a' : 'b', when: new Date(1e12 + i) });
    const r = await c.insertMany(docs);
    assert.equal(r.insertedCount, 250);

    const all = await c.find({}, { batchSize: 7 }).sort({ i: 1 }).toArray();       /* many getMores */
    assert.equal(all.length, 250);
    assert.deepEqual(all.map((d) => d.i), docs.map((d) => d.i));
    assert.ok(all[0]._id, 'ObjectId _id added');
    assert.deepEqual(Object.keys(all[0])[0], '_id', '_id comes first');

    const page = await c.find({ tag: 'a', i: { $gte: 30 } }, { projection: { _id: 0, i: 1, sq: 1 } })
        .sort({ i: -1 }).skip(2).limit(5).toArray();
    assert.deepEqual(page, [243, 240, 237, 234, 231].map((i) => ({ i, sq: i * i })));

    assert.equal(await c.countDocuments({ tag: 'b' }), 166);

    const one = await c.findOne({ i: 3 });
    assert.equal(one.half, 1.5);
    assert.ok(one.when instanceof Date);

    /* numeric types survive a round trip */
    const raw = await c.findOne({ i: 4 }, { promoteValues: false });
    assert.ok(raw.i instanceof Int32, `int32 stays int32: ${raw.i && raw.i._bsontype}`);
    assert.ok(raw.half instanceof Int32, `4/2 was sent by the driver as int32: ${raw.half && raw.half._bsontype}`);
    await c.insertOne({ i: 1000, big: Long.fromNumber(5), dbl: new Double(7) });
    const raw2 = await c.findOne({ i: 1000 }, { promoteValues: false });
    assert.ok(raw2.big instanceof Long, `int64 stays int64: ${raw2.big && raw2.big._bsontype}`);
    assert.ok(raw2.dbl instanceof Double, `double 7.0 stays double: ${raw2.dbl && raw2.dbl._bsontype}`);

    /* cursors can be killed */
    const cur = c.find({}, { batchSize: 2 });
    await cur.next();
    await cur.close();
});

test('update, delete, duplicate keys', async () => {
    const c = db.collection('upd');
    await c.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }, { _id: 3, n: 3 }]);
    const u = await c.updateMany({ n: { $gte: 2 } }, { $inc: { n: 10 }, $set: { s: 'x' } });
    assert.equal(u.matchedCount, 2);
    assert.equal(u.modifiedCount, 2);
    assert.deepEqual(await c.find({}).sort({ _id: 1 }).toArray(),
        [{ _id: 1, n: 1 }, { _id: 2, n: 12, s: 'x' }, { _id: 3, n: 13, s: 'x' }]);
    const up = await c.updateOne({ _id: 9 }, { $set: { n: 9 } }, { upsert: true });
    assert.equal(up.upsertedCount, 1);
    assert.equal(up.upsertedId, 9);
    await c.replaceOne({ _id: 1 }, { z: true });
    assert.deepEqual(await c.findOne({ _id: 1 }), { _id: 1, z: true });
    await assert.rejects(c.insertOne({ _id: 2 }), (e) => { assert.equal(e.code, 11000); return true; });
    const d = await c.deleteMany({ n: { $gt: 10 } });
    assert.equal(d.deletedCount, 2);
    const d1 = await c.deleteOne({ _id: 9 });
    assert.equal(d1.deletedCount, 1);
    assert.equal(await c.countDocuments(), 1);
});

test('indexes: single-field, compound, unique and TTL; drop', async () => {
    const c = db.collection('ix');
    const at = new Date();     /* a real MongoDB's TTL monitor leaves it for a day */
    await c.insertOne({ phone: 1, at, seq: 1 });
    assert.equal(await c.createIndex({ phone: 1 }), 'phone_1');
    assert.equal(await c.createIndex({ phone: 1 }), 'phone_1', 'idempotent');
    assert.equal(await c.createIndex({ phone: 1, at: -1 }), 'phone_1_at_-1', 'compound');
    assert.equal(await c.createIndex({ seq: 1 }, { unique: true }), 'seq_1');
    assert.equal(await c.createIndex({ at: 1 }, { expireAfterSeconds: 86400 }), 'at_1');
    const ix = await c.indexes();
    assert.deepEqual(ix.map((i) => i.name).sort(), ['_id_', 'at_1', 'phone_1', 'phone_1_at_-1', 'seq_1']);
    const byName = (n) => ix.find((i) => i.name === n);
    assert.deepEqual(byName('phone_1').key, { phone: 1 });
    assert.deepEqual(byName('phone_1_at_-1').key, { phone: 1, at: -1 });
    assert.equal(byName('seq_1').unique, true);
    assert.equal(byName('at_1').expireAfterSeconds, 86400);
    /* collMod changes a TTL index's expiry, by name or by key pattern */
    const mod = await db.command({ collMod: 'ix', index: { name: 'at_1', expireAfterSeconds: 3600 } });
    assert.equal(mod.expireAfterSeconds_old, 86400);
    assert.equal(mod.expireAfterSeconds_new, 3600);
    await db.command({ collMod: 'ix', index: { keyPattern: { at: 1 }, expireAfterSeconds: 7200 } });
    assert.equal((await c.indexes()).find((i) => i.name === 'at_1').expireAfterSeconds, 7200);
    await assert.rejects(db.command({ collMod: 'ix', index: { name: 'nope', expireAfterSeconds: 1 } }),
        (e) => e.code === 27, 'an unknown index: IndexNotFound');
    await assert.rejects(c.insertOne({ phone: 2, seq: 1 }), (e) => {
        assert.equal(e.code, 11000);
        assert.deepEqual(e.keyValue, { seq: 1 });
        return true;
    }, 'a unique index refuses a second document with its key');
    await assert.rejects(c.updateOne({ phone: 3 }, { $set: { seq: 1 } }, { upsert: true }), (e) => e.code === 11000,
        'an upsert that would duplicate a unique key fails');
    assert.equal(await c.countDocuments({ phone: 1, at: { $lte: at } }), 1, 'a range on the compound key');
    assert.equal(await c.drop(), true);
    assert.deepEqual(await c.find({}).toArray(), [], 'dropped');
});

test('findAndModify: update returning the old or the new document, upsert, remove', async () => {
    const c = db.collection('fam');
    await c.insertMany([{ _id: 1, k: 'a', n: 1 }, { _id: 2, k: 'b', n: 5 }]);
    const old = await c.findOneAndUpdate({ k: 'a' }, { $inc: { n: 1 } });
    assert.deepEqual(old, { _id: 1, k: 'a', n: 1 }, 'the document before the update by default');
    const now = await c.findOneAndUpdate({ k: 'a' }, { $inc: { n: 1 } }, { returnDocument: 'after' });
    assert.deepEqual(now, { _id: 1, k: 'a', n: 3 });
    const { _id: id, ...up } = await c.findOneAndUpdate({ k: 'c' }, { $set: { n: 7 }, $setOnInsert: { created: true } },
        { upsert: true, returnDocument: 'after' });
    assert.ok(id, 'the upserted document got an _id');
    assert.deepEqual(up, { k: 'c', n: 7, created: true }, 'upsert: the query\'s equality fields, $set and $setOnInsert');
    const { _id: id2, ...again } = await c.findOneAndUpdate({ k: 'c' }, { $set: { n: 8 }, $setOnInsert: { created: false } },
        { upsert: true, returnDocument: 'after' });
    assert.ok(id.equals(id2), 'the same document');
    assert.deepEqual(again, { k: 'c', n: 8, created: true }, '$setOnInsert applies only when inserting');
    const first = await c.findOneAndUpdate({ n: { $gte: 3 } }, { $set: { top: true } }, { sort: { n: -1 } });
    assert.equal(first.k, 'c', 'sort picks the document with the largest n');
    const gone = await c.findOneAndDelete({ k: 'b' });
    assert.deepEqual(gone, { _id: 2, k: 'b', n: 5 });
    assert.equal(await c.findOneAndDelete({ k: 'b' }), null, 'nothing left to remove');
    assert.deepEqual((await c.find({}, { projection: { _id: 0 } }).sort({ n: 1 }).toArray()),
        [{ k: 'a', n: 3 }, { k: 'c', n: 8, created: true, top: true }]);
});

test('aggregate: reporterd-style report equals the brute-force oracle, with MongoDB types', async () => {
    const recs = makeRecords();
    await h.loadRecords(mongo.uri, names.database, 'calls', recs);
    const c = db.collection('calls');
    const phones = [1, 2, 3, 4, 5, 7, 10, 13, 79161234567];
    const price = 10;
    const rows = await c.aggregate(reportPipeline(phones.map((p) => (p > 2147483647 ? Long.fromNumber(p) : p)), price),
        { batchSize: 2 }).toArray();
    const expected = h.expectedReport(recs, phones, price).filter((e) => e.cnt_all_attempts > 0)
        .sort((a, b) => a.phone - b.phone);
    h.assertReport(rows.map((r) => Object.assign({}, r, { phone: Number(r.phone) })), expected, 'aggregate');

    /* types as MongoDB gives them */
    const typed = await c.aggregate(reportPipeline([1, 2, 3, 5, 7, 10], new Int32(10)).slice(0, 3), { promoteValues: false }).toArray();
    assert.ok(typed.length > 0);
    for (const r of typed) {
        assert.equal(r.cnt_all_attempts._bsontype, 'Int32', '$sum: 1 is int32');
        assert.equal(r.c10._bsontype, 'Int32', '$sum of $cond 1/0 is int32');
        assert.equal(r.avg_dur_att._bsontype, 'Double', '$avg is double');
        assert.equal(r.min_price_att._bsontype, 'Double', '$min of a $divide product is double, even when integral');
        assert.equal(r.max_price_att._bsontype, 'Double');
        const anyOver15 = recs.some((x) => x.phone === r._id.value && (x.end_date - x.start_date) / 1000 > 15);
        assert.equal(r.sum_price_att_over_15._bsontype, anyOver15 ? 'Double' : 'Int32',
            '$sum over $cond [.., double, 0] is double iff a double was added');
    }
    /* $count and $subtract of dates */
    const [cnt] = await c.aggregate([{ $match: { phone: 1 } }, { $count: 'n' }], { promoteValues: false }).toArray();
    assert.equal(cnt.n._bsontype, 'Int32');
    const [sub] = await c.aggregate([{ $match: { phone: 1 } }, { $limit: 1 },
        { $project: { ms: { $subtract: ['$end_date', '$start_date'] } } }], { promoteValues: false }).toArray();
    assert.equal(sub.ms._bsontype, 'Long', 'date - date is int64');
});

test('aggregate errors look like MongoDB', async () => {
    const c = db.collection('calls');
    await assert.rejects(c.aggregate([{ $noSuchStage: {} }]).toArray(), (e) => {
        assert.equal(e.code, 40324);
        assert.match(e.message, /Unrecognized pipeline stage name: '\$noSuchStage'/);
        return true;
    });
    const empty = await db.collection('nonexistent').aggregate([{ $match: { a: 1 } }]).toArray();
    assert.deepEqual(empty, []);
});

/* ------------------------------------------------------------------ */
/* MongoDB behaviour the server mirrors (each test names it)          */
/* ------------------------------------------------------------------ */

/* One document per BSON type bracket; _id says which. */
const MIXED = () => [
    { _id: 1, v: null },
    { _id: 2 },                              /* v missing */
    { _id: 3, v: 3 },
    { _id: 4, v: 'a' },
    { _id: 5, v: [1, 20] },
    { _id: 6, v: new Date(5) },
    { _id: 7, v: true },
    { _id: 8, v: { a: 1 } },
    { _id: 9, v: [] },
];

async function mixedCollection(name) {
    const c = db.collection(name);
    await c.insertMany(MIXED());
    return c;
}

const idsOf = (docs) => docs.map((d) => d._id);

test('query comparisons match within one BSON type only (MongoDB: {v: {$lt: 10}} skips null, missing and ' +
    'strings; {v: null} and {v: {$lte: null}} match null and missing; arrays match by element)', async () => {
    const c = await mixedCollection('q_order');
    const ids = async (filter) => idsOf(await c.find(filter).sort({ _id: 1 }).toArray());
    assert.deepEqual(await ids({ v: { $lt: 10 } }), [3, 5], '$lt 10: the number and the array holding 1');
    assert.deepEqual(await ids({ v: { $gt: 10 } }), [5], '$gt 10: only the array holding 20');
    assert.deepEqual(await ids({ v: { $gte: 'a' } }), [4], '$gte "a": strings only, not the types ranked above');
    assert.deepEqual(await ids({ v: null }), [1, 2], 'null matches null and missing');
    assert.deepEqual(await ids({ v: { $lte: null } }), [1, 2], '$lte null matches null and missing');
    assert.deepEqual(await ids({ v: { $lt: null } }), [], '$lt null matches nothing');
    assert.deepEqual(await ids({ v: { $ne: null } }), [3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await ids({ v: { $in: [null, 'a', 20] } }), [1, 2, 4, 5]);
    assert.deepEqual(await ids({ v: { $nin: [null, 'a', 20] } }), [3, 6, 7, 8, 9]);
    assert.deepEqual(await ids({ v: { $lt: new MaxKey() } }), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'MaxKey bounds every type');
    assert.deepEqual(await ids({ v: { $gte: new Date(0) } }), [6]);
    assert.deepEqual(await ids({ v: { a: 1 } }), [8]);
    assert.deepEqual(await ids({ v: [1, 20] }), [5], 'a whole array matches');
    assert.deepEqual(await ids({ $expr: { $lt: ['$v', 10] } }), [1, 2, 3], '$expr compares across types');
});

test('expression comparisons follow the BSON type order, missing < null < numbers < string < object < array ' +
    '(MongoDB: {$lt: [null, 10]} and {$lt: ["$missing", 10]} are true, {$eq: ["$missing", null]} is false)', async () => {
    const c = await mixedCollection('x_order');
    const rows = await c.aggregate([
        {
            $project: {
                lt: { $lt: ['$v', 10] },
                lte: { $lte: ['$v', null] },
                gt: { $gt: ['$v', 'zzz'] },
                gte: { $gte: ['$v', 3] },
                eqNull: { $eq: ['$v', null] },
                ne: { $ne: ['$v', 3] },
                cmp: { $cmp: ['$v', 10] },
                bucket: { $cond: [{ $lt: ['$v', 10] }, 'below', 'not below'] },
                min: { $min: ['$v', 10] },
                max: { $max: ['$v', 10] },
            },
        },
        { $sort: { _id: 1 } },
    ]).toArray();
    const col = (k) => rows.map((r) => r[k]);
    /*                           null   missing 3      'a'    [1,20] date   true   {a:1}  []   */
    assert.deepEqual(col('lt'), [true, true, true, false, false, false, false, false, false], '$lt [v, 10]');
    assert.deepEqual(col('lte'), [true, true, false, false, false, false, false, false, false], '$lte [v, null]');
    assert.deepEqual(col('gt'), [false, false, false, false, true, true, true, true, true], '$gt [v, "zzz"]');
    assert.deepEqual(col('gte'), [false, false, true, true, true, true, true, true, true], '$gte [v, 3]');
    assert.deepEqual(col('eqNull'), [true, false, false, false, false, false, false, false, false], 'missing is not null');
    assert.deepEqual(col('ne'), [true, true, false, true, true, true, true, true, true], '$ne [v, 3]');
    assert.deepEqual(col('cmp'), [-1, -1, -1, 1, 1, 1, 1, 1, 1], '$cmp [v, 10]');
    assert.deepEqual(col('bucket'), ['below', 'below', 'below', 'not below', 'not below', 'not below', 'not below',
        'not below', 'not below'], '$cond on $lt');
    /* $min/$max expressions ignore null and missing operands */
    assert.deepEqual(col('min'), [10, 10, 3, 10, 10, 10, 10, 10, 10], '$min [v, 10]');
    assert.deepEqual(col('max').map((v) => (v instanceof Date ? 'date' : v)),
        [10, 10, 10, 'a', [1, 20], 'date', true, { a: 1 }, []], '$max [v, 10]');
    const [lit] = await c.aggregate([{ $limit: 1 },
        { $project: { _id: 0, a: { $lt: [null, 10] }, b: { $gt: ['1', 2] }, c: { $lt: [{ $literal: [] }, {}] } } }]).toArray();
    assert.deepEqual(lit, { a: true, b: true, c: false }, 'literals: null < 10, "1" > 2, [] > {}');
});

test('$sort, $min/$max accumulators and $group keys use the BSON type order (MongoDB: missing sorts as null, ' +
    'an array by its smallest element ascending / largest descending, an empty array below null)', async () => {
    const c = await mixedCollection('s_order');
    const asc = idsOf(await c.find({}).sort({ v: 1, _id: 1 }).toArray());
    assert.deepEqual(asc, [9, 1, 2, 5, 3, 4, 8, 7, 6], 'find sort ascending');
    const desc = idsOf(await c.find({}).sort({ v: -1, _id: 1 }).toArray());
    assert.deepEqual(desc, [6, 7, 8, 4, 5, 3, 1, 2, 9], 'find sort descending');
    const aggAsc = idsOf(await c.aggregate([{ $sort: { v: 1, _id: 1 } }]).toArray());
    assert.deepEqual(aggAsc, asc, '$sort stage');
    const [g] = await c.aggregate([{ $group: { _id: null, mn: { $min: '$v' }, mx: { $max: '$v' } } }]).toArray();
    assert.equal(g.mn, 3, '$min skips null and missing; numbers rank lowest of the rest');
    assert.ok(g.mx instanceof Date && g.mx.getTime() === 5, `$max: the date ranks highest, got ${g.mx}`);
    const [none] = await c.aggregate([{ $match: { _id: { $in: [1, 2] } } },
        { $group: { _id: null, mn: { $min: '$v' }, mx: { $max: '$v' } } }]).toArray();
    assert.deepEqual(none, { _id: null, mn: null, mx: null }, 'only null and missing: null');
    const n = db.collection('s_nums');
    await n.insertMany([{ v: 2 }, { v: new Double(2) }, { v: Long.fromNumber(2) }, { v: 'b' }, { v: 1.5 }, { v: null }]);
    const keys = await n.aggregate([{ $group: { _id: '$v' } }, { $sort: { _id: 1 } }]).toArray();
    assert.deepEqual(keys.map((k) => k._id), [null, 1.5, 2, 'b'], '$group: 2, 2.0 and 2L are one key');
});

/* The pipeline src/report.c built before issue 11 (doubles, no validity check), for one price:
 * kept to document MongoDB's semantics the stand-in must reproduce. */
function reporterdPipeline(phones, price) {
    const cmp = (op, v) => ({ [op]: ['$dur', new Double(v)] });
    const condSum = (cond, then) => ({ $sum: { $cond: [cond, then === undefined ? new Int32(1) : then, new Int32(0)] } });
    return [
        { $match: { phone: { $in: phones.map((p) => Long.fromNumber(p)) } } },
        { $project: { _id: 0, phone: 1, dur: { $divide: [{ $subtract: ['$end_date', '$start_date'] }, new Double(1000)] } } },
        { $addFields: { price: { $multiply: ['$dur', new Double(price)] } } },
        {
            $group: {
                _id: '$phone',
                cnt_all: { $sum: new Int32(1) },
                cnt_10: condSum(cmp('$lt', 10)),
                cnt_10_30: condSum({ $and: [cmp('$gte', 10), cmp('$lt', 30)] }),
                cnt_30: condSum(cmp('$gte', 30)),
                sum_price_over_15: condSum(cmp('$gt', 15), '$price'),
                min_price: { $min: '$price' },
                max_price: { $max: '$price' },
                avg_dur: { $avg: '$dur' },
            },
        },
    ];
}

test("reporterd's pipeline on records with missing or null dates: they count in the < 10 s bucket and nowhere " +
    'else (MongoDB: the duration is null and {$lt: [null, 10]} is true), a string phone never matches', async () => {
    const c = db.collection('rd_cross');
    const t0 = Date.UTC(2023, 0, 1);
    await c.insertMany([
        { phone: 5, start_date: new Date(t0), end_date: new Date(t0 + 20000) },        /* 20 s */
        { phone: 5, end_date: new Date(t0) },                                           /* no start: null */
        { phone: 5, start_date: null, end_date: null },                                 /* null - null: null */
        { phone: Long.fromNumber(5), start_date: new Date(t0), end_date: new Date(t0 + 4000) },  /* 4 s, int64 */
        { phone: '5', start_date: new Date(t0), end_date: new Date(t0 + 1000) },        /* string: no match */
        { phone: 6 },                                                                   /* no dates at all */
    ]);
    const rows = await c.aggregate(reporterdPipeline([5, 6, 7], 2)).toArray();
    rows.sort((a, b) => a._id - b._id);
    assert.deepEqual(rows.map((r) => r._id), [5, 6], 'phones 5 and 6 have records; "5" is a string');
    const [p5, p6] = rows;
    assert.deepEqual({ all: p5.cnt_all, c10: p5.cnt_10, c1030: p5.cnt_10_30, c30: p5.cnt_30 },
        { all: 4, c10: 3, c1030: 1, c30: 0 }, 'phone 5: 4 s and the two null durations are < 10 s, 20 s is in [10, 30)');
    assert.equal(p5.sum_price_over_15, 40, 'only the 20 s record is over 15 s: 20 * 2');
    assert.equal(p5.min_price, 8, '$min ignores the null prices: 4 * 2');
    assert.equal(p5.max_price, 40);
    assert.equal(p5.avg_dur, 12, '$avg ignores the null durations: (20 + 4) / 2');
    assert.deepEqual({ all: p6.cnt_all, c10: p6.cnt_10, c1030: p6.cnt_10_30, c30: p6.cnt_30, sum: p6.sum_price_over_15 },
        { all: 1, c10: 1, c1030: 0, c30: 0, sum: 0 });
    assert.equal(p6.min_price, null);
    assert.equal(p6.max_price, null);
    assert.equal(p6.avg_dur, null);
});

test('$subtract, $divide and $multiply: null or missing operands give null, other types fail with ' +
    "MongoDB's codes (16556, 16613, 16609, 16555)", async () => {
    const c = db.collection('arith');
    const t0 = new Date(Date.UTC(2023, 0, 1));
    await c.insertMany([
        { _id: 's', start: '2023-01-01', end: '2023-01-02' },
        { _id: 'sd', start: '2023-01-01', end: t0 },
        { _id: 'ds', start: t0, end: '2023-01-02' },
        { _id: 'n', start: 1000, end: 5000 },
        { _id: 'dn', start: 1000, end: t0 },
    ]);
    const run = (id, project) => c.aggregate([{ $match: { _id: id } }, { $project: project }]).toArray();
    const sub = { d: { $subtract: ['$end', '$start'] } };
    const fails = async (id, project, code, re) => {
        await assert.rejects(run(id, project), (e) => {
            assert.equal(e.code, code, `${id}: ${e.message}`);
            assert.match(e.message, re);
            return true;
        });
    };
    await fails('s', sub, 16556, /subtract.*string/);
    await fails('ds', sub, 16556, /subtract.*date.*string|subtract.*string/);
    await fails('sd', sub, 16613, /subtract.*string.*[Dd]ate/);
    assert.deepEqual(await run('n', sub), [{ _id: 'n', d: 4000 }], 'numbers subtract');
    const [dn] = await run('dn', sub);
    assert.ok(dn.d instanceof Date && dn.d.getTime() === t0.getTime() - 1000, 'date - number is a date');
    await fails('dn', { d: { $divide: [{ $subtract: ['$end', '$start'] }, 1000] } }, 16609, /\$divide only supports numeric types, not date and int/);
    await fails('s', { d: { $multiply: ['$start', 2] } }, 16555, /\$multiply only supports numeric types, not string/);
    await fails('n', { d: { $divide: ['$end', 0] } }, 16608, /divide by zero/);
    const [nulls] = await run('n', {
        _id: 0,
        a: { $subtract: ['$end', '$nope'] }, b: { $subtract: [null, '$start'] }, c: { $divide: ['$nope', 1000] },
        d: { $multiply: ['$nope', 2] }, e: { $add: ['$end', null] }, f: { $divide: [null, 'x'] },
    });
    assert.deepEqual(nulls, { a: null, b: null, c: null, d: null, e: null, f: null });
});

test('int64 above 2^53 matches an equal double exactly (MongoDB compares long and double by value: ' +
    'Long(2^53 + 1) != 2^53, Long(2^53) == 2^53) in $match, $in, indexes and $group keys', async () => {
    const c = db.collection('bigint');
    const P53 = '9007199254740992';
    const P53P1 = '9007199254740993';
    await c.insertMany([
        { _id: 1, p: Long.fromString(P53P1) },
        { _id: 2, p: Long.fromString(P53) },
        { _id: 3, p: 9007199254740992 },           /* the double 2^53 */
        { _id: 4, p: new Int32(5) },
        { _id: 5, p: Long.fromNumber(5) },
        { _id: 6, p: new Double(5) },
        { _id: 7, p: '5' },
    ]);
    const check = async (label) => {
        const ids = async (f) => idsOf(await c.find(f).sort({ _id: 1 }).toArray());
        assert.deepEqual(await ids({ p: 9007199254740992 }), [2, 3], `${label}: double 2^53`);
        assert.deepEqual(await ids({ p: Long.fromString(P53) }), [2, 3], `${label}: Long(2^53)`);
        assert.deepEqual(await ids({ p: Long.fromString(P53P1) }), [1], `${label}: Long(2^53 + 1)`);
        assert.deepEqual(await ids({ p: { $in: [Long.fromString(P53), Long.fromNumber(5)] } }), [2, 3, 4, 5, 6], `${label}: $in`);
        assert.deepEqual(await ids({ p: { $gt: 9007199254740992 } }), [1], `${label}: $gt 2^53`);
        assert.deepEqual(await ids({ p: { $lt: Long.fromString(P53P1) } }), [2, 3, 4, 5, 6], `${label}: $lt Long(2^53 + 1)`);
        const m = await c.aggregate([{ $match: { p: { $in: [Long.fromString(P53P1)] } } }]).toArray();
        assert.deepEqual(idsOf(m), [1], `${label}: $match $in Long(2^53 + 1)`);
    };
    await check('no index');
    await c.createIndex({ p: 1 });
    await check('indexed');
    const groups = await c.aggregate([{ $group: { _id: '$p', ids: { $push: '$_id' } } }]).toArray();
    const keyOf = (id) => (typeof id === 'string' ? `string ${id}` : `number ${String(id)}`);
    const byKey = new Map(groups.map((g) => [keyOf(g._id), g.ids.sort((a, b) => a - b)]));
    assert.equal(groups.length, 4, `groups: ${JSON.stringify([...byKey])}`);
    assert.deepEqual(byKey.get(`number ${P53}`), [2, 3], 'Long(2^53) and 2^53 form one group');
    assert.deepEqual(byKey.get(`number ${P53P1}`), [1], 'Long(2^53 + 1) is a group of its own');
    assert.deepEqual(byKey.get('number 5'), [4, 5, 6], 'int 5, long 5 and double 5 form one group');
    assert.deepEqual(byKey.get('string 5'), [7], 'the string "5" is a group of its own');
});

/* A collection big enough that aggregating it takes far longer than the
 * limits below, on the test server and on a real one. */
const BIG_N = 100000;
let bigReady = null;
function bigCollection() {
    if (!bigReady) {
        bigReady = (async () => {
            const c = db.collection('big');
            for (let i = 0; i < BIG_N; i += 10000) {
                const docs = [];
                for (let j = i; j < i + 10000; j++) {
                    docs.push({ phone: j % 997, start_date: new Date(j * 1000), end_date: new Date(j * 1000 + (j % 61) * 1000) });
                }
                await c.insertMany(docs, { ordered: false });
            }
            return c;
        })();
    }
    return bigReady;
}

const HEAVY = [
    { $project: { phone: 1, dur: { $divide: [{ $subtract: ['$end_date', '$start_date'] }, 1000] } } },
    { $group: { _id: '$phone', n: { $sum: 1 }, c: { $sum: { $cond: [{ $lt: ['$dur', 10] }, 1, 0] } }, mx: { $max: '$dur' } } },
    { $sort: { mx: -1, _id: 1 } },
];

const isMaxTime = (e) => {
    assert.equal(e.code, 50, `expected MaxTimeMSExpired, got ${e.code} ${e.message}`);
    assert.equal(e.codeName, 'MaxTimeMSExpired');
    assert.match(e.message, /operation exceeded time limit/);
    return true;
};

test('maxTimeMS interrupts an aggregation while it runs (MongoDB: code 50 MaxTimeMSExpired, ' +
    '"operation exceeded time limit", checked periodically during execution)', async () => {
    const c = await bigCollection();
    let t = Date.now();
    await assert.rejects(c.aggregate(HEAVY, { maxTimeMS: 1 }).toArray(), isMaxTime);
    const oneMs = Date.now() - t;
    assert.ok(oneMs < 1000, `a 1 ms limit came back after ${oneMs} ms`);

    t = Date.now();
    await assert.rejects(c.find({ phone: { $lt: 500 } }, { maxTimeMS: 1 }).sort({ end_date: -1 }).toArray(), isMaxTime);
    assert.ok(Date.now() - t < 1000, `find with a 1 ms limit came back after ${Date.now() - t} ms`);

    /* not before the limit, and not long after it */
    t = Date.now();
    let timedOut = false;
    try {
        await c.aggregate(HEAVY, { maxTimeMS: 200 }).toArray();
    } catch (e) {
        isMaxTime(e);
        timedOut = true;
    }
    const ms = Date.now() - t;
    if (timedOut) {
        assert.ok(ms >= 195 && ms < 1500, `a 200 ms limit came back after ${ms} ms`);
    } else {
        assert.ok(mongo.external, `the aggregation finished within 200 ms (${ms} ms): the collection is too small to tell`);
    }

    /* a query within its limit is unaffected */
    let n3 = 0;
    for (let j = 0; j < BIG_N; j++) if (j % 997 === 3) n3++;
    const few = await c.aggregate([{ $match: { phone: 3 } }, { $count: 'n' }], { maxTimeMS: 60000 }).toArray();
    assert.deepEqual(few, [{ n: n3 }]);
});

/* ---- fail points ---- */

async function failPoint(spec, t) {
    try {
        return await client.db('admin').command(Object.assign({ configureFailPoint: 'failCommand' }, spec));
    } catch (e) {
        if (e.code === 59 && t) {
            t.skip('the server refuses configureFailPoint: start it with --setParameter enableTestCommands=1');
            return null;
        }
        throw e;
    }
}

/* A client of its own (no retries, an application name) for injected errors. */
async function withFailClient(fn, appName = 'rd-failpoint-test') {
    const c = new MongoClient(mongo.uri, { retryReads: false, retryWrites: false, appName, serverSelectionTimeoutMS: 10000 });
    await c.connect();
    try {
        return await fn(c.db(names.database));
    } finally {
        await c.close();
    }
}

const FAIL_MSG = "Failing command due to 'failCommand' failpoint";

test('failCommand {times: 1} fails the next matching command once with the code, codeName and errmsg mongod ' +
    'gives (transient 91, 189, 10107, 11600, 262, 50; permanent 40324), then lets commands through', async (t) => {
    if (!(await failPoint({ mode: 'off' }, t))) return;
    const table = [
        [91, 'ShutdownInProgress'], [189, 'PrimarySteppedDown'], [10107, 'NotWritablePrimary'],
        [11600, 'InterruptedAtShutdown'], [262, 'ExceededTimeLimit'], [50, 'MaxTimeMSExpired'], [40324, 'Location40324'],
    ];
    try {
        await withFailClient(async (fdb) => {
            await fdb.collection('fp').insertOne({ _id: 1 });
            const agg = () => fdb.command({ aggregate: 'fp', pipeline: [{ $match: {} }], cursor: {} });
            for (const [code, name] of table) {
                await failPoint({ mode: { times: 1 }, data: { failCommands: ['aggregate'], errorCode: code } });
                await assert.rejects(agg(), (e) => {
                    assert.equal(e.code, code);
                    if (code === 10107) assert.match(e.codeName, /^(NotWritablePrimary|NotMaster)$/);
                    else assert.equal(e.codeName, name);
                    assert.equal(e.errorResponse.errmsg, FAIL_MSG);
                    assert.equal(e.errorResponse.ok, 0);
                    assert.equal(e.errorResponse.errorLabels, undefined, 'no labels unless asked');
                    return true;
                }, `code ${code}`);
                const r = await agg();
                assert.equal(r.ok, 1, `after {times: 1} with ${code} the next aggregate succeeds`);
                assert.deepEqual(r.cursor.firstBatch, [{ _id: 1 }]);
            }
        });
    } finally {
        await failPoint({ mode: 'off' });
    }
});

test('failCommand "alwaysOn" fails every matching command until "off"; errorLabels are added to the reply; ' +
    'other commands are untouched; configureFailPoint replies {count} of activations (MongoDB 4.4)', async (t) => {
    if (!(await failPoint({ mode: 'off' }, t))) return;
    try {
        await withFailClient(async (fdb) => {
            await fdb.collection('fp2').insertOne({ _id: 1 });
            const before = (await failPoint({
                mode: 'alwaysOn',
                data: { failCommands: ['aggregate', 'find'], errorCode: 189, errorLabels: ['RetryableWriteError'] },
            })).count;
            for (let i = 0; i < 3; i++) {
                await assert.rejects(fdb.collection('fp2').find({}).toArray(), (e) => {
                    assert.equal(e.code, 189);
                    assert.deepEqual(e.errorResponse.errorLabels, ['RetryableWriteError']);
                    assert.ok(e.hasErrorLabel('RetryableWriteError'));
                    return true;
                });
            }
            assert.deepEqual((await fdb.collection('fp2').indexes()).map((i) => i.name), ['_id_'],
                'listIndexes is not in failCommands');
            const off = await failPoint({ mode: 'off' });
            assert.equal(off.count - before, 3, 'three activations');
            assert.deepEqual(await fdb.collection('fp2').find({}).toArray(), [{ _id: 1 }], 'off: find works again');
        });
    } finally {
        await failPoint({ mode: 'off' });
    }
});

test('failCommand closeConnection closes the connection without a reply (MongoDB: the driver sees a ' +
    'network error) and blockConnection delays the command by blockTimeMS', async (t) => {
    if (!(await failPoint({ mode: 'off' }, t))) return;
    try {
        await withFailClient(async (fdb) => {
            await fdb.collection('fp3').insertOne({ _id: 1 });
            await failPoint({ mode: { times: 1 }, data: { failCommands: ['find'], closeConnection: true } });
            await assert.rejects(fdb.command({ find: 'fp3', filter: {} }), (e) => {
                assert.match(e.name, /MongoNetworkError|MongoServerSelectionError|PoolCleared/, `${e.name}: ${e.message}`);
                return true;
            });
            const r = await fdb.command({ find: 'fp3', filter: {} });
            assert.deepEqual(r.cursor.firstBatch, [{ _id: 1 }], 'the next command works on a new connection');

            await failPoint({ mode: { times: 1 }, data: { failCommands: ['find'], blockConnection: true, blockTimeMS: 400 } });
            let t0 = Date.now();
            const b = await fdb.command({ find: 'fp3', filter: {} });
            const blocked = Date.now() - t0;
            assert.deepEqual(b.cursor.firstBatch, [{ _id: 1 }], 'blocked, then answered normally');
            assert.ok(blocked >= 390 && blocked < 3000, `blocked for ${blocked} ms, expected ~400`);

            /* the block is interrupted by the command's own maxTimeMS */
            await failPoint({ mode: { times: 1 }, data: { failCommands: ['aggregate'], blockConnection: true, blockTimeMS: 5000 } });
            t0 = Date.now();
            await assert.rejects(fdb.command({ aggregate: 'fp3', pipeline: [], cursor: {}, maxTimeMS: 150 }), isMaxTime);
            const waited = Date.now() - t0;
            assert.ok(waited >= 140 && waited < 3000, `maxTimeMS 150 ended the 5 s block after ${waited} ms`);
        });
    } finally {
        await failPoint({ mode: 'off' });
    }
});

test('failCommand appName applies only to clients whose handshake names that application; ' +
    'configureFailPoint is admin-only (13) and names unknown fail points (266 FailPointSetFailed)', async (t) => {
    if (!(await failPoint({ mode: 'off' }, t))) return;
    try {
        await db.collection('fp4').insertOne({ _id: 1 });
        await failPoint({ mode: 'alwaysOn', data: { failCommands: ['find'], errorCode: 91, appName: 'rd-fp-victim' } });
        await withFailClient(async (fdb) => {
            await assert.rejects(fdb.command({ find: 'fp4', filter: {} }), (e) => e.code === 91);
        }, 'rd-fp-victim');
        await withFailClient(async (fdb) => {
            const r = await fdb.command({ find: 'fp4', filter: {} });
            assert.deepEqual(r.cursor.firstBatch, [{ _id: 1 }], 'another application is not affected');
        }, 'rd-fp-bystander');
    } finally {
        await failPoint({ mode: 'off' });
    }
    await assert.rejects(db.command({ configureFailPoint: 'failCommand', mode: 'off' }), (e) => {
        assert.equal(e.code, 13);
        assert.match(e.message, /admin database/);
        return true;
    });
    await assert.rejects(client.db('admin').command({ configureFailPoint: 'rdNoSuchFailPoint', mode: 'off' }), (e) => {
        assert.equal(e.code, 266);
        assert.equal(e.codeName, 'FailPointSetFailed');
        return true;
    });
});

test('maxTimeAlwaysTimeOut makes every command that carries maxTimeMS fail with 50 at once (MongoDB test ' +
    'fail point); commands without maxTimeMS are unaffected', async (t) => {
    if (!(await failPoint({ mode: 'off' }, t))) return;
    const admin = client.db('admin');
    await db.collection('fp5').insertOne({ _id: 1 });
    try {
        await admin.command({ configureFailPoint: 'maxTimeAlwaysTimeOut', mode: 'alwaysOn' });
        await assert.rejects(db.collection('fp5').aggregate([], { maxTimeMS: 600000 }).toArray(), isMaxTime);
        assert.deepEqual(await db.collection('fp5').aggregate([]).toArray(), [{ _id: 1 }]);
    } finally {
        await admin.command({ configureFailPoint: 'maxTimeAlwaysTimeOut', mode: 'off' });
    }
    assert.deepEqual(await db.collection('fp5').aggregate([], { maxTimeMS: 600000 }).toArray(), [{ _id: 1 }]);
});

/* ------------------------------------------------------------------ */
/* raw wire protocol                                                  */
/* ------------------------------------------------------------------ */

const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
        let c = i;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
        t[i] = c >>> 0;
    }
    return t;
})();
function crc32c(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'CRC-32C check value');

function hostPort(uri) {
    const m = /mongodb:\/\/(?:[^@/]*@)?([^:/,?]+)(?::(\d+))?/.exec(uri);
    return { host: m[1], port: Number(m[2] || 27017) };
}

class Wire {
    constructor(sock) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.waiters = [];
        this.frames = [];
        sock.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            while (this.buf.length >= 4 && this.buf.length >= this.buf.readInt32LE(0)) {
                const len = this.buf.readInt32LE(0);
                this.frames.push(this.buf.subarray(0, len));
                this.buf = this.buf.subarray(len);
            }
            while (this.frames.length && this.waiters.length) this.waiters.shift()(this.frames.shift());
        });
    }
    static async open(uri) {
        const { host, port } = hostPort(uri);
        const sock = net.connect(port, host);
        await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
        return new Wire(sock);
    }
    frame(timeoutMs = 5000) {
        if (this.frames.length) return Promise.resolve(this.frames.shift());
        return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error('no reply within ' + timeoutMs + ' ms')), timeoutMs);
            this.waiters.push((f) => { clearTimeout(t); res(f); });
        });
    }
    send(opCode, payload, requestID = 1) {
        const h = Buffer.alloc(16);
        h.writeInt32LE(16 + payload.length, 0);
        h.writeInt32LE(requestID, 4);
        h.writeInt32LE(0, 8);
        h.writeInt32LE(opCode, 12);
        this.sock.write(Buffer.concat([h, payload]));
    }
    opMsg(body, { seq, flags = 0, checksum = false, requestID = 1 } = {}) {
        const parts = [];
        const fl = Buffer.alloc(4);
        fl.writeUInt32LE(flags | (checksum ? 1 : 0));
        parts.push(fl, Buffer.from([0]), BSON.serialize(body));
        if (seq) {
            const docs = Buffer.concat(seq.docs.map((d) => BSON.serialize(d)));
            const id = Buffer.from(seq.id + '\0');
            const sz = Buffer.alloc(4);
            sz.writeInt32LE(4 + id.length + docs.length);
            parts.push(Buffer.from([1]), sz, id, docs);
        }
        let payload = Buffer.concat(parts);
        if (checksum) {
            const h = Buffer.alloc(16);
            h.writeInt32LE(16 + payload.length + 4, 0);
            h.writeInt32LE(requestID, 4);
            h.writeInt32LE(0, 8);
            h.writeInt32LE(2013, 12);
            const crc = Buffer.alloc(4);
            crc.writeUInt32LE(crc32c(Buffer.concat([h, payload])));
            payload = Buffer.concat([payload, crc]);
        }
        this.send(2013, payload, requestID);
    }
    static msgBody(f) {
        assert.equal(f.readInt32LE(12), 2013, 'OP_MSG reply');
        assert.equal(f[20], 0, 'kind 0 section');
        return BSON.deserialize(f.subarray(21, 21 + f.readInt32LE(21)));
    }
    close() { this.sock.destroy(); }
}

/* ---- indexes, explain and the rollup-mode operations (issue 11) ---- */

/* totalDocsExamined where mongod 4.4 reports it: at the top of the answer for a
 * find, a count or a pipeline reduced to the query layer; under
 * stages[0].$cursor.executionStats for an aggregate with later stages. */
function docsExamined(ex) {
    const es = ex.executionStats ||
        (Array.isArray(ex.stages) && ex.stages[0].$cursor && ex.stages[0].$cursor.executionStats);
    assert.ok(es, `explain answer without executionStats: ${JSON.stringify(ex).slice(0, 400)}`);
    return Number(es.totalDocsExamined);
}

const oid = (n) => new ObjectId(n.toString(16).padStart(24, '0'));

test('index {rb: 1, _id: 1}: find {rb: null} sorted by _id with a limit is read in index order and examines ' +
    'only the documents it returns; countDocuments and count {rb: null} and _id / _id $in lookups use indexes ' +
    '(explain executionStats.totalDocsExamined)', async () => {
    const c = db.collection('claim');
    await c.createIndex({ rb: 1, _id: 1 });
    const N = 2000;
    const docs = [];
    for (let i = 0; i < N; i++) {
        const d = { _id: oid(((i * 7919) % N) + 1), phone: i % 13 };        /* inserted out of _id order */
        const m = i % 5;
        if (m === 1) d.rb = null;
        else if (m === 2) d.rb = Long.fromNumber((i % 3) + 1);
        else if (m === 3) d.rb = new Int32((i % 3) + 1);
        else if (m === 4) d.rb = new Double((i % 3) + 1);
        docs.push(d);
    }
    await c.insertMany(docs);
    const unmarked = docs.filter((d) => d.rb === undefined || d.rb === null).map((d) => d._id.toHexString()).sort();
    const claim = { find: 'claim', filter: { rb: null }, sort: { _id: 1 }, limit: 50, projection: { _id: 1 }, hint: { rb: 1, _id: 1 } };
    const first = await c.find(claim.filter, { projection: claim.projection, sort: claim.sort, limit: 50, hint: claim.hint }).toArray();
    assert.deepEqual(first.map((d) => d._id.toHexString()), unmarked.slice(0, 50));
    let ex = await db.command({ explain: claim, verbosity: 'executionStats' });
    assert.equal(Number(ex.executionStats.nReturned), 50);
    assert.ok(docsExamined(ex) <= 51, `claim examined ${docsExamined(ex)} documents of ${N} for 50`);

    assert.equal(await c.countDocuments({ rb: null }), unmarked.length);
    ex = await db.command({ explain: { count: 'claim', query: { rb: null } }, verbosity: 'executionStats' });
    assert.ok(docsExamined(ex) <= unmarked.length, `count examined ${docsExamined(ex)} documents for ${unmarked.length}`);
    assert.equal((await db.command({ count: 'claim', query: { rb: null } })).n, unmarked.length);

    /* mark exactly the claimed ids; re-running it is a no-op */
    const ids = first.map((d) => d._id);
    const mark = { _id: { $in: ids }, rb: null };
    assert.equal((await c.updateMany(mark, { $set: { rb: Long.fromNumber(9) } })).modifiedCount, 50);
    assert.equal((await c.updateMany(mark, { $set: { rb: Long.fromNumber(10) } })).modifiedCount, 0);
    ex = await db.command({ explain: { find: 'claim', filter: { _id: { $in: ids } } }, verbosity: 'executionStats' });
    assert.equal(docsExamined(ex), 50);
    ex = await db.command({ explain: { find: 'claim', filter: { _id: ids[7] } }, verbosity: 'executionStats' });
    assert.equal(docsExamined(ex), 1);
    assert.equal(Number(ex.executionStats.nReturned), 1);
    ex = await db.command({ explain: { find: 'claim', filter: { rb: 9 } }, verbosity: 'executionStats' });
    assert.equal(docsExamined(ex), 50, 'rb: 9 (a double) finds the Long(9) marks through the index');

    const next = await c.find(claim.filter, { projection: claim.projection, sort: claim.sort, limit: 50, hint: claim.hint }).toArray();
    assert.deepEqual(next.map((d) => d._id.toHexString()), unmarked.slice(50, 100));
    assert.equal(await c.countDocuments({ rb: null }), unmarked.length - 50);
});

test('index {phone: 1, rb: 1}: an $or of {phone: p, rb: {$not: {$lte: L}}} examines only the records of p ' +
    'whose rb is missing, null, NaN, not a number or above L (bounds [MinKey, -inf.0) U (L, MaxKey]); phones ' +
    'and rb compare by value across int32, int64 and double', async () => {
    const c = db.collection('tail');
    await c.createIndex({ phone: 1 });
    await c.createIndex({ phone: 1, rb: 1 });
    const kinds = [(n) => new Int32(n), (n) => Long.fromNumber(n), (n) => new Double(n)];
    const docs = [];
    for (let p = 1; p <= 6; p++) {
        const phone = kinds[p % 3](70000 + p);
        for (let i = 0; i < 300; i++) {
            const d = { phone, i };
            const m = i % 10;
            if (m === 1) d.rb = null;
            else if (m === 2) d.rb = 'x';
            else if (m === 3) d.rb = new Double(NaN);
            else if (m !== 0) d.rb = kinds[i % 3](i % 40);
            docs.push(d);
        }
    }
    await c.insertMany(docs);
    const L = { 1: Long.fromNumber(20), 2: new Double(20.5), 3: new Int32(35), 4: Long.fromNumber(-1) };
    const ask = [1, 2, 3, 4];
    const match = { $or: ask.map((p) => ({ phone: Long.fromNumber(70000 + p), rb: { $not: { $lte: L[p] } } })) };
    const pipeline = [
        { $match: match },
        { $group: { _id: '$_id', phone: { $first: '$phone' }, i: { $first: '$i' } } },
        { $sort: { phone: 1, i: 1 } },
    ];
    const got = (await c.aggregate(pipeline).toArray()).map((d) => `${Number(d.phone)}:${d.i}`);
    const num = (v) => (v !== null && typeof v === 'object' && v._bsontype ? Number(v.valueOf ? v.valueOf() : v) : v);
    const want = docs.filter((d) => {
        const p = num(d.phone) - 70000;
        if (!ask.includes(p)) return false;
        const rb = d.rb === undefined || d.rb === null ? d.rb : num(d.rb);
        return typeof rb !== 'number' || Number.isNaN(rb) || rb > num(L[p]);
    }).map((d) => `${num(d.phone)}:${d.i}`).sort((a, b) => {
        const [pa, ia] = a.split(':').map(Number);
        const [pb, ib] = b.split(':').map(Number);
        return pa - pb || ia - ib;
    });
    assert.ok(want.length > 100 && want.length < 1200);
    assert.deepEqual(got, want);
    const ex = await db.command({ explain: { aggregate: 'tail', pipeline, cursor: {} }, verbosity: 'executionStats' });
    assert.equal(docsExamined(ex), want.length, 'documents examined = the unfolded records of the asked phones');
    if (!mongo.external) {
        /* mongod 4.4: the query layer's figures sit in the $cursor stage */
        assert.ok(ex.stages[0].$cursor.queryPlanner.winningPlan);
        assert.equal(Number(ex.stages[0].$cursor.executionStats.nReturned), want.length);
        assert.equal(Number(ex.stages[1].nReturned), want.length);
    }
    const plain = await db.command({ aggregate: 'tail', pipeline, explain: true });
    assert.equal(plain.ok, 1);
    if (!mongo.external) {
        assert.ok(plain.stages[0].$cursor.queryPlanner, 'explain: true is queryPlanner verbosity');
        assert.equal(plain.stages[0].$cursor.executionStats, undefined);
    }
    /* a $not over bounds that are not exact ($regex) still finds everything */
    const re = await c.countDocuments({ phone: 70001, rb: { $not: { $regex: '^x' } } });
    assert.equal(re, docs.filter((d) => num(d.phone) === 70001 && d.rb !== 'x').length);
});

test('rollup upserts guarded by {_id: p, last: {$lt: n}}: applied when the guard holds, E11000 duplicate key ' +
    '(code 11000) when p exists and the guard fails, with nothing changed; _id matches by value across ' +
    'numeric types; findAndModify upsert of a lease', async () => {
    const c = db.collection('rollup');
    const p = Long.fromNumber(79161234567);
    const L = (n) => Long.fromNumber(n);
    const apply = (n, ms) => ({ $inc: { cnt: 1, sum_ms: L(ms) }, $min: { min_ms: L(ms) }, $max: { max_ms: L(ms) }, $set: { last: L(n) } });
    let r = await c.updateOne({ _id: p, last: { $lt: L(1) } }, apply(1, 5000), { upsert: true });
    assert.equal(Number(r.upsertedId), 79161234567);
    r = await c.updateOne({ _id: p, last: { $lt: L(2) } }, apply(2, 3000), { upsert: true });
    assert.equal(r.matchedCount, 1);
    const want = { _id: 79161234567, cnt: 2, sum_ms: 8000, min_ms: 3000, max_ms: 5000, last: 2 };
    const norm = (d) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Number(v)]));
    assert.deepEqual(norm(await c.findOne({ _id: p })), want);
    await assert.rejects(c.updateOne({ _id: p, last: { $lt: L(2) } }, apply(2, 1000), { upsert: true }), (e) => {
        assert.equal(e.code, 11000);
        assert.match(e.message, /E11000 duplicate key/);
        return true;
    });
    await assert.rejects(c.updateOne({ _id: new Double(79161234567), last: { $lt: 0 } }, apply(1, 1), { upsert: true }),
        (e) => e.code === 11000);
    assert.deepEqual(norm(await c.findOne({ _id: p })), want);
    assert.equal(await c.countDocuments({}), 1);
    /* an unordered batch: the duplicate fails, the others apply */
    const bulk = await c.bulkWrite([
        { updateOne: { filter: { _id: L(1), last: { $lt: L(3) } }, update: apply(3, 10), upsert: true } },
        { updateOne: { filter: { _id: p, last: { $lt: L(1) } }, update: apply(1, 10), upsert: true } },
        { updateOne: { filter: { _id: L(2), last: { $lt: L(3) } }, update: apply(3, 20), upsert: true } },
    ], { ordered: false }).catch((e) => e);
    assert.equal(bulk.writeErrors ? bulk.writeErrors.length : bulk.result.getWriteErrors().length, 1);
    assert.equal((bulk.writeErrors || bulk.result.getWriteErrors())[0].code, 11000);
    assert.equal(await c.countDocuments({}), 3);

    const leases = db.collection('leases');
    const now = Date.now();
    const take = (owner, t) => leases.findOneAndUpdate({ _id: 'folder', expires: { $lt: new Date(t) } },
        { $set: { owner, expires: new Date(t + 10000) } }, { upsert: true, returnDocument: 'after' });
    const a = await take('a', now);
    assert.equal((a.value || a).owner, 'a');
    await assert.rejects(take('b', now + 1000), (e) => e.code === 11000);
    const b = await take('b', now + 20000);
    assert.equal((b.value || b).owner, 'b');
});

test('serverStatus metrics.queryExecutor: scannedObjects and scanned count documents and index keys ' +
    'examined, so a benchmark can diff them around an operation', async () => {
    const admin = client.db('admin');
    const c = db.collection('claim');
    const one = await c.findOne({}, { sort: { _id: 1 } });
    const s0 = (await admin.command({ serverStatus: 1 })).metrics.queryExecutor;
    assert.ok((await c.findOne({ _id: one._id })));
    const s1 = (await admin.command({ serverStatus: 1 })).metrics.queryExecutor;
    const docs = Number(s1.scannedObjects) - Number(s0.scannedObjects);
    const keys = Number(s1.scanned) - Number(s0.scanned);
    assert.ok(docs >= 1 && docs < 2000, `scannedObjects grew by ${docs}`);
    assert.ok(keys >= 1, `scanned grew by ${keys}`);
    if (!mongo.external) {
        assert.equal(docs, 1);
        assert.equal(keys, 1);
    }
    const s2 = (await admin.command({ serverStatus: 1 })).metrics.queryExecutor;
    await c.find({ phone: 3 }).toArray();           /* no index on phone: every document */
    const s3 = (await admin.command({ serverStatus: 1 })).metrics.queryExecutor;
    assert.ok(Number(s3.scannedObjects) - Number(s2.scannedObjects) >= 2000);
});

/* ---- numbers of every type: phones, $inc, write and read concern ---- */

const D = (s) => Decimal128.fromString(s);
const RAW = { promoteValues: false, promoteLongs: false };

/* The BSON type of a value read with RAW, and its numeric value. */
function bt(v) {
    if (v === undefined) return 'missing';
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'array';
    if (typeof v === 'string') return 'string';
    return { Int32: 'int', Long: 'long', Double: 'double', Decimal128: 'decimal' }[v._bsontype] || typeof v;
}
const num = (v) => Number(v !== null && typeof v === 'object' ? v.toString() : v);

/* Phones as reporterd may find them: 8 as int32, int64, double and two
 * decimals, non-integral decimals, a string, an array, null, missing, a
 * big phone in three types.  [BSON value, model]: the model is the value
 * MongoDB compares (a JS number holds each exactly), the oracle's input. */
const PHONES = [
    [new Int32(8), 8], [Long.fromNumber(8), 8], [new Double(8), 8], [D('8'), 8], [D('8.00'), 8],
    [D('8.5'), 8.5], [D('7.5'), 7.5], ['8', '8'], [[new Int32(8), new Int32(9)], [8, 9]], [new Int32(9), 9],
    [null, null], [undefined, undefined], [Long.fromString('79161234567'), 79161234567],
    [D('79161234567'), 79161234567], [new Double(79161234567), 79161234567], [D('-0'), 0],
];
const RBS = [
    [undefined, undefined], [null, null], [new Int32(3), 3], [Long.fromNumber(5), 5], [new Double(5.5), 5.5],
    [D('5'), 5], [D('7.25'), 7.25], ['x', 'x'],
];

/* MongoDB's element-wise match: an array matches when an element does. */
const any = (m, f) => (Array.isArray(m) ? m.some(f) : f(m));
const isNum = (x) => typeof x === 'number';

test('phones compare by value across int32, int64, double and Decimal128 (MongoDB numeric equality): ' +
    '$eq, $in, $gt/$gte/$lt/$lte, $not, $ne, $nin and array elements; a scan of the compound index ' +
    '{phone: 1, rb: 1} finds the same documents as a collection scan', async () => {
    const c = db.collection('num_phones');
    const docs = [];
    const model = new Map();
    let id = 0;
    for (const [p, pm] of PHONES) {
        for (const [r, rm] of RBS) {
            const d = { _id: ++id };
            if (p !== undefined) d.phone = p;
            if (r !== undefined) d.rb = r;
            docs.push(d);
            model.set(id, { p: pm, r: rm });
        }
    }
    await c.insertMany(docs);
    await db.command({ createIndexes: 'num_phones', indexes: [{ key: { phone: 1, rb: 1 }, name: 'phone_rb' }] });
    const Q = [
        [{ phone: new Int32(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: Long.fromNumber(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: new Double(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: D('8.0') }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: D('8.5') }, (m) => any(m.p, (x) => x === 8.5)],
        [{ phone: '8' }, (m) => any(m.p, (x) => x === '8')],
        [{ phone: null }, (m) => m.p === null || m.p === undefined],
        [{ phone: { $in: [Long.fromNumber(8), D('79161234567')] } }, (m) => any(m.p, (x) => x === 8 || x === 79161234567)],
        [{ phone: { $in: [new Double(79161234567), '8'] } }, (m) => any(m.p, (x) => x === 79161234567 || x === '8')],
        [{ phone: { $gt: D('7.5') } }, (m) => any(m.p, (x) => isNum(x) && x > 7.5)],
        [{ phone: { $gte: new Int32(8), $lt: D('9') } }, (m) => any(m.p, (x) => isNum(x) && x >= 8 && x < 9)],
        [{ phone: { $lte: new Double(8) } }, (m) => any(m.p, (x) => isNum(x) && x <= 8)],
        [{ phone: { $not: { $lte: Long.fromNumber(8) } } }, (m) => !any(m.p, (x) => isNum(x) && x <= 8)],
        [{ phone: { $ne: D('8.000') } }, (m) => !any(m.p, (x) => x === 8)],
        [{ phone: { $nin: [new Int32(8), Long.fromNumber(9)] } }, (m) => !any(m.p, (x) => x === 8 || x === 9)],
        [{ phone: new Int32(8), rb: { $not: { $lte: Long.fromNumber(5) } } },
            (m) => any(m.p, (x) => x === 8) && !any(m.r, (x) => isNum(x) && x <= 5)],
        [{ phone: { $in: [new Int32(8), Long.fromString('79161234567')] }, rb: { $gt: D('5') } },
            (m) => any(m.p, (x) => x === 8 || x === 79161234567) && any(m.r, (x) => isNum(x) && x > 5)],
        [{ phone: D('8'), rb: null }, (m) => any(m.p, (x) => x === 8) && (m.r === null || m.r === undefined)],
    ];
    for (const [f, want] of Q) {
        const expect = [...model].filter(([, m]) => want(m)).map(([k]) => k);
        const label = BSON.EJSON.stringify(f);
        for (const hint of [{ $natural: 1 }, { phone: 1, rb: 1 }, 'phone_rb', undefined]) {
            const got = idsOf(await c.find(f, hint === undefined ? {} : { hint }).sort({ _id: 1 }).toArray());
            assert.deepEqual(got, expect, `${label} with hint ${JSON.stringify(hint)}`);
        }
        assert.equal(await c.countDocuments(f), expect.length, `countDocuments ${label}`);
        const agg = await c.aggregate([{ $match: f }, { $sort: { _id: 1 } }]).toArray();
        assert.deepEqual(idsOf(agg), expect, `$match ${label}`);
    }

    /* around 2^53 a Decimal128 is exact too: Decimal128("9007199254740993.0") is Long(2^53 + 1), not the
     * double 2^53 */
    const big = db.collection('num_big');
    await big.insertMany([{ _id: 1, p: Long.fromString('9007199254740993') }, { _id: 2, p: D('9007199254740993.0') },
        { _id: 3, p: new Double(9007199254740992) }, { _id: 4, p: D('9007199254740992') }]);
    for (const ix of [false, true]) {
        if (ix) await big.createIndex({ p: 1 });
        const bids = async (f) => idsOf(await big.find(f).sort({ _id: 1 }).toArray());
        assert.deepEqual(await bids({ p: Long.fromString('9007199254740993') }), [1, 2], `index ${ix}`);
        assert.deepEqual(await bids({ p: D('9007199254740992.00') }), [3, 4], `index ${ix}`);
        assert.deepEqual(await bids({ p: { $in: [D('9007199254740993')] } }), [1, 2], `index ${ix}`);
        assert.deepEqual(await bids({ p: { $gt: D('9007199254740992.5') } }), [1, 2], `index ${ix}`);
    }
    const bg = await big.aggregate([{ $sort: { _id: 1 } }, { $group: { _id: '$p', n: { $sum: 1 } } }, { $sort: { _id: 1 } }], RAW).toArray();
    assert.deepEqual(bg.map((g) => [bt(g._id), g._id.toString(), num(g.n)]),
        [['double', '9007199254740992', 2], ['long', '9007199254740993', 2]]);

    /* the index holds numbers by value: 8 of every type is one point of it (scalars only here: this
     * server's scans also examine the documents it cannot encode, arrays among them) */
    const pts = db.collection('num_points');
    const eight = [new Int32(8), Long.fromNumber(8), new Double(8), D('8'), D('8.00')];
    const five = [new Int32(5), Long.fromNumber(5), new Double(5), D('5.0')];
    const pdocs = [];
    for (let i = 0; i < 200; i++) {
        pdocs.push({ _id: i, phone: i % 3 ? eight[i % 5] : new Int32(9), rb: i % 2 ? five[i % 4] : D(String(i % 7)) });
    }
    await pts.insertMany(pdocs);
    await pts.createIndex({ phone: 1, rb: 1 });
    const want = pdocs.filter((d) => num(d.phone) === 8 && num(d.rb) === 5).length;
    assert.ok(want > 20);
    const ex = await db.command({ explain: { find: 'num_points', filter: { phone: D('8.00'), rb: Long.fromNumber(5) },
        hint: { phone: 1, rb: 1 } }, verbosity: 'executionStats' });
    assert.equal(Number(ex.executionStats.nReturned), want);
    assert.equal(docsExamined(ex), want, 'the point {phone: 8, rb: 5} examines only its documents');
});

test('$group _id "$phone": numerically equal phones of different types form one group whose _id is the ' +
    'first value seen, type included (MongoDB: DocumentSourceGroup keeps the first key); its counts and ' +
    'sums are right, a $sum over Decimal128 is a Decimal128; $sort orders mixed numeric types by value; ' +
    '$type names int, long, double and "decimal", in expressions and queries', async () => {
    const c = db.collection('num_groups');
    const docs = PHONES.map(([p], i) => {
        const d = { _id: i + 1, seq: i, ms: new Int32(1000 * (i + 1)) };
        if (p !== undefined) d.phone = p;
        return d;
    });
    await c.insertMany(docs);
    const eights = PHONES.map(([, m], i) => (m === 8 ? i : -1)).filter((i) => i >= 0);
    assert.equal(eights.length, 5);
    for (const k of eights) {
        const got = await c.aggregate([
            { $addFields: { lead: { $eq: ['$seq', k] } } },
            { $sort: { lead: -1, seq: 1 } },
            { $group: { _id: '$phone', n: { $sum: 1 }, ms: { $sum: '$ms' }, total: { $sum: '$phone' } } },
        ], RAW).toArray();
        const eight = got.filter((g) => bt(g._id) !== 'string' && bt(g._id) !== 'array' && num(g._id) === 8);
        assert.equal(eight.length, 1, `one group for 8: ${BSON.EJSON.stringify(got.map((g) => g._id))}`);
        const g = eight[0];
        const first = PHONES[k][0];
        assert.equal(bt(g._id), bt(first), `the group's _id has the type of the first 8 seen (${bt(first)})`);
        assert.equal(g._id.toString(), first.toString(), 'and its very value (Decimal128 "8.00" stays "8.00")');
        assert.equal(num(g.n), 5);
        assert.equal(num(g.ms), eights.reduce((s, i) => s + 1000 * (i + 1), 0), 'ms summed over the five');
        assert.equal(bt(g.total), 'decimal', '$sum over values including a Decimal128 is a Decimal128');
        assert.equal(num(g.total), 40);
        const others = got.filter((x) => x !== g).map((x) => bt(x._id) + ':' + BSON.EJSON.stringify(x._id, { relaxed: true }));
        assert.equal(got.length, 9, `groups: 8, 8.5, 7.5, "8", [8, 9], 9, null (null and missing), big, 0: ${others}`);
    }

    /* $sort: null and missing first, then numbers by value (an array by its least element), then strings */
    const sorted = await c.find({}, { projection: { _id: 1 } }).sort({ phone: 1, _id: 1 }).toArray();
    const rank = (m) => (m === null || m === undefined ? [0, 0] : typeof m === 'string' ? [2, m]
        : [1, Array.isArray(m) ? Math.min(...m) : m]);
    const want = PHONES.map(([, m], i) => ({ id: i + 1, k: rank(m) })).sort((a, b) =>
        a.k[0] - b.k[0] || (a.k[1] < b.k[1] ? -1 : a.k[1] > b.k[1] ? 1 : 0) || a.id - b.id).map((x) => x.id);
    assert.deepEqual(idsOf(sorted), want);
    const sortedDesc = await c.aggregate([{ $sort: { phone: -1, _id: 1 } }, { $project: { _id: 1 } }]).toArray();
    const rankDesc = (m) => (Array.isArray(m) ? [1, Math.max(...m)] : rank(m));
    const wantDesc = PHONES.map(([, m], i) => ({ id: i + 1, k: rankDesc(m) })).sort((a, b) =>
        b.k[0] - a.k[0] || (a.k[1] < b.k[1] ? 1 : a.k[1] > b.k[1] ? -1 : 0) || a.id - b.id).map((x) => x.id);
    assert.deepEqual(idsOf(sortedDesc), wantDesc, 'descending: an array by its greatest element');

    /* $type */
    const types = await c.aggregate([{ $project: { t: { $type: '$phone' }, n: { $isNumber: '$phone' } } }, { $sort: { _id: 1 } }]).toArray();
    assert.deepEqual(types.map((d) => d.t), PHONES.map(([p]) => bt(p)));
    assert.deepEqual(types.map((d) => d.n), PHONES.map(([p]) => ['int', 'long', 'double', 'decimal'].includes(bt(p))));
    const ofType = async (t) => idsOf(await c.find({ phone: { $type: t } }).sort({ _id: 1 }).toArray());
    const idsWhere = (f) => PHONES.map(([p], i) => (f(p) ? i + 1 : 0)).filter((i) => i);
    for (const t of ['int', 'long', 'double', 'decimal']) {
        assert.deepEqual(await ofType(t), idsWhere((p) => bt(p) === t || (Array.isArray(p) && p.some((e) => bt(e) === t))), `$type ${t}`);
    }
    assert.deepEqual(await ofType(19), await ofType('decimal'), '$type 19 is "decimal"');
    assert.deepEqual(await ofType('number'), idsWhere((p) => ['int', 'long', 'double', 'decimal', 'array'].includes(bt(p))));
    /* find returns every value with its own type */
    const back = await c.find({}, RAW).sort({ _id: 1 }).toArray();
    assert.deepEqual(back.map((d) => bt(d.phone)), PHONES.map(([p]) => bt(p)));
});

test('$inc as mongod does it: int32 past 2^31 becomes int64; an int64 past 2^63 is not written and fails ' +
    'with BadValue (2) "Failed to apply $inc operations to current value ((NumberLong)...) for document ' +
    '{_id: ...}" (update and findAndModify); a multi-document update stops at that document; ' +
    'double and Decimal128 operands widen the result', async () => {
    const c = db.collection('num_inc');
    const MAX = Long.fromString('9223372036854775807');
    const MIN = Long.fromString('-9223372036854775808');
    await c.insertMany([
        { _id: 1, a: new Int32(2147483647) }, { _id: 2, a: new Int32(-2147483648) }, { _id: 3, a: MAX },
        { _id: 4, a: MIN }, { _id: 5, a: new Int32(42) }, { _id: 6, a: Long.fromNumber(5) }, { _id: 7, a: new Int32(5) },
        { _id: 8, a: new Double(1.5) }, { _id: 9, a: D('1.5') }, { _id: 10, a: Long.fromNumber(5) }, { _id: 11, a: 's' },
        { _id: 12, a: new Int32(5) }, { _id: 13, a: new Int32(5) }, { _id: 14, a: new Int32(5) },
    ]);
    const get = async (id) => (await c.findOne({ _id: id }, RAW)).a;
    const upd = (id, inc, extra = {}) => db.command(Object.assign({ update: 'num_inc', updates: [{ q: { _id: id }, u: { $inc: inc } }] }, extra));

    let r = await upd(1, { a: new Int32(1) });
    assert.equal(r.nModified, 1);
    assert.equal(bt(await get(1)), 'long', 'int32 2147483647 + 1 is an int64');
    assert.equal((await get(1)).toString(), '2147483648');
    await upd(2, { a: new Int32(-1) });
    assert.equal(bt(await get(2)), 'long');
    assert.equal((await get(2)).toString(), '-2147483649');

    const overflow = [[3, new Int32(1), '(NumberLong)9223372036854775807'], [4, new Int32(-1), '(NumberLong)-9223372036854775808'],
        [5, MAX, '(NumberInt)42']];
    for (const [id, by, cur] of overflow) {
        const before = (await get(id)).toString();
        r = await upd(id, { a: by });
        assert.equal(r.ok, 1);
        assert.equal(r.n, 0, 'the failed statement counts nothing');
        assert.equal(r.nModified, 0);
        assert.equal(r.writeErrors.length, 1, JSON.stringify(r));
        assert.equal(r.writeErrors[0].index, 0);
        assert.equal(r.writeErrors[0].code, 2);
        assert.equal(r.writeErrors[0].errmsg, `Failed to apply $inc operations to current value (${cur}) for document {_id: ${id}}`);
        assert.equal((await get(id)).toString(), before, 'nothing written');
    }
    await assert.rejects(c.updateOne({ _id: 3 }, { $inc: { a: 1 } }), (e) => e.code === 2);
    await assert.rejects(db.command({ findAndModify: 'num_inc', query: { _id: 3 }, update: { $inc: { a: new Int32(1) } } }), (e) => {
        assert.equal(e.code, 2);
        assert.equal(e.codeName, 'BadValue');
        assert.ok(e.message.endsWith('Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) ' +
            'for document {_id: 3}'), e.message);
        if (!mongo.external) assert.match(e.message, /^Plan executor error during findAndModify :: caused by :: /);
        return true;
    });
    assert.equal((await get(3)).toString(), MAX.toString());

    /* the types of the sum (SafeNum): int64 stays int64, a double or a Decimal128 operand widens */
    await upd(6, { a: new Int32(1) });
    assert.equal(bt(await get(6)), 'long');
    assert.equal(num(await get(6)), 6);
    await upd(7, { a: new Double(0.5) });
    assert.equal(bt(await get(7)), 'double');
    assert.equal(num(await get(7)), 5.5);
    await upd(8, { a: D('0.25') });
    assert.equal(bt(await get(8)), 'decimal');
    assert.equal((await get(8)).toString(), '1.75000000000000', 'the double taken to 15 digits first');
    await upd(9, { a: new Int32(1) });
    assert.equal((await get(9)).toString(), '2.5');
    await upd(10, { a: D('0.25') });
    assert.equal((await get(10)).toString(), '5.25');
    /* identical result (type and value): no change; another type: a change */
    r = await upd(12, { a: new Int32(0) });
    assert.equal(r.n, 1);
    assert.equal(r.nModified, 0);
    r = await upd(12, { a: Long.fromNumber(0) });
    assert.equal(r.nModified, 1);
    assert.equal(bt(await get(12)), 'long');

    /* what mongod refuses, and how */
    r = await upd(13, { a: 'x' });
    assert.equal(r.writeErrors[0].code, 14);
    assert.equal(r.writeErrors[0].errmsg, 'Cannot increment with non-numeric argument: {a: "x"}');
    r = await upd(11, { a: new Int32(1) });
    assert.equal(r.writeErrors[0].code, 14);
    assert.equal(r.writeErrors[0].errmsg, "Cannot apply $inc to a value of non-numeric type. {_id: 11} has the field 'a' of non-numeric type string");
    r = await upd(14, { 'a.b': new Int32(1) });
    assert.equal(r.writeErrors[0].code, 28);
    assert.equal(r.writeErrors[0].errmsg, "Cannot create field 'b' in element {a: 5}");

    /* a missing field takes the operand, type included; an upsert too */
    await upd(13, { b: Long.fromNumber(7), 'c.d': new Double(2) });
    const d13 = await c.findOne({ _id: 13 }, RAW);
    assert.equal(bt(d13.b), 'long');
    assert.equal(bt(d13.c.d), 'double');
    await c.updateOne({ _id: 20 }, { $inc: { a: Long.fromNumber(7) } }, { upsert: true });
    assert.equal(bt(await get(20)), 'long');

    /* a multi-document update: the overflowing document fails the statement; each other one is written
     * or not (mongod writes them one after the other, in the order it reads them) */
    const m = db.collection('num_inc_multi');
    await m.insertMany([1, 2, 3, 4, 5].map((i) => ({ _id: i, a: i === 3 ? MAX : Long.fromNumber(i) })));
    r = await db.command({ update: 'num_inc_multi', updates: [{ q: {}, u: { $inc: { a: new Int32(1) } }, multi: true }] });
    assert.equal(r.n, 0);
    assert.equal(r.nModified, 0);
    assert.equal(r.writeErrors[0].code, 2);
    assert.equal(r.writeErrors[0].errmsg, 'Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 3}');
    const after = await m.find({}, RAW).sort({ _id: 1 }).toArray();
    assert.equal(after[2].a.toString(), MAX.toString(), 'the overflowing document is unchanged');
    for (const d of after) {
        if (num(d._id) === 3) continue;
        assert.ok([num(d._id), num(d._id) + 1].includes(num(d.a)), `document ${d._id}: ${d.a}`);
        assert.equal(bt(d.a), 'long');
    }
    if (!mongo.external) {
        /* this server reads them in insertion order */
        assert.deepEqual(after.map((d) => num(d.a)), [2, 3, Number(MAX.toString()), 4, 5]);
    }
});

test('writeConcern {w: "majority", wtimeout, j: true} and readConcern {level: "majority" | "local" | ' +
    '"available"} are accepted by every command reporterd sends (a standalone mongod takes them); w: 2 ' +
    'fails with BadValue (2) "cannot use \'w\' > 1 when a host is not replicated" and writes nothing', async () => {
    const wc = { w: 'majority', wtimeout: 5000, j: true };
    const ok = async (cmd) => {
        const r = await db.command(cmd);
        assert.equal(r.ok, 1, JSON.stringify(r));
        assert.equal(r.writeConcernError, undefined);
        assert.equal(r.writeErrors, undefined);
        return r;
    };
    await ok({ insert: 'concern', documents: [{ _id: 1, phone: new Int32(8) }, { _id: 2, phone: Long.fromNumber(8) }], writeConcern: wc });
    await ok({ createIndexes: 'concern', indexes: [{ key: { phone: 1 }, name: 'phone_1' }], writeConcern: wc });
    await ok({ update: 'concern', updates: [{ q: { _id: 1 }, u: { $inc: { n: new Int32(1) } } }], writeConcern: wc });
    await ok({ findAndModify: 'concern', query: { _id: 2 }, update: { $set: { n: new Int32(2) } }, writeConcern: wc });
    await ok({ delete: 'concern', deletes: [{ q: { _id: 99 }, limit: 0 }], writeConcern: wc });
    for (const level of ['majority', 'local', 'available']) {
        const rc = { level };
        const f = await ok({ find: 'concern', filter: { phone: 8 }, readConcern: rc });
        assert.equal(f.cursor.firstBatch.length, 2, level);
        const a = await ok({ aggregate: 'concern', pipeline: [{ $match: { phone: 8 } }], cursor: {}, readConcern: rc });
        assert.equal(a.cursor.firstBatch.length, 2, level);
        assert.equal((await ok({ count: 'concern', query: { phone: 8 }, readConcern: rc })).n, 2, level);
    }
    const hello = await db.admin().command({ hello: 1 });
    if (hello.setName === undefined && hello.msg !== 'isdbgrid') {
        await assert.rejects(db.command({ insert: 'concern', documents: [{ _id: 3 }], writeConcern: { w: 2 } }), (e) => {
            assert.equal(e.code, 2);
            assert.equal(e.codeName, 'BadValue');
            assert.equal(e.message, "cannot use 'w' > 1 when a host is not replicated");
            return true;
        });
        assert.equal(await db.collection('concern').countDocuments({ _id: 3 }), 0, 'nothing written');
    }
    await ok({ drop: 'concern', writeConcern: wc });
});

test('field names chosen at run time (rb_<hex>): {phone: P, rb_x: {$not: {$lte: L}}} and {rb_x: null} with ' +
    'hint {rb_x: 1, _id: 1} on indexes made by createIndexes under names; the results of a brute-force ' +
    'oracle, read from the indexes', async () => {
    const f = `rb_${require('node:crypto').randomBytes(4).toString('hex')}`;
    const coll = `runtime_${f}`;
    const c = db.collection(coll);
    const r = await db.command({ createIndexes: coll, indexes: [
        { key: { [f]: 1, _id: 1 }, name: `claim_${f}` }, { key: { phone: 1, [f]: 1 }, name: `tail_${f}` }] });
    assert.equal(r.ok, 1);
    const kinds = [(n) => new Int32(n), (n) => Long.fromNumber(n), (n) => new Double(n), (n) => D(String(n))];
    const docs = [];
    const model = [];
    for (let i = 0; i < 600; i++) {
        const d = { _id: oid(i + 1), phone: kinds[i % 4](70000 + (i % 6)) };
        const m = i % 7;
        let v;
        if (m === 1) v = null;
        else if (m === 2) v = 'x';
        else if (m !== 0) v = (i * 13) % 50;
        if (m !== 0 && m !== 1 && m !== 2) d[f] = kinds[(i >> 2) % 4](v);
        else if (m === 1) d[f] = null;
        else if (m === 2) d[f] = 'x';
        docs.push(d);
        model.push({ id: d._id.toHexString(), p: 70000 + (i % 6), v: m === 0 ? undefined : v });
    }
    await c.insertMany(docs);
    for (const [p, L] of [[70001, 20], [70002, -1], [70003, 49]]) {
        for (const P of [new Int32(p), Long.fromNumber(p), D(`${p}.0`)]) {
            const q = { phone: P, [f]: { $not: { $lte: Long.fromNumber(L) } } };
            const want = model.filter((m) => m.p === p && !(typeof m.v === 'number' && m.v <= L)).map((m) => m.id).sort();
            const got = (await c.find(q, { hint: `tail_${f}` }).toArray()).map((d) => d._id.toHexString()).sort();
            assert.deepEqual(got, want, BSON.EJSON.stringify(q));
            const ex = await db.command({ explain: { find: coll, filter: q, hint: { phone: 1, [f]: 1 } }, verbosity: 'executionStats' });
            assert.equal(docsExamined(ex), want.length, 'the tail scan examines only the documents it returns');
        }
    }
    const unmarked = model.filter((m) => m.v === undefined || m.v === null).map((m) => m.id).sort();
    const claim = await c.find({ [f]: null }, { hint: { [f]: 1, _id: 1 }, sort: { _id: 1 }, limit: 25, projection: { _id: 1 } }).toArray();
    assert.deepEqual(claim.map((d) => d._id.toHexString()), unmarked.slice(0, 25));
    const ex = await db.command({ explain: { find: coll, filter: { [f]: null }, sort: { _id: 1 }, limit: 25,
        hint: `claim_${f}` }, verbosity: 'executionStats' });
    assert.ok(docsExamined(ex) <= 26, `claim examined ${docsExamined(ex)}`);
    assert.equal(await c.countDocuments({ [f]: null }, { hint: { [f]: 1, _id: 1 } }), unmarked.length);
});

test('wire: legacy OP_QUERY isMaster gets an OP_REPLY', async () => {
    const w = await Wire.open(mongo.uri);
    try {
        const q = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.from('admin.$cmd\0'),
            Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            BSON.serialize({ isMaster: 1, helloOk: true, client: { driver: { name: 'wire-test', version: '0' } } })]);
        w.send(2004, q, 42);
        const f = await w.frame();
        assert.equal(f.readInt32LE(12), 1, 'opCode OP_REPLY');
        assert.equal(f.readInt32LE(8), 42, 'responseTo');
        assert.equal(f.readInt32LE(32), 1, 'numberReturned');
        const doc = BSON.deserialize(f.subarray(36));
        assert.equal(doc.ok, 1);
        assert.equal(doc.ismaster, true);
        assert.equal(doc.helloOk, true);
        assert.ok(doc.maxWireVersion >= 9);
        assert.equal(doc.compression, undefined, 'no compression offered when none was asked');
    } finally {
        w.close();
    }
});

test('wire: OP_MSG document sequence, checksum and moreToCome', async () => {
    const w = await Wire.open(mongo.uri);
    try {
        w.opMsg({ insert: 'wire', $db: names.database },
            { seq: { id: 'documents', docs: [{ _id: 1, a: 1 }, { _id: 2, a: 2 }] }, checksum: true, requestID: 7 });
        const r = Wire.msgBody(await w.frame());
        assert.equal(r.ok, 1);
        assert.equal(r.n, 2);
        /* w:0 insert with moreToCome: no reply; the next reply answers the find */
        w.opMsg({ insert: 'wire', $db: names.database, writeConcern: { w: 0 } },
            { seq: { id: 'documents', docs: [{ _id: 3, a: 3 }] }, flags: 2, requestID: 8 });
        w.opMsg({ find: 'wire', filter: {}, sort: { _id: 1 }, $db: names.database }, { requestID: 9 });
        const f = await w.frame();
        assert.equal(f.readInt32LE(8), 9, 'reply answers request 9');
        const fr = Wire.msgBody(f);
        assert.equal(fr.ok, 1);
        assert.deepEqual(fr.cursor.firstBatch.map((d) => d._id), [1, 2, 3]);
        w.opMsg({ nope: 1, $db: names.database }, { requestID: 10 });
        const e = Wire.msgBody(await w.frame());
        assert.equal(e.ok, 0);
        assert.equal(e.code, 59);
        assert.equal(e.codeName, 'CommandNotFound');
    } finally {
        w.close();
    }
});

test('scale: 2,000,000 documents (REPORTERD_TEST_SCALE=1)', { skip: process.env.REPORTERD_TEST_SCALE ? false : 'a 2,000,000-document load takes minutes: set REPORTERD_TEST_SCALE=1' }, async () => {
    /* one command may hold the single-threaded server for seconds at this size: a client of its own whose
     * monitor waits for it (the harness's gives up after 10 s) */
    const own = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 300000, connectTimeoutMS: 300000, socketTimeoutMS: 0 });
    await own.connect();
    after(() => own.close());
    const c = own.db(names.database).collection('scale');
    await c.createIndex({ phone: 1 });
    await c.createIndex({ rb: 1, _id: 1 });
    await c.createIndex({ phone: 1, rb: 1 });
    const N = 2000000;
    const B = 10000;
    const phones = 20;
    const phone = (j) => Long.fromNumber(79000000000 + (j % phones));
    const base = Date.UTC(2023, 0, 1);
    let t0 = Date.now();
    for (let i = 0; i < N; i += B) {
        const docs = [];
        for (let j = i; j < i + B; j++) {
            const st = base + j * 1000;
            docs.push({ phone: phone(j), start_date: new Date(st), end_date: new Date(st + ((j * 7919) % 121000)) });
        }
        await c.insertMany(docs, { ordered: false });
    }
    const insertS = (Date.now() - t0) / 1000;
    const explainAgg = async (pipeline) => docsExamined(await own.db(names.database).command({
        explain: { aggregate: 'scale', pipeline, cursor: {} }, verbosity: 'executionStats' }));

    /* live: one phone's whole history */
    const live = [{ $match: { phone: { $in: [phone(0)] } } }, { $group: { _id: '$phone', n: { $sum: 1 } } }];
    t0 = Date.now();
    const rows = await c.aggregate(live).toArray();
    const liveMs = Date.now() - t0;
    assert.equal(rows[0].n, N / phones);

    /* claim + mark 10,000 */
    t0 = Date.now();
    const claimed = await c.find({ rb: null }, { projection: { _id: 1 }, sort: { _id: 1 }, limit: 10000, hint: { rb: 1, _id: 1 } }).toArray();
    const claimMs = Date.now() - t0;
    t0 = Date.now();
    const m = await c.updateMany({ _id: { $in: claimed.map((d) => d._id) }, rb: null }, { $set: { rb: Long.fromNumber(1) } });
    const markMs = Date.now() - t0;
    assert.equal(m.modifiedCount, 10000);

    /* fold phone 0 entirely (batch 2), then 10 new records: the tail reads those 10 */
    t0 = Date.now();
    await c.updateMany({ phone: phone(0), rb: null }, { $set: { rb: Long.fromNumber(2) } });
    const foldS = (Date.now() - t0) / 1000;
    const fresh = Array.from({ length: 10 }, (_, k) => ({ phone: phone(0), start_date: new Date(base), end_date: new Date(base + k * 1000) }));
    await c.insertMany(fresh);
    const tail = [
        { $match: { $or: [{ phone: phone(0), rb: { $not: { $lte: Long.fromNumber(2) } } }] } },
        { $group: { _id: '$_id', phone: { $first: '$phone' } } },
        { $group: { _id: '$phone', n: { $sum: 1 } } },
    ];
    t0 = Date.now();
    const trows = await c.aggregate(tail).toArray();
    const tailMs = Date.now() - t0;
    assert.equal(trows[0].n, 10);
    assert.equal(await explainAgg(tail), 10);
    assert.equal(await explainAgg(live), N / phones + 10);
    console.log(`# scale: inserted ${N} docs (3 secondary indexes) in ${insertS.toFixed(1)} s (${Math.round(N / insertS)} docs/s); ` +
        `live aggregate of 1 phone x ${N / phones} records: ${liveMs} ms; claim 10,000: ${claimMs} ms, mark 10,000: ${markMs} ms; ` +
        `fold ${N / phones} records of one phone: ${foldS.toFixed(1)} s; tail aggregate (100,000 folded + 10 unfolded): ${tailMs} ms, 10 documents examined`);
});
