# contrib/bench/lib.sh -- what the benchmark scripts share, sourced by them:
# their --help, the build they need, the database and broker probe, the
# start and the clean-up of a run, stopping a process by pid, the test MongoDB server, the broker URL as the
# configuration's variables, a configuration for one run, a reporterd that
# consumes, and whether the old service can run.  The caller sets `work` (a
# scratch directory), `task_queue` and `result_queue` before the functions
# that use them, and REPORTERD, REPORTERCTL, NODE, DB and COLLECTION.
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# usage: the caller's header comment, from line 2 to `set -euo`
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# need_build: reporterd, reporterctl and the Node packages the probe uses
need_build() {
    local b
    for b in "$REPORTERD" "$REPORTERCTL"; do
        [ -x "$b" ] || { echo "$0: $b is not built (BUILD=$BUILD)" >&2; exit 1; }
    done
    [ -d "$NODE_PATH/mongodb" ] || { echo "$0: no $NODE_PATH/mongodb: make -C $BUILD t/node_modules/.installed" >&2; exit 1; }
}

probe() { "$NODE" "$bench_dir/scale-probe.js" "$@"; }

# bench_start: from here on, however the script ends, bench_finish cleans
# up; then the database (use_database) and the broker (amqp_env)
bench_start() {
    trap bench_finish EXIT
    trap 'exit 1' HUP INT TERM
    use_database
    amqp_env "$RABBITMQ_URL"
}
# bench_finish: reporterd, the old service (the caller's stop_old, when it
# has one), this run's queues, the test server and the scratch directory
bench_finish() {
    stop_pid "${daemon_pid:-}" QUIT
    if declare -F stop_old >/dev/null; then stop_old; fi
    drop_queues
    stop_pid "${mongod_pid:-}" TERM
    rm -rf "$work"
}
drop_queues() {
    [ -z "${task_queue:-}" ] || probe delete-queues "$RABBITMQ_URL" "$task_queue" "$result_queue" \
        "$task_queue.dead" 2>/dev/null || true
}

# stop_pid PID SIGNAL: signal it and wait (bounded) for it to go
stop_pid() {
    local pid=$1 sig=$2 i
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for i in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "$0: pid $pid ignored SIG$sig for 60 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# use_database: MongoDB at mongo_uri, or (none given) the project's test
# MongoDB server on a free port, which sets mongod_pid and mongo_uri; sets
# server (a description for the tables)
use_database() {
    if [ -n "$mongo_uri" ]; then
        server="MongoDB at ${mongo_uri%%\?*}"
        return 0
    fi
    "$NODE" "$bench_dir/../../t/mongod/server.js" --port 0 >"$work/mongod.out" 2>"$work/mongod.err" &
    mongod_pid=$!
    for _ in $(seq 1 200); do
        grep -q '^listening ' "$work/mongod.out" 2>/dev/null && break
        kill -0 "$mongod_pid" 2>/dev/null || { cat "$work/mongod.err" >&2; exit 1; }
        sleep 0.1
    done
    local hostport
    hostport=$(sed -n 's/^listening //p' "$work/mongod.out")
    [ -n "$hostport" ] || { echo "$0: the test MongoDB server did not start" >&2; exit 1; }
    mongo_uri="mongodb://$hostport/"
    server="the test MongoDB server (t/mongod/server.js, one Node.js thread)"
}

# amqp_env URL: amqp://user:pass@host:port/vhost into AMQP_HOST, AMQP_PORT,
# AMQP_USER, AMQP_PASSWORD and AMQP_VHOST (exported)
amqp_env() {
    local rest=${1#amqp://} cred hostpart hostport vhost
    cred=${rest%%@*}
    hostpart=${rest#*@}
    hostport=${hostpart%%/*}
    vhost=${hostpart#"$hostport"}
    vhost=${vhost#/}
    export AMQP_HOST=${hostport%%:*} AMQP_PORT=${hostport##*:}
    export AMQP_USER=${cred%%:*} AMQP_PASSWORD=${cred#*:} AMQP_VHOST=${vhost:-/}
    [ "$AMQP_PORT" != "$AMQP_HOST" ] || AMQP_PORT=5672
}

# write_conf FILE MODE WORKERS [STATUS_LISTEN]: a configuration for one run
# (ROLLUP_BATCH, ROLLUP_INTERVAL and VERIFY_RATE set rollup's keys)
write_conf() {
    cat >"$1" <<CONF
daemon: off
worker_processes: $3
pid: $work/reporterd.pid
error_log: $work/error-$2.log
log_level: info
rabbitmq:
  host: \${AMQP_HOST}
  port: \${AMQP_PORT}
  user: \${AMQP_USER}
  password: \${AMQP_PASSWORD}
  vhost: "\${AMQP_VHOST}"
  task_queue: $task_queue
  result_queue: $result_queue
  heartbeat: 3600s
mongodb:
  uri: $mongo_uri
  database: $DB
  collection: $COLLECTION
  max_time_ms: 1800000
report:
  mode: $2
rollup:
  batch: ${ROLLUP_BATCH:-10000}
  interval: ${ROLLUP_INTERVAL:-1h}
CONF
    [ -z "${VERIFY_RATE:-}" ] || printf '  verify_rate: %s\n' "$VERIFY_RATE" >>"$1"
    [ -z "${4:-}" ] || printf 'status:\n  listen: %s\n' "$4" >>"$1"
    chmod 600 "$1"
}

# start_daemon CONF LOG WORKERS: reporterd on CONF (whose error_log is
# LOG) until WORKERS workers consume; sets daemon_pid
start_daemon() {
    local c
    rm -f "$2"
    "$REPORTERD" -c "$1" &
    daemon_pid=$!
    for _ in $(seq 1 600); do
        c=$(grep -c 'consuming from' "$2" 2>/dev/null || true)
        [ "${c:-0}" -ge "$3" ] && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: reporterd ($1) did not start consuming:" >&2
    tail -n 20 "$2" >&2 || true
    exit 1
}

# old_service_status: nothing when contrib/bench/python/run.sh can run the
# old service, else "not available: <why>"
old_service_status() {
    local why
    why=$("$bench_dir/python/run.sh" --check 2>&1) || echo "not available: $why"
}
