# Shared build environment for the README's commands and CI: build output and the compiler cache live outside
# the clone, so a fresh checkout on the same machine builds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
export SCCACHE_DIR="${SCCACHE_DIR:-$HOME/.cache/sluice/sccache}"
export SCCACHE_CACHE_SIZE="${SCCACHE_CACHE_SIZE:-20G}"
if command -v sccache >/dev/null 2>&1; then export RUSTC_WRAPPER=sccache; fi
if command -v mold >/dev/null 2>&1; then export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"; fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The sandbox's zygote (sluice-sandbox-zygote) embeds CPython: it links the interpreter the sandbox venv is
# made from (the same default as sandbox/daemon/scripts/setup-python.sh), never whichever libpython the
# loader finds first; its build script adds an rpath to that interpreter's library directory.
export PYO3_PYTHON="${PYO3_PYTHON:-${SLUICE_BASE_PYTHON:-/usr/bin/python3}}"
