//! Integration tests: the real `sluice-sandbox` binary on a socket in a temp dir, attacked from inside.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
