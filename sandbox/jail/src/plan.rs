//! What a jail looks like, as the daemon's pure policy decides it: plain data, applied by [`crate::apply`].

use serde::{Deserialize, Serialize};

/// One `setrlimit` as the jail applies it: (resource, soft, hard).
pub type Rlimit = (u32, u64, u64);

/// A bind mount into the jail: the installation read-only at its host paths, devices, and project
/// directories at `/projects/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub src: String,
    pub dst: String,
    pub is_dir: bool,
    /// Flags for the bind remount: read-only (unless a device or a read-write project) plus the flags
    /// the kernel keeps locked.
    pub remount_flags: u64,
    /// Sandboxed code may write below it (landlock grants it; the mount is not read-only).
    pub writable: bool,
    /// Bind the mounts below the source too. Projects are bound alone: a remount to read-only only
    /// covers the top mount, so a host mount below a project would otherwise stay writable.
    pub recursive: bool,
}

/// The jail's root file system, as the session's launcher builds it on a small tmpfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootPlan {
    pub root_bytes: u64,
    pub tmp_bytes: u64,
    pub tmp_inodes: u64,
    pub dirs: Vec<String>,
    /// (target, link path)
    pub symlinks: Vec<(String, String)>,
    pub binds: Vec<Bind>,
    pub dev_symlinks: Vec<(String, String)>,
}

/// One landlock path rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockRule {
    pub path: String,
    pub access: u64,
}

/// The landlock ruleset: every file-system and network right is handled (so denied unless a rule
/// grants it), signals and abstract Unix sockets are scoped to the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockPolicy {
    /// The oldest kernel ABI that enforces everything the policy asks for.
    pub min_abi: u32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub rules: Vec<LandlockRule>,
}

/// One classic BPF instruction of a seccomp program (`struct sock_filter`), as `seccompiler` builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl From<&seccompiler::sock_filter> for BpfInstruction {
    fn from(i: &seccompiler::sock_filter) -> Self {
        BpfInstruction {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        }
    }
}

impl From<BpfInstruction> for seccompiler::sock_filter {
    fn from(i: BpfInstruction) -> Self {
        seccompiler::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        }
    }
}
