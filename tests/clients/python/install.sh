#!/usr/bin/env bash
# Creates the virtual environment with the pinned Python MCP SDK (requirements.txt) in a cache outside the
# clone, once, and prints the path of its python on stdout (pip's output goes to stderr).
#
# Environment: SLUICE_CACHE (default $HOME/.cache/sluice) chooses the cache, the venv lands in
# $SLUICE_CACHE/py-mcp-venv; SLUICE_PYTHON (default python3) is the interpreter it is built from (the SDK
# needs Python >= 3.10). A stamp holds the hash of requirements.txt and the interpreter's version, so a
# second run with neither changed does no network access and takes well under a second.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
venv="$cache/py-mcp-venv"
python="$venv/bin/python"
stamp="$venv/.sluice-requirements.sha256"
base="${SLUICE_PYTHON:-python3}"

if ! command -v "$base" >/dev/null 2>&1; then
    echo "install.sh: $base not found; the Python MCP SDK needs Python >= 3.10 (apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! "$base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "install.sh: the Python MCP SDK needs Python >= 3.10, $base is $("$base" --version 2>&1)" >&2
    exit 1
fi

want="$({ cat "$here/requirements.txt"; "$base" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

installed() {
    # `python -V` (not an import, which costs seconds) proves the venv's interpreter still runs.
    [[ -x "$python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$python" -V >/dev/null 2>&1
}

mkdir -p "$cache"
# Test runs may start in parallel; the lock makes the second one wait for the first install instead of
# racing it inside the same venv.
exec 9>"$cache/.py-mcp-venv.lock"
flock 9

if ! installed; then
    echo "install.sh: creating $venv with the pinned Python MCP SDK" >&2
    # A fresh venv each time the pins change, so packages dropped from requirements.txt do not linger.
    rm -rf "$venv"
    "$base" -m venv "$venv" >&2
    "$python" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt" >&2
    # Catches a pin set that no longer hangs together (a dependency missing from or conflicting with the pins).
    "$python" -m pip check --disable-pip-version-check >&2
    "$python" -c 'import mcp, httpx2' >&2
    echo "$want" >"$stamp"
fi

echo "$python"
