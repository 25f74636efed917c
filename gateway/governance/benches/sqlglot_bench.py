"""The sqlglot baseline of the governance benchmark (see ../README.md, "Performance").

For every query of corpus/ and each dialect (duckdb, postgres), times with time.perf_counter_ns:

- parse:         sqlglot.parse_one(sql, read=dialect)
- parse_rewrite: parse_one, then the row limit as governance applies it (inject LIMIT n when absent,
                 lower a literal above n, keep one at most n), then .sql(dialect=dialect)
- decide:        the decision alone on an already parsed tree (a fresh copy per call, made outside the
                 timing), the equivalent of governance's `decide` step: walk every node, look up each
                 table, column and function name in the typical policy's deny sets, apply the row limit
- full:          the equivalent of the whole of `govern`: parse, decide, render with .sql(), parse the
                 rendering again and compare it with the limited tree (the re-parse check; where sqlglot
                 does not give the same tree back, its rendering must be a fixed point instead)

Each measurement runs a few warm-up calls, then individually timed calls until both --min-iters calls and
--min-time seconds are reached; the per-query figure is the median of those calls, the corpus figure the
median of the per-query medians (as for the Rust side). Prints JSON on stdout.

Run through run.sh, which creates the bench virtual environment from requirements.txt.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import sqlglot
from sqlglot import exp

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DIALECTS = ("duckdb", "postgres")
# The limit the gateway passes to govern: its cap of 1 000 rows plus one to detect truncation.
LIMIT = 1001


def corpus(dialect):
    """Every NAME.sql, plus NAME.<dialect>.sql variants, in name order (the rule of governance.rs)."""
    cases = []
    for file in sorted(os.listdir(CORPUS)):
        if not file.endswith(".sql"):
            continue
        stem = file[: -len(".sql")]
        name, _, only = stem.partition(".")
        if only and only != dialect:
            continue
        with open(os.path.join(CORPUS, file), encoding="utf-8") as f:
            cases.append((name, f.read()))
    cases.sort()
    return cases


def parse(sql, dialect):
    return sqlglot.parse_one(sql, read=dialect)


def parse_rewrite(sql, dialect):
    tree = sqlglot.parse_one(sql, read=dialect)
    limit = tree.args.get("limit")
    current = limit.expression if isinstance(limit, exp.Limit) else None
    keep = isinstance(current, exp.Literal) and current.is_int and int(current.this) <= LIMIT
    if not keep:
        tree = tree.limit(LIMIT, copy=False)
    return tree.sql(dialect=dialect)


# The typical connection policy of governance.rs, as sets of lower-case names. None of it matches a corpus
# query, so every name is looked up and nothing is refused.
DENIED_SCHEMAS = {"internal", "audit"}
DENIED_TABLES = {"staff_salaries", "internal.api_keys", "payment_tokens"}
DENIED_COLUMNS = {"customers.password_hash", "customers.phone", "payments.card_number",
                  "payments.card_fingerprint"}
DENIED_FUNCTIONS = {"md5", "pg_read_file"}


def decide(tree):
    """Checks every table, column and function of the tree against the deny sets, then limits it."""
    for node in tree.walk():
        if isinstance(node, exp.Table):
            if node.db.lower() in DENIED_SCHEMAS or node.name.lower() in DENIED_TABLES \
                    or f"{node.db}.{node.name}".lower() in DENIED_TABLES:
                raise SystemExit(f"refused table {node.sql()}")
        elif isinstance(node, exp.Column):
            if f"{node.table}.{node.name}".lower() in DENIED_COLUMNS:
                raise SystemExit(f"refused column {node.sql()}")
        elif isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            if name.lower() in DENIED_FUNCTIONS:
                raise SystemExit(f"refused function {name}")
    limit = tree.args.get("limit")
    current = limit.expression if isinstance(limit, exp.Limit) else None
    keep = isinstance(current, exp.Literal) and current.is_int and int(current.this) <= LIMIT
    if not keep:
        tree = tree.limit(LIMIT, copy=False)
    return tree


def full(sql, dialect):
    tree = decide(sqlglot.parse_one(sql, read=dialect))
    rendered = tree.sql(dialect=dialect)
    again = sqlglot.parse_one(rendered, read=dialect)
    # sqlglot's round trip is not always the same tree (it nests `x::numeric` casts differently the second
    # time), so where the trees differ the rendering must at least be a fixed point.
    if again != tree and again.sql(dialect=dialect) != rendered:
        raise SystemExit(f"unstable rendering: {rendered}")
    return rendered


def measure(fn, sql, dialect, min_iters, min_time_ns, prepare=None):
    """Median of individually timed calls of fn(sql, dialect), or of fn(prepare()) when `prepare` makes
    each call's input (outside the timing)."""
    def call():
        if prepare is None:
            clock_start = clock()
            fn(sql, dialect)
        else:
            arg = prepare()
            clock_start = clock()
            fn(arg)
        return clock() - clock_start

    clock = time.perf_counter_ns
    for _ in range(3):
        call()
    times = []
    deadline = clock() + min_time_ns
    while len(times) < min_iters or clock() < deadline:
        times.append(call())
    return statistics.median(times), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-iters", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per query and measurement")
    ap.add_argument("--dialect", action="append", choices=DIALECTS)
    args = ap.parse_args()
    min_time_ns = int(args.min_time * 1e9)

    out = {
        "sqlglot": sqlglot.__version__,
        # sqlglot[c] (sqlglotc) overlays mypyc-compiled modules; sqlglot.tokens says whether they are in use.
        "compiled": bool(getattr(sqlglot.tokens, "SQLGLOTC_INSTALLED", False)),
        "python": platform.python_version(),
        "limit": LIMIT,
        "dialects": {},
    }
    for dialect in args.dialect or DIALECTS:
        queries = {}
        for name, sql in corpus(dialect):
            # The rewrite must produce SQL that sqlglot reads again, limited; otherwise the timing is moot.
            rewritten = parse_rewrite(sql, dialect)
            again = sqlglot.parse_one(rewritten, read=dialect)
            if not isinstance(again.args.get("limit"), exp.Limit):
                raise SystemExit(f"{dialect}/{name}: rewrite lost the limit: {rewritten}")
            full(sql, dialect)
            tree = parse(sql, dialect)
            p, n_p = measure(parse, sql, dialect, args.min_iters, min_time_ns)
            r, n_r = measure(parse_rewrite, sql, dialect, args.min_iters, min_time_ns)
            d, n_d = measure(decide, sql, dialect, args.min_iters, min_time_ns, prepare=tree.copy)
            f, n_f = measure(full, sql, dialect, args.min_iters, min_time_ns)
            queries[name] = {"parse_ns": p, "parse_rewrite_ns": r, "decide_ns": d, "full_ns": f,
                             "iters": [n_p, n_r, n_d, n_f]}
            print(f"sqlglot {dialect}/{name}: parse {p / 1000:.0f} µs, parse+rewrite {r / 1000:.0f} µs, "
                  f"decide {d / 1000:.0f} µs, full {f / 1000:.0f} µs", file=sys.stderr)
        out["dialects"][dialect] = {
            "queries": queries,
            "parse_median_ns": statistics.median(q["parse_ns"] for q in queries.values()),
            "parse_rewrite_median_ns": statistics.median(q["parse_rewrite_ns"] for q in queries.values()),
            "decide_median_ns": statistics.median(q["decide_ns"] for q in queries.values()),
            "full_median_ns": statistics.median(q["full_ns"] for q in queries.values()),
        }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
