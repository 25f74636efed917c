//! The jail of a sandbox run, as typed values and as the code that applies them.
//!
//! [`plan`] holds what the daemon's pure policy decides (the root's mounts, landlock rules, rlimits);
//! [`msg`] the messages the daemon and the zygote exchange, encoded with `postcard` ([`codec`]); [`apply`]
//! the steps a run's PID 1 applies to itself, in order, each returning a typed result ([`inside`]: the
//! same inside a gVisor container, with gVisor's differences); [`fdpass`] the
//! descriptor passing both sides use; [`wire`] the frames between the daemon and a session's gVisor
//! server. Nothing here links Python: the zygote binary
//! (`sluice-sandbox-zygote`) is the only process with an interpreter.

pub mod apply;
pub mod codec;
mod error;
pub mod fdpass;
pub mod inside;
pub mod msg;
pub mod plan;
pub mod wire;

pub use error::Error;
pub use msg::{
    End, Hello, IdMap, PreloadFailure, PreloadReport, Prepare, Protection, Request, RunHeader, RunscConfig,
    State, Status, Step, StepReport, ZygoteConfig,
};
pub use plan::{Bind, BpfInstruction, LandlockPolicy, LandlockRule, Rlimit, RootPlan};
