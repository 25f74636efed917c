//! Row counts of a built model against its upstreams: `validate_model_output` (one upstream and an
//! expected count) and `audit_model_sources` (every upstream, and the model's NULLs and distinct values).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::verify;

use super::{Runner, count, find_model, find_table, not_built, prepare};
use crate::pipeline::CallContext;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateOutputArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Optional upstream to compare row counts with: a model, seed, `source_name.table`, or a table name.
    #[serde(default)]
    pub source_table: String,
    /// Optional expected row count; 0 = no check.
    #[serde(default)]
    pub expected_row_count: u64,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSourcesArgs {
    /// The connection holding the warehouse a registered project builds.
    pub connection_name: String,
    /// The dbt model (its relation is read from the project's manifest).
    pub model_name: String,
    /// Comma-separated upstreams: models, seeds, `source_name.table`, or table names.
    pub source_tables: String,
    /// Also profile the model's columns (NULL counts and fractions, distinct values).
    #[serde(default = "default_true")]
    pub sample_nulls: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OutputValidation {
    pub connection: String,
    pub model: String,
    pub relation: String,
    pub row_count: u64,
    pub source_table: Option<String>,
    pub source_relation: Option<String>,
    pub source_row_count: Option<u64>,
    /// Model rows over source rows.
    pub ratio: Option<f64>,
    /// ok, over_filtered, fan_out or empty_source.
    #[schemars(with = "Option<String>")]
    pub verdict: Option<verify::RatioVerdict>,
    pub expected_row_count: Option<u64>,
    pub expected_matches: Option<bool>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SourceRows {
    pub name: String,
    pub relation: String,
    pub row_count: u64,
    pub ratio: Option<f64>,
    #[schemars(with = "String")]
    pub verdict: verify::RatioVerdict,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub nulls: u64,
    pub null_fraction: f64,
    pub distinct: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SourceAudit {
    pub connection: String,
    pub model: String,
    pub relation: String,
    pub row_count: u64,
    pub sources: Vec<SourceRows>,
    /// Empty unless sample_nulls.
    pub columns: Vec<ColumnProfile>,
}

pub async fn validate_model_output(
    s: &Services,
    ctx: &CallContext,
    args: ValidateOutputArgs,
) -> Outcome<OutputValidation> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let source_name = args.source_table.trim();
        let source = if source_name.is_empty() {
            None
        } else {
            Some(find_table(&bound, source_name)?)
        };
        let mut tables = vec![model.table.clone()];
        tables.extend(source.clone());
        let counts = runner
            .run(&verify::row_counts_sql(&tables, style), &not_built(&model.name))
            .await?;
        let row_count = count(&counts, "row_count_0")?;
        let source_row_count = match source {
            Some(_) => Some(count(&counts, "row_count_1")?),
            None => None,
        };
        let (ratio, verdict) = match source_row_count {
            Some(src) => {
                let (r, v) = verify::ratio(row_count, src);
                (r, Some(v))
            }
            None => (None, None),
        };
        let expected = (args.expected_row_count > 0).then_some(args.expected_row_count);
        let mut warnings = Vec::new();
        if row_count == 0 {
            warnings.push("the model has 0 rows".to_owned());
        }
        if let Some(v) = verdict.filter(|v| !matches!(v, verify::RatioVerdict::Ok)) {
            warnings.push(v.advice().to_owned());
        }
        if let Some(e) = expected.filter(|e| *e != row_count) {
            warnings.push(format!("expected {e} rows, found {row_count}"));
        }
        Ok(OutputValidation {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            row_count,
            source_table: source.as_ref().map(|_| source_name.to_owned()),
            source_relation: source.as_ref().map(ToString::to_string),
            source_row_count,
            ratio,
            verdict,
            expected_row_count: expected,
            expected_matches: expected.map(|e| e == row_count),
            warnings,
        })
    }
    .await;
    runner.finish(result)
}

pub async fn audit_model_sources(
    s: &Services,
    ctx: &CallContext,
    args: AuditSourcesArgs,
) -> Outcome<SourceAudit> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let model = find_model(&bound, &args.connection_name, &args.model_name)?;
        let names = verify::split_list(&args.source_tables);
        if names.is_empty() {
            return Err(ToolError::invalid(
                "source_tables is empty: give at least one upstream (model, seed, source_name.table or table), \
                 comma-separated",
            ));
        }
        let sources = names
            .iter()
            .map(|n| find_table(&bound, n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tables = vec![model.table.clone()];
        tables.extend(sources.iter().cloned());
        let counts = runner
            .run(
                &verify::row_counts_sql(&tables, style),
                &format!("could not count the rows of '{}' or its upstreams", model.name),
            )
            .await?;
        let row_count = count(&counts, "row_count_0")?;
        let mut source_rows = Vec::new();
        for (i, (name, table)) in names.iter().zip(&sources).enumerate() {
            let rows = count(&counts, &format!("row_count_{}", i + 1))?;
            let (ratio, verdict) = verify::ratio(row_count, rows);
            source_rows.push(SourceRows {
                name: name.clone(),
                relation: table.to_string(),
                row_count: rows,
                ratio,
                verdict,
            });
        }
        let mut columns = Vec::new();
        if args.sample_nulls {
            let probe = runner
                .run(&verify::probe_sql(&model.table, style), &not_built(&model.name))
                .await?;
            let names: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
            if !names.is_empty() {
                let profile = runner
                    .run(
                        &verify::column_profile_sql(&model.table, &names, style),
                        &format!("could not profile the columns of '{}'", model.name),
                    )
                    .await?;
                for (i, c) in probe.columns.iter().enumerate() {
                    let nulls = count(&profile, &format!("nulls_{i}"))?;
                    columns.push(ColumnProfile {
                        name: c.name.clone(),
                        type_name: c.type_name.clone(),
                        nulls,
                        null_fraction: if row_count == 0 {
                            0.0
                        } else {
                            nulls as f64 / row_count as f64
                        },
                        distinct: count(&profile, &format!("distinct_{i}"))?,
                    });
                }
            }
        }
        Ok(SourceAudit {
            connection: args.connection_name.clone(),
            model: model.name,
            relation: model.table.to_string(),
            row_count,
            sources: source_rows,
            columns,
        })
    }
    .await;
    runner.finish(result)
}
