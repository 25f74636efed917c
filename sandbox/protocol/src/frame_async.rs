//! Async framing on tokio, for the gateway and the daemon.

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{FrameError, encode};

/// Reads one frame body. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame_async<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

/// Writes one frame, refusing bodies above `max`.
pub async fn write_frame_async<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
    max: usize,
) -> Result<(), FrameError> {
    let frame = encode(value)?;
    if frame.len() - 4 > max {
        return Err(FrameError::TooLarge {
            len: frame.len() - 4,
            max,
        });
    }
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}
