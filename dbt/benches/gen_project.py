#!/usr/bin/env python3
"""Writes a dbt project of N models (and 2N tests) for the at-scale benchmark, to be built by real dbt-core.

    python3 dbt/benches/gen_project.py 10000 /tmp/dbt-scale
    cd /tmp/dbt-scale && DBT_PROFILES_DIR=. ~/.cache/sluice/dbt-venv/bin/dbt compile   # writes target/manifest.json

The shape follows a layered warehouse: 50 source tables; each model reads one source table through a CTE and
joins one to three models of earlier layers, carrying `amount` down the chain (so a column's lineage spans
many models); CTEs, a UNION ALL branch every 7th model, a window function every 5th, `SELECT *` every 11th.
Each model has a YAML entry with four documented columns and a unique + not_null test on `id`; every 13th
model also has an accepted_values test on `status`. The output is deterministic for a given N.
"""

import os
import random
import sys

PROJECT = "scale"


def model_sql(i, parents, source):
    joins = "\n".join(
        f"left join {{{{ ref('{p}') }}}} as p{k} on p{k}.id = base.id" for k, p in enumerate(parents)
    )
    carried = " + ".join(f"coalesce(p{k}.amount, 0)" for k in range(len(parents))) or "0"
    base = (
        "with base as (\n"
        f"    select id, updated_at, amount, status from {{{{ source('raw', '{source}') }}}}\n"
    )
    if i % 7 == 0:
        base += f"    union all\n    select id, updated_at, amount, status from {{{{ source('raw', '{source}') }}}}\n"
    base += ")"
    amount = f"base.amount * 1.0 + {carried}"
    if i % 5 == 0:
        amount = f"sum({amount}) over (partition by base.status order by base.updated_at, base.id)"
    body = (
        f"{base},\n\nfinal as (\n    select\n        base.id,\n        base.updated_at,\n        {amount} as amount,\n"
        f"        base.status\n    from base\n{joins}\n)\n\n"
    )
    body += "select * from final\n" if i % 11 == 0 else "select id, updated_at, amount, status from final\n"
    return body


def model_yml(name, i):
    tests_status = (
        "\n        data_tests:\n          - accepted_values:\n              arguments:\n"
        "                values: ['a', 'b', 'c']"
        if i % 13 == 0
        else ""
    )
    return (
        f"  - name: {name}\n    description: Synthetic model {i}, one row per id.\n    columns:\n"
        f"      - name: id\n        description: The key.\n        data_tests: [unique, not_null]\n"
        f"      - name: updated_at\n        description: When the row changed.\n"
        f"      - name: amount\n        description: Amount carried from upstream.\n"
        f"      - name: status\n        description: Status.{tests_status}\n"
    )


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/dbt-scale"
    rng = random.Random(42)
    sources = [f"table_{k}" for k in range(50)]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "dbt_project.yml"), "w") as f:
        f.write(
            f"name: {PROJECT}\nversion: '1.0'\nprofile: {PROJECT}\nmodel-paths: [models]\n"
            f"models:\n  {PROJECT}:\n    +materialized: view\n"
        )
    with open(os.path.join(out, "profiles.yml"), "w") as f:
        f.write(f"{PROJECT}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: scale.duckdb\n")
    models_dir = os.path.join(out, "models")
    os.makedirs(models_dir, exist_ok=True)
    with open(os.path.join(models_dir, "_sources.yml"), "w") as f:
        f.write("version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n")
        for s in sources:
            f.write(f"      - name: {s}\n        columns:\n")
            for c in ("id", "updated_at", "amount", "status"):
                f.write(f"          - name: {c}\n")
    names = []
    layers = {}
    for i in range(n):
        parents = rng.sample(names[-500:], k=min(len(names), rng.randint(1, 3))) if names else []
        name = f"model_{i:05d}"
        layer = f"layer_{i % 10}"
        os.makedirs(os.path.join(models_dir, layer), exist_ok=True)
        with open(os.path.join(models_dir, layer, f"{name}.sql"), "w") as f:
            f.write(model_sql(i, parents, sources[i % len(sources)]))
        layers.setdefault(layer, []).append(model_yml(name, i))
        names.append(name)
    for layer, entries in layers.items():
        with open(os.path.join(models_dir, layer, "_models.yml"), "w") as f:
            f.write("version: 2\nmodels:\n" + "".join(entries))


if __name__ == "__main__":
    main()
