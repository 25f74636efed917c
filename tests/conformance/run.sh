#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against a running gateway.
#
# Usage: run.sh URL [extra arguments for `conformance server`, e.g. --scenario ping or --verbose]
#
# URL is the MCP endpoint as the suite should see it, normally the key-adding test proxy in front of
# `sluice`, e.g. http://127.0.0.1:40123/mcp. It must name localhost or 127.0.0.1: the DNS-rebinding
# scenario refuses other hosts. The suite's client sends no credentials, which is why the proxy exists.
#
# Scenarios listed in expected-failures.yml (fixture-only, see README.md) may fail; anything else failing,
# or a listed scenario passing, makes the run fail.
#
# Exit status: the suite's own, 0 when every result matches the baseline and 1 otherwise; 2 for bad usage.
#
# Environment:
#   SLUICE_NODE, SLUICE_CONFORMANCE  use this node binary and suite CLI instead of calling install.sh
#   SLUICE_CONFORMANCE_RESULTS       save each scenario's checks.json under this directory
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: $0 URL [conformance server options...]" >&2
    exit 2
fi
url="$1"
shift

if [[ -z "${SLUICE_NODE:-}" || -z "${SLUICE_CONFORMANCE:-}" ]]; then
    # install.sh prints SLUICE_NODE=... and SLUICE_CONFORMANCE=...; it is a no-op once installed. Its
    # output is captured first so that a failed install stops this script.
    paths="$("$here/install.sh")"
    while IFS='=' read -r key value; do
        case "$key" in
            SLUICE_NODE) SLUICE_NODE="$value" ;;
            SLUICE_CONFORMANCE) SLUICE_CONFORMANCE="$value" ;;
        esac
    done <<<"$paths"
fi

args=(server --url "$url" --expected-failures "$here/expected-failures.yml")
if [[ -n "${SLUICE_CONFORMANCE_RESULTS:-}" ]]; then
    mkdir -p "$SLUICE_CONFORMANCE_RESULTS"
    args+=(--output-dir "$SLUICE_CONFORMANCE_RESULTS")
fi

exec "$SLUICE_NODE" "$SLUICE_CONFORMANCE" "${args[@]}" "$@"
