//! The escape suite: each attempt tries to break out or exhaust the host, asserts the specific way it
//! fails, and then checks that the daemon still serves.

use std::os::unix::net::UnixListener;

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

use super::harness::*;

/// Helpers every attempt can use: `attempt(f)` prints the exception type and errno (or ALLOWED),
/// `sc(nr, *args)` makes a raw system call and prints its errno.
const PRELUDE: &str = r#"
import ctypes, os, socket, sys
def attempt(f):
    try:
        r = f()
        print("ALLOWED", r)
    except BaseException as e:
        print(type(e).__name__, getattr(e, "errno", None))
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    print("errno", ctypes.get_errno()) if r == -1 else print("ret", r)
def write(path, data="x"):
    with open(path, "w") as f:
        f.write(data)
"#;

struct Attempt {
    name: &'static str,
    code: String,
    expect: &'static str,
    /// What gVisor does instead, where its kernel answers differently (same protection, other errno).
    gvisor: Option<&'static str>,
}

fn a(name: &'static str, code: impl Into<String>, expect: &'static str) -> Attempt {
    Attempt {
        name,
        code: code.into(),
        expect,
        gvisor: None,
    }
}

impl Attempt {
    fn gv(mut self, expect: &'static str) -> Attempt {
        self.gvisor = Some(expect);
        self
    }

    fn expected(&self, kind: Kind) -> &'static str {
        match kind {
            Kind::Gvisor => self.gvisor.unwrap_or(self.expect),
            Kind::Native => self.expect,
        }
    }
}

/// Runs each attempt in a fresh session and compares its whole stdout; the daemon must keep serving.
fn check_all(d: &Daemon, attempts: Vec<Attempt>) {
    let mut c = d.client();
    let mut failures = Vec::new();
    for (i, at) in attempts.iter().enumerate() {
        let s = session(&format!("escape-{i}"));
        open(&mut c, &s);
        let r = run(&mut c, &s, &format!("{PRELUDE}\n{}", at.code), Some(20_000));
        let expect = at.expected(d.kind);
        if r.stdout.text.trim_end() != expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?} (stderr {:?}, exit {:?})",
                at.name, expect, r.stdout.text, r.stderr.text, r.exit
            ));
        }
        c.call(Request::CloseSession(SessionArgs { session: s })).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{:?}: {} attempts did not fail as expected:\n{}",
        d.kind,
        failures.len(),
        failures.join("\n")
    );
    d.assert_serving();
}

#[test]
fn host_files_and_secrets_are_out_of_reach() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let root = d.root.display().to_string();
        let sock = d.socket.display().to_string();
        check_all(
            &d,
            vec![
                a(
                    "read /etc/shadow",
                    "attempt(lambda: open('/etc/shadow').read())",
                    "FileNotFoundError 2",
                ),
                a(
                    "read /etc/passwd",
                    "attempt(lambda: open('/etc/passwd').read())",
                    "FileNotFoundError 2",
                ),
                a(
                    "list /root",
                    "attempt(lambda: os.listdir('/root'))",
                    "FileNotFoundError 2",
                ),
                a(
                    "list /home",
                    "attempt(lambda: os.listdir('/home'))",
                    "FileNotFoundError 2",
                ),
                a(
                    "read the daemon's root",
                    format!("attempt(lambda: os.listdir({root:?}))"),
                    "FileNotFoundError 2",
                ),
                a(
                    "list /sys",
                    "attempt(lambda: sorted(os.listdir('/sys')))",
                    "FileNotFoundError 2",
                )
                // gVisor always shows its own synthetic sysfs, never the host's: no host device appears.
                .gv("ALLOWED ['block', 'bus', 'class', 'dev', 'devices', 'firmware', 'fs', 'kernel', 'module', 'power']"),
                a(
                    "host block devices in /sys",
                    "attempt(lambda: os.listdir('/sys/block'))",
                    "FileNotFoundError 2",
                )
                .gv("ALLOWED []"),
                a(
                    "raw disk",
                    "attempt(lambda: open('/dev/sda','rb').read(1))",
                    "FileNotFoundError 2",
                ),
                a(
                    "/dev/mem",
                    "attempt(lambda: open('/dev/mem','rb').read(1))",
                    "FileNotFoundError 2",
                ),
                a(
                    "device node",
                    "import stat\nattempt(lambda: os.mknod('/tmp/sda', stat.S_IFBLK | 0o600, os.makedev(8, 0)) or open('/tmp/sda', 'rb').read(1))",
                    "PermissionError 1",
                )
                // gVisor's tmpfs accepts the node, but its kernel has no host block device behind it.
                .gv("OSError 6"),
                a(
                    "daemon environment",
                    format!(
                        "import glob\nleak = [p for p in glob.glob('/proc/*/environ') if b'{SECRET}' in open(p,'rb').read()]\n\
                         print('leak' if leak or 'SLUICE_TEST_SECRET' in os.environ else 'clean', sorted(os.environ))"
                    ),
                    "clean ['HOME', 'LANG', 'MPLBACKEND', 'MPLCONFIGDIR', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR', 'USER']",
                ),
                a(
                    "listing / is denied by landlock",
                    "attempt(lambda: sorted(os.listdir('/')))",
                    "PermissionError 13",
                )
                // No landlock under gVisor: the root is the bundle's skeleton, and that is all there is.
                .gv("ALLOWED ['bin', 'dev', 'etc', 'lib', 'lib64', 'proc', 'sbin', 'sys', 'tmp', 'usr', 'workspace']"),
                a(
                    "write into /usr",
                    "attempt(lambda: write('/usr/bin/evil'))",
                    "OSError 30",
                )
                // Host root's files are owned by an unmapped uid inside gVisor: refused before EROFS.
                .gv("PermissionError 13"),
                a("write into /", "attempt(lambda: write('/evil'))", "OSError 30"),
                a(
                    "mkdir /etc/x",
                    "attempt(lambda: os.mkdir('/etc/x'))",
                    "OSError 30",
                ),
                a(
                    "write /proc/sys",
                    "attempt(lambda: write('/proc/sys/kernel/hostname', 'pwn'))",
                    "PermissionError 13",
                ),
                a(
                    "drop host caches",
                    "attempt(lambda: write('/proc/sys/vm/drop_caches', '3'))",
                    "PermissionError 13",
                ),
                a(
                    "daemon socket",
                    format!("s=socket.socket(socket.AF_UNIX)\nattempt(lambda: s.connect({sock:?}))"),
                    "FileNotFoundError 2",
                ),
                a(
                    "runs as uid 1000, not root",
                    "print(os.getuid(), os.geteuid(), os.getgid())",
                    "1000 1000 1000",
                )
                // Root of gVisor's own kernel (without any capability; host uid 65534): rootless runsc
                // maps only the daemon's uid, to 0, so workspace files are owned by uid 0 inside.
                .gv("0 0 0"),
                a(
                    "no privileges left",
                    "st = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
                     print(st['CapEff'], st['CapPrm'], st['CapBnd'], st.get('NoNewPrivs'), st.get('Seccomp'))",
                    "0000000000000000 0000000000000000 0000000000000000 1 2",
                )
                // gVisor's /proc has no NoNewPrivs line; its seccomp is on the host side (checked below).
                .gv("0000000000000000 0000000000000000 0000000000000000 None 0"),
            ],
        );
    }
}

#[test]
fn network_egress_is_denied() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        // Something listening on the host that the sandbox must not reach: TCP, and an abstract Unix socket.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let name = format!("sluice-test-{}", std::process::id());
        let abs = {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            UnixListener::bind_addr(&addr).unwrap()
        };
        check_all(
            &d,
            vec![
                a(
                    "TCP to the internet",
                    "s=None\nattempt(lambda: socket.create_connection(('1.1.1.1', 80), timeout=2))",
                    "PermissionError 1",
                )
                // --network=none: gVisor's netstack has no route off the loopback.
                .gv("OSError 113"),
                a(
                    "TCP to a host port (the gateway, a database)",
                    format!("attempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))"),
                    "PermissionError 1",
                )
                // gVisor's own loopback, where nothing listens (the host listener sees nothing: below).
                .gv("ConnectionRefusedError 111"),
                a(
                    "UDP",
                    "attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53)))",
                    "PermissionError 1",
                )
                .gv("OSError 113"),
                a(
                    "DNS lookup",
                    "attempt(lambda: socket.getaddrinfo('example.com', 443))",
                    "gaierror -3",
                ),
                a(
                    "IPv6",
                    "attempt(lambda: socket.create_connection(('2606:4700:4700::1111', 80), timeout=2))",
                    "PermissionError 1",
                )
                .gv("OSError 113"),
                a(
                    "raw packet socket",
                    "attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))",
                    "PermissionError 1",
                ),
                a(
                    "netlink",
                    "attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).family)",
                    "PermissionError 1",
                )
                // gVisor's netlink reaches only gVisor's netstack (its interfaces: the next attempt).
                .gv("ALLOWED 16"),
                a(
                    "vsock",
                    "attempt(lambda: socket.socket(40, socket.SOCK_STREAM))",
                    "PermissionError 1",
                )
                .gv("OSError 97"),
                a(
                    "abstract Unix socket on the host",
                    format!("s=socket.socket(socket.AF_UNIX)\nattempt(lambda: s.connect('\\0{name}'))"),
                    "ConnectionRefusedError 111",
                ),
                a(
                    "interfaces",
                    "print([l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]])",
                    "['lo']",
                ),
                a(
                    "local Unix sockets still work",
                    "a,b = socket.socketpair(); a.send(b'hi'); print(b.recv(2))",
                    "b'hi'",
                ),
            ],
        );
        // Nothing arrived on the host listeners.
        tcp.set_nonblocking(true).unwrap();
        assert!(tcp.accept().is_err(), "a sandbox reached the host TCP listener");
        abs.set_nonblocking(true).unwrap();
        assert!(
            abs.accept().is_err(),
            "a sandbox reached the host abstract socket"
        );
    }
}

#[test]
fn kernel_attack_surface_is_filtered() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let daemon_pid = d.pid();
        check_all(
            &d,
            vec![
                // Under gVisor, ptrace, namespaces, io_uring and the rest are implemented (or refused) by
                // gVisor's own kernel and reach only the run's own processes; the host-side seccomp
                // filter on runsc is checked in `gvisor_host_side_is_confined`.
                a("ptrace", "sc(101, 0, 0, 0, 0)", "errno 1").gv("ret 0"),
                a("process_vm_readv", "sc(310, 1, 0, 0, 0, 0, 0)", "errno 1").gv("errno 38"),
                a(
                    "mount tmpfs",
                    "print(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())",
                    "-1 1",
                ),
                a(
                    "umount",
                    "print(libc.umount2(b'/workspace', 2), ctypes.get_errno())",
                    "-1 1",
                ),
                // Under gVisor too: a run's root is entered with chroot, and a chrooted process may not
                // make a user namespace (gVisor keeps Linux's rule, which stops the chroot escape through
                // the capabilities of a new namespace).
                a(
                    "new user namespace",
                    "print(libc.unshare(0x10000000), ctypes.get_errno())",
                    "-1 1",
                ),
                a(
                    "new net namespace via clone",
                    "sc(56, 0x40000000 | 17, 0, 0, 0, 0)",
                    "errno 1",
                ),
                a("clone3 falls back", "sc(435, 0, 0)", "errno 38"),
                a("bpf", "sc(321, 0, 0, 0)", "errno 1"),
                a("io_uring_setup", "sc(425, 8, 0)", "errno 1").gv("errno 14"),
                a("perf_event_open", "sc(298, 0, 0, -1, -1, 0)", "errno 1").gv("errno 19"),
                a("keyctl", "sc(250, 0, 0, 0, 0, 0)", "errno 1").gv("errno 13"),
                a("userfaultfd", "sc(323, 0)", "errno 1").gv("errno 38"),
                a("open_by_handle_at", "sc(304, 0, 0, 0)", "errno 1").gv("errno 95"),
                // Already uid 0 of gVisor's kernel, with no capabilities (host uid 65534).
                a("setuid(0)", "attempt(lambda: os.setuid(0))", "PermissionError 1").gv("ALLOWED None"),
                a(
                    "setuid(4242)",
                    "attempt(lambda: os.setuid(4242))",
                    "PermissionError 1",
                ),
                a("setgid(0)", "attempt(lambda: os.setgid(0))", "PermissionError 1").gv("ALLOWED None"),
                a(
                    "chown",
                    "write('/tmp/f')\nattempt(lambda: os.chown('/tmp/f', 0, 0))",
                    "PermissionError 1",
                )
                // Its own file, already uid 0 (gVisor's); giving it away needs a capability it lacks.
                .gv("ALLOWED None"),
                a(
                    "chown to another uid",
                    "write('/tmp/f')\nattempt(lambda: os.chown('/tmp/f', 4242, 4242))",
                    "PermissionError 1",
                ),
                a(
                    "chroot",
                    "attempt(lambda: os.chroot('/tmp'))",
                    "PermissionError 1",
                ),
                a(
                    "sethostname",
                    "print(os.uname().nodename, libc.sethostname(b'x', 1), ctypes.get_errno())",
                    "sandbox -1 1",
                ),
                a(
                    "TIOCSTI injection",
                    "import fcntl, termios\nattempt(lambda: fcntl.ioctl(0, termios.TIOCSTI, b'x'))",
                    "PermissionError 1",
                )
                // No terminal reaches gVisor's process at all.
                .gv("OSError 25"),
                a(
                    "prctl set dumpable",
                    "print(libc.prctl(4, 1, 0, 0, 0), ctypes.get_errno())",
                    "-1 1",
                )
                .gv("0 0"),
                a(
                    "only own processes visible",
                    "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
                    "[1]",
                ),
                // The trusted processes the run was forked from (the zygote, the session's launcher) hold
                // other runs' pipes and pidfds; none of it may reach user code.
                a(
                    "descriptors of the trusted processes",
                    "def kind(f):\n    try:\n        return os.readlink('/proc/self/fd/' + f).split(':')[0]\n    \
                     except OSError:\n        return None\n\
                     print(sorted(k for k in map(kind, [f for f in os.listdir('/proc/self/fd') if int(f) > 2]) if k))",
                    "['pipe']",
                )
                // gVisor's runner has no report pipe: only the standard streams.
                .gv("[]"),
                a(
                    "kill the daemon",
                    format!("attempt(lambda: os.kill({daemon_pid}, 9))"),
                    "ProcessLookupError 3",
                ),
                a(
                    "kill everything",
                    "attempt(lambda: os.kill(-1, 9)) if os.fork() else os._exit(0)\nos.wait()\nprint('alive')",
                    "ALLOWED None\nalive",
                ),
            ],
        );
    }
}

#[test]
fn resource_exhaustion_is_contained() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("exhaust");
        open(&mut c, &s);
        let pre = |code: &str| format!("{PRELUDE}\n{code}");

        // Fork bomb: the process limit stops it, the run ends, and nothing is left behind.
        let r = run(
            &mut c,
            &s,
            &pre(
                "n=0\nwhile True:\n    try:\n        if os.fork() == 0:\n            import time; time.sleep(60)\n        n += 1\n    except BlockingIOError as e:\n        print('stopped', e.errno, n < 64)\n        break",
            ),
            Some(20_000),
        );
        assert_eq!(r.stdout.text, "stopped 11 True\n", "{r:?}");
        // Zygote + the session's next warm jail (intermediate child + PID 1) + the probe-free serving session.
        d.wait_idle();

        // Memory bomb: the address-space limit turns it into a MemoryError, reported as a limit.
        let r = run_with(&mut c, &s, "x = bytearray(2 << 30)", Some(20_000), Some(256));
        assert!(r.stderr.text.contains("MemoryError"), "{r:?}");
        assert!(r.limits_hit.contains(&Limit::Memory), "{r:?}");
        assert_eq!(r.exit.code, Some(1));

        // Many processes, each well under its own address-space limit, together far over the run's
        // memory: the run's cgroup stops them (natively, where the daemon could claim cgroups: as root
        // here, or with a delegated cgroup v2 subtree), and says so.
        if kind == Kind::Native && is_root() {
            let r = run_with(
                &mut c,
                &s,
                "import os, time\nkids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n        block = b'x' * (100 << 20)\n        time.sleep(3)\n        os._exit(0)\n    kids.append(pid)\nkilled = 0\nfor pid in kids:\n    _, st = os.waitpid(pid, 0)\n    killed += os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9\nprint('killed', killed)",
                Some(20_000),
                Some(256),
            );
            assert!(r.limits_hit.contains(&Limit::Memory), "{r:?}");
            // The OOM killer picks the largest processes: children, or PID 1 with them.
            let killed: u32 = r
                .stdout
                .text
                .trim()
                .strip_prefix("killed ")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(killed >= 3 || r.exit.signal == Some(9), "{r:?}");
            let r = run(&mut c, &s, "print('still serving')", Some(5000));
            assert_eq!(r.stdout.text, "still serving\n", "{r:?}");
        }

        // CPU spin: killed at the wall clock.
        let r = run(&mut c, &s, "while True: pass", Some(1000));
        assert_eq!(
            (r.exit.signal, r.limits_hit.clone()),
            (Some(9), vec![Limit::Timeout]),
            "{r:?}"
        );
        assert!(r.duration_ms < 4000.0, "{r:?}");

        // A daemonised child that outlives the run's code is killed with the run.
        let r = run(
            &mut c,
            &s,
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(300)\nprint('parent done')",
            Some(5000),
        );
        assert_eq!(r.stdout.text, "parent done\n");
        d.wait_idle();

        // Output flood: capped and flagged, total counted.
        let r = run(
            &mut c,
            &s,
            "import sys\nfor _ in range(200): sys.stdout.write('x' * 10000)",
            Some(20_000),
        );
        assert!(
            r.stdout.truncated && r.stdout.text.len() == 65536 && r.stdout.total_bytes == 2_000_000,
            "{:?}",
            (r.stdout.truncated, r.stdout.text.len(), r.stdout.total_bytes)
        );
        assert!(r.limits_hit.contains(&Limit::Output));

        // Disk fill in /tmp (16 MiB tmpfs), in the workspace (32 MiB tmpfs), and one huge file (8 MiB limit).
        let r = run(
            &mut c,
            &s,
            &pre(
                "def fill(d):\n    for i in range(100):\n        write(f'{d}/f{i}', 'x' * (4 << 20))\nattempt(lambda: fill('/tmp'))",
            ),
            Some(20_000),
        );
        assert_eq!(r.stdout.text, "OSError 28\n", "{r:?}");
        let r = run(
            &mut c,
            &s,
            &pre(
                "def fill(d):\n    for i in range(100):\n        write(f'{d}/f{i}', 'x' * (4 << 20))\nattempt(lambda: fill('/workspace'))",
            ),
            Some(20_000),
        );
        assert_eq!(r.stdout.text, "OSError 28\n", "{r:?}");
        let r = run(
            &mut c,
            &s,
            &pre("attempt(lambda: write('/tmp/big', 'x' * (9 << 20)))"),
            Some(20_000),
        );
        assert_eq!(r.stdout.text, "OSError 27\n", "{r:?}");
        assert!(r.limits_hit.contains(&Limit::FileSize) || r.stderr.text.is_empty());
        // The workspace is still usable after being filled (delete and write again).
        let r = run(
            &mut c,
            &s,
            "import os, glob\nfor f in glob.glob('/workspace/*'):\n    if os.path.isfile(f): os.remove(f)\nopen('/workspace/ok','w').write('ok')\nprint(sorted(os.listdir('/workspace')))",
            None,
        );
        assert_eq!(r.stdout.text, "['ok', 'outputs']\n", "{r:?}");
        d.assert_serving();
    }
}

#[test]
fn no_state_crosses_sessions() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let a_s = session("a");
        let b_s = SessionKey {
            org: "other-org".into(),
            ..session("a")
        };
        open(&mut c, &a_s);
        open(&mut c, &b_s);
        let r = run(
            &mut c,
            &a_s,
            "import os, socket\nopen('/workspace/secret.txt','w').write('A')\nopen('/tmp/t','w').write('A')\ns = socket.socket(socket.AF_UNIX)\ns.bind('\\0sluice-leak')\ns.listen()\nif os.fork() == 0:\n    os.setsid(); import time; time.sleep(300)\nprint('planted')",
            None,
        );
        assert_eq!(r.stdout.text, "planted\n");
        // Same session id, another org: a different workspace holding only its empty output folder; nothing
        // of A's is reachable.
        let probe = "import os, socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('\\0sluice-leak'); print('reached')\nexcept OSError as e:\n    print('refused', e.errno)\nprint(sorted(os.listdir('/workspace')), os.listdir('/tmp'), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))";
        let r = run(&mut c, &b_s, probe, None);
        assert_eq!(r.stdout.text, "refused 111\n['outputs'] [] [1]\n", "{r:?}");
        // A's own next run keeps its workspace but gets a fresh /tmp and no leftover processes.
        let r = run(&mut c, &a_s, probe, None);
        assert_eq!(
            r.stdout.text, "refused 111\n['outputs', 'secret.txt'] [] [1]\n",
            "{r:?}"
        );
        // Closing removes the workspace: reopening the same key starts empty.
        c.call(Request::CloseSession(SessionArgs { session: a_s.clone() }))
            .unwrap();
        open(&mut c, &a_s);
        let r = run(
            &mut c,
            &a_s,
            "import os\nprint(os.listdir('/workspace/outputs'))",
            None,
        );
        assert_eq!(r.stdout.text, "[]\n");
        let r = run(&mut c, &a_s, "import os\nprint(os.listdir('/workspace'))", None);
        assert_eq!(r.stdout.text, "['outputs']\n");
        d.assert_serving();
    }
}

/// Every run is a fresh fork whose interpreter state was re-initialised for it: the zygote forks its own
/// helpers without python's at-fork hooks, so this checks the jail's PID 1 still gets them (`random`
/// reseeded, as site imports it before the fork on some hosts; `threading` knows its main thread).
#[test]
fn each_run_gets_a_reseeded_random_and_working_threads() {
    let code = "import os, random, threading\nout = []\nt = threading.Thread(target=lambda: out.append(1))\n\
                t.start(); t.join()\nprint(random.getrandbits(64), out, threading.current_thread() is \
                threading.main_thread(), os.getpid())";
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("fork-state");
        open(&mut c, &s);
        let runs: Vec<Vec<String>> = (0..3)
            .map(|_| {
                let r = run(&mut c, &s, code, None);
                assert_eq!(r.exit.code, Some(0), "{r:?}");
                r.stdout.text.split_whitespace().map(str::to_string).collect()
            })
            .collect();
        for r in &runs {
            assert_eq!((r[1].as_str(), r[2].as_str()), ("[1]", "True"), "{r:?}");
            if kind == Kind::Native {
                assert_eq!(r[3], "1", "the run's code is PID 1 of its namespace");
            }
        }
        let seeds: std::collections::BTreeSet<&String> = runs.iter().map(|r| &r[0]).collect();
        assert_eq!(seeds.len(), 3, "random must differ between runs: {runs:?}");
        d.assert_serving();
    }
}

#[test]
fn workspace_runs_round_trip_files() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("files");
        open(&mut c, &s);
        let req = RunPython {
            session: s.clone(),
            code: "import csv\nrows = list(csv.DictReader(open('orders.csv')))\ntotal = sum(float(r['total']) for r in rows)\nopen('out.txt','w').write(str(total))\nprint(total)".into(),
            inputs: vec![InputFile { path: "orders.csv".into(), content: "id,total\n1,9.5\n2,0.5\n".into() }],
            timeout_ms: None,
            memory_mb: None,
        };
        let Response::RunPython(r) = c.call(Request::RunPython(req)).unwrap() else {
            panic!()
        };
        assert_eq!(r.stdout.text, "10.0\n");
        assert_eq!(
            r.exit,
            ExitStatus {
                code: Some(0),
                signal: None
            }
        );
        assert_eq!(r.backend, kind.backend());
        let files: Vec<(String, Change)> = r.files.iter().map(|f| (f.path.clone(), f.change)).collect();
        assert_eq!(files, vec![("out.txt".to_string(), Change::Created)]);
        let Response::ReadFile(f) = c
            .call(Request::ReadFile(ReadFile {
                session: s.clone(),
                path: "out.txt".into(),
                max_bytes: None,
            }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(f.content.0, b"10.0");
        // A failing run reports its exit code and the user's traceback only.
        let r = run(&mut c, &s, "raise SystemExit(3)", None);
        assert_eq!(r.exit.code, Some(3));
        let r = run(&mut c, &s, "1/0", None);
        assert_eq!(r.exit.code, Some(1));
        assert!(
            r.stderr.text.contains("ZeroDivisionError") && !r.stderr.text.contains("run_user_code"),
            "{}",
            r.stderr.text
        );
    }
}
