//! Pure decisions of the mode for a daemon inside a gVisor container: which uid a session gets, its
//! workspace mount, and whether that mode is chosen.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The uids sessions get inside gVisor: one per open session, never 0, never the image's users
/// (`sluice` is 10001), so that sessions cannot read each other's workspaces even by their mode bits.
pub const SESSION_UIDS: std::ops::Range<u32> = 30_000..60_000;

/// Hands out session uids: each open session holds one no other open session holds. Uids are taken in
/// turn (not lowest-first), so a uid just released is the last to come back.
#[derive(Debug)]
pub struct UidPool {
    range: std::ops::Range<u32>,
    state: Mutex<(u32, BTreeSet<u32>)>,
}

/// A session's uid; given back to the pool when dropped.
#[derive(Debug)]
pub struct UidLease {
    uid: u32,
    pool: Arc<UidPool>,
}

impl UidLease {
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        if let Ok(mut s) = self.pool.state.lock() {
            s.1.remove(&self.uid);
        }
    }
}

impl UidPool {
    pub fn new(range: std::ops::Range<u32>) -> Self {
        UidPool {
            state: Mutex::new((range.start, BTreeSet::new())),
            range,
        }
    }

    /// The next uid not in use, or `None` when every uid of the range is.
    pub fn lease(self: &Arc<Self>) -> Option<UidLease> {
        let mut s = self.state.lock().ok()?;
        let len = self.range.end.checked_sub(self.range.start)?;
        for _ in 0..len {
            let uid = s.0;
            s.0 = if uid + 1 >= self.range.end {
                self.range.start
            } else {
                uid + 1
            };
            if uid != 0 && s.1.insert(uid) {
                return Some(UidLease {
                    uid,
                    pool: self.clone(),
                });
            }
        }
        None
    }
}

/// The mount options of a session's workspace tmpfs inside gVisor: size-limited, only the session's
/// uid may enter it. (This gVisor refuses `nr_inodes`; the size bounds it.)
pub fn inside_workspace_options(bytes: u64, uid: u32) -> String {
    format!("size={bytes},mode=0700,uid={uid},gid={uid}")
}

/// Resources whose limit a jail leaves out instead of failing on: gVisor's kernel refuses to change
/// RLIMIT_MSGQUEUE at all (EPERM even when lowering). It bounds POSIX message queues, whose calls the
/// seccomp allowlist refuses anyway. On Linux every limit is set.
pub fn unsettable_rlimits(inside_gvisor: bool) -> Vec<u32> {
    if inside_gvisor {
        vec![libc::RLIMIT_MSGQUEUE]
    } else {
        vec![]
    }
}

/// Whether a daemon runs sessions with the in-gVisor mode: asked for, or `auto` inside gVisor as root.
/// `Err` says why the mode that was asked for cannot be used.
pub fn use_inside_mode(asked: Asked, inside_gvisor: bool, euid: u32) -> Result<bool, String> {
    match (asked, inside_gvisor, euid) {
        (Asked::InsideGvisor, true, 0) | (Asked::Auto, true, 0) => Ok(true),
        (Asked::InsideGvisor, false, _) => Err(
            "--backend gvisor-container: this daemon does not run inside gVisor (its kernel is not gVisor's), \
             so the container would not be the outer wall this mode relies on"
                .to_string(),
        ),
        (Asked::InsideGvisor, true, _) => Err(
            "--backend gvisor-container needs the daemon to start as root of gVisor's kernel (the container's \
             `user: \"0\"` with CAP_SYS_ADMIN, SETUID, SETGID, SETPCAP, CHOWN, KILL, SYS_CHROOT) to build a \
             root per run and drop to each session's uid"
                .to_string(),
        ),
        _ => Ok(false),
    }
}

/// The backend the command line asked for, as far as this decision cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    Auto,
    InsideGvisor,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gvisor_has_unsettable_rlimits() {
        // (inside gVisor, resources left out)
        for (inside, expected) in [(false, vec![]), (true, vec![libc::RLIMIT_MSGQUEUE])] {
            assert_eq!(unsettable_rlimits(inside), expected, "{inside}");
        }
    }
    use pretty_assertions::assert_eq;

    #[test]
    fn the_mode_is_used_inside_gvisor_as_root_only() {
        // (asked, inside gVisor, euid, expected: Ok(use it) or Err(part of the reason))
        let cases: Vec<(Asked, bool, u32, Result<bool, &str>)> = vec![
            (Asked::Auto, true, 0, Ok(true)),
            (Asked::InsideGvisor, true, 0, Ok(true)),
            // Inside gVisor but unprivileged: auto keeps the old path (which fails closed, saying why).
            (Asked::Auto, true, 10001, Ok(false)),
            (
                Asked::InsideGvisor,
                true,
                10001,
                Err("needs the daemon to start as root"),
            ),
            // On a host kernel the mode is never chosen, and asking for it fails.
            (Asked::Auto, false, 0, Ok(false)),
            (Asked::InsideGvisor, false, 0, Err("does not run inside gVisor")),
            (Asked::Other, true, 0, Ok(false)),
            (Asked::Other, false, 1000, Ok(false)),
        ];
        for (asked, inside, euid, expected) in cases {
            let got = use_inside_mode(asked, inside, euid);
            match (&got, expected) {
                (Ok(g), Ok(e)) => assert_eq!(*g, e, "{asked:?} {inside} {euid}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "{asked:?} {inside} {euid}: {g}"),
                _ => panic!("{asked:?} {inside} {euid}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn session_uids_are_unique_while_held_and_never_root() {
        let pool = Arc::new(UidPool::new(0..4));
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        let c = pool.lease().unwrap();
        assert_eq!((a.uid(), b.uid(), c.uid()), (1, 2, 3));
        // 0 is skipped and every other uid is taken.
        assert!(pool.lease().is_none());
        drop(b);
        assert_eq!(pool.lease().unwrap().uid(), 2);
        let real = Arc::new(UidPool::new(SESSION_UIDS));
        let held: Vec<UidLease> = (0..100).map(|_| real.lease().unwrap()).collect();
        let distinct: BTreeSet<u32> = held.iter().map(UidLease::uid).collect();
        assert_eq!(distinct.len(), 100);
        assert!(distinct.iter().all(|u| SESSION_UIDS.contains(u) && *u >= 30_000));
    }

    #[test]
    fn workspace_mount_options() {
        assert_eq!(
            inside_workspace_options(512 << 20, 30_001),
            "size=536870912,mode=0700,uid=30001,gid=30001"
        );
    }
}
