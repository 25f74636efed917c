//! Blocking framing (`u32` big-endian length + JSON) and a small blocking client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    DEFAULT_MAX_FRAME, DecodeError, ErrorInfo, ErrorKind, FrameError, PROTOCOL_VERSION, Request,
    RequestFrame, Response, ResponseBody, ResponseFrame,
};

/// Serialises a value into one frame (length prefix included).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(value)?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes one frame. Refuses bodies above `max` so that a peer with the same limit can read it.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, value: &T, max: usize) -> Result<(), FrameError> {
    let frame = encode(value)?;
    if frame.len() - 4 > max {
        return Err(FrameError::TooLarge {
            len: frame.len() - 4,
            max,
        });
    }
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame body. `Ok(None)` is a clean end of stream between frames.
pub fn read_frame<R: Read>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

#[derive(serde::Deserialize)]
struct Head {
    v: Option<u32>,
    id: Option<u64>,
}

fn decode_versioned<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    // The version is checked before the body is interpreted, so that a newer peer gets a clear
    // `unsupported_version` rather than a schema error about fields it expected us to know.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError {
            id: None,
            kind: ErrorKind::Malformed,
            message: "frame is not a JSON object".to_string(),
        });
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| DecodeError {
        id: None,
        kind: ErrorKind::Malformed,
        message: format!("frame is not a JSON object: {e}"),
    })?;
    match head.v {
        Some(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(DecodeError {
                id: head.id,
                kind: ErrorKind::UnsupportedVersion,
                message: format!(
                    "protocol version {v} is not supported; this side speaks version {PROTOCOL_VERSION}"
                ),
            });
        }
        None => {
            return Err(DecodeError {
                id: head.id,
                kind: ErrorKind::Malformed,
                message: "frame has no protocol version field \"v\"".to_string(),
            });
        }
    }
    serde_json::from_slice(body).map_err(|e| DecodeError {
        id: head.id,
        kind: ErrorKind::Malformed,
        message: format!("invalid frame: {e}"),
    })
}

/// Decodes a request body, checking the version first.
pub fn decode_request(body: &[u8]) -> Result<RequestFrame, DecodeError> {
    decode_versioned(body)
}

/// Decodes a response body, checking the version first.
pub fn decode_response(body: &[u8]) -> Result<ResponseFrame, DecodeError> {
    decode_versioned(body)
}

/// A failed call from the client's point of view.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("bad response: {0}")]
    Decode(#[from] DecodeError),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("response id {got} does not answer request {expected}")]
    IdMismatch { expected: u64, got: u64 },
    /// The daemon answered with a typed error.
    #[error("{}: {}", .0.kind, .0.message)]
    Remote(ErrorInfo),
}

impl ClientError {
    /// The typed error kind when the daemon answered with one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Remote(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// A blocking client that sends one request at a time.
pub struct BlockingClient {
    stream: UnixStream,
    next_id: u64,
    max_frame: usize,
}

impl BlockingClient {
    pub fn connect(socket: &Path) -> std::io::Result<Self> {
        Ok(Self::from_stream(UnixStream::connect(socket)?))
    }

    pub fn from_stream(stream: UnixStream) -> Self {
        BlockingClient {
            stream,
            next_id: 1,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    /// The underlying stream, e.g. to set a read timeout.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends `request` and waits for its response.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = RequestFrame {
            v: PROTOCOL_VERSION,
            id,
            request,
        };
        write_frame(&mut self.stream, &frame, self.max_frame)?;
        let body = read_frame(&mut self.stream, self.max_frame)?.ok_or(ClientError::Closed)?;
        let response = decode_response(&body)?;
        if response.id != id {
            return Err(ClientError::IdMismatch {
                expected: id,
                got: response.id,
            });
        }
        match response.body {
            ResponseBody::Ok(r) => Ok(r),
            ResponseBody::Error(e) => Err(ClientError::Remote(e)),
        }
    }
}
