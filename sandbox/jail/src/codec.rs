//! The wire form of [`crate::msg`]: `postcard` bodies, and on pipes a little-endian `u32` length first.
//!
//! A status frame is written with one `write` of at most `PIPE_BUF` bytes, so frames from the launcher
//! and from the jail sharing a pipe never interleave; [`status_frame`] shortens long error texts to fit.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::msg::Status;

/// The largest status frame: what a pipe writes atomically.
pub const MAX_STATUS_FRAME: usize = libc::PIPE_BUF;

/// A message body.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|e| Error::Codec(e.to_string()))
}

/// A message body, which must be exactly one value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(Error::Codec(format!("{} bytes after the message", rest.len()))),
        Err(e) => Err(Error::Codec(e.to_string())),
    }
}

/// A length-prefixed status frame of at most [`MAX_STATUS_FRAME`] bytes. Texts that would not fit are
/// cut (an error message of several KiB says nothing the first few hundred bytes did not).
pub fn status_frame(status: &Status) -> Result<Vec<u8>, Error> {
    let mut status = status.clone();
    loop {
        let body = encode(&status)?;
        if body.len() + 4 <= MAX_STATUS_FRAME {
            let mut frame = Vec::with_capacity(body.len() + 4);
            frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
            frame.extend_from_slice(&body);
            return Ok(frame);
        }
        if !shorten(&mut status) {
            return Err(Error::Codec(format!(
                "a status frame of {} bytes does not fit a pipe write",
                body.len()
            )));
        }
    }
}

/// Halves the longest text of a status; false when there is nothing left to cut.
fn shorten(status: &mut Status) -> bool {
    let mut texts: Vec<&mut String> = match status {
        Status::Error { message, .. } => vec![message],
        Status::Probe(steps) => steps
            .iter_mut()
            .filter_map(|s| match &mut s.state {
                crate::msg::State::Ok(Some(d)) | crate::msg::State::Failed(d) => Some(d),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let Some(longest) = texts.into_iter().next().filter(|t| t.len() > 16) else {
        return false;
    };
    let mut cut = longest.len() / 2;
    while !longest.is_char_boundary(cut) {
        cut -= 1;
    }
    longest.truncate(cut);
    longest.push('…');
    true
}

/// Takes the first complete frame off the front of `buf`, if there is one.
pub fn take_status(buf: &mut Vec<u8>) -> Option<Result<Status, Error>> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    if len + 4 > MAX_STATUS_FRAME {
        buf.clear();
        return Some(Err(Error::Codec(format!("a status frame of {len} bytes"))));
    }
    let body = buf.get(4..4 + len)?;
    let status = decode(body);
    buf.drain(..4 + len);
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;
    use crate::plan::*;
    use pretty_assertions::assert_eq;

    fn config() -> ZygoteConfig {
        ZygoteConfig {
            python: "/opt/venv/bin/python".into(),
            python_version: "3.11.2".into(),
            preload: vec!["numpy".into()],
            ids: IdMap {
                uid_inside: 1000,
                gid_inside: 1000,
                uid_outside: 65534,
                gid_outside: 65534,
            },
            workspace_mountpoint: "/r/ws".into(),
            jail_dir: "/r/jail".into(),
            root: RootPlan {
                root_bytes: 1 << 20,
                tmp_bytes: 16 << 20,
                tmp_inodes: 16_384,
                dirs: vec!["/proc".into()],
                symlinks: vec![("usr/bin".into(), "/bin".into())],
                binds: vec![Bind {
                    src: "/usr".into(),
                    dst: "/usr".into(),
                    is_dir: true,
                    remount_flags: 3,
                    writable: false,
                    recursive: true,
                }],
                dev_symlinks: vec![("/proc/self/fd".into(), "/dev/fd".into())],
            },
            landlock: LandlockPolicy {
                min_abi: 6,
                handled_fs: 0xffff,
                handled_net: 3,
                scoped: 3,
                rules: vec![LandlockRule {
                    path: "/tmp".into(),
                    access: 0xffff,
                }],
            },
            seccomp: vec![vec![BpfInstruction {
                code: 6,
                jt: 0,
                jf: 1,
                k: 0x7fff_0000,
            }]],
            cap_last_cap: 40,
            rlimits_max: vec![(9, u64::MAX, u64::MAX)],
            env: vec![("PATH".into(), "/usr/bin".into())],
            unsettable_rlimits: vec![12],
            runsc: Some(RunscConfig {
                runsc: "/usr/bin/runsc".into(),
                state: "/r/gvisor/state".into(),
                argv: vec!["runsc".into(), "--rootless".into(), "run".into()],
            }),
        }
    }

    fn round_trip<T>(value: T)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let bytes = encode(&value).unwrap();
        assert_eq!(decode::<T>(&bytes).unwrap(), value);
    }

    #[test]
    fn messages_round_trip() {
        round_trip(config());
        round_trip(Hello::Ready {
            pid: 7,
            python_version: "3.11.2".into(),
            preload: PreloadReport {
                imported: vec!["numpy".into()],
                failed: vec![PreloadFailure {
                    module: "nope".into(),
                    error: "ModuleNotFoundError: No module named 'nope'".into(),
                }],
            },
        });
        round_trip(Hello::Refused { reason: "x".into() });
        round_trip(ZygoteConfig {
            runsc: None,
            unsettable_rlimits: vec![],
            ..config()
        });
        round_trip(Request::OpenSession {
            workspace_bytes: 1 << 25,
            workspace_inodes: 8192,
            launcher: true,
        });
        round_trip(Request::StartGvisor {
            unshare_flags: 0x6802_0000,
            seq: 3,
        });
        round_trip(Request::InsideJail {
            seq: 4,
            prepare: Prepare {
                probe: false,
                skip: vec![Protection::PidNamespace],
                unshare_flags: 0x6c02_0000,
            },
            uid: 200_001,
            gid: 200_001,
            workspace: "/r/ws/u200001".into(),
        });
        round_trip(Prepare {
            probe: true,
            skip: vec![Protection::Landlock],
            unshare_flags: 0x6c02_0000,
        });
        round_trip(RunHeader {
            rlimits: vec![(9, 1 << 29, 1 << 29)],
            tmp_links: vec![("/tmp/a".into(), "/usr/b".into())],
        });
    }

    #[test]
    fn status_frames_round_trip_and_split() {
        let events = vec![
            Status::SessionReady { pid: 12 },
            Status::Child,
            Status::Forked { pid: 4242 },
            Status::Probe(vec![
                StepReport {
                    protection: Protection::SessionUid,
                    state: State::Ok(Some("uid 200001".into())),
                },
                StepReport {
                    protection: Protection::Landlock,
                    state: State::Ok(Some("abi 7".into())),
                },
                StepReport {
                    protection: Protection::Seccomp,
                    state: State::Failed("EINVAL".into()),
                },
                StepReport {
                    protection: Protection::Rlimits,
                    state: State::Skipped,
                },
            ]),
            Status::Ready,
            Status::Error {
                step: Step::Protection(Protection::MinimalRoot),
                message: "mount /tmp: EPERM".into(),
            },
            Status::Exit {
                end: End::Signal(9),
                maxrss_kb: 12_345,
            },
            Status::Error {
                step: Step::Runsc,
                message: "execv /usr/bin/runsc: ENOENT".into(),
            },
            Status::Exit {
                end: End::Code(0),
                maxrss_kb: 0,
            },
        ];
        let mut stream = Vec::new();
        for e in &events {
            stream.extend(status_frame(e).unwrap());
        }
        // Fed a byte at a time, as a pipe may deliver it: every event comes out whole, in order.
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        for b in stream {
            buf.push(b);
            while let Some(s) = take_status(&mut buf) {
                got.push(s.unwrap());
            }
        }
        assert_eq!(got, events);
        assert!(buf.is_empty());
    }

    #[test]
    fn long_texts_are_cut_to_one_pipe_write() {
        // (status, whether a text had to be cut)
        let cases = vec![
            (
                Status::Error {
                    step: Step::Setup,
                    message: "é".repeat(10_000),
                },
                true,
            ),
            (
                Status::Error {
                    step: Step::Setup,
                    message: "short".into(),
                },
                false,
            ),
            (
                Status::Probe(
                    Protection::ALL
                        .iter()
                        .map(|p| StepReport {
                            protection: *p,
                            state: State::Failed("x".repeat(2_000)),
                        })
                        .collect(),
                ),
                true,
            ),
        ];
        for (status, cut) in cases {
            let frame = status_frame(&status).unwrap();
            assert!(frame.len() <= MAX_STATUS_FRAME, "{}", frame.len());
            let mut buf = frame;
            let back = take_status(&mut buf).unwrap().unwrap();
            assert_eq!(back != status, cut, "{back:?}");
        }
    }

    #[test]
    fn protection_names_round_trip() {
        for p in Protection::ALL {
            assert_eq!(Protection::from_name(p.name()), Some(p));
        }
        assert_eq!(Protection::from_name("gvisor_kernel"), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode::<ZygoteConfig>(&[0xff, 0xff, 0xff]).is_err());
        let mut ok = encode(&Request::OpenSession {
            workspace_bytes: 1,
            workspace_inodes: 1,
            launcher: false,
        })
        .unwrap();
        ok.push(0);
        assert!(decode::<Request>(&ok).is_err());
    }
}
