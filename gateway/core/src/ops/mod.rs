//! The tools' operations as typed functions: typed arguments in, a typed result and its audit facts
//! ([`crate::service::Outcome`]) out. A front door adds a tool's metadata and rendering and calls one of
//! these; nothing here knows MCP.

pub mod budget;
pub mod dbt;
pub mod debug;
pub mod explore;
pub mod health;
pub mod history;
pub mod info;
pub mod query;
pub mod sandbox;
pub mod schema;
