//! Per-run cgroups: one memory limit and one process-count limit for everything a run forks, where the
//! host lets the daemon create cgroups (a delegated cgroup v2 subtree, or cgroup v1 memory and pids
//! hierarchies it may write, e.g. when started as root before it drops to `--uid`).
//!
//! rlimits bound each process on its own (`RLIMIT_AS` per process, `RLIMIT_NPROC` per uid); a run's
//! cgroup bounds the run as a whole, so that many processes each under their own address-space limit
//! cannot add up to the host's memory. The daemon claims its subtree once at start ([`Cgroups::claim`]);
//! each native jail's PID 1 is moved into a fresh group of that subtree before any user code runs, and
//! the group is removed once the run's processes are gone.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which cgroup interface the daemon's subtree uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where this process's cgroups are, as `/proc/self/cgroup` and `/proc/self/mountinfo` say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Located {
    /// The cgroup v2 directory of this process, if a v2 hierarchy is mounted.
    pub v2: Option<PathBuf>,
    /// cgroup v1 directories of this process, by controller, for the hierarchies that are mounted.
    pub v1: BTreeMap<String, PathBuf>,
}

/// Finds this process's cgroup directories (pure: the two files' texts in, paths out).
pub fn locate(proc_self_cgroup: &str, mountinfo: &str) -> Located {
    // (fstype, mount root, mount point, super options) of every cgroup mount.
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let superopts = right.nth(1).unwrap_or("");
            Some((fstype, *left.get(3)?, *left.get(4)?, superopts))
        })
        .filter(|(fstype, ..)| *fstype == "cgroup" || *fstype == "cgroup2")
        .collect();
    // A mount shows the hierarchy from its root: the process's path is taken relative to it.
    let dir = |mount_root: &str, mount_point: &str, own: &str| -> Option<PathBuf> {
        let rel = Path::new(own).strip_prefix(mount_root).ok()?;
        Some(Path::new(mount_point).join(rel))
    };
    let mut out = Located::default();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(own)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            out.v2 = mounts
                .iter()
                .filter(|m| m.0 == "cgroup2")
                .find_map(|(_, root, point, _)| dir(root, point, own));
            continue;
        }
        for controller in controllers.split(',').filter(|c| !c.is_empty()) {
            let found = mounts
                .iter()
                .filter(|m| m.0 == "cgroup" && m.3.split(',').any(|o| o == controller))
                .find_map(|(_, root, point, _)| dir(root, point, own));
            if let Some(found) = found {
                out.v1.insert(controller.to_string(), found);
            }
        }
    }
    out
}

/// The daemon's cgroup subtree: run groups are created under `parents` (v2: one directory holding both
/// controllers; v1: the memory directory, then the pids directory).
#[derive(Debug)]
pub struct Cgroups {
    version: Version,
    parents: Vec<PathBuf>,
    seq: AtomicU64,
    /// Run groups whose processes were still exiting when the run ended; removed later.
    leftover: Mutex<Vec<PathBuf>>,
}

fn io_at(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| io_at(path, e))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| io_at(path, e))?;
    }
    Ok(())
}

impl Cgroups {
    /// Claims a subtree for this daemon's runs: a delegated cgroup v2 directory, else writable cgroup v1
    /// memory and pids hierarchies. `owner` is the uid/gid the daemon is about to switch to (when started
    /// as root): what the daemon creates is handed to it. Says why not when neither is possible.
    pub fn claim(owner: Option<(u32, u32)>) -> Result<Cgroups, String> {
        let cgroup =
            std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let located = locate(&cgroup, &mountinfo);
        let v2 = match &located.v2 {
            Some(dir) => match Self::claim_v2(dir, owner) {
                Ok(c) => return Ok(c),
                Err(e) => e,
            },
            None => "no cgroup v2 hierarchy is mounted".to_string(),
        };
        match Self::claim_v1(&located, owner) {
            Ok(c) => Ok(c),
            Err(v1) => Err(format!("cgroup v2: {v2}; cgroup v1: {v1}")),
        }
    }

    /// cgroup v2: the daemon's own cgroup must offer memory and pids and be writable (delegated), and
    /// hold no other process. The daemon moves itself into a `daemon` leaf (a cgroup with controllers
    /// enabled for its children may not hold processes) and enables both controllers for the runs.
    fn claim_v2(dir: &Path, owner: Option<(u32, u32)>) -> Result<Cgroups, String> {
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.controllers")).map_err(|e| io_at(dir, e))?;
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if !(has("memory") && has("pids")) {
            return Err(format!(
                "{} offers [{}], not memory and pids",
                dir.display(),
                controllers.trim()
            ));
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).map_err(|e| io_at(dir, e))?;
        let me = std::process::id().to_string();
        if let Some(other) = procs.lines().find(|p| p.trim() != me) {
            return Err(format!(
                "{} also holds process {other}; give the daemon a delegated cgroup of its own (systemd: Delegate=yes)",
                dir.display()
            ));
        }
        let leaf = dir.join("daemon");
        mkdir(&leaf)?;
        write(&leaf.join("cgroup.procs"), &me)?;
        // Run groups of an earlier daemon in this cgroup (it held no process but this one, so that
        // daemon is gone).
        remove_runs(dir);
        write(&dir.join("cgroup.subtree_control"), "+memory +pids")?;
        // After a switch to `owner`, the daemon creates run groups here and moves jails between its
        // leaf and them: both need write access to this directory and its `cgroup.procs`.
        for p in [
            dir.to_path_buf(),
            dir.join("cgroup.procs"),
            leaf.clone(),
            leaf.join("cgroup.procs"),
        ] {
            chown(&p, owner)?;
        }
        Ok(Cgroups {
            version: Version::V2,
            parents: vec![dir.to_path_buf()],
            seq: AtomicU64::new(0),
            leftover: Mutex::new(vec![]),
        })
    }

    /// cgroup v1: in the daemon's own memory and pids cgroups, a `sluice-sandbox-uidUID` directory for
    /// the uid the runs belong to, and in it a `d-PID` directory for this daemon. The daemon owns the
    /// latter's parent, so it can remove its own directory when it stops, even after dropping root.
    fn claim_v1(located: &Located, owner: Option<(u32, u32)>) -> Result<Cgroups, String> {
        let uid = owner.map_or_else(|| nix::unistd::geteuid().as_raw(), |(u, _)| u);
        let mut parents: Vec<PathBuf> = Vec::new();
        for controller in ["memory", "pids"] {
            let made = (|| {
                let dir = located
                    .v1
                    .get(controller)
                    .ok_or_else(|| format!("no {controller} hierarchy is mounted"))?;
                let shared = dir.join(format!("sluice-sandbox-uid{uid}"));
                mkdir(&shared)?;
                chown(&shared, owner)?;
                sweep_stale(&shared);
                let own = shared.join(format!("d-{}", std::process::id()));
                mkdir(&own)?;
                chown(&own, owner)?;
                Ok::<PathBuf, String>(own)
            })();
            match made {
                Ok(own) => parents.push(own),
                Err(e) => {
                    for p in &parents {
                        let _ = std::fs::remove_dir(p);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Cgroups {
            version: Version::V1,
            parents,
            seq: AtomicU64::new(0),
            leftover: Mutex::new(vec![]),
        })
    }

    /// What `status` says about the subtree.
    pub fn describe(&self) -> String {
        let at: Vec<String> = self.parents.iter().map(|p| p.display().to_string()).collect();
        format!(
            "cgroup {} memory and pids limits per run, under {}",
            match self.version {
                Version::V1 => "v1",
                Version::V2 => "v2",
            },
            at.join(" and ")
        )
    }

    /// A fresh group for one run, with its process limit and a first memory limit.
    pub fn create_run(self: &Arc<Self>, memory_bytes: u64, max_pids: u64) -> io::Result<RunCgroup> {
        self.remove_leftovers();
        let name = format!("run-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        let mut dirs = Vec::new();
        for parent in &self.parents {
            let dir = parent.join(&name);
            if let Err(e) = std::fs::create_dir(&dir) {
                for d in &dirs {
                    let _ = std::fs::remove_dir(d);
                }
                return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display())));
            }
            dirs.push(dir);
        }
        let group = RunCgroup {
            version: self.version,
            dirs,
            memory: AtomicU64::new(0),
            cgroups: self.clone(),
        };
        group.set("pids", "pids.max", &max_pids.to_string())?;
        if self.version == Version::V2 {
            // The whole run is killed when it runs out of memory, not one process of it, and it may
            // not swap its way past the limit.
            group.set("memory", "memory.oom.group", "1")?;
            let _ = group.set("memory", "memory.swap.max", "0");
        }
        group.set_memory(memory_bytes)?;
        Ok(group)
    }

    /// Queues a finished run's group for removal. Nothing is removed here: this runs on the daemon's
    /// async workers (a jail is dropped there), and removing a memory cgroup can wait several ms for the
    /// kernel. The next `create_run` (on a blocking thread) or `close` removes it.
    fn retire(&self, dirs: Vec<PathBuf>) {
        if let Ok(mut l) = self.leftover.lock() {
            l.extend(dirs);
        }
    }

    fn remove_leftovers(&self) {
        if let Ok(mut l) = self.leftover.lock() {
            l.retain(|d| std::fs::remove_dir(d).is_err() && d.exists());
        }
    }

    /// Removes the daemon's groups. The last runs were killed just before: their processes get a moment
    /// to exit, so that a daemon that stops cleanly leaves nothing behind (what a killed one leaves, the
    /// next start removes). Called when the daemon stops, and again (harmlessly) on drop.
    pub fn close(&self) {
        for _ in 0..100 {
            self.remove_leftovers();
            if self.leftover.lock().map(|l| l.is_empty()).unwrap_or(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // v1: the `d-PID` directories are the daemon's own; v2: the cgroup it was given stays.
        if self.version == Version::V1 {
            for d in &self.parents {
                remove_tree(d);
            }
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.close();
    }
}

/// Removes the groups of daemons that are gone (`d-PID` and their runs): a daemon that was killed
/// could not remove its own.
fn sweep_stale(shared: &Path) {
    let Ok(entries) = std::fs::read_dir(shared) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("d-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&entry.path());
    }
}

/// Removes a daemon's group and its (empty) run groups.
fn remove_tree(dir: &Path) {
    remove_runs(dir);
    let _ = std::fs::remove_dir(dir);
}

/// Removes the (empty) run groups in a directory.
fn remove_runs(dir: &Path) {
    if let Ok(runs) = std::fs::read_dir(dir) {
        for run in runs
            .flatten()
            .filter(|r| r.file_name().to_string_lossy().starts_with("run-"))
        {
            let _ = std::fs::remove_dir(run.path());
        }
    }
}

fn mkdir(path: &Path) -> Result<(), String> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_at(path, e)),
    }
}

/// One run's group. Dropping it queues the group for removal by its `Cgroups`.
#[derive(Debug)]
pub struct RunCgroup {
    version: Version,
    /// v2: the group; v1: the memory group, then the pids group.
    dirs: Vec<PathBuf>,
    /// The memory limit last written (a write costs ≈ 0.3 ms on cgroup v1, so an unchanged one is kept).
    memory: AtomicU64,
    cgroups: Arc<Cgroups>,
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        self.cgroups.retire(std::mem::take(&mut self.dirs));
    }
}

impl RunCgroup {
    fn dir_for(&self, controller: &str) -> &Path {
        match (self.version, controller) {
            (Version::V1, "pids") => &self.dirs[1],
            _ => &self.dirs[0],
        }
    }

    fn set(&self, controller: &str, file: &str, value: &str) -> io::Result<()> {
        let path = self.dir_for(controller).join(file);
        std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Moves a process (and so everything it forks later) into the group.
    pub fn enter(&self, pid: i32) -> io::Result<()> {
        let pid = pid.to_string();
        match self.version {
            Version::V2 => self.set("memory", "cgroup.procs", &pid),
            Version::V1 => {
                self.set("memory", "cgroup.procs", &pid)?;
                self.set("pids", "cgroup.procs", &pid)
            }
        }
    }

    /// Sets the run's memory limit (all its processes together).
    pub fn set_memory(&self, bytes: u64) -> io::Result<()> {
        if self.memory.load(Ordering::Relaxed) == bytes {
            return Ok(());
        }
        match self.version {
            Version::V2 => self.set("memory", "memory.max", &bytes.to_string())?,
            Version::V1 => self.set("memory", "memory.limit_in_bytes", &bytes.to_string())?,
        }
        self.memory.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// True when the kernel killed a process of the run for exceeding the group's memory limit.
    pub fn oom_killed(&self) -> bool {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(self.dir_for("memory").join(file))
            .map(|text| oom_kills(&text) > 0)
            .unwrap_or(false)
    }
}

/// The `oom_kill` counter of `memory.events` (v2) or `memory.oom_control` (v1).
pub fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const HYBRID_MOUNTS: &str = "\
25 1 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
27 25 0:25 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
30 1 8:1 / / rw,relatime - ext4 /dev/vda rw";

    #[test]
    fn locates_each_hierarchy() {
        let p = PathBuf::from;
        let cases: Vec<(&str, &str, Located)> = vec![
            (
                "hybrid host (v1 controllers, empty v2)",
                "4:memory:/svc/a\n8:pids:/\n2:cpu,cpuacct:/svc\n0::/svc/a\n",
                Located {
                    v2: Some(p("/sys/fs/cgroup/unified/svc/a")),
                    v1: BTreeMap::from([
                        ("cpu".to_string(), p("/sys/fs/cgroup/cpu,cpuacct/svc")),
                        ("cpuacct".to_string(), p("/sys/fs/cgroup/cpu,cpuacct/svc")),
                        ("memory".to_string(), p("/sys/fs/cgroup/memory/svc/a")),
                        ("pids".to_string(), p("/sys/fs/cgroup/pids/")),
                    ]),
                },
            ),
            (
                "unified host, inside a cgroup namespace",
                "0::/\n",
                Located {
                    v2: Some(p("/sys/fs/cgroup/")),
                    v1: BTreeMap::new(),
                },
            ),
            (
                // A container's mount shows the hierarchy from the container's own cgroup down.
                "unified host, mount rooted below the hierarchy's root",
                "0::/user.slice/sluice.service\n",
                Located {
                    v2: Some(p("/sys/fs/cgroup/sluice.service")),
                    v1: BTreeMap::new(),
                },
            ),
            ("no cgroup mounts at all", "0::/x\n", Located::default()),
        ];
        let unified = "40 1 0:30 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        let unified_root = "40 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        for (name, cgroup, want) in cases {
            let mounts = match name {
                n if n.starts_with("hybrid") => HYBRID_MOUNTS,
                n if n.contains("rooted below") => unified,
                n if n.starts_with("unified") => unified_root,
                _ => "30 1 8:1 / / rw,relatime - ext4 /dev/vda rw",
            };
            assert_eq!(locate(cgroup, mounts), want, "{name}");
        }
    }

    #[test]
    fn a_process_outside_the_mounts_root_is_not_located() {
        let mounts = "40 1 0:30 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        assert_eq!(locate("0::/user.slice/x\n", mounts).v2, None);
    }

    #[test]
    fn reads_the_oom_kill_counter() {
        let cases = [
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3),
            ("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n", 1),
            ("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", 0),
            ("oom_kill_disable 0\nunder_oom 0\n", 0),
        ];
        for (text, want) in cases {
            assert_eq!(oom_kills(text), want, "{text:?}");
        }
    }
}
