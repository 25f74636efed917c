//! End-to-end suites against the real `sluice` binary (build it first: `cargo build -p sluice-gateway`).

// Tests state their expectations with unwrap/expect; a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
