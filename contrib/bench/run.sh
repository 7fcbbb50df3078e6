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
usage="usage: run.sh CONFIG [OUT.md] [-- BENCH OPTIONS]"
case ${1:-} in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    ''|-*) echo "$usage" >&2; exit 2 ;;
esac
config=$1
[ -r "$config" ] || { echo "run.sh: cannot read the configuration $config" >&2; exit 2; }
out=${2:-bench-results.md}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
bench_opts=("$@")
[ ${#bench_opts[@]} -gt 0 ] || bench_opts=(-n 200 --concurrency 8)

work=$(mktemp -d /tmp/reporterd-bench.XXXXXX)
pid=
trap '[ -z "$pid" ] || { kill -QUIT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
{
    echo "# reporterd benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, reporterctl bench ${bench_opts[*]}"
    echo
    echo "| workers | tasks | throughput (tasks/s) | p50 ms | p90 ms | p99 ms | max ms | mean total_duration ms | master RSS MB | worker RSS MB (max) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$out"

for n in 1 2 4; do
    cfg=$work/reporterd-$n.yaml
    sed -e "s/^worker_processes:.*/worker_processes: $n/" \
        -e "s|^pid:.*|pid: $work/reporterd.pid|" -e "s|^error_log:.*|error_log: $work/error-$n.log|" \
        "$config" > "$cfg"
    chmod 600 "$cfg"
    grep -q '^worker_processes:' "$cfg" || echo "worker_processes: $n" >> "$cfg"
    "$REPORTERD" -c "$cfg" &
    pid=$!
    c=0
    for _ in $(seq 1 300); do
        c=$(grep -c 'consuming from' "$work/error-$n.log" 2>/dev/null || true)
        [ "${c:-0}" -ge "$n" ] && break
        kill -0 "$pid" 2>/dev/null || { echo "reporterd exited:" >&2; tail -n 20 "$work/error-$n.log" >&2; pid=; exit 1; }
        sleep 0.1
    done
    if [ "${c:-0}" -lt "$n" ]; then
        echo "run.sh: $n workers did not all consume within 30 s:" >&2
        tail -n 20 "$work/error-$n.log" >&2
        exit 1
    fi
    json=$("$REPORTERCTL" -c "$cfg" bench --json "${bench_opts[@]}")
    # resident memory after the run: the master and its largest worker
    rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
    master_rss=$(rss "$pid")
    worker_rss=$(for c in $(pgrep -P "$pid"); do rss "$c"; echo; done | sort -n | tail -n 1)
    kill -QUIT "$pid"; wait "$pid" || true
    pid=
    echo "workers=$n $json"
    node -e '
        const [n, r, m, w] = [process.argv[1], JSON.parse(process.argv[2]), process.argv[3], process.argv[4]];
        const l = r.latency_ms, f = (x) => x.toFixed(1);
        console.log(`| ${n} | ${r.received}/${r.tasks} | ${f(r.throughput_per_s)} | ${f(l.p50)} | ${f(l.p90)} | ` +
            `${f(l.p99)} | ${f(l.max)} | ${f(r.mean_total_duration_ms)} | ${m} | ${w} |`);
    ' "$n" "$json" "$master_rss" "$worker_rss" >> "$out"
done
echo "wrote $out"
