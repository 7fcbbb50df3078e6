#!/usr/bin/env bash
# contrib/test.sh -- the README's test command: install what is missing,
# build, and run everything:
#   1. make check in build/ (unit tests, integration tests on a real RabbitMQ)
#   2. make check in build-san/ (configure --enable-sanitizers: ASan + UBSan)
#   3. make fuzz (libFuzzer, FUZZ_SECONDS each target)
#   4. the install layout (make install/uninstall into a DESTDIR)
#   5. make fault: the fault-injection suite (kills, broker restart,
#      database outage, poison messages, reloads), serially
#   6. make distcheck
# Set REPORTERD_QUICK=1 to run step 1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh
set -e
rd_install_deps
rd_start_rabbitmq
export MONGOC_DISABLE_SHM=1
set +e

status=0
# tap FILE CMD...: run a TAP-printing command, keep its output in FILE
tap() {
    local out=$1; shift
    "$@" | tee "$out"
    return "${PIPESTATUS[0]}"
}
tap_count() {
    cat build/*.tap 2>/dev/null | grep -Ec "^$1 [0-9]" || true
}
step() {
    local name=$1; shift
    echo "== $name"
    if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED"; status=1; fi
}
show_failures() {
    local f
    for f in "$1"/t/unit/*.log "$1"/t/integration/*.log "$1"/t/static/*.log; do
        [ -f "$f" ] || continue
        grep -Eq '^(not ok|Bail out)|^# (FAIL|ERROR)' "$f" && { echo "==== $f"; tail -n 100 "$f"; }
    done
    return 0
}
count() {
    cat "$1"/t/unit/*.trs "$1"/t/integration/*.trs "$1"/t/static/*.trs 2>/dev/null \
        | grep -Ec "^:test-result: ($2)" || true
}

step "build" rd_build build
step "make check" make -C build check
[ "$status" = 0 ] || show_failures build
passed=$(count build PASS); failed=$(count build 'FAIL|XPASS|ERROR')

if [ "${REPORTERD_QUICK:-}" != 1 ]; then
    step "build with sanitizers" rd_build build-san --enable-sanitizers
    step "make check (ASan+UBSan)" make -C build-san check
    [ "$status" = 0 ] || show_failures build-san
    passed=$((passed + $(count build-san PASS)))
    failed=$((failed + $(count build-san 'FAIL|XPASS|ERROR')))
    step "make fuzz" make -C build fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
    step "install layout" tap build/install.tap sh t/static/check-install.sh build
    step "make fault" tap build/fault.tap make -C build fault
    step "make distcheck" make -C build distcheck
fi
passed=$((passed + $(tap_count ok)))
failed=$((failed + $(tap_count 'not ok')))
echo "${passed} passed, ${failed} failed"
exit "$status"
