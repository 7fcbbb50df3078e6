/*
 * changestream.js -- change streams in the replica-set mode of the
 * TEST-ONLY MongoDB wire-protocol server (NOT A DATABASE; see replset.js).
 *
 * What a mongod 6.0 member does for `aggregate` with a first stage
 * {$changeStream: {...}} on a collection, and for the getMore and
 * killCursors of its cursor:
 *
 *   events       one per document inserted, updated, replaced or deleted by
 *                a write command on the primary, in oplog order, visible
 *                once majority-committed: {_id: {_data: TOKEN},
 *                operationType: "insert" | "update" | "replace" | "delete",
 *                clusterTime (Timestamp of the entry), wallTime, ns {db,
 *                coll}, documentKey {_id}, fullDocument (insert, replace;
 *                update with fullDocument "updateLookup": the document as
 *                the member holds it now, or null; "whenAvailable" /
 *                "required": the post-image when pre- and post-images are
 *                on), updateDescription {updatedFields, removedFields,
 *                truncatedArrays} (update: the top-level fields that
 *                differ), fullDocumentBeforeChange (update, replace,
 *                delete, with fullDocumentBeforeChange "whenAvailable" or
 *                "required": the document before the write, when the
 *                collection had changeStreamPreAndPostImages enabled then;
 *                else null, or with "required" the error 280
 *                ChangeStreamHistoryLost... as mongod: NoMatchingDocument)}
 *   options      fullDocument, fullDocumentBeforeChange, resumeAfter and
 *                startAfter (a token this server gave), startAtOperationTime;
 *                none: from the next event on
 *   stages       the stages after $changeStream may only be $match (the
 *                filters reporterd and the tests send), run over each event
 *   cursors      tailable and awaitData: the first batch is what is already
 *                there; a getMore waits up to its maxTimeMS (default 1000)
 *                for an event; every reply has cursor.postBatchResumeToken
 *   history      the newest HISTORY events are kept; a token older than that
 *                fails with 286 ChangeStreamHistoryLost
 *   readConcern  none or "majority"; another level fails with 72
 *                InvalidOptions, as mongod refuses it
 *   invalidate   a drop of the watched collection ends the stream with an
 *                "invalidate" event and closes the cursor
 *
 * Known deviations: update vs replace is decided per write command (a
 * command all of whose statements are replacements makes replace events);
 * no invalidate, drop, rename or DDL events; tokens are not mongod's
 * KeyString format (drivers treat them as opaque); a database or cluster
 * wide stream ($changeStream on 1 / the admin database) is refused.
 */
'use strict';

const BSON = require('bson');
const { Long, Timestamp } = BSON;
const { Context } = require('mingo/core');
const { Query } = require('mingo/query');
const queryOps = require('mingo/operators/query');

const CONTEXT = Context.init({ query: queryOps });

const HISTORY = 200000;
const DEFAULT_AWAIT_MS = 1000;
const NUMBERS = { promoteValues: false, promoteLongs: false };

function token(seq, idx) {
    return seq.toString(16).padStart(16, '0') + idx.toString(16).padStart(8, '0');
}

function parseToken(t, lib) {
    const d = t && typeof t === 'object' ? t._data : undefined;
    if (typeof d !== 'string' || !/^[0-9a-f]{24}$/.test(d)) {
        throw new lib.CmdError(260, 'InvalidResumeToken', `KeyString format error: not a resume token: ${BSON.EJSON.stringify(t)}`);
    }
    return { seq: parseInt(d.slice(0, 16), 16), idx: parseInt(d.slice(16), 16) };
}

const after = (e, p) => e.seq > p.seq || (e.seq === p.seq && e.idx > p.idx);

/* The top-level fields of post that differ from pre, and those pre had only. */
function describe(pre, post) {
    const a = BSON.deserialize(pre, NUMBERS);
    const b = BSON.deserialize(post, NUMBERS);
    const updatedFields = {};
    for (const k of Object.keys(b)) {
        if (k === '_id') continue;
        if (!(k in a) || !BSON.serialize({ v: a[k] }).equals(BSON.serialize({ v: b[k] }))) updatedFields[k] = b[k];
    }
    return { updatedFields, removedFields: Object.keys(a).filter((k) => !(k in b)), truncatedArrays: [] };
}

class ChangeStreams {
    constructor(rs) {
        this.rs = rs;
        this.events = [];               /* {seq, idx, wall, secs, inc, db, coll, type, id, pre, post, images} */
        this.cursors = new Map();       /* id string -> stream */
        this.seq = 0;
    }

    /* Called by ReplSet.commit with the entry it made. */
    record(entry, ops) {
        let idx = 0;
        const base = { seq: entry.seq, wall: entry.wall, secs: entry.secs, inc: entry.inc };
        for (const o of ops) {
            if (o.op === 'c' && (o.name === 'drop' || o.name === 'dropDatabase')) {
                /* a collection stream ends: drop, then invalidate */
                const coll = o.name === 'drop' ? o.cmd.drop : '*';
                const type = o.name === 'drop' ? 'drop' : 'dropDatabase';
                this.events.push(Object.assign({ idx: idx++, db: o.db, coll, type }, base));
                this.events.push(Object.assign({ idx: idx++, db: o.db, coll, type: 'invalidate' }, base));
                continue;
            }
            if (!['i', 'u', 'd'].includes(o.op) || ['local', 'admin', 'config'].includes(o.db)) continue;
            this.events.push({
                seq: entry.seq, idx: idx++, wall: entry.wall, secs: entry.secs, inc: entry.inc,
                db: o.db, coll: o.coll, id: o.id, pre: o.pre || null, post: o.raw || null, images: !!o.images,
                type: o.op === 'i' ? 'insert' : o.op === 'd' ? 'delete' : o.kind || 'update',
            });
        }
        if (this.events.length > HISTORY) this.events.splice(0, this.events.length - HISTORY);
    }

    static is(cmd) {
        return Array.isArray(cmd.pipeline) && cmd.pipeline.length > 0 && cmd.pipeline[0]
            && typeof cmd.pipeline[0] === 'object' && Object.prototype.hasOwnProperty.call(cmd.pipeline[0], '$changeStream');
    }

    owns(id) {
        const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : null;
        return key !== null && this.cursors.has(key);
    }

    open(m, cmd, ctx) {
        const lib = m.lib;
        if (typeof cmd.aggregate !== 'string') {
            throw new lib.CmdError(73, 'InvalidNamespace', "this test server's $changeStream watches one collection");
        }
        /* mongod: a change stream reads majority-committed data; an explicit
         * other level is refused */
        const rc = cmd.readConcern;
        if (rc && typeof rc === 'object' && rc.level !== undefined && rc.level !== 'majority') {
            throw new lib.CmdError(72, 'InvalidOptions',
                `Only 'majority' read concern is supported for $changeStream, got ${rc.level}`);
        }
        const spec = cmd.pipeline[0].$changeStream || {};
        const s = {
            ns: `${ctx.db}.${cmd.aggregate}`, db: ctx.db, coll: cmd.aggregate,
            fullDocument: spec.fullDocument || 'default',
            before: spec.fullDocumentBeforeChange || 'off',
            matchers: [],
            pos: null,
        };
        if (!['default', 'updateLookup', 'whenAvailable', 'required'].includes(s.fullDocument)) {
            throw new lib.CmdError(9, 'FailedToParse', `unknown full document option: '${s.fullDocument}'`);
        }
        if (!['off', 'whenAvailable', 'required'].includes(s.before)) {
            throw new lib.CmdError(9, 'FailedToParse', `unknown fullDocumentBeforeChange option: '${s.before}'`);
        }
        for (const st of cmd.pipeline.slice(1)) {
            if (!st || typeof st !== 'object' || Object.keys(st)[0] !== '$match') {
                throw new lib.CmdError(40324, 'Location40324', "this test server's change streams take only $match after $changeStream");
            }
            s.matchers.push(new Query(st.$match, { context: CONTEXT }));
        }
        const from = spec.resumeAfter || spec.startAfter;
        if (from) {
            s.pos = parseToken(from, lib);
            const oldest = this.events[0];
            if (oldest && after(oldest, s.pos) && (oldest.seq !== s.pos.seq || oldest.idx !== s.pos.idx + 1)
                && this.events.length >= HISTORY) {
                throw new lib.CmdError(286, 'ChangeStreamHistoryLost', 'Resume of change stream was not possible, as the resume point may no longer be in the oplog.');
            }
        } else if (spec.startAtOperationTime) {
            const t = spec.startAtOperationTime;
            const secs = t.high !== undefined ? t.high : t.t;
            const inc = t.low !== undefined ? t.low : t.i;
            const first = this.events.find((e) => e.secs > secs || (e.secs === secs && e.inc >= inc));
            s.pos = first ? { seq: first.seq, idx: first.idx - 1 } : { seq: this.rs.lastSeq + 1, idx: -1 };
        } else {
            s.pos = { seq: this.rs.lastSeq, idx: Number.MAX_SAFE_INTEGER };
        }
        const batchSize = cmd.cursor && typeof cmd.cursor.batchSize === 'number' ? cmd.cursor.batchSize : 101;
        this.seq += 1 + Math.floor(Math.random() * 1000);
        const id = Long.fromNumber(1e12 + this.seq);
        this.cursors.set(id.toString(), s);
        return this.reply(m, s, id, 'firstBatch', this.take(m, s, batchSize));
    }

    /* The index of the first event after pos (binary search). */
    firstAfter(pos) {
        let lo = 0;
        let hi = this.events.length;
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (after(this.events[mid], pos)) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    /* What member m may show: committed by a majority and applied by m. */
    visible(m) {
        return Math.min(this.rs.commitPoint(), m.applied);
    }

    /* Up to n events after s.pos that are visible and s matches. */
    take(m, s, n) {
        const out = [];
        const limit = this.visible(m);
        for (let i = this.firstAfter(s.pos); i < this.events.length && out.length < n; i++) {
            const e = this.events[i];
            if (e.seq > limit) break;
            s.pos = { seq: e.seq, idx: e.idx };
            if (e.db !== s.db || (e.coll !== s.coll && e.coll !== '*')) continue;
            const doc = this.eventDoc(m, s, e);
            if (e.type === 'invalidate') {
                /* delivered whatever the filter says; the cursor closes */
                out.push(BSON.serialize(doc));
                s.closed = true;
                break;
            }
            if (s.matchers.every((q) => q.test(BSON.deserialize(BSON.serialize(doc))))) out.push(BSON.serialize(doc));
        }
        /* past everything visible: resume after the newest entry */
        if (out.length < n && limit > s.pos.seq) s.pos = { seq: limit, idx: Number.MAX_SAFE_INTEGER };
        return out;
    }

    eventDoc(m, s, e) {
        const lib = m.lib;
        const doc = {
            _id: { _data: token(e.seq, e.idx) },
            operationType: e.type,
            clusterTime: new Timestamp({ t: e.secs, i: e.inc }),
            wallTime: new Date(e.wall),
        };
        if (e.type === 'invalidate') return doc;
        if (e.type === 'drop' || e.type === 'dropDatabase') {
            doc.ns = e.type === 'drop' ? { db: e.db, coll: e.coll } : { db: e.db };
            return doc;
        }
        if (e.type === 'insert' || e.type === 'replace') doc.fullDocument = BSON.deserialize(e.post, NUMBERS);
        if (e.type === 'update') {
            if (s.fullDocument === 'updateLookup') {
                const c = lib.getColl(s.db, s.coll, false);
                const d = c && c.ids.get(lib.idKey(e.id));
                doc.fullDocument = d ? BSON.deserialize(lib.serialize(lib.wrapDoc(d, c.schema)), NUMBERS) : null;
            } else if (s.fullDocument !== 'default') {
                if (!e.images && s.fullDocument === 'required') throw this.noImage(lib, 'post');
                doc.fullDocument = e.images ? BSON.deserialize(e.post, NUMBERS) : null;
            }
        }
        doc.ns = { db: e.db, coll: e.coll };
        doc.documentKey = { _id: e.pre ? BSON.deserialize(e.pre, NUMBERS)._id
            : e.post ? BSON.deserialize(e.post, NUMBERS)._id : e.id };
        if (e.type === 'update') doc.updateDescription = describe(e.pre, e.post);
        if (e.type !== 'insert' && s.before !== 'off') {
            if (!e.images && s.before === 'required') throw this.noImage(lib, 'pre');
            doc.fullDocumentBeforeChange = e.images ? BSON.deserialize(e.pre, NUMBERS) : null;
        }
        return doc;
    }

    noImage(lib, which) {
        return new lib.CmdError(280, 'ChangeStreamFatalError',
            `Change stream was configured to require a ${which}-image for all update, delete and replace events, ` +
            `but the ${which}-image was not found`);
    }

    reply(m, s, id, name, batch) {
        const pbrt = { _data: token(s.pos.seq, Math.min(s.pos.idx, 0xffffffff)) };
        if (s.closed) {
            this.cursors.delete(id.toString());
            id = Long.ZERO;
        }
        return new m.lib.RawReply(s.ns, id, name, batch, {}, { postBatchResumeToken: pbrt });
    }

    async getMore(m, cmd, ctx) {
        const key = cmd.getMore.toString();
        const s = this.cursors.get(key);
        if (s.ns !== `${ctx.db}.${cmd.collection}`) {
            throw new m.lib.CmdError(13, 'Unauthorized', `Requested getMore on namespace '${ctx.db}.${cmd.collection}', but cursor belongs to a different namespace ${s.ns}`);
        }
        const n = typeof cmd.batchSize === 'number' && cmd.batchSize > 0 ? cmd.batchSize : 1000;
        const wait = typeof cmd.maxTimeMS === 'number' ? cmd.maxTimeMS : DEFAULT_AWAIT_MS;
        let batch = this.take(m, s, n);
        if (!batch.length && wait > 0) {
            await this.rs.waitUntil(() => {
                const limit = this.visible(m);
                for (let i = this.firstAfter(s.pos); i < this.events.length && this.events[i].seq <= limit; i++) {
                    const e = this.events[i];
                    if (e.db === s.db && (e.coll === s.coll || e.coll === '*')) return true;
                }
                return false;
            }, Date.now() + wait, m);
            if (!this.cursors.has(key)) return this.reply(m, s, Long.ZERO, 'nextBatch', []);
            batch = this.take(m, s, n);
        }
        return this.reply(m, s, Long.fromString(key), 'nextBatch', batch);
    }

    kill(ids) {
        for (const id of ids || []) {
            const key = typeof id === 'number' ? String(id) : id && id._bsontype === 'Long' ? id.toString() : String(id);
            this.cursors.delete(key);
        }
    }
}

module.exports = { ChangeStreams };
