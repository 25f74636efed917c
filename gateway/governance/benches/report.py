"""Puts the governance benchmark's numbers into markdown: criterion's per-query medians (benchmark ids
`<dialect>/<query>/<step>`, read from $CRITERION_HOME/*/*/new/) beside the sqlglot baseline's JSON.
Standard library only.

Usage: report.py --criterion DIR --sqlglot FILE [--sqlglot-c FILE] [--since EPOCH] [--per-query]
"""

import argparse
import json
import os
import re
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DIALECTS = ("duckdb", "postgres")
STEPS = ("parse", "read", "decide", "decide_policy", "govern", "govern_policy", "regovern", "render", "verify",
         "redact")
# Query categories of the corpus, by the constructs the query uses (see `category`), in report order.
CATEGORIES = ("CTE + window", "CTE", "window", "no CTE, no window")


def corpus_files(dialect):
    """{name: path} of the corpus for one dialect (the rule of governance.rs)."""
    files = {}
    for file in os.listdir(CORPUS):
        if file.endswith(".sql"):
            name, _, only = file[: -len(".sql")].partition(".")
            if not only or only == dialect:
                files[name] = os.path.join(CORPUS, file)
    return dict(sorted(files.items()))


def category(path):
    """A query's category: whether it has CTEs (WITH) and window functions (OVER), comments ignored."""
    with open(path, encoding="utf-8") as f:
        text = " ".join(line.split("--")[0] for line in f)
    cte = re.search(r"^\s*WITH\b", text, re.I) is not None
    window = re.search(r"\bOVER\b", text, re.I) is not None
    return {(True, True): "CTE + window", (True, False): "CTE", (False, True): "window"}.get(
        (cte, window), "no CTE, no window")


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
        for name, path in corpus_files(dialect).items():
            r = {step: crit.get((f"{dialect}/{name}", step)) for step in STEPS}
            r["name"] = name
            r["category"] = category(path)
            for key in ("parse", "parse_rewrite", "decide", "full"):
                r[f"glot_{key}"] = g.get(name, {}).get(f"{key}_ns")
                r[f"glotc_{key}"] = gc.get(name, {}).get(f"{key}_ns")
            r["recheck"] = None if r["verify"] is None or r["render"] is None else r["verify"] - r["render"]
            parts = [r["read"], r["decide"], r["verify"]]
            r["steps"] = None if None in parts else sum(parts)
            per.append(r)
        rows[dialect] = per

    def col(dialect, key, cat=None):
        return median(r[key] for r in rows[dialect] if cat is None or r["category"] == cat)

    def share(dialect, key, cat=None):
        return median(
            r[key] / r["govern"] for r in rows[dialect]
            if r[key] is not None and r["govern"] and (cat is None or r["category"] == cat)
        )

    def pct(x):
        return "–" if x is None else f"{100 * x:.0f} %"

    print(f"sqlglot {glot['sqlglot']} (Python {glot['python']}, pure Python"
          + (f"; sqlglot[c] compiled: {glot_c['sqlglot']}" if glot_c else "") + "); "
          f"row limit {glot['limit']}. Medians over the corpus of per-query medians.\n")
    print("Parse, decision and the whole, side by side. `decide` is the decision alone on an already parsed "
          "tree (sluice: statement kind, whole-tree walk against deny lists and policy, row limit; sqlglot: "
          "walk checking every table, column and function name against the same policy, row limit). `full` "
          "is all of it: sluice `govern` (read, decide, render, re-parse check); sqlglot parse, decide, "
          "render, re-parse and compare.\n")
    head = ("| dialect | queries | sluice parse | sqlglot parse | ratio | sluice decide | sqlglot decide "
            "| ratio | sluice govern | sqlglot full | ratio | sqlglot parse+rewrite | ratio |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if glot_c:
        head += " sqlglot[c] parse | ratio | sqlglot[c] decide | ratio | sqlglot[c] full | ratio |"
        sep += "---:|---:|---:|---:|---:|---:|"
    print(head)
    print(sep)
    for dialect in DIALECTS:
        gov, parse, dec = col(dialect, "govern"), col(dialect, "parse"), col(dialect, "decide")
        gp, gd = col(dialect, "glot_parse"), col(dialect, "glot_decide")
        gf, gr = col(dialect, "glot_full"), col(dialect, "glot_parse_rewrite")
        line = (f"| {dialect} | {len(rows[dialect])} | {us(parse)} | {us(gp)} | {ratio(gp, parse)} "
                f"| {us(dec)} | {us(gd)} | {ratio(gd, dec)} | {us(gov)} | {us(gf)} | {ratio(gf, gov)} "
                f"| {us(gr)} | {ratio(gr, gov)} |")
        if glot_c:
            cp, cd, cf = (col(dialect, f"glotc_{k}") for k in ("parse", "decide", "full"))
            line += (f" {us(cp)} | {ratio(cp, parse)} | {us(cd)} | {ratio(cd, dec)} | {us(cf)} "
                     f"| {ratio(cf, gov)} |")
        print(line)

    print("\nWhere `govern` spends its time, per dialect and per query category (medians of per-query "
          "medians; shares are per-query medians; `steps` = read + decide + render + re-parse check, the "
          "rest of `govern` is dropping the trees and building the verdict):\n")
    print("| dialect | category | queries | sqlparser parse | read (tokenize, pre-scan, parse) | decide "
          "| decide, typical policy | render | re-parse check | govern | govern, typical policy "
          "| govern of its own output | decide share | re-parse check share | steps / govern |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dialect in DIALECTS:
        for cat in (None,) + CATEGORIES:
            n = sum(1 for r in rows[dialect] if cat is None or r["category"] == cat)
            print(f"| {dialect} | {cat or '**all**'} | {n} | {us(col(dialect, 'parse', cat))} "
                  f"| {us(col(dialect, 'read', cat))} | {us(col(dialect, 'decide', cat))} "
                  f"| {us(col(dialect, 'decide_policy', cat))} | {us(col(dialect, 'render', cat))} "
                  f"| {us(col(dialect, 'recheck', cat))} | {us(col(dialect, 'govern', cat))} "
                  f"| {us(col(dialect, 'govern_policy', cat))} | {us(col(dialect, 'regovern', cat))} "
                  f"| {pct(share(dialect, 'decide', cat))} "
                  f"| {pct(share(dialect, 'recheck', cat))} | {pct(share(dialect, 'steps', cat))} |")

    boundaries(crit)

    if args.per_query:
        for dialect in DIALECTS:
            print(f"\nPer query, {dialect} (criterion medians; sqlglot medians of timed calls):\n")
            print("| query | category | parse | read | decide | render | re-parse check | govern "
                  "| govern, policy | redact | sqlglot parse | sqlglot decide | sqlglot full | ratio full/govern |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows[dialect]:
                print(f"| {r['name']} | {r['category']} | {us(r['parse'])} | {us(r['read'])} "
                      f"| {us(r['decide'])} | {us(r['render'])} | {us(r['recheck'])} | {us(r['govern'])} "
                      f"| {us(r['govern_policy'])} | {us(r['redact'])} | {us(r['glot_parse'])} "
                      f"| {us(r['glot_decide'])} | {us(r['glot_full'])} | {ratio(r['glot_full'], r['govern'])} |")


BOUNDARY_STEPS = ("parse", "read", "decide", "render", "verify", "govern", "redact", "govern_limited",
                  "govern_and_redact")


def boundaries(crit):
    """The `boundaries/<dialect>/<tables>` group: each step's median by the statement's size."""
    sizes = sorted({int(g.split("/")[2]) for g, _ in crit if g.startswith("boundaries/")})
    if not sizes:
        return
    print("\nThe `get_date_boundaries` statement (tables × 6 date columns) by size (criterion medians). "
          "`before` = `govern` + `redact` of the statement without a LIMIT (what each call cost before); "
          "`now` = `govern_and_redact` of the statement with its own LIMIT:\n")
    print("| dialect | tables | " + " | ".join(BOUNDARY_STEPS) + " | before | now | before / now |")
    print("|---|---:|" + "---:|" * (len(BOUNDARY_STEPS) + 3))
    for dialect in DIALECTS:
        for n in sizes:
            got = {step: crit.get((f"boundaries/{dialect}/{n}", step)) for step in BOUNDARY_STEPS}
            before = None if got["govern"] is None or got["redact"] is None else got["govern"] + got["redact"]
            now = got["govern_and_redact"]
            print(f"| {dialect} | {n} | " + " | ".join(us(got[s]) for s in BOUNDARY_STEPS)
                  + f" | {us(before)} | {us(now)} | {ratio(before, now)} |")


if __name__ == "__main__":
    main()
