/*
 * master.test.js -- reporterd's master process through the real binary and
 * a real RabbitMQ: prefork workers, supervision and the crash-loop
 * throttle, reload on SIGHUP (under load, and with a broken file), graceful
 * and fast stop, log reopen, `reporterd -s`, and workers that never outlive
 * their master (issue 3, "Tests").
 *
 * Slow tasks come from the test-hooks build of the daemon
 * (REPORTERD_TESTHOOKS): REPORTERD_TEST_TASK_DELAY_MS=N makes each task take
 * N ms longer, REPORTERD_TEST_WORKER_EXIT=N makes each worker exit with
 * status N at start.
 *
 * One MongoDB data set for the file; every test has its own queues, config
 * directory and daemons, and removes them when it ends.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const h = require('../lib/harness.js');

const { prng } = h;

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PHONES = Array.from({ length: 30 }, (_, i) => 1000 + i);

let ctx;            /* harness.setup(): broker connection, MongoDB, the database */
let records;

/* ------------------------------------------------------------------ */
/* helpers                                                            */
/* ------------------------------------------------------------------ */

function makeRecords(rnd) {
    const out = [];
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    for (const phone of PHONES) {
        const n = phone % 7 === 3 ? 0 : Math.floor(rnd() * 80);   /* some phones have none */
        for (let k = 0; k < n; k++) {
            const st = base + Math.floor(rnd() * 30 * 86400 * 1000);
            const d = Math.floor(rnd() * 121);
            out.push({ phone, start_date: new Date(st), end_date: new Date(st + d * 1000) });
        }
    }
    return out;
}

let rndTasks;
function randomPhones(k = 1 + Math.floor(rndTasks() * 5)) {
    return Array.from({ length: k }, () => PHONES[Math.floor(rndTasks() * PHONES.length)]);
}

/* A result must be a Complete report for phones, checked by brute force. */
function assertComplete(r, id, phones) {
    assert.equal(r.parseError, null, `result for task ${id} is not JSON: ${r.raw.slice(0, 300)}`);
    assert.equal(r.body.correlation_id, id, `correlation_id, a JSON integer: ${r.raw.slice(0, 200)}`);
    assert.equal(r.body.status, 'Complete', `status of task ${id}: ${r.raw.slice(0, 300)}`);
    h.assertReport(r.body.data, h.expectedReport(records, phones), `task ${id}`);
}

/* Positive evidence that no more results come: a sentinel task through the
 * daemon, whose result must be the next one (sound with one worker: see
 * Collector.expectNoneBefore), checked like any other. */
async function expectNoMoreResults(f, results) {
    const s = await results.expectNoneBefore((id) => f.publish({ correlation_id: id, phones: [PHONES[0]] }), 30000);
    assert.equal(s.body.status, 'Complete', `the sentinel's result: ${s.raw.slice(0, 300)}`);
    h.assertReport(s.body.data, h.expectedReport(records, [PHONES[0]]), 'the sentinel task');
}

/* The local times (ms) of the log lines matching re, from their timestamps. */
function logTimes(log, re) {
    const g = new RegExp(`^(\\d{4}-\\d\\d-\\d\\d) (\\d\\d:\\d\\d:\\d\\d\\.\\d{3}) .*${re.source}`, 'gm');
    return [...log.matchAll(g)].map((m) => new Date(`${m[1]}T${m[2]}`).getTime());
}

/* `ps -eo pid,ppid,stat,args`, parsed. */
async function ps() {
    const r = await h.run('ps', ['-eo', 'pid=,ppid=,stat=,args=']);
    assert.equal(r.code, 0, `ps failed: ${r.stderr}`);
    return r.stdout.split('\n').filter(Boolean).map((l) => {
        const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l);
        return m && { pid: Number(m[1]), ppid: Number(m[2]), stat: m[3], args: m[4].trimEnd() };
    }).filter(Boolean);
}

/* The master's worker processes (children titled as workers), by pid. */
async function workersOf(masterPid) {
    return (await ps()).filter((p) => p.ppid === masterPid && /^reporterd: worker process/.test(p.args))
        .sort((a, b) => a.pid - b.pid);
}

/* A process exists and is not a zombie. */
function alive(pid) {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch (_) {
        return false;
    }
}

async function waitGone(pids, timeoutMs, what) {
    await h.waitFor(() => pids.every((p) => !alive(p)), timeoutMs,
        () => `${what}: pids ${pids.filter(alive).join(', ')} still running (of ${pids.join(', ')})`);
}

function allMatches(text, re) {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    return [...text.matchAll(g)];
}

/* pids from "spawned worker PID" lines, in order */
const spawnedPids = (log) => allMatches(log, /spawned worker (\d+) /).map((m) => Number(m[1]));

/* The pid that logged "task ID: complete" (every such line). */
const completedBy = (log, id) =>
    allMatches(log, new RegExp(`\\] (\\d+) worker: task ${id}: complete`)).map((m) => Number(m[1]));

/* The same once the line is there: a worker logs it after its ack, so the
 * result can reach us first. */
async function waitCompletedBy(d, id) {
    await d.waitForLog(new RegExp(`worker: task ${id}: complete`), 5000);
    return completedBy(d.log, id);
}

async function consumers(queue) {
    const q = await ctx.broker.queueInfo(queue);
    return q ? q.consumerCount : null;
}

async function waitConsumers(queue, n, timeoutMs = 15000) {
    let seen = null;
    await h.waitFor(async () => (seen = await consumers(queue)) === n, timeoutMs,
        () => `${n} consumer(s) on '${queue}' (saw ${seen})`, 100);
}

/* Wait until a log file (error_log: a path) matches re. */
async function waitFileLog(file, re, timeoutMs = 10000) {
    let text = '';
    return h.waitFor(() => {
        text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
        return re.exec(text);
    }, timeoutMs, () => `${file} to match ${re} (it holds:\n${text.slice(-2000)}\n)`, 25);
}

/*
 * Per-test fixture: fresh queues (same database), a config directory, a
 * config written from overrides, and an after-hook that stops the daemons
 * and deletes the queues.  start() runs the daemon on that config.
 */
async function fixture(t, overrides = {}) {
    const names = Object.assign(h.uniqueNames('rdmaster'),
        { database: ctx.names.database, collection: ctx.names.collection });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reporterd-master-'));
    const daemons = [];
    const f = {
        names,
        dir,
        cfg: null,
        pidFile: path.join(dir, 'reporterd.pid'),
        writeConfig(over) {
            f.cfg = h.writeConfig(dir, over, { names, mongoUri: ctx.mongo.uri });
            return f.cfg;
        },
        start(opts = {}) {
            let binary = h.env.reporterd;
            if (opts.hooks) {
                assert.ok(h.env.testhooks && fs.existsSync(h.env.testhooks),
                    `the test-hooks daemon is needed (REPORTERD_TESTHOOKS=${h.env.testhooks})`);
                binary = h.env.testhooks;
            }
            const d = h.startDaemon(f.cfg, { binary, env: opts.env });
            daemons.push(d);
            return d;
        },
        publish: (body) => ctx.broker.publish(names.task_queue, body),
        results: () => ctx.broker.collector(names.result_queue),
        ctl: (...args) => h.run(h.env.reporterd, [...args, '-c', f.cfg]),
    };
    f.writeConfig(overrides);
    t.after(async () => {
        const errors = [];
        for (const d of daemons.reverse()) {
            try { await d.shutdown('SIGTERM', 10000); } catch (e) { errors.push(e); }
        }
        const c = ctx.broker.consumers.get(names.result_queue);
        if (c) {
            await c.stop();
            ctx.broker.consumers.delete(names.result_queue);
        }
        for (const q of [names.task_queue, names.result_queue, names.dead_letter_queue]) {
            await ctx.broker.deleteQueue(q);
        }
        fs.rmSync(dir, { recursive: true, force: true });
        if (errors.length) throw errors[0];
    });
    return f;
}

/* ------------------------------------------------------------------ */

before(async () => {
    ctx = await h.setup({ prefix: 'rdmaster' });
    records = makeRecords(prng(SEED));
    rndTasks = prng(SEED ^ 0x7a5c);
    await ctx.loadRecords(records);
});

after(async () => {
    await h.cleanup();
});

test('N workers: N consumers on the task queue, one master and N workers in ps', { timeout: 60000 }, async (t) => {
    t.diagnostic(`seed ${SEED}`);
    const f = await fixture(t, { worker_processes: 3 });
    const d = f.start();
    await d.waitReady(3);
    await waitConsumers(f.names.task_queue, 3);

    const all = await ps();
    const title = `reporterd: master process ${fs.realpathSync(f.cfg)}`;
    const masters = all.filter((p) => p.args === title);
    assert.deepEqual(masters.map((p) => p.pid), [d.pid],
        `exactly one master titled "${title}" with pid ${d.pid}; ps: ${JSON.stringify(masters)}`);
    const workers = all.filter((p) => p.ppid === d.pid);
    assert.equal(workers.length, 3, `3 children of the master, got ${JSON.stringify(workers)}`);
    for (const w of workers) {
        assert.equal(w.args, 'reporterd: worker process (generation 1)', `title of worker ${w.pid}`);
    }
    assert.deepEqual(workers.map((w) => w.pid).sort(), spawnedPids(d.log).sort(),
        'the workers in ps are the ones the master logged as spawned');
    assert.equal(fs.readFileSync(f.pidFile, 'utf8').trim(), String(d.pid), 'the pid file holds the master pid');
});

test('kill -9 of a worker holding a slow task: replaced, the task is redelivered, nothing lost',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1, log_level: 'debug' });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_TASK_DELAY_MS: '2000' } });
        await d.waitReady(1);
        const [victim] = await workersOf(d.pid);
        assert.ok(victim, 'one worker in ps');
        const results = await f.results();
        const tasks = [{ id: 2001, phones: randomPhones(4) }, { id: 2002, phones: randomPhones(3) }];
        for (const x of tasks) await f.publish({ correlation_id: x.id, phones: x.phones });
        /* the worker took the first task: it is in the 2 s delay now */
        await d.waitForLog(new RegExp(`\\] ${victim.pid} worker: task 2001: \\d+ phones`));
        process.kill(victim.pid, 'SIGKILL');

        await d.waitForLog(new RegExp(`worker ${victim.pid} killed by signal 9`));
        await d.waitForLogCount(/spawned worker/, 2, 10000);
        const replacement = spawnedPids(d.log)[1];
        assert.notEqual(replacement, victim.pid, 'the replacement is a new process');
        await d.waitReady(2, 15000);

        const got = await results.next(2, 20000);
        const byId = new Map(got.map((r) => [r.body.correlation_id, r]));
        for (const x of tasks) {
            assert.ok(byId.has(x.id), `a result for task ${x.id} (got ${[...byId.keys()]})`);
            assertComplete(byId.get(x.id), x.id, x.phones);
            assert.deepEqual(await waitCompletedBy(d, x.id), [replacement],
                `task ${x.id} completed once, by the replacement`);
        }
        await expectNoMoreResults(f, results);
        assert.equal(await ctx.broker.messageCount(f.names.task_queue), 0, 'no task left in the queue');
        assert.deepEqual((await workersOf(d.pid)).map((w) => w.pid), [replacement], 'ps: only the replacement');
        assert.ok(!alive(victim.pid), 'the killed worker is gone');
    });

test('a worker that crashes at start is respawned throttled (1 s, 2 s, 4 s ...), not in a busy loop',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1 });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_WORKER_EXIT: '1' } });
        /* spawns at about 0, 1 s and 3 s: the log's timestamps show the gaps */
        await d.waitForLogCount(/spawned worker/, 3, 10000);
        const at = logTimes(d.log, /master: spawned worker/);
        assert.equal(at.length, spawnedPids(d.log).length, 'a timestamp for every spawn line');
        const gaps = [at[1] - at[0], at[2] - at[1]];
        for (const [i, delay] of [[0, 1000], [1, 2000]]) {
            assert.ok(gaps[i] >= delay && gaps[i] < delay + 1500,
                `spawn ${i + 2} came ${gaps[i]} ms after spawn ${i + 1}: expected the ${delay} ms throttle ` +
                `(gaps ${gaps}); log:\n${d.log.slice(-3000)}`);
        }
        const delays = allMatches(d.log, /exited with status 1 after \d+ ms; throttled: respawning in (\d+) ms/)
            .map((m) => Number(m[1]));
        assert.ok(delays.length >= 2, `throttle lines with the delay: ${delays} (log:\n${d.log.slice(-2000)})`);
        assert.deepEqual(delays, [1000, 2000, 4000, 8000].slice(0, delays.length), 'delays double from 1 s');
        assert.ok(d.running() && alive(d.pid), 'the master keeps running');
        assert.doesNotMatch(d.log, /not respawning/);
    });

test('a worker exiting with status 2 (a problem outside the file) is respawned after 30 s, at once on reload',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2 });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_WORKER_EXIT: '2' } });
        await d.waitForLogCount(/exited with status 2: .*an operator must fix this .*trying again in 30 s/, 2, 10000);
        /* A measurement window, not synchronisation: the claim is that no
         * respawn happens for a while, so it waits longer than the first
         * crash-loop throttle delay (1 s), when a fast respawn would show. */
        await h.sleep(1500);
        assert.equal(spawnedPids(d.log).length, 2, `no fast respawn; log:\n${d.log.slice(-2000)}`);
        assert.ok(d.running(), 'the master keeps running');
        d.signal('SIGHUP');
        await d.waitForLog(/starting generation 2 with 2 workers/);
        await d.waitForLogCount(/spawned worker/, 4, 5000);
        const ex = await d.shutdown('SIGTERM', 10000);
        assert.deepEqual(ex, { code: 0, signal: null }, 'exit status after TERM');
    });

test('a reload that never gets ready: dead workers of the serving generation are still replaced',
    { timeout: 90000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2 });
        const d = f.start();
        await d.waitReady(2);
        const old = await workersOf(d.pid);
        assert.equal(old.length, 2, 'two workers of generation 1');
        /* generation 2 points at a port where no broker listens: never ready */
        const dead = await h.freePort();
        f.writeConfig({ worker_processes: 2, rabbitmq: { port: dead, connect_timeout_ms: 500 } });
        d.signal('SIGHUP');
        await d.waitForLog(/starting generation 2 with 2 workers/);
        await d.waitForLogCount(/broker unreachable/, 2, 15000);
        process.kill(old[0].pid, 'SIGKILL');
        await d.waitForLog(new RegExp(`worker ${old[0].pid} killed by signal 9`));
        await d.waitForLogCount(/spawned worker \d+ \(generation 1, #\d\)/, 3, 10000);
        const replacement = allMatches(d.log, /spawned worker (\d+) \(generation 1, #\d\)/).map((x) => Number(x[1]))[2];
        assert.ok(!old.some((w) => w.pid === replacement), 'a new generation-1 worker');
        await d.waitForLogCount(/consuming from/, 3, 15000);
        /* generation 1 still serves every task */
        const results = await f.results();
        const tasks = [{ id: 3101, phones: randomPhones(3) }, { id: 3102, phones: randomPhones(2) }];
        for (const x of tasks) await f.publish({ correlation_id: x.id, phones: x.phones });
        const got = await results.next(2, 20000);
        for (const x of tasks) assertComplete(got.find((r) => r.body.correlation_id === x.id), x.id, x.phones);
        assert.doesNotMatch(d.log, /all 2 workers consuming; stopping older generations/, 'generation 2 never got ready');
    });

test('prefetch 5 and kill -9 of the worker: only the delivery it was working on is charged',
    { timeout: 90000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1, log_level: 'debug',
            rabbitmq: { prefetch: 5, max_redeliveries: 0 } });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_TASK_DELAY_MS: '1500' } });
        await d.waitReady(1);
        const [victim] = await workersOf(d.pid);
        const results = await f.results();
        const tasks = [];
        for (let i = 0; i < 5; i++) tasks.push({ id: 3201 + i, phones: randomPhones(2) });
        for (const x of tasks) await f.publish({ correlation_id: x.id, phones: x.phones });
        /* all five are with the worker (prefetch 5), the first is in its delay */
        await d.waitForLog(new RegExp(`\\] ${victim.pid} worker: task 3201: \\d+ phones`));
        await h.waitFor(async () => (await ctx.broker.queueInfo(f.names.task_queue)).messageCount === 0, 5000,
            'the five tasks to be delivered to the worker');
        process.kill(victim.pid, 'SIGKILL');
        await d.waitForLog(new RegExp(`worker ${victim.pid} killed by signal 9`));
        /* max_redeliveries 0: the task it was working on goes to the dead-letter queue,
         * the four it only held are answered */
        const got = await results.next(4, 30000);
        const ids = got.map((r) => r.body.correlation_id).sort();
        assert.deepEqual(ids, [3202, 3203, 3204, 3205], 'the four prefetched tasks are answered');
        for (const x of tasks.slice(1)) assertComplete(got.find((r) => r.body.correlation_id === x.id), x.id, x.phones);
        await h.waitFor(async () => (await ctx.broker.messageCount(f.names.dead_letter_queue)) === 1, 10000,
            'task 3201 in the dead-letter queue');
        await d.waitForLog(/task 3201: dead-lettered: crashed a worker 1 times/, 5000);
        /* one worker, which handles its prefetched deliveries in order */
        await expectNoMoreResults(f, results);
    });

test('SIGHUP under a steady stream of tasks: each task completed exactly once, new worker count, same pid',
    { timeout: 90000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2 });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_TASK_DELAY_MS: '100' } });
        await d.waitReady(2);
        const results = await f.results();
        const N = 60;
        const tasks = [];
        for (let i = 0; i < N; i++) {
            const x = { id: 4000 + i, phones: randomPhones() };
            tasks.push(x);
            await f.publish({ correlation_id: x.id, phones: x.phones });
            if (i === 15) {
                f.writeConfig({ worker_processes: 3 });
                d.signal('SIGHUP');
            }
            if (i === 40) {
                await d.waitForLog(/generation 2: all 3 workers consuming; stopping older generations/, 10000);
                f.writeConfig({ worker_processes: 3, log_level: 'info' });
                d.signal('SIGHUP');
            }
            await h.sleep(50);        /* pacing of the stream, not synchronisation */
        }
        const got = await results.next(N, 30000);
        await d.waitForLogCount(/worker: task 40\d\d: complete/, N, 5000);
        const count = new Map();
        for (const r of got) {
            const id = r.body.correlation_id;
            count.set(id, (count.get(id) || 0) + 1);
        }
        for (const x of tasks) {
            assert.equal(count.get(x.id), 1, `task ${x.id}: ${count.get(x.id) || 0} results`);
            assertComplete(got.find((r) => r.body.correlation_id === x.id), x.id, x.phones);
        }

        await d.waitForLog(/generation 3: all 3 workers consuming; stopping older generations/, 10000);
        await h.waitFor(async () => {
            const ws = await workersOf(d.pid);
            return ws.length === 3 && ws.every((w) => w.args === 'reporterd: worker process (generation 3)');
        }, 15000, () => `only the 3 workers of generation 3 left (log tail:\n${d.log.slice(-2000)})`, 100);
        await waitConsumers(f.names.task_queue, 3);
        /* the 5 workers of generations 1 and 2 stopped gracefully, none was killed */
        assert.equal(allMatches(d.log, /worker exiting \(graceful stop\)/).length, 5, 'graceful exits');
        assert.doesNotMatch(d.log, /killed by signal|did not exit in time|unexpectedly|throttled/);
        assert.ok(d.running(), 'the master is still running');
        assert.equal(fs.readFileSync(f.pidFile, 'utf8').trim(), String(d.pid), 'pid file: same master pid');
        assert.equal(allMatches(d.log, /\] (\d+) master:/).filter((m) => Number(m[1]) !== d.pid).length, 0,
            'every master line comes from the same pid');

        /* No task was answered twice, shown after the fact: a graceful stop
         * finishes whatever the workers hold; then no task is left to
         * redeliver, a marker sent through the result queue is the next
         * message (every result ever published came before it), and the
         * log, now complete, shows each task completed once. */
        assert.deepEqual(await d.shutdown('SIGQUIT', 20000), { code: 0, signal: null }, 'exit after QUIT');
        assert.equal(await ctx.broker.messageCount(f.names.task_queue), 0, 'no task left in the queue');
        await results.expectNoneBefore();
        for (const x of tasks) {
            assert.equal(completedBy(d.log, x.id).length, 1, `task ${x.id} completed once in the log`);
        }
    });

test('after a reload, a worker of the older generation begins no task once it is told to stop: the new generation answers them all',
    { timeout: 60000 }, async (t) => {
        /* An old worker answers from the old configuration (its rollup
         * collection, whose folder has stopped): an idle one, signalled
         * while it waits for a message, gives back what arrives instead. */
        const f = await fixture(t, { worker_processes: 2 });
        const d = f.start();
        await d.waitReady(2);
        const results = await f.results();
        d.signal('SIGHUP');
        await d.waitForLog(/generation 2: all 2 workers consuming; stopping older generations/, 15000);
        const N = 20;
        for (let i = 0; i < N; i++) await f.publish({ correlation_id: 4100 + i, phones: [PHONES[i]] });
        const got = await results.next(N, 30000);
        for (let i = 0; i < N; i++) {
            assertComplete(got.find((r) => r.body.correlation_id === 4100 + i), 4100 + i, [PHONES[i]]);
        }
        for (let i = 0; i < N; i++) await waitCompletedBy(d, 4100 + i);
        const gen2 = allMatches(d.log, /spawned worker (\d+) \(generation 2,/).map((m) => Number(m[1]));
        assert.equal(gen2.length, 2, 'two workers of generation 2');
        for (let i = 0; i < N; i++) {
            const by = completedBy(d.log, 4100 + i);
            assert.equal(by.length, 1, `task ${4100 + i} completed once`);
            assert.ok(gen2.includes(by[0]), `task ${4100 + i} completed by ${by[0]}, not a generation 2 worker ` +
                `(${gen2.join(', ')}); log tail:\n${d.log.slice(-2500)}`);
        }
    });

test('SIGHUP with a broken config: error logged, nothing applied, the same workers keep serving',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2 });
        const d = f.start();
        await d.waitReady(2);
        const before = (await workersOf(d.pid)).map((w) => w.pid);
        assert.equal(before.length, 2);
        const real = fs.realpathSync(f.cfg);
        const good = fs.readFileSync(f.cfg, 'utf8');

        /* a YAML syntax error */
        fs.writeFileSync(f.cfg, 'worker_processes: 3\nrabbitmq:\n  host: [unclosed\n');
        d.signal('SIGHUP');
        const m1 = await d.waitForLog(/reload failed, keeping the running configuration: (.*)/);
        assert.ok(m1[1].startsWith(`${real}:`), `the error names the file:line:column: ${m1[1]}`);
        /* valid YAML, a valid first key, a bad value further down: nothing of it may apply */
        fs.writeFileSync(f.cfg, good.replace(/^worker_processes: .*$/m, 'worker_processes: 3')
            .replace(/port: 5672/, 'port: 70000'));
        d.signal('SIGHUP');
        await d.waitForLogCount(/reload failed, keeping the running configuration/, 2);
        const m2 = allMatches(d.log, /reload failed, keeping the running configuration: (.*)/)[1];
        assert.match(m2[1], /port/, 'the second error names the key');
        assert.doesNotMatch(d.log, /starting generation/);

        const results = await f.results();
        const tasks = Array.from({ length: 6 }, (_, i) => ({ id: 5000 + i, phones: randomPhones() }));
        for (const x of tasks) await f.publish({ correlation_id: x.id, phones: x.phones });
        const got = await results.next(tasks.length, 20000);
        for (const x of tasks) {
            const r = got.find((y) => y.body.correlation_id === x.id);
            assert.ok(r, `a result for task ${x.id}`);
            assertComplete(r, x.id, x.phones);
            const by = await waitCompletedBy(d, x.id);
            assert.ok(by.length === 1 && before.includes(by[0]), `task ${x.id} done by an old worker (${by})`);
        }
        assert.deepEqual((await workersOf(d.pid)).map((w) => w.pid), before, 'the same worker pids');
        assert.equal(await consumers(f.names.task_queue), 2, 'still 2 consumers');
    });

test('SIGQUIT with a slow task in flight: the result is published, master exits 0, no process left',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2, log_level: 'debug' });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_TASK_DELAY_MS: '2000' } });
        await d.waitReady(2);
        const pids = [d.pid, ...(await workersOf(d.pid)).map((w) => w.pid)];
        assert.equal(pids.length, 3);
        const results = await f.results();
        const x = { id: 6001, phones: randomPhones(5) };
        await f.publish({ correlation_id: x.id, phones: x.phones });
        await d.waitForLog(/worker: task 6001: \d+ phones/);
        d.signal('SIGQUIT');
        const ex = await d.waitExit(15000);
        assert.deepEqual(ex, { code: 0, signal: null }, `exit status after QUIT; log:\n${d.log.slice(-2000)}`);

        const log = d.log;
        assert.match(log, /graceful stop requested/);
        const done = log.search(/task 6001: complete/);
        assert.ok(done >= 0, `the task in flight was completed; log:\n${log.slice(-2000)}`);
        assert.ok(done < log.search(/all workers gone; master exiting/), 'completed before the master exited');
        assert.equal(allMatches(log, /worker exiting \(graceful stop\)/).length, 2, 'both workers stopped gracefully');
        assert.doesNotMatch(log, /did not exit in time|killed by signal/);
        const [r] = await results.next(1, 5000);
        assertComplete(r, x.id, x.phones);
        assert.equal(await ctx.broker.messageCount(f.names.task_queue), 0, 'the task was acked, not requeued');
        await waitGone(pids, 2000, 'master and workers after QUIT');
        assert.ok(!fs.existsSync(f.pidFile), 'the pid file is removed');
    });

test('SIGTERM with a slow task in flight: fast exit, the unacked task is redelivered to a later daemon',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1, log_level: 'debug' });
        const d = f.start({ hooks: true, env: { REPORTERD_TEST_TASK_DELAY_MS: '5000' } });
        await d.waitReady(1);
        const pids = [d.pid, ...(await workersOf(d.pid)).map((w) => w.pid)];
        const results = await f.results();
        const x = { id: 7001, phones: randomPhones(3) };
        await f.publish({ correlation_id: x.id, phones: x.phones });
        await d.waitForLog(/worker: task 7001: \d+ phones/);
        const t0 = Date.now();
        d.signal('SIGTERM');
        const ex = await d.waitExit(5000);
        const took = Date.now() - t0;
        assert.deepEqual(ex, { code: 0, signal: null }, 'exit status after TERM');
        assert.ok(took < 2000, `fast stop took ${took} ms (the task had 5 s left)`);
        assert.match(d.log, /fast stop requested/);
        assert.doesNotMatch(d.log, /task 7001: complete/);
        await waitGone(pids, 2000, 'master and worker after TERM');
        /* it has exited: a marker through the result queue comes after anything it published */
        await results.expectNoneBefore();
        let ready = null;
        await h.waitFor(async () => (ready = await ctx.broker.messageCount(f.names.task_queue)) === 1, 5000,
            () => `the unacked task back in the queue (ready: ${ready})`);

        const d2 = f.start();
        await d2.waitReady(1);
        const [r] = await results.next(1, 15000);
        assertComplete(r, x.id, x.phones);
        await expectNoMoreResults(f, results);
        assert.equal((await waitCompletedBy(d2, x.id)).length, 1, 'the second daemon completed it');
    });

test('USR1 and `reporterd -s reopen` after moving the log file: new lines go to a new file',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 2 });
        const logPath = path.join(f.dir, 'reporterd.log');
        f.writeConfig({ worker_processes: 2, error_log: logPath });
        const d = f.start();
        await waitFileLog(logPath, /consuming from[^]*consuming from/, 30000);
        const workerPids = (await workersOf(d.pid)).map((w) => w.pid);
        const results = await f.results();
        let nextId = 8000;

        /* until a task line from every worker is in the new file, send tasks */
        const workersWriteTo = async (file) => {
            await h.waitFor(async () => {
                const id = nextId++;
                await f.publish({ correlation_id: id, phones: randomPhones(1) });
                await results.next(1, 10000);
                const text = fs.readFileSync(file, 'utf8');
                return workerPids.every((p) => new RegExp(`\\] ${p} worker: task \\d+: complete`).test(text));
            }, 10000, `a task line from each worker (${workerPids}) in ${file}`, 0);
        };

        for (const [how, moved] of [['SIGUSR1', `${logPath}.1`], ['-s reopen', `${logPath}.2`]]) {
            fs.renameSync(logPath, moved);
            const reopenedBefore = allMatches(fs.readFileSync(moved, 'utf8'), /log reopened/).length;
            if (how === 'SIGUSR1') {
                d.signal('SIGUSR1');
            } else {
                const r = await f.ctl('-s', 'reopen');
                assert.equal(r.code, 0, `reporterd -s reopen: exit ${r.code}: ${r.stderr}`);
            }
            await waitFileLog(logPath, new RegExp(`\\] ${d.pid} master: log reopened`));
            assert.equal(allMatches(fs.readFileSync(moved, 'utf8'), /log reopened/).length, reopenedBefore,
                `${how}: the moved file gets no new "log reopened" line`);
            await workersWriteTo(logPath);
        }
        assert.ok(d.running());
    });

test('`reporterd -s reload|quit` through the pid file; missing, empty and stale pid files',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1 });
        const d = f.start();
        await d.waitReady(1);

        let r = await f.ctl('-s', 'reload');
        assert.equal(r.code, 0, `-s reload: exit ${r.code}: ${r.stderr}`);
        await d.waitForLog(/starting generation 2 with 1 workers/);
        await d.waitForLog(/generation 2: all 1 workers consuming/);
        r = await f.ctl('-s', 'quit');
        assert.equal(r.code, 0, `-s quit: exit ${r.code}: ${r.stderr}`);
        const ex = await d.waitExit(15000);
        assert.deepEqual(ex, { code: 0, signal: null }, 'master exit status after -s quit');
        assert.match(d.log, /graceful stop requested/);
        assert.ok(!fs.existsSync(f.pidFile), 'pid file removed');

        const esc = f.pidFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        r = await f.ctl('-s', 'reload');
        assert.notEqual(r.code, 0, '-s with no pid file fails');
        assert.match(r.stderr, new RegExp(`cannot open pid file "${esc}".*\\(is reporterd running\\?\\)`));

        fs.writeFileSync(f.pidFile, '');
        r = await f.ctl('-s', 'stop');
        assert.notEqual(r.code, 0, '-s with an empty pid file fails');
        assert.match(r.stderr, new RegExp(`pid file "${esc}" is empty`));

        const dead = spawnSync('true').pid;
        fs.writeFileSync(f.pidFile, `${dead}\n`);
        r = await f.ctl('-s', 'reload');
        assert.notEqual(r.code, 0, '-s with a stale pid file fails');
        assert.match(r.stderr, new RegExp(`pid file "${esc}" is stale: process ${dead} is not a running reporterd master`));

        /* a live process that is not a reporterd master must not get the signal */
        const other = spawn('sleep', ['30'], { stdio: 'ignore' });
        t.after(() => other.kill('SIGKILL'));
        fs.writeFileSync(f.pidFile, `${other.pid}\n`);
        r = await f.ctl('-s', 'stop');
        assert.notEqual(r.code, 0, '-s naming a live non-reporterd process fails');
        assert.match(r.stderr, new RegExp(`is stale: process ${other.pid} is not a running reporterd master`));
        assert.ok(alive(other.pid) && other.exitCode === null && other.signalCode === null,
            'the unrelated process was not signalled');
    });

test('kill -9 of the master: the workers stop by themselves', { timeout: 60000 }, async (t) => {
    const f = await fixture(t, { worker_processes: 2 });
    const d = f.start();
    await d.waitReady(2);
    await waitConsumers(f.names.task_queue, 2);
    const workers = (await workersOf(d.pid)).map((w) => w.pid);
    assert.equal(workers.length, 2);
    process.kill(d.pid, 'SIGKILL');
    await d.exited;
    await waitGone(workers, 5000, 'workers of a master killed with SIGKILL');
    await waitConsumers(f.names.task_queue, 0, 5000);
    /* the pid file it left behind is stale, and -s says so */
    const r = await f.ctl('-s', 'stop');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`is stale: process ${d.pid} is not a running reporterd master`));
});

test('a worker killed after it did work is replaced at once, not throttled', async (t) => {
    const f = await fixture(t, { worker_processes: 1 });
    const d = f.start();
    await d.waitReady(1, 30000);
    const results = await f.results();
    await f.publish({ correlation_id: 9101, phones: [PHONES[0]] });
    await results.next(1, 20000);
    const victim = (await workersOf(d.pid))[0].pid;
    await h.waitFor(() => /task 9101: complete/.test(d.log), 5000, 'the completion log line');
    process.kill(victim, 'SIGKILL');
    await d.waitForLog(new RegExp(`worker ${victim} killed by signal 9 unexpectedly; respawning`), 10000);
    assert.doesNotMatch(d.log, new RegExp(`worker ${victim} [^\\n]*throttled`));
    await d.waitForLogCount(/consuming from/, 2, 10000);
    await f.publish({ correlation_id: 9102, phones: [PHONES[1]] });
    const [r] = await results.next(1, 20000);
    assertComplete(r, 9102, [PHONES[1]]);
});

/* ------------------------------------------------------------------ */
/* the pid file's lock                                                */
/* ------------------------------------------------------------------ */

const ROUNDS = 8;

test('two masters started at the same moment: exactly one runs, every round; -s reaches it',
    { timeout: 180000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1 });
        const lockFile = `${f.pidFile}.lock`;
        for (let round = 1; round <= ROUNDS; round++) {
            const pair = [f.start(), f.start()];
            const loser = await h.waitFor(() => pair.find((d) => !d.running()), 10000,
                () => `round ${round}: one of masters ${pair[0].pid} and ${pair[1].pid} to be refused ` +
                    `(both still run; pid file: ${fs.existsSync(f.pidFile) ? fs.readFileSync(f.pidFile, 'utf8').trim() : 'none'})`);
            const winner = pair[0] === loser ? pair[1] : pair[0];
            assert.deepEqual(loser.exit, { code: 1, signal: null }, `round ${round}: the refused master's exit`);
            assert.match(loser.log, /already running/, `round ${round}: why the second master stopped`);
            await winner.waitReady(1);
            assert.ok(winner.running(), `round ${round}: the other master runs`);
            assert.equal(fs.readFileSync(f.pidFile, 'utf8').trim(), String(winner.pid),
                `round ${round}: the pid file names the master that runs`);
            assert.ok(fs.existsSync(lockFile), `round ${round}: the lock file exists beside the pid file`);

            const r = await f.ctl('-s', 'quit');
            assert.equal(r.code, 0, `round ${round}: -s quit: ${r.stderr}`);
            assert.deepEqual(await winner.waitExit(20000), { code: 0, signal: null }, `round ${round}: exit after -s quit`);
            assert.ok(!fs.existsSync(f.pidFile), `round ${round}: the pid file is removed`);
            assert.ok(!fs.existsSync(lockFile), `round ${round}: the lock file is removed`);
        }
    });

test('daemon: on, two start commands at the same moment: exactly one succeeds, every round',
    { timeout: 180000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1 });
        const log = path.join(f.dir, 'error.log');
        f.writeConfig({ worker_processes: 1, daemon: true, error_log: log });
        const lockFile = `${f.pidFile}.lock`;
        const started = [];
        t.after(() => { for (const p of started) if (alive(p)) process.kill(p, 'SIGKILL'); });
        /* the daemonized master's stderr is /dev/null: sanitizer reports go to files */
        const san = h.sanitizerLogs();
        const env = Object.assign({}, process.env, san.env);
        for (let round = 1; round <= ROUNDS; round++) {
            const runs = await Promise.all([h.run(h.env.reporterd, ['-c', f.cfg], { env }),
                h.run(h.env.reporterd, ['-c', f.cfg], { env })]);
            const codes = runs.map((r) => r.code).sort();
            const pid = fs.existsSync(f.pidFile) ? Number(fs.readFileSync(f.pidFile, 'utf8')) : 0;
            if (pid) started.push(pid);
            assert.deepEqual(codes, [0, 1], `round ${round}: one start command succeeds, one fails ` +
                `(stderr: ${runs.map((r) => JSON.stringify(r.stderr)).join(', ')})`);
            assert.ok(pid > 0 && alive(pid), `round ${round}: the pid file names a running master`);
            /* refused before detaching (stderr) or after (the log, written before it exits) */
            const why = runs.map((r) => r.stderr).join('') + fs.readFileSync(log, 'utf8');
            assert.match(why, /already running/, `round ${round}: the refused master says why`);

            const r = await f.ctl('-s', 'quit');
            assert.equal(r.code, 0, `round ${round}: -s quit: ${r.stderr}`);
            await h.waitFor(() => !alive(pid), 20000, `round ${round}: master ${pid} to exit after -s quit`);
            assert.ok(!fs.existsSync(f.pidFile), `round ${round}: the pid file is removed`);
            assert.ok(!fs.existsSync(lockFile), `round ${round}: the lock file is removed`);
        }
        assert.doesNotMatch(fs.readFileSync(log, 'utf8'), h.BAD_LOG_RE);
        san.assertClean();
    });

test('a master killed with SIGKILL leaves a stale pid file and lock file: -s says so, the next master takes over',
    { timeout: 60000 }, async (t) => {
        const f = await fixture(t, { worker_processes: 1 });
        const lockFile = `${f.pidFile}.lock`;
        const d = f.start();
        await d.waitReady(1);
        const workers = (await workersOf(d.pid)).map((w) => w.pid);
        process.kill(d.pid, 'SIGKILL');
        await d.exited;
        await waitGone(workers, 5000, 'workers of a master killed with SIGKILL');
        assert.ok(fs.existsSync(f.pidFile) && fs.existsSync(lockFile), 'pid file and lock file are left behind');
        let r = await f.ctl('-s', 'reload');
        assert.notEqual(r.code, 0, '-s with a stale pid file fails');
        assert.match(r.stderr, new RegExp(`is stale: process ${d.pid} is not a running reporterd master`));

        const next = f.start();
        await next.waitReady(1);
        assert.equal(fs.readFileSync(f.pidFile, 'utf8').trim(), String(next.pid), 'the pid file names the new master');
        r = await f.ctl('-s', 'quit');
        assert.equal(r.code, 0, `-s quit: ${r.stderr}`);
        assert.deepEqual(await next.waitExit(20000), { code: 0, signal: null });
        assert.ok(!fs.existsSync(f.pidFile) && !fs.existsSync(lockFile), 'pid file and lock file removed');
    });
