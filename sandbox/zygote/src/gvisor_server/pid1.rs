//! PID 1 of a run inside the session's gVisor container: the run's root (binds of the container's
//! skeleton and the installation, the workspace, a fresh `/tmp`, its own `/proc`) entered with chroot,
//! every capability dropped, the run's rlimits, then the code; and the root taken down after it.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;

use nix::mount::{MntFlags, MsFlags};
use pyo3::prelude::*;
use sluice_sandbox_jail::apply;
use sluice_sandbox_jail::wire::{self, ServerConfig};

use super::{log, write_all};
use crate::python;
use crate::session::exit;

/// A run root's mounts, in mount order: (source, target, kind, writable).
fn mounts_of(cfg: &ServerConfig, root: &str) -> Vec<(String, String, Mount, bool)> {
    let mut out = vec![("/".to_string(), root.to_string(), Mount::Bind, false)];
    for b in &cfg.binds {
        out.push((b.dst.clone(), format!("{root}{}", b.dst), Mount::Bind, b.writable));
    }
    for top in ["/dev", "/sys"] {
        out.push((top.into(), format!("{root}{top}"), Mount::Bind, false));
    }
    out.push((
        "/workspace".into(),
        format!("{root}/workspace"),
        Mount::Bind,
        true,
    ));
    out.push(("tmpfs".into(), format!("{root}/tmp"), Mount::Tmpfs, true));
    out.push(("proc".into(), format!("{root}/proc"), Mount::Proc, false));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mount {
    Bind,
    Tmpfs,
    Proc,
}

/// Detaches the run's mounts (innermost first) and removes its empty mount point.
pub(super) fn take_down(cfg: &ServerConfig, root: &str) {
    if !std::path::Path::new(root).is_dir() {
        return;
    }
    for (_, target, _, _) in mounts_of(cfg, root).iter().rev() {
        let _ = nix::mount::umount2(target.as_str(), MntFlags::MNT_DETACH);
    }
    if let Err(e) = std::fs::remove_dir(root) {
        log(&format!("could not remove {root}: {e}"));
    }
}

fn build_root(cfg: &ServerConfig, root: &str) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(root)
        .map_err(|e| format!("mkdir {root}: {e}"))?;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (src, dst, kind, writable) in mounts_of(cfg, root) {
        let done = match kind {
            // The skeleton root and the installation are read-only mounts of the container: a bind keeps
            // that.
            Mount::Bind => {
                let ro = if writable {
                    MsFlags::empty()
                } else {
                    MsFlags::MS_RDONLY
                };
                nix::mount::mount(
                    Some(src.as_str()),
                    dst.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | base | ro,
                    None::<&str>,
                )
            }
            // This gVisor's tmpfs takes no nr_inodes: only the size bounds it.
            Mount::Tmpfs => nix::mount::mount(
                Some("tmpfs"),
                dst.as_str(),
                Some("tmpfs"),
                base,
                Some(format!("size={},mode=1777", cfg.tmp_bytes).as_str()),
            ),
            // A /proc of the run's own PID namespace (this process is its PID 1).
            Mount::Proc => nix::mount::mount(
                Some("proc"),
                dst.as_str(),
                Some("proc"),
                base | MsFlags::MS_NOEXEC,
                None::<&str>,
            ),
        };
        done.map_err(|e| format!("mount {dst}: {e}"))?;
    }
    nix::unistd::chdir(root).map_err(|e| format!("chdir {root}: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// (CapBnd, CapEff, CapPrm, CapInh) from the run's own /proc: one file read instead of a prctl per
/// capability (each system call is a round trip through the ptrace platform).
fn cap_sets() -> Result<[u64; 4], String> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    };
    Ok([
        field("CapBnd")?,
        field("CapEff")?,
        field("CapPrm")?,
        field("CapInh")?,
    ])
}

/// Empties the bounding, ambient, effective, permitted and inheritable sets, and checks they are empty.
fn drop_caps() -> Result<(), String> {
    let [bounding, ..] = cap_sets()?;
    for cap in (0..64).filter(|c| bounding >> c & 1 == 1) {
        // SAFETY: PR_CAPBSET_DROP takes integers; no memory is passed to the kernel.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(format!("drop bounding cap {cap}: {}", nix::errno::Errno::last()));
        }
    }
    // gVisor has no ambient set (EINVAL): nothing to clear then.
    // SAFETY: PR_CAP_AMBIENT takes integers; no memory is passed to the kernel.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [0u32; 6];
    // SAFETY: capset reads a version-3 header and two (effective, permitted, inheritable) triples.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) } < 0 {
        return Err(format!("capset: {}", nix::errno::Errno::last()));
    }
    let left = cap_sets()?;
    if left.iter().any(|&s| s != 0) {
        return Err(format!(
            "capabilities still present after dropping them: {left:?}"
        ));
    }
    Ok(())
}

fn write_status(fd: BorrowedFd<'_>, word: &str, text: &str) {
    let line = format!("{word} {}\n", text.replace('\n', " "));
    let _ = write_all(fd.as_raw_fd(), line.as_bytes());
}

/// Lowers each limit to the run's, never raising. A limit already at its value is left alone: gVisor
/// answers EPERM for RLIMIT_MSGQUEUE (0, 0) -> (0, 0).
fn set_rlimits(limits: &[sluice_sandbox_jail::Rlimit]) -> Result<(), String> {
    for &limit in limits {
        let res = limit.0;
        let cur = nix::sys::resource::getrlimit(res_of(res)?).map_err(|e| format!("getrlimit {res}: {e}"))?;
        let (soft, hard) = apply::lowered(limit, cur.1);
        if (soft, hard) != cur {
            nix::sys::resource::setrlimit(res_of(res)?, soft, hard)
                .map_err(|e| format!("setrlimit {res}: {e}"))?;
        }
    }
    Ok(())
}

fn res_of(res: u32) -> Result<nix::sys::resource::Resource, String> {
    use nix::sys::resource::Resource;
    Ok(match res {
        libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        libc::RLIMIT_DATA => Resource::RLIMIT_DATA,
        libc::RLIMIT_STACK => Resource::RLIMIT_STACK,
        libc::RLIMIT_CORE => Resource::RLIMIT_CORE,
        libc::RLIMIT_RSS => Resource::RLIMIT_RSS,
        libc::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        libc::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        libc::RLIMIT_AS => Resource::RLIMIT_AS,
        libc::RLIMIT_MSGQUEUE => Resource::RLIMIT_MSGQUEUE,
        other => return Err(format!("unknown rlimit resource {other}")),
    })
}

/// PID 1 of a run's PID namespace, cloned ahead of its run: builds the run's root and drops every
/// privilege, prepares the runner, then waits for the run on `go`, lowers the rlimits to the run's and
/// runs the code. Failures go to `status` as the set-up failure of the run it is given.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_init(
    py: Python<'_>,
    cfg: &ServerConfig,
    runner: &Py<PyAny>,
    root: &str,
    go: OwnedFd,
    out: OwnedFd,
    err: OwnedFd,
    status: OwnedFd,
) -> ! {
    let fail = |why: String| -> ! {
        write_status(status.as_fd(), "error", &why);
        exit(70)
    };
    // No parent-death signal needed: should the server die, the container (whose init it is) dies, and
    // every run with it.
    let locked = (|| -> Result<(), String> {
        // SAFETY: an empty mask and the default disposition install no handler code.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        }
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("/dev/null: {e}"))?;
        // Nothing of the server's stays open: not its stdin and stdout, nor other runs' pipes.
        for (fd, target) in [(null.as_raw_fd(), 0), (out.as_raw_fd(), 1), (err.as_raw_fd(), 2)] {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            if unsafe { libc::dup2(fd, target) } < 0 {
                return Err(format!("dup2: {}", nix::errno::Errno::last()));
            }
        }
        Ok(())
    })();
    if let Err(e) = locked {
        fail(e);
    }
    apply::close_all_but(&[go.as_raw_fd(), status.as_raw_fd()]);
    // Closed by close_all_but already (their numbers are not kept); forgotten so they are not closed again.
    std::mem::forget((out, err));
    let locked = (|| -> Result<(), String> {
        build_root(cfg, root)?;
        drop_caps()?;
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
        python::prepare_run(py, runner, &cfg.env).map_err(|e| format!("the runner's preparation: {e}"))?;
        nix::unistd::chdir("/workspace").map_err(|e| format!("chdir /workspace: {e}"))
    })();
    if let Err(e) = locked {
        fail(e);
    }
    // Locked down; still trusted code until the run's code starts.
    let mut payload = Vec::new();
    if std::io::Read::read_to_end(&mut std::fs::File::from(go), &mut payload).is_err() || payload.is_empty() {
        // The server let this PID 1 go without a run (the container is stopping).
        exit(0);
    }
    let Some((setup, code)) = wire::split_run(&payload) else {
        fail("a malformed run request".into())
    };
    if let Err(e) = set_rlimits(&setup.rlimits) {
        fail(e);
    }
    // Read-only files the daemon names (matplotlib's prebuilt font cache), linked into the fresh /tmp.
    apply::link_into_tmp(&setup.links);
    write_status(status.as_fd(), "ok", "");
    drop(status);
    // No report channel: the run holds nothing but its standard streams.
    python::run_code(py, runner, code, -1)
}
