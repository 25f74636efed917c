#!/bin/sh
# Creates the sandbox's dedicated Python virtual environment with a pinned data stack from PyPI, and
# prints its interpreter's path (pass it to `sluice-sandbox serve --python`).
#
#   setup-python.sh [DIR]
#
# DIR defaults to /opt/sluice/sandbox-venv when run as root and $HOME/.cache/sluice/sandbox-venv
# otherwise. The sandbox runs as an unprivileged uid (65534 when the daemon is started as root), so the
# venv must not live under a private home such as /root (mode 0700): every directory on the way to it
# must be searchable and the venv itself world-readable. The script checks that and says so.
#
# Idempotent: a stamp file holds the interpreter and the pinned list the venv was built from; when it
# matches, nothing is installed again. Set SLUICE_BASE_PYTHON to choose the base interpreter (default:
# /usr/bin/python3, which an unprivileged uid can read; a pyenv interpreter under /root cannot).
set -eu

# The pinned stack. duckdb 2.0.0 matches the gateway's engine (DECISIONS); the rest are the newest
# releases that installed here (November 2026; matplotlib December 2026), transitive dependencies
# included, so that a rebuild gives the same environment.
PINS="contourpy==1.3.3
cycler==0.12.1
duckdb==2.0.0
fonttools==4.69.1
kiwisolver==1.5.1
matplotlib==3.11.2
numpy==2.4.6
packaging==26.4
pandas==3.1.1
pillow==13.0.0
pyarrow==26.0.1
pyparsing==3.3.3
python-dateutil==4.0.0
tzdata==2026.6"

if [ "$#" -ge 1 ]; then
    DIR=$1
elif [ "$(id -u)" = 0 ]; then
    DIR=/opt/sluice/sandbox-venv
else
    DIR=${HOME:?HOME is not set}/.cache/sluice/sandbox-venv
fi
BASE=${SLUICE_BASE_PYTHON:-/usr/bin/python3}
if [ ! -x "$BASE" ]; then
    BASE=$(command -v python3) || { echo "setup-python: no python3 found" >&2; exit 1; }
fi

STAMP="$DIR/.sluice-stamp"
WANT=$(printf 'base=%s\n%s\n' "$("$BASE" -c 'import sys; print(sys.version.split()[0])')" "$PINS")

if [ -f "$STAMP" ] && [ -x "$DIR/bin/python" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    echo "setup-python: $DIR is complete (stamp matches the pinned list)" >&2
else
    echo "setup-python: creating $DIR from $BASE" >&2
    umask 022
    mkdir -p "$(dirname "$DIR")"
    rm -f "$STAMP"
    "$BASE" -m venv --clear "$DIR"
    REQ=$(mktemp)
    trap 'rm -f "$REQ"' EXIT
    printf '%s\n' "$PINS" > "$REQ"
    # Only wheels: building any of these from source would take an hour here and is never intended.
    "$DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
        --only-binary=:all: -r "$REQ" >&2
    # Refuse to stamp an environment that cannot import its stack.
    "$DIR/bin/python" -I -c 'import duckdb, numpy, pandas, pyarrow, matplotlib' >&2
    # matplotlib's font cache, built once here rather than by every run (measured: 0.15 s more per import
    # natively, 0.7 s under gVisor, plus fontconfig noise): the daemon links it into each run's fresh
    # /tmp/matplotlib (MPLCONFIGDIR), where matplotlib reads it and writes nothing (src/policy: tmp_links).
    MPLCACHE="$DIR/share/sluice/matplotlib"
    rm -rf "$MPLCACHE"
    mkdir -p "$MPLCACHE"
    MPLCONFIGDIR="$MPLCACHE" MPLBACKEND=Agg "$DIR/bin/python" -I -c 'import matplotlib.pyplot' >&2
    ls "$MPLCACHE"/fontlist-*.json >/dev/null
    chmod -R a+rX "$DIR"
    printf '%s\n' "$WANT" > "$STAMP"
    chmod 0644 "$STAMP"
fi

# Every directory from / to the venv must be searchable by other users, or the sandbox uid cannot
# reach the interpreter.
p=$DIR
while [ "$p" != "/" ] && [ -n "$p" ]; do
    perms=$(stat -c %A "$p")
    case "$perms" in
        d????????x | d????????t) ;;
        *) echo "setup-python: warning: $p ($perms) is not searchable by other users; the sandbox's unprivileged uid cannot use this venv" >&2 ;;
    esac
    p=$(dirname "$p")
done
echo "$DIR/bin/python"
