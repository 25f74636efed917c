//! End-to-end suites against the real `sluice` binary (build it first: `cargo build -p sluice-gateway`).

// Tests state their expectations with unwrap/expect; a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

/// Installs ring as rustls' crypto provider before any test runs. Built together with the gateway's crates
/// (the test command builds the whole workspace at once), reqwest carries the core's `rustls-no-provider`
/// feature, and a client built without a provider panics; every process nextest starts runs this first.
#[allow(unsafe_code)]
#[ctor::ctor(unsafe)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
