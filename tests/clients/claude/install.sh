#!/usr/bin/env bash
# Installs the pinned Claude Code CLI (npm @anthropic-ai/claude-code) into a cache outside the clone, once,
# and prints the path of its `claude` binary on stdout (npm's output goes to stderr).
#
# The version, and the integrity hash of every package including the native per-platform binary, are pinned
# by package-lock.json next to this script; `npm ci` installs exactly that tree.
#
# Environment: SLUICE_CACHE (default $HOME/.cache/sluice) chooses the cache; the install lands in
# $SLUICE_CACHE/claude-code. A second run with an unchanged lockfile does no network access.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
prefix="$cache/claude-code"
package="$prefix/node_modules/@anthropic-ai/claude-code"
claude="$prefix/node_modules/.bin/claude"
stamp="$prefix/.sluice-lock.sha256"
version="$(sed -n 's/.*"@anthropic-ai\/claude-code": "\([^"]*\)".*/\1/p' "$here/package.json")"

want="$(sha256sum "$here/package-lock.json" "$here/package.json" | sha256sum | cut -d' ' -f1)"

# The version check runs the binary, so a placeholder left by a skipped postinstall is not taken as installed.
works() {
    [[ -x "$claude" ]] && [[ "$("$claude" --version 2>/dev/null)" == "$version (Claude Code)" ]]
}
installed() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && works
}

mkdir -p "$prefix"
# Test runs may start in parallel; the lock makes the second one wait for the first install instead of
# racing it inside the same node_modules.
exec 9>"$prefix/.install.lock"
flock 9

if ! installed; then
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "install.sh: npm and node are needed once to install Claude Code (apt-get install npm)" >&2
        exit 1
    fi
    echo "install.sh: installing Claude Code $version into $prefix" >&2
    rm -f "$stamp"
    cp "$here/package.json" "$here/package-lock.json" "$prefix/"
    # Install scripts are refused here and the one this package needs is run below on purpose: whether npm
    # runs it by itself depends on the npm version and its allowScripts settings, and we want the same
    # result everywhere. --engine-strict=false: the package declares Node >= 22, but what runs is the native
    # binary from the platform package; Node only runs the small postinstall.
    npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund --engine-strict=false --loglevel=error >&2
    # The postinstall copies the native binary of this platform over the bin/claude.exe placeholder.
    (cd "$package" && node install.cjs) >&2
    if ! works; then
        echo "install.sh: $claude does not run as Claude Code $version after install" \
            "(got: $("$claude" --version 2>&1 || true))" >&2
        exit 1
    fi
    echo "$want" >"$stamp"
fi

echo "$claude"
