/*
 * pipeline.test.js -- reporterd end to end: tasks in through RabbitMQ,
 * reports computed by MongoDB, results out through RabbitMQ, every field
 * checked against a brute-force oracle (harness.expectedReport), plus bad
 * and unreadable input, and `reporterd -t`.
 *
 * Runs against the test MongoDB stand-in, or a real MongoDB when
 * REPORTERD_TEST_MONGODB_URI is set.  REPORTERD_TEST_SEED=N replays a data
 * set (the seed in use is printed as a TAP comment).
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('../lib/harness.js');

const { prng } = h;

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const WORKERS = 2;

let ctx;            /* harness.setup() */
let daemon;
let records;
let phones;         /* every phone number in the data set, and some without records */
let emptyPhones;

function makeData(rnd) {
    const recs = [];
    const all = [];
    const empty = [];
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    /* edge durations in seconds: the bucket borders 10 and 30, the >15 border,
     * and fractional values on either side of them */
    const edges = [0, 0.001, 9.999, 10, 10.001, 14.999, 15, 15.001, 15.5, 29.999, 30, 30.001, 120];
    for (let i = 0; i < 30; i++) {
        /* int32 and int64 phone numbers */
        const phone = i < 8 ? 1000 + i : 79160000000 + i * 1013;
        all.push(phone);
        let n;
        if (i % 10 === 3) n = 0;                        /* phones with no records */
        else if (i === 5) n = 1;                        /* a single record */
        else n = Math.floor(rnd() * 201);               /* 0..200 */
        if (n === 0) empty.push(phone);
        for (let k = 0; k < n; k++) {
            let d;
            if (i % 4 === 0 && k < edges.length) d = edges[k];
            else if (rnd() < 0.1) d = Math.round(rnd() * 120000) / 1000;   /* ms precision */
            else d = Math.floor(rnd() * 121);                             /* whole seconds 0..120 */
            const st = base + Math.floor(rnd() * 30 * 86400 * 1000);
            /* the contract's epoch milliseconds; every third record as a
             * BSON date, which a real collection may also hold */
            const en = st + Math.round(d * 1000);
            recs.push(k % 3 === 2 ? { phone, start_date: new Date(st), end_date: new Date(en) }
                : { phone, start_date: st, end_date: en });
        }
    }
    /* records of a phone nobody asks for */
    for (let k = 0; k < 50; k++) {
        const st = base + k * 60000;
        recs.push({ phone: 555, start_date: new Date(st), end_date: new Date(st + 12000) });
    }
    /* phones never in the data set */
    all.push(79999999999, 1, 2147483648);
    empty.push(79999999999, 1, 2147483648);
    return { recs, all, empty };
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdpipe' });
    const rnd = prng(SEED);
    ({ recs: records, all: phones, empty: emptyPhones } = makeData(rnd));
    await ctx.loadRecords(records);
    const cfg = ctx.writeConfig({ worker_processes: WORKERS });
    daemon = h.startDaemon(cfg);
    await daemon.waitReady(WORKERS, 30000);
});

after(async () => {
    await h.cleanup();
});

/* The JSON text of a correlation id and its JS value as parseJson gives it. */
function idKey(v) {
    return typeof v === 'string' ? `s:${v}` : `n:${v.toString()}`;
}

/* Build the task list: [{raw?: string, body?: object, kind, id?, phones?}] */
function makeTasks(rnd) {
    const tasks = [];
    let next = 13242421424214;
    const pick = (k) => Array.from({ length: k }, () => phones[Math.floor(rnd() * phones.length)]);
    const good = (id, ps, idText) => {
        const idJson = idText || JSON.stringify(id);
        const raw = `{"correlation_id": ${idJson}, "phones": ${JSON.stringify(ps)}}`;
        tasks.push({ kind: 'good', id: typeof id === 'string' ? id : BigInt(idText || id), phones: ps, raw });
    };
    const bad = (id, rawBody, why) => {
        tasks.push({ kind: 'error', id: typeof id === 'string' ? id : BigInt(id), raw: rawBody, why });
    };
    const unreadable = (rawBody, why) => tasks.push({ kind: 'unreadable', raw: rawBody, why });

    for (let i = 0; i < 30; i++) good(next++, pick(1 + Math.floor(rnd() * 10)));
    good(next++, [phones[0], phones[0], phones[1], phones[0]]);                   /* duplicates */
    good(next++, emptyPhones.slice(0, 3));                                          /* no records at all */
    good(next++, [emptyPhones[0], phones[2], emptyPhones[1], phones[2]]);
    good(next++, phones.slice(0, 30).concat(phones.slice(0, 30), phones.slice(0, 30), phones.slice(0, 10))); /* exactly 100 */
    good(null, [phones[4]], '9007199254740993');                                   /* 2^53 + 1 */
    good(null, [phones[6], phones[7]], '9223372036854775807');                     /* int64 max */
    good('order-42', [phones[8]]);
    good('заказ №7 "quoted" \\ back', [phones[9], phones[10]]);
    good('13242421424299', [phones[11]]);                                         /* digits, but a string */

    let eid = 90000;
    bad(eid++, `{"correlation_id": ${eid - 1}}`, 'phones missing');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": []}`, 'phones empty');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": "1000"}`, 'phones not an array');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": {"a": 1}}`, 'phones an object');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000, "1001"]}`, 'string phone');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000.5]}`, 'fractional phone');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000, null]}`, 'null phone');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [true]}`, 'boolean phone');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [99999999999999999999]}`, 'phone beyond int64');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": ${JSON.stringify(Array.from({ length: 101 }, (_, k) => 1000 + (k % 8)))}}`,
        '101 phones');
    bad('bad-string-id', '{"correlation_id": "bad-string-id", "phones": [[1000]]}', 'nested array phone');

    unreadable('this is not json', 'not JSON');
    unreadable('', 'empty body');
    unreadable('[1, 2, 3]', 'an array');
    unreadable('"just a string"', 'a string');
    unreadable('{}', 'no correlation_id');
    unreadable(`{"phones": [${phones[0]}]}`, 'no correlation_id, good phones');
    unreadable(`{"correlation_id": null, "phones": [${phones[0]}]}`, 'null correlation_id');
    unreadable(`{"correlation_id": true, "phones": [${phones[0]}]}`, 'boolean correlation_id');
    unreadable(`{"correlation_id": {"x": 1}, "phones": [${phones[0]}]}`, 'object correlation_id');
    unreadable(`{"correlation_id": 18446744073709551616, "phones": [${phones[0]}]}`, 'correlation_id beyond 64 bits');
    unreadable(`{"correlation_id": 9223372036854775808, "phones": [${phones[0]}]}`, 'correlation_id = INT64_MAX + 1');
    unreadable(`{"correlation_id": 77, "phones": [${phones[0]},`, 'truncated JSON');
    unreadable(Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x80]), 'binary garbage');

    /* interleave deterministically */
    for (let i = tasks.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [tasks[i], tasks[j]] = [tasks[j], tasks[i]];
    }
    return tasks;
}

const TS_RE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/;

function checkEnvelope(r, task) {
    const what = `result for ${task.raw.slice(0, 120)}`;
    assert.equal(r.parseError, null, `${what}: not JSON: ${r.raw.slice(0, 300)}`);
    assert.equal(r.properties.contentType, 'application/json', `${what}: content_type`);
    assert.equal(r.properties.deliveryMode, 2, `${what}: delivery_mode (persistent)`);
    const b = r.body;
    /* the correlation id keeps its JSON type and exact value */
    if (typeof task.id === 'string') {
        assert.equal(typeof b.correlation_id, 'string', `${what}: correlation_id type`);
        assert.equal(b.correlation_id, task.id, `${what}: correlation_id`);
        assert.equal(r.properties.correlationId, task.id, `${what}: AMQP correlation_id property`);
    } else {
        assert.ok(typeof b.correlation_id === 'number' || typeof b.correlation_id === 'bigint',
            `${what}: correlation_id must stay an integer, got ${typeof b.correlation_id}`);
        assert.equal(BigInt(b.correlation_id), task.id, `${what}: correlation_id (raw: ${r.raw.slice(0, 80)})`);
        assert.equal(r.properties.correlationId, task.id.toString(), `${what}: AMQP correlation_id property`);
    }
    assert.match(String(r.properties.messageId), /^.+-[0-9a-f]{16}$/,
        `${what}: message_id (correlation_id + task fingerprint)`);
    assert.ok(String(r.properties.messageId).startsWith(`${r.properties.correlationId}-`),
        `${what}: message_id starts with the correlation_id`);
    assert.match(String(b.task_received), TS_RE, `${what}: task_received`);
    assert.equal(b.from, 'report_service', `${what}: from`);
    assert.equal(b.to, 'client', `${what}: to`);
    assert.ok(Array.isArray(b.data), `${what}: data must be an array`);
}

let tasks;
let byId;

test('every task gets exactly one correct result', { timeout: 180000 }, async (t) => {
    t.diagnostic(`seed ${SEED}`);
    tasks = makeTasks(prng(SEED ^ 0x5eed));
    const collector = await ctx.results();
    for (const task of tasks) await ctx.publishTask(Buffer.isBuffer(task.raw) ? task.raw : Buffer.from(task.raw));
    const expected = tasks.filter((x) => x.kind !== 'unreadable');
    const seen = () => new Set(collector.messages.slice(collector.taken)
        .filter((r) => r.body && r.body.correlation_id !== undefined).map((r) => idKey(r.body.correlation_id)));
    /* wait for all; on a timeout still check what came, then report the missing */
    let missingErr = null;
    try {
        await h.waitFor(() => collector.pending() >= expected.length, 60000, () => {
            const got = seen();
            const missing = expected.filter((x) => !got.has(idKey(x.id)));
            return `${expected.length} results (got ${collector.pending()}); missing results for: ` +
                missing.map((x) => `${x.raw.slice(0, 100)}`).join(' | ');
        });
    } catch (e) {
        missingErr = e;
    }
    const results = await collector.next(Math.min(collector.pending(), expected.length), 1000);

    byId = new Map();
    for (const r of results) {
        assert.equal(r.parseError, null, `result is not JSON: ${r.raw.slice(0, 300)}`);
        const k = idKey(r.body.correlation_id);
        assert.ok(!byId.has(k), `two results for correlation_id ${k}: ${r.raw.slice(0, 200)}`);
        byId.set(k, r);
    }
    for (const task of tasks) {
        if (task.kind === 'unreadable') continue;
        const r = byId.get(idKey(task.id));
        if (!r && missingErr) continue;
        assert.ok(r, `no result for ${task.raw.slice(0, 120)} (got ids ${[...byId.keys()].join(', ')})`);
        checkEnvelope(r, task);
        const b = r.body;
        if (task.kind === 'good') {
            assert.equal(b.status, 'Complete', `status for ${task.raw.slice(0, 120)}: ${r.raw.slice(0, 300)}`);
            assert.equal(typeof b.total_duration, 'number', 'total_duration is a number');
            assert.ok(b.total_duration >= 0 && b.total_duration < 60, `total_duration ${b.total_duration}`);
            h.assertReport(b.data, h.expectedReport(records, task.phones, 10), `task ${task.id}`);
        } else {
            assert.equal(b.status, 'Error', `status for bad task (${task.why}): ${r.raw.slice(0, 300)}`);
            assert.equal(typeof b.error, 'string', `error string for ${task.why}`);
            assert.ok(b.error.length > 0, `non-empty error for ${task.why}`);
            assert.deepEqual(b.data, [], `data for ${task.why}`);
        }
    }
    if (missingErr) throw missingErr;
    /* nothing else: the unreadable messages produced no result */
    await collector.expectNone(300);
});

test('unreadable messages are rejected without requeue and the workers keep serving', { timeout: 60000 }, async () => {
    assert.ok(tasks, 'runs after the first test');
    const unreadable = tasks.filter((x) => x.kind === 'unreadable').length;
    await h.waitFor(async () => (await ctx.broker.messageCount(ctx.names.task_queue)) === 0, 20000,
        'the task queue to drain');
    /* still serving, on every worker: more tasks than workers, all answered */
    const collector = await ctx.results();
    const ids = [];
    for (let i = 0; i < WORKERS * 3; i++) {
        ids.push(777000 + i);
        await ctx.publishTask({ correlation_id: 777000 + i, phones: [phones[i]] });
    }
    const rs = await collector.next(ids.length, 30000);
    assert.deepEqual(rs.map((r) => Number(r.body.correlation_id)).sort((a, b) => a - b), ids);
    for (const r of rs) {
        assert.equal(r.body.status, 'Complete');
        const i = Number(r.body.correlation_id) - 777000;
        h.assertReport(r.body.data, h.expectedReport(records, [phones[i]]), `after-bad task ${i}`);
    }
    await collector.expectNone(200);
    daemon.assertCleanLog();
    /* the unreadable ones went to the dead-letter queue (<task_queue>.dead), nothing else did */
    let dlqCount = null;
    await h.waitFor(async () => (dlqCount = await ctx.broker.messageCount(ctx.names.dead_letter_queue)) === unreadable,
        10000, () => `${unreadable} messages in ${ctx.names.dead_letter_queue} (it has ${dlqCount})`);
});

test('reporterd -t accepts the config it runs with and rejects a bad one with file:line:col', async () => {
    const good = ctx.writeConfig({}, { fileName: 'good.yaml' });
    const ok = await h.run(h.env.reporterd, ['-t', '-c', good]);
    assert.equal(ok.code, 0, `-t on a good config: exit ${ok.code}, stderr: ${ok.stderr}`);

    const bad = ctx.writeConfig({ rabbitmq: { port: 70000 } }, { fileName: 'bad.yaml' });
    const lines = fs.readFileSync(bad, 'utf8').split('\n');
    const line = lines.findIndex((l) => /port: 70000/.test(l)) + 1;
    const r = await h.run(h.env.reporterd, ['-t', '-c', bad]);
    assert.notEqual(r.code, 0, '-t on a bad config must fail');
    const esc = bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(r.stderr, new RegExp(`${esc}:${line}:\\d+`), `message names file:line:col: ${r.stderr}`);
    assert.match(r.stderr, /port/, r.stderr);

    const syntax = h.writeConfigText(ctx.dir, 'daemon: off\nrabbitmq:\n  host: [unclosed\n', 'syntax.yaml');
    const s = await h.run(h.env.reporterd, ['-t', '-c', syntax]);
    assert.notEqual(s.code, 0, '-t on a YAML syntax error must fail');
    assert.match(s.stderr, /syntax\.yaml:\d+:\d+/, s.stderr);
});

test('TERM stops the daemon and its workers cleanly', { timeout: 60000 }, async () => {
    daemon.stop('SIGTERM');
    const ex = await daemon.waitExit(30000);
    assert.equal(ex.code, 0, `exit status after SIGTERM: ${JSON.stringify(ex)}; log:\n${daemon.log.slice(-2000)}`);
    assert.match(daemon.log, /master exiting/);
});
