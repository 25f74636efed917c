//! The gVisor backend's pieces: finding `runsc`, the OCI bundle (from the `gvisor/config.json` template
//! and the same root plan the native jail uses, plus the zygote binary bound read-only), the `runsc`
//! command line, the session server's command line, and judging the self-test.
//!
//! A gVisor session uses the session machinery of the native backend (a user + mount namespace per
//! session holding a size-limited tmpfs workspace); the zygote's intermediate child then starts
//! `runsc --rootless run` inside the session's namespaces and a fresh PID namespace, on a bundle whose
//! root is an empty, read-only skeleton directory with read-only bind mounts of the Python installation.
//! Inside, gVisor's own kernel answers every system call. The container lives as long as the session (or
//! until it idles out): its process is the session server (the zygote binary's `gvisor-server` mode,
//! [`session`]), which clones each run into a PID namespace and a root of its own ([`wire`], shared with
//! the server through `sluice-sandbox-jail`, is how the two talk).

pub mod session;
pub use sluice_sandbox_jail::wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::error::OpError;
use crate::policy::{Rlimit, RootPlan};

/// The OCI `config.json` template the bundle is made from (see `gvisor/README.md`).
pub const TEMPLATE: &str = include_str!("../../../gvisor/config.json");

/// Where the directory holding the zygote binary is bound, read-only, into the container: its process is
/// the binary's session server (`sluice-sandbox-zygote gvisor-server CONFIG`). Under the container's `/tmp`,
/// which every run covers with a fresh tmpfs of its own: no run sees it. The binary's libraries (libpython
/// among them) are under the installation the root plan binds.
pub const SERVER_DIR: &str = "/tmp/.sluice-server";

/// The container's process: the zygote binary's session server, with its configuration.
pub fn server_args(config: &wire::ServerConfig) -> Result<Vec<String>, OpError> {
    let json = serde_json::to_string(config).map_err(|e| OpError::internal(e.to_string()))?;
    Ok(vec![
        format!("{SERVER_DIR}/sluice-sandbox-zygote"),
        "gvisor-server".into(),
        json,
    ])
}

/// Binds `dir` (the zygote binary, alone in its directory) read-only at [`SERVER_DIR`].
pub fn bind_server(cfg: &mut Value, dir: &Path) -> Result<(), OpError> {
    cfg.get_mut("mounts")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad_template("no mounts array"))?
        .push(json!({
            "destination": SERVER_DIR,
            "type": "bind",
            "source": dir.display().to_string(),
            "options": ["bind", "ro", "nosuid", "nodev"],
        }));
    Ok(())
}

/// Where the container's process runs from inside (its working directory).
pub const WORKSPACE: &str = "/workspace";

/// Finds `runsc` on `PATH` or where Debian's package installs it.
pub fn find_runsc() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join("runsc")).find(|f| f.is_file())
}

/// `runsc --version`'s first line, e.g. `runsc version 0.0~20221219.0`.
pub fn runsc_version(runsc: &Path) -> Result<String, String> {
    let out = Command::new(runsc)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", runsc.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed: {}",
            runsc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("runsc")
        .to_string())
}

/// The `runsc` arguments before the container id. `--rootless` because the daemon is unprivileged
/// (runsc maps the caller to root in a user namespace of its own); the ptrace platform because KVM
/// hangs on this kind of host and the 2022 Debian build has no systrap; no network at all; cgroups are
/// not configured by runsc (the daemon reports cgroup v2 separately).
pub fn runsc_argv(runsc: &Path, state: &Path, bundle: &Path) -> Vec<String> {
    vec![
        runsc.display().to_string(),
        "--rootless".into(),
        "--network=none".into(),
        "--ignore-cgroups".into(),
        "--platform=ptrace".into(),
        "--host-uds=none".into(),
        "--host-fifo=none".into(),
        "--root".into(),
        state.display().to_string(),
        "run".into(),
        "--bundle".into(),
        bundle.display().to_string(),
    ]
}

/// The OCI name of an rlimit resource.
pub fn rlimit_name(resource: u32) -> Option<&'static str> {
    Some(match resource {
        libc::RLIMIT_CPU => "RLIMIT_CPU",
        libc::RLIMIT_FSIZE => "RLIMIT_FSIZE",
        libc::RLIMIT_DATA => "RLIMIT_DATA",
        libc::RLIMIT_STACK => "RLIMIT_STACK",
        libc::RLIMIT_CORE => "RLIMIT_CORE",
        libc::RLIMIT_RSS => "RLIMIT_RSS",
        libc::RLIMIT_NPROC => "RLIMIT_NPROC",
        libc::RLIMIT_NOFILE => "RLIMIT_NOFILE",
        libc::RLIMIT_MEMLOCK => "RLIMIT_MEMLOCK",
        libc::RLIMIT_AS => "RLIMIT_AS",
        libc::RLIMIT_MSGQUEUE => "RLIMIT_MSGQUEUE",
        _ => return None,
    })
}

/// What the bundle is built from, besides the template.
#[derive(Clone, Debug)]
pub struct BundleSpec<'a> {
    pub plan: &'a RootPlan,
    /// The skeleton directory that becomes the container's (read-only) root.
    pub rootfs: &'a Path,
    /// The session's workspace mount point, as seen in the session's mount namespace.
    pub workspace: &'a Path,
    pub args: Vec<String>,
    pub env: &'a [(String, String)],
    pub rlimits: &'a [Rlimit],
}

fn bad_template(what: &str) -> OpError {
    OpError::internal(format!("gvisor/config.json: {what}"))
}

/// Fills the template: the process, its limits, the workspace and `/tmp`, and one read-only bind per
/// path of the root plan (the devices excepted: gVisor provides its own `/dev`).
pub fn oci_config(template: &str, spec: &BundleSpec) -> Result<Value, OpError> {
    let mut cfg: Value =
        serde_json::from_str(template).map_err(|e| bad_template(&format!("not JSON: {e}")))?;
    let process = cfg
        .get_mut("process")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad_template("no process object"))?;
    process.insert("args".into(), json!(spec.args));
    process.insert(
        "env".into(),
        json!(
            spec.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        ),
    );
    process.insert("cwd".into(), json!(WORKSPACE));
    let rlimits: Vec<Value> = spec
        .rlimits
        .iter()
        .filter_map(|(res, soft, hard)| {
            rlimit_name(*res).map(|n| json!({"type": n, "soft": soft, "hard": hard}))
        })
        .collect();
    process.insert("rlimits".into(), json!(rlimits));
    cfg["root"] = json!({"path": spec.rootfs.display().to_string(), "readonly": true});
    let mounts = cfg
        .get_mut("mounts")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad_template("no mounts array"))?;
    for m in mounts.iter_mut() {
        match m.get("destination").and_then(Value::as_str) {
            Some("/tmp") => {
                let opts = m
                    .get_mut("options")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| bad_template("/tmp has no options"))?;
                opts.push(json!(format!("size={}", spec.plan.tmp_bytes)));
                opts.push(json!(format!("nr_inodes={}", spec.plan.tmp_inodes)));
            }
            Some(WORKSPACE) => m["source"] = json!(spec.workspace.display().to_string()),
            _ => {}
        }
    }
    for b in spec.plan.binds.iter().filter(|b| !b.dst.starts_with("/dev/")) {
        mounts.push(json!({
            "destination": b.dst,
            "type": "bind",
            "source": b.src,
            "options": [
                if b.recursive { "rbind" } else { "bind" },
                if b.writable { "rw" } else { "ro" },
                "nosuid",
                "nodev",
            ],
        }));
    }
    Ok(cfg)
}

/// Creates the container's root: the plan's directories and top-level symlinks, and an empty mount
/// point (directory or file) for every bind. Nothing else: the container sees no host file that is not
/// bound on purpose.
pub fn write_skeleton(rootfs: &Path, plan: &RootPlan) -> std::io::Result<()> {
    let inside = |p: &str| rootfs.join(p.trim_start_matches('/'));
    std::fs::create_dir_all(rootfs)?;
    for d in &plan.dirs {
        std::fs::create_dir_all(inside(d))?;
    }
    for (target, link) in &plan.symlinks {
        let path = inside(link);
        if std::fs::symlink_metadata(&path).is_err() {
            std::os::unix::fs::symlink(target, &path)?;
        }
    }
    for b in plan.binds.iter().filter(|b| !b.dst.starts_with("/dev/")) {
        let path = inside(&b.dst);
        if b.is_dir {
            std::fs::create_dir_all(&path)?;
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
        }
    }
    Ok(())
}

/// The self-test's code: what the container looks like from inside, as JSON on stdout.
pub const PROBE_CODE: &str = r#"
import json, os, resource, socket
st = {}
for line in open('/proc/self/status'):
    k, _, v = line.partition(':')
    st[k] = v.strip()
try:
    socket.create_connection(('1.1.1.1', 80), timeout=2)
    net = 'connected'
except OSError as e:
    net = 'refused errno %s' % e.errno
print(json.dumps({
    'version': open('/proc/version').read().strip(),
    'root': sorted(os.listdir('/')),
    'interfaces': sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]),
    'egress': net,
    'cap_eff': st.get('CapEff'), 'cap_bnd': st.get('CapBnd'),
    'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
    'nproc': resource.getrlimit(resource.RLIMIT_NPROC)[0],
    'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    'usr_writable': os.access('/usr', os.W_OK),
}))
"#;

/// Top-level names a container may show: the skeleton's and the mounts gVisor adds.
fn allowed_top_level(plan: &RootPlan) -> Vec<String> {
    let mut names: Vec<String> = plan
        .dirs
        .iter()
        .chain(plan.symlinks.iter().map(|(_, l)| l))
        .chain(plan.binds.iter().map(|b| &b.dst))
        .filter_map(|p| p.trim_start_matches('/').split('/').next().map(str::to_string))
        .collect();
    // gVisor mounts a read-only sysfs of its own (not the host's) when asked to by runsc defaults.
    names.push("sys".into());
    names.sort();
    names.dedup();
    names
}

/// Judges the self-test's report: each protection of the gVisor backend as `ok: detail` or
/// `failed: why`, in the form `host::protections` reads.
pub fn judge_probe(
    report: &Value,
    host_version: &str,
    plan: &RootPlan,
    max_processes: u64,
    runsc: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |name: &str, ok: bool, good: String, bad: String| {
        out.insert(
            name.to_string(),
            if ok {
                format!("ok: {good}")
            } else {
                format!("failed: {bad}")
            },
        );
    };
    let s = |k: &str| report.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let version = s("version");
    put(
        "gvisor_kernel",
        !version.is_empty() && version != host_version,
        format!("{runsc}, ptrace platform; the run sees {version:?}, not the host kernel"),
        format!("the run sees the host kernel ({version:?})"),
    );
    let root: Vec<String> = report
        .get("root")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let allowed = allowed_top_level(plan);
    let extra: Vec<&String> = root.iter().filter(|n| !allowed.contains(n)).collect();
    let usr_writable = report.get("usr_writable").and_then(Value::as_bool) != Some(false);
    put(
        "minimal_root",
        !root.is_empty() && extra.is_empty() && !usr_writable,
        format!(
            "read-only skeleton root with {} binds (read-only unless a read-write project): {}",
            plan.binds.iter().filter(|b| !b.dst.starts_with("/dev/")).count(),
            root.join(" ")
        ),
        format!("unexpected top-level entries {extra:?} or /usr writable ({usr_writable})"),
    );
    let interfaces: Vec<&str> = report
        .get("interfaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let egress = s("egress");
    put(
        "network_none",
        interfaces == ["lo"] && egress.starts_with("refused"),
        "--network=none: loopback only, egress refused".into(),
        format!("interfaces {interfaces:?}, egress {egress}"),
    );
    let zero = "0000000000000000";
    put(
        "capabilities_dropped",
        s("cap_eff") == zero && s("cap_bnd") == zero,
        "empty capability sets inside gVisor's kernel".into(),
        format!("CapEff {} CapBnd {}", s("cap_eff"), s("cap_bnd")),
    );
    let pids: Vec<i64> = report
        .get("pids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    put(
        "pid_namespace",
        pids == [1],
        "the run sees only its own processes".into(),
        format!("the run sees pids {pids:?}"),
    );
    let nproc = report.get("nproc").and_then(Value::as_u64);
    put(
        "rlimits",
        nproc == Some(max_processes),
        "OCI rlimits, enforced by gVisor's kernel; each run lowers them to its own".into(),
        format!("RLIMIT_NPROC inside is {nproc:?}, expected {max_processes}"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{HostPath, Limits, ProjectMount, plan_root};
    use pretty_assertions::assert_eq;

    fn plan() -> RootPlan {
        let hp = |p: &str, is_dir| HostPath {
            path: p.into(),
            is_dir,
            statvfs_flags: 0,
        };
        plan_root(
            vec![
                hp("/usr", true),
                hp("/etc/ld.so.cache", false),
                hp("/opt/venv", true),
            ],
            vec![("usr/bin".into(), "/bin".into())],
            vec![hp("/dev/null", false)],
            &[ProjectMount {
                name: "dbt".into(),
                host: hp("/srv/dbt", true),
                writable: true,
            }],
            &Limits::default(),
        )
    }

    #[test]
    fn bundle_binds_the_plan_read_only_and_the_workspace_read_write() {
        let plan = plan();
        let env = vec![("PATH".to_string(), "/usr/bin".to_string())];
        let rlimits = vec![(libc::RLIMIT_NPROC, 64, 64), (999, 1, 1)];
        let cfg = oci_config(
            TEMPLATE,
            &BundleSpec {
                plan: &plan,
                rootfs: Path::new("/r/gvisor/rootfs"),
                workspace: Path::new("/r/ws"),
                args: vec!["python".into(), "-c".into(), "x".into()],
                env: &env,
                rlimits: &rlimits,
            },
        )
        .unwrap();
        let mounts: Vec<(String, String, String)> = cfg["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap().to_string(),
                    m["source"].as_str().unwrap().to_string(),
                    m["options"]
                        .as_array()
                        .map(|o| {
                            o.iter()
                                .map(|v| v.as_str().unwrap())
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default(),
                )
            })
            .collect();
        let m = |d: &str, s: &str, o: &str| (d.to_string(), s.to_string(), o.to_string());
        assert_eq!(
            mounts,
            vec![
                m("/proc", "proc", "nosuid,noexec,nodev"),
                m("/dev", "tmpfs", "nosuid,noexec,mode=755"),
                m(
                    "/tmp",
                    "tmpfs",
                    "nosuid,nodev,mode=1777,size=67108864,nr_inodes=16384"
                ),
                m("/workspace", "/r/ws", "bind,rw,nosuid,nodev"),
                m("/etc/ld.so.cache", "/etc/ld.so.cache", "rbind,ro,nosuid,nodev"),
                m("/opt/venv", "/opt/venv", "rbind,ro,nosuid,nodev"),
                m("/usr", "/usr", "rbind,ro,nosuid,nodev"),
                m("/projects/dbt", "/srv/dbt", "bind,rw,nosuid,nodev"),
            ]
        );
        assert_eq!(cfg["root"], json!({"path": "/r/gvisor/rootfs", "readonly": true}));
        assert_eq!(cfg["process"]["env"], json!(["PATH=/usr/bin"]));
        assert_eq!(
            cfg["process"]["rlimits"],
            json!([{"type": "RLIMIT_NPROC", "soft": 64, "hard": 64}])
        );
        // The template's protections survive the filling in.
        assert_eq!(cfg["process"]["noNewPrivileges"], json!(true));
        // The session server's capabilities inside gVisor's kernel (every run drops them).
        let server_caps = json!(["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SETPCAP"]);
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(cfg["process"]["capabilities"][set], server_caps, "{set}");
        }
        for set in ["inheritable", "ambient"] {
            assert_eq!(cfg["process"]["capabilities"][set], json!([]), "{set}");
        }
        assert_eq!(cfg["process"]["user"], json!({"uid": 0, "gid": 0}));
    }

    #[test]
    fn the_server_is_the_zygote_binary_bound_read_only_under_tmp() {
        let mut cfg = json!({"mounts": []});
        bind_server(&mut cfg, Path::new("/r/gvisor/server")).unwrap();
        assert_eq!(
            cfg["mounts"],
            json!([{
                "destination": "/tmp/.sluice-server",
                "type": "bind",
                "source": "/r/gvisor/server",
                "options": ["bind", "ro", "nosuid", "nodev"],
            }])
        );
        let config = wire::ServerConfig::new(&plan(), &[], ("/v/bin/python", "3.11.2"), &[]);
        let args = server_args(&config).unwrap();
        assert_eq!(
            args[..2],
            ["/tmp/.sluice-server/sluice-sandbox-zygote", "gvisor-server"]
        );
        let back: wire::ServerConfig = serde_json::from_str(&args[2]).unwrap();
        assert_eq!(back, config);
        // The devices are gVisor's own: only the installation and the projects are bound again.
        let binds: Vec<&str> = back.binds.iter().map(|b| b.dst.as_str()).collect();
        assert_eq!(binds, ["/etc/ld.so.cache", "/opt/venv", "/usr", "/projects/dbt"]);
    }

    #[test]
    fn runsc_is_rootless_without_network_on_ptrace() {
        let argv = runsc_argv(Path::new("/usr/bin/runsc"), Path::new("/s"), Path::new("/b"));
        assert_eq!(
            argv.join(" "),
            "/usr/bin/runsc --rootless --network=none --ignore-cgroups --platform=ptrace --host-uds=none \
             --host-fifo=none --root /s run --bundle /b"
        );
    }

    #[test]
    fn skeleton_has_mount_points_and_links_only() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        write_skeleton(&rootfs, &plan()).unwrap();
        // Idempotent: a daemon restart finds the skeleton in place.
        write_skeleton(&rootfs, &plan()).unwrap();
        let mut top: Vec<String> = std::fs::read_dir(&rootfs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(
            top,
            vec![
                "bin",
                "dev",
                "etc",
                "opt",
                "proc",
                "projects",
                "tmp",
                "usr",
                "workspace"
            ]
        );
        assert!(rootfs.join("etc/ld.so.cache").is_file());
        assert_eq!(std::fs::read_dir(rootfs.join("usr")).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_link(rootfs.join("bin")).unwrap(),
            PathBuf::from("usr/bin")
        );
        assert!(!rootfs.join("dev/null").exists());
    }

    #[test]
    fn probe_reports_are_judged() {
        let plan = plan();
        let good = json!({
            "version": "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016",
            "root": ["bin", "dev", "etc", "opt", "proc", "projects", "sys", "tmp", "usr", "workspace"],
            "interfaces": ["lo"], "egress": "refused errno 101",
            "cap_eff": "0000000000000000", "cap_bnd": "0000000000000000",
            "pids": [1], "nproc": 64, "nofile": 256, "usr_writable": false,
        });
        let failed = |r: &Value| -> Vec<String> {
            judge_probe(r, "Linux version 6.18.0", &plan, 64, "runsc")
                .into_iter()
                .filter(|(_, v)| !v.starts_with("ok"))
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(failed(&good), Vec::<String>::new());
        // (change to the good report, protections expected to fail)
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("version", json!("Linux version 6.18.0"), vec!["gvisor_kernel"]),
            ("root", json!(["bin", "home", "usr"]), vec!["minimal_root"]),
            ("usr_writable", json!(true), vec!["minimal_root"]),
            ("interfaces", json!(["eth0", "lo"]), vec!["network_none"]),
            ("egress", json!("connected"), vec!["network_none"]),
            ("cap_eff", json!("00000000a80425fb"), vec!["capabilities_dropped"]),
            ("pids", json!([1, 2, 77]), vec!["pid_namespace"]),
            ("nproc", json!(4096), vec!["rlimits"]),
        ];
        for (key, value, expected) in cases {
            let mut r = good.clone();
            r[key] = value;
            assert_eq!(failed(&r), expected, "{key}");
        }
    }
}
