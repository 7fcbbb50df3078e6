/*
 * pipeline.test.js -- reporterd end to end: tasks in through RabbitMQ,
 * reports computed by MongoDB, results out through RabbitMQ, every field
 * checked against a brute-force oracle (harness.expectedReport), plus bad
 * and unreadable input, and `reporterd -t`.
 *
 * Runs against the test MongoDB stand-in, or a real MongoDB when
 * REPORTERD_TEST_MONGODB_URI is set.  REPORTERD_TEST_SEED=N replays a data
 * set (the seed in use is printed as a TAP comment).
 *
 * Figures are compared exactly with the oracle's decimals, decimal ties
 * included (they also have a test of their own); invalid records are left
 * out of every figure and counted in reporterd_invalid_records_total.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('../lib/harness.js');

const { prng } = h;

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const WORKERS = 2;
/* report.price_per_second: not a whole number, so every price figure of
 * the main correctness test is rounded (at 10, the default, each is a
 * whole number of cents and no rounding bug would show) */
const PRICE = '7.3';

let ctx;            /* harness.setup() */
let daemon;
let metricsUrl;     /* the daemon's status listener: task counters */
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
    const port = await h.freePort();
    metricsUrl = `http://127.0.0.1:${port}`;
    const cfg = ctx.writeConfig({ worker_processes: WORKERS, status: { listen: `127.0.0.1:${port}` },
        report: { price_per_second: PRICE } });
    daemon = h.startDaemon(cfg);
    await daemon.waitReady(WORKERS, 30000);
    await daemon.waitForLog(/serving \/metrics/);
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
    /* why: what the test means; error: the daemon's exact reason */
    const bad = (id, rawBody, why, error) => {
        tasks.push({ kind: 'error', id: typeof id === 'string' ? id : BigInt(id), raw: rawBody, why, error });
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
    bad(eid++, `{"correlation_id": ${eid - 1}}`, 'phones missing', 'phones is missing');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": []}`, 'phones empty', 'phones is empty');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": "1000"}`, 'phones not an array',
        'phones must be an array of integers, not string');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": {"a": 1}}`, 'phones an object',
        'phones must be an array of integers, not object');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000, "1001"]}`, 'string phone',
        'phones[1] must be an integer, not string');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000.5]}`, 'fractional phone',
        'phones[0] must be an integer, not double');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [1000, null]}`, 'null phone',
        'phones[1] must be an integer, not null');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [true]}`, 'boolean phone',
        'phones[0] must be an integer, not boolean');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": [99999999999999999999]}`, 'phone beyond int64',
        'phones[0] is outside the 64-bit integer range');
    bad(eid++, `{"correlation_id": ${eid - 1}, "phones": ${JSON.stringify(Array.from({ length: 101 }, (_, k) => 1000 + (k % 8)))}}`,
        '101 phones', 'phones has 101 entries, more than the maximum of 100');
    bad('bad-string-id', '{"correlation_id": "bad-string-id", "phones": [[1000]]}', 'nested array phone',
        'phones[0] must be an integer, not array');

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
let doneSoFar;      /* the task counters after the first test */

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
            h.assertReport(b.data, h.expectedReport(records, task.phones, PRICE), `task ${task.id}`);
        } else {
            assert.equal(b.status, 'Error', `status for bad task (${task.why}): ${r.raw.slice(0, 300)}`);
            assert.equal(b.error, task.error, `the reason for ${task.why}`);
            assert.deepEqual(b.data, [], `data for ${task.why}`);
        }
    }
    if (missingErr) throw missingErr;
    /* nothing else: every task counted done (so every result is in the
     * queue), then a sentinel task: nothing may come before its result,
     * so the unreadable messages produced none and no task was answered
     * twice */
    const unreadable = tasks.length - expected.length;
    const good = tasks.filter((x) => x.kind === 'good').length;
    await h.waitForTaskCounts(metricsUrl,
        { complete: good, error: expected.length - good, dead_lettered: unreadable, requeued: 0 });
    const s = await collector.expectNoneBefore((id) => ctx.publishTask({ correlation_id: id, phones: [phones[0]] }));
    h.assertReport(s.body.data, h.expectedReport(records, [phones[0]], PRICE), 'sentinel task');
    doneSoFar = { complete: good + 1, error: expected.length - good, dead_lettered: unreadable, requeued: 0 };
    await h.waitForTaskCounts(metricsUrl, doneSoFar);
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
    assert.deepEqual(rs.map((r) => r.body.correlation_id).sort((a, b) => a - b), ids);
    for (const r of rs) {
        assert.equal(r.body.status, 'Complete');
        const i = r.body.correlation_id - 777000;
        h.assertReport(r.body.data, h.expectedReport(records, [phones[i]], PRICE), `after-bad task ${i}`);
    }
    await h.waitForTaskCounts(metricsUrl, Object.assign({}, doneSoFar, { complete: doneSoFar.complete + ids.length }));
    await collector.expectNoneBefore((id) => ctx.publishTask({ correlation_id: id, phones: [phones[1]] }));
    daemon.assertCleanLog();
    /* the unreadable ones went to the dead-letter queue (<task_queue>.dead), nothing else did */
    let dlqCount = null;
    await h.waitFor(async () => (dlqCount = await ctx.broker.messageCount(ctx.names.dead_letter_queue)) === unreadable,
        10000, () => `${unreadable} messages in ${ctx.names.dead_letter_queue} (it has ${dlqCount})`);
});

/*
 * Decimal ties: records whose exact figures lie halfway between two cents.
 * Half away from zero makes them 1.01, 0.29, 4.02, 0.15 (average durations
 * 1.005, 0.285, 4.015, 0.145 s) and, at 0.7 a second, 0.25 and 11.31
 * (prices 0.245 and 11.305).  Today's daemon rounds binary doubles with
 * round(v * 100) / 100, and each of these doubles lies just below the tie:
 * it prints 1, 0.28, 4.01, 0.14, 0.24 and 11.3.  A daemon of its own
 * (price_per_second 0.7, one worker) over a collection of its own.
 */
const TIE_PRICE = '0.7';
const TIES = [
    /* phone, duration ms, the figures the tie is in, their value half away from zero */
    [11, 1005, ['avg_dur_att'], '1.01'],
    [12, 285, ['avg_dur_att'], '0.29'],
    [13, 4015, ['avg_dur_att'], '4.02'],
    [14, 145, ['avg_dur_att'], '0.15'],
    [15, 350, ['min_price_att', 'max_price_att'], '0.25'],
    [16, 16150, ['min_price_att', 'max_price_att', 'sum_price_att_over_15'], '11.31'],
];
let tieResult = null;
let tieRecords = null;

test('the decimal-tie data set is answered (figures in the next test)', { timeout: 60000 }, async () => {
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    tieRecords = TIES.map(([phone, ms], i) => ({ phone, start_date: base + i, end_date: base + i + ms }));
    const names = Object.assign(h.uniqueNames('rdties'), { database: ctx.names.database, collection: 'ties' });
    h.onCleanup(async () => {
        for (const q of [names.task_queue, names.result_queue, names.dead_letter_queue]) await ctx.broker.deleteQueue(q);
    });
    await h.loadRecords(ctx.mongo.uri, names.database, names.collection, tieRecords);
    const d = h.startDaemon(h.writeConfig(h.tmpDir(), { worker_processes: 1, report: { price_per_second: TIE_PRICE } },
        { names, mongoUri: ctx.mongo.uri }));
    await d.waitReady(1, 30000);
    const results = await ctx.broker.collector(names.result_queue);
    const phonesAsked = TIES.map(([phone]) => phone);
    await ctx.broker.publish(names.task_queue, { correlation_id: 'ties', phones: phonesAsked });
    const [r] = await results.next(1, 20000);
    assert.equal(r.body.correlation_id, 'ties');
    assert.equal(r.body.status, 'Complete', r.raw.slice(0, 300));
    assert.equal(r.body.data.length, TIES.length, 'one entry per phone');
    r.body.data.forEach((e, i) => {
        assert.equal(e.phone, phonesAsked[i], `data[${i}].phone`);
        assert.equal(e.cnt_all_attempts, 1, `data[${i}] (phone ${e.phone}): one record`);
    });
    tieResult = r.body;
    await d.shutdown('SIGQUIT', 20000);
});

test('decimal ties are rounded half away from zero', () => {
    assert.ok(tieResult, 'the previous test got the result');
    /* the values written above, and the oracle, which computes them */
    const oracle = h.expectedReport(tieRecords, TIES.map(([phone]) => phone), TIE_PRICE);
    const wrong = [];
    TIES.forEach(([phone, , figures, want], i) => {
        for (const k of figures) {
            assert.equal(oracle[i][k], want, `the oracle agrees: phone ${phone} ${k}`);
            const got = tieResult.data[i][k];
            if (typeof got !== 'number' || h.decimalText(h.exactDecimal(got)) !== want) {
                wrong.push(`phone ${phone} ${k}: expected ${want}, got ${JSON.stringify(got)}`);
            }
        }
    });
    assert.deepEqual(wrong, [], `decimal ties rounded wrongly:\n  ${wrong.join('\n  ')}`);
    h.assertReport(tieResult.data, oracle, 'ties');
});

/*
 * Invalid records: a requested phone's records whose dates are missing,
 * null, strings, fractional, of mixed kinds, reversed or beyond 2^52 ms are
 * left out of cnt_all_attempts and every figure (never in 10_sec), counted
 * in reporterd_invalid_records_total, and the task is still Complete.
 */
test('invalid records are left out of every figure, counted, and the task is Complete', { timeout: 60000 }, async () => {
    const { Long, Double } = require('mongodb');
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    const good = [
        { phone: 21, start_date: base, end_date: base + 12000 },
        { phone: 21, start_date: new Date(base), end_date: new Date(base + 40000) },
        { phone: 22, start_date: new Double(1000), end_date: new Double(3500) },
        { phone: 22, start_date: Long.fromNumber(-5000), end_date: Long.fromNumber(20000) },
    ];
    const bad = [
        { phone: 21, end_date: base },                                          /* missing start */
        { phone: 21, start_date: null, end_date: null },                        /* null */
        { phone: 21, start_date: '2023-05-09', end_date: '2023-05-10' },        /* strings */
        { phone: 22, start_date: 1000.5, end_date: 2000 },                      /* fractional double */
        { phone: 22, start_date: new Date(base), end_date: base + 1000 },       /* mixed Date and integer */
        { phone: 22, start_date: base + 1000, end_date: base },                 /* reversed */
        { phone: 23, start_date: 0, end_date: Long.fromString('9007199254740992') },   /* 2^53 */
        { phone: 23 },                                                          /* no dates at all */
    ];
    const recs = good.concat(bad, [{ phone: '21', start_date: 1, end_date: 2 }]);   /* a string phone: no match */
    const asked = [21, 22, 23];
    const want = h.expectedReport(recs, asked, 10);
    assert.deepEqual(want.map((e) => e.cnt_all_attempts), [2, 2, 0], 'the oracle leaves the invalid records out');
    assert.equal(h.expectedInvalid(recs, asked), bad.length, 'and counts them');
    const names = Object.assign(h.uniqueNames('rdinval'), { database: ctx.names.database, collection: 'invalid' });
    h.onCleanup(async () => {
        for (const q of [names.task_queue, names.result_queue, names.dead_letter_queue]) await ctx.broker.deleteQueue(q);
    });
    await h.loadRecords(ctx.mongo.uri, names.database, names.collection, recs);
    const port = await h.freePort();
    const d = h.startDaemon(h.writeConfig(h.tmpDir(), { worker_processes: 1, status: { listen: `127.0.0.1:${port}` } },
        { names, mongoUri: ctx.mongo.uri }));
    await d.waitReady(1, 30000);
    await d.waitForLog(/serving \/metrics/);
    const url = `http://127.0.0.1:${port}`;
    const before0 = (await h.readMetrics(url)).get('reporterd_invalid_records_total');
    assert.equal(before0, 0, 'no invalid record counted before the task');
    const results = await ctx.broker.collector(names.result_queue);
    await ctx.broker.publish(names.task_queue, { correlation_id: 'invalid', phones: asked });
    const [r] = await results.next(1, 20000);
    assert.equal(r.body.status, 'Complete', r.raw.slice(0, 300));
    h.assertReport(r.body.data, want, 'invalid records');
    assert.equal(r.body.data[2].min_price_att, null, 'phone 23: only invalid records, no figures');
    assert.equal(r.body.data[2].cnt_att_dur['10_sec'], 0, 'phone 23: nothing in 10_sec');
    await h.waitFor(async () => (await h.readMetrics(url)).get('reporterd_invalid_records_total') === bad.length,
        10000, () => `reporterd_invalid_records_total = ${bad.length}`);
    await d.shutdown('SIGQUIT', 20000);
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
