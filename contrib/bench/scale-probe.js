#!/usr/bin/env node
/*
 * scale-probe.js -- the database and broker look-ups contrib/bench/scale.sh
 * needs and reporterctl does not offer: the server's running count of
 * documents examined, the size of a set of phones' tail, and removing the
 * benchmark's own queues.  Needs the npm packages of t/package.json
 * (mongodb, amqplib): NODE_PATH=build/t/node_modules.
 *
 *   scale-probe.js scanned URI
 *       serverStatus metrics.queryExecutor.scannedObjects: documents the
 *       server has examined since it started (mongod and the test server).
 *   scale-probe.js tail URI DB COLL ROLLUP_COLL PHONE,PHONE,...
 *       records of those phones not marked by any fold (FIELD missing),
 *       and all their records: "TAIL TOTAL".
 *   scale-probe.js explain-live URI DB COLL PHONE,PHONE,...
 *       executionStats.totalDocsExamined of a find of those phones' records
 *       (what live mode's first stage, a $match on the phones, must read),
 *       the figure a real mongod reports; a cross-check of the counters.
 *   scale-probe.js delete-queues AMQP_URL QUEUE...
 *   scale-probe.js metrics URL NAME...
 *       the values of unlabelled series NAME on reporterd's /metrics at
 *       URL (http://127.0.0.1:PORT), one line, 0 for a series not there.
 */
'use strict';

const [cmd, ...args] = process.argv.slice(2);

function phones(list) {
    return list.split(',').map((p) => BigInt(p)).map((p) => require('bson').Long.fromBigInt(p));
}

async function withMongo(uri, fn) {
    const { MongoClient } = require('mongodb');
    const c = new MongoClient(uri, { serverSelectionTimeoutMS: 10000, directConnection: true });
    await c.connect();
    try {
        return await fn(c);
    } finally {
        await c.close();
    }
}

async function main() {
    switch (cmd) {
    case 'scanned': {
        const [uri] = args;
        const s = await withMongo(uri, (c) => c.db('admin').command({ serverStatus: 1 }));
        const v = s.metrics && s.metrics.queryExecutor && s.metrics.queryExecutor.scannedObjects;
        if (v === undefined)
            throw new Error('serverStatus has no metrics.queryExecutor.scannedObjects');
        console.log(String(v));
        break;
    }
    case 'tail': {
        const [uri, db, coll, rollup, list] = args;
        const ph = phones(list);
        const [tail, total] = await withMongo(uri, async (c) => {
            const col = c.db(db).collection(coll);
            /* the mark field is rb_<epoch>, the epoch in <rollup>_batches */
            const epoch = await c.db(db).collection(`${rollup}_batches`).findOne({ _id: 'epoch' });
            const field = epoch ? `rb_${epoch.e}` : 'rb_none';
            return [await col.countDocuments({ phone: { $in: ph }, [field]: { $exists: false } }),
                await col.countDocuments({ phone: { $in: ph } })];
        });
        console.log(`${tail} ${total}`);
        break;
    }
    case 'explain-live': {
        const [uri, db, coll, list] = args;
        const e = await withMongo(uri, (c) => c.db(db).command({
            explain: { find: coll, filter: { phone: { $in: phones(list) } } },
            verbosity: 'executionStats',
        }));
        console.log(String(e.executionStats.totalDocsExamined));
        break;
    }
    case 'delete-queues': {
        const [url, ...queues] = args;
        const conn = await require('amqplib').connect(url);
        const ch = await conn.createChannel();
        for (const q of queues)
            await ch.deleteQueue(q);
        await conn.close();
        break;
    }
    case 'metrics': {
        const [url, ...names] = args;
        const res = await fetch(`${url}/metrics`);
        if (!res.ok) throw new Error(`${url}/metrics: HTTP ${res.status}`);
        const seen = new Map();
        for (const line of (await res.text()).split('\n')) {
            const m = /^([a-z_]+) (\S+)$/.exec(line);
            if (m) seen.set(m[1], Number(m[2]));
        }
        console.log(names.map((n) => seen.get(n) || 0).join(' '));
        break;
    }
    default:
        throw new Error(`unknown command ${cmd || '(none)'}; see the header of this file`);
    }
}

main().catch((e) => {
    process.stderr.write(`scale-probe: ${e.message}\n`);
    process.exit(1);
});
