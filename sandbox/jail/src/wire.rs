//! The frames between the daemon and a session's gVisor server (`sluice-sandbox-zygote gvisor-server`, the
//! process of the session's container): requests on the container's stdin, events on its stdout. Both
//! sides use these types; the server's configuration ([`ServerConfig`]) is its command line's argument.
//!
//! Every frame is a fixed little-endian header, `u32` payload length, `u8` kind, `u64` run id, followed
//! by the payload.
//!
//! There is no report channel from the run (the native jail's `limit memory` / `done` lines): a run's
//! process holds nothing but its standard streams, and the memory limit is read from its traceback.

use serde::{Deserialize, Serialize};

use crate::plan::{Rlimit, RootPlan};

/// How the session server starts and builds each run's root and environment (its argument, as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// The interpreter the server embeds (its path makes `sys.prefix` the venv), and its version.
    pub python: String,
    pub python_version: String,
    /// Modules imported once, before the first run.
    pub preload: Vec<String>,
    /// The container paths bound again into each run's root, with whether the run may write below them
    /// (the installation read-only, `--project` directories as configured). `/dev`, `/sys` and
    /// `/workspace` are bound by the server itself.
    pub binds: Vec<ServerBind>,
    pub tmp_bytes: u64,
    pub tmp_inodes: u64,
    /// The run's whole environment.
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBind {
    pub dst: String,
    pub writable: bool,
}

impl ServerConfig {
    /// The binds of the root plan (the devices excepted: gVisor provides its own `/dev`).
    pub fn new(
        plan: &RootPlan,
        env: &[(String, String)],
        python: (&str, &str),
        preload: &[String],
    ) -> ServerConfig {
        ServerConfig {
            python: python.0.to_string(),
            python_version: python.1.to_string(),
            preload: preload.to_vec(),
            binds: plan
                .binds
                .iter()
                .filter(|b| !b.dst.starts_with("/dev/"))
                .map(|b| ServerBind {
                    dst: b.dst.clone(),
                    writable: b.writable,
                })
                .collect(),
            tmp_bytes: plan.tmp_bytes,
            tmp_inodes: plan.tmp_inodes,
            env: env.to_vec(),
        }
    }
}

/// Header bytes: length (4), kind (1), run id (8).
pub const HEADER_LEN: usize = 13;
/// Largest payload either side accepts. Code is capped by the protocol's frame size well below this;
/// an output chunk is at most 64 KiB.
pub const MAX_PAYLOAD: usize = 64 << 20;

const RUN: u8 = 1;
const KILL: u8 = 2;
const READY: u8 = 10;
const STARTED: u8 = 11;
const STDOUT: u8 = 12;
const STDERR: u8 = 13;
const EXIT: u8 = 15;
const FAILED: u8 = 16;

/// How one run is set up before its code runs (the JSON part of a `Run` payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSetup {
    /// Lowered to, never raised: the run's own limits.
    pub rlimits: Vec<Rlimit>,
    /// Read-only files linked into the run's fresh `/tmp` (link, target).
    pub links: Vec<(String, String)>,
}

/// What the daemon asks of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Start a run: its set-up and its code.
    Run { id: u64, setup: RunSetup, code: Vec<u8> },
    /// Kill a run's PID namespace (timeout, cancel, caller gone).
    Kill { id: u64 },
}

/// How a run's PID 1 ended, as the server's `wait4` saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

/// What the server tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The preloads are imported; runs are served from now on.
    Ready {
        python: String,
    },
    /// The run's root is built and its privileges are gone: its code runs now.
    Started {
        id: u64,
    },
    Stdout {
        id: u64,
        bytes: Vec<u8>,
    },
    Stderr {
        id: u64,
        bytes: Vec<u8>,
    },
    /// The run's PID 1 was reaped (and with it every process of the run) and its output drained.
    Exit {
        id: u64,
        ended: Ended,
        maxrss_kb: u64,
    },
    /// The run could not be set up; no user code ran. Final for the run.
    Failed {
        id: u64,
        message: String,
    },
}

impl Event {
    /// The run an event belongs to (`None` for the server's own).
    pub fn run_id(&self) -> Option<u64> {
        match self {
            Event::Ready { .. } => None,
            Event::Started { id }
            | Event::Stdout { id, .. }
            | Event::Stderr { id, .. }
            | Event::Exit { id, .. }
            | Event::Failed { id, .. } => Some(*id),
        }
    }
}

fn frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

impl Request {
    /// The request as bytes on the server's stdin. A `Run` payload is the set-up's JSON length (`u32`),
    /// the set-up as JSON, then the code.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        Ok(match self {
            Request::Run { id, setup, code } => {
                let json = serde_json::to_vec(setup)?;
                let mut payload = Vec::with_capacity(4 + json.len() + code.len());
                payload.extend_from_slice(&(json.len() as u32).to_le_bytes());
                payload.extend_from_slice(&json);
                payload.extend_from_slice(code);
                frame(RUN, *id, &payload)
            }
            Request::Kill { id } => frame(KILL, *id, &[]),
        })
    }
}

impl Request {
    /// The request of a header's kind and run id with its payload (the server's side of [`Request::encode`]).
    pub fn decode(kind: u8, id: u64, payload: &[u8]) -> Result<Request, WireError> {
        match kind {
            RUN => {
                let (setup, code) = split_run(payload).ok_or(WireError::Malformed("run"))?;
                Ok(Request::Run {
                    id,
                    setup,
                    code: code.to_vec(),
                })
            }
            KILL => Ok(Request::Kill { id }),
            other => Err(WireError::UnknownKind(other)),
        }
    }
}

/// A `Run` payload's set-up and code.
pub fn split_run(payload: &[u8]) -> Option<(RunSetup, &[u8])> {
    let len: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    let end = 4usize.checked_add(u32::from_le_bytes(len) as usize)?;
    let setup = serde_json::from_slice(payload.get(4..end)?).ok()?;
    Some((setup, &payload[end..]))
}

impl Event {
    /// The event as bytes on the server's stdout.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Event::Ready { python } => frame(READY, 0, python.as_bytes()),
            Event::Started { id } => frame(STARTED, *id, &[]),
            Event::Stdout { id, bytes } => frame(STDOUT, *id, bytes),
            Event::Stderr { id, bytes } => frame(STDERR, *id, bytes),
            Event::Exit { id, ended, maxrss_kb } => {
                let (how, value) = match ended {
                    Ended::Code(c) => (0u8, *c),
                    Ended::Signal(s) => (1u8, *s),
                };
                let mut p = vec![how];
                p.extend_from_slice(&value.to_le_bytes());
                p.extend_from_slice(&maxrss_kb.to_le_bytes());
                frame(EXIT, *id, &p)
            }
            Event::Failed { id, message } => frame(FAILED, *id, message.as_bytes()),
        }
    }
}

/// A frame either side cannot read: the peer is broken (or not ours), and is stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("a {0} frame with a malformed payload")]
    Malformed(&'static str),
}

/// Parses the header: (payload length, kind, run id).
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(usize, u8, u64), WireError> {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLarge(len));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[5..]);
    Ok((len, h[4], u64::from_le_bytes(id)))
}

impl Event {
    /// The event of a header's kind and run id with its payload.
    pub fn decode(kind: u8, id: u64, payload: Vec<u8>) -> Result<Event, WireError> {
        let text = |p: Vec<u8>| String::from_utf8_lossy(&p).into_owned();
        Ok(match kind {
            READY => Event::Ready {
                python: text(payload),
            },
            STARTED => Event::Started { id },
            STDOUT => Event::Stdout { id, bytes: payload },
            STDERR => Event::Stderr { id, bytes: payload },
            EXIT => {
                // u8 how (0 code, 1 signal), i32 value, u64 maxrss in KiB.
                let p: &[u8; 13] = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| WireError::Malformed("exit"))?;
                let value = i32::from_le_bytes([p[1], p[2], p[3], p[4]]);
                let mut rss = [0u8; 8];
                rss.copy_from_slice(&p[5..]);
                let ended = match p[0] {
                    0 => Ended::Code(value),
                    1 => Ended::Signal(value),
                    _ => return Err(WireError::Malformed("exit")),
                };
                Event::Exit {
                    id,
                    ended,
                    maxrss_kb: u64::from_le_bytes(rss),
                }
            }
            FAILED => Event::Failed {
                id,
                message: text(payload),
            },
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn run_and_kill_frames() {
        let run = Request::Run {
            id: 7,
            setup: RunSetup {
                rlimits: vec![(libc::RLIMIT_NPROC, 32, 32)],
                links: vec![("/tmp/a".into(), "/b".into())],
            },
            code: b"print(1)".to_vec(),
        }
        .encode()
        .unwrap();
        let json = br#"{"rlimits":[[6,32,32]],"links":[["/tmp/a","/b"]]}"#;
        let mut expected = ((4 + json.len() + 8) as u32).to_le_bytes().to_vec();
        expected.push(1);
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&(json.len() as u32).to_le_bytes());
        expected.extend_from_slice(json);
        expected.extend_from_slice(b"print(1)");
        assert_eq!(run, expected);
        let kill = Request::Kill { id: 9 }.encode().unwrap();
        assert_eq!(kill, [&[0, 0, 0, 0, 2][..], &9u64.to_le_bytes()].concat());
    }

    #[test]
    fn events_decode() {
        let mut exit = vec![1u8];
        exit.extend_from_slice(&9i32.to_le_bytes());
        exit.extend_from_slice(&1234u64.to_le_bytes());
        // (kind, payload, expected)
        let cases: Vec<(u8, Vec<u8>, Result<Event, WireError>)> = vec![
            (
                10,
                b"3.11.2".to_vec(),
                Ok(Event::Ready {
                    python: "3.11.2".into(),
                }),
            ),
            (11, vec![], Ok(Event::Started { id: 5 })),
            (
                12,
                b"x".to_vec(),
                Ok(Event::Stdout {
                    id: 5,
                    bytes: b"x".to_vec(),
                }),
            ),
            (
                15,
                exit,
                Ok(Event::Exit {
                    id: 5,
                    ended: Ended::Signal(9),
                    maxrss_kb: 1234,
                }),
            ),
            (15, vec![0; 3], Err(WireError::Malformed("exit"))),
            (
                16,
                b"mount: EPERM".to_vec(),
                Ok(Event::Failed {
                    id: 5,
                    message: "mount: EPERM".into(),
                }),
            ),
            (99, vec![], Err(WireError::UnknownKind(99))),
        ];
        for (kind, payload, expected) in cases {
            assert_eq!(Event::decode(kind, 5, payload), expected, "kind {kind}");
        }
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        assert_eq!(parse_header(&h), Err(WireError::TooLarge(MAX_PAYLOAD + 1)));
    }

    #[test]
    fn both_sides_read_what_the_other_writes() {
        let setup = RunSetup {
            rlimits: vec![(libc::RLIMIT_AS, 1 << 30, 1 << 30)],
            links: vec![],
        };
        let run = Request::Run {
            id: 3,
            setup,
            code: b"x = 1".to_vec(),
        };
        for req in [run, Request::Kill { id: 4 }] {
            let bytes = req.encode().unwrap();
            let h: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
            let (len, kind, id) = parse_header(&h).unwrap();
            assert_eq!(len, bytes.len() - HEADER_LEN);
            assert_eq!(Request::decode(kind, id, &bytes[HEADER_LEN..]), Ok(req));
        }
        assert_eq!(
            Request::decode(1, 3, &[9, 0, 0, 0, b'{']),
            Err(WireError::Malformed("run"))
        );
        let events = [
            Event::Ready {
                python: "3.11.2".into(),
            },
            Event::Started { id: 2 },
            Event::Stderr {
                id: 2,
                bytes: b"e".to_vec(),
            },
            Event::Exit {
                id: 2,
                ended: Ended::Code(-1),
                maxrss_kb: 7,
            },
            Event::Failed {
                id: 2,
                message: "no".into(),
            },
        ];
        for e in events {
            let bytes = e.encode();
            let h: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
            let (_, kind, id) = parse_header(&h).unwrap();
            assert_eq!(Event::decode(kind, id, bytes[HEADER_LEN..].to_vec()), Ok(e));
        }
    }
}
