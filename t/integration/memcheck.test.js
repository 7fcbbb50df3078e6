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
let records;
const valgrind = ['/usr/bin/valgrind', '/usr/local/bin/valgrind'].find((p) => fs.existsSync(p));
const skip = !valgrind ? 'valgrind is not installed'
    : process.env.REPORTERD_SANITIZERS ? 'sanitizer build: memcheck runs on the plain build' : false;

before(async () => {
    if (skip) return;
    ctx = await h.setup({ prefix: 'rdvg' });
    records = [];
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
    const sent = new Map();         /* correlation_id -> {phones} or {error} */
    for (let i = 0; i < GOOD + INVALID + UNREADABLE; i++) {
        const kind = i % 6;
        if (kind === 4 && i / 6 < INVALID) {
            const cid = `bad-${id++}`;
            sent.set(cid, { error: 'phones[1] must be an integer, not string' });
            await ctx.publishTask({ correlation_id: cid, phones: [1, 'x'] });
        } else if (kind === 5 && i / 6 < UNREADABLE) {
            await ctx.publishTask(`{"phones": [1], "x": ${i}`);
        } else {
            const cid = id++;
            const phones = [i % 20, (i * 7) % 23, 3];
            sent.set(cid, { phones });
            await ctx.publishTask({ correlation_id: cid, phones });
        }
    }
    const results = await ctx.collectResults(sent.size, 240000);
    const errors = results.filter((r) => r.body.status === 'Error').length;
    t.diagnostic(`memcheck: ${results.length} results (${errors} Error), ${GOOD + INVALID + UNREADABLE - sent.size} unreadable`);
    const seen = new Set();
    for (const r of results) {
        const x = sent.get(r.body.correlation_id);
        assert.ok(x && !seen.has(r.body.correlation_id), `a result for a task sent, once: ${r.raw.slice(0, 200)}`);
        seen.add(r.body.correlation_id);
        if (x.error) {
            assert.equal(r.body.status, 'Error', r.raw.slice(0, 300));
            assert.equal(r.body.error, x.error, `the reason for ${r.body.correlation_id}`);
        } else {
            assert.equal(r.body.status, 'Complete', r.raw.slice(0, 300));
            h.assertReport(r.body.data, h.expectedReport(records, x.phones), `task ${r.body.correlation_id}`);
        }
    }

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
