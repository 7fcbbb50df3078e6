#!/bin/sh
# check-docker-context.sh -- the image's build stage, without Docker: the
# files docker/Dockerfile.dockerignore leaves in the build context (the top
# of the source tree, as `docker build -f docker/Dockerfile .` sends it) are
# copied to a scratch directory, and the build stage's RUN command after
# `COPY . .` runs there (autoreconf, configure, make, make install).  It
# fails when the ignore file leaves out something the build needs -- a
# build that only works with files Docker never sends.  Output is TAP.
#
#   sh t/static/check-docker-context.sh
#
# srcdir: the top of the source tree (default: this script's ../..).
# Skipped when node, autoreconf or make is missing.

# shellcheck source=SCRIPTDIR/tap.sh
. "$(dirname "$0")/tap.sh" || exit 99
here=$(cd "$(dirname "$0")" && pwd) || exit 99

echo "1..3"
for tool in node autoreconf make; do
    if ! have "$tool"; then
        skip "the build context" "no $tool"
        skip "the build stage in it" "no $tool"
        skip "the files the run stage copies are in it" "no $tool"
        exit 0
    fi
done

ctx=$tmp/context
mkdir "$ctx" || exit 99
if ! node "$here/dockerignore.js" "$srcdir" "$srcdir/docker/Dockerfile.dockerignore" >"$tmp/files"; then
    not_ok "the build context (dockerignore.js failed)"
    exit 1
fi
# A file another test removes meanwhile (make check -j) is not missed.
(cd "$srcdir" && tr '\n' '\0' <"$tmp/files" | xargs -0 cp --parents -p -t "$ctx" 2>/dev/null)
chmod -R u+w "$ctx"
ok "the build context: $(wc -l <"$tmp/files") files"

# The RUN after `COPY . .` in the build stage, its continuation lines joined.
awk '
    /^COPY \. \./ { copied = 1; next }
    copied && /^RUN / { run = 1; sub(/^RUN /, "") }
    run { line = $0; cont = sub(/\\$/, "", line); printf "%s ", line; if (!cont) exit }
' "$srcdir/docker/Dockerfile" >"$tmp/run.sh"
if ! grep -q configure "$tmp/run.sh"; then
    not_ok "the build stage's RUN after COPY . . not found in docker/Dockerfile"
    exit 1
fi
sed -e "s|DESTDIR=/out|DESTDIR=$tmp/out|" -e "s|\$(nproc)|2|" "$tmp/run.sh" >"$tmp/run2.sh"
if (cd "$ctx" && sh -e "$tmp/run2.sh") >"$tmp/build.log" 2>&1 && [ -x "$tmp/out/usr/local/sbin/reporterd" ]; then
    ok "the build stage in it: $(tr -s ' ' <"$tmp/run.sh" | cut -c1-120)"
else
    not_ok "the build stage fails in the context docker/Dockerfile.dockerignore leaves:"
    tail -n 15 "$tmp/build.log" | diag
    exit 1
fi

# The run stage's COPY of single files from the context (docker/reporterd.yaml,
# the compose stack's loader): each must be in the context too.
missing=
for f in $(awk '/^COPY / && !/--from/ && $2 != "." { print $2 }' "$srcdir/docker/Dockerfile"); do
    [ -f "$ctx/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then
    ok "the files the run stage copies are in it"
else
    not_ok "the run stage copies files the context lacks:$missing"
    exit 1
fi
