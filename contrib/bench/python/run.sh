#!/usr/bin/env bash
# contrib/bench/python/run.sh -- run the old Python report service's consumer
# (pika + pymongo) from a local checkout on a given broker and database, so
# contrib/bench/scale.sh can measure it beside reporterd.  Its code is not
# part of this project: see README.md here for how to get it.
#
#   OLD_SERVICE_DIR=/path/to/checkout contrib/bench/python/run.sh --check
#       exit 0 when it can run; otherwise print why not and exit 1
#   OLD_SERVICE_DIR=... [variables below] contrib/bench/python/run.sh
#       write an env file with the old service's names and run
#       `python3 consumer.py ENVFILE` in the checkout, in the foreground
#
# Variables (the old service's own names, defaults in brackets):
#   RABBITMQ_HOST [127.0.0.1]  RABBITMQ_PORT [5672]  RABBITMQ_USER [guest]
#   RABBITMQ_PASSWORD [guest]  RABBITMQ_VIRTUAL_HOST [/, written %2F]
#   RABBITMQ_QUEUE_NAME [reports.tasks]  RABBITMQ_QUEUE_NAME_RESULT [reports.results]
#   MONGODB_URI (mongodb://HOST:PORT/, split into MONGODB_HOST and MONGODB_PORT)
#   MONGODB_USER, MONGODB_PASSWORD [empty]  MONGODB_DB_NAME [calls]
#   PYTHON [python3]  CONSUMER [consumer.py, relative to OLD_SERVICE_DIR]
# scale.sh's AMQP_HOST/PORT/USER/PASSWORD/VHOST fill the RABBITMQ_ ones.
set -euo pipefail
CONSUMER=${CONSUMER:-consumer.py}
has_modules() { "$1" -c 'import pika, pymongo, dotenv' >/dev/null 2>&1; }
# python3 first; Debian's own when python3 is another one (pyenv) without
# the modules and /usr/bin/python3 has them (apt-get install python3-pika ...)
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if ! has_modules python3 && [ -x /usr/bin/python3 ] && has_modules /usr/bin/python3; then
        PYTHON=/usr/bin/python3
    fi
fi

why_not() {
    if [ -z "${OLD_SERVICE_DIR:-}" ]; then
        echo "OLD_SERVICE_DIR is not set (a checkout of the old service; see contrib/bench/python/README.md)"
    elif [ ! -f "$OLD_SERVICE_DIR/$CONSUMER" ]; then
        echo "no $CONSUMER in OLD_SERVICE_DIR=$OLD_SERVICE_DIR"
    elif ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "$PYTHON is not installed"
    elif ! has_modules "$PYTHON"; then
        echo "$PYTHON cannot import pika, pymongo and dotenv (pip install pika pymongo python-dotenv, or apt-get install python3-pika python3-pymongo python3-dotenv)"
    fi
}

if [ "${1:-}" = "--check" ]; then
    reason=$(why_not)
    [ -z "$reason" ] || { echo "$reason"; exit 1; }
    exit 0
fi
reason=$(why_not)
[ -z "$reason" ] || { echo "run.sh: $reason" >&2; exit 1; }

uri=${MONGODB_URI:-mongodb://127.0.0.1:27017/}
hostport=${uri#mongodb://}
hostport=${hostport%%/*}
hostport=${hostport##*@}
# it puts the vhost into amqp://.../VHOST as it is: "/" must be %2F there
vhost=${RABBITMQ_VIRTUAL_HOST:-${AMQP_VHOST:-/}}
[ "$vhost" != / ] || vhost=%2F
envfile=$(mktemp /tmp/old-service-env.XXXXXX)
trap 'rm -f "$envfile"' EXIT
cat >"$envfile" <<ENV
RABBITMQ_HOST=${RABBITMQ_HOST:-${AMQP_HOST:-127.0.0.1}}
RABBITMQ_PORT=${RABBITMQ_PORT:-${AMQP_PORT:-5672}}
RABBITMQ_USER=${RABBITMQ_USER:-${AMQP_USER:-guest}}
RABBITMQ_PASSWORD=${RABBITMQ_PASSWORD:-${AMQP_PASSWORD:-guest}}
RABBITMQ_VIRTUAL_HOST=$vhost
RABBITMQ_QUEUE_NAME=${RABBITMQ_QUEUE_NAME:-reports.tasks}
RABBITMQ_QUEUE_NAME_RESULT=${RABBITMQ_QUEUE_NAME_RESULT:-reports.results}
MONGODB_HOST=${hostport%%:*}
MONGODB_PORT=${hostport##*:}
MONGODB_USER=${MONGODB_USER:-}
MONGODB_PASSWORD=${MONGODB_PASSWORD:-}
MONGODB_DB_NAME=${MONGODB_DB_NAME:-calls}
ENV
cd "$OLD_SERVICE_DIR"
# not exec: the trap removes the env file when the consumer stops.  Its
# config builds mongodb://USER:PASSWORD@HOST:PORT/, which pymongo refuses
# with an empty user: without MONGODB_USER (a server without
# authentication, such as the test server) the consumer runs with that
# one property giving mongodb://HOST:PORT/; its code is otherwise as it is.
if [ -z "${MONGODB_USER:-}" ]; then
    "$PYTHON" -c '
import runpy, sys
sys.argv = [sys.argv[1], sys.argv[2]]
import config
type(config.config).mongodb_url = property(lambda c: f"mongodb://{c.MONGODB_HOST}:{c.MONGODB_PORT}/")
runpy.run_path(sys.argv[0], run_name="__main__")
' "$CONSUMER" "$envfile" &
else
    "$PYTHON" "$CONSUMER" "$envfile" &
fi
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; rm -f "$envfile"; exit 0' TERM INT
wait "$child"
