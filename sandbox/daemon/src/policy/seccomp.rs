//! The seccomp allowlist: which system calls sandboxed code may make, with argument checks where a
//! call is only safe in some forms (sockets, clone, ioctl, prctl).
//!
//! Everything not listed fails with `EPERM`. The table is pure data, compiled to BPF with
//! `seccompiler`; the zygote's child installs the programs just before the user's code runs.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

/// What the filter does with one system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed only for `AF_UNIX` (argument 0): no network sockets of any family.
    AllowUnixOnly,
    /// Allowed only without any `CLONE_NEW*` flag: no new namespaces from inside the sandbox.
    AllowNoNamespaces,
    /// Allowed except the terminal-injection requests (`TIOCSTI`, `TIOCLINUX`).
    AllowSafeIoctl,
    /// Allowed only for a short list of harmless options.
    AllowSafePrctl,
    /// Fails with `ENOSYS`, so that libc falls back to an older, filterable call (clone3 -> clone).
    NotImplemented,
}

/// All namespace-creating clone flags.
pub const CLONE_NEW_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64
    | 0x80; // CLONE_NEWTIME

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// prctl options user code may use: thread names, reading its own state, naming anonymous mappings.
pub const SAFE_PRCTL: &[u64] = &[
    libc::PR_SET_NAME as u64,
    libc::PR_GET_NAME as u64,
    libc::PR_GET_DUMPABLE as u64,
    libc::PR_GET_SECCOMP as u64,
    libc::PR_GET_NO_NEW_PRIVS as u64,
    libc::PR_CAPBSET_READ as u64,
    libc::PR_SET_PDEATHSIG as u64,
    libc::PR_GET_PDEATHSIG as u64,
    0x5356_4d41, // PR_SET_VMA (glibc names anonymous mappings)
];

/// The allowlist, x86_64 numbering.
#[cfg(target_arch = "x86_64")]
pub fn table() -> Vec<(&'static str, i64, Decision)> {
    use Decision::*;
    macro_rules! t {
        ($($name:ident => $d:expr),* $(,)?) => {
            vec![$((stringify!($name), libc::$name as i64, $d)),*]
        };
    }
    let mut v = t![
        // Files and descriptors.
        SYS_read => Allow, SYS_write => Allow, SYS_open => Allow, SYS_openat => Allow, SYS_openat2 => Allow,
        SYS_close => Allow, SYS_close_range => Allow, SYS_creat => Allow,
        SYS_stat => Allow, SYS_fstat => Allow, SYS_lstat => Allow, SYS_newfstatat => Allow, SYS_statx => Allow,
        SYS_statfs => Allow, SYS_fstatfs => Allow, SYS_lseek => Allow,
        SYS_pread64 => Allow, SYS_pwrite64 => Allow, SYS_readv => Allow, SYS_writev => Allow,
        SYS_preadv => Allow, SYS_pwritev => Allow, SYS_preadv2 => Allow, SYS_pwritev2 => Allow,
        SYS_access => Allow, SYS_faccessat => Allow, SYS_faccessat2 => Allow,
        SYS_pipe => Allow, SYS_pipe2 => Allow, SYS_dup => Allow, SYS_dup2 => Allow, SYS_dup3 => Allow,
        SYS_fcntl => Allow, SYS_flock => Allow, SYS_fsync => Allow, SYS_fdatasync => Allow,
        SYS_truncate => Allow, SYS_ftruncate => Allow, SYS_fallocate => Allow, SYS_fadvise64 => Allow,
        SYS_readahead => Allow, SYS_sendfile => Allow, SYS_copy_file_range => Allow,
        SYS_splice => Allow, SYS_tee => Allow,
        SYS_getdents => Allow, SYS_getdents64 => Allow, SYS_getcwd => Allow, SYS_chdir => Allow, SYS_fchdir => Allow,
        SYS_rename => Allow, SYS_renameat => Allow, SYS_renameat2 => Allow,
        SYS_mkdir => Allow, SYS_mkdirat => Allow, SYS_rmdir => Allow,
        SYS_link => Allow, SYS_linkat => Allow, SYS_unlink => Allow, SYS_unlinkat => Allow,
        SYS_symlink => Allow, SYS_symlinkat => Allow, SYS_readlink => Allow, SYS_readlinkat => Allow,
        SYS_chmod => Allow, SYS_fchmod => Allow, SYS_fchmodat => Allow, SYS_umask => Allow,
        SYS_utime => Allow, SYS_utimes => Allow, SYS_utimensat => Allow, SYS_futimesat => Allow,
        SYS_getxattr => Allow, SYS_lgetxattr => Allow, SYS_fgetxattr => Allow,
        SYS_listxattr => Allow, SYS_llistxattr => Allow, SYS_flistxattr => Allow,
        SYS_select => Allow, SYS_pselect6 => Allow, SYS_poll => Allow, SYS_ppoll => Allow,
        SYS_epoll_create => Allow, SYS_epoll_create1 => Allow, SYS_epoll_ctl => Allow,
        SYS_epoll_wait => Allow, SYS_epoll_pwait => Allow, SYS_epoll_pwait2 => Allow,
        SYS_eventfd => Allow, SYS_eventfd2 => Allow, SYS_signalfd => Allow, SYS_signalfd4 => Allow,
        SYS_timerfd_create => Allow, SYS_timerfd_settime => Allow, SYS_timerfd_gettime => Allow,
        SYS_inotify_init1 => Allow, SYS_inotify_add_watch => Allow, SYS_inotify_rm_watch => Allow,
        SYS_memfd_create => Allow, SYS_ioctl => AllowSafeIoctl,
        // Memory.
        SYS_brk => Allow, SYS_mmap => Allow, SYS_munmap => Allow, SYS_mremap => Allow, SYS_mprotect => Allow,
        SYS_msync => Allow, SYS_mincore => Allow, SYS_madvise => Allow, SYS_membarrier => Allow,
        // Processes, threads and signals (confined to the run's PID namespace).
        SYS_fork => Allow, SYS_vfork => Allow, SYS_clone => AllowNoNamespaces, SYS_clone3 => NotImplemented,
        SYS_execve => Allow, SYS_execveat => Allow, SYS_exit => Allow, SYS_exit_group => Allow,
        SYS_wait4 => Allow, SYS_waitid => Allow, SYS_kill => Allow, SYS_tkill => Allow, SYS_tgkill => Allow,
        SYS_rt_sigaction => Allow, SYS_rt_sigprocmask => Allow, SYS_rt_sigreturn => Allow,
        SYS_rt_sigpending => Allow, SYS_rt_sigtimedwait => Allow, SYS_rt_sigqueueinfo => Allow,
        SYS_rt_sigsuspend => Allow, SYS_sigaltstack => Allow, SYS_pause => Allow, SYS_restart_syscall => Allow,
        SYS_getpid => Allow, SYS_getppid => Allow, SYS_gettid => Allow, SYS_getpgrp => Allow, SYS_getpgid => Allow,
        SYS_setpgid => Allow, SYS_getsid => Allow, SYS_setsid => Allow,
        SYS_getuid => Allow, SYS_geteuid => Allow, SYS_getgid => Allow, SYS_getegid => Allow,
        SYS_getresuid => Allow, SYS_getresgid => Allow, SYS_getgroups => Allow,
        SYS_set_tid_address => Allow, SYS_set_robust_list => Allow, SYS_get_robust_list => Allow,
        SYS_futex => Allow, SYS_futex_waitv => Allow, SYS_rseq => Allow, SYS_arch_prctl => Allow,
        SYS_prctl => AllowSafePrctl,
        SYS_sched_yield => Allow, SYS_sched_getaffinity => Allow, SYS_sched_setaffinity => Allow,
        SYS_sched_getparam => Allow, SYS_sched_getscheduler => Allow,
        SYS_sched_get_priority_max => Allow, SYS_sched_get_priority_min => Allow, SYS_getpriority => Allow,
        SYS_getrlimit => Allow, SYS_prlimit64 => Allow, SYS_getrusage => Allow, SYS_getcpu => Allow,
        // Time.
        SYS_nanosleep => Allow, SYS_clock_nanosleep => Allow, SYS_clock_gettime => Allow,
        SYS_clock_getres => Allow, SYS_gettimeofday => Allow, SYS_time => Allow, SYS_times => Allow,
        SYS_getitimer => Allow, SYS_setitimer => Allow, SYS_alarm => Allow,
        SYS_timer_create => Allow, SYS_timer_settime => Allow, SYS_timer_gettime => Allow,
        SYS_timer_getoverrun => Allow, SYS_timer_delete => Allow,
        // System information and randomness.
        SYS_uname => Allow, SYS_sysinfo => Allow, SYS_getrandom => Allow,
        // Local IPC only: the run has its own IPC namespace, and sockets are AF_UNIX only.
        SYS_socket => AllowUnixOnly, SYS_socketpair => AllowUnixOnly,
        SYS_connect => Allow, SYS_accept => Allow, SYS_accept4 => Allow, SYS_bind => Allow, SYS_listen => Allow,
        SYS_sendto => Allow, SYS_recvfrom => Allow, SYS_sendmsg => Allow, SYS_recvmsg => Allow,
        SYS_sendmmsg => Allow, SYS_recvmmsg => Allow, SYS_shutdown => Allow,
        SYS_getsockname => Allow, SYS_getpeername => Allow, SYS_setsockopt => Allow, SYS_getsockopt => Allow,
        SYS_shmget => Allow, SYS_shmat => Allow, SYS_shmdt => Allow, SYS_shmctl => Allow,
        SYS_semget => Allow, SYS_semop => Allow, SYS_semctl => Allow, SYS_semtimedop => Allow,
    ];
    v.sort_by_key(|(_, nr, _)| *nr);
    v
}

#[cfg(not(target_arch = "x86_64"))]
pub fn table() -> Vec<(&'static str, i64, Decision)> {
    Vec::new()
}

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp allowlist is only written for x86_64 (this is {0})")]
    UnsupportedArch(&'static str),
    #[error("seccomp filter could not be compiled: {0}")]
    Compile(#[from] seccompiler::BackendError),
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SeccompError> {
    Ok(SeccompCondition::new(arg, len, op, value)?)
}

fn rules_for(d: Decision) -> Result<Vec<SeccompRule>, SeccompError> {
    use SeccompCmpArgLen::{Dword, Qword};
    Ok(match d {
        Decision::Allow | Decision::NotImplemented => vec![],
        Decision::AllowUnixOnly => {
            vec![SeccompRule::new(vec![cond(
                0,
                Dword,
                SeccompCmpOp::Eq,
                libc::AF_UNIX as u64,
            )?])?]
        }
        Decision::AllowNoNamespaces => {
            vec![SeccompRule::new(vec![cond(
                0,
                Qword,
                SeccompCmpOp::MaskedEq(CLONE_NEW_FLAGS),
                0,
            )?])?]
        }
        Decision::AllowSafeIoctl => vec![SeccompRule::new(vec![
            cond(1, Dword, SeccompCmpOp::Ne, TIOCSTI)?,
            cond(1, Dword, SeccompCmpOp::Ne, TIOCLINUX)?,
        ])?],
        Decision::AllowSafePrctl => SAFE_PRCTL
            .iter()
            .map(|opt| Ok(SeccompRule::new(vec![cond(0, Dword, SeccompCmpOp::Eq, *opt)?])?))
            .collect::<Result<_, SeccompError>>()?,
    })
}

fn target_arch() -> Result<seccompiler::TargetArch, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(seccompiler::TargetArch::x86_64)
    } else {
        Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
    }
}

/// Compiles the allowlist into the BPF programs to install, in order: a filter answering `ENOSYS` for
/// calls marked [`Decision::NotImplemented`], then the allowlist (everything else `EPERM`). A filter has
/// one match action, and the kernel applies the most restrictive answer of all installed filters; the
/// allowlist goes last because it forbids installing further filters.
pub fn compile() -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = target_arch()?;
    let table = table();
    let mut allow = BTreeMap::new();
    let mut enosys = BTreeMap::new();
    for (_, nr, d) in &table {
        allow.insert(*nr, rules_for(*d)?);
        if *d == Decision::NotImplemented {
            enosys.insert(*nr, vec![]);
        }
    }
    let allowlist = SeccompFilter::new(
        allow,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    let fallback = SeccompFilter::new(
        enosys,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(vec![fallback.try_into()?, allowlist.try_into()?])
}

/// A program as the hex string the zygote installs (`struct sock_filter` array, native byte order).
pub fn to_hex(prog: &BpfProgram) -> String {
    let mut s = String::with_capacity(prog.len() * 16);
    for ins in prog {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&ins.code.to_ne_bytes());
        b.push(ins.jt);
        b.push(ins.jf);
        b.extend_from_slice(&ins.k.to_ne_bytes());
        for byte in b {
            s.push_str(&format!("{byte:02x}"));
        }
    }
    s
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;

    /// A small classic-BPF interpreter, enough for what seccompiler emits, so the tests check the
    /// compiled programs rather than the table they came from.
    fn run(prog: &BpfProgram, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&(nr as u32).to_ne_bytes());
        data.extend_from_slice(&0xC000_003Eu32.to_ne_bytes()); // AUDIT_ARCH_X86_64
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = &prog[pc];
            let k = ins.k;
            match ins.code {
                0x20 => {
                    let o = k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                0x54 => acc &= k,
                0x06 => return k,
                0x05 => pc += k as usize,
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let hit = match ins.code {
                        0x15 => acc == k,
                        0x25 => acc > k,
                        0x35 => acc >= k,
                        _ => acc & k != 0,
                    };
                    pc += if hit { ins.jt as usize } else { ins.jf as usize };
                }
                other => panic!("unexpected BPF opcode {other:#x} at {pc}"),
            }
            pc += 1;
        }
    }

    /// The answer of the whole stack: the most restrictive of the programs (errno beats allow).
    fn verdict(nr: i64, args: [u64; 6]) -> String {
        let progs = compile().unwrap();
        let rets: Vec<u32> = progs.iter().map(|p| run(p, nr, args)).collect();
        let worst = rets
            .iter()
            .copied()
            .min_by_key(|r| if *r & 0xffff_0000 == RET_ALLOW { 1 } else { 0 })
            .unwrap();
        match worst & 0xffff_0000 {
            RET_ALLOW => "allow".to_string(),
            RET_ERRNO => format!("errno {}", worst & 0xffff),
            _ => format!("other {worst:#x}"),
        }
    }

    fn check(name: &str, nr: i64, args: [u64; 6], expected: &str) {
        assert_eq!(verdict(nr, args), expected, "{name} {args:?}");
    }

    #[test]
    fn compiled_filter_decisions() {
        let eperm = format!("errno {}", libc::EPERM);
        let enosys = format!("errno {}", libc::ENOSYS);
        let z = [0u64; 6];
        let cases: Vec<(&str, i64, [u64; 6], &str)> = vec![
            ("read", libc::SYS_read, z, "allow"),
            ("openat", libc::SYS_openat, z, "allow"),
            ("mmap", libc::SYS_mmap, z, "allow"),
            (
                "socket AF_UNIX",
                libc::SYS_socket,
                [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
                "allow",
            ),
            (
                "socket AF_INET",
                libc::SYS_socket,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socket AF_INET6",
                libc::SYS_socket,
                [libc::AF_INET6 as u64, 2, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socket AF_NETLINK",
                libc::SYS_socket,
                [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socket AF_PACKET",
                libc::SYS_socket,
                [libc::AF_PACKET as u64, 3, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socket AF_VSOCK",
                libc::SYS_socket,
                [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socket AF_UNIX|high bits",
                libc::SYS_socket,
                [(1u64 << 32) | 2, 1, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "socketpair AF_INET",
                libc::SYS_socketpair,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "clone fork-like",
                libc::SYS_clone,
                [libc::SIGCHLD as u64 | 0x0120_0000, 0, 0, 0, 0, 0],
                "allow",
            ),
            (
                "clone thread",
                libc::SYS_clone,
                [0x003d_0f00, 0, 0, 0, 0, 0],
                "allow",
            ),
            (
                "clone NEWUSER",
                libc::SYS_clone,
                [libc::CLONE_NEWUSER as u64 | 17, 0, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "clone NEWNET",
                libc::SYS_clone,
                [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0],
                &eperm,
            ),
            ("clone NEWTIME", libc::SYS_clone, [0x80, 0, 0, 0, 0, 0], &eperm),
            ("clone3", libc::SYS_clone3, z, &enosys),
            ("ioctl TCGETS", libc::SYS_ioctl, [1, 0x5401, 0, 0, 0, 0], "allow"),
            ("ioctl TIOCSTI", libc::SYS_ioctl, [0, TIOCSTI, 0, 0, 0, 0], &eperm),
            (
                "ioctl TIOCLINUX",
                libc::SYS_ioctl,
                [0, TIOCLINUX, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "prctl PR_SET_NAME",
                libc::SYS_prctl,
                [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0],
                "allow",
            ),
            (
                "prctl PR_SET_DUMPABLE",
                libc::SYS_prctl,
                [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0],
                &eperm,
            ),
            (
                "prctl PR_SET_SECCOMP",
                libc::SYS_prctl,
                [libc::PR_SET_SECCOMP as u64, 2, 0, 0, 0, 0],
                &eperm,
            ),
            ("ptrace", libc::SYS_ptrace, z, &eperm),
            ("process_vm_readv", libc::SYS_process_vm_readv, z, &eperm),
            ("mount", libc::SYS_mount, z, &eperm),
            ("umount2", libc::SYS_umount2, z, &eperm),
            ("pivot_root", libc::SYS_pivot_root, z, &eperm),
            ("chroot", libc::SYS_chroot, z, &eperm),
            ("unshare", libc::SYS_unshare, z, &eperm),
            ("setns", libc::SYS_setns, z, &eperm),
            ("bpf", libc::SYS_bpf, z, &eperm),
            ("keyctl", libc::SYS_keyctl, z, &eperm),
            ("add_key", libc::SYS_add_key, z, &eperm),
            ("perf_event_open", libc::SYS_perf_event_open, z, &eperm),
            ("io_uring_setup", libc::SYS_io_uring_setup, z, &eperm),
            ("io_uring_enter", libc::SYS_io_uring_enter, z, &eperm),
            ("userfaultfd", libc::SYS_userfaultfd, z, &eperm),
            ("setuid", libc::SYS_setuid, z, &eperm),
            ("setresuid", libc::SYS_setresuid, z, &eperm),
            ("setgroups", libc::SYS_setgroups, z, &eperm),
            ("chown", libc::SYS_chown, z, &eperm),
            ("mknod", libc::SYS_mknod, z, &eperm),
            ("init_module", libc::SYS_init_module, z, &eperm),
            ("kexec_load", libc::SYS_kexec_load, z, &eperm),
            ("reboot", libc::SYS_reboot, z, &eperm),
            ("open_by_handle_at", libc::SYS_open_by_handle_at, z, &eperm),
            ("fsopen", libc::SYS_fsopen, z, &eperm),
            ("move_mount", libc::SYS_move_mount, z, &eperm),
            (
                "landlock_create_ruleset",
                libc::SYS_landlock_create_ruleset,
                z,
                &eperm,
            ),
            ("x32 read", libc::SYS_read | 0x4000_0000, z, &eperm),
            ("unknown 1000", 1000, z, &eperm),
        ];
        for (name, nr, args, expected) in cases {
            check(name, nr, args, expected);
        }
    }

    #[test]
    fn table_has_no_duplicates_and_no_dangerous_calls() {
        let t = table();
        let mut nrs: Vec<i64> = t.iter().map(|(_, nr, _)| *nr).collect();
        nrs.dedup();
        assert_eq!(nrs.len(), t.len(), "duplicate syscall in the table");
        for bad in [
            "SYS_ptrace",
            "SYS_mount",
            "SYS_bpf",
            "SYS_unshare",
            "SYS_setns",
            "SYS_keyctl",
            "SYS_chroot",
        ] {
            assert!(t.iter().all(|(n, _, _)| *n != bad), "{bad} must not be allowed");
        }
    }

    #[test]
    fn hex_encoding_is_eight_bytes_per_instruction() {
        let progs = compile().unwrap();
        for p in &progs {
            assert_eq!(to_hex(p).len(), p.len() * 16);
        }
        assert_eq!(
            &to_hex(&progs[0])[..4],
            "2000",
            "first instruction loads the arch (BPF_LD|W|ABS)"
        );
    }
}
