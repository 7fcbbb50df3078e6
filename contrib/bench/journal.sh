#!/usr/bin/env bash
# journal.sh -- what the task journal costs per task: the same tasks with
# journal.enabled off and on, alternately, ROUNDS times, into one Markdown
# table; with BASELINE=DIR (a build of a reporterd without the journal,
# e.g. a worktree of the commit before it), that build's figures too, to
# show that a journal that is off costs nothing.
#
#   contrib/bench/journal.sh [--mongo URI] [--out FILE.md]
#
# Starts the test MongoDB server (t/mongod/server.js) unless --mongo URI or
# REPORTERD_TEST_MONGODB_URI names a server, seeds PHONES x RECORDS records
# (200 x 100), and runs `reporterctl bench -n TASKS --concurrency 1
# --phones-per-task 10` (TASKS 300) against one worker.  The broker is
# RABBITMQ_URL (amqp://guest:guest@127.0.0.1:5672/); the queues are its own
# and deleted at the end.  Needs a build (BUILD, default ./build) and its
# t/node_modules.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
REPORTERCTL=$BUILD/src/reporterctl
DB=journalbench
COLLECTION=calls
ROUNDS=${ROUNDS:-3}
TASKS=${TASKS:-300}
PHONES=${PHONES:-200}
RECORDS=${RECORDS:-100}
BASELINE=${BASELINE:-}
while [ $# -gt 0 ]; do
    bench_option "$@"; shift 2
done

bench_start journal
queues
write_conf "$work/off.yaml" live 1
write_conf "$work/on.yaml" live 1
printf 'journal:\n  enabled: on\n' >>"$work/on.yaml"
seed "$work/off.yaml" "$PHONES" "$RECORDS" 2>/dev/null

# run BUILD MODE: one bench of BUILD's reporterd, its JSON in $work/run.json
# (reporterd runs in this shell, not a subshell, so an early exit stops it)
run() {
    REPORTERD=$1/src/reporterd start_daemon "$work/$2.yaml" "$work/error-live.log" 1
    "$1/src/reporterctl" -c "$work/$2.yaml" bench -n "$TASKS" --concurrency 1 \
        --phones-per-task 10 --max-phone "$PHONES" --json >"$work/run.json"
    stop_daemon
}
# row ROUND WHAT: the table's row for the last run, printed and kept
row() {
    "$NODE" -e '
        const [round, what, json] = process.argv.slice(1), r = JSON.parse(json), l = r.latency_ms;
        console.log(`| ${round} | ${what} | ${r.received}/${r.tasks} | ${r.throughput_per_s.toFixed(2)} | ` +
            `${l.p50.toFixed(1)} | ${l.p90.toFixed(1)} | ${l.p99.toFixed(1)} | ${Number(r.mean_total_duration_ms).toFixed(1)} |`);
    ' "$1" "$2" "$(cat "$work/run.json")" | tee -a "$work/table.md"
}
{
    echo "| round | journal | tasks | throughput (tasks/s) | p50 ms | p90 ms | p99 ms | mean total_duration ms |"
    echo "|---|---|---|---:|---:|---:|---:|---:|"
} | tee "$work/table.md"
for r in $(seq 1 "$ROUNDS"); do
    if [ -n "$BASELINE" ]; then
        run "$BASELINE" off; row "$r" "none (build without the journal)"
    fi
    run "$BUILD" off; row "$r" off
    run "$BUILD" on; row "$r" on
done
[ -z "$out" ] || cp "$work/table.md" "$out"
