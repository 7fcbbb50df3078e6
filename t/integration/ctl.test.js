/*
 * ctl.test.js -- reporterctl against the real broker and database:
 * seed (records, index), send and results (through the running daemon),
 * tasks larger than any fixed buffer, import of a JSON array, NDJSON and
 * CSV with malformed records counted by position, broken arrays, trailing
 * data, byte order marks and the 64 KiB record limit, and bench's
 * machine-readable output, also when no result arrives.
 *
 * The send test's oracle works on records the test generated (and loaded
 * with the driver), never on what it reads back from the database under
 * test; import is checked by reading every stored document back.
 * REPORTERD_TEST_SEED=N replays its data.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));

let ctx;
let cfg;

const ctl = (...args) => h.run(h.env.reporterctl, ['-c', cfg, ...args], { timeoutMs: 120000 });

async function collection() {
    const c = await h.mongoClient(ctx.mongo.uri);
    return c.db(ctx.names.database).collection(ctx.names.collection);
}

const byTriple = (a, b) => {
    for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
};

/* records ({phone, start_date, end_date} of integers) as sorted BigInt triples */
const triples = (records) => records.map((r) => [BigInt(r.phone), BigInt(r.start_date), BigInt(r.end_date)]).sort(byTriple);

/* Every stored document as [phone, start_date, end_date], sorted: each
 * must hold exactly those fields (and _id), all three int64 -- read with
 * useBigInt64, so an int32, a double or a string would show. */
async function stored() {
    const docs = await (await collection()).find({}, { useBigInt64: true }).toArray();
    return docs.map((d) => {
        assert.deepEqual(Object.keys(d).sort(), ['_id', 'end_date', 'phone', 'start_date'], `the fields stored: ${Object.keys(d)}`);
        for (const k of ['phone', 'start_date', 'end_date']) {
            assert.equal(typeof d[k], 'bigint', `${k} of a stored document is an int64, got ${typeof d[k]} ${d[k]}`);
        }
        return [d.phone, d.start_date, d.end_date];
    }).sort(byTriple);
}

before(async () => {
    ctx = await h.setup({ prefix: 'rdctl' });
    cfg = ctx.writeConfig({ worker_processes: 2 });
});

after(() => h.cleanup());

test('seed writes phones x records with whole-second durations and the phone index', async () => {
    const r = await ctl('seed', '--phones', '6', '--records', '250', '--seed', '7', '--drop');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1500 records for 6 phones/);
    const coll = await collection();
    assert.equal(await coll.countDocuments({}), 1500);
    for (let p = 0; p < 6; p++) assert.equal(await coll.countDocuments({ phone: p }), 250, `phone ${p}`);
    const docs = await coll.find({}).limit(300).toArray();
    for (const d of docs) {
        const dur = (Number(d.end_date) - Number(d.start_date)) / 1000;
        assert.ok(Number.isInteger(dur) && dur >= 0 && dur <= 120, `duration ${dur}`);
    }
    const idx = await coll.indexes();
    assert.ok(idx.some((i) => JSON.stringify(i.key) === '{"phone":1}'), 'index {phone: 1}');

    /* a fixed seed gives the same data set */
    const first = docs.slice(0, 5).map((d) => [d.phone, Number(d.start_date), Number(d.end_date)]);
    assert.equal((await ctl('seed', '--phones', '6', '--records', '250', '--seed', '7', '--drop')).code, 0);
    const again = (await (await collection()).find({}).limit(5).toArray())
        .map((d) => [d.phone, Number(d.start_date), Number(d.end_date)]);
    assert.deepEqual(again, first);
});

/* Call records for phones 0..7 (send --max-phone 8 asks for those): 6 and 7
 * have none; dates as epoch milliseconds or as BSON dates; no decimal ties. */
function sendRecords(rnd) {
    const base = Date.UTC(2023, 4, 9, 2, 27, 3, 49);
    const out = [];
    for (let phone = 0; phone < 6; phone++) {
        const n = 1 + Math.floor(rnd() * 60);
        for (let k = 0; k < n; k++) {
            const ms = rnd() < 0.2 ? Math.floor(rnd() * 120001) : Math.floor(rnd() * 121) * 1000;
            const st = base + Math.floor(rnd() * 30 * 86400 * 1000);
            out.push(k % 2 ? { phone, start_date: st, end_date: st + ms }
                : { phone, start_date: new Date(st), end_date: new Date(st + ms) });
        }
    }
    return out;
}

test('send publishes tasks the daemon answers; results prints them', async (t) => {
    t.diagnostic(`seed ${SEED}`);
    const records = sendRecords(h.prng(SEED));
    await (await collection()).deleteMany({});
    await ctx.loadRecords(records);
    const sent = await ctl('send', '-n', '4', '--max-phone', '8', '--phones-per-task', '5');
    assert.equal(sent.code, 0, sent.stderr);
    const tasks = sent.stdout.trim().split('\n').map((l) => h.parseJson(l));
    assert.equal(tasks.length, 4);
    assert.equal(await ctx.broker.messageCount(ctx.names.task_queue), 4, 'tasks wait in the queue');

    const daemon = h.startDaemon(cfg);
    await daemon.waitReady(2, 30000);
    const got = await ctl('results', '-n', '4', '--timeout', '30');
    assert.equal(got.code, 0, got.stderr);
    const results = got.stdout.trim().split('\n').map((l) => h.parseJson(l));
    assert.equal(results.length, 4);
    for (const task of tasks) {
        /* same JSON type and value: number, or BigInt beyond 2^53 */
        const res = results.find((x) => x.correlation_id === task.correlation_id);
        assert.ok(res, `result for ${task.correlation_id} (got ${results.map((x) => x.correlation_id).join(', ')})`);
        assert.equal(res.status, 'Complete');
        h.assertReport(res.data, h.expectedReport(records, task.phones), `task ${task.correlation_id}`);
    }

    const bench = await ctl('bench', '-n', '12', '--concurrency', '3', '--max-phone', '6', '--json');
    assert.equal(bench.code, 0, bench.stderr);
    const b = JSON.parse(bench.stdout);
    assert.equal(b.tasks, 12);
    assert.equal(b.received, 12);
    assert.equal(b.errors, 0);
    assert.ok(b.throughput_per_s > 0 && b.latency_ms.p50 > 0 && b.latency_ms.max >= b.latency_ms.p99);
    await daemon.shutdown('SIGQUIT', 20000);
});

test('send builds tasks of 500 18-digit phones (past 8 KiB) and refuses numbers it cannot read', async () => {
    const before = await ctx.broker.messageCount(ctx.names.task_queue);
    const sent = await ctl('send', '-n', '3', '--phones-per-task', '500', '--max-phone', '1000000000000000000');
    assert.equal(sent.code, 0, `signal ${sent.signal}; stderr: ${sent.stderr}`);
    const lines = sent.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    const shape = /^\{"correlation_id":\d+,"phones":\[\d{1,18}(,\d{1,18}){499}\]\}$/;
    for (const l of lines) {
        assert.match(l, shape, 'one task of 500 phones below 10^18');
        assert.equal(JSON.parse(l).phones.length, 500);
    }
    assert.ok(lines.some((l) => l.length > 8192), `a body beyond the old 8 KiB buffer (lengths ${lines.map((l) => l.length)})`);
    assert.equal(await ctx.broker.messageCount(ctx.names.task_queue), before + 3);
    /* what the broker holds is what was printed */
    const ch = await ctx.broker.conn.createChannel();
    const bodies = [];
    for (let i = 0; i < 3; i++) {
        const m = await ch.get(ctx.names.task_queue, { noAck: true });
        assert.ok(m, `message ${i} in the task queue`);
        bodies.push(m.content.toString());
    }
    await ch.close();
    assert.deepEqual(bodies.slice(-3), lines);

    for (const [opt, val] of [['--max-phone', '1e18'], ['--phones-per-task', '501'], ['-n', 'ten'], ['--max-phone', '0']]) {
        const bad = await ctl('send', opt, val);
        assert.equal(bad.code, 64, `${opt} ${val}: EX_USAGE (${bad.stderr})`);
        assert.match(bad.stderr, new RegExp(`${opt} "${val}" is not an integer from`), `${opt} ${val}`);
    }
    assert.equal(await ctx.broker.messageCount(ctx.names.task_queue), before, 'nothing sent on a bad option');
});

test('the command line: the command and its arguments are checked before the configuration, -c anywhere, help CMD, ' +
    'numbers and extra arguments refused; exit 64 for usage, 78 for the configuration', async () => {
    const run = (...args) => h.run(h.env.reporterctl, args, { timeoutMs: 60000 });
    const nope = await run('-c', '/nonexistent/reporterd.yaml', 'nosuchcommand');
    assert.equal(nope.code, 64, nope.stderr);
    assert.match(nope.stderr, /unknown command "nosuchcommand"/);
    assert.doesNotMatch(nope.stderr, /nonexistent/, 'the command is refused before the configuration is read');
    const noconf = await run('-c', '/nonexistent/reporterd.yaml', 'rollup');
    assert.equal(noconf.code, 78, noconf.stderr);
    const badphones = await run('-c', '/nonexistent/reporterd.yaml', 'rollup', '--verify', '--phones', 'abc');
    assert.equal(badphones.code, 64, `rollup --verify --phones abc before the configuration: ${badphones.stderr}`);
    const badargs = await run('-c', '/nonexistent/reporterd.yaml', 'results', '-n', 'abc');
    assert.equal(badargs.code, 64, `the arguments are checked before the configuration: ${badargs.stderr}`);
    assert.doesNotMatch(badargs.stderr, /nonexistent/);
    const later = await run('rollup', '--status', '-c', cfg);
    assert.equal(later.code, 0, `-c after the command: ${later.stderr}`);
    assert.match(later.stdout, /unfolded records: \d+/);
    const eq = await run('rollup', `--config=${cfg}`);
    assert.equal(eq.code, 0, `--config=FILE: ${eq.stderr}`);
    const help = await run('help', 'rollup');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: reporterctl \[-c FILE\] rollup/);
    assert.match(help.stdout, /--repair/);
    assert.doesNotMatch(help.stdout, /import/, 'only the command asked for');
    assert.equal((await run('help', 'nosuch')).code, 64);
    assert.match((await run('--version')).stdout, /^reporterctl version \d+\.\d+\.\d+$/m);
    assert.match((await run('--help')).stdout, /Exit status: 0 done, 64/);
    assert.equal((await run()).code, 64, 'no command');
    for (const [args, msg] of [
        [['results', '-n', 'abc'], /-n "abc" is not an integer/],
        [['results', '--timeout', 'soon'], /--timeout "soon" is not a number/],
        [['results', 'extra'], /results takes no argument "extra"/],
        [['send', 'extra'], /send takes no argument "extra"/],
        [['seed', '--phones', 'many'], /--phones "many" is not an integer/],
        [['bench', '-n', '1e3'], /-n "1e3" is not an integer/],
        [['bench', '--rate', 'fast'], /--rate "fast" is not a number/],
        [['bench', 'extra'], /bench takes no argument "extra"/],
        [['import', '--batch', '0', '-'], /--batch "0" is not an integer from 1 to 100000/],
        [['import'], /usage: import FILE/],
        [['status', '--since', 'forever'], /--since takes a duration/],
        [['rollup', '--fold', '--verify'], /one of --status, --fold, --verify, --rebuild at a time/],
    ]) {
        const r = await run('-c', cfg, ...args);
        assert.equal(r.code, 64, `${args.join(' ')}: EX_USAGE (${r.stderr})`);
        assert.match(r.stderr, msg, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`see \`reporterctl help ${args[0]}\``), `${args.join(' ')}: names the help`);
    }
});

test('bench --json prints valid JSON with nulls when no result arrives', async () => {
    /* no daemon runs now: the task stays unanswered */
    const r = await ctl('bench', '-n', '1', '--timeout', '1', '--json');
    assert.equal(r.code, 1, 'results are missing');
    assert.doesNotMatch(r.stdout, /nan/i);
    const b = JSON.parse(r.stdout);
    assert.equal(b.tasks, 1);
    assert.equal(b.received, 0);
    assert.equal(b.missing, 1);
    assert.equal(b.throughput_per_s, 0);
    assert.deepEqual(b.latency_ms, { p50: null, p90: null, p99: null, max: null });
    assert.equal(b.mean_total_duration_ms, null);
    const t = await ctl('bench', '-n', '1', '--timeout', '1');
    assert.equal(t.code, 1);
    assert.doesNotMatch(t.stdout, /nan/i);
    assert.match(t.stdout, /latency ms: p50 - {2}p90 - {2}p99 - {2}max -\n/);
});

test('import streams a JSON array, NDJSON and CSV, counting malformed records by position', async () => {
    const dir = h.tmpDir();
    const good = [];
    let json = '[\n';
    for (let i = 0; i < 2500; i++) {
        const r = { phone: 900 + (i % 7), start_date: 1684957028364 + i, end_date: 1684957028364 + i + (i % 121) * 1000 };
        good.push(r);
        json += (i ? ',\n' : '') + JSON.stringify(r);
        if (i === 100) json += ',\n{"phone": "x", "start_date": 1, "end_date": 2}';
        if (i === 200) json += ',\n{"phone": 1, "start_date": 1}';
        if (i === 300) json += ',\n[1, 2, 3]';
    }
    json += ',\n{"phone": 5, "start_date": {"$numberLong": "1000"}, "end_date": 3000.0}\n]\n';
    good.push({ phone: 5, start_date: 1000, end_date: 3000 });
    fs.writeFileSync(path.join(dir, 'data.json'), json);
    const r = await ctl('import', path.join(dir, 'data.json'), '--drop', '--batch', '1000');
    assert.equal(r.code, 3, `exit 3 = imported with malformed records; stderr: ${r.stderr}`);
    assert.match(r.stderr, /malformed record 102 \(byte \d+\): phone must be an integer/);
    assert.match(r.stderr, /malformed record 203 \(byte \d+\): end_date is missing/);
    assert.match(r.stderr, /malformed record 304 \(byte \d+\): not a JSON object/);
    assert.match(r.stderr, /2501 records inserted .*, 3 malformed; index \{phone: 1\} created/);
    assert.deepEqual(await stored(), triples(good), 'the stored documents are the imported records');

    fs.writeFileSync(path.join(dir, 'data.ndjson'), '{"phone": 1, "start_date": 0, "end_date": 1000}\n\nnope\n{"phone": 2, "start_date": 0, "end_date": 2000}\n');
    const n = await ctl('import', path.join(dir, 'data.ndjson'), '--drop');
    assert.equal(n.code, 3, n.stderr);
    assert.match(n.stderr, /malformed record 2 \(line 3\): not valid JSON/);
    assert.deepEqual(await stored(), [[1n, 0n, 1000n], [2n, 0n, 2000n]]);

    fs.writeFileSync(path.join(dir, 'data.csv'), 'phone,start_date,end_date\n1,0,10000\n2,0,x\n3,5,6\n');
    const c = await ctl('import', path.join(dir, 'data.csv'), '--drop');
    assert.equal(c.code, 3, c.stderr);
    assert.match(c.stderr, /malformed record 2 \(line 3\)/);
    assert.deepEqual(await stored(), [[1n, 0n, 10000n], [3n, 5n, 6n]]);

    fs.writeFileSync(path.join(dir, 'clean.csv'), '7,0,1000\n');
    assert.equal((await ctl('import', path.join(dir, 'clean.csv'))).code, 0, 'no malformed records: exit 0');
    assert.deepEqual(await stored(), [[1n, 0n, 10000n], [3n, 5n, 6n], [7n, 0n, 1000n]], 'without --drop: added');
    fs.writeFileSync(path.join(dir, 'cut.json'), '[{"phone": 1, "start_date": 0, "end_date": 1}');
    const cut = await ctl('import', path.join(dir, 'cut.json'));
    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /not closed/);
});

test('--if-empty, and the compose stack\'s loader (docker/mongo-seed.sh): data.json loaded into an empty collection once, the data kept on every later run', async () => {
    const dir = h.tmpDir();
    const seedSh = path.join(__dirname, '..', '..', 'docker', 'mongo-seed.sh');
    const loader = (env = {}) => h.run('sh', [seedSh], {
        timeoutMs: 120000,
        env: Object.assign({}, process.env, { REPORTERCTL: h.env.reporterctl, REPORTERD_CONF: cfg,
            REPORTERD_IMPORT_DIR: dir }, env),
    });
    const first = Array.from({ length: 40 }, (_, i) => ({ phone: 700 + (i % 4), start_date: 1000 * i, end_date: 1000 * i + 7000 }));
    const second = [{ phone: 9, start_date: 0, end_date: 9000 }];
    await (await collection()).drop().catch(() => {});
    fs.writeFileSync(path.join(dir, 'data.json'), JSON.stringify(first));

    let r = await loader();
    assert.equal(r.code, 0, `the first up: ${r.stdout}${r.stderr}`);
    assert.deepEqual(await stored(), triples(first), 'the first up loads data.json');

    /* records written since, and a data.json changed: the next up keeps what the database holds */
    await (await collection()).insertOne({ phone: 5n, start_date: 0n, end_date: 5000n }, { ignoreUndefined: true });
    fs.writeFileSync(path.join(dir, 'data.json'), JSON.stringify(second));
    r = await loader();
    assert.equal(r.code, 0, `the second up: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /holds records already: nothing loaded \(--if-empty\)/);
    assert.deepEqual(await stored(), triples([...first, { phone: 5, start_date: 0, end_date: 5000 }]),
        'the second up kept the data');

    /* the explicit reload */
    r = await loader({ MONGO_SEED_DROP: '1' });
    assert.equal(r.code, 0, `MONGO_SEED_DROP=1: ${r.stdout}${r.stderr}`);
    assert.deepEqual(await stored(), triples(second), 'MONGO_SEED_DROP=1 loads data.json again');

    /* no data file: synthetic records, only into an empty collection */
    fs.unlinkSync(path.join(dir, 'data.json'));
    r = await loader({ REPORTERD_SEED_ARGS: '--phones 3 --records 4' });
    assert.equal(r.code, 0, `no data.json, records held: ${r.stdout}${r.stderr}`);
    assert.deepEqual(await stored(), triples(second), 'no data.json and records held: nothing seeded');
    await (await collection()).drop();
    r = await loader({ REPORTERD_SEED_ARGS: '--phones 3 --records 4' });
    assert.equal(r.code, 0, `no data.json, empty: ${r.stdout}${r.stderr}`);
    assert.equal((await stored()).length, 12, 'no data.json and empty: 3 x 4 synthetic records');

    for (const cmd of [['import', path.join(dir, 'x.json'), '--drop', '--if-empty'], ['seed', '--if-empty', '--drop']]) {
        const u = await ctl(...cmd);
        assert.equal(u.code, 64, `${cmd.join(' ')}: --drop with --if-empty is a usage error (${u.stderr})`);
    }
});

const rec = (p) => `{"phone": ${p}, "start_date": 0, "end_date": ${p * 1000}}`;
/* the document rec(p) stores */
const recDoc = (p) => [BigInt(p), 0n, BigInt(p * 1000)];

async function imp(name, content) {
    const file = path.join(ctx.dir, name);
    fs.writeFileSync(file, content);
    return ctl('import', file, '--drop');
}

test('import stops at an array whose commas do not separate records', async () => {
    for (const [name, text, why, at] of [
        ['double.json', `[${rec(1)},,${rec(2)}]`, "a ',' with no record before it", rec(1).length + 2],
        ['nums.json', '[1,,2]', "a ',' with no record before it", 3],
        ['lead.json', `[,${rec(1)}]`, "a ',' with no record before it", 1],
        ['trail.json', `[${rec(1)},]`, "a ',' before the ']'", rec(1).length + 2],
        ['missing.json', `[${rec(1)} ${rec(2)}]`, "no ',' between two records", rec(1).length + 2],
        ['brace.json', '[1}', "a '}' that closes nothing", 2],
    ]) {
        const r = await imp(name, text);
        assert.equal(r.code, 1, `${name}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`not a JSON array of records: ${why}, at byte ${at}\n`), `${name}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /index \{phone: 1\} created/, `${name}: not reported as done`);
    }
});

test('import refuses data after a record: trailing bytes behind a NUL, in NDJSON and CSV', async () => {
    const nd = await imp('trailing.ndjson', `${rec(1)}\0garbage\n${rec(2)} x\n${rec(3)}${rec(4)}\n${rec(5)}\n \0${rec(6)}\n`);
    assert.equal(nd.code, 3, nd.stderr);
    assert.match(nd.stderr, /malformed record 5 \(line 5\): not valid JSON/, 'a line starting with a NUL is not blank');
    assert.match(nd.stderr, new RegExp(`malformed record 1 \\(line 1\\): a NUL byte after the JSON value, at byte ${rec(1).length} of the record`));
    assert.match(nd.stderr, /malformed record 2 \(line 2\): not valid JSON/);
    assert.match(nd.stderr, /malformed record 3 \(line 3\): not valid JSON/);
    assert.match(nd.stderr, /1 records inserted .*, 4 malformed/);
    assert.deepEqual(await stored(), [recDoc(5)]);
    const csv = await imp('nul.csv', '1,0,1000\0,7\n2,0,2000\n');
    assert.equal(csv.code, 3, csv.stderr);
    assert.match(csv.stderr, /malformed record 1 \(line 1\): a NUL byte in the line/);
    assert.deepEqual(await stored(), [[2n, 0n, 2000n]]);
});

test('import range-checks integral doubles before converting them', async () => {
    const big = await imp('big.ndjson', '{"phone": 1, "start_date": 1e19, "end_date": 1}\n'
        + '{"phone": 2, "start_date": -1e300, "end_date": 1}\n{"phone": 3, "start_date": 0, "end_date": NaN}\n'
        + '{"phone": 4, "start_date": 4611686018427387904.0, "end_date": -9.2e18}\n');
    assert.equal(big.code, 3, big.stderr);
    assert.doesNotMatch(big.stderr, /runtime error/);
    assert.match(big.stderr, /malformed record 1 \(line 1\): start_date must be an integer/);
    assert.match(big.stderr, /malformed record 2 \(line 2\): start_date must be an integer/);
    assert.match(big.stderr, /malformed record 3 \(line 3\): end_date must be an integer/);
    const four = await (await collection()).findOne({ phone: 4 });
    assert.equal(BigInt(four.start_date.toString()), 4611686018427387904n, '2^62 as a double is exact');
    assert.equal(BigInt(four.end_date.toString()), -9200000000000000000n);
});

test('import skips a UTF-8 byte order mark, whatever the format', async () => {
    const bom = '\ufeff';
    for (const [name, text] of [['bom.json', `${bom}[${rec(11)}]`], ['bom.ndjson', `${bom}${rec(11)}\n`],
        ['bom.csv', `${bom}phone,start_date,end_date\n11,0,11000\n`], ['bom-space.json', `${bom}\n [${rec(11)}]`]]) {
        const r = await imp(name, text);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        assert.deepEqual(await stored(), [recDoc(11)], name);
    }
    const half = await imp('half-bom.csv', Buffer.from([0xef, 0xbb, 0x31, 0x2c, 0x30, 0x2c, 0x31, 0x0a]));
    assert.equal(half.code, 1, half.stderr);
    assert.match(half.stderr, /starts with a byte 0xEF that is not part of a UTF-8 byte order mark/);
});

test('import takes records of exactly 64 KiB and calls one byte more too long', async () => {
    const sized = (n) => {
        const head = '{"phone": 21, "start_date": 0, "end_date": 1000, "pad": "';
        const r = head + 'x'.repeat(n - head.length - 2) + '"}';
        assert.equal(r.length, n);
        return r;
    };
    const exact = await imp('exact.json', `[${sized(65536)},\n${rec(22)}]`);
    assert.equal(exact.code, 0, exact.stderr);
    assert.deepEqual(await stored(), [[21n, 0n, 1000n], recDoc(22)], 'the padding is not stored');
    const over = await imp('over.json', `[${sized(65537)},\n${rec(22)}]`);
    assert.equal(over.code, 3, over.stderr);
    assert.match(over.stderr, /malformed record 1 \(byte 1\): longer than 64 KiB/);
    assert.deepEqual(await stored(), [recDoc(22)]);
    const nd = await imp('sized.ndjson', `${sized(65536)}\n${sized(65537)}\n${rec(22)}\n`);
    assert.equal(nd.code, 3, nd.stderr);
    assert.match(nd.stderr, /malformed record 2 \(line 2\): longer than 64 KiB/);
    assert.deepEqual(await stored(), [[21n, 0n, 1000n], recDoc(22)]);
});
