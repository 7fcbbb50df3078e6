#!/bin/sh
# check-docs.sh -- static checks that the documentation follows the code:
# the configuration keys, the reporterctl commands, the reporterd options
# and the metrics are each documented where a user looks for them; the man
# pages carry one date; the README stays short and its links lead to files;
# every file under docs/ is distributed; the README keeps the table of
# what rollup mode guarantees after a record changes.  Output is TAP.
#
#   REPORTERD=src/reporterd REPORTERCTL=src/reporterctl sh t/static/check-docs.sh
#
# REPORTERD:   the reporterd binary (default: $srcdir/src/reporterd); the
#              option check is skipped without one.
# REPORTERCTL: the reporterctl binary (default: $srcdir/src/reporterctl);
#              the command check is skipped without one.
# srcdir:      the top of the source tree (default: this script's ../..).

# shellcheck source=SCRIPTDIR/tap.sh
. "$(dirname "$0")/tap.sh" || exit 99

if [ -z "${REPORTERD:-}" ] && [ -x "$srcdir/src/reporterd" ]; then
    REPORTERD=$srcdir/src/reporterd
fi
if [ -z "${REPORTERCTL:-}" ] && [ -x "$srcdir/src/reporterctl" ]; then
    REPORTERCTL=$srcdir/src/reporterctl
fi
case ${REPORTERD:-} in
    ''|/*) ;;
    *) REPORTERD=$(pwd)/$REPORTERD ;;
esac
case ${REPORTERCTL:-} in
    ''|/*) ;;
    *) REPORTERCTL=$(pwd)/$REPORTERCTL ;;
esac

README=$srcdir/README.md
OPS=$srcdir/docs/operations.md
MAN_D=$srcdir/man/reporterd.8
MAN_CTL=$srcdir/man/reporterctl.1
MAN_YAML=$srcdir/man/reporterd.yaml.5
README_MAX_LINES=320

echo "1..8"

# a: every key of the option table (rd_conf_opts[] in src/conf.c: one
# RD_<TYPE>("key", ...) row each, sections left out) has an entry in
# reporterd.yaml(5), under its section (".Ss Section rabbitmq", or
# ".Ss Top-level keys"), as ".It Cm <leaf> ..." with a default in it; and
# exactly one row "| `key` |" in the configuration table of the README or
# docs/operations.md.
awk '/rd_conf_opts\[\][[:space:]]*=/ { on = 1; next }
     on && /^};/ { on = 0 }
     on' "$srcdir/src/conf.c" |
    sed -n '/RD_SECTION/d
            s/^[[:space:]]*RD_[A-Z_]*[[:space:]]*([[:space:]]*"\([a-z_][a-z0-9_.]*\)".*/\1/p' \
    >"$tmp/keys"
nkeys=$(wc -l <"$tmp/keys")
if [ "$nkeys" -lt 30 ]; then
    echo "only $nkeys keys found in the option table of src/conf.c (expected 30 or more): has its format changed?" \
        >"$tmp/problems"
else
    while read -r key; do
        case $key in
            *.*) section="Section ${key%%.*}"; leaf=${key#*.} ;;
            *)   section="Top-level keys"; leaf=$key ;;
        esac
        # The entry: from its .It line to the next .It, .El, .Ss or .Sh.
        found=$(awk -v sec="$section" -v leaf="$leaf" '
            /^\.S[sh] / { insec = (substr($0, 5) == sec); inentry = 0; next }
            !insec { next }
            /^\.(It|El)( |$)/ { inentry = 0 }
            /^\.It / {
                for (i = 2; i < NF; i++)
                    if ($i == "Cm" && $(i + 1) == leaf) { inentry = 1; entry = 1 }
            }
            inentry && /[Dd]efault/ { dflt = 1 }
            END { print (entry ? (dflt ? "ok" : "nodefault") : "missing") }' "$MAN_YAML")
        case $found in
            missing)   echo "$key: no \".It Cm $leaf\" under \".Ss $section\" in man/reporterd.yaml.5" ;;
            nodefault) echo "$key: its entry in man/reporterd.yaml.5 names no default" ;;
        esac
        rows=$(cat "$README" "$OPS" | grep -cF "| \`$key\` |")
        if [ "$rows" -ne 1 ]; then
            echo "$key: $rows rows \"| \`$key\` |\" in the configuration table of README.md and docs/operations.md (want 1)"
        fi
    done <"$tmp/keys" >>"$tmp/problems"
fi
report "every configuration key ($nkeys in src/conf.c) is in reporterd.yaml(5) with a default and in one configuration table row"

# b: every command `reporterctl --help` lists (under "Commands:", and
# help from its usage line) is an ".It Cm NAME" entry of reporterctl(1) and
# a "| `reporterctl NAME ...` |" row of the README's command list.
if [ -z "${REPORTERCTL:-}" ]; then
    skip "every reporterctl command is in reporterctl(1) and the README" "REPORTERCTL not set"
else
    "$REPORTERCTL" --help >"$tmp/help" 2>&1
    rc=$?
    { sed -n '/^Commands:/,$ s/^  \([a-z][a-z-]*\)  .*/\1/p' "$tmp/help"
      grep -q 'reporterctl help' "$tmp/help" && echo help; } | sort -u >"$tmp/commands"
    ncmd=$(wc -l <"$tmp/commands")
    if [ $rc -ne 0 ] || [ "$ncmd" -lt 5 ]; then
        echo "reporterctl --help exited $rc and named $ncmd commands (expected 5 or more):" >"$tmp/problems"
        cat "$tmp/help" >>"$tmp/problems"
    else
        while read -r cmd; do
            grep -Eq "^\\.It Cm $cmd( |\$)" "$MAN_CTL" ||
                echo "$cmd: no \".It Cm $cmd\" in man/reporterctl.1"
            grep -Eq "^\\| \`reporterctl (\\[?-c FILE\\]? )?${cmd}[] \`]" "$README" ||
                echo "$cmd: no \"| \`reporterctl $cmd ...\` |\" row in README.md"
        done <"$tmp/commands" >>"$tmp/problems"
    fi
    report "every reporterctl command ($(tr '\n' ' ' <"$tmp/commands" | sed 's/ $//')) is in reporterctl(1) and the README"
fi

# c: every option `reporterd -h` prints, long and short, is on an .It line
# of reporterd(8) (as "Fl -name", "Fl x") and in the README's option table
# (as "`--name" and "`-x").
if [ -z "${REPORTERD:-}" ]; then
    skip "every reporterd option is in reporterd(8) and the README" "REPORTERD not set"
else
    "$REPORTERD" -h >"$tmp/help" 2>&1
    rc=$?
    grep -oE -- '--[a-z][a-z0-9-]*' "$tmp/help" | sed 's/^--//' | sort -u >"$tmp/long"
    # The short options: in the usage line's brackets, and in the first
    # column of the option lines ("  -c, --config FILE    ...").
    { sed -n 's/^Usage: //p' "$tmp/help"
      awk -F '   +' '/^ +-/ { print $1 }' "$tmp/help"; } |
        grep -oE -- '(^|[][ ,|])-[A-Za-z]([][ ,|]|$)' | grep -oE -- '-[A-Za-z]' |
        sed 's/^-//' | sort -u >"$tmp/short"
    nlong=$(wc -l <"$tmp/long")
    nshort=$(wc -l <"$tmp/short")
    if [ $rc -ne 0 ] || [ "$nlong" -lt 5 ] || [ "$nshort" -lt 5 ]; then
        echo "reporterd -h exited $rc with $nlong long and $nshort short options (expected 5 or more of each):" \
            >"$tmp/problems"
        cat "$tmp/help" >>"$tmp/problems"
    else
        while read -r o; do
            grep -Eq "^\\.It .*Fl -$o( |\$)" "$MAN_D" || echo "--$o: no \".It ... Fl -$o\" in man/reporterd.8"
            grep -Fq "\`--$o" "$README" || echo "--$o: not in README.md's option table"
        done <"$tmp/long" >>"$tmp/problems"
        while read -r o; do
            grep -Eq "^\\.It .*Fl $o( |\$)" "$MAN_D" || echo "-$o: no \".It ... Fl $o\" in man/reporterd.8"
            grep -Eq "\`-${o}[\` ]" "$README" || echo "-$o: not in README.md's option table"
        done <"$tmp/short" >>"$tmp/problems"
    fi
    report "every reporterd option ($nlong long, $nshort short) is in reporterd(8) and the README"
fi

# d: every metric the code emits (reporterd_* in the string literals of
# src/status.c and src/metrics.c; a histogram's _bucket, _sum and _count
# series are its own name) is named in docs/operations.md.
for f in src/status.c src/metrics.c; do
    [ -f "$srcdir/$f" ] && sed 's/\\"//g' "$srcdir/$f" | grep -o '"[^"]*"'
done | grep -o 'reporterd_[a-z_]*' | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$tmp/metrics"
nmetrics=$(wc -l <"$tmp/metrics")
if [ "$nmetrics" -lt 20 ]; then
    echo "only $nmetrics metric names found in src/status.c and src/metrics.c (expected 20 or more)" >"$tmp/problems"
else
    while read -r m; do
        grep -Eq "(^|[^a-z_])$m([^a-z_]|\$)" "$OPS" || echo "$m: not in docs/operations.md"
    done <"$tmp/metrics" >>"$tmp/problems"
fi
report "every metric the code emits ($nmetrics) is in docs/operations.md"

# e: the three man pages carry the same date.
for page in "$MAN_D" "$MAN_CTL" "$MAN_YAML"; do
    d=$(sed -n 's/^\.Dd //p' "$page")
    [ -n "$d" ] || echo "${page#"$srcdir"/}: no .Dd line" >>"$tmp/problems"
    echo "$d"
done | sort -u >"$tmp/dates"
if [ "$(wc -l <"$tmp/dates")" -ne 1 ]; then
    { echo "the man pages carry different dates:"; cat "$tmp/dates"; } >>"$tmp/problems"
fi
report "the three man pages carry one .Dd ($(head -n 1 "$tmp/dates"))"

# f: the README is at most README_MAX_LINES lines, and every docs/ file it
# links, and every page a docs/ file links beside it, exists.
lines=$(wc -l <"$README")
if [ "$lines" -gt $README_MAX_LINES ]; then
    echo "README.md has $lines lines (at most $README_MAX_LINES)" >>"$tmp/problems"
fi
grep -oE '\]\(docs/[^)#]*' "$README" | sed 's/^](//' | sort -u >"$tmp/links"
if [ ! -s "$tmp/links" ]; then
    echo "README.md links no file under docs/" >>"$tmp/problems"
fi
while read -r l; do
    [ -f "$srcdir/$l" ] || echo "README.md links $l, which does not exist"
done <"$tmp/links" >>"$tmp/problems"
for f in "$srcdir"/docs/*.md; do
    [ -f "$f" ] || continue
    grep -oE '\]\([a-z][a-z0-9_-]*\.md' "$f" | sed 's/^](//' | sort -u | while read -r l; do
        [ -f "$srcdir/docs/$l" ] || echo "docs/${f##*/} links $l, which does not exist"
    done
done >>"$tmp/problems"
report "README.md has $lines lines (at most $README_MAX_LINES) and its links to docs/ lead to files"

# g: every file under docs/ is in Makefile.am's EXTRA_DIST (the list, with
# its continuation lines), so make dist ships it.
awk '/^EXTRA_DIST[[:space:]]*[+]?=/ { on = 1 }
     on { print; if (!/\\$/) on = 0 }' "$srcdir/Makefile.am" |
    tr '\\\t' '  ' | tr -s ' ' '\n' | sed '/^$/d' >"$tmp/dist"
for f in $(cd "$srcdir" && find docs -type f | sort); do
    grep -qxF "$f" "$tmp/dist" || echo "$f is not in Makefile.am's EXTRA_DIST"
done >>"$tmp/problems"
ndocs=$(cd "$srcdir" && find docs -type f | wc -l)
if [ "$ndocs" -eq 0 ]; then
    echo "no file under docs/" >>"$tmp/problems"
fi
report "every file under docs/ ($ndocs) is in Makefile.am's EXTRA_DIST"

# h: the README has one table of what rollup mode guarantees after a
# record changes: a row per deployment (standalone, a replica set with
# pre-images, one without) by change (insert, delete, update, replace,
# TTL expiry), every cell filled.
head='| deployment | insert | delete | update (duration or phone) | replace, re-import | TTL expiry |'
nhead=$(grep -cxF "$head" "$README")
if [ "$nhead" -ne 1 ]; then
    echo "README.md has $nhead tables headed \"$head\" (want 1)" >>"$tmp/problems"
else
    awk -v head="$head" '$0 == head { on = 1; next }
        on && !/^\|/ { exit }
        on && !/^\|---/ { print }' "$README" >"$tmp/guarantees"
    for dep in 'standalone' 'replica set, MongoDB 6.0+ with pre-images' 'replica set without pre-images'; do
        grep -qF "| $dep" "$tmp/guarantees" || echo "README.md's guarantee table has no row \"$dep\""
    done >>"$tmp/problems"
    while read -r row; do
        cells=$(printf '%s\n' "$row" | sed 's/\\|//g' | awk -F'|' '{ c = 0; for (i = 2; i < NF; i++) if ($i ~ /[^ ]/) c++; print c }')
        [ "$cells" -eq 6 ] || echo "README.md's guarantee table: $cells filled cells (want 6) in: $row"
    done <"$tmp/guarantees" >>"$tmp/problems"
fi
report "README.md has the table of what rollup mode guarantees after a change, per deployment"

[ $failed -eq 0 ]
