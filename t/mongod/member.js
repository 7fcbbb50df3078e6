/*
 * member.js -- one TEST-ONLY MongoDB server (NOT A DATABASE): listen and
 * serve on one port, with this instance's databases, cursors and fail
 * points.  server.js (the command line) starts one; replset.js loads a
 * fresh instance of it and of the modules it uses per member.  What it
 * emulates is in t/mongod/README.md; the rest is in values.js,
 * compare.js, query.js, update.js, storage.js, read.js, commands.js and
 * wire.js.
 */
'use strict';

const net = require('node:net');
const { OPTS, log, OP_QUERY, OP_MSG, CmdError, wrapDoc, serialize, codeName } = require('./values.js');
const { maxTimeExpired } = require('./query.js');
const { prepareDoc } = require('./update.js');
const { idKey, Collection, getDb, getColl } = require('./storage.js');
const { cursors, RawReply, setListenPort } = require('./read.js');
const { FAIL_POINTS, failPointFires, commands, CLOSE_CONNECTION, runCommand, replyBuffer, replHooks } = require('./commands.js');
const { startTtlMonitor } = require('./ttl.js');
const { header, sockets, onConnection } = require('./wire.js');

let server = null;

function start(opts) {
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
    startTtlMonitor(OPTS.ttlMonitorSleepSecs, runCommand);
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
    startTtlMonitor: (secs) => startTtlMonitor(secs, runCommand),
});

module.exports = { start, commands, OPTS };
module.exports.replset = { hooks: replHooks, internals: replsetInternals };
