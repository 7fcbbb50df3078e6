/*
 * status.test.js -- the status process: GET /healthz, /livez, /readyz and
 * /metrics read with curl from the running daemon.  The task counters must
 * equal what the test sent, by outcome; readiness and health must say 503
 * with a reason when no worker reaches the broker, and when the database
 * goes away, while /livez stays 200; the probes answer within 1 s under 200
 * idle connections, and with the database stopped while /tasks lookups
 * wait on it.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('../lib/harness.js');

let ctx;
let records;

async function curl(url) {
    const r = await h.run('curl', ['-sS', '-m', '5', '-w', '\n%{http_code}', url]);
    assert.equal(r.code, 0, `curl ${url} failed: ${r.stderr}`);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

/* metric name{labels} -> value, from the Prometheus text format */
function parseMetrics(text) {
    const m = new Map();
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return m;
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdstatus' });
    records = [];
    for (let p = 1; p <= 5; p++) {
        for (let k = 0; k < 20; k++) records.push({ phone: p, start_date: 1000 * k, end_date: 1000 * k + 1000 * (k * 7 % 121) });
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

test('/healthz and /metrics follow what the daemon did', async (t) => {
    const port = await h.freePort();
    const base = `http://127.0.0.1:${port}`;
    const cfgPath = ctx.writeConfig({ worker_processes: 2, status: { listen: `127.0.0.1:${port}` } });
    const t0 = Date.now() / 1000;
    const daemon = h.startDaemon(cfgPath);
    /* a failure must not leave it holding the pid file the next tests use */
    t.after(async () => { if (daemon.running()) await daemon.shutdown('SIGTERM', 10000); });
    await daemon.waitReady(2, 30000);
    await daemon.waitForLog(/serving \/metrics and \/healthz/);

    await h.waitFor(async () => (await curl(`${base}/healthz`)).status === 200, 10000,
        'GET /healthz to answer 200 once both workers are connected');
    const health = await curl(`${base}/healthz`);
    assert.match(health.body, /^ok: 2 of 2 workers/);
    assert.equal((await curl(`${base}/nope`)).status, 404);
    const live = await curl(`${base}/livez`);
    assert.equal(live.status, 200);
    assert.match(live.body, /^ok: the master \(pid \d+\) and the status process run/);
    const ready = await curl(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: true, workers: 2, workers_ready: 2,
        workers_with_broker: 2, workers_with_database: 2, missing: [] });

    const good = 7;
    const invalid = 3;
    const unreadable = 4;
    for (let i = 0; i < good; i++) await ctx.publishTask({ correlation_id: 100 + i, phones: [1, 2, 3] });
    for (let i = 0; i < invalid; i++) await ctx.publishTask({ correlation_id: 200 + i, phones: [] });
    for (let i = 0; i < unreadable; i++) await ctx.publishTask(`not json ${i}`);
    const results = await ctx.collectResults(good + invalid, 30000);
    const ids = (from, n) => Array.from({ length: n }, (_, i) => from + i);
    assert.deepEqual(results.map((r) => r.body.correlation_id).sort((a, b) => a - b), [...ids(100, good), ...ids(200, invalid)],
        'one result per readable task');
    for (const r of results) {
        if (r.body.correlation_id < 200) {
            assert.equal(r.body.status, 'Complete', r.raw.slice(0, 300));
            h.assertReport(r.body.data, h.expectedReport(records, [1, 2, 3]), `task ${r.body.correlation_id}`);
        } else {
            assert.equal(r.body.status, 'Error', r.raw.slice(0, 300));
            assert.equal(r.body.error, 'phones is empty', `the reason for task ${r.body.correlation_id}`);
            assert.deepEqual(r.body.data, []);
        }
    }
    await h.waitFor(async () => (await ctx.broker.messageCount(ctx.names.dead_letter_queue)) === unreadable,
        10000, `${unreadable} messages in the dead-letter queue`);

    /* results are confirmed before the counters move: allow the last ack */
    let m;
    await h.waitFor(async () => {
        m = parseMetrics((await curl(`${base}/metrics`)).body);
        return m.get('reporterd_tasks_total{outcome="dead_lettered"}') === unreadable &&
            m.get('reporterd_tasks_total{outcome="complete"}') === good;
    }, 10000, () => `metrics to count the tasks: ${JSON.stringify([...m || []])}`);
    assert.equal(m.get('reporterd_tasks_total{outcome="complete"}'), good, 'complete');
    assert.equal(m.get('reporterd_tasks_total{outcome="error"}'), invalid, 'error');
    assert.equal(m.get('reporterd_tasks_total{outcome="dead_lettered"}'), unreadable, 'dead_lettered');
    assert.equal(m.get('reporterd_tasks_total{outcome="requeued"}'), 0, 'requeued');
    assert.equal(m.get('reporterd_task_duration_seconds_count'), good + invalid, 'task histogram count');
    assert.equal(m.get('reporterd_task_duration_seconds_bucket{le="+Inf"}'), good + invalid, '+Inf bucket');
    assert.equal(m.get('reporterd_db_query_duration_seconds_count'), good, 'one query per good task');
    assert.equal(m.get('reporterd_workers'), 2, 'live workers');
    assert.equal(m.get('reporterd_worker_restarts_total'), 0, 'restarts');
    assert.equal(m.get('reporterd_reloads_total'), 0, 'reloads');
    assert.equal(m.get('reporterd_build_info{version="0.1.0"}'), 1, 'build info');
    for (const k of ['reporterd_task_requeues_total', 'reporterd_reload_failures_total',
        'reporterd_broker_reconnects_total', 'reporterd_db_errors_total', 'reporterd_confirm_timeouts_total']) {
        assert.equal(m.get(k), 0, k);
    }
    /* the workers by their place in the generation, never by pid */
    const gauges = (name) => [...m.entries()].filter(([k]) => k.startsWith(`${name}{`)).map(([k, v]) => `${k} ${v}`).sort();
    assert.deepEqual(gauges('reporterd_worker_broker_connected'), [
        'reporterd_worker_broker_connected{worker="0",generation="1"} 1',
        'reporterd_worker_broker_connected{worker="1",generation="1"} 1']);
    assert.doesNotMatch((await curl(`${base}/metrics`)).body, /pid="/, 'no pid label');
    /* the master's process figures */
    assert.ok(m.get('process_start_time_seconds') > t0 - 2 && m.get('process_start_time_seconds') < Date.now() / 1000,
        `process_start_time_seconds ${m.get('process_start_time_seconds')} is when the master started (${t0})`);
    assert.ok(m.get('process_resident_memory_bytes') > 1 << 20, `process_resident_memory_bytes ${m.get('process_resident_memory_bytes')}`);
    assert.ok(m.get('process_virtual_memory_bytes') >= m.get('process_resident_memory_bytes'), 'virtual >= resident');
    assert.ok(m.get('process_cpu_seconds_total') >= 0 && m.get('process_cpu_seconds_total') < 60, 'process_cpu_seconds_total');
    assert.ok(m.get('process_open_fds') >= 3 && m.get('process_open_fds') <= m.get('process_max_fds'),
        `process_open_fds ${m.get('process_open_fds')} of ${m.get('process_max_fds')}`);

    /* a reload and a killed worker show up in the counters */
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/generation 2: all 2 workers consuming/, 30000);
    const victim = Number(/spawned worker (\d+) \(generation 2/.exec(daemon.log)[1]);
    process.kill(victim, 'SIGKILL');
    await daemon.waitForLog(new RegExp(`worker ${victim} killed by signal 9`), 10000);
    /* the replacement takes its predecessor's series: no new one per
     * restart (once generation 1's workers are gone and the replacement
     * runs, the two series are generation 2's workers 0 and 1) */
    const want = ['reporterd_worker_db_connected{worker="0",generation="2"}',
        'reporterd_worker_db_connected{worker="1",generation="2"}'];
    const series = () => gauges('reporterd_worker_db_connected').map((x) => x.replace(/ \d+$/, ''));
    await h.waitFor(async () => {
        m = parseMetrics((await curl(`${base}/metrics`)).body);
        return m.get('reporterd_reloads_total') === 1 && m.get('reporterd_worker_restarts_total') === 1
            && JSON.stringify(series()) === JSON.stringify(want);
    }, 15000, () => `reloads 1, restarts 1 and the series ${JSON.stringify(want)} (got ${m.get('reporterd_reloads_total')}, ` +
        `${m.get('reporterd_worker_restarts_total')}, ${JSON.stringify(series())})`);
    /* a reload refused is counted, and is not a reload */
    const goodCfg = fs.readFileSync(cfgPath, 'utf8');
    fs.writeFileSync(cfgPath, `${goodCfg}\nno_such_key: 1\n`);
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/reload failed, keeping the running configuration/, 10000);
    fs.writeFileSync(cfgPath, goodCfg);
    await h.waitFor(async () => (m = parseMetrics((await curl(`${base}/metrics`)).body)).get('reporterd_reload_failures_total') === 1,
        10000, () => `reporterd_reload_failures_total 1 (got ${m.get('reporterd_reload_failures_total')})`);
    assert.equal(m.get('reporterd_reloads_total'), 1, 'a refused reload is not counted as applied');

    /* the database goes away: idle workers notice, health turns 503 */
    if (!ctx.mongo.external) {
        await ctx.mongo.stop();
        await h.waitFor(async () => (await curl(`${base}/healthz`)).status === 503, 20000,
            'GET /healthz to answer 503 after the database stopped');
        assert.match((await curl(`${base}/healthz`)).body, /unavailable: no worker is connected to both/);
        const notReady = await curl(`${base}/readyz`);
        assert.equal(notReady.status, 503);
        assert.ok(JSON.parse(notReady.body).missing.includes('database'), notReady.body);
        assert.equal((await curl(`${base}/livez`)).status, 200, 'a database outage is no reason to restart');
        await ctx.mongo.restart();
        /* the workers gave their broker connections up while the database was away */
        await h.waitFor(async () => (m = parseMetrics((await curl(`${base}/metrics`)).body)).get('reporterd_broker_reconnects_total') >= 2,
            30000, () => `reporterd_broker_reconnects_total >= 2 after the outage (got ${m.get('reporterd_broker_reconnects_total')})`);
    }
    await daemon.shutdown('SIGQUIT', 20000);
    assert.equal(daemon.exit.code, 0);
});

test('rollup metrics: an invalid record counted once, when it is folded; the metrics stay, with reporterd_rollup_folder_up 0, while no folder runs', async (t) => {
    const port = await h.freePort();
    const base = `http://127.0.0.1:${port}`;
    /* phone 9: 4 valid records and 3 invalid ones (reversed, a string date, no end_date) */
    const extra = [{ phone: 9, start_date: 5000, end_date: 1000 }, { phone: 9, start_date: 'x', end_date: 2000 },
        { phone: 9, start_date: 3000 }];
    for (let k = 0; k < 4; k++) extra.push({ phone: 9, start_date: 1000 * k, end_date: 1000 * k + 2000 });
    await ctx.loadRecords(extra);
    records.push(...extra);
    const invalid = 3;
    const cfg = (mode) => ctx.writeConfig({ worker_processes: 1, report: { mode },
        rollup: { batch: 100, interval: '20ms', collection: `${ctx.names.collection}_rollup_metrics` },
        status: { listen: `127.0.0.1:${port}` } });
    /* what the database holds (a test server restarted by an earlier test may hold less than records) */
    const client = await h.mongoClient(ctx.mongo.uri);
    const held = await client.db(ctx.names.database).collection(ctx.names.collection).countDocuments();
    const daemon = h.startDaemon(cfg('rollup'));
    t.after(async () => { if (daemon.running()) await daemon.shutdown('SIGTERM', 10000); });
    await daemon.waitReady(1, 30000);
    let m;
    await h.waitFor(async () => {
        m = await h.readMetrics(base);
        return m.get('reporterd_rollup_records_folded_total') >= held;
    }, 30000, () => `every record folded (${m && m.get('reporterd_rollup_records_folded_total')} of ${held})`);
    assert.equal(m.get('reporterd_rollup_folder_up'), 1, 'folder up');
    assert.equal(m.get('reporterd_rollup_records_folded_total'), held, 'every record folded once');
    assert.equal(m.get('reporterd_rollup_invalid_records_total'), invalid, 'the invalid records, once each');
    const reports = 3;
    for (let i = 0; i < reports; i++) await ctx.publishTask({ correlation_id: 900 + i, phones: [9] });
    const results = await ctx.collectResults(reports, 30000);
    for (const r of results) h.assertReport(r.body.data, h.expectedReport(records, [9]), `task ${r.body.correlation_id}`);
    await h.waitFor(async () => (m = await h.readMetrics(base)).get('reporterd_tasks_total{outcome="complete"}') >= reports,
        10000, 'the tasks counted');
    assert.equal(m.get('reporterd_invalid_records_total'), reports * invalid, 'per report: in each report that read them');
    assert.equal(m.get('reporterd_rollup_invalid_records_total'), invalid, 'per record: once');

    /* live mode after a reload: no folder runs, its metrics stay with their last values */
    const folded = m.get('reporterd_rollup_records_folded_total');
    cfg('live');
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/rollup folder \d+ exited/, 30000);
    await h.waitFor(async () => (m = await h.readMetrics(base)).get('reporterd_rollup_folder_up') === 0, 10000,
        () => `reporterd_rollup_folder_up 0 (got ${m.get('reporterd_rollup_folder_up')})`);
    assert.equal(m.get('reporterd_rollup_records_folded_total'), folded, 'the last value stays');
    assert.equal(m.get('reporterd_rollup_invalid_records_total'), invalid, 'the last value stays');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('/healthz is 503 with a reason when no worker reaches the broker', async () => {
    const port = await h.freePort();
    const deadPort = await h.freePort();
    const dir = h.tmpDir();
    const daemon = h.startDaemon(ctx.writeConfig({
        worker_processes: 1,
        rabbitmq: { port: deadPort, connect_timeout_ms: 500 },
        status: { listen: `127.0.0.1:${port}` },
    }, { dir }));
    await daemon.waitForLog(/broker unreachable/, 15000);
    await daemon.waitForLog(/serving \/metrics/, 10000);
    const r = await curl(`http://127.0.0.1:${port}/healthz`);
    assert.equal(r.status, 503);
    assert.match(r.body, /no worker is connected to both the broker and the database \(1 workers, 0 with the broker/);
    const ready = await curl(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 503);
    const body = JSON.parse(ready.body);
    assert.equal(body.ready, false);
    assert.ok(body.missing.includes('broker'), ready.body);
    assert.equal((await curl(`http://127.0.0.1:${port}/livez`)).status, 200);
    assert.ok(daemon.running(), 'the master keeps running while the broker is unreachable');
    await daemon.shutdown('SIGTERM', 10000);
});

/* GET url: [status, ms the request took (curl's own clock, without the
 * start of the curl process), stderr]; curl gives up after 5 s */
async function timed(url) {
    const r = await h.run('curl', ['-sS', '-o', '/dev/null', '-m', '5', '-w', '%{http_code} %{time_total}', url]);
    const [code, secs] = r.stdout.split(' ');
    return [r.code === 0 ? Number(code) : 0, r.code === 0 ? Math.round(Number(secs) * 1000) : 5000, r.stderr];
}

test('/livez, /readyz and /metrics answer within 1 s under 200 idle connections, and with the database ' +
    'stopped while /tasks lookups wait on it (503 once no client is free)', async () => {
    const net = require('node:net');
    const port = await h.freePort();
    const base = `http://127.0.0.1:${port}`;
    const daemon = h.startDaemon(ctx.writeConfig({ worker_processes: 1, journal: { enabled: true },
        status: { listen: `127.0.0.1:${port}`, tasks: true } }));
    await daemon.waitReady(1, 30000);
    await daemon.waitForLog(/serving \/metrics and \/healthz/);
    const idle = [];
    try {
        for (let i = 0; i < 200; i++) {
            const c = net.connect(port, '127.0.0.1');
            c.on('error', () => {});
            idle.push(c);
            await new Promise((resolve) => c.once('connect', resolve));
        }
        for (const path of ['/livez', '/readyz', '/metrics']) {
            const [status, ms, err] = await timed(`${base}${path}`);
            assert.ok(status === 200 || (path === '/readyz' && status === 503), `${path} under 200 idle connections: ${status} ${err}`);
            assert.ok(ms < 1000, `${path} took ${ms} ms`);
        }
    } finally {
        for (const c of idle) c.destroy();
    }
    if (!ctx.mongo.external) {
        await ctx.mongo.stop();
        try {
            const lookups = [];
            for (let i = 0; i < 24; i++) lookups.push(h.run('curl', ['-sS', '-m', '20', '-o', '/dev/null', '-w', '%{http_code}', `${base}/tasks/t${i}`]));
            for (const path of ['/livez', '/readyz', '/metrics']) {
                const [status, ms, err] = await timed(`${base}${path}`);
                assert.ok(status > 0, `${path} with the database stopped: ${err}`);
                assert.ok(ms < 1000, `${path} took ${ms} ms with the database stopped`);
            }
            const codes = (await Promise.all(lookups)).map((r) => Number(r.stdout));
            assert.ok(codes.every((c) => c === 503), `every lookup ends with 503 while the database is away: ${codes}`);
        } finally {
            await ctx.mongo.restart();
        }
    }
    await daemon.shutdown('SIGQUIT', 20000);
});
