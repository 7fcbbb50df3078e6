#!/usr/bin/env bash
# contrib/bench/side-by-side.sh -- the old Python service, reporterd live and
# reporterd rollup, one after another on the same broker and the same
# database: tasks/s, p50 and p99 for each, the ratio to the old service, and
# reporterd's own time per task outside the database call.
#
#   OLD_SERVICE_DIR=~/calls-data-reporter contrib/bench/side-by-side.sh \
#       [--sizes "1 20 200 2000"] [--procs "1 2"] [--phones 50] [--out FILE.md]
#
# For each size (records per phone) the database is reseeded (reporterctl
# seed --phones P --records N --drop) and every service is measured with 1
# and 2 processes (worker_processes, or that many old consumers), tasks of
# 10 random phones at a concurrency equal to the processes (reporterctl
# bench), after a warm-up of 2 tasks per process.  Each run has queues of
# its own, deleted after it.  Tasks per run: BUDGET records read / (10 N),
# within [MIN_TASKS, MAX_TASKS].  Rollup mode is measured after
# `reporterctl rollup --fold`.
#
# reporterd's own time: its result's total_duration (task taken to result
# built) less the database call (reporterd_db_query_duration_seconds on
# /metrics), and the publish with its confirm and the ack
# (reporterd_task_duration_seconds less total_duration), per task.
#
# The database is the project's test MongoDB server unless --mongo URI or
# REPORTERD_TEST_MONGODB_URI names a real one (its database DB is dropped
# and reseeded).  The test server evaluates pipelines in JavaScript: its
# absolute figures are not MongoDB's, only the ratios carry over.  Without
# OLD_SERVICE_DIR (see contrib/bench/python/README.md) the old service's
# rows say why and no ratio is printed.  Exit status 3: a target of issue
# 22 was missed (the text says which).
#
# Environment: BUILD, DB (reporterd_bench), RABBITMQ_URL, BUDGET (400000),
# MIN_TASKS (20), MAX_TASKS (300), OLD_SERVICE_DIR, PYTHON.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export MONGOC_DISABLE_SHM=1
COLLECTION=calls            # the old service reads <db>.calls
BUDGET=${BUDGET:-400000}
MIN_TASKS=${MIN_TASKS:-20}
MAX_TASKS=${MAX_TASKS:-300}
sizes="1 20 200 2000"
procs="1 2"
phones=50

while [ $# -gt 0 ]; do
    case $1 in
        --sizes) sizes=$2; shift 2 ;;
        --procs) procs=$2; shift 2 ;;
        --phones) phones=$2; shift 2 ;;
        *) bench_option "$@"; shift 2 ;;
    esac
done
need_build

bench_start sbs
old_status=$(old_service_status)

# counters MODE: reporterd's task and database time sums and counts on
# /metrics (port); nothing for the old service
counters() {
    [ "$1" = old ] || probe metrics "http://127.0.0.1:$port" reporterd_task_duration_seconds_sum \
        reporterd_task_duration_seconds_count reporterd_db_query_duration_seconds_sum \
        reporterd_db_query_duration_seconds_count
}

rows=$work/rows
: >"$rows"
echo "side-by-side.sh: $server; broker $AMQP_HOST:$AMQP_PORT" >&2
for n in $sizes; do
    tasks=$(( BUDGET / (PER_TASK * n) ))
    [ "$tasks" -ge "$MIN_TASKS" ] || tasks=$MIN_TASKS
    [ "$tasks" -le "$MAX_TASKS" ] || tasks=$MAX_TASKS
    echo "== $phones phones x $n records: seed" >&2
    queues seed
    write_conf "$work/seed.yaml" live 1
    seed "$work/seed.yaml" "$phones" "$n"
    folded=
    for p in $procs; do
        for mode in old live rollup; do
            run=$mode-$p-$n
            queues "$run"
            if [ "$mode" = old ]; then
                if [ -n "$old_status" ]; then
                    echo "$n $p old - $old_status" >>"$rows"
                    continue
                fi
                write_conf "$work/$run.yaml" live "$p"
                start_old "$p"
            else
                if [ "$mode" = rollup ] && [ -z "$folded" ]; then
                    write_conf "$work/fold.yaml" rollup 1
                    echo "== fold" >&2
                    "$REPORTERCTL" -c "$work/fold.yaml" rollup --fold >&2
                    folded=1
                fi
                port=$(free_port)
                write_conf "$work/$run.yaml" "$mode" "$p" "127.0.0.1:$port"
                start_daemon "$work/$run.yaml" "$work/error-$mode.log" "$p"
            fi
            echo "== $run: $tasks tasks" >&2
            bench "$work/$run.yaml" $(( 2 * p )) "$p" >/dev/null
            m0=$(counters "$mode")
            json=$(bench "$work/$run.yaml" "$tasks" "$p")
            m1=$(counters "$mode")
            stop_services
            echo "   $json" >&2
            echo "$n $p $mode $json|$m0|$m1" >>"$rows"
        done
    done
done
drop_queues

"$NODE" - "$rows" "$server" "$phones" "$PER_TASK" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" >"$work/result.md" <<'JS' || status=$?
const [file, server, phones, perTask, when, cpus] = process.argv.slice(2);
const rows = require('fs').readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [n, p, mode, ...rest] = l.split(' ');
    const r = { n: Number(n), p: Number(p), mode };
    if (rest[0] === '-') { r.why = rest.slice(1).join(' '); return r; }
    const [json, m0, m1] = rest.join(' ').split('|');
    r.b = JSON.parse(json);
    if (m0 && m1) {
        const a = m0.split(' ').map(Number), b = m1.split(' ').map(Number);
        const dTask = b[0] - a[0], nTask = b[1] - a[1], dDb = b[2] - a[2], nDb = b[3] - a[3];
        const total = r.b.mean_total_duration_ms;
        r.own = nDb > 0 && total !== null ? total - (1000 * dDb) / nDb : null;
        r.publish = nTask > 0 && total !== null ? (1000 * dTask) / nTask - total : null;
    }
    return r;
});
const f = (x, d = 1) => (x === null || x === undefined ? '-' : x.toFixed(d));
const name = { old: 'old Python service', live: 'reporterd live', rollup: 'reporterd rollup' };
const old = (r) => rows.find((o) => o.mode === 'old' && o.n === r.n && o.p === r.p && o.b);
console.log(`${when}, ${cpus} CPUs, ${server}; ${phones} phones, tasks of ${perTask} random phones ` +
    'at a concurrency equal to the processes (`reporterctl bench`), each service alone on the machine.');
console.log('The test server\'s absolute figures are not MongoDB\'s (it evaluates pipelines in JavaScript); ' +
    'only the ratios carry over.');
console.log('');
console.log('| records per phone | processes | service | tasks | tasks/s | p50 ms | p99 ms | tasks/s vs old | reporterd ms per task outside the database | publish + confirm + ack ms |');
console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
    if (r.why) { console.log(`| ${r.n} | ${r.p} | ${name[r.mode]} | ${r.why} | | | | | | |`); continue; }
    const o = old(r), l = r.b.latency_ms;
    const ratio = o && r.mode !== 'old' ? `${(r.b.throughput_per_s / o.b.throughput_per_s).toFixed(2)}x` : '';
    const errs = r.b.errors ? `, ${r.b.errors} Error` : '';
    console.log(`| ${r.n.toLocaleString('en-US')} | ${r.p} | ${name[r.mode]} | ${r.b.received}/${r.b.tasks}${errs} | ` +
        `${f(r.b.throughput_per_s, 2)} | ${f(l.p50)} | ${f(l.p99)} | ${ratio} | ${r.mode === 'old' ? '' : f(r.own, 2)} | ` +
        `${r.mode === 'old' ? '' : f(r.publish, 2)} |`);
}
console.log('');
console.log('Targets (issue 22, one process each):');
let ok = true;
const want = (n, mode, x) => {
    const r = rows.find((o) => o.n === n && o.p === 1 && o.mode === mode && o.b);
    const o = r && old(r);
    if (!r || !o) { console.log(`- ${mode} at ${n} records per phone: not measured`); return; }
    const v = r.b.throughput_per_s / o.b.throughput_per_s, pass = v >= x;
    ok = ok && pass;
    console.log(`- ${mode} at ${n} records per phone: ${v.toFixed(2)}x the old service (at least ${x}x: ${pass ? 'met' : 'MISSED'})`);
};
want(1, 'live', 2);
for (const n of [20, 200, 2000]) want(n, 'live', 1);
want(200, 'rollup', 20);
process.exitCode = ok ? 0 : 3;
JS
cat "$work/result.md"
[ -z "$out" ] || cp "$work/result.md" "$out"
exit "${status:-0}"
