/*
 * cluster.js -- a RabbitMQ cluster of real rabbitmq-server nodes on
 * loopback, for tests: each node with its own node name, AMQP and
 * distribution ports (free ones), data and log directories under one
 * scratch directory, and the cluster's own Erlang cookie.
 *
 *   const c = await startCluster({ size: 3 });   // throws ClusterUnavailable with why
 *   c.nodes[i]          { name, port, up }
 *   c.urls              amqp://guest:guest@127.0.0.1:PORT of each node
 *   c.hosts             "127.0.0.1:PORT" of each node (rabbitmq.host entries)
 *   await c.stopNode(i) / c.startNode(i)
 *   await c.ctl(i, [...args])                     rabbitmqctl -n NODE args
 *   await c.queueLeader(queue)                    index of the node leading a quorum queue
 *   await c.stop()                                every node stopped, the directory removed
 *
 * Debian's /usr/sbin wrappers su to the rabbitmq user, who cannot write
 * the scratch directory; as root, the scripts in /usr/lib/rabbitmq/bin are
 * run directly (../shared facts: the CLI must not see the node's
 * RABBITMQ_DIST_PORT, a node registers with epmd a moment after -detached
 * returns, a join right after a first boot may need a retry).
 */
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness.js');

const BIN = '/usr/lib/rabbitmq/bin';

class ClusterUnavailable extends Error {}

function run(cmd, args, env, timeoutMs) {
    return h.run(cmd, args, { env, timeoutMs });
}

async function startCluster(opts = {}) {
    const size = opts.size || 3;
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
        throw new ClusterUnavailable('starting extra rabbitmq-server nodes needs root (the Debian wrappers su to the rabbitmq user)');
    }
    if (!fs.existsSync(path.join(BIN, 'rabbitmq-server'))) {
        throw new ClusterUnavailable(`${BIN}/rabbitmq-server is missing (Debian package rabbitmq-server)`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reporterd-cluster-'));
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, '.erlang.cookie'), `RDCLUSTER${process.pid}${Date.now()}`, { mode: 0o400 });
    fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
    const tag = `rd${process.pid % 100000}x${Math.floor(Math.random() * 1e6)}`;
    const nodes = [];
    for (let i = 0; i < size; i++) {
        const port = await h.freePort();
        let dist = await h.freePort();
        while (dist === port) dist = await h.freePort();
        const nd = path.join(dir, `n${i}`);
        fs.mkdirSync(nd);
        fs.writeFileSync(path.join(nd, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\n`);
        nodes.push({ name: `${tag}n${i}@localhost`, port, dist, dir: nd, up: false });
    }
    const base = Object.assign({}, process.env, { HOME: home });
    for (const k of Object.keys(base)) if (k.startsWith('RABBITMQ_')) delete base[k];
    const nodeEnv = (n) => Object.assign({}, base, {
        RABBITMQ_NODENAME: n.name,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(n.port),
        RABBITMQ_DIST_PORT: String(n.dist),
        RABBITMQ_MNESIA_BASE: path.join(n.dir, 'mnesia'),
        RABBITMQ_LOG_BASE: path.join(n.dir, 'log'),
        RABBITMQ_PID_FILE: path.join(n.dir, 'pid'),
        RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
        RABBITMQ_CONFIG_FILE: path.join(n.dir, 'rabbitmq.conf'),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    });
    const ctl = (i, args, timeoutMs = 60000) =>
        run(path.join(BIN, 'rabbitmqctl'), ['-n', nodes[i].name, ...args], base, timeoutMs);

    const logTail = (i) => {
        try {
            const f = path.join(nodes[i].dir, 'log', `${nodes[i].name}.log`);
            return fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n');
        } catch (_) {
            return '(no log)';
        }
    };

    async function startNode(i, timeoutMs = 120000) {
        const r = await run(path.join(BIN, 'rabbitmq-server'), ['-detached'], nodeEnv(nodes[i]), 60000);
        if (r.code !== 0) throw new ClusterUnavailable(`rabbitmq-server -detached for ${nodes[i].name}: ${r.stderr || r.stdout}`);
        const deadline = Date.now() + timeoutMs;
        let last = null;
        while (Date.now() < deadline) {
            last = await ctl(i, ['await_startup', '--timeout', '20'], 30000);
            if (last.code === 0) {
                nodes[i].up = true;
                return;
            }
            await h.sleep(500);         /* the node registers with epmd a moment later */
        }
        throw new ClusterUnavailable(`${nodes[i].name} did not start within ${timeoutMs} ms: ${last && (last.stderr || last.stdout).slice(0, 300)}\n${logTail(i)}`);
    }

    async function stopNode(i) {
        const r = await ctl(i, ['stop'], 120000);
        nodes[i].up = false;
        if (r.code !== 0) throw new Error(`rabbitmqctl stop ${nodes[i].name}: ${r.stderr || r.stdout}`);
    }

    async function stop() {
        for (let i = 0; i < nodes.length; i++) {
            await ctl(i, ['stop'], 60000).catch(() => {});
            try {           /* a node the CLI could not reach: by its pid file */
                const pid = Number(fs.readFileSync(path.join(nodes[i].dir, 'pid'), 'utf8'));
                if (pid > 0) process.kill(pid, 'SIGKILL');
            } catch (_) { /* gone */ }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }

    try {
        for (let i = 0; i < size; i++) await startNode(i);
        for (let i = 1; i < size; i++) {
            let r = null;
            for (let tries = 0; tries < 10; tries++) {
                r = await ctl(i, ['stop_app']);
                if (r.code === 0) r = await ctl(i, ['join_cluster', nodes[0].name]);
                if (r.code === 0) r = await ctl(i, ['start_app']);
                if (r.code === 0) break;
                await h.sleep(3000);    /* corrupt_or_missing_cluster_files after a first boot */
            }
            if (r.code !== 0) throw new ClusterUnavailable(`${nodes[i].name} could not join ${nodes[0].name}: ${(r.stderr || r.stdout).slice(0, 400)}`);
        }
        const st = await ctl(0, ['cluster_status', '--formatter', 'json']);
        const running = st.code === 0 ? JSON.parse(st.stdout).running_nodes : [];
        if (running.length !== size) throw new ClusterUnavailable(`cluster_status: running ${JSON.stringify(running)}`);
    } catch (e) {
        await stop();
        throw e instanceof ClusterUnavailable ? e : new ClusterUnavailable(e.message);
    }

    /* The node that leads a quorum queue: list_queues' leader column. */
    async function queueLeader(queue) {
        for (let i = 0; i < nodes.length; i++) {
            if (!nodes[i].up) continue;
            const r = await ctl(i, ['list_queues', 'name', 'leader', '--formatter', 'json'], 60000);
            if (r.code !== 0) continue;
            const q = JSON.parse(r.stdout).find((x) => x.name === queue);
            if (q) return nodes.findIndex((n) => n.name === q.leader);
        }
        return -1;
    }

    return {
        dir,
        nodes,
        urls: nodes.map((n) => `amqp://guest:guest@127.0.0.1:${n.port}`),
        hosts: nodes.map((n) => `127.0.0.1:${n.port}`),
        ctl,
        startNode,
        stopNode,
        queueLeader,
        stop,
    };
}

module.exports = { startCluster, ClusterUnavailable };
