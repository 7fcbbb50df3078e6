/*
 * commands.js -- TEST-ONLY MongoDB server (see README.md): the command
 * table (hello, find, aggregate, getMore, insert, update, delete,
 * findAndModify, createIndexes, count, explain, serverStatus, ...), fail
 * points, writeConcern/readConcern checks, and runCommand, which the wire
 * protocol and the replica-set hooks call.
 */
'use strict';

const BSON = require('bson');
const { Long, Double, Int32, ObjectId } = BSON;
const mingoUtil = require('mingo/util');
const { OPTS, log, MAX_BSON, MAX_MESSAGE, MAX_WRITE_BATCH, SERVER_VERSION, SERVER_VERSION_ARRAY,
    MAX_WIRE_VERSION, INT32_MAX, CmdError, badValue, typeMismatch, isPlainObject, plainCmd, wrapDoc, wrapValue,
    serialize, DESER_RAW, hasOwn, codeName } = require('./values.js');
const { maxTimeExpired } = require('./query.js');
const {
    typeDoc, isUpdateOperatorDoc, updatePlan, applyUpdate, upsertDoc, typedId, prepareDoc, docsFrom,
} = require('./update.js');
const { Index, databases, getDb, getColl } = require('./storage.js');
const { cursors, continueCursor, RawReply, cursorReply, totals, runFind, collName, optInt, mingoError, sleep,
    execFind, execCount, checkPipeline, execAggregate, aggregateExplain, explainCommand, serverStatus,
} = require('./read.js');

function helloReply(conn, cmd, name) {
    const r = {
        helloOk: true,
        ismaster: true,
        isWritablePrimary: true,
        maxBsonObjectSize: new Int32(MAX_BSON),
        maxMessageSizeBytes: new Int32(MAX_MESSAGE),
        maxWriteBatchSize: new Int32(MAX_WRITE_BATCH),
        localTime: new Date(),
        logicalSessionTimeoutMinutes: new Int32(30),
        connectionId: new Int32(conn.id),
        minWireVersion: new Int32(0),
        maxWireVersion: new Int32(MAX_WIRE_VERSION),
        readOnly: false,
        ok: new Double(1),
    };
    if (name === 'hello') delete r.ismaster;
    if (cmd.client && !conn.client) {
        conn.client = cmd.client;
        const d = cmd.client.driver || {};
        log(`conn${conn.id} client ${d.name || '?'} ${d.version || ''}`.trim());
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* fail points (MongoDB's test commands)                              */
/* ------------------------------------------------------------------ */

/*
 * configureFailPoint, as mongod 4.4 runs it with enableTestCommands=1 (an
 * admin command; reply {count: <times the fail point fired so far>, ok: 1}):
 *
 *   {configureFailPoint: "failCommand",
 *    mode: "alwaysOn" | "off" | {times: n} | {skip: n} | {activationProbability: p},
 *    data: {failCommands: ["aggregate", ...],   command names it applies to
 *           errorCode: 91,                      reply {ok: 0, errmsg: "Failing command
 *                                               due to 'failCommand' failpoint", code,
 *                                               codeName}
 *           errorLabels: ["RetryableWriteError"],   added to that reply
 *           closeConnection: true,              close the connection, no reply
 *           blockConnection: true, blockTimeMS: n,  wait n ms first (interrupted by
 *                                               the command's maxTimeMS: code 50)
 *           appName: "x",                       only clients whose handshake named
 *                                               this application
 *           namespace: "db.coll"}}              only commands on this namespace
 *
 * It fires before the command runs, only for commands named in failCommands
 * (never for configureFailPoint itself) and only when it has something to do
 * (errorCode, closeConnection or blockConnection).  {times: n} counts the
 * commands it fired on, then turns itself off.
 *
 *   {configureFailPoint: "maxTimeAlwaysTimeOut", mode: ...}: every command
 *       carrying maxTimeMS fails with 50 MaxTimeMSExpired at once.
 *   {configureFailPoint: "maxTimeNeverTimeOut", mode: ...}: maxTimeMS is
 *       ignored.
 */

const FAIL_POINTS = new Map(['failCommand', 'maxTimeAlwaysTimeOut', 'maxTimeNeverTimeOut']
    .map((n) => [n, { mode: 'off', n: 0, p: 0, data: {}, entered: 0 }]));

/* Does the fail point fire now?  Consumes one of {times: n} / {skip: n}. */
function failPointFires(name) {
    const fp = FAIL_POINTS.get(name);
    switch (fp.mode) {
    case 'off':
        return false;
    case 'times':
        if (fp.n <= 0) { fp.mode = 'off'; return false; }
        if (--fp.n === 0) fp.mode = 'off';
        break;
    case 'skip':
        if (fp.n > 0) { fp.n--; return false; }
        break;
    case 'random':
        if (!(Math.random() < fp.p)) return false;
        break;
    default:
        break;
    }
    fp.entered++;
    return true;
}

const COMMAND_ALIASES = { ismaster: 'isMaster' };

/* The namespace a command acts on ("db.coll", or "db.$cmd"). */
function commandNs(dbName, cmd, name) {
    const v = cmd[name];
    return typeof v === 'string' && name !== 'configureFailPoint' ? `${dbName}.${v}` : `${dbName}.$cmd`;
}

/* The failCommand fail point, evaluated before every command.  Throws
 * the injected error, returns CLOSE_CONNECTION, or returns nothing (after
 * blocking if asked to) for the command to run normally. */
async function failCommand(conn, dbName, name, cmd, ctx) {
    const fp = FAIL_POINTS.get('failCommand');
    if (fp.mode === 'off' || name === 'configureFailPoint') return undefined;
    const d = fp.data;
    const canon = COMMAND_ALIASES[name] || name;
    if (!Array.isArray(d.failCommands) ||
        !d.failCommands.some((c) => typeof c === 'string' && (COMMAND_ALIASES[c] || c) === canon)) return undefined;
    if (typeof d.appName === 'string') {
        const app = conn.client && conn.client.application && conn.client.application.name;
        if (app !== d.appName) return undefined;
    }
    if (typeof d.namespace === 'string' && commandNs(dbName, cmd, name) !== d.namespace) return undefined;
    const close = d.closeConnection === true;
    const block = d.blockConnection === true;
    const code = Number.isInteger(d.errorCode) ? d.errorCode : undefined;
    if (!close && !block && code === undefined) return undefined;
    if (!failPointFires('failCommand')) return undefined;
    log(`conn${conn.id} failCommand fail point fires on ${name}: ` +
        [block && `block ${d.blockTimeMS} ms`, close && 'close the connection', code !== undefined && `error ${code}`]
            .filter(Boolean).join(', '));
    if (block) {
        if (!Number.isInteger(d.blockTimeMS)) {
            throw new CmdError(72, 'InvalidOptions', "must specify 'blockTimeMS' when 'blockConnection' is true");
        }
        if (d.blockTimeMS < 0) throw new CmdError(72, 'InvalidOptions', "'blockTimeMS' must be non-negative");
        if (Date.now() + d.blockTimeMS >= ctx.deadline) {
            await sleep(Math.max(0, ctx.deadline - Date.now()));
            throw maxTimeExpired();
        }
        await sleep(d.blockTimeMS);
    }
    if (close) return CLOSE_CONNECTION;
    if (code !== undefined) {
        const e = new CmdError(code, codeName(code), "Failing command due to 'failCommand' failpoint");
        if (Array.isArray(d.errorLabels)) e.errorLabels = d.errorLabels.filter((l) => typeof l === 'string');
        throw e;
    }
    return undefined;
}

function configureFailPoint(cmd, ctx) {
    if (ctx.db !== 'admin') {
        throw new CmdError(13, 'Unauthorized', 'configureFailPoint may only be run against the admin database.');
    }
    const name = cmd.configureFailPoint;
    const fp = typeof name === 'string' ? FAIL_POINTS.get(name) : undefined;
    if (!fp) throw new CmdError(266, 'FailPointSetFailed', `${name} not found`);
    const m = cmd.mode;
    let mode;
    let n = 0;
    let p = 0;
    if (m === undefined) {
        throw new CmdError(20, 'IllegalOperation', "When setting a failpoint, you must supply a 'mode'");
    } else if (typeof m === 'string') {
        if (m !== 'off' && m !== 'alwaysOn') throw badValue(`unknown mode: ${m}`);
        mode = m;
    } else if (isPlainObject(m)) {
        const intOpt = (k) => {
            const v = m[k];
            if (typeof v !== 'number' || !Number.isInteger(v)) throw typeMismatch(`'${k}' option to 'mode' must be an integer`);
            if (v < 0) throw badValue(`'${k}' option to 'mode' must be positive`);
            if (v > INT32_MAX) throw badValue(`'${k}' option to 'mode' is too large`);
            return v;
        };
        if (hasOwn(m, 'times')) {
            mode = 'times';
            n = intOpt('times');
        } else if (hasOwn(m, 'skip')) {
            mode = 'skip';
            n = intOpt('skip');
        } else if (hasOwn(m, 'activationProbability')) {
            mode = 'random';
            p = m.activationProbability;
            if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw badValue('activationProbability must be between 0.0 and 1.0');
        } else {
            throw badValue("'mode' must be one of 'off', 'alwaysOn', 'times', and 'random'");
        }
    } else {
        throw typeMismatch("'mode' must be a string or JSON object");
    }
    if (cmd.data !== undefined && !isPlainObject(cmd.data)) throw typeMismatch("the 'data' field must be a JSON object");
    const count = fp.entered;
    Object.assign(fp, { mode, n, p, data: cmd.data || {} });
    log(`configureFailPoint ${name}: mode ${JSON.stringify(m)}` + (cmd.data ? ` data ${JSON.stringify(cmd.data)}` : ''));
    return { count, ok: 1 };
}

/* ------------------------------------------------------------------ */
/* commands                                                           */
/* ------------------------------------------------------------------ */

const commands = {
    hello: (cmd, ctx) => helloReply(ctx.conn, cmd, 'hello'),
    isMaster: (cmd, ctx) => helloReply(ctx.conn, cmd, 'isMaster'),
    ismaster: (cmd, ctx) => helloReply(ctx.conn, cmd, 'isMaster'),
    ping: () => ({ ok: 1 }),
    configureFailPoint: (cmd, ctx) => configureFailPoint(cmd, ctx),
    buildInfo: () => ({
        version: SERVER_VERSION, gitVersion: 'test-server', versionArray: SERVER_VERSION_ARRAY,
        bits: 64, debug: false, maxBsonObjectSize: MAX_BSON, storageEngines: ['memory'],
        javascriptEngine: 'none', modules: [], openssl: { running: 'disabled' }, ok: 1,
    }),
    endSessions: () => ({ ok: 1 }),

    insert: (cmd, ctx) => {
        const name = collName(cmd, 'insert');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'documents');
        if (list.length > MAX_WRITE_BATCH) {
            throw new CmdError(16, 'InvalidLength', `Write batch sizes must be between 1 and ${MAX_WRITE_BATCH}. Got ${list.length} operations.`);
        }
        const coll = getColl(ctx.db, name, true);
        const ordered = cmd.ordered !== false;
        const writeErrors = [];
        let n = 0;
        for (let i = 0; i < list.length; i++) {
            let doc;
            if (raw) {
                doc = prepareDoc(list[i], coll);
            } else {
                const src = list[i];
                if (!isPlainObject(src)) throw typeMismatch('documents must be objects');
                doc = { _id: src._id === undefined ? new ObjectId() : src._id };
                Object.assign(doc, src);
                typeDoc(coll, doc, src);
            }
            const err = coll.insertOne(doc);
            if (!err) totals.inserted++;
            if (err) {
                writeErrors.push(Object.assign({ index: i }, err));
                if (ordered) break;
            } else {
                n++;
            }
        }
        const r = { n, ok: 1 };
        if (writeErrors.length) r.writeErrors = writeErrors;
        return r;
    },

    find: (cmd, ctx) => {
        const { coll, name, a, items } = execFind(cmd, ctx, null);
        let batchSize = optInt(cmd, 'batchSize', 0);
        if (a.limit && (batchSize === undefined || batchSize > a.limit)) batchSize = a.limit;
        return cursorReply(`${ctx.db}.${name}`, items, coll ? coll.schema : null, batchSize, a.singleBatch);
    },

    count: (cmd, ctx) => ({ n: execCount(cmd, ctx, null).n, ok: 1 }),

    explain: (cmd, ctx) => explainCommand(cmd, ctx),

    serverStatus: () => serverStatus(),

    getMore: (cmd, ctx) => {
        const id = cmd.getMore;
        const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : null;
        if (key === null) throw typeMismatch("Field 'getMore' must be of type long");
        const name = collName(cmd, 'collection');
        const cur = cursors.get(key);
        if (!cur) throw new CmdError(43, 'CursorNotFound', `cursor id ${key} not found`);
        if (cur.ns !== `${ctx.db}.${name}`) {
            throw new CmdError(13, 'Unauthorized', `Requested getMore on namespace '${ctx.db}.${name}', but cursor belongs to a different namespace ${cur.ns}`);
        }
        const batchSize = optInt(cmd, 'batchSize', 0);
        const { id: nid, batch } = continueCursor(key, cur, batchSize);
        return new RawReply(cur.ns, nid, 'nextBatch', batch);
    },

    killCursors: (cmd) => {
        const ids = Array.isArray(cmd.cursors) ? cmd.cursors : [];
        const killed = [];
        const notFound = [];
        for (const id of ids) {
            const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : String(id);
            const l = Long.fromString(key);
            if (cursors.delete(key)) killed.push(l); else notFound.push(l);
        }
        return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
    },

    aggregate: (cmd, ctx) => {
        if (cmd.explain) {
            /* aggregate's explain option is queryPlanner verbosity, as in mongod */
            checkPipeline(cmd.pipeline);
            return aggregateExplain(cmd, ctx, 'queryPlanner');
        }
        if (Array.isArray(cmd.pipeline) && cmd.pipeline[0] && typeof cmd.pipeline[0] === 'object'
            && Object.prototype.hasOwnProperty.call(cmd.pipeline[0], '$changeStream')) {
            /* replica-set mode answers it before it gets here (changestream.js) */
            throw new CmdError(40573, 'Location40573', 'The $changeStream stage is only supported on replica sets');
        }
        if (typeof cmd.aggregate === 'string' && !Array.isArray(cmd.pipeline)) checkPipeline(cmd.pipeline);
        if (typeof cmd.aggregate === 'string' && !isPlainObject(cmd.cursor)) {
            throw new CmdError(9, 'FailedToParse', "The 'cursor' option is required, except for aggregate with the explain argument");
        }
        const batchSize = optInt(cmd.cursor, 'batchSize', 0);
        const { coll, target, out } = execAggregate(cmd, ctx, null);
        return cursorReply(`${ctx.db}.${target}`, out, coll ? coll.schema : null, batchSize, false);
    },

    delete: (cmd, ctx) => {
        const name = collName(cmd, 'delete');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'deletes');
        const coll = getColl(ctx.db, name, false);
        let n = 0;
        for (const s0 of list) {
            const s = raw ? plainCmd(BSON.deserialize(s0, DESER_RAW)) : s0;
            if (!coll) continue;
            const q = s.q || {};
            let matched;
            try {
                matched = runFind(coll, q, undefined, undefined, 0, s.limit ? 1 : 0, s.hint);
            } catch (e) {
                throw mingoError(e);
            }
            if (!matched.length) continue;
            coll.removeDocs(new Set(matched));
            n += matched.length;
            totals.deleted += matched.length;
        }
        return { n, ok: 1 };
    },

    update: (cmd, ctx) => {
        const name = collName(cmd, 'update');
        const { raw, list } = docsFrom(cmd, ctx.seqs, 'updates');
        const coll = getColl(ctx.db, name, true);
        let n = 0;
        let nModified = 0;
        const upserted = [];
        const writeErrors = [];
        for (let i = 0; i < list.length; i++) {
            const s = raw ? plainCmd(BSON.deserialize(list[i], DESER_RAW)) : list[i];
            try {
                if (isUpdateOperatorDoc(s.u)) updatePlan(s.u);      /* parse errors before anything is read */
                const matched = runFind(coll, s.q || {}, undefined, undefined, 0, s.multi ? 0 : 1, s.hint);
                if (matched.length) {
                    let m;
                    try {
                        m = coll.modifyMany(matched, s.u, s.arrayFilters);
                    } catch (e) {
                        totals.updated += e.nModified || 0;
                        throw e;
                    }
                    n += matched.length;
                    nModified += m;
                    totals.updated += m;
                } else if (s.upsert) {
                    const full = upsertDoc(coll, s.q, s.u, s.arrayFilters);
                    n++;
                    totals.inserted++;
                    upserted.push({ index: i, _id: typedId(full) });
                }
            } catch (e) {
                const ce = mingoError(e);
                const we = { index: i, code: ce.code };
                if (ce.keyPattern) Object.assign(we, { keyPattern: ce.keyPattern, keyValue: ce.keyValue });
                we.errmsg = ce.message;
                writeErrors.push(we);
                if (cmd.ordered !== false) break;
            }
        }
        const r = { n, nModified, ok: 1 };
        if (upserted.length) r.upserted = upserted;
        if (writeErrors.length) r.writeErrors = writeErrors;
        return r;
    },

    findAndModify: (cmd, ctx) => {
        const name = collName(cmd, 'findAndModify');
        const coll = getColl(ctx.db, name, true);
        let matched;
        try {
            matched = runFind(coll, cmd.query || {}, undefined, cmd.sort, 0, 1, cmd.hint);
        } catch (e) {
            throw mingoError(e);
        }
        const d = matched[0];
        const schema = coll.schema;
        if (!cmd.remove && isUpdateOperatorDoc(cmd.update)) updatePlan(cmd.update);    /* parse errors: as they are */
        if (cmd.remove) {
            if (d) {
                coll.removeDocs(new Set([d]));
                totals.deleted++;
            }
            return { lastErrorObject: { n: d ? 1 : 0 }, value: d ? wrapDoc(d, schema) : null, ok: 1 };
        }
        /* errors while the update runs, as mongod 4.4-7.0 words them
         * (find_and_modify.cpp: exception.addContext(...)) */
        const executing = (fn) => {
            try {
                return fn();
            } catch (e) {
                const ce = mingoError(e);
                throw Object.assign(new CmdError(ce.code, ce.codeName, `Plan executor error during findAndModify :: caused by :: ${ce.message}`),
                    ce.keyPattern ? { keyPattern: ce.keyPattern, keyValue: ce.keyValue } : {});
            }
        };
        if (d) {
            const before = BSON.deserialize(serialize(wrapDoc(d, schema)), DESER_RAW);
            const updatedExisting = true;
            if (executing(() => coll.modify(d, (x) => applyUpdate(coll, x, cmd.update, cmd.arrayFilters, false)))) totals.updated++;
            return { lastErrorObject: { n: 1, updatedExisting }, value: cmd.new ? wrapDoc(d, schema) : before, ok: 1 };
        }
        if (cmd.upsert) {
            const full = executing(() => upsertDoc(coll, cmd.query, cmd.update, cmd.arrayFilters));
            totals.inserted++;
            return { lastErrorObject: { n: 1, updatedExisting: false, upserted: typedId(full) }, value: cmd.new ? wrapDoc(full, schema) : null, ok: 1 };
        }
        return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
    },

    createIndexes: (cmd, ctx) => {
        const name = collName(cmd, 'createIndexes');
        if (!Array.isArray(cmd.indexes) || cmd.indexes.length === 0) {
            throw typeMismatch("BSON field 'createIndexes.indexes' is missing or not a non-empty array");
        }
        const existed = !!getColl(ctx.db, name, false);
        const coll = getColl(ctx.db, name, true);
        const before = coll.indexes.length;
        let note;
        for (const spec of cmd.indexes) {
            if (!isPlainObject(spec) || !isPlainObject(spec.key) || !Object.keys(spec.key).length) {
                throw new CmdError(9, 'FailedToParse', "The 'key' field is a required property of an index specification");
            }
            const iname = typeof spec.name === 'string' ? spec.name
                : Object.entries(spec.key).map(([k, v]) => `${k}_${v}`).join('_');
            const same = coll.indexes.find((i) => i.name === iname);
            const sameKey = coll.indexes.find((i) => mingoUtil.isEqual(i.key, spec.key));
            if (same && mingoUtil.isEqual(same.key, spec.key)) { note = 'all indexes already exist'; continue; }
            if (same) {
                throw new CmdError(86, 'IndexKeySpecsConflict',
                    `An existing index has the same name as the requested index. Requested index: ${BSON.EJSON.stringify(spec)}, existing index: ${BSON.EJSON.stringify(same)}`);
            }
            if (sameKey) {
                throw new CmdError(85, 'IndexOptionsConflict',
                    `Index already exists with a different name: ${sameKey.name}`);
            }
            const ix = { v: 2, key: spec.key, name: iname };
            for (const k of Object.keys(spec)) if (!['key', 'name', 'v', 'ns'].includes(k)) ix[k] = spec[k];
            const err = coll.addIndex(ix);
            if (err) throw Object.assign(new CmdError(11000, 'DuplicateKey', err.errmsg), { keyPattern: err.keyPattern, keyValue: err.keyValue });
        }
        const r = { numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: !existed, ok: 1 };
        if (note && before === coll.indexes.length) r.note = note;
        return r;
    },

    /* dropIndexes: by name, by key pattern, a list of names, or "*" (every
     * index but _id's), as mongod 4.4; the _id index cannot be dropped. */
    dropIndexes: (cmd, ctx) => {
        const name = collName(cmd, 'dropIndexes');
        const coll = getColl(ctx.db, name, false);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', `ns not found ${ctx.db}.${name}`);
        const want = cmd.index;
        const before = coll.indexes.length;
        let victims;
        if (want === '*') {
            victims = coll.indexes.filter((i) => i.name !== '_id_');
        } else {
            const names = Array.isArray(want) ? want : [want];
            victims = names.map((w) => {
                const ix = coll.indexes.find((i) => (typeof w === 'string' ? i.name === w
                    : isPlainObject(w) && mingoUtil.isEqual(i.key, w)));
                if (!ix) {
                    throw new CmdError(27, 'IndexNotFound', typeof w === 'string' ? `index not found with name [${w}]`
                        : `can't find index with key: ${BSON.EJSON.stringify(w)}`);
                }
                if (ix.name === '_id_') throw new CmdError(72, 'InvalidOptions', 'cannot drop _id index');
                return ix;
            });
        }
        for (const ix of victims) coll.dropIndex(ix.name);
        return { nIndexesWas: before, ok: 1 };
    },

    /* collMod, only to change a TTL index's expireAfterSeconds (by index
     * name or keyPattern), as the journal does when its retention changes. */
    collMod: (cmd, ctx) => {
        const name = collName(cmd, 'collMod');
        const coll = getColl(ctx.db, name, false);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
        if (isPlainObject(cmd.changeStreamPreAndPostImages)) {
            /* MongoDB 6.0: pre- and post-images for change streams (changestream.js) */
            if (typeof cmd.changeStreamPreAndPostImages.enabled !== 'boolean') {
                throw new CmdError(40414, 'Location40414', "BSON field 'changeStreamPreAndPostImages.enabled' is missing but a required field");
            }
            coll.preAndPostImages = cmd.changeStreamPreAndPostImages.enabled;
            return { ok: 1 };
        }
        const spec = cmd.index;
        if (!isPlainObject(spec)) throw new CmdError(72, 'InvalidOptions', "this test server's collMod only changes an index or changeStreamPreAndPostImages: 'index' is required");
        const ix = coll.indexes.find((i) => (typeof spec.name === 'string' ? i.name === spec.name
            : isPlainObject(spec.keyPattern) && mingoUtil.isEqual(i.key, spec.keyPattern)));
        if (!ix) throw new CmdError(27, 'IndexNotFound', `cannot find index ${BSON.EJSON.stringify(spec)} for ns ${ctx.db}.${name}`);
        if (typeof spec.expireAfterSeconds !== 'number' && !(spec.expireAfterSeconds instanceof Long) && !(spec.expireAfterSeconds instanceof Int32)) {
            throw new CmdError(72, 'InvalidOptions', "this test server's collMod only changes expireAfterSeconds");
        }
        if (ix.expireAfterSeconds === undefined) throw new CmdError(72, 'InvalidOptions', 'no expireAfterSeconds field to update');
        const old = ix.expireAfterSeconds;
        ix.expireAfterSeconds = spec.expireAfterSeconds;
        return { expireAfterSeconds_old: old, expireAfterSeconds_new: spec.expireAfterSeconds, ok: 1 };
    },

    /* create, for a collection made with options: clusteredIndex (on _id,
     * unique) with expireAfterSeconds (MongoDB 5.3+: a TTL on the _id's
     * date, which listIndexes does not show: ttl.js deletes by it), and
     * changeStreamPreAndPostImages; others are refused. */
    create: (cmd, ctx) => {
        const name = collName(cmd, 'create');
        if (getColl(ctx.db, name, false)) throw new CmdError(48, 'NamespaceExists', `Collection ${ctx.db}.${name} already exists.`);
        for (const k of ['capped', 'timeseries', 'viewOn', 'pipeline', 'validator', 'collation', 'storageEngine']) {
            if (cmd[k] !== undefined) throw new CmdError(72, 'InvalidOptions', `this test server's create does not take '${k}'`);
        }
        const options = {};
        if (cmd.clusteredIndex !== undefined) {
            const ci = cmd.clusteredIndex;
            if (!isPlainObject(ci) || !isPlainObject(ci.key) || Object.keys(ci.key).join() !== '_id'
                || Number(ci.key._id) !== 1 || ci.unique !== true) {
                throw new CmdError(72, 'InvalidOptions', "The clustered index must be {key: {_id: 1}, unique: true}");
            }
            options.clusteredIndex = { v: 2, key: { _id: 1 }, name: ci.name || '_id_', unique: true };
        }
        if (cmd.expireAfterSeconds !== undefined) {
            const secs = Number(cmd.expireAfterSeconds);
            if (!options.clusteredIndex) throw new CmdError(72, 'InvalidOptions', "'expireAfterSeconds' requires clustering to be enabled");
            if (!Number.isInteger(secs) || secs < 0) throw new CmdError(72, 'InvalidOptions', "'expireAfterSeconds' must be a non-negative integer");
            options.expireAfterSeconds = Long.fromNumber(secs);
        }
        const coll = getColl(ctx.db, name, true);
        if (isPlainObject(cmd.changeStreamPreAndPostImages)) {
            options.changeStreamPreAndPostImages = { enabled: !!cmd.changeStreamPreAndPostImages.enabled };
            coll.preAndPostImages = !!cmd.changeStreamPreAndPostImages.enabled;
        }
        coll.options = options;
        return { ok: 1 };
    },

    /* listCollections: a filter on name alone (or none); nameOnly. */
    listCollections: (cmd, ctx) => {
        const filter = isPlainObject(cmd.filter) ? cmd.filter : {};
        for (const k of Object.keys(filter)) {
            if (k !== 'name' || typeof filter.name !== 'string') {
                throw new CmdError(72, 'InvalidOptions', "this test server's listCollections filters on {name: <string>} only");
            }
        }
        const db = getDb(ctx.db, false);
        const items = [];
        for (const c of db ? db.collections.values() : []) {
            if (filter.name !== undefined && c.name !== filter.name) continue;
            items.push(cmd.nameOnly === true ? { name: c.name, type: 'collection' }
                : { name: c.name, type: 'collection', options: Object.assign({}, c.options || {}),
                    info: { readOnly: false }, idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } });
        }
        const bs = isPlainObject(cmd.cursor) ? optInt(cmd.cursor, 'batchSize', 0) : undefined;
        return cursorReply(`${ctx.db}.$cmd.listCollections`, items, null, bs, false);
    },

    listIndexes: (cmd, ctx) => {
        const name = collName(cmd, 'listIndexes');
        const coll = getColl(ctx.db, name, false);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
        const bs = isPlainObject(cmd.cursor) ? optInt(cmd.cursor, 'batchSize', 0) : undefined;
        return cursorReply(`${ctx.db}.${name}`, coll.indexes.map((i) => Object.assign({}, i)), null, bs, false);
    },

    drop: (cmd, ctx) => {
        const name = collName(cmd, 'drop');
        const db = getDb(ctx.db, false);
        const coll = db && db.collections.get(name);
        if (!coll) throw new CmdError(26, 'NamespaceNotFound', 'ns not found');
        db.collections.delete(name);
        for (const [k, c] of cursors) if (c.ns === coll.ns) cursors.delete(k);
        if (db.collections.size === 0) databases.delete(db.name);
        return { nIndexesWas: coll.indexes.length, ns: coll.ns, ok: 1 };
    },

    dropDatabase: (cmd, ctx) => {
        const db = getDb(ctx.db, false);
        if (db) {
            databases.delete(ctx.db);
            for (const [k, c] of cursors) if (c.ns.startsWith(ctx.db + '.')) cursors.delete(k);
        }
        return { dropped: ctx.db, ok: 1 };
    },
};

/* ---- writeConcern and readConcern ---- */

/* As a standalone mongod takes them: every write here is applied, durable
 * as far as this server goes, and "majority-committed" (there is nobody
 * else) when it returns, so w: 1, w: "majority", j and wtimeout change
 * nothing, and neither do the read concern levels "local", "majority" and
 * "available" (on a standalone they read the same data).  What a
 * standalone refuses (src/mongo/db/write_concern.cpp, validateWriteConcern,
 * 4.4 to 7.0) is refused before the command runs, with nothing applied:
 * w > 1, BadValue (2) "cannot use 'w' > 1 when a host is not replicated",
 * and a tag set name, BadValue "cannot use non-majority 'w' mode <name>
 * when a host is not a member of a replica set". */
function checkWriteConcern(wc) {
    if (!isPlainObject(wc)) return;
    if (typeof wc.w === 'number' && wc.w > 1) throw badValue("cannot use 'w' > 1 when a host is not replicated");
    if (typeof wc.w === 'string' && wc.w !== 'majority') {
        throw badValue(`cannot use non-majority 'w' mode ${wc.w} when a host is not a member of a replica set`);
    }
}

/* Returned by runCommand when the connection must be closed unanswered. */
const CLOSE_CONNECTION = Symbol('closeConnection');

async function runCommand(conn, dbName, cmd, seqs) {
    const name = Object.keys(cmd)[0];
    const started = Date.now();
    if (OPTS.verbose) log(`conn${conn.id} ${dbName}.$cmd ${name}`);
    const fn = name !== undefined && Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : null;
    if (!fn) {
        return { ok: 0, errmsg: `no such command: '${name}'`, code: 59, codeName: 'CommandNotFound' };
    }
    try {
        if (typeof dbName !== 'string' || !dbName) throw new CmdError(40414, 'Location40414', "BSON field 'OperationSessionInfo.$db' is missing but a required field");
        cmd.__name = name;
        const ctx = { conn, db: dbName, seqs: seqs || {}, started, deadline: Infinity };
        const mt = cmd.maxTimeMS;
        if (mt !== undefined && mt !== null) {
            if (typeof mt !== 'number' || !Number.isInteger(mt) || mt < 0 || mt > INT32_MAX) {
                throw badValue(`${mt} value for maxTimeMS is out of range [0, ${INT32_MAX}]`);
            }
            if (mt > 0 && !failPointFires('maxTimeNeverTimeOut')) ctx.deadline = started + mt;
        }
        if (await failCommand(conn, dbName, name, cmd, ctx) === CLOSE_CONNECTION) return CLOSE_CONNECTION;
        if (mt > 0 && failPointFires('maxTimeAlwaysTimeOut')) throw maxTimeExpired();
        /* replica-set mode (t/mongod/replset.js): roles, replication, write concern */
        if (replHooks.command) return await replHooks.command(fn, name, cmd, ctx);
        checkWriteConcern(cmd.writeConcern);
        return await fn(cmd, ctx);
    } catch (e) {
        const ce = e instanceof CmdError ? e : mingoError(e);
        if (!(e instanceof CmdError) && OPTS.verbose) log(`conn${conn.id} ${name} failed: ${e && e.stack || e}`);
        const r = { ok: 0, errmsg: ce.message, code: ce.code, codeName: ce.codeName };
        if (ce.keyPattern) Object.assign(r, { keyPattern: ce.keyPattern, keyValue: ce.keyValue });
        if (ce.errorLabels && ce.errorLabels.length) r.errorLabels = ce.errorLabels;
        return r;
    }
}

function replyBuffer(r) {
    if (r instanceof RawReply) return r.toBuffer();
    if (typeof r.ok === 'number') r.ok = new Double(r.ok);
    return serialize(wrapValue(r, '', undefined, null));
}

/* ------------------------------------------------------------------ */
/* replica-set mode: hooks for t/mongod/replset.js                    */
/* ------------------------------------------------------------------ */

/* replset.js loads one instance of these modules per member and sets these
 * hooks on each; unset, the server is the standalone README.md describes.
 *   command(fn, name, cmd, ctx)  runs a command (fn) in the member's role
 *   frame(conn, opCode, frame)   sees each message before it is handled
 *   exhaust(conn, requestID, reply)  true when it answered the request */
const replHooks = { command: null, frame: null, exhaust: null };

module.exports = { FAIL_POINTS, failPointFires, commands, CLOSE_CONNECTION, runCommand, replyBuffer, replHooks };
