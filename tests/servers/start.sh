#!/usr/bin/env bash
# Starts a throwaway PostgreSQL or MariaDB on loopback for the connector tests, loads the fixture schema,
# and prints how to reach it. No docker: Debian's packages, installed here when missing.
#
#   tests/servers/start.sh postgres|mariadb DIR [--watch PID]
#   tests/servers/start.sh install          (only install the packages, for a CI setup step)
#
# DIR holds the data directory, the socket, the log and `env` (the lines printed below). When DIR already
# holds a stopped instance, it is started again on the same port with its data (that is how the tests
# restart a server under a live pool). With --watch, a detached watchdog stops the server once process
# PID has exited, so a test run that dies still leaves nothing running.
#
# Output (stdout, also written to DIR/env), one KEY=VALUE per line:
#   PORT=54321
#   DSN=postgres://app:app-secret@127.0.0.1:54321/sluice      (the fixture owner; may write, if allowed)
#   ADMIN=…                                                  (how stop.sh and the tests reach it as root)
# Stop with tests/servers/stop.sh DIR.
set -euo pipefail

engine="${1:?usage: start.sh postgres|mariadb DIR [--watch PID]}"
dir="${2:-}"
watch=""
if [[ "${3:-}" == "--watch" ]]; then watch="${4:?--watch needs a PID}"; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PASSWORD="app-secret"

log() { echo "start.sh: $*" >&2; }

# A free port below the kernel's ephemeral range (ip_local_port_range), so that no outgoing connection and
# no bind to port 0 (other tests' listeners) takes it between this choice and the server's bind. Chosen at
# random among the free ones; a server that still loses the race fails its start with the reason logged.
free_port() {
    python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(max(1024, low - 12000), low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}

# apt-get from several test processes at once would fight over dpkg's lock: serialise installs.
install_packages() {
    (
        flock 9
        if ! "$@" >/dev/null 2>&1; then
            log "installing $PACKAGES from Debian's packages"
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y $PACKAGES >&2 || { apt-get update >&2 && apt-get install -y $PACKAGES >&2; }
        fi
    ) 9>/tmp/sluice-servers-apt.lock
}

pg_bin() {
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        if [[ -x "$bin/initdb" ]]; then echo "$bin"; return 0; fi
    done
    return 1
}

as_postgres() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    PACKAGES="postgresql" install_packages pg_bin
    local bin; bin="$(pg_bin)"
    mkdir -p "$dir"
    local fresh=0
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        fresh=1
        echo "PORT=$(free_port)" >"$dir/port"
        if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir"; fi
        chmod 700 "$dir"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # shellcheck disable=SC1091
    source "$dir/port"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $dir -c fsync=off -c full_page_writes=off -c max_connections=100" >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    local admin=("$bin/psql" -h "$dir" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -q)
    if [[ $fresh == 1 ]]; then
        as_postgres "${admin[@]}" -d postgres -c "CREATE ROLE app LOGIN PASSWORD '$PASSWORD'" \
            -c "CREATE DATABASE sluice OWNER app" >&2
        as_postgres "$bin/psql" -h "$dir" -p "$PORT" -U app -d sluice -v ON_ERROR_STOP=1 -q \
            -f "$here/fixtures/postgres.sql" >&2
        as_postgres "${admin[@]}" -d sluice -c "ANALYZE" >&2
    fi
    {
        echo "PORT=$PORT"
        echo "DSN=postgres://app:$PASSWORD@127.0.0.1:$PORT/sluice"
        echo "ADMIN=postgres://postgres@127.0.0.1:$PORT/sluice?host=$dir"
    } >"$dir/env"
    echo "$bin/pg_ctl -D $dir/data -m immediate -w stop" >"$dir/stop-command"
}

start_mariadb() {
    PACKAGES="mariadb-server mariadb-client" install_packages command -v mariadbd mariadb-install-db mariadb
    mkdir -p "$dir"
    local fresh=0 user=mysql
    if ! id mysql >/dev/null 2>&1; then user="$(id -un)"; fi
    if [[ ! -d "$dir/data/mysql" ]]; then
        fresh=1
        echo "PORT=$(free_port)" >"$dir/port"
        if [[ "$(id -u)" == 0 ]]; then chown "$user": "$dir"; fi
        mariadb-install-db --no-defaults --user="$user" --datadir="$dir/data" --auth-root-authentication-method=socket \
            --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    fi
    # shellcheck disable=SC1091
    source "$dir/port"
    # setsid + closed descriptors: the server must not hold the caller's pipes open (a test harness would
    # wait on them forever).
    setsid mariadbd --no-defaults --user="$user" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --port="$PORT" --bind-address=127.0.0.1 --log-error="$dir/server.log" \
        --skip-name-resolve --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
        --innodb-flush-log-at-trx-commit=0 --max-connections=200 </dev/null >/dev/null 2>&1 &
    local admin=(mariadb --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot)
    local i
    for i in $(seq 1 300); do
        if "${admin[@]}" -e "SELECT 1" >/dev/null 2>&1; then break; fi
        if [[ $i == 300 ]]; then cat "$dir/server.log" >&2; exit 1; fi
        sleep 0.2
    done
    if [[ $fresh == 1 ]]; then
        "${admin[@]}" -e "CREATE DATABASE sluice CHARACTER SET utf8mb4;
            CREATE USER 'app'@'%' IDENTIFIED BY '$PASSWORD';
            GRANT ALL ON sluice.* TO 'app'@'%';
            GRANT PROCESS ON *.* TO 'app'@'%';" >&2
        "${admin[@]}" sluice <"$here/fixtures/mariadb.sql" >&2
        "${admin[@]}" sluice -e "ANALYZE TABLE customers, orders, order_items, type_samples" >/dev/null
    fi
    {
        echo "PORT=$PORT"
        echo "DSN=mysql://app:$PASSWORD@127.0.0.1:$PORT/sluice"
        echo "ADMIN=mysql://root@localhost/sluice?socket=$dir/mysqld.sock"
    } >"$dir/env"
    echo "mariadb-admin --no-defaults --protocol=socket --socket=$dir/mysqld.sock -uroot shutdown" >"$dir/stop-command"
}

if [[ "$engine" == install ]]; then
    PACKAGES="postgresql" install_packages pg_bin
    PACKAGES="mariadb-server mariadb-client" install_packages command -v mariadbd mariadb-install-db mariadb
    exit 0
fi
[[ -n "$dir" ]] || { echo "usage: start.sh postgres|mariadb DIR [--watch PID]" >&2; exit 2; }

case "$engine" in
    postgres) start_postgres ;;
    mariadb | mysql) start_mariadb ;;
    *) echo "unknown engine '$engine' (postgres, mariadb)" >&2; exit 2 ;;
esac

# One watchdog per instance: a restart under the same watched process keeps the one already running.
if [[ -n "$watch" ]] && ! { [[ -f "$dir/watchdog" ]] && kill -0 "$(cat "$dir/watchdog")" 2>/dev/null; }; then
    echo "$watch" >"$dir/watchdog"
    setsid bash -c "while kill -0 $watch 2>/dev/null; do sleep 1; done; '$here/stop.sh' '$dir' --remove" \
        </dev/null >/dev/null 2>&1 &
fi
cat "$dir/env"
