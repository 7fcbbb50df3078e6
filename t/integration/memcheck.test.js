/*
 * memcheck.test.js -- the daemon under valgrind's memcheck: one master and
 * one worker over a few hundred tasks (good, contract-breaking and
 * unreadable), then a graceful stop.  Every process must report no errors
 * (invalid reads or writes, uninitialised values) and no definitely lost
 * blocks.  Skipped where valgrind is missing or the build uses sanitizers.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');

const GOOD = 200;
const INVALID = 50;
const UNREADABLE = 50;

let ctx;
const valgrind = ['/usr/bin/valgrind', '/usr/local/bin/valgrind'].find((p) => fs.existsSync(p));
const skip = !valgrind ? 'valgrind is not installed'
    : process.env.REPORTERD_SANITIZERS ? 'sanitizer build: memcheck runs on the plain build' : false;

before(async () => {
    if (skip) return;
    ctx = await h.setup({ prefix: 'rdvg' });
    const records = [];
    for (let p = 0; p < 20; p++) {
        for (let k = 0; k < 30; k++) records.push({ phone: p, start_date: k * 1000, end_date: k * 1000 + ((p * 31 + k * 7) % 121) * 1000 });
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

test(`memcheck: ${GOOD + INVALID + UNREADABLE} tasks through one worker, no errors, no definite leaks`, { skip }, async (t) => {
    const dir = h.tmpDir();
    const cfg = ctx.writeConfig({ worker_processes: 1, error_log: path.join(dir, 'error.log') });
    const daemon = h.startDaemon(cfg, {
        binary: valgrind,
        args: ['--quiet', '--leak-check=full', '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--track-origins=yes', `--log-file=${dir}/vg.%p.log`, h.env.reporterd, '-c', cfg],
    });
    const log = () => (fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '');
    await h.waitFor(() => /consuming from/.test(log()), 60000, () => `the worker under valgrind to consume (log: ${log()})`, 100);

    let id = 1;
    for (let i = 0; i < GOOD + INVALID + UNREADABLE; i++) {
        const kind = i % 6;
        if (kind === 4 && i / 6 < INVALID) await ctx.publishTask({ correlation_id: `bad-${id++}`, phones: [1, 'x'] });
        else if (kind === 5 && i / 6 < UNREADABLE) await ctx.publishTask(`{"phones": [1], "x": ${i}`);
        else await ctx.publishTask({ correlation_id: id++, phones: [i % 20, (i * 7) % 23, 3] });
    }
    const sent = id - 1;
    const results = await ctx.collectResults(sent, 240000);
    const errors = results.filter((r) => r.body.status === 'Error').length;
    t.diagnostic(`memcheck: ${results.length} results (${errors} Error), ${GOOD + INVALID + UNREADABLE - sent} unreadable`);

    daemon.signal('SIGQUIT');
    await h.waitFor(() => !daemon.running(), 60000, 'the daemon under valgrind to exit after QUIT', 100);
    assert.equal(daemon.exit.code, 0, `exit status (log: ${log().slice(-2000)})`);

    const reports = fs.readdirSync(dir).filter((f) => /^vg\.\d+\.log$/.test(f));
    assert.ok(reports.length >= 2, `one valgrind log per process (master and worker), got ${reports.join(', ')}`);
    for (const f of reports) {
        const text = fs.readFileSync(path.join(dir, f), 'utf8');
        t.diagnostic(`${f}: ${text.trim() ? text.trim().split("\n").join(" / ").slice(0, 600) : "clean"}`);
        assert.doesNotMatch(text, /Invalid (read|write)|uninitialised|Invalid free|Mismatched free|definitely lost/,
            `${f} reports a memory error:\n${text.slice(0, 4000)}`);
    }
});
