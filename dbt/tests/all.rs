//! Integration tests of sluice-dbt against the fixture projects built by real dbt (tests/fixtures/dbt).

// This whole crate is test code: its helpers may panic on broken fixtures, as the tests themselves do.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod suite;
