//! The typed messages between the gateway and a DuckDB worker process, and their framing.
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of JSON, over the worker's
//! stdin (gateway → worker) and a private copy of its stdout (worker → gateway). JSON is enough: results
//! are capped by `max_rows` and by [`MAX_FRAME`], and a frame is written and read in one piece.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{QueryResult, TableDetail, TableRef, TableSummary};

/// Bumped whenever a message changes shape, so that a gateway never talks to a worker binary of another
/// build (a stale `sluice` left beside a new one) without saying so.
pub(crate) const PROTOCOL: u32 = 1;

/// The largest frame either side accepts: a result larger than this is refused in the worker, before it
/// would have to be held by the gateway. 64 MiB is far beyond any result an agent can read (rows are capped
/// by `max_rows`), and keeps the gateway's own memory bounded whatever a statement returns.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// The first message a worker reads: how to set itself up.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Start {
    pub protocol: u32,
    /// The address-space limit the worker puts on itself (`RLIMIT_AS`) before it opens anything.
    pub memory_limit: u64,
    /// The database file and the settings to open it with (in order), or `None` for a worker that only
    /// converts exports (an in-memory database of its own).
    pub database: Option<DatabaseSpec>,
}

/// The file a worker opens read-only, lazily, on its first call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DatabaseSpec {
    pub path: PathBuf,
    pub settings: Vec<(String, String)>,
}

/// A message to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Start(Start),
    /// Run one call; the worker answers with a [`FromWorker::Reply`] of the same id.
    Call {
        id: u64,
        call: Call,
    },
    /// Interrupt call `id` if it is still running (sent repeatedly at a timeout; a stale one is ignored).
    Interrupt {
        id: u64,
    },
}

/// What a worker is asked to do, one at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Call {
    Query {
        sql: String,
        max_rows: usize,
    },
    ListTables,
    DescribeTable {
        table: TableRef,
    },
    Snapshot,
    Ping,
    /// CSV (with a header line) to Parquet, on an in-memory database: base64 in, base64 out.
    Export {
        csv: String,
    },
}

/// A message from a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The answer to `Start`: the worker's protocol version, and that its limit is in place.
    Ready { protocol: u32 },
    Reply {
        id: u64,
        outcome: Result<Answer, Failure>,
    },
}

/// A call's successful answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Rows(QueryResult),
    Tables(Vec<TableSummary>),
    Table(Option<TableDetail>),
    Snapshot(sluice_catalog::SchemaSnapshot),
    Pong,
    Parquet(String),
}

/// Why a call failed, as the worker saw it; the gateway turns it into a `ConnectorError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Failure {
    NotFound,
    Locked,
    Open {
        message: String,
    },
    Query {
        message: String,
    },
    /// An allocation failed: the worker's address-space limit, or DuckDB's own `max_memory`. The
    /// message is DuckDB's (or the worker's) own account of it.
    MemoryLimit {
        message: String,
    },
    /// The call was interrupted (the gateway asked, at its timeout).
    Interrupted,
    Internal {
        message: String,
    },
}

/// Writes one frame.
pub(crate) fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    write_bytes(out, &body)
}

/// Writes one frame of already encoded JSON.
pub(crate) fn write_bytes(out: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other(format!("a frame of {} bytes is over the limit", body.len())))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of input (the other side closed before a new frame).
pub(crate) fn read_frame<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToWorker::Interrupt { id: 7 }).unwrap();
        write_frame(
            &mut buf,
            &ToWorker::Call {
                id: 8,
                call: Call::Query {
                    sql: "SELECT 1".into(),
                    max_rows: 3,
                },
            },
        )
        .unwrap();
        let mut input = buf.as_slice();
        assert!(matches!(
            read_frame::<ToWorker>(&mut input).unwrap(),
            Some(ToWorker::Interrupt { id: 7 })
        ));
        assert!(matches!(
            read_frame::<ToWorker>(&mut input).unwrap(),
            Some(ToWorker::Call {
                id: 8,
                call: Call::Query { max_rows: 3, .. }
            })
        ));
        assert!(read_frame::<ToWorker>(&mut input).unwrap().is_none());
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(read_frame::<ToWorker>(&mut huge.as_slice()).is_err());
        assert!(read_frame::<ToWorker>(&mut [0u8, 0].as_slice()).is_err());
    }
}
