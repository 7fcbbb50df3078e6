/*
 * mongod-selftest.js -- what the self-test files of t/mongod
 * (t/integration/mongod-*.test.js) share: a database of their own on the
 * test server (or REPORTERD_TEST_MONGODB_URI), and the helpers that read
 * explain answers and numbers of every BSON type.
 */
'use strict';

const assert = require('node:assert/strict');
const { Decimal128 } = require('mongodb');
const h = require('./harness.js');

/* The server (started once per process by the harness), a client and a
 * database named after prefix. */
async function open(prefix) {
    const mongo = await h.startMongo();
    const names = h.uniqueNames(prefix);
    const client = await h.mongoClient(mongo.uri);
    return { mongo, client, db: client.db(names.database), names };
}

/* Drops the database open() named, then stops what the harness started. */
async function close(client, names) {
    try {
        if (client) await client.db(names.database).dropDatabase();
    } finally {
        await h.cleanup();
    }
}

/* totalDocsExamined where mongod 4.4 reports it: at the top of the answer for a
 * find, a count or a pipeline reduced to the query layer; under
 * stages[0].$cursor.executionStats for an aggregate with later stages. */
function docsExamined(ex) {
    const es = ex.executionStats ||
        (Array.isArray(ex.stages) && ex.stages[0].$cursor && ex.stages[0].$cursor.executionStats);
    assert.ok(es, `explain answer without executionStats: ${JSON.stringify(ex).slice(0, 400)}`);
    return Number(es.totalDocsExamined);
}

const D = (s) => Decimal128.fromString(s);

/* The numeric value of a number of any BSON type. */
const num = (v) => Number(v !== null && typeof v === 'object' ? v.toString() : v);

module.exports = { open, close, docsExamined, D, num };
