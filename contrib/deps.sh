# contrib/deps.sh -- sourced by test.sh and quickstart.sh: installs what is
# missing (Debian packages; Node.js and npm only when no node/npm is on
# PATH) and starts a local RabbitMQ when none answers.
rd_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Every tool a check would otherwise skip for is here, so that on a fresh
# Debian 12 no skip comes from a missing package: mandoc, systemd-analyze
# (systemd), logrotate, docker-compose (t/static/check-ops.sh); valgrind
# (memcheck), curl, ps (procps), socat (reads the sd_notify socket; python3
# is not needed) for t/integration; rabbitmqctl (rabbitmq-server) for the
# broker-restart tests and make fault; clang and its libFuzzer runtime
# (libclang-rt-14-dev) for make fuzz.  The skips left are chosen, and
# contrib/test.sh lists them with their reasons: the 2,000,000-document
# scale test (REPORTERD_TEST_SCALE=1), memcheck on the sanitizer build,
# the tests that need root when run as another user, and the database-outage
# tests when REPORTERD_TEST_MONGODB_URI points at a server they cannot stop.
rd_install_deps() {
    local pkgs="build-essential autoconf automake pkg-config librabbitmq-dev libmongoc-dev
                libbson-dev libjson-c-dev libyaml-dev libmicrohttpd-dev libsystemd-dev rabbitmq-server
                ca-certificates clang libclang-rt-14-dev valgrind curl mandoc logrotate
                docker-compose systemd procps socat"
    local need=() p
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
    done
    command -v node >/dev/null 2>&1 || need+=(nodejs)
    command -v npm >/dev/null 2>&1 || need+=(npm)
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing: ${need[*]}"
        rd_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
        rd_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
}

# The broker the tests and the demo use: 127.0.0.1:5672, guest/guest.
rd_start_rabbitmq() {
    if rd_sudo rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        return 0
    fi
    echo "== starting rabbitmq-server"
    rd_sudo flock -o /tmp/reporterd-test-rabbitmq.lock sh -c \
        'rabbitmq-diagnostics -q ping >/dev/null 2>&1 || rabbitmq-server -detached'
    local i
    for i in $(seq 1 90); do
        if rd_sudo rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
            echo "== rabbitmq is up"
            return 0
        fi
        sleep 1
    done
    echo "rabbitmq-server did not answer a ping within 90 s; see /var/log/rabbitmq/" >&2
    return 1
}

# rd_build DIR [configure args...]: an out-of-tree build in DIR.
rd_build() {
    local dir=$1 top
    shift
    top=$(pwd)
    [ -x configure ] || autoreconf -fi
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || "$top/configure" "$@"; } && make -j"$(nproc)")
}
