#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Connector tests against real engines: PostgreSQL and MariaDB started from Debian's packages by
//! `tests/servers/start.sh`, SQLite and DuckDB files built from the same fixture. No mocks.

mod suite;
