//! Rendering for agents: overview, DDL, compact and JSON schema views, relationships, schema-link results,
//! join paths and diffs, each packed into a budget and paged (see [`crate::budget`]).
//!
//! This file holds the options, the formats and the helpers every view uses; `table` renders one table as
//! a DDL block, a compact line or a JSON object, `schema` the schema views ([`overview`], [`ddl`],
//! [`compact`], [`json`]), `joins` [`relationships`] and [`join_paths`], and `link` [`schema_link`] results.

mod joins;
mod link;
mod schema;
mod table;
#[cfg(test)]
mod tests;

use crate::budget::thousands;
use crate::snapshot::{Table, TableId};
pub use joins::{join_paths, relationships};
pub use link::schema_link;
pub use schema::{compact, ddl, json, overview};
pub use sluice_dialect::Quoting;

/// Options for DDL rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdlOptions {
    pub quoting: Quoting,
    /// One line per table, no comments, defaults, indexes, statistics or inferred-join notes.
    pub compress: bool,
}

/// Formats of `get_relationships`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipFormat {
    /// One line per join: `a(col) -> b(col) [declared]`.
    Compact,
    /// One line per table: what it references and what references it.
    Graph,
}

/// Formats of `schema_link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFormat {
    Ddl,
    Compact,
    Json,
}

/// One line, for comments and notes embedded in single-line positions.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rows(table: &Table) -> Option<String> {
    table
        .row_estimate
        .map(|r| format!("~{} rows", thousands(r as usize)))
}

/// A table name relative to `home`: unqualified in the same schema, qualified otherwise.
fn relative(id: &TableId, home: &TableId) -> String {
    if id.schema == home.schema {
        id.name.clone()
    } else {
        id.to_string()
    }
}
