/*
 * mongod-commands.test.js -- commands, errors and the wire: hello, ping,
 * buildInfo, CRUD, indexes, findAndModify, aggregate and its errors;
 * maxTimeMS interrupting a running aggregation (code 50); errors injected
 * with the failCommand fail point (configureFailPoint, a test command:
 * against a real server started without enableTestCommands=1 those tests
 * skip, saying so); writeConcern and readConcern as a standalone takes
 * them; raw OP_QUERY and OP_MSG messages.
 *
 * Part of the self-test of t/mongod (the TEST-ONLY MongoDB wire-protocol
 * server, t/mongod/README.md), through the official Node driver and raw wire messages.
 * Written to pass unchanged against a real MongoDB too
 * (REPORTERD_TEST_MONGODB_URI=mongodb://...), which is how the stand-in is
 * kept honest.  Where reporterd depends on MongoDB's behaviour, each test
 * names the behaviour in its title.  The other parts: mongod-types.test.js, mongod-index.test.js.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('../lib/harness.js');
const M = require('../lib/mongod-selftest.js');

const { MongoClient, Long, Double, Int32, ObjectId } = require('mongodb');
const BSON = require('bson');

let mongo, client, db, names;                    /* set by before() */
before(async () => ({ mongo, client, db, names } = await M.open('rdmongod')));
after(() => M.close(client, names));

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
