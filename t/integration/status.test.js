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

test('/healthz and /metrics follow what the daemon did', async () => {
    const port = await h.freePort();
    const base = `http://127.0.0.1:${port}`;
    const daemon = h.startDaemon(ctx.writeConfig({ worker_processes: 2, status: { listen: `127.0.0.1:${port}` } }));
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
    const up = [...m.entries()].filter(([k]) => k.startsWith('reporterd_worker_broker_connected{'));
    assert.equal(up.length, 2, 'one broker gauge per worker');
    assert.ok(up.every(([, v]) => v === 1), 'both workers connected');

    /* a reload and a killed worker show up in the counters */
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/generation 2: all 2 workers consuming/, 30000);
    const victim = Number(/spawned worker (\d+) \(generation 2/.exec(daemon.log)[1]);
    process.kill(victim, 'SIGKILL');
    await daemon.waitForLog(new RegExp(`worker ${victim} killed by signal 9`), 10000);
    await h.waitFor(async () => {
        m = parseMetrics((await curl(`${base}/metrics`)).body);
        return m.get('reporterd_reloads_total') === 1 && m.get('reporterd_worker_restarts_total') === 1;
    }, 10000, () => `reloads 1 and restarts 1 (got ${m.get('reporterd_reloads_total')}, ${m.get('reporterd_worker_restarts_total')})`);

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
    }
    await daemon.shutdown('SIGQUIT', 20000);
    assert.equal(daemon.exit.code, 0);
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
