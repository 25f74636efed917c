//! The Sluice sandbox daemon: runs untrusted Python and workspace file operations for the gateway,
//! isolated by gVisor (`runsc` on an OCI bundle with a minimal root) or the native backend (namespaces,
//! minimal root, landlock, seccomp allowlist, rlimits), served over a Unix socket with the protocol of
//! `sluice-sandbox-protocol`.

pub mod cgroup;
pub mod cli;
pub mod container;
pub mod engine;
pub mod error;
pub mod gvisor;
pub mod host;
pub mod images;
pub mod paths;
pub mod pidfd;
pub mod policy;
pub mod server;
pub mod svg;
pub mod workspace;
pub mod zygote;
