/*
 * migrate.test.js -- an operator moving from the old Python service: the
 * shipped configuration (conf/reporterd.yaml, as `make install` puts it in
 * place, its pid file moved to a scratch directory) and the old service's
 * .env.local, unchanged -- MONGODB_HOST, MONGODB_PORT, an empty
 * MONGODB_USER (a MongoDB without authentication), MONGODB_DB_NAME,
 * RABBITMQ_* -- handed over both ways: exported into the environment, and
 * with `reporterd --env-file` / `reporterctl --env-file`.  Each way the
 * reports equal the brute-force oracle over the records of the database
 * those names point at.  With MONGODB_URI set as well (and MONGODB_HOST
 * pointing nowhere) the uri wins.
 *
 * Runs unchanged against a real MongoDB (REPORTERD_TEST_MONGODB_URI): the
 * .env then carries MONGODB_URI.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');

let ctx;
let records;
let seq = 1;
let collector;

/* The shipped configuration with its pid file in dir. */
function installedConfig(dir) {
    const text = fs.readFileSync(path.join(__dirname, '..', '..', 'conf', 'reporterd.yaml'), 'utf8');
    assert.match(text, /^pid: \/usr\/local\/var\/run\/reporterd\.pid/m, 'the shipped pid line');
    const file = path.join(dir, 'reporterd.yaml');
    fs.writeFileSync(file, text.replace(/^pid: \S+/m, `pid: ${dir}/reporterd.pid`));
    return file;
}

/* The old service's .env.local for this test's database and queues. */
function oldEnv(extra = {}) {
    const u = new URL(ctx.mongo.uri.replace(/^mongodb:/, 'http:'));
    const vars = {
        MONGODB_HOST: u.hostname,
        MONGODB_PORT: u.port || '27017',
        MONGODB_USER: '',
        MONGODB_PASSWORD: '',
        MONGODB_DB_NAME: ctx.names.database,
        RABBITMQ_HOST: '127.0.0.1',
        RABBITMQ_PORT: '5672',
        RABBITMQ_USER: 'guest',
        RABBITMQ_PASSWORD: 'guest',
        RABBITMQ_VIRTUAL_HOST: '/',
        RABBITMQ_QUEUE_NAME: ctx.names.task_queue,
        RABBITMQ_QUEUE_NAME_RESULT: ctx.names.result_queue,
    };
    if (ctx.mongo.external) Object.assign(vars, { MONGODB_URI: ctx.mongo.uri, MONGODB_HOST: 'nowhere.invalid' });
    return Object.assign(vars, extra);
}

function dotenv(vars) {
    return ['# Environment for docker-compose', '']
        .concat(Object.entries(vars).map(([k, v]) => `${k}=${v}`)).join('\n') + '\n';
}

async function check(label) {
    const ps = [1, 2, 3];
    const id = `m${seq++}`;
    if (!collector) collector = await ctx.results();
    await ctx.publishTask(JSON.stringify({ correlation_id: id, phones: ps }));
    const m = await h.waitFor(() => collector.messages.find((x) => x.body && x.body.correlation_id === id),
        30000, `the result of ${label}`, 10);
    assert.equal(m.body.status, 'Complete', `${label}: ${m.raw.slice(0, 300)}`);
    h.assertReport(m.body.data, h.expectedReport(records, ps), label);
}

/* A variable the harness's own environment might carry must not leak in:
 * the old names unset, then vars. */
function cleanEnv(vars = {}) {
    const env = {};
    for (const k of Object.keys(oldEnv({ MONGODB_URI: '' }))) env[k] = undefined;
    return Object.assign(env, vars);
}
/* The whole environment for h.run (which does not merge). */
const full = (env) => Object.fromEntries(Object.entries(Object.assign({}, process.env, env))
    .filter(([, v]) => v !== undefined));

before(async () => {
    ctx = await h.setup({ prefix: 'rdmig' });
    records = [];
    for (let p = 1; p <= 4; p++) {
        for (let k = 0; k < 15; k++) records.push({ phone: p, start_date: 1000 * k, end_date: 1000 * k + 1000 * ((k * 13 + p) % 121) });
    }
    const c = await h.mongoClient(ctx.mongo.uri);
    await c.db(ctx.names.database).collection('calls').insertMany(records.map((r) => Object.assign({}, r)));
});

after(async () => {
    await h.cleanup();
});

test('the shipped configuration with the old .env exported: exact reports from the database it names', async () => {
    const dir = h.tmpDir();
    const cfg = installedConfig(dir);
    const env = cleanEnv(oldEnv());
    const t = await h.run(h.env.reporterd, ['-t', '-c', cfg], { env: full(env) });
    assert.equal(t.code, 0, `-t: ${t.stderr}`);
    const d = h.startDaemon(cfg, { env });
    await d.waitReady(2, 30000);
    await check('the old .env exported');
    await d.shutdown('SIGQUIT');
});

test('the same .env.local handed over with --env-file, to reporterd and to reporterctl', async () => {
    const dir = h.tmpDir();
    const cfg = installedConfig(dir);
    const file = path.join(dir, '.env.local');
    fs.writeFileSync(file, dotenv(oldEnv()));
    const env = cleanEnv();
    const t = await h.run(h.env.reporterd, ['--env-file', file, '-t', '-c', cfg], { env: full(env) });
    assert.equal(t.code, 0, `-t --env-file: ${t.stderr}`);
    const noEnv = await h.run(h.env.reporterd, ['-t', '-c', cfg], { env: full(env) });
    assert.equal(noEnv.code, 0, 'the shipped configuration alone loads too (its defaults)');
    const d = h.startDaemon(cfg, { env, args: ['--env-file', file, '-c', cfg] });
    await d.waitReady(2, 30000);
    await check('--env-file');
    await d.shutdown('SIGQUIT');

    /* reporterctl: an import lands in the database the file names */
    const nd = path.join(dir, 'more.ndjson');
    fs.writeFileSync(nd, '{"phone": 4, "start_date": 0, "end_date": 61000}\n');
    const imp = await h.run(h.env.reporterctl, ['import', nd, '--format', 'ndjson', '--env-file', file, '-c', cfg],
        { env: full(env) });
    assert.equal(imp.code, 0, `reporterctl --env-file import: ${imp.stdout}${imp.stderr}`);
    records.push({ phone: 4, start_date: 0, end_date: 61000 });
    const c = await h.mongoClient(ctx.mongo.uri);
    assert.equal(await c.db(ctx.names.database).collection('calls').countDocuments({ phone: 4 }), 16);
    const bad = await h.run(h.env.reporterd, ['--env-file', path.join(dir, 'missing.env'), '-t', '-c', cfg],
        { env: full(env) });
    assert.equal(bad.code, 78, `a missing env file: ${bad.stderr}`);
    assert.match(bad.stderr, /--env-file .*missing\.env: No such file/);
});

test('MONGODB_URI, when set, wins over MONGODB_HOST and the other parts', async () => {
    const dir = h.tmpDir();
    const cfg = installedConfig(dir);
    const env = cleanEnv(oldEnv({ MONGODB_URI: ctx.mongo.uri, MONGODB_HOST: 'nowhere.invalid',
        MONGODB_PORT: '1', MONGODB_USER: 'nobody', MONGODB_PASSWORD: 'x' }));
    const dump = await h.run(h.env.reporterd, ['-T', '-c', cfg], { env: full(env) });
    assert.equal(dump.code, 0, dump.stderr);
    const d = h.startDaemon(cfg, { env });
    await d.waitReady(2, 30000);
    await check('MONGODB_URI with the parts set too');
    await d.shutdown('SIGQUIT');
});
