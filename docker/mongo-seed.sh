#!/bin/sh
# mongo-seed.sh -- the compose stack's one-shot loader (service mongo_seed).
#
# The first `docker compose up` loads the call records from the import
# directory (docker/data, mounted at /import): data.json, data.ndjson or
# data.csv, as the old stack's mongo_seed loaded data.json -- or, with no
# such file, synthetic records (`reporterctl seed`).  Every later `up`
# finds records in the collection and loads nothing: the data is kept.
# MONGO_SEED_DROP=1 (`docker compose run --rm -e MONGO_SEED_DROP=1
# mongo_seed`) drops the collection and loads again.
#
# REPORTERCTL, REPORTERD_CONF and REPORTERD_IMPORT_DIR change where it looks
# (the tests run it outside a container); REPORTERD_SEED_ARGS are passed to
# `reporterctl seed` (e.g. "--phones 50 --records 1000").
set -eu
ctl=${REPORTERCTL:-reporterctl}
conf=${REPORTERD_CONF:-/usr/local/etc/reporterd/reporterd.yaml}
dir=${REPORTERD_IMPORT_DIR:-/import}
if [ "${MONGO_SEED_DROP:-0}" = 1 ]; then
    how=--drop
else
    how=--if-empty
fi
for f in data.json data.ndjson data.csv; do
    [ -f "$dir/$f" ] || continue
    echo "mongo_seed: $dir/$f ($how)"
    rc=0
    "$ctl" -c "$conf" import "$how" "$dir/$f" || rc=$?
    if [ "$rc" -eq 3 ]; then
        # imported; the malformed records were named above and skipped
        echo "mongo_seed: $dir/$f loaded without its malformed records"
        rc=0
    fi
    exit "$rc"
done
echo "mongo_seed: no data.json, data.ndjson or data.csv in $dir: synthetic records ($how)"
# shellcheck disable=SC2086 # REPORTERD_SEED_ARGS is a list of arguments
exec "$ctl" -c "$conf" seed "$how" ${REPORTERD_SEED_ARGS:-}
