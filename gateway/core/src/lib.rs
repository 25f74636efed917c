//! The gateway's core, free of MCP: everything a call does after its front door (MCP over HTTP or stdio,
//! the CLI) has decoded it.
//!
//! [`pipeline`] runs a call through scope → (rate limit) → the operation → one audit record; the
//! operations use [`service::Services`] (connections, budgets, cursors, schema cache, sandbox, store), and
//! every statement carrying agent input runs on the one governed path, [`governed::run`]. This crate has
//! no rmcp and no axum among its dependencies, so the compiler keeps MCP out. See ARCHITECTURE.md.

pub mod auth;
pub mod budgets;
pub mod config;
pub mod cursors;
pub mod dbt_parse;
pub mod error;
pub mod governed;
pub mod governing;
pub mod guidance;
pub mod health;
pub mod keyring;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod pipeline;
pub mod progress;
pub mod projects;
pub mod rate_limit;
pub mod registry;
pub mod rotation;
pub mod sandbox;
pub mod schema_cache;
pub mod secrets;
pub mod service;
pub mod setup;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
