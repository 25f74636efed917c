//! The Sluice sandbox protocol: versioned request/response types and their length-prefixed framing.
//!
//! This crate is the only code the gateway and the sandbox daemon share. A frame is a big-endian `u32`
//! length followed by that many bytes of JSON; readers refuse frames above a maximum size before
//! allocating. Every request carries the protocol version and an id that its response echoes, so a
//! client may keep several requests in flight on one connection.

mod bytes;
mod error;
mod frame;
#[cfg(feature = "tokio")]
mod frame_async;
mod types;

pub use bytes::Bytes;
pub use error::{DecodeError, ErrorKind, FrameError};
pub use frame::{
    BlockingClient, ClientError, decode_request, decode_response, encode, read_frame, write_frame,
};
#[cfg(feature = "tokio")]
pub use frame_async::{read_frame_async, write_frame_async};
pub use types::*;

/// The protocol version this crate speaks. A peer sending another version gets `unsupported_version`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default largest frame (request or response body) either side accepts: 32 MiB.
pub const DEFAULT_MAX_FRAME: usize = 32 * 1024 * 1024;
