//! `analyze_grain`: each candidate key's distinct and NULL counts against the table's rows.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::verify;

use super::{Runner, count, find_table, prepare};
use crate::pipeline::CallContext;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrainArgs {
    /// The connection to read.
    pub connection_name: String,
    /// A model, seed or `source_name.table` of a project bound to the connection, or `[schema.]table`.
    pub table_name: String,
    /// Comma-separated columns to test as the grain; empty = `id`, `*_id` and `*_key` columns.
    #[serde(default)]
    pub candidate_keys: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyCheck {
    pub column: String,
    pub distinct: u64,
    pub nulls: u64,
    /// Every row has its own non-NULL value.
    pub unique: bool,
    /// Rows per distinct value.
    pub fan_out: Option<f64>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Grain {
    pub connection: String,
    pub table: String,
    pub relation: String,
    pub total_rows: u64,
    pub candidates: Vec<KeyCheck>,
    /// The first unique candidate.
    pub grain: Option<String>,
}

pub async fn analyze_grain(s: &Services, ctx: &CallContext, args: GrainArgs) -> Outcome<Grain> {
    let mut runner = Runner::new(s, ctx, &args.connection_name);
    let result = async {
        let (style, bound) = prepare(s, ctx, &args.connection_name).await?;
        let table = find_table(&bound, args.table_name.trim())?;
        let what = format!("could not read '{}' ({table})", args.table_name.trim());
        let mut keys = verify::split_list(&args.candidate_keys);
        verify::check_columns("a candidate key", &keys).map_err(|e| ToolError::invalid(e.to_string()))?;
        if keys.is_empty() {
            let probe = runner.run(&verify::probe_sql(&table, style), &what).await?;
            let names: Vec<String> = probe.columns.iter().map(|c| c.name.clone()).collect();
            keys = verify::default_grain_candidates(&names);
        }
        let profile = runner
            .run(&verify::column_profile_sql(&table, &keys, style), &what)
            .await?;
        let total_rows = count(&profile, "row_count")?;
        let mut candidates = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let distinct = count(&profile, &format!("distinct_{i}"))?;
            let nulls = count(&profile, &format!("nulls_{i}"))?;
            candidates.push(KeyCheck {
                column: k.clone(),
                distinct,
                nulls,
                unique: nulls == 0 && distinct == total_rows,
                fan_out: (distinct > 0).then(|| total_rows as f64 / distinct as f64),
            });
        }
        Ok(Grain {
            connection: args.connection_name.clone(),
            table: args.table_name.trim().to_owned(),
            relation: table.to_string(),
            total_rows,
            grain: candidates.iter().find(|c| c.unique).map(|c| c.column.clone()),
            candidates,
        })
    }
    .await;
    runner.finish(result)
}
