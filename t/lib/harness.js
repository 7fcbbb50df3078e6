/*
 * harness.js -- helpers for reporterd's integration tests (node:test); the
 * report oracle is in oracle.js and re-exported here.
 *
 * Environment (set by `make check`; defaults for running a file by hand):
 *   REPORTERD            the daemon binary           (default: src/reporterd)
 *   REPORTERCTL          the control tool            (default: src/reporterctl)
 *   REPORTERD_TESTHOOKS  daemon built with test hooks; REPORTERD_TEST_TASK_DELAY_MS=N
 *                        in its environment makes every task take N ms longer
 *   REPORTERD_MONGOD     t/mongod/server.js, the TEST-ONLY MongoDB stand-in
 *   NODE_PATH            where node_modules is      (default: t/node_modules via require)
 *   REPORTERD_TEST_MONGODB_URI  use this real MongoDB instead of starting the
 *                        stand-in; every test must pass unchanged against it
 *                        (tests that need a replica set skip unless it names one)
 *   REPORTERD_TEST_AMQP_URL     broker (default amqp://guest:guest@127.0.0.1:5672)
 *   REPORTERD_TEST_LOG_DIR      also write every daemon's log to a file there
 *   REPORTERD_SANITIZERS the build's sanitizer flags: daemons get
 *                        ASAN_OPTIONS/UBSAN_OPTIONS log_path=<tmpdir>/asan
 *
 * Rules the helpers enforce: every wait is bounded and fails with a message
 * saying what was awaited and what was seen; names are unique per run so
 * parallel or repeated runs never see each other's messages; everything a
 * test starts is stopped by cleanup(); a daemon log with "[alert]",
 * "AddressSanitizer" or "runtime error:", or a sanitizer report file, fails
 * the test.  Report figures are compared exactly (expectedReport); absence
 * is shown with a sentinel (Collector.expectNoneBefore), not a sleep.
 */
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const { expectedReport, expectedInvalid, assertReport, exactDecimal, decimalText, decimalTies } = require('./oracle.js');

const ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const LOCK_FILE = '/tmp/reporterd-test-rabbitmq.lock';
const BROKER_START_TIMEOUT_MS = 90000;
const BAD_LOG_RE = /\[alert\]|AddressSanitizer|runtime error:/;

function lazyRequire(name) {
    try {
        return require(name);
    } catch (e) {
        try {
            return require(path.join(__dirname, '..', 'node_modules', name));
        } catch (_) {
            throw new Error(`cannot load the npm package '${name}': run 'npm ci' in t/ ` +
                `(or set NODE_PATH to the node_modules holding it): ${e.message}`);
        }
    }
}
const amqp = () => lazyRequire('amqplib');
const mongodb = () => lazyRequire('mongodb');

const env = {
    get reporterd() { return process.env.REPORTERD || path.join(ROOT, 'src', 'reporterd'); },
    get reporterctl() { return process.env.REPORTERCTL || path.join(ROOT, 'src', 'reporterctl'); },
    get testhooks() { return process.env.REPORTERD_TESTHOOKS || ''; },
    get mongod() { return process.env.REPORTERD_MONGOD || path.join(ROOT, 't', 'mongod', 'server.js'); },
    get mongoUri() { return process.env.REPORTERD_TEST_MONGODB_URI || ''; },
    get amqpUrl() { return process.env.REPORTERD_TEST_AMQP_URL || DEFAULT_AMQP_URL; },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Rollup mode's mark field in db (a mongodb Db): rb_<epoch>, the epoch
 * read from <rollupCollection>_batches; null when no folder made one. */
async function rollupField(db, rollupCollection) {
    const e = await db.collection(`${rollupCollection}_batches`).findOne({ _id: 'epoch' });
    return e ? `rb_${e.e}` : null;
}

/* ------------------------------------------------------------------ */
/* generic waiting                                                    */
/* ------------------------------------------------------------------ */

/* Poll predicate (sync or async) until it returns a truthy value, which is
 * returned.  Fails after timeoutMs with message (a string or a function
 * returning one, called at failure time so it can describe the state).
 * An error the predicate throws is retried, unless it has .fatal set. */
async function waitFor(predicate, timeoutMs, message, intervalMs = 50) {
    const deadline = Date.now() + timeoutMs;
    let lastErr = null;
    for (;;) {
        try {
            const v = await predicate();
            if (v) return v;
            lastErr = null;
        } catch (e) {
            if (e && e.fatal) throw e;      /* waiting longer cannot help */
            lastErr = e;
        }
        if (Date.now() >= deadline) {
            const m = typeof message === 'function' ? message() : message;
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${m || 'a condition'}` +
                (lastErr ? ` (last error: ${lastErr.message})` : ''));
        }
        await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
    }
}

/* ------------------------------------------------------------------ */
/* cleanup registry                                                   */
/* ------------------------------------------------------------------ */

const cleanups = [];
const children = new Set();

function onCleanup(fn) { cleanups.push(fn); }

/* Run every registered cleanup (last registered first).  Call it from the
 * test file's after() hook.  Errors are collected and thrown at the end so
 * one failure does not leave processes behind. */
async function cleanup() {
    const errors = [];
    while (cleanups.length) {
        const fn = cleanups.pop();
        try {
            await fn();
        } catch (e) {
            errors.push(e);
        }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length) throw new Error(errors.map((e) => e.message).join('\n'));
}

/* Last resort: if the test process dies, do not leave children behind. */
process.on('exit', () => {
    for (const c of children) {
        try {
            if (c.group) process.kill(-c.pid, 'SIGKILL'); else process.kill(c.pid, 'SIGKILL');
        } catch (_) { /* already gone */ }
    }
});

function run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
        execFile(cmd, args, { timeout: opts.timeoutMs || 30000, env: opts.env || process.env, maxBuffer: 16 << 20 },
            (err, stdout, stderr) => {
                let code = 0;
                if (err) code = typeof err.code === 'number' ? err.code : (err.killed ? 'timeout' : -1);
                resolve({ code, signal: err && err.signal, stdout: String(stdout), stderr: String(stderr), error: err });
            });
    });
}

/* ------------------------------------------------------------------ */
/* RabbitMQ                                                           */
/* ------------------------------------------------------------------ */

async function tryConnect(url) {
    try {
        const c = await amqp().connect(url, { timeout: 5000 });
        return c;
    } catch (e) {
        return e;
    }
}

/* Make sure a broker answers on the AMQP URL; start the local
 * rabbitmq-server if nothing listens (under a flock, so parallel test files
 * do not race to start it).  Bounded by 90 s. */
async function ensureBroker() {
    const url = env.amqpUrl;
    let r = await tryConnect(url);
    if (!(r instanceof Error)) {
        await r.close();
        return url;
    }
    const refused = r.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(r.message);
    if (!refused || !/127\.0\.0\.1|localhost/.test(url)) {
        throw new Error(`RabbitMQ at ${url.replace(/\/\/[^@]*@/, '//')} is not usable: ${r.message}`);
    }
    /* The lock is held on fd 9 by this shell only: rabbitmq-server and the
     * diagnostics get 9>&- so the daemonized broker does not keep the lock
     * for its whole life (which would block every later test run). */
    const waitS = Math.floor(BROKER_START_TIMEOUT_MS / 1000);
    const lockS = Math.floor(waitS / 2);
    const script = `
        set -u
        exec 9>>"$LOCK_FILE"
        if ! flock -w ${lockS} 9; then
            echo "warning: $LOCK_FILE stayed locked for ${lockS} s (a process started under it may hold it); going on without it" >&2
        fi
        end=$(( $(date +%s) + ${waitS} ))
        ping() { timeout 15 rabbitmq-diagnostics -q ping >/dev/null 2>&1 9>&-; }
        if ping; then exit 0; fi
        command -v rabbitmq-server >/dev/null || { echo "rabbitmq-server is not installed (apt-get install rabbitmq-server)"; exit 3; }
        rabbitmq-server -detached 9>&- </dev/null >/dev/null 2>&1 || { echo "rabbitmq-server -detached failed"; exit 4; }
        while [ "$(date +%s)" -lt "$end" ]; do
            if ping; then exit 0; fi
            sleep 1
        done
        echo "rabbitmq-diagnostics -q ping still fails after ${waitS} s"; exit 5`;
    const started = Date.now();
    const res = await run('sh', ['-c', script], {
        timeoutMs: 2 * BROKER_START_TIMEOUT_MS + 30000,
        env: Object.assign({}, process.env, { LOCK_FILE }),
    });
    if (res.code !== 0) {
        throw new Error(`RabbitMQ is not running at ${url.replace(/\/\/[^@]*@/, '//')} and could not be started ` +
            `(rabbitmq-server -detached, waited up to ${waitS} s): ` +
            `${(res.stdout + res.stderr).trim() || 'exit ' + res.code}`);
    }
    /* the node answers ping a little before its AMQP listener accepts */
    const left = Math.max(10000, BROKER_START_TIMEOUT_MS - (Date.now() - started));
    await waitFor(async () => {
        const c = await tryConnect(url);
        if (c instanceof Error) throw c;
        await c.close();
        return true;
    }, left, `RabbitMQ to accept AMQP connections on ${url.replace(/\/\/[^@]*@/, '//')}`, 500);
    return url;
}

class Broker {
    constructor(conn, ch) {
        this.conn = conn;
        this.ch = ch;                   /* confirm channel for publishing */
        this.known = new Set();         /* queues seen to exist */
        this.consumers = new Map();     /* queue -> Collector */
        this.returned = [];
        ch.on('return', (m) => this.returned.push(m));
    }

    /* a throwaway channel: a failed passive declare closes its channel */
    async queueInfo(name) {
        const ch = await this.conn.createChannel();
        ch.on('error', () => {});
        try {
            return await ch.checkQueue(name);
        } catch (e) {
            return null;
        } finally {
            try { await ch.close(); } catch (_) { /* closed by the failure */ }
        }
    }

    async waitForQueue(name, timeoutMs = 15000) {
        if (this.known.has(name)) return;
        await waitFor(() => this.queueInfo(name), timeoutMs,
            `queue '${name}' to be declared (by the daemon)`, 100);
        this.known.add(name);
    }

    /* Declare a plain durable queue (for tests that must create it first). */
    async declareQueue(name, args) {
        await this.ch.assertQueue(name, { durable: true, arguments: args });
        this.known.add(name);
    }

    async deleteQueue(name) {
        const ch = await this.conn.createChannel();
        ch.on('error', () => {});
        try { await ch.deleteQueue(name); } catch (_) { /* gone already */ }
        try { await ch.close(); } catch (_) { /* ignore */ }
        this.known.delete(name);
    }

    async messageCount(name) {
        const q = await this.queueInfo(name);
        return q ? q.messageCount : null;
    }

    /* Publish a task (object -> JSON, string or Buffer as is) persistent
     * through the default exchange, waiting for the broker's confirm.
     * Waits (bounded) for the queue to exist first: an unroutable message
     * would silently vanish. */
    async publish(queue, body, opts = {}) {
        if (!opts.noWait) await this.waitForQueue(queue, opts.queueTimeoutMs || 15000);
        const buf = Buffer.isBuffer(body) ? body
            : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
        const props = Object.assign({
            persistent: true,
            contentType: 'application/json',
            mandatory: true,
        }, opts.properties || {});
        const before = this.returned.length;
        await new Promise((resolve, reject) => {
            this.ch.publish('', queue, buf, props, (err) => (err ? reject(err) : resolve()));
        });
        if (this.returned.length > before) {
            throw new Error(`message to '${queue}' was returned as unroutable`);
        }
    }

    /* A collector that consumes queue and keeps every message. */
    async collector(queue, opts = {}) {
        let c = this.consumers.get(queue);
        if (c) return c;
        if (opts.declare) await this.declareQueue(queue);
        else await this.waitForQueue(queue, opts.queueTimeoutMs || 15000);
        c = new Collector(this, queue);
        await c.start();
        this.consumers.set(queue, c);
        return c;
    }

    async close() {
        for (const c of this.consumers.values()) await c.stop();
        try { await this.ch.close(); } catch (_) { /* ignore */ }
        try { await this.conn.close(); } catch (_) { /* ignore */ }
    }
}

let sentinelSeq = 0;

class Collector {
    constructor(broker, queue) {
        this.broker = broker;
        this.queue = queue;
        this.messages = [];
        this.taken = 0;
        this.ch = null;
    }
    async start() {
        this.ch = await this.broker.conn.createChannel();
        this.ch.on('error', () => {});
        await this.ch.prefetch(100);
        const { consumerTag } = await this.ch.consume(this.queue, (m) => {
            if (!m) return;
            this.messages.push(toResult(m));
            this.ch.ack(m);
        }, { noAck: false });
        this.tag = consumerTag;
    }
    async stop() {
        if (!this.ch) return;
        try { await this.ch.cancel(this.tag); } catch (_) { /* ignore */ }
        try { await this.ch.close(); } catch (_) { /* ignore */ }
        this.ch = null;
    }
    /* the next n messages not returned before */
    async next(n, timeoutMs = 20000) {
        await waitFor(() => this.messages.length - this.taken >= n, timeoutMs,
            () => `${n} message(s) on '${this.queue}' (got ${this.messages.length - this.taken})`, 20);
        const out = this.messages.slice(this.taken, this.taken + n);
        this.taken += n;
        return out;
    }
    /*
     * The sentinel pattern: positive evidence that nothing more arrives.
     * send(id) publishes something whose result carries correlation_id id
     * (a task through the daemon); without send, a marker is published
     * straight into this queue.  Waits for it; every message not taken
     * that arrived before it is unexpected: the call fails listing them.
     * Returns the sentinel's message, removed from the collector.
     *
     * It proves "nothing more" only when whatever could still publish
     * here had finished before the sentinel could be answered:
     *  - one worker with prefetch 1: it takes the sentinel task only after
     *    it acked every earlier delivery, and it publishes each result
     *    before its ack, so every earlier result is ahead in the queue;
     *  - several workers: after waitForTaskCounts() showed every task
     *    counted done (the counters move after the ack), or once the
     *    daemon has exited -- then the plain marker (no send) suffices.
     * The queue is FIFO and this collector its only consumer, so the
     * sentinel's arrival means everything ahead of it has arrived.
     */
    async expectNoneBefore(send = null, timeoutMs = 20000) {
        const id = `sentinel-${++sentinelSeq}-${process.pid}-${Date.now().toString(36)}`;
        if (send) {
            await send(id);
        } else {
            await this.broker.publish(this.queue, { correlation_id: id, sentinel: true },
                { properties: { correlationId: id } });
        }
        const at = () => this.messages.findIndex((m, i) => i >= this.taken && m.body && m.body.correlation_id === id);
        await waitFor(() => at() >= 0, timeoutMs,
            () => `the sentinel ${id} on '${this.queue}' (${this.pending()} other message(s) arrived meanwhile)`, 20);
        const i = at();
        const [sentinel] = this.messages.splice(i, 1);
        if (i > this.taken) {
            throw new Error(`unexpected message(s) on '${this.queue}' before the sentinel: ` +
                this.messages.slice(this.taken, i).map((m) => m.raw.slice(0, 300)).join(' | '));
        }
        return sentinel;
    }
    /* Assert nothing more arrives within ms.  A fixed wait proves nothing:
     * use expectNoneBefore(); kept until reliability.test.js moves to it. */
    async expectNone(ms = 500) {
        await sleep(ms);
        if (this.messages.length > this.taken) {
            throw new Error(`unexpected message(s) on '${this.queue}': ` +
                this.messages.slice(this.taken).map((m) => m.raw.slice(0, 300)).join(' | '));
        }
    }
    pending() { return this.messages.length - this.taken; }
}

function toResult(m) {
    const raw = m.content.toString('utf8');
    let body = null;
    let parseError = null;
    try {
        JSON.parse(raw);        /* strict validation */
        body = parseJson(raw);
    } catch (e) {
        parseError = e;
    }
    return { body, raw, properties: m.properties, fields: m.fields, parseError };
}

/* ------------------------------------------------------------------ */
/* JSON with exact big integers                                       */
/* ------------------------------------------------------------------ */

/* Parse JSON like JSON.parse, but integers outside +-2^53 become BigInt so
 * 64-bit ids survive.  Input must already be valid JSON. */
function parseJson(text) {
    let i = 0;
    const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
    const value = () => {
        ws();
        const c = text[i];
        if (c === '{') {
            i++;
            const o = {};
            ws();
            if (text[i] === '}') { i++; return o; }
            for (;;) {
                ws();
                const k = string();
                ws();
                i++;                    /* : */
                o[k] = value();
                ws();
                if (text[i] === ',') { i++; continue; }
                i++;                    /* } */
                return o;
            }
        }
        if (c === '[') {
            i++;
            const a = [];
            ws();
            if (text[i] === ']') { i++; return a; }
            for (;;) {
                a.push(value());
                ws();
                if (text[i] === ',') { i++; continue; }
                i++;
                return a;
            }
        }
        if (c === '"') return string();
        if (text.startsWith('true', i)) { i += 4; return true; }
        if (text.startsWith('false', i)) { i += 5; return false; }
        if (text.startsWith('null', i)) { i += 4; return null; }
        const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
        if (!m) throw new SyntaxError(`bad JSON at ${i}`);
        i += m[0].length;
        if (!m[2] && !m[3]) {
            const n = Number(m[0]);
            return Number.isSafeInteger(n) ? n : BigInt(m[0]);
        }
        return Number(m[0]);
    };
    const string = () => {
        const start = i;
        i++;
        while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
        i++;
        return JSON.parse(text.slice(start, i));
    };
    const v = value();
    return v;
}

/* ------------------------------------------------------------------ */
/* MongoDB                                                            */
/* ------------------------------------------------------------------ */

const mongoClients = new Map();

async function mongoClient(uri) {
    let c = mongoClients.get(uri);
    if (!c) {
        c = new (mongodb().MongoClient)(uri, { serverSelectionTimeoutMS: 10000, connectTimeoutMS: 10000 });
        await c.connect();
        mongoClients.set(uri, c);
        onCleanup(async () => {
            mongoClients.delete(uri);
            await c.close();
        });
    }
    return c;
}

/* Start the test server (or use REPORTERD_TEST_MONGODB_URI).
 * Returns {uri, port, external, log(), stop(), restart()}; restart() keeps
 * the port but, for the test server, NOT the data (it is in memory).
 * opts.script and opts.args run another launcher of the server (the fault
 * suite's preloading one) instead of t/mongod/server.js itself.
 * opts.replset = {members: 2, lagMs: 0, name: 'rs0'}: a replica set
 * instead (see startReplset). */
async function startMongo(opts = {}) {
    if (opts.replset) return startReplset(opts);
    if (env.mongoUri) {
        return {
            uri: env.mongoUri,
            external: true,
            log: () => '',
            stop: async () => {},
            restart: async () => { throw new Error('restart() is not possible with REPORTERD_TEST_MONGODB_URI'); },
        };
    }
    let proc = null;
    let out = '';
    let port = opts.port || 0;
    let uri = null;
    const launch = async () => {
        const childEnv = Object.assign({}, process.env, opts.env || {});
        proc = spawn(process.execPath, [opts.script || env.mongod, ...(opts.args || []),
            '--port', String(port), '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
        const rec = { pid: proc.pid, group: false };
        children.add(rec);
        proc.on('exit', () => children.delete(rec));
        let stdout = '';
        proc.stdout.on('data', (d) => { stdout += d; });
        proc.stderr.on('data', (d) => { out += d; });
        const m = await waitFor(() => {
            if (proc.exitCode !== null) throw new Error(`test mongod exited with ${proc.exitCode}: ${out.slice(-2000)}`);
            return /^listening ([\d.]+):(\d+)$/m.exec(stdout);
        }, opts.startTimeoutMs || 15000,
        () => `the test mongod (${opts.script || env.mongod}) to print "listening" (stderr: ${out.slice(-500)})`, 20);
        port = Number(m[2]);
        uri = `mongodb://127.0.0.1:${port}`;
    };
    const stop = async () => {
        if (!proc || proc.exitCode !== null || proc.signalCode) return;
        const p = proc;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
        await exited;
        clearTimeout(t);
    };
    await launch();
    const handle = {
        get uri() { return uri; },
        get port() { return port; },
        external: false,
        get pid() { return proc.pid; },
        log: () => out,
        stop,
        restart: async () => { await stop(); await launch(); },
    };
    onCleanup(stop);
    return handle;
}

/*
 * A replica set: the test server's replica-set mode (t/mongod/replset.js:
 * --replset NAME --members N --lag-ms MS), or REPORTERD_TEST_MONGODB_URI if
 * it names one.  Returns the handle of startMongo with:
 *   uri          mongodb://HOST:P1,HOST:P2/?replicaSet=NAME
 *   replset      {name, hosts} (hosts as hello gives them), or null when
 *                REPORTERD_TEST_MONGODB_URI is not a replica set; then
 *   notReplset   says why, for the test to skip with
 *   canSetLag    true for the test server only: a real secondary cannot be
 *                made to lag on demand
 *   setLag(ms, {host})   every member's lag (or one member's), test server only
 *   stepDown({stepDownSecs = 60, secondaryCatchUpPeriodSecs = 10, force})
 *                steps the primary down and waits for a new one: the test
 *                server's replSetTestStepDown, or on a real set
 *                replSetStepDown on the primary; returns {stepped, primary}
 *   primary()    the primary's host, from hello
 *   directUri(host)  a URI that talks to that member only
 *   syncAll(db)  a write with w = every member, into db.replset_sync: once it
 *                is acknowledged every member applied every earlier write
 */
async function startReplset(opts) {
    const directUri = (host) => `mongodb://${host}/?directConnection=true`;
    const admin = async (host, cmd) => (await mongoClient(directUri(host))).db('admin').command(cmd);
    let handle;
    if (env.mongoUri) {
        const uri = env.mongoUri;
        const hello = await (await mongoClient(uri)).db('admin').command({ hello: 1 });
        handle = {
            uri, external: true, log: () => '', stop: async () => {},
            restart: async () => { throw new Error('restart() is not possible with REPORTERD_TEST_MONGODB_URI'); },
            replset: hello.setName ? { name: hello.setName, hosts: hello.hosts } : null,
            notReplset: hello.setName ? null
                : 'REPORTERD_TEST_MONGODB_URI does not name a replica set (its hello has no setName)',
            canSetLag: false,
            async setLag() {
                throw new Error('a real replica set cannot be made to lag on demand (tests needing it check canSetLag)');
            },
            async stepDown(o = {}) {
                const old = await handle.primary();
                await admin(old, {
                    replSetStepDown: o.stepDownSecs === undefined ? 60 : o.stepDownSecs,
                    secondaryCatchUpPeriodSecs: o.secondaryCatchUpPeriodSecs === undefined ? 10 : o.secondaryCatchUpPeriodSecs,
                    force: !!o.force,
                });
                const primary = await waitFor(async () => {
                    const x = await admin(old, { hello: 1 });
                    return x.primary && x.primary !== old ? x.primary : null;
                }, 60000, `a new primary after replSetStepDown on ${old}`, 200);
                return { stepped: old, primary };
            },
        };
    } else {
        const r = opts.replset;
        const name = r.name || 'rs0';
        let proc = null;
        let out = '';
        let stdout = '';
        proc = spawn(process.execPath, [opts.script || env.mongod, ...(opts.args || []), '--replset', name,
            '--members', String(r.members || 2), '--lag-ms', String(r.lagMs || 0), '--port', '0', '--host', '127.0.0.1'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: Object.assign({}, process.env, opts.env || {}) });
        const rec = { pid: proc.pid, group: false };
        children.add(rec);
        proc.on('exit', () => children.delete(rec));
        proc.stdout.on('data', (d) => { stdout += d; });
        proc.stderr.on('data', (d) => { out += d; });
        const m = await waitFor(() => {
            if (proc.exitCode !== null) throw new Error(`test mongod exited with ${proc.exitCode}: ${out.slice(-2000)}`);
            return /^listening replset (\S+) (\S+)$/m.exec(stdout);
        }, opts.startTimeoutMs || 15000,
        () => `the test mongod to print "listening replset" (stderr: ${out.slice(-500)})`, 20);
        const hosts = m[2].split(',');
        const stop = async () => {
            if (proc.exitCode !== null || proc.signalCode) return;
            const exited = new Promise((res) => proc.once('exit', res));
            proc.kill('SIGTERM');
            const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
            await exited;
            clearTimeout(t);
        };
        onCleanup(stop);
        handle = {
            uri: `mongodb://${hosts.join(',')}/?replicaSet=${m[1]}`,
            external: false,
            get pid() { return proc.pid; },
            log: () => out,
            stop,
            restart: async () => { throw new Error('restart() is not supported for a replica set'); },
            replset: { name: m[1], hosts },
            notReplset: null,
            canSetLag: true,
            async setLag(ms, o = {}) {
                const cmd = { replSetTestSetLag: ms };
                if (o.host) cmd.host = o.host;
                await admin(hosts[0], cmd);
            },
            async stepDown(o = {}) {
                const res = await admin(hosts[0], {
                    replSetTestStepDown: 1,
                    stepDownSecs: o.stepDownSecs === undefined ? 60 : o.stepDownSecs,
                    secondaryCatchUpPeriodSecs: o.secondaryCatchUpPeriodSecs === undefined ? 10 : o.secondaryCatchUpPeriodSecs,
                    force: !!o.force,
                });
                if (!res.primary) throw new Error(`replSetTestStepDown left no primary: ${JSON.stringify(res)}`);
                return { stepped: res.stepped, primary: res.primary };
            },
        };
    }
    handle.directUri = directUri;
    handle.primary = async () => {
        const x = await (await mongoClient(handle.uri)).db('admin').command({ hello: 1 });
        if (!x.primary) throw new Error(`no primary: ${JSON.stringify(x)}`);
        return x.primary;
    };
    handle.syncAll = async (database) => {
        const c = await mongoClient(handle.uri);
        await c.db(database).collection('replset_sync').insertOne({ at: new Date() },
            { writeConcern: { w: handle.replset.hosts.length, wtimeout: 60000 } });
    };
    return handle;
}

/* uri with query options added (an object: name -> value). */
function uriWith(uri, options) {
    const q = Object.entries(options).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    if (!q) return uri;
    if (uri.includes('?')) return `${uri}${uri.endsWith('?') || uri.endsWith('&') ? '' : '&'}${q}`;
    const slash = uri.indexOf('/', uri.indexOf('//') + 2);
    return slash < 0 ? `${uri}/?${q}` : `${uri}?${q}`;
}

/* Insert records ({phone, start_date, end_date}) with the official driver
 * and index {phone: 1}.  Phones beyond int32 are stored as int64, as a C
 * loader would. */
async function loadRecords(uri, database, collection, records, opts = {}) {
    const { Long } = mongodb();
    const c = await mongoClient(uri);
    const coll = c.db(database).collection(collection);
    const batch = opts.batchSize || 10000;
    for (let i = 0; i < records.length; i += batch) {
        const docs = records.slice(i, i + batch).map((r) => {
            const d = Object.assign({}, r);
            if (typeof d.phone === 'number' && Number.isInteger(d.phone) &&
                (d.phone > 2147483647 || d.phone < -2147483648)) d.phone = Long.fromNumber(d.phone);
            return d;
        });
        if (docs.length) await coll.insertMany(docs, { ordered: false });
    }
    await coll.createIndex({ phone: 1 });
    return coll;
}

async function dropDatabase(uri, database) {
    const c = await mongoClient(uri);
    await c.db(database).dropDatabase();
}

/* A free TCP port on 127.0.0.1 (for listeners the daemon opens). */
function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

/* A deterministic PRNG (mulberry32): test data replayable from a seed. */
function prng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/* ------------------------------------------------------------------ */
/* names and config                                                   */
/* ------------------------------------------------------------------ */

function uniqueNames(prefix = 'rdtest') {
    const sfx = `${process.pid.toString(36)}${Date.now().toString(36)}${crypto.randomBytes(4).toString('hex')}`;
    return {
        task_queue: `${prefix}.${sfx}.tasks`,
        result_queue: `${prefix}.${sfx}.results`,
        dead_letter_queue: `${prefix}.${sfx}.tasks.dead`,   /* the daemon's default: <task_queue>.dead */
        database: `${prefix}_${sfx}`,
        collection: 'calls',
        suffix: sfx,
    };
}

function tmpDir(prefix = 'reporterd-test-') {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
    return d;
}

function yamlScalar(v) {
    if (v === true) return 'on';
    if (v === false) return 'off';
    if (typeof v === 'number') return String(v);
    const s = String(v);
    if (/^[A-Za-z0-9_./-][A-Za-z0-9_./@-]*$/.test(s) &&
        !/^(on|off|yes|no|true|false|null|~|[-+]?[\d.]+([eE][-+]?\d+)?)$/i.test(s)) return s;
    return JSON.stringify(s);
}

function toYaml(obj, indent = '') {
    let out = '';
    for (const [k, v] of Object.entries(obj)) {
        if (v === undefined || v === null) continue;
        if (v && typeof v === 'object' && !Array.isArray(v)) {
            out += `${indent}${k}:\n${toYaml(v, indent + '  ')}`;
        } else if (Array.isArray(v)) {
            out += `${indent}${k}: [${v.map(yamlScalar).join(', ')}]\n`;
        } else {
            out += `${indent}${k}: ${yamlScalar(v)}\n`;
        }
    }
    return out;
}

function deepMerge(base, over) {
    const out = Object.assign({}, base);
    for (const [k, v] of Object.entries(over || {})) {
        if (v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object') {
            out[k] = deepMerge(out[k], v);
        } else {
            out[k] = v;         /* null deletes the key */
        }
    }
    return out;
}

/* The configuration object the harness writes by default. */
function baseConfig(dir, names, mongoUri) {
    return {
        daemon: false,
        worker_processes: 2,
        pid: path.join(dir, 'reporterd.pid'),
        error_log: 'stderr',
        log_level: 'info',
        rabbitmq: {
            host: '127.0.0.1', port: 5672, user: 'guest', password: 'guest', vhost: '/',
            task_queue: names.task_queue, result_queue: names.result_queue, prefetch: 1,
        },
        mongodb: { uri: mongoUri, database: names.database, collection: names.collection },
    };
}

/* Write DIR/reporterd.yaml (DIR = a fresh temp dir when dir is null).
 * overrides is deep-merged into baseConfig (null removes a key); pass
 * {names, mongoUri} in overrides.__ or as opts.  Returns the path. */
function writeConfig(dir, overrides = {}, opts = {}) {
    const d = dir || tmpDir();
    const names = opts.names || uniqueNames();
    const conf = deepMerge(baseConfig(d, names, opts.mongoUri || 'mongodb://127.0.0.1:27017'), overrides);
    const file = path.join(d, opts.fileName || 'reporterd.yaml');
    fs.writeFileSync(file, toYaml(conf), { mode: 0o600 });     /* it holds a password */
    return file;
}

function writeConfigText(dir, text, fileName = 'reporterd.yaml') {
    const d = dir || tmpDir();
    const file = path.join(d, fileName);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
}

/* ------------------------------------------------------------------ */
/* the daemon                                                         */
/* ------------------------------------------------------------------ */

/* Start `binary -c cfgPath` in the foreground (config must say daemon: off).
 * The process gets its own process group so a forced stop can take its
 * workers with it. */
function startDaemon(cfgPath, opts = {}) {
    const binary = opts.binary || env.reporterd;
    if (!fs.existsSync(binary)) throw new Error(`daemon binary not found: ${binary} (set REPORTERD)`);
    const args = (opts.args || ['-c', cfgPath]);
    const san = sanitizerLogs(opts.env || {});
    const childEnv = Object.assign({}, process.env, san.env);
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, detached: true });
    const rec = { pid: proc.pid, group: true };
    children.add(rec);
    let logText = '';
    let exit = null;
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            exit = { code, signal };
            children.delete(rec);
            resolve(exit);
        });
        proc.on('error', (e) => {
            logText += `\n[harness] spawn error: ${e.message}\n`;
            exit = { code: -1, signal: null, error: e };
            children.delete(rec);
            resolve(exit);
        });
    });
    let logFile = null;
    if (process.env.REPORTERD_TEST_LOG_DIR) {
        fs.mkdirSync(process.env.REPORTERD_TEST_LOG_DIR, { recursive: true });
        logFile = path.join(process.env.REPORTERD_TEST_LOG_DIR,
            `${path.basename(process.argv[1] || 'test', '.js')}-reporterd-${proc.pid}.log`);
    }
    const onLog = (d) => {
        logText += d;
        if (logFile) fs.appendFileSync(logFile, d);
    };
    proc.stdout.on('data', onLog);
    proc.stderr.on('data', onLog);
    const tail = (n = 3000) => logText.slice(-n);
    const handle = {
        pid: proc.pid,
        proc,
        get log() { return logText; },
        get exit() { return exit; },
        running: () => exit === null,
        async waitForLog(re, timeoutMs = 15000) {
            return waitFor(() => {
                const m = re.exec(logText);
                if (m) return m;
                if (exit) throw Object.assign(new Error(`daemon exited (${JSON.stringify(exit)})`), { fatal: true });
                return null;
            }, timeoutMs, () => `daemon log to match ${re} (log tail:\n${tail()}\n)`, 25);
        },
        /* wait until re (made global) has matched n times in the log */
        async waitForLogCount(re, n, timeoutMs = 15000) {
            const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
            const count = () => (logText.match(g) || []).length;
            return waitFor(() => {
                if (count() >= n) return true;
                if (exit) throw Object.assign(new Error(`daemon exited (${JSON.stringify(exit)})`), { fatal: true });
                return false;
            }, timeoutMs, () => `${n} log lines matching ${re} (saw ${count()}; log tail:\n${tail()}\n)`, 25);
        },
        /* ready = every worker logs "consuming from" */
        async waitReady(workers = 2, timeoutMs = 30000) {
            return handle.waitForLogCount(/consuming from/, workers, timeoutMs);
        },
        signal(sig) {
            if (exit === null) process.kill(proc.pid, sig);
        },
        stop(sig = 'SIGTERM') { handle.signal(sig); },
        async waitExit(timeoutMs = 15000) {
            await waitFor(() => exit !== null, timeoutMs,
                () => `daemon pid ${proc.pid} to exit (log tail:\n${tail()}\n)`, 25);
            handle.assertCleanLog();
            return exit;
        },
        /* stop, wait, and on timeout kill the whole process group */
        async shutdown(sig = 'SIGTERM', timeoutMs = 15000) {
            if (exit === null) {
                handle.signal(sig);
                try {
                    await waitFor(() => exit !== null, timeoutMs, `daemon pid ${proc.pid} to exit after ${sig}`, 25);
                } catch (e) {
                    try { process.kill(-proc.pid, 'SIGKILL'); } catch (_) { /* gone */ }
                    await exited;
                    throw new Error(`${e.message}; killed it (log tail:\n${tail()}\n)`);
                }
            }
            /* workers left behind in the group would be a bug; reap them */
            try { process.kill(-proc.pid, 0); process.kill(-proc.pid, 'SIGKILL'); } catch (_) { /* none */ }
            handle.assertCleanLog();
            return exit;
        },
        /* the log (stderr) and, on a sanitizer build, the sanitizers' report files */
        assertCleanLog() {
            const m = BAD_LOG_RE.exec(logText);
            if (m) {
                const at = Math.max(0, m.index - 1500);
                throw new Error(`daemon log contains "${m[0]}":\n${logText.slice(at, m.index + 1500)}`);
            }
            san.assertClean();
        },
        sanitizerDir: san.dir,
        exited,
    };
    onCleanup(() => handle.shutdown('SIGTERM', 10000));
    return handle;
}

/* ------------------------------------------------------------------ */
/* the status process's metrics                                       */
/* ------------------------------------------------------------------ */

/* GET url: {status, body}, bounded by timeoutMs. */
function httpGet(url, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
        const req = http.get(url, { timeout: timeoutMs }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve({ status: res.statusCode, body }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
        req.on('error', reject);
    });
}

/* GET base/metrics (status.listen): metric name{labels} -> value. */
async function readMetrics(base) {
    const url = /\/metrics$/.test(base) ? base : `${base.replace(/\/$/, '')}/metrics`;
    const r = await httpGet(url);
    if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    const m = new Map();
    for (const line of r.body.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return m;
}

/*
 * Wait until reporterd_tasks_total{outcome=...} equals want for every
 * outcome named in want ({complete, error, dead_lettered, requeued}).  The
 * daemon moves a counter after the task's ack, which follows its result's
 * confirm: once they match, every result of those tasks is in the result
 * queue.  A counter beyond want fails at once (a task handled twice).
 */
async function waitForTaskCounts(base, want, timeoutMs = 20000) {
    const name = (o) => `reporterd_tasks_total{outcome="${o}"}`;
    let seen = {};
    await waitFor(async () => {
        const m = await readMetrics(base);
        seen = {};
        for (const o of Object.keys(want)) seen[o] = m.get(name(o));
        const over = Object.keys(want).filter((o) => seen[o] > want[o]);
        if (over.length) {
            const e = new Error(`task counters beyond what was sent: ${JSON.stringify(seen)}, expected ${JSON.stringify(want)}`);
            e.fatal = true;
            throw e;
        }
        return Object.keys(want).every((o) => seen[o] === want[o]);
    }, timeoutMs, () => `task counters ${JSON.stringify(want)} (seen ${JSON.stringify(seen)})`, 50);
    return seen;
}

/* ------------------------------------------------------------------ */
/* sanitizer reports                                                  */
/* ------------------------------------------------------------------ */

/*
 * For a process of a sanitizer build (REPORTERD_SANITIZERS non-empty, set
 * by `make check`): an environment that sends AddressSanitizer's and
 * UndefinedBehaviorSanitizer's reports to files DIR/asan.<pid> (log_path),
 * so that reports of daemonized processes, whose stderr is /dev/null, are
 * kept too; and a check that fails when such a file holds a report.
 * The directory is world-writable (sticky) for workers that dropped to
 * user:.  The check also runs at cleanup, after the daemons are stopped,
 * so reports written at exit (leaks) count.  Elsewhere: env unchanged, no
 * check.
 */
function sanitizerLogs(baseEnv = {}) {
    const flags = process.env.REPORTERD_SANITIZERS || '';
    if (!flags.trim()) return { env: baseEnv, dir: null, reports: () => [], assertClean() {} };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reporterd-san-'));
    fs.chmodSync(dir, 0o1777);
    const logPath = path.join(dir, 'asan');
    const add = (name) => {
        const have = name in baseEnv ? baseEnv[name] : process.env[name];
        return have ? `${have}:log_path=${logPath}` : `log_path=${logPath}`;
    };
    const env = Object.assign({}, baseEnv, { ASAN_OPTIONS: add('ASAN_OPTIONS'), UBSAN_OPTIONS: add('UBSAN_OPTIONS') });
    const reports = () => (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        .filter((f) => f.startsWith('asan'))
        .map((f) => ({ file: path.join(dir, f), text: fs.readFileSync(path.join(dir, f), 'utf8') }))
        /* LeakSanitizer's "Unable to get registers from thread N" alone means
         * its check could not stop a process that was being killed at exit:
         * no finding about our code (seen once in six sanitizer fault runs) */
        .filter((r) => r.text.split('\n').some((l) => l.trim() !== ''
            && !/^==\d+==Unable to get registers from thread \d+\.$/.test(l.trim())));
    const assertClean = () => {
        const r = reports();
        if (r.length) {
            throw new Error(`sanitizer report(s) in ${r.map((x) => x.file).join(', ')}:\n` +
                r.map((x) => x.text.slice(0, 4000)).join('\n----\n'));
        }
    };
    onCleanup(() => {
        try {
            assertClean();
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
    return { env, dir, reports, assertClean };
}

/* ------------------------------------------------------------------ */
/* one-stop setup for a test file                                     */
/* ------------------------------------------------------------------ */

/* Broker + MongoDB + unique names + a publisher/collector, with cleanup
 * that deletes the queues and drops the database.  Call ctx.cleanup()
 * (= harness.cleanup) from after(). */
async function setup(opts = {}) {
    const url = await ensureBroker();
    const mongo = await startMongo(opts.mongo || {});
    const names = uniqueNames(opts.prefix);
    const conn = await amqp().connect(url);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    const broker = new Broker(conn, ch);
    onCleanup(async () => {
        try {
            await dropDatabase(mongo.uri, names.database);
        } catch (_) { /* server already stopped */ }
    });
    onCleanup(async () => {
        await broker.deleteQueue(names.task_queue);
        await broker.deleteQueue(names.result_queue);
        await broker.deleteQueue(names.dead_letter_queue);
        for (const q of opts.extraQueues ? opts.extraQueues(names) : []) await broker.deleteQueue(q);
        await broker.close();
    });
    return {
        names,
        mongo,
        broker,
        amqpUrl: url,
        dir: tmpDir(),
        writeConfig(overrides = {}, o = {}) {
            return writeConfig(o.dir || this.dir, overrides, { names, mongoUri: mongo.uri, fileName: o.fileName });
        },
        publishTask: (body, o) => broker.publish(names.task_queue, body, o),
        results: (o) => broker.collector(names.result_queue, o),
        async collectResults(n, timeoutMs = 20000) {
            const c = await broker.collector(names.result_queue);
            return c.next(n, timeoutMs);
        },
        loadRecords: (records, o) => loadRecords(mongo.uri, names.database, names.collection, records, o),
        cleanup,
    };
}

module.exports = {
    env,
    rollupField,
    lazyRequire,
    prng,
    freePort,
    sleep,
    waitFor,
    run,
    onCleanup,
    cleanup,
    ensureBroker,
    startMongo,
    uriWith,
    mongoClient,
    loadRecords,
    dropDatabase,
    uniqueNames,
    tmpDir,
    toYaml,
    writeConfig,
    writeConfigText,
    deepMerge,
    baseConfig,
    startDaemon,
    setup,
    Broker,
    parseJson,
    expectedReport,
    assertReport,
    exactDecimal,
    decimalText,
    decimalTies,
    expectedInvalid,
    httpGet,
    readMetrics,
    waitForTaskCounts,
    sanitizerLogs,
    BAD_LOG_RE,
};
