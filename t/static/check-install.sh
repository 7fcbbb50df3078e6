#!/bin/sh
# check-install.sh BUILDDIR -- `make install DESTDIR=...` puts exactly the
# documented files in place (and the directories the default config
# names), keeps an existing reporterd.yaml, and `make uninstall` leaves
# nothing but the configuration.  Prints TAP.
set -u
build=${1:?usage: check-install.sh BUILDDIR}
# shellcheck source=SCRIPTDIR/tap.sh
. "$(dirname "$0")/tap.sh" || exit 99
dest=$tmp/destdir
mkdir "$dest" || exit 99
# nok TEXT [LINE...]: a failing test point, each LINE a diagnostic.
nok() { not_ok "$1"; shift; for l in "$@"; do echo "#   $l"; done; }
prefix=$(sed -n 's/^prefix = //p' "$build/Makefile")

make -s -C "$build" install DESTDIR="$dest" >/dev/null 2>&1 || nok "make install DESTDIR"
expected=$(printf '%s\n' bin/reporterctl etc/reporterd/reporterd.yaml sbin/reporterd \
    share/man/man1/reporterctl.1 share/man/man5/reporterd.yaml.5 share/man/man8/reporterd.8 | sort)
got=$(cd "$dest$prefix" && find . -type f | sed 's|^\./||' | sort)
if [ "$got" = "$expected" ]; then ok "installed files are exactly: $(echo $expected)"
else nok "installed files" "expected: $(echo $expected)" "got: $(echo $got)"; fi
for d in var/run var/log/reporterd; do
    if [ -d "$dest$prefix/$d" ]; then ok "$prefix/$d exists"; else nok "$prefix/$d exists"; fi
done
conf=$dest$prefix/etc/reporterd/reporterd.yaml
if grep -q "^pid: $prefix/var/run/reporterd.pid" "$conf"; then ok "installed config names $prefix/var/run/reporterd.pid"
else nok "installed config pid path" "$(grep '^pid:' "$conf")"; fi
# -t checks that the pid and log directories exist: they do under DESTDIR
sed "s|$prefix/var/|$dest$prefix/var/|g" "$conf" >"$dest/reporterd-t.yaml"
if "$dest$prefix/sbin/reporterd" -t -c "$dest/reporterd-t.yaml" >/dev/null 2>&1; then ok "reporterd -t accepts the installed config (its var/ paths under DESTDIR)"
else nok "reporterd -t accepts the installed config" "$("$dest$prefix/sbin/reporterd" -t -c "$dest/reporterd-t.yaml" 2>&1)"; fi
rm -f "$dest/reporterd-t.yaml"

echo "# operator's edit" >> "$conf"
make -s -C "$build" install DESTDIR="$dest" >/dev/null 2>&1
if grep -q "operator's edit" "$conf"; then ok "a second make install keeps the existing reporterd.yaml"
else nok "a second make install keeps the existing reporterd.yaml"; fi

make -s -C "$build" uninstall DESTDIR="$dest" >/dev/null 2>&1 || nok "make uninstall"
left=$(cd "$dest" && find . -type f | sed 's|^\./||')
if [ "$left" = "${prefix#/}/etc/reporterd/reporterd.yaml" ]; then ok "make uninstall leaves only the configuration"
else nok "make uninstall leaves only the configuration" "left: $(echo $left)"; fi
echo "1..$n"
[ "$failed" -eq 0 ]
