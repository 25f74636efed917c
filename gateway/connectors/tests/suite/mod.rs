//! One module per engine, each running the shared conformance checks plus its own.

mod conformance;
mod duckdb;
mod duckdb_workers;
mod hosts;
mod mariadb;
mod postgres;
mod sqlite;
