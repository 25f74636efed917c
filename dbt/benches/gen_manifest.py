#!/usr/bin/env python3
"""Writes a synthetic dbt manifest (schema v12) with N models for the load benchmark.

    python3 dbt/benches/gen_manifest.py 10000 > /tmp/manifest.json

Node shapes follow what dbt-core 1.10 writes for a real project (see tests/fixtures/dbt/*/target): models
with raw and compiled SQL, configs, documented columns and refs to one to three upstream models in earlier
layers; a unique and a not_null test per model; sources; and dbt's own macros with their bodies, which make
up much of a real manifest. The output is deterministic for a given N.
"""

import json
import random
import sys

PROJECT = "bench"


def column(name, description):
    return {
        "name": name, "description": description, "meta": {}, "data_type": None, "constraints": [],
        "quote": None, "config": {"meta": {}, "tags": []}, "tags": [], "granularity": None, "doc_blocks": [],
    }


def config(materialized):
    return {
        "enabled": True, "alias": None, "schema": None, "database": None, "tags": [], "meta": {}, "group": None,
        "materialized": materialized, "incremental_strategy": None, "batch_size": None, "lookback": 1,
        "begin": None, "persist_docs": {}, "post-hook": [], "pre-hook": [], "quoting": {}, "column_types": {},
        "full_refresh": None, "unique_key": None, "on_schema_change": "ignore",
        "on_configuration_change": "apply", "grants": {}, "packages": [], "docs": {"show": True, "node_color": None},
        "contract": {"enforced": False, "alias_types": True}, "event_time": None, "concurrent_batches": None,
        "access": "protected", "freshness": None,
    }


def model(i, parents, sources):
    name = f"model_{i:05d}"
    refs = "\n".join(f"left join {{{{ ref('{p}') }}}} as p{k} on p{k}.id = base.id" for k, p in enumerate(parents))
    src = f"{{{{ source('raw', '{sources[i % len(sources)]}') }}}}"
    raw = (
        f"with base as (\n    select id, updated_at, amount, status\n    from {src}\n)\n\n"
        f"select\n    base.id,\n    base.updated_at,\n    base.amount * 1.0 as amount,\n    base.status\n"
        f"from base\n{refs}\n"
    )
    columns = {c: column(c, f"The {c} of {name}.") for c in ("id", "updated_at", "amount", "status")}
    return name, {
        "database": "bench", "schema": "main", "name": name, "resource_type": "model", "package_name": PROJECT,
        "path": f"layer_{i % 10}/{name}.sql", "original_file_path": f"models/layer_{i % 10}/{name}.sql",
        "unique_id": f"model.{PROJECT}.{name}", "fqn": [PROJECT, f"layer_{i % 10}", name], "alias": name,
        "checksum": {"name": "sha256", "checksum": f"{i:064x}"}, "config": config("table" if i % 3 else "view"),
        "tags": [], "description": f"Synthetic model {i}, one row per id.", "columns": columns, "meta": {},
        "group": None, "docs": {"show": True, "node_color": None},
        "patch_path": f"{PROJECT}://models/layer_{i % 10}/schema.yml", "build_path": None,
        "unrendered_config": {}, "created_at": 1700000000.0, "relation_name": f'"bench"."main"."{name}"',
        "raw_code": raw, "doc_blocks": [], "language": "sql",
        "refs": [{"name": p, "package": None, "version": None} for p in parents],
        "sources": [["raw", sources[i % len(sources)]]], "metrics": [],
        "depends_on": {"macros": [], "nodes": [f"model.{PROJECT}.{p}" for p in parents]
                       + [f"source.{PROJECT}.raw.{sources[i % len(sources)]}"]},
        "compiled_path": f"target/compiled/{PROJECT}/models/{name}.sql", "compiled": True,
        "compiled_code": raw.replace("{{", "").replace("}}", ""), "extra_ctes_injected": True, "extra_ctes": [],
        "contract": {"enforced": False, "alias_types": True, "checksum": None}, "access": "protected",
        "constraints": [], "version": None, "latest_version": None, "deprecation_date": None,
        "primary_key": ["id"], "time_spine": None,
    }


def test(model_name, kind):
    name = f"{kind}_{model_name}_id"
    return f"test.{PROJECT}.{name}.{abs(hash(name)) % 10**10:010d}", {
        "database": "bench", "schema": "main_dbt_test__audit", "name": name, "resource_type": "test",
        "package_name": PROJECT, "path": f"{name}.sql", "original_file_path": "models/schema.yml",
        "unique_id": f"test.{PROJECT}.{name}", "fqn": [PROJECT, name], "alias": name,
        "checksum": {"name": "none", "checksum": ""},
        "config": {"enabled": True, "materialized": "test", "severity": "ERROR", "tags": [], "meta": {}},
        "tags": [], "description": "", "columns": {}, "meta": {}, "raw_code": f"{{{{ test_{kind}(**_dbt_generic_test_kwargs) }}}}",
        "language": "sql", "refs": [{"name": model_name, "package": None, "version": None}], "sources": [],
        "depends_on": {"macros": [f"macro.dbt.test_{kind}"], "nodes": [f"model.{PROJECT}.{model_name}"]},
        "column_name": "id", "file_key_name": f"models.{model_name}", "attached_node": f"model.{PROJECT}.{model_name}",
        "test_metadata": {"name": kind, "kwargs": {"column_name": "id", "model": f"{{{{ get_where_subquery(ref('{model_name}')) }}}}"}, "namespace": None},
    }


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rng = random.Random(42)
    sources = [f"table_{k}" for k in range(50)]
    nodes = {}
    names = []
    for i in range(n):
        # Models read one to three models of earlier layers, as staging → intermediate → marts do.
        parents = rng.sample(names[-500:], k=min(len(names), rng.randint(1, 3))) if names else []
        name, node = model(i, parents, sources)
        nodes[node["unique_id"]] = node
        names.append(name)
        for kind in ("unique", "not_null"):
            uid, t = test(name, kind)
            nodes[uid] = t
    manifest = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "dbt_version": "1.10.23",
            "generated_at": "2026-01-01T00:00:00Z", "invocation_id": "bench", "env": {}, "project_name": PROJECT,
            "adapter_type": "duckdb",
        },
        "nodes": nodes,
        "sources": {
            f"source.{PROJECT}.raw.{s}": {
                "database": "bench", "schema": "raw", "name": s, "resource_type": "source", "package_name": PROJECT,
                "path": "models/sources.yml", "original_file_path": "models/sources.yml",
                "unique_id": f"source.{PROJECT}.raw.{s}", "fqn": [PROJECT, "raw", s], "source_name": "raw",
                "source_description": "Raw tables.", "loader": "", "identifier": s, "description": "", "columns": {},
                "relation_name": f'"bench"."raw"."{s}"',
            }
            for s in sources
        },
        "macros": {
            f"macro.dbt.m{k}": {
                "name": f"m{k}", "resource_type": "macro", "package_name": "dbt", "path": "macros/m.sql",
                "original_file_path": "macros/m.sql", "unique_id": f"macro.dbt.m{k}",
                "macro_sql": f"{{% macro m{k}(relation, column_name) %}}\n" + "  {{ return(adapter.dispatch('x')()) }}\n" * 20 + "{% endmacro %}",
                "depends_on": {"macros": []}, "description": "", "meta": {}, "docs": {"show": True}, "arguments": [],
            }
            for k in range(1_000)
        },
        "docs": {}, "exposures": {}, "metrics": {}, "groups": {}, "selectors": {}, "disabled": {},
        "parent_map": {uid: node["depends_on"]["nodes"] for uid, node in nodes.items()},
        "child_map": {}, "group_map": {}, "saved_queries": {}, "semantic_models": {}, "unit_tests": {},
    }
    json.dump(manifest, sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
