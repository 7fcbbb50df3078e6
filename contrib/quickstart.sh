#!/usr/bin/env bash
# contrib/quickstart.sh -- the README's first command: install what is
# missing, build, start a local RabbitMQ and the TEST MongoDB server (a
# wire-protocol stand-in kept under t/, for tests and demos only), seed
# call records, run reporterd, send tasks and print a result.
# Everything it starts it stops again, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh

PHONES=${PHONES:-200}
RECORDS=${RECORDS:-1000}   # the test server (mingo) is slow; real MongoDB takes the full 10,000
TASKS=${TASKS:-3}

rd_install_deps
rd_start_rabbitmq
rd_build build
(cd t && npm ci --no-audit --no-fund --loglevel=error)
export MONGOC_DISABLE_SHM=1

dir=$(mktemp -d /tmp/reporterd-quickstart.XXXXXX)
suffix=$$
mongod_pid= ; daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill -QUIT "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    [ -n "$mongod_pid" ] && kill "$mongod_pid" 2>/dev/null && wait "$mongod_pid" 2>/dev/null
    for q in "quickstart.tasks.$suffix" "quickstart.tasks.$suffix.dead" "quickstart.results.$suffix"; do
        rd_sudo rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
    true
}
trap cleanup EXIT

echo "== starting the test MongoDB server (not a real MongoDB: see t/mongod/server.js)"
node t/mongod/server.js --port 0 >"$dir/mongod.out" 2>"$dir/mongod.log" &
mongod_pid=$!
for i in $(seq 1 100); do
    grep -q '^listening' "$dir/mongod.out" 2>/dev/null && break
    sleep 0.1
done
addr=$(sed -n 's/^listening //p' "$dir/mongod.out")
[ -n "$addr" ] || { echo "the test MongoDB server did not start; see $dir/mongod.log" >&2; exit 1; }

cat >"$dir/reporterd.yaml" <<YAML
daemon: off
worker_processes: 2
pid: $dir/reporterd.pid
error_log: $dir/error.log
log_level: info
rabbitmq:
  host: 127.0.0.1
  port: 5672
  user: guest
  password: guest
  vhost: /
  task_queue: quickstart.tasks.$suffix
  result_queue: quickstart.results.$suffix
  prefetch: 1
mongodb:
  uri: mongodb://$addr/
  database: calls
  collection: calls
YAML
chmod 600 "$dir/reporterd.yaml"

echo "== seeding $PHONES phones x $RECORDS call records"
build/src/reporterctl -c "$dir/reporterd.yaml" seed --phones "$PHONES" --records "$RECORDS" --drop

echo "== starting reporterd (log: $dir/error.log)"
build/src/reporterd -c "$dir/reporterd.yaml" &
daemon_pid=$!

echo "== sending $TASKS tasks"
build/src/reporterctl -c "$dir/reporterd.yaml" send -n "$TASKS" --max-phone "$PHONES"
echo "== results"
build/src/reporterctl -c "$dir/reporterd.yaml" results -n "$TASKS" --timeout 60

# The same tasks in both modes, one at a time: live mode (the default:
# MongoDB aggregates each phone's records for every task) and rollup mode
# (a folder process keeps per-phone sums; a task reads those plus the few
# records not folded yet).
BENCH_TASKS=${BENCH_TASKS:-20}
bench_phones=$(seq -s, 0 $(( (PHONES < 10 ? PHONES : 10) - 1 )))
bench() {
    build/src/reporterctl -c "$dir/reporterd.yaml" bench -n "$BENCH_TASKS" --concurrency 1 \
        --phones "$bench_phones" --phones-per-task 10 --timeout 300 --json
}
field() {       # field NAME JSON: a number from bench --json
    printf '%s\n' "$2" | sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"
}
echo "== live mode: $BENCH_TASKS tasks of 10 phones, one at a time"
live=$(bench)
echo "$live"

echo "== rollup mode: reload with report.mode: rollup, wait until every record is folded"
cat >>"$dir/reporterd.yaml" <<YAML
report:
  mode: rollup
YAML
kill -HUP "$daemon_pid"
for i in $(seq 1 600); do
    grep -q 'generation 2: all 2 workers consuming' "$dir/error.log" && break
    sleep 0.1
done
grep -q 'generation 2: all 2 workers consuming' "$dir/error.log" \
    || { echo "the reload to rollup mode did not finish in 60 s; see $dir/error.log" >&2; exit 1; }
for i in $(seq 1 600); do
    build/src/reporterctl -c "$dir/reporterd.yaml" rollup --status | grep -q 'unfolded records: 0\b' && break
    sleep 0.5
done
build/src/reporterctl -c "$dir/reporterd.yaml" rollup --status
echo "== rollup mode: the same $BENCH_TASKS tasks"
rollup=$(bench)
echo "$rollup"

echo
echo "== per task, the same tasks ($BENCH_TASKS x 10 phones, $RECORDS records per phone, one at a time)"
printf '%-8s %12s %12s %10s\n' mode "p50 ms" "p90 ms" "tasks/s"
printf '%-8s %12s %12s %10s\n' live "$(field p50 "$live")" "$(field p90 "$live")" "$(field throughput_per_s "$live")"
printf '%-8s %12s %12s %10s\n' rollup "$(field p50 "$rollup")" "$(field p90 "$rollup")" "$(field throughput_per_s "$rollup")"
echo "These times are the TEST MongoDB server's: it runs pipelines in JavaScript (mingo), many"
echo "times slower than mongod, so they say nothing about MongoDB itself -- only that rollup"
echo "mode reads far less per task. Figures measured against the old service: docs/benchmarks.md."
echo "== done; reporterd log: $dir/error.log"
