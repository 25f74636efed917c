//! Pure policy: what the jail looks like (mounts, landlock rules, rlimits, seccomp), decided from
//! configuration and facts about the host, with no I/O. The zygote's jails only apply it (natively
//! `sluice_sandbox_jail::apply`, on the typed values below).

pub mod inside;
pub mod seccomp;

pub use inside::{SESSION_UIDS, UidLease, UidPool, inside_workspace_options, unsettable_rlimits};

use std::path::{Path, PathBuf};

use landlock::{ABI, Access, AccessFs, AccessNet, Scope};
/// The jail's plan types live beside the code that applies them (`sluice-sandbox-jail`); the policy here
/// decides their values.
pub use sluice_sandbox_jail::{Bind, LandlockPolicy, LandlockRule, Rlimit, RootPlan};

/// The landlock ABI the policy is written for; older kernels lack the scopes (V6) it relies on.
pub const LANDLOCK_ABI: ABI = ABI::V7;
/// The oldest ABI that enforces everything the policy asks for (signal and abstract-socket scopes).
pub const LANDLOCK_MIN_ABI: u32 = 6;

/// The uid/gid sandboxed code has inside its user namespace (mapped to the daemon's unprivileged uid).
pub const SANDBOX_ID: u32 = 1000;

/// Resource limits for runs. The request may ask for less (or up to the maxima) per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub default_memory_mb: u64,
    pub max_memory_mb: u64,
    pub max_processes: u64,
    pub max_open_files: u64,
    pub max_file_bytes: u64,
    pub workspace_bytes: u64,
    pub tmp_bytes: u64,
    pub output_bytes: u64,
    /// Largest image of the output folder a run's result carries.
    pub image_bytes: u64,
    /// Most image bytes one run's result carries in all.
    pub images_bytes: u64,
}

/// The largest image caps accepted (the protocol's, shared with the gateway's config checks).
pub use sluice_sandbox_protocol::MAX_IMAGES_BYTES;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_timeout_ms: 30_000,
            max_timeout_ms: 300_000,
            default_memory_mb: 1024,
            max_memory_mb: 4096,
            max_processes: 64,
            max_open_files: 256,
            max_file_bytes: 256 << 20,
            workspace_bytes: 512 << 20,
            tmp_bytes: 64 << 20,
            output_bytes: 1 << 20,
            image_bytes: 1 << 20,
            images_bytes: 4 << 20,
        }
    }
}

/// What one run gets, after clamping the request to the configured range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    pub timeout_ms: u64,
    pub memory_mb: u64,
}

impl Limits {
    /// Clamps a request's limits to `1..=max`, filling in defaults.
    pub fn for_run(&self, timeout_ms: Option<u64>, memory_mb: Option<u64>) -> RunLimits {
        RunLimits {
            timeout_ms: timeout_ms
                .unwrap_or(self.default_timeout_ms)
                .clamp(1, self.max_timeout_ms),
            memory_mb: memory_mb
                .unwrap_or(self.default_memory_mb)
                .clamp(16, self.max_memory_mb),
        }
    }

    /// The rlimits of a run. CPU time gets one second beyond the wall clock (the wall-clock kill is the
    /// real limit; the CPU limit also stops a spinning process the daemon somehow failed to kill), with
    /// the hard limit one more second later so SIGXCPU comes first.
    pub fn rlimits(&self, run: RunLimits) -> Vec<Rlimit> {
        let cpu = run.timeout_ms.div_ceil(1000) + 1;
        let files = self.max_file_bytes.min(self.workspace_bytes.max(self.tmp_bytes));
        vec![
            (libc::RLIMIT_CPU, cpu, cpu + 1),
            (libc::RLIMIT_AS, run.memory_mb << 20, run.memory_mb << 20),
            (libc::RLIMIT_NPROC, self.max_processes, self.max_processes),
            (libc::RLIMIT_NOFILE, self.max_open_files, self.max_open_files),
            (libc::RLIMIT_FSIZE, files, files),
            (libc::RLIMIT_CORE, 0, 0),
            (libc::RLIMIT_MEMLOCK, 64 << 10, 64 << 10),
            (libc::RLIMIT_MSGQUEUE, 0, 0),
        ]
    }

    /// The limits a prepared jail starts with: the maxima, which each run then lowers.
    pub fn max_rlimits(&self) -> Vec<Rlimit> {
        self.rlimits(RunLimits {
            timeout_ms: self.max_timeout_ms,
            memory_mb: self.max_memory_mb,
        })
    }
}

/// Where project directories appear inside the jail.
pub const PROJECTS_DIR: &str = "/projects";

/// A project directory from `--project NAME=PATH[:ro|rw]`, mounted into every run at
/// `/projects/NAME` (read-only unless `rw`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub path: PathBuf,
    pub writable: bool,
}

/// Parses `NAME=PATH[:ro|rw]` (read-only when no mode is given). Only the syntax is checked here; the
/// caller resolves the path on the host.
pub fn parse_project(spec: &str) -> Result<Project, String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected NAME=PATH[:ro|rw]"))?;
    let valid_name = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(format!(
            "{name:?}: a project name is 1-64 characters of letters, digits, '-', '_' and '.'"
        ));
    }
    let (path, writable) = match rest.rsplit_once(':') {
        Some((p, "ro")) => (p, false),
        Some((p, "rw")) => (p, true),
        _ => (rest, false),
    };
    if !path.starts_with('/') {
        return Err(format!("{path:?}: a project path must be absolute"));
    }
    Ok(Project {
        name: name.to_string(),
        path: PathBuf::from(path),
        writable,
    })
}

/// A project as the host describes it, ready for [`plan_root`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectMount {
    pub name: String,
    pub host: HostPath,
    pub writable: bool,
}

/// A host path to expose read-only, with what the host says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPath {
    pub path: PathBuf,
    pub is_dir: bool,
    /// `statvfs` flags of the file system holding it (`ST_*`).
    pub statvfs_flags: u64,
}

/// Device nodes the jail gets (bound from the host's `/dev`).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// The remount flags of a bind mount: the locked flags of the source (`nosuid`, `nodev`, `noexec`, atime
/// handling) must be repeated or the kernel refuses the remount inside a user namespace.
pub fn remount_flags(statvfs_flags: u64, read_only: bool) -> u64 {
    let map: [(u64, u64); 6] = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
    ];
    let mut flags = libc::MS_NOSUID;
    for (st, ms) in map {
        if statvfs_flags & st != 0 {
            flags |= ms;
        }
    }
    if statvfs_flags & libc::ST_RELATIME != 0 {
        flags |= libc::MS_RELATIME;
    }
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    flags
}

/// Keeps only the outermost of nested paths (binding `/usr` already exposes `/usr/lib/python3`).
pub fn outermost(mut paths: Vec<HostPath>) -> Vec<HostPath> {
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    paths.dedup_by(|a, b| a.path == b.path);
    let mut out: Vec<HostPath> = Vec::new();
    for p in paths {
        if !out.iter().any(|o| p.path.starts_with(&o.path)) {
            out.push(p);
        }
    }
    out
}

/// Builds the jail's root: `exposed` read-only at their host paths, the host's top-level symlinks
/// (`/bin -> usr/bin` on merged-/usr systems) recreated, devices, `/proc`, `/tmp` and `/workspace`.
pub fn plan_root(
    exposed: Vec<HostPath>,
    top_symlinks: Vec<(String, String)>,
    devices: Vec<HostPath>,
    projects: &[ProjectMount],
    limits: &Limits,
) -> RootPlan {
    // Never the host's whole root: a prefix of "/" (a python installed directly under /) would
    // otherwise swallow every other path and expose everything.
    let exposed = exposed
        .into_iter()
        .filter(|p| p.path.is_absolute() && p.path != Path::new("/"))
        .collect();
    let mut binds: Vec<Bind> = outermost(exposed)
        .into_iter()
        .map(|p| Bind {
            src: p.path.display().to_string(),
            dst: p.path.display().to_string(),
            is_dir: p.is_dir,
            remount_flags: remount_flags(p.statvfs_flags, true),
            writable: false,
            recursive: true,
        })
        .collect();
    binds.extend(projects.iter().map(|p| Bind {
        src: p.host.path.display().to_string(),
        dst: format!("{PROJECTS_DIR}/{}", p.name),
        is_dir: true,
        // Never suid, never device nodes, whatever the project's file system allows.
        remount_flags: remount_flags(p.host.statvfs_flags, !p.writable) | libc::MS_NODEV,
        writable: p.writable,
        recursive: false,
    }));
    // Devices are written to (/dev/null): not read-only, but never suid and never new device nodes.
    binds.extend(devices.into_iter().map(|d| Bind {
        src: d.path.display().to_string(),
        dst: d.path.display().to_string(),
        is_dir: false,
        remount_flags: remount_flags(d.statvfs_flags, false) & !libc::MS_NODEV,
        writable: true,
        recursive: false,
    }));
    let symlinks = top_symlinks
        .into_iter()
        .filter(|(_, link)| !binds.iter().any(|b| Path::new(link).starts_with(&b.dst)))
        .collect();
    RootPlan {
        root_bytes: 1 << 20,
        tmp_bytes: limits.tmp_bytes,
        tmp_inodes: 16_384,
        dirs: ["/proc", "/dev", "/tmp", "/workspace", "/etc"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        symlinks,
        binds,
        dev_symlinks: vec![
            ("/proc/self/fd".into(), "/dev/fd".into()),
            ("/proc/self/fd/0".into(), "/dev/stdin".into()),
            ("/proc/self/fd/1".into(), "/dev/stdout".into()),
            ("/proc/self/fd/2".into(), "/dev/stderr".into()),
        ],
    }
}

/// Read-only (with execute) on the exposed installation, read on `/proc` and devices, write on
/// `/dev/null`-like devices, everything on `/workspace` and `/tmp`; no TCP bind or connect at all.
pub fn landlock_policy(plan: &RootPlan) -> LandlockPolicy {
    let read_exec = AccessFs::from_read(LANDLOCK_ABI).bits();
    let file_rw = (AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev).bits();
    let all = AccessFs::from_all(LANDLOCK_ABI).bits();
    let mut rules = Vec::new();
    for b in &plan.binds {
        let access = if b.dst.starts_with("/dev/") {
            file_rw
        } else if b.writable && b.is_dir {
            all
        } else if b.is_dir {
            read_exec
        } else {
            (AccessFs::ReadFile | AccessFs::Execute).bits()
        };
        rules.push(LandlockRule {
            path: b.dst.clone(),
            access,
        });
    }
    rules.push(LandlockRule {
        path: "/proc".into(),
        access: (AccessFs::ReadFile | AccessFs::ReadDir).bits(),
    });
    rules.push(LandlockRule {
        path: "/workspace".into(),
        access: all,
    });
    rules.push(LandlockRule {
        path: "/tmp".into(),
        access: all,
    });
    LandlockPolicy {
        min_abi: LANDLOCK_MIN_ABI,
        handled_fs: all,
        handled_net: AccessNet::from_all(LANDLOCK_ABI).bits(),
        scoped: Scope::from_all(LANDLOCK_ABI).bits(),
        rules,
    }
}

/// Where runs keep matplotlib's configuration and cache (`MPLCONFIGDIR`): inside the run's own `/tmp`.
pub const MPL_CONFIG_DIR: &str = "/tmp/matplotlib";

/// Where `setup-python.sh` puts matplotlib's font cache, built once with the venv, below the venv's prefix.
pub const MPL_CACHE_IN_PREFIX: &str = "share/sluice/matplotlib";

/// Read-only files every run finds linked into its fresh `/tmp`, as (link, target): matplotlib's font
/// cache, so that `import matplotlib.pyplot` neither rebuilds it (measured: 0.15 s more natively, 0.7 s
/// under gVisor, and fontconfig's error on stderr) nor warns that its directory is not writable.
/// `cache_files` are the files found in [`MPL_CACHE_IN_PREFIX`].
pub fn tmp_links(cache_files: &[PathBuf]) -> Vec<(String, String)> {
    cache_files
        .iter()
        .filter_map(|target| {
            let name = target.file_name()?.to_str()?;
            // Only plain names: a link always lands directly in the run's matplotlib directory.
            (!name.starts_with('.') && name.ends_with(".json"))
                .then(|| (format!("{MPL_CONFIG_DIR}/{name}"), target.display().to_string()))
        })
        .collect()
}

/// The environment user code sees; nothing of the daemon's own environment passes through.
pub fn sandbox_env(python_bin_dir: &str) -> Vec<(String, String)> {
    [
        ("PATH", format!("{python_bin_dir}:/usr/local/bin:/usr/bin:/bin")),
        ("HOME", "/workspace".to_string()),
        ("TMPDIR", "/tmp".to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("USER", "sandbox".to_string()),
        ("MPLBACKEND", "Agg".to_string()),
        // matplotlib's config and cache directory: the run's own fresh /tmp, so nothing is written to the
        // workspace or elsewhere; the font cache built by setup-python.sh is linked into it (`tmp_links`).
        ("MPLCONFIGDIR", MPL_CONFIG_DIR.to_string()),
        ("OPENBLAS_NUM_THREADS", "1".to_string()),
        ("OMP_NUM_THREADS", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn hp(p: &str, is_dir: bool, flags: u64) -> HostPath {
        HostPath {
            path: p.into(),
            is_dir,
            statvfs_flags: flags,
        }
    }

    #[test]
    fn matplotlib_cache_is_linked_into_the_runs_tmp() {
        let files: Vec<PathBuf> = [
            "/opt/venv/share/sluice/matplotlib/fontlist-v3.11.0.json",
            "/opt/venv/share/sluice/matplotlib/.lock",
            "/opt/venv/share/sluice/matplotlib/notes.txt",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            tmp_links(&files),
            vec![(
                "/tmp/matplotlib/fontlist-v3.11.0.json".to_string(),
                "/opt/venv/share/sluice/matplotlib/fontlist-v3.11.0.json".to_string()
            )]
        );
        assert!(sandbox_env("/v/bin").contains(&("MPLCONFIGDIR".to_string(), MPL_CONFIG_DIR.to_string())));
    }

    #[test]
    fn remount_flags_keep_locked_flags() {
        // (statvfs flags, read-only, expected mount flags)
        let cases = [
            (0, true, libc::MS_NOSUID | libc::MS_RDONLY),
            (
                libc::ST_RELATIME,
                true,
                libc::MS_NOSUID | libc::MS_RDONLY | libc::MS_RELATIME,
            ),
            (
                libc::ST_NOSUID | libc::ST_NODEV | libc::ST_NOEXEC,
                false,
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            ),
            (
                libc::ST_NOATIME | libc::ST_RDONLY,
                false,
                libc::MS_NOSUID | libc::MS_NOATIME | libc::MS_RDONLY,
            ),
        ];
        for (st, ro, expected) in cases {
            assert_eq!(remount_flags(st, ro), expected, "statvfs {st:#x} ro {ro}");
        }
    }

    #[test]
    fn outermost_drops_nested_and_duplicate_paths() {
        let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
            (vec!["/usr", "/usr/lib/python3.11", "/usr"], vec!["/usr"]),
            (
                vec!["/opt/venv", "/usr", "/opt/venv/bin"],
                vec!["/opt/venv", "/usr"],
            ),
            // A prefix that is only a string prefix is not nested.
            (vec!["/usr", "/usrlocal"], vec!["/usr", "/usrlocal"]),
        ];
        for (input, expected) in cases {
            let got: Vec<String> = outermost(input.iter().map(|p| hp(p, true, 0)).collect())
                .into_iter()
                .map(|p| p.path.display().to_string())
                .collect();
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn root_plan_binds_read_only_and_skips_links_under_binds() {
        let plan = plan_root(
            vec![
                hp("/usr", true, libc::ST_RELATIME),
                hp("/root/.venv", true, 0),
                hp("/", true, 0),
            ],
            vec![("usr/bin".into(), "/bin".into()), ("x".into(), "/usr/odd".into())],
            vec![hp("/dev/null", false, libc::ST_NOSUID)],
            &[
                ProjectMount {
                    name: "dbt".into(),
                    host: hp("/srv/dbt", true, libc::ST_RELATIME),
                    writable: false,
                },
                ProjectMount {
                    name: "scratch".into(),
                    host: hp("/srv/scratch", true, 0),
                    writable: true,
                },
            ],
            &Limits::default(),
        );
        let binds: Vec<(&str, u64)> = plan
            .binds
            .iter()
            .map(|b| (b.dst.as_str(), b.remount_flags))
            .collect();
        assert_eq!(
            binds,
            vec![
                ("/root/.venv", libc::MS_NOSUID | libc::MS_RDONLY),
                ("/usr", libc::MS_NOSUID | libc::MS_RDONLY | libc::MS_RELATIME),
                (
                    "/projects/dbt",
                    libc::MS_NOSUID | libc::MS_RDONLY | libc::MS_RELATIME | libc::MS_NODEV
                ),
                ("/projects/scratch", libc::MS_NOSUID | libc::MS_NODEV),
                ("/dev/null", libc::MS_NOSUID),
            ]
        );
        let shape: Vec<(&str, &str, bool, bool)> = plan
            .binds
            .iter()
            .map(|b| (b.src.as_str(), b.dst.as_str(), b.writable, b.recursive))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("/root/.venv", "/root/.venv", false, true),
                ("/usr", "/usr", false, true),
                ("/srv/dbt", "/projects/dbt", false, false),
                ("/srv/scratch", "/projects/scratch", true, false),
                ("/dev/null", "/dev/null", true, false),
            ]
        );
        assert_eq!(plan.symlinks, vec![("usr/bin".to_string(), "/bin".to_string())]);
        assert_eq!(plan.tmp_bytes, Limits::default().tmp_bytes);
    }

    #[test]
    fn landlock_rules_grant_write_only_to_workspace_tmp_and_devices() {
        let plan = plan_root(
            vec![hp("/usr", true, 0)],
            vec![],
            vec![hp("/dev/null", false, 0)],
            &[
                ProjectMount {
                    name: "ro".into(),
                    host: hp("/srv/ro", true, 0),
                    writable: false,
                },
                ProjectMount {
                    name: "rw".into(),
                    host: hp("/srv/rw", true, 0),
                    writable: true,
                },
            ],
            &Limits::default(),
        );
        let policy = landlock_policy(&plan);
        let write = (AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile).bits();
        let writable: Vec<&str> = policy
            .rules
            .iter()
            .filter(|r| r.access & write != 0)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(writable, vec!["/projects/rw", "/dev/null", "/workspace", "/tmp"]);
        let ro = policy.rules.iter().find(|r| r.path == "/projects/ro").unwrap();
        assert_eq!(ro.access, AccessFs::from_read(ABI::V7).bits());
        assert_eq!(
            policy.handled_net,
            (AccessNet::BindTcp | AccessNet::ConnectTcp).bits()
        );
        assert_eq!(policy.scoped, (Scope::AbstractUnixSocket | Scope::Signal).bits());
        assert_eq!(policy.handled_fs, AccessFs::from_all(ABI::V7).bits());
    }

    #[test]
    fn project_specs() {
        let ok = |name: &str, path: &str, writable| {
            Ok(Project {
                name: name.into(),
                path: path.into(),
                writable,
            })
        };
        // (spec, expected)
        let cases: Vec<(&str, Result<Project, ()>)> = vec![
            ("dbt=/srv/dbt", ok("dbt", "/srv/dbt", false)),
            ("dbt=/srv/dbt:ro", ok("dbt", "/srv/dbt", false)),
            ("out_1.x=/srv/out:rw", ok("out_1.x", "/srv/out", true)),
            // A colon that is not a mode belongs to the path.
            ("odd=/srv/a:b", ok("odd", "/srv/a:b", false)),
            ("odd=/srv/a:b:rw", ok("odd", "/srv/a:b", true)),
            ("noequals", Err(())),
            ("=/srv", Err(())),
            ("..=/srv", Err(())),
            ("a/b=/srv", Err(())),
            ("rel=srv/dbt", Err(())),
            ("rel=srv:rw", Err(())),
        ];
        for (spec, expected) in cases {
            assert_eq!(parse_project(spec).map_err(|_| ()), expected, "{spec}");
        }
    }

    #[test]
    fn run_limits_are_clamped_and_mapped_to_rlimits() {
        let l = Limits::default();
        // (requested timeout, requested memory, expected clamped)
        let cases = [
            (
                None,
                None,
                RunLimits {
                    timeout_ms: 30_000,
                    memory_mb: 1024,
                },
            ),
            (
                Some(0),
                Some(1),
                RunLimits {
                    timeout_ms: 1,
                    memory_mb: 16,
                },
            ),
            (
                Some(10_000_000),
                Some(1 << 30),
                RunLimits {
                    timeout_ms: 300_000,
                    memory_mb: 4096,
                },
            ),
            (
                Some(1500),
                Some(256),
                RunLimits {
                    timeout_ms: 1500,
                    memory_mb: 256,
                },
            ),
        ];
        for (t, m, expected) in cases {
            assert_eq!(l.for_run(t, m), expected, "{t:?} {m:?}");
        }
        let r = l.rlimits(RunLimits {
            timeout_ms: 1500,
            memory_mb: 256,
        });
        let get = |res| {
            r.iter()
                .find(|(x, _, _)| *x == res)
                .map(|(_, s, h)| (*s, *h))
                .unwrap()
        };
        assert_eq!(get(libc::RLIMIT_CPU), (3, 4));
        assert_eq!(get(libc::RLIMIT_AS), (256 << 20, 256 << 20));
        assert_eq!(get(libc::RLIMIT_CORE), (0, 0));
        assert_eq!(get(libc::RLIMIT_NPROC), (64, 64));
        assert_eq!(get(libc::RLIMIT_FSIZE), (256 << 20, 256 << 20));
    }
}
