//! Test coverage: for each model and source of the root project and each of its columns, which data tests
//! (unique, not_null, relationships, accepted_values, others) and constraints check it, the primary key the
//! tests or constraints establish, totals, and findings for CI thresholds.
//!
//! A column counts as covered by any test that names it, including a model-level test over several columns
//! (`unique_combination_of_columns`), or by a `primary_key` constraint. The columns of a node are those it
//! documents and those the catalog saw built, so an undocumented column counts as untested.

use std::fmt::Write as _;

use serde::Serialize;

use crate::finding::{Finding, Location, Rule};
use crate::project::{Node, NodeKind, Project};

/// One column's tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ColumnCoverage {
    /// The column.
    pub name: String,
    /// Has a `unique` test (or is in a unique combination, or the primary key).
    pub unique: bool,
    /// Has a `not_null` test.
    pub not_null: bool,
    /// Has a `relationships` test.
    pub relationships: bool,
    /// Has an `accepted_values` test.
    pub accepted_values: bool,
    /// Every test and constraint on it, by name (`unique`, `dbt_utils.expression_is_true`,
    /// `primary_key constraint`…), sorted.
    pub tests: Vec<String>,
    /// Whether anything checks it.
    pub covered: bool,
    /// Its YAML line, when the project files were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// One model's or source's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NodeCoverage {
    /// Its unique id.
    pub unique_id: String,
    /// `stg_orders`, or `source_name.table` for sources.
    pub name: String,
    /// `model` or `source`.
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub kind: NodeKind,
    /// The primary key, if tests or constraints establish one.
    pub primary_key: Option<Vec<String>>,
    /// Tests on the model as a whole (singular tests, multi-column generic tests).
    pub model_tests: Vec<String>,
    /// Its columns.
    pub columns: Vec<ColumnCoverage>,
    /// Whether any test or constraint checks it.
    pub tested: bool,
    /// Where its YAML entry (else its SQL) is, relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Counts of tested over total, with the percentage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Ratio {
    /// Tested.
    pub tested: usize,
    /// Total.
    pub total: usize,
    /// 100 × tested / total; 100 when there is nothing to test.
    pub percent: f64,
}

impl Ratio {
    fn of(tested: usize, total: usize) -> Ratio {
        let percent = if total == 0 {
            100.0
        } else {
            // Counts of models and columns are far below 2^52, so the conversion is exact.
            (tested as f64) * 100.0 / (total as f64)
        };
        Ratio {
            tested,
            total,
            percent,
        }
    }
}

/// The project's coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Coverage {
    /// The root project.
    pub project: String,
    /// Models with any test or constraint.
    pub models: Ratio,
    /// Columns of models with any test or constraint.
    pub columns: Ratio,
    /// Sources with any test.
    pub sources: Ratio,
    /// Columns of sources with any test.
    pub source_columns: Ratio,
    /// Models with a primary key from tests or constraints.
    pub models_with_primary_key: usize,
    /// Every model, then every source, by name.
    pub nodes: Vec<NodeCoverage>,
}

/// The minimum percentages `coverage` holds a project to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Minimum percentage of tested models.
    pub min_models: Option<f64>,
    /// Minimum percentage of tested model columns.
    pub min_columns: Option<f64>,
}

/// Computes the coverage of the root project's models and sources.
pub fn coverage(project: &Project) -> Coverage {
    let mut nodes: Vec<NodeCoverage> = [NodeKind::Model, NodeKind::Source]
        .into_iter()
        .flat_map(|kind| project.of_kind(kind))
        .filter(|(_, n)| n.package == project.name)
        .map(|(_, n)| node_coverage(n))
        .collect();
    // `of_kind` sorts by name within a kind; models stay first.
    nodes.sort_by(|a, b| (a.kind != NodeKind::Model, &a.name).cmp(&(b.kind != NodeKind::Model, &b.name)));
    let ratio = |kind: NodeKind| {
        let of: Vec<&NodeCoverage> = nodes.iter().filter(|n| n.kind == kind).collect();
        let columns: Vec<&ColumnCoverage> = of.iter().flat_map(|n| &n.columns).collect();
        (
            Ratio::of(of.iter().filter(|n| n.tested).count(), of.len()),
            Ratio::of(columns.iter().filter(|c| c.covered).count(), columns.len()),
        )
    };
    let (models, columns) = ratio(NodeKind::Model);
    let (sources, source_columns) = ratio(NodeKind::Source);
    Coverage {
        project: project.name.clone(),
        models,
        columns,
        sources,
        source_columns,
        models_with_primary_key: nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Model && n.primary_key.is_some())
            .count(),
        nodes,
    }
}

fn short(test: &str) -> &str {
    test.rsplit('.').next().unwrap_or(test)
}

fn node_coverage(node: &Node) -> NodeCoverage {
    // Documented columns first, in YAML order, then columns only the catalog knows.
    let mut names: Vec<(String, Option<u32>)> =
        node.columns.iter().map(|c| (c.name.clone(), c.line)).collect();
    for (name, _) in node.catalog_columns.iter().flatten() {
        if !names.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            names.push((name.clone(), None));
        }
    }
    let primary_key = node.primary_key();
    let columns: Vec<ColumnCoverage> = names
        .into_iter()
        .map(|(name, line)| {
            let is = |c: &str| c.eq_ignore_ascii_case(&name);
            let mut tests: Vec<String> = node
                .tests
                .iter()
                .filter(|t| t.column.as_deref().is_some_and(is) || t.combination.iter().any(|c| is(c)))
                .map(|t| t.name.clone())
                .collect();
            if let Some(c) = node.columns.iter().find(|c| is(&c.name)) {
                tests.extend(c.tests.iter().cloned());
                if c.primary_key {
                    tests.push("primary_key constraint".to_owned());
                }
            }
            if node.primary_key_constraint.iter().any(|c| is(c)) {
                tests.push("primary_key constraint".to_owned());
            }
            tests.sort();
            tests.dedup();
            let has = |kind: &str| tests.iter().any(|t| short(t) == kind);
            let in_key = primary_key.as_ref().is_some_and(|k| k.iter().any(|c| is(c)));
            ColumnCoverage {
                unique: has("unique") || has("unique_combination_of_columns") || in_key,
                not_null: has("not_null"),
                relationships: has("relationships"),
                accepted_values: has("accepted_values"),
                covered: !tests.is_empty(),
                tests,
                name,
                line,
            }
        })
        .collect();
    let mut model_tests: Vec<String> = node
        .tests
        .iter()
        .filter(|t| t.column.is_none())
        .map(|t| t.name.clone())
        .collect();
    model_tests.sort();
    model_tests.dedup();
    let tested = !node.tests.is_empty()
        || !node.primary_key_constraint.is_empty()
        || columns.iter().any(|c| c.covered);
    let location = node
        .yml
        .clone()
        .or_else(|| node.path.clone().map(|p| Location::at(p, None)));
    NodeCoverage {
        unique_id: node.unique_id.clone(),
        name: node.display_name(),
        kind: node.kind,
        primary_key,
        model_tests,
        columns,
        tested,
        location,
    }
}

/// Findings for CI: each untested model and source (DBT701), each untested column (DBT702), and each
/// threshold not met (DBT703).
pub fn findings(coverage: &Coverage, thresholds: Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    for node in &coverage.nodes {
        let kind = node.kind.as_str();
        if !node.tested {
            out.push(
                Finding::new(
                    Rule::ModelUntested,
                    format!("{kind} `{}` has no data test and no constraint", node.name),
                )
                .node(node.unique_id.clone())
                .located(node.location.clone()),
            );
        }
        for column in node.columns.iter().filter(|c| !c.covered) {
            let location = node.location.as_ref().map(|l| Location {
                path: l.path.clone(),
                line: column.line.or(l.line),
            });
            out.push(
                Finding::new(
                    Rule::ColumnUntested,
                    format!(
                        "column `{}.{}` has no data test and no constraint",
                        node.name, column.name
                    ),
                )
                .node(node.unique_id.clone())
                .located(location),
            );
        }
    }
    for (what, ratio, min, flag) in [
        ("models", coverage.models, thresholds.min_models, "--min-models"),
        (
            "model columns",
            coverage.columns,
            thresholds.min_columns,
            "--min-columns",
        ),
    ] {
        if let Some(min) = min
            && ratio.percent < min
        {
            out.push(
                Finding::new(
                    Rule::CoverageBelowThreshold,
                    format!(
                        "{:.1}% of {what} are tested ({} of {}), below {flag} {min}",
                        ratio.percent, ratio.tested, ratio.total
                    ),
                )
                .at("dbt_project.yml", None),
            );
        }
    }
    Finding::sort(&mut out);
    out
}

/// Whether the thresholds are met.
pub fn passes(coverage: &Coverage, thresholds: Thresholds) -> bool {
    thresholds.min_models.is_none_or(|m| coverage.models.percent >= m)
        && thresholds
            .min_columns
            .is_none_or(|m| coverage.columns.percent >= m)
}

/// The text report: totals, then one line per model and source with its key and its columns' tests
/// (U unique, N not_null, R relationships, A accepted_values; `-` untested).
pub fn render(coverage: &Coverage, thresholds: Thresholds) -> String {
    let mut out = format!("# Test coverage of {}\n\n", coverage.project);
    let line = |label: &str, r: Ratio, min: Option<f64>| {
        let verdict = match min {
            Some(m) if r.percent < m => format!("  below the minimum {m}%"),
            Some(m) => format!("  (minimum {m}%)"),
            None => String::new(),
        };
        format!(
            "{label:<16}{:>6.1}%  {} of {}{verdict}\n",
            r.percent, r.tested, r.total
        )
    };
    out.push_str(&line("models", coverage.models, thresholds.min_models));
    out.push_str(&line("model columns", coverage.columns, thresholds.min_columns));
    out.push_str(&line("sources", coverage.sources, None));
    out.push_str(&line("source columns", coverage.source_columns, None));
    let _ = writeln!(
        out,
        "primary keys    {} of {} models",
        coverage.models_with_primary_key, coverage.models.total
    );
    for kind in [NodeKind::Model, NodeKind::Source] {
        let nodes: Vec<&NodeCoverage> = coverage.nodes.iter().filter(|n| n.kind == kind).collect();
        if nodes.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}s (columns: U unique, N not_null, R relationships, A accepted_values):",
            kind.as_str()
        );
        for n in nodes {
            let tested = n.columns.iter().filter(|c| c.covered).count();
            let _ = write!(
                out,
                "  {} {}  pk={}  columns {}/{}",
                if n.tested { "✓" } else { "✗" },
                n.name,
                n.primary_key.as_ref().map_or("-".to_owned(), |k| k.join("+")),
                tested,
                n.columns.len()
            );
            let flags: Vec<String> = n
                .columns
                .iter()
                .map(|c| {
                    let mut f = String::new();
                    for (on, letter) in [
                        (c.unique, 'U'),
                        (c.not_null, 'N'),
                        (c.relationships, 'R'),
                        (c.accepted_values, 'A'),
                    ] {
                        if on {
                            f.push(letter);
                        }
                    }
                    if f.is_empty() {
                        f.push(if c.covered { '+' } else { '-' });
                    }
                    format!("{}:{f}", c.name)
                })
                .collect();
            if !flags.is_empty() {
                let _ = write!(out, "  {}", flags.join(" "));
            }
            if !n.model_tests.is_empty() {
                let _ = write!(out, "  model tests: {}", n.model_tests.join(", "));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::manifest::Manifest;
    use pretty_assertions::assert_eq;

    fn project(manifest: &str) -> Project {
        let manifest: Manifest = serde_json::from_str(manifest).expect("manifest parses");
        Project::build(Some(manifest), None).0
    }

    fn test_node(id: &str, name: &str, on: &str, column: Option<&str>, kwargs: &str) -> String {
        let column = column.map_or("null".to_owned(), |c| format!("\"{c}\""));
        format!(
            r#""{id}": {{"resource_type": "test", "name": "{id}", "package_name": "p", "unique_id": "{id}",
              "attached_node": "{on}", "column_name": {column},
              "test_metadata": {{"name": "{name}", "kwargs": {kwargs}}}, "depends_on": {{"nodes": ["{on}"]}}}}"#
        )
    }

    fn manifest() -> String {
        let tests = [
            test_node("test.p.u", "unique", "model.p.a", Some("id"), "{}"),
            test_node("test.p.n", "not_null", "model.p.a", Some("id"), "{}"),
            test_node("test.p.av", "accepted_values", "model.p.a", Some("status"), "{}"),
            test_node(
                "test.p.combo",
                "unique_combination_of_columns",
                "model.p.b",
                None,
                r#"{"combination_of_columns": ["x", "y"]}"#,
            ),
            test_node("test.p.srcn", "not_null", "source.p.raw.t", Some("k"), "{}"),
        ]
        .join(",");
        format!(
            r#"{{"metadata": {{"project_name": "p"}}, "nodes": {{
              "model.p.a": {{"resource_type": "model", "name": "a", "package_name": "p", "unique_id": "model.p.a",
                "columns": {{"id": {{"name": "id"}}, "status": {{"name": "status"}}, "note": {{"name": "note"}}}}}},
              "model.p.b": {{"resource_type": "model", "name": "b", "package_name": "p", "unique_id": "model.p.b",
                "columns": {{"x": {{"name": "x"}}, "y": {{"name": "y"}}, "z": {{"name": "z"}}}}}},
              "model.p.c": {{"resource_type": "model", "name": "c", "package_name": "p", "unique_id": "model.p.c",
                "constraints": [{{"type": "primary_key", "columns": ["k"]}}],
                "columns": {{"k": {{"name": "k"}}}}}},
              "model.p.d": {{"resource_type": "model", "name": "d", "package_name": "p", "unique_id": "model.p.d"}},
              "model.other.e": {{"resource_type": "model", "name": "e", "package_name": "other", "unique_id": "model.other.e"}},
              {tests}}},
              "sources": {{"source.p.raw.t": {{"unique_id": "source.p.raw.t", "name": "t", "source_name": "raw",
                "package_name": "p", "columns": {{"k": {{"name": "k"}}, "v": {{"name": "v"}}}}}}}}}}"#
        )
    }

    /// `name pk tested: column=flags…` per node, flags as in the text report.
    fn summary(c: &Coverage) -> Vec<String> {
        c.nodes
            .iter()
            .map(|n| {
                let cols: Vec<String> = n
                    .columns
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}{}{}{}{}",
                            c.name,
                            if c.unique { "U" } else { "" },
                            if c.not_null { "N" } else { "" },
                            if c.relationships { "R" } else { "" },
                            if c.accepted_values { "A" } else { "" },
                            if c.covered { "" } else { "-" }
                        )
                    })
                    .collect();
                format!(
                    "{} pk={} tested={}: {}",
                    n.name,
                    n.primary_key.as_ref().map_or("-".to_owned(), |k| k.join("+")),
                    n.tested,
                    cols.join(" ")
                )
            })
            .collect()
    }

    #[test]
    fn per_model_and_column_coverage() {
        let c = coverage(&project(&manifest()));
        assert_eq!(
            summary(&c),
            vec![
                "a pk=id tested=true: id=UN status=A note=-",
                "b pk=x+y tested=true: x=U y=U z=-",
                "c pk=k tested=true: k=U",
                "d pk=- tested=false: ",
                "raw.t pk=- tested=true: k=N v=-",
            ]
        );
        assert_eq!((c.models.tested, c.models.total), (3, 4));
        assert_eq!((c.columns.tested, c.columns.total), (5, 7));
        assert_eq!((c.sources.tested, c.sources.total), (1, 1));
        assert_eq!((c.source_columns.tested, c.source_columns.total), (1, 2));
        assert_eq!(c.models_with_primary_key, 3);
        assert_eq!(
            c.nodes[2].columns[0].tests,
            vec!["primary_key constraint".to_owned()]
        );
    }

    #[test]
    fn thresholds_decide_the_verdict_and_the_findings() {
        let c = coverage(&project(&manifest()));
        let cases = [
            (None, None, true, 0),
            (Some(75.0), Some(70.0), true, 0),
            (Some(80.0), None, false, 1),
            (Some(80.0), Some(72.0), false, 2),
        ];
        for (min_models, min_columns, passed, below) in cases {
            let t = Thresholds {
                min_models,
                min_columns,
            };
            assert_eq!(passes(&c, t), passed, "{t:?}");
            let f = findings(&c, t);
            assert_eq!(
                f.iter()
                    .filter(|f| f.rule == Rule::CoverageBelowThreshold)
                    .count(),
                below,
                "{t:?}"
            );
            assert_eq!(f.iter().filter(|f| f.rule == Rule::ModelUntested).count(), 1);
            assert_eq!(f.iter().filter(|f| f.rule == Rule::ColumnUntested).count(), 3);
        }
    }
}
