//! `check_model_schema`: a built model's columns against those its YAML documents (or the caller lists).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::verify;

use super::{Runner, find_model, not_built, prepare};
use crate::pipeline::CallContext;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSchemaArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Comma-separated expected columns; empty = the columns documented in the model's YAML.
    pub yml_columns: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WarehouseColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CaseMismatch {
    pub expected: String,
    pub actual: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SchemaCheck {
    pub connection: String,
    pub model: String,
    /// The relation read, from the manifest.
    pub relation: String,
    pub expected: Vec<String>,
    pub actual: Vec<WarehouseColumn>,
    pub matching: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub case_mismatches: Vec<CaseMismatch>,
    /// True when the relation has exactly the expected columns.
    pub matches: bool,
}

pub async fn check_model_schema(
    s: &Services,
    ctx: &CallContext,
    args: CheckSchemaArgs,
) -> Outcome<SchemaCheck> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let mut expected = verify::split_list(&args.yml_columns);
        if expected.is_empty() {
            expected = model.documented.clone();
        }
        if expected.is_empty() {
            return Err(ToolError::invalid(format!(
                "yml_columns is empty and model '{}' documents no columns in its YAML: give the expected \
                 columns, comma-separated",
                model.name
            )));
        }
        verify::check_columns("a column name in yml_columns", &expected)
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let probe = runner
            .run(&verify::probe_sql(&model.table, style), &not_built(&model.name))
            .await?;
        let actual: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
        let cmp = verify::compare_columns(&expected, &actual);
        Ok(SchemaCheck {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            matches: cmp.is_exact(),
            expected,
            actual: probe
                .columns
                .iter()
                .map(|c| WarehouseColumn {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                })
                .collect(),
            matching: cmp.matching,
            missing: cmp.missing,
            extra: cmp.extra,
            case_mismatches: cmp
                .case_mismatches
                .into_iter()
                .map(|(expected, actual)| CaseMismatch { expected, actual })
                .collect(),
        })
    }
    .await;
    runner.finish(result)
}
