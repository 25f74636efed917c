"""Sluice gVisor session server: the process of a session's long-lived gVisor container.

The daemon starts `runsc run` with this script as the container's process, once per session (lazily at the
session's first run). argv[1] is the server's configuration (JSON: the run root's plan, the run environment),
argv[2:] the preload modules. It imports them once, says Ready and then serves framed requests on stdin and
writes framed events on stdout (stderr is diagnostics the daemon logs). Frames are a little-endian header,
`HEADER` (payload length, kind, run id), then the payload; `sandbox/daemon/src/gvisor/wire.rs` is the typed
Rust side of the same format.

The server keeps two runs' PID 1s cloned ahead (one clone(2) each into fresh PID, IPC and UTS namespaces, see
`clone_run`). Each such PID 1
- builds a root of its own under /tmp/.runs (a read-only bind of the container's skeleton root, the
  installation's binds, /dev and /sys as the container has them, the session's /workspace, a fresh
  size-limited /tmp, a /proc of the run's PID namespace) and enters it with chroot (this gVisor does not
  separate mount namespaces and has no pivot_root),
- empties every capability set, sets no_new_privs and waits for its run on a pipe;
- given a run, lowers the rlimits to the run's and runs the code in this already-initialised interpreter.
The run is uid 0 of gVisor's kernel with no capabilities, as the per-run container's process was. When its
PID 1 exits (or on Kill) the whole PID namespace dies: nothing a run started survives it. The server reaps PID 1,
drains the run's output, sends Exit and takes the run's mounts down.

The server runs as root of gVisor's kernel with the capabilities the bundle grants it (mount, chroot,
setpcap): gVisor-kernel capabilities that never reach the host, and that every run drops. Nothing a run
can reach holds the server's stdin or stdout: a run cannot forge frames for another run.
"""

import builtins
import ctypes
import gc
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
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_CAPGET = 125
SYS_CAPSET = 126

RUNS = "/tmp/.runs"
# PID 1s kept cloned ahead: two, so that back-to-back runs find one whose set-up is done (a clone and its
# set-up take longer than a short run under the ptrace platform).
READY_PID1S = 2

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


# One process, no intermediate: clone(2) with the run's namespaces makes the child PID 1 of a fresh PID
# namespace (and gives it IPC and UTS namespaces of its own) in one step, where unshare + fork would need a
# second fork. Each fork costs milliseconds under the ptrace platform. Python's own fork bookkeeping is done
# around the raw system call as os.fork() does it (PyOS_BeforeFork / AfterFork_*); PyDLL holds the GIL.
_py = ctypes.pythonapi
_pyc = ctypes.PyDLL(None, use_errno=True)
_pyc.syscall.restype = ctypes.c_long
SYS_CLONE = 56
RUN_CLONE_FLAGS = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | signal.SIGCHLD


def clone_run():
    _py.PyOS_BeforeFork()
    pid = _pyc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(RUN_CLONE_FLAGS), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if pid == 0:
        _py.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _py.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return pid


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


def cap_sets():
    """(CapBnd, CapEff, CapPrm, CapInh) from the run's own /proc: one file read instead of a prctl per
    capability (each system call is a round trip through the ptrace platform)."""
    with open("/proc/self/status", "rb") as f:
        fields = dict(line.split(b":\t", 1) for line in f.read().splitlines() if b":\t" in line)
    return tuple(int(fields[k], 16) for k in (b"CapBnd", b"CapEff", b"CapPrm", b"CapInh"))


def drop_caps():
    """Empties the bounding, ambient, effective, permitted and inheritable sets, and checks they are empty."""
    bounding = cap_sets()[0]
    for cap in range(64):
        if bounding >> cap & 1:
            check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop bounding cap {cap}")
    # gVisor has no ambient set (EINVAL): nothing to clear then.
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = CapHeader(0x20080522, 0)
    check(libc.syscall(SYS_CAPSET, ctypes.byref(hdr), ctypes.byref((CapData * 2)())), "capset")
    left = cap_sets()
    if any(left):
        raise OSError(0, f"capabilities still present after dropping them: {left}")


def parse_run(payload):
    """A Run request's payload: the set-up's JSON length, the set-up (rlimits, tmp links), the code."""
    (n,) = SETUP_LEN.unpack_from(payload)
    return json.loads(payload[4:4 + n]), payload[4 + n:]


def write_status(fd, word, text=""):
    try:
        os.write(fd, f"{word} {text}".replace("\n", " ").encode() + b"\n")
    except OSError:
        pass


def run_init(cfg, go_r, out_w, err_w, status_w, root):
    """PID 1 of a run's PID namespace, cloned ahead of its run: builds the run's root and drops every privilege,
    then waits for the run on `go_r`, lowers the rlimits to the run's and runs the code."""
    try:
        # No parent-death signal needed: should the server die, the container (whose init it is) dies, and
        # every run with it.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDONLY)
        # Nothing of the server's stays open: not its stdin and stdout, nor other runs' pipes.
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        low = 3
        for keep in sorted((go_r, status_w)):
            os.closerange(low, keep)
            low = keep + 1
        os.closerange(low, 65536)
        build_root(cfg, root)
        drop_caps()
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.environ.clear()
        os.environ.update(cfg["env"])
        os.chdir("/workspace")
    except BaseException as exc:  # noqa: BLE001 - reported as the set-up failure of the run it is given
        write_status(status_w, "error", str(exc))
        os._exit(70)
    # Locked down; still trusted code until the run's code starts.
    chunks = []
    while True:
        chunk = os.read(go_r, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(go_r)
    if not chunks:
        os._exit(0)  # The server let this PID 1 go without a run (the container is stopping).
    try:
        setup, code = parse_run(b"".join(chunks))
        del chunks
        set_rlimits(setup["rlimits"])
        for link, target in setup["links"]:
            # Read-only files the daemon names (matplotlib's prebuilt font cache), linked into the fresh /tmp.
            try:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(target, link)
            except OSError:
                pass
        write_status(status_w, "ok")
        os.close(status_w)
    except BaseException as exc:  # noqa: BLE001
        write_status(status_w, "error", str(exc))
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
    def __init__(self, seq):
        self.id = None  # set when a Run request is given to this PID 1
        self.pid = None
        self.root = f"{RUNS}/{seq}"
        self.go_fd = None  # where the run's request is written
        self.pipes = {}  # read end -> event kind
        self.status_fd = None
        self.status_buf = b""
        self.error = None  # why the set-up failed
        self.ended = None  # (how, value, maxrss)


class Server:
    """Keeps READY_PID1S PID 1s cloned and locked down ahead of the next runs (a clone costs the most under
    the ptrace platform); gives each Run request to the oldest and clones the next while that run runs.
    The clone blocks this loop for its duration (milliseconds): the run it overlaps relays its Exit after it."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.seq = 0
        self.ready = []  # PID 1s of the next runs, cloned and locked down, waiting
        self.runs = {}  # run id -> Run
        self.by_fd = {}  # read end -> Run
        self.by_pid = {}  # PID 1 -> Run
        self.finished = []  # runs whose mounts are still to be taken down

    def prepare(self):
        self.seq += 1
        run = Run(self.seq)
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        # Objects that exist now are never collected in the run: without this its first collection touches
        # (and so copies, one page fault through the ptrace platform at a time) every page of the heap.
        gc.freeze()
        try:
            pid = clone_run()
        except OSError as exc:
            for fd in (go_r, go_w, out_r, out_w, err_r, err_w, status_r, status_w):
                os.close(fd)
            log(f"clone: {exc}")
            return None
        if pid == 0:
            run_init(self.cfg, go_r, out_w, err_w, status_w, run.root)
        for fd in (go_r, out_w, err_w, status_w):
            os.close(fd)
        run.pid = pid
        run.go_fd = go_w
        run.pipes = {out_r: KIND_STDOUT, err_r: KIND_STDERR}
        run.status_fd = status_r
        self.by_pid[pid] = run
        for fd in (out_r, err_r, status_r):
            self.by_fd[fd] = run
        return run

    def refill(self):
        while len(self.ready) < READY_PID1S:
            run = self.prepare()
            if run is None:
                return
            self.ready.append(run)

    def start(self, run_id, payload):
        run = self.ready.pop(0) if self.ready else self.prepare()
        if run is None:
            send(KIND_FAILED, run_id, b"the run's process could not be cloned (see the sandbox log)")
            return
        run.id = run_id
        self.runs[run_id] = run
        if run.error is not None:
            send(KIND_FAILED, run_id, run.error.encode())
        try:
            write_all(run.go_fd, payload)
        except OSError:
            pass  # PID 1 died before its run: its exit is reported as the run's.
        os.close(run.go_fd)
        run.go_fd = None
        # The server blocks while it clones (10-25 ms here), and a run's Exit waits for it: with another PID 1
        # still ready, the next is cloned once no run is under way; with none, now, while this run runs.
        if not self.ready:
            self.refill()
        self.maybe_done(run)

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
                if word == "ok" and run.id is not None:
                    send(KIND_STARTED, run.id)
                elif word == "error" and run.error is None:
                    run.error = rest
                    if run.id is not None:
                        send(KIND_FAILED, run.id, rest.encode())
        else:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.close_fd(run, fd)
            elif run.id is not None:
                send(run.pipes[fd], run.id, chunk)
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
                continue
            if os.WIFSIGNALED(wstatus):
                run.ended = (1, os.WTERMSIG(wstatus), rusage.ru_maxrss)
            else:
                run.ended = (0, os.WEXITSTATUS(wstatus), rusage.ru_maxrss)
            self.maybe_done(run)

    def maybe_done(self, run):
        # Every process of the run is gone once PID 1 is reaped, so the pipes reach their end too.
        if run.ended is None or run.pipes or run.status_fd is not None:
            return
        if run.id is None:
            # A PID 1 that died before it was given a run; the next run gets a new one.
            if run in self.ready:
                self.ready.remove(run)
                log(f"a prepared run process ended before its run: {run.error or run.ended}")
            os.close(run.go_fd)
            run.go_fd = None
        else:
            if run.error is None:
                send(KIND_EXIT, run.id, EXIT_PAYLOAD.pack(*run.ended))
            del self.runs[run.id]
        # Taken down once nothing else waits: a request that arrived meanwhile goes first.
        self.finished.append(run)

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
        for run in list(self.runs.values()) + self.ready:
            if run.pid is not None and run.ended is None:
                try:
                    os.kill(run.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def main():
    cfg = json.loads(sys.argv[1])
    for name in sys.argv[2:]:
        __import__(name)
    os.makedirs(RUNS, mode=0o700, exist_ok=True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    server = Server(cfg)
    server.refill()
    send(KIND_READY, 0, sys.version.split()[0].encode())
    buf = b""
    while True:
        idle_work = server.finished or (len(server.ready) < READY_PID1S and not server.runs)
        ready, _, _ = select.select([0, wake_r, *server.by_fd], [], [], 0 if idle_work else None)
        if not ready and server.finished:
            server.take_down(server.finished.pop())
            continue
        if not ready and idle_work:
            server.refill()
            continue
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
