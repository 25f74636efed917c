//! The suites, one module per concern.

mod auth;
mod cli;
mod clients;
mod conformance;
mod dbt;
mod duckdb_grammar;
mod errors;
mod governance;
mod instances;
mod mcp;
mod plugin;
mod query_tools;
mod sandbox;
mod schema;
mod stdio;
