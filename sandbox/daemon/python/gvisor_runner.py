"""Sluice gVisor session server: the process of a session's long-lived gVisor container.

The daemon starts `runsc run` with this script as the container's process, once per session (lazily at the
session's first run). argv[1] is the server's configuration (JSON: the run root's plan, the run environment),
argv[2:] the preload modules. It imports them once, says Ready and then serves framed requests on stdin and
writes framed events on stdout (stderr is diagnostics the daemon logs). Frames are a little-endian header,
`HEADER` (payload length, kind, run id), then the payload; `sandbox/daemon/src/gvisor/wire.rs` is the typed
Rust side of the same format.

Per run the server forks; the child unshares PID, IPC and UTS namespaces and forks the run's PID 1, which
- builds a root of its own under /tmp/.runs (a read-only bind of the container's skeleton root, the
  installation's binds, /dev and /sys as the container has them, the session's /workspace, a fresh
  size-limited /tmp, a /proc of the run's PID namespace) and enters it with chroot (this gVisor does not
  separate mount namespaces and has no pivot_root),
- lowers the rlimits to the run's, empties every capability set and sets no_new_privs,
- and runs the code in this already-initialised interpreter.
The run is uid 0 of gVisor's kernel with no capabilities, as the per-run container's process was. When its
PID 1 exits (or on Kill) the whole PID namespace dies: nothing a run started survives it. The server reaps PID 1,
drains the run's output, sends Exit and takes the run's mounts down.

The server runs as root of gVisor's kernel with the capabilities the bundle grants it (mount, chroot,
setpcap, kill): gVisor-kernel capabilities that never reach the host, and that every run drops. Nothing a run
can reach holds the server's stdin or stdout: a run cannot forge frames for another run.
"""

import builtins
import ctypes
import json
import os
import resource
import select
import signal
import struct
import sys
import traceback
import types

HEADER = struct.Struct("<IBQ")
EXIT_PAYLOAD = struct.Struct("<BiQ")
SETUP_LEN = struct.Struct("<I")
KIND_RUN = 1
KIND_KILL = 2
KIND_READY = 10
KIND_STARTED = 11
KIND_STDOUT = 12
KIND_STDERR = 13
KIND_EXIT = 15
KIND_FAILED = 16

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MNT_DETACH = 2
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_CAPGET = 125
SYS_CAPSET = 126

RUNS = "/tmp/.runs"

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.unshare.argtypes = [ctypes.c_int]
libc.syscall.restype = ctypes.c_long


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send(kind, run_id, payload=b""):
    write_all(1, HEADER.pack(len(payload), kind, run_id) + payload)


def log(text):
    try:
        os.write(2, f"sluice gvisor server: {text}\n".encode())
    except OSError:
        pass


# --- a run's PID 1 -------------------------------------------------------------------------------------------

def mounts_of(cfg, root):
    """Where a run's root gets its mounts, in mount order: (source, target, kind, writable)."""
    out = [("/", root, "bind", False)]
    for b in cfg["binds"]:
        out.append((b["dst"], root + b["dst"], "bind", b["writable"]))
    for top in ("/dev", "/sys"):
        out.append((top, root + top, "bind", False))
    out.append(("/workspace", root + "/workspace", "bind", True))
    out.append(("tmpfs", root + "/tmp", "tmpfs", True))
    out.append(("proc", root + "/proc", "proc", False))
    return out


def build_root(cfg, root):
    os.mkdir(root, 0o700)
    for src, dst, kind, writable in mounts_of(cfg, root):
        if kind == "bind":
            # The skeleton root and the installation are read-only mounts of the container: a bind keeps that.
            mount(src, dst, None, MS_BIND | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY))
        elif kind == "tmpfs":
            # This gVisor's tmpfs takes no nr_inodes: only the size bounds it.
            mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmp_bytes']},mode=1777")
        else:
            # A /proc of the run's own PID namespace (this process is its PID 1).
            mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    check(libc.chroot(b"."), "chroot")
    os.chdir("/")


def set_rlimits(limits):
    for res, soft, hard in limits:
        # Only ever lower. A limit already at its value is left alone: gVisor answers EPERM for
        # RLIMIT_MSGQUEUE (0, 0) -> (0, 0).
        current = resource.getrlimit(res)
        if current[1] != resource.RLIM_INFINITY:
            hard = min(hard, current[1])
        if (min(soft, hard), hard) != current:
            resource.setrlimit(res, (min(soft, hard), hard))


def drop_caps():
    """Empties the bounding, ambient, effective, permitted and inheritable sets, and checks they are empty."""
    cap = 0
    while libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0:
        check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop bounding cap {cap}")
        cap += 1
    # gVisor has no ambient set (EINVAL): nothing to clear then.
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = CapHeader(0x20080522, 0)
    check(libc.syscall(SYS_CAPSET, ctypes.byref(hdr), ctypes.byref((CapData * 2)())), "capset")
    left = (CapData * 2)()
    check(libc.syscall(SYS_CAPGET, ctypes.byref(hdr), ctypes.byref(left)), "capget")
    if any(d.effective or d.permitted or d.inheritable for d in left) or libc.prctl(PR_CAPBSET_READ, 0, 0, 0, 0):
        raise OSError(0, "capabilities still present after dropping them")


def run_init(cfg, setup, code, out_w, err_w, status_w, root):
    """PID 1 of the run's PID namespace: builds the run's root, drops every privilege, runs the code."""
    try:
        # No parent-death signal: the intermediate parent exits at once. Should the server die, the
        # container (whose init it is) dies, and every run with it.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDONLY)
        # Nothing of the server's stays open: not its stdin and stdout, nor other runs' pipes.
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        low = 3
        for keep in sorted((status_w,)):
            os.closerange(low, keep)
            low = keep + 1
        os.closerange(low, 65536)
        build_root(cfg, root)
        set_rlimits(setup["rlimits"])
        drop_caps()
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.environ.clear()
        os.environ.update(cfg["env"])
        for link, target in setup["links"]:
            # Read-only files the daemon names (matplotlib's prebuilt font cache), linked into the fresh /tmp.
            try:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(target, link)
            except OSError:
                pass
        os.chdir("/workspace")
        os.write(status_w, b"ok\n")
        os.close(status_w)
    except BaseException as exc:  # noqa: BLE001 - reported as the run's set-up failure
        try:
            os.write(status_w, f"error {exc}\n".replace("\n", " ").encode() + b"\n")
        except OSError:
            pass
        os._exit(70)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # ctypes keeps the last saved errno per thread: the code starts with none of the set-up's.
    ctypes.set_errno(0)
    run_user_code(code)


def run_user_code(code):
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
    except BaseException as exc:  # noqa: BLE001 - the user's error is their output
        # The first frame is this server; the user only needs their own frames.
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(rc)


# --- the server ----------------------------------------------------------------------------------------------

class Run:
    def __init__(self, run_id):
        self.id = run_id
        self.pid = None
        self.root = f"{RUNS}/{run_id}"
        self.pipes = {}  # read end -> event kind
        self.status_fd = None
        self.status_buf = b""
        self.failed = False
        self.ended = None  # (how, value, maxrss)


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.runs = {}  # run id -> Run
        self.by_fd = {}  # read end -> Run
        self.by_pid = {}  # PID 1 -> Run

    def start(self, run_id, payload):
        run = Run(run_id)
        try:
            (n,) = SETUP_LEN.unpack_from(payload)
            setup = json.loads(payload[4:4 + n])
            code = payload[4 + n:]
        except (ValueError, struct.error) as exc:
            send(KIND_FAILED, run_id, f"malformed run request: {exc}".encode())
            return
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        pid_r, pid_w = os.pipe()
        try:
            child = os.fork()
        except OSError as exc:
            for fd in (out_r, out_w, err_r, err_w, status_r, status_w, pid_r, pid_w):
                os.close(fd)
            send(KIND_FAILED, run_id, f"fork: {exc}".encode())
            return
        if child == 0:
            # The intermediate child: new namespaces for the run, then its PID 1; the server adopts PID 1.
            try:
                check(libc.unshare(CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare run namespaces")
                pid1 = os.fork()
                if pid1 == 0:
                    run_init(self.cfg, setup, code, out_w, err_w, status_w, run.root)
                os.write(pid_w, f"pid {pid1}\n".encode())
            except BaseException as exc:  # noqa: BLE001
                os.write(pid_w, f"error {exc}\n".replace("\n", " ").encode() + b"\n")
            os._exit(0)
        for fd in (out_w, err_w, status_w, pid_w):
            os.close(fd)
        # The intermediate child says PID 1's pid (in this namespace) and exits at once.
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(pid_r, 64)
            if not chunk:
                break
            line += chunk
        os.close(pid_r)
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass
        word, _, rest = line.decode(errors="replace").strip().partition(" ")
        self.runs[run_id] = run
        run.pipes = {out_r: KIND_STDOUT, err_r: KIND_STDERR}
        run.status_fd = status_r
        for fd in (out_r, err_r, status_r):
            self.by_fd[fd] = run
        if word == "pid":
            run.pid = int(rest)
            self.by_pid[run.pid] = run
        else:
            run.failed = True
            run.ended = (0, 70, 0)
            send(KIND_FAILED, run_id, (rest or "the run's namespaces could not be made").encode())

    def kill(self, run_id):
        run = self.runs.get(run_id)
        # PID 1 is not reaped before its Exit is sent, so this pid is still the run's.
        if run is not None and run.pid is not None and run.ended is None:
            try:
                os.kill(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def readable(self, fd):
        run = self.by_fd[fd]
        if fd == run.status_fd:
            chunk = os.read(fd, 4096)
            run.status_buf += chunk
            if not chunk:
                self.close_fd(run, fd)
            while b"\n" in run.status_buf:
                line, _, run.status_buf = run.status_buf.partition(b"\n")
                word, _, rest = line.decode(errors="replace").partition(" ")
                if word == "ok":
                    send(KIND_STARTED, run.id)
                elif not run.failed:
                    run.failed = True
                    send(KIND_FAILED, run.id, (rest or line.decode(errors="replace")).encode())
        else:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                send(run.pipes[fd], run.id, chunk)
            else:
                self.close_fd(run, fd)
        self.maybe_done(run)

    def close_fd(self, run, fd):
        os.close(fd)
        del self.by_fd[fd]
        run.pipes.pop(fd, None)
        if fd == run.status_fd:
            run.status_fd = None

    def reap(self):
        while True:
            try:
                pid, wstatus, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            run = self.by_pid.pop(pid, None)
            if run is None:
                continue  # An intermediate child, reaped here before the server's own waitpid.
            if os.WIFSIGNALED(wstatus):
                run.ended = (1, os.WTERMSIG(wstatus), rusage.ru_maxrss)
            else:
                run.ended = (0, os.WEXITSTATUS(wstatus), rusage.ru_maxrss)
            self.maybe_done(run)

    def maybe_done(self, run):
        # Every process of the run is gone once PID 1 is reaped, so the pipes reach their end too.
        if run.ended is None or run.pipes or run.status_fd is not None:
            return
        if not run.failed:
            send(KIND_EXIT, run.id, EXIT_PAYLOAD.pack(*run.ended))
        del self.runs[run.id]
        self.take_down(run)

    def take_down(self, run):
        """Detaches the run's mounts (innermost first) and removes its empty mount point."""
        if not os.path.isdir(run.root):
            return
        for _, target, _, _ in reversed(mounts_of(self.cfg, run.root)):
            libc.umount2(target.encode(), MNT_DETACH)
        try:
            os.rmdir(run.root)
        except OSError as exc:
            log(f"could not remove {run.root}: {exc}")

    def stop(self):
        for run in self.runs.values():
            self.kill(run.id)


def main():
    cfg = json.loads(sys.argv[1])
    for name in sys.argv[2:]:
        __import__(name)
    # Runs' PID 1s are adopted by the server when their intermediate child exits (it is the container's init
    # too; the subreaper flag makes that explicit).
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    os.makedirs(RUNS, mode=0o700, exist_ok=True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    server = Server(cfg)
    send(KIND_READY, 0, sys.version.split()[0].encode())
    buf = b""
    while True:
        ready, _, _ = select.select([0, wake_r, *server.by_fd], [], [])
        for fd in ready:
            if fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                server.reap()
            elif fd == 0:
                chunk = os.read(0, 1 << 20)
                if not chunk:
                    # The daemon let go of the session: end every run, then the container.
                    server.stop()
                    os._exit(0)
                buf += chunk
                while len(buf) >= HEADER.size:
                    length, kind, run_id = HEADER.unpack_from(buf)
                    if len(buf) < HEADER.size + length:
                        break
                    payload = buf[HEADER.size:HEADER.size + length]
                    buf = buf[HEADER.size + length:]
                    if kind == KIND_RUN:
                        server.start(run_id, payload)
                    elif kind == KIND_KILL:
                        server.kill(run_id)
                    else:
                        log(f"unknown request kind {kind}")
            elif fd in server.by_fd:
                server.readable(fd)
        server.reap()


main()
