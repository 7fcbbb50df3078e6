/*
 * rollup-kill.test.js -- the rollup folder killed with SIGKILL right after
 * each step of its cycle in turn (claim, mark, apply, lease renewal; the
 * test-hook build's REPORTERD_TEST_FOLDER_KILL), respawned by the master,
 * and every rollup then compared with a brute-force count: no batch lost,
 * none applied twice, whichever step the kill hit.  Deterministic: the
 * hook kills at the step, not at a moment a timer picked, so each guard of
 * the cycle is tested every run.  The folder's own verification is off
 * (rollup.verify_rate: 0), so it cannot repair a double count first.
 * Then the folder is stalled (SIGSTOP, the same hook's "stop:<step>")
 * right after claim, mark and apply in turn while `reporterctl rollup
 * --fold` folds the batch it holds, and goes on (SIGCONT): what it does
 * next must not count that batch again.  The apply guard (a rollup whose
 * last batch is n takes no second batch n) fails this test when weakened
 * to last <= n: checked by applying that change, 3 runs of 3 red.
 * Last, a rollup restored one batch behind (its phone's records in
 * consecutive batches) must not take the next batch on top of what it
 * misses: the guard's lower end (last >= the phone's previous mark).
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');
const { expectedSums } = require('../fault/lib.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PHONES = [4401, 4402, 4403, 4404, 4405];
let ctx;

before(async () => {
    ctx = await h.setup({ prefix: 'rdkill' });
});

after(() => h.cleanup());

test('the folder killed right after claim, mark, apply and lease renewal in turn, then stalled after claim, mark and apply while rollup --fold folds its batch: every rollup equals a brute-force count after each', { timeout: 300000 }, async (t) => {
    if (!h.env.testhooks || !fs.existsSync(h.env.testhooks)) return t.skip('needs the test-hook build (REPORTERD_TESTHOOKS)');
    const rnd = h.prng(SEED);
    const records = [];
    let at = 0;
    const more = async (n) => {
        const docs = [];
        for (let i = 0; i < n; i++) {
            const st = 1684900000000 + 1000 * (at++);
            docs.push({ phone: PHONES[Math.floor(rnd() * PHONES.length)], start_date: st,
                end_date: st + (rnd() < 0.2 ? Math.floor(rnd() * 120000) : 1000 * Math.floor(rnd() * 121)) });
        }
        await ctx.loadRecords(docs);
        records.push(...docs);
    };
    await more(60);
    const killFile = path.join(ctx.dir, 'folder-kill');
    const cfg = ctx.writeConfig({
        worker_processes: 1,
        report: { mode: 'rollup' },
        rollup: { batch: 7, interval: '20ms', lease: '1s', verify_rate: 0 },
    });
    const d = h.startDaemon(cfg, { binary: h.env.testhooks, env: { REPORTERD_TEST_FOLDER_KILL: killFile } });
    await d.waitReady(1, 30000);
    const folded = () => (d.log.match(/folder: folded batch/g) || []).length;
    const collector = await ctx.results();
    const db = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database);
    const rollupColl = `${ctx.names.collection}_rollup`;
    let seq = 0;
    async function everyPhoneExact(label) {
        await h.waitFor(async () => {
            const s = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--status'], { timeoutMs: 30000 });
            return /unfolded records: 0\b/.test(s.stdout);
        }, 60000, `every record folded (${label})`, 100);
        const id = `k${++seq}`;
        await ctx.publishTask({ correlation_id: id, phones: PHONES });
        const m = await h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
            30000, `the report after ${label}`, 10);
        assert.equal(m.body.status, 'Complete', m.raw.slice(0, 300));
        h.assertReport(m.body.data, h.expectedReport(records, PHONES), `the report after ${label} (seed ${SEED})`);
        /* every rollup document of the epoch against a brute-force count */
        const field = await h.rollupField(db, rollupColl);
        const rollups = (await db.collection(rollupColl).find({}).toArray()).filter((x) => x.e === field.slice(3));
        const bad = [];
        for (const [phone, w] of expectedSums(records)) {
            const r = rollups.find((x) => BigInt(x._id.toString()) === phone);
            for (const k of Object.keys(w)) {
                if (!r || BigInt(r[k].toString()) !== w[k]) bad.push(`phone ${phone}: ${k} ${r ? r[k] : 'missing'}, brute force ${w[k]}`);
            }
        }
        assert.deepEqual(bad, [], `every rollup after ${label} equals a brute-force count (seed ${SEED})`);
    }
    await h.waitFor(() => folded() > 0, 30000, 'the folder to fold its first batch', 20);
    await everyPhoneExact('the first fold');
    for (const step of ['claim', 'mark', 'apply', 'lease', 'apply', 'mark']) {
        const before = folded();
        fs.writeFileSync(killFile, step);
        await more(20);             /* three batches of work for the folder */
        await h.waitFor(() => !fs.existsSync(killFile), 60000, `the folder to pass "${step}" and be killed there`, 10);
        await d.waitForLog(new RegExp(`test hook: killing the folder after "${step}"`), 5000);
        await h.waitFor(() => folded() > before, 60000, `a respawned folder to fold again after the kill at "${step}"`, 20);
        await everyPhoneExact(`a kill right after "${step}"`);
    }
    const kills = (d.log.match(/test hook: killing the folder after/g) || []).length;
    assert.equal(kills, 6, 'six kills, one per step named');

    /* A folder stalled between two steps while `reporterctl rollup --fold`
     * folds its batch: when it goes on, its guards must refuse what was
     * done meanwhile (the apply guard: a rollup whose last is already n). */
    for (const step of ['claim', 'mark', 'apply']) {
        fs.writeFileSync(killFile, `stop:${step}`);
        await more(20);
        const m = await d.waitForLog(new RegExp(`\\] (\\d+) folder: test hook: stopping the folder after "${step}"`), 60000);
        const pid = Number(m[1]);
        await h.waitFor(() => {
            try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'T'; } catch (_) { return false; }
        }, 10000, `the folder ${pid} stopped`, 10);
        const f = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--fold'], { timeoutMs: 60000 });
        assert.equal(f.code, 0, `rollup --fold while the folder is stopped after "${step}": ${f.stdout}${f.stderr}`);
        process.kill(pid, 'SIGCONT');
        await d.waitForLog(new RegExp(`\\] ${pid} folder: test hook: the folder goes on after "${step}"`), 10000);
        /* the same folder goes on: with more records to fold, unfolded 0
         * (what everyPhoneExact waits for) comes after its stalled step */
        await more(7);
        await everyPhoneExact(`a folder stalled after "${step}" while --fold folded its batch`);
    }
    await d.shutdown('SIGQUIT', 20000);
});

test('a rollup restored one batch behind (a backup of its phone taken one batch earlier) does not take the next batch on top: it is recomputed, equal to a brute-force count', { timeout: 120000 }, async () => {
    /* Batches of one record, so the phone's records land in consecutive
     * batches k, k + 1, k + 2: the rollup restored at k must not take k + 2
     * (the apply guard wants last >= k + 1, the phone's mark before it). */
    const P = 4499;
    const cfg = ctx.writeConfig({
        worker_processes: 1,
        report: { mode: 'rollup' },
        rollup: { batch: 1, interval: '20ms', lease: '1s', verify_rate: 0, collection: `${ctx.names.collection}_behind` },
    }, { fileName: 'behind.yaml' });
    const db = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database);
    const rollups = db.collection(`${ctx.names.collection}_behind`);
    const d = h.startDaemon(cfg);
    await d.waitReady(1, 30000);
    const mine = [];
    const folded = async (label) => {
        await h.waitFor(async () => {
            const s = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--status'], { timeoutMs: 30000 });
            return /unfolded records: 0\b/.test(s.stdout);
        }, 60000, `every record folded (${label})`, 50);
        return rollups.findOne({ _id: P });
    };
    const add = async (ms) => {
        const r = { phone: P, start_date: 1685000000000 + 1000 * mine.length, end_date: 1685000000000 + 1000 * mine.length + ms };
        await ctx.loadRecords([r]);
        mine.push(r);
    };
    try {
        await folded('before');
        await add(12000);
        const snapshot = await folded('record A');
        assert.ok(snapshot, `a rollup of phone ${P}`);
        await add(45000);
        const after = await folded('record B');
        assert.equal(Number(after.last), Number(snapshot.last) + 1, 'A and B folded in consecutive batches (the premise)');
        await rollups.replaceOne({ _id: snapshot._id }, snapshot);      /* the restore */
        await add(3000);
        const got = await folded('record C');
        const [want] = [...expectedSums(mine).values()];
        for (const k of Object.keys(want)) {
            assert.equal(BigInt(got[k].toString()), want[k], `phone ${P}: ${k} after a restore one batch behind`);
        }
    } finally {
        await d.shutdown('SIGQUIT', 20000);
    }
});
