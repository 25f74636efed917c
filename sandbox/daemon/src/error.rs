//! The daemon library's error: a typed kind (as the protocol defines it) and a readable message.

use nix::errno::Errno;
use sluice_sandbox_protocol::{ErrorInfo, ErrorKind};

use crate::paths::PathError;

/// A request failed; `kind` goes on the wire, `message` tells the agent what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
}

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        OpError {
            kind,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        OpError::new(ErrorKind::Internal, message)
    }

    /// Maps a failed system call on a workspace path to the protocol's kinds.
    pub fn fs(path: &str, e: Errno) -> Self {
        let (kind, what) = match e {
            Errno::ENOENT => (ErrorKind::NotFound, "does not exist"),
            Errno::EEXIST | Errno::ENOTEMPTY => (ErrorKind::AlreadyExists, "already exists"),
            Errno::ENOTDIR => (
                ErrorKind::NotADirectory,
                "is not a directory (or has a file as a parent)",
            ),
            Errno::EISDIR => (ErrorKind::IsADirectory, "is a directory"),
            // openat2 with RESOLVE_BENEATH answers EXDEV for anything (a symlink, a mount) leading out.
            Errno::EXDEV => (ErrorKind::PathOutsideWorkspace, "resolves outside the workspace"),
            Errno::ELOOP => (
                ErrorKind::PathOutsideWorkspace,
                "goes through a symlink that cannot be followed",
            ),
            Errno::ENOSPC | Errno::EDQUOT => (ErrorKind::NoSpace, "cannot be written: the workspace is full"),
            Errno::EFBIG => (ErrorKind::TooLarge, "would exceed the file size limit"),
            Errno::ENAMETOOLONG => (ErrorKind::InvalidArgument, "has a name that is too long"),
            Errno::EACCES | Errno::EPERM => (ErrorKind::InvalidArgument, "is not accessible"),
            _ => return OpError::internal(format!("{path:?}: {e}")),
        };
        OpError::new(kind, format!("{path:?} {what}"))
    }

    pub fn to_info(&self) -> ErrorInfo {
        ErrorInfo {
            kind: self.kind,
            message: self.message.clone(),
        }
    }
}

impl From<PathError> for OpError {
    fn from(e: PathError) -> Self {
        let kind = match e {
            PathError::Absolute(_) | PathError::ParentComponent(_) => ErrorKind::PathOutsideWorkspace,
            PathError::Nul | PathError::TooLong { .. } => ErrorKind::InvalidArgument,
        };
        OpError::new(kind, e.to_string())
    }
}

/// Why an SVG of a run's output folder was not rendered to PNG; the message is shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvgError {
    #[error("the SVG cannot be parsed: {0}")]
    Parse(String),
    #[error("the SVG has no size to render (its width or height is zero or not a number)")]
    NoSize,
    #[error("rendering it took longer than {0} s")]
    Timeout(u64),
    #[error("it cannot be rendered: {0}")]
    Failed(String),
}
