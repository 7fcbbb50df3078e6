#!/usr/bin/env bash
# contrib/bench/run.sh -- run `reporterctl bench` against reporterd with 1, 2
# and 4 workers and write the figures as a Markdown table.
#
#   contrib/bench/run.sh CONFIG [OUT.md] [-- BENCH OPTIONS]
#
# CONFIG is a reporterd.yaml with daemon: off that points at a broker and a
# database holding data (reporterctl seed). Each run starts reporterd with a
# copy of CONFIG whose worker_processes is replaced, waits until every worker
# consumes, runs the bench and stops reporterd with QUIT.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
REPORTERD=${REPORTERD:-$here/build/src/reporterd}
REPORTERCTL=${REPORTERCTL:-$here/build/src/reporterctl}
config=${1:?usage: run.sh CONFIG [OUT.md] [-- BENCH OPTIONS]}
out=${2:-bench-results.md}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
bench_opts=("$@")
[ ${#bench_opts[@]} -gt 0 ] || bench_opts=(-n 200 --concurrency 8)

work=$(mktemp -d /tmp/reporterd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
    echo "# reporterd benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, reporterctl bench ${bench_opts[*]}"
    echo
    echo "| workers | tasks | throughput (tasks/s) | p50 ms | p90 ms | p99 ms | max ms | mean total_duration ms |"
    echo "|---|---|---|---|---|---|---|---|"
} > "$out"

for n in 1 2 4; do
    cfg=$work/reporterd-$n.yaml
    sed -e "s/^worker_processes:.*/worker_processes: $n/" \
        -e "s|^pid:.*|pid: $work/reporterd.pid|" -e "s|^error_log:.*|error_log: $work/error-$n.log|" \
        "$config" > "$cfg"
    grep -q '^worker_processes:' "$cfg" || echo "worker_processes: $n" >> "$cfg"
    "$REPORTERD" -c "$cfg" &
    pid=$!
    for _ in $(seq 1 300); do
        [ "$(grep -c 'consuming from' "$work/error-$n.log" 2>/dev/null || true)" -ge "$n" ] && break
        kill -0 "$pid" 2>/dev/null || { echo "reporterd exited; see $work/error-$n.log" >&2; exit 1; }
        sleep 0.1
    done
    json=$("$REPORTERCTL" -c "$cfg" bench --json "${bench_opts[@]}")
    kill -QUIT "$pid"; wait "$pid" || true
    echo "workers=$n $json"
    python3 - "$n" "$json" >> "$out" <<'PY'
import json, sys
n, r = sys.argv[1], json.loads(sys.argv[2])
l = r["latency_ms"]
print(f"| {n} | {r['received']}/{r['tasks']} | {r['throughput_per_s']:.1f} | {l['p50']:.1f} | "
      f"{l['p90']:.1f} | {l['p99']:.1f} | {l['max']:.1f} | {r['mean_total_duration_ms']:.1f} |")
PY
done
echo "wrote $out"
