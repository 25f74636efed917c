#!/usr/bin/env bash
# The test command: formatting, lints, every unit/integration suite and the end-to-end suites against the
# real binaries and real servers. It installs or starts whatever the suites need.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-test-deps.sh
. .ci/env.sh
# The sandbox suites run against every backend: gVisor must be present (setup installed it), and the
# sandbox's Python venv is the one the setup built.
export SLUICE_TEST_REQUIRE_GVISOR=1
SLUICE_SANDBOX_PYTHON="$(./sandbox/daemon/scripts/setup-python.sh)"
export SLUICE_SANDBOX_PYTHON

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build (binaries and tests; the same target selection as clippy, so nothing builds twice)"
cargo build --workspace --all-targets
echo "== tests"
cargo nextest run --workspace --no-fail-fast "$@"
