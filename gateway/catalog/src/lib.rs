//! Pure schema intelligence for Sluice: schema snapshots, the declared + inferred join graph, k-best join
//! path search with ready-to-run SQL, schema search for a question, snapshot diffs, and budgeted, paged
//! rendering for agents.
//!
//! No I/O, no async, no clock: the gateway introspects each engine into a [`SchemaSnapshot`], builds a
//! [`Catalog`] from it once, and answers its schema tools from that. See README.md for the inference rules,
//! the scoring and how it is tested.

mod budget;
mod catalog;
mod diff;
mod documented;
mod error;
mod finding;
#[cfg(test)]
mod fixtures;
mod graph;
mod link;
pub mod names;
pub mod outline;
mod path;
pub mod render;
mod search;
mod snapshot;
pub mod synthetic;

pub use budget::{Budget, BudgetUnit, MIN_BUDGET_CHARS, Rendered, Window, estimate_tokens};
pub use catalog::Catalog;
pub use diff::{ColumnDelta, SchemaDiff, TableChange, TableDelta, diff, render_diff};
pub use documented::{DocumentedKeys, DocumentedReference, RelationName};
pub use error::CatalogError;
pub use finding::{Finding, Severity};
pub use graph::{EdgeOrigin, InferenceRule, JoinEdge, KeyStrength};
pub use link::{LinkOptions, LinkRole, LinkedColumn, LinkedTable, SchemaLink, TermMatch};
pub use path::{HOP_FACTOR, JoinPath, JoinStep, PathOptions, PathSearch, join_sql};
pub use render::{DdlOptions, LinkFormat, Quoting, RelationshipFormat};
pub use search::Field;
pub use snapshot::{
    Column, DeclaredKey, ForeignKey, Index, SchemaSnapshot, Table, TableId, TableKind, UniqueConstraint,
};
