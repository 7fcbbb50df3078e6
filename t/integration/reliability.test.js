/*
 * reliability.test.js -- what reporterd does when things go wrong that
 * are not the operator's signals: a task that kills its worker (classic
 * and quorum queues), a task queue declared by someone else with other
 * arguments (406), a deleted result queue, bad credentials (no password
 * in any log line), and the database going away while tasks wait.
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

async function poisonRun(queueType) {
    if (!h.env.testhooks) return 'REPORTERD_TESTHOOKS not set';
    const names = freshNames();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 3,
        rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, queue_type: queueType, max_redeliveries: 2 },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg, { binary: h.env.testhooks, env: { REPORTERD_TEST_CRASH_PHONE: String(CRASH_PHONE) } });
    await daemon.waitReady(3, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 'poison', phones: [1, CRASH_PHONE] });
    await h.waitFor(async () => (await ctx.broker.messageCount(names.dead_letter_queue)) === 1, 60000,
        () => `the poison task in ${names.dead_letter_queue} (log tail: ${daemon.log.slice(-1500)})`);
    const kills = (daemon.log.match(/killed by signal 9/g) || []).length;
    assert.ok(kills >= 2 && kills <= 4, `the poison task killed ${kills} workers: bounded by max_redeliveries`);
    /* the daemon still serves, and the poison task produced no result */
    for (let i = 0; i < 3; i++) await ctx.broker.publish(names.task_queue, { correlation_id: i, phones: [i + 1, 4] });
    const got = await results.next(3, 60000);
    for (const r of got) {
        assert.equal(r.body.status, 'Complete');
        h.assertReport(r.body.data, h.expectedReport(records, [Number(r.body.correlation_id) + 1, 4]));
    }
    await results.expectNone(300);
    assert.ok(got.every((r) => r.body.correlation_id !== 'poison'));
    await daemon.shutdown('SIGQUIT', 20000);
    return null;
}

test('a task that kills its worker ends in the dead-letter queue (classic: counted by reporterd)', async (t) => {
    const why = await poisonRun('classic');
    if (why) t.skip(why);
});

test('a task that kills its worker ends in the dead-letter queue (quorum: x-delivery-limit)', async (t) => {
    const why = await poisonRun('quorum');
    if (why) t.skip(why);
});

test('a task queue declared with other arguments: 406 logged, worker not respawned, queue kept', async () => {
    const names = freshNames();
    await ctx.broker.declareQueue(names.task_queue, { 'x-max-length': 1000 });
    await ctx.broker.publish(names.task_queue, { correlation_id: 1, phones: [1] });
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitForLog(/PRECONDITION_FAILED[^\n]*never deletes a queue/, 20000);
    await daemon.waitForLog(/not respawning it until the configuration is reloaded/, 10000);
    assert.ok(daemon.running(), 'the master keeps running');
    assert.equal(await ctx.broker.messageCount(names.task_queue), 1, 'the queue and its message are untouched');
    assert.equal((daemon.log.match(/spawned worker/g) || []).length, 1, 'no respawn loop');
    await daemon.shutdown('SIGTERM', 10000);
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

test('wrong broker credentials: a clear fatal error, and the password appears nowhere', async () => {
    const secret = 'S3cr3t-Pa55word-xyz';
    const names = freshNames();
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue, password: secret },
    }, { names, mongoUri: ctx.mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitForLog(/login to 127\.0\.0\.1:5672 as "guest" vhost "\/" refused/, 20000);
    await daemon.waitForLog(/not respawning/, 10000);
    const dump = await h.run(h.env.reporterd, ['-T', '-c', cfg]);
    assert.equal(dump.code, 0);
    assert.match(dump.stdout, /password: "\*+"/);
    await daemon.shutdown('SIGTERM', 10000);
    assert.ok(!daemon.log.includes(secret), 'the password is in the log');
    assert.ok(!dump.stdout.includes(secret) && !dump.stderr.includes(secret), 'the password is in -T output');
});

test('the database goes away: tasks wait in the queue and complete once it is back', async (t) => {
    if (ctx.mongo.external) return t.skip('needs the test server, which the test can stop');
    const mongo = await h.startMongo();
    const names = freshNames();
    await h.loadRecords(mongo.uri, names.database, names.collection, records);
    const cfg = h.writeConfig(h.tmpDir(), {
        worker_processes: 2, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue },
    }, { names, mongoUri: mongo.uri });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(2, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    await mongo.stop();
    for (let i = 0; i < 6; i++) await ctx.broker.publish(names.task_queue, { correlation_id: i, phones: [1, 2, 3] });
    await daemon.waitForLog(/database unavailable, returning the task to the queue|database unreachable/, 20000);
    await results.expectNone(500);
    /* restart on the same port; the test server is in memory: load it again
     * before the workers' backoff lets them at it */
    await mongo.restart();
    await h.loadRecords(mongo.uri, names.database, names.collection, records);
    const got = await results.next(6, 90000);
    const ids = new Set(got.map((r) => Number(r.body.correlation_id)));
    assert.equal(ids.size, 6, 'every task answered once');
    for (const r of got) assert.equal(r.body.status, 'Complete', JSON.stringify(r.body).slice(0, 300));
    assert.equal(await ctx.broker.messageCount(names.dead_letter_queue), 0, 'nothing dead-lettered');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('TLS settings reach the libraries: amqps with a missing CA file is fatal, TLS handshakes with plain servers fail and are retried', async () => {
    const names = freshNames();
    const base = { worker_processes: 1, rabbitmq: { task_queue: names.task_queue, result_queue: names.result_queue } };

    const noCa = h.startDaemon(h.writeConfig(h.tmpDir(), h.deepMerge(base, {
        rabbitmq: { tls: true, tls_ca_file: '/nonexistent/ca.pem' },
    }), { names, mongoUri: ctx.mongo.uri }));
    await noCa.waitForLog(/cannot load rabbitmq\.tls_ca_file "\/nonexistent\/ca\.pem"/, 15000);
    await noCa.waitForLog(/not respawning/, 10000);
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
