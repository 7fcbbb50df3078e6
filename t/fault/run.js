#!/usr/bin/env node
/*
 * run.js -- reporterd's fault-injection suite.
 *
 * Drives the real daemon against the real RabbitMQ and the test MongoDB
 * server (or a real one, see below) through five faults, one after another,
 * and checks the delivery invariant in each:
 *
 *   1 kill -9 a random live worker every second during a 500-task run
 *   2 rabbitmqctl stop_app / start_app in the middle of a run
 *   3 the MongoDB server stopped for 10 s in the middle of a run
 *   4 1,000 unreadable ("poison") messages interleaved with good tasks and
 *     contract-breaking ones
 *   5 SIGHUP every 2 s during a run, worker_processes alternating 2 / 3
 *   6 rollup mode: kill -9 the folder right after each step (claim, mark,
 *     apply, lease renewal) in turn, while it folds; then every rollup is
 *     compared with a brute-force count (lost = double-counted = 0)
 *
 * Invariant (the run exits 1 if any part fails in any scenario):
 *   - lost = 0: every good or contract-breaking task has a result;
 *   - every result is right: good tasks "Complete" with the figures of
 *     harness.expectedReport (every delivery is checked, duplicates too),
 *     contract-breaking tasks "Error" with the error text the contract
 *     gives and data []; every delivery of a task's result carries the
 *     same message_id, and no two tasks share one;
 *   - every poison message is in the dead-letter queue, byte for byte,
 *     under its message_id, with x-reporterd-reason "unreadable: ...";
 *     nothing else is there;
 *   - no result for anything we did not send;
 *   - nothing in flight when the figures are taken: the broker shows the
 *     task, result and dead-letter queues empty with nothing unacked;
 *   - scenario 3 took the requeue path: the daemon's /metrics counted
 *     requeued tasks, and every task it logged as returned was answered
 *     after the restart with the oracle's figures;
 *   - still serving: after the fault, W+1 more tasks all get correct
 *     Complete results;
 *   - the daemon stops cleanly on SIGTERM (exit 0), its log has no
 *     "[alert]" and no sanitizer report, and no process of it wrote a
 *     sanitizer report file (ASAN_OPTIONS / UBSAN_OPTIONS log_path).
 * "duplicated" (result deliveries beyond one per task) is reported, not
 * failed: delivery is at least once.
 *
 * Output is TAP (one test point per scenario), then the Markdown table,
 * also written to --out; `make fault-readme` copies that file into
 * docs/reliability.md.
 *
 * This suite restarts the shared broker (scenario 2): never run it
 * concurrently with other tests.  Before the restart it waits (bounded by
 * --broker-idle-wait) until no foreign client is connected to the broker.
 *
 * Usage (see t/fault/README.md for the environment):
 *   node t/fault/run.js [--out FILE] [--only 1,3] [--seed N] [--scale F]
 *                       [--broker-idle-wait SEC] [--sanitizer-dir DIR] [--journal]
 *
 * --journal turns the task journal on (journal.enabled) and checks, after
 * each scenario, that every task has a journal document whose outcome
 * matches what the suite received, and that no journal write failed
 * (reporterd_journal_write_errors_total; reported, not failed, in
 * scenario 3, whose database is away for a while).
 */
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('../lib/harness.js');
const L = require('./lib.js');

/* ------------------------------------------------------------------ */
/* options                                                            */
/* ------------------------------------------------------------------ */

function parseArgs(argv) {
    const o = {
        out: null,
        only: null,
        seed: Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007)),
        scale: 1,
        brokerIdleWait: 60,
        sanitizerDir: null,
        journal: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--out') o.out = val();
        else if (a === '--only') o.only = new Set(val().split(',').map(Number));
        else if (a === '--seed') o.seed = Number(val());
        else if (a === '--scale') o.scale = Number(val());
        else if (a === '--broker-idle-wait') o.brokerIdleWait = Number(val());
        else if (a === '--sanitizer-dir') o.sanitizerDir = path.resolve(val());
        else if (a === '--journal') o.journal = true;
        else if (a === '-h' || a === '--help') {
            process.stdout.write('usage: node t/fault/run.js [--out FILE] [--only 1,2,3,4,5] [--seed N] ' +
                '[--scale F] [--broker-idle-wait SEC] [--sanitizer-dir DIR] [--journal]\n');
            process.exit(0);
        } else {
            throw new Error(`unknown argument: ${a}`);
        }
    }
    if (!Number.isFinite(o.seed)) throw new Error('--seed must be a number');
    if (!(o.scale > 0)) throw new Error('--scale must be > 0');
    if (!o.out) o.out = path.resolve(process.cwd(), 't', 'fault', 'last-run.md');
    if (!o.sanitizerDir) o.sanitizerDir = path.join(path.dirname(path.resolve(o.out)), 'sanitizer');
    return o;
}

let OPTS;
try {
    OPTS = parseArgs(process.argv.slice(2));
} catch (e) {
    process.stderr.write(`run.js: ${e.message}\n`);
    process.exit(2);
}

const sleep = h.sleep;
const BAD_LOG_RE = /\[alert\]|AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|UndefinedBehaviorSanitizer|runtime error:|SUMMARY: \w+Sanitizer/;
const scaled = (n) => Math.max(1, Math.round(n * OPTS.scale));

function say(msg) {
    process.stdout.write(`${msg}\n`);
}

/* If we die while the broker is stopped, start it again. */
let brokerStopped = false;
function restoreBrokerSync() {
    if (!brokerStopped) return;
    try {
        execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore', timeout: 120000 });
        brokerStopped = false;
    } catch (_) { /* nothing more we can do */ }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
        say(`# ${sig}: stopping`);
        restoreBrokerSync();
        process.exit(130);
    });
}
process.on('exit', restoreBrokerSync);

/* ------------------------------------------------------------------ */
/* data                                                               */
/* ------------------------------------------------------------------ */

/* A small data set so tasks are fast: 40 phones (30 int32, 10 int64),
 * 0..24 records each, whole-second and millisecond durations, plus three
 * phones that have no records. */
function makeData(rnd) {
    const records = [];
    const phones = [];
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    for (let i = 0; i < 40; i++) {
        const phone = i < 30 ? 1000 + i : 79160000000 + i * 1013;
        phones.push(phone);
        const n = i % 13 === 5 ? 0 : Math.floor(rnd() * 25);
        for (let k = 0; k < n; k++) {
            const d = rnd() < 0.15 ? Math.round(rnd() * 120000) / 1000 : Math.floor(rnd() * 121);
            const st = base + Math.floor(rnd() * 30 * 86400 * 1000);
            records.push({ phone, start_date: new Date(st), end_date: new Date(st + Math.round(d * 1000)) });
        }
    }
    phones.push(1, 2147483648, 79999999999);
    return { records, phones };
}

/* ------------------------------------------------------------------ */
/* tasks                                                              */
/* ------------------------------------------------------------------ */

class TaskMaker {
    constructor(tag, rnd, data) {
        this.tag = tag;
        this.rnd = rnd;
        this.data = data;
        this.seq = 0;
        this.idBase = (Date.now() % 100000) * 1000000 + tag * 100000000000;
    }
    pick(k) {
        const p = this.data.phones;
        return Array.from({ length: k }, () => p[Math.floor(this.rnd() * p.length)]);
    }
    mid(kind) {
        return `${kind}-${this.tag}-${++this.seq}`;
    }
    good(opts = {}) {
        const n = this.seq + 1;
        let id = opts.id;
        if (id === undefined) id = this.rnd() < 0.1 ? `fault${this.tag}-task-${n}` : this.idBase + n;
        const phones = opts.phones || this.pick(1 + Math.floor(this.rnd() * 5));
        let raw = `{"correlation_id": ${JSON.stringify(id)}, "phones": ${JSON.stringify(phones)}}`;
        if (opts.padTo) {
            const pad = opts.padTo - Buffer.byteLength(raw);
            raw = `{"correlation_id": ${JSON.stringify(id)},${' '.repeat(pad)} "phones": ${JSON.stringify(phones)}}`;
        }
        return { kind: opts.kind || 'good', mid: this.mid(opts.kind || 'good'), id, phones, body: Buffer.from(raw), why: opts.why || 'good task' };
    }
    error(bodyFor, why, expectError) {
        const n = this.seq + 1;
        const id = this.rnd() < 0.2 ? `fault${this.tag}-bad-${n}` : this.idBase + 50000 + n;
        return { kind: 'error', mid: this.mid('error'), id, body: Buffer.from(bodyFor(JSON.stringify(id))), why, expectError };
    }
    poison(body, why) {
        return { kind: 'poison', mid: this.mid('poison'), body: Buffer.isBuffer(body) ? body : Buffer.from(body), why };
    }
}

/* Contract-breaking tasks: a usable correlation_id, bad phones; each with
 * the Error result's text, as the task contract words it (docs/messages.md;
 * the JSON type names are json-c's). */
const INT_ARRAY = 'phones must be an array of integers, not';
const ERROR_KINDS = [
    [(id) => `{"correlation_id": ${id}}`, 'phones missing', 'phones is missing'],
    [(id) => `{"correlation_id": ${id}, "phones": []}`, 'phones empty', 'phones is empty'],
    [(id) => `{"correlation_id": ${id}, "phones": null}`, 'phones null', `${INT_ARRAY} null`],
    [(id) => `{"correlation_id": ${id}, "phones": "1000"}`, 'phones a string', `${INT_ARRAY} string`],
    [(id) => `{"correlation_id": ${id}, "phones": {"a": 1000}}`, 'phones an object', `${INT_ARRAY} object`],
    [(id) => `{"correlation_id": ${id}, "phones": [1000, "1001"]}`, 'a string phone', 'phones[1] must be an integer, not string'],
    [(id) => `{"correlation_id": ${id}, "phones": [1000.5]}`, 'a fractional phone', 'phones[0] must be an integer, not double'],
    [(id) => `{"correlation_id": ${id}, "phones": [1e3]}`, 'a phone in exponent form (a double)', 'phones[0] must be an integer, not double'],
    [(id) => `{"correlation_id": ${id}, "phones": [1000, null]}`, 'a null phone', 'phones[1] must be an integer, not null'],
    [(id) => `{"correlation_id": ${id}, "phones": [true]}`, 'a boolean phone', 'phones[0] must be an integer, not boolean'],
    [(id) => `{"correlation_id": ${id}, "phones": [[1000]]}`, 'a nested array phone', 'phones[0] must be an integer, not array'],
    [(id) => `{"correlation_id": ${id}, "phones": [99999999999999999999]}`, 'a phone beyond int64', 'phones[0] is outside the 64-bit integer range'],
    [(id) => `{"correlation_id": ${id}, "phones": [-9223372036854775809]}`, 'a phone below int64', 'phones[0] is outside the 64-bit integer range'],
    [(id) => `{"correlation_id": ${id}, "phones": ${JSON.stringify(Array.from({ length: 101 }, (_, k) => 1000 + (k % 30)))}}`, '101 phones',
        'phones has 101 entries, more than the maximum of 100'],
];

/* Unreadable messages, each a function of (maker, i) -> [body, why].
 * Every one must be rejected without requeue into <task_queue>.dead. */
function poisonKinds(mk) {
    const B = (s) => Buffer.from(s, 'utf8');
    const ph = () => JSON.stringify(mk.pick(1 + Math.floor(mk.rnd() * 3)));
    const id = (i) => mk.idBase + 70000 + i;
    const valid = (i) => `{"correlation_id": ${id(i)}, "phones": ${ph()}}`;
    const withId = (idText) => B(`{"correlation_id": ${idText}, "phones": ${ph()}}`);
    const bytesInId = (bytes) => Buffer.concat([B('{"correlation_id": "id'), Buffer.from(bytes), B(`", "phones": ${ph()}}`)]);
    const deep = (n) => '['.repeat(n) + ']'.repeat(n);
    const padded = (i, size) => {
        const head = `{"correlation_id": ${id(i)}, "phones": ${ph()}, `;
        const tail = '}';
        const filler = size - Buffer.byteLength(head) - Buffer.byteLength(tail) - '"pad": ""'.length;
        return B(`${head}"pad": "${'x'.repeat(filler)}"${tail}`);
    };
    const paddedWs = (i, size) => {
        const core = `"phones": ${ph()}}`;
        const head = `{"correlation_id": ${id(i)},`;
        return B(head + ' '.repeat(size - Buffer.byteLength(head) - Buffer.byteLength(core)) + core);
    };
    return [
        /* not JSON */
        [(i) => B(`please send report ${i}`), 'not JSON: plain text'],
        [(i) => B(`{correlation_id: ${id(i)}, phones: [1000]}`), 'not JSON: unquoted keys'],
        [(i) => B(`{"correlation_id": ${id(i)}, "phones": [1000],}`), 'not JSON: trailing comma'],
        [(i) => B(`{"correlation_id": ${id(i)}, "phones": [1000] /* c */}`), 'not JSON: a comment'],
        [(i) => B(`{"correlation_id": 0${id(i)}, "phones": [1000]}`), 'not JSON: leading zero'],
        [() => B('{"correlation_id": 0x1F, "phones": [1000]}'), 'not JSON: hex number'],
        [(i) => B(`{"correlation_id": +${id(i)}, "phones": [1000]}`), 'not JSON: plus sign'],
        [(i) => B(valid(i) + valid(i + 1)), 'not JSON: two objects'],
        [(i) => B(`${valid(i)} x`), 'not JSON: trailing garbage'],
        [() => B(''), 'not JSON: empty body'],
        [() => B('  \n\t '), 'not JSON: whitespace only'],
        [(i) => B(`\uFEFF${valid(i)}`), 'not JSON: UTF-8 byte order mark'],
        [(i) => Buffer.from(valid(i), 'utf16le'), 'not JSON: UTF-16'],
        /* truncated */
        [(i) => { const v = valid(i); return B(v.slice(0, 1 + Math.floor(mk.rnd() * (v.length - 1)))); }, 'truncated JSON'],
        [(i) => B(valid(i).slice(0, -1)), 'truncated JSON: last brace missing'],
        [() => B('{"correlation_id": "abc'), 'truncated JSON: inside a string'],
        /* not an object */
        [(i) => B(`[${valid(i)}]`), 'an array holding a task'],
        [() => B('[]'), 'an empty array'],
        [(i) => B(String(id(i))), 'a number'],
        [() => B('-1.5e3'), 'a float'],
        [(i) => B(`"${id(i)}"`), 'a string'],
        [() => B('true'), 'true'],
        [() => B('false'), 'false'],
        [() => B('null'), 'null'],
        /* no usable correlation_id */
        [() => B(`{"phones": ${ph()}}`), 'no correlation_id'],
        [() => B('{}'), 'an empty object'],
        [(i) => B(`{"correlationId": ${id(i)}, "phones": ${ph()}}`), 'misspelled correlation_id'],
        [(i) => B(`{"Correlation_id": ${id(i)}, "phones": ${ph()}}`), 'correlation_id in another case'],
        [() => withId('null'), 'correlation_id null'],
        [() => withId('true'), 'correlation_id a boolean'],
        [() => withId('1.5'), 'correlation_id fractional'],
        [() => withId('12.0'), 'correlation_id a double with .0'],
        [() => withId('1e3'), 'correlation_id in exponent form'],
        [(i) => withId(`[${id(i)}]`), 'correlation_id an array'],
        [(i) => withId(`{"id": ${id(i)}}`), 'correlation_id an object'],
        [() => withId('""'), 'correlation_id an empty string'],
        [() => withId(JSON.stringify('x'.repeat(256))), 'correlation_id a 256-byte string'],
        [() => withId('"ab\\u0000cd"'), 'correlation_id with an escaped NUL'],
        [() => withId('9223372036854775808'), 'correlation_id INT64_MAX + 1'],
        [() => withId('-9223372036854775809'), 'correlation_id INT64_MIN - 1'],
        [() => withId('18446744073709551616'), 'correlation_id 2^64'],
        [() => withId(`1${'0'.repeat(30)}`), 'correlation_id with 31 digits'],
        [() => withId('NaN'), 'correlation_id NaN'],
        [() => withId('Infinity'), 'correlation_id Infinity'],
        [() => withId('-Infinity'), 'correlation_id -Infinity'],
        [(i) => B(`{"correlation_id": ${id(i)}, "phones": [NaN]}`), 'NaN in phones'],
        /* single quotes */
        [(i) => B(`{'correlation_id': ${id(i)}, 'phones': [1000]}`), 'single-quoted keys'],
        [(i) => B(`{"correlation_id": 'q${i}', "phones": [1000]}`), 'single-quoted correlation_id'],
        /* NUL and control bytes */
        [() => bytesInId([0x61, 0x00, 0x62]), 'raw NUL in the correlation_id string'],
        [(i) => Buffer.concat([B(valid(i)), Buffer.from([0])]), 'NUL after the object'],
        [(i) => Buffer.concat([Buffer.from([0]), B(valid(i))]), 'NUL before the object'],
        [(i) => { const v = B(valid(i)); v[Math.floor(v.length / 2)] = 0; return v; }, 'NUL in the middle'],
        [() => bytesInId([0x01, 0x1f]), 'raw control characters in a string'],
        [() => bytesInId([0x0a]), 'raw newline in a string'],
        /* invalid UTF-8 */
        [() => bytesInId([0xff]), 'invalid UTF-8: 0xFF'],
        [() => bytesInId([0xfe, 0xfe]), 'invalid UTF-8: 0xFE 0xFE'],
        [() => bytesInId([0x80]), 'invalid UTF-8: lone continuation byte'],
        [() => bytesInId([0xc3]), 'invalid UTF-8: truncated 2-byte sequence'],
        [() => bytesInId([0xe2, 0x82]), 'invalid UTF-8: truncated 3-byte sequence'],
        [() => bytesInId([0x63, 0x61, 0x66, 0xe9]), 'invalid UTF-8: Latin-1 "cafe"'],
        [() => bytesInId([0xc0, 0xaf]), 'invalid UTF-8: overlong 2-byte "/"'],
        [() => bytesInId([0xe0, 0x80, 0xaf]), 'invalid UTF-8: overlong 3-byte "/"'],
        [() => bytesInId([0xf0, 0x80, 0x80, 0xaf]), 'invalid UTF-8: overlong 4-byte "/"'],
        [() => bytesInId([0xed, 0xa0, 0x80]), 'invalid UTF-8: surrogate U+D800 encoded'],
        [() => bytesInId([0xf4, 0x90, 0x80, 0x80]), 'invalid UTF-8: above U+10FFFF'],
        [() => bytesInId([0xf8, 0x88, 0x80, 0x80, 0x80]), 'invalid UTF-8: 5-byte form'],
        [() => Buffer.concat([B(`{"correlation_id": 5, "phones": ${ph()}, "note": "`), Buffer.from([0xff, 0xfe]), B('"}')]),
            'invalid UTF-8 in another field'],
        [() => Buffer.concat([B('{"correlation_id'), Buffer.from([0xff]), B(`": 5, "phones": ${ph()}}`)]), 'invalid UTF-8 in a key'],
        [(i) => Buffer.concat([B(valid(i)), Buffer.from([0xc3, 0x28])]), 'invalid UTF-8 after the object'],
        /* deep nesting */
        [(i) => B(`{"correlation_id": ${id(i)}, "phones": ${ph()}, "x": ${deep(16)}}`), 'nested 17 deep (extra field)'],
        [(i) => B(`{"correlation_id": ${id(i)}, "phones": ${'['.repeat(16)}1000${']'.repeat(16)}}`), 'nested 17 deep (phones)'],
        [() => B(deep(17)), 'arrays nested 17 deep'],
        [() => B(deep(2000)), 'arrays nested 2000 deep'],
        [() => B('{"a":'.repeat(500) + '1' + '}'.repeat(500)), 'objects nested 500 deep'],
        [() => B('['.repeat(5000)), 'unclosed arrays 5000 deep'],
        /* oversize (task.max_message_size: 4096) */
        [(i) => padded(i, 5120), 'oversize: a 5 KB task (a long string field)'],
        [(i) => paddedWs(i, 5120), 'oversize: a 5 KB task (whitespace)'],
        [(i) => paddedWs(i, 4097), 'oversize: 4097 bytes, one over the limit'],
        [() => Buffer.alloc(5120, 0x78), 'oversize: 5 KB of "x"'],
        [() => Buffer.alloc(64 * 1024, 0x5b), 'oversize: 64 KB of "["'],
    ];
}

/* ------------------------------------------------------------------ */
/* checking results                                                   */
/* ------------------------------------------------------------------ */

const TS_RE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/;

/* Return null when the result is right for the task, else why not. */
/* --journal: every task's document, keyed by its result's message_id (a
 * dead letter's by the message_id the suite gave it), has the outcome the
 * suite received last; failed journal writes are counted.  A scenario that
 * restarts the in-memory test database loses what was written before:
 * documents missing there are noted, not failed. */
async function checkJournal(ctx, def, row, tasks, fail) {
    const client = await h.mongoClient(ctx.mongo.uri);
    const docs = await client.db(ctx.names.database).collection('reports_journal').find({}).toArray();
    const byId = new Map(docs.map((d) => [d._id, d]));
    let missing = 0;
    const wrong = [];
    for (const t of tasks) {
        let mid;
        let want;
        if (t.kind === 'poison') {
            mid = t.mid;
            want = 'dead_lettered';
        } else {
            const list = ctx.tally.results.get(L.idKey(t.id));
            if (!list || !list.length) continue;
            const last = list[list.length - 1];
            mid = last.properties.messageId;
            want = last.body && last.body.status === 'Complete' ? 'complete' : 'error';
        }
        const d = byId.get(mid);
        if (!d) missing++;
        else if (d.outcome !== want) wrong.push(`${mid}: journal says ${d.outcome}, the client received ${want}`);
    }
    const errors = ctx.finalMetrics ? ctx.finalMetrics.journalErrors : undefined;
    row.notes.push(`journal: ${docs.length} documents, ${missing} task(s) without one, ${wrong.length} mismatched, ` +
        `${errors} failed write(s)`);
    if (wrong.length) fail(`${wrong.length} journal document(s) disagree with the results, e.g. ${wrong.slice(0, 3).join(' | ')}`);
    if (missing && !def.preloadMongo) fail(`${missing} task(s) have no journal document`);
    if (errors === undefined) fail('/metrics has no reporterd_journal_write_errors_total');
    else if (errors !== 0 && !def.preloadMongo) fail(`${errors} journal write(s) failed outside the database outage`);
}

function checkResult(r, task, records) {
    try {
        const b = r.body;
        const idText = typeof task.id === 'string' ? task.id : String(task.id);
        if (r.properties.correlationId !== idText) {
            throw new Error(`AMQP correlation_id property ${JSON.stringify(r.properties.correlationId)}, expected ${idText}`);
        }
        if (typeof task.id === 'string' ? b.correlation_id !== task.id
            : (typeof b.correlation_id === 'string' || BigInt(b.correlation_id) !== BigInt(task.id))) {
            throw new Error(`correlation_id ${JSON.stringify(String(b.correlation_id))} (${typeof b.correlation_id})`);
        }
        if (!TS_RE.test(String(b.task_received))) throw new Error(`task_received ${b.task_received}`);
        if (b.from !== 'report_service' || b.to !== 'client') throw new Error('from/to');
        if (task.kind === 'error') {
            if (b.status !== 'Error') throw new Error(`status ${b.status}, expected Error (${task.why})`);
            if (b.error !== task.expectError) {
                throw new Error(`error text ${JSON.stringify(b.error)}, expected ${JSON.stringify(task.expectError)}`);
            }
            if (!Array.isArray(b.data) || b.data.length !== 0) throw new Error('data is not []');
            return null;
        }
        if (b.status !== 'Complete') throw new Error(`status ${b.status}${b.error ? ` (${b.error})` : ''}, expected Complete`);
        if (typeof b.total_duration !== 'number' || b.total_duration < 0) throw new Error(`total_duration ${b.total_duration}`);
        /* a phone comes back as a JSON number, never as a string */
        const phoneTypes = Array.isArray(b.data) ? b.data.map((e) => e && typeof e.phone) : [];
        if (phoneTypes.some((t) => t !== 'number' && t !== 'bigint')) throw new Error(`phone types ${phoneTypes.join(',')}`);
        h.assertReport(b.data, h.expectedReport(records, task.phones, 10), `task ${idText}`);
        return null;
    } catch (e) {
        return `${e.message} -- result: ${r.raw.slice(0, 300)}`;
    }
}

/* ------------------------------------------------------------------ */
/* one scenario                                                       */
/* ------------------------------------------------------------------ */

async function publishTasks(ctx, tasks, opts = {}) {
    const perSecond = opts.perSecond || 0;
    const concurrency = opts.concurrency || 16;
    const start = Date.now();
    let next = 0;
    const one = async () => {
        for (;;) {
            const k = next++;
            if (k >= tasks.length) return;
            if (perSecond) {
                const wait = start + (k * 1000) / perSecond - Date.now();
                if (wait > 0) await sleep(wait);
            }
            const t = tasks[k];
            await ctx.amqp.publish(ctx.names.task_queue, t.body, { messageId: t.mid });
            ctx.tally.sent.add(t.mid);
        }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, one));
}

function countLog(log, re) {
    return (log.match(new RegExp(re.source, 'g')) || []).length;
}

async function runScenario(def, data) {
    const t0 = Date.now();
    const row = {
        n: def.n, name: def.name, sent: 0, results: 0, lost: 0, duplicated: 0,
        poisonSent: 0, dead: 0, serving: 'no', ok: false, failures: [], notes: [], params: def.params, seconds: 0,
    };
    const fail = (m) => { if (row.failures.length < 25) row.failures.push(m); else row.failures.truncated = true; };
    const names = h.uniqueNames(`rdfault${def.n}`);
    const dir = h.tmpDir('reporterd-fault-');
    const ctx = { names, dir, data, row, def, tally: new L.Tally(), fail };
    const sanDir = path.join(OPTS.sanitizerDir, `scenario-${def.n}`);
    let daemon = null;
    try {
        await h.ensureBroker();
        /* the data */
        if (def.preloadMongo && h.env.mongoUri) {
            row.skipped = 'it stops the test MongoDB server, and REPORTERD_TEST_MONGODB_URI points at another one';
            row.serving = 'skipped';
            row.ok = true;
            row.notes.push(`skipped: ${row.skipped}`);
            return row;
        }
        if (def.preloadMongo) {
            const file = path.join(dir, 'calls.ndjson');
            L.writeLoadFile(file, names.database, names.collection, data.records);
            ctx.mongo = await L.startPreloadedMongo(file);
        } else {
            ctx.mongo = await h.startMongo();
            await h.loadRecords(ctx.mongo.uri, names.database, names.collection, data.records);
        }
        ctx.amqp = new L.RobustAmqp(h.env.amqpUrl, `s${def.n}`);
        await ctx.amqp.getConn();

        /* /metrics on a port of our own: the daemon's own counters */
        ctx.statusPort = await h.freePort();
        ctx.metrics = () => L.readMetrics(ctx.statusPort);
        ctx.workers = def.workers;
        ctx.config = (workers) => h.writeConfig(dir, h.deepMerge(Object.assign({
            worker_processes: workers,
            status: { listen: `127.0.0.1:${ctx.statusPort}` },
        }, OPTS.journal ? { journal: { enabled: true, collection: 'reports_journal' } } : {}),
        def.config || {}), { names, mongoUri: ctx.mongo.uri });
        const cfg = ctx.config(def.workers);
        const binary = h.env.testhooks && fs.existsSync(h.env.testhooks) ? h.env.testhooks : h.env.reporterd;
        fs.rmSync(sanDir, { recursive: true, force: true });
        fs.mkdirSync(sanDir, { recursive: true });
        const denv = Object.assign({ MONGOC_DISABLE_SHM: '1' }, L.sanitizerEnv(sanDir));
        if (def.env) Object.assign(denv, def.env(ctx, dir));
        if (def.delayMs && binary === h.env.testhooks) denv.REPORTERD_TEST_TASK_DELAY_MS = String(def.delayMs);
        else if (def.delayMs) row.notes.push('REPORTERD_TESTHOOKS not set: ran without the per-task delay');
        daemon = ctx.daemon = h.startDaemon(cfg, { binary, env: denv });
        await daemon.waitReady(def.workers, 30000);

        /* the tasks */
        const tasks = def.makeTasks(ctx);
        for (const t of tasks) ctx.tally.add(t);
        row.sent = tasks.filter((t) => t.kind !== 'poison').length;
        row.poisonSent = tasks.filter((t) => t.kind === 'poison').length;
        await ctx.amqp.consume(names.result_queue, (m) => ctx.tally.onResult(m));
        await ctx.amqp.consume(names.dead_letter_queue, (m) => ctx.tally.onDead(m));

        /* the run, with its fault */
        ctx.publishing = publishTasks(ctx, tasks, def.publish || {});
        await def.drive(ctx);
        await ctx.publishing;
        if (def.injected && def.injected(ctx) === 0) {
            fail('the fault was never injected: the run ended first (is REPORTERD_TESTHOOKS set? is --scale too small?)');
        }
        const tally = ctx.tally;
        /* wait for everything; give up early when the task queue has been
         * empty and nothing has arrived for 20 s (what is missing then is lost) */
        let progress = -1;
        let quietSince = Date.now();
        let lastPoll = 0;
        const stalled = async () => {
            const p = tally.resultCount + tally.dead.size;
            if (p !== progress) { progress = p; quietSince = Date.now(); return false; }
            if (Date.now() - lastPoll < 1000) return false;
            lastPoll = Date.now();
            const q = await ctx.amqp.queueCount(names.task_queue);
            if (q !== 0) { quietSince = Date.now(); return false; }
            return Date.now() - quietSince > 20000;
        };
        try {
            await h.waitFor(async () => tally.complete() || await stalled(), def.drainMs || 120000, () =>
                `every task answered and every poison message dead-lettered (answered ${tally.answered()}/${tally.tasks.size}, ` +
                `dead-lettered ${tally.deadPoison()}/${tally.poison.size})`, 100);
        } catch (e) {
            fail(e.message);
        }
        /* late duplicates: wait until the broker shows nothing in flight,
         * after which no more result or dead letter can come */
        try {
            await L.quiesce(names, 60000);
        } catch (e) {
            fail(e.message);
        }

        /* the figures */
        const results = new Map(tally.results);
        const resultCount = tally.resultCount;
        const wrong = [];
        const notDead = [];
        const badReason = [];
        const midOwner = new Map();     /* result message_id -> task key */
        for (const t of tasks) {
            if (t.kind === 'poison') {
                if (!tally.dead.has(t.mid)) notDead.push(t);
                for (const r of tally.deadReasons.get(t.mid) || []) {
                    if (typeof r !== 'string' || !r.startsWith('unreadable: ')) badReason.push(`${t.why}: ${JSON.stringify(r)}`);
                }
                continue;
            }
            const list = results.get(L.idKey(t.id));
            if (tally.dead.has(t.mid)) {
                fail(`${t.kind} task ${t.id} (${t.why}) ended in the dead-letter queue: ` +
                    `${JSON.stringify((tally.deadReasons.get(t.mid) || [])[0])}`);
            }
            if (!list) {
                row.lost++;
                continue;
            }
            for (const r of list) {
                const why = checkResult(r, t, data.records);
                if (why) wrong.push(`task ${t.id} (${t.why}): ${why}`);
            }
            /* one message_id per task, for every delivery: what clients
             * deduplicate by */
            const mids = new Set(list.map((r) => r.properties.messageId || ''));
            if (mids.has('') || mids.size !== 1) {
                wrong.push(`task ${t.id}: its ${list.length} result deliveries carry message_ids ${JSON.stringify([...mids])}`);
            } else {
                const mid = [...mids][0];
                if (midOwner.has(mid)) wrong.push(`tasks ${midOwner.get(mid)} and ${t.id} share the result message_id ${mid}`);
                midOwner.set(mid, t.id);
            }
        }
        if (notDead.length) {
            fail(`${notDead.length} poison message(s) not in the dead-letter queue: ` +
                notDead.slice(0, 8).map((t) => `${t.why}: ${JSON.stringify(t.body.toString('latin1').slice(0, 100))}`).join(' | '));
        }
        if (badReason.length) {
            fail(`${badReason.length} dead letter(s) without an x-reporterd-reason "unreadable: ...", e.g. ${badReason.slice(0, 3).join(' | ')}`);
        }
        for (const d of tally.deadProblems.slice(0, 3)) fail(d);
        if (wrong.length) fail(`${wrong.length} wrong result(s), e.g.:\n${wrong.slice(0, 3).join('\n')}`);
        if (row.lost) {
            const missing = tasks.filter((t) => t.kind !== 'poison' && !results.has(L.idKey(t.id)));
            fail(`${row.lost} task(s) lost, e.g. ${missing.slice(0, 5).map((t) => `${t.id} (${t.why})`).join(', ')}`);
        }
        for (const u of tally.unexpected.slice(0, 5)) fail(`unexpected result: ${u.why}: ${u.raw}`);
        if (tally.deadUnknown) fail(`${tally.deadUnknown} message(s) in the dead-letter queue that we did not send`);
        row.results = resultCount;
        row.duplicated = tally.duplicated();
        row.dead = tally.deadPoison();
        const counted = { results: resultCount, redeliveries: tally.collectorRedeliveries, deadCopies: tally.deadCopies };

        /* still serving: W+1 more tasks, all answered correctly */
        const mk = new TaskMaker(def.n * 10 + 9, L.prng(OPTS.seed ^ 0xabc), data);
        const probes = Array.from({ length: ctx.workers + 1 }, () => mk.good({ why: 'still-serving probe' }));
        for (const p of probes) tally.add(p);
        try {
            await publishTasks(ctx, probes, { concurrency: 4 });
            await h.waitFor(() => probes.every((p) => tally.results.has(L.idKey(p.id))), 60000,
                () => `results for the ${probes.length} still-serving tasks (got ${probes.filter((p) => tally.results.has(L.idKey(p.id))).length})`, 50);
            const bad = [];
            for (const p of probes) {
                for (const r of tally.results.get(L.idKey(p.id))) {
                    const why = checkResult(r, p, data.records);
                    if (why) bad.push(why);
                }
            }
            if (bad.length) fail(`still-serving task wrong: ${bad[0]}`);
            else row.serving = 'yes';
        } catch (e) {
            fail(`not serving after the fault: ${e.message}`);
        }
        for (const u of tally.unexpected.slice(0, 5)) if (!row.failures.some((f) => f.includes(u.raw))) fail(`unexpected result: ${u.why}: ${u.raw}`);

        /* the daemon's own counters, then its scenario's own checks */
        try {
            ctx.finalMetrics = await ctx.metrics();
        } catch (e) {
            fail(`reading /metrics: ${e.message}`);
        }
        if (OPTS.journal) {
            try {
                await checkJournal(ctx, def, row, tasks.concat(probes), fail);
            } catch (e) {
                fail(`the journal: ${e.message}`);
            }
        }
        if (def.check) {
            try {
                await def.check(ctx, { probes, counted });
            } catch (e) {
                fail(e.message);
            }
        }

        /* clean stop, clean log, no sanitizer report */
        const ex = await daemon.shutdown('SIGTERM', 20000).catch((e) => { fail(`stop: ${e.message.slice(0, 2000)}`); return null; });
        if (ex && ex.code !== 0) fail(`daemon exit after SIGTERM: ${JSON.stringify(ex)}`);
        const m = BAD_LOG_RE.exec(daemon.log);
        if (m) {
            const at = Math.max(0, m.index - 1000);
            fail(`daemon log contains "${m[0]}":\n${daemon.log.slice(at, m.index + 1500)}`);
        }
        const log = daemon.log;
        row.notes.push(...(def.notes ? def.notes(ctx, log) : []));
        const dl = countLog(log, /dead-lettered: crashed a worker/);
        if (dl) row.notes.push(`${dl} message(s) dead-lettered after max_redeliveries`);
        if (row.duplicated) {
            row.notes.push(`duplicated ${row.duplicated}: ${row.duplicated - counted.redeliveries} result(s) published again by the daemon, ` +
                `${counted.redeliveries} redelivered by the broker to the suite's collector after its ack was lost`);
        }
        if (counted.deadCopies > row.dead) row.notes.push(`${counted.deadCopies - row.dead} extra dead-letter copies`);
        if (ctx.finalMetrics) {
            const fm = ctx.finalMetrics;
            row.notes.push(`/metrics: ${fm.complete} complete, ${fm.error} error, ${fm.requeued} requeued, ` +
                `${fm.dead_lettered} dead-lettered`);
        }
        const pub = ctx.amqp.stats;
        if (pub.republished) row.notes.push(`suite publisher republished ${pub.republished} time(s) after a lost confirm`);
        if (pub.disconnects) row.notes.push(`suite AMQP client reconnected ${pub.disconnects} time(s)`);
    } catch (e) {
        fail(`scenario aborted: ${e && e.stack || e}`);
        if (daemon) fail(`daemon log tail:\n${daemon.log.slice(-3000)}`);
    } finally {
        if (brokerStopped) {
            try { await L.rabbitmqctl(['start_app']); brokerStopped = false; } catch (_) { /* logged at exit */ }
        }
        if (daemon && daemon.running()) {
            try { await daemon.shutdown('SIGTERM', 15000); } catch (_) { /* reported above */ }
        }
        if (ctx.amqp) {
            for (const q of [names.task_queue, names.result_queue, names.dead_letter_queue]) await ctx.amqp.deleteQueue(q);
            await ctx.amqp.close();
        }
        if (ctx.mongo && !def.preloadMongo) {
            try { await h.dropDatabase(ctx.mongo.uri, names.database); } catch (_) { /* stopped */ }
        }
        try { await h.cleanup(); } catch (e) { if (!row.failures.length) fail(`cleanup: ${e.message.slice(0, 1500)}`); }
        /* every process of the daemon has exited: its report files are complete */
        if (!row.skipped) {
            const reports = L.sanitizerReports(sanDir);
            for (const r of reports.slice(0, 5)) fail(`sanitizer report ${r.file}: ${r.summary}\n${r.text.slice(0, 2000)}`);
            if (reports.length > 5) fail(`${reports.length - 5} more sanitizer report(s) in ${sanDir}`);
        }
    }
    row.seconds = (Date.now() - t0) / 1000;
    row.ok = row.failures.length === 0;
    return row;
}

/* ------------------------------------------------------------------ */
/* the scenarios                                                      */
/* ------------------------------------------------------------------ */

function goodTasks(ctx, n) {
    const mk = new TaskMaker(ctx.def.n, L.prng(OPTS.seed + ctx.def.n), ctx.data);
    return Array.from({ length: n }, () => mk.good());
}

/* The daemon's log line for a task it put back because of the database
 * (unavailable, or out of time): "task ID: ... returning the task to the queue". */
const RETURNED_RE = /task (.+?): (?:database unavailable, |the query ran out of time [^;\n]*; )returning the task to the queue/g;

/* Wait until frac of the tasks have results (the "middle of the run"). */
async function untilAnswered(ctx, frac, timeoutMs = 120000) {
    const want = Math.ceil(ctx.tally.tasks.size * frac);
    await h.waitFor(() => ctx.tally.answered() >= want, timeoutMs,
        () => `${want} tasks answered before the fault (got ${ctx.tally.answered()})`, 20);
}

const SCENARIOS = [
    {
        n: 1,
        name: 'kill -9 a random worker every second',
        workers: 4,
        delayMs: 60,
        get params() { return `${scaled(500)} tasks, 4 workers, +${this.delayMs} ms per task, one SIGKILL per second until all are answered`; },
        makeTasks: (ctx) => goodTasks(ctx, scaled(500)),
        async drive(ctx) {
            ctx.kills = 0;
            ctx.noneUp = 0;
            await untilAnswered(ctx, 0.01);
            const deadline = Date.now() + 240000;
            while (!ctx.tally.complete()) {
                if (Date.now() > deadline) {
                    throw new Error(`not every task answered within 240 s of killing ` +
                        `(${ctx.tally.answered()} of ${ctx.tally.tasks.size}, ${ctx.kills} kills)`);
                }
                await sleep(1000);
                if (ctx.tally.complete()) break;
                const pids = L.workerPids(ctx.daemon.pid);
                if (!pids.length) { ctx.noneUp++; continue; }
                const pid = pids[Math.floor(Math.random() * pids.length)];
                try {
                    process.kill(pid, 'SIGKILL');
                    ctx.kills++;
                } catch (_) { /* gone already */ }
                if (!ctx.daemon.running()) throw new Error('the master died');
            }
        },
        injected: (ctx) => ctx.kills,
        notes: (ctx, log) => [
            `${ctx.kills} workers killed (${countLog(log, /killed by signal 9/)} reaped), ` +
            `${countLog(log, /throttled: respawning/)} respawns throttled` +
            (ctx.noneUp ? `, ${ctx.noneUp} s with no worker up` : ''),
        ],
        drainMs: 180000,
    },
    {
        n: 2,
        name: 'RabbitMQ stop_app / start_app mid-run',
        workers: 3,
        delayMs: 50,
        publish: { perSecond: 80 },
        get params() { return `${scaled(400)} tasks published at 80/s (faster than the 3 workers, +${this.delayMs} ms per task, take them, so a backlog is queued); stop_app at 25 % answered, start_app 3 s after it returned`; },
        makeTasks: (ctx) => goodTasks(ctx, scaled(400)),
        async drive(ctx) {
            await untilAnswered(ctx, 0.25);
            ctx.backlog = await ctx.amqp.queueCount(ctx.names.task_queue);
            ctx.answeredAtStop = ctx.tally.answered();
            const t = Date.now();
            brokerStopped = true;
            const r = await h.run('sh', ['-c',
                'rabbitmqctl stop_app >&2 || exit 1; echo stopped $(date +%s%3N); sleep 3; ' +
                'rabbitmqctl start_app >&2 || exit 2; rabbitmqctl await_startup >&2 || exit 3'], { timeoutMs: 300000 });
            if (r.code !== 0) {
                await L.rabbitmqctl(['start_app']).catch(() => {});
                brokerStopped = false;
                throw new Error(`restarting the broker failed (${r.code}): ${(r.stdout + r.stderr).trim().slice(-800)}`);
            }
            brokerStopped = false;
            ctx.outage = (Date.now() - t) / 1000;
            const m = /stopped (\d+)/.exec(r.stdout);
            ctx.stopTook = m ? (Number(m[1]) - t) / 1000 : NaN;
        },
        notes: (ctx, log) => [
            `stop_app with ${ctx.answeredAtStop} tasks answered, ${ctx.backlog} waiting in the queue; ` +
            `broker down ${ctx.outage.toFixed(1)} s (stop_app took ${ctx.stopTook.toFixed(1)} s); ` +
            `worker reconnects: ${countLog(log, /lost the broker|broker unreachable/)} losses/failed attempts logged, ` +
            `${countLog(log, /consuming from/) - ctx.workers} re-consumes`,
        ],
    },
    {
        n: 3,
        name: 'MongoDB stopped for 10 s mid-run',
        workers: 3,
        delayMs: 20,
        preloadMongo: true,
        publish: { perSecond: 25 },
        get params() { return `${scaled(300)} tasks published at 25/s, 3 workers, +${this.delayMs} ms per task; test server stopped at 25 % answered, restarted (same port, data preloaded) once the daemon has returned a task to the queue and 10 s have passed`; },
        makeTasks: (ctx) => goodTasks(ctx, scaled(300)),
        async drive(ctx) {
            await untilAnswered(ctx, 0.25);
            const before = (await ctx.metrics()).requeued;
            const t = Date.now();
            await ctx.mongo.stop();
            /* the outage lasts 10 s, and at least until the daemon has
             * returned a task (so the requeue path is taken, not skipped
             * because the workers happened to be idle) */
            await h.waitFor(async () => (await ctx.metrics()).requeued > before, 60000,
                'reporterd_tasks_total{outcome="requeued"} to grow while the database is down', 200);
            ctx.requeuedSeen = Date.now() - t;
            const rest = 10000 - (Date.now() - t);
            if (rest > 0) await sleep(rest);        /* the fault's length, not a synchronisation */
            ctx.restartedAt = Date.now();
            await ctx.mongo.restart();
            ctx.outage = (Date.now() - t) / 1000;
        },
        injected: (ctx) => (ctx.restartedAt ? 1 : 0),
        /* the requeue path was taken, and what was returned came back right
         * after the restart (the data was loaded before the new server
         * listened, so a zero-count report would be a wrong figure) */
        async check(ctx) {
            const requeued = ctx.finalMetrics ? ctx.finalMetrics.requeued : 0;
            if (!(requeued > 0)) throw new Error('scenario 3 did not take the requeue path: reporterd_tasks_total{outcome="requeued"} is 0');
            const ids = [...ctx.daemon.log.matchAll(RETURNED_RE)].map((m) => m[1]);
            ctx.returnedIds = new Set(ids);
            const problems = [];
            for (const id of ctx.returnedIds) {
                const task = ctx.tally.tasks.get(`s:${id}`) || ctx.tally.tasks.get(`n:${id}`);
                if (!task) { problems.push(`${id}: not a task of this run`); continue; }
                const list = ctx.tally.results.get(L.idKey(task.id)) || [];
                if (!list.some((r) => r.at >= ctx.restartedAt)) problems.push(`${id}: no result after the restart`);
            }
            if (problems.length) throw new Error(`tasks returned to the queue: ${problems.slice(0, 5).join('; ')}`);
            let after = 0;
            for (const list of ctx.tally.results.values()) after += list.filter((r) => r.at >= ctx.restartedAt).length;
            ctx.resultsAfterRestart = after;
            if (!after) throw new Error('no result arrived after the database restart: the run ended before it');
        },
        notes: (ctx, log) => [
            `database down ${ctx.outage.toFixed(1)} s (first task returned ${(ctx.requeuedSeen / 1000).toFixed(1)} s after the stop); ` +
            `${ctx.returnedIds ? ctx.returnedIds.size : 0} distinct tasks returned to the queue ` +
            `(${countLog(log, RETURNED_RE)} times), each answered after the restart; ` +
            `${ctx.resultsAfterRestart || 0} results after the restart, all equal to the oracle; ` +
            `${countLog(log, /database unreachable/)} failed database retries logged`,
        ],
    },
    {
        n: 4,
        name: 'poison messages interleaved with good and bad tasks',
        workers: 4,
        delayMs: 0,
        config: { task: { max_message_size: 4096, max_phones: 100 } },
        get params() { return `${scaled(1000)} unreadable messages of ${POISON_KIND_COUNT} kinds, ${scaled(300)} good tasks, ${scaled(150)} contract-breaking tasks, shuffled; 4 workers, task.max_message_size 4096`; },
        makeTasks: (ctx) => {
            const rnd = L.prng(OPTS.seed + 4);
            const mk = new TaskMaker(4, rnd, ctx.data);
            const out = [];
            const kinds = poisonKinds(mk);
            for (let i = 0; i < scaled(1000); i++) {
                const [fn, why] = kinds[i % kinds.length];
                out.push(mk.poison(fn(i), why));
            }
            const ng = scaled(300);
            out.push(mk.good({ padTo: 4096, why: 'good task of exactly max_message_size bytes' }));
            out.push(mk.good({ id: `заказ №${mk.seq} "quoted" \\ back`, why: 'good task, unicode string id' }));
            out.push(mk.good({ id: '9223372036854775807', why: 'good task, string id of digits' }));
            out.push(mk.good({ id: 'ok-\u00e9-\u2116-\uffff-\u{1F600}-\u{10FFFF}', why: 'good task, id with 2-, 3- and 4-byte UTF-8' }));
            out.push(mk.good({ phones: ctx.data.phones.slice(30), why: 'good task, int64 phones' }));
            while (out.length < scaled(1000) + ng) out.push(mk.good());
            for (let i = 0; i < scaled(150); i++) {
                const [fn, why, text] = ERROR_KINDS[i % ERROR_KINDS.length];
                out.push(mk.error(fn, why, text));
            }
            return L.shuffle(out, rnd);
        },
        publish: { concurrency: 32 },
        async drive() { /* the fault is the input */ },
        /* nothing else happened to this run, so the daemon's own counters
         * must match what the broker delivered, one for one */
        async check(ctx, { probes, counted }) {
            const fm = ctx.finalMetrics;
            if (!fm) return;
            let complete = 0;
            let error = 0;
            for (const list of ctx.tally.results.values()) {
                for (const r of list) {
                    if (r.body.status === 'Complete') complete++;
                    else if (r.body.status === 'Error') error++;
                }
            }
            const want = { complete, error, dead_lettered: counted.deadCopies, requeued: 0 };
            const diff = Object.keys(want).filter((k) => fm[k] !== want[k]);
            if (diff.length) {
                throw new Error(`/metrics disagree with what arrived (${probes.length} probes included): ` +
                    diff.map((k) => `${k} ${fm[k]}, received ${want[k]}`).join('; '));
            }
        },
        notes: (ctx, log) => [
            `${countLog(log, /moving an unreadable message/)} unreadable messages logged, ${countLog(log, /invalid: /)} contract errors logged`,
        ],
    },
    {
        n: 5,
        name: 'SIGHUP every 2 s (worker_processes 2 <-> 3)',
        workers: 2,
        delayMs: 40,
        publish: { perSecond: 40 },
        get params() { return `${scaled(500)} tasks published at 40/s, +${this.delayMs} ms per task; every 2 s the config flips worker_processes 2/3 and the master gets SIGHUP`; },
        makeTasks: (ctx) => goodTasks(ctx, scaled(500)),
        async drive(ctx) {
            ctx.hups = 0;
            let published = false;
            ctx.publishing.then(() => { published = true; }, () => { published = true; });
            await untilAnswered(ctx, 0.01);
            const deadline = Date.now() + 240000;
            while (!(published && ctx.tally.complete())) {
                if (Date.now() > deadline) {
                    throw new Error(`not every task answered within 240 s of reloading ` +
                        `(${ctx.tally.answered()} of ${ctx.tally.tasks.size}, ${ctx.hups} reloads)`);
                }
                await sleep(2000);
                if (published && ctx.tally.complete()) break;
                ctx.workers = ctx.workers === 2 ? 3 : 2;
                ctx.config(ctx.workers);
                ctx.daemon.signal('SIGHUP');
                ctx.hups++;
                if (!ctx.daemon.running()) throw new Error('the master died');
            }
        },
        injected: (ctx) => ctx.hups,
        notes: (ctx, log) => [
            `${ctx.hups} reloads; ${countLog(log, /all \d+ workers consuming; stopping older generations/)} generation switches completed`,
        ],
    },
    {
        n: 6,
        name: 'kill -9 the rollup folder at every step',
        workers: 2,
        delayMs: 20,
        /* batches of 3 records: the folder passes every step often */
        config: { report: { mode: 'rollup' }, rollup: { batch: 3, interval: '20ms', lease: '2s', verify_rate: 0 } },
        publish: { perSecond: 40 },
        get params() { return `${scaled(300)} tasks published at 40/s in rollup mode (report.mode: rollup, batches of 3 records), 2 workers; the folder is killed with SIGKILL right after claim, mark, apply and lease renewal in turn (a test hook), while the records the tasks ask for and a stream of other records are folded; then every rollup is compared with a brute-force count (rollup.verify_rate: 0: the folder's verification would repair a double count before it is counted)`; },
        env: (ctx, dir) => {
            ctx.killFile = path.join(dir, 'folder-kill');
            fs.writeFileSync(ctx.killFile, 'claim');    /* the first kill: at its first claim */
            return { REPORTERD_TEST_FOLDER_KILL: ctx.killFile };
        },
        makeTasks: (ctx) => goodTasks(ctx, scaled(300)),
        async drive(ctx) {
            const steps = ['claim', 'mark', 'apply', 'lease'];
            const coll = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database).collection(ctx.names.collection);
            ctx.kills = {};
            ctx.extra = 0;
            let stop = false;
            /* records of phones no task asks for (one with a phone that is
             * not an integer): the folder always has work */
            const writer = (async () => {
                const base = Date.UTC(2023, 5, 1);
                while (!stop) {
                    const docs = Array.from({ length: 5 }, (_, k) => ({
                        phone: k === 4 ? 555.5 : 555, start_date: base + ctx.extra * 1000, end_date: base + ctx.extra * 1000 + 12345 + k,
                    }));
                    await coll.insertMany(docs);
                    ctx.extra += docs.length;
                    await sleep(20);
                }
            })();
            let published = false;
            ctx.publishing.then(() => { published = true; }, () => { published = true; });
            try {
                let i = 0;
                const deadline = Date.now() + 240000;
                while (!(published && ctx.tally.complete()) || i < steps.length * 2) {
                    if (Date.now() > deadline) throw new Error(`folder kills did not finish within 240 s (${JSON.stringify(ctx.kills)})`);
                    const step = steps[i % steps.length];
                    const worked = countLog(ctx.daemon.log, /folder: folded batch/);
                    if (i > 0) fs.writeFileSync(ctx.killFile, step);
                    await h.waitFor(() => !fs.existsSync(ctx.killFile), 60000, `the folder to pass "${step}" and be killed there`, 10);
                    ctx.kills[step] = (ctx.kills[step] || 0) + 1;
                    /* respawned, and folding again (the first kill may come
                     * before its first batch): then arm the next */
                    await ctx.daemon.waitForLogCount(/folder: folded batch/, worked + 1, 30000);
                    i++;
                    if (!ctx.daemon.running()) throw new Error('the master died');
                }
            } finally {
                stop = true;
                await writer;
            }
        },
        injected: (ctx) => Object.values(ctx.kills || {}).reduce((a, b) => a + b, 0),
        /* every record folded exactly once: each phone's rollup equals a
         * brute-force count over the records, and --verify agrees */
        async check(ctx) {
            const { expectedSums } = L;
            const db = (await h.mongoClient(ctx.mongo.uri)).db(ctx.names.database);
            const coll = db.collection(ctx.names.collection);
            const rollupColl = `${ctx.names.collection}_rollup`;
            const field = await h.waitFor(() => h.rollupField(db, rollupColl), 60000, 'a folder made an epoch', 200);
            await h.waitFor(async () => (await coll.countDocuments({ [field]: null })) === 0, 120000, 'every record folded', 200);
            const epoch = field.slice(3);
            const rollups = (await db.collection(rollupColl).find({}).toArray()).filter((d) => d.e === epoch);
            const records = await coll.find({}).toArray();
            const want = expectedSums(records);
            let lost = 0;
            let doubled = 0;
            const bad = [];
            for (const [phone, w] of want) {
                const r = rollups.find((d) => BigInt(d._id.toString()) === phone);
                const got = r ? BigInt(r.cnt.toString()) + BigInt(r.invalid.toString()) : 0n;
                const all = w.cnt + w.invalid;
                if (got < all) lost += Number(all - got);
                if (got > all) doubled += Number(got - all);
                for (const k of ['cnt', 'cnt_10', 'cnt_10_30', 'cnt_30', 'sum_ms', 'sum_ms_over_15', 'invalid']) {
                    if (!r || BigInt(r[k].toString()) !== w[k]) bad.push(`phone ${phone}: ${k} ${r ? r[k] : 'missing'}, brute force ${w[k]}`);
                }
            }
            ctx.rollupLost = lost;
            ctx.rollupDoubled = doubled;
            ctx.rollupPhones = want.size;
            if (bad.length) throw new Error(`rollups differ from the records: lost ${lost}, double-counted ${doubled}; ${bad.slice(0, 5).join('; ')}`);
            const cfg = ctx.config(ctx.workers);
            const v = await h.run(h.env.reporterctl, ['-c', cfg, 'rollup', '--verify'], { timeoutMs: 120000 });
            if (v.code !== 0) throw new Error(`reporterctl rollup --verify exited ${v.code}: ${v.stdout.slice(-800)}${v.stderr.slice(-800)}`);
        },
        notes: (ctx, log) => [
            `folder killed ${Object.entries(ctx.kills || {}).map(([k, v]) => `${v}× after ${k}`).join(', ')} ` +
            `(${countLog(log, /rollup folder \d+ killed by signal 9\n/)} reaped); ${ctx.extra} records inserted by a writer meanwhile; ` +
            `rollups of ${ctx.rollupPhones || 0} phones compared with a brute-force count: lost ${ctx.rollupLost}, double-counted ${ctx.rollupDoubled}`,
        ],
    },
];
const POISON_KIND_COUNT = poisonKinds(new TaskMaker(0, L.prng(1), { phones: [1] })).length;

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

/* Wait until no client other than this suite (and the daemon under test)
 * is connected: restarting the broker under another test run breaks it. */
async function waitBrokerIdle(seconds) {
    const deadline = Date.now() + seconds * 1000;
    let foreign = [];
    let idle = 0;
    for (;;) {
        try {
            foreign = (await L.brokerConnectionNames()).filter((n) => !n.startsWith('reporterd-fault ') &&
                !/^reporterd worker \d+$/.test(n));
        } catch (e) {
            return `could not list broker connections: ${e.message.split('\n')[0]}`;
        }
        if (!foreign.length && ++idle >= 3) return null;
        if (foreign.length) idle = 0;
        if (Date.now() >= deadline) break;
        await sleep(1000);
    }
    if (!foreign.length) return null;
    return `restarted the broker although ${foreign.length} other client(s) were connected: ${foreign.slice(0, 5).join(', ')}`;
}

function table(rows) {
    const head = '| scenario | tasks sent | results received | lost | duplicated | poison sent | dead-lettered | still serving |';
    const sep = '|---|---:|---:|---:|---:|---:|---:|---|';
    const lines = rows.map((r) => `| ${r.n}. ${r.name}${r.ok ? '' : ' **FAILED**'} | ${r.sent} | ${r.results} | ${r.lost} | ` +
        `${r.duplicated} | ${r.poisonSent} | ${r.dead} | ${r.serving} |`);
    return [head, sep, ...lines].join('\n');
}

/* What the daemon under test was built with (make passes SAN_CFLAGS). */
function buildKind() {
    const san = (process.env.REPORTERD_SANITIZERS || '').trim();
    const m = /-fsanitize=(\S+)/.exec(san);
    return m ? `sanitizer build (${m[1]})` : 'plain build';
}

async function main() {
    const started = Date.now();
    const rnd = L.prng(OPTS.seed);
    const data = makeData(rnd);
    const binary = h.env.testhooks && fs.existsSync(h.env.testhooks) ? h.env.testhooks : h.env.reporterd;
    const defs = SCENARIOS.filter((d) => !OPTS.only || OPTS.only.has(d.n));
    say(`1..${defs.length}`);
    say(`# reporterd fault-injection suite: seed ${OPTS.seed}, scale ${OPTS.scale}, ${data.records.length} call records ` +
        `over ${data.phones.length} phones, daemon ${binary}, ${buildKind()}; ` +
        `sanitizer reports go to ${OPTS.sanitizerDir}`);
    const rows = [];
    for (const [i, def] of defs.entries()) {
        say(`# scenario ${def.n}: ${def.name}: ${def.params}`);
        let pre = null;
        if (def.n === 2) {
            pre = await waitBrokerIdle(OPTS.brokerIdleWait);
            if (pre) say(`# warning: ${pre}`);
        }
        const row = await runScenario(def, data);
        if (pre) row.notes.unshift(pre);
        rows.push(row);
        const summary = `sent ${row.sent}, results ${row.results}, lost ${row.lost}, ` +
            `duplicated ${row.duplicated}, poison ${row.poisonSent}, dead-lettered ${row.dead}, still serving ${row.serving} ` +
            `(${row.seconds.toFixed(1)} s)`;
        if (row.skipped) say(`ok ${i + 1} - ${def.n}. ${def.name} # SKIP ${row.skipped}`);
        else say(`${row.ok ? 'ok' : 'not ok'} ${i + 1} - ${def.n}. ${def.name}: ${summary}`);
        for (const n of row.notes) say(`#   ${n}`);
        for (const f of row.failures) say(`#   FAIL: ${f.replace(/\n/g, '\n#     ')}`);
        if (row.failures.truncated) say('#   (more failures not shown)');
    }
    const seconds = (Date.now() - started) / 1000;
    const ok = rows.every((r) => r.ok) && rows.length > 0;
    const md = [
        `## reporterd fault-injection run (${new Date().toISOString().replace(/\.\d+Z$/, 'Z')})`,
        '',
        table(rows),
        '',
        `Result: **${ok ? 'PASS' : 'FAIL'}** in ${seconds.toFixed(0)} s on ${os.cpus().length} cores, ${buildKind()}; ` +
        `seed ${OPTS.seed}, scale ${OPTS.scale}; data: ${data.records.length} call records over ${data.phones.length} phones.`,
        '',
        ...rows.map((r) => `- **${r.n}. ${r.name}** (${r.seconds.toFixed(1)} s): ${r.params}.` +
            (r.notes.length ? ` ${r.notes.join('; ')}.` : '') +
            (r.ok ? '' : ` FAILED: ${r.failures.map((f) => f.split('\n')[0]).slice(0, 3).join('; ')}`)),
        '',
    ].join('\n');
    say('#');
    for (const line of table(rows).split('\n')) say(`# ${line}`);
    say('#');
    say(`# ${ok ? 'PASS' : 'FAIL'}: ${rows.filter((r) => r.ok).length}/${rows.length} scenarios in ${seconds.toFixed(0)} s`);
    try {
        fs.mkdirSync(path.dirname(OPTS.out), { recursive: true });
        fs.writeFileSync(OPTS.out, md);
        say(`# table written to ${OPTS.out}`);
    } catch (e) {
        say(`# could not write ${OPTS.out}: ${e.message}`);
    }
    return ok;
}

main().then((ok) => {
    process.exitCode = ok ? 0 : 1;
    /* amqplib or the mongodb driver may keep the loop alive */
    setTimeout(() => process.exit(process.exitCode), 200).unref();
}, (e) => {
    say(`Bail out! ${String(e && e.message || e).split('\n')[0]}`);
    say(`# ${String(e && e.stack || e).replace(/\n/g, '\n# ')}`);
    process.exit(1);
});
