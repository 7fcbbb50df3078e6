/*
 * hosts.test.js -- two reporterd hosts (two masters, each with its own pid
 * file, log and status port) on one task queue and one database, in
 * rollup mode with the task journal on: tasks spread over both; exactly
 * one folder holds the lease at any time; SIGKILL to the whole process
 * group of the master whose folder holds it hands the lease to the other
 * host within rollup.lease (the time is printed); the tasks the killed
 * host held are answered by the other; every report equals a brute-force
 * count; every task is journalled once.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PHONES = Array.from({ length: 30 }, (_, i) => 8100 + i);
const LEASE_MS = 2000;
let ctx;
let records;

before(async () => {
    ctx = await h.setup({ prefix: 'rdhosts' });
    const rnd = h.prng(SEED);
    records = [];
    for (const p of PHONES) {
        for (let k = 0; k < 20; k++) {
            const st = 1684900000000 + Math.floor(rnd() * 86400000);
            records.push({ phone: p, start_date: st, end_date: st + 1000 * Math.floor(rnd() * 121) });
        }
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

test('two reporterd hosts on one queue and one database: tasks spread, one lease holder, a killed host\'s lease taken over within rollup.lease, reports exact, each task journalled once', { timeout: 300000 }, async () => {
    const hosts = [];
    for (const name of ['a', 'b']) {
        const dir = path.join(ctx.dir, `host-${name}`);
        fs.mkdirSync(dir, { recursive: true });
        const port = await h.freePort();
        const cfg = ctx.writeConfig({
            worker_processes: 2,
            pid: path.join(dir, 'reporterd.pid'),
            report: { mode: 'rollup' },
            rollup: { batch: 50, interval: '50ms', lease: `${LEASE_MS}ms` },
            journal: { enabled: true },
            status: { listen: `127.0.0.1:${port}` },
        }, { dir });
        hosts.push({ name, base: `http://127.0.0.1:${port}`, d: h.startDaemon(cfg) });
    }
    for (const x of hosts) await x.d.waitReady(2, 30000);
    const held = async () => {
        const v = [];
        for (const x of hosts) {
            const m = x.d.running() ? await h.readMetrics(x.base).catch(() => null) : null;
            v.push(m ? (m.get('reporterd_rollup_lease_held') || 0) : 0);
        }
        return v;
    };
    /* one holder, never two: sampled while they start and fold */
    await h.waitFor(async () => (await held()).reduce((a, b) => a + b, 0) === 1, 30000, 'one host to take the lease');
    for (let i = 0; i < 20; i++) {
        const v = await held();
        assert.ok(v[0] + v[1] <= 1, `at most one lease holder (${v})`);
        await h.sleep(50);
    }

    const collector = await ctx.results();
    const rnd = h.prng(SEED + 1);
    const tasks = [];
    const publish = async (n) => {
        for (let i = 0; i < n; i++) {
            const id = tasks.length + 1;
            const phones = [];
            for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) phones.push(PHONES[Math.floor(rnd() * PHONES.length)]);
            tasks.push({ id, phones });
            await ctx.publishTask({ correlation_id: id, phones });
        }
    };
    const answered = () => new Set(collector.messages.map((m) => m.body && m.body.correlation_id)).size;

    await publish(200);
    await h.waitFor(() => answered() === 200, 60000, () => `200 tasks answered (${answered()})`, 20);
    const completedIn = (x) => (x.d.log.match(/worker: task \d+: complete/g) || []).length;
    assert.ok(completedIn(hosts[0]) > 0 && completedIn(hosts[1]) > 0,
        `tasks spread over both hosts (${completedIn(hosts[0])}, ${completedIn(hosts[1])})`);

    /* kill the host whose folder holds the lease, the whole process group, while tasks flow */
    const v = await held();
    const victim = hosts[v[0] === 1 ? 0 : 1];
    const other = hosts[v[0] === 1 ? 1 : 0];
    const more = publish(200);
    await h.waitFor(() => answered() >= 250, 60000, () => `250 tasks answered (${answered()})`, 10);
    const t0 = Date.now();
    process.kill(-victim.d.pid, 'SIGKILL');
    await h.waitFor(async () => {
        const m = await h.readMetrics(other.base).catch(() => null);
        return m && m.get('reporterd_rollup_lease_held') === 1;
    }, 30000, () => `${other.name} to take the lease`, 20);
    const handover = Date.now() - t0;
    console.log(`# lease handed over ${handover} ms after the SIGKILL (rollup.lease ${LEASE_MS} ms)`);
    assert.ok(handover <= LEASE_MS + 1000, `the lease taken over within rollup.lease (+ 1 s for the polling): ${handover} ms`);
    await more;
    await h.waitFor(() => answered() === 400, 120000, () => `400 tasks answered (${answered()})`, 20);

    for (const m of collector.messages) {
        const x = tasks[m.body.correlation_id - 1];
        assert.equal(m.body.status, 'Complete', m.raw.slice(0, 300));
        h.assertReport(m.body.data, h.expectedReport(records, x.phones), `task ${x.id} (seed ${SEED})`);
    }
    /* the journal: one document per task, whichever host answered it, however often */
    const client = await h.mongoClient(ctx.mongo.uri);
    const docs = await client.db(ctx.names.database).collection('reports_journal')
        .find({ correlation_id: { $gte: 1, $lte: 400 } }).toArray();
    const per = new Map();
    for (const doc of docs) per.set(Number(doc.correlation_id), (per.get(Number(doc.correlation_id)) || 0) + 1);
    const notOnce = tasks.filter((x) => per.get(x.id) !== 1).map((x) => `${x.id}:${per.get(x.id) || 0}`);
    assert.deepEqual(notOnce, [], 'every task journalled once');
    await other.d.shutdown('SIGQUIT', 20000);
});
