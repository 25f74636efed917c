//! Test modules: wire-format snapshots and framing.

mod framing;
mod snapshots;
