"""Puts the governance benchmark's numbers into markdown: criterion's per-query medians (benchmark ids
`<dialect>/<query>/<step>`, read from $CRITERION_HOME/*/*/new/) beside the sqlglot baseline's JSON.
Standard library only.

Usage: report.py --criterion DIR --sqlglot FILE [--sqlglot-c FILE] [--since EPOCH] [--per-query]
"""

import argparse
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DIALECTS = ("duckdb", "postgres")
STEPS = ("parse", "read", "govern", "govern_policy", "render", "verify", "redact")


def corpus_names(dialect):
    names = set()
    for file in os.listdir(CORPUS):
        if file.endswith(".sql"):
            name, _, only = file[: -len(".sql")].partition(".")
            if not only or only == dialect:
                names.add(name)
    return sorted(names)


def criterion_medians(home, since):
    """{(group, function): median ns} for every benchmark written at or after `since`."""
    found = {}
    if not os.path.isdir(home):
        return found
    for group in os.listdir(home):
        gdir = os.path.join(home, group)
        if not os.path.isdir(gdir):
            continue
        for bench in os.listdir(gdir):
            new = os.path.join(gdir, bench, "new")
            try:
                with open(os.path.join(new, "benchmark.json"), encoding="utf-8") as f:
                    meta = json.load(f)
                path = os.path.join(new, "estimates.json")
                if os.path.getmtime(path) < since:
                    continue
                with open(path, encoding="utf-8") as f:
                    est = json.load(f)
            except (OSError, ValueError):
                continue
            found[(meta["group_id"], meta["function_id"])] = est["median"]["point_estimate"]
    return found


def us(ns):
    if ns is None:
        return "–"
    return f"{ns / 1000:.1f} µs" if ns < 100_000 else f"{ns / 1000:.0f} µs"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.1f}×"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", required=True)
    ap.add_argument("--sqlglot", required=True)
    ap.add_argument("--sqlglot-c")
    ap.add_argument("--since", type=float, default=0.0)
    ap.add_argument("--per-query", action="store_true")
    args = ap.parse_args()

    crit = criterion_medians(args.criterion, args.since)
    with open(args.sqlglot, encoding="utf-8") as f:
        glot = json.load(f)
    glot_c = None
    if args.sqlglot_c and os.path.exists(args.sqlglot_c):
        with open(args.sqlglot_c, encoding="utf-8") as f:
            glot_c = json.load(f)

    rows = {}
    for dialect in DIALECTS:
        g = glot["dialects"].get(dialect, {}).get("queries", {})
        gc = (glot_c or {}).get("dialects", {}).get(dialect, {}).get("queries", {})
        per = []
        for name in corpus_names(dialect):
            r = {step: crit.get((f"{dialect}/{name}", step)) for step in STEPS}
            r["name"] = name
            r["glot_parse"] = g.get(name, {}).get("parse_ns")
            r["glot_rewrite"] = g.get(name, {}).get("parse_rewrite_ns")
            r["glotc_rewrite"] = gc.get(name, {}).get("parse_rewrite_ns")
            r["decision"] = None if r["govern"] is None or r["read"] is None else r["govern"] - r["read"]
            r["recheck"] = None if r["verify"] is None or r["render"] is None else r["verify"] - r["render"]
            per.append(r)
        rows[dialect] = per

    def col(dialect, key):
        return median(r[key] for r in rows[dialect])

    def share(dialect, key):
        return median(
            r[key] / r["govern"] for r in rows[dialect] if r[key] is not None and r["govern"]
        )

    print(f"sqlglot {glot['sqlglot']} (Python {glot['python']}, pure Python"
          + (f"; sqlglot[c] compiled: {glot_c['sqlglot']}" if glot_c else "") + "); "
          f"row limit {glot['limit']}. Medians over the corpus of per-query medians.\n")
    head = ("| dialect | queries | sluice parse | sluice govern | sluice redact | sqlglot parse "
            "| sqlglot parse+rewrite | sqlglot(parse+rewrite) / sluice(govern) |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if glot_c:
        head += " sqlglot[c] parse+rewrite | ratio to sqlglot[c] |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    for dialect in DIALECTS:
        gov = col(dialect, "govern")
        gd = glot["dialects"].get(dialect, {})
        line = (f"| {dialect} | {len(rows[dialect])} | {us(col(dialect, 'parse'))} | {us(gov)} "
                f"| {us(col(dialect, 'redact'))} | {us(gd.get('parse_median_ns'))} "
                f"| {us(gd.get('parse_rewrite_median_ns'))} | {ratio(gd.get('parse_rewrite_median_ns'), gov)} |")
        if glot_c:
            gcd = glot_c["dialects"].get(dialect, {})
            line += f" {us(gcd.get('parse_rewrite_median_ns'))} | {ratio(gcd.get('parse_rewrite_median_ns'), gov)} |"
        print(line)

    print("\nWhere `govern` spends its time (medians over the corpus; shares are per-query medians):\n")
    print("| dialect | govern | read (tokenize, pre-scan, parse) | decision (govern − read) "
          "| render | render + re-parse check | re-parse check share of govern | govern, typical policy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for dialect in DIALECTS:
        recheck_share = share(dialect, "recheck")
        print(f"| {dialect} | {us(col(dialect, 'govern'))} | {us(col(dialect, 'read'))} "
              f"| {us(col(dialect, 'decision'))} | {us(col(dialect, 'render'))} | {us(col(dialect, 'verify'))} "
              f"| {'–' if recheck_share is None else f'{100 * recheck_share:.0f} %'} "
              f"| {us(col(dialect, 'govern_policy'))} |")

    if args.per_query:
        for dialect in DIALECTS:
            print(f"\nPer query, {dialect} (criterion medians; sqlglot medians of timed calls):\n")
            print("| query | parse | read | govern | govern, policy | verify | redact | sqlglot parse "
                  "| sqlglot parse+rewrite | ratio |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows[dialect]:
                print(f"| {r['name']} | {us(r['parse'])} | {us(r['read'])} | {us(r['govern'])} "
                      f"| {us(r['govern_policy'])} | {us(r['verify'])} "
                      f"| {us(r['redact'])} | {us(r['glot_parse'])} | {us(r['glot_rewrite'])} "
                      f"| {ratio(r['glot_rewrite'], r['govern'])} |")


if __name__ == "__main__":
    main()
