//! The crate's one integration-test binary; the suites live in `suite/`.

// Test code may fail loudly: a panic is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod suite;
