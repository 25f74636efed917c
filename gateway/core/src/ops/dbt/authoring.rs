//! Help writing and fixing models, with nothing read or run: dbt's error output read into errors with a
//! category and a fix (`dbt_error_parser`), and a new model's SQL from its YAML (`dbt_model_skeleton`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ok;
use crate::service::{Outcome, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorParserArgs {
    /// Raw dbt output (stdout and/or stderr of dbt run, build, test, parse or compile).
    pub error_output: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkeletonArgs {
    /// The new model's name.
    pub model_name: String,
    /// Comma-separated output columns, as documented in the model's YAML.
    pub yml_columns: String,
    /// Comma-separated upstreams: model names become ref(), `source_name.table` becomes source().
    #[serde(default)]
    pub ref_tables: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParsedError {
    pub error_type: String,
    pub resource_type: Option<String>,
    pub node: Option<String>,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    /// missing_column, missing_relation, unresolved_ref, unresolved_source, syntax, ambiguous_column,
    /// division_by_zero, type_conversion, duplicate_key, test_failed, yaml or other.
    pub category: String,
    pub suggested_fix: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ParsedErrors {
    pub errors: Vec<ParsedError>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Skeleton {
    pub model_name: String,
    pub sql: String,
}

/// `dbt_error_parser`: each error in dbt's output with its category and a suggested fix.
pub fn parse_errors(output: &str) -> Outcome<ParsedErrors> {
    ok(read_errors(output))
}

fn read_errors(output: &str) -> Result<ParsedErrors, ToolError> {
    if output.trim().is_empty() {
        return Err(ToolError::invalid(
            "error_output is empty: paste the output of the failing dbt command",
        ));
    }
    Ok(ParsedErrors {
        errors: sluice_dbt::dbt_error::parse_dbt_errors(output)
            .into_iter()
            .map(|e| ParsedError {
                error_type: e.error_type,
                resource_type: e.resource_type,
                node: e.node,
                path: e.path,
                line: e.line,
                message: e.message,
                category: e.category.to_owned(),
                suggested_fix: e.suggestion,
            })
            .collect(),
    })
}

/// `dbt_model_skeleton`: the SQL of a new model from its YAML columns (pure; nothing is read or run).
pub fn skeleton(args: SkeletonArgs) -> Outcome<Skeleton> {
    let result = sluice_dbt::skeleton::sql_skeleton(&args.model_name, &args.yml_columns, &args.ref_tables)
        .map(|sql| Skeleton {
            model_name: args.model_name.clone(),
            sql,
        })
        .map_err(|e| ToolError::invalid(e.to_string()));
    ok(result)
}
