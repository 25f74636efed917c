//! The steps of a run's PID 1 when the daemon itself runs inside a gVisor container (the container is the
//! outer wall; the daemon is root of gVisor's kernel).
//!
//! gVisor (the 2022 release at least) differs from Linux where it matters here: it has no `pivot_root`
//! (the run's root is entered with `chroot`), it accepts `unshare(CLONE_NEWNS)` but does not separate
//! mounts (so each run mounts at a path of its own and [`unmount_run_root`] takes them down), it ignores
//! `MS_RDONLY` on a bind (so [`build_run_root`] checks by trying a write), it has no ambient capability
//! set (`EINVAL`) nor `/proc/sys/kernel/cap_last_cap` (so [`drop_bounding_caps`] stops at the first
//! capability its kernel does not know), and it refuses to change `RLIMIT_MSGQUEUE`
//! ([`crate::ZygoteConfig::unsettable_rlimits`]). Order in [`lock_down`]: the root, the hostname,
//! rlimits, stdio on `/dev/null` and a new session, the bounding set emptied, the session's uid (never
//! skipped), `no_new_privs`, in a probe the PID and network namespaces checked from inside, seccomp last.
#![allow(unsafe_code)]

use nix::mount::{MntFlags, MsFlags};

use crate::apply::{self, Applied, apply_seccomp, capget, mnt, prctl, set_rlimits, symlink};
use crate::error::{Context, Error};
use crate::msg::{Prepare, Protection, State, Step, StepReport, ZygoteConfig};

/// Tries a write (still root here): gVisor's statvfs does not report a read-only mount's flag. Only
/// `EROFS` says the path is read-only; any other failure is not evidence that it is. A file is opened for
/// writing (without truncating, without becoming a controlling terminal, without blocking) and closed.
pub fn can_write(path: &str, is_dir: bool) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let outcome = if is_dir {
        let probe = format!("{path}/.sluice-read-only-check");
        std::fs::create_dir(&probe).and_then(|()| std::fs::remove_dir(&probe))
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .map(drop)
    };
    match outcome {
        Ok(()) => true,
        Err(e) => e.raw_os_error() != Some(libc::EROFS),
    }
}

/// The run's own root: a tmpfs skeleton with the installation bound read-only, the session's workspace, a
/// size-limited `/tmp` and a `/proc` of the run's PID namespace, all mounted at `root` (the run's own
/// path: mounts are not separated per mount namespace here) and entered with `chroot`.
pub fn build_run_root(cfg: &ZygoteConfig, workspace: &str, root: &str) -> Result<String, Error> {
    let r = &cfg.root;
    // 0755 and owned by root: the code (an unprivileged uid) cannot create anything in it.
    apply::skeleton(r, root)?;
    let mut writable = Vec::new();
    for b in &r.binds {
        let dst = format!("{root}{}", b.dst);
        apply::mount_point(&dst, b.is_dir)?;
        // One call: this gVisor refuses MS_REC and bind remounts; it keeps the source's read-only state.
        let ro = if b.writable {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
        let kept = MsFlags::from_bits_retain(b.remount_flags) & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        mnt(Some(&b.src), &dst, None, MsFlags::MS_BIND | ro | kept, None)?;
        if !b.writable && can_write(&dst, b.is_dir) {
            writable.push(b.dst.clone());
        }
    }
    if !writable.is_empty() {
        // gVisor ignores MS_RDONLY on a bind: the installation is read-only only when the container's root
        // file system is (docker-compose.yml's `read_only: true`). Fail closed otherwise.
        return Err(Error::Check(format!(
            "read-only binds are writable here: {writable:?} (run the container with a read-only root file \
             system)"
        )));
    }
    mnt(
        Some(workspace),
        &format!("{root}/workspace"),
        None,
        MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    )?;
    mnt(
        Some("tmpfs"),
        &format!("{root}/tmp"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("size={},mode=1777", r.tmp_bytes)),
    )?;
    mnt(
        Some("proc"),
        &format!("{root}/proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    for (target, link) in &r.dev_symlinks {
        symlink(target, &format!("{root}{link}"))?;
    }
    nix::unistd::chdir(root).what(|| format!("chdir {root}"))?;
    nix::unistd::chroot(".").what(|| "chroot".into())?;
    nix::unistd::chdir("/").what(|| "chdir /".into())?;
    Ok(format!(
        "own root per run (tmpfs, {} binds of the read-only installation, /workspace, tmpfs /tmp, /proc of \
         the run), entered with chroot",
        r.binds.len()
    ))
}

/// The mount points at or below `root` in a `/proc/self/mountinfo` text, innermost (longest) first and
/// each once: the order in which they can be detached.
pub fn mounts_below(mountinfo: &str, root: &str) -> Vec<String> {
    let below = format!("{root}/");
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter(|p| *p == root || p.starts_with(&below))
        .map(str::to_string)
        .collect();
    points.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    points.dedup();
    points
}

/// Detaches every mount of the run's root (innermost first) and removes the empty mount point. Never
/// removes files: the session's workspace is bound below the root, and only an empty directory goes.
pub fn unmount_run_root(root: &str) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for point in mounts_below(&info, root) {
        let _ = nix::mount::umount2(point.as_str(), MntFlags::MNT_DETACH);
    }
    // A mount stacked on another needs one detach per layer.
    for _ in 0..8 {
        if nix::mount::umount2(root, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    if let Err(e) = std::fs::remove_dir(root) {
        eprintln!("sluice-sandbox-zygote: could not remove {root}: {e}");
    }
}

/// Empties the bounding and ambient sets. gVisor has no `/proc/sys/kernel/cap_last_cap`: the loop stops
/// at the first capability its kernel does not know; and no ambient set (`EINVAL`): nothing to clear
/// then. The change to the session's uid empties the other sets.
pub fn drop_bounding_caps() -> Result<Option<String>, Error> {
    let mut cap: u32 = 0;
    loop {
        // SAFETY: PR_CAPBSET_READ takes an integer; no memory is passed to the kernel.
        let known = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } >= 0;
        if !known {
            break;
        }
        prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, || {
            format!("drop bounding cap {cap}")
        })?;
        cap += 1;
    }
    if cap < 32 {
        return Err(Error::Check(format!(
            "only {cap} capabilities known to the kernel"
        )));
    }
    if let Err(e) = prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        || "clear ambient caps".into(),
    ) && !matches!(
        e,
        Error::Sys {
            errno: nix::errno::Errno::EINVAL,
            ..
        }
    ) {
        return Err(e);
    }
    Ok(Some(format!(
        "bounding set ({cap} capabilities) emptied; the change to the session's uid empties the rest"
    )))
}

/// Switches every uid and gid to the session's own (never root), and checks no capability is left.
pub fn become_session_uid(uid: u32, gid: u32) -> Result<String, Error> {
    use nix::unistd::{Gid, Uid, getgroups, getresgid, getresuid, setgroups, setresgid, setresuid};
    if uid == 0 || gid == 0 {
        return Err(Error::Check("refusing to run code as uid or gid 0".into()));
    }
    setgroups(&[]).what(|| "setgroups".into())?;
    let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
    setresgid(g, g, g).what(|| "setresgid".into())?;
    setresuid(u, u, u).what(|| "setresuid".into())?;
    let ru = getresuid().what(|| "getresuid".into())?;
    let rg = getresgid().what(|| "getresgid".into())?;
    let groups = getgroups().what(|| "getgroups".into())?;
    let uids = [ru.real, ru.effective, ru.saved].map(Uid::as_raw);
    let gids = [rg.real, rg.effective, rg.saved].map(Gid::as_raw);
    if uids != [uid; 3] || gids != [gid; 3] || !groups.is_empty() {
        return Err(Error::Check(format!(
            "uids {uids:?} gids {gids:?} groups {groups:?}"
        )));
    }
    let left: Vec<(u32, u32, u32)> = capget()?
        .iter()
        .map(|d| (d.effective, d.permitted, d.inheritable))
        .collect();
    if left.iter().any(|&(e, p, i)| e != 0 || p != 0 || i != 0) {
        return Err(Error::Check(format!(
            "capabilities still present after the uid change: {left:?}"
        )));
    }
    Ok(format!(
        "uid {uid}, gid {gid}, no supplementary groups, no capabilities"
    ))
}

/// PID 1 of its own namespace, and `/proc` (the run's own) shows no other process.
pub fn check_pid_namespace() -> Result<Option<String>, Error> {
    let mut pids: Vec<String> = std::fs::read_dir("/proc")
        .map_err(|e| Error::Check(format!("/proc: {e}")))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    pids.sort();
    let pid = std::process::id();
    if pid != 1 || pids != ["1"] {
        return Err(Error::Check(format!("pid {pid}, /proc shows {pids:?}")));
    }
    Ok(Some(
        "PID 1 of its own namespace; /proc shows only the run's processes".into(),
    ))
}

/// No network interface but (at most) loopback.
pub fn check_network_namespace() -> Result<Option<String>, Error> {
    let mut names: Vec<String> = nix::net::if_::if_nameindex()
        .what(|| "if_nameindex".into())?
        .iter()
        .map(|i| i.name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if !(names.is_empty() || names == ["lo"]) {
        return Err(Error::Check(format!("interfaces {names:?}")));
    }
    Ok(Some(format!("interfaces {names:?} only")))
}

/// PID 1 of a run inside gVisor: builds its root at `root`, drops to the session's uid and locks itself
/// down, in the order the module header gives. The caller has unshared the run's namespaces. Returns each
/// step's result (for a probe); the session's uid is reported as a step although it is never skipped.
pub fn lock_down(
    cfg: &ZygoteConfig,
    prepare: &Prepare,
    uid: u32,
    gid: u32,
    workspace: &str,
    root: &str,
) -> Result<Vec<StepReport>, (Step, String)> {
    let setup = |e: Error| (Step::Setup, e.to_string());
    let mut a = Applied::begin(prepare)?;
    a.step(Protection::MinimalRoot, || {
        build_run_root(cfg, workspace, root).map(Some)
    })?;
    a.step(Protection::UtsNamespace, apply::set_hostname)?;
    a.step(Protection::Rlimits, || {
        set_rlimits(&cfg.rlimits_max, &cfg.unsettable_rlimits)
    })?;
    apply::dup_null_onto_stdio().map_err(setup)?;
    nix::unistd::setsid().what(|| "setsid".into()).map_err(setup)?;
    a.step(Protection::CapabilitiesDropped, drop_bounding_caps)?;
    // Never skipped, not even in degraded mode: code never runs as root.
    let detail = become_session_uid(uid, gid).map_err(|e| {
        (
            Step::Protection(Protection::SessionUid),
            format!("{}: {e}", Protection::SessionUid.name()),
        )
    })?;
    a.results.push(StepReport {
        protection: Protection::SessionUid,
        state: State::Ok(Some(detail)),
    });
    a.step(Protection::NoNewPrivs, apply::set_no_new_privs)?;
    if prepare.probe {
        // Checked from inside, before seccomp (which refuses the netlink socket if_nameindex needs).
        a.step(Protection::PidNamespace, check_pid_namespace)?;
        a.step(Protection::NetworkNamespace, check_network_namespace)?;
    }
    a.step(Protection::Seccomp, || apply_seccomp(&cfg.seccomp))?;
    Ok(a.results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(mountinfo: &str, root: &str, expected: &[&str]) {
        assert_eq!(mounts_below(mountinfo, root), expected, "{root}");
    }

    #[test]
    fn mounts_below_a_run_root_innermost_first() {
        let info = "\
22 1 0:21 / / rw - tmpfs none rw
30 22 0:30 / /r/jail/3-7 rw - tmpfs tmpfs rw
31 30 0:31 / /r/jail/3-7/usr ro - 9p none ro
32 30 0:32 / /r/jail/3-7/tmp rw - tmpfs tmpfs rw
33 30 0:33 / /r/jail/3-7/workspace rw - tmpfs tmpfs rw
34 30 0:34 / /r/jail/3-7/proc rw - proc proc rw
35 22 0:35 / /r/jail/3-77 rw - tmpfs tmpfs rw
36 30 0:36 / /r/jail/3-7 rw - tmpfs tmpfs rw
";
        // (root, mount points to detach in order)
        check(
            info,
            "/r/jail/3-7",
            &[
                "/r/jail/3-7/workspace",
                "/r/jail/3-7/proc",
                "/r/jail/3-7/tmp",
                "/r/jail/3-7/usr",
                "/r/jail/3-7",
            ],
        );
        // Another run's root that shares a prefix is not touched.
        check(info, "/r/jail/3-77", &["/r/jail/3-77"]);
        check(info, "/r/jail/9-1", &[]);
        check("", "/r/jail/3-7", &[]);
    }

    #[test]
    fn the_read_only_check_writes_nothing_and_tells_writable_from_missing() {
        let dir = std::env::temp_dir().join(format!("sluice-can-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        let d = dir.display().to_string();
        // (path, is_dir, writable): a missing path fails with ENOENT, which is not EROFS.
        let cases = [
            (d.clone(), true, true),
            (file.display().to_string(), false, true),
            (format!("{d}/missing"), false, true),
        ];
        for (path, is_dir, expected) in cases {
            assert_eq!(can_write(&path, is_dir), expected, "{path}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        assert!(!dir.join(".sluice-read-only-check").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
