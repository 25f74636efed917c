//! What a run's output becomes: capped streams, the files it produced, how it ended.

use sluice_sandbox_protocol::{Change, ExitStatus, Output, ProducedFile};

use crate::workspace::Snapshot;

/// What a run's code did, as either kind of run reports it.
pub(super) struct Ran {
    pub(super) exit: ExitStatus,
    pub(super) out: Capture,
    pub(super) err: Capture,
    /// The run said it hit its memory limit (natively, or its cgroup did).
    pub(super) memory: bool,
    pub(super) timed_out: bool,
    pub(super) duration_ms: f64,
}

pub(super) fn exit_status(end: sluice_sandbox_jail::End) -> ExitStatus {
    match end {
        sluice_sandbox_jail::End::Code(c) => ExitStatus {
            code: Some(c),
            signal: None,
        },
        sluice_sandbox_jail::End::Signal(s) => ExitStatus {
            code: None,
            signal: Some(s),
        },
    }
}

/// Files created or changed between two snapshots.
pub fn produced(before: &Snapshot, after: &Snapshot) -> Vec<ProducedFile> {
    after
        .iter()
        .filter_map(|(path, (size, mtime))| {
            let change = match before.get(path) {
                None => Change::Created,
                Some((s, m)) if s != size || m != mtime => Change::Modified,
                Some(_) => return None,
            };
            Some(ProducedFile {
                path: path.clone(),
                size: *size,
                change,
            })
        })
        .collect()
}

/// Keeps the first `cap` bytes of a stream and counts the rest.
pub struct Capture {
    kept: Vec<u8>,
    total: u64,
    cap: usize,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Capture {
            kept: Vec::new(),
            total: 0,
            cap,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..room.min(data.len())]);
    }

    pub fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }

    pub fn finish(self) -> Output {
        Output {
            truncated: self.truncated(),
            total_bytes: self.total,
            text: String::from_utf8_lossy(&self.kept).into_owned(),
        }
    }
}
