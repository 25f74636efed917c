//! The steps that build a session and lock a run's PID 1 down, as plain functions on the typed policy.
//!
//! Order in a jail ([`lock_down`]): the run's namespaces (unshared by the caller), the minimal root and
//! `pivot_root`, the hostname, `no_new_privs` and every capability dropped, rlimits, then landlock and
//! seccomp last. The daemon moves PID 1 into the run's cgroup while these run; it hands the code over only
//! after both the cgroup entry and [`crate::Status::Ready`], so user code only ever runs inside the group.
//! Every step returns a typed result: in a probe each is tried and reported; in a run a step that fails
//! and was not skipped (degraded mode) stops the jail before any user code exists in it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::codec;
use crate::error::{Context, Error};
use crate::msg::{IdMap, Prepare, Protection, State, Status, Step, StepReport, ZygoteConfig};
use crate::plan::{LandlockPolicy, Rlimit, RootPlan};

/// Writes one status event; a daemon that went away must not stop the writer.
pub fn write_status(fd: BorrowedFd<'_>, status: &Status) {
    if let Ok(frame) = codec::status_frame(status) {
        let _ = nix::unistd::write(fd, &frame);
    }
}

pub(crate) fn write_file(path: &str, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::Check(format!("{path}: {e}")))
}

pub(crate) fn mnt(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Error> {
    mount(src, target, fstype, flags, data).what(|| format!("mount {target}"))
}

pub(crate) fn ensure_dir(path: &str) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|e| Error::Check(format!("mkdir {path}: {e}")))
}

pub(crate) fn symlink(target: &str, link: &str) -> Result<(), Error> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::Check(format!("symlink {link}: {e}")))
}

/// The session: a user + mount namespace mapping one id to the daemon's, and its size-limited workspace.
pub fn open_session(cfg: &ZygoteConfig, workspace_bytes: u64, workspace_inodes: u64) -> Result<(), Error> {
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .what(|| "unshare user+mount namespace".into())?;
    let IdMap {
        uid_inside,
        gid_inside,
        uid_outside,
        gid_outside,
    } = cfg.ids;
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", &format!("{uid_inside} {uid_outside} 1"))?;
    write_file("/proc/self/gid_map", &format!("{gid_inside} {gid_outside} 1"))?;
    mnt(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let opts = format!(
        "size={workspace_bytes},nr_inodes={workspace_inodes},mode=0700,uid={uid_inside},gid={gid_inside}"
    );
    mnt(
        Some("tmpfs"),
        &cfg.workspace_mountpoint,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&opts),
    )
}

/// Builds the jails' root once per session, in the session's mount namespace (the launcher's): a
/// read-only tmpfs skeleton with read-only binds of the installation, the session's workspace read-write,
/// and empty mount points for `/tmp` and `/proc`. Each jail's mount namespace starts as a copy of it.
pub fn build_session_root(cfg: &ZygoteConfig) -> Result<String, Error> {
    let root = cfg.jail_dir.as_str();
    let r: &RootPlan = &cfg.root;
    skeleton(r, root)?;
    for b in &r.binds {
        let dst = format!("{root}{}", b.dst);
        mount_point(&dst, b.is_dir)?;
        let rec = if b.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        mnt(Some(&b.src), &dst, None, MsFlags::MS_BIND | rec, None)?;
        // A bind mount inherits the source's flags; the remount repeats the locked ones (atime, nosuid,
        // ...) the daemon read with statvfs, and adds read-only where the plan asks.
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::from_bits_retain(b.remount_flags);
        mnt(None, &dst, None, flags, None)?;
    }
    let ws = format!("{root}/workspace");
    ensure_dir(&ws)?;
    mnt(Some(&cfg.workspace_mountpoint), &ws, None, MsFlags::MS_BIND, None)?;
    for (target, link) in &r.dev_symlinks {
        symlink(target, &format!("{root}{link}"))?;
    }
    // The skeleton itself becomes read-only: only /workspace and each run's /tmp are writable.
    mnt(
        None,
        root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    )?;
    Ok(format!(
        "read-only root with {} read-only binds, /workspace, tmpfs /tmp, fresh /proc",
        r.binds.len()
    ))
}

/// Makes the session's root this run's `/`: a private `/tmp` and `/proc` on it, then `pivot_root`.
fn enter_root(
    cfg: &ZygoteConfig,
    unshare_flags: u64,
    built: &Result<String, String>,
) -> Result<String, Error> {
    let detail = built
        .as_ref()
        .map_err(|e| Error::Check(format!("the session's root could not be built: {e}")))?;
    let root = cfg.jail_dir.as_str();
    let r = &cfg.root;
    mnt(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    mnt(
        Some("tmpfs"),
        &format!("{root}/tmp"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!(
            "size={},nr_inodes={},mode=1777",
            r.tmp_bytes, r.tmp_inodes
        )),
    )?;
    if unshare_flags & libc::CLONE_NEWPID as u64 != 0 {
        // A fresh /proc shows only this run's PID namespace. It must be mounted while the host's /proc
        // is still visible in this mount namespace (the kernel refuses a proc mount that reveals more).
        mnt(
            Some("proc"),
            &format!("{root}/proc"),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    nix::unistd::chdir(root).what(|| format!("chdir {root}"))?;
    nix::unistd::pivot_root(".", ".").what(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).what(|| "detach old root".into())?;
    nix::unistd::chdir("/").what(|| "chdir /".into())?;
    Ok(detail.clone())
}

pub(crate) fn prctl(
    option: libc::c_int,
    arg: libc::c_ulong,
    what: impl FnOnce() -> String,
) -> Result<libc::c_int, Error> {
    // SAFETY: every option used here takes integer arguments only; no memory is passed to the kernel.
    let r = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(Error::sys(what(), nix::errno::Errno::last()));
    }
    Ok(r)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CapData {
    pub(crate) effective: u32,
    pub(crate) permitted: u32,
    pub(crate) inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

pub(crate) fn capget() -> Result<[CapData; 2], Error> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two `CapData` (version 3) into `data`, which is exactly that size.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
    if r < 0 {
        return Err(Error::sys("capget", nix::errno::Errno::last()));
    }
    Ok(data)
}

/// Empties the bounding and ambient sets, then the effective, permitted and inheritable ones, and checks.
fn drop_caps(last: u32) -> Result<Option<String>, Error> {
    for cap in 0..=last {
        prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, || {
            format!("drop bounding cap {cap}")
        })?;
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        || "clear ambient caps".into(),
    )?;
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads two `CapData` (version 3) from `data`, which is exactly that size.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r < 0 {
        return Err(Error::sys("capset", nix::errno::Errno::last()));
    }
    let left = capget()?;
    let bounding = prctl(libc::PR_CAPBSET_READ, last as libc::c_ulong, || {
        "read bounding set".into()
    })?;
    if left
        .iter()
        .any(|d| d.effective != 0 || d.permitted != 0 || d.inheritable != 0)
        || bounding != 0
    {
        return Err(Error::Check(
            "capabilities still present after dropping them".into(),
        ));
    }
    Ok(None)
}

/// The (soft, hard) limit to set for `limit` when the process's hard limit is `current_hard`: only ever
/// lowering, since a hard limit already below the policy's (the container's own, inside gVisor) cannot be
/// raised again without a capability the jail no longer has.
pub fn lowered(limit: Rlimit, current_hard: u64) -> (u64, u64) {
    let (_, soft, hard) = limit;
    let hard = if current_hard == libc::RLIM_INFINITY {
        hard
    } else {
        hard.min(current_hard)
    };
    (soft.min(hard), hard)
}

/// The detail of an rlimits step that had to leave out resources the kernel does not let change.
pub fn unsettable_detail(skipped: &[u32]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let names: Vec<String> = skipped
        .iter()
        .map(|&r| match r {
            r if r == libc::RLIMIT_MSGQUEUE => "RLIMIT_MSGQUEUE".to_string(),
            r => format!("resource {r}"),
        })
        .collect();
    Some(format!(
        "all but {}, which gVisor does not let change (its calls are refused by seccomp)",
        names.join(", ")
    ))
}

/// Sets each limit, only ever lowering ([`lowered`]). A resource in `unsettable` whose limit the kernel
/// refuses to change is left out and named in the detail; any other failure is an error.
pub fn set_rlimits(limits: &[Rlimit], unsettable: &[u32]) -> Result<Option<String>, Error> {
    let mut skipped = Vec::new();
    for &limit in limits {
        let res = limit.0;
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into `cur`.
        if unsafe { libc::getrlimit(res as _, &mut cur) } < 0 {
            return Err(Error::sys(format!("getrlimit {res}"), nix::errno::Errno::last()));
        }
        let (soft, hard) = lowered(limit, cur.rlim_max);
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one `rlimit` from `new`.
        if unsafe { libc::setrlimit(res as _, &new) } < 0 {
            if unsettable.contains(&res) {
                skipped.push(res);
                continue;
            }
            return Err(Error::sys(format!("setrlimit {res}"), nix::errno::Errno::last()));
        }
    }
    Ok(unsettable_detail(&skipped))
}

/// Landlock through the `landlock` crate: the policy's rights, asked best-effort at ABI V7, then enforced
/// strictly: the kernel must speak at least the policy's minimum ABI and the ruleset must be in force.
fn apply_landlock(ll: &LandlockPolicy) -> Result<Option<String>, Error> {
    use landlock::{
        AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath, PathFd, Ruleset,
        RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    };
    let e = |what: &str, err: &dyn std::fmt::Display| Error::Check(format!("landlock {what}: {err}"));
    let fs = BitFlags::<AccessFs>::from_bits_truncate(ll.handled_fs);
    let net = BitFlags::<AccessNet>::from_bits_truncate(ll.handled_net);
    let scoped = BitFlags::<Scope>::from_bits_truncate(ll.scoped);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(fs)
        .map_err(|x| e("fs access", &x))?
        .handle_access(net)
        .map_err(|x| e("net access", &x))?
        .scope(scoped)
        .map_err(|x| e("scopes", &x))?
        .create()
        .map_err(|x| e("create ruleset", &x))?;
    for rule in &ll.rules {
        // A path the host does not have (an optional device) grants nothing.
        let Ok(fd) = PathFd::new(&rule.path) else {
            continue;
        };
        let access = BitFlags::<AccessFs>::from_bits_truncate(rule.access);
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|x| e(&format!("rule {}", rule.path), &x))?;
    }
    let status = ruleset.restrict_self().map_err(|x| e("restrict_self", &x))?;
    let abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => kernel_abi.unwrap_or(effective_abi as i32),
        LandlockStatus::NotEnabled => {
            return Err(Error::Check("landlock is not enabled in this kernel".into()));
        }
        LandlockStatus::NotImplemented => return Err(Error::Check("landlock not available: ENOSYS".into())),
    };
    if abi < ll.min_abi as i32 {
        return Err(Error::Check(format!(
            "landlock ABI {abi} < required {}",
            ll.min_abi
        )));
    }
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(Error::Check("landlock ruleset not enforced".into()));
    }
    Ok(Some(format!("abi {abi}")))
}

/// Installs the programs in order with `seccompiler`.
pub(crate) fn apply_seccomp(programs: &[Vec<crate::plan::BpfInstruction>]) -> Result<Option<String>, Error> {
    if programs.is_empty() {
        return Err(Error::Check(
            "no seccomp program was compiled for this architecture".into(),
        ));
    }
    let mut total = 0;
    for p in programs {
        let prog: seccompiler::BpfProgram = p.iter().copied().map(Into::into).collect();
        seccompiler::apply_filter(&prog).map_err(|e| Error::Check(format!("seccomp filter: {e}")))?;
        total += prog.len();
    }
    Ok(Some(format!("{} programs, {total} instructions", programs.len())))
}

/// Records each protection step: in a probe every step is tried and reported; in a run a failed step
/// that was not explicitly skipped aborts before user code runs.
pub(crate) struct Applied<'a> {
    pub(crate) prepare: &'a Prepare,
    pub(crate) results: Vec<StepReport>,
}

impl<'a> Applied<'a> {
    /// A run's PID 1 begins its lock-down: it dies with its trusted parent, and no step has run yet.
    pub(crate) fn begin(prepare: &'a Prepare) -> Result<Applied<'a>, (Step, String)> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .what(|| "pdeathsig".into())
            .map_err(|e| (Step::Setup, e.to_string()))?;
        Ok(Applied {
            prepare,
            results: Vec::new(),
        })
    }

    pub(crate) fn step(
        &mut self,
        protection: Protection,
        f: impl FnOnce() -> Result<Option<String>, Error>,
    ) -> Result<(), (Step, String)> {
        let skipped = self.prepare.skip.contains(&protection);
        if skipped && !self.prepare.probe {
            self.results.push(StepReport {
                protection,
                state: State::Skipped,
            });
            return Ok(());
        }
        let state = match f() {
            Ok(detail) => State::Ok(detail),
            Err(e) => {
                if !self.prepare.probe && !skipped {
                    return Err((
                        Step::Protection(protection),
                        format!("{}: {e}", protection.name()),
                    ));
                }
                State::Failed(e.to_string())
            }
        };
        self.results.push(StepReport { protection, state });
        Ok(())
    }
}

pub(crate) fn dup_null_onto_stdio() -> Result<(), Error> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )
    .what(|| "open /dev/null".into())?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns; `null` stays valid.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(Error::sys("dup2 /dev/null", nix::errno::Errno::last()));
        }
    }
    Ok(())
}

/// PID 1 of a fresh run: locks itself down, step by step, in the order the module header gives. The
/// caller has already unshared the run's namespaces. Returns each step's result (for a probe).
pub fn lock_down(
    cfg: &ZygoteConfig,
    prepare: &Prepare,
    root: &Result<String, String>,
) -> Result<Vec<StepReport>, (Step, String)> {
    let setup = |e: Error| (Step::Setup, e.to_string());
    let mut a = Applied::begin(prepare)?;
    a.step(Protection::MinimalRoot, || {
        enter_root(cfg, prepare.unshare_flags, root).map(Some)
    })?;
    a.step(Protection::UtsNamespace, set_hostname)?;
    dup_null_onto_stdio().map_err(setup)?;
    nix::unistd::setsid().what(|| "setsid".into()).map_err(setup)?;
    a.step(Protection::NoNewPrivs, set_no_new_privs)?;
    a.step(Protection::CapabilitiesDropped, || drop_caps(cfg.cap_last_cap))?;
    // Hard limits at the configured maxima now; each run lowers them to what it asked for.
    a.step(Protection::Rlimits, || {
        set_rlimits(&cfg.rlimits_max, &cfg.unsettable_rlimits)
    })?;
    a.step(Protection::Landlock, || apply_landlock(&cfg.landlock))?;
    a.step(Protection::Seccomp, || apply_seccomp(&cfg.seccomp))?;
    Ok(a.results)
}

/// The run's own hostname (its UTS namespace is its own).
pub(crate) fn set_hostname() -> Result<Option<String>, Error> {
    nix::unistd::sethostname("sandbox").what(|| "sethostname".into())?;
    Ok(None)
}

/// no_new_privs: nothing the run executes gains privileges (setuid bits, file capabilities).
pub(crate) fn set_no_new_privs() -> Result<Option<String>, Error> {
    nix::sys::prctl::set_no_new_privs().what(|| "no_new_privs".into())?;
    Ok(None)
}

/// The root's skeleton at `root`: a tmpfs of the plan's size, mode 0755 and owned by root (nothing but root
/// can create anything in it), holding the plan's directories and symlinks; the binds go on top.
pub fn skeleton(r: &RootPlan, root: &str) -> Result<(), Error> {
    mnt(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("size={},mode=0755", r.root_bytes)),
    )?;
    for d in &r.dirs {
        ensure_dir(&format!("{root}{d}"))?;
    }
    for (target, link) in &r.symlinks {
        symlink(target, &format!("{root}{link}"))?;
    }
    Ok(())
}

/// Makes a bind's mount point: the directory, or an empty file (and its directory) for a file bind.
pub fn mount_point(dst: &str, is_dir: bool) -> Result<(), Error> {
    if is_dir {
        return ensure_dir(dst);
    }
    if let Some(parent) = Path::new(dst).parent() {
        ensure_dir(&parent.display().to_string())?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dst)
        .map(drop)
        .map_err(|e| Error::Check(format!("{dst}: {e}")))
}

/// Closes every descriptor from 3 up except `keep`.
pub fn close_all_but(keep: &[RawFd]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut low: u32 = 3;
    for k in keep {
        let k = k as u32;
        if k > low {
            close_range(low, k - 1);
        }
        low = low.max(k + 1);
    }
    close_range(low, u32::MAX);
}

/// Closes the descriptors `low..=high`. A kernel without `close_range` (gVisor's 2022 release answers
/// ENOSYS) gets one `close` per descriptor `/proc/self/fd` lists in the range: a `close` for every possible
/// descriptor instead costs seconds of CPU there (30-70 µs per system call), which a run's CPU limit then
/// counts. Without `/proc`, every descriptor below 65536 is closed, as Python's `os.closerange` does: a
/// descriptor left open here would reach user code.
fn close_range(low: u32, high: u32) {
    // SAFETY: close_range on descriptors this process owns and no longer needs; no Rust owner of them is
    // used afterwards (callers only keep `keep`).
    if unsafe { libc::close_range(low, high, 0) } == 0 {
        return;
    }
    close_listed(low, high);
}

/// `close_range` without the system call: closes what `/proc/self/fd` lists in `low..=high`, or without
/// `/proc` every descriptor in the range below 65536.
fn close_listed(low: u32, high: u32) {
    let in_range = |fd: &RawFd| u32::try_from(*fd).is_ok_and(|fd| (low..=high).contains(&fd));
    // Listed first and closed after: the listing's own descriptor is closed with the iterator, before any
    // `close` below (closing its number again is a harmless EBADF).
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|dir| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(in_range)
            .collect()
    });
    let all = || (low..=high.min(65_535)).map(|fd| fd as RawFd).collect();
    for fd in listed.unwrap_or_else(all) {
        // SAFETY: as above; closing a descriptor that is not open only returns EBADF.
        unsafe { libc::close(fd) };
    }
}

/// Links read-only files the daemon names (matplotlib's prebuilt font cache) into the run's fresh /tmp.
/// A link that cannot be made only makes the run build what it needs itself: slower, never wrong.
pub fn link_into_tmp(links: &[(String, String)]) {
    for (link, target) in links {
        if let Some(dir) = Path::new(link).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::os::unix::fs::symlink(target, link);
    }
}

/// A C string for a path or argument (an interior NUL is reported, not panicked on).
pub fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Check(format!("{s:?} contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_listed_in_proc_are_closed_without_close_range() {
        use std::os::fd::IntoRawFd;
        let fds: Vec<RawFd> = (0..3)
            .flat_map(|_| {
                let (r, w) = nix::unistd::pipe().unwrap();
                [r.into_raw_fd(), w.into_raw_fd()]
            })
            .collect();
        let (low, high) = (*fds.iter().min().unwrap(), *fds.iter().max().unwrap());
        let kept = fds[2];
        close_listed(low as u32, kept as u32 - 1);
        close_listed(kept as u32 + 1, high as u32);
        // SAFETY: F_GETFD only asks whether the number is open; nothing is read or closed through it.
        let open = |fd: RawFd| {
            nix::fcntl::fcntl(
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_GETFD,
            )
            .is_ok()
        };
        for fd in fds {
            assert_eq!(open(fd), fd == kept, "descriptor {fd}");
        }
        // SAFETY: the kept descriptor is this test's own.
        unsafe { libc::close(kept) };
    }
    use pretty_assertions::assert_eq;

    #[test]
    fn limits_are_only_ever_lowered() {
        const INF: u64 = libc::RLIM_INFINITY;
        // (limit asked, current hard limit, (soft, hard) set)
        let cases = [
            ((libc::RLIMIT_AS, 1 << 30, 1 << 30), INF, (1 << 30, 1 << 30)),
            ((libc::RLIMIT_AS, 1 << 30, 1 << 30), 1 << 20, (1 << 20, 1 << 20)),
            ((libc::RLIMIT_CPU, 3, 4), 100, (3, 4)),
            ((libc::RLIMIT_CPU, 3, 4), 2, (2, 2)),
            ((libc::RLIMIT_NOFILE, INF, INF), 1024, (1024, 1024)),
            ((libc::RLIMIT_MSGQUEUE, 0, 0), INF, (0, 0)),
        ];
        for (limit, current, expected) in cases {
            assert_eq!(lowered(limit, current), expected, "{limit:?} under {current}");
        }
    }

    #[test]
    fn unsettable_resources_are_named_in_the_detail() {
        // (resources left out, detail)
        let cases: [(&[u32], Option<&str>); 3] = [
            (&[], None),
            (
                &[libc::RLIMIT_MSGQUEUE],
                Some(
                    "all but RLIMIT_MSGQUEUE, which gVisor does not let change (its calls are refused by \
                     seccomp)",
                ),
            ),
            (
                &[libc::RLIMIT_MSGQUEUE, 99],
                Some(
                    "all but RLIMIT_MSGQUEUE, resource 99, which gVisor does not let change (its calls are \
                     refused by seccomp)",
                ),
            ),
        ];
        for (skipped, expected) in cases {
            assert_eq!(unsettable_detail(skipped).as_deref(), expected, "{skipped:?}");
        }
    }

    #[test]
    fn an_unsettable_resource_is_left_out_and_others_still_fail() {
        // Raising a hard limit above the current one is refused (EPERM without CAP_SYS_RESOURCE, EINVAL
        // for a soft above the hard); `lowered` never asks that, so an unsettable-but-lowerable resource
        // must be set normally. Lowering the test process's own RLIMIT_CORE to what it is changes nothing.
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into `cur`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut cur) }, 0);
        let same = (libc::RLIMIT_CORE, cur.rlim_cur, cur.rlim_max);
        // (limits, unsettable, set without a detail)
        let cases = [
            (vec![same], vec![], true),
            (vec![same], vec![libc::RLIMIT_CORE], true),
            // A resource the kernel does not know: getrlimit already fails (EINVAL), which is an error.
            (vec![(999, 0, 0)], vec![], false),
        ];
        for (limits, unsettable, ok) in cases {
            let got = set_rlimits(&limits, &unsettable);
            assert_eq!(
                got.as_ref().is_ok_and(Option::is_none),
                ok,
                "{limits:?} {unsettable:?}: {got:?}"
            );
        }
    }
}
