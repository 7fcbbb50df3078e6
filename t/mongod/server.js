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
 * This file is the command line: one server (member.js), or a replica set
 * of them (replset.js).  It exports start() and commands for the fault
 * suite's preloader.
 */
'use strict';

const member = require('./member.js');

/* ------------------------------------------------------------------ */
/* options                                                            */
/* ------------------------------------------------------------------ */

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 0, verbose: !!process.env.MONGOD_TEST_VERBOSE, ttlMonitorSleepSecs: 60 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') o.port = Number(argv[++i]);
        else if (a.startsWith('--port=')) o.port = Number(a.slice(7));
        else if (a === '--host' || a === '--bind_ip') o.host = argv[++i];
        else if (a.startsWith('--host=')) o.host = a.slice(7);
        else if (a === '--verbose' || a === '-v') o.verbose = true;
        /* mongod's --setParameter NAME=VALUE; only the TTL monitor's period */
        else if (a === '--setParameter') {
            const m = /^ttlMonitorSleepSecs=(\d+)$/.exec(argv[++i] || '');
            if (!m) {
                process.stderr.write(`mongod-test: --setParameter: only ttlMonitorSleepSecs=N (seconds; 0: off) is known\n`);
                process.exit(2);
            }
            o.ttlMonitorSleepSecs = Number(m[1]);
        }
        /* replica-set mode: the options are t/mongod/replset.js's */
        else if (a === '--replset' || a === '--members' || a === '--lag-ms') (o.replset = o.replset || []).push(a, argv[++i]);
        else if (a === '--help' || a === '-h') {
            process.stdout.write('usage: node server.js --port PORT [--host 127.0.0.1] [--verbose]\n' +
                '       [--setParameter ttlMonitorSleepSecs=N] [--replset NAME [--members N] [--lag-ms MS]]\n' +
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

function start(opts) {
    if (opts.replset) return require('./replset.js').start(opts);      /* replica-set mode */
    return member.start(opts);
}

if (require.main === module) start(Object.assign(member.OPTS, parseArgs(process.argv.slice(2))));

module.exports = { start, commands: member.commands };
