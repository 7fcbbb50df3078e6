# shellcheck shell=bash
# contrib/bench/lib.sh -- what the benchmark scripts share, sourced by them
# first thing: the defaults they share (BUILD, NODE, NODE_PATH, REPORTERD,
# REPORTERCTL, DB, RABBITMQ_URL, PER_TASK, mongo_uri, out; a script sets
# its own after sourcing), their --help and the options they have in common,
# the build they need, the database and broker probe, the start and the
# clean-up of a run, this run's queues, stopping a process by pid, the test
# MongoDB server, the broker URL as the configuration's variables, a
# configuration for one run, seeding, a free port, a reporterd that
# consumes and its stop, a bench at a concurrency, and the old service:
# whether it can run, its consumers' start and stop.  The caller sets
# COLLECTION, names its run (bench_start NAME: the scratch directory `work`
# and the queues' prefix `tag`) and names the queues (queues) before the
# functions that use them.
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${BUILD:-$(cd "$bench_dir/../.." && pwd)/build}
REPORTERD=${REPORTERD:-$BUILD/src/reporterd}
REPORTERCTL=${REPORTERCTL:-$BUILD/src/reporterctl}
NODE=${NODE:-node}
export NODE_PATH=${NODE_PATH:-$BUILD/t/node_modules}
DB=${DB:-reporterd_bench}
RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}
PER_TASK=10                 # phones per task
mongo_uri=${REPORTERD_TEST_MONGODB_URI:-}
out=

# usage: the caller's header comment, from line 2 to `set -euo`
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# bench_option ARGS...: the option at $1, when it is none of the caller's
# own: --mongo URI (mongo_uri) or --out FILE (out), two arguments the
# caller shifts; -h or --help prints the usage and exits 0; anything else
# is an unknown argument (exit 2).  verify.sh parses its own (--help only
# once every argument is known)
# shellcheck disable=SC2034 # out: the caller's
bench_option() {
    case $1 in
        --mongo) mongo_uri=$2 ;;
        --out) out=$2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "${0##*/}: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
}

# need_build: reporterd, reporterctl and the Node packages the probe uses
need_build() {
    local b
    for b in "$REPORTERD" "$REPORTERCTL"; do
        [ -x "$b" ] || { echo "$0: $b is not built (BUILD=$BUILD)" >&2; exit 1; }
    done
    [ -d "$NODE_PATH/mongodb" ] || { echo "$0: no $NODE_PATH/mongodb: make -C $BUILD t/node_modules/.installed" >&2; exit 1; }
}

probe() { "$NODE" "$bench_dir/scale-probe.js" "$@"; }

# bench_start NAME: the scratch directory (work, /tmp/reporterd-NAME.*) and
# the queues' prefix (tag, bench-NAME-PID); from here on, however the
# script ends, bench_finish cleans up; then the database (use_database) and
# the broker (amqp_env)
bench_start() {
    work=$(mktemp -d "/tmp/reporterd-$1.XXXXXX")
    tag=bench-$1-$$
    task_queue=; result_queue=; daemon_pids=; old_pids=; mongod_pid=
    trap bench_finish EXIT
    trap 'exit 1' HUP INT TERM
    use_database
    amqp_env "$RABBITMQ_URL"
}
# bench_finish: reporterd, the old service, this run's queues, the test
# server and the scratch directory
bench_finish() {
    stop_services
    drop_queues
    stop_pid "${mongod_pid:-}" TERM
    rm -rf "$work"
}

# queues [RUN]: after deleting the previous ones, this run's queue names:
# $tag.tasks and $tag.results, or with RUN $tag.RUN.tasks and
# $tag.RUN.results
# shellcheck disable=SC2120 # RUN is optional
queues() {
    drop_queues
    task_queue=$tag${*:+.$*}.tasks
    result_queue=$tag${*:+.$*}.results
}
# drop_queues: delete this run's queues, if any, and forget their names
drop_queues() {
    [ -z "${task_queue:-}" ] || probe delete-queues "$RABBITMQ_URL" "$task_queue" "$result_queue" \
        "$task_queue.dead" 2>/dev/null || true
    task_queue=; result_queue=
}

# stop_pid PID SIGNAL: signal it and wait (bounded) for it to go
stop_pid() {
    local pid=$1 sig=$2
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 600); do
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
    # shellcheck disable=SC2034 # the caller's tables use it
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

# seed CONF PHONES RECORDS: reseed the database (reporterctl seed --drop);
# its last line on stderr
seed() {
    "$REPORTERCTL" -c "$1" seed --phones "$2" --records "$3" --drop 2>&1 \
        | tr '\r' '\n' | tail -n 1 >&2
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now
free_port() { "$NODE" -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

# start_daemon CONF LOG WORKERS: reporterd on CONF (whose error_log is
# LOG) until WORKERS workers consume; its pid is added to daemon_pids
start_daemon() {
    local c pid
    rm -f "$2"
    "$REPORTERD" -c "$1" &
    pid=$!
    daemon_pids="$daemon_pids $pid"
    for _ in $(seq 1 600); do
        c=$(grep -c 'consuming from' "$2" 2>/dev/null || true)
        [ "${c:-0}" -ge "$3" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: reporterd ($1) did not start consuming:" >&2
    tail -n 20 "$2" >&2 || true
    exit 1
}
# stop_daemon: every reporterd start_daemon started, with QUIT, in order
stop_daemon() {
    local p
    for p in $daemon_pids; do stop_pid "$p" QUIT; done
    daemon_pids=
}

# bench CONF N CONCURRENCY: bench JSON of N tasks of PER_TASK random phones
# below $phones (the caller's) at CONCURRENCY
# shellcheck disable=SC2154 # phones
bench() {
    "$REPORTERCTL" -c "$1" bench -n "$2" --concurrency "$3" --phones-per-task "$PER_TASK" \
        --max-phone "$phones" --timeout $(( $2 * 30 + 60 )) --json
}

# old_service_status: nothing when contrib/bench/python/run.sh can run the
# old service, else "not available: <why>"
old_service_status() {
    local why
    why=$("$bench_dir/python/run.sh" --check 2>&1) || echo "not available: $why"
}
# start_old N: N consumers of the old service (contrib/bench/python/run.sh)
# on this run's queues and database, their pids added to old_pids
start_old() {
    for _ in $(seq 1 "$1"); do
        RABBITMQ_QUEUE_NAME=$task_queue RABBITMQ_QUEUE_NAME_RESULT=$result_queue \
            MONGODB_URI=$mongo_uri MONGODB_DB_NAME=$DB MONGODB_COLLECTION=$COLLECTION \
            "$bench_dir/python/run.sh" >>"$work/old.log" 2>&1 &
        old_pids="$old_pids $!"
    done
}
# stop_old: those consumers, with TERM
stop_old() {
    local p
    for p in $old_pids; do stop_pid "$p" TERM; done
    old_pids=
}
# stop_services: reporterd and the old service, whichever runs
stop_services() { stop_daemon; stop_old; }
