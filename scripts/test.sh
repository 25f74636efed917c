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

# Cargo reuses workspace artifacts built from another checkout of the same sources, but test binaries
# embed their checkout's path (CARGO_MANIFEST_DIR for fixtures and snapshots). When the shared target dir
# was last built from a different path, rebuild the workspace's own crates (dependencies stay cached).
stamp="$CARGO_TARGET_DIR/.sluice-checkout"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$PWD" ]; then
    echo "== target dir was built from $(cat "$stamp"); rebuilding the workspace crates for $PWD"
    for pkg in $(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))'); do
        cargo clean -q -p "$pkg"
    done
fi
mkdir -p "$CARGO_TARGET_DIR" && echo "$PWD" > "$stamp"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build (binaries and tests; the same target selection as clippy, so nothing builds twice)"
cargo build --workspace --all-targets
echo "== tests"
cargo nextest run --workspace --no-fail-fast "$@"
./tests/docker/run.sh
