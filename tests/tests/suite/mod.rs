//! The suites, one module per concern.

mod auth;
mod cli;
mod clients;
mod conformance;
mod errors;
mod governance;
mod mcp;
