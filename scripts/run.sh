#!/usr/bin/env bash
# The run command: builds Sluice and starts it with the embedded defaults (DuckDB demo warehouse, SQLite
# store) in ./.sluice. Extra arguments go to `sluice up` (e.g. --listen 0.0.0.0:3300, --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/env.sh
cargo build --release -p sluice-gateway --bin sluice
exec "$CARGO_TARGET_DIR/release/sluice" up "$@"
