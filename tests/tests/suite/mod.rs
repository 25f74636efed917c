//! The suites, one module per concern.

mod audit;
mod auth;
mod cli;
mod clients;
mod conformance;
mod connection_hosts;
mod dbt;
mod duckdb_grammar;
mod engine_memory;
mod errors;
mod governance;
mod instances;
mod mcp;
mod oauth;
mod orgs;
mod plugin;
mod query_tools;
mod rate_limits;
mod sandbox;
mod schema;
mod secrets;
mod soak;
mod stdio;
mod traces;
