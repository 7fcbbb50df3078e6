/*
 * daemon.test.js -- running as an operator's service: `daemon: on` (the
 * start command returns once the pid file is written, the master is in
 * a session of its own) and -d overriding it (the systemd units' way),
 * `user:` (workers and the status process drop root
 * and are not dumpable, the master keeps it; the status process reopens its
 * log on USR1),
 * worker_shutdown_timeout (a graceful stop kills what outlives it and the
 * task goes back to the queue), the status process in ps, no /dev/shm
 * segment from libmongoc without MONGOC_DISABLE_SHM, and relative paths,
 * which mean the same to the daemon (after its chdir) and to -s.
 *
 * A daemonized master's stderr is /dev/null: on a sanitizer build its
 * processes get log_path for their reports (harness.sanitizerLogs), which
 * the tests check once the master has exited.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');

let ctx;
const RECORDS = [{ phone: 1, start_date: 0, end_date: 12000 }, { phone: 1, start_date: 0, end_date: 40000 }];

/* A Complete result for phones, every figure checked against the oracle. */
function assertComplete(res, id, phones) {
    assert.equal(res.body.correlation_id, id, `correlation_id: ${res.raw.slice(0, 200)}`);
    assert.equal(res.body.status, 'Complete', res.raw.slice(0, 300));
    h.assertReport(res.body.data, h.expectedReport(RECORDS, phones), `task ${id}`);
}

function ps(pid) {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        return {
            state: fields[0], ppid: Number(fields[1]), sid: Number(fields[3]),
            uid: Number(/^Uid:\s+(\d+)/m.exec(status)[1]),
            args: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' '),
        };
    } catch (_) {
        return null;
    }
}
const alive = (pid) => { const p = ps(pid); return p !== null && p.state !== 'Z'; };
function childrenOf(pid) {
    return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
        .filter((p) => { const x = ps(p); return x && x.ppid === pid && x.state !== 'Z'; });
}

before(async () => {
    ctx = await h.setup({ prefix: 'rddaemon' });
    await ctx.loadRecords(RECORDS);
});

after(() => h.cleanup());

test('daemon: on detaches, writes the pid file before the start command returns, and stops with -s quit', async () => {
    const dir = h.tmpDir();
    const log = path.join(dir, 'error.log');
    const cfg = ctx.writeConfig({ daemon: true, error_log: log }, { dir });
    const pidFile = path.join(dir, 'reporterd.pid');
    const san = h.sanitizerLogs();
    const r = await h.run(h.env.reporterd, ['-c', cfg], { env: Object.assign({}, process.env, san.env) });
    assert.equal(r.code, 0, `start: ${r.stderr}`);
    assert.ok(fs.existsSync(pidFile), 'the pid file exists when the start command returns');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    h.onCleanup(() => { if (alive(pid)) process.kill(pid, 'SIGKILL'); });
    const m = ps(pid);
    assert.ok(m, 'the master runs');
    assert.match(m.args, /^reporterd: master process /);
    assert.notEqual(m.sid, process.pid, 'the master is in a session of its own');
    assert.notEqual(m.ppid, process.pid, 'the master is not our child');
    await h.waitFor(() => (fs.readFileSync(log, 'utf8').match(/consuming from/g) || []).length === 2, 20000,
        'both workers consuming (error_log)');
    await ctx.publishTask({ correlation_id: 5, phones: [1] });
    const [res] = await ctx.collectResults(1, 20000);
    assertComplete(res, 5, [1]);

    const again = await h.run(h.env.reporterd, ['-c', cfg]);
    assert.notEqual(again.code, 0, 'a second start is refused');
    assert.match(again.stderr, new RegExp(`already running with pid ${pid}`));

    const q = await h.run(h.env.reporterd, ['-s', 'quit', '-c', cfg]);
    assert.equal(q.code, 0, q.stderr);
    await h.waitFor(() => !alive(pid), 20000, `master ${pid} to exit after -s quit`);
    assert.ok(!fs.existsSync(pidFile), 'the pid file is removed');
    assert.match(fs.readFileSync(log, 'utf8'), /all workers gone; master exiting/);
    assert.doesNotMatch(fs.readFileSync(log, 'utf8'), h.BAD_LOG_RE);
    san.assertClean();
});

test('-d keeps a daemon: on configuration in the foreground: the master is the process started', async () => {
    const dir = h.tmpDir();
    const cfg = ctx.writeConfig({ daemon: true, worker_processes: 1 }, { dir });
    const pidFile = path.join(dir, 'reporterd.pid');
    const d = h.startDaemon(cfg, { args: ['-d', '-c', cfg] });
    await d.waitReady(1);
    assert.equal(Number(fs.readFileSync(pidFile, 'utf8')), d.pid, 'the pid file names the process we started');
    const m = ps(d.pid);
    assert.equal(m.ppid, process.pid, 'the master is still our child');
    assert.match(m.args, /^reporterd: master process /);
    await ctx.publishTask({ correlation_id: 6, phones: [1] });
    const [res] = await ctx.collectResults(1, 20000);
    assertComplete(res, 6, [1]);
    d.signal('SIGQUIT');
    const exit = await d.waitExit(20000);
    assert.deepEqual(exit, { code: 0, signal: null }, 'a graceful stop exits 0');
    assert.match(d.log, /all workers gone; master exiting/, 'its log went to our stderr');
    assert.ok(!fs.existsSync(pidFile), 'the pid file is removed');
});

/* Run the daemon binary with cwd as its current directory (and env added to ours). */
function runIn(cwd, args, env = {}) {
    return new Promise((resolve) => {
        require('node:child_process').execFile(h.env.reporterd, args,
            { cwd, timeout: 30000, env: Object.assign({}, process.env, env) }, (err, stdout, stderr) => {
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
        });
    });
}

test('daemon: on with a relative pid and error_log: both resolve against the config file, for the daemon and for -s from anywhere', async () => {
    const dir = h.tmpDir();
    fs.mkdirSync(path.join(dir, 'reporterd-test-run'));
    fs.mkdirSync(path.join(dir, 'logs'));
    const cfg = ctx.writeConfig({ daemon: true, worker_processes: 1, pid: 'reporterd-test-run/reporterd.pid',
        error_log: 'logs/error.log' }, { dir });
    const pidFile = path.join(dir, 'reporterd-test-run', 'reporterd.pid');
    const log = path.join(dir, 'logs', 'error.log');
    const elsewhere = h.tmpDir();

    const san = h.sanitizerLogs();
    const r = await runIn(elsewhere, ['-c', cfg], san.env);
    assert.equal(r.code, 0, `start from ${elsewhere}: ${r.stderr}`);
    assert.ok(fs.existsSync(pidFile), `the pid file is ${pidFile}`);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    h.onCleanup(() => { if (alive(pid)) process.kill(pid, 'SIGKILL'); });
    await h.waitFor(() => /consuming from/.test(fs.readFileSync(log, 'utf8')), 20000, `a worker consuming (${log})`);

    /* -s from the config's parent directory, with a relative -c */
    const rel = path.join(path.basename(dir), 'reporterd.yaml');
    const reopen = await runIn(path.dirname(dir), ['-s', 'reopen', '-c', rel]);
    assert.equal(reopen.code, 0, `-s reopen -c ${rel}: ${reopen.stderr}`);
    await h.waitFor(() => new RegExp(`\\] ${pid} master: log reopened`).test(fs.readFileSync(log, 'utf8')), 10000,
        'the master reopens the same log file after its chdir("/")');

    const q = await runIn('/', ['-s', 'quit', '-c', cfg]);
    assert.equal(q.code, 0, `-s quit from /: ${q.stderr}`);
    await h.waitFor(() => !alive(pid), 20000, `master ${pid} to exit after -s quit`);
    assert.ok(!fs.existsSync(pidFile), 'the pid file is removed');
    assert.ok(!fs.existsSync(`${pidFile}.lock`), 'its lock file is removed');
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing was written in the directory it started from');
    assert.doesNotMatch(fs.readFileSync(log, 'utf8'), h.BAD_LOG_RE);
    san.assertClean();
});

test('user: workers drop to the configured user, the master stays root', async (t) => {
    if (process.getuid() !== 0) return t.skip('needs root');
    const dir = h.tmpDir();
    fs.chmodSync(dir, 0o755);
    const cfg = ctx.writeConfig({ user: 'nobody', worker_processes: 2 }, { dir });
    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(2, 30000);
    const kids = childrenOf(daemon.pid);
    assert.equal(kids.length, 2);
    assert.equal(ps(daemon.pid).uid, 0, 'master uid');
    for (const k of kids) assert.notEqual(ps(k).uid, 0, `worker ${k} runs as nobody`);
    await ctx.publishTask({ correlation_id: 6, phones: [1] });
    const [res] = await ctx.collectResults(1, 20000);
    assertComplete(res, 6, [1]);
    await daemon.shutdown('SIGQUIT', 20000);
    assert.equal(daemon.exit.code, 0);

    const bad = h.startDaemon(ctx.writeConfig({ user: 'no-such-user-rd', worker_processes: 1 }, { dir: h.tmpDir() }));
    await bad.waitForLog(/user "no-such-user-rd" not found/, 10000);
    await bad.waitForLog(/exited with status 2: user "no-such-user-rd" not found; an operator must fix this .*trying again in 30 s/, 10000);
    await bad.shutdown('SIGTERM', 10000);
});

/* uid and gid of an existing unprivileged user, from the system's database */
async function userIds(name) {
    const u = await h.run('id', ['-u', name]);
    const g = await h.run('id', ['-g', name]);
    assert.equal(u.code, 0, `id -u ${name}: ${u.stderr}`);
    return { uid: Number(u.stdout), gid: Number(g.stdout) };
}

test('user: the status process binds, then runs as the user, not dumpable, and reopens its log on USR1', async (t) => {
    if (process.getuid() !== 0) return t.skip('needs root');
    const nobody = await userIds('nobody');
    const dir = h.tmpDir();
    fs.chmodSync(dir, 0o755);
    const log = path.join(dir, 'error.log');
    const port = await h.freePort();
    const cfg = ctx.writeConfig({
        user: 'nobody', worker_processes: 1, error_log: log, status: { listen: `127.0.0.1:${port}` },
    }, { dir });
    const text = (f = log) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    const daemon = h.startDaemon(cfg);
    await h.waitFor(() => /consuming from/.test(text()) && /status: serving \/metrics/.test(text()), 30000,
        () => `a consuming worker and a serving status process (error_log:\n${text().slice(-2000)})`);
    const kids = childrenOf(daemon.pid);
    const status = kids.find((k) => ps(k).args.startsWith('reporterd: status process'));
    const worker = kids.find((k) => ps(k).args.startsWith('reporterd: worker process'));
    assert.ok(status && worker, `status and worker among ${kids.map((k) => ps(k).args).join(' | ')}`);
    assert.equal(ps(daemon.pid).uid, 0, 'master uid');
    assert.equal(ps(status).uid, nobody.uid, 'the status process runs as nobody');
    assert.equal(ps(worker).uid, nobody.uid, 'the worker runs as nobody');
    const r = await h.run('curl', ['-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/metrics`]);
    assert.equal(r.stdout, '200', `GET /metrics after the drop: ${r.stderr}`);

    /* not dumpable: /proc/<pid> belongs to root and nobody cannot read the process's environment */
    for (const [what, pid] of [['status process', status], ['worker', worker]]) {
        assert.equal(fs.statSync(`/proc/${pid}/environ`).uid, 0, `${what} ${pid} is not dumpable`);
        const peek = await h.run('setpriv', [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups',
            'cat', `/proc/${pid}/environ`]);
        assert.notEqual(peek.code, 0, `nobody reads /proc/${pid}/environ of the ${what}`);
        assert.match(peek.stderr, /Permission denied/);
    }

    /* logrotate: move the log away, USR1 to the master, the status process writes to the new file */
    fs.renameSync(log, `${log}.1`);
    daemon.signal('SIGUSR1');
    await h.waitFor(() => new RegExp(`\\] ${status} status: log reopened`).test(text()), 10000,
        () => `the status process to log "log reopened" in the new file (got:\n${text()})`);
    await daemon.shutdown('SIGQUIT', 20000);
    assert.equal(daemon.exit.code, 0);
    assert.doesNotMatch(text() + text(`${log}.1`), /\[(error|alert)\]/);
});

test('without MONGOC_DISABLE_SHM in the environment no /dev/shm/mongoc-<pid> segment is made or left', async (t) => {
    if (!fs.existsSync('/dev/shm')) return t.skip('no /dev/shm');
    const noVar = { MONGOC_DISABLE_SHM: undefined };        /* removed from the child's environment */
    const segments = (pids) => pids.filter((p) => fs.existsSync(`/dev/shm/mongoc-${p}`)).map((p) => `mongoc-${p}`);
    const cfg = ctx.writeConfig({ worker_processes: 2 }, { dir: h.tmpDir() });

    /* running, then a graceful stop */
    const d1 = h.startDaemon(cfg, { env: noVar });
    await d1.waitReady(2, 30000);
    const pids1 = [d1.pid, ...childrenOf(d1.pid)];
    assert.equal(pids1.length, 3, 'master and two workers');
    assert.deepEqual(segments(pids1), [], 'no segment while running');
    assert.match(ps(d1.pid).args, /^reporterd: master process /, 'the process title survives');
    await ctx.publishTask({ correlation_id: 'shm', phones: [1] });
    const [res] = await ctx.collectResults(1, 20000);
    assertComplete(res, 'shm', [1]);
    await d1.shutdown('SIGQUIT', 20000);
    assert.equal(d1.exit.code, 0);
    assert.deepEqual(segments(pids1), [], 'no segment after a graceful stop');

    /* SIGKILL to the master and its workers */
    const d2 = h.startDaemon(cfg, { env: noVar });
    await d2.waitReady(2, 30000);
    const pids2 = [d2.pid, ...childrenOf(d2.pid)];
    assert.deepEqual(segments(pids2), [], 'no segment while running');
    process.kill(-d2.pid, 'SIGKILL');
    await d2.exited;
    await h.waitFor(() => pids2.every((p) => !alive(p)), 10000, 'the workers to die');
    assert.deepEqual(segments(pids2), [], 'no segment after SIGKILL');

    /* reporterctl, waiting for results on a queue of its own, killed */
    const ctlQueue = `${ctx.names.result_queue}.ctl`;
    await ctx.broker.declareQueue(ctlQueue);
    h.onCleanup(() => ctx.broker.deleteQueue(ctlQueue));
    const ctlCfg = ctx.writeConfig({ rabbitmq: { result_queue: ctlQueue } }, { dir: h.tmpDir() });
    const ctl = require('node:child_process').spawn(h.env.reporterctl, ['-c', ctlCfg, 'results', '--timeout', '60'],
        { stdio: 'ignore', env: Object.assign({}, process.env, noVar) });
    const ctlExit = new Promise((resolve) => ctl.on('exit', resolve));
    h.onCleanup(() => { try { ctl.kill('SIGKILL'); } catch (_) { /* gone */ } });
    await h.waitFor(async () => (await ctx.broker.queueInfo(ctlQueue))?.consumerCount === 1, 10000,
        'reporterctl results to consume its queue');
    assert.deepEqual(segments([ctl.pid]), [], 'no segment while reporterctl runs');
    ctl.kill('SIGKILL');
    await ctlExit;
    assert.deepEqual(segments([ctl.pid]), [], 'no segment after reporterctl is killed');
});

test('worker_shutdown_timeout: a graceful stop kills a worker that outlives it; its task is not lost', async (t) => {
    if (!h.env.testhooks) return t.skip('REPORTERD_TESTHOOKS not set');
    const cfg = ctx.writeConfig({ worker_processes: 1, worker_shutdown_timeout: '1s' }, { dir: h.tmpDir() });
    const daemon = h.startDaemon(cfg, { binary: h.env.testhooks, env: { REPORTERD_TEST_TASK_DELAY_MS: '8000' } });
    await daemon.waitReady(1, 30000);
    await ctx.publishTask({ correlation_id: 'slow', phones: [1] });
    await h.waitFor(async () => (await ctx.broker.messageCount(ctx.names.task_queue)) === 0, 10000,
        'the worker to take the slow task');
    const t0 = Date.now();
    daemon.signal('SIGQUIT');
    await daemon.waitForLog(/did not exit in time; sending SIGKILL/, 5000);
    await h.waitFor(() => !daemon.running(), 5000, 'the master to exit');
    assert.ok(Date.now() - t0 < 4000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(daemon.exit.code, 0);
    await h.waitFor(async () => (await ctx.broker.messageCount(ctx.names.task_queue)) === 1, 10000,
        'the unfinished task back in the queue');

    /* the next daemon answers it */
    const next = h.startDaemon(ctx.writeConfig({ worker_processes: 1 }, { dir: h.tmpDir() }));
    const [res] = await ctx.collectResults(1, 30000);
    assertComplete(res, 'slow', [1]);
    await next.shutdown('SIGQUIT', 20000);
});

test('the status process shows in ps under the master', async () => {
    const port = await h.freePort();
    const d2 = h.startDaemon(ctx.writeConfig({ worker_processes: 1, status: { listen: `127.0.0.1:${port}` } }, { dir: h.tmpDir() }));
    await d2.waitReady(1, 30000);
    await d2.waitForLog(/serving \/metrics and \/healthz/, 10000);
    const titles = childrenOf(d2.pid).map((p) => ps(p).args);
    assert.ok(titles.includes(`reporterd: status process 127.0.0.1:${port}`), titles.join(' | '));
    assert.ok(titles.some((x) => /^reporterd: worker process \(generation 1\)$/.test(x)), titles.join(' | '));
    await d2.shutdown('SIGQUIT', 20000);
    assert.equal(d2.exit.code, 0);
});

test('sd_notify: READY=1 once workers are spawned, RELOADING=1 and READY=1 on reload, STOPPING=1 on stop', async (t) => {
    const built = await h.run('sh', ['-c', `ldd '${h.env.reporterd}' | grep -q libsystemd`]);
    if (built.code !== 0) return t.skip('reporterd was built without libsystemd');
    if ((await h.run('sh', ['-c', 'command -v socat'])).code !== 0) return t.skip('socat is needed to read the notify socket');
    const dir = h.tmpDir();
    const sock = path.join(dir, 'notify.sock');
    const out = path.join(dir, 'notify.log');
    /* a NOTIFY_SOCKET listener, as systemd would have (Node has no unix
     * datagram sockets); the datagrams are appended one after the other */
    const listener = require('node:child_process').spawn('socat', ['-u', `UNIX-RECV:${sock}`, `OPEN:${out},creat,append`],
        { stdio: 'ignore' });
    h.onCleanup(() => listener.kill('SIGKILL'));
    const text = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').replace(/\n/g, ' ') : '');
    await h.waitFor(() => fs.existsSync(sock), 10000, 'the notify listener to bind its socket');
    const daemon = h.startDaemon(ctx.writeConfig({ worker_processes: 1 }, { dir: h.tmpDir() }), { env: { NOTIFY_SOCKET: sock } });
    await h.waitFor(() => /READY=1 STATUS=started/.test(text()), 10000, () => `READY=1 (got ${text()})`);
    daemon.signal('SIGHUP');
    await h.waitFor(() => /RELOADING=1/.test(text()) && /READY=1 STATUS=serving the new generation/.test(text()),
        30000, () => `RELOADING=1 then READY=1 (got ${text()})`);
    await daemon.shutdown('SIGQUIT', 20000);
    await h.waitFor(() => /STOPPING=1/.test(text()), 5000, () => `STOPPING=1 (got ${text()})`);
});
