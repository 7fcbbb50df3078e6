/*
 * field.test.js -- rollup mode under what real deployments, operators and
 * odd data do: a dropped rollup collection, a dropped batches collection
 * and a reload to another rollup.collection while a folder is in the
 * middle of a backlog, phones stored as any numeric type, `rb` fields
 * written by somebody else, a phone whose sums overflow 64 bits, and a
 * --rebuild that meets a phone it cannot recompute.  Every report is
 * compared exactly with the brute-force oracle (harness.expectedReport)
 * over the records as the test wrote them; a figure is exact or the
 * result is an Error that says why, never a wrong number.
 *
 * Each test has a records collection of its own.  Runs unchanged against
 * a real MongoDB (REPORTERD_TEST_MONGODB_URI); the --rebuild test needs
 * the failCommand fail point (enableTestCommands) there and skips, saying
 * so, without it.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PRICE = 10;
const BASE = Date.UTC(2023, 4, 9, 2, 27, 3, 49);

let ctx;
let client;
let collector;
let seq = 1;

function record(rnd, phone) {
    const st = BASE + Math.floor(rnd() * 30 * 86400 * 1000);
    const ms = rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121);
    return { phone, start_date: st, end_date: st + ms };
}

/* One records collection of a test, with everything inserted into it. */
class Calls {
    constructor(tag) {
        this.name = `${ctx.names.collection}_${tag}`;
        this.db = client.db(ctx.names.database);
        this.coll = this.db.collection(this.name);
        this.records = [];
    }

    async insert(docs) {
        const { Long } = h.lazyRequire('mongodb');
        const stored = docs.map((d) => Object.assign({}, d, typeof d.phone === 'number' && d.phone > 2147483647
            ? { phone: Long.fromNumber(d.phone) } : {}));
        if (stored.length) await this.coll.insertMany(stored, { ordered: true });
        this.records.push(...docs);
    }

    config(extra = {}, fileName = undefined) {
        return ctx.writeConfig(h.deepMerge({
            worker_processes: 2,
            report: { mode: 'rollup' },
            rollup: { batch: 40, interval: '50ms', lease: '2s' },
            mongodb: { collection: this.name },
            pid: `${ctx.dir}/${this.name}.pid`,      /* a test that fails leaves no lock behind */
        }, extra), fileName ? { fileName } : {});
    }
}

async function ctl(cfg, args) {
    return h.run(h.env.reporterctl, ['-c', cfg, 'rollup', ...args], { timeoutMs: 120000 });
}

async function unfolded(cfg) {
    const r = await ctl(cfg, ['--status']);
    assert.equal(r.code, 0, `rollup --status: ${r.stderr}`);
    const m = /unfolded records: (\d+)/.exec(r.stdout);
    assert.ok(m, `rollup --status prints the unfolded records: ${r.stdout}`);
    return Number(m[1]);
}

async function waitFolded(cfg, timeoutMs = 90000) {
    await h.waitFor(async () => (await unfolded(cfg)) === 0, timeoutMs, 'every record folded', 100);
}

async function verify(cfg, label) {
    const v = await ctl(cfg, ['--verify']);
    assert.equal(v.code, 0, `${label}: rollup --verify: ${v.stdout}${v.stderr}`);
}

/* Send one task and wait for its result message. */
async function ask(phones) {
    const id = `f${seq++}`;
    if (!collector) collector = await ctx.results();
    await ctx.publishTask(JSON.stringify({ correlation_id: id, phones }));
    return h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
        30000, `the result of task ${id}`, 10);
}

/* One report compared with the oracle over calls.records (no writer runs). */
async function check(calls, phones, label) {
    const m = await ask(phones);
    assert.equal(m.body.status, 'Complete', `${label}: ${m.raw.slice(0, 400)}`);
    h.assertReport(m.body.data, h.expectedReport(calls.records, phones, PRICE), label);
}

/* Start a daemon that is stopped when the test ends, passed or not: a
 * failed test must leave no daemon answering the next test's tasks. */
async function start(t, cfg) {
    const d = h.startDaemon(cfg);
    t.after(async () => { if (d.running()) await d.shutdown('SIGTERM'); });
    await d.waitReady(2, 30000);
    return d;
}

async function metric(url, name) {
    return (await h.readMetrics(url)).get(name);
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdfield' });
    client = await h.mongoClient(ctx.mongo.uri);
});

after(async () => {
    await h.cleanup();
});

/* A history of `per` records for each of `phones`, in random order. */
function history(rnd, phones, per) {
    const docs = [];
    for (const p of phones) for (let k = 0; k < per; k++) docs.push(record(rnd, p));
    for (let i = docs.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [docs[i], docs[j]] = [docs[j], docs[i]];
    }
    return docs;
}

const PHONES = [1001, 1002, 1003, 1004, 79160000007, 79160000014];

test(`the rollup collection dropped alone: every phone's history is still counted (seed ${SEED})`, async (t) => {
    const calls = new Calls('droprollup');
    const rnd = h.prng(SEED);
    await calls.insert(history(rnd, PHONES, 25));
    const cfg = calls.config();
    const d = await start(t, cfg);
    await waitFolded(cfg);
    await check(calls, PHONES, 'folded');
    await calls.db.collection(`${calls.name}_rollup`).drop();
    await check(calls, PHONES, 'right after the drop');
    /* the next batches apply to phones whose rollups are gone */
    await calls.insert(history(rnd, PHONES, 3));
    await waitFolded(cfg);
    await check(calls, PHONES, 'new records folded onto the lost rollups');
    await verify(cfg, 'after the drop');
    await d.shutdown('SIGQUIT');
});

/* Restore a collection as mongorestore --drop does: emptied, then every
 * document of the backup inserted, one that a running daemon wrote again
 * in between reported as a duplicate key and skipped. */
async function restore(coll, docs) {
    await coll.deleteMany({});
    return restoreInto(coll, docs);
}

async function restoreInto(coll, docs) {
    if (!docs.length) return 0;
    try {
        await coll.insertMany(docs, { ordered: false });
        return 0;
    } catch (e) {
        const errs = e.writeErrors ? [].concat(e.writeErrors) : [];
        if (!errs.length || errs.some((w) => (w.code ?? w.err?.code) !== 11000)) throw e;
        return errs.length;
    }
}

test('the rollup collection, then the batches collection, restored from older backups', async (t) => {
    const calls = new Calls('restore');
    const rnd = h.prng(SEED + 7);
    await calls.insert(history(rnd, PHONES, 20));
    const port = await h.freePort();
    const url = `http://127.0.0.1:${port}`;
    const cfg = calls.config({ status: { listen: `127.0.0.1:${port}` } });
    let d = await start(t, cfg);
    await waitFolded(cfg);
    const rollups = calls.db.collection(`${calls.name}_rollup`);
    const batches = calls.db.collection(`${calls.name}_rollup_batches`);
    const oldRollups = await rollups.find({}).toArray();
    const oldBatches = await batches.find({ _id: { $ne: 'lease' } }).toArray();
    /* more batches of every phone after the backup */
    for (let i = 0; i < 3; i++) {
        await calls.insert(history(rnd, PHONES, 4));
        await waitFolded(cfg);
    }
    await restore(rollups, oldRollups);
    await check(calls, PHONES, 'the rollups restored: at once');
    await calls.insert(history(rnd, PHONES, 3));
    await waitFolded(cfg);
    await check(calls, PHONES, 'the rollups restored: the next batch folded onto them');
    await verify(cfg, 'the rollups restored');

    /* The batches restored while the service is stopped: the folder that
     * starts finds marks above every batch the backup knows. */
    await d.shutdown('SIGQUIT');
    await restore(batches, oldBatches);
    d = await start(t, cfg);
    await check(calls, PHONES, 'the batches restored: at once');
    await calls.insert(history(rnd, PHONES, 3));
    await d.waitForLog(/folder: a new epoch/, 30000);
    assert.equal(await metric(url, 'reporterd_rollup_new_epochs_total'), 1, 'the new epoch is counted on /metrics');
    await waitFolded(cfg);
    await check(calls, PHONES, 'the batches restored: folded in a new epoch');
    await verify(cfg, 'the batches restored');

    /* Restored again while the service runs: the folder finds the
     * collection empty, makes an epoch and claims a batch before the
     * backup's documents arrive; those it wrote are skipped as duplicates. */
    await batches.deleteMany({});
    await h.waitFor(async () => {
        const epoch = await batches.findOne({ _id: 'epoch' });
        return epoch && (await batches.countDocuments({ _id: { $gte: 1 }, e: epoch.e })) > 0;
    }, 30000, 'the folder to make an epoch and claim a batch of it in the emptied batches collection', 10);
    const skipped = await restoreInto(batches, oldBatches);
    assert.ok(skipped >= 1, `the epoch document is a duplicate (${skipped} skipped)`);
    await calls.insert(history(rnd, PHONES, 3));
    await check(calls, PHONES, 'the batches restored while running: at once');
    await d.waitForLogCount(/folder: a new epoch/, 2, 30000);
    await waitFolded(cfg);
    await check(calls, PHONES, 'the batches restored while running: folded');
    assert.equal(await metric(url, 'reporterd_rollup_new_epochs_total'), 2, 'both new epochs are counted on /metrics');
    await verify(cfg, 'the batches restored while running');
    await d.shutdown('SIGQUIT');
});

test('the batches collection dropped while the folder is in the middle of a backlog', async (t) => {
    const calls = new Calls('dropbatches');
    const rnd = h.prng(SEED + 1);
    await calls.insert(history(rnd, PHONES, 400));
    const port = await h.freePort();
    const url = `http://127.0.0.1:${port}`;
    const cfg = calls.config({ status: { listen: `127.0.0.1:${port}` } });
    const d = await start(t, cfg);
    const batches = calls.db.collection(`${calls.name}_rollup_batches`);
    for (let round = 0; round < 3; round++) {
        const at = (await metric(url, 'reporterd_rollup_batches_total')) || 0;
        await h.waitFor(async () => (await metric(url, 'reporterd_rollup_batches_total')) >= at + 4, 30000,
            `round ${round}: the folder folded a few batches`);
        await batches.drop();
        for (let i = 0; i < 3; i++) await check(calls, PHONES.slice(i, i + 4), `round ${round}: after the drop #${i}`);
    }
    await waitFolded(cfg);
    await check(calls, PHONES, 'folded again');
    await verify(cfg, 'after the drops');
    await d.shutdown('SIGQUIT');
});

test('a reload to another rollup.collection in the middle of a backlog, and back', async (t) => {
    const calls = new Calls('reload');
    const rnd = h.prng(SEED + 2);
    await calls.insert(history(rnd, PHONES, 400));
    const port = await h.freePort();
    const url = `http://127.0.0.1:${port}`;
    const extra = (rollup) => ({ status: { listen: `127.0.0.1:${port}` },
        rollup: { batch: 10, collection: `${calls.name}_${rollup}` } });
    const cfg = calls.config(extra('a'));
    const d = await start(t, cfg);
    let generation = 1;
    for (const next of ['b', 'a', 'b']) {
        const at = (await metric(url, 'reporterd_rollup_batches_total')) || 0;
        await h.waitFor(async () => (await metric(url, 'reporterd_rollup_batches_total')) >= at + 3, 30000,
            `the folder folded a few batches before the reload to ${next}`);
        calls.config(extra(next));
        d.signal('SIGHUP');
        generation++;
        await d.waitForLog(new RegExp(`generation ${generation}: all 2 workers consuming`), 30000);
        for (let i = 0; i < 3; i++) await check(calls, PHONES.slice(i, i + 4), `after the reload to ${next} #${i}`);
        await calls.insert(history(rnd, PHONES, 2));
    }
    await waitFolded(cfg);
    await check(calls, PHONES, 'folded');
    await verify(cfg, 'after the reloads');
    await d.shutdown('SIGQUIT');
});

test('phones stored as int32, int64, double and Decimal128 are one phone; "8", 8.5, [8, 9] are none', async (t) => {
    const { Int32, Long, Double, Decimal128 } = h.lazyRequire('mongodb');
    const calls = new Calls('numeric');
    const rnd = h.prng(SEED + 3);
    const kinds = [
        (p) => new Int32(p), (p) => Long.fromNumber(p), (p) => new Double(p),
        (p) => Decimal128.fromString(String(p)), (p) => Decimal128.fromString(`${p}.00`),
        (p) => Decimal128.fromString(`${p * 10}E-1`),
    ];
    const others = [() => '8', () => Decimal128.fromString('8.5'), () => [8, 9], () => new Double(8.5), () => null];
    const docs = [];
    for (let i = 0; i < 120; i++) {
        const r = record(rnd, 0);
        const p = [8, 9, 79160000007][i % 3];
        r.phone = i % 10 === 9 ? others[(i / 10 | 0) % others.length]() : kinds[i % kinds.length](p);
        if (r.phone === null) delete r.phone;
        docs.push(r);
    }
    await calls.insert(docs);
    const ps = [8, 9, 79160000007];
    const live = calls.config({ report: { mode: 'live' } }, 'live.yaml');
    const dl = await start(t, live);
    await check(calls, ps, 'live mode');
    await dl.shutdown('SIGQUIT');

    const cfg = calls.config();
    const d = await start(t, cfg);
    await check(calls, ps, 'rollup mode, while folding');
    await waitFolded(cfg);
    await check(calls, ps, 'rollup mode, folded');
    await calls.insert(docs.slice(0, 30).map((x) => Object.assign({}, x)).map((x) => { delete x._id; return x; }));
    await check(calls, ps, 'rollup mode, more records of every kind');
    await waitFolded(cfg);
    await check(calls, ps, 'rollup mode, folded again');
    await verify(cfg, 'numeric phones');
    await d.shutdown('SIGQUIT');
});

/*
 * Every pairing of start_date and end_date over values of every BSON type
 * a writer may leave there: numbers of each type at the 2^52 bounds and
 * past them, int32 extremes whose difference needs 64 bits, fractional,
 * NaN and infinite doubles, Decimal128 (not valid, even when integral),
 * dates at and past 2^52 ms, and strings, null, booleans, arrays, objects,
 * ObjectIds and a missing field.  The pipeline decides validity by
 * MongoDB's cross-type ordering; the oracle by the written rule.
 */
test('start_date and end_date of every type, paired every way: both modes equal the oracle', async (t) => {
    const { Int32, Long, Double, Decimal128, ObjectId } = h.lazyRequire('mongodb');
    const B = 2 ** 52;
    const values = [
        new Int32(0), new Int32(12000), new Int32(-5000), new Int32(2147483647), new Int32(-2147483648),
        Long.fromNumber(9000), Long.fromNumber(1e12), Long.fromNumber(B), Long.fromNumber(-B),
        Long.fromNumber(B - 20000), Long.fromString('4503599627370497'), Long.fromString('-4503599627370497'),
        new Double(1000), new Double(1000.5), new Double(-0), new Double(NaN), new Double(Infinity),
        new Double(-Infinity), new Double(B), new Double(-B + 3000), new Double(1e12 + 30000), new Double(-B - 2),
        Decimal128.fromString('1000'), Decimal128.fromString('40000'), Decimal128.fromString('1000.5'),
        new Date(BASE), new Date(BASE + 12000), new Date(BASE + 40000), new Date(-B), new Date(-B + 16000),
        new Date(B), new Date(B - 35000), new Date(B + 1),
        '1000', null, true, [1000], { a: 1000 }, new ObjectId('64a000000000000000000000'), undefined,
    ];
    /* roughly, to leave out valid pairs whose figures pass what the
     * oracle's JSON comparison carries exactly (2^46 cents) */
    const approx = (v) => (v instanceof Date ? v.getTime() : Number(v && v.valueOf ? v.valueOf() : v));
    const docs = [];
    let valid = 0;
    for (const s of values) {
        for (const e of values) {
            const r = { phone: 3000 + (docs.length % 97) };
            if (s !== undefined) r.start_date = s;
            if (e !== undefined) r.end_date = e;
            const ok = h.expectedInvalid([r], [r.phone]) === 0;
            if (ok && approx(e) - approx(s) > 2e12) continue;
            valid += ok;
            docs.push(r);
        }
    }
    const calls = new Calls('types');
    await calls.insert(docs);
    const ps = Array.from({ length: 97 }, (_, i) => 3000 + i);
    assert.ok(valid > 50 && valid < docs.length - 1000, `the oracle finds some valid pairs and many invalid (${valid} of ${docs.length})`);
    const dl = await start(t, calls.config({ report: { mode: 'live' } }, 'live.yaml'));
    for (let i = 0; i < ps.length; i += 25) await check(calls, ps.slice(i, i + 25), `live mode, phones ${i}..`);
    await dl.shutdown('SIGQUIT');
    const cfg = calls.config();
    const d = await start(t, cfg);
    await waitFolded(cfg);
    for (let i = 0; i < ps.length; i += 25) await check(calls, ps.slice(i, i + 25), `rollup mode, phones ${i}..`);
    await verify(cfg, 'every type');
    await d.shutdown('SIGQUIT');
});

test('records that arrive with an rb field (0, -1, 1, "x", another epoch\'s mark) are counted and folded', async (t) => {
    const { Long } = h.lazyRequire('mongodb');
    const calls = new Calls('foreign');
    const rnd = h.prng(SEED + 4);
    const cfg = calls.config();
    const d = await start(t, cfg);
    await calls.insert(history(rnd, PHONES, 10));
    await waitFolded(cfg);
    const marks = [0, -1, 1, 2, 'x', Long.fromNumber(5), null];
    const foreign = history(rnd, PHONES, 7).map((r, i) => Object.assign(r, i % 8 === 7
        ? { rb_0badc0de: Long.fromNumber(1) } : { rb: marks[i % marks.length] }));
    await calls.insert(foreign);
    await check(calls, PHONES, 'foreign marks, at once');
    await waitFolded(cfg);
    await check(calls, PHONES, 'foreign marks, folded');
    await verify(cfg, 'foreign marks');
    await d.shutdown('SIGQUIT');
});

test('a phone whose sums overflow 64 bits answers Error in both modes; folding goes on', async (t) => {
    const { Long } = h.lazyRequire('mongodb');
    const calls = new Calls('overflow');
    const rnd = h.prng(SEED + 5);
    const BIG = 2 ** 52;          /* the longest valid duration: 2049 of them overflow int64 */
    const big = [];
    for (let i = 0; i < 2100; i++) big.push({ phone: 77, start_date: Long.fromNumber(0), end_date: Long.fromNumber(BIG) });
    const normal = history(rnd, [78, 79], 30);
    await calls.insert(big.concat(normal));
    const port = await h.freePort();
    const url = `http://127.0.0.1:${port}`;
    for (const mode of ['live', 'rollup']) {
        const cfg = calls.config({ report: { mode }, rollup: { batch: 500 }, status: { listen: `127.0.0.1:${port}` } },
            `${mode}.yaml`);
        const d = await start(t, cfg);
        if (mode === 'rollup') await waitFolded(cfg);
        const m = await ask([77, 78]);
        assert.equal(m.body.status, 'Error', `${mode}: the overflowing phone: ${m.raw.slice(0, 400)}`);
        assert.match(m.body.error, /overflow/, `${mode}: the error says the sums overflow: ${m.body.error}`);
        if (mode === 'rollup') {
            assert.ok((await metric(url, 'reporterd_rollup_overflowed_phones_total')) >= 1,
                'the overflowed phone is counted on /metrics');
        }
        await check(calls, [78, 79], `${mode}: the other phones`);
        if (mode === 'rollup') {
            await calls.insert(history(rnd, [78, 79], 5));
            await waitFolded(cfg);
            await check(calls, [78, 79], 'rollup: folding went on');
        }
        await d.shutdown('SIGQUIT');
    }
});

test('--rebuild goes on past a phone it cannot recompute and names it', async (t) => {
    const { Long } = h.lazyRequire('mongodb');
    const calls = new Calls('rebuild');
    const rnd = h.prng(SEED + 6);
    await calls.insert(history(rnd, PHONES, 12));
    const cfg = calls.config();
    const fold = await ctl(cfg, ['--fold']);
    assert.equal(fold.code, 0, `rollup --fold: ${fold.stdout}${fold.stderr}`);
    const admin = client.db('admin');
    try {
        await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
    } catch (e) {
        t.skip(`the server has no failCommand fail point (enableTestCommands): ${e.message}`);
        return;
    }
    /* every rollup off by one, so that each rebuilt one shows */
    const rollups = calls.db.collection(`${calls.name}_rollup`);
    const u = await rollups.updateMany({}, { $inc: { cnt: Long.fromNumber(1), cnt_30: Long.fromNumber(1) } });
    assert.equal(u.modifiedCount, PHONES.length);
    await admin.command({ configureFailPoint: 'failCommand', mode: { times: 1 },
        data: { failCommands: ['aggregate'], errorCode: 2, errmsg: 'injected by field.test.js' } });
    let r;
    try {
        r = await ctl(cfg, ['--rebuild']);
    } finally {
        await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
    }
    assert.notEqual(r.code, 0, `--rebuild with a phone skipped exits non-zero: ${r.stdout}${r.stderr}`);
    const skipped = /phone (\d+) skipped/.exec(r.stderr);
    assert.ok(skipped, `--rebuild names the phone it skipped: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`rebuilt ${PHONES.length - 1} phones, skipped 1`));
    const v = await ctl(cfg, ['--verify']);
    assert.equal(v.code, 4, `--verify: only the skipped phone differs: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /verified 6 phones: 1 differ/);
    assert.match(v.stdout, new RegExp(`phone ${skipped[1]}: the rollup and its tail differ`));
    const r2 = await ctl(cfg, ['--rebuild']);
    assert.equal(r2.code, 0, `a second --rebuild: ${r2.stdout}${r2.stderr}`);
    await verify(cfg, 'after the second --rebuild');
});
