/*
 * mongod.test.js -- self-test of t/mongod/server.js, the TEST-ONLY MongoDB
 * wire-protocol server, through the official Node driver and raw wire
 * messages.  Written to pass unchanged against a real MongoDB too
 * (REPORTERD_TEST_MONGODB_URI=mongodb://...), which is how the stand-in is
 * kept honest.
 *
 * REPORTERD_TEST_SCALE=1 adds a 2,000,000-document load + aggregate timing
 * (slow; not part of the normal run).
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('../lib/harness.js');

const { MongoClient, Long, Double, Int32 } = require('mongodb');
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

test('hello, ping, buildInfo and unknown commands', async () => {
    const admin = client.db('admin');
    const hello = await admin.command({ hello: 1 });
    assert.equal(hello.isWritablePrimary, true);
    assert.equal(hello.ok, 1);
    assert.ok(hello.maxWireVersion >= 13, `maxWireVersion ${hello.maxWireVersion}`);
    assert.equal(hello.maxBsonObjectSize, 16777216);
    const legacy = await admin.command({ isMaster: 1 });
    assert.equal(legacy.ismaster, true);
    assert.equal((await admin.command({ ping: 1 })).ok, 1);
    const bi = await admin.command({ buildInfo: 1 });
    assert.match(bi.version, /^\d+\.\d+/);
    await assert.rejects(db.command({ noSuchCommandAtAll: 1 }), (e) => {
        assert.equal(e.code, 59);
        assert.equal(e.codeName, 'CommandNotFound');
        assert.match(e.message, /no such command: 'noSuchCommandAtAll'/);
        return true;
    });
});

test('insert, find with filter/projection/sort/skip/limit, getMore, count, distinct', async () => {
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
    assert.equal(await c.estimatedDocumentCount(), 250);
    assert.deepEqual((await c.distinct('tag')).sort(), ['a', 'b']);

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

test('indexes, collections, drop', async () => {
    const c = db.collection('ix');
    await c.insertOne({ phone: 1 });
    assert.equal(await c.createIndex({ phone: 1 }), 'phone_1');
    assert.equal(await c.createIndex({ phone: 1 }), 'phone_1', 'idempotent');
    const ix = await c.indexes();
    assert.deepEqual(ix.map((i) => i.name).sort(), ['_id_', 'phone_1']);
    assert.deepEqual(ix.find((i) => i.name === 'phone_1').key, { phone: 1 });
    await c.dropIndex('phone_1');
    assert.deepEqual((await c.indexes()).map((i) => i.name), ['_id_']);
    const cols = (await db.listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name);
    assert.ok(cols.includes('ix'), cols.join(','));
    await db.createCollection('made');
    await assert.rejects(db.createCollection('made'), (e) => { assert.equal(e.code, 48); return true; });
    assert.equal(await db.collection('made').drop(), true);
    const dbs = (await client.db('admin').admin().listDatabases()).databases.map((x) => x.name);
    assert.ok(dbs.includes(names.database), dbs.join(','));
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
        assert.ok(doc.maxWireVersion >= 13);
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

test('scale: 2,000,000 documents (REPORTERD_TEST_SCALE=1)', { skip: !process.env.REPORTERD_TEST_SCALE }, async () => {
    const c = db.collection('scale');
    await c.createIndex({ phone: 1 });
    const N = 2000000;
    const B = 10000;
    const phones = 20000;
    const base = Date.UTC(2023, 0, 1);
    let t0 = Date.now();
    for (let i = 0; i < N; i += B) {
        const docs = [];
        for (let j = i; j < i + B; j++) {
            const st = base + j * 1000;
            docs.push({ phone: Long.fromNumber(79000000000 + (j % phones)), start_date: new Date(st), end_date: new Date(st + ((j * 7919) % 121000)) });
        }
        await c.insertMany(docs, { ordered: false });
    }
    const insertS = (Date.now() - t0) / 1000;
    const ask = Array.from({ length: 10 }, (_, k) => Long.fromNumber(79000000000 + k * 37));
    t0 = Date.now();
    const rows = await c.aggregate(reportPipeline(ask, 10)).toArray();
    const aggMs = Date.now() - t0;
    assert.equal(rows.length, 10);
    assert.equal(rows[0].cnt_all_attempts, N / phones);
    console.log(`# scale: inserted ${N} docs in ${insertS.toFixed(1)} s (${Math.round(N / insertS)} docs/s); ` +
        `aggregate of 10 phones x ${N / phones} records: ${aggMs} ms`);
});
