/*
 * lib.js -- helpers for reporterd's fault-injection suite (t/fault/run.js).
 *
 *   RobustAmqp    an amqplib client that survives broker restarts: it
 *                 reconnects with backoff, re-creates its confirm channel
 *                 and re-starts its consumers; publish() retries until the
 *                 broker has confirmed the message (at-least-once, so a
 *                 message may be published twice: count by id, not by
 *                 message).
 *   Tally         what came back: every delivery of a result by
 *                 correlation_id (a redelivered copy is a duplicate too),
 *                 dead-lettered messages by message_id with their reason,
 *                 checked against what was sent.
 *   evidence      the broker's queue depths (nothing in flight any more),
 *                 the daemon's /metrics counters, sanitizer report files.
 *   mongo helpers the test MongoDB server started with its data preloaded
 *                 (t/fault/mongod-preload.js), so it can be stopped and
 *                 started again on the same port without a window in which
 *                 it answers with an empty collection.
 *   process helpers the daemon's worker pids (from /proc), rabbitmqctl.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const h = require('../lib/harness.js');

const sleep = h.sleep;

const { prng } = h;

function shuffle(a, rnd) {
    for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
}

/* ------------------------------------------------------------------ */
/* a reconnecting AMQP client                                         */
/* ------------------------------------------------------------------ */

class RobustAmqp extends EventEmitter {
    /* url: one broker, or a cluster's nodes (an array), tried in turn */
    constructor(url, label) {
        super();
        this.urls = Array.isArray(url) ? url : [url];
        this.nextUrl = 0;
        this.label = label;
        this.conn = null;
        this.connecting = null;
        this.closed = false;
        this.consumers = [];
        this.pub = null;            /* promise of the confirm channel */
        this.returned = new Set();  /* message ids returned as unroutable */
        this.stats = { connects: 0, disconnects: 0, republished: 0, returned: 0 };
    }

    getConn() {
        if (this.conn) return Promise.resolve(this.conn);
        if (this.closed) return Promise.reject(new Error(`${this.label}: closed`));
        if (!this.connecting) {
            this.connecting = this._connectLoop().finally(() => { this.connecting = null; });
        }
        return this.connecting;
    }

    async _connectLoop() {
        let delay = 200;
        for (;;) {
            if (this.closed) throw new Error(`${this.label}: closed`);
            let c = null;
            try {
                c = await h.lazyRequire('amqplib').connect(this.urls[this.nextUrl++ % this.urls.length], {
                    timeout: 5000,
                    clientProperties: { connection_name: `reporterd-fault ${this.label} ${process.pid}` },
                });
            } catch (e) {
                await sleep(delay);
                delay = Math.min(delay * 2, 2000);
                continue;
            }
            c.on('error', () => { /* 'close' follows */ });
            c.on('close', () => {
                if (this.conn !== c) return;
                this.conn = null;
                this.pub = null;
                this.stats.disconnects++;
                this.emit('down');
                if (!this.closed) this.getConn().catch(() => {});
            });
            this.conn = c;
            this.stats.connects++;
            for (const k of this.consumers) this._startConsumer(k, c);
            return c;
        }
    }

    /* Consume queue, calling handler(msg) for each message, then acking it.
     * Survives reconnects.  Returns the consumer record. */
    async consume(queue, handler, prefetch = 200) {
        const k = { queue, handler, prefetch, ch: null };
        this.consumers.push(k);
        const c = await this.getConn();
        if (this.conn === c && !k.ch) await this._startConsumer(k, c);
        return k;
    }

    async _startConsumer(k, c) {
        if (k.starting === c) return;
        k.starting = c;
        for (let tries = 0; this.conn === c && !this.closed; tries++) {
            try {
                const ch = await c.createChannel();
                ch.on('error', () => {});
                ch.on('close', () => {
                    if (k.ch !== ch) return;
                    k.ch = null;
                    /* a channel-level failure on a live connection: retry */
                    if (this.conn === c && !this.closed) {
                        k.starting = null;
                        setTimeout(() => this._startConsumer(k, c), 200);
                    }
                });
                await ch.prefetch(k.prefetch);
                await ch.consume(k.queue, (m) => {
                    if (!m) return;             /* cancelled by the broker */
                    try { k.handler(m); } finally {
                        try { ch.ack(m); } catch (_) { /* channel gone: redelivered */ }
                    }
                }, { noAck: false });
                k.ch = ch;
                return;
            } catch (e) {
                await sleep(Math.min(200 * (tries + 1), 2000));
            }
        }
    }

    _pubChannel() {
        if (!this.pub) {
            const p = this.getConn().then(async (c) => {
                const ch = await c.createConfirmChannel();
                ch.on('error', () => {});
                ch.on('close', () => { if (this.pub === p) this.pub = null; });
                ch.on('return', (m) => {
                    this.stats.returned++;
                    if (m.properties.messageId) this.returned.add(m.properties.messageId);
                });
                return ch;
            });
            p.catch(() => { if (this.pub === p) this.pub = null; });
            this.pub = p;
        }
        return this.pub;
    }

    /* Publish persistent to queue through the default exchange; retry until
     * the broker confirms it (and did not return it).  props.messageId is
     * required (it identifies a returned message). */
    async publish(queue, body, props) {
        const buf = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
        const options = Object.assign({ persistent: true, mandatory: true, contentType: 'application/json' }, props);
        for (let attempt = 0; ; attempt++) {
            if (this.closed) throw new Error(`${this.label}: closed while publishing`);
            if (attempt > 0) {
                this.stats.republished++;
                await sleep(Math.min(100 * attempt, 1000));
            }
            let ch;
            try {
                ch = await this._pubChannel();
            } catch (_) {
                continue;
            }
            this.returned.delete(options.messageId);
            try {
                await new Promise((resolve, reject) => {
                    const t = setTimeout(() => reject(new Error('no confirm within 20 s')), 20000);
                    try {
                        ch.publish('', queue, buf, options, (err) => {
                            clearTimeout(t);
                            if (err) reject(err); else resolve();
                        });
                    } catch (e) {
                        clearTimeout(t);
                        reject(e);
                    }
                });
            } catch (_) {
                continue;
            }
            if (this.returned.has(options.messageId)) continue;     /* no such queue (yet) */
            return attempt;
        }
    }

    /* Message count of a queue (passive declare), or null. */
    async queueCount(queue) {
        let ch = null;
        try {
            const c = await this.getConn();
            ch = await c.createChannel();
            ch.on('error', () => {});
            const q = await ch.checkQueue(queue);
            return q.messageCount;
        } catch (_) {
            return null;
        } finally {
            if (ch) { try { await ch.close(); } catch (_) { /* closed */ } }
        }
    }

    async deleteQueue(queue) {
        let ch = null;
        try {
            const c = await Promise.race([this.getConn(), sleep(10000).then(() => { throw new Error('timeout'); })]);
            ch = await c.createChannel();
            ch.on('error', () => {});
            await ch.deleteQueue(queue);
        } catch (_) {
            /* gone already */
        } finally {
            if (ch) { try { await ch.close(); } catch (_) { /* closed */ } }
        }
    }

    async close() {
        this.closed = true;
        const c = this.conn;
        this.conn = null;
        if (c) { try { await c.close(); } catch (_) { /* gone */ } }
    }
}

/* ------------------------------------------------------------------ */
/* bookkeeping                                                        */
/* ------------------------------------------------------------------ */

function idKey(v) {
    return typeof v === 'string' ? `s:${v}` : `n:${v.toString()}`;
}

/* Tasks: {kind: 'good'|'error'|'poison', mid, id?, phones?, body(Buffer), why}.
 * Results are keyed by correlation_id, dead letters by message_id.
 *
 * Every delivery of a result counts: a client sees a copy the broker
 * redelivers to it (its ack was lost with its connection) exactly as it
 * sees a result the daemon published twice, and has to drop both by
 * message_id.  So both are duplicates; they are told apart only in the
 * notes (redelivered flag set and a message_id seen before = a broker
 * redelivery to the suite's collector). */
class Tally {
    constructor() {
        this.tasks = new Map();         /* idKey -> task (good and error) */
        this.poison = new Map();        /* message id -> task */
        this.byMid = new Map();         /* message id -> task (all) */
        this.sent = new Set();          /* message ids confirmed by the broker */
        this.results = new Map();       /* idKey -> [result delivery] */
        this.resultMids = new Set();    /* result message ids seen */
        this.resultCount = 0;           /* every delivery */
        this.collectorRedeliveries = 0; /* of which: the broker's redeliveries to us */
        this.unexpected = [];           /* results for no task we sent */
        this.dead = new Map();          /* message id -> count of copies in the DLQ */
        this.deadCopies = 0;
        this.deadReasons = new Map();   /* message id -> [x-reporterd-reason] */
        this.deadProblems = [];         /* a dead letter that is not the message we sent */
        this.deadUnknown = 0;
        this.firstResultAt = 0;
    }

    add(task) {
        this.byMid.set(task.mid, task);
        if (task.kind === 'poison') this.poison.set(task.mid, task);
        else this.tasks.set(idKey(task.id), task);
    }

    onResult(m) {
        const raw = m.content.toString('utf8');
        let body = null;
        try {
            JSON.parse(raw);
            body = h.parseJson(raw);
        } catch (_) {
            this.unexpected.push({ why: 'result is not JSON', raw: raw.slice(0, 300) });
            return;
        }
        const mid = m.properties.messageId || '';
        const redelivery = Boolean(m.fields.redelivered && mid && this.resultMids.has(mid));
        if (redelivery) this.collectorRedeliveries++;
        if (mid) this.resultMids.add(mid);
        this.resultCount++;
        if (!this.firstResultAt) this.firstResultAt = Date.now();
        const cid = body && body.correlation_id;
        if (cid === undefined || cid === null || (typeof cid !== 'string' && typeof cid !== 'number' && typeof cid !== 'bigint')) {
            this.unexpected.push({ why: 'result without correlation_id', raw: raw.slice(0, 300) });
            return;
        }
        const k = idKey(cid);
        if (!this.tasks.has(k)) {
            this.unexpected.push({ why: `result for unknown correlation_id ${k}`, raw: raw.slice(0, 300) });
            return;
        }
        let list = this.results.get(k);
        if (!list) this.results.set(k, list = []);
        list.push({ body, raw, properties: m.properties, redelivery, at: Date.now() });
    }

    /* A dead letter must be the message we sent (same message_id, same
     * bytes) with the reason reporterd gave in x-reporterd-reason. */
    onDead(m) {
        const mid = m.properties.messageId || '';
        const task = this.byMid.get(mid);
        if (!task) {
            this.deadUnknown++;
            return;
        }
        this.deadCopies++;
        this.dead.set(mid, (this.dead.get(mid) || 0) + 1);
        const hdr = (m.properties.headers || {})['x-reporterd-reason'];
        const reason = hdr === undefined ? undefined : Buffer.isBuffer(hdr) ? hdr.toString('utf8') : String(hdr);
        if (!this.deadReasons.has(mid)) this.deadReasons.set(mid, []);
        this.deadReasons.get(mid).push(reason);
        if (!m.content.equals(task.body)) {
            this.deadProblems.push(`dead letter ${mid} (${task.why}) has other bytes than the message sent ` +
                `(${m.content.length} bytes, sent ${task.body.length})`);
        }
    }

    answered() {
        let n = 0;
        for (const k of this.tasks.keys()) if (this.results.has(k)) n++;
        return n;
    }

    deadPoison() {
        let n = 0;
        for (const mid of this.poison.keys()) if (this.dead.has(mid)) n++;
        return n;
    }

    complete() {
        return this.answered() === this.tasks.size && this.deadPoison() === this.poison.size;
    }

    /* deliveries beyond one per task */
    duplicated() {
        let n = 0;
        for (const list of this.results.values()) n += list.length - 1;
        return n;
    }
}

/* ------------------------------------------------------------------ */
/* evidence: queue depths, metrics, sanitizer reports                 */
/* ------------------------------------------------------------------ */

/* {queue: {ready, unacked}} for the named queues (absent ones left out),
 * from the broker itself. */
async function queueDepths(queues) {
    const out = await rabbitmqctl(['list_queues', '-q', '--no-table-headers',
        'name', 'messages_ready', 'messages_unacknowledged'], 60000);
    const want = new Set(queues);
    const depths = {};
    for (const line of out.split('\n')) {
        const f = line.trim().split(/\s+/);
        if (f.length === 3 && want.has(f[0])) depths[f[0]] = { ready: Number(f[1]), unacked: Number(f[2]) };
    }
    return depths;
}

/* Wait until nothing is in flight: the task queue holds nothing, ready
 * or unacked (so no worker holds a task, and every result or dead letter
 * the daemon will ever publish for it is in its queue, since a task is
 * acked only after that publish was confirmed), and then, read afterwards,
 * the result and dead-letter queues hold nothing either (so the suite has
 * recorded all of them: it acks after recording).  No more delivery can
 * come after this: positive evidence instead of a pause. */
async function quiesce(names, timeoutMs, onState) {
    let taskQueueIdleAt = 0;
    let last = {};
    const empty = (d) => !d || (d.ready === 0 && d.unacked === 0);
    await h.waitFor(async () => {
        last = await queueDepths([names.task_queue, names.result_queue, names.dead_letter_queue]);
        if (onState) onState(last);
        if (!empty(last[names.task_queue])) {
            taskQueueIdleAt = 0;
            return false;
        }
        if (!taskQueueIdleAt) {
            taskQueueIdleAt = Date.now();
            return false;               /* the other queues are read on the next turn */
        }
        return empty(last[names.result_queue]) && empty(last[names.dead_letter_queue]);
    }, timeoutMs, () => `nothing in flight: the task, result and dead-letter queues empty and unacked 0 ` +
        `(last seen ${JSON.stringify(last)})`, 300);
}

/* The daemon's counters from status.listen's /metrics:
 * {complete, error, requeued, dead_lettered, restarts, reloads}. */
async function readMetrics(port) {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10000) });
    if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
    const text = await res.text();
    const m = {};
    for (const [, k, v] of text.matchAll(/^reporterd_tasks_total\{outcome="(\w+)"\} (\d+)$/gm)) m[k] = Number(v);
    const one = (name) => {
        const r = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
        return r ? Number(r[1]) : undefined;
    };
    m.restarts = one('reporterd_worker_restarts_total');
    m.reloads = one('reporterd_reloads_total');
    m.journalWrites = one('reporterd_journal_writes_total');
    m.journalErrors = one('reporterd_journal_write_errors_total');
    for (const k of ['complete', 'error', 'requeued', 'dead_lettered']) {
        if (typeof m[k] !== 'number') throw new Error(`/metrics has no reporterd_tasks_total{outcome="${k}"}: ${text.slice(0, 500)}`);
    }
    return m;
}

/* ASAN_OPTIONS and UBSAN_OPTIONS that make every process of the daemon
 * (the master, its workers, whatever it forks) write its sanitizer reports
 * to files DIR/asan.PID and DIR/ubsan.PID instead of stderr, where a
 * daemonized process's reports would be lost.  Options the caller set are
 * kept; log_path is ours. */
function sanitizerEnv(dir) {
    const keep = (v) => (v || '').split(':').filter((o) => o && !o.startsWith('log_path='));
    return {
        ASAN_OPTIONS: [...keep(process.env.ASAN_OPTIONS), `log_path=${path.join(dir, 'asan')}`].join(':'),
        UBSAN_OPTIONS: [...keep(process.env.UBSAN_OPTIONS), 'print_stacktrace=1', `log_path=${path.join(dir, 'ubsan')}`].join(':'),
    };
}

/* The sanitizer reports in DIR: [{file, summary}].  A sanitizer writes a
 * log_path file only to report something, so every file counts, whatever
 * its text; the summary is the first line that names the problem. */
const SANITIZER_LINE_RE = /^.*(?:ERROR: \w*Sanitizer|SUMMARY: \w*Sanitizer|runtime error:|WARNING: \w*Sanitizer).*$/m;
function sanitizerReports(dir) {
    let ents;
    try { ents = fs.readdirSync(dir); } catch (_) { return []; }
    const out = [];
    for (const e of ents.sort()) {
        const file = path.join(dir, e);
        let text = '';
        try {
            if (!fs.statSync(file).isFile()) continue;
            text = fs.readFileSync(file, 'utf8');
        } catch (_) { continue; }
        const m = SANITIZER_LINE_RE.exec(text);
        out.push({ file, summary: m ? m[0].trim() : `unrecognised report: ${JSON.stringify(text.slice(0, 200))}`, text });
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* test data                                                          */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* processes                                                          */
/* ------------------------------------------------------------------ */

/* Live worker processes of a master: children whose title says "worker". */
function workerPids(masterPid) {
    const out = [];
    let ents;
    try { ents = fs.readdirSync('/proc'); } catch (_) { return out; }
    for (const e of ents) {
        if (!/^\d+$/.test(e)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (rest[0] === 'Z' || Number(rest[1]) !== masterPid) continue;
            const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
            if (/worker process/.test(cmd)) out.push(Number(e));
        } catch (_) { /* gone */ }
    }
    return out;
}

async function rabbitmqctl(args, timeoutMs = 120000) {
    const r = await h.run('rabbitmqctl', args, { timeoutMs });
    if (r.code !== 0) {
        throw new Error(`rabbitmqctl ${args.join(' ')} failed (${r.code}): ${(r.stdout + r.stderr).trim().slice(-800)}`);
    }
    return r.stdout;
}

/* connection names on the broker (client property connection_name) */
async function brokerConnectionNames() {
    const out = await rabbitmqctl(['-q', 'list_connections', 'client_properties'], 30000);
    const names = [];
    for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        const m = /connection_name",longstr,"([^"]*)"/.exec(line);
        names.push(m ? m[1] : '(unnamed)');
    }
    return names;
}

/* ------------------------------------------------------------------ */
/* the test MongoDB server with preloaded data                        */
/* ------------------------------------------------------------------ */

/* Write records as NDJSON for mongod-preload.js: one {db, coll, doc} per
 * line in canonical Extended JSON (so int32 / int64 / dates keep their
 * BSON types: phones beyond int32 are int64, as harness.loadRecords
 * stores them), then one {db, coll, index} line. */
function writeLoadFile(file, database, collection, records) {
    const { EJSON, Long, Int32 } = h.lazyRequire('bson');
    const lines = [];
    for (const r of records) {
        const d = Object.assign({}, r);
        if (typeof d.phone === 'number' && Number.isInteger(d.phone)) {
            d.phone = d.phone > 2147483647 || d.phone < -2147483648 ? Long.fromNumber(d.phone) : new Int32(d.phone);
        }
        lines.push(EJSON.stringify({ db: database, coll: collection, doc: d }, { relaxed: false }));
    }
    lines.push(JSON.stringify({ db: database, coll: collection, index: { phone: 1 } }));
    fs.writeFileSync(file, lines.join('\n') + '\n');
}

/* Start t/fault/mongod-preload.js (the test server with FILE loaded before
 * it listens) through the harness.  restart() starts a new process on the
 * same port with the same data. */
function startPreloadedMongo(loadFile) {
    return h.startMongo({
        script: path.join(__dirname, 'mongod-preload.js'),
        args: ['--server', h.env.mongod, '--load', loadFile],
        startTimeoutMs: 60000,
    });
}

/*
 * The integer sums a phone's rollup must hold, by brute force over the
 * records (BigInt): Map phone (BigInt) -> {cnt, cnt_10, cnt_10_30, cnt_30,
 * sum_ms, sum_ms_over_15, invalid}.  Records whose phone is not an integer
 * belong to no phone.  A record is valid when its dates are both integers
 * or both Dates, within +-2^52 ms, and end >= start (docs/messages.md,
 * "Invalid records").
 */
function expectedSums(records) {
    const LIM = 2n ** 52n;
    const int = (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : null;
        if (typeof v === 'bigint') return v;
        if (v._bsontype === 'Long') return BigInt(v.toString());
        if (v._bsontype === 'Int32' || v._bsontype === 'Double') return int(v.valueOf());
        return null;
    };
    const date = (v) => {
        if (v instanceof Date) return { kind: 'd', ms: BigInt(v.getTime()) };
        const i = int(v);
        return i === null ? null : { kind: 'i', ms: i };
    };
    const out = new Map();
    for (const r of records) {
        const phone = int(r.phone);
        if (phone === null) continue;
        if (!out.has(phone)) {
            out.set(phone, { cnt: 0n, cnt_10: 0n, cnt_10_30: 0n, cnt_30: 0n, sum_ms: 0n, sum_ms_over_15: 0n, invalid: 0n });
        }
        const w = out.get(phone);
        const s = date(r.start_date);
        const e = date(r.end_date);
        if (!s || !e || s.kind !== e.kind || s.ms > LIM || -s.ms > LIM || e.ms > LIM || -e.ms > LIM || e.ms < s.ms) {
            w.invalid++;
            continue;
        }
        const ms = e.ms - s.ms;
        w.cnt++;
        if (ms < 10000n) w.cnt_10++;
        else if (ms < 30000n) w.cnt_10_30++;
        else w.cnt_30++;
        w.sum_ms += ms;
        if (ms > 15000n) w.sum_ms_over_15 += ms;
    }
    return out;
}

module.exports = {
    expectedSums,
    prng,
    shuffle,
    RobustAmqp,
    Tally,
    idKey,
    queueDepths,
    quiesce,
    readMetrics,
    sanitizerEnv,
    sanitizerReports,
    workerPids,
    rabbitmqctl,
    brokerConnectionNames,
    writeLoadFile,
    startPreloadedMongo,
};
