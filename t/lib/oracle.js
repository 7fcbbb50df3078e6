/*
 * oracle.js -- the tests' oracle: the report reporterd must answer for a
 * set of call records, computed independently by brute force with exact
 * decimals from integer milliseconds, and the assertions that compare a
 * report with it.  harness.js re-exports everything here.
 */
'use strict';

const assert = require('node:assert/strict');

/*
 * Every figure is computed from integer milliseconds with BigInt
 * arithmetic and rounded once, to 2 decimals, half away from zero; the
 * daemon's figure must be that decimal exactly (no tolerance).
 *
 *   duration  ms = end_date - start_date
 *   price     ms * price_per_second / 1000       (price_per_second exact: "0.7" is 7/10)
 *   buckets   ms < 10000, 10000 <= ms < 30000, ms >= 30000; the sum over ms > 15000
 *
 * A record whose phone is not an integer (a string, 1000.5, null) matches
 * no requested phone, as in reporterd and MongoDB, where $in compares
 * numbers by value and "1000" never equals 1000.  A record of a requested
 * phone is valid iff start_date and end_date are both integers (a JS
 * integer, a BigInt, a bson Long/Int32, or a bson Double or JS number of
 * integral value) or both Dates, each within +-2^52 ms, with end_date >=
 * start_date; any other (missing, null, string, fractional, mixed kinds,
 * reversed, out of range) is left out of cnt_all_attempts and every figure,
 * and counted in `invalid` (expectedInvalid).
 */

const TEN = 10n;

/* v (a decimal text, a JS number -- its shortest round-trip text -- or a
 * BigInt) as {n, scale}: exactly n / 10^scale. */
function exactDecimal(v) {
    let text = null;
    if (typeof v === 'bigint') text = v.toString();
    else if (typeof v === 'number' && Number.isFinite(v)) text = Object.is(v, -0) ? '-0' : String(v);
    else if (typeof v === 'string') text = v.trim();
    const m = text === null ? null : /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!m) throw new TypeError(`not a decimal number: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
    const frac = m[3] || '';
    let n = BigInt(m[2] + frac);
    let scale = frac.length - Number(m[4] || 0);
    if (scale < 0) {
        n *= TEN ** BigInt(-scale);
        scale = 0;
    }
    return { n: m[1] === '-' ? -n : n, scale, negZero: m[1] === '-' && n === 0n };
}

/* The canonical text of an exact decimal: no exponent, no trailing zeros
 * after the point, "-0" kept (so that a negative zero never compares equal
 * to 0). */
function decimalText(d) {
    let { n, scale } = d;
    while (scale > 0 && n % TEN === 0n) {
        n /= TEN;
        scale--;
    }
    const neg = n < 0n || d.negZero;
    const digits = (n < 0n ? -n : n).toString().padStart(scale + 1, '0');
    const whole = digits.slice(0, digits.length - scale);
    const frac = digits.slice(digits.length - scale);
    return (neg ? '-' : '') + whole + (frac ? `.${frac}` : '');
}

/* num / den rounded to an integer, halves away from zero (den > 0). */
function divRoundHalfAway(num, den) {
    const a = num < 0n ? -num : num;
    const q = (2n * a + den) / (2n * den);
    return num < 0n ? -q : q;
}

/* num / den lies exactly halfway between two integers. */
function isHalfway(num, den) {
    const twice = 2n * (num < 0n ? -num : num);
    return twice % den === 0n && (twice / den) % 2n === 1n;
}

/* Figures above this are beyond what a JS number (as parseJson gives
 * them) carries exactly to the cent: refused rather than compared loosely. */
const EXACT_LIMIT_CENTS = 2n ** 46n * 100n;

/* A Decimal128's text ("8", "8.00", "8E+3", "-0", "NaN") as the BigInt it
 * equals, or null when it is no integer: MongoDB compares numbers by value. */
function decimalInteger(text) {
    const m = /^([+-]?)(\d+)(?:\.(\d*))?(?:E([+-]?\d+))?$/i.exec(text);
    if (!m) return null;
    const digits = m[2] + (m[3] || '');
    const scale = (m[3] || '').length - Number(m[4] || 0);
    let v = BigInt(digits);
    if (scale > 0) {
        const p = 10n ** BigInt(scale);
        if (v % p !== 0n) return null;
        v /= p;
    } else if (scale < 0) {
        v *= 10n ** BigInt(-scale);
    }
    return m[1] === '-' ? -v : v;
}

/* An integer phone (BigInt) or null for anything that equals no integer
 * (strings, arrays, fractions, missing), whatever its numeric type. */
function phoneKey(v) {
    if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : null;
    if (typeof v === 'bigint') return v;
    if (v && typeof v === 'object') {
        if (v._bsontype === 'Long') return BigInt(v.toString());
        if (v._bsontype === 'Int32' || v._bsontype === 'Double') return phoneKey(v.valueOf());
        if (v._bsontype === 'Decimal128') return decimalInteger(v.toString());
    }
    return null;
}

const MS_BOUND = 2n ** 52n;

/* A date value: {kind, ms} or null, decided here independently of
 * reporterd's pipeline. */
function dateMs(v) {
    let d = null;
    if (v instanceof Date) d = Number.isFinite(v.getTime()) ? { kind: 'Date', ms: BigInt(v.getTime()) } : null;
    else if (typeof v === 'number') d = Number.isInteger(v) ? { kind: 'integer', ms: BigInt(v) } : null;
    else if (typeof v === 'bigint') d = { kind: 'integer', ms: v };
    else if (v && typeof v === 'object' && (v._bsontype === 'Long' || v._bsontype === 'Int32')) {
        d = { kind: 'integer', ms: BigInt(v.toString()) };
    } else if (v && typeof v === 'object' && v._bsontype === 'Double') {
        return dateMs(v.valueOf());
    }
    if (d && (d.ms > MS_BOUND || d.ms < -MS_BOUND)) return null;
    return d;
}

const show = (v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Date ? v.toISOString() : JSON.stringify(v));

/* The duration in ms of a valid record; null for an invalid one. */
function durationMs(r) {
    const s = dateMs(r.start_date);
    const e = dateMs(r.end_date);
    if (!s || !e || s.kind !== e.kind || e.ms < s.ms) return null;
    return e.ms - s.ms;
}

/* price_per_second as {P, den}: price = ms * P / den exactly, den = 1000 * 10^scale. */
function priceRate(pricePerSecond) {
    const d = exactDecimal(pricePerSecond);
    if (d.n < 0n) throw new RangeError(`price_per_second ${pricePerSecond} is negative`);
    return { P: d.n, den: 1000n * TEN ** BigInt(d.scale) };
}

/* The records of each requested phone, as durations in ms, by phone key. */
function durationsByPhone(records, wanted) {
    const by = new Map();
    records.forEach((r) => {
        const k = phoneKey(r.phone);
        if (k === null || (wanted && !wanted.has(k))) return;
        if (!by.has(k)) by.set(k, []);
        const ms = durationMs(r);
        if (ms !== null) by.get(k).push(ms);
    });
    return by;
}

/* How many records of the requested phones are invalid (left out of every figure). */
function expectedInvalid(records, phones) {
    const wanted = new Set(phones.map(phoneKey));
    return records.filter((r) => {
        const k = phoneKey(r.phone);
        return k !== null && wanted.has(k) && durationMs(r) === null;
    }).length;
}

/* A phone's figures as exact fractions of cents {num, den} (null where
 * the figure is null) and its counts. */
function exactFigures(ms, rate) {
    const cents = (num, den) => ({ num: num * 100n, den });
    let c10 = 0;
    let c1030 = 0;
    let c30 = 0;
    let min = null;
    let max = null;
    let sum = 0n;
    let over15 = 0n;
    for (const d of ms) {
        if (d < 10000n) c10++;
        else if (d < 30000n) c1030++;
        else c30++;
        if (min === null || d < min) min = d;
        if (max === null || d > max) max = d;
        sum += d;
        if (d > 15000n) over15 += d;
    }
    const n = BigInt(ms.length);
    return {
        counts: { cnt_all_attempts: ms.length, cnt_att_dur: { '10_sec': c10, '10_30_sec': c1030, '30_sec': c30 } },
        fractions: {
            min_price_att: min === null ? null : cents(min * rate.P, rate.den),
            max_price_att: max === null ? null : cents(max * rate.P, rate.den),
            avg_dur_att: n ? cents(sum, 1000n * n) : null,
            sum_price_att_over_15: cents(over15 * rate.P, rate.den),
        },
    };
}

const FIGURES = ['min_price_att', 'max_price_att', 'avg_dur_att', 'sum_price_att_over_15'];

/* Brute force over the records (no aggregation): the expected "data" array
 * for a task asking for phones, each distinct phone once, in request order.
 * Counts are numbers; the four figures are canonical decimal texts ("46.67",
 * "10", "0.05") or null; phone is the value asked for, as given. */
function expectedReport(records, phones, pricePerSecond = 10) {
    const rate = priceRate(pricePerSecond);
    const keys = phones.map((p) => {
        const k = phoneKey(p);
        if (k === null) throw new TypeError(`expectedReport: phone ${show(p)} is not an integer`);
        return k;
    });
    const by = durationsByPhone(records, new Set(keys));
    const seen = new Set();
    const out = [];
    phones.forEach((p, i) => {
        if (seen.has(keys[i])) return;
        seen.add(keys[i]);
        const f = exactFigures(by.get(keys[i]) || [], rate);
        const e = Object.assign({ phone: p }, f.counts);
        for (const k of FIGURES) {
            const x = f.fractions[k];
            if (x === null) {
                e[k] = null;
                continue;
            }
            const c = divRoundHalfAway(x.num, x.den);
            if (c >= EXACT_LIMIT_CENTS || -c >= EXACT_LIMIT_CENTS) {
                throw new RangeError(`expectedReport: phone ${show(p)}: ${k} is beyond 2^46, where a parsed JSON ` +
                    'number no longer carries every cent: keep test figures smaller');
            }
            e[k] = decimalText({ n: c, scale: 2 });
        }
        out.push(e);
    });
    return out;
}

/* The figures of each phone of records whose exact value is a decimal tie
 * (halfway between two cents): Map phone key (BigInt) -> [figure names]. */
function decimalTies(records, pricePerSecond = 10) {
    const rate = priceRate(pricePerSecond);
    const out = new Map();
    for (const [k, ms] of durationsByPhone(records, null)) {
        const f = exactFigures(ms, rate).fractions;
        const ties = FIGURES.filter((n) => f[n] !== null && isHalfway(f[n].num, f[n].den));
        if (ties.length) out.set(k, ties);
    }
    return out;
}

/* A figure as the daemon printed it (parsed by parseJson) must be the
 * oracle's decimal text exactly; null stays null. */
function assertFigure(actual, expected, what) {
    if (expected === null) {
        assert.equal(actual, null, `${what}: expected null, got ${show(actual)}`);
        return;
    }
    assert.ok(typeof actual === 'number' || typeof actual === 'bigint',
        `${what}: expected the number ${expected}, got ${show(actual)} (${actual === null ? 'null' : typeof actual})`);
    const got = decimalText(exactDecimal(actual));
    assert.equal(got, expected, `${what}: expected exactly ${expected} (2 decimals, half away from zero), got ${got}`);
}

/* The phone as the daemon echoed it: the JSON integer it was asked for.
 * parseJson gives a number up to 2^53 and a BigInt beyond, so the type is
 * part of the check: a string "1000" or a float fails. */
function assertPhone(actual, expected, what) {
    const want = phoneKey(expected);
    const type = want >= -BigInt(Number.MAX_SAFE_INTEGER) && want <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'bigint';
    assert.equal(typeof actual, type, `${what}: phone must be the JSON integer ${want}, got ${show(actual)} (${typeof actual})`);
    assert.ok(type === 'bigint' || Number.isInteger(actual), `${what}: phone ${actual} is not an integer`);
    assert.equal(BigInt(actual), want, `${what}: phone`);
}

/* Assert a result's data array against expectedReport(), every field exactly. */
function assertReport(data, expected, label = 'report') {
    assert.ok(Array.isArray(data), `${label}: data is not an array: ${JSON.stringify(data, (k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
    assert.equal(data.length, expected.length,
        `${label}: expected ${expected.length} entries (phones ${expected.map((e) => e.phone).join(',')}), ` +
        `got ${data.length} (phones ${data.map((e) => e && e.phone).join(',')})`);
    for (let i = 0; i < expected.length; i++) {
        const a = data[i];
        const e = expected[i];
        const w = `${label}: data[${i}] (phone ${e.phone})`;
        assert.ok(a && typeof a === 'object', `${w}: not an object: ${show(a)}`);
        assert.deepEqual(Object.keys(a).sort(), ['avg_dur_att', 'cnt_all_attempts', 'cnt_att_dur', 'max_price_att',
            'min_price_att', 'phone', 'sum_price_att_over_15'], `${w}: fields`);
        assertPhone(a.phone, e.phone, w);
        assert.equal(a.cnt_all_attempts, e.cnt_all_attempts, `${w}: cnt_all_attempts`);
        assert.ok(a.cnt_att_dur && typeof a.cnt_att_dur === 'object', `${w}: cnt_att_dur missing`);
        assert.deepEqual(Object.keys(a.cnt_att_dur).sort(), ['10_30_sec', '10_sec', '30_sec'], `${w}: cnt_att_dur fields`);
        for (const k of ['10_sec', '10_30_sec', '30_sec']) {
            assert.equal(a.cnt_att_dur[k], e.cnt_att_dur[k], `${w}: cnt_att_dur.${k}`);
        }
        for (const k of FIGURES) assertFigure(a[k], e[k], `${w}: ${k}`);
    }
}

module.exports = { expectedReport, expectedInvalid, assertReport, exactDecimal, decimalText, decimalTies };
