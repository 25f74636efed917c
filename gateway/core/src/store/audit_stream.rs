//! The audit stream: every committed audit record also appended as one JSON line to a file, for a SIEM
//! or log shipper to tail. Written by the audit writer right after the commit that holds the records, in
//! commit order, so the file never holds a record the store does not; rotated by size (`audit.jsonl` →
//! `audit.jsonl.1` → … → `audit.jsonl.<keep>`, the oldest dropped), created owner-only (0600).
//!
//! The store stays the record of truth: a stream write that fails is logged and retried with the next
//! batch's file, never fails the call.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::AuditRecord;

/// Where and how to stream (`[audit] stream_file`, `stream_rotate_bytes`, `stream_keep`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    pub path: PathBuf,
    /// A file grows to about this size before it is rotated.
    pub rotate_bytes: u64,
    /// Rotated files kept besides the current one.
    pub keep: u32,
}

/// The open stream file; opened on the first write, so commands that never audit create nothing.
pub(super) struct AuditStream {
    settings: StreamSettings,
    file: Option<(BufWriter<File>, u64)>,
}

impl std::fmt::Debug for AuditStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStream")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl AuditStream {
    pub(super) fn new(settings: StreamSettings) -> AuditStream {
        AuditStream { settings, file: None }
    }

    fn open(&self) -> std::io::Result<(BufWriter<File>, u64)> {
        if let Some(dir) = self.settings.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.settings.path)?;
        let size = file.metadata()?.len();
        Ok((BufWriter::new(file), size))
    }

    /// Shifts `path.N` to `path.N+1` (dropping the oldest) and `path` to `path.1`.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let path = &self.settings.path;
        let keep = self.settings.keep;
        if keep == 0 {
            return std::fs::remove_file(path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            });
        }
        let _ = std::fs::remove_file(rotated(path, keep));
        for n in (1..keep).rev() {
            let from = rotated(path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(path, n + 1))?;
            }
        }
        std::fs::rename(path, rotated(path, 1))
    }

    /// Appends the records, one JSON line each, rotating before a line that would take the file past its
    /// size (a file holds at least one line); flushed before returning, so a tailer sees whole lines.
    pub(super) fn write<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a AuditRecord>,
    ) -> std::io::Result<()> {
        for record in records {
            let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let size = match &self.file {
                Some((_, size)) => *size,
                None => {
                    let opened = self.open()?;
                    let size = opened.1;
                    self.file = Some(opened);
                    size
                }
            };
            if size > 0 && size + line.len() as u64 > self.settings.rotate_bytes {
                if let Some((mut writer, _)) = self.file.take() {
                    writer.flush()?;
                }
                self.rotate()?;
                self.file = Some(self.open()?);
            }
            if let Some((writer, size)) = &mut self.file {
                writer.write_all(&line)?;
                *size += line.len() as u64;
            }
        }
        if let Some((writer, _)) = &mut self.file {
            writer.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tool: &str) -> AuditRecord {
        AuditRecord {
            ts: "2026-12-07T00:00:00.000000Z".into(),
            org_id: "local".into(),
            key_prefix: "sluice_x".into(),
            tool: tool.into(),
            decision: "ok".into(),
            ..AuditRecord::default()
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .map(|t| {
                t.lines()
                    .map(|l| {
                        serde_json::from_str::<serde_json::Value>(l).expect("json")["tool"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn lines_rotate_by_size_and_the_oldest_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.jsonl");
        let one = serde_json::to_vec(&record("t00")).unwrap().len() as u64 + 1;
        let mut stream = AuditStream::new(StreamSettings {
            path: path.clone(),
            rotate_bytes: one * 3,
            keep: 2,
        });
        let records: Vec<AuditRecord> = (0..10).map(|i| record(&format!("t{i:02}"))).collect();
        stream.write(&records[..4]).unwrap();
        stream.write(&records[4..]).unwrap();
        // 10 lines, 3 a file: t09 current, t06-t08 in .1, t03-t05 in .2, t00-t02 dropped.
        assert_eq!(lines(&path), ["t09"]);
        assert_eq!(lines(&rotated(&path, 1)), ["t06", "t07", "t08"]);
        assert_eq!(lines(&rotated(&path, 2)), ["t03", "t04", "t05"]);
        assert!(!rotated(&path, 3).exists());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_reopened_stream_appends_to_the_file_it_finds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let settings = StreamSettings {
            path: path.clone(),
            rotate_bytes: 1 << 20,
            keep: 1,
        };
        AuditStream::new(settings.clone()).write([&record("a")]).unwrap();
        AuditStream::new(settings).write([&record("b")]).unwrap();
        assert_eq!(lines(&path), ["a", "b"]);
    }
}
