/*
 * ttl.js -- the TTL monitor of the TEST-ONLY MongoDB wire-protocol server
 * (NOT A DATABASE): as mongod's, every ttlMonitorSleepSecs seconds
 * (`--setParameter ttlMonitorSleepSecs=N`, default 60 as in mongod) it
 * deletes, in every collection with a TTL index (a single field with
 * expireAfterSeconds), the documents whose indexed field is a date older
 * than now - expireAfterSeconds, and in every clustered collection made
 * with expireAfterSeconds, those whose _id is such a date.  A value that is not a date never
 * expires, as in mongod (an array's dates: mongod takes the earliest;
 * this server's query on the field matches when any element does, which
 * is the same test).
 *
 * Each pass is an ordinary delete command run through runCommand, so in
 * replica-set mode only the primary deletes (a secondary's command fails
 * with NotWritablePrimary, which is ignored) and the deletes are
 * replicated like any other write.
 */
'use strict';

const { log } = require('./values.js');
const { databases } = require('./storage.js');

/* Run one pass: what each TTL index makes expire, deleted. */
async function ttlPass(runCommand) {
    const now = Date.now();
    for (const db of [...databases.values()]) {
        for (const coll of [...db.collections.values()]) {
            /* a clustered collection's TTL (create's expireAfterSeconds):
             * the _id's date, as mongod 5.2+ */
            const opts = coll.options || {};
            const specs = opts.expireAfterSeconds !== undefined
                ? [{ key: { _id: 1 }, expireAfterSeconds: opts.expireAfterSeconds }, ...coll.indexes] : coll.indexes;
            for (const spec of specs) {
                const secs = spec.expireAfterSeconds === undefined ? NaN : Number(spec.expireAfterSeconds);
                const fields = Object.keys(spec.key || {});
                if (!Number.isFinite(secs) || fields.length !== 1) continue;
                const cmd = {
                    delete: coll.name,
                    deletes: [{ q: { [fields[0]]: { $lt: new Date(now - secs * 1000) } }, limit: 0 }],
                };
                const r = await runCommand({ id: 'TTLMonitor' }, db.name, cmd, {});
                if (r && r.ok === 1 && r.n > 0) log(`TTL monitor: ${db.name}.${coll.name}: ${r.n} expired`);
            }
        }
    }
}

/* Start the monitor; sleepSecs <= 0 turns it off. */
function startTtlMonitor(sleepSecs, runCommand) {
    if (!(sleepSecs > 0)) return null;
    let running = false;
    const t = setInterval(() => {
        if (running) return;
        running = true;
        ttlPass(runCommand).catch((e) => log(`TTL monitor: ${e && e.stack || e}`))
            .finally(() => { running = false; });
    }, sleepSecs * 1000);
    t.unref();
    return t;
}

module.exports = { startTtlMonitor, ttlPass };
