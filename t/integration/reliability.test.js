/*
 * reliability.test.js -- what reporterd does when things go wrong that
 * are not the operator's signals: a task that kills its worker (classic
 * and quorum queues, counted the same way), queues declared by someone
 * else (the old service's plain durable pair, a quorum queue with other
 * arguments), a deleted result queue, a result queue that refuses every
 * result, bad credentials (no password in any log line), a broker behind
 * a proxy that closes connections, a vhost that does not exist yet, a
 * rotated password_file, and the database going away while tasks wait.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

const CRASH_PHONE = 666;
let ctx;
let records;

before(async () => {
    ctx = await h.setup({ prefix: 'rdrel' });
    records = [];
    for (let p = 1; p <= 4; p++) {
        for (let k = 0; k < 25; k++) records.push({ phone: p, start_date: k * 60000, end_date: k * 60000 + ((p * 13 + k * 11) % 121) * 1000 });
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

/* Fresh queue names for one test; deleted at the end by cleanup. */
function freshNames() {
    const n = h.uniqueNames('rdrel');
    n.database = ctx.names.database;
    h.onCleanup(async () => {
        for (const q of [n.task_queue, n.result_queue, n.dead_letter_queue]) await ctx.broker.deleteQueue(q);
    });
    return n;
}

/* A task that kills its worker (the test-hooks build) is charged once per
 * crash and dead-lettered by reporterd itself, with its properties and
 * headers kept, after max_redeliveries + 1 crashes; the same whatever the
 * queue type.  pre: declare the queues first, as someone else would. */
async function poisonRun(queueType, pre = null) {
    if (!h.env.testhooks) return 'REPORTERD_TESTHOOKS not set';
    const names = freshNames();
    if (pre) await pre(names);
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 3,
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, queue_type: queueType, max_redeliveries: 2 },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg, { binary: h.env.testhooks, env: { REPORTERD_TEST_CRASH_PHONE: String(CRASH_PHONE) } });
    await daemon.waitReady(3, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 'poison', phones: [1, CRASH_PHONE] },
        { properties: { messageId: 'poison-1', expiration: '600000',
            headers: { 'x-client': 'abc', 'x-reporterd-attempts': 7 } } });
    const dead = await ctx.broker.collector(names.dead_letter_queue);
    const [dl] = await dead.next(1, 60000);
    const kills = (daemon.log.match(/killed by signal 9/g) || []).length;
    assert.equal(kills, 3, 'the poison task killed max_redeliveries + 1 = 3 workers');
    assert.equal(dl.properties.expiration, undefined, 'no per-message TTL on the dead letter (RabbitMQ drops it too)');
    /* the operator moves it back: it starts afresh, 3 more attempts */
    await ctx.broker.publish(names.task_queue, dl.raw, { properties: { messageId: 'poison-1' } });
    const [again] = await dead.next(1, 60000);
    assert.equal((daemon.log.match(/killed by signal 9/g) || []).length, 6, 'three more attempts after the move back');
    assert.equal(Number(again.properties.headers['x-reporterd-attempts']), 3, 'counted afresh');
    assert.equal(dl.body.correlation_id, 'poison', 'the dead letter is the task itself');
    assert.equal(dl.properties.messageId, 'poison-1', 'message_id kept');
    assert.equal(dl.properties.deliveryMode, 2, 'persistent');
    assert.equal(dl.properties.headers['x-client'], 'abc', 'the client\'s headers kept');
    assert.match(String(dl.properties.headers['x-reporterd-reason']), /crashed a worker 3 times/);
    assert.equal(Number(dl.properties.headers['x-reporterd-attempts']), 3,
        'attempts counted by reporterd; the client\'s header was not read');
    /* the daemon still serves, and the poison task produced no result */
    for (let i = 0; i < 3; i++) await ctx.broker.publish(names.task_queue, { correlation_id: i, phones: [i + 1, 4] });
    /* one more with an absurd attempts header: ignored, answered */
    await ctx.broker.publish(names.task_queue, { correlation_id: 3, phones: [4, 4] },
        { properties: { headers: { 'x-reporterd-attempts': { '!': 'int64', value: 2 ** 62 } } } });
    const got = await results.next(4, 60000);
    for (const r of got) {
        assert.equal(r.body.status, 'Complete');
        h.assertReport(r.body.data, h.expectedReport(records, [Number(r.body.correlation_id) + 1, 4]));
    }
    /* every message is accounted for: the poison task is the one dead letter
     * (taken above), the task queue is drained, and no result beyond these */
    assert.equal(await ctx.broker.messageCount(names.task_queue), 0, 'the task queue is drained');
    assert.equal(results.pending(), 0, 'no other result');
    assert.ok(got.every((r) => r.body.correlation_id !== 'poison'));
    await daemon.shutdown('SIGQUIT', 20000);
    return null;
}

test('a task that kills its worker ends in the dead-letter queue (classic)', async (t) => {
    const why = await poisonRun('classic');
    if (why) t.skip(why);
});

test('a task that kills its worker ends in the dead-letter queue (quorum: counted the same way)', async (t) => {
    const why = await poisonRun('quorum');
    if (why) t.skip(why);
});

test('a quorum task queue with other arguments, declared by someone else: used as it is', async (t) => {
    const why = await poisonRun('classic', async (names) => {
        await ctx.broker.declareQueue(names.task_queue, { 'x-queue-type': 'quorum', 'x-max-length': 1000 });
    });
    if (why) t.skip(why);
});

test('the old service\'s queues (plain durable, no arguments): consumed, answered and dead-lettered', async () => {
    const names = freshNames();
    /* exactly what its producer and consumer do: queue_declare(durable=True) */
    await ctx.broker.declareQueue(names.task_queue);
    await ctx.broker.declareQueue(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 1, phones: [1] });
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 2, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, queue_type: 'quorum' },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(2, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 2, phones: [2, 3] });
    await ctx.broker.publish(names.task_queue, '{"correlation_id": 3, "phones": [1,');
    const got = await results.next(2, 20000);
    const byId = new Map(got.map((r) => [Number(r.body.correlation_id), r]));
    h.assertReport(byId.get(1).body.data, h.expectedReport(records, [1]));
    h.assertReport(byId.get(2).body.data, h.expectedReport(records, [2, 3]));
    const dead = await ctx.broker.collector(names.dead_letter_queue);
    const [dl] = await dead.next(1, 20000);
    assert.equal(dl.raw, '{"correlation_id": 3, "phones": [1,', 'the unreadable message, byte for byte');
    assert.match(String(dl.properties.headers['x-reporterd-reason']), /^unreadable: /);
    assert.equal(await ctx.broker.messageCount(names.task_queue), 0, 'the task queue is drained');
    assert.equal(results.pending(), 0, 'no result for the unreadable message');
    assert.doesNotMatch(daemon.log, /PRECONDITION_FAILED|exited with status 2/);
    /* the dead-letter queue was missing: reporterd created it, as queue_type says */
    assert.ok(await ctx.broker.queueInfo(names.dead_letter_queue), 'the dead-letter queue exists');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a deleted result queue is declared again; the task is answered, not lost', async () => {
    const names = freshNames();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    await ctx.broker.deleteQueue(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 77, phones: [2] });
    await daemon.waitForLog(/task 77: complete/, 30000);
    assert.match(daemon.log, /task 77: the result was not accepted, requeueing the task and reconnecting/);
    const results = await ctx.broker.collector(names.result_queue);
    const [r] = await results.next(1, 10000);
    assert.equal(r.body.status, 'Complete');
    h.assertReport(r.body.data, h.expectedReport(records, [2]));
    await daemon.shutdown('SIGQUIT', 20000);
});

test('wrong broker credentials: 403 named, slow respawn, and the password appears nowhere', async () => {
    const secret = 'S3cr3t-Pa55word-xyz';
    const names = freshNames();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, password: secret },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitForLog(/login to 127\.0\.0\.1:5672 as "guest" vhost "\/" refused: 403 ACCESS_REFUSED/, 20000);
    await daemon.waitForLog(/an operator must fix this outside the configuration file; trying again in 30 s/, 10000);
    const dump = await h.run(h.env.reporterd, ['-T', '-c', cfg]);
    assert.equal(dump.code, 0);
    assert.match(dump.stdout, /password: "\*+"/);
    await daemon.shutdown('SIGTERM', 10000);
    assert.ok(!daemon.log.includes(secret), 'the password is in the log');
    assert.ok(!dump.stdout.includes(secret) && !dump.stderr.includes(secret), 'the password is in -T output');
});

/* GET http://127.0.0.1:port/path -> { status, body } */
const httpGet = (port, p) => h.httpGet(`http://127.0.0.1:${port}${p}`);

test('a rotated password_file is read on the next connect: the refused worker comes back without a reload, /healthz named why',
    { timeout: 90000 }, async () => {
        const names = freshNames();
        const dir = h.tmpDir();
        const pwFile = require('node:path').join(dir, 'amqp.password');
        require('node:fs').writeFileSync(pwFile, 'not-the-password\n', { mode: 0o600 });
        const port = await h.freePort();
        const cfg = h.writeConfig(dir, {
            worker_processes: 1, status: { listen: `127.0.0.1:${port}` },
            rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, password: null, password_file: pwFile },
        }, { names, mongoUri: ctx.mongo.uri });
        const daemon = h.startDaemon(cfg);
        await daemon.waitForLog(/403 ACCESS_REFUSED.*trying again in 30 s/, 20000);
        await daemon.waitForLog(/serving \/metrics and \/healthz/, 10000);
        let health;
        await h.waitFor(async () => {
            health = await httpGet(port, '/healthz').catch(() => null);
            return health && /ACCESS_REFUSED/.test(health.body);
        }, 10000, () => `/healthz to name the refused login (got ${JSON.stringify(health)})`);
        assert.equal(health.status, 503);
        /* the operator fixes the password outside the configuration file */
        require('node:fs').writeFileSync(pwFile, 'guest\n');
        await daemon.waitReady(1, 45000);
        /* the worker reports itself up, and the master clears the problem once
         * it reads the worker's "consuming": two events, a few ms apart */
        await h.waitFor(async () => {
            health = await httpGet(port, '/healthz').catch(() => null);
            return health && health.status === 200 && !/ACCESS_REFUSED|problem:/.test(health.body);
        }, 10000, () => `/healthz to be ok with no problem named (got ${JSON.stringify(health)})`);
        assert.doesNotMatch(daemon.log, /starting generation 2/, 'no reload was needed');
        await ctx.broker.publish(names.task_queue, { correlation_id: 5, phones: [1] });
        const [r] = await (await ctx.broker.collector(names.result_queue)).next(1, 20000);
        h.assertReport(r.body.data, h.expectedReport(records, [1]));
        await daemon.shutdown('SIGQUIT', 20000);
    });

/* A TCP endpoint in front of the broker: while `closing` it accepts every
 * connection, reads the AMQP header and closes it (a proxy with no backend,
 * a broker booting); then it forwards to the broker. */
async function flakyProxy() {
    const net = require('node:net');
    const port = await h.freePort();
    const state = { closing: true, accepted: 0, sockets: new Set() };
    const server = net.createServer((c) => {
        state.accepted++;
        state.sockets.add(c);
        c.on('close', () => state.sockets.delete(c));
        c.on('error', () => {});
        if (state.closing) {
            /* read the protocol header, then close without a word */
            c.once('data', () => c.end());
            return;
        }
        const up = net.connect(5672, '127.0.0.1');
        state.sockets.add(up);
        up.on('close', () => { state.sockets.delete(up); c.destroy(); });
        up.on('error', () => c.destroy());
        c.on('close', () => up.destroy());
        c.pipe(up).pipe(c);
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    h.onCleanup(() => new Promise((resolve) => {
        for (const x of state.sockets) x.destroy();
        server.close(() => resolve());
    }));
    return { port, state };
}

test('a broker endpoint that accepts and closes connections delays the workers, never stops them', { timeout: 90000 }, async () => {
    const names = freshNames();
    const proxy = await flakyProxy();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 2, rabbitmq: { port: proxy.port, task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitForLogCount(/broker unreachable: login[^\n]*retrying in/, 4, 30000);
    assert.ok(proxy.state.accepted >= 4, 'the workers kept trying');
    assert.doesNotMatch(daemon.log, /exited with status|an operator must fix/, 'no worker gave up');
    proxy.state.closing = false;
    await daemon.waitReady(2, 45000);
    await ctx.broker.publish(names.task_queue, { correlation_id: 9, phones: [3] });
    const [r] = await (await ctx.broker.collector(names.result_queue)).next(1, 20000);
    h.assertReport(r.body.data, h.expectedReport(records, [3]));
    assert.doesNotMatch(daemon.log, /starting generation 2/, 'no reload was needed');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a vhost that does not exist yet (530 NOT_ALLOWED) is waited for, not fatal', { timeout: 90000 }, async (t) => {
    const ctl = (...a) => h.run('rabbitmqctl', a, { timeoutMs: 60000 });
    const probe = await ctl('-q', 'list_vhosts').catch((e) => ({ code: -1, stderr: e.message }));
    if (probe.code !== 0) return t.skip(`rabbitmqctl is not usable here: ${(probe.stderr || '').trim().slice(0, 200)}`);
    const names = freshNames();
    const vhost = `rdtest-${process.pid}-${Date.now()}`;
    h.onCleanup(() => ctl('delete_vhost', vhost));
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { vhost, task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitForLog(/530 NOT_ALLOWED[^\n]*retrying in/, 20000);
    assert.equal((await ctl('add_vhost', vhost)).code, 0, 'add_vhost');
    assert.equal((await ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*')).code, 0, 'set_permissions');
    await daemon.waitReady(1, 45000);
    assert.doesNotMatch(daemon.log, /exited with status|an operator must fix/);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a result queue that refuses every result: the task waits with a growing backoff, is never dead-lettered', { timeout: 90000 }, async () => {
    const names = freshNames();
    /* max-length 0 with reject-publish: the broker nacks every publish */
    await ctx.broker.declareQueue(names.result_queue, { 'x-max-length': 0, 'x-overflow': 'reject-publish' });
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1,
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, max_redeliveries: 1 },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    await ctx.broker.publish(names.task_queue, { correlation_id: 21, phones: [2] });
    await daemon.waitForLogCount(/the broker refused a message \(see above\); retrying in/, 3, 30000);
    const waits = [...daemon.log.matchAll(/the broker refused a message \(see above\); retrying in (\d+) ms/g)].map((m) => Number(m[1]));
    assert.ok(waits[2] > waits[0], `the backoff grows: ${waits.join(', ')} ms`);
    assert.equal(await ctx.broker.messageCount(names.dead_letter_queue), 0, 'not dead-lettered');
    assert.doesNotMatch(daemon.log, /dead-lettered/);
    /* the operator replaces the queue: reporterd declares a plain one and answers */
    await ctx.broker.deleteQueue(names.result_queue);
    const [r] = await (await ctx.broker.collector(names.result_queue, { queueTimeoutMs: 30000 })).next(1, 40000);
    h.assertReport(r.body.data, h.expectedReport(records, [2]));
    await daemon.shutdown('SIGQUIT', 20000);
});

/* reporterd_tasks_total{outcome="..."} from /metrics */
async function tasksTotal(port, outcome) {
    const key = `reporterd_tasks_total{outcome="${outcome}"}`;
    const m = await h.readMetrics(`http://127.0.0.1:${port}`);
    assert.ok(m.has(key), `${key} in /metrics (has: ${[...m.keys()].join(', ').slice(0, 1500)})`);
    return m.get(key);
}

test('the database goes away: tasks go back to the queue (requeued counted) and complete, exactly, once it is back', async (t) => {
    if (ctx.mongo.external) return t.skip('needs the test server, which the test can stop');
    const L = require('../fault/lib.js');
    const names = freshNames();
    /* the test server keeps its data in memory: this launcher loads it
     * before it listens, so a restart never answers from an empty collection */
    const dir = h.tmpDir();
    const load = require('node:path').join(dir, 'calls.ndjson');
    L.writeLoadFile(load, names.database, names.collection, records);
    const mongo = await L.startPreloadedMongo(load);
    const port = await h.freePort();
    const cfg = h.writeConfig(dir, {
        worker_processes: 2, status: { listen: `127.0.0.1:${port}` },
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(2, 30000);
    await daemon.waitForLog(/serving \/metrics and \/healthz/, 10000);
    const results = await ctx.broker.collector(names.result_queue);
    const tasks = [];
    for (let i = 0; i < 6; i++) tasks.push({ correlation_id: i, phones: [1 + (i % 4), 1 + ((i + 1) % 4), 3] });
    await mongo.stop();
    for (const x of tasks) await ctx.broker.publish(names.task_queue, x);
    /* positive evidence that the outage path ran: tasks were given back */
    let requeued = 0;
    await h.waitFor(async () => (requeued = await tasksTotal(port, 'requeued')) > 0, 20000,
        () => `reporterd_tasks_total{outcome="requeued"} > 0 (is ${requeued}; log tail:\n${daemon.log.slice(-1500)})`);
    assert.equal(results.pending(), 0, 'no result while the database is down');
    assert.equal(await tasksTotal(port, 'complete'), 0, 'nothing completed while the database is down');
    await mongo.restart();
    const got = await results.next(6, 90000);
    const byId = new Map(got.map((r) => [Number(r.body.correlation_id), r]));
    assert.equal(byId.size, 6, 'every task answered once');
    for (const x of tasks) {
        const r = byId.get(x.correlation_id);
        assert.equal(r.body.status, 'Complete', JSON.stringify(r.body).slice(0, 300));
        h.assertReport(r.body.data, h.expectedReport(records, x.phones), `task ${x.correlation_id}`);
    }
    assert.equal(await ctx.broker.messageCount(names.dead_letter_queue), 0, 'nothing dead-lettered');
    assert.equal(await tasksTotal(port, 'error'), 0, 'no Error result');
    await daemon.shutdown('SIGQUIT', 20000);
});

/* MongoDB's own test command (4.4): fail the next `times` aggregate
 * commands with `code`.  null when the server refuses it (a real MongoDB
 * without enableTestCommands). */
async function failAggregate(uri, data, mode) {
    const client = await h.mongoClient(uri);
    try {
        await client.db('admin').command({
            configureFailPoint: 'failCommand', mode,
            data: Object.assign({ failCommands: ['aggregate'] }, data),
        });
        return true;
    } catch (e) {
        return e.message;
    }
}

test('server errors: transient returns the task uncounted, permanent is an Error with the server\'s message, a timeout is retried then answered', { timeout: 120000 }, async (t) => {
    const probe = await failAggregate(ctx.mongo.uri, {}, 'off');
    if (probe !== true) return t.skip(`the server refuses configureFailPoint (start it with enableTestCommands=1): ${probe}`);
    h.onCleanup(() => failAggregate(ctx.mongo.uri, {}, 'off'));
    const names = freshNames();
    const port = await h.freePort();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, status: { listen: `127.0.0.1:${port}` },
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, max_redeliveries: 1 },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    await daemon.waitForLog(/serving \/metrics and \/healthz/, 10000);
    const results = await ctx.broker.collector(names.result_queue);
    const one = async (id, phones) => {
        await ctx.broker.publish(names.task_queue, { correlation_id: id, phones });
        const [r] = await results.next(1, 60000);
        assert.equal(r.body.correlation_id, id, 'one task at a time');
        return r;
    };

    /* transient (91 ShutdownInProgress), three times in a row with
     * max_redeliveries 1: back to the queue each time, uncounted, answered */
    assert.equal(await failAggregate(ctx.mongo.uri, { errorCode: 91 }, { times: 3 }), true);
    let r = await one(1, [1, 2]);
    assert.equal(r.body.status, 'Complete');
    h.assertReport(r.body.data, h.expectedReport(records, [1, 2]));
    assert.equal((daemon.log.match(/task 1: database unavailable, returning the task to the queue: .*code 91/g) || []).length, 3);
    let requeued = await tasksTotal(port, 'requeued');
    assert.ok(requeued >= 3, `returned to the queue at least 3 times (${requeued})`);

    /* permanent (40324): an Error result carrying the server's message, not requeued */
    assert.equal(await failAggregate(ctx.mongo.uri, { errorCode: 40324 }, { times: 1 }), true);
    r = await one(2, [3]);
    assert.equal(r.body.status, 'Error');
    assert.match(r.body.error, /^database error: Failing command due to 'failCommand' failpoint \(domain \d+, code 40324\)$/);
    assert.deepEqual(r.body.data, []);
    assert.equal(await tasksTotal(port, 'requeued'), requeued, 'a permanent error is not requeued');

    /* MaxTimeMSExpired (50) once: requeued, counted, then answered */
    assert.equal(await failAggregate(ctx.mongo.uri, { errorCode: 50 }, { times: 1 }), true);
    r = await one(3, [4]);
    assert.equal(r.body.status, 'Complete');
    h.assertReport(r.body.data, h.expectedReport(records, [4]));
    assert.match(daemon.log, /task 3: the query ran out of time \(1 of at most 2 times\)/);
    assert.ok(await tasksTotal(port, 'requeued') > requeued, 'the timed-out task went back to the queue');
    requeued = await tasksTotal(port, 'requeued');

    /* 50 on every attempt: max_redeliveries + 1 = 2 timeouts, then an Error */
    assert.equal(await failAggregate(ctx.mongo.uri, { errorCode: 50 }, { times: 2 }), true);
    r = await one(4, [1]);
    assert.equal(r.body.status, 'Error');
    assert.match(r.body.error, /^the report did not finish within mongodb\.max_time_ms \(20000 ms\), 2 times: /);
    assert.ok(await tasksTotal(port, 'requeued') > requeued, 'the first timeout went back to the queue');
    assert.equal(await ctx.broker.messageCount(names.dead_letter_queue), 0, 'nothing dead-lettered');
    /* every failed query counted once (3 + 1 + 1 + 2); requeues have their own counter too */
    const m = await h.readMetrics(`http://127.0.0.1:${port}`);
    assert.equal(m.get('reporterd_db_errors_total'), 7, 'reporterd_db_errors_total');
    assert.equal(m.get('reporterd_task_requeues_total'), m.get('reporterd_tasks_total{outcome="requeued"}'),
        'reporterd_task_requeues_total');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('TLS settings reach the libraries: amqps with a missing CA file is fatal, TLS handshakes with plain servers fail and are retried', async () => {
    const names = freshNames();
    const base = { worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue } };

    const noCa = h.startDaemon(h.writeConfig(h.tmpDir(), h.deepMerge(base, {
        rabbitmq: { tls: true, tls_ca_file: '/nonexistent/ca.pem' },
    }), { names, mongoUri: ctx.mongo.uri }));
    await noCa.waitForLog(/cannot load rabbitmq\.tls_ca_file "\/nonexistent\/ca\.pem"/, 15000);
    await noCa.waitForLog(/an operator must fix this.*trying again in 30 s/, 10000);
    await noCa.shutdown('SIGTERM', 10000);

    const ca = ['/etc/ssl/certs/ca-certificates.crt'].find((f) => require('node:fs').existsSync(f));
    if (ca) {
        /* amqps against the plain AMQP port: the handshake fails, the worker retries */
        const plain = h.startDaemon(h.writeConfig(h.tmpDir(), h.deepMerge(base, {
            rabbitmq: { tls: true, tls_ca_file: ca, port: 5672, connect_timeout_ms: 1000 },
        }), { names, mongoUri: ctx.mongo.uri }));
        await plain.waitForLog(/broker unreachable: .*retrying in/, 20000);
        assert.ok(plain.running());
        await plain.shutdown('SIGTERM', 10000);
    }

    if (!ctx.mongo.external) {
        /* tls=true in mongodb.uri is the driver's: a plain server fails the handshake */
        const sep = ctx.mongo.uri.includes('?') ? '&' : '/?';
        const mtls = h.startDaemon(h.writeConfig(h.tmpDir(), base,
            { names, mongoUri: `${ctx.mongo.uri}${sep}tls=true&connectTimeoutMS=1000` }));
        await mtls.waitForLog(/database unreachable: .*retrying in/, 20000);
        await mtls.shutdown('SIGTERM', 10000);
    }
});

/* A TCP proxy in front of MongoDB that forwards every message except
 * aggregate commands, which it swallows: a query that never comes back,
 * while pings and handshakes still do. */
async function stallingMongoProxy(target) {
    const net = require('node:net');
    const port = await h.freePort();
    const socks = new Set();
    const state = { swallowed: 0 };
    const server = net.createServer((c) => {
        const up = net.connect(target.port, target.host);
        for (const x of [c, up]) { socks.add(x); x.on('close', () => socks.delete(x)); x.on('error', () => {}); }
        c.on('close', () => up.destroy());
        up.on('close', () => c.destroy());
        up.pipe(c);
        let buf = Buffer.alloc(0);
        c.on('data', (chunk) => {
            buf = Buffer.concat([buf, chunk]);
            while (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
                const n = buf.readInt32LE(0);
                const msg = buf.subarray(0, n);
                buf = buf.subarray(n);
                if (msg.includes(Buffer.from('\x02aggregate\x00', 'latin1'))) state.swallowed++;
                else up.write(msg);
            }
        });
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    h.onCleanup(() => new Promise((resolve) => {
        for (const x of socks) x.destroy();
        server.close(() => resolve());
    }));
    return { uri: `mongodb://127.0.0.1:${port}/?directConnection=true`, state };
}

test('a task whose query never comes back is tried max_redeliveries + 1 times, then answered with an Error', { timeout: 120000 }, async (t) => {
    const m = /^mongodb:\/\/([^/?,@]+):(\d+)\/?(\?.*)?$/.exec(ctx.mongo.uri);
    if (!m) return t.skip(`a proxy needs a plain mongodb://host:port URI (got ${ctx.mongo.uri.replace(/\/\/[^@]*@/, '//')})`);
    const proxy = await stallingMongoProxy({ host: m[1], port: Number(m[2]) });
    const names = freshNames();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1,
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, max_redeliveries: 1 },
        mongodb: { max_time_ms: 500 },
    }, { names, mongoUri: proxy.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 'stuck', phones: [1] });
    const [r] = await results.next(1, 90000);
    assert.equal(r.body.correlation_id, 'stuck');
    assert.equal(r.body.status, 'Error');
    assert.match(r.body.error, /did not finish within mongodb\.max_time_ms \(500 ms\), 2 times/);
    assert.equal(proxy.state.swallowed, 2, 'max_redeliveries + 1 = 2 attempts reached the database, none retried by the driver');
    assert.equal((daemon.log.match(/task stuck: the query ran out of time \(1 of at most 2 times\)/g) || []).length, 1);
    assert.equal(await ctx.broker.messageCount(names.dead_letter_queue), 0, 'not dead-lettered: answered');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('results of the same task share a message_id, so clients can drop duplicates', async () => {
    const names = freshNames();
    const daemon = h.startDaemon(h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: ctx.mongo.uri }));
    await daemon.waitReady(1, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    const body = '{"correlation_id": 4242, "phones": [1, 2]}';
    await ctx.broker.publish(names.task_queue, body);
    await ctx.broker.publish(names.task_queue, body);           /* an at-least-once duplicate */
    await ctx.broker.publish(names.task_queue, '{"correlation_id": 4242, "phones": [3]}');
    const [a, b, c] = await results.next(3, 20000);
    assert.equal(a.properties.messageId, b.properties.messageId, 'the same task, the same message_id');
    assert.notEqual(a.properties.messageId, c.properties.messageId, 'another task with the same id differs');
    assert.match(a.properties.messageId, /^4242-[0-9a-f]{16}$/);
    await daemon.shutdown('SIGQUIT', 20000);
});
