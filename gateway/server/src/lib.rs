//! The Sluice gateway: MCP over streamable HTTP in front of governed, audited warehouse access.
//!
//! Request path: [`http`] (auth) → [`mcp`] (decode) → [`pipeline`] (scope → governance → execution →
//! audit) → [`service`] (operations) → connectors. See ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod budgets;
pub mod cli;
pub mod config;
pub mod cursors;
pub mod dbt_parse;
pub mod error;
pub mod governed;
pub mod health;
pub mod http;
pub mod mcp;
pub mod pipeline;
pub mod projects;
pub mod registry;
pub mod sandbox;
pub mod schema_cache;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod store;
pub mod tools;
