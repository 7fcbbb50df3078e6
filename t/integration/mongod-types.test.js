/*
 * mongod-types.test.js -- BSON comparison order and numeric types: order
 * across types in query and expression operators, $sort, $min/$max and
 * $group keys; exact int64/double equality above 2^53; numbers of every
 * type (int32, int64, double, Decimal128) equal by value in queries,
 * indexes, $group (whose _id is the first value seen) and $sort, each
 * returned with its own type, $type's names; $inc as mongod does it (int32
 * widening to int64, an int64 overflow failing with BadValue); MongoDB's
 * null handling and error codes in $subtract/$divide/$multiply.
 *
 * Part of the self-test of t/mongod (the TEST-ONLY MongoDB wire-protocol
 * server, t/mongod/README.md), through the official Node driver.
 * Written to pass unchanged against a real MongoDB too
 * (REPORTERD_TEST_MONGODB_URI=mongodb://...), which is how the stand-in is
 * kept honest.  Where reporterd depends on MongoDB's behaviour, each test
 * names the behaviour in its title.  The other parts: mongod-commands.test.js, mongod-index.test.js.
 */
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const M = require('../lib/mongod-selftest.js');
const { docsExamined, D, num } = M;

const { Long, Double, Int32, MaxKey, Decimal128 } = require('mongodb');
const BSON = require('bson');

let mongo, client, db, names;                    /* set by before() */
before(async () => ({ mongo, client, db, names } = await M.open('rdmongod')));
after(() => M.close(client, names));

/* ------------------------------------------------------------------ */
/* MongoDB behaviour the server mirrors (each test names it)          */
/* ------------------------------------------------------------------ */

/* One document per BSON type bracket; _id says which. */
const MIXED = () => [
    { _id: 1, v: null },
    { _id: 2 },                              /* v missing */
    { _id: 3, v: 3 },
    { _id: 4, v: 'a' },
    { _id: 5, v: [1, 20] },
    { _id: 6, v: new Date(5) },
    { _id: 7, v: true },
    { _id: 8, v: { a: 1 } },
    { _id: 9, v: [] },
];

async function mixedCollection(name) {
    const c = db.collection(name);
    await c.insertMany(MIXED());
    return c;
}

const idsOf = (docs) => docs.map((d) => d._id);

test('query comparisons match within one BSON type only (MongoDB: {v: {$lt: 10}} skips null, missing and ' +
    'strings; {v: null} and {v: {$lte: null}} match null and missing; arrays match by element)', async () => {
    const c = await mixedCollection('q_order');
    const ids = async (filter) => idsOf(await c.find(filter).sort({ _id: 1 }).toArray());
    assert.deepEqual(await ids({ v: { $lt: 10 } }), [3, 5], '$lt 10: the number and the array holding 1');
    assert.deepEqual(await ids({ v: { $gt: 10 } }), [5], '$gt 10: only the array holding 20');
    assert.deepEqual(await ids({ v: { $gte: 'a' } }), [4], '$gte "a": strings only, not the types ranked above');
    assert.deepEqual(await ids({ v: null }), [1, 2], 'null matches null and missing');
    assert.deepEqual(await ids({ v: { $lte: null } }), [1, 2], '$lte null matches null and missing');
    assert.deepEqual(await ids({ v: { $lt: null } }), [], '$lt null matches nothing');
    assert.deepEqual(await ids({ v: { $ne: null } }), [3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await ids({ v: { $in: [null, 'a', 20] } }), [1, 2, 4, 5]);
    assert.deepEqual(await ids({ v: { $nin: [null, 'a', 20] } }), [3, 6, 7, 8, 9]);
    assert.deepEqual(await ids({ v: { $lt: new MaxKey() } }), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'MaxKey bounds every type');
    assert.deepEqual(await ids({ v: { $gte: new Date(0) } }), [6]);
    assert.deepEqual(await ids({ v: { a: 1 } }), [8]);
    assert.deepEqual(await ids({ v: [1, 20] }), [5], 'a whole array matches');
    assert.deepEqual(await ids({ $expr: { $lt: ['$v', 10] } }), [1, 2, 3], '$expr compares across types');
});

test('expression comparisons follow the BSON type order, missing < null < numbers < string < object < array ' +
    '(MongoDB: {$lt: [null, 10]} and {$lt: ["$missing", 10]} are true, {$eq: ["$missing", null]} is false)', async () => {
    const c = await mixedCollection('x_order');
    const rows = await c.aggregate([
        {
            $project: {
                lt: { $lt: ['$v', 10] },
                lte: { $lte: ['$v', null] },
                gt: { $gt: ['$v', 'zzz'] },
                gte: { $gte: ['$v', 3] },
                eqNull: { $eq: ['$v', null] },
                ne: { $ne: ['$v', 3] },
                cmp: { $cmp: ['$v', 10] },
                bucket: { $cond: [{ $lt: ['$v', 10] }, 'below', 'not below'] },
                min: { $min: ['$v', 10] },
                max: { $max: ['$v', 10] },
            },
        },
        { $sort: { _id: 1 } },
    ]).toArray();
    const col = (k) => rows.map((r) => r[k]);
    /*                           null   missing 3      'a'    [1,20] date   true   {a:1}  []   */
    assert.deepEqual(col('lt'), [true, true, true, false, false, false, false, false, false], '$lt [v, 10]');
    assert.deepEqual(col('lte'), [true, true, false, false, false, false, false, false, false], '$lte [v, null]');
    assert.deepEqual(col('gt'), [false, false, false, false, true, true, true, true, true], '$gt [v, "zzz"]');
    assert.deepEqual(col('gte'), [false, false, true, true, true, true, true, true, true], '$gte [v, 3]');
    assert.deepEqual(col('eqNull'), [true, false, false, false, false, false, false, false, false], 'missing is not null');
    assert.deepEqual(col('ne'), [true, true, false, true, true, true, true, true, true], '$ne [v, 3]');
    assert.deepEqual(col('cmp'), [-1, -1, -1, 1, 1, 1, 1, 1, 1], '$cmp [v, 10]');
    assert.deepEqual(col('bucket'), ['below', 'below', 'below', 'not below', 'not below', 'not below', 'not below',
        'not below', 'not below'], '$cond on $lt');
    /* $min/$max expressions ignore null and missing operands */
    assert.deepEqual(col('min'), [10, 10, 3, 10, 10, 10, 10, 10, 10], '$min [v, 10]');
    assert.deepEqual(col('max').map((v) => (v instanceof Date ? 'date' : v)),
        [10, 10, 10, 'a', [1, 20], 'date', true, { a: 1 }, []], '$max [v, 10]');
    const [lit] = await c.aggregate([{ $limit: 1 },
        { $project: { _id: 0, a: { $lt: [null, 10] }, b: { $gt: ['1', 2] }, c: { $lt: [{ $literal: [] }, {}] } } }]).toArray();
    assert.deepEqual(lit, { a: true, b: true, c: false }, 'literals: null < 10, "1" > 2, [] > {}');
});

test('$sort, $min/$max accumulators and $group keys use the BSON type order (MongoDB: missing sorts as null, ' +
    'an array by its smallest element ascending / largest descending, an empty array below null)', async () => {
    const c = await mixedCollection('s_order');
    const asc = idsOf(await c.find({}).sort({ v: 1, _id: 1 }).toArray());
    assert.deepEqual(asc, [9, 1, 2, 5, 3, 4, 8, 7, 6], 'find sort ascending');
    const desc = idsOf(await c.find({}).sort({ v: -1, _id: 1 }).toArray());
    assert.deepEqual(desc, [6, 7, 8, 4, 5, 3, 1, 2, 9], 'find sort descending');
    const aggAsc = idsOf(await c.aggregate([{ $sort: { v: 1, _id: 1 } }]).toArray());
    assert.deepEqual(aggAsc, asc, '$sort stage');
    const [g] = await c.aggregate([{ $group: { _id: null, mn: { $min: '$v' }, mx: { $max: '$v' } } }]).toArray();
    assert.equal(g.mn, 3, '$min skips null and missing; numbers rank lowest of the rest');
    assert.ok(g.mx instanceof Date && g.mx.getTime() === 5, `$max: the date ranks highest, got ${g.mx}`);
    const [none] = await c.aggregate([{ $match: { _id: { $in: [1, 2] } } },
        { $group: { _id: null, mn: { $min: '$v' }, mx: { $max: '$v' } } }]).toArray();
    assert.deepEqual(none, { _id: null, mn: null, mx: null }, 'only null and missing: null');
    const n = db.collection('s_nums');
    await n.insertMany([{ v: 2 }, { v: new Double(2) }, { v: Long.fromNumber(2) }, { v: 'b' }, { v: 1.5 }, { v: null }]);
    const keys = await n.aggregate([{ $group: { _id: '$v' } }, { $sort: { _id: 1 } }]).toArray();
    assert.deepEqual(keys.map((k) => k._id), [null, 1.5, 2, 'b'], '$group: 2, 2.0 and 2L are one key');
});

/* The pipeline src/report.c built before issue 11 (doubles, no validity check), for one price:
 * kept to document MongoDB's semantics the stand-in must reproduce. */
function reporterdPipeline(phones, price) {
    const cmp = (op, v) => ({ [op]: ['$dur', new Double(v)] });
    const condSum = (cond, then) => ({ $sum: { $cond: [cond, then === undefined ? new Int32(1) : then, new Int32(0)] } });
    return [
        { $match: { phone: { $in: phones.map((p) => Long.fromNumber(p)) } } },
        { $project: { _id: 0, phone: 1, dur: { $divide: [{ $subtract: ['$end_date', '$start_date'] }, new Double(1000)] } } },
        { $addFields: { price: { $multiply: ['$dur', new Double(price)] } } },
        {
            $group: {
                _id: '$phone',
                cnt_all: { $sum: new Int32(1) },
                cnt_10: condSum(cmp('$lt', 10)),
                cnt_10_30: condSum({ $and: [cmp('$gte', 10), cmp('$lt', 30)] }),
                cnt_30: condSum(cmp('$gte', 30)),
                sum_price_over_15: condSum(cmp('$gt', 15), '$price'),
                min_price: { $min: '$price' },
                max_price: { $max: '$price' },
                avg_dur: { $avg: '$dur' },
            },
        },
    ];
}

test("reporterd's pipeline on records with missing or null dates: they count in the < 10 s bucket and nowhere " +
    'else (MongoDB: the duration is null and {$lt: [null, 10]} is true), a string phone never matches', async () => {
    const c = db.collection('rd_cross');
    const t0 = Date.UTC(2023, 0, 1);
    await c.insertMany([
        { phone: 5, start_date: new Date(t0), end_date: new Date(t0 + 20000) },        /* 20 s */
        { phone: 5, end_date: new Date(t0) },                                           /* no start: null */
        { phone: 5, start_date: null, end_date: null },                                 /* null - null: null */
        { phone: Long.fromNumber(5), start_date: new Date(t0), end_date: new Date(t0 + 4000) },  /* 4 s, int64 */
        { phone: '5', start_date: new Date(t0), end_date: new Date(t0 + 1000) },        /* string: no match */
        { phone: 6 },                                                                   /* no dates at all */
    ]);
    const rows = await c.aggregate(reporterdPipeline([5, 6, 7], 2)).toArray();
    rows.sort((a, b) => a._id - b._id);
    assert.deepEqual(rows.map((r) => r._id), [5, 6], 'phones 5 and 6 have records; "5" is a string');
    const [p5, p6] = rows;
    assert.deepEqual({ all: p5.cnt_all, c10: p5.cnt_10, c1030: p5.cnt_10_30, c30: p5.cnt_30 },
        { all: 4, c10: 3, c1030: 1, c30: 0 }, 'phone 5: 4 s and the two null durations are < 10 s, 20 s is in [10, 30)');
    assert.equal(p5.sum_price_over_15, 40, 'only the 20 s record is over 15 s: 20 * 2');
    assert.equal(p5.min_price, 8, '$min ignores the null prices: 4 * 2');
    assert.equal(p5.max_price, 40);
    assert.equal(p5.avg_dur, 12, '$avg ignores the null durations: (20 + 4) / 2');
    assert.deepEqual({ all: p6.cnt_all, c10: p6.cnt_10, c1030: p6.cnt_10_30, c30: p6.cnt_30, sum: p6.sum_price_over_15 },
        { all: 1, c10: 1, c1030: 0, c30: 0, sum: 0 });
    assert.equal(p6.min_price, null);
    assert.equal(p6.max_price, null);
    assert.equal(p6.avg_dur, null);
});

test('$subtract, $divide and $multiply: null or missing operands give null, other types fail with ' +
    "MongoDB's codes (16556, 16613, 16609, 16555)", async () => {
    const c = db.collection('arith');
    const t0 = new Date(Date.UTC(2023, 0, 1));
    await c.insertMany([
        { _id: 's', start: '2023-01-01', end: '2023-01-02' },
        { _id: 'sd', start: '2023-01-01', end: t0 },
        { _id: 'ds', start: t0, end: '2023-01-02' },
        { _id: 'n', start: 1000, end: 5000 },
        { _id: 'dn', start: 1000, end: t0 },
    ]);
    const run = (id, project) => c.aggregate([{ $match: { _id: id } }, { $project: project }]).toArray();
    const sub = { d: { $subtract: ['$end', '$start'] } };
    const fails = async (id, project, code, re) => {
        await assert.rejects(run(id, project), (e) => {
            assert.equal(e.code, code, `${id}: ${e.message}`);
            assert.match(e.message, re);
            return true;
        });
    };
    await fails('s', sub, 16556, /subtract.*string/);
    await fails('ds', sub, 16556, /subtract.*date.*string|subtract.*string/);
    await fails('sd', sub, 16613, /subtract.*string.*[Dd]ate/);
    assert.deepEqual(await run('n', sub), [{ _id: 'n', d: 4000 }], 'numbers subtract');
    const [dn] = await run('dn', sub);
    assert.ok(dn.d instanceof Date && dn.d.getTime() === t0.getTime() - 1000, 'date - number is a date');
    await fails('dn', { d: { $divide: [{ $subtract: ['$end', '$start'] }, 1000] } }, 16609, /\$divide only supports numeric types, not date and int/);
    await fails('s', { d: { $multiply: ['$start', 2] } }, 16555, /\$multiply only supports numeric types, not string/);
    await fails('n', { d: { $divide: ['$end', 0] } }, 16608, /divide by zero/);
    const [nulls] = await run('n', {
        _id: 0,
        a: { $subtract: ['$end', '$nope'] }, b: { $subtract: [null, '$start'] }, c: { $divide: ['$nope', 1000] },
        d: { $multiply: ['$nope', 2] }, e: { $add: ['$end', null] }, f: { $divide: [null, 'x'] },
    });
    assert.deepEqual(nulls, { a: null, b: null, c: null, d: null, e: null, f: null });
});

test('int64 above 2^53 matches an equal double exactly (MongoDB compares long and double by value: ' +
    'Long(2^53 + 1) != 2^53, Long(2^53) == 2^53) in $match, $in, indexes and $group keys', async () => {
    const c = db.collection('bigint');
    const P53 = '9007199254740992';
    const P53P1 = '9007199254740993';
    await c.insertMany([
        { _id: 1, p: Long.fromString(P53P1) },
        { _id: 2, p: Long.fromString(P53) },
        { _id: 3, p: 9007199254740992 },           /* the double 2^53 */
        { _id: 4, p: new Int32(5) },
        { _id: 5, p: Long.fromNumber(5) },
        { _id: 6, p: new Double(5) },
        { _id: 7, p: '5' },
    ]);
    const check = async (label) => {
        const ids = async (f) => idsOf(await c.find(f).sort({ _id: 1 }).toArray());
        assert.deepEqual(await ids({ p: 9007199254740992 }), [2, 3], `${label}: double 2^53`);
        assert.deepEqual(await ids({ p: Long.fromString(P53) }), [2, 3], `${label}: Long(2^53)`);
        assert.deepEqual(await ids({ p: Long.fromString(P53P1) }), [1], `${label}: Long(2^53 + 1)`);
        assert.deepEqual(await ids({ p: { $in: [Long.fromString(P53), Long.fromNumber(5)] } }), [2, 3, 4, 5, 6], `${label}: $in`);
        assert.deepEqual(await ids({ p: { $gt: 9007199254740992 } }), [1], `${label}: $gt 2^53`);
        assert.deepEqual(await ids({ p: { $lt: Long.fromString(P53P1) } }), [2, 3, 4, 5, 6], `${label}: $lt Long(2^53 + 1)`);
        const m = await c.aggregate([{ $match: { p: { $in: [Long.fromString(P53P1)] } } }]).toArray();
        assert.deepEqual(idsOf(m), [1], `${label}: $match $in Long(2^53 + 1)`);
    };
    await check('no index');
    await c.createIndex({ p: 1 });
    await check('indexed');
    const groups = await c.aggregate([{ $group: { _id: '$p', ids: { $push: '$_id' } } }]).toArray();
    const keyOf = (id) => (typeof id === 'string' ? `string ${id}` : `number ${String(id)}`);
    const byKey = new Map(groups.map((g) => [keyOf(g._id), g.ids.sort((a, b) => a - b)]));
    assert.equal(groups.length, 4, `groups: ${JSON.stringify([...byKey])}`);
    assert.deepEqual(byKey.get(`number ${P53}`), [2, 3], 'Long(2^53) and 2^53 form one group');
    assert.deepEqual(byKey.get(`number ${P53P1}`), [1], 'Long(2^53 + 1) is a group of its own');
    assert.deepEqual(byKey.get('number 5'), [4, 5, 6], 'int 5, long 5 and double 5 form one group');
    assert.deepEqual(byKey.get('string 5'), [7], 'the string "5" is a group of its own');
});

/* ---- numbers of every type: phones, $group, $inc ---- */

const RAW = { promoteValues: false, promoteLongs: false };

/* The BSON type of a value read with RAW, and its numeric value. */
function bt(v) {
    if (v === undefined) return 'missing';
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'array';
    if (typeof v === 'string') return 'string';
    return { Int32: 'int', Long: 'long', Double: 'double', Decimal128: 'decimal' }[v._bsontype] || typeof v;
}


/* Phones as reporterd may find them: 8 as int32, int64, double and two
 * decimals, non-integral decimals, a string, an array, null, missing, a
 * big phone in three types.  [BSON value, model]: the model is the value
 * MongoDB compares (a JS number holds each exactly), the oracle's input. */
const PHONES = [
    [new Int32(8), 8], [Long.fromNumber(8), 8], [new Double(8), 8], [D('8'), 8], [D('8.00'), 8],
    [D('8.5'), 8.5], [D('7.5'), 7.5], ['8', '8'], [[new Int32(8), new Int32(9)], [8, 9]], [new Int32(9), 9],
    [null, null], [undefined, undefined], [Long.fromString('79161234567'), 79161234567],
    [D('79161234567'), 79161234567], [new Double(79161234567), 79161234567], [D('-0'), 0],
];
const RBS = [
    [undefined, undefined], [null, null], [new Int32(3), 3], [Long.fromNumber(5), 5], [new Double(5.5), 5.5],
    [D('5'), 5], [D('7.25'), 7.25], ['x', 'x'],
];

/* MongoDB's element-wise match: an array matches when an element does. */
const any = (m, f) => (Array.isArray(m) ? m.some(f) : f(m));
const isNum = (x) => typeof x === 'number';

test('phones compare by value across int32, int64, double and Decimal128 (MongoDB numeric equality): ' +
    '$eq, $in, $gt/$gte/$lt/$lte, $not, $ne, $nin and array elements; a scan of the compound index ' +
    '{phone: 1, rb: 1} finds the same documents as a collection scan', async () => {
    const c = db.collection('num_phones');
    const docs = [];
    const model = new Map();
    let id = 0;
    for (const [p, pm] of PHONES) {
        for (const [r, rm] of RBS) {
            const d = { _id: ++id };
            if (p !== undefined) d.phone = p;
            if (r !== undefined) d.rb = r;
            docs.push(d);
            model.set(id, { p: pm, r: rm });
        }
    }
    await c.insertMany(docs);
    await db.command({ createIndexes: 'num_phones', indexes: [{ key: { phone: 1, rb: 1 }, name: 'phone_rb' }] });
    const Q = [
        [{ phone: new Int32(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: Long.fromNumber(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: new Double(8) }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: D('8.0') }, (m) => any(m.p, (x) => x === 8)],
        [{ phone: D('8.5') }, (m) => any(m.p, (x) => x === 8.5)],
        [{ phone: '8' }, (m) => any(m.p, (x) => x === '8')],
        [{ phone: null }, (m) => m.p === null || m.p === undefined],
        [{ phone: { $in: [Long.fromNumber(8), D('79161234567')] } }, (m) => any(m.p, (x) => x === 8 || x === 79161234567)],
        [{ phone: { $in: [new Double(79161234567), '8'] } }, (m) => any(m.p, (x) => x === 79161234567 || x === '8')],
        [{ phone: { $gt: D('7.5') } }, (m) => any(m.p, (x) => isNum(x) && x > 7.5)],
        [{ phone: { $gte: new Int32(8), $lt: D('9') } }, (m) => any(m.p, (x) => isNum(x) && x >= 8 && x < 9)],
        [{ phone: { $lte: new Double(8) } }, (m) => any(m.p, (x) => isNum(x) && x <= 8)],
        [{ phone: { $not: { $lte: Long.fromNumber(8) } } }, (m) => !any(m.p, (x) => isNum(x) && x <= 8)],
        [{ phone: { $ne: D('8.000') } }, (m) => !any(m.p, (x) => x === 8)],
        [{ phone: { $nin: [new Int32(8), Long.fromNumber(9)] } }, (m) => !any(m.p, (x) => x === 8 || x === 9)],
        [{ phone: new Int32(8), rb: { $not: { $lte: Long.fromNumber(5) } } },
            (m) => any(m.p, (x) => x === 8) && !any(m.r, (x) => isNum(x) && x <= 5)],
        [{ phone: { $in: [new Int32(8), Long.fromString('79161234567')] }, rb: { $gt: D('5') } },
            (m) => any(m.p, (x) => x === 8 || x === 79161234567) && any(m.r, (x) => isNum(x) && x > 5)],
        [{ phone: D('8'), rb: null }, (m) => any(m.p, (x) => x === 8) && (m.r === null || m.r === undefined)],
    ];
    for (const [f, want] of Q) {
        const expect = [...model].filter(([, m]) => want(m)).map(([k]) => k);
        const label = BSON.EJSON.stringify(f);
        for (const hint of [{ $natural: 1 }, { phone: 1, rb: 1 }, 'phone_rb', undefined]) {
            const got = idsOf(await c.find(f, hint === undefined ? {} : { hint }).sort({ _id: 1 }).toArray());
            assert.deepEqual(got, expect, `${label} with hint ${JSON.stringify(hint)}`);
        }
        assert.equal(await c.countDocuments(f), expect.length, `countDocuments ${label}`);
        const agg = await c.aggregate([{ $match: f }, { $sort: { _id: 1 } }]).toArray();
        assert.deepEqual(idsOf(agg), expect, `$match ${label}`);
    }

    /* around 2^53 a Decimal128 is exact too: Decimal128("9007199254740993.0") is Long(2^53 + 1), not the
     * double 2^53 */
    const big = db.collection('num_big');
    await big.insertMany([{ _id: 1, p: Long.fromString('9007199254740993') }, { _id: 2, p: D('9007199254740993.0') },
        { _id: 3, p: new Double(9007199254740992) }, { _id: 4, p: D('9007199254740992') }]);
    for (const ix of [false, true]) {
        if (ix) await big.createIndex({ p: 1 });
        const bids = async (f) => idsOf(await big.find(f).sort({ _id: 1 }).toArray());
        assert.deepEqual(await bids({ p: Long.fromString('9007199254740993') }), [1, 2], `index ${ix}`);
        assert.deepEqual(await bids({ p: D('9007199254740992.00') }), [3, 4], `index ${ix}`);
        assert.deepEqual(await bids({ p: { $in: [D('9007199254740993')] } }), [1, 2], `index ${ix}`);
        assert.deepEqual(await bids({ p: { $gt: D('9007199254740992.5') } }), [1, 2], `index ${ix}`);
    }
    const bg = await big.aggregate([{ $sort: { _id: 1 } }, { $group: { _id: '$p', n: { $sum: 1 } } }, { $sort: { _id: 1 } }], RAW).toArray();
    assert.deepEqual(bg.map((g) => [bt(g._id), g._id.toString(), num(g.n)]),
        [['double', '9007199254740992', 2], ['long', '9007199254740993', 2]]);

    /* the index holds numbers by value: 8 of every type is one point of it (scalars only here: this
     * server's scans also examine the documents it cannot encode, arrays among them) */
    const pts = db.collection('num_points');
    const eight = [new Int32(8), Long.fromNumber(8), new Double(8), D('8'), D('8.00')];
    const five = [new Int32(5), Long.fromNumber(5), new Double(5), D('5.0')];
    const pdocs = [];
    for (let i = 0; i < 200; i++) {
        pdocs.push({ _id: i, phone: i % 3 ? eight[i % 5] : new Int32(9), rb: i % 2 ? five[i % 4] : D(String(i % 7)) });
    }
    await pts.insertMany(pdocs);
    await pts.createIndex({ phone: 1, rb: 1 });
    const want = pdocs.filter((d) => num(d.phone) === 8 && num(d.rb) === 5).length;
    assert.ok(want > 20);
    const ex = await db.command({ explain: { find: 'num_points', filter: { phone: D('8.00'), rb: Long.fromNumber(5) },
        hint: { phone: 1, rb: 1 } }, verbosity: 'executionStats' });
    assert.equal(Number(ex.executionStats.nReturned), want);
    assert.equal(docsExamined(ex), want, 'the point {phone: 8, rb: 5} examines only its documents');
});

test('$group _id "$phone": numerically equal phones of different types form one group whose _id is the ' +
    'first value seen, type included (MongoDB: DocumentSourceGroup keeps the first key); its counts and ' +
    'sums are right, a $sum over Decimal128 is a Decimal128; $sort orders mixed numeric types by value; ' +
    '$type names int, long, double and "decimal", in expressions and queries', async () => {
    const c = db.collection('num_groups');
    const docs = PHONES.map(([p], i) => {
        const d = { _id: i + 1, seq: i, ms: new Int32(1000 * (i + 1)) };
        if (p !== undefined) d.phone = p;
        return d;
    });
    await c.insertMany(docs);
    const eights = PHONES.map(([, m], i) => (m === 8 ? i : -1)).filter((i) => i >= 0);
    assert.equal(eights.length, 5);
    for (const k of eights) {
        const got = await c.aggregate([
            { $addFields: { lead: { $eq: ['$seq', k] } } },
            { $sort: { lead: -1, seq: 1 } },
            { $group: { _id: '$phone', n: { $sum: 1 }, ms: { $sum: '$ms' }, total: { $sum: '$phone' } } },
        ], RAW).toArray();
        const eight = got.filter((g) => bt(g._id) !== 'string' && bt(g._id) !== 'array' && num(g._id) === 8);
        assert.equal(eight.length, 1, `one group for 8: ${BSON.EJSON.stringify(got.map((g) => g._id))}`);
        const g = eight[0];
        const first = PHONES[k][0];
        assert.equal(bt(g._id), bt(first), `the group's _id has the type of the first 8 seen (${bt(first)})`);
        assert.equal(g._id.toString(), first.toString(), 'and its very value (Decimal128 "8.00" stays "8.00")');
        assert.equal(num(g.n), 5);
        assert.equal(num(g.ms), eights.reduce((s, i) => s + 1000 * (i + 1), 0), 'ms summed over the five');
        assert.equal(bt(g.total), 'decimal', '$sum over values including a Decimal128 is a Decimal128');
        assert.equal(num(g.total), 40);
        const others = got.filter((x) => x !== g).map((x) => bt(x._id) + ':' + BSON.EJSON.stringify(x._id, { relaxed: true }));
        assert.equal(got.length, 9, `groups: 8, 8.5, 7.5, "8", [8, 9], 9, null (null and missing), big, 0: ${others}`);
    }

    /* $sort: null and missing first, then numbers by value (an array by its least element), then strings */
    const sorted = await c.find({}, { projection: { _id: 1 } }).sort({ phone: 1, _id: 1 }).toArray();
    const rank = (m) => (m === null || m === undefined ? [0, 0] : typeof m === 'string' ? [2, m]
        : [1, Array.isArray(m) ? Math.min(...m) : m]);
    const want = PHONES.map(([, m], i) => ({ id: i + 1, k: rank(m) })).sort((a, b) =>
        a.k[0] - b.k[0] || (a.k[1] < b.k[1] ? -1 : a.k[1] > b.k[1] ? 1 : 0) || a.id - b.id).map((x) => x.id);
    assert.deepEqual(idsOf(sorted), want);
    const sortedDesc = await c.aggregate([{ $sort: { phone: -1, _id: 1 } }, { $project: { _id: 1 } }]).toArray();
    const rankDesc = (m) => (Array.isArray(m) ? [1, Math.max(...m)] : rank(m));
    const wantDesc = PHONES.map(([, m], i) => ({ id: i + 1, k: rankDesc(m) })).sort((a, b) =>
        b.k[0] - a.k[0] || (a.k[1] < b.k[1] ? 1 : a.k[1] > b.k[1] ? -1 : 0) || a.id - b.id).map((x) => x.id);
    assert.deepEqual(idsOf(sortedDesc), wantDesc, 'descending: an array by its greatest element');

    /* $type */
    const types = await c.aggregate([{ $project: { t: { $type: '$phone' }, n: { $isNumber: '$phone' } } }, { $sort: { _id: 1 } }]).toArray();
    assert.deepEqual(types.map((d) => d.t), PHONES.map(([p]) => bt(p)));
    assert.deepEqual(types.map((d) => d.n), PHONES.map(([p]) => ['int', 'long', 'double', 'decimal'].includes(bt(p))));
    const ofType = async (t) => idsOf(await c.find({ phone: { $type: t } }).sort({ _id: 1 }).toArray());
    const idsWhere = (f) => PHONES.map(([p], i) => (f(p) ? i + 1 : 0)).filter((i) => i);
    for (const t of ['int', 'long', 'double', 'decimal']) {
        assert.deepEqual(await ofType(t), idsWhere((p) => bt(p) === t || (Array.isArray(p) && p.some((e) => bt(e) === t))), `$type ${t}`);
    }
    assert.deepEqual(await ofType(19), await ofType('decimal'), '$type 19 is "decimal"');
    assert.deepEqual(await ofType('number'), idsWhere((p) => ['int', 'long', 'double', 'decimal', 'array'].includes(bt(p))));
    /* find returns every value with its own type */
    const back = await c.find({}, RAW).sort({ _id: 1 }).toArray();
    assert.deepEqual(back.map((d) => bt(d.phone)), PHONES.map(([p]) => bt(p)));
});

test('$inc as mongod does it: int32 past 2^31 becomes int64; an int64 past 2^63 is not written and fails ' +
    'with BadValue (2) "Failed to apply $inc operations to current value ((NumberLong)...) for document ' +
    '{_id: ...}" (update and findAndModify); a multi-document update stops at that document; ' +
    'double and Decimal128 operands widen the result', async () => {
    const c = db.collection('num_inc');
    const MAX = Long.fromString('9223372036854775807');
    const MIN = Long.fromString('-9223372036854775808');
    await c.insertMany([
        { _id: 1, a: new Int32(2147483647) }, { _id: 2, a: new Int32(-2147483648) }, { _id: 3, a: MAX },
        { _id: 4, a: MIN }, { _id: 5, a: new Int32(42) }, { _id: 6, a: Long.fromNumber(5) }, { _id: 7, a: new Int32(5) },
        { _id: 8, a: new Double(1.5) }, { _id: 9, a: D('1.5') }, { _id: 10, a: Long.fromNumber(5) }, { _id: 11, a: 's' },
        { _id: 12, a: new Int32(5) }, { _id: 13, a: new Int32(5) }, { _id: 14, a: new Int32(5) },
    ]);
    const get = async (id) => (await c.findOne({ _id: id }, RAW)).a;
    const upd = (id, inc, extra = {}) => db.command(Object.assign({ update: 'num_inc', updates: [{ q: { _id: id }, u: { $inc: inc } }] }, extra));

    let r = await upd(1, { a: new Int32(1) });
    assert.equal(r.nModified, 1);
    assert.equal(bt(await get(1)), 'long', 'int32 2147483647 + 1 is an int64');
    assert.equal((await get(1)).toString(), '2147483648');
    await upd(2, { a: new Int32(-1) });
    assert.equal(bt(await get(2)), 'long');
    assert.equal((await get(2)).toString(), '-2147483649');

    const overflow = [[3, new Int32(1), '(NumberLong)9223372036854775807'], [4, new Int32(-1), '(NumberLong)-9223372036854775808'],
        [5, MAX, '(NumberInt)42']];
    for (const [id, by, cur] of overflow) {
        const before = (await get(id)).toString();
        r = await upd(id, { a: by });
        assert.equal(r.ok, 1);
        assert.equal(r.n, 0, 'the failed statement counts nothing');
        assert.equal(r.nModified, 0);
        assert.equal(r.writeErrors.length, 1, JSON.stringify(r));
        assert.equal(r.writeErrors[0].index, 0);
        assert.equal(r.writeErrors[0].code, 2);
        assert.equal(r.writeErrors[0].errmsg, `Failed to apply $inc operations to current value (${cur}) for document {_id: ${id}}`);
        assert.equal((await get(id)).toString(), before, 'nothing written');
    }
    await assert.rejects(c.updateOne({ _id: 3 }, { $inc: { a: 1 } }), (e) => e.code === 2);
    await assert.rejects(db.command({ findAndModify: 'num_inc', query: { _id: 3 }, update: { $inc: { a: new Int32(1) } } }), (e) => {
        assert.equal(e.code, 2);
        assert.equal(e.codeName, 'BadValue');
        assert.ok(e.message.endsWith('Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) ' +
            'for document {_id: 3}'), e.message);
        if (!mongo.external) assert.match(e.message, /^Plan executor error during findAndModify :: caused by :: /);
        return true;
    });
    assert.equal((await get(3)).toString(), MAX.toString());

    /* the types of the sum (SafeNum): int64 stays int64, a double or a Decimal128 operand widens */
    await upd(6, { a: new Int32(1) });
    assert.equal(bt(await get(6)), 'long');
    assert.equal(num(await get(6)), 6);
    await upd(7, { a: new Double(0.5) });
    assert.equal(bt(await get(7)), 'double');
    assert.equal(num(await get(7)), 5.5);
    await upd(8, { a: D('0.25') });
    assert.equal(bt(await get(8)), 'decimal');
    assert.equal((await get(8)).toString(), '1.75000000000000', 'the double taken to 15 digits first');
    await upd(9, { a: new Int32(1) });
    assert.equal((await get(9)).toString(), '2.5');
    await upd(10, { a: D('0.25') });
    assert.equal((await get(10)).toString(), '5.25');
    /* identical result (type and value): no change; another type: a change */
    r = await upd(12, { a: new Int32(0) });
    assert.equal(r.n, 1);
    assert.equal(r.nModified, 0);
    r = await upd(12, { a: Long.fromNumber(0) });
    assert.equal(r.nModified, 1);
    assert.equal(bt(await get(12)), 'long');

    /* what mongod refuses, and how */
    r = await upd(13, { a: 'x' });
    assert.equal(r.writeErrors[0].code, 14);
    assert.equal(r.writeErrors[0].errmsg, 'Cannot increment with non-numeric argument: {a: "x"}');
    r = await upd(11, { a: new Int32(1) });
    assert.equal(r.writeErrors[0].code, 14);
    assert.equal(r.writeErrors[0].errmsg, "Cannot apply $inc to a value of non-numeric type. {_id: 11} has the field 'a' of non-numeric type string");
    r = await upd(14, { 'a.b': new Int32(1) });
    assert.equal(r.writeErrors[0].code, 28);
    assert.equal(r.writeErrors[0].errmsg, "Cannot create field 'b' in element {a: 5}");

    /* a missing field takes the operand, type included; an upsert too */
    await upd(13, { b: Long.fromNumber(7), 'c.d': new Double(2) });
    const d13 = await c.findOne({ _id: 13 }, RAW);
    assert.equal(bt(d13.b), 'long');
    assert.equal(bt(d13.c.d), 'double');
    await c.updateOne({ _id: 20 }, { $inc: { a: Long.fromNumber(7) } }, { upsert: true });
    assert.equal(bt(await get(20)), 'long');

    /* a multi-document update: the overflowing document fails the statement; each other one is written
     * or not (mongod writes them one after the other, in the order it reads them) */
    const m = db.collection('num_inc_multi');
    await m.insertMany([1, 2, 3, 4, 5].map((i) => ({ _id: i, a: i === 3 ? MAX : Long.fromNumber(i) })));
    r = await db.command({ update: 'num_inc_multi', updates: [{ q: {}, u: { $inc: { a: new Int32(1) } }, multi: true }] });
    assert.equal(r.n, 0);
    assert.equal(r.nModified, 0);
    assert.equal(r.writeErrors[0].code, 2);
    assert.equal(r.writeErrors[0].errmsg, 'Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 3}');
    const after = await m.find({}, RAW).sort({ _id: 1 }).toArray();
    assert.equal(after[2].a.toString(), MAX.toString(), 'the overflowing document is unchanged');
    for (const d of after) {
        if (num(d._id) === 3) continue;
        assert.ok([num(d._id), num(d._id) + 1].includes(num(d.a)), `document ${d._id}: ${d.a}`);
        assert.equal(bt(d.a), 'long');
    }
    if (!mongo.external) {
        /* this server reads them in insertion order */
        assert.deepEqual(after.map((d) => num(d.a)), [2, 3, Number(MAX.toString()), 4, 5]);
    }
});

test('Decimal128 and the types of expression results as mongod gives them: $subtract and $add with a decimal ' +
    'give a decimal; $trunc and $round take decimals; $let keeps the type of a bound number ($type "$$d" of a ' +
    'double of integral value is "double"); $toLong converts doubles past 2^53; $and and $cond stop at the ' +
    'first false test', async () => {
    const c = db.collection('num_expr');
    await c.insertMany([
        { _id: 1, s: D('1000'), e: new Int32(12000) },
        { _id: 2, s: new Double(1000.5), e: new Double(1000.5) },
        { _id: 3, s: Long.fromString('-4503599627370496'), e: new Double(4503599627370496) },
        { _id: 4, s: D('1000.5'), e: new Int32(5), o: { a: 1 } },
    ]);
    const out = await c.aggregate([{ $sort: { _id: 1 } }, { $project: {
        sub: { $type: { $subtract: ['$e', '$s'] } },
        add: { $type: { $add: ['$s', new Int32(1)] } },
        tr: { $trunc: ['$s'] },
        rd: { $round: ['$s'] },
        d: { $let: { vars: { d: { $subtract: ['$e', '$s'] } }, in: { $type: '$$d' } } },
        l: { $cond: [{ $eq: [{ $type: '$e' }, 'double'] }, { $toLong: { $subtract: ['$e', '$s'] } }, null] },
        and: { $and: [{ $eq: [{ $type: '$o' }, 'object'] }, false, { $trunc: ['$o'] }] },
    } }], RAW).toArray();
    assert.deepEqual(out.slice(0, 3).map((r) => [r.sub, r.add]), [['decimal', 'decimal'], ['double', 'double'], ['double', 'long']]);
    assert.equal(bt(out[0].tr), 'decimal');
    assert.equal(out[0].tr.toString(), '1000');
    assert.equal(bt(out[3].tr), 'decimal', '$trunc of a Decimal128 is a Decimal128');
    assert.equal(Number(out[3].tr.toString()), 1000, 'truncated toward zero');
    assert.equal(Number(out[3].rd.toString()), 1000, '$round of 1000.5 is 1000: half to even');
    assert.deepEqual(out.map((r) => r.d), ['decimal', 'double', 'double', 'decimal'], '$$d keeps its type');
    assert.equal(bt(out[2].l), 'long');
    assert.equal(out[2].l.toString(), '9007199254740992', '$toLong of 2^53 as a double');
    assert.deepEqual(out.map((r) => r.and), [false, false, false, false], '$and never asks $trunc of an object');
    assert.equal(out[3].l, null);
});
