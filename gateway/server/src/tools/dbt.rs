//! dbt tools: descriptions, scopes and rendering; the operations (projects, map, validation, lineage,
//! error reading, skeletons and the checks of a built model against the warehouse) are
//! `sluice_core::ops::dbt`.

use std::fmt::Write as _;
use std::sync::Arc;

use sluice_core::auth::Scope;
use sluice_core::ops::dbt::authoring::{
    ErrorParserArgs, ParsedErrors, Skeleton, SkeletonArgs, parse_errors, skeleton,
};
use sluice_core::ops::dbt::column_lineage::{ColumnLineageArgs, ColumnLineageReport, column_lineage};
use sluice_core::ops::dbt::coverage::{CoverageArgs, CoverageReport, test_coverage};
use sluice_core::ops::dbt::impact::{ImpactArgs, ImpactReport, dbt_impact};
use sluice_core::ops::dbt::lineage::{Lineage, LineageArgs, lineage};
use sluice_core::ops::dbt::project::{
    GetProjectArgs, ProjectDetail, ProjectList, ProjectMap, ProjectMapArgs, get_project, list_projects,
    project_map,
};
use sluice_core::ops::dbt::validate::{ProjectDirArgs, ValidationReport, validate};
use sluice_core::ops::dbt::warehouse::grain::{Grain, GrainArgs, analyze_grain};
use sluice_core::ops::dbt::warehouse::rows::{
    AuditSourcesArgs, OutputValidation, SourceAudit, ValidateOutputArgs, audit_model_sources,
    validate_model_output,
};
use sluice_core::ops::dbt::warehouse::schema::{CheckSchemaArgs, SchemaCheck, check_model_schema};
use sluice_core::service::Services;
use sluice_dbt::Direction;
use sluice_dbt::verify::RatioVerdict;

use crate::tools::{Effect, Meta, NoArgs, Render, ToolSpec, spec};

impl Render for ProjectList {
    fn render(&self) -> String {
        if self.projects.is_empty() {
            return "No dbt projects are registered (add one with `sluice project add --name N --dir D \
                    [--connection C]`)."
                .to_owned();
        }
        let mut out = format!("Found {} project(s):\n", self.projects.len());
        for p in &self.projects {
            let _ = writeln!(
                out,
                "  - {}  {}  connection={}  ({})",
                p.name,
                p.project_dir,
                p.connection.as_deref().unwrap_or("-"),
                p.source
            );
        }
        out.trim_end().to_owned()
    }
}

impl Render for ProjectDetail {
    fn render(&self) -> String {
        let p = &self.project;
        let c = &self.counts;
        let mut out = format!("Project: {}\n", p.name);
        let _ = writeln!(out, "  project_dir: {}", p.project_dir);
        let _ = writeln!(out, "  connection: {}", p.connection.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "  source: {}", p.source);
        if let Some(d) = &p.description {
            let _ = writeln!(out, "  description: {d}");
        }
        let _ = writeln!(out, "  dbt project: {}", self.dbt_project_name);
        let _ = writeln!(
            out,
            "  dbt_version: {}  manifest: {}  adapter: {}",
            self.dbt_version.as_deref().unwrap_or("-"),
            self.manifest_schema_version
                .map_or("-".to_owned(), |v| format!("v{v}")),
            self.adapter.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "  models: {}  sources: {}  seeds: {}  snapshots: {}  tests: {}  exposures: {}  macros: {}",
            c.models, c.sources, c.seeds, c.snapshots, c.tests, c.exposures, c.macros
        );
        if !self.missing_artifacts.is_empty() {
            let _ = writeln!(out, "  missing artifacts: {}", self.missing_artifacts.join(", "));
        }
        let _ = write!(
            out,
            "  findings: {} error(s), {} warning(s), {} info (dbt_project_validate lists them)",
            self.findings.errors, self.findings.warnings, self.findings.infos
        );
        out
    }
}

impl Render for ProjectMap {
    fn render(&self) -> String {
        self.map.clone()
    }
}

impl Render for ValidationReport {
    fn render(&self) -> String {
        self.text.clone()
    }
}

impl Render for Lineage {
    fn render(&self) -> String {
        let mut out = format!("Lineage of {} ({})\n", self.node, self.unique_id);
        for (title, side, shown) in [
            (
                "Upstream",
                &self.upstream,
                self.direction != Direction::Downstream,
            ),
            (
                "Downstream",
                &self.downstream,
                self.direction != Direction::Upstream,
            ),
        ] {
            if !shown {
                continue;
            }
            let _ = writeln!(out, "\n{title} ({}):", side.len());
            for n in side {
                let _ = writeln!(out, "  {:>2}  {:<9} {}", n.depth, n.kind.as_str(), n.name);
            }
        }
        out.trim_end().to_owned()
    }
}

impl Render for ColumnLineageReport {
    fn render(&self) -> String {
        sluice_dbt::column_lineage::render(&self.lineage, self.direction)
            .trim_end()
            .to_owned()
    }
}

impl Render for CoverageReport {
    fn render(&self) -> String {
        self.text.trim_end().to_owned()
    }
}

impl Render for ImpactReport {
    fn render(&self) -> String {
        self.text.trim_end().to_owned()
    }
}

impl Render for ParsedErrors {
    fn render(&self) -> String {
        if self.errors.is_empty() {
            return "No dbt error found in the output.".to_owned();
        }
        let mut out = String::new();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "dbt Error Summary ({} of {}):", i + 1, self.errors.len());
            let node = match (&e.resource_type, &e.node) {
                (Some(t), Some(n)) => format!("{t} {n}"),
                (None, Some(n)) => n.clone(),
                _ => "(not detected)".to_owned(),
            };
            let _ = writeln!(out, "  Node: {node}");
            let _ = writeln!(out, "  Type: {} ({})", e.error_type, e.category);
            let location = match (&e.path, e.line) {
                (Some(p), Some(l)) => format!("{p}, line {l} of the compiled SQL"),
                (Some(p), None) => p.clone(),
                (None, Some(l)) => format!("line {l}"),
                (None, None) => "(not detected)".to_owned(),
            };
            let _ = writeln!(out, "  Location: {location}");
            let _ = writeln!(out, "  Message: {}", e.message.replace('\n', "\n           "));
            let _ = writeln!(out, "  Suggested fix: {}", e.suggested_fix);
        }
        out.trim_end().to_owned()
    }
}

impl Render for Skeleton {
    fn render(&self) -> String {
        self.sql.clone()
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

impl Render for SchemaCheck {
    fn render(&self) -> String {
        let cases: Vec<String> = self
            .case_mismatches
            .iter()
            .map(|c| format!("{} (built as {})", c.expected, c.actual))
            .collect();
        format!(
            "Schema check for '{}' ({}):\n  Expected: {} columns | Actual: {} columns\n  [OK] Matching: {}\n  \
             [X] Missing: {}\n  [X] Extra: {}\n  [!] Case mismatch: {}\n  {}",
            self.model,
            self.relation,
            self.expected.len(),
            self.actual.len(),
            list_or_none(&self.matching),
            list_or_none(&self.missing),
            list_or_none(&self.extra),
            list_or_none(&cases),
            if self.matches {
                "Result: the built relation matches the expected columns."
            } else {
                "Result: MISMATCH between the YAML and the built relation."
            }
        )
    }
}

impl Render for OutputValidation {
    fn render(&self) -> String {
        let mut out = format!(
            "Model output validation: '{}' ({})\n  Row count: {}",
            self.model, self.relation, self.row_count
        );
        if self.row_count == 0 {
            out.push_str("\n  WARNING: the model has 0 rows.");
        }
        if let (Some(name), Some(rows)) = (&self.source_table, self.source_row_count) {
            let _ = write!(
                out,
                "\n  Source '{}' ({}): {} rows",
                name,
                self.source_relation.as_deref().unwrap_or(name),
                rows
            );
            let advice = self.verdict.map(RatioVerdict::advice).unwrap_or_default();
            match self.ratio {
                Some(r) => {
                    let _ = write!(out, "\n  Ratio model/source: {r:.2}x ({advice})");
                }
                None => {
                    let _ = write!(out, "\n  Ratio model/source: n/a ({advice})");
                }
            }
        }
        if let (Some(expected), Some(matches)) = (self.expected_row_count, self.expected_matches) {
            let _ = write!(
                out,
                "\n  Expected row count: {expected} - {}",
                if matches { "MATCH" } else { "MISMATCH" }
            );
        }
        out
    }
}

impl Render for SourceAudit {
    fn render(&self) -> String {
        let mut out = format!(
            "Source audit for '{}' ({}): {} rows\n  Upstreams:",
            self.model, self.relation, self.row_count
        );
        for s in &self.sources {
            let ratio = s.ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}x"));
            let _ = write!(
                out,
                "\n    {} ({}): {} rows, model/source {} ({})",
                s.name,
                s.relation,
                s.row_count,
                ratio,
                s.verdict.advice()
            );
        }
        if !self.columns.is_empty() {
            out.push_str("\n  Columns (nulls, distinct):");
            for c in &self.columns {
                let flag = if self.row_count > 0 && c.nulls == self.row_count {
                    "  <- always NULL"
                } else if c.nulls > 0 {
                    "  <- has NULLs"
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "\n    {:<24} {:>8} ({:>5.1}%)  {:>8} distinct{flag}",
                    c.name,
                    c.nulls,
                    c.null_fraction * 100.0,
                    c.distinct
                );
            }
        }
        out
    }
}

impl Render for Grain {
    fn render(&self) -> String {
        let mut out = format!(
            "Grain analysis for '{}' ({}):\n  Total rows: {}\n  Candidate key check:",
            self.table, self.relation, self.total_rows
        );
        if self.candidates.is_empty() {
            out.push_str("\n    (no candidate keys given or found)");
        }
        for k in &self.candidates {
            if k.unique {
                let _ = write!(
                    out,
                    "\n    {}: {} distinct, no NULLs (UNIQUE: likely the grain)",
                    k.column, k.distinct
                );
            } else {
                let _ = write!(
                    out,
                    "\n    {}: {} distinct, {} NULL (NOT unique: ~{:.2} rows per value)",
                    k.column,
                    k.distinct,
                    k.nulls,
                    k.fan_out.unwrap_or(0.0)
                );
            }
        }
        match &self.grain {
            Some(g) => {
                let _ = write!(out, "\n  Recommendation: {g} appears to be the grain.");
            }
            None => out.push_str(
                "\n  Recommendation: no candidate is unique; the grain may be a combination of columns, or \
                 the model duplicates rows.",
            ),
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------------------
// The tools

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let mut out = Vec::new();
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "list_projects",
            title: "List dbt projects",
            description: "List the registered dbt projects: name, directory, the connection holding the \
                warehouse each builds, and where it was registered (config or store).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, _: NoArgs| {
            let s = Arc::clone(&s);
            async move { list_projects(&s, &ctx.auth).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "get_project",
            title: "dbt project detail",
            description: "Show one registered dbt project: directory, connection, dbt version and adapter from \
                its manifest, node counts, missing artifacts and a findings summary.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: GetProjectArgs| {
            let s = Arc::clone(&s);
            async move { get_project(&s, &ctx.auth, args.name).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_project_map",
            title: "dbt project map",
            description: "Map a dbt project from its artifacts and files: models by directory with status \
                (complete, stub, missing SQL, orphan), work order, sources, macros, or one model in depth \
                (focus=model:<name>: columns documented and built, tests, lineage, last run, findings). \
                project_dir is a registered project's name or an absolute path inside one.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: ProjectMapArgs| {
            let s = Arc::clone(&s);
            async move { project_map(&s, &ctx.auth, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_project_validate",
            title: "Validate a dbt project",
            description: "Check a dbt project from its artifacts (manifest, catalog, run_results) and files: \
                unresolved refs and sources, cycles, missing or stub SQL, documented columns absent from the \
                warehouse, missing primary-key tests, failed tests and errored models of the last run, stale \
                artifacts, non-determinism hazards. Each finding has a stable id, severity, node and file:line. \
                When the operator configured a dbt binary, `dbt parse` runs first so the manifest reflects the \
                current files; the output says whether it ran and, if it failed, what dbt printed.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: ProjectDirArgs| {
            let s = Arc::clone(&s);
            async move { validate(&s, &ctx.auth, args.project_dir).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_lineage",
            title: "dbt lineage",
            description: "What a dbt node reads from (upstream) and what reads from it (downstream), to any \
                depth (0 = all), from the project's manifest and files.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: LineageArgs| {
            let s = Arc::clone(&s);
            async move { lineage(&s, &ctx.auth, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_column_lineage",
            title: "dbt column lineage",
            description: "Where a dbt model column's values come from (upstream) and which columns read it \
                (downstream), traced through each model's compiled SQL (CTEs, joins, unions, SELECT *): each edge \
                is passthrough, renamed or transformed (expression, aggregate, window) with the expression. \
                Exposures reading the result, models without compiled SQL (model-level lineage instead) and \
                anything unresolved are listed. depth counts models (0 = all).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: ColumnLineageArgs| {
            let s = Arc::clone(&s);
            async move { column_lineage(&s, &ctx.auth, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_test_coverage",
            title: "dbt test coverage",
            description: "Test coverage of a dbt project: per model and source, its primary key (from tests or \
                constraints) and which columns have unique (U), not_null (N), relationships (R) or accepted_values \
                (A) tests; totals for models, columns and sources, checked against optional min_models / \
                min_columns percentages.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: CoverageArgs| {
            let s = Arc::clone(&s);
            async move { test_coverage(&s, &ctx.auth, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "dbt_impact",
            title: "dbt change impact",
            description: "What a change to a dbt model breaks or only changes downstream, before it is merged: \
                a column rename, drop or type change (model + column + change) or a dropped model. Models whose \
                compiled SQL reads the column by name and tests on it break; downstream columns (through the \
                column lineage), their tests and exposures change. With state (a baseline manifest.json inside \
                the project) it reports every column change since the baseline and the blast radius of each.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: ImpactArgs| {
            let s = Arc::clone(&s);
            async move { dbt_impact(&s, &ctx.auth, args).await }
        },
    ));
    out.push(spec(
        Meta {
            name: "dbt_error_parser",
            title: "Read dbt errors",
            description: "Parse raw dbt output and list each error: node, file, line, message, the kind of \
                mistake (missing column, unbuilt relation, unresolved ref, failed test…) and a suggested fix.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |_ctx, args: ErrorParserArgs| {
            let out = parse_errors(&args.error_output);
            async move { out }
        },
    ));
    out.push(spec(
        Meta {
            name: "generate_sql_skeleton",
            title: "dbt model skeleton",
            description: "Generate the SQL of a new dbt model from its YAML columns: config block, one CTE per \
                upstream (ref() for models, source() for `source_name.table`) and a final CTE selecting every \
                column as a NULL placeholder to fill in.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |_ctx, args: SkeletonArgs| {
            let out = skeleton(args);
            async move { out }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "check_model_schema",
            title: "Check a model's columns",
            description: "Compare a built dbt model's columns in the warehouse with the expected YAML columns: \
                matching, missing, extra and case mismatches. The relation comes from the manifest of the \
                project bound to the connection; the probe runs governed and audited.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: CheckSchemaArgs| {
            let s = Arc::clone(&s);
            async move { check_model_schema(&s, &ctx, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "validate_model_output",
            title: "Validate a model's row count",
            description: "Count a built dbt model's rows and compare them with an upstream (over-filtering \
                below 0.5x, fan-out above 2x) and with an expected count. Relations come from the manifest of \
                the project bound to the connection; the SQL runs governed and audited.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: ValidateOutputArgs| {
            let s = Arc::clone(&s);
            async move { validate_model_output(&s, &ctx, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "audit_model_sources",
            title: "Audit a model against its sources",
            description: "Row counts of a built dbt model and each upstream with model/source ratios, and \
                (sample_nulls) each model column's NULL count, NULL fraction and distinct values. Relations come \
                from the manifest of the project bound to the connection; the SQL runs governed and audited.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: AuditSourcesArgs| {
            let s = Arc::clone(&s);
            async move { audit_model_sources(&s, &ctx, args).await }
        },
    ));
    let s = Arc::clone(services);
    out.push(spec(
        Meta {
            name: "analyze_grain",
            title: "Analyse a table's grain",
            description: "Count a table's rows and each candidate key's distinct and NULL values to find its \
                grain and spot fan-out. table_name may be a model, seed or source of the project bound to the \
                connection (relation from the manifest) or `[schema.]table`.",
            scope: Some(Scope::Query),
            effect: Effect::ReadOnly,
        },
        move |ctx, args: GrainArgs| {
            let s = Arc::clone(&s);
            async move { analyze_grain(&s, &ctx, args).await }
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_core::ops::dbt::warehouse::grain::KeyCheck;

    #[test]
    fn column_lineage_renders_compactly() {
        use sluice_dbt::column_lineage::trace::Transform;
        use sluice_dbt::column_lineage::{ColumnEdge, ColumnLineage, ColumnRef, EdgeKind};
        let col = |node: &str, column: &str| ColumnRef {
            node: node.into(),
            unique_id: format!("model.jaffle.{node}"),
            column: column.into(),
        };
        let report = ColumnLineageReport {
            project: "jaffle".into(),
            direction: Direction::Upstream,
            depth: None,
            lineage: ColumnLineage {
                start: col("orders", "amount"),
                dialect: "duckdb".into(),
                upstream: vec![ColumnEdge {
                    depth: 1,
                    from: col("stg_payments", "amount"),
                    to: col("orders", "amount"),
                    kind: EdgeKind::Transformed,
                    transform: Some(Transform::Aggregate),
                    expression: Some("coalesce(p.amount, 0) <- sum(amount)".into()),
                }],
                downstream: vec![],
                exposures: vec![],
                model_level: vec![],
                unresolved: vec!["stg_payments: relation `x` is not a node of the project".into()],
                truncated: true,
            },
        };
        assert_eq!(
            report.render(),
            "# Column lineage of orders.amount (model.jaffle.orders)\n\nUpstream (1):\n   1  stg_payments.amount -> \
             orders.amount  transformed (aggregate): coalesce(p.amount, 0) <- sum(amount)\n\n(stopped at the edge \
             limit: farther edges were not walked; lower the depth or pick one direction)\n\nUnresolved (1):\n  - \
             stg_payments: relation `x` is not a node of the project"
        );
    }

    #[test]
    fn renders_read_well() {
        let g = Grain {
            connection: "wh".into(),
            table: "stg_payments".into(),
            relation: "main.stg_payments".into(),
            total_rows: 4,
            candidates: vec![KeyCheck {
                column: "payment_id".into(),
                distinct: 3,
                nulls: 0,
                unique: false,
                fan_out: Some(4.0 / 3.0),
            }],
            grain: None,
        };
        assert_eq!(
            g.render(),
            "Grain analysis for 'stg_payments' (main.stg_payments):\n  Total rows: 4\n  Candidate key check:\n    \
             payment_id: 3 distinct, 0 NULL (NOT unique: ~1.33 rows per value)\n  Recommendation: no candidate \
             is unique; the grain may be a combination of columns, or the model duplicates rows."
        );
    }
}
