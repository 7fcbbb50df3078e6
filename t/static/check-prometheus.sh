#!/bin/sh
# check-prometheus.sh -- contrib/prometheus/alerts.yml and the Grafana
# dashboard contrib/grafana/reporterd.json read only metrics that
# /metrics serves (src/status.c); the dashboard is valid JSON; promtool,
# when installed (Debian: prometheus), checks the rules and runs their
# unit tests (contrib/prometheus/alerts.test.yml).  Output is TAP.
#
#   sh t/static/check-prometheus.sh
#
# srcdir: the top of the source tree (default: this script's ../..).

# shellcheck source=SCRIPTDIR/tap.sh
. "$(dirname "$0")/tap.sh" || exit 99

ALERTS=$srcdir/contrib/prometheus/alerts.yml
RULETESTS=$srcdir/contrib/prometheus/alerts.test.yml
DASH=$srcdir/contrib/grafana/reporterd.json

names()   { grep -o '\(reporterd\|process\)_[a-z_]*[a-z]' "$@" | sed 's/_bucket$//' | sort -u; }

echo "1..5"

# 1-2: every metric the rules and the dashboard read is served.
names "$srcdir/src/status.c" >"$tmp/served"
if [ "$(grep -c . "$tmp/served")" -lt 30 ]; then
    not_ok "metric names found in src/status.c ($(grep -c . "$tmp/served"), expected 30 or more)"
    exit 1
fi
for f in "$ALERTS" "$DASH"; do
    names "$f" | comm -23 - "$tmp/served" >"$tmp/unknown"
    if [ -s "$tmp/unknown" ]; then
        not_ok "${f#"$srcdir"/} reads only metrics /metrics serves; unknown: $(tr '\n' ' ' <"$tmp/unknown")"
    else
        ok "${f#"$srcdir"/} reads only metrics /metrics serves ($(names "$f" | grep -c .) names)"
    fi
done

# 3: the dashboard is JSON with panels that have queries.
if have node; then
    if node -e '
        const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        if (!Array.isArray(d.panels) || d.panels.length === 0) throw new Error("no panels");
        for (const p of d.panels) if (!p.targets || !p.targets.every((t) => t.expr)) throw new Error(`panel ${p.title}: no query`);
    ' "$DASH" 2>"$tmp/err"; then
        ok "contrib/grafana/reporterd.json is a dashboard: JSON, every panel with a query"
    else
        not_ok "contrib/grafana/reporterd.json is a dashboard: JSON, every panel with a query"
        diag "$tmp/err"
    fi
else
    skip "contrib/grafana/reporterd.json is JSON" "no node"
fi

# 4-5: promtool
if have promtool; then
    if promtool check rules "$ALERTS" >"$tmp/out" 2>&1; then
        ok "promtool check rules contrib/prometheus/alerts.yml"
    else
        not_ok "promtool check rules contrib/prometheus/alerts.yml"
        diag "$tmp/out"
    fi
    if (cd "$(dirname "$RULETESTS")" && promtool test rules "$(basename "$RULETESTS")") >"$tmp/out" 2>&1; then
        ok "promtool test rules contrib/prometheus/alerts.test.yml"
    else
        not_ok "promtool test rules contrib/prometheus/alerts.test.yml"
        diag "$tmp/out"
    fi
else
    skip "promtool check rules contrib/prometheus/alerts.yml" "no promtool (Debian package prometheus)"
    skip "promtool test rules contrib/prometheus/alerts.test.yml" "no promtool (Debian package prometheus)"
fi

[ $failed -eq 0 ]
