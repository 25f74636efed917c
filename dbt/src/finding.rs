//! Findings: what an analysis reports instead of failing, each with a stable rule id, severity and location.

use std::fmt;

use serde::Serialize;

/// How much a finding matters. Ordered, so `--fail-on warning` means "warning or worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a CI run.
    Info,
    /// Likely wrong or fragile.
    Warning,
    /// Broken: the project will not build, or a build or test failed.
    Error,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! rules {
    ($($variant:ident => $code:literal, $name:literal, $severity:ident, $summary:literal;)*) => {
        /// A check. Its `code` (`DBT101`) and `name` (`unresolved-ref`) are stable: CI configurations and
        /// agents match on them, so a rule may be added but never renumbered.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $(#[doc = $summary] $variant,)*
        }

        impl Rule {
            /// Every rule, in code order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable id, such as `DBT101`.
            pub fn code(self) -> &'static str {
                match self { $(Rule::$variant => $code,)* }
            }

            /// The stable kebab-case name, such as `unresolved-ref`.
            pub fn name(self) -> &'static str {
                match self { $(Rule::$variant => $name,)* }
            }

            /// The severity every finding of this rule carries.
            pub fn severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$severity,)* }
            }

            /// One sentence saying what the rule checks.
            pub fn summary(self) -> &'static str {
                match self { $(Rule::$variant => $summary,)* }
            }
        }
    };
}

rules! {
    ArtifactMissing => "DBT001", "artifact-missing", Info,
        "A dbt artifact (manifest.json, catalog.json, run_results.json) is absent, so the checks that need it were skipped.";
    ArtifactStale => "DBT002", "artifact-stale", Warning,
        "An artifact is older than the project files, or names a model file that no longer exists.";
    ManifestSchemaUnsupported => "DBT003", "manifest-schema-unsupported", Warning,
        "The manifest's schema version is outside v10-v12 (dbt-core 1.6-1.10); it was read on a best-effort basis.";
    YamlInvalid => "DBT004", "yaml-invalid", Error,
        "A project YAML file cannot be parsed, so dbt will not parse the project either.";
    UnresolvedRef => "DBT101", "unresolved-ref", Error,
        "ref() names no model, seed or snapshot of the project.";
    UnresolvedSource => "DBT102", "unresolved-source", Error,
        "source() names no declared source table.";
    RefCycle => "DBT103", "ref-cycle", Error,
        "Models depend on each other in a cycle.";
    OrphanModel => "DBT104", "orphan-model", Warning,
        "A model has SQL but no YAML entry: no description, no columns, no tests.";
    ModelSqlMissing => "DBT105", "model-sql-missing", Warning,
        "A model is declared in YAML but has no SQL file (dbt drops it silently).";
    StubModel => "DBT106", "stub-model", Warning,
        "A model's SQL is empty, unfinished or a placeholder.";
    MissingPrimaryKeyTest => "DBT201", "missing-primary-key-test", Warning,
        "A model has no primary-key test: unique and not_null on one column, unique_combination_of_columns, or a primary_key constraint.";
    UndocumentedModel => "DBT202", "undocumented-model", Warning,
        "A model has a YAML entry but no description.";
    UndocumentedColumn => "DBT203", "undocumented-column", Info,
        "A documented column has no description.";
    DocumentedColumnMissing => "DBT301", "documented-column-missing", Error,
        "A column is documented in YAML but absent from the built relation in catalog.json.";
    UndocumentedCatalogColumn => "DBT302", "undocumented-catalog-column", Warning,
        "The built relation has a column that the model's YAML does not document.";
    ModelNotInCatalog => "DBT303", "model-not-in-catalog", Warning,
        "A model that should be a relation is absent from catalog.json (never built, or its build failed).";
    TestFailed => "DBT401", "test-failed", Error,
        "A data test failed in the last run (run_results.json).";
    TestWarned => "DBT402", "test-warned", Warning,
        "A data test with severity warn found rows in the last run.";
    NodeErrored => "DBT403", "node-errored", Error,
        "A model, seed, snapshot or test errored in the last run.";
    NodeSkipped => "DBT404", "node-skipped", Info,
        "A node was skipped in the last run because something upstream failed.";
    NondeterministicFunction => "DBT501", "nondeterministic-function", Warning,
        "A model calls current_date, now() or random(), so its output depends on when it runs.";
    WindowWithoutTotalOrder => "DBT502", "window-without-total-order", Warning,
        "An order-sensitive window function (row_number, lag, first_value...) has no ORDER BY or one that can tie.";
    LimitWithoutOrderBy => "DBT503", "limit-without-order-by", Warning,
        "LIMIT without ORDER BY in the same query: which rows come back is up to the engine.";
    DateSpineOpenEnded => "DBT504", "date-spine-open-ended", Warning,
        "A date spine ends at the current date, so its row count changes every day and no longer matches the data.";
    IncrementalWithoutUniqueKey => "DBT601", "incremental-without-unique-key", Warning,
        "An incremental model with a merging strategy has no unique_key, so reruns can duplicate rows.";
    ModelUntested => "DBT701", "model-untested", Warning,
        "A model or source has no data test and no constraint (sluice-dbt coverage).";
    ColumnUntested => "DBT702", "column-untested", Info,
        "A column has no data test and no constraint (sluice-dbt coverage).";
    CoverageBelowThreshold => "DBT703", "coverage-below-threshold", Error,
        "The share of tested models or columns is below the --min-models / --min-columns threshold.";
    ChangeBreaks => "DBT801", "change-breaks", Error,
        "A column change breaks a downstream model, test or exposure that reads the column by name (sluice-dbt impact).";
    ChangeAffects => "DBT802", "change-affects", Warning,
        "A column change alters the values of a downstream column, test or exposure without breaking it (sluice-dbt impact).";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// Where a finding points: a path relative to the project directory and, when known, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Location {
    /// Path relative to the project directory, `/`-separated.
    pub path: String,
    /// 1-based line, when the check knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Location {
    /// A location at a line of a file.
    pub fn at(path: impl Into<String>, line: Option<u32>) -> Self {
        Location {
            path: path.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// One problem found by an analysis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The check that produced it.
    pub rule: Rule,
    /// Copied from the rule, so a consumer need not look it up.
    pub severity: Severity,
    /// A sentence a person or an agent can act on.
    pub message: String,
    /// The dbt node concerned, as its unique id (`model.shop.orders`), when there is one.
    pub node: Option<String>,
    /// The file and line concerned, when there is one.
    pub location: Option<Location>,
}

impl Finding {
    /// A finding of `rule` with the rule's severity.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity: rule.severity(),
            message: message.into(),
            node: None,
            location: None,
        }
    }

    /// Names the node concerned.
    #[must_use]
    pub fn node(mut self, unique_id: impl Into<String>) -> Self {
        self.node = Some(unique_id.into());
        self
    }

    /// Points at a file and line.
    #[must_use]
    pub fn at(mut self, path: impl Into<String>, line: Option<u32>) -> Self {
        self.location = Some(Location::at(path, line));
        self
    }

    /// Points at an optional location.
    #[must_use]
    pub fn located(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// The order every report uses: worst first, then by file, line, rule and node, so output is stable.
    pub fn sort(findings: &mut [Finding]) {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.location.cmp(&b.location))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.node.cmp(&b.node))
                .then_with(|| a.message.cmp(&b.message))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::collections::HashSet;

    #[test]
    fn rule_codes_and_names_are_unique_and_well_formed() {
        let codes: HashSet<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        let names: HashSet<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert_eq!(names.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert!(rule.code().starts_with("DBT") && rule.code().len() == 6, "{rule}");
            assert!(
                rule.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{rule}"
            );
        }
    }

    #[test]
    fn sort_puts_errors_first_then_orders_by_location() {
        let mut findings = vec![
            Finding::new(Rule::UndocumentedColumn, "c").at("b.yml", Some(1)),
            Finding::new(Rule::StubModel, "b").at("b.sql", Some(2)),
            Finding::new(Rule::UnresolvedRef, "a").at("z.sql", Some(9)),
            Finding::new(Rule::OrphanModel, "d").at("a.sql", None),
        ];
        Finding::sort(&mut findings);
        let order: Vec<_> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(order, vec!["a", "d", "b", "c"]);
    }
}
