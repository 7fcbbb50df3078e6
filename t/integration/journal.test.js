/*
 * journal.test.js -- the task journal (journal.enabled): one document per
 * task outcome, read back with the official Node driver and compared with
 * what the client received from the result queue; its TTL index; a journal
 * that cannot be written never holds back a result; with the journal off
 * nothing is written.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');

let ctx;
let records;
const COLL = 'jnl';

before(async () => {
    ctx = await h.setup({ prefix: 'rdjournal' });
    records = [];
    for (let p = 1; p <= 4; p++) {
        for (let k = 0; k < 10; k++) records.push({ phone: p, start_date: 1000 * k, end_date: 1000 * k + 1000 * (k * 7 % 61) });
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

async function journalDocs(filter = {}) {
    const client = await h.mongoClient(ctx.mongo.uri);
    return client.db(ctx.names.database).collection(COLL).find(filter, { promoteLongs: false }).toArray();
}

const num = (v) => (v !== null && typeof v === 'object' && typeof v.toNumber === 'function' ? v.toNumber() : v);

async function failCommand(data, mode) {
    const client = await h.mongoClient(ctx.mongo.uri);
    try {
        await client.db('admin').command({ configureFailPoint: 'failCommand', mode, data });
        return true;
    } catch (e) {
        return e.message;
    }
}

async function daemonWith(extra = {}) {
    const port = await h.freePort();
    const cfg = ctx.writeConfig(h.deepMerge({
        worker_processes: 1,
        status: { listen: `127.0.0.1:${port}` },
        journal: { enabled: true, collection: COLL, retention: '2d' },
        rabbitmq: { max_redeliveries: 2 },
    }, extra));
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    await daemon.waitForLog(/serving \/metrics and \/healthz/, 10000);
    return { daemon, base: `http://127.0.0.1:${port}`, cfg };
}

test('every outcome has its document: complete, Error, dead-lettered, answered after transient database errors, answered twice', { timeout: 120000 }, async (t) => {
    const probe = await failCommand({ failCommands: ['aggregate'] }, 'off');
    if (probe !== true) return t.skip(`the server refuses configureFailPoint: ${probe}`);
    const { daemon, base } = await daemonWith();
    const results = await ctx.results();
    const started = Date.now();

    await ctx.publishTask({ correlation_id: 123, phones: [1, 2] });
    await ctx.publishTask({ correlation_id: '123', phones: [3] });
    await ctx.publishTask({ correlation_id: 'bad', phones: [] });
    const got = await results.next(3, 30000);
    await ctx.publishTask('not json at all', { properties: { messageId: 'amqp-mid-1', correlationId: 'c-9' } });
    await ctx.publishTask(Buffer.from([0xff, 0xfe, 0x41]));
    /* three transient errors (91 ShutdownInProgress): back to the queue
     * three times, answered by the fourth attempt */
    assert.equal(await failCommand({ failCommands: ['aggregate'], errorCode: 91 }, { times: 3 }), true);
    await ctx.publishTask({ correlation_id: 77, phones: [4] });
    got.push(...await results.next(1, 60000));
    /* the same body twice: one message id, answered twice */
    await ctx.publishTask({ correlation_id: 'twice', phones: [1] });
    await ctx.publishTask({ correlation_id: 'twice', phones: [1] });
    got.push(...await results.next(2, 30000));
    await h.waitForTaskCounts(base, { complete: 5, error: 1, dead_lettered: 2 }, 30000);

    const docs = await journalDocs();
    const byId = new Map(docs.map((d) => [d._id, d]));
    assert.equal(docs.length, 7, `7 documents: ${docs.map((d) => d._id).join(', ')}`);
    for (const r of got) {
        const d = byId.get(r.properties.messageId);
        assert.ok(d, `a document keyed by the result's message_id ${r.properties.messageId}`);
        assert.equal(d.message_id, r.properties.messageId);
        assert.deepEqual(num(d.correlation_id), num(r.body.correlation_id), 'the same id');
        assert.equal(typeof num(d.correlation_id), typeof num(r.body.correlation_id), 'of the same JSON type');
        assert.equal(d.outcome, r.body.status === 'Complete' ? 'complete' : 'error');
        assert.equal(d.result.status, r.body.status);
        assert.equal(d.result_truncated, null);
        assert.ok(d.received instanceof Date && d.answered instanceof Date && d.answered >= d.received);
        assert.ok(d.received.getTime() >= started - 1000 && d.answered.getTime() <= Date.now());
        assert.equal(typeof d.total_duration, 'number');
        assert.equal(num(d.worker.pid) > 0, true);
        assert.equal(typeof d.worker.host, 'string');
        if (r.body.status === 'Complete') {
            assert.equal(d.reason, null);
            h.assertReport(d.result.data, h.expectedReport(records, r.body.data.map((x) => x.phone)), `journal of ${r.body.correlation_id}`);
        } else {
            assert.equal(d.reason, 'phones is empty');
            assert.equal(d.result.error, 'phones is empty');
        }
    }
    const ints = docs.filter((d) => num(d.correlation_id) === 123);
    const strs = docs.filter((d) => d.correlation_id === '123');
    assert.equal(ints.length, 1, '123 has its document');
    assert.equal(strs.length, 1, '"123" has another');
    assert.notEqual(ints[0]._id, strs[0]._id);

    const retried = docs.find((d) => num(d.correlation_id) === 77);
    assert.equal(num(retried.attempts), 4, 'three transient failures, answered by the fourth attempt');
    assert.equal(num(ints[0].attempts), 1);

    const twice = docs.find((d) => d.correlation_id === 'twice');
    assert.equal(num(twice.answers), 2, 'answered twice');
    assert.equal(twice.answered_at.length, 2);
    assert.equal(num(ints[0].answers), 1);

    const dl1 = byId.get('amqp-mid-1');
    assert.ok(dl1, `the unreadable message with a message_id is kept under it: ${[...byId.keys()]}`);
    assert.equal(dl1.outcome, 'dead_lettered');
    assert.match(dl1.reason, /^unreadable: /);
    assert.equal(dl1.correlation_id, null);
    assert.equal(dl1.amqp_correlation_id, 'c-9');
    assert.equal(num(dl1.body_size), 'not json at all'.length);
    assert.equal(dl1.body_prefix, 'not json at all');
    const dl2 = docs.find((d) => /^body-[0-9a-f]{16}$/.test(d._id));
    assert.ok(dl2, 'an unreadable message without a message_id is kept under its body\'s hash');
    assert.equal(dl2.outcome, 'dead_lettered');
    assert.equal(num(dl2.body_size), 3);
    assert.deepEqual([...dl2.body_prefix.buffer], [0xff, 0xfe, 0x41], 'not UTF-8: kept as binary');

    const m = await h.readMetrics(base);
    assert.equal(m.get('reporterd_journal_writes_total'), 8, 'one write per outcome, two for the task answered twice');
    assert.equal(m.get('reporterd_journal_write_errors_total'), 0);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('the TTL index: created at start with journal.retention, changed on reload', { timeout: 60000 }, async () => {
    const { daemon, cfg } = await daemonWith();
    const client = await h.mongoClient(ctx.mongo.uri);
    const coll = client.db(ctx.names.database).collection(COLL);
    let ix = [];
    await h.waitFor(async () => {
        ix = await coll.listIndexes().toArray().catch(() => []);
        return ix.some((i) => i.name === 'answered_ttl');
    }, 10000, () => `the TTL index (indexes: ${JSON.stringify(ix)})`);
    const ttl = ix.find((i) => i.name === 'answered_ttl');
    assert.deepEqual(ttl.key, { answered: 1 });
    assert.equal(num(ttl.expireAfterSeconds), 2 * 86400);
    assert.ok(ix.some((i) => i.name === 'correlation_id_1'), 'lookups by correlation_id are indexed');

    require('node:fs').writeFileSync(cfg, require('node:fs').readFileSync(cfg, 'utf8').replace(/retention: .*/, 'retention: 3h'));
    process.kill(daemon.pid, 'SIGHUP');
    await daemon.waitForLog(/retention changed from 172800 s to 10800 s/, 20000);
    ix = await coll.listIndexes().toArray();
    assert.equal(num(ix.find((i) => i.name === 'answered_ttl').expireAfterSeconds), 3 * 3600);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a journal that cannot be written: counted, logged, the task answered and acked anyway; a slow one does not hold back the result', { timeout: 90000 }, async (t) => {
    const probe = await failCommand({ failCommands: ['update'] }, 'off');
    if (probe !== true) return t.skip(`the server refuses configureFailPoint: ${probe}`);
    h.onCleanup(() => failCommand({ failCommands: ['update'] }, 'off'));
    const { daemon, base } = await daemonWith();
    const results = await ctx.results();
    const before0 = await h.readMetrics(base);
    const done0 = before0.get('reporterd_tasks_total{outcome="complete"}');

    assert.equal(await failCommand({ failCommands: ['update'], errorCode: 13 }, 'alwaysOn'), true);
    await ctx.publishTask({ correlation_id: 'refused', phones: [2] });
    const [r1] = await results.next(1, 20000);
    assert.equal(r1.body.status, 'Complete');
    await h.waitForTaskCounts(base, { complete: done0 + 1 }, 20000);
    await daemon.waitForLog(/writing the journal failed, acking the task anyway: .*code 13/, 10000);

    /* a write that hangs: the result is out before it starts, and it gives
     * up after the journal's own limit */
    assert.equal(await failCommand({ failCommands: ['update'], blockConnection: true, blockTimeMS: 8000 }, 'alwaysOn'), true);
    const sent = Date.now();
    await ctx.publishTask({ correlation_id: 'slow', phones: [3] });
    const [r2] = await results.next(1, 20000);
    const took = Date.now() - sent;
    assert.equal(r2.body.status, 'Complete');
    assert.ok(took < 2000, `the result came in ${took} ms, not after the journal's write`);
    await h.waitForTaskCounts(base, { complete: done0 + 2 }, 20000);
    const acked = Date.now() - sent;
    assert.ok(acked < 6000, `acked within the journal's limit (${acked} ms), not after the 8 s block`);
    const m = await h.readMetrics(base);
    assert.equal(m.get('reporterd_journal_write_errors_total'), 2);
    await failCommand({ failCommands: ['update'] }, 'off');
    assert.equal((await journalDocs({ correlation_id: { $in: ['refused', 'slow'] } })).length, 0);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a result too big for a document is kept cut short, and says so', { timeout: 90000 }, async () => {
    const { daemon } = await daemonWith({ task: { max_phones: 20000, max_message_size: '4m' } });
    const results = await ctx.results();
    const phones = Array.from({ length: 12000 }, (_, i) => 1000 + i);
    await ctx.publishTask({ correlation_id: 'big', phones });
    const [r] = await results.next(1, 60000);
    assert.equal(r.body.data.length, 12000);
    const [d] = await journalDocs({ correlation_id: 'big' });
    assert.ok(d, 'the big task has its document');
    assert.equal(num(d.result_truncated.phones), 12000);
    assert.equal(num(d.result_truncated.json_bytes), Buffer.byteLength(r.raw));
    assert.equal(d.result.data.length, num(d.result_truncated.phones_kept));
    assert.ok(d.result.data.length > 1000 && d.result.data.length < 12000, `${d.result.data.length} phones kept`);
    assert.deepEqual(d.result.data.map((x) => num(x.phone)), phones.slice(0, d.result.data.length), 'the first phones, in order');
    assert.equal(d.result.status, 'Complete');
    await daemon.shutdown('SIGQUIT', 20000);
});

test('GET /tasks/<id> (a real HTTP client) and reporterctl status: objects, arrays for shared ids, 123 and "123", 404, 503; a slow lookup does not delay /healthz', { timeout: 120000 }, async (t) => {
    const probe = await failCommand({ failCommands: ['find'] }, 'off');
    if (probe !== true) return t.skip(`the server refuses configureFailPoint: ${probe}`);
    h.onCleanup(() => failCommand({ failCommands: ['find'] }, 'off'));
    const { daemon, base, cfg } = await daemonWith({ status: { tasks: true } });
    await daemon.waitForLog(/serving \/metrics and \/healthz and \/tasks\/<correlation_id>/, 10000);
    const results = await ctx.results();
    await ctx.publishTask({ correlation_id: 4242, phones: [1] });
    await ctx.publishTask({ correlation_id: '4242', phones: [2] });
    await ctx.publishTask({ correlation_id: 'shared', phones: [1] });
    await ctx.publishTask({ correlation_id: 'shared', phones: [2] });
    await ctx.publishTask({ correlation_id: 'web-err', phones: [] });
    const got = await results.next(5, 30000);
    await ctx.publishTask('unreadable for the lookup', { properties: { messageId: 'dl-lookup-1' } });
    await h.waitForTaskCounts(base, { complete: 4, error: 1, dead_lettered: 1 }, 30000);

    let r = await h.httpGet(`${base}/tasks/shared`);
    assert.equal(r.status, 200, r.body);
    let body = JSON.parse(r.body);
    assert.ok(Array.isArray(body) && body.length === 2, `two tasks share the id: ${r.body.slice(0, 300)}`);
    assert.deepEqual(body.map((d) => d.result.data[0].phone).sort(), [1, 2]);

    r = await h.httpGet(`${base}/tasks/4242`);
    body = JSON.parse(r.body);
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(body), '123 and "123" both match');
    assert.deepEqual(body.map((d) => typeof d.correlation_id).sort(), ['number', 'string']);

    r = await h.httpGet(`${base}/tasks/web-err`);
    assert.equal(r.status, 200);
    body = JSON.parse(r.body);
    assert.ok(!Array.isArray(body), 'one task: the document itself');
    assert.equal(body.outcome, 'error');
    assert.equal(body.reason, 'phones is empty');
    const errResult = got.find((x) => x.body.correlation_id === 'web-err');
    assert.equal(body.message_id, errResult.properties.messageId);
    assert.match(r.body, /"answered" ?: ?\{ ?"\$date" ?: ?"\d{4}-/);

    r = await h.httpGet(`${base}/tasks/nobody`);
    assert.equal(r.status, 404);
    assert.match(JSON.parse(r.body).error, /no task has the correlation_id "nobody"/);

    /* reporterctl status */
    const ctl = (...args) => h.run(h.env.reporterctl, ['-c', cfg, 'status', ...args], { timeoutMs: 30000 });
    let c = await ctl('shared');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim().split('\n').length, 2);
    assert.match(c.stdout, /^"shared" shared-[0-9a-f]{16} complete at \d{4}-.*, 1 attempt, \d+\.\d{3} s$/m);
    c = await ctl('--json', errResult.properties.messageId);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).reason, 'phones is empty', 'by message_id, as JSON');
    c = await ctl('dl-lookup-1');
    assert.match(c.stdout, /^- dl-lookup-1 dead_lettered at .*: unreadable: /);
    c = await ctl('--since', '1h', '--status', 'error');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^"web-err" .* error at .*: phones is empty$/m);
    assert.doesNotMatch(c.stdout, /complete/);
    c = await ctl('4242', 'missing-id');
    assert.equal(c.code, 3, 'some ids not in the journal');
    assert.equal(c.stdout.trim().split('\n').length, 2);
    assert.match(c.stderr, /missing-id: not in the journal/);

    /* a slow lookup: /healthz and /metrics answer meanwhile */
    assert.equal(await failCommand({ failCommands: ['find'], blockConnection: true, blockTimeMS: 6000 }, 'alwaysOn'), true);
    const t0 = Date.now();
    const slow = h.httpGet(`${base}/tasks/shared`, 15000);
    await h.sleep(300);
    const t1 = Date.now();
    const health = await h.httpGet(`${base}/healthz`, 2000);
    const healthMs = Date.now() - t1;
    assert.equal(health.status, 200);
    assert.ok(healthMs < 500, `/healthz answered in ${healthMs} ms while a lookup waits`);
    assert.equal((await h.httpGet(`${base}/metrics`, 2000)).status, 200);
    r = await slow;
    const slowMs = Date.now() - t0;
    assert.equal(r.status, 503, `the lookup gives up after its own limit: ${r.body}`);
    assert.ok(slowMs < 5800, `within the lookup's limit (${slowMs} ms), not the 6 s block`);

    /* the database unreachable: 503 */
    assert.equal(await failCommand({ failCommands: ['find'], closeConnection: true }, 'alwaysOn'), true);
    r = await h.httpGet(`${base}/tasks/shared`, 10000);
    assert.equal(r.status, 503, r.body);
    assert.match(JSON.parse(r.body).error, /^the journal cannot be read now: /);
    await failCommand({ failCommands: ['find'] }, 'off');
    assert.equal((await h.httpGet(`${base}/tasks/shared`)).status, 200, 'answers again');
    await daemon.shutdown('SIGQUIT', 20000);
});

/* GET url as raw bytes: {status, type, length (Content-Length), bytes}. */
function rawGet(url, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
        const req = require('node:http').get(url, { timeout: timeoutMs }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => resolve({
                status: res.statusCode,
                type: res.headers['content-type'],
                length: Number(res.headers['content-length']),
                bytes: Buffer.concat(chunks),
            }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
        req.on('error', reject);
    });
}

/* The body /tasks/ documents for a failure: {"error": text}, whole, valid
 * UTF-8 JSON, no control characters in the text.  Returns the text. */
function cleanError(r, what) {
    assert.equal(r.type, 'application/json', `${what}: Content-Type`);
    assert.equal(r.length, r.bytes.length, `${what}: Content-Length is the body's`);
    let text;
    assert.doesNotThrow(() => { text = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes); },
        `${what}: the body is UTF-8 (${r.bytes.toString('hex')})`);
    assert.ok(text.endsWith('}\n'), `${what}: one JSON object and a newline: ${JSON.stringify(text)}`);
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body), ['error'], `${what}: ${text}`);
    assert.equal(typeof body.error, 'string');
    assert.doesNotMatch(body.error, /[\u0000-\u001f\u007f\ufffd]/, `${what}: no control or replaced bytes`);
    return body.error;
}

test('GET /tasks/<id>: a lookup that fails and an id no task can have get a clean JSON body', { timeout: 90000 }, async () => {
    /* a database nobody listens on: every lookup fails */
    const closed = await h.freePort();
    const port = await h.freePort();
    const cfg = ctx.writeConfig({
        worker_processes: 1,
        status: { listen: `127.0.0.1:${port}`, tasks: true },
        journal: { enabled: true, collection: COLL },
        mongodb: { uri: `mongodb://127.0.0.1:${closed}/` },
    });
    const unreachable = h.startDaemon(cfg);
    try {
        await unreachable.waitForLog(/serving \/metrics and \/healthz and \/tasks\/<correlation_id>/, 20000);
        for (const id of ['x', 'caf%C3%A9', '4242']) {
            const r = await rawGet(`http://127.0.0.1:${port}/tasks/${id}`);
            assert.equal(r.status, 503, `an unreachable database: 503 for ${id}`);
            const e = cleanError(r, `503 for ${id}`);
            assert.match(e, /^the journal cannot be read now: \S.* \(domain \d+, code \d+\)$/, 'a reason from the driver');
        }
    } finally {
        await unreachable.shutdown('SIGQUIT', 20000);
    }

    /* a database that answers: ids no task can have are not looked up */
    const { daemon, base } = await daemonWith({ status: { tasks: true } });
    try {
        const results = await ctx.results();
        await ctx.publishTask({ correlation_id: 'x', phones: [1] });
        await results.next(1, 30000);
        await h.waitForTaskCounts(base, { complete: 1 }, 20000);
        assert.equal((await rawGet(`${base}/tasks/x`)).status, 200, 'x has its document');
        for (const [id, why] of [['x%00y', 'a NUL (no task id holds one) is not the end of the id'],
            ['%FF', 'not UTF-8'], ['x%C3', 'a character cut short'], ['%ED%A0%80', 'a surrogate'],
            ['%C0%AF', 'an overlong form']]) {
            const r = await rawGet(`${base}/tasks/${id}`);
            assert.equal(r.status, 404, `${id}: ${why}: 404, got ${r.status} ${r.bytes.toString('latin1').slice(0, 300)}`);
            assert.equal(cleanError(r, id), 'no task has that correlation_id', `${id}: ${why}`);
        }
        const r = await rawGet(`${base}/tasks/caf%C3%A9%20%22%5C%09`);
        assert.equal(r.status, 404);
        assert.equal(JSON.parse(r.bytes.toString('utf8')).error, 'no task has the correlation_id "café "\\\t"',
            'a UTF-8 id is named, escaped');
    } finally {
        await daemon.shutdown('SIGQUIT', 20000);
    }
});

test('journal off: nothing is written', { timeout: 60000 }, async () => {
    const port = await h.freePort();
    const names = Object.assign({}, ctx.names);
    const cfg = ctx.writeConfig({ worker_processes: 1, status: { listen: `127.0.0.1:${port}` }, journal: { collection: 'offjnl' } });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(1, 30000);
    const results = await ctx.results();
    await ctx.publishTask({ correlation_id: 'off', phones: [1] });
    await ctx.publishTask('unreadable, journal off');
    await results.next(1, 20000);
    await h.waitForTaskCounts(`http://127.0.0.1:${port}`, { dead_lettered: 1 }, 20000).catch(() => {});
    const client = await h.mongoClient(ctx.mongo.uri);
    await assert.rejects(client.db(names.database).collection('offjnl').listIndexes().toArray(),
        (e) => e.code === 26, 'no journal collection, not even its indexes');
    const m = await h.readMetrics(`http://127.0.0.1:${port}`);
    assert.equal(m.get('reporterd_journal_writes_total'), 0);
    assert.doesNotMatch(daemon.log, /journal "|the journal/);
    const r = await h.httpGet(`http://127.0.0.1:${port}/tasks/off`);
    assert.equal(r.status, 404, 'GET /tasks/ is off unless status.tasks is on');
    assert.match(r.body, /^not found: try \/metrics or \/healthz/);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('a result that turns into an Error when its figures are out of range is journaled, counted and logged as an error', { timeout: 60000 }, async () => {
    /* One call of 4e15 ms (end_date within the 2^52 ms bound) at 1000 per
     * second: its price is far past the 10^15 a result carries. */
    const PRICE_PER_SECOND = 1000n;
    const huge = [{ phone: 9001, start_date: 0, end_date: 4e15 }];
    const ms = BigInt(huge[0].end_date - huge[0].start_date);
    assert.ok(huge[0].end_date < 2 ** 52, 'a valid record: within the 2^52 ms bound');
    assert.ok(ms * PRICE_PER_SECOND / 1000n >= 10n ** 15n, 'its price reaches 10^15');
    await ctx.loadRecords(huge);

    const { daemon, base } = await daemonWith({ report: { price_per_second: Number(PRICE_PER_SECOND) } });
    const results = await ctx.results();
    const m0 = await h.readMetrics(base);
    const complete0 = m0.get('reporterd_tasks_total{outcome="complete"}');
    const error0 = m0.get('reporterd_tasks_total{outcome="error"}');

    await ctx.publishTask({ correlation_id: 'too-dear', phones: [9001] });
    const [r] = await results.next(1, 30000);
    assert.equal(r.body.status, 'Error', `the client receives an Error: ${r.raw}`);
    assert.match(r.body.error, /^phone 9001: min_price_att is 1000000000000000 or more in magnitude/);
    assert.deepEqual(r.body.data, []);

    await h.waitForTaskCounts(base, { complete: complete0, error: error0 + 1 }, 20000);
    const docs = await journalDocs({ correlation_id: 'too-dear' });
    assert.equal(docs.length, 1, 'one journal document');
    assert.equal(docs[0]._id, r.properties.messageId);
    assert.equal(docs[0].outcome, 'error', 'the outcome the client received');
    assert.equal(docs[0].reason, r.body.error, 'the Error\'s text as the reason');
    assert.equal(docs[0].result.status, 'Error');
    const m = await h.readMetrics(base);
    assert.equal(m.get('reporterd_tasks_total{outcome="error"}'), error0 + 1, 'counted as an error');
    assert.equal(m.get('reporterd_tasks_total{outcome="complete"}'), complete0, 'not as complete');
    await daemon.waitForLog(/task too-dear: error result, 1 phones/, 10000);
    assert.match(daemon.log, /task too-dear: the result is an Error: phone 9001: min_price_att/, 'the reason logged');
    assert.doesNotMatch(daemon.log, /task too-dear: complete/);
    await daemon.shutdown('SIGQUIT', 20000);
});
