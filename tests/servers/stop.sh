#!/usr/bin/env bash
# Stops a server started by start.sh. With --remove, also deletes its directory.
#
#   tests/servers/stop.sh DIR [--remove]
set -uo pipefail
dir="${1:?usage: stop.sh DIR [--remove]}"
if [[ -f "$dir/stop-command" ]]; then
    command="$(cat "$dir/stop-command")"
    if [[ "$command" == *pg_ctl* ]]; then
        if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- $command >/dev/null 2>&1; else $command >/dev/null 2>&1; fi
    else
        $command >/dev/null 2>&1
        # Wait for mariadbd to release its port and files before anyone starts it again.
        for _ in $(seq 1 100); do
            [[ -f "$dir/mysqld.pid" ]] || break
            sleep 0.1
        done
    fi
fi
if [[ "${2:-}" == "--remove" ]]; then
    rm -rf "$dir"
    # The tests' shared instances keep a lock file beside their directory; the run's directory goes too
    # once it is empty.
    rm -f "$dir.lock"
    rmdir "$(dirname "$dir")" 2>/dev/null || true
fi
