//! The jail crate's error: a step that failed, or a message that could not be decoded.

/// What went wrong, with the step or system call named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A system call failed; `what` names the call and its object (e.g. `mount /tmp`).
    #[error("{what}: {errno}")]
    Sys { what: String, errno: nix::errno::Errno },
    /// A check after a step found it did not hold (capabilities still present, ABI too old...).
    #[error("{0}")]
    Check(String),
    /// A message did not decode (truncated, or from another version of the daemon).
    #[error("bad message: {0}")]
    Codec(String),
}

impl Error {
    pub fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }
}

/// Adds the call's name to a `nix` result.
pub(crate) trait Context<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for nix::Result<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::sys(what(), e))
    }
}
