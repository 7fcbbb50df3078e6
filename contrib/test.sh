#!/usr/bin/env bash
# contrib/test.sh -- the README's test command: install what is missing,
# build, and run the whole suite (unit and integration tests on a real
# RabbitMQ) with `make check`, then `make distcheck`.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh

rd_install_deps
rd_start_rabbitmq
rd_build
export MONGOC_DISABLE_SHM=1

status=0
make -j2 check || status=$?

# One summary line over every TAP test point of every test program.
passed=$(cat t/unit/*.trs t/integration/*.trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
failed=$(cat t/unit/*.trs t/integration/*.trs 2>/dev/null | grep -Ec '^:test-result: (FAIL|XPASS|ERROR)' || true)
if [ "$status" -ne 0 ]; then
    for f in t/unit/*.log t/integration/*.log; do
        grep -Eq '^(not ok|Bail out)' "$f" 2>/dev/null && { echo "==== $f"; tail -n 80 "$f"; }
    done
fi
if [ "$status" -eq 0 ] && [ "${REPORTERD_SKIP_DISTCHECK:-}" != 1 ]; then
    make distcheck || status=$?
fi
echo "${passed} passed, ${failed} failed"
exit "$status"
