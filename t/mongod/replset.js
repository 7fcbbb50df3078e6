/*
 * replset.js -- replica-set mode of the TEST-ONLY MongoDB wire-protocol
 * server (t/mongod/server.js).  NOT A DATABASE AND NOT REAL REPLICATION:
 * one process holds every member's data in memory; what crosses between
 * members is this file's simulation of an oplog.
 *
 * Why it exists: reporterd reads with the read preference of its
 * mongodb.uri and rollup mode writes; whether mongo-c-driver sends a read
 * to a lagging secondary, what a step-down does to a fold in flight, what
 * w: "majority" costs, can only be tested against a replica set.  Every
 * test written against this mode must also pass against a real replica
 * set (REPORTERD_TEST_MONGODB_URI naming one; see t/lib/harness.js), except
 * what needs lag on demand, which a real one cannot give (those tests say
 * so and skip).
 *
 * Usage:
 *     node t/mongod/server.js --replset NAME [--members N] [--lag-ms MS]
 *                             [--port P] [--host 127.0.0.1] [--verbose]
 *
 *   N members (default 2), each listening on its own port of HOST: P, P+1...
 *   (--port 0, the default: ephemeral ports).  Prints exactly one line on
 *   stdout once every member accepts connections:
 *       listening replset NAME HOST:P1,HOST:P2
 *   and the set's URI is mongodb://HOST:P1,HOST:P2/?replicaSet=NAME.
 *   Member 0 starts as the primary (term 1); the others are secondaries
 *   that apply the primary's writes MS milliseconds after they were made.
 *
 * Each member is a fresh instance of member.js (its own databases,
 * cursors, fail points and counters), wired through the hooks at the end
 * of member.js.  A member behaves as a mongod 4.4 member would:
 *
 *   hello / isMaster: setName, setVersion (1: there is no reconfig), hosts
 *     (every member, "HOST:PORT"), me, primary (while one is writable),
 *     isWritablePrimary / ismaster and secondary, electionId on the
 *     primary (ObjectId 7fffffff + the term, as mongod's OID::fromTerm),
 *     lastWrite (opTime, lastWriteDate, majorityOpTime, majorityWriteDate)
 *     and topologyVersion {processId (per member), counter}.  An awaitable
 *     hello (topologyVersion + maxAwaitTimeMS) waits for a change of the
 *     member's topologyVersion or maxAwaitTimeMS; sent with exhaustAllowed
 *     (the Node driver's streaming monitor) it is answered with moreToCome
 *     and a new answer at each change or timeout, as long as the
 *     connection stays open.  The counter moves on every member at every
 *     change of roles (step-down attempt, step-down, election).
 *
 *   Roles (mongod's command dispatch): on a member that is not a writable
 *     primary, a write (insert, update, delete, findAndModify,
 *     createIndexes, drop, dropDatabase, collMod, create) fails with 10107
 *     NotWritablePrimary "not primary"; a read (find, aggregate, count,
 *     explain, listIndexes) fails with 13435 NotPrimaryNoSecondaryOk "not
 *     primary and secondaryOk=false" unless the OP_MSG carries a
 *     $readPreference whose mode is not "primary" (OP_QUERY: the
 *     SecondaryOk flag).  Clients that never said hello / helloOk get
 *     mongod's older texts "not master" / "not master and slaveOk=false".
 *     These errors carry topologyVersion, and a retryable write's
 *     (txnNumber, no autocommit) the label RetryableWriteError.  Other
 *     commands (getMore, killCursors, ping, hello, buildInfo,
 *     serverStatus, endSessions, configureFailPoint) run on any member; a
 *     cursor keeps working after its member changed role.  An
 *     unacknowledged write (moreToCome) on a non-primary closes the
 *     connection, as mongod 4.2+ does; nothing else closes connections on
 *     a step-down.  The "local" database is writable everywhere.
 *
 *   Replication: each write command on the primary becomes one oplog
 *     entry (sequence number, wall time, Timestamp, term) holding the
 *     resulting state of every document it inserted or changed (its BSON,
 *     with the numeric types the primary would return), the _id of every
 *     document it removed, the collections it created and, for
 *     createIndexes, drop, dropDatabase, collMod and create, the command itself.
 *     A secondary applies the entries in order, each when its wall time +
 *     the member's lag has come; reads there (find, aggregate, count...)
 *     see only what it applied.  The lag is per member and changes at run
 *     time (replSetTestSetLag); a shorter lag applies what became due at
 *     once.
 *
 *   Write concern: w: 1 (the default, as in 4.4) answers at once; w: N
 *     and w: "majority" (floor(N/2) + 1 members) wait until that many
 *     members applied the command's entry (a command that wrote nothing
 *     waits for the newest entry, as mongod waits for the client's last
 *     op).  The write is never undone; a failed wait adds writeConcernError
 *     to the ok: 1 answer: 64 WriteConcernFailed "waiting for replication
 *     timed out" with errInfo {wtimeout: true, writeConcern} after
 *     wtimeout ms, 50 MaxTimeMSExpired at the command's maxTimeMS, 189
 *     PrimarySteppedDown "Primary stepped down while waiting for
 *     replication" at a step-down, 100 UnsatisfiableWriteConcern "Not
 *     enough data-bearing nodes" for w above the member count, 79
 *     UnknownReplWriteConcern for a tag set.  j and fsync are ignored.
 *
 *   Retryable writes: the answer of the latest txnNumber of each session
 *     (lsid) is kept with its entry; the same txnNumber again, on a member
 *     that applied that entry, gets the same answer without running the
 *     write again (after waiting for its write concern); an older one
 *     fails with 225 TransactionTooOld.
 *
 *   Read concern: "local" and "available" read the member's data;
 *     "majority" reads the majority-committed data: the commit point is
 *     the entry a majority of members applied, and the read runs on the
 *     data of a member that applied exactly that much (the member itself
 *     when it has not applied more; its cursor is then handed over to the
 *     member that was asked).  "linearizable" does the same on the
 *     primary after waiting until everything written is majority-committed
 *     (elsewhere 10107); "snapshot" fails with 72 InvalidOptions, as in
 *     4.4 outside a transaction.  afterClusterTime is ignored: no
 *     $clusterTime or operationTime is ever sent.
 *
 *   Step-down: replSetStepDown (admin; secs, default 60,
 *     secondaryCatchUpPeriodSecs, default 10 or 0 with force, force), as
 *     mongod 4.4: the primary stops being writable at once (hello says
 *     secondary; new writes get 10107, reads without secondaryOk 13435),
 *     a write held by a hangWithLockDuringBatch* fail point is interrupted
 *     with 11602 InterruptedDueToReplStateChange "operation was
 *     interrupted" (and not applied), then it waits up to the catch-up
 *     period for an electable secondary (one not frozen) to have applied
 *     everything.  None: 262 ExceededTimeLimit, and it is primary again;
 *     unless force, which steps down anyway.  Then it becomes a secondary,
 *     frozen (not electable) for secs, its write-concern waits end with
 *     189, and the most up-to-date electable secondary is elected: it
 *     first applies whatever it lacks (4.4's catch-up phase), then becomes
 *     primary with term + 1 (a new electionId).  If no member is electable,
 *     there is no primary until the first freeze ends.  The old primary
 *     applies the new primary's writes with its own lag.  replSetFreeze
 *     (secs; 0 unfreezes) on a secondary; replSetGetStatus answers set,
 *     myState, term and members[] {_id, name, health, state, stateStr,
 *     optime, optimeDate, self}.
 *
 *   Fail points added to configureFailPoint: hangWithLockDuringBatchInsert,
 *     hangWithLockDuringBatchUpdate, hangWithLockDuringBatchRemove hold an
 *     insert / update / delete on the primary, before it writes, while
 *     they are on (mongod: after taking its locks); a step-down interrupts
 *     it (11602), maxTimeMS too (50).
 *
 * Test-only admin commands (any member; no real server has them):
 *   {replSetTestSetLag: MS [, host: "HOST:PORT"]}  the lag of that member,
 *       or of every member; answers {lagMs, ok}
 *   {replSetTestStepDown: 1 [, secondaryCatchUpPeriodSecs: 10]
 *       [, stepDownSecs: 0] [, force: false]}  steps down whichever member
 *       is primary, as replSetStepDown, frozen for stepDownSecs (default 0:
 *       roles can swap back at once); answers {stepped, primary, term, ok}
 *
 * Known deviations from a real replica set: no elections other than after
 * a step-down (no heartbeats, no failure detection: a member never goes
 * away), no rollback (entries are never lost: a forced step-down's
 * successor catches up first), no arbiters, priorities, tags, hidden or
 * delayed members, no reconfig, no initial sync, no oplog collection
 * (local.oplog.rs), no $clusterTime / operationTime / causal consistency,
 * no readConcern afterClusterTime, no writeConcern provenance other than
 * clientSupplied; an oplog entry is a whole command, so a secondary never
 * shows half of an insertMany batch; during a step-down's catch-up a
 * read runs or fails (13435) at once, never waits (mongod's lock on the
 * replication state is not modelled); 4.4 named the codes
 * 10107 / 13435 NotMaster / NotMasterNoSlaveOk, this server uses the later
 * names NotWritablePrimary / NotPrimaryNoSecondaryOk (drivers go by code).
 */
'use strict';

const net = require('node:net');
const path = require('node:path');
const { Long, ObjectId, Timestamp } = require('bson');
const BSONlib = require('bson');
const { ChangeStreams } = require('./changestream.js');

const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify', 'createIndexes', 'dropIndexes', 'drop',
    'dropDatabase', 'collMod', 'create']);
const READS = new Set(['find', 'aggregate', 'count', 'explain', 'listIndexes', 'listCollections']);
const DDL = new Set(['createIndexes', 'dropIndexes', 'drop', 'dropDatabase', 'collMod', 'create']);
const RETRYABLE_WRITES = new Set(['insert', 'update', 'delete', 'findAndModify']);
const HELLO = new Set(['hello', 'isMaster', 'ismaster']);
/* mongod's RetriableError, NotPrimaryError and ShutdownError codes */
const RETRYABLE_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
const HANG_FAIL_POINTS = {
    insert: 'hangWithLockDuringBatchInsert',
    update: 'hangWithLockDuringBatchUpdate',
    delete: 'hangWithLockDuringBatchRemove',
};
const OP_MSG_MORE_TO_COME = 2;
const OP_MSG_EXHAUST_ALLOWED = 1 << 16;
const OP_QUERY_SECONDARY_OK = 4;
const MAX_TIMER_MS = 2147483647;
const STREAM = Symbol('helloStream');

/* ------------------------------------------------------------------ */
/* options                                                            */
/* ------------------------------------------------------------------ */

function fail(msg) {
    process.stderr.write(`mongod-test: ${msg}\n`);
    process.exit(2);
}

/* opts.replset: ["--replset", NAME, "--members", N, "--lag-ms", MS] as
 * server.js's parseArgs collected them. */
function parseOptions(opts) {
    const o = { name: null, members: 2, lagMs: 0 };
    const a = opts.replset;
    for (let i = 0; i < a.length; i += 2) {
        const v = a[i + 1];
        if (v === undefined) fail(`${a[i]} needs a value`);
        if (a[i] === '--replset') o.name = v;
        else if (a[i] === '--members') o.members = Number(v);
        else o.lagMs = Number(v);
    }
    if (!o.name || !/^[A-Za-z0-9_-]+$/.test(o.name)) fail('--replset needs a set name (letters, digits, _ and -)');
    if (!Number.isInteger(o.members) || o.members < 1 || o.members > 7) fail('--members must be 1..7');
    if (!Number.isFinite(o.lagMs) || o.lagMs < 0) fail('--lag-ms must be a number >= 0');
    if (!Number.isInteger(opts.port) || (opts.port !== 0 && opts.port + o.members - 1 > 65535)) fail('--port out of range');
    return o;
}

/* A fresh instance of member.js and the modules it loads from this
 * directory: its own databases, cursors, fail points, Collection class. */
function loadMember() {
    const own = (k) => path.dirname(k) === __dirname && k !== __filename;
    const saved = new Map(Object.entries(require.cache).filter(([k]) => own(k)));
    for (const k of saved.keys()) delete require.cache[k];
    try {
        return require('./member.js');
    } finally {
        for (const k of Object.keys(require.cache)) if (own(k)) delete require.cache[k];
        for (const [k, m] of saved) require.cache[k] = m;
    }
}

const cmdError = (lib, code, errmsg, codeNameOverride) =>
    new lib.CmdError(code, codeNameOverride || lib.codeName(code), errmsg);

/* ------------------------------------------------------------------ */
/* members                                                            */
/* ------------------------------------------------------------------ */

class Member {
    constructor(idx, lagMs) {
        this.idx = idx;
        this.inst = loadMember();
        this.lib = this.inst.replset.internals();
        this.host = null;
        this.state = 'SECONDARY';
        this.steppingDown = false;
        this.applied = 0;               /* sequence number of the last entry applied */
        this.lastWrite = null;          /* that entry */
        this.lagMs = lagMs;
        this.frozenUntil = 0;
        this.processId = new ObjectId();
        this.tvCounter = 0;
        this.topologyWaiters = new Set();
        this.pending = null;            /* operations of the write command running, on the primary */
        this.inMany = false;
        this.timer = null;
        this.timerDue = 0;
    }
    get writable() { return this.state === 'PRIMARY' && !this.steppingDown; }
    topologyVersion() { return { processId: this.processId, counter: Long.fromNumber(this.tvCounter) }; }
    bump() {
        this.tvCounter++;
        const ws = [...this.topologyWaiters];
        this.topologyWaiters.clear();
        for (const w of ws) w();
    }
}

/* "replace" when every statement of an update (or a findAndModify) is a
 * replacement document, else "update": the operationType of its change
 * events (changestream.js). */
function updateKind(name, cmd, ctx) {
    const isReplacement = (u) => u && typeof u === 'object' && !Array.isArray(u) && !(u instanceof Buffer)
        && Object.keys(u).length > 0 && Object.keys(u).every((k) => !k.startsWith('$'));
    if (name === 'findAndModify') return isReplacement(cmd.update) ? 'replace' : 'update';
    if (name !== 'update') return 'update';
    let list = Array.isArray(cmd.updates) ? cmd.updates : [];
    if (ctx.seqs && Array.isArray(ctx.seqs.updates)) list = list.concat(ctx.seqs.updates);
    const plain = list.map((s) => (s instanceof Buffer || s instanceof Uint8Array ? BSONlib.deserialize(s) : s));
    return plain.length && plain.every((s) => isReplacement(s.u)) ? 'replace' : 'update';
}

/* Record, on the member running a write command, what it does to its
 * collections: the methods of storage.js's Collection every write goes
 * through.  Secondaries apply with the same methods, unrecorded. */
function recordWrites(m) {
    const C = m.lib.Collection.prototype;
    const { insertOne, removeDocs, modify, modifyMany } = C;
    /* the document before the write, for change streams' update
     * descriptions and pre-images (changestream.js) */
    const image = (coll, d) => m.lib.serialize(m.lib.wrapDoc(d, coll.schema));
    const images = (coll) => !!coll.preAndPostImages;
    C.insertOne = function recordedInsertOne(doc) {
        const err = insertOne.call(this, doc);
        if (!err && m.pending) m.pending.push({ op: 'i', coll: this, doc });
        return err;
    };
    C.removeDocs = function recordedRemoveDocs(dead) {
        if (m.pending) {
            for (const d of dead) m.pending.push({ op: 'd', coll: this, id: d._id, pre: image(this, d), images: images(this) });
        }
        return removeDocs.call(this, dead);
    };
    C.modify = function recordedModify(doc, fn) {
        const pre = m.pending && !m.inMany ? image(this, doc) : null;
        const r = modify.call(this, doc, fn);
        if (m.pending && !m.inMany) m.pending.push({ op: 'u', coll: this, doc, pre, images: images(this), kind: m.updateKind });
        return r;
    };
    C.modifyMany = function recordedModifyMany(docs, u, arrayFilters) {
        const outer = m.inMany;
        const pres = m.pending && !outer ? docs.map((d) => image(this, d)) : null;
        m.inMany = true;
        try {
            return modifyMany.call(this, docs, u, arrayFilters);
        } finally {
            m.inMany = outer;
            if (m.pending && !outer) {
                docs.forEach((d, i) => m.pending.push({ op: 'u', coll: this, doc: d, pre: pres[i], images: images(this),
                    kind: m.updateKind }));
            }
        }
    };
}

/* ------------------------------------------------------------------ */
/* the set                                                            */
/* ------------------------------------------------------------------ */

class ReplSet {
    constructor(o, verbose) {
        this.name = o.name;
        this.verbose = verbose;
        this.term = 1;
        this.setVersion = 1;
        this.oplog = [];                /* entries not yet applied by every member */
        this.base = 0;                  /* sequence number before oplog[0] */
        this.lastSeq = 0;
        this.lastEntry = null;
        this.txns = new Map();          /* lsid -> {number, seq, reply} */
        this.waiters = new Set();       /* write concern and catch-up waits */
        this.electionTimer = null;
        this.streams = new ChangeStreams(this);
        this.members = [];
        for (let i = 0; i < o.members; i++) this.members.push(new Member(i, o.lagMs));
        this.majority = Math.floor(o.members / 2) + 1;
        this.log = this.members[0].lib.log;
        for (const m of this.members) this.wire(m);
    }

    primary() { return this.members.find((x) => x.state === 'PRIMARY') || null; }
    writablePrimary() { return this.members.find((x) => x.writable) || null; }
    member(host) { return this.members.find((x) => x.host === host) || null; }

    wire(m) {
        m.lib.OPTS.verbose = this.verbose;
        recordWrites(m);
        for (const fp of Object.values(HANG_FAIL_POINTS)) {
            m.lib.FAIL_POINTS.set(fp, { mode: 'off', n: 0, p: 0, data: {}, entered: 0 });
        }
        const hooks = m.inst.replset.hooks;
        hooks.command = (fn, name, cmd, ctx) => this.command(m, fn, name, cmd, ctx);
        hooks.frame = (conn, opCode, f) => {
            const flags = f.readUInt32LE(16);
            conn.rsMoreToCome = opCode === m.lib.OP_MSG && (flags & OP_MSG_MORE_TO_COME) !== 0;
            conn.rsExhaustAllowed = opCode === m.lib.OP_MSG && (flags & OP_MSG_EXHAUST_ALLOWED) !== 0;
            conn.rsSecondaryOkFlag = opCode === m.lib.OP_QUERY && (flags & OP_QUERY_SECONDARY_OK) !== 0;
        };
        hooks.exhaust = (conn, requestID, reply) => this.exhaust(m, conn, requestID, reply);
        const c = m.lib.commands;
        c.replSetStepDown = (cmd, ctx) => this.replSetStepDown(m, cmd, ctx);
        c.replSetFreeze = (cmd, ctx) => this.replSetFreeze(m, cmd, ctx);
        c.replSetGetStatus = (cmd, ctx) => this.replSetGetStatus(m, cmd, ctx);
        c.replSetTestSetLag = (cmd, ctx) => this.replSetTestSetLag(m, cmd, ctx);
        c.replSetTestStepDown = (cmd, ctx) => this.replSetTestStepDown(m, cmd, ctx);
    }

    /* ---- the oplog ---- */

    entryAfter(seq) {
        const i = seq - this.base;
        return i >= 0 && i < this.oplog.length ? this.oplog[i] : null;
    }

    /* The operations a write command recorded become one entry. */
    commit(m, ops) {
        const wall = Math.max(Date.now(), this.lastEntry ? this.lastEntry.wall : 0);
        const secs = Math.floor(wall / 1000);
        const prev = this.lastEntry;
        const inc = prev && prev.secs === secs ? prev.inc + 1 : 1;
        const entry = {
            seq: ++this.lastSeq, wall, secs, inc, term: this.term,
            ops: ops.map((o) => {
                if (o.op === 'i' || o.op === 'u') {
                    return { op: o.op, db: o.coll.db.name, coll: o.coll.name, id: o.doc._id,
                        raw: m.lib.serialize(m.lib.wrapDoc(o.doc, o.coll.schema)), pre: o.pre, images: o.images, kind: o.kind };
                }
                if (o.op === 'd') return { op: 'd', db: o.coll.db.name, coll: o.coll.name, id: o.id, pre: o.pre, images: o.images };
                return o;
            }),
        };
        this.oplog.push(entry);
        this.streams.record(entry, entry.ops);
        this.lastEntry = entry;
        m.applied = entry.seq;
        m.lastWrite = entry;
        for (const x of this.members) if (x !== m) this.schedule(x);
        this.notify();
        return entry.seq;
    }

    /* Apply one entry to a member's data, with the server's own methods. */
    apply(m, entry) {
        const lib = m.lib;
        let dead = null;
        const flush = () => {
            if (dead) dead.coll.removeDocs(dead.docs);
            dead = null;
        };
        for (const o of entry.ops) {
            try {
                if (o.op !== 'd') flush();
                switch (o.op) {
                case 'create':
                    lib.getColl(o.db, o.coll, true);
                    break;
                case 'i': {
                    const c = lib.getColl(o.db, o.coll, true);
                    const err = c.insertOne(lib.prepareDoc(o.raw, c));
                    if (err) this.log(`${m.host}: replication: insert into ${o.db}.${o.coll} failed: ${err.errmsg}`);
                    break;
                }
                case 'u': {
                    const c = lib.getColl(o.db, o.coll, true);
                    const now = lib.prepareDoc(o.raw, c);
                    const d = c.ids.get(lib.idKey(o.id));
                    if (!d) {
                        c.insertOne(now);
                    } else {
                        c.modify(d, (x) => {
                            for (const k of Object.keys(x)) delete x[k];
                            Object.assign(x, now);
                            return true;
                        });
                    }
                    break;
                }
                case 'd': {
                    const c = lib.getColl(o.db, o.coll, false);
                    const d = c && c.ids.get(lib.idKey(o.id));
                    if (!d) break;
                    if (dead && dead.coll !== c) flush();
                    if (!dead) dead = { coll: c, docs: new Set() };
                    dead.docs.add(d);
                    break;
                }
                case 'c':
                    lib.commands[o.name](o.cmd, { conn: { id: 0, client: null }, db: o.db, seqs: {}, started: Date.now(), deadline: Infinity });
                    break;
                default:
                    throw new Error(`unknown oplog operation ${o.op}`);
                }
            } catch (e) {
                /* the primary met the same error (a DDL command that failed) */
                if (this.verbose || !(e instanceof lib.CmdError)) this.log(`${m.host}: replication: ${o.op} on ${o.db}.${o.coll || ''}: ${e.message}`);
            }
        }
        flush();
        m.applied = entry.seq;
        m.lastWrite = entry;
    }

    /* Apply what is due (every entry when all), then wait for the next. */
    catchUp(m, all) {
        const now = Date.now();
        let n = 0;
        for (let e = this.entryAfter(m.applied); e; e = this.entryAfter(m.applied)) {
            if (!all && e.wall + m.lagMs > now) break;
            this.apply(m, e);
            n++;
        }
        if (n) {
            this.prune();
            this.notify();
        }
        this.schedule(m);
    }

    schedule(m) {
        if (m.state === 'PRIMARY') return;
        const next = this.entryAfter(m.applied);
        if (!next) {
            if (m.timer) clearTimeout(m.timer);
            m.timer = null;
            return;
        }
        const due = next.wall + m.lagMs;
        if (m.timer && m.timerDue === due) return;
        if (m.timer) clearTimeout(m.timer);
        m.timerDue = due;
        m.timer = setTimeout(() => {
            m.timer = null;
            this.catchUp(m, false);
        }, Math.min(MAX_TIMER_MS, Math.max(0, due - Date.now())));
    }

    prune() {
        const low = Math.min(...this.members.map((x) => x.applied));
        const n = low - this.base;
        if (n >= 1024 || (n > 0 && n === this.oplog.length)) {
            this.oplog.splice(0, n);
            this.base = low;
        }
    }

    acked(seq) { return this.members.filter((x) => x.applied >= seq).length; }

    /* The newest entry a majority applied. */
    commitPoint() {
        const a = this.members.map((x) => x.applied).sort((x, y) => y - x);
        return a[this.majority - 1];
    }

    notify() {
        for (const w of [...this.waiters]) w.check();
    }

    /* Wait until test() holds, the deadline passes (false) or abort(reason). */
    waitUntil(test, deadline, owner) {
        if (test()) return Promise.resolve(true);
        return new Promise((resolve) => {
            let timer = null;
            const w = {
                owner,
                check: () => { if (test()) w.done(true); },
                abort: (why) => w.done(why),
                done: (v) => {
                    this.waiters.delete(w);
                    if (timer) clearTimeout(timer);
                    resolve(v);
                },
            };
            this.waiters.add(w);
            if (deadline !== Infinity) timer = setTimeout(() => w.done(false), Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
        });
    }

    /* ---- write concern ---- */

    /* null, or the writeConcernError of the answer. */
    async awaitReplication(m, seq, wc, ctx) {
        const w = wc.w === undefined || wc.w === null ? 1 : wc.w;
        let need;
        if (w === 'majority') need = this.majority;
        else if (typeof w === 'number' && Number.isInteger(w) && w >= 0) need = w;
        else if (typeof w === 'string') {
            return { code: 79, codeName: 'UnknownReplWriteConcern', errmsg: `No write concern mode named '${w}' found in replica set configuration` };
        } else return null;
        if (need > this.members.length) {
            return { code: 100, codeName: 'UnsatisfiableWriteConcern', errmsg: 'Not enough data-bearing nodes' };
        }
        const wtimeout = typeof wc.wtimeout === 'number' && wc.wtimeout > 0 ? wc.wtimeout : 0;
        const byWtimeout = wtimeout ? ctx.started + wtimeout : Infinity;
        const deadline = Math.min(byWtimeout, ctx.deadline);
        const r = await this.waitUntil(() => this.acked(seq) >= need, deadline, m);
        if (r === true) return null;
        if (r === 'stepdown') {
            return { code: 189, codeName: 'PrimarySteppedDown', errmsg: 'Primary stepped down while waiting for replication' };
        }
        if (deadline === byWtimeout) {
            const spec = { w, wtimeout };
            return {
                code: 64, codeName: 'WriteConcernFailed', errmsg: 'waiting for replication timed out',
                errInfo: { wtimeout: true, writeConcern: Object.assign(spec, { provenance: 'clientSupplied' }) },
            };
        }
        return { code: 50, codeName: 'MaxTimeMSExpired', errmsg: 'operation exceeded time limit' };
    }

    /* ---- commands ---- */

    stateError(m, conn, cmd, name, code) {
        const hello = conn && conn.rsHello;
        const text = {
            10107: hello ? 'not primary' : 'not master',
            13435: hello ? 'not primary and secondaryOk=false' : 'not master and slaveOk=false',
            11602: 'operation was interrupted',
        }[code];
        const r = { ok: 0, errmsg: text, code, codeName: m.lib.codeName(code), topologyVersion: m.topologyVersion() };
        if (isRetryableWrite(name, cmd)) r.errorLabels = ['RetryableWriteError'];
        return r;
    }

    async command(m, fn, name, cmd, ctx) {
        if (HELLO.has(name)) return this.hello(m, fn, name, cmd, ctx);
        if (name === 'getMore' && this.streams.owns(cmd.getMore)) return this.streams.getMore(m, cmd, ctx);
        if (name === 'killCursors') this.streams.kill(cmd.cursors);
        if (name === 'aggregate' && ChangeStreams.is(cmd)) {
            if (!m.writable && !secondaryOk(ctx.conn, cmd)) return this.stateError(m, ctx.conn, cmd, name, 13435);
            return this.streams.open(m, cmd, ctx);
        }
        const write = WRITES.has(name);
        const read = READS.has(name);
        if (!write && !read) return fn(cmd, ctx);
        if (ctx.db === 'local') return fn(cmd, ctx);
        if (!m.writable) {
            if (write) {
                /* mongod cannot tell an unacknowledged write it failed: it hangs up */
                if (ctx.conn.rsMoreToCome) return m.lib.CLOSE_CONNECTION;
                return this.stateError(m, ctx.conn, cmd, name, 10107);
            }
            if (!secondaryOk(ctx.conn, cmd)) return this.stateError(m, ctx.conn, cmd, name, 13435);
        }
        return write ? this.write(m, fn, name, cmd, ctx) : this.read(m, fn, name, cmd, ctx);
    }

    async write(m, fn, name, cmd, ctx) {
        const lib = m.lib;
        const txn = isRetryableWrite(name, cmd) ? txnOf(cmd) : null;
        if (txn) {
            const prev = this.txns.get(txn.session);
            if (prev && txn.number < prev.number) {
                throw cmdError(lib, 225, `Retryable write with txnNumber ${txn.number} is prohibited on session ` +
                    `${txn.session} because a newer retryable write with txnNumber ${prev.number} has already started on this session.`,
                'TransactionTooOld');
            }
            if (prev && txn.number === prev.number && prev.seq <= m.applied) {
                return this.finishWrite(m, name, cmd, ctx, Object.assign({}, prev.reply), prev.seq);
            }
        }
        const fpName = HANG_FAIL_POINTS[name];
        if (fpName && lib.FAIL_POINTS.get(fpName).mode !== 'off' && lib.failPointFires(fpName)) {
            const fp = lib.FAIL_POINTS.get(fpName);
            this.log(`${m.host}: ${name} held by the fail point ${fpName}`);
            while (fp.mode !== 'off') {
                if (!m.writable) return this.stateError(m, ctx.conn, cmd, name, 11602);
                if (Date.now() >= ctx.deadline) throw lib.maxTimeExpired();
                await new Promise((r) => setTimeout(r, 10));
            }
            if (!m.writable) return this.stateError(m, ctx.conn, cmd, name, 11602);
        }
        const db = lib.getDb(ctx.db, false);
        const before = new Set(db ? db.collections.keys() : []);
        m.updateKind = updateKind(name, cmd, ctx);
        m.pending = [];
        let reply;
        let ops;
        try {
            reply = fn(cmd, ctx);
        } finally {
            ops = m.pending;
            m.pending = null;
            const now = lib.getDb(ctx.db, false);
            const created = now ? [...now.collections.keys()].filter((c) => !before.has(c)) : [];
            const all = created.map((c) => ({ op: 'create', db: ctx.db, coll: c })).concat(ops);
            if (DDL.has(name)) all.push({ op: 'c', name, db: ctx.db, cmd });
            if (all.length) this.commit(m, all);
        }
        if (reply && typeof reply.then === 'function') throw new Error(`${name}: a write command must run synchronously`);
        const seq = this.lastSeq;
        if (txn) this.txns.set(txn.session, { number: txn.number, seq, reply: Object.assign({}, reply) });
        return this.finishWrite(m, name, cmd, ctx, reply, seq);
    }

    async finishWrite(m, name, cmd, ctx, reply, seq) {
        const wc = cmd.writeConcern && typeof cmd.writeConcern === 'object' ? cmd.writeConcern : {};
        const wce = await this.awaitReplication(m, seq, wc, ctx);
        if (!wce) return reply;
        const r = Object.assign({}, reply, { writeConcernError: wce });
        if (isRetryableWrite(name, cmd) && RETRYABLE_CODES.has(wce.code)) r.errorLabels = ['RetryableWriteError'];
        return r;
    }

    async read(m, fn, name, cmd, ctx) {
        const rc = cmd.readConcern;
        const level = rc && typeof rc === 'object' ? rc.level : undefined;
        if (level === 'snapshot') {
            throw cmdError(m.lib, 72, 'readConcern level snapshot is only valid in multi-document transactions', 'InvalidOptions');
        }
        if (level === 'linearizable') {
            if (!m.writable) throw cmdError(m.lib, 10107, 'cannot satisfy linearizable read concern on non-primary node');
            const target = this.lastSeq;
            const ok = await this.waitUntil(() => this.commitPoint() >= target, ctx.deadline, m);
            if (ok === 'stepdown') return this.stateError(m, ctx.conn, cmd, name, 11602);
            if (ok !== true) throw m.lib.maxTimeExpired();
        }
        if (level !== 'majority' && level !== 'linearizable') return fn(cmd, ctx);
        const want = Math.min(m.applied, this.commitPoint());
        const src = m.applied === want ? m : this.members.find((x) => x.applied === want);
        if (src === m) return fn(cmd, ctx);
        /* the majority-committed data is that member's: read there, and
         * hand the cursor over to the member that was asked */
        const r = src.lib.commands[name](cmd, ctx);
        if (!(r instanceof src.lib.RawReply)) return r;
        if (!r.id.isZero()) {
            const key = r.id.toString();
            const cur = src.lib.cursors.get(key);
            src.lib.cursors.delete(key);
            m.lib.cursors.set(key, cur);
        }
        return new m.lib.RawReply(r.ns, r.id, r.batchName, r.batch, r.extra);
    }

    /* ---- hello ---- */

    async hello(m, fn, name, cmd, ctx) {
        if (name === 'hello' || cmd.helloOk === true) ctx.conn.rsHello = true;
        const tv = cmd.topologyVersion;
        const awaitable = tv && typeof tv === 'object' && typeof cmd.maxAwaitTimeMS === 'number';
        if (awaitable) await this.topologyChange(m, tv, cmd.maxAwaitTimeMS);
        const r = this.describe(m, fn(cmd, ctx));
        if (awaitable && ctx.conn.rsExhaustAllowed) r[STREAM] = { fn, cmd, ctx };
        return r;
    }

    /* Resolves when m's topologyVersion is no longer tv, or after ms. */
    topologyChange(m, tv, ms) {
        const same = tv.processId && typeof tv.processId.equals === 'function' && tv.processId.equals(m.processId) &&
            Number(tv.counter) === m.tvCounter;
        if (!same) return Promise.resolve();
        return new Promise((resolve) => {
            const w = () => {
                clearTimeout(t);
                m.topologyWaiters.delete(w);
                resolve();
            };
            const t = setTimeout(w, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
            m.topologyWaiters.add(w);
        });
    }

    /* The replica-set fields of a hello / isMaster answer. */
    describe(m, r) {
        const w = m.writable;
        if ('ismaster' in r) r.ismaster = w;
        if ('isWritablePrimary' in r) r.isWritablePrimary = w;
        r.topologyVersion = m.topologyVersion();
        r.hosts = this.members.map((x) => x.host);
        r.setName = this.name;
        r.setVersion = this.setVersion;
        r.secondary = !w;
        const p = this.writablePrimary();
        if (p) r.primary = p.host;
        r.me = m.host;
        if (w) r.electionId = electionId(this.term);
        const cp = this.commitPoint();
        const cpEntry = this.entryAt(cp);
        r.lastWrite = {
            opTime: opTime(m.lastWrite), lastWriteDate: new Date(m.lastWrite ? m.lastWrite.wall : 0),
            majorityOpTime: opTime(cpEntry), majorityWriteDate: new Date(cpEntry ? cpEntry.wall : 0),
        };
        return r;
    }

    entryAt(seq) {
        if (seq === 0) return null;
        if (this.lastEntry && this.lastEntry.seq === seq) return this.lastEntry;
        const m = this.members.find((x) => x.applied === seq);
        return m ? m.lastWrite : null;
    }

    /* The Node driver's streaming monitor: answer, then answer again at
     * each topology change or maxAwaitTimeMS, with moreToCome, while the
     * connection lasts. */
    exhaust(m, conn, requestID, reply) {
        const s = reply && reply[STREAM];
        if (!s) return false;
        const lib = m.lib;
        const send = (responseTo, r) => {
            const body = lib.replyBuffer(r);
            const len = 16 + 5 + body.length;
            const h = lib.header(len, responseTo, lib.OP_MSG);
            const fl = Buffer.alloc(5);
            fl.writeUInt32LE(OP_MSG_MORE_TO_COME, 0);
            conn.sock.write(Buffer.concat([h, fl, body], len));
            return h.readInt32LE(4);
        };
        let tv = { processId: reply.topologyVersion.processId, counter: Number(reply.topologyVersion.counter) };
        let last = send(requestID, reply);
        (async () => {
            while (!conn.sock.destroyed) {
                await this.topologyChange(m, tv, s.cmd.maxAwaitTimeMS);
                if (conn.sock.destroyed) break;
                const r = this.describe(m, s.fn(Object.assign({}, s.cmd, { topologyVersion: tv }), s.ctx));
                tv = { processId: r.topologyVersion.processId, counter: Number(r.topologyVersion.counter) };
                last = send(last, r);
            }
        })().catch((e) => this.log(`${m.host}: hello stream: ${e.message}`));
        return true;
    }

    /* ---- roles ---- */

    bumpAll() {
        for (const x of this.members) x.bump();
    }

    electable(now) {
        return this.members.filter((x) => x.state === 'SECONDARY' && x.frozenUntil <= now);
    }

    /* Elect the most up-to-date electable member, once there is one;
     * a member that just stepped down stands only if no other can. */
    elect(steppedDown) {
        if (this.primary()) return;
        if (this.electionTimer) clearTimeout(this.electionTimer);
        this.electionTimer = null;
        const now = Date.now();
        let cands = this.electable(now);
        if (cands.length > 1) cands = cands.filter((x) => x !== steppedDown);
        if (!cands.length) {
            const next = Math.min(...this.members.filter((x) => x.state === 'SECONDARY').map((x) => x.frozenUntil));
            if (Number.isFinite(next)) this.electionTimer = setTimeout(() => this.elect(), Math.min(MAX_TIMER_MS, Math.max(1, next - now)));
            return;
        }
        const c = cands.reduce((a, b) => (b.applied > a.applied ? b : a));
        this.catchUp(c, true);
        if (c.timer) clearTimeout(c.timer);
        c.timer = null;
        this.term++;
        c.state = 'PRIMARY';
        this.log(`replica set ${this.name}: ${c.host} is primary (term ${this.term})`);
        this.bumpAll();
        this.notify();
    }

    async stepDown(m, { freezeMs, catchUpMs, force }) {
        if (m.steppingDown) throw cmdError(m.lib, 117, 'A step down is already in progress', 'ConflictingOperationInProgress');
        m.steppingDown = true;
        this.log(`replica set ${this.name}: ${m.host} steps down (catch-up ${catchUpMs} ms${force ? ', force' : ''})`);
        m.bump();
        const deadline = Date.now() + catchUpMs;
        const caughtUp = () => this.electable(Date.now()).some((x) => x.applied >= this.lastSeq);
        const ok = await this.waitUntil(caughtUp, deadline, null);
        if (ok !== true && !force) {
            m.steppingDown = false;
            this.bumpAll();
            throw cmdError(m.lib, 262, `No electable secondaries caught up as of ${new Date().toISOString()}. Please use ` +
                'the replSetStepDown command with the argument {force: true} to force node to step down.', 'ExceededTimeLimit');
        }
        const old = m.host;
        m.state = 'SECONDARY';
        m.steppingDown = false;
        m.frozenUntil = Date.now() + freezeMs;
        for (const w of [...this.waiters]) if (w.owner === m) w.abort('stepdown');
        this.bumpAll();
        this.elect(m);
        this.schedule(m);
        const p = this.primary();
        return { stepped: old, primary: p ? p.host : null, term: Long.fromNumber(this.term), ok: 1 };
    }

    async replSetStepDown(m, cmd, ctx) {
        if (ctx.db !== 'admin') throw cmdError(m.lib, 13, 'replSetStepDown may only be run against the admin database.', 'Unauthorized');
        if (m.state !== 'PRIMARY') throw cmdError(m.lib, 10107, "not primary so can't step down");
        const secs = typeof cmd.replSetStepDown === 'number' ? cmd.replSetStepDown : 60;
        const force = cmd.force === true;
        const catchUp = typeof cmd.secondaryCatchUpPeriodSecs === 'number' ? cmd.secondaryCatchUpPeriodSecs : (force ? 0 : 10);
        if (catchUp < 0 || secs < catchUp) {
            throw cmdError(m.lib, 2, 'stepdown period must be longer than secondaryCatchUpPeriodSecs');
        }
        const r = await this.stepDown(m, { freezeMs: secs * 1000, catchUpMs: catchUp * 1000, force });
        return { ok: r.ok };
    }

    async replSetTestStepDown(m, cmd, ctx) {
        if (ctx.db !== 'admin') throw cmdError(m.lib, 13, 'replSetTestStepDown may only be run against the admin database.', 'Unauthorized');
        const p = this.primary();
        if (!p) throw cmdError(m.lib, 10107, 'no member is primary');
        const num = (k, d) => (typeof cmd[k] === 'number' && cmd[k] >= 0 ? cmd[k] : d);
        return this.stepDown(p, {
            freezeMs: num('stepDownSecs', 0) * 1000, catchUpMs: num('secondaryCatchUpPeriodSecs', 10) * 1000,
            force: cmd.force === true,
        });
    }

    replSetFreeze(m, cmd, ctx) {
        if (ctx.db !== 'admin') throw cmdError(m.lib, 13, 'replSetFreeze may only be run against the admin database.', 'Unauthorized');
        const secs = cmd.replSetFreeze;
        if (typeof secs !== 'number' || secs < 0) throw cmdError(m.lib, 14, 'replSetFreeze takes a number of seconds', 'TypeMismatch');
        if (m.state === 'PRIMARY') {
            throw cmdError(m.lib, 95, 'cannot freeze node when primary or running for election. state: Primary', 'NotSecondary');
        }
        m.frozenUntil = secs === 0 ? 0 : Date.now() + secs * 1000;
        this.elect();
        return secs === 0 ? { info: 'unfreezing', ok: 1 } : { ok: 1 };
    }

    replSetTestSetLag(m, cmd, ctx) {
        if (ctx.db !== 'admin') throw cmdError(m.lib, 13, 'replSetTestSetLag may only be run against the admin database.', 'Unauthorized');
        const ms = cmd.replSetTestSetLag;
        if (typeof ms !== 'number' || !(ms >= 0)) throw cmdError(m.lib, 2, 'replSetTestSetLag takes a number of milliseconds >= 0');
        let which = this.members;
        if (cmd.host !== undefined) {
            const x = this.member(cmd.host);
            if (!x) throw cmdError(m.lib, 2, `no member ${cmd.host}; members: ${this.members.map((y) => y.host).join(', ')}`);
            which = [x];
        }
        for (const x of which) {
            x.lagMs = ms;
            this.catchUp(x, false);
        }
        this.log(`replica set ${this.name}: lag ${ms} ms on ${which.map((x) => x.host).join(', ')}`);
        return { lagMs: ms, ok: 1 };
    }

    replSetGetStatus(m, cmd, ctx) {
        if (ctx.db !== 'admin') throw cmdError(m.lib, 13, 'replSetGetStatus may only be run against the admin database.', 'Unauthorized');
        const code = (x) => (x.state === 'PRIMARY' ? 1 : 2);
        return {
            set: this.name, date: new Date(), myState: code(m), term: Long.fromNumber(this.term),
            members: this.members.map((x) => ({
                _id: x.idx, name: x.host, health: 1, state: code(x), stateStr: x.state,
                optime: opTime(x.lastWrite), optimeDate: new Date(x.lastWrite ? x.lastWrite.wall : 0),
                self: x === m,
            })),
            ok: 1,
        };
    }
}

function electionId(term) {
    return new ObjectId('7fffffff' + term.toString(16).padStart(16, '0'));
}

function opTime(entry) {
    return entry ? { ts: new Timestamp({ t: entry.secs, i: entry.inc }), t: Long.fromNumber(entry.term) }
        : { ts: new Timestamp({ t: 0, i: 0 }), t: Long.fromNumber(-1) };
}

function isRetryableWrite(name, cmd) {
    return RETRYABLE_WRITES.has(name) && cmd.txnNumber !== undefined && cmd.autocommit === undefined;
}

/* {session, number} of a retryable write */
function txnOf(cmd) {
    const id = cmd.lsid && cmd.lsid.id;
    if (!id || typeof id.toString !== 'function') return null;
    const session = id.buffer ? Buffer.from(id.buffer).toString('hex') : String(id);
    return { session, number: Number(cmd.txnNumber) };
}

function secondaryOk(conn, cmd) {
    if (conn.rsSecondaryOkFlag) return true;
    const rp = cmd.$readPreference;
    const mode = rp && typeof rp === 'object' ? rp.mode : rp;
    return typeof mode === 'string' && mode !== 'primary';
}

/* ------------------------------------------------------------------ */
/* start                                                              */
/* ------------------------------------------------------------------ */

function listen(m, host, port) {
    return new Promise((resolve) => {
        const srv = net.createServer(m.lib.onConnection);
        srv.on('error', (e) => {
            m.lib.log(`listen error on ${host}:${port}: ${e.message}`);
            process.exit(1);
        });
        srv.listen({ host, port }, () => resolve(srv));
    });
}

async function start(opts) {
    const o = parseOptions(opts);
    const rs = new ReplSet(o, !!opts.verbose);
    const servers = [];
    for (const m of rs.members) {
        const srv = await listen(m, opts.host, opts.port ? opts.port + m.idx : 0);
        const a = srv.address();
        m.host = `${a.address}:${a.port}`;
        m.lib.setListenPort(a.port);
        servers.push(srv);
    }
    rs.members[0].state = 'PRIMARY';
    for (const m of rs.members) m.lib.startTtlMonitor(opts.ttlMonitorSleepSecs);
    const hosts = rs.members.map((m) => m.host);
    process.stdout.write(`listening replset ${rs.name} ${hosts.join(',')}\n`);
    rs.log(`TEST-ONLY MongoDB wire-protocol server: replica set ${rs.name} on ${hosts.join(', ')} ` +
        `(primary ${hosts[0]}, lag ${o.lagMs} ms)`);
    const stop = (sig) => {
        rs.log(`${sig}: exiting`);
        for (const s of servers) s.close();
        process.exit(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    return rs;
}

module.exports = { start };
