#!/usr/bin/env bash
# contrib/mutate.sh -- `make mutate`: does the test suite catch one-line
# bugs?  Each mutant of t/mutate/mutants.txt (a piece of text of a named
# source file and what it becomes) is applied alone to a scratch copy of
# the committed tree, the copy is rebuilt, and only the tests the mutant
# names are run (make check TESTS=...).  A mutant is killed when they fail
# (or it does not build), survived when they pass.  Prints one line per
# mutant, the survivors, and the kill rate over the mutants that are not
# marked equivalent; exit status 0 when it is at least MIN_RATE percent.
#
#   contrib/mutate.sh [--check] [--only NAME[,NAME...]]
#
# --check only verifies that each mutant's text is found exactly once in
# its file.  Not part of CI: on two cores it takes about an hour (a
# rebuild and the covering tests per mutant).  Needs what `make check`
# needs (rabbitmq-server running, Node.js).
#
# Environment: MUTANTS (t/mutate/mutants.txt), MIN_RATE (95), JOBS (2),
# KEEP=1 keeps the scratch directory.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
list=${MUTANTS:-$top/t/mutate/mutants.txt}
min_rate=${MIN_RATE:-95}
jobs=${JOBS:-2}
check_only=
only=
while [ $# -gt 0 ]; do
    case $1 in
        --check) check_only=1; shift ;;
        --only) only=,$2,; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "mutate.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# The list, parsed into parallel arrays.
names=(); files=(); froms=(); tos=(); tests=(); equivs=()
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        '@ '*) read -r _ n f <<<"$line"; names+=("$n"); files+=("$f"); froms+=(""); tos+=(""); tests+=(""); equivs+=("") ;;
        '- '*) froms[${#names[@]}-1]=${line#- } ;;
        '+ '*) tos[${#names[@]}-1]=${line#+ } ;;
        't '*) tests[${#names[@]}-1]=${line#t } ;;
        '= '*) equivs[${#names[@]}-1]=${line#= } ;;
        ''|'#'*) ;;
        *) echo "mutate.sh: $list: cannot read: $line" >&2; exit 2 ;;
    esac
done <"$list"

# count_in FILE TEXT: how often TEXT occurs in FILE
count_in() { TEXT=$2 perl -0777 -ne '$n = () = /\Q$ENV{TEXT}\E/g; print $n' "$1"; }
# replace FILE FROM TO
replace() { FROM=$2 TO=$3 perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$1"; }

bad=0
for i in "${!names[@]}"; do
    n=$(count_in "$top/${files[$i]}" "${froms[$i]}")
    if [ -z "${froms[$i]}" ] || [ -z "${tests[$i]}" ] || [ "$n" != 1 ]; then
        echo "mutate.sh: ${names[$i]}: its text is found $n times in ${files[$i]} (or it lacks - or t)" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] || exit 2
echo "mutate.sh: ${#names[@]} mutants in $list"
[ -z "$check_only" ] || exit 0

work=$(mktemp -d /tmp/reporterd-mutate.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$top" archive HEAD | tar -x -C "$work/src"
echo "== building a scratch copy of HEAD in $work"
(cd "$work/src" && autoreconf -fi >/dev/null 2>&1 && mkdir build && cd build \
    && ../configure >/dev/null && make -j"$jobs" >/dev/null \
    && make -j"$jobs" check TESTS= >/dev/null) || { echo "mutate.sh: the unmutated build failed" >&2; exit 1; }
build=$work/src/build

# run TESTS: make check with only those tests
run() { make -C "$build" -j"$jobs" check TESTS="$1" >"$work/run.log" 2>&1; }

# selected I: 0 when mutant I is to run (every one, or those --only names)
selected() { case $only in ''|*",${names[$1]},"*) return 0 ;; *) return 1 ;; esac; }

echo "== the unmutated tree passes every test the mutants name"
all=$(for i in "${!names[@]}"; do selected "$i" && echo "${tests[$i]}"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
run "$all" || { echo "mutate.sh: the tests fail without any mutant:" >&2; tail -n 30 "$work/run.log" >&2; exit 1; }

killed=0; survived=0; equivalent=0; survivors=()
for i in "${!names[@]}"; do
    selected "$i" || continue
    f=$work/src/${files[$i]}
    cp "$f" "$work/orig"
    replace "$f" "${froms[$i]}" "${tos[$i]}"
    t0=$(date +%s)
    if ! make -C "$build" -j"$jobs" >"$work/build.log" 2>&1 \
        || ! make -C "$build" -j"$jobs" check TESTS= >>"$work/build.log" 2>&1; then
        verdict="killed (does not build)"
    elif run "${tests[$i]}"; then
        verdict=survived
    else
        verdict=killed
    fi
    cp "$work/orig" "$f"
    touch "$f"
    if [ -n "${equivs[$i]}" ]; then
        equivalent=$((equivalent + 1))
        verdict="$verdict; equivalent: ${equivs[$i]}"
    elif [ "$verdict" = survived ]; then
        survived=$((survived + 1)); survivors+=("${names[$i]} (${files[$i]})")
    else
        killed=$((killed + 1))
    fi
    printf '%-26s %-22s %4ss  %s\n' "${names[$i]}" "${files[$i]}" $(( $(date +%s) - t0 )) "$verdict"
done
make -C "$build" -j"$jobs" >/dev/null 2>&1 || true

counted=$((killed + survived))
rate=$(( counted > 0 ? 100 * killed / counted : 0 ))
echo "== $killed killed, $survived survived, $equivalent equivalent (not counted): kill rate $rate % (at least $min_rate % wanted)"
for s in "${survivors[@]+"${survivors[@]}"}"; do echo "   survived: $s"; done
[ "$rate" -ge "$min_rate" ]
