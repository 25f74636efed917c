//! The seccomp allowlist: which system calls sandboxed code may make, with argument checks where a
//! call is only safe in some forms (sockets, clone, ioctl, prctl).
//!
//! Everything not listed fails with `EPERM`. The table is pure data, compiled to BPF with
//! `seccompiler`; the zygote's child installs the programs just before the user's code runs.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    sock_filter,
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
    #[error("seccomp filter could not be laid out: {0}")]
    Layout(String),
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
///
/// Each program finds the system call by a binary search ([`dispatched`]) rather than seccompiler's
/// linear chain: the decisions are the same (a test compares both programs on every call number), but
/// the kernel emulates a new filter for every call number when it is installed, to build its
/// always-allowed cache, and a linear chain of ~250 calls made that the costliest step of a jail's set-up.
pub fn compile() -> Result<Vec<BpfProgram>, SeccompError> {
    let (allow, enosys) = split_table()?;
    Ok(vec![
        dispatched(
            enosys,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?,
        dispatched(
            allow,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
        )?,
    ])
}

type RuleMap = BTreeMap<i64, Vec<SeccompRule>>;

/// The allowlist's rules, and the calls answered with `ENOSYS`.
fn split_table() -> Result<(RuleMap, RuleMap), SeccompError> {
    let mut allow = BTreeMap::new();
    let mut enosys = BTreeMap::new();
    for (_, nr, d) in &table() {
        allow.insert(*nr, rules_for(*d)?);
        if *d == Decision::NotImplemented {
            enosys.insert(*nr, vec![]);
        }
    }
    Ok((allow, enosys))
}

/// seccompiler's own (linear) programs for the same table: the reference the tests compare against.
#[cfg(test)]
fn compile_linear() -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = target_arch()?;
    let (allow, enosys) = split_table()?;
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

const BPF_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JGT_K: u16 = 0x25;
const BPF_RET_K: u16 = 0x06;
/// Instructions of seccompiler's prologue: load the arch, check it (else kill), load the call number.
const PROLOGUE: usize = 4;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Where a jump of the search tree leads.
#[derive(Clone, Copy)]
enum Target {
    /// The shared `return mismatch` (a call that is not in the table).
    Mismatch,
    /// The shared `return match` (a call in the table without argument checks).
    Match,
    /// The argument checks of the n-th call with rules.
    Block(usize),
}

/// One filter as seccompiler would build it, but dispatching on the call number with a binary search.
///
/// Layout: seccompiler's prologue (arch check, load the number), the search tree (`jge` nodes; each leaf
/// checks its number, or range of numbers, and jumps to its code or to the mismatch), `return mismatch`,
/// `return match`,
/// then for each call with argument rules seccompiler's own code for a filter holding only that call
/// (copied verbatim after its prologue: it starts by comparing the number again, which holds there, and
/// every path in it ends in a return). The tree only jumps, so the accumulator still holds the number.
fn dispatched(
    rules: RuleMap,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let arch = target_arch()?;
    let single = |nr: i64, r: Vec<SeccompRule>| -> Result<BpfProgram, SeccompError> {
        Ok(
            SeccompFilter::new(BTreeMap::from([(nr, r)]), mismatch.clone(), matched.clone(), arch)?
                .try_into()?,
        )
    };
    // Every filter seccompiler builds starts with the same prologue; take it from a one-call filter.
    let head = |p: &BpfProgram| -> Result<BpfProgram, SeccompError> {
        p.get(..PROLOGUE)
            .map(<[sock_filter]>::to_vec)
            .ok_or_else(|| SeccompError::Layout("seccompiler's prologue changed".into()))
    };
    let prologue = head(&single(0, vec![])?)?;
    // Consecutive numbers without argument checks share one range leaf (x86_64 numbers many of the
    // allowed calls consecutively), which keeps the program short: the kernel converts and JIT-compiles
    // every instruction at each install.
    let mut keys: Vec<(u32, u32, Target)> = Vec::new();
    let mut blocks: Vec<BpfProgram> = Vec::new();
    for (nr, r) in rules {
        let k = u32::try_from(nr).map_err(|_| SeccompError::Layout(format!("call number {nr}")))?;
        if r.is_empty() {
            match keys.last_mut() {
                Some((_, hi, Target::Match)) if *hi + 1 == k => *hi = k,
                _ => keys.push((k, k, Target::Match)),
            }
        } else {
            let p = single(nr, r)?;
            if head(&p)? != prologue {
                return Err(SeccompError::Layout("seccompiler's prologue changed".into()));
            }
            keys.push((k, k, Target::Block(blocks.len())));
            blocks.push(p[PROLOGUE..].to_vec());
        }
    }
    let mut prog = prologue;
    let mut fixups: Vec<(usize, Target)> = Vec::new();
    tree(&keys, &mut prog, &mut fixups);
    let mismatch_at = prog.len();
    prog.push(ins(BPF_RET_K, 0, 0, u32::from(mismatch)));
    let match_at = prog.len();
    prog.push(ins(BPF_RET_K, 0, 0, u32::from(matched)));
    let mut block_at = Vec::with_capacity(blocks.len());
    for b in blocks {
        block_at.push(prog.len());
        prog.extend(b);
    }
    for (at, target) in fixups {
        let to = match target {
            Target::Mismatch => mismatch_at,
            Target::Match => match_at,
            Target::Block(i) => block_at[i],
        };
        prog[at].k = u32::try_from(to - at - 1).map_err(|_| SeccompError::Layout("jump too far".into()))?;
    }
    // The kernel's limit (BPF_MAXINSNS).
    if prog.len() > 4096 {
        return Err(SeccompError::Layout(format!("{} instructions", prog.len())));
    }
    Ok(prog)
}

/// Emits the search over `keys` (sorted, disjoint ranges `lo..=hi`): at a node, numbers at or above the
/// middle range's start jump to the right half, the others fall through to the left half; a leaf checks
/// both bounds of its range itself.
fn tree(keys: &[(u32, u32, Target)], prog: &mut BpfProgram, fixups: &mut Vec<(usize, Target)>) {
    match keys {
        [] => {
            fixups.push((prog.len(), Target::Mismatch));
            prog.push(ins(BPF_JA, 0, 0, 0));
        }
        [(lo, hi, target)] => {
            if lo == hi {
                prog.push(ins(BPF_JEQ_K, 0, 1, *lo));
            } else {
                // Below the range, or above it: to the mismatch.
                prog.push(ins(BPF_JGE_K, 0, 2, *lo));
                prog.push(ins(BPF_JGT_K, 1, 0, *hi));
            }
            fixups.push((prog.len(), *target));
            prog.push(ins(BPF_JA, 0, 0, 0));
            fixups.push((prog.len(), Target::Mismatch));
            prog.push(ins(BPF_JA, 0, 0, 0));
        }
        _ => {
            let mid = keys.len() / 2;
            prog.push(ins(BPF_JGE_K, 0, 1, keys[mid].0));
            let jump_right = prog.len();
            prog.push(ins(BPF_JA, 0, 0, 0));
            tree(&keys[..mid], prog, fixups);
            prog[jump_right].k = (prog.len() - jump_right - 1) as u32;
            tree(&keys[mid..], prog, fixups);
        }
    }
}

/// A program as the typed instructions the zygote's jails install with `seccompiler`.
pub fn to_instructions(prog: &BpfProgram) -> Vec<sluice_sandbox_jail::BpfInstruction> {
    prog.iter().map(Into::into).collect()
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
        run_arch(prog, 0xC000_003E, nr, args) // AUDIT_ARCH_X86_64
    }

    fn run_arch(prog: &BpfProgram, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&(nr as u32).to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
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

    /// The binary-search programs answer exactly as seccompiler's linear ones: every call number up to
    /// 1024 (and x32, out-of-range and foreign-arch variants), with argument values on both sides of
    /// every check (each socket family, each namespace flag, the ioctl and prctl lists, high words set).
    #[test]
    fn dispatched_programs_answer_as_the_linear_ones() {
        let (fast, linear) = (compile().unwrap(), compile_linear().unwrap());
        assert_eq!(fast.len(), linear.len());
        // Shorter too: less for the kernel to check and JIT-compile at every install.
        assert!(
            fast[1].len() * 2 < linear[1].len(),
            "{} vs {}",
            fast[1].len(),
            linear[1].len()
        );
        let mut values: Vec<u64> = vec![0, 1, 2, 17, u32::MAX as u64, u64::MAX, 1 << 32, (1 << 32) | 1];
        values.extend((0..64).map(|b| 1u64 << b));
        values.extend((0..46).map(|f| f as u64)); // socket families
        values.extend([
            TIOCSTI,
            TIOCLINUX,
            TIOCSTI | (1 << 32),
            TIOCLINUX | (1 << 40),
            0x5401,
        ]);
        values.extend(SAFE_PRCTL.iter().flat_map(|o| [*o, *o | (1 << 32), *o + 1]));
        values.extend((0..80).map(|o| o as u64)); // prctl options
        values.extend([0x0120_0011, 0x003d_0f00, CLONE_NEW_FLAGS, CLONE_NEW_FLAGS | 0x11]);
        let mut nrs: Vec<i64> = (0..1024).collect();
        nrs.extend((0..512).map(|n| n | 0x4000_0000));
        nrs.extend([u32::MAX as i64, 0x7fff_ffff, 0x8000_0000]);
        let mut checked = 0u64;
        for (f, l) in fast.iter().zip(&linear) {
            for &nr in &nrs {
                for (i, &v) in values.iter().enumerate() {
                    // The value in one argument slot at a time, and a neighbour in another.
                    for slot in 0..2 {
                        let mut args = [0u64; 6];
                        args[slot] = v;
                        args[1 - slot] = values[(i * 7 + 3) % values.len()];
                        assert_eq!(run(f, nr, args), run(l, nr, args), "call {nr} args {args:?}");
                        checked += 1;
                    }
                }
                for arch in [0x4000_0003u32, 0xC000_00B7, 0] {
                    assert_eq!(run_arch(f, arch, nr, [0; 6]), run_arch(l, arch, nr, [0; 6]));
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    /// What the change is for: the kernel emulates a new filter for every call number when it installs
    /// it; a binary search takes a few dozen instructions where the linear chain took hundreds.
    #[test]
    fn dispatch_takes_few_instructions_per_call() {
        fn steps(prog: &BpfProgram, nr: u32) -> usize {
            let mut pc = 4;
            let mut n = 0;
            loop {
                n += 1;
                let i = &prog[pc];
                match i.code {
                    0x06 | 0x20 => return n, // a return, or an argument load (the emulation stops)
                    0x05 => pc += i.k as usize + 1,
                    0x15 => pc += 1 + if nr == i.k { i.jt } else { i.jf } as usize,
                    0x35 => pc += 1 + if nr >= i.k { i.jt } else { i.jf } as usize,
                    0x25 => pc += 1 + if nr > i.k { i.jt } else { i.jf } as usize,
                    other => panic!("unexpected {other:#x}"),
                }
            }
        }
        let (fast, linear) = (compile().unwrap(), compile_linear().unwrap());
        let total = |p: &BpfProgram| (0..450u32).map(|nr| steps(p, nr)).sum::<usize>();
        let (f, l) = (total(&fast[1]), total(&linear[1]));
        assert!(f * 5 < l, "binary search {f} vs linear {l} emulated instructions");
        assert!(f < 450 * 30, "{f}");
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
    fn programs_become_the_jails_typed_instructions() {
        for p in &compile().unwrap() {
            let typed = to_instructions(p);
            assert_eq!(typed.len(), p.len());
        }
        // BPF_LD | BPF_W | BPF_ABS: the first instruction loads the architecture.
        assert_eq!(to_instructions(&compile().unwrap()[0])[0].code, 0x20);
    }
}
