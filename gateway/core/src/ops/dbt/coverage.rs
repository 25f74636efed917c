//! `dbt_test_coverage`: which models, sources and columns of a dbt project have tests or constraints, from
//! `sluice_dbt::coverage`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::coverage::{self, Coverage, Thresholds};

use super::{load_dir, ok};
use crate::auth::AuthContext;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoverageArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
    /// Minimum percentage of models with a test or constraint.
    #[serde(default)]
    pub min_models: Option<f64>,
    /// Minimum percentage of model columns with a test or constraint.
    #[serde(default)]
    pub min_columns: Option<f64>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CoverageReport {
    /// Whether the thresholds given are met (true without thresholds).
    pub passed: bool,
    pub min_models: Option<f64>,
    pub min_columns: Option<f64>,
    /// The compact text report (totals, then a line per model and source).
    pub text: String,
    pub coverage: Coverage,
}

/// `dbt_test_coverage`.
pub async fn test_coverage(s: &Services, auth: &AuthContext, args: CoverageArgs) -> Outcome<CoverageReport> {
    ok(report(s, auth, args).await)
}

async fn report(s: &Services, auth: &AuthContext, args: CoverageArgs) -> Result<CoverageReport, ToolError> {
    let loaded = load_dir(s, auth, args.project_dir).await?;
    let thresholds = Thresholds {
        min_models: args.min_models,
        min_columns: args.min_columns,
    };
    let coverage = coverage::coverage(&loaded.analysis.project);
    Ok(CoverageReport {
        passed: coverage::passes(&coverage, thresholds),
        min_models: args.min_models,
        min_columns: args.min_columns,
        text: coverage::render(&coverage, thresholds),
        coverage,
    })
}
