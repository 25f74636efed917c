//! What Sluice knows about each SQL dialect and engine, in one place: the `sqlparser` dialect that parses
//! it, how identifiers are quoted and string literals escaped, the casts generated SQL needs, the EXPLAIN
//! form, what each engine can do, and how its plans are read.
//!
//! Governance, the catalog, the connectors, dbt and the gateway all take this knowledge from here, so two
//! tables that must agree cannot drift apart. Pure: no I/O, no async. The mapping of every dialect and
//! engine is pinned by one table test each (`tests::every_dialect`, `tests::every_engine`).

mod dialect;
mod engine;
pub mod plan;
mod quote;

pub use dialect::{Dialect, NulInLiteral};
pub use engine::{Capabilities, ConnectorKind};
pub use plan::PlanFacts;
pub use quote::Quoting;

#[cfg(test)]
mod tests;
