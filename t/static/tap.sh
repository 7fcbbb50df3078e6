# tap.sh -- TAP output helpers and the common preamble for the static
# checks: sourced, never run, by the t/static/check-*.sh scripts, as
#
#   . "$(dirname "$0")/tap.sh" || exit 99
#
# make runs each check by its path under $(srcdir), so the file is found
# beside the script in-tree and in a VPATH build (make distcheck) alike.
#
# The preamble sets LC_ALL=C; makes srcdir, the top of the source tree
# (default: the script's ../..), absolute; and makes tmp, a scratch
# directory removed on exit, with an empty $tmp/problems in it.  It exits
# 99 (a hard error) when it cannot.
#
# The helpers number the test points in n and count the failures in
# failed; the script prints its own plan and sets its own exit status
# (e.g. `[ "$failed" -eq 0 ]` last).
#
#   ok TEXT             a passing test point
#   not_ok TEXT         a failing one
#   skip TEXT REASON    a skipped one
#   diag [FILE...]      the files' lines (or stdin's) as TAP diagnostics
#   report TEXT         a test point that fails when $tmp/problems (one
#                       line per problem) is not empty, printing its lines;
#                       $tmp/problems is emptied for the next
#   have TOOL           whether TOOL is on the PATH

# shellcheck shell=sh

LC_ALL=C
export LC_ALL

if [ -z "${srcdir:-}" ]; then
    srcdir=$(dirname "$0")/../..
fi
srcdir=$(cd "$srcdir" && pwd) || exit 99

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$0" .sh).XXXXXX") || exit 99
# u+w first: a check may copy read-only files (a distcheck srcdir's) in.
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
: >"$tmp/problems"

n=0
failed=0
ok()      { n=$((n + 1)); echo "ok $n - $1"; }
not_ok()  { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip()    { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag()    { sed 's/^/# /' "$@"; }
report() {
    if [ -s "$tmp/problems" ]; then
        not_ok "$1"
        diag "$tmp/problems"
    else
        ok "$1"
    fi
    : >"$tmp/problems"
}
have()    { command -v "$1" >/dev/null 2>&1; }
