/*
 * field-random.test.js -- rollup mode under a random mix of everything a
 * deployment does to it, each report compared with the brute-force oracle
 * right after the step before it: writers adding records (phones of every
 * numeric type, things that are no phone, records arriving with `rb`
 * fields of their own), the folder killed with SIGKILL, the rollup and
 * the batches collections dropped, reloads that move rollup.collection
 * back and forth, records deleted, corrected, moved to another phone or
 * replaced after they were folded, and -- on a replica set read with
 * readPreference=secondaryPreferred, its secondary lagging -- primary
 * step-downs.  The folder runs all the while, so every report races it.
 * After a change to folded records, and after a reload (which may bring
 * back a rollup collection no folder followed while records changed), the
 * reports wait for the documented delay: two ends of the folder's
 * verification cycle (docs/design.md).
 * At the end everything is folded and --verify finds nothing.
 *
 * REPORTERD_FIELD_REPORTS (default 2000) reports on a standalone server,
 * REPORTERD_FIELD_REPORTS_RS (default 500) on the replica set;
 * REPORTERD_TEST_SEED replays a run.  Runs unchanged against a real
 * MongoDB (REPORTERD_TEST_MONGODB_URI): the replica-set test uses it when
 * it names a replica set (step-downs with replSetStepDown) and skips,
 * saying so, when it does not.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const REPORTS = Number(process.env.REPORTERD_FIELD_REPORTS || 2000);
const REPORTS_RS = Number(process.env.REPORTERD_FIELD_REPORTS_RS || 500);
const PRICE = 10;
const BASE = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
const PHONES = [7, 8, 9, 1004, 2147483647, 2147483648, 79160000007, 79160000014];

let ctx;

before(async () => {
    ctx = await h.setup({ prefix: 'rdrand' });
});

after(async () => {
    await h.cleanup();
});

test(`random field steps: ${REPORTS} reports equal the oracle (seed ${SEED})`, async () => {
    await randomSteps(ctx, { reports: REPORTS, seed: SEED });
});

test(`random field steps on a replica set with step-downs: ${REPORTS_RS} reports equal the oracle (seed ${SEED + 1})`,
    async (t) => {
        const rs = await h.setup({ prefix: 'rdrandrs', mongo: { replset: { members: 2, lagMs: 30 } } });
        if (!rs.mongo.replset) {
            t.skip(`REPORTERD_TEST_MONGODB_URI is not a replica set: ${rs.mongo.notReplset || 'no setName'}`);
            return;
        }
        await randomSteps(rs, { reports: REPORTS_RS, seed: SEED + 1, replset: true });
    });

/* The steps, on ctx (h.setup's); opts: reports, seed, replset. */
async function randomSteps(ctx, opts) {
    const { Int32, Long, Double, Decimal128 } = h.lazyRequire('mongodb');
    const REPORTS = opts.reports;
    const SEED = opts.seed;
    const rnd = h.prng(SEED);
    const wc = opts.replset ? { writeConcern: { w: 'majority' } } : {};
    const pick = (a) => a[Math.floor(rnd() * a.length)];
    const client = await h.mongoClient(ctx.mongo.uri);
    const db = client.db(ctx.names.database);
    const coll = db.collection(ctx.names.collection);
    const records = [];       /* as the oracle sees them */

    /* A phone as some writer stores it: any numeric type it equals. */
    const stored = (p) => pick([(x) => (x > 2147483647 ? Long.fromNumber(x) : new Int32(x)),
        (x) => Long.fromNumber(x), (x) => new Double(x), (x) => Decimal128.fromString(String(x)),
        (x) => Decimal128.fromString(`${x}.00`)])(p);
    const noPhone = () => pick([() => '8', () => Decimal128.fromString('8.5'), () => [8, 9],
        () => new Double(7.25), () => undefined])();
    const foreign = () => pick([{ rb: 0 }, { rb: -1 }, { rb: 1 }, { rb: 'x' }, { rb: Long.fromNumber(3) },
        { rb_0badc0de: Long.fromNumber(1) }, { rb_12345678: 'y' }]);

    async function write(n) {
        const docs = [];
        const oracle = [];
        for (let i = 0; i < n; i++) {
            const st = BASE + Math.floor(rnd() * 30 * 86400 * 1000);
            const ms = rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121);
            const p = pick(PHONES);
            const phone = rnd() < 0.08 ? noPhone() : stored(p);
            const doc = { start_date: st, end_date: st + ms };
            if (phone !== undefined) doc.phone = phone;
            if (rnd() < 0.1) Object.assign(doc, foreign());
            docs.push(doc);
            oracle.push(Object.assign({}, doc, phone === undefined ? {} : { phone }));
        }
        await coll.insertMany(docs, Object.assign({ ordered: true }, wc));
        docs.forEach((d, i) => { oracle[i]._id = d._id; });
        records.push(...oracle);
    }

    let collector;
    let seq = 1;
    let reports = 0;
    async function report(label) {
        const ps = PHONES.filter(() => rnd() < 0.5);
        if (ps.length === 0) ps.push(pick(PHONES));
        const id = `r${seq++}`;
        if (!collector) collector = await ctx.results();
        await ctx.publishTask(JSON.stringify({ correlation_id: id, phones: ps }));
        const m = await h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
            30000, `the result of ${label} (${id})`, 5);
        collector.messages.splice(collector.messages.indexOf(m), 1);
        assert.equal(m.body.status, 'Complete', `${label} (${id}, seed ${SEED}): ${m.raw.slice(0, 400)}`);
        h.assertReport(m.body.data, h.expectedReport(records, ps, PRICE),
            `${label} (${id}, seed ${SEED})`);
        reports++;
    }

    const port = await h.freePort();
    const cfgFor = (rollup) => ctx.writeConfig({
        worker_processes: 2,
        report: { mode: 'rollup' },
        rollup: { batch: 100, interval: '20ms', lease: '2s', collection: `${ctx.names.collection}_${rollup}` },
        status: { listen: `127.0.0.1:${port}` },
        pid: `${ctx.dir}/random.pid`,
        mongodb: opts.replset ? { uri: h.uriWith(ctx.mongo.uri, { readPreference: 'secondaryPreferred' }) } : {},
    });
    /* The documented delay after a change to folded records: a
     * verification cycle that started after it has ended.  Read from the
     * cycle's own record in the batches collection ({_id: "verify",
     * started}): a cycle started at or after t0, then a later start (that
     * cycle ended).  Counting cycle ends on /metrics is not enough: after a
     * reload the new folder may end a cycle it resumed from long before,
     * and the old folder may end one of its own collection. */
    async function followed() {
        const t0 = Date.now();
        const batches = () => db.collection(`${ctx.names.collection}_${rollupName}_batches`);
        const started = async () => {
            const v = await batches().findOne({ _id: 'verify' }).catch(() => null);
            return v && v.started instanceof Date ? v.started.getTime() : 0;
        };
        let first = 0;
        await h.waitFor(async () => (first = await started()) >= t0, 60000,
            'a verification cycle that started after the change', 20);
        await h.waitFor(async () => (await started()) > first, 60000,
            'that verification cycle to end', 20);
    }
    /* 1-3 folded or unfolded records of a requested phone: deleted,
     * corrected (end_date), moved to another phone, or replaced */
    async function change() {
        const mine = records.filter((r) => r.phone !== undefined && PHONES.includes(Number(r.phone.toString())));
        if (mine.length < 10) return false;
        const victims = [];
        for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
            const v = pick(mine);
            if (!victims.includes(v)) victims.push(v);
        }
        const ids = victims.map((v) => v._id);
        const kind = pick(['delete', 'update', 'move', 'replace']);
        if (kind === 'delete') {
            const r = await coll.deleteMany({ _id: { $in: ids } }, wc);
            assert.equal(r.deletedCount, victims.length);
            for (const v of victims) records.splice(records.indexOf(v), 1);
        } else if (kind === 'update') {
            for (const v of victims) {
                const end = v.start_date + (rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121));
                await coll.updateOne({ _id: v._id }, { $set: { end_date: end } }, wc);
                v.end_date = end;
            }
        } else if (kind === 'move') {
            const phone = stored(pick(PHONES));
            await coll.updateMany({ _id: { $in: ids } }, { $set: { phone } }, wc);
            for (const v of victims) v.phone = phone;
        } else {
            for (const v of victims) {
                const st = BASE + Math.floor(rnd() * 30 * 86400 * 1000);
                const doc = { phone: stored(pick(PHONES)), start_date: st, end_date: st + 1000 * Math.floor(rnd() * 121) };
                await coll.replaceOne({ _id: v._id }, doc, wc);
                records[records.indexOf(v)] = Object.assign({ _id: v._id }, doc);
            }
        }
        counts[kind]++;
        await followed();
        return true;
    }
    let rollupName = 'r1';
    const cfg = cfgFor(rollupName);
    await write(200);
    const d = h.startDaemon(cfg);
    await d.waitReady(2, 30000);
    let generation = 1;
    const counts = { write: 0, kill: 0, dropRollups: 0, dropBatches: 0, reload: 0, stepDown: 0, change: 0,
        delete: 0, update: 0, move: 0, replace: 0 };
    let lastStepDown = 0;

    const folderPid = () => {
        const all = [...d.log.matchAll(/spawned rollup folder (\d+)/g)];
        return all.length ? Number(all[all.length - 1][1]) : 0;
    };
    /* Kill a folder only once it has folded (else the master throttles it
     * as a crash loop, and the test would only wait), only one the master
     * has said it spawned (pid 0 would be this test's own process group),
     * and never one killed already (its successor is not spawned yet). */
    const killed = new Set();
    const killable = () => folderPid() > 0 && !killed.has(folderPid())
        && (d.log.match(/folder: folded batch/g) || []).length
        >= (d.log.match(/spawned rollup folder/g) || []).length;

    const actions = [
        ['write', 30, async () => { await write(1 + Math.floor(rnd() * 8)); }],
        ['change', 4, change],
        ['kill', 6, async () => {
            if (!killable()) return false;
            const pid = folderPid();
            killed.add(pid);
            process.kill(pid, 'SIGKILL');
            return true;
        }],
        ['dropRollups', 3, async () => {
            await db.collection(`${ctx.names.collection}_${rollupName}`).drop(wc).catch(() => {});
        }],
        ['dropBatches', 3, async () => {
            await db.collection(`${ctx.names.collection}_${rollupName}_batches`).drop(wc).catch(() => {});
        }],
        ['stepDown', opts.replset ? 3 : 0, async () => {
            /* the member that stepped down is not electable for stepDownSecs */
            if (Date.now() - lastStepDown < 2500) return false;
            await ctx.mongo.stepDown({ stepDownSecs: 1, secondaryCatchUpPeriodSecs: 10 });
            lastStepDown = Date.now();
            return true;
        }],
        ['reload', 2, async () => {
            rollupName = rollupName === 'r1' ? 'r2' : 'r1';
            cfgFor(rollupName);
            d.signal('SIGHUP');
            generation++;
            await d.waitForLog(new RegExp(`generation ${generation}: all 2 workers consuming`), 30000);
            await followed();
        }],
    ];
    const weight = actions.reduce((a, x) => a + x[1], 0);
    let step = 0;
    while (reports < REPORTS) {
        let r = rnd() * weight;
        const [name, , act] = actions.find((x) => (r -= x[1]) < 0) || actions[0];
        if ((await act()) !== false) counts[name]++;
        step++;
        const n = 1 + Math.floor(rnd() * 6);
        for (let i = 0; i < n && reports < REPORTS; i++) await report(`step ${step} (${name}) report ${i}`);
    }
    await h.waitFor(async () => {
        const s = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--status'], { timeoutMs: 60000 });
        return /unfolded records: 0\b/.test(s.stdout);
    }, 120000, 'every record folded at the end', 200);
    await report('at the end, folded');
    const v = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--verify'], { timeoutMs: 120000 });
    assert.equal(v.code, 0, `rollup --verify at the end: ${v.stdout}${v.stderr}`);
    console.log(`# ${reports} reports, ${records.length} records, steps: ${JSON.stringify(counts)}`);
    await d.shutdown('SIGQUIT');
}
