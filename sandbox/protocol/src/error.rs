//! Errors: the typed error kinds responses carry, and what framing and decoding can fail with.

use serde::{Deserialize, Serialize};

/// Why a request failed. The wire form is the snake_case name, e.g. `"busy"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Every execution slot stayed taken for the whole queue timeout.
    Busy,
    /// The request's protocol version is not one the daemon speaks.
    UnsupportedVersion,
    /// A frame, file or argument is larger than allowed.
    TooLarge,
    /// The frame is not valid JSON or does not match the request schema.
    Malformed,
    /// A path is absolute, contains `..`, or resolves (through a symlink) outside the workspace.
    PathOutsideWorkspace,
    /// The path does not exist.
    NotFound,
    /// The destination already exists.
    AlreadyExists,
    /// A directory was expected.
    NotADirectory,
    /// A file was expected.
    IsADirectory,
    /// The workspace is full.
    NoSpace,
    /// The sandbox did not become ready in time.
    Timeout,
    /// No open session has this org, key and session id.
    UnknownSession,
    /// The daemon holds as many sessions as it is configured for.
    SessionLimit,
    /// An argument is out of range or otherwise invalid.
    InvalidArgument,
    /// The sandbox backend cannot run code right now (e.g. the interpreter failed to start).
    Unavailable,
    /// The client went away before the request finished.
    Cancelled,
    /// A bug or an unexpected host failure; details are in the daemon's log.
    Internal,
}

impl ErrorKind {
    /// The wire name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Busy => "busy",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Malformed => "malformed",
            ErrorKind::PathOutsideWorkspace => "path_outside_workspace",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::NotADirectory => "not_a_directory",
            ErrorKind::IsADirectory => "is_a_directory",
            ErrorKind::NoSpace => "no_space",
            ErrorKind::Timeout => "timeout",
            ErrorKind::UnknownSession => "unknown_session",
            ErrorKind::SessionLimit => "session_limit",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reading or writing one frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("frame could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A frame arrived whole but is not an acceptable request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DecodeError {
    /// The request id, when the frame was readable far enough to have one; the error response echoes it.
    pub id: Option<u64>,
    /// `malformed` or `unsupported_version`.
    pub kind: ErrorKind,
    pub message: String,
}
