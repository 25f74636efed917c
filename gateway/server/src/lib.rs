//! The Sluice gateway's front doors: MCP over streamable HTTP, MCP over stdio and the `sluice` CLI, on top of the
//! MCP-free core (`sluice-core`).
//!
//! Request path: [`http`] (API key, body limits) → [`mcp`] (decode, tool list) → the core's pipeline
//! (scope → the tool's operation → audit) → connectors. Only this crate knows rmcp and axum. See
//! ARCHITECTURE.md.

mod app;
mod bearer;
pub mod cli;
mod http;
mod mcp;
mod oauth;
mod sessions;
mod stdio;
mod tools;
