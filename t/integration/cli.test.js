/*
 * cli.test.js -- reporterd's command line: -v, -h, -d, -F, the long
 * options, bad options and -t, and the exit statuses (64 usage, 78
 * configuration).
 * Needs neither RabbitMQ nor MongoDB.
 */
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('../lib/harness.js');

after(() => h.cleanup());

const names = h.uniqueNames('rdcli');
const bin = () => h.env.reporterd;

test('-v prints the version and exits 0', async () => {
    const r = await h.run(bin(), ['-v']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /reporterd version \d+\.\d+\.\d+/);
});

test('-h prints the usage and exits 0', async () => {
    const r = await h.run(bin(), ['-h']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /Usage: reporterd/);
    for (const opt of ['-c FILE', '-t', '-v', '-h']) assert.ok(out.includes(opt), `usage mentions ${opt}: ${out}`);
});

test('-h names -d, the foreground flag, and -d is accepted with -t', async () => {
    const r = await h.run(bin(), ['-h']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: reporterd \[-d\] /m, r.stdout);
    assert.match(r.stdout, /^ +-d +stay in the foreground whatever daemon: says$/m, r.stdout);
    const cfg = h.writeConfig(null, { daemon: true }, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    const t = await h.run(bin(), ['-d', '-t', '-c', cfg]);
    assert.equal(t.code, 0, `exit ${t.code}: ${t.stderr}`);
    assert.match(t.stderr, /test is successful/);
});

test('an unknown option fails with the usage on stderr', async () => {
    const r = await h.run(bin(), ['-Z']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Usage: reporterd/);
    assert.equal(r.stdout, '', 'nothing on stdout');
});

test('long options, -F/--foreground, -V; exit 64 for a bad command line, 78 for a configuration that ' +
    'does not load', async () => {
    const cfg = h.writeConfig(null, { daemon: true }, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    for (const args of [['--foreground', '--test', '--config', cfg], ['-F', '-t', '-c', cfg], ['--test-dump', '-c', cfg]]) {
        const r = await h.run(bin(), args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /test is successful/);
    }
    for (const v of ['-V', '--version']) assert.match((await h.run(bin(), [v])).stdout, /^reporterd version /);
    const help = await h.run(bin(), ['--help']);
    assert.equal(help.code, 0);
    for (const o of ['--config FILE', '--foreground', '--test', '--test-dump', '--signal SIGNAL', '--version', '--help']) {
        assert.ok(help.stdout.includes(o), `--help names ${o}`);
    }
    assert.match(help.stdout, /Exit status: 0 done, 64 a bad command line, 78/);
    assert.equal((await h.run(bin(), ['--no-such-option'])).code, 64);
    assert.equal((await h.run(bin(), ['-t', '-c', cfg, 'extra'])).code, 64);
    assert.equal((await h.run(bin(), ['-s', 'bogus', '-c', cfg])).code, 64);
    const missing = await h.run(bin(), ['-t', '-c', '/nonexistent/reporterd.yaml']);
    assert.equal(missing.code, 78, missing.stderr);
    const bad = h.writeConfig(null, { rabbitmq: { port: 70000 } }, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    assert.equal((await h.run(bin(), ['-t', '-c', bad])).code, 78);
    assert.equal((await h.run(bin(), ['-c', bad])).code, 78, 'a start with a bad configuration');
});

test('-t checks what the start needs beyond the file: user: exists, the pid and log directories exist ' +
    'and can be written; it says what it checked', async () => {
    const dir = h.tmpDir();
    const good = h.writeConfig(dir, { error_log: `${dir}/reporterd.log` }, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    const r = await h.run(bin(), ['-t', '-c', good]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`checked: pid directory ${dir} writable; error_log directory ${dir} writable`));
    for (const [what, over, msg] of [
        ['a user that does not exist', { user: 'nosuchuser_rd' }, /user: "nosuchuser_rd": no such user/],
        ['a pid file in a missing directory', { pid: '/nonexistent/dir/reporterd.pid' },
            /pid: the directory "\/nonexistent\/dir" of "\/nonexistent\/dir\/reporterd.pid" does not exist/],
        ['an error log in a missing directory', { error_log: '/nonexistent/dir/reporterd.log' },
            /error_log: the directory "\/nonexistent\/dir" of "\/nonexistent\/dir\/reporterd.log" does not exist/],
    ]) {
        const cfg = h.writeConfig(null, over, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
        const t = await h.run(bin(), ['-t', '-c', cfg]);
        assert.equal(t.code, 78, `${what}: EX_CONFIG (${t.stderr})`);
        assert.match(t.stderr, msg, what);
        assert.match(t.stderr, /test failed/, what);
    }
});

test('-s stop, quit and reopen work from the pid file when the configuration has an error; reload refuses', async () => {
    const dir = h.tmpDir();
    const cfg = h.writeConfig(dir, { worker_processes: 1 }, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    const d = h.startDaemon(cfg);
    await d.waitForLog(/master started/, 15000);
    fs.appendFileSync(cfg, 'no_such_key: 1\n');
    const reload = await h.run(bin(), ['-s', 'reload', '-c', cfg]);
    assert.equal(reload.code, 78, `a reload with a broken file is refused: ${reload.stderr}`);
    const reopen = await h.run(bin(), ['-s', 'reopen', '-c', cfg]);
    assert.equal(reopen.code, 0, reopen.stderr);
    assert.match(reopen.stderr, /warning: .*no_such_key/);
    assert.match(reopen.stderr, new RegExp(`signalling the master named by ${dir}/reporterd.pid`));
    const quit = await h.run(bin(), ['-s', 'quit', '-c', cfg]);
    assert.equal(quit.code, 0, quit.stderr);
    await d.waitExit(20000);
    assert.equal(d.exit.code, 0, 'the master stopped gracefully');
    const nofile = await h.run(bin(), ['-s', 'stop', '-c', `${dir}/no-such.yaml`]);
    assert.equal(nofile.code, 78, `no file: no guess at whose daemon to signal (${nofile.stderr})`);
    assert.doesNotMatch(nofile.stderr, /signalling/);
    assert.equal((await h.run(bin(), ['-t', '-s', 'stop', '-c', cfg])).code, 64, '-t and -s exclude each other');
});

test('-t accepts a complete configuration', async () => {
    const cfg = h.writeConfig(null, {}, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
    const r = await h.run(bin(), ['-t', '-c', cfg]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
});

test('-t stays offline in live mode: it contacts neither the broker nor the database (ExecStartPre, ExecReload)', async () => {
    const net = require('node:net');
    const seen = [];
    const servers = [];
    for (const what of ['broker', 'database']) {
        const s = net.createServer((c) => { seen.push({ what, port: c.remotePort }); c.destroy(); });
        await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
        servers.push(s);
    }
    try {
        const [amqpPort, mongoPort] = servers.map((s) => s.address().port);
        const cfg = h.writeConfig(null, { rabbitmq: { port: amqpPort } },
            { names, mongoUri: `mongodb://127.0.0.1:${mongoPort}` });
        const r = await h.run(bin(), ['-t', '-c', cfg]);
        assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
        /* -t has exited: a sentinel connection to each listener, accepted
         * after anything -t connected (the accept queue is FIFO), shows
         * that every earlier connection has been seen */
        const sentinels = [];
        for (const [what, s] of [['broker', servers[0]], ['database', servers[1]]]) {
            const c = net.connect(s.address().port, '127.0.0.1');
            c.on('error', () => {});
            await new Promise((resolve) => c.once('connect', resolve));
            sentinels.push({ what, port: c.localPort });
            await h.waitFor(() => seen.some((x) => x.what === what && x.port === c.localPort), 5000,
                `the ${what} listener to accept the sentinel connection`);
            c.destroy();
        }
        assert.deepEqual(seen, sentinels, 'no connection from -t, only the sentinels');
    } finally {
        for (const s of servers) s.close();
    }
});

/* -t about a readPreference other than primary: a notice in rollup mode,
 * nothing in live mode; a success either way. */
const NOTICE = /^reporterd: notice: mongodb\.uri: readPreference=(\w+): rollup mode reads and writes its rollups, marks and tail on the primary whatever the uri says; live mode follows the uri$/m;
for (const mode of ['secondary', 'secondaryPreferred', 'primaryPreferred', 'nearest', 'primary', null]) {
    const uri = `mongodb://127.0.0.1:27017/${mode ? `?readPreference=${mode}` : ''}`;
    const says = mode && mode !== 'primary' ? 'a notice in rollup mode, none in live mode' : 'no notice in either mode';
    test(`-t with ${mode ? `readPreference=${mode}` : 'no readPreference'}: ${says}`, async () => {
        for (const report of ['rollup', 'live']) {
            const cfg = h.writeConfig(null, { report: { mode: report } }, { names, mongoUri: uri });
            const r = await h.run(bin(), ['-t', '-c', cfg]);
            assert.equal(r.code, 0, `${report}: exit ${r.code}: ${r.stderr}`);
            assert.match(r.stderr, /test is successful/, `${report}: ${r.stderr}`);
            const m = NOTICE.exec(r.stderr);
            if (report === 'rollup' && mode && mode !== 'primary') {
                assert.ok(m, `${report} mode with ${uri}: the notice (${r.stderr})`);
                assert.equal(m[1], mode, 'the uri\'s readPreference named as written');
            } else {
                assert.doesNotMatch(r.stderr, /notice: mongodb\.uri/, `${report} mode with ${uri}: no notice`);
            }
        }
    });
}

test('-t on a readPreference the driver refuses fails and names it', async () => {
    const cfg = h.writeConfig(null, { report: { mode: 'rollup' } },
        { names, mongoUri: 'mongodb://127.0.0.1:27017/?readPreference=fastest' });
    const r = await h.run(bin(), ['-t', '-c', cfg]);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /:\d+:\d+: mongodb\.uri: .*readPreference/, r.stderr);
});

test('-t on a missing file fails and names it', async () => {
    const r = await h.run(bin(), ['-t', '-c', '/nonexistent/reporterd.yaml']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/nonexistent\/reporterd\.yaml/);
});

function lineOf(file, re) {
    return fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => re.test(l)) + 1;
}

for (const [what, overrides, lineRe, msgRe] of [
    ['an out-of-range port', { rabbitmq: { port: 70000 } }, /port: 70000/, /port/],
    ['an unknown key', { no_such_key: 1 }, /no_such_key/, /no_such_key/],
    ['a bad log level', { log_level: 'chatty' }, /log_level/, /log_level/],
    ['zero workers', { worker_processes: 0 }, /worker_processes/, /worker_processes/],
]) {
    test(`-t rejects ${what} with file:line:col`, async () => {
        const cfg = h.writeConfig(null, overrides, { names, mongoUri: 'mongodb://127.0.0.1:27017' });
        const r = await h.run(bin(), ['-t', '-c', cfg]);
        assert.notEqual(r.code, 0, `must fail: ${fs.readFileSync(cfg, 'utf8')}`);
        const line = lineOf(cfg, lineRe);
        const esc = cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        assert.match(r.stderr, new RegExp(`${esc}:${line}:\\d+`), r.stderr);
        assert.match(r.stderr, msgRe, r.stderr);
    });
}
