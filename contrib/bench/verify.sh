#!/usr/bin/env bash
# verify.sh -- the delay after which rollup mode follows a delete or a
# correction: how long one cycle of the folder's background verification
# takes over PHONES x RECORDS folded records (100 x 1000) at each
# rollup.verify_rate of RATES ("10000 100000000": the default, and as fast
# as the database answers), read from reporterd's /metrics
# (reporterd_rollup_verify_cycle_seconds, after two cycles), into one
# Markdown table.
#
#   contrib/bench/verify.sh [--mongo URI] [--out FILE.md]
#
# Starts the test MongoDB server (t/mongod/server.js) unless --mongo URI or
# REPORTERD_TEST_MONGODB_URI names a server.  The broker is RABBITMQ_URL
# (amqp://guest:guest@127.0.0.1:5672/); the queues are its own and deleted
# at the end.  Needs a build (BUILD, default ./build) and its t/node_modules.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
REPORTERD=$BUILD/src/reporterd
REPORTERCTL=$BUILD/src/reporterctl
DB=verifybench
COLLECTION=calls
PHONES=${PHONES:-100}
RECORDS=${RECORDS:-1000}
RATES=${RATES:-10000 100000000}
while [ $# -gt 0 ]; do
    case $1 in
        --mongo) mongo_uri=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) usage_only=1; shift ;;
        *) echo "verify.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -z "${usage_only:-}" ] || { usage; exit 0; }
need_build

bench_start verify
queues
port=$(free_port)
ROLLUP_INTERVAL=1s VERIFY_RATE=0 write_conf "$work/fold.yaml" rollup 1
seed "$work/fold.yaml" "$PHONES" "$RECORDS" 2>/dev/null
"$REPORTERCTL" -c "$work/fold.yaml" rollup --fold >/dev/null

metric() { probe metrics "http://127.0.0.1:$port" "$1"; }
# reporterd runs in this shell, not in a pipeline's subshell, so that an
# early exit stops it
{
    echo "| records | rollup.verify_rate (records/s) | cycle (s) | records recounted per second |"
    echo "|---:|---:|---:|---:|"
} | tee "$work/table.md"
for rate in $RATES; do
    ROLLUP_INTERVAL=1s VERIFY_RATE=$rate write_conf "$work/$rate.yaml" rollup 1 "127.0.0.1:$port"
    start_daemon "$work/$rate.yaml" "$work/error-rollup.log" 1
    for _ in $(seq 1 36000); do
        [ "$(metric reporterd_rollup_verify_cycles_total 2>/dev/null)" -ge 2 ] 2>/dev/null && break
        sleep 0.1
    done
    cycle=$(metric reporterd_rollup_verify_cycle_seconds)
    "$NODE" -e 'const [n, rate, s] = process.argv.slice(1).map(Number);
        console.log(`| ${n} | ${rate} | ${s.toFixed(2)} | ${Math.round(n / s)} |`);' \
        "$((PHONES * RECORDS))" "$rate" "$cycle" | tee -a "$work/table.md"
    stop_daemon
done
[ -z "$out" ] || cp "$work/table.md" "$out"
