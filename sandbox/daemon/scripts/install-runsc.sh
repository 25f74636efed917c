#!/bin/sh
# Installs gVisor's `runsc` from Debian's packages when it is missing, so that the sandbox's tests and
# benchmarks can exercise the gVisor backend. Prints the path of runsc. Safe to run again: does nothing
# when runsc is already on PATH (or at /usr/bin/runsc, where the package puts it).
set -eu

if command -v runsc >/dev/null 2>&1; then
    command -v runsc
    exit 0
fi
if [ -x /usr/bin/runsc ]; then
    echo /usr/bin/runsc
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-runsc: runsc is missing and apt-get is not available; install gVisor by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The package index may be empty in a fresh container; refresh it only when runsc is unknown.
if ! apt-cache show runsc >/dev/null 2>&1; then
    $SUDO apt-get update -q >&2
fi
$SUDO apt-get install -y -q --no-install-recommends runsc >&2
command -v runsc || echo /usr/bin/runsc
