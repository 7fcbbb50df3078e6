/*
 * rollup.test.js -- report.mode: rollup end to end.  Every report is
 * compared exactly with the brute-force oracle (harness.expectedReport):
 * before, during and after folding; while writers insert records
 * concurrently (the figures must be those of some set of records between
 * "committed before the task was sent" and "committed before its answer");
 * after a record arrives with an _id lower than everything folded; with two
 * daemons racing for the folders' lease, and with a folder paused (SIGSTOP)
 * in the middle of its work until another took over.  `reporterctl rollup
 * --verify` must find nothing, except a rollup this test corrupts on
 * purpose, which `--rebuild` repairs.
 *
 * Runs unchanged against a real MongoDB (REPORTERD_TEST_MONGODB_URI).
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PRICE = '7.3';      /* report.price_per_second: prices rounded, as in pipeline.test.js */

let ctx;
let records = [];            /* everything inserted so far, in insertion order */
let phones;
let coll;
let seq = 1;

const BASE = Date.UTC(2023, 4, 9, 2, 27, 3, 49);

function record(rnd, phone) {
    const st = BASE + Math.floor(rnd() * 30 * 86400 * 1000);
    const ms = rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121);
    return { phone, start_date: st, end_date: st + ms };
}

async function insert(docs) {
    const { Long } = h.lazyRequire('mongodb');
    await coll.insertMany(docs.map((d) => Object.assign({}, d,
        { phone: d.phone > 2147483647 ? Long.fromNumber(d.phone) : d.phone })), { ordered: true });
    records.push(...docs);
}

function config(extra = {}, fileName = undefined) {
    return ctx.writeConfig(h.deepMerge({
        worker_processes: 2,
        report: { mode: 'rollup', price_per_second: PRICE },
        rollup: { batch: 40, interval: '50ms', lease: '2s' },
    }, extra), fileName ? { fileName } : {});
}

async function ctl(args, cfg) {
    const r = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', ...args], { timeoutMs: 120000 });
    return r;
}

async function unfolded(cfg) {
    const r = await ctl(['--status'], cfg);
    assert.equal(r.code, 0, `rollup --status: ${r.stderr}`);
    const m = /unfolded records: (\d+)/.exec(r.stdout);
    assert.ok(m, `rollup --status prints the unfolded records: ${r.stdout}`);
    return Number(m[1]);
}

async function waitFolded(cfg, timeoutMs = 60000) {
    await h.waitFor(async () => (await unfolded(cfg)) === 0, timeoutMs, 'every record folded', 100);
}

let collector;

/* Send one task and check its result against the oracle over some set S of
 * records with A <= S <= B: A = inserted (acknowledged) before the send,
 * B = whose insert had started before the answer came.  `pending` is the
 * writer's live list of records whose insert started but is not
 * acknowledged yet; it is read when the answer has come. */
async function check(ps, label, pending = []) {
    const id = `t${seq++}`;
    if (!collector) collector = await ctx.results();   /* once the daemon declared the queue */
    const committed = records.slice();
    await ctx.publishTask(JSON.stringify({ correlation_id: id, phones: ps }));
    const m = await h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
        30000, `the result of ${label} (${id})`, 10);
    const extra = [...new Set(records.slice(committed.length).concat(pending))]
        .filter((r) => ps.includes(r.phone));
    assert.equal(m.body.status, 'Complete', `${label}: ${m.raw.slice(0, 300)}`);
    if (extra.length === 0) {
        h.assertReport(m.body.data, h.expectedReport(committed, ps, PRICE), label);
        return;
    }
    assert.ok(extra.length <= 12, `${label}: ${extra.length} records in flight: too many to enumerate`);
    for (let mask = 0; mask < (1 << extra.length); mask++) {
        const s = committed.concat(extra.filter((_, i) => mask & (1 << i)));
        try {
            h.assertReport(m.body.data, h.expectedReport(s, ps, PRICE), label);
            return;
        } catch (_) { /* another subset */ }
    }
    assert.fail(`${label}: the result equals the oracle over no set of records between the committed ` +
        `ones and those in flight (${extra.length}): ${m.raw.slice(0, 600)}`);
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdroll' });
    const c = await h.mongoClient(ctx.mongo.uri);
    coll = c.db(ctx.names.database).collection(ctx.names.collection);
    const rnd = h.prng(SEED);
    phones = [];
    for (let i = 0; i < 12; i++) phones.push(i < 6 ? 1000 + i : 79160000000 + i * 7);
    const docs = [];
    for (const p of phones) {
        const n = p === 1005 ? 0 : 30 + Math.floor(rnd() * 120);
        for (let k = 0; k < n; k++) docs.push(record(rnd, p));
    }
    await insert(docs);
});

after(async () => {
    await h.cleanup();
});

test(`rollup reports equal the oracle before, while and after folding (seed ${SEED})`, async () => {
    const cfg = config();
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    /* folding starts now: reports race it */
    for (let i = 0; i < 8; i++) await check(phones.slice(i % 4, i % 4 + 6), `during folding #${i}`);
    await waitFolded(cfg);
    await check(phones, 'after folding');
    const v = await ctl(['--verify'], cfg);
    assert.equal(v.code, 0, `rollup --verify after folding: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /verified 11 phones: 0 differ/);

    /* a record with an _id lower than everything folded, committed late */
    const { ObjectId } = h.lazyRequire('mongodb');
    const late = Object.assign({ _id: ObjectId.createFromTime(1) }, record(h.prng(SEED + 1), phones[2]));
    await insert([late]);
    await check([phones[2], phones[3]], 'a late record with the lowest _id');
    await waitFolded(cfg);
    await check([phones[2], phones[3]], 'the late record folded');
    const v2 = await ctl(['--verify', String(phones[2])], cfg);
    assert.equal(v2.code, 0, `rollup --verify ${phones[2]}: ${v2.stdout}${v2.stderr}`);
    await d.shutdown('SIGQUIT');
});

test('concurrent writers: every report equals the oracle over a set between sent and answered', async () => {
    const cfg = config();
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    const rnd = h.prng(SEED + 2);
    const hot = [phones[0], phones[6], phones[7]];
    let stop = false;
    const pending = [];
    const { ObjectId } = h.lazyRequire('mongodb');
    const writer = (async () => {
        let k = 0;
        while (!stop) {
            const r = record(rnd, hot[k % hot.length]);
            /* every fifth record with an _id from the past: out of _id order */
            if (k % 5 === 4) r._id = ObjectId.createFromTime(1000 + k);
            k++;
            pending.push(r);
            try {
                await insert([r]);
            } finally {
                pending.splice(pending.indexOf(r), 1);
            }
            await h.sleep(5);
        }
    })();
    try {
        for (let i = 0; i < 25; i++) {
            await check(i % 2 ? hot : phones.slice(0, 8), `concurrent #${i}`, pending);
        }
    } finally {
        stop = true;
        await writer;
    }
    await waitFolded(cfg);
    await check(phones, 'after the writers');
    const v = await ctl(['--verify'], cfg);
    assert.equal(v.code, 0, `rollup --verify: ${v.stdout}${v.stderr}`);
    await d.shutdown('SIGQUIT');
});

test('--verify finds a corrupted rollup and --rebuild repairs it', async () => {
    /* the folder's own verification off: it would repair what this test
     * checks the operator's tools find (rollup-changes.test.js tests it) */
    const cfg = config({ rollup: { verify_rate: 0 } });
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await waitFolded(cfg);
    const rollups = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database)
        .collection(`${ctx.names.collection}_rollup`);
    const { Long } = h.lazyRequire('mongodb');
    const victim = phones[7];
    const u = await rollups.updateOne({ _id: Long.fromNumber(victim) }, { $inc: { cnt: Long.fromNumber(1), cnt_30: Long.fromNumber(1) } });
    assert.equal(u.modifiedCount, 1, 'the rollup document of the victim phone exists');
    const v = await ctl(['--verify'], cfg);
    assert.equal(v.code, 4, `rollup --verify exits 4 on a difference: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, new RegExp(`phone ${victim}: the rollup and its tail differ`));
    assert.match(v.stdout, /verified 11 phones: 1 differ/);
    const r = await ctl(['--rebuild'], cfg);
    assert.equal(r.code, 0, `rollup --rebuild: ${r.stdout}${r.stderr}`);
    const v2 = await ctl(['--verify'], cfg);
    assert.equal(v2.code, 0, `rollup --verify after --rebuild: ${v2.stdout}${v2.stderr}`);
    await check(phones, 'after --rebuild');

    /* records deleted after they were folded: --verify sees it, --rebuild
     * (while the folder runs) follows the records */
    const gone = records.filter((x) => x.phone === phones[8]).slice(0, 3);
    for (const g of gone) {
        const del = await coll.deleteOne({ phone: g.phone, start_date: g.start_date, end_date: g.end_date });
        assert.equal(del.deletedCount, 1, 'a folded record deleted');
        records.splice(records.indexOf(g), 1);
    }
    const v3 = await ctl(['--verify'], cfg);
    assert.equal(v3.code, 4, `rollup --verify after deletes: ${v3.stdout}${v3.stderr}`);
    assert.match(v3.stdout, new RegExp(`phone ${phones[8]}: the rollup and its tail differ`));
    const r2 = await ctl(['--rebuild'], cfg);
    assert.equal(r2.code, 0, `rollup --rebuild after deletes: ${r2.stdout}${r2.stderr}`);
    const v4 = await ctl(['--verify'], cfg);
    assert.equal(v4.code, 0, `rollup --verify after the second --rebuild: ${v4.stdout}${v4.stderr}`);
    await check(phones, 'after deletes and --rebuild');
    await d.shutdown('SIGQUIT');
});

test('a dropped batches collection starts a new epoch that folds everything again, never lost', async () => {
    const cfg = config();
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    await waitFolded(cfg);
    const db = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database);
    const batches = db.collection(`${ctx.names.collection}_rollup_batches`);
    const rollups = db.collection(`${ctx.names.collection}_rollup`);
    const records = db.collection(ctx.names.collection);
    const rollupName = `${ctx.names.collection}_rollup`;
    const rnd = h.prng(SEED + 4);
    for (const [label, drop] of [['the batches collection dropped', [batches]],
        ['the batches and rollup collections dropped', [batches, rollups]]]) {
        const before = await h.rollupField(db, rollupName);
        for (const c of drop) await c.drop();
        await check(phones, `${label}: at once`);
        const more = [];
        for (let i = 0; i < 60; i++) more.push(record(rnd, phones[i % 6]));
        await insert(more);
        await check(phones, `${label}: new records`);
        const field = await h.waitFor(async () => {
            const f = await h.rollupField(db, rollupName);
            return f && f !== before ? f : null;
        }, 30000, `${label}: a new epoch`, 50);
        await h.waitFor(async () => (await records.countDocuments({ [field]: null })) === 0, 60000,
            `${label}: every record folded again in the new epoch ${field}`, 50);
        await waitFolded(cfg);
        await check(phones, `${label}: folded again`);
        const v = await ctl(['--verify'], cfg);
        assert.equal(v.code, 0, `${label}: rollup --verify: ${v.stdout}${v.stderr}`);
    }
    await d.shutdown('SIGQUIT');
});

async function metric(url, name) {
    const m = await h.readMetrics(url);
    return m.get(name);
}

test('two daemons race for the lease; a folder paused mid-work until the other took over does no harm', async () => {
    /* a backlog to fold: 4,000 records, batches of 40 */
    const rnd = h.prng(SEED + 3);
    const more = [];
    for (let i = 0; i < 4000; i++) more.push(record(rnd, phones[i % phones.length]));
    await insert(more);
    const [pa, pb] = [await h.freePort(), await h.freePort()];
    const ua = `http://127.0.0.1:${pa}`;
    const ub = `http://127.0.0.1:${pb}`;
    const cfgA = config({ status: { listen: `127.0.0.1:${pa}` }, pid: `${ctx.dir}/a.pid` }, 'a.yaml');
    const cfgB = config({ status: { listen: `127.0.0.1:${pb}` }, pid: `${ctx.dir}/b.pid` }, 'b.yaml');
    const a = h.startDaemon(cfgA);
    await a.waitReady(2, 30000);
    const fa = Number((await a.waitForLog(/spawned rollup folder (\d+)/))[1]);
    await a.waitForLog(/folder: holding the lease/);
    const b = h.startDaemon(cfgB);
    await b.waitReady(2, 30000);
    await b.waitForLog(/folder: waiting: the lease is held by/);
    await h.waitFor(async () => (await metric(ua, 'reporterd_rollup_lease_held')) === 1
        && (await metric(ub, 'reporterd_rollup_lease_held')) === 0, 10000, 'A holds the lease, B does not');
    /* pause A's folder in the middle of its backlog */
    await h.waitFor(async () => (await metric(ua, 'reporterd_rollup_batches_total')) >= 3, 20000,
        'A folded a few batches');
    process.kill(fa, 'SIGSTOP');
    try {
        await b.waitForLog(/folder: holding the lease/, 20000);
        await h.waitFor(async () => (await metric(ub, 'reporterd_rollup_batches_total')) >= 3, 20000,
            'B folds after taking the lease over');
        await check(phones, 'while A is paused');
    } finally {
        process.kill(fa, 'SIGCONT');
    }
    await waitFolded(cfgA, 120000);
    await check(phones, 'after A woke up');
    const v = await ctl(['--verify'], cfgA);
    assert.equal(v.code, 0, `rollup --verify: ${v.stdout}${v.stderr}`);
    await a.shutdown('SIGQUIT');
    await b.shutdown('SIGQUIT');
});
