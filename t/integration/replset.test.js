/*
 * replset.test.js -- reporterd and the test server against a replica set
 * (t/mongod/replset.js: the test server with --replset, two members).
 *
 * First the replica set itself, through the Node driver and raw OP_MSG:
 * the driver discovers it; a lagging secondary serves stale reads to
 * readPreference=secondary and catches up after its lag; w: "majority"
 * waits for it, wtimeout ends the wait with writeConcernError 64; a write
 * sent straight to a secondary fails with 10107 NotWritablePrimary, a read
 * without secondaryOk with 13435; replSetStepDown swaps the roles and the
 * driver follows; a step-down interrupts a held insert (11602) and ends a
 * w: "majority" wait (189), and a retried write is not applied twice;
 * readConcern "majority" sees only what a majority applied.
 *
 * Then the daemon, whose mongo-c-driver (single-threaded client) monitors
 * every member: in live mode it reads with the read preference of its
 * mongodb.uri, so with readPreference=secondary and the secondary held
 * back, a report right after new records were inserted does not have them,
 * and with readPreference=primary it has.  Last, rollup mode with
 * readPreference=secondaryPreferred, writers and a step-down while it
 * folds, every report checked against the oracle.
 *
 * Against a real MongoDB (REPORTERD_TEST_MONGODB_URI): everything skips,
 * saying so, unless the URI names a replica set; then what needs a
 * secondary to lag on demand (which a real one cannot) skips, and the
 * rest runs, stepping down with the real replSetStepDown.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('../lib/harness.js');

const { MongoClient, ObjectId } = require('mongodb');
const BSON = require('bson');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const LAG = 2000;                   /* ms: the secondary's lag where a test wants one */
const HELD = 3600000;               /* ms: a secondary held back for the whole test */
const HOLD_MS = 2000;               /* ms: how long the rollup test holds the secondary back */
const PRICE = 10;

let ctx;
let mongo;
let client;
let db;
const opened = [];

before(async () => {
    ctx = await h.setup({ prefix: 'rdrs', mongo: { replset: { members: 2, lagMs: 0 } } });
    mongo = ctx.mongo;
    if (!mongo.replset) return;
    client = await h.mongoClient(mongo.uri);
    db = client.db(ctx.names.database);
});

after(async () => {
    try {
        for (const c of opened) await c.close();
        if (mongo && mongo.canSetLag) await mongo.setLag(0);
    } finally {
        await h.cleanup();
    }
});

/* Skips the test (true) when the server cannot give what it needs. */
function unusable(t, { lag = false } = {}) {
    if (!mongo.replset) {
        t.skip(mongo.notReplset);
        return true;
    }
    if (lag && !mongo.canSetLag) {
        t.skip('needs a secondary that lags on demand, which a real replica set cannot give');
        return true;
    }
    return false;
}

async function connect(uri, opts = {}) {
    const c = new MongoClient(uri, Object.assign({ serverSelectionTimeoutMS: 10000 }, opts));
    await c.connect();
    opened.push(c);
    return c;
}

const hello = async (host) => (await h.mongoClient(mongo.directUri(host))).db('admin').command({ hello: 1 });

async function roles() {
    const byHost = {};
    for (const host of mongo.replset.hosts) byHost[host] = await hello(host);
    const primary = mongo.replset.hosts.filter((x) => byHost[x].isWritablePrimary);
    return { byHost, primary: primary[0], secondaries: mongo.replset.hosts.filter((x) => !byHost[x].isWritablePrimary) };
}

/* The error a promise rejects with (fails if it resolves). */
async function rejection(p, what) {
    try {
        await p;
    } catch (e) {
        return e;
    }
    assert.fail(`${what}: expected an error, it succeeded`);
    return null;
}

/*
 * "Not yet visible" is only conclusive when the read ended less than the
 * lag after the write was sent (a document becomes visible on the
 * secondary at its commit time + the lag, and the commit comes after the
 * send).  attempt() returns {conclusive, ...}; tried a few times, so a
 * stalled machine gives no false failure.
 */
async function conclusively(what, attempt, tries = 4) {
    for (let i = 0; i < tries; i++) {
        const r = await attempt(i);
        if (r.conclusive) return r;
    }
    assert.fail(`${what}: no attempt ended within the lag (${LAG} ms): the machine is too slow to tell`);
    return null;
}

/* ------------------------------------------------------------------ */
/* the replica set                                                    */
/* ------------------------------------------------------------------ */

test('the driver discovers a replica set; every member answers hello as a member of it', async (t) => {
    if (unusable(t)) return;
    await client.db('admin').command({ ping: 1 });
    const desc = () => client.topology.description;
    await h.waitFor(() => desc().type === 'ReplicaSetWithPrimary' &&
        [...desc().servers.values()].every((s) => s.type === 'RSPrimary' || s.type === 'RSSecondary'),
    10000, () => `a replica set with every member known (${desc().type}: ` +
        `${[...desc().servers.values()].map((s) => `${s.address} ${s.type}`).join(', ')})`);
    assert.equal(desc().setName, mongo.replset.name);
    const { byHost, primary, secondaries } = await roles();
    assert.ok(primary, 'one member is the writable primary');
    assert.equal(secondaries.length, mongo.replset.hosts.length - 1, 'every other member is a secondary');
    for (const host of mongo.replset.hosts) {
        const x = byHost[host];
        assert.equal(x.setName, mongo.replset.name, `${host}: setName`);
        assert.deepEqual([...x.hosts].sort(), [...mongo.replset.hosts].sort(), `${host}: hosts`);
        assert.equal(x.me, host, `${host}: me`);
        assert.equal(x.primary, primary, `${host}: primary`);
        assert.equal(x.secondary, host !== primary, `${host}: secondary`);
        assert.equal(typeof x.setVersion, 'number', `${host}: setVersion`);
        assert.ok(x.topologyVersion && x.topologyVersion.processId instanceof ObjectId, `${host}: topologyVersion`);
        assert.equal(x.electionId instanceof ObjectId, host === primary, `${host}: electionId only on the primary`);
        assert.ok(x.maxWireVersion >= 9, `${host}: maxWireVersion ${x.maxWireVersion}`);
    }
});

test(`a secondary lagging ${LAG} ms serves stale reads to readPreference=secondary, then catches up`, async (t) => {
    if (unusable(t, { lag: true })) return;
    const coll = db.collection('lag');
    await mongo.setLag(LAG);
    try {
        const r = await conclusively('a fresh document read from the secondary', async (i) => {
            const doc = { _id: `fresh-${i}`, at: new Date() };
            const sent = Date.now();
            await coll.insertOne(doc);
            const seen = await coll.find({ _id: doc._id }, { readPreference: 'secondary' }).toArray();
            const primarySees = await coll.find({ _id: doc._id }).toArray();
            return { conclusive: Date.now() - sent < LAG, seen, primarySees, doc, sent };
        });
        assert.equal(r.primarySees.length, 1, 'the primary has the document at once');
        assert.equal(r.seen.length, 0, 'the secondary does not have it yet');
        await h.waitFor(async () => (await coll.find({ _id: r.doc._id }, { readPreference: 'secondary' }).toArray()).length,
            LAG + 15000, 'the secondary to apply the document');
        const after = Date.now() - r.sent;
        assert.ok(after >= LAG, `the secondary had the document ${after} ms after the insert was sent, before its lag (${LAG} ms)`);
    } finally {
        await mongo.setLag(0);
    }
});

test('w: "majority" waits for the lagging secondary, w: 1 does not, wtimeout ends the wait with writeConcernError 64',
    async (t) => {
        if (unusable(t, { lag: true })) return;
        const coll = db.collection('wc');
        await mongo.setLag(LAG);
        try {
            let t0 = Date.now();
            await coll.insertOne({ _id: 'majority' }, { writeConcern: { w: 'majority' } });
            const majority = Date.now() - t0;
            assert.ok(majority >= LAG, `w: "majority" answered after ${majority} ms, before the secondary's lag (${LAG} ms)`);
            const seen = await coll.find({ _id: 'majority' }, { readPreference: 'secondary' }).toArray();
            assert.equal(seen.length, 1, 'once w: "majority" answered, the secondary has the document');

            t0 = Date.now();
            await coll.insertOne({ _id: 'w1' }, { writeConcern: { w: 1 } });
            const one = Date.now() - t0;
            assert.ok(one < LAG, `w: 1 answered after ${one} ms: it should not wait for the secondary (lag ${LAG} ms)`);

            const e = await rejection(coll.insertOne({ _id: 'wtimeout' }, { writeConcern: { w: 'majority', wtimeout: 200 } }),
                'w: "majority" with wtimeout 200 while the secondary lags');
            assert.equal(e.code, 64, `writeConcernError code: ${e.message}`);
            assert.equal(e.codeName, 'WriteConcernFailed');
            assert.match(e.message, /waiting for replication timed out/);
            assert.equal(e.errInfo && e.errInfo.wtimeout, true, `errInfo: ${JSON.stringify(e.errInfo)}`);
            assert.equal((await coll.find({ _id: 'wtimeout' }).toArray()).length, 1, 'a write concern timeout does not undo the write');
        } finally {
            await mongo.setLag(0);
        }
    });

/* Raw OP_MSG on one connection: a command without driver logic. */
class Wire {
    static async open(host) {
        const [addr, port] = [host.slice(0, host.lastIndexOf(':')), Number(host.slice(host.lastIndexOf(':') + 1))];
        const w = new Wire();
        w.sock = net.connect(port, addr);
        w.buf = Buffer.alloc(0);
        w.waiter = null;
        w.sock.on('data', (d) => {
            w.buf = Buffer.concat([w.buf, d]);
            if (w.waiter) w.waiter();
        });
        await new Promise((res, rej) => { w.sock.once('connect', res); w.sock.once('error', rej); });
        return w;
    }
    send(body, id, flags = 0) {
        const b = BSON.serialize(body);
        const hd = Buffer.alloc(21);
        hd.writeInt32LE(21 + b.length, 0);
        hd.writeInt32LE(id, 4);
        hd.writeInt32LE(2013, 12);
        hd.writeUInt32LE(flags, 16);
        this.sock.write(Buffer.concat([hd, b]));
    }
    async command(body, id = 1) {
        this.send(body, id);
        await h.waitFor(() => this.buf.length >= 4 && this.buf.length >= this.buf.readInt32LE(0), 10000,
            `the answer to ${Object.keys(body)[0]}`, 5);
        const f = this.buf.subarray(0, this.buf.readInt32LE(0));
        this.buf = this.buf.subarray(f.length);
        return BSON.deserialize(f.subarray(21));
    }
    close() { this.sock.destroy(); }
}

test('a write sent straight to a secondary fails with 10107 NotWritablePrimary; a read there needs secondaryOk ' +
    '($readPreference), else 13435 NotPrimaryNoSecondaryOk', async (t) => {
    if (unusable(t)) return;
    const { secondaries } = await roles();
    const sec = secondaries[0];
    const direct = await connect(mongo.directUri(sec), { retryWrites: false });
    const coll = direct.db(ctx.names.database).collection('direct');
    const e = await rejection(coll.insertOne({ x: 1 }), `insert on the secondary ${sec}`);
    assert.equal(e.code, 10107, e.message);
    if (!mongo.external) {
        assert.equal(e.codeName, 'NotWritablePrimary');
        assert.equal(e.message, 'not primary');
    }
    /* the driver reads a directly connected member with primaryPreferred */
    assert.deepEqual(await coll.find().toArray(), []);

    const w = await Wire.open(sec);
    try {
        await w.command({ hello: 1, $db: 'admin' });
        const find = { find: 'direct', filter: {}, $db: ctx.names.database };
        const r = await w.command(find, 2);
        assert.equal(r.ok, 0, `find without $readPreference on a secondary: ${JSON.stringify(r)}`);
        assert.equal(r.code, 13435);
        assert.match(r.errmsg, mongo.external ? /^not (primary|master) and (secondaryOk|slaveOk)=false/
            : /^not primary and secondaryOk=false$/);
        assert.ok(r.topologyVersion, 'the error carries topologyVersion');
        const ok = await w.command(Object.assign({}, find, { $readPreference: { mode: 'secondary' } }), 3);
        assert.equal(ok.ok, 1, `find with $readPreference secondary: ${JSON.stringify(ok)}`);
        const ins = await w.command({ insert: 'direct', documents: [{ y: 1 }], $db: ctx.names.database }, 4);
        assert.equal(ins.code, 10107, JSON.stringify(ins));
        /* an unacknowledged write (moreToCome) cannot be told it failed: mongod hangs up */
        let closed = false;
        w.sock.once('close', () => { closed = true; });
        w.send({ insert: 'direct', documents: [{ z: 1 }], writeConcern: { w: 0 }, $db: ctx.names.database }, 5, 2);
        await h.waitFor(() => closed, 10000,
            'the secondary to close the connection of an unacknowledged write');
    } finally {
        w.close();
    }
});

test('replSetStepDown: the primary waits for the secondary, the roles swap (new electionId), the driver follows; ' +
    'the old primary is a lagging secondary', async (t) => {
    if (unusable(t)) return;
    const coll = db.collection('stepdown');
    const before = await roles();
    const old = before.primary;
    const lag = mongo.canSetLag ? 300 : 0;
    if (lag) await mongo.setLag(lag);
    try {
        const docs = Array.from({ length: 20 }, (_, i) => ({ _id: i }));
        await coll.insertMany(docs);                /* w: 1: the secondary lags behind them */
        await (await h.mongoClient(mongo.directUri(old))).db('admin')
            .command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 10 });
        const now = await h.waitFor(async () => {
            const r = await roles();
            return r.primary && r.primary !== old ? r : null;
        }, 30000, `a new primary after ${old} stepped down`, 100);
        assert.equal(now.byHost[old].secondary, true, 'the old primary is a secondary');
        assert.equal(now.byHost[old].isWritablePrimary, false);
        const e0 = before.byHost[old].electionId.toHexString();
        const e1 = now.byHost[now.primary].electionId.toHexString();
        assert.ok(e1 > e0, `the electionId grows: ${e0} then ${e1}`);
        /* the driver follows: a write now goes to the new primary */
        await coll.insertOne({ _id: 'after' });
        assert.deepEqual((await coll.find().sort({ _id: 1 }).toArray()).map((d) => d._id).length, 21,
            'every write acknowledged before the step-down is on the new primary, and the new one');
        if (mongo.canSetLag) {
            await mongo.setLag(LAG);
            const oldColl = (await h.mongoClient(mongo.directUri(old))).db(ctx.names.database).collection('stepdown');
            const r = await conclusively('a fresh document read from the old primary', async (i) => {
                const sent = Date.now();
                await coll.insertOne({ _id: `lagging-${i}` });
                const seen = await oldColl.find({ _id: `lagging-${i}` }).toArray();
                return { conclusive: Date.now() - sent < LAG, seen, i };
            });
            assert.equal(r.seen.length, 0, 'the old primary applies the new primary\'s writes with its lag');
            await h.waitFor(async () => (await oldColl.find({ _id: `lagging-${r.i}` }).toArray()).length, LAG + 15000,
                'the old primary to apply the new primary\'s write');
        }
    } finally {
        if (mongo.canSetLag) await mongo.setLag(0);
        /* the old primary may be elected again at once (replSetStepDown froze it for 60 s) */
        await (await h.mongoClient(mongo.directUri(old))).db('admin').command({ replSetFreeze: 0 });
    }
});

/* Configure a fail point on one member; its answer's count. */
async function failPoint(host, name, mode, data) {
    const r = await (await h.mongoClient(mongo.directUri(host))).db('admin')
        .command(Object.assign({ configureFailPoint: name, mode }, data ? { data } : {}));
    return r.count;
}

test('a step-down interrupts an insert held by hangWithLockDuringBatchInsert (11602, not applied); ' +
    'a retryable insert is retried on the new primary, once', async (t) => {
    if (unusable(t)) return;
    const FP = 'hangWithLockDuringBatchInsert';
    for (const retryWrites of [false, true]) {
        const primary = await mongo.primary();
        try {
            await failPoint(primary, FP, 'alwaysOn');
        } catch (e) {
            t.skip(`the server refuses configureFailPoint ${FP}: start it with --setParameter enableTestCommands=1 (${e.message})`);
            return;
        }
        const c = await connect(mongo.uri, { retryWrites });
        const coll = c.db(ctx.names.database).collection('held');
        const id = `held-${retryWrites}`;
        let held;
        try {
            const entered = await failPoint(primary, FP, 'alwaysOn');
            const insert = coll.insertOne({ _id: id }).then(() => null, (e) => e);
            held = await h.waitFor(async () => (await failPoint(primary, FP, 'alwaysOn')) > entered,
                10000, `the insert to reach the fail point ${FP}`, 20);
            const sd = await mongo.stepDown({ stepDownSecs: 10, secondaryCatchUpPeriodSecs: 10 });
            assert.equal(sd.stepped, primary);
            const err = await insert;
            if (!retryWrites) {
                assert.ok(err, 'the held insert fails');
                assert.equal(err.code, 11602, `the held insert: ${err.message}`);
                assert.match(err.message, /operation was interrupted/);
            } else {
                assert.equal(err, null, `the driver retries the interrupted insert on the new primary: ${err && err.message}`);
            }
        } finally {
            await failPoint(primary, FP, 'off');
            await (await h.mongoClient(mongo.directUri(primary))).db('admin').command({ replSetFreeze: 0 });
        }
        assert.ok(held);
        const n = await client.db(ctx.names.database).collection('held').countDocuments({ _id: id });
        assert.equal(n, retryWrites ? 1 : 0, `documents ${id} on the new primary`);
    }
});

test('a forced step-down ends a w: "majority" wait with writeConcernError 189 (the write stays); ' +
    'the driver\'s retry gets the first answer again, without a second insert', async (t) => {
    if (unusable(t, { lag: true })) return;
    for (const retryWrites of [false, true]) {
        const c = await connect(mongo.uri, { retryWrites });
        const coll = c.db(ctx.names.database).collection('wc189');
        const id = `w189-${retryWrites}`;
        await mongo.setLag(HELD);
        let err;
        try {
            const insert = coll.insertOne({ _id: id, n: 1 }, { writeConcern: { w: 'majority' } }).then(() => null, (e) => e);
            await h.waitFor(async () => (await client.db(ctx.names.database).collection('wc189').countDocuments({ _id: id })) === 1,
                10000, 'the insert to be applied on the primary (then it waits for the secondary)');
            await mongo.stepDown({ stepDownSecs: 0, secondaryCatchUpPeriodSecs: 0, force: true });
            err = await insert;
        } finally {
            await mongo.setLag(0);
        }
        if (!retryWrites) {
            assert.ok(err, 'the insert reports the interrupted wait');
            assert.equal(err.code, 189, err.message);
            assert.equal(err.codeName, 'PrimarySteppedDown');
            assert.match(err.message, /Primary stepped down while waiting for replication/);
        } else {
            assert.equal(err, null, `the retried insert answers as the first did, not E11000: ${err && err.message}`);
        }
        await mongo.syncAll(ctx.names.database);
        assert.equal(await client.db(ctx.names.database).collection('wc189').countDocuments({ _id: id }), 1);
    }
});

test('readConcern "majority" on the primary sees only what a majority of members applied', async (t) => {
    if (unusable(t, { lag: true })) return;
    const coll = db.collection('majority');
    await coll.insertOne({ _id: 'old' }, { writeConcern: { w: 'majority' } });
    await mongo.setLag(HELD);
    try {
        await coll.insertOne({ _id: 'new' });
        const ids = async (level) => (await coll.find({}, { readConcern: { level } }).sort({ _id: 1 }).toArray()).map((d) => d._id);
        assert.deepEqual(await ids('local'), ['new', 'old']);
        assert.deepEqual(await ids('majority'), ['old'], 'majority: not the write the secondary has not applied');
        assert.equal(await coll.countDocuments({}, { readConcern: { level: 'majority' } }), 1);
    } finally {
        await mongo.setLag(0);
    }
    await h.waitFor(async () => (await coll.find({}, { readConcern: { level: 'majority' } }).toArray()).length === 2,
        10000, 'the write to be majority-committed once the secondary caught up');
});

/* ------------------------------------------------------------------ */
/* the daemon                                                         */
/* ------------------------------------------------------------------ */

const BASE = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
const phones = [1000, 1001, 1002, 79160000007];

function record(rnd, phone) {
    const st = BASE + Math.floor(rnd() * 30 * 86400 * 1000);
    const ms = rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121);
    return { phone, start_date: st, end_date: st + ms };
}

function records(rnd, n) {
    return Array.from({ length: n }, (_, i) => record(rnd, phones[i % phones.length]));
}

let results;
let taskSeq = 0;

/* Send a task; its result (a Complete one). */
async function report(ps, label) {
    const id = `rs${++taskSeq}`;
    if (!results) results = await ctx.results();
    await ctx.publishTask(JSON.stringify({ correlation_id: id, phones: ps }));
    const m = await h.waitFor(() => results.messages.find((x) => x.body && x.body.correlation_id === id),
        30000, `the result of ${label} (${id})`, 10);
    assert.equal(m.body.status, 'Complete', `${label}: ${m.raw.slice(0, 300)}`);
    return m.body.data;
}

function liveConfig(readPreference) {
    return ctx.writeConfig({
        worker_processes: 1,
        mongodb: { uri: h.uriWith(mongo.uri, { readPreference }), collection: 'calls' },
    }, { fileName: `live-${readPreference}.yaml` });
}

const live = [];                    /* every record of ctx.names.collection */

async function insertLive(docs) {
    await ctx.loadRecords(docs);
    live.push(...docs);
}

/* Insert new records (w: 1) and ask for a report at once: it is the report
 * of every record (fresh) or of those before (not fresh). */
async function reportAfterInsert(rnd, label, fresh) {
    const before = live.slice();
    await insertLive(records(rnd, 40));
    assert.notDeepEqual(h.expectedReport(live, phones, PRICE), h.expectedReport(before, phones, PRICE),
        'the new records change the report');
    h.assertReport(await report(phones, label), h.expectedReport(fresh ? live : before, phones, PRICE), label);
}

test('live mode, readPreference=secondary: a report right after new records were inserted does not have them ' +
    'while the secondary is held back, and has them once it caught up', async (t) => {
    if (unusable(t, { lag: true })) return;
    const rnd = h.prng(SEED);
    await insertLive(records(rnd, 200));
    await mongo.syncAll(ctx.names.database);
    const d = h.startDaemon(liveConfig('secondary'));
    try {
        await d.waitReady(1, 30000);
        h.assertReport(await report(phones, 'before'), h.expectedReport(live, phones, PRICE), 'before the new records');
        await mongo.setLag(HELD);
        try {
            await reportAfterInsert(rnd, 'read on the secondary, which has not applied the new records', false);
        } finally {
            await mongo.setLag(0);
        }
        await mongo.syncAll(ctx.names.database);
        h.assertReport(await report(phones, 'caught up'), h.expectedReport(live, phones, PRICE),
            'read on the secondary once it caught up');
    } finally {
        await d.shutdown();
    }
});

test('live mode, readPreference=primary: a report right after new records were inserted has them', async (t) => {
    if (unusable(t)) return;
    const rnd = h.prng(SEED + 1);
    if (!live.length) await insertLive(records(rnd, 200));
    const d = h.startDaemon(liveConfig('primary'));
    try {
        await d.waitReady(1, 30000);
        if (mongo.canSetLag) await mongo.setLag(HELD);
        try {
            await reportAfterInsert(rnd, 'read on the primary, which has every acknowledged record', true);
        } finally {
            if (mongo.canSetLag) await mongo.setLag(0);
        }
    } finally {
        await d.shutdown();
    }
});

test('live mode under load, a replicaSet= URI naming every member: primary step-downs during 300 tasks lose no ' +
    'task and give no wrong figure', { timeout: 240000 }, async (t) => {
    if (unusable(t)) return;
    assert.match(mongo.uri, /^mongodb:\/\/[^/]+,[^/]+\/\?.*replicaSet=/, 'the URI names every member and the set');
    const rnd = h.prng(SEED + 7);
    if (!live.length) await insertLive(records(rnd, 200));
    await mongo.syncAll(ctx.names.database);
    const d = h.startDaemon(ctx.writeConfig({ worker_processes: 2, mongodb: { uri: mongo.uri, collection: 'calls' } },
        { fileName: 'live-stepdown.yaml' }));
    try {
        await d.waitReady(2, 30000);
        if (!results) results = await ctx.results();
        const N = 300;
        const tasks = [];
        for (let i = 0; i < N; i++) {
            const ps = phones.filter(() => rnd() < 0.6);
            if (!ps.length) ps.push(phones[0]);
            tasks.push({ id: `sd${i}`, ps });
        }
        /* paced, so that the step-downs fall while tasks arrive and run */
        const publishing = (async () => {
            for (const x of tasks) {
                await ctx.publishTask(JSON.stringify({ correlation_id: x.id, phones: x.ps }));
                await h.sleep(40);
            }
        })();
        const answered = () => results.messages.filter((x) => x.body && /^sd\d+$/.test(x.body.correlation_id)).length;
        let downs = 0;
        for (const at of [40, 120, 200]) {
            await h.waitFor(() => answered() >= at || answered() === N, 60000, () => `${at} answered (${answered()})`, 10);
            if (answered() === N) break;
            await mongo.stepDown({ stepDownSecs: 1, secondaryCatchUpPeriodSecs: 10 });
            downs++;
            await h.sleep(2500);    /* the member that stepped down is not electable for stepDownSecs */
        }
        await publishing;
        await h.waitFor(() => answered() >= N, 120000, () => `all ${N} tasks answered (${answered()})`, 20);
        assert.ok(downs >= 2, `the primary stepped down while tasks ran (${downs} times)`);
        const seen = new Map();
        for (const m of results.messages.filter((x) => x.body && /^sd\d+$/.test(x.body.correlation_id))) {
            const x = tasks[Number(m.body.correlation_id.slice(2))];
            assert.equal(m.body.status, 'Complete', `${x.id}: ${m.raw.slice(0, 300)}`);
            h.assertReport(m.body.data, h.expectedReport(live, x.ps, PRICE), `${x.id} (seed ${SEED})`);
            seen.set(x.id, (seen.get(x.id) || 0) + 1);
        }
        assert.equal(seen.size, N, 'lost 0');
        console.log(`# ${N} tasks, ${downs} step-downs, ${results.messages.length} results; ` +
            `returned to the queue on the way: ${(d.log.match(/returning the task to the queue/g) || []).length}`);
    } finally {
        await d.shutdown();
    }
});

/* ------------------------------------------------------------------ */
/* rollup mode                                                        */
/* ------------------------------------------------------------------ */

/* Rollup mode keeps its rollups, marks and tail on the primary whatever
 * the uri's read preference (majority writes, primary reads): before it
 * did, its folder read its own marks back from the lagging secondary and
 * lost whole batches (rollup --verify found them), which this test caught. */

test('rollup mode, readPreference=secondaryPreferred, a lagging secondary, writers and a step-down while it folds: ' +
    'every report equals the oracle over the primary\'s records', async (t) => {
    if (unusable(t)) return;
    const collName = 'calls_roll';
    const coll = db.collection(collName);
    const rolled = [];
    const { Long } = h.lazyRequire('mongodb');
    /* acknowledged = majority-committed, so that "acknowledged before the
     * send" means the same whether the daemon reads local or majority data */
    const insert = async (docs) => {
        await coll.insertMany(docs.map((x) => Object.assign({}, x,
            { phone: x.phone > 2147483647 ? Long.fromNumber(x.phone) : x.phone })),
        { ordered: true, writeConcern: { w: 'majority' } });
        rolled.push(...docs);
    };
    const rnd = h.prng(SEED + 2);
    await insert(records(rnd, 2000));
    const cfg = ctx.writeConfig({
        worker_processes: 2,
        report: { mode: 'rollup' },
        rollup: { batch: 40, interval: '50ms', lease: '2s' },
        mongodb: { uri: h.uriWith(mongo.uri, { readPreference: 'secondaryPreferred' }), collection: collName },
    }, { fileName: 'rollup.yaml' });
    const ctl = (args) => h.run(h.env.reporterctl, ['-c', cfg, 'rollup', ...args], { timeoutMs: 120000 });

    /* the result must equal the oracle over a set S of the primary's
     * records, acknowledged before the send <= S <= started before the
     * answer; every report is checked, the differences listed at the end */
    const wrong = [];
    let checks = 0;
    const check = async (label, pending) => {
        checks++;
        const id = `roll${++taskSeq}`;
        if (!results) results = await ctx.results();
        const committed = rolled.slice();
        await ctx.publishTask(JSON.stringify({ correlation_id: id, phones }));
        const m = await h.waitFor(() => results.messages.find((x) => x.body && x.body.correlation_id === id),
            30000, `the result of ${label} (${id})`, 10);
        const extra = [...new Set(rolled.slice(committed.length).concat(pending))];
        if (m.body.status !== 'Complete') {
            wrong.push(`${label}: ${m.raw.slice(0, 300)}`);
            return;
        }
        assert.ok(extra.length <= 12, `${label}: ${extra.length} records in flight: too many to enumerate`);
        for (let mask = 0; mask < (1 << extra.length); mask++) {
            const s = committed.concat(extra.filter((_, i) => mask & (1 << i)));
            try {
                h.assertReport(m.body.data, h.expectedReport(s, phones, PRICE), label);
                return;
            } catch (_) { /* another subset */ }
        }
        try {
            h.assertReport(m.body.data, h.expectedReport(committed, phones, PRICE), label);
        } catch (e) {
            wrong.push(`${e.message.split('\n')[0]} (against the records acknowledged before the send; ` +
                `no set with some of the ${extra.length} in flight matches either)`);
        }
    };

    if (mongo.canSetLag) await mongo.setLag(300);
    const d = h.startDaemon(cfg);
    let stop = false;
    const pending = [];
    const writer = (async () => {
        const wr = h.prng(SEED + 3);
        while (!stop) {
            const r = record(wr, phones[Math.floor(wr() * phones.length)]);
            pending.push(r);
            try {
                await insert([r]);
            } finally {
                pending.splice(pending.indexOf(r), 1);
            }
            await h.sleep(30);
        }
    })();
    try {
        await d.waitReady(2, 30000);
        for (let i = 0; i < 3; i++) await check(`while folding #${i}`, pending);
        if (mongo.canSetLag) {
            /* the secondary stops applying for a while: writers wait for it,
             * the folder goes on */
            const held = Date.now();
            await mongo.setLag(HELD);
            try {
                for (let i = 0; i < 3; i++) await check(`secondary held #${i}`, pending);
                await h.sleep(Math.max(0, HOLD_MS - (Date.now() - held)));
            } finally {
                await mongo.setLag(300);
            }
        }
        for (let i = 3; i < 6; i++) await check(`while folding #${i}`, pending);
        await mongo.stepDown({ stepDownSecs: 10, secondaryCatchUpPeriodSecs: 10 });
        for (let i = 0; i < 6; i++) await check(`after the step-down #${i}`, pending);
    } finally {
        stop = true;
        await writer;
        if (mongo.canSetLag) await mongo.setLag(0);
    }
    try {
        await h.waitFor(async () => {
            const r = await ctl(['--status']);
            const m = /unfolded records: (\d+)/.exec(r.stdout);
            return m && Number(m[1]) === 0;
        }, 180000, 'every record folded', 200);
        await check('after folding', []);
        const v = await ctl(['--verify']);
        if (v.code !== 0) wrong.push(`rollup --verify exits ${v.code}: ${v.stdout}${v.stderr}`);
    } finally {
        await d.shutdown('SIGQUIT');
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${checks} reports, or --verify, differ from the oracle`);
});

/* every collection the tests above write (the test server has no listCollections) */
const WRITTEN = ['lag', 'wc', 'direct', 'stepdown', 'held', 'wc189', 'majority', 'calls', 'calls_roll',
    'calls_roll_rollup', 'calls_roll_rollup_batches', 'replset_sync'];

test('change streams (MongoDB 6.0): update, replace and delete events with pre-images (collMod ' +
    'changeStreamPreAndPostImages), updateDescription, $match after $changeStream, resumeAfter a token, ' +
    'readConcern "local" refused, invalidate after a drop; a standalone server refuses $changeStream with 40573 ' +
    '(rollup mode follows the records so)', async (t) => {
    if (unusable(t)) return;
    const { Long } = h.lazyRequire('mongodb');
    const c = db.collection('cs');
    await c.insertMany([{ _id: 1, phone: Long.fromNumber(7), a: 1 }, { _id: 2, phone: 8, a: 2 }, { _id: 3, a: 3 }]);
    try {
        await db.command({ collMod: 'cs', changeStreamPreAndPostImages: { enabled: true } });
    } catch (e) {
        t.skip(`the server has no change stream pre-images (MongoDB 6.0+): ${e.message}`);
        return;
    }
    const pipeline = [{ $match: { operationType: { $in: ['update', 'replace', 'delete'] } } }];
    const opts = { fullDocument: 'updateLookup', fullDocumentBeforeChange: 'whenAvailable' };
    const cs = c.watch(pipeline, opts);
    const first = cs.tryNext();                         /* opens the stream: events from now on */
    assert.equal(await first, null, 'nothing before the writes');
    await c.updateOne({ _id: 1 }, { $set: { a: 10 } });
    await c.insertOne({ _id: 4 });
    await c.replaceOne({ _id: 2 }, { phone: 9, a: 3 });
    await c.deleteOne({ _id: 3 });
    const got = [];
    await h.waitFor(async () => {
        const e = await cs.tryNext();
        if (e) got.push(e);
        return got.length === 3;
    }, 20000, 'three change events', 10);
    assert.deepEqual(got.map((e) => e.operationType), ['update', 'replace', 'delete'], 'the insert filtered out');
    assert.deepEqual(got.map((e) => e.documentKey._id), [1, 2, 3]);
    assert.deepEqual(got[0].updateDescription.updatedFields, { a: 10 });
    assert.deepEqual(got[0].fullDocumentBeforeChange, { _id: 1, phone: 7, a: 1 });
    assert.deepEqual(got[1].fullDocumentBeforeChange, { _id: 2, phone: 8, a: 2 });
    assert.deepEqual(got[1].fullDocument, { _id: 2, phone: 9, a: 3 });
    assert.deepEqual(got[2].fullDocumentBeforeChange, { _id: 3, a: 3 });
    assert.equal(got[2].fullDocument, undefined, 'a delete has no fullDocument');
    for (const e of got) assert.deepEqual(e.ns, { db: ctx.names.database, coll: 'cs' });
    await cs.close();

    /* resume after the first event: the other two again */
    const again = c.watch(pipeline, Object.assign({ resumeAfter: got[0]._id }, opts));
    const seen = [];
    await h.waitFor(async () => {
        const e = await again.tryNext();
        if (e) seen.push(e);
        return seen.length === 2;
    }, 20000, 'two events after the resume token', 10);
    assert.deepEqual(seen.map((e) => e.operationType), ['replace', 'delete']);
    await again.close();

    /* an explicit read concern other than majority is refused (InvalidOptions) */
    await assert.rejects(db.command({ aggregate: 'cs', pipeline: [{ $changeStream: {} }], cursor: {},
        readConcern: { level: 'local' } }), (e) => e.code === 72);

    /* a drop ends the stream: drop, then invalidate, and the cursor closes */
    const ends = c.watch([{ $match: { operationType: 'nothing' } }]);
    assert.equal(await ends.tryNext(), null);
    await c.drop();
    let inv = null;
    await h.waitFor(async () => (inv = await ends.tryNext()) !== null, 20000, 'the invalidate event', 10);
    assert.equal(inv.operationType, 'invalidate', 'delivered whatever the $match says');
    await ends.close();

    if (!mongo.external) {
        const solo = await h.startMongo();
        const sc = await h.mongoClient(solo.uri);
        await assert.rejects(sc.db('x').collection('y').watch().tryNext(), (e) => e.code === 40573);
    }
});

test('once caught up, every member holds exactly the primary\'s documents (BSON types included)', async (t) => {
    if (unusable(t)) return;
    if (mongo.canSetLag) await mongo.setLag(0);
    await mongo.syncAll(ctx.names.database);
    const primary = await mongo.primary();
    const dump = async (host) => {
        const d = (await h.mongoClient(mongo.directUri(host))).db(ctx.names.database);
        const out = {};
        for (const name of WRITTEN) {
            const docs = await d.collection(name).find({}, { sort: { _id: 1 }, promoteValues: false }).toArray();
            out[name] = docs.map((x) => BSON.EJSON.stringify(x, { relaxed: false }));
        }
        return out;
    };
    const want = await dump(primary);
    assert.ok(Object.values(want).some((x) => x.length), 'the earlier tests left documents to compare');
    for (const host of mongo.replset.hosts) {
        if (host === primary) continue;
        const got = await dump(host);
        for (const name of WRITTEN) {
            assert.equal(got[name].length, want[name].length, `${host}: ${name}: documents`);
            assert.deepEqual(got[name], want[name], `${host}: ${name}: the documents and their BSON types`);
        }
    }
});
