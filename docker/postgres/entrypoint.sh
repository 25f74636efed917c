#!/bin/sh
# First start: initdb into $PGDATA (SCRAM for TCP, the superuser named $POSTGRES_USER with the password
# from $POSTGRES_PASSWORD_FILE, the database $POSTGRES_DB). Later starts reuse the volume as it is.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=${POSTGRES_PASSWORD_FILE:-}
    if [ -z "$pwfile" ] || [ ! -r "$pwfile" ]; then
        echo "sluice-postgres: POSTGRES_PASSWORD_FILE must name a readable file (a compose secret)" >&2
        exit 1
    fi
    # initdb reads the first line of the file as the password.
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    {
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    echo "sluice-postgres: initialised $PGDATA (user $user, database $db)"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql \
    -c password_encryption=scram-sha-256
