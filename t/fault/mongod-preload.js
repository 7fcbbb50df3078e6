#!/usr/bin/env node
/*
 * mongod-preload.js -- run the TEST-ONLY MongoDB server (t/mongod/server.js)
 * with data loaded BEFORE it starts listening.
 *
 *     node t/fault/mongod-preload.js --server t/mongod/server.js \
 *          --port PORT [--host 127.0.0.1] --load FILE
 *
 * FILE is NDJSON: {"db": D, "coll": C, "doc": {...}} per document, in
 * canonical Extended JSON (so int32, int64 and dates keep their BSON
 * types), and optionally {"db": D, "coll": C, "index": {"phone": 1}}.
 *
 * Why: the test server keeps its data in memory.  The fault suite stops it
 * and starts it again on the same port; a reporterd worker reconnects as
 * soon as the port answers, so a server loaded through the wire protocol
 * after it listens would answer a few tasks from an empty collection
 * (zero counts, a wrong report).  Here the documents go through the
 * server's own insert and createIndexes commands, in this process, before
 * listen().  The server module is used as is (it exports start() and
 * commands); nothing in t/mongod/ is changed.
 *
 * Prints "listening HOST:PORT" like server.js once it accepts connections.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

function usage(msg) {
    process.stderr.write(`mongod-preload: ${msg}\nusage: node mongod-preload.js --server PATH --port PORT [--host H] --load FILE\n`);
    process.exit(2);
}

const o = { host: '127.0.0.1', port: 0, server: null, load: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--server') o.server = argv[++i];
    else if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--host') o.host = argv[++i];
    else if (a === '--load') o.load = argv[++i];
    else usage(`unknown argument ${a}`);
}
if (!o.server) usage('--server is required');
if (!o.load) usage('--load is required');
if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('--port must be 0..65535');

const serverPath = path.resolve(o.server);
/* bson as the server resolves it (its node_modules or NODE_PATH) */
const BSON = require('node:module').createRequire(serverPath)('bson');
const server = require(serverPath);

async function main() {
    const conn = { id: 0, remote: 'preload', sock: null, client: null };
    const batches = new Map();          /* "db\0coll" -> [Buffer] */
    const indexes = [];
    let n = 0;
    const flush = async (key) => {
        const docs = batches.get(key);
        if (!docs || !docs.length) return;
        const [db, coll] = key.split('\0');
        const r = await server.commands.insert({ insert: coll, __name: 'insert' },
            { conn, db, seqs: { documents: docs }, started: Date.now() });
        if (!r || r.ok !== 1 || r.writeErrors) throw new Error(`insert into ${db}.${coll} failed: ${JSON.stringify(r)}`);
        n += r.n;
        batches.set(key, []);
    };
    const rl = readline.createInterface({ input: fs.createReadStream(o.load), crlfDelay: Infinity });
    for await (const line of rl) {
        if (!line.trim()) continue;
        const e = BSON.EJSON.parse(line, { relaxed: false });
        if (typeof e.db !== 'string' || typeof e.coll !== 'string') throw new Error(`bad line (no db/coll): ${line.slice(0, 200)}`);
        if (e.index) {
            indexes.push(e);
            continue;
        }
        const key = `${e.db}\0${e.coll}`;
        if (!batches.has(key)) batches.set(key, []);
        batches.get(key).push(Buffer.from(BSON.serialize(e.doc)));
        if (batches.get(key).length >= 10000) await flush(key);
    }
    for (const key of batches.keys()) await flush(key);
    for (const e of indexes) {
        const key = {};
        for (const [k, v] of Object.entries(e.index)) key[k] = typeof v === 'object' && v !== null && 'value' in v ? Number(v.value) : v;
        const name = Object.entries(key).map(([k, v]) => `${k}_${v}`).join('_');
        const r = await server.commands.createIndexes({ createIndexes: e.coll, indexes: [{ key, name }], __name: 'createIndexes' },
            { conn, db: e.db, seqs: {}, started: Date.now() });
        if (!r || r.ok !== 1) throw new Error(`createIndexes on ${e.db}.${e.coll} failed: ${JSON.stringify(r)}`);
    }
    process.stderr.write(`mongod-preload[${process.pid}] loaded ${n} documents, ${indexes.length} index(es) from ${o.load}\n`);
    server.start({ host: o.host, port: o.port, verbose: false });
}

main().catch((e) => {
    process.stderr.write(`mongod-preload: ${e && e.stack || e}\n`);
    process.exit(1);
});
