#!/usr/bin/env bash
# contrib/bench/scaling.sh -- throughput as reporterd scales out on one
# machine: live mode with 1, 2 and 4 workers on one host, and 2 hosts (two
# masters, each with its own pid file and log) of 2 workers on one queue;
# the old Python service with 1, 2 and 4 consumers beside them.  Tasks of
# 10 random phones at a concurrency equal to the processes (reporterctl
# bench), after a warm-up.  Prints a Markdown table (docs/scaling.md).
#
#   OLD_SERVICE_DIR=~/calls-data-reporter contrib/bench/scaling.sh \
#       [--records 200] [--phones 50] [--tasks 120] [--out FILE.md]
#
# The database is the project's test MongoDB server unless --mongo URI or
# REPORTERD_TEST_MONGODB_URI names a real one (its database DB is dropped
# and reseeded).  The test server is one Node.js thread: past it, more
# workers only wait for it; against mongod the figures differ, and only
# the comparison on the same machine carries over.
#
# Environment: BUILD, DB (reporterd_bench), RABBITMQ_URL, OLD_SERVICE_DIR, PYTHON.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export MONGOC_DISABLE_SHM=1
COLLECTION=calls
records=200
phones=50
tasks=120

while [ $# -gt 0 ]; do
    case $1 in
        --records) records=$2; shift 2 ;;
        --phones) phones=$2; shift 2 ;;
        --tasks) tasks=$2; shift 2 ;;
        *) bench_option "$@"; shift 2 ;;
    esac
done
need_build

bench_start scaling
old_status=$(old_service_status)

rows=$work/rows
: >"$rows"
echo "scaling.sh: $server; broker $AMQP_HOST:$AMQP_PORT; $phones phones x $records records" >&2
queues seed
write_conf "$work/seed.yaml" live 1
seed "$work/seed.yaml" "$phones" "$records"

# run SETUP PROCESSES: one measurement
run() {
    local setup=$1 p=$2 name=$1-$2 json
    queues "$name"
    write_conf "$work/$name.yaml" live "$p"
    case $setup in
        old)
            if [ -n "$old_status" ]; then echo "old $p - $old_status" >>"$rows"; return; fi
            start_old "$p" ;;
        one)
            start_daemon "$work/$name.yaml" "$work/error-live.log" "$p" ;;
        two)
            # two masters of p/2 workers: their own pid files and logs
            write_conf "$work/$name-a.yaml" live $(( p / 2 ))
            sed -e "s|^pid: .*|pid: $work/a.pid|" -e "s|^error_log: .*|error_log: $work/error-a.log|" \
                -i "$work/$name-a.yaml"
            write_conf "$work/$name-b.yaml" live $(( p / 2 ))
            sed -e "s|^pid: .*|pid: $work/b.pid|" -e "s|^error_log: .*|error_log: $work/error-b.log|" \
                -i "$work/$name-b.yaml"
            start_daemon "$work/$name-b.yaml" "$work/error-b.log" $(( p / 2 ))
            start_daemon "$work/$name-a.yaml" "$work/error-a.log" $(( p / 2 )) ;;
    esac
    echo "== $setup, $p processes: $tasks tasks" >&2
    bench "$work/$name.yaml" $(( 2 * p )) "$p" >/dev/null
    json=$(bench "$work/$name.yaml" "$tasks" "$p")
    stop_services
    echo "   $json" >&2
    echo "$setup $p $json" >>"$rows"
}
for p in 1 2 4; do run old "$p"; run one "$p"; done
run two 4
drop_queues

"$NODE" - "$rows" "$server" "$phones" "$records" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" >"$work/result.md" <<'JS'
const [file, server, phones, records, when, cpus] = process.argv.slice(2);
const rows = require('fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => {
    const [setup, p, ...rest] = l.split(' ');
    const r = { setup, p: Number(p) };
    if (rest[0] === '-') r.why = rest.slice(1).join(' '); else r.b = JSON.parse(rest.join(' '));
    return r;
});
const name = { old: 'old Python service', one: 'reporterd, one host', two: 'reporterd, two hosts' };
const f = (x, d = 1) => (x === null || x === undefined ? '-' : x.toFixed(d));
const base = rows.find((r) => r.setup === 'one' && r.p === 1 && r.b);
console.log(`${when}, ${cpus} CPUs, ${server}; live mode, ${phones} phones x ${records} records, tasks of 10 random ` +
    'phones at a concurrency equal to the processes (`reporterctl bench`).');
console.log('');
console.log('| setup | processes | tasks | tasks/s | p50 ms | p99 ms | vs 1 reporterd worker | vs the old service, same processes |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
    if (r.why) { console.log(`| ${name[r.setup]} | ${r.p} | ${r.why} | | | | | |`); continue; }
    const o = rows.find((x) => x.setup === 'old' && x.p === r.p && x.b);
    const l = r.b.latency_ms;
    console.log(`| ${name[r.setup]} | ${r.setup === 'two' ? `2 x ${r.p / 2}` : r.p} | ${r.b.received}/${r.b.tasks} | ` +
        `${f(r.b.throughput_per_s, 2)} | ${f(l.p50)} | ${f(l.p99)} | ` +
        `${r.setup !== 'old' && base ? `${(r.b.throughput_per_s / base.b.throughput_per_s).toFixed(2)}x` : ''} | ` +
        `${r.setup !== 'old' && o ? `${(r.b.throughput_per_s / o.b.throughput_per_s).toFixed(2)}x` : ''} |`);
}
JS
cat "$work/result.md"
[ -z "$out" ] || cp "$work/result.md" "$out"
