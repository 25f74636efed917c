#!/usr/bin/env bash
# The governance benchmark in one run: criterion over the corpus (parse, read, decide, govern, render,
# verify, redact per query and dialect; and the same steps on the `get_date_boundaries` statement for 5 to
# 160 tables, group `boundaries/`), then the sqlglot baseline on the same corpus (parse, decide,
# parse+rewrite, full), back to back on the same machine, then one markdown report with parse time,
# decision time and the re-parse check per dialect and query category. Not part of .ci/run.
#
#   gateway/governance/benches/run.sh [criterion arguments, e.g. --measurement-time 2 or a filter]
#
# The bench virtual environments are created (and refreshed when the requirements change) under
# ~/.cache/sluice: bench-venv from requirements.txt (pure-Python sqlglot, the baseline) and bench-venv-c
# from requirements-c.txt (sqlglot[c], its compiled extension; skipped with SLUICE_BENCH_SKIP_C=1).
# Results go to $CARGO_TARGET_DIR (or ./target)/governance-bench/; criterion's own to $CRITERION_HOME.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
export CRITERION_HOME="${CRITERION_HOME:-$target/criterion}"
out="$target/governance-bench"
venv="${SLUICE_BENCH_VENV:-$HOME/.cache/sluice/bench-venv}"
venv_c="${SLUICE_BENCH_VENV_C:-$HOME/.cache/sluice/bench-venv-c}"
mkdir -p "$out"

ensure_venv() { # <dir> <requirements file>
    local dir="$1" req="$2" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ ! -x "$dir/bin/python" || "$(cat "$dir/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
        python3 -m venv "$dir" || return 1
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" || return 1
        echo "$want" >"$dir/.requirements.sha256"
    fi
}

ensure_venv "$venv" "$here/requirements.txt"
with_c=0
if [[ "${SLUICE_BENCH_SKIP_C:-0}" != 1 ]]; then
    if ensure_venv "$venv_c" "$here/requirements-c.txt"; then
        with_c=1
    else
        echo "sqlglot[c] could not be installed; reporting pure-Python sqlglot only" >&2
    fi
fi

cd "$root"
# Build first, so that compiling does not overlap the measurements.
cargo bench -p sluice-governance --bench governance --no-run

since="$(date +%s)"
load_before="$(uptime)"
cargo bench -p sluice-governance --bench governance -- "$@" | tee "$out/criterion.log"
load_between="$(uptime)"
"$venv/bin/python" "$here/sqlglot_bench.py" >"$out/sqlglot.json"
if [[ $with_c == 1 ]]; then
    "$venv_c/bin/python" "$here/sqlglot_bench.py" >"$out/sqlglot-c.json"
else
    rm -f "$out/sqlglot-c.json"
fi
load_after="$(uptime)"

{
    echo "## Governance benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(rustc --version)."
    echo "Load average (1, 5, 15 min): before ${load_before##*load average: }; after criterion ${load_between##*load average: }; after sqlglot ${load_after##*load average: }."
    echo
    "$venv/bin/python" "$here/report.py" --criterion "$CRITERION_HOME" --sqlglot "$out/sqlglot.json" \
        --sqlglot-c "$out/sqlglot-c.json" --since "$since" --per-query
} >"$out/report.md"
echo
cat "$out/report.md"
echo
echo "(written to $out/report.md)"
