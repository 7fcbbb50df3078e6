/*
 * wire.js -- TEST-ONLY MongoDB server (see README.md): the wire protocol:
 * OP_MSG and OP_QUERY framing, OP_REPLY, BSON in and out, connections.
 */
'use strict';

const BSON = require('bson');
const {
    OPTS, log, OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG, MAX_MESSAGE, isPlainObject, plainCmd, DESER_RAW,
} = require('./values.js');
const { CLOSE_CONNECTION, runCommand, replyBuffer, replHooks } = require('./commands.js');

/* ------------------------------------------------------------------ */
/* wire protocol                                                      */
/* ------------------------------------------------------------------ */

let requestSeq = 0;

function header(len, responseTo, opCode) {
    const h = Buffer.alloc(16);
    h.writeInt32LE(len, 0);
    h.writeInt32LE(++requestSeq & 0x7fffffff, 4);
    h.writeInt32LE(responseTo, 8);
    h.writeInt32LE(opCode, 12);
    return h;
}

function sendMsg(conn, responseTo, body) {
    const len = 16 + 4 + 1 + body.length;
    const h = header(len, responseTo, OP_MSG);
    const fl = Buffer.alloc(5);     /* flagBits 0, section kind 0 */
    conn.sock.write(Buffer.concat([h, fl, body], len));
}

function sendReply(conn, responseTo, body) {
    const len = 16 + 20 + body.length;
    const h = header(len, responseTo, OP_REPLY);
    const r = Buffer.alloc(20);
    r.writeInt32LE(0, 0);           /* responseFlags */
    r.writeBigInt64LE(0n, 4);       /* cursorID */
    r.writeInt32LE(0, 12);          /* startingFrom */
    r.writeInt32LE(1, 16);          /* numberReturned */
    conn.sock.write(Buffer.concat([h, r, body], len));
}

function readCString(buf, pos) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new Error('unterminated cstring');
    return [buf.toString('utf8', pos, end), end + 1];
}

async function handleOpMsg(conn, f, requestID) {
    const flags = f.readUInt32LE(16);
    const checksum = (flags & 1) !== 0;
    const moreToCome = (flags & 2) !== 0;
    /* unknown required bits (2..15) must make the server fail the message */
    if (flags & 0xfffc) throw new Error(`unsupported OP_MSG flagBits 0x${flags.toString(16)}`);
    const end = f.length - (checksum ? 4 : 0);
    let pos = 20;
    let body = null;
    const seqs = {};
    while (pos < end) {
        const kind = f[pos++];
        if (kind === 0) {
            const len = f.readInt32LE(pos);
            if (body) throw new Error('OP_MSG with two kind-0 sections');
            body = f.subarray(pos, pos + len);
            pos += len;
        } else if (kind === 1) {
            const size = f.readInt32LE(pos);
            const secEnd = pos + size;
            let p = pos + 4;
            let ident;
            [ident, p] = readCString(f, p);
            const docs = [];
            while (p < secEnd) {
                const dl = f.readInt32LE(p);
                docs.push(f.subarray(p, p + dl));
                p += dl;
            }
            seqs[ident] = docs;
            pos = secEnd;
        } else {
            throw new Error(`unknown OP_MSG section kind ${kind}`);
        }
    }
    if (!body) throw new Error('OP_MSG without a body section');
    let reply;
    try {
        const cmd = plainCmd(BSON.deserialize(body, DESER_RAW));
        const dbName = cmd.$db;
        delete cmd.$db;
        reply = await runCommand(conn, dbName, cmd, seqs);
    } catch (e) {
        reply = { ok: 0, errmsg: `invalid BSON in command: ${e.message}`, code: 22, codeName: 'InvalidBSON' };
    }
    if (reply === CLOSE_CONNECTION) { conn.sock.destroy(); return; }
    if (moreToCome) return;
    /* replica-set mode (t/mongod/replset.js): an awaitable hello streams its answers */
    if (replHooks.exhaust && replHooks.exhaust(conn, requestID, reply)) return;
    sendMsg(conn, requestID, replyBuffer(reply));
}

async function handleOpQuery(conn, f, requestID) {
    let pos = 20;
    let ns;
    [ns, pos] = readCString(f, pos);
    pos += 8;      /* numberToSkip, numberToReturn */
    const qlen = f.readInt32LE(pos);
    let reply;
    if (!ns.endsWith('.$cmd')) {
        reply = { $err: 'OP_QUERY is only supported for commands by the test server', code: 5739101, ok: 0 };
    } else {
        try {
            let q = plainCmd(BSON.deserialize(f.subarray(pos, pos + qlen), DESER_RAW));
            if (isPlainObject(q.$query)) q = q.$query;
            else if (isPlainObject(q.query) && Object.keys(q)[0] === 'query') q = q.query;
            reply = await runCommand(conn, ns.slice(0, -5), q, {});
        } catch (e) {
            reply = { ok: 0, errmsg: `invalid BSON in command: ${e.message}`, code: 22, codeName: 'InvalidBSON' };
        }
    }
    if (reply === CLOSE_CONNECTION) { conn.sock.destroy(); return; }
    sendReply(conn, requestID, replyBuffer(reply));
}

async function handleFrame(conn, f) {
    const requestID = f.readInt32LE(4);
    const opCode = f.readInt32LE(12);
    if (replHooks.frame) replHooks.frame(conn, opCode, f);     /* replica-set mode: the message's flags */
    if (opCode === OP_MSG) return handleOpMsg(conn, f, requestID);
    if (opCode === OP_QUERY) return handleOpQuery(conn, f, requestID);
    if (opCode === OP_COMPRESSED) throw new Error('OP_COMPRESSED received but compression was not negotiated');
    throw new Error(`unsupported opCode ${opCode}`);
}

let connSeq = 0;
const sockets = new Set();

function onConnection(sock) {
    const conn = { id: ++connSeq, sock, remote: `${sock.remoteAddress}:${sock.remotePort}`, client: null };
    sockets.add(sock);
    sock.setNoDelay(true);
    if (OPTS.verbose) log(`conn${conn.id} accepted from ${conn.remote}`);
    let chunks = [];
    let total = 0;
    let need = -1;
    let queue = Promise.resolve();
    const fail = (e) => {
        log(`conn${conn.id} protocol error: ${e && e.message || e}; closing`);
        sock.destroy();
    };
    sock.on('data', (chunk) => {
        chunks.push(chunk);
        total += chunk.length;
        for (;;) {
            if (need < 0) {
                if (total < 4) break;
                if (chunks[0].length < 4) chunks = [Buffer.concat(chunks, total)];
                need = chunks[0].readInt32LE(0);
                if (need < 16 || need > MAX_MESSAGE) {
                    fail(new Error(`bad message length ${need}`));
                    return;
                }
            }
            if (total < need) break;
            const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
            const frame = all.subarray(0, need);
            const rest = all.subarray(need);
            chunks = rest.length ? [rest] : [];
            total = rest.length;
            need = -1;
            queue = queue.then(() => (sock.destroyed ? undefined : handleFrame(conn, frame))).catch(fail);
        }
    });
    sock.on('error', (e) => { if (OPTS.verbose) log(`conn${conn.id} socket error: ${e.message}`); });
    sock.on('close', () => {
        sockets.delete(sock);
        if (OPTS.verbose) log(`conn${conn.id} closed`);
    });
}

module.exports = { header, sockets, onConnection };
