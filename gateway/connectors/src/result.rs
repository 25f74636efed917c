//! Engine-neutral query results: typed columns and JSON cells that keep exact values.

use serde::{Deserialize, Serialize};

/// One result cell. Integers stay integers, decimals are exact strings, dates and timestamps are ISO-8601
/// strings, binary is base64, nested values are arrays/objects; NULL is `null`.
pub type Cell = serde_json::Value;

/// A result column: its name and the engine's SQL type name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The rows a statement returned, at most the requested cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// True when the engine had more rows than the cap allowed.
    pub truncated: bool,
}
