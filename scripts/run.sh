#!/usr/bin/env bash
# The run command: builds Sluice and its sandbox daemon and starts them with the embedded defaults
# (DuckDB demo warehouse, SQLite store) in ./.sluice. Extra arguments go to `sluice up` (e.g.
# --listen 0.0.0.0:3300, --data-dir DIR).
#
# `sluice up` starts `sluice-sandbox` (built next to `sluice`, with its zygote `sluice-sandbox-zygote`, which
# embeds the Python that PYO3_PYTHON in .ci/env.sh names: Debian's libpython3-dev) beside the gateway. The sandbox's Python is
# a dedicated venv with pandas, numpy, pyarrow, duckdb and matplotlib, made here by
# sandbox/daemon/scripts/setup-python.sh (idempotent) in the place `sluice up` looks for it. gVisor is
# used when `runsc` is installed (sandbox/daemon/scripts/install-runsc.sh, as root); otherwise the native
# backend.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/env.sh
# The zygote links $PYO3_PYTHON's shared library: Debian's libpython3-dev provides it (and its headers).
if ! "$PYO3_PYTHON" -c 'import os, sys, sysconfig as c; sys.exit(not os.path.exists(os.path.join(c.get_config_var("LIBDIR"), c.get_config_var("LDLIBRARY"))))'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpython3-dev >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpython3-dev >/dev/null; }
    else
        echo "run.sh: $PYO3_PYTHON has no shared library to embed; install Debian's libpython3-dev" >&2
        exit 1
    fi
fi
cargo build --release -p sluice-gateway --bin sluice -p sluice-sandbox --bin sluice-sandbox \
    -p sluice-sandbox-zygote --bin sluice-sandbox-zygote
# Without the venv the gateway still serves its data tools; the sandbox tools then say why they cannot run.
./sandbox/daemon/scripts/setup-python.sh >/dev/null ||
    echo "run.sh: the sandbox's Python venv could not be set up; the sandbox tools will say so" >&2
exec "$CARGO_TARGET_DIR/release/sluice" up "$@"
