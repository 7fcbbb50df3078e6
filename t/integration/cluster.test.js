/*
 * cluster.test.js -- reporterd past one broker node.
 *
 * 1. rabbitmq.host naming several nodes, on the test broker: a worker
 *    passes over a node that refuses connections; the log and /metrics
 *    name the node each worker uses.
 * 2. A real 3-node RabbitMQ cluster on loopback (t/lib/cluster.js) with
 *    quorum queues: 1,000 tasks published with confirms while the test
 *    stops, and starts again, the node each worker is connected to, then
 *    the node that leads the task queue.  Every task is answered at least
 *    once, none is lost, every result equals a brute-force count over the
 *    records; the failover time (a node's stop until every worker consumes
 *    from another one) is printed, p50 and max.  Skipped, saying why, only
 *    where a cluster cannot start.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness.js');
const { startCluster, ClusterUnavailable } = require('../lib/cluster.js');
const { RobustAmqp } = require('../fault/lib.js');

const SEED = Number(process.env.REPORTERD_TEST_SEED || (Date.now() % 1000000007));
const PHONES = Array.from({ length: 40 }, (_, i) => 7000 + i);
let ctx;
let records;

before(async () => {
    ctx = await h.setup({ prefix: 'rdcluster' });
    const rnd = h.prng(SEED);
    records = [];
    for (const p of PHONES) {
        for (let k = 0; k < 15; k++) {
            const st = 1684900000000 + Math.floor(rnd() * 86400000);
            records.push({ phone: p, start_date: st, end_date: st + 1000 * Math.floor(rnd() * 121) });
        }
    }
    await ctx.loadRecords(records);
});

after(() => h.cleanup());

/* worker -> "host:port" from reporterd_worker_broker_node, and how many
 * workers are connected (reporterd_worker_broker_connected 1) */
async function brokerNodes(base) {
    const m = await h.readMetrics(base);
    const nodes = new Map();
    let connected = 0;
    for (const [k, v] of m) {
        const n = /^reporterd_worker_broker_node\{worker="(\d+)",generation="\d+",node="([^"]+)"\}$/.exec(k);
        if (n && v === 1) nodes.set(Number(n[1]), n[2]);
        if (k.startsWith('reporterd_worker_broker_connected{') && v === 1) connected++;
    }
    return { nodes, connected };
}

test('rabbitmq.host names several nodes: a worker passes over one that refuses connections; the log and /metrics name the node each worker uses', async () => {
    const dead = await h.freePort();
    const port = await h.freePort();
    const base = `http://127.0.0.1:${port}`;
    const d = h.startDaemon(ctx.writeConfig({
        worker_processes: 2,
        rabbitmq: { host: [`127.0.0.1:${dead}`, '127.0.0.1:5672'], connect_timeout_ms: 1000 },
        status: { listen: `127.0.0.1:${port}` },
    }));
    await d.waitReady(2, 30000);
    assert.equal((d.log.match(/consuming from .*, broker 127\.0\.0\.1:5672$/gm) || []).length, 2,
        `both workers on the live node (log:\n${d.log.slice(-1500)})`);
    let seen;
    await h.waitFor(async () => (seen = await brokerNodes(base)).nodes.size === 2, 10000,
        () => `two workers in reporterd_worker_broker_node (${JSON.stringify([...(seen ? seen.nodes : [])])})`);
    assert.deepEqual([...seen.nodes.values()], ['127.0.0.1:5672', '127.0.0.1:5672']);
    await ctx.publishTask({ correlation_id: 1, phones: [PHONES[0], PHONES[1]] });
    const [r] = await ctx.collectResults(1, 30000);
    assert.equal(r.body.status, 'Complete', r.raw.slice(0, 300));
    h.assertReport(r.body.data, h.expectedReport(records, [PHONES[0], PHONES[1]]), 'the task');
    await d.shutdown('SIGQUIT', 20000);
});

test('a 3-node RabbitMQ cluster with quorum queues: 1,000 tasks while each worker\'s node, then the queue leader, stops and starts again; lost 0, wrong 0', { timeout: 900000 }, async (t) => {
    let cluster;
    try {
        cluster = await startCluster({ size: 3 });
    } catch (e) {
        if (e instanceof ClusterUnavailable) return t.skip(`a 3-node RabbitMQ cluster cannot start here: ${e.message}`);
        throw e;
    }
    const publisher = new RobustAmqp(cluster.urls, 'publisher');
    const collector = new RobustAmqp(cluster.urls, 'collector');
    let d = null;
    try {
        const port = await h.freePort();
        const base = `http://127.0.0.1:${port}`;
        const N = 1000;
        const rnd = h.prng(SEED + 1);
        d = h.startDaemon(ctx.writeConfig({
            worker_processes: 3,
            rabbitmq: { host: cluster.hosts, queue_type: 'quorum', connect_timeout_ms: 2000 },
            status: { listen: `127.0.0.1:${port}` },
        }));
        await d.waitReady(3, 60000);
        let state;
        await h.waitFor(async () => (state = await brokerNodes(base)).nodes.size === 3, 15000,
            () => `three workers in reporterd_worker_broker_node (${JSON.stringify([...(state ? state.nodes : [])])})`);
        const used = [...new Set(state.nodes.values())];
        assert.equal(used.length, 3, `the workers spread over the nodes: ${JSON.stringify([...state.nodes])}`);

        const results = new Map();          /* correlation_id -> [body] */
        let delivered = 0;
        await collector.consume(ctx.names.result_queue, (m) => {
            const body = JSON.parse(m.content.toString('utf8'));
            if (!results.has(body.correlation_id)) results.set(body.correlation_id, []);
            results.get(body.correlation_id).push(body);
            delivered++;
        });
        const tasks = [];
        for (let i = 1; i <= N; i++) {
            const phones = [];
            for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) phones.push(PHONES[Math.floor(rnd() * PHONES.length)]);
            tasks.push({ id: i, phones });
        }
        /* the publisher: with confirms, retried across nodes, paced so the faults fall mid-stream */
        const publishing = (async () => {
            for (const x of tasks) {
                await publisher.publish(ctx.names.task_queue, JSON.stringify({ correlation_id: x.id, phones: x.phones }),
                    { messageId: `cluster-${x.id}` });
                if (x.id % 50 === 0) await h.sleep(100);
            }
        })();

        /* the faults: each node a worker uses, then the queue's leader */
        const failovers = [];
        const answered = () => results.size;
        async function stopAndStart(i, why) {
            const name = cluster.hosts[i];
            const t0 = Date.now();
            await cluster.stopNode(i);
            await h.waitFor(async () => {
                const s = await brokerNodes(base).catch(() => null);
                return s && s.connected === 3 && s.nodes.size === 3 && ![...s.nodes.values()].includes(name);
            }, 120000, () => `every worker consuming from another node after ${name} (${why}) stopped`, 100);
            failovers.push(Date.now() - t0);
            await cluster.startNode(i);
        }
        let mark = 100;
        for (const node of used) {
            await h.waitFor(() => answered() >= mark, 120000, () => `${mark} tasks answered (${answered()})`, 50);
            await stopAndStart(cluster.hosts.indexOf(node), 'a worker\'s node');
            mark += 150;
        }
        await h.waitFor(() => answered() >= mark, 120000, () => `${mark} tasks answered (${answered()})`, 50);
        const leader = await cluster.queueLeader(ctx.names.task_queue);
        assert.ok(leader >= 0, 'the task queue has a leader');
        await stopAndStart(leader, 'the task queue\'s leader');

        await publishing;
        await h.waitFor(() => answered() === N, 300000,
            () => `all ${N} tasks answered (${answered()}; missing e.g. ${tasks.filter((x) => !results.has(x.id)).slice(0, 5).map((x) => x.id)})`, 100);
        let wrong = 0;
        let firstWrong = '';
        for (const x of tasks) {
            for (const body of results.get(x.id)) {
                try {
                    assert.equal(body.status, 'Complete', `task ${x.id}: ${JSON.stringify(body).slice(0, 300)}`);
                    h.assertReport(body.data, h.expectedReport(records, x.phones), `task ${x.id} (seed ${SEED})`);
                } catch (e) {
                    wrong++;
                    firstWrong = firstWrong || e.message;
                }
            }
        }
        const lost = tasks.filter((x) => !results.has(x.id)).length;
        assert.equal(lost, 0, 'lost');
        assert.equal(wrong, 0, `wrong results, the first: ${firstWrong}`);
        const sorted = [...failovers].sort((a, b) => a - b);
        console.log(`# cluster: ${N} tasks, ${delivered} results (${delivered - N} duplicates, at-least-once), lost ${lost}, ` +
            `wrong ${wrong}; failover over ${failovers.length} node stops: p50 ${sorted[Math.floor((sorted.length - 1) / 2)]} ms, ` +
            `max ${sorted[sorted.length - 1]} ms (a node's stop command until every worker consumes from another node)`);
        await d.shutdown('SIGQUIT', 30000);
        d = null;
    } finally {
        if (d) await d.shutdown('SIGTERM', 10000).catch(() => {});
        await publisher.close();
        await collector.close();
        await cluster.stop();
    }
});
