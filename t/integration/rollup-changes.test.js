/*
 * rollup-changes.test.js -- rollup mode after records that were already
 * folded change (docs/design.md, "Rollup mode after a record changes"):
 *
 *   1. deletes, corrections of end_date, a record moved to another phone, a
 *      replaced record and a re-import (delete + insert), each made while the
 *      daemon runs: once the folder's background verification has run one
 *      whole cycle after the last change (reporterd_rollup_verify_cycles_total
 *      moved by 2), every report equals the brute-force oracle over what the
 *      database holds; the delay is measured and printed;
 *   2. reporterctl rollup --verify --phones / --sample / --repair on rollups
 *      corrupted on purpose (the folder's verification off), and the argument
 *      errors;
 *   3. a TTL index on the records (or a clustered collection created with
 *      expireAfterSeconds): -t fails naming it, --fold is refused, the
 *      folder refuses to fold and deletes the rollups, and while MongoDB's TTL
 *      monitor expires records every report equals the oracle over what is
 *      left; with the index dropped, folding starts again (on a standalone
 *      server and on a replica set);
 *   3b. a new epoch (the batches collection dropped) while a worker knows the
 *      old one: within a second its reports stop using the old epoch's
 *      rollups, which nothing corrects any more;
 *   4. on a replica set (the test server's replica-set mode, or
 *      REPORTERD_TEST_MONGODB_URI naming one of MongoDB 6.0+), with the
 *      verification off: the folder follows the change stream with
 *      pre-images, and the same changes as in 1 are in every report as soon
 *      as the folder has read their events (the lag is measured and printed);
 *      a folder restarted in the middle resumes from its saved token.
 *
 * The test server runs its TTL monitor every second here (mongod's
 * --setParameter ttlMonitorSleepSecs=1).  Runs unchanged against a real
 * MongoDB (REPORTERD_TEST_MONGODB_URI); there the TTL monitor runs every 60 s
 * unless the server was started with that parameter, and test 3 waits for it.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PRICE = 10;
const DAY = 86400 * 1000;

let ctx;
let client;
let seq = 1;
let collector;

function record(rnd, phone, start) {
    const { ObjectId } = h.lazyRequire('mongodb');
    const st = start !== undefined ? start : Date.UTC(2023, 4, 9) + Math.floor(rnd() * 30 * DAY);
    const ms = rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121);
    const end = st instanceof Date ? new Date(st.getTime() + ms) : st + ms;
    return { _id: new ObjectId(), phone, start_date: st, end_date: end };
}

/* One collection of records and the model of what it holds. */
class Calls {
    constructor(name) {
        this.name = `${ctx.names.collection}_${name}`;
        this.db = client.db(ctx.names.database);
        this.coll = this.db.collection(this.name);
        this.records = [];
    }
    async insert(docs) {
        if (docs.length) await this.coll.insertMany(docs.map((d) => Object.assign({}, d)), { ordered: true });
        this.records.push(...docs);
    }
    async remove(docs) {
        const ids = new Set(docs.map((d) => String(d._id)));
        const r = await this.coll.deleteMany({ _id: { $in: docs.map((d) => d._id) } });
        assert.equal(r.deletedCount, docs.length, 'every record meant to be deleted was');
        this.records = this.records.filter((d) => !ids.has(String(d._id)));
    }
    /* $set fields on docs, in the database and in the model */
    async set(docs, fields) {
        const r = await this.coll.updateMany({ _id: { $in: docs.map((d) => d._id) } }, { $set: fields });
        assert.equal(r.modifiedCount, docs.length, 'every record meant to be corrected was');
        for (const d of docs) Object.assign(d, fields);
    }
    config(extra = {}) {
        return ctx.writeConfig(h.deepMerge({
            worker_processes: 2,
            report: { mode: 'rollup' },
            mongodb: { collection: this.name },
            rollup: { batch: 40, interval: '50ms', lease: '2s' },
        }, extra));
    }
    of(phone) { return this.records.filter((r) => r.phone === phone); }
}

async function ctl(cfg, args) {
    return h.run(h.env.reporterctl, ['-c', cfg, 'rollup', ...args], { timeoutMs: 120000 });
}

async function waitFolded(cfg, timeoutMs = 60000) {
    await h.waitFor(async () => {
        const r = await ctl(cfg, ['--status']);
        assert.equal(r.code, 0, `rollup --status: ${r.stderr}`);
        return /unfolded records: 0\n/.test(r.stdout);
    }, timeoutMs, 'every record folded', 100);
}

/* One task; its result must equal the oracle over calls.records. */
async function check(calls, ps, label) {
    const id = `c${seq++}`;
    if (!collector) collector = await ctx.results();
    await ctx.publishTask(JSON.stringify({ correlation_id: id, phones: ps }));
    const m = await h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
        30000, `the result of ${label} (${id})`, 10);
    assert.equal(m.body.status, 'Complete', `${label}: ${m.raw.slice(0, 300)}`);
    h.assertReport(m.body.data, h.expectedReport(calls.records, ps, PRICE), label);
}

/* The changes of test 1 to calls (folded), each mirrored in calls.records;
 * returns how many change events they make (one per document). */
async function changeEverything(calls, phones, rnd) {
    let events = 0;
    for (const p of phones.slice(0, 3)) {
        const gone = calls.of(p).slice(0, 10);
        await calls.remove(gone);
        events += gone.length;
    }
    for (const p of phones.slice(3, 5)) {
        for (const r of calls.of(p).slice(0, 10)) {
            await calls.set([r], { end_date: r.end_date + 20000 + Math.floor(rnd() * 20000) });
            events++;
        }
    }
    const moved = calls.of(phones[5]).slice(0, 5);
    await calls.set(moved, { phone: phones[6] });
    events += moved.length;
    const old = calls.of(phones[7])[0];
    const replacement = record(rnd, phones[7]);
    replacement._id = old._id;
    const rep = await calls.coll.replaceOne({ _id: old._id }, replacement);
    assert.equal(rep.modifiedCount, 1, 'the record replaced');
    calls.records[calls.records.indexOf(old)] = replacement;
    events++;
    const before = calls.of(phones[8]);
    const again = before.map((r) => Object.assign(record(rnd, r.phone), { start_date: r.start_date, end_date: r.end_date }));
    await calls.remove(before);
    events += before.length;
    await calls.insert(again.concat([record(rnd, phones[8]), record(rnd, phones[8])]));
    return events;
}

function history(rnd, phones) {
    const docs = [];
    for (const p of phones) for (let k = 30 + Math.floor(rnd() * 90); k > 0; k--) docs.push(record(rnd, p));
    return docs;
}

async function metric(port, name) {
    const m = await h.readMetrics(`http://127.0.0.1:${port}`);
    assert.ok(m.has(name), `/metrics has ${name}`);
    return m.get(name);
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdchg', mongo: { args: ['--setParameter', 'ttlMonitorSleepSecs=1'] } });
    client = await h.mongoClient(ctx.mongo.uri);
});

after(async () => {
    await h.cleanup();
});

test(`deletes, corrections, a moved record, a replace and a re-import are in every report one verification cycle later (seed ${SEED})`, async () => {
    const calls = new Calls('changes');
    const rnd = h.prng(SEED);
    const phones = [];
    for (let i = 0; i < 10; i++) phones.push(i < 5 ? 2000 + i : 79170000000 + i * 11);
    await calls.insert(history(rnd, phones));
    const port = await h.freePort();
    const cfg = calls.config({ rollup: { verify_rate: 20000 }, status: { listen: `127.0.0.1:${port}` } });
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await waitFolded(cfg);
    await check(calls, phones, 'folded, before any change');

    /* every change below is to records already folded */
    const t0 = Date.now();
    await changeEverything(calls, phones, rnd);
    const changed = Date.now();

    /* one whole cycle started after the last change: two ends */
    const c0 = await metric(port, 'reporterd_rollup_verify_cycles_total');
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_verify_cycles_total')) >= c0 + 2,
        60000, 'two verification cycles after the changes', 50);
    const followed = Date.now();
    await waitFolded(cfg);
    await check(calls, phones, 'one verification cycle after the changes');
    for (const p of phones) await check(calls, [p], `phone ${p} alone`);
    const drift = await metric(port, 'reporterd_rollup_drift_total');
    assert.ok(drift >= 9, `the verification rewrote the rollup of every changed phone (9), not ${drift}`);
    assert.equal(await metric(port, 'reporterd_rollup_change_stream_open'), 0, 'no change stream on a standalone server');
    const cycle = await metric(port, 'reporterd_rollup_verify_cycle_seconds');
    const v = await ctl(cfg, ['--verify']);
    assert.equal(v.code, 0, `--verify after the cycle: ${v.stdout}${v.stderr}`);
    console.log(`# ${calls.records.length} records, verify_rate 20000/s: changes made in ${changed - t0} ms; ` +
        `every report exact ${followed - changed} ms after the last one (two cycle ends); last cycle ` +
        `${cycle} s; ${drift} rollups rewritten`);
    await d.shutdown('SIGQUIT');
});

test('reporterctl rollup --verify --phones / --sample / --repair, and its argument errors', async () => {
    const calls = new Calls('repair');
    const rnd = h.prng(SEED + 1);
    const phones = [3001, 3002, 3003, 3004, 3005, 3006];
    const docs = [];
    for (const p of phones) for (let k = 0; k < 25; k++) docs.push(record(rnd, p));
    await calls.insert(docs);
    const cfg = calls.config({ rollup: { verify_rate: 0 } });
    const fold = await ctl(cfg, ['--fold']);
    assert.equal(fold.code, 0, `--fold: ${fold.stdout}${fold.stderr}`);
    const { Long } = h.lazyRequire('mongodb');
    const rollups = calls.db.collection(`${calls.name}_rollup`);
    const bad = [3002, 3005];
    for (const p of bad) {
        const u = await rollups.updateOne({ _id: Long.fromNumber(p) }, { $inc: { cnt: Long.fromNumber(2), cnt_10: Long.fromNumber(2) } });
        assert.equal(u.modifiedCount, 1, `the rollup of ${p} corrupted`);
    }
    const one = await ctl(cfg, ['--verify', '--phones', `${bad[0]},3001`]);
    assert.equal(one.code, 4, `--phones: ${one.stdout}${one.stderr}`);
    assert.match(one.stdout, /verified 2 phones: 1 differ/);
    assert.match(one.stdout, new RegExp(`phone ${bad[0]}: the rollup and its tail differ`));
    const all = await ctl(cfg, ['--verify', '--sample', '100']);
    assert.equal(all.code, 4, `--sample: ${all.stdout}${all.stderr}`);
    assert.match(all.stdout, /verified 6 phones: 2 differ/);
    const some = await ctl(cfg, ['--verify', '--sample', '3']);
    assert.match(some.stdout, /verified 3 phones: [0-2] differ/, `--sample 3: ${some.stdout}${some.stderr}`);
    const fix = await ctl(cfg, ['--verify', '--repair']);
    assert.equal(fix.code, 0, `--repair: ${fix.stdout}${fix.stderr}`);
    assert.match(fix.stdout, /verified 6 phones: 2 repaired, 0 differ/);
    const v = await ctl(cfg, ['--verify']);
    assert.equal(v.code, 0, `--verify after --repair: ${v.stdout}${v.stderr}`);
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await check(calls, phones, 'after --repair');
    await d.shutdown('SIGQUIT');

    for (const [args, msg] of [
        [['--verify', '--sample', 'abc'], /--sample "abc": a number of phones/],
        [['--verify', '--sample', '0'], /--sample "0": a number of phones/],
        [['--verify', '--phones', '1,x'], /"1,x" is not a list of phones/],
        [['--verify', '--phones', '1', '--sample', '2'], /exclude each other/],
        [['--fold', '--verify'], /one of --status, --fold, --verify, --rebuild at a time/],
        [['--fold', '--repair'], /for --verify only/],
    ]) {
        const r = await ctl(cfg, args);
        assert.equal(r.code, 64, `${args.join(' ')}: exit 64, EX_USAGE (${r.stdout}${r.stderr})`);
        assert.match(r.stderr, msg, `${args.join(' ')}: ${r.stderr}`);
    }
});

/* Test 3 on the server at uri (db: its client's database). */
async function ttlCase(uri, db, name) {
    const calls = new Calls(name);
    calls.db = db;
    calls.coll = db.collection(calls.name);
    const rnd = h.prng(SEED + 2);
    const phones = [4001, 4002, 4003, 4004];
    const now = Date.now();
    const docs = [];
    for (const p of phones) {
        for (let k = 0; k < 20; k++) docs.push(record(rnd, p, new Date(now - 2 * DAY - Math.floor(rnd() * DAY))));
        for (let k = 0; k < 15; k++) docs.push(record(rnd, p, new Date(now - Math.floor(rnd() * 600000))));
    }
    await calls.insert(docs);
    const port = await h.freePort();
    const cfg = calls.config({ mongodb: { uri }, rollup: { verify_rate: 0 }, status: { listen: `127.0.0.1:${port}` } });
    const t1 = await h.run(h.env.reporterd, ['-t', '-c', cfg]);
    assert.equal(t1.code, 0, `-t without a TTL index: ${t1.stderr}`);
    assert.match(t1.stderr, /the records collection has no TTL index/);
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await waitFolded(cfg);
    await check(calls, phones, 'folded, no TTL index yet');
    assert.equal(await metric(port, 'reporterd_rollup_refused'), 0);

    await calls.coll.createIndex({ start_date: 1 }, { expireAfterSeconds: 86400, name: 'calls_ttl' });
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_refused')) === 1, 20000,
        'the folder to refuse rollup mode', 50);
    await h.waitFor(async () => (await calls.db.collection(`${calls.name}_rollup`).countDocuments({})) === 0,
        20000, 'the folder to delete the rollups', 50);
    const t2 = await h.run(h.env.reporterd, ['-t', '-c', cfg]);
    assert.equal(t2.code, 78, `-t with a TTL index fails with EX_CONFIG: ${t2.stderr}`);
    assert.match(t2.stderr, /report\.mode: rollup refused: the records collection \S+ has a TTL index on start_date \(expireAfterSeconds 86400\)/);
    const f = await ctl(cfg, ['--fold']);
    assert.equal(f.code, 1, `--fold with a TTL index: ${f.stdout}${f.stderr}`);
    assert.match(f.stderr, /--fold: refused: .*TTL index/);
    assert.match(d.log, /rollup mode refused: .*TTL index on start_date/);

    /* MongoDB's TTL monitor deletes the old records */
    const left = calls.records.filter((r) => r.start_date.getTime() > now - DAY);
    await h.waitFor(async () => (await calls.coll.countDocuments({})) === left.length, 150000,
        `the TTL monitor to delete the ${calls.records.length - left.length} expired records`, 200);
    calls.records = left;
    await check(calls, phones, 'after the TTL monitor deleted records');
    await calls.insert([record(rnd, phones[0], new Date()), record(rnd, phones[1], new Date())]);
    await check(calls, phones, 'a record inserted while refused');

    await calls.coll.dropIndex('calls_ttl');
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_refused')) === 0, 20000,
        'the folder to fold again once the index is gone', 50);
    await calls.insert([record(rnd, phones[2], new Date())]);
    await waitFolded(cfg);
    assert.ok(await calls.db.collection(`${calls.name}_rollup`).countDocuments({}) > 0,
        'rollups again once the TTL index is gone');
    await check(calls, phones, 'folding again');
    await d.shutdown('SIGQUIT');
}

test('a new epoch (the batches collection dropped): a worker stops using the rollups of the epoch that ended within a second, so a change nothing follows in them any more is in its reports', async () => {
    const calls = new Calls('epoch');
    const rnd = h.prng(SEED + 4);
    const P = 6001;
    const docs = [];
    for (let p = 1; p <= 40; p++) for (let k = 0; k < 60; k++) docs.push(record(rnd, p));
    await calls.insert(docs);
    await calls.insert(Array.from({ length: 20 }, () => record(rnd, P)));   /* last in _id order */
    /* fold everything at once, then run a daemon whose folder refolds one
     * record per batch: after a new epoch, P's turn comes last */
    const fast = calls.config({ rollup: { batch: 1000 } });
    const fold = await ctl(fast, ['--fold']);
    assert.equal(fold.code, 0, `--fold: ${fold.stdout}${fold.stderr}`);
    const cfg = calls.config({ rollup: { batch: 1, verify_rate: 0 } });
    const d = h.startDaemon(cfg);
    try {
        await epochEnds(calls, d, P);
    } finally {
        await d.shutdown('SIGQUIT');
    }
});

async function epochEnds(calls, d, P) {
    await d.waitReady(2, 30000);
    const rollups = calls.db.collection(`${calls.name}_rollup`);
    const batches = calls.db.collection(`${calls.name}_rollup_batches`);
    const e1 = (await batches.findOne({ _id: 'epoch' })).e;
    await check(calls, [P], 'P from its rollup of the first epoch');
    await check(calls, [P], 'P again (both workers know the first epoch)');

    await batches.drop();
    const e2 = await h.waitFor(async () => {
        const doc = await batches.findOne({ _id: 'epoch' });
        return doc && doc.e !== e1 ? doc.e : null;
    }, 20000, 'the folder to start a new epoch', 20);
    await new Promise((resolve) => setTimeout(resolve, 1200));   /* the documented second */
    await calls.remove(calls.of(P).slice(0, 3));
    const seen = await rollups.findOne({ _id: P });
    assert.ok(seen && seen.e === e1, `P still has its rollup of the first epoch when it is reported ` +
        `(the refold, one record per batch, reaches P last): ${JSON.stringify(seen)}`);
    await check(calls, [P], 'P after a delete, a second into the new epoch');
    await check(calls, [P], 'P again (the other worker)');
    const still = await rollups.findOne({ _id: P });
    console.log(`# new epoch ${e2} after ${e1}: P's rollup during the reports was of epoch ` +
        `${seen ? seen.e : 'none'}, after them ${still ? still.e : 'none'}`);
}

test('a TTL index refuses rollup mode: -t and --fold say why, the rollups go, every report stays exact while records expire', async () => {
    await ttlCase(ctx.mongo.uri, client.db(ctx.names.database), 'ttl');
});

test('the same on a replica set', async (t) => {
    const rs = await h.startMongo({ replset: { members: 2, lagMs: 0, name: 'rdttl' },
        args: ['--setParameter', 'ttlMonitorSleepSecs=1'] });
    if (!rs.replset) {
        t.skip(rs.notReplset);
        return;
    }
    await ttlCase(rs.uri, (await h.mongoClient(rs.uri)).db(ctx.names.database), 'ttlrs');
});

test('a clustered collection that expires its records (created with expireAfterSeconds, which listIndexes does not show) refuses rollup mode too', async (t) => {
    const calls = new Calls('clustered');
    try {
        await calls.db.createCollection(calls.name, { clusteredIndex: { key: { _id: 1 }, unique: true },
            expireAfterSeconds: 86400 });
    } catch (e) {
        t.skip(`the server has no clustered collections with expireAfterSeconds (MongoDB 5.3+): ${e.message}`);
        return;
    }
    const rnd = h.prng(SEED + 3);
    const phones = [5001, 5002, 5003];
    const now = Date.now();
    const docs = [];
    /* the _id is the record's date, as a clustered collection keeps it */
    let k = 0;
    for (const p of phones) {
        for (let i = 0; i < 12; i++, k++) {
            const r = record(rnd, p, new Date(now - 2 * DAY - k * 1000));
            r._id = r.start_date;
            docs.push(r);
        }
        for (let i = 0; i < 8; i++, k++) {
            const r = record(rnd, p, new Date(now - 60000 - k * 1000));
            r._id = r.start_date;
            docs.push(r);
        }
    }
    await calls.insert(docs);
    const port = await h.freePort();
    const cfg = calls.config({ rollup: { verify_rate: 0 }, status: { listen: `127.0.0.1:${port}` } });
    const t1 = await h.run(h.env.reporterd, ['-t', '-c', cfg]);
    assert.equal(t1.code, 78, `-t on a collection that expires its records fails with EX_CONFIG: ${t1.stderr}`);
    assert.match(t1.stderr, /report\.mode: rollup refused: the records collection \S+ expires its records itself \(created with expireAfterSeconds 86400\)/);
    const d = h.startDaemon(cfg);
    try {
        await clusteredRefused(calls, cfg, d, port, phones, now);
    } finally {
        await d.shutdown('SIGQUIT');
    }
});

async function clusteredRefused(calls, cfg, d, port, phones, now) {
    await d.waitReady(2, 30000);
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_refused')) === 1, 20000,
        'the folder to refuse rollup mode', 50);
    assert.match(d.log, /rollup mode refused: .*expires its records itself/);
    const f = await ctl(cfg, ['--fold']);
    assert.equal(f.code, 1, `--fold on a collection that expires its records: ${f.stdout}${f.stderr}`);
    assert.equal(await calls.db.collection(`${calls.name}_rollup`).countDocuments({}), 0, 'no rollup was made');
    /* MongoDB deletes the records whose _id is older than a day (here the
     * monitor may have done so already) */
    const left = calls.records.filter((r) => r._id.getTime() > now - DAY);
    await h.waitFor(async () => (await calls.coll.countDocuments({})) === left.length, 150000,
        `the TTL monitor to delete the ${calls.records.length - left.length} expired records`, 200);
    calls.records = left;
    await check(calls, phones, 'after the TTL monitor deleted records');
}

test('a replica set: the folder follows the change stream with pre-images, and every change is in every report once its event is read (verification off)', async (t) => {
    const rs = await h.startMongo({ replset: { members: 2, lagMs: 0, name: 'rdchg' } });
    if (!rs.replset) {
        t.skip(rs.notReplset);
        return;
    }
    const rsClient = await h.mongoClient(rs.uri);
    const calls = new Calls('stream');
    calls.db = rsClient.db(ctx.names.database);
    calls.coll = calls.db.collection(calls.name);
    const rnd = h.prng(SEED + 3);
    const phones = [];
    for (let i = 0; i < 10; i++) phones.push(5000 + i);
    await calls.insert(history(rnd, phones));
    const port = await h.freePort();
    const cfg = calls.config({ mongodb: { uri: rs.uri }, rollup: { verify_rate: 0 },
        status: { listen: `127.0.0.1:${port}` } });
    let d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await waitFolded(cfg);
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_change_stream_open')) === 1, 20000,
        'the folder to open the change stream', 50);
    await check(calls, phones, 'folded, before any change');

    const t0 = Date.now();
    const events = await changeEverything(calls, phones, rnd);
    const changed = Date.now();
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_change_events_total')) >= events, 30000,
        `the folder to read the ${events} change events`, 20);
    const followed = Date.now();
    await waitFolded(cfg);
    await check(calls, phones, 'the change events read');
    for (const p of phones) await check(calls, [p], `phone ${p} alone`);
    assert.equal(await metric(port, 'reporterd_rollup_change_events_total'), events, 'one event per document changed');
    assert.equal(await metric(port, 'reporterd_rollup_change_events_without_preimage_total'), 0);
    const corrected = await metric(port, 'reporterd_rollup_change_corrections_total');
    assert.ok(corrected >= 9, `every changed phone's rollup recomputed (9), not ${corrected}`);
    assert.equal(await metric(port, 'reporterd_rollup_drift_total'), 0, 'the verification is off');
    console.log(`# change stream: ${events} changes made in ${changed - t0} ms; every event read ` +
        `${followed - changed} ms after the last one; last lag ` +
        `${await metric(port, 'reporterd_rollup_change_lag_seconds')} s; ${corrected} rollups recomputed`);

    /* a record restored with the mark of a batch already applied (an
     * export loaded back): the tail leaves it out, the stream's insert
     * event puts it into its phone's rollup */
    const rb = await h.rollupField(calls.db, `${calls.name}_rollup`);
    const folded = await calls.coll.findOne({ phone: phones[9], [rb]: { $exists: true } });
    assert.ok(folded, `a record of ${phones[9]} folded (${rb})`);
    const { ObjectId } = h.lazyRequire('mongodb');
    const copy = Object.assign({}, folded, { _id: new ObjectId() });
    const e0 = await metric(port, 'reporterd_rollup_change_events_total');
    await calls.coll.insertOne(copy);
    calls.records.push({ _id: copy._id, phone: copy.phone, start_date: copy.start_date, end_date: copy.end_date });
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_change_events_total')) > e0, 30000,
        'the folder to read the insert of a marked record', 20);
    await check(calls, [phones[9]], 'a record inserted with a mark of this epoch');

    /* a folder stopped, changes made meanwhile, a folder started: it resumes
     * from the token it saved and applies them */
    await d.shutdown('SIGQUIT');
    const more = calls.of(phones[9]).slice(0, 4);
    await calls.remove(more);
    d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await h.waitFor(async () => (await metric(port, 'reporterd_rollup_change_events_total')) >= more.length, 30000,
        'the restarted folder to read the events made while no folder ran', 20);
    await d.waitForLog(/following the change stream of the records \(from its saved token\)/);
    await check(calls, phones, 'changes made while no folder ran');

    /* the records collection dropped: the stream ends (invalidate), the
     * rollups go, every report answers what is left: nothing */
    await calls.coll.drop();
    calls.records = [];
    await d.waitForLog(/the records collection was dropped or renamed: \d+ rollup\(s\) deleted/, 30000);
    await check(calls, phones, 'the records collection dropped');
    await calls.insert(history(rnd, phones.slice(0, 2)));
    await d.waitForLog(/following the change stream of the records \(from now\)/);
    await waitFolded(cfg);
    await check(calls, phones, 'records again after the drop');
    await d.shutdown('SIGQUIT');
});
