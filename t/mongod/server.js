#!/usr/bin/env node
/*
 * server.js -- TEST-ONLY MongoDB wire-protocol server.  NOT A DATABASE.
 * Never point anything but reporterd's test suite and demos at it: no
 * persistence, no auth, no TLS, no transactions; everything lives in this
 * process's memory.  t/mongod/README.md says what it emulates, what it does
 * not, and how to run it:
 *
 *     node t/mongod/server.js --port 0 [--host 127.0.0.1] [--verbose]
 *     node t/mongod/server.js --replset NAME [--members N] [--lag-ms MS]
 *
 * This file is the entry point: the command line, listen, and the hooks
 * replica-set mode (replset.js) uses; it exports start() and commands.
 * The rest is in values.js, compare.js, query.js, update.js, storage.js,
 * read.js, commands.js and wire.js.
 */
'use strict';

const net = require('node:net');
const { OPTS, log, OP_QUERY, OP_MSG, CmdError, wrapDoc, serialize, codeName } = require('./values.js');
const { maxTimeExpired } = require('./query.js');
const { prepareDoc } = require('./update.js');
const { idKey, Collection, getDb, getColl } = require('./storage.js');
const { cursors, RawReply, setListenPort } = require('./read.js');
const { FAIL_POINTS, failPointFires, commands, CLOSE_CONNECTION, replyBuffer, replHooks } = require('./commands.js');
const { header, sockets, onConnection } = require('./wire.js');

/* ------------------------------------------------------------------ */
/* options                                                            */
/* ------------------------------------------------------------------ */

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 0, verbose: !!process.env.MONGOD_TEST_VERBOSE };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') o.port = Number(argv[++i]);
        else if (a.startsWith('--port=')) o.port = Number(a.slice(7));
        else if (a === '--host' || a === '--bind_ip') o.host = argv[++i];
        else if (a.startsWith('--host=')) o.host = a.slice(7);
        else if (a === '--verbose' || a === '-v') o.verbose = true;
        /* replica-set mode: the options are t/mongod/replset.js's */
        else if (a === '--replset' || a === '--members' || a === '--lag-ms') (o.replset = o.replset || []).push(a, argv[++i]);
        else if (a === '--help' || a === '-h') {
            process.stdout.write('usage: node server.js --port PORT [--host 127.0.0.1] [--verbose]\n' +
                'TEST-ONLY MongoDB wire-protocol server (see t/mongod/README.md).\n');
            process.exit(0);
        } else {
            process.stderr.write(`mongod-test: unknown argument: ${a}\n`);
            process.exit(2);
        }
    }
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
        process.stderr.write('mongod-test: --port must be 0..65535\n');
        process.exit(2);
    }
    return o;
}

let server = null;

function start(opts) {
    if (opts.replset) return require('./replset.js').start(opts);      /* replica-set mode */
    server = net.createServer(onConnection);
    server.on('error', (e) => {
        log(`listen error: ${e.message}`);
        process.exit(1);
    });
    server.listen({ host: opts.host, port: opts.port }, () => {
        const a = server.address();
        setListenPort(a.port);
        process.stdout.write(`listening ${a.address}:${a.port}\n`);
        log(`TEST-ONLY MongoDB wire-protocol server listening on ${a.address}:${a.port}`);
    });
    const stop = (sig) => {
        log(`${sig}: exiting`);
        server.close();
        for (const s of sockets) s.destroy();
        process.exit(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
}

/* What replset.js reaches into, on each member's own instance of these modules. */
const replsetInternals = () => ({
    OPTS, log, commands, onConnection, Collection, getColl, getDb, cursors, prepareDoc, wrapDoc, serialize,
    idKey, CmdError, codeName, FAIL_POINTS, failPointFires, maxTimeExpired, header, replyBuffer, RawReply,
    CLOSE_CONNECTION, OP_MSG, OP_QUERY, setListenPort,
});

if (require.main === module) start(Object.assign(OPTS, parseArgs(process.argv.slice(2))));

module.exports = { start, commands };
module.exports.replset = { hooks: replHooks, internals: replsetInternals };
