"""Sluice sandbox zygote: a pre-initialised python3 that forks one isolated child per request.

The daemon (Rust) starts this script once, with a SOCK_SEQPACKET control socket as fd 0, and sends it a
`config` message holding the isolation policy it computed (mounts, landlock rules, seccomp BPF, rlimits).
Every later message asks for a fork: `session` (create a session's user + mount namespace and its size-limited
workspace tmpfs; on the native backend also the session's launcher) or `gvisor` (the session's one gVisor
container, started by `runsc run` inside the session's namespaces; its process is the session server,
`gvisor_runner.py`, which forks the session's runs inside it). A native session's jails come from its
launcher: a process that lives in the session's namespaces as PID 1 of the session's own PID namespace, and on
each `prepare` message forks one jail's PID 1 into a fresh PID namespace (one fork per run, instead of a fork
from the zygote, `setns` into the session, and a second fork). The policy is decided and unit-tested in Rust;
this file only applies it, step by step, in the child, before any user code runs.

Invariants this file keeps:
- The zygote never reads user code or data: code arrives in a memfd that only the forked child reads, and
  output goes through pipes straight to the daemon. A child that scans its inherited memory finds nothing
  from other sessions.
- The zygote stays single-threaded (checked after the preload imports); unshare(CLONE_NEWUSER) and fork
  safety depend on it.
- Anything the untrusted code could touch (the report fd) carries only self-reported, informational data.
  The process the daemon kills on timeout comes from a trusted process (the launcher's pidfd, gVisor's
  intermediate child's pid), never from user code.
"""

import builtins
import ctypes
import errno
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
import traceback
import types

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SYS_PIVOT_ROOT = 155
SYS_CAPGET = 125
SYS_CAPSET = 126
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

O_PATH = 0o10000000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

# fork(2) without the interpreter's at-fork hooks, for the zygote's own children. os.fork() runs every
# callback registered with os.register_at_fork in the child (threading's and random's re-initialisation,
# when site or a preload imported them), python code whose writes copy pages of the zygote's heap.
# The zygote's children never run user code: the jail's PID 1 is forked from them with os.fork(), which
# runs the hooks there, where the user's code needs them. PyDLL keeps the GIL held across the call, so the
# child continues exactly as the (single-threaded) zygote was.
_pyc = ctypes.PyDLL(None, use_errno=True)
_pyc.fork.restype = ctypes.c_int
_pyc.fork.argtypes = []


def raw_fork():
    pid = _pyc.fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return pid


class StepError(Exception):
    """A protection step failed; the message names the step and the errno."""


def _check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise StepError(f"{what}: {os.strerror(err)} (errno {err})")
    return ret


def _b(path):
    return path.encode() if isinstance(path, str) else path


def mount(src, target, fstype, flags, data=None):
    _check(libc.mount(_b(src) if src else None, _b(target), _b(fstype) if fstype else None, flags,
                      _b(data) if data else None), f"mount {target}")


def prctl(option, a2=0, a3=0, a4=0, a5=0, what="prctl"):
    return _check(libc.prctl(option, a2, a3, a4, a5), what)


class LandlockRulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class LandlockPathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def write_line(fd, text):
    """Writes one status line; a daemon that went away must not crash the child."""
    try:
        os.write(fd, (text.replace("\n", " ") + "\n").encode())
    except OSError:
        pass


def write_file(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# --- session: a user + mount namespace holding a size-limited tmpfs workspace, and its launcher ------------------

def session_child(cfg, req, fds):
    status, hold = fds[0], fds[1]
    ctl = fds[2] if len(fds) > 2 else None
    launcher_pid = None
    try:
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare user+mount namespace")
        write_file("/proc/self/setgroups", "deny")
        write_file("/proc/self/uid_map", f"{cfg['uid_inside']} {cfg['uid_outside']} 1")
        write_file("/proc/self/gid_map", f"{cfg['gid_inside']} {cfg['gid_outside']} 1")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        opts = f"size={req['workspace_bytes']},nr_inodes={req['workspace_inodes']},mode=0700," \
               f"uid={cfg['uid_inside']},gid={cfg['gid_inside']}"
        mount("tmpfs", cfg["workspace_mountpoint"], "tmpfs", MS_NOSUID | MS_NODEV, opts)
        if ctl is not None:
            # The launcher is PID 1 of a PID namespace the session's user namespace owns: only there may it
            # move its children's PID namespace back to its own after each jail (setns needs CAP_SYS_ADMIN
            # over the target namespace's owner).
            _check(libc.unshare(CLONE_NEWPID), "unshare session PID namespace")
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            launcher_pid = raw_fork()
            if launcher_pid == 0:
                try:
                    os.close(status)
                    os.close(hold)
                    launcher(cfg, ctl)
                finally:
                    os._exit(0)
            os.close(ctl)
        write_line(status, f"ready {os.getpid()}")
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the daemon verbatim
        write_line(status, f"error session: {exc}")
        os._exit(1)
    # Stay alive until the daemon has opened our namespaces (it closes `hold` when done).
    os.close(status)
    try:
        os.read(hold, 1)
    except OSError:
        pass
    if launcher_pid is not None:
        # The launcher dies with this process (its parent-death signal), so this one stays until the launcher
        # is done: the daemon closed the session's control socket, or the zygote went away.
        try:
            os.waitpid(launcher_pid, 0)
        except OSError:
            pass
    os._exit(0)


def launcher(cfg, ctl_fd):
    """Forks the session's jails: one PID 1 per `prepare` message, each in a fresh PID namespace.

    Trusted code that never runs user code. It reports each jail's exit status on that jail's status pipe, and
    hands the daemon a pidfd of each jail's PID 1 (the pid it sees here is in the session's PID namespace, not
    the daemon's). When the daemon closes the control socket the launcher exits, and as PID 1 of the session's
    PID namespace it takes every jail of the session with it.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    ctl = socket.socket(fileno=ctl_fd)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    poller = select.poll()
    poller.register(ctl_fd, select.POLLIN)
    jails = {}  # pidfd -> (pid, status fd)
    fresh = True  # children would still be born in the launcher's own PID namespace
    root = None  # the session's jail root: (True, description) once built, (False, why) if that failed
    while True:
        for fd, _ in poller.poll():
            if fd != ctl_fd:
                pid, status = jails.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, wstatus, rusage = os.wait4(pid, 0)
                report_exit(status, wstatus, rusage)
                os.close(status)
                continue
            try:
                msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 4)
            except OSError:
                msg, fds = b"", []
            if not msg:
                os._exit(0)  # The session is closed: every jail dies with this PID namespace's init.
            req = json.loads(msg)
            status, go = fds
            if root is None and (req["probe"] or "minimal_root" not in req["skip"]):
                # Built on the first jail that needs it, so a degraded daemon that skips the minimal root
                # never mounts it. Each jail's new mount namespace starts as a copy of this one.
                try:
                    root = (True, build_session_root(cfg))
                except Exception as exc:  # noqa: BLE001 - reported by every jail that needs the root
                    root = (False, str(exc))
            try:
                if not fresh:
                    _check(libc.setns(own_pidns, CLONE_NEWPID), "setns launcher PID namespace")
                fresh = False
                _check(libc.unshare(CLONE_NEWPID), "unshare run PID namespace")
                pid = os.fork()
            except Exception as exc:  # noqa: BLE001
                write_line(status, f"error setup: {exc}")
                os.close(status)
                os.close(go)
                continue
            if pid == 0:
                try:
                    jail_init(cfg, req, status, go, root)
                finally:
                    os._exit(71)
            try:
                pidfd = os.pidfd_open(pid)
                with socket.socket(fileno=os.dup(go)) as go_sock:
                    socket.send_fds(go_sock, [b"pidfd"], [pidfd])
            except OSError as exc:
                write_line(status, f"error setup: pidfd: {exc}")
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(status)
                os.close(go)
                continue
            os.close(go)
            write_line(status, "child")
            jails[pidfd] = (pid, status)
            poller.register(pidfd, select.POLLIN)


def report_exit(status, wstatus, rusage):
    if os.WIFSIGNALED(wstatus):
        write_line(status, f"exit signal {os.WTERMSIG(wstatus)} {rusage.ru_maxrss}")
    else:
        write_line(status, f"exit code {os.WEXITSTATUS(wstatus)} {rusage.ru_maxrss}")


def jail_init(cfg, req, status, go, root):
    """The freshly forked PID 1 of a run: leaves the launcher's other namespaces and descriptors, then jails itself."""
    try:
        # Nothing of the launcher's stays open here: not its control socket, nor other jails' pipes and pidfds.
        low = 3
        for keep in sorted((status, go)):
            os.closerange(low, keep)
            low = keep + 1
        os.closerange(low, 65536)
        _check(libc.unshare(req["unshare_flags"] & ~CLONE_NEWPID), "unshare run namespaces")
    except Exception as exc:  # noqa: BLE001
        write_line(status, f"error setup: {exc}")
        os._exit(1)
    jail(cfg, req, status, go, root)


class Applied:
    """Records each protection step: in a probe every step is tried and reported; in a run a failed step
    that was not explicitly skipped (degraded mode) aborts before user code runs."""

    def __init__(self, skip, probe):
        self.skip = set(skip)
        self.probe = probe
        self.results = {}

    def step(self, name, fn):
        if name in self.skip and not self.probe:
            self.results[name] = "skipped"
            return None
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001
            self.results[name] = f"failed: {exc}"
            if not self.probe and name not in self.skip:
                raise StepError(f"{name}: {exc}") from exc
            return None
        self.results[name] = f"ok: {value}" if isinstance(value, str) else "ok"
        return value


def ensure_dir(path):
    # os.makedirs(exist_ok=True) on an existing directory raises and catches FileExistsError; checking
    # first gives the same result without building an exception in every jail.
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)


def build_session_root(cfg):
    """Builds the jails' root once per session, in the session's mount namespace (the launcher's).

    A read-only tmpfs skeleton with read-only binds of the Python installation, the session's workspace
    read-write, and empty mount points for `/tmp` and `/proc`. Every jail's mount namespace starts as a copy
    of it, so a run adds only its own `/tmp` and `/proc` and pivots into it (`enter_root`), instead of
    making every mount again. Nothing but the launcher and the jails lives in this mount namespace.
    """
    root = cfg["jail"]
    r = cfg["root"]
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={r['root_bytes']},mode=0755")
    for d in r["dirs"]:
        ensure_dir(root + d)
    for target, link in r["symlinks"]:
        os.symlink(target, root + link)
    for b in r["binds"]:
        dst = root + b["dst"]
        if b["is_dir"]:
            ensure_dir(dst)
        else:
            ensure_dir(os.path.dirname(dst))
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644))
        mount(b["src"], dst, None, MS_BIND | (MS_REC if b["recursive"] else 0))
        # A bind mount inherits the source's flags; remounting keeps the locked ones (atime, nosuid, ...)
        # that the Rust side read from statvfs, and adds read-only where asked.
        mount(None, dst, None, MS_BIND | MS_REMOUNT | b["remount_flags"])
    ws = root + "/workspace"
    ensure_dir(ws)
    mount(cfg["workspace_mountpoint"], ws, None, MS_BIND)
    for target, link in r["dev_symlinks"]:
        os.symlink(target, root + link)
    # The skeleton tmpfs itself becomes read-only: only /workspace and each run's /tmp are writable.
    mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return f"read-only root with {len(r['binds'])} read-only binds, /workspace, tmpfs /tmp, fresh /proc"


def enter_root(cfg, req, root_built):
    """Makes the session's root this run's `/`: a private `/tmp` and `/proc` on it, then `pivot_root`."""
    built, detail = root_built or (False, "not built")
    if not built:
        raise StepError(f"the session's root could not be built: {detail}")
    root = cfg["jail"]
    r = cfg["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={r['tmp_bytes']},nr_inodes={r['tmp_inodes']},mode=1777")
    if req["unshare_flags"] & CLONE_NEWPID:
        # A fresh /proc shows only this run's PID namespace. It must be mounted while the host's /proc is
        # still visible in this mount namespace (the kernel refuses a proc mount that reveals more).
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach old root")
    os.chdir("/")
    return detail


def drop_caps(last):
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap, what=f"drop bounding cap {cap}")
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="clear ambient caps")
    hdr = CapHeader(0x20080522, 0)
    data = (CapData * 2)()
    _check(libc.syscall(SYS_CAPSET, ctypes.byref(hdr), ctypes.byref(data)), "capset")
    check = (CapData * 2)()
    _check(libc.syscall(SYS_CAPGET, ctypes.byref(hdr), ctypes.byref(check)), "capget")
    left = [(d.effective, d.permitted, d.inheritable) for d in check]
    if any(any(v) for v in left) or prctl(PR_CAPBSET_READ, last, what="read bounding set") != 0:
        raise StepError(f"capabilities still present: {left}")
    return None


def apply_landlock(ll):
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    _check(abi, "landlock not available")
    if abi < ll["min_abi"]:
        raise StepError(f"landlock ABI {abi} < required {ll['min_abi']}")
    attr = LandlockRulesetAttr(ll["handled_fs"], ll["handled_net"], ll["scoped"])
    rfd = _check(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                              ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for rule in ll["rules"]:
            try:
                pfd = os.open(rule["path"], O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                pb = LandlockPathBeneathAttr(rule["access"], pfd)
                _check(libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(rfd), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                    ctypes.byref(pb), ctypes.c_uint32(0)), f"landlock_add_rule {rule['path']}")
            finally:
                os.close(pfd)
        _check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(rfd), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(rfd)
    return f"abi {abi}"


def seccomp_programs(programs):
    """Decodes the programs once, in the zygote: every jail then installs the same buffers."""
    out = []
    for bpf_hex in programs:
        raw = bytes.fromhex(bpf_hex)
        buf = ctypes.create_string_buffer(raw, len(raw))
        out.append((buf, SockFprog(len(raw) // 8, ctypes.cast(buf, ctypes.c_void_p))))
    return out


def apply_seccomp(programs):
    if not programs:
        raise StepError("no seccomp program was compiled for this architecture")
    total = 0
    for _buf, prog in programs:
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), what="seccomp filter")
        total += prog.len
    return f"{len(programs)} programs, {total} instructions"


# Resources gVisor's kernel refuses to change at all (EPERM even when lowering): RLIMIT_MSGQUEUE. It bounds
# POSIX message queues, whose calls the seccomp allowlist refuses anyway. Filled in from the config.
UNSETTABLE_RLIMITS = set()


def set_rlimits(limits):
    # Only ever lowers: a hard limit already below the policy's (the container's own, inside gVisor) stays,
    # as raising it would need CAP_SYS_RESOURCE.
    skipped = []
    for res, soft, hard in limits:
        current = resource.getrlimit(res)[1]
        if current != resource.RLIM_INFINITY:
            hard = min(hard, current)
        try:
            resource.setrlimit(res, (min(soft, hard), hard))
        except (ValueError, OSError):
            if res not in UNSETTABLE_RLIMITS:
                raise
            skipped.append(res)
    if skipped:
        return "all but RLIMIT_MSGQUEUE, which gVisor does not let change (its calls are refused by seccomp)"
    return None


def jail(cfg, req, status, go, root):
    """PID 1 of the run's PID namespace: builds the jail around itself, waits for the code, runs it."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
        applied = Applied(req["skip"], req["probe"])
        applied.step("minimal_root", lambda: enter_root(cfg, req, root))
        applied.step("uts_namespace", set_hostname)
        # Hard limits at the configured maxima now (raising them later needs a capability we drop);
        # each run lowers them to what it asked for.
        applied.step("rlimits", lambda: set_rlimits(cfg["rlimits_max"]))
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.setsid()
        applied.step("no_new_privs", lambda: prctl(PR_SET_NO_NEW_PRIVS, 1, what="no_new_privs"))
        applied.step("capabilities_dropped", lambda: drop_caps(cfg["cap_last_cap"]))
        applied.step("landlock", lambda: apply_landlock(cfg["landlock"]))
        applied.step("seccomp", lambda: apply_seccomp(cfg["seccomp_programs"]))
        if req["probe"]:
            write_line(status, "probe " + json.dumps(applied.results, sort_keys=True))
        write_line(status, "ready")
        os.close(status)
    except Exception as exc:  # noqa: BLE001
        write_line(status, f"error setup: {exc}")
        os._exit(70)
    wait_and_run(cfg, go)


def link_into_tmp(links):
    """Links read-only files the daemon names (matplotlib's prebuilt font cache) into the run's fresh /tmp."""
    for link, target in links:
        try:
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(target, link)
        except OSError:
            pass  # The run then builds what it needs itself: slower, never wrong.


def wait_and_run(cfg, go):
    """The locked-down jail's last trusted step: waits for the run, then becomes the user's code."""
    # Locked down; wait for the run. Still trusted code: nothing of the user's has run yet.
    msg, fds, _, _ = socket.recv_fds(socket.socket(fileno=go), 1 << 16, 8)
    if not msg or len(fds) != 4:
        os._exit(0)
    run = json.loads(msg)
    code_fd, out_w, err_w, report = fds
    code = b""
    while True:
        chunk = os.pread(code_fd, 1 << 20, len(code))
        if not chunk:
            break
        code += chunk
    set_rlimits(run["rlimits"])
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.set_inheritable(report, False)
    # From here on only the user's code runs; nothing below may trust it. Every descriptor but the
    # standard ones and the report pipe is closed (the go socket, the code memfd, anything inherited).
    os.closerange(3, report)
    os.closerange(report + 1, 65536)
    os.environ.clear()
    os.environ.update(cfg["env"])
    link_into_tmp(run.get("links", ()))
    os.chdir("/workspace")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_user_code(code, report)


# --- gvisor: the same session namespaces, but the jail is a gVisor container started by runsc ------------

def gvisor_child(cfg, req, fds):
    """Starts a session's gVisor container; its process is the session server (`gvisor_runner.py`).

    This intermediate child stays outside the container and reports the pid of `runsc run` (PID 1 of the
    PID namespace it made) and its exit status. Killing that PID 1 takes runsc's sandbox, gofer and every
    stub process with it: they all live in this PID namespace.
    """
    userns, mntns, status, stdin_r, out_w, err_w = fds
    g = cfg["gvisor"]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
        _check(libc.setns(userns, CLONE_NEWUSER), "setns user namespace")
        _check(libc.setns(mntns, CLONE_NEWNS), "setns mount namespace")
        os.close(userns)
        os.close(mntns)
        _check(libc.unshare(req["unshare_flags"]), "unshare run namespaces")
    except Exception as exc:  # noqa: BLE001
        write_line(status, f"error setup: {exc}")
        os._exit(1)
    write_line(status, f"pid {os.getpid()}")
    gpid = os.fork()
    if gpid == 0:
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            # runsc reads /proc/<pid> of the processes it starts: it needs a /proc of this PID namespace.
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            # A private state directory per container: nothing of it outlives the run's mount namespace.
            mount("tmpfs", g["state"], "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700")
            for fd, target in ((stdin_r, 0), (out_w, 1), (err_w, 2)):
                os.dup2(fd, target)
            os.closerange(3, 65536)
            os.execv(g["runsc"], g["argv"] + [f"sluice-{req['seq']}"])
        except BaseException as exc:  # noqa: BLE001
            write_line(status, f"error runsc: {exc}")
        os._exit(70)
    write_line(status, f"child {gpid}")
    for fd in (stdin_r, out_w, err_w):
        os.close(fd)
    _, wstatus, rusage = os.wait4(gpid, 0)
    maxrss = rusage.ru_maxrss
    if os.WIFSIGNALED(wstatus):
        write_line(status, f"exit signal {os.WTERMSIG(wstatus)} {maxrss}")
    else:
        write_line(status, f"exit code {os.WEXITSTATUS(wstatus)} {maxrss}")
    os._exit(0)


# --- inside a gVisor container: the daemon is root of gVisor's kernel, the container is the outer wall ---------

def inside_child(cfg, req, fds):
    """One run's jail when the daemon itself runs inside a gVisor container (`--backend gvisor-container`).

    This trusted intermediate child unshares a PID namespace and forks the run's PID 1 into it, reports that
    pid (the daemon's PID namespace is this one: there is no pidfd_open in gVisor, so the daemon kills by pid)
    and its exit status, and does not reap it until the daemon closes `hold`: until then the pid stays the
    run's, alive or a zombie, so a kill by pid can never hit another process. Then it takes the run's mounts
    down: gVisor (the 2022 release at least) accepts unshare(CLONE_NEWNS) but does not separate mounts, so a
    run's mounts are visible to the whole container and must not outlive it.
    """
    status, go, hold = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    root = f"{cfg['jail']}/{req['seq']}-{os.getpid()}"
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
        os.mkdir(root, 0o755)
        _check(libc.unshare(CLONE_NEWPID), "unshare run PID namespace")
        pid = os.fork()
    except Exception as exc:  # noqa: BLE001
        write_line(status, f"error setup: {exc}")
        os._exit(1)
    if pid == 0:
        try:
            os.close(hold)
            low = 3
            for keep in sorted((status, go)):
                os.closerange(low, keep)
                low = keep + 1
            os.closerange(low, 65536)
            _check(libc.unshare(req["unshare_flags"] & ~CLONE_NEWPID), "unshare run namespaces")
        except Exception as exc:  # noqa: BLE001
            write_line(status, f"error setup: {exc}")
            os._exit(1)
        try:
            inside_jail(cfg, req, status, go, root)
        finally:
            os._exit(71)
    os.close(go)
    write_line(status, f"child {pid}")
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        if info.si_code == os.CLD_EXITED:
            write_line(status, f"exit code {info.si_status} 0")
        else:
            write_line(status, f"exit signal {info.si_status} 0")
    except OSError as exc:
        write_line(status, f"error wait: {exc}")
    os.close(status)
    try:
        os.read(hold, 1)  # Returns when the daemon has let go of the pid (closed its end).
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass
    unmount_run_root(root)
    os._exit(0)


def unmount_run_root(root):
    """Detaches every mount of the run's root (innermost first) and removes the empty mount point.

    Never removes files: the session's workspace is bound below the root, and only empty directories go."""
    mounts = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4]
                if point == root or point.startswith(root + "/"):
                    mounts.append(point)
    except OSError:
        pass
    for point in sorted(set(mounts), key=len, reverse=True):
        libc.umount2(_b(point), MNT_DETACH)
    for _ in range(8):  # A mount stacked on another needs one detach per layer.
        if libc.umount2(_b(root), MNT_DETACH) != 0:
            break
    try:
        os.rmdir(root)
    except OSError as exc:
        print(f"sluice zygote: could not remove {root}: {exc}", file=sys.stderr)


def can_write(path, is_dir):
    """Tries a write (still root here): gVisor's statvfs does not report a read-only mount's flag."""
    try:
        if is_dir:
            probe = path + "/.sluice-read-only-check"
            os.mkdir(probe)
            os.rmdir(probe)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK))
        return True
    except OSError as exc:
        return exc.errno != errno.EROFS


def build_run_root(cfg, req, root):
    """The run's own root: a tmpfs skeleton with the installation bound read-only, the session's workspace,
    a size-limited /tmp and a /proc of the run's PID namespace. Everything is mounted at the run's own path
    (see `inside_child` for why not in a mount namespace of its own) and entered with chroot (gVisor has no
    pivot_root here)."""
    r = cfg["root"]
    # 0755 and owned by root: the code (an unprivileged uid) cannot create anything in it.
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={r['root_bytes']},mode=0755")
    for d in r["dirs"]:
        ensure_dir(root + d)
    for target, link in r["symlinks"]:
        os.symlink(target, root + link)
    writable = []
    for b in r["binds"]:
        dst = root + b["dst"]
        if b["is_dir"]:
            ensure_dir(dst)
        else:
            ensure_dir(os.path.dirname(dst))
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644))
        # One call: this gVisor refuses MS_REC and bind remounts; it keeps the source's read-only state.
        ro = 0 if b["writable"] else MS_RDONLY
        mount(b["src"], dst, None, MS_BIND | ro | (b["remount_flags"] & (MS_NOSUID | MS_NODEV)))
        if not b["writable"] and can_write(dst, b["is_dir"]):
            writable.append(b["dst"])
    if writable:
        # gVisor ignores MS_RDONLY on a bind: the installation is read-only only when the container's root
        # file system is (docker-compose.yml's `read_only: true`). Fail closed otherwise.
        raise StepError(f"read-only binds are writable here: {writable} (run the container with a read-only "
                        "root file system)")
    mount(req["workspace"], root + "/workspace", None, MS_BIND | MS_NOSUID | MS_NODEV)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={r['tmp_bytes']},mode=1777")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for target, link in r["dev_symlinks"]:
        os.symlink(target, root + link)
    os.chdir(root)
    _check(libc.chroot(b"."), "chroot")
    os.chdir("/")
    return (f"own root per run (tmpfs, {len(r['binds'])} binds of the read-only installation, /workspace, "
            "tmpfs /tmp, /proc of the run), entered with chroot")


def drop_bounding_caps():
    """Empties the bounding and ambient sets (gVisor has no /proc/sys/kernel/cap_last_cap: stop at the first
    capability its kernel does not know)."""
    cap = 0
    while libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0:
        prctl(PR_CAPBSET_DROP, cap, what=f"drop bounding cap {cap}")
        cap += 1
    if cap < 32:
        raise StepError(f"only {cap} capabilities known to the kernel")
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0:
        if ctypes.get_errno() != errno.EINVAL:
            _check(-1, "clear ambient caps")
        # gVisor has no ambient set (EINVAL): nothing to clear. The uid change then empties the others.
    return f"bounding set ({cap} capabilities) emptied; the change to the session's uid empties the rest"


def become_session_uid(uid, gid):
    """Switches every uid and gid to the session's own (never root), and checks no capability is left."""
    if uid == 0 or gid == 0:
        raise StepError("refusing to run code as uid or gid 0")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise StepError(f"uids {os.getresuid()} gids {os.getresgid()} groups {os.getgroups()}")
    hdr = CapHeader(0x20080522, 0)
    check = (CapData * 2)()
    _check(libc.syscall(SYS_CAPGET, ctypes.byref(hdr), ctypes.byref(check)), "capget")
    left = [(d.effective, d.permitted, d.inheritable) for d in check]
    if any(any(v) for v in left):
        raise StepError(f"capabilities still present after the uid change: {left}")
    return f"uid {uid}, gid {gid}, no supplementary groups, no capabilities"


def check_pid_namespace():
    pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
    if os.getpid() != 1 or pids != ["1"]:
        raise StepError(f"pid {os.getpid()}, /proc shows {pids}")
    return "PID 1 of its own namespace; /proc shows only the run's processes"


def check_network_namespace():
    names = sorted(name for _, name in socket.if_nameindex())
    if names not in ([], ["lo"]):
        raise StepError(f"interfaces {names}")
    return f"interfaces {names} only"


def inside_jail(cfg, req, status, go, root):
    """PID 1 of the run (inside gVisor): builds its root, drops to the session's uid, waits for the code."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
        applied = Applied(req["skip"], req["probe"])
        applied.step("minimal_root", lambda: build_run_root(cfg, req, root))
        applied.step("uts_namespace", set_hostname)
        applied.step("rlimits", lambda: set_rlimits(cfg["rlimits_max"]))
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.setsid()
        applied.step("capabilities_dropped", drop_bounding_caps)
        # Never skipped, not even in degraded mode: code never runs as root.
        applied.results["session_uid"] = "ok: " + become_session_uid(req["uid"], req["gid"])
        applied.step("no_new_privs", lambda: prctl(PR_SET_NO_NEW_PRIVS, 1, what="no_new_privs"))
        if req["probe"]:
            # Checked from inside (before seccomp, which refuses the netlink socket if_nameindex needs).
            applied.step("pid_namespace", check_pid_namespace)
            applied.step("network_namespace", check_network_namespace)
        applied.step("seccomp", lambda: apply_seccomp(cfg["seccomp_programs"]))
        if req["probe"]:
            write_line(status, "probe " + json.dumps(applied.results, sort_keys=True))
        write_line(status, "ready")
        os.close(status)
    except Exception as exc:  # noqa: BLE001
        write_line(status, f"error setup: {exc}")
        os._exit(70)
    wait_and_run(cfg, go)


def set_hostname():
    _check(libc.sethostname(b"sandbox", 7), "sethostname")


def print_user_traceback(exc):
    # The first frame is this runner; the user only needs their own frames.
    traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)


def run_user_code(code, report):
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv = ["<sandbox>"]
    sys.path.insert(0, "/workspace")
    rc = 0
    try:
        exec(compile(code, "<sandbox>", "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            rc = 0
        elif isinstance(exc.code, int):
            rc = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            rc = 1
    except MemoryError as exc:
        write_line(report, "limit memory")
        print_user_traceback(exc)
        rc = 1
    except BaseException as exc:  # noqa: BLE001 - the user's error is their output
        print_user_traceback(exc)
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    # Closing the output and saying "done" lets the daemon answer without waiting for the kernel to tear
    # down this run's namespaces (several ms); it kills the PID namespace right after. The report is
    # self-declared: lying in it only misreports this run's own exit code.
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass  # The code closed it itself.
    write_line(report, f"done {rc}")
    os._exit(rc)


# --- the zygote loop ------------------------------------------------------------------------------------------

def main():
    ctl = socket.socket(fileno=0)
    msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 0)
    cfg = json.loads(msg)
    if cfg.get("op") != "config":
        sys.exit("zygote: expected a config message first")
    cfg["seccomp_programs"] = seccomp_programs(cfg["seccomp_bpf"])
    if cfg.get("inside_gvisor"):
        UNSETTABLE_RLIMITS.add(resource.RLIMIT_MSGQUEUE)
    for name in cfg["preload"]:
        __import__(name)
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        sys.exit(f"zygote: {threads} threads after preloading {cfg['preload']}; a forking zygote must be "
                 "single-threaded (set the module's thread count to one or import it lazily)")
    # Objects that exist now are never collected in a child: without this the first GC pass in every child
    # touches (and so copies) every page of the interpreter's heap.
    gc.freeze()
    # Children are reaped by the kernel; the daemon learns exit statuses from the launchers and gVisor's
    # intermediate children, which wait for the runs they started.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    ctl.sendall(json.dumps({"ready": True, "python": sys.version.split()[0], "pid": os.getpid()}).encode())
    while True:
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 16)
        if not msg:
            return  # The daemon is gone; children die through their parent-death signal.
        req = json.loads(msg)
        try:
            pid = raw_fork()
        except OSError as exc:
            if fds:
                write_line(fds[0] if req["op"] in ("session", "inside") else fds[2], f"error fork: {exc}")
            pid = -1
        if pid == 0:
            try:
                ctl.close()
                if req["op"] == "session":
                    session_child(cfg, req, fds)
                elif req["op"] == "gvisor":
                    gvisor_child(cfg, req, fds)
                elif req["op"] == "inside":
                    inside_child(cfg, req, fds)
            finally:
                os._exit(71)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
