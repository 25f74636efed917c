#!/usr/bin/env bash
# The run command: builds Sluice and its sandbox daemon and starts them with the embedded defaults
# (DuckDB demo warehouse, SQLite store) in ./.sluice. Extra arguments go to `sluice up` (e.g.
# --listen 0.0.0.0:3300, --data-dir DIR).
#
# `sluice up` starts `sluice-sandbox` (built next to `sluice`) beside the gateway. The sandbox's Python is
# a dedicated venv with pandas, numpy, pyarrow, duckdb and matplotlib, made here by
# sandbox/daemon/scripts/setup-python.sh (idempotent) in the place `sluice up` looks for it. gVisor is
# used when `runsc` is installed (sandbox/daemon/scripts/install-runsc.sh, as root); otherwise the native
# backend.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/env.sh
cargo build --release -p sluice-gateway --bin sluice -p sluice-sandbox --bin sluice-sandbox
# Without the venv the gateway still serves its data tools; the sandbox tools then say why they cannot run.
./sandbox/daemon/scripts/setup-python.sh >/dev/null ||
    echo "run.sh: the sandbox's Python venv could not be set up; the sandbox tools will say so" >&2
exec "$CARGO_TARGET_DIR/release/sluice" up "$@"
