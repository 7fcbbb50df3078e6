#!/usr/bin/env bash
# contrib/test.sh -- the README's test command: install what is missing,
# build, and run everything:
#   1. make check in build/ (unit tests, integration tests on a real RabbitMQ)
#   2. make check in build-san/ (configure --enable-sanitizers: ASan + UBSan)
#   3. make fuzz (libFuzzer, FUZZ_SECONDS each target)
#   4. the install layout (make install/uninstall into a DESTDIR)
#   5. make fault: the fault-injection suite (kills, broker restart,
#      database outage, poison messages, reloads, rollup folder kills),
#      serially, on the plain build and then on the sanitizer build, where
#      every daemon process writes its sanitizer reports to files the suite
#      scans and the task journal is on (--journal: every task's document
#      checked against what the client received)
#   6. make distcheck
# It ends with every skipped test and its reason, every expected failure,
# and one line over every test point of every step:
#   N passed, M failed, K skipped, X expected failures
# where a step that fails without a failing test point counts as one failure.
# REPORTERD_QUICK=1 runs step 1 only; it is refused when CI is set, so that a
# CI run is never a partial one.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${REPORTERD_QUICK:-}" = 1 ] && [ -n "${CI:-}" ]; then
    echo "test.sh: REPORTERD_QUICK=1 runs step 1 only; refused because CI is set (a CI run must be complete)" >&2
    exit 2
fi
. contrib/deps.sh
set -e
rd_install_deps
rd_start_rabbitmq
export MONGOC_DISABLE_SHM=1
set +e

# Nothing from an earlier run may be counted as this run's: its TAP files,
# and the .trs/.log files a step that fails to build would leave in place.
rm -f build/*.tap build-san/*.tap
for d in build build-san; do
    for sub in t/unit t/integration t/static; do
        [ -d "$d/$sub" ] && find "$d/$sub" -maxdepth 1 -type f \( -name '*.trs' -o -name '*.log' \) -delete
    done
done

status=0
passed=0 failed=0 skipped=0 xfailed=0 last_failures=0
skip_lines=() xfail_lines=() failed_steps=()

# tap FILE CMD...: run a TAP-printing command, keep its output in FILE
tap() {
    local out=$1; shift
    "$@" | tee "$out"
    return "${PIPESTATUS[0]}"
}

# count_trs DIR: add DIR's automake results (.trs) to the totals, and its
# skips and expected failures, with their reasons (automake writes them
# after '#' in the .log files), to the lists.
count_trs() {
    local dir=$1 f line
    local results
    results=$(cat "$dir"/t/unit/*.trs "$dir"/t/integration/*.trs "$dir"/t/static/*.trs 2>/dev/null \
        | sed -n 's/^:test-result: //p')
    passed=$((passed + $(grep -cx PASS <<<"$results")))
    skipped=$((skipped + $(grep -cx SKIP <<<"$results")))
    xfailed=$((xfailed + $(grep -cx XFAIL <<<"$results")))
    last_failures=$(grep -cxE 'FAIL|XPASS|ERROR' <<<"$results")
    failed=$((failed + last_failures))
    for f in "$dir"/t/unit/*.log "$dir"/t/integration/*.log "$dir"/t/static/*.log; do
        [ -f "$f" ] || continue
        while IFS= read -r line; do skip_lines+=("$dir: ${line#SKIP: }"); done < <(grep -E '^SKIP: ' "$f")
        while IFS= read -r line; do xfail_lines+=("$dir: ${line#XFAIL: }"); done < <(grep -E '^XFAIL: ' "$f")
    done
}

# count_tap FILE LABEL: the same for the TAP output of a step of ours.
count_tap() {
    local file=$1 label=$2 line
    last_failures=0
    [ -f "$file" ] || return 0
    while IFS= read -r line; do
        case $line in
            'not ok '*'# TODO'*) xfailed=$((xfailed + 1)); xfail_lines+=("$label: ${line#not ok }") ;;
            'not ok '*|'Bail out!'*) last_failures=$((last_failures + 1)) ;;
            'ok '*'# SKIP'*) skipped=$((skipped + 1)); skip_lines+=("$label: ${line#ok }") ;;
            'ok '*'# TODO'*) last_failures=$((last_failures + 1)) ;;     # an unexpected pass
            'ok '*) passed=$((passed + 1)) ;;
        esac
    done < "$file"
    failed=$((failed + last_failures))
}

# step NAME CMD...: run CMD; a failed step fails the run.
step() {
    local name=$1; shift
    echo "== $name"
    if "$@"; then echo "== $name: ok"; return 0; fi
    echo "== $name: FAILED"
    status=1
    return 1
}

# step_failed NAME N: note a failed step that had N failing test points;
# one with none (a build, fuzz, distcheck, or a crash before any result)
# counts as one failure, so that the closing line never says 0 failed.
step_failed() {
    if [ "$2" -gt 0 ]; then
        failed_steps+=("$1 ($2 failing test point(s))")
    else
        failed=$((failed + 1))
        failed_steps+=("$1 (no failing test point: counted as one failure)")
    fi
}

show_failures() {
    local f
    for f in "$1"/t/unit/*.log "$1"/t/integration/*.log "$1"/t/static/*.log; do
        [ -f "$f" ] || continue
        grep -Eq '^(not ok|Bail out)|^# (FAIL|ERROR)' "$f" && { echo "==== $f"; tail -n 100 "$f"; }
    done
    return 0
}

# check NAME DIR [configure args...]: build DIR, then make check there, counted.
check() {
    local name=$1 dir=$2; shift 2
    if ! step "build $dir" rd_build "$dir" "$@"; then
        step_failed "build $dir" 0
        return
    fi
    if step "$name" make -C "$dir" check; then
        count_trs "$dir"
    else
        show_failures "$dir"
        count_trs "$dir"
        step_failed "$name" "$last_failures"
    fi
}
# plain NAME CMD...: a step without test points.
plain() {
    local name=$1; shift
    step "$name" "$@" || step_failed "$name" 0
}
# tapstep NAME FILE CMD...: a step printing TAP, counted.
tapstep() {
    local name=$1 file=$2 rc=0; shift 2
    step "$name" tap "$file" "$@" || rc=1
    count_tap "$file" "$name"
    [ "$rc" = 0 ] || step_failed "$name" "$last_failures"
}

# The README's first command, at small sizes: it must run through and print
# both modes' per-task times.
quickstart_small() {
    PHONES=20 RECORDS=50 TASKS=2 BENCH_TASKS=5 bash contrib/quickstart.sh >build/quickstart.log 2>&1 \
        || { tail -n 40 build/quickstart.log; return 1; }
    grep -E '^(mode|live|rollup) ' build/quickstart.log
    grep -Eq '^live +[0-9.]+ +[0-9.]+ +[0-9.]+$' build/quickstart.log \
        && grep -Eq '^rollup +[0-9.]+ +[0-9.]+ +[0-9.]+$' build/quickstart.log
}

check "make check" build
if [ "${REPORTERD_QUICK:-}" != 1 ]; then
    check "make check (ASan+UBSan)" build-san --enable-sanitizers
    plain "make fuzz" make -C build fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
    tapstep "install layout" build/install.tap sh t/static/check-install.sh build
    plain "quickstart (small sizes, both modes)" quickstart_small
    tapstep "make fault (plain build)" build/fault.tap make -C build fault
    tapstep "make fault (sanitizer build, task journal on)" build-san/fault.tap make -C build-san fault FAULT_ARGS=--journal
    if ! step "make distcheck" make -C build distcheck; then
        # the logs of the tarball's own make check, which distcheck leaves on failure
        for d in build/reporterd-*/_build/sub; do [ -d "$d" ] && show_failures "$d"; done
        step_failed "make distcheck" 0
    fi
else
    echo "== REPORTERD_QUICK=1: only the build and make check in build/ ran; this run is partial"
fi

echo "== skipped: ${#skip_lines[@]}"
for l in "${skip_lines[@]}"; do
    case $l in *'# SKIP') echo "   $l (no reason given)" ;; *) echo "   $l" ;; esac
done
if [ ${#xfail_lines[@]} -gt 0 ]; then
    echo "== expected failures: ${#xfail_lines[@]}"
    for l in "${xfail_lines[@]}"; do echo "   $l"; done
fi
if [ ${#failed_steps[@]} -gt 0 ]; then
    echo "== failed steps: ${#failed_steps[@]}"
    for l in "${failed_steps[@]}"; do echo "   $l"; done
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped, ${xfailed} expected failures"
[ "$failed" = 0 ] || status=1
exit "$status"
