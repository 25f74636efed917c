#!/usr/bin/env bash
# Installs the pinned OpenID provider (oidc-provider), jose and the MCP TypeScript SDK for the OAuth
# end-to-end tests into a cache outside the clone, once, on the Node 22 that tests/conformance/install.sh
# provides.
#
# Output (stdout, one KEY=VALUE per line, as tests/conformance/install.sh prints them):
#   SLUICE_NODE=<path of the node binary>
#   SLUICE_OIDC=<directory holding the scripts (*.mjs) beside their node_modules>
# npm's own output goes to stderr.
#
# The scripts are copied next to the installed node_modules on every run (ES modules resolve packages from
# their own location), so an edited script is picked up without reinstalling. A second run with an
# unchanged lockfile does no network access.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
prefix="$cache/oidc"
stamp="$prefix/.sluice-lock.sha256"

node="$("$here/../conformance/install.sh" | sed -n 's/^SLUICE_NODE=//p')"
[[ -x "$node" ]] || { echo "install.sh: no Node 22 from tests/conformance/install.sh" >&2; exit 1; }

want="$(sha256sum "$here/package-lock.json" "$here/package.json" | sha256sum | cut -d' ' -f1)"
mkdir -p "$prefix"
# Parallel test runs: the second waits for the first install instead of racing it.
exec 9>"$prefix/.install.lock"
flock 9

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -d "$prefix/node_modules/oidc-provider" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install.sh: npm is needed once to fetch oidc-provider (apt-get install npm)" >&2
        exit 1
    fi
    echo "install.sh: installing oidc-provider and jose into $prefix" >&2
    rm -f "$stamp"
    cp "$here/package.json" "$here/package-lock.json" "$prefix/"
    # No package needs an install script; refusing them keeps the supply chain to plain files.
    npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund --engine-strict=false --loglevel=error >&2
    echo "$want" >"$stamp"
fi
cp "$here"/*.mjs "$prefix/"

echo "SLUICE_NODE=$node"
echo "SLUICE_OIDC=$prefix"
