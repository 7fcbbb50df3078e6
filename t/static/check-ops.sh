#!/bin/sh
# check-ops.sh -- static checks of the operations files: man pages, the
# systemd unit, the logrotate file, the docker compose stack and the
# container's configuration.  No daemon, broker or Docker engine is needed;
# a check whose tool is missing is skipped.  Output is TAP.
#
#   REPORTERD=src/reporterd sh t/static/check-ops.sh
#
# REPORTERD: the reporterd binary (default: $srcdir/src/reporterd).
# srcdir:    the top of the source tree (default: this script's ../..).

# shellcheck source=SCRIPTDIR/tap.sh
. "$(dirname "$0")/tap.sh" || exit 99

if [ -z "${REPORTERD:-}" ] && [ -x "$srcdir/src/reporterd" ]; then
    REPORTERD=$srcdir/src/reporterd
fi
case ${REPORTERD:-} in
    ''|/*) ;;
    *) REPORTERD=$(pwd)/$REPORTERD ;;
esac

MANPAGES="man/reporterd.8 man/reporterd.yaml.5 man/reporterctl.1"
UNIT=contrib/reporterd.service
ENVFILE=$srcdir/docker/.env.example
CONF=$srcdir/docker/reporterd.yaml

echo "1..15"

# 1-3: man pages.  mandoc -T lint -W warning, or groff -ww where mandoc is
# missing; any message fails.
for page in $MANPAGES; do
    if have mandoc; then
        mandoc -T lint -W warning "$srcdir/$page" >"$tmp/out" 2>&1
        rc=$?
        tool=mandoc
    elif have groff; then
        groff -ww -mdoc -z "$srcdir/$page" >"$tmp/out" 2>&1
        rc=$?
        tool=groff
    else
        skip "lint $page" "mandoc and groff missing"
        continue
    fi
    if [ $rc -eq 0 ] && [ ! -s "$tmp/out" ]; then
        ok "$tool lint $page"
    else
        not_ok "$tool lint $page"
        diag "$tmp/out"
    fi
done

# 4: systemd-analyze verify of both units, with the installed binary's
# path pointed at the built one (verify checks that ExecStart= commands
# exist).  It reports unknown keys and bad values on stderr but still exits
# 0: any output fails.
for unit in $UNIT contrib/reporterd-notify.service; do
    if ! have systemd-analyze; then
        skip "systemd-analyze verify $unit" "systemd-analyze missing"
    elif [ -z "${REPORTERD:-}" ]; then
        skip "systemd-analyze verify $unit" "REPORTERD not set"
    else
        sed "s|/usr/local/sbin/reporterd|$REPORTERD|g" "$srcdir/$unit" >"$tmp/reporterd.service"
        systemd-analyze verify --man=no "$tmp/reporterd.service" >"$tmp/out" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && [ ! -s "$tmp/out" ]; then
            ok "systemd-analyze verify $unit"
        else
            not_ok "systemd-analyze verify $unit"
            diag "$tmp/out"
        fi
    fi
done

# 5: both units supervise the master in the foreground: they start it with
# -d (whatever daemon: says), as a Type=exec or Type=notify service.
if grep -q '^Type=exec$' "$srcdir/$UNIT" \
    && grep -q '^ExecStart=/usr/local/sbin/reporterd -d -c ' "$srcdir/$UNIT" \
    && grep -q '^Type=notify$' "$srcdir/contrib/reporterd-notify.service" \
    && grep -q '^ExecStart=/usr/local/sbin/reporterd -d -c ' "$srcdir/contrib/reporterd-notify.service"; then
    ok "both units run the master in the foreground with -d"
else
    not_ok "both units run the master in the foreground with -d"
fi

# 6: logrotate -d (reads, never rotates).  `create` names a user that may not
# exist here, so it is checked without its owner.
if ! have logrotate; then
    skip "logrotate -d contrib/reporterd.logrotate" "logrotate missing"
else
    sed 's/^\([[:space:]]*create\).*/\1/' "$srcdir/contrib/reporterd.logrotate" >"$tmp/logrotate.conf"
    logrotate -d -s "$tmp/logrotate.state" "$tmp/logrotate.conf" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && ! grep -qi '^error' "$tmp/out" \
        && grep -q 'reporterd -s reopen' "$srcdir/contrib/reporterd.logrotate"; then
        ok "logrotate -d contrib/reporterd.logrotate"
    else
        not_ok "logrotate -d contrib/reporterd.logrotate"
        diag "$tmp/out"
    fi
fi

# 7: every variable docker/ refers to is listed in .env.example.
missing=
for v in $(sed 's/^[[:space:]]*#.*//; s/[[:space:]]#.*//' "$CONF" "$srcdir/docker/docker-compose.yml" |
           grep -o '\${[A-Za-z_][A-Za-z0-9_]*' | sed 's/^\${//' | sort -u); do
    grep -q "^#\{0,1\}$v=" "$ENVFILE" || missing="$missing $v"
done
if [ -z "$missing" ]; then
    ok "docker/.env.example lists every variable of reporterd.yaml and docker-compose.yml"
else
    not_ok "docker/.env.example lacks:$missing"
fi

# 8-9: the container's configuration loads with the variables of
# .env.example and nothing else, and fails without them.
if [ -z "${REPORTERD:-}" ]; then
    skip "reporterd -t docker/reporterd.yaml with .env.example" "REPORTERD not set"
    skip "reporterd -t docker/reporterd.yaml fails without the environment" "REPORTERD not set"
else
    env -i PATH="$PATH" MONGOC_DISABLE_SHM=1 \
        sh -c 'set -a; . "$1"; set +a; exec "$2" -t -c "$3"' sh \
        "$ENVFILE" "$REPORTERD" "$CONF" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        ok "reporterd -t docker/reporterd.yaml with .env.example"
    else
        not_ok "reporterd -t docker/reporterd.yaml with .env.example (exit $rc)"
        diag "$tmp/out"
    fi
    env -i PATH="$PATH" MONGOC_DISABLE_SHM=1 "$REPORTERD" -t -c "$CONF" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q 'is not set' "$tmp/out"; then
        ok "reporterd -t docker/reporterd.yaml fails without the environment"
    else
        not_ok "reporterd -t docker/reporterd.yaml fails without the environment (exit $rc)"
        diag "$tmp/out"
    fi
fi

# 10: the compose file, resolved by `docker compose` or Debian's
# docker-compose.  It is copied next to .env.example as .env (env_file needs
# the file) with an empty build context.
if docker compose version >/dev/null 2>&1; then
    compose="docker compose"
elif have docker-compose; then
    compose=docker-compose
else
    compose=
fi
if [ -z "$compose" ]; then
    skip "compose config docker/docker-compose.yml" "no docker compose or docker-compose"
else
    mkdir -p "$tmp/stack/docker"
    cp "$srcdir/docker/docker-compose.yml" "$srcdir/docker/Dockerfile" "$tmp/stack/docker/"
    cp "$ENVFILE" "$tmp/stack/docker/.env"
    (cd "$tmp/stack/docker" &&
     unset COMPOSE_FILE COMPOSE_PROJECT_NAME COMPOSE_PROFILES &&
     $compose config --services) >"$tmp/out" 2>"$tmp/err"
    rc=$?
    services=$(sort "$tmp/out" | tr '\n' ' ')
    if [ $rc -eq 0 ] && [ "$services" = "mongo mongo_seed rabbitmq reporterd " ]; then
        ok "$compose config docker/docker-compose.yml ($services)"
    else
        not_ok "$compose config docker/docker-compose.yml (exit $rc, services: $services)"
        diag "$tmp/err"
    fi
fi

# 11: reporterd scales: its service has no container_name and publishes no
# port; rabbitmq publishes AMQP (5672) and the management UI (15672) on the
# host, as the old stack did, so a producer there reaches the queues.
compose_file=$srcdir/docker/docker-compose.yml
service() {     # the lines of one service of the compose file
    awk -v s="$1:" '/^[^ #]/ { on = 0 } /^  [A-Za-z_][A-Za-z0-9_-]*:/ { on = ($1 == s) } on' "$compose_file"
}
if service reporterd | grep -Eq '^[[:space:]]*(container_name|ports):'; then
    not_ok "docker-compose.yml: reporterd has no container_name and no ports (so --scale works)"
elif ! service rabbitmq | grep -Eq '^[[:space:]]*- "[^"]*:5672"$' \
    || ! service rabbitmq | grep -Eq '^[[:space:]]*- "[^"]*:15672"$'; then
    not_ok "docker-compose.yml: rabbitmq publishes 5672 and 15672 on the host"
else
    ok "docker-compose.yml: reporterd scales (no container_name, no ports); rabbitmq publishes 5672 and 15672"
fi

# 12: compose keeps the data: mongo_seed runs the loader the image installs
# from docker/mongo-seed.sh (which loads with --if-empty; t/integration/
# ctl.test.js runs it), never --drop on its own; the import directory is
# mounted; the mongo service runs without credentials when none are set.
seed=$(service mongo_seed)
if printf '%s\n' "$seed" | grep -q -- '--drop'; then
    not_ok "docker-compose.yml: mongo_seed drops nothing on up (it runs --drop)"
elif printf '%s\n' "$seed" | grep -q '^    command: \["/usr/local/bin/reporterd-mongo-seed"\]$' \
    && printf '%s\n' "$seed" | grep -q '^      - ./data:/import:ro$' \
    && grep -q '^COPY docker/mongo-seed.sh /usr/local/bin/reporterd-mongo-seed$' "$srcdir/docker/Dockerfile" \
    && grep -q -- 'import "\$how"' "$srcdir/docker/mongo-seed.sh" \
    && grep -q -- '^    how=--if-empty$' "$srcdir/docker/mongo-seed.sh" \
    && [ -f "$srcdir/docker/data/README" ] \
    && ! service mongo | grep -q 'MONGO_INITDB_ROOT_[A-Z]*:?'; then
    ok "docker-compose.yml: mongo_seed loads data/ only into an empty collection; credentials optional"
else
    not_ok "docker-compose.yml: mongo_seed loads data/ only into an empty collection; credentials optional"
fi

# 13: the Dockerfile installs the configuration the CMD names, runs as a
# non-root user and checks /healthz on the port status.listen names.
df=$srcdir/docker/Dockerfile
if grep -q '^COPY docker/reporterd.yaml /usr/local/etc/reporterd/reporterd.yaml$' "$df" \
    && grep -q '^CMD \["/usr/local/sbin/reporterd", "-c", "/usr/local/etc/reporterd/reporterd.yaml"\]$' "$df" \
    && grep -q '^USER reporterd$' "$df" \
    && grep -q '^ENV MONGOC_DISABLE_SHM=1$' "$df" \
    && grep -q 'curl -fsS http://127.0.0.1:9187/healthz' "$df" \
    && grep -q '^  listen: 0.0.0.0:9187' "$CONF" \
    && grep -q '^daemon: off' "$CONF"; then
    ok "Dockerfile and docker/reporterd.yaml agree (config path, user, health port, foreground)"
else
    not_ok "Dockerfile and docker/reporterd.yaml agree (config path, user, health port, foreground)"
fi

# 14: the systemd unit and logrotate use the default paths of the man pages.
if grep -q '^ReadWritePaths=/usr/local/var/run ' "$srcdir/$UNIT" \
    && grep -q '^KillSignal=SIGQUIT$' "$srcdir/$UNIT" \
    && grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$srcdir/$UNIT" \
    && grep -q '/usr/local/var/run/reporterd.pid' "$srcdir/man/reporterd.8" \
    && grep -q '^/usr/local/var/log/reporterd/\*\.log ' "$srcdir/contrib/reporterd.logrotate" \
    && ! grep -Eq '\|\|[[:space:]]*(true|:)' "$srcdir/contrib/reporterd.logrotate"; then
    ok "$UNIT and contrib/reporterd.logrotate use the documented paths and signals"
else
    not_ok "$UNIT and contrib/reporterd.logrotate use the documented paths and signals"
fi

[ $failed -eq 0 ]
