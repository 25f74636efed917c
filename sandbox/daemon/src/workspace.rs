//! Workspace file operations, confined by the kernel: every path is resolved with `openat2` relative
//! to the workspace's directory descriptor with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV`, and every create/rename/remove acts on a single name inside a parent resolved the
//! same way. A symlink planted by sandboxed code can point anywhere; it is never followed out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, RenameFlags, ResolveFlag, openat2, renameat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use sluice_sandbox_protocol::{
    DirEntry, ErrorKind, FileContent, FileInfo, FileKind, Listing, SearchResult, Tree, TreeNode,
};

use crate::error::OpError;
use crate::paths::{components, glob_match, join};

/// Most entries one listing, tree, search or snapshot visits.
pub const MAX_ENTRIES: usize = 10_000;
/// Default depth of `directory_tree`.
pub const DEFAULT_TREE_DEPTH: u32 = 8;

/// A session's workspace, reached only through its directory descriptor.
pub struct Workspace {
    root: OwnedFd,
    /// Inside gVisor the daemon is root and each session has its own uid: what the daemon creates is
    /// handed to that uid, so the session's code can change it.
    owner: Option<(u32, u32)>,
}

/// Set once `openat2` answered `ENOSYS` (gVisor's kernel): from then on paths are resolved one component
/// at a time, refusing every symlink (see [`open_beneath_by_components`]).
static NO_OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV)` for kernels without it: each component is opened with
/// `O_NOFOLLOW` relative to the previous one and must be a directory on the workspace's file system; the
/// last one is opened with `O_NOFOLLOW` too. Stricter than `openat2`: a symlink inside the workspace is
/// not followed either (`ELOOP`), so a component swapped for a symlink by sandboxed code mid-walk is
/// refused rather than followed. `..` never gets here (the lexical check rejects it).
pub fn open_beneath_by_components(
    root: &OwnedFd,
    comps: &[String],
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let dev = fstat(root.as_fd())?.st_dev;
    let check = |fd: &OwnedFd, want_dir: bool| -> Result<(), Errno> {
        let st = fstat(fd.as_fd())?;
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => return Err(Errno::ELOOP),
            SFlag::S_IFDIR => {}
            _ if want_dir => return Err(Errno::ENOTDIR),
            _ => {}
        }
        if st.st_dev != dev {
            return Err(Errno::EXDEV);
        }
        Ok(())
    };
    let step = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Some((last, parents)) = comps.split_last() else {
        let fd = nix::fcntl::openat(root.as_fd(), ".", flags | OFlag::O_CLOEXEC, mode)?;
        check(&fd, true)?;
        return Ok(fd);
    };
    let mut cur: Option<OwnedFd> = None;
    for c in parents {
        let at = cur.as_ref().unwrap_or(root);
        let next = nix::fcntl::openat(at.as_fd(), c.as_str(), step, Mode::empty())?;
        check(&next, true)?;
        cur = Some(next);
    }
    let at = cur.as_ref().unwrap_or(root);
    let fd = nix::fcntl::openat(
        at.as_fd(),
        last.as_str(),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(|e| {
        // `O_DIRECTORY | O_NOFOLLOW` on a symlink answers ENOTDIR: say it is a symlink that is not followed.
        let link = fstatat(
            at.as_fd(),
            last.as_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
        if e == Errno::ENOTDIR && link {
            Errno::ELOOP
        } else {
            e
        }
    })?;
    check(&fd, flags.contains(OFlag::O_DIRECTORY))?;
    Ok(fd)
}

/// (size, mtime in ns) per file, to tell which files a run created or changed.
pub type Snapshot = BTreeMap<String, (u64, i128)>;

fn kind_of(st: &FileStat) -> FileKind {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => FileKind::File,
        SFlag::S_IFDIR => FileKind::Directory,
        SFlag::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn info(path: String, st: &FileStat) -> FileInfo {
    FileInfo {
        path,
        kind: kind_of(st),
        size: st.st_size.max(0) as u64,
        mode: st.st_mode & 0o7777,
        modified_ms: st.st_mtime * 1000 + st.st_mtime_nsec / 1_000_000,
    }
}

impl Workspace {
    /// Wraps a directory descriptor (any open mode; `O_PATH` is enough).
    pub fn new(root: OwnedFd) -> Self {
        Workspace { root, owner: None }
    }

    /// A workspace whose new files and directories are handed to `uid`/`gid` (the daemon is root).
    pub fn with_owner(root: OwnedFd, uid: u32, gid: u32) -> Self {
        Workspace {
            root,
            owner: Some((uid, gid)),
        }
    }

    fn open(&self, comps: &[String], flags: OFlag, mode: Mode) -> Result<OwnedFd, OpError> {
        use std::sync::atomic::Ordering;
        let path = join(comps);
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).mode(mode).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
            match openat2(self.root.as_fd(), path.as_str(), how) {
                Err(Errno::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                r => return r.map_err(|e| OpError::fs(&path, e)),
            }
        }
        open_beneath_by_components(&self.root, comps, flags, mode).map_err(|e| OpError::fs(&path, e))
    }

    /// Hands what the daemon just created to the session's uid (inside gVisor).
    fn own(&self, fd: &impl AsFd, path: &str) -> Result<(), OpError> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::fchown(
                fd.as_fd(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| OpError::fs(path, e))?;
        }
        Ok(())
    }

    fn dir(&self, comps: &[String]) -> Result<OwnedFd, OpError> {
        self.open(comps, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
    }

    /// The parent directory's descriptor and the final name; the root itself has no parent.
    fn parent(&self, comps: &[String], path: &str) -> Result<(OwnedFd, String), OpError> {
        let Some((name, parent)) = comps.split_last() else {
            return Err(OpError::new(
                ErrorKind::InvalidArgument,
                format!("{path:?} is the workspace root"),
            ));
        };
        Ok((self.dir(parent)?, name.clone()))
    }

    pub fn stat(&self, path: &str) -> Result<FileInfo, OpError> {
        let comps = components(path)?;
        let st = if comps.is_empty() {
            fstat(self.root.as_fd()).map_err(|e| OpError::fs(path, e))?
        } else {
            let (dir, name) = self.parent(&comps, path)?;
            fstatat(
                dir.as_fd(),
                name.as_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| OpError::fs(path, e))?
        };
        Ok(info(join(&comps), &st))
    }

    fn entries(&self, comps: &[String], limit: usize) -> Result<(Vec<(String, FileStat)>, bool), OpError> {
        let fd = self.open(comps, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
        let statfd = fd.try_clone().map_err(|e| OpError::internal(e.to_string()))?;
        let path = join(comps);
        let mut dir = Dir::from_fd(fd).map_err(|e| OpError::fs(&path, e))?;
        let mut out = Vec::new();
        let mut truncated = false;
        for entry in dir.iter() {
            let entry = entry.map_err(|e| OpError::fs(&path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            if out.len() >= limit {
                truncated = true;
                break;
            }
            match fstatat(
                statfd.as_fd(),
                entry.file_name(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => out.push((name, st)),
                // Removed between readdir and stat by a concurrent run: not an error.
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(OpError::fs(&path, e)),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((out, truncated))
    }

    pub fn list(&self, path: &str) -> Result<Listing, OpError> {
        let comps = components(path)?;
        let (entries, truncated) = self.entries(&comps, MAX_ENTRIES)?;
        Ok(Listing {
            path: join(&comps),
            entries: entries
                .into_iter()
                .map(|(name, st)| DirEntry {
                    name,
                    kind: kind_of(&st),
                    size: st.st_size.max(0) as u64,
                })
                .collect(),
            truncated,
        })
    }

    /// Walks directories (never through symlinks), calling `visit` with each entry's components.
    fn walk(
        &self,
        comps: &mut Vec<String>,
        depth: u32,
        budget: &mut usize,
        visit: &mut dyn FnMut(&[String], &FileStat) -> bool,
    ) -> Result<bool, OpError> {
        let (entries, mut truncated) = self.entries(comps, *budget)?;
        for (name, st) in entries {
            if *budget == 0 {
                return Ok(true);
            }
            *budget -= 1;
            comps.push(name);
            let descend = visit(comps, &st);
            if descend && kind_of(&st) == FileKind::Directory {
                if depth > 1 {
                    truncated |= self.walk(comps, depth - 1, budget, visit)?;
                } else {
                    truncated = true;
                }
            }
            comps.pop();
        }
        Ok(truncated)
    }

    pub fn tree(&self, path: &str, max_depth: Option<u32>) -> Result<Tree, OpError> {
        let comps = components(path)?;
        let st = self.stat(path)?;
        let name = comps.last().cloned().unwrap_or_else(|| ".".to_string());
        let mut root = TreeNode {
            name,
            kind: st.kind,
            children: vec![],
        };
        let mut truncated = false;
        if st.kind == FileKind::Directory {
            let depth = max_depth.unwrap_or(DEFAULT_TREE_DEPTH).clamp(1, 64);
            let base = comps.len();
            let mut flat: Vec<(Vec<String>, FileKind)> = Vec::new();
            let mut budget = MAX_ENTRIES;
            truncated = self.walk(&mut comps.clone(), depth, &mut budget, &mut |c, st| {
                flat.push((c[base..].to_vec(), kind_of(st)));
                true
            })?;
            for (rel, kind) in flat {
                insert(&mut root, &rel, kind);
            }
        }
        Ok(Tree { root, truncated })
    }

    pub fn search(&self, path: &str, pattern: &str, max: Option<u32>) -> Result<SearchResult, OpError> {
        let comps = components(path)?;
        let max = max.unwrap_or(1000).clamp(1, MAX_ENTRIES as u32) as usize;
        let base = comps.len();
        let mut matches = Vec::new();
        let mut budget = MAX_ENTRIES;
        let mut truncated = self.walk(&mut comps.clone(), 64, &mut budget, &mut |c, _| {
            if glob_match(pattern, &c[base..].join("/")) && matches.len() <= max {
                matches.push(c.join("/"));
            }
            true
        })?;
        if matches.len() > max {
            matches.truncate(max);
            truncated = true;
        }
        Ok(SearchResult { matches, truncated })
    }

    pub fn read(&self, path: &str, max_bytes: u64) -> Result<FileContent, OpError> {
        let comps = components(path)?;
        let fd = self.open(
            &comps,
            OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::empty(),
        )?;
        let st = fstat(fd.as_fd()).map_err(|e| OpError::fs(path, e))?;
        match kind_of(&st) {
            FileKind::File => {}
            FileKind::Directory => return Err(OpError::fs(path, Errno::EISDIR)),
            _ => {
                return Err(OpError::new(
                    ErrorKind::InvalidArgument,
                    format!("{path:?} is not a regular file"),
                ));
            }
        }
        let size = st.st_size.max(0) as u64;
        let mut content = Vec::with_capacity(size.min(max_bytes) as usize);
        std::fs::File::from(fd)
            .take(max_bytes)
            .read_to_end(&mut content)
            .map_err(|e| OpError::internal(format!("reading {path:?}: {e}")))?;
        Ok(FileContent {
            path: join(&comps),
            truncated: size > content.len() as u64,
            size,
            content: content.into(),
        })
    }

    pub fn write(&self, path: &str, content: &[u8], create_parents: bool) -> Result<FileInfo, OpError> {
        let comps = components(path)?;
        if comps.is_empty() {
            return Err(OpError::new(
                ErrorKind::IsADirectory,
                "cannot write to the workspace root",
            ));
        }
        if create_parents {
            self.mkdir_p(&comps[..comps.len() - 1], path)?;
        }
        let fd = self.open(
            &comps,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(0o644),
        )?;
        self.own(&fd, path)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(content).map_err(|e| match e.raw_os_error() {
            Some(n) => OpError::fs(path, Errno::from_raw(n)),
            None => OpError::internal(e.to_string()),
        })?;
        let st = fstat(file.as_fd()).map_err(|e| OpError::fs(path, e))?;
        Ok(info(join(&comps), &st))
    }

    fn mkdir_p(&self, comps: &[String], path: &str) -> Result<(), OpError> {
        for i in 0..comps.len() {
            let parent = self.dir(&comps[..i])?;
            match mkdirat(parent.as_fd(), comps[i].as_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) => {
                    if let Some((uid, gid)) = self.owner {
                        // By name in the parent just resolved (an O_PATH descriptor cannot be chowned).
                        nix::unistd::fchownat(
                            parent.as_fd(),
                            comps[i].as_str(),
                            Some(nix::unistd::Uid::from_raw(uid)),
                            Some(nix::unistd::Gid::from_raw(gid)),
                            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(|e| OpError::fs(path, e))?;
                    }
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(OpError::fs(path, e)),
            }
        }
        // Resolving the whole path proves every component is a directory inside the workspace.
        self.dir(comps).map(drop)
    }

    pub fn mkdir(&self, path: &str) -> Result<FileInfo, OpError> {
        let comps = components(path)?;
        self.mkdir_p(&comps, path)?;
        self.stat(path)
    }

    pub fn rename(&self, source: &str, destination: &str) -> Result<FileInfo, OpError> {
        let from = components(source)?;
        let to = components(destination)?;
        let (from_dir, from_name) = self.parent(&from, source)?;
        let (to_dir, to_name) = self.parent(&to, destination)?;
        renameat2(
            from_dir.as_fd(),
            from_name.as_str(),
            to_dir.as_fd(),
            to_name.as_str(),
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| match e {
            Errno::EEXIST => OpError::fs(destination, e),
            _ => OpError::fs(source, e),
        })?;
        self.stat(destination)
    }

    /// Sizes and modification times of every regular file (up to [`MAX_ENTRIES`]).
    pub fn snapshot(&self) -> Result<Snapshot, OpError> {
        let mut snap = Snapshot::new();
        let mut budget = MAX_ENTRIES;
        self.walk(&mut Vec::new(), 64, &mut budget, &mut |c, st| {
            if kind_of(st) == FileKind::File {
                let mtime = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
                snap.insert(c.join("/"), (st.st_size.max(0) as u64, mtime));
            }
            true
        })?;
        Ok(snap)
    }
}

fn insert(node: &mut TreeNode, rel: &[String], kind: FileKind) {
    let Some((first, rest)) = rel.split_first() else {
        return;
    };
    if rest.is_empty() {
        node.children.push(TreeNode {
            name: first.clone(),
            kind,
            children: vec![],
        });
        return;
    }
    if let Some(child) = node.children.iter_mut().find(|c| &c.name == first) {
        insert(child, rest, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ws() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path().join(".").as_path()).unwrap();
        (dir, Workspace::new(fd.into()))
    }

    #[test]
    fn component_walk_refuses_symlinks_and_other_file_systems() {
        let (dir, w) = ws();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/ok.txt"), "fine").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("d/ok.txt", dir.path().join("inside")).unwrap();
        let c = |p: &str| {
            p.split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let open = |p: &str, flags: OFlag| {
            open_beneath_by_components(&w.root, &c(p), flags, Mode::from_bits_truncate(0o644)).map(drop)
        };
        // (path, flags, expected)
        let cases: Vec<(&str, OFlag, Result<(), Errno>)> = vec![
            ("d/ok.txt", OFlag::O_RDONLY, Ok(())),
            ("d", OFlag::O_PATH | OFlag::O_DIRECTORY, Ok(())),
            ("", OFlag::O_PATH | OFlag::O_DIRECTORY, Ok(())),
            ("d/new.txt", OFlag::O_WRONLY | OFlag::O_CREAT, Ok(())),
            ("dirlink/secret", OFlag::O_RDONLY, Err(Errno::ELOOP)),
            ("dirlink", OFlag::O_PATH | OFlag::O_DIRECTORY, Err(Errno::ELOOP)),
            ("abs", OFlag::O_RDONLY, Err(Errno::ELOOP)),
            (
                "abs",
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
                Err(Errno::ELOOP),
            ),
            ("abs", OFlag::O_PATH, Err(Errno::ELOOP)),
            // Stricter than openat2: a symlink that stays inside is not followed either.
            ("inside", OFlag::O_RDONLY, Err(Errno::ELOOP)),
            ("d/ok.txt/x", OFlag::O_RDONLY, Err(Errno::ENOTDIR)),
            ("missing/x", OFlag::O_RDONLY, Err(Errno::ENOENT)),
        ];
        for (path, flags, expected) in cases {
            assert_eq!(open(path, flags), expected, "{path} {flags:?}");
        }
        assert!(!outside.path().join("new.txt").exists());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "s"
        );
        // A mount point below the root is another file system: refused (here /proc below /).
        let slash: OwnedFd = std::fs::File::open("/").unwrap().into();
        let other = open_beneath_by_components(&slash, &c("proc/version"), OFlag::O_RDONLY, Mode::empty());
        assert_eq!(other.map(drop), Err(Errno::EXDEV));
    }

    #[test]
    fn symlinks_and_dotdot_cannot_leave_the_workspace() {
        let (dir, w) = ws();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", dir.path().join("rel")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
        std::fs::write(dir.path().join("ok.txt"), "fine").unwrap();
        std::os::unix::fs::symlink("ok.txt", dir.path().join("inside")).unwrap();
        // (operation, expected kind or content)
        let kind = |r: Result<FileContent, OpError>| r.map(|c| c.content.0).map_err(|e| e.kind);
        assert_eq!(kind(w.read("abs", 100)), Err(ErrorKind::PathOutsideWorkspace));
        assert_eq!(kind(w.read("rel", 100)), Err(ErrorKind::PathOutsideWorkspace));
        assert_eq!(
            kind(w.read("dirlink/secret", 100)),
            Err(ErrorKind::PathOutsideWorkspace)
        );
        assert_eq!(
            kind(w.read("../secret", 100)),
            Err(ErrorKind::PathOutsideWorkspace)
        );
        assert_eq!(
            kind(w.read("/etc/passwd", 100)),
            Err(ErrorKind::PathOutsideWorkspace)
        );
        assert_eq!(kind(w.read("inside", 100)), Ok(b"fine".to_vec()));
        assert_eq!(
            w.write("dirlink/x", b"x", false).unwrap_err().kind,
            ErrorKind::PathOutsideWorkspace
        );
        assert_eq!(
            w.write("dirlink/a/x", b"x", true).unwrap_err().kind,
            ErrorKind::PathOutsideWorkspace
        );
        assert_eq!(
            w.mkdir("dirlink/newdir").unwrap_err().kind,
            ErrorKind::PathOutsideWorkspace
        );
        assert_eq!(
            w.rename("ok.txt", "dirlink/stolen").unwrap_err().kind,
            ErrorKind::PathOutsideWorkspace
        );
        assert_eq!(
            w.list("dirlink").unwrap_err().kind,
            ErrorKind::PathOutsideWorkspace
        );
        // A symlink is reported as a symlink, not as what it points to.
        assert_eq!(w.stat("abs").unwrap().kind, FileKind::Symlink);
        assert!(!outside.path().join("x").exists() && !outside.path().join("stolen").exists());
        assert!(!outside.path().join("newdir").exists());
    }

    #[test]
    fn file_operations_round_trip() {
        let (_dir, w) = ws();
        w.write("a/b/c.txt", b"hello", true).unwrap();
        assert_eq!(w.read("a/b/c.txt", 3).unwrap().content.0, b"hel".to_vec());
        assert!(w.read("a/b/c.txt", 3).unwrap().truncated);
        assert_eq!(
            w.write("x/y.txt", b"", false).unwrap_err().kind,
            ErrorKind::NotFound
        );
        w.mkdir("out/charts").unwrap();
        assert_eq!(w.mkdir("a/b/c.txt/d").unwrap_err().kind, ErrorKind::NotADirectory);
        w.rename("a/b/c.txt", "out/c.txt").unwrap();
        w.write("a/b/other.sql", b"select 1", false).unwrap();
        assert_eq!(
            w.rename("a/b/other.sql", "out/c.txt").unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        let names: Vec<String> = w.list(".").unwrap().entries.into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec!["a", "out"]);
        assert_eq!(
            w.search(".", "*.sql", None).unwrap().matches,
            vec!["a/b/other.sql"]
        );
        assert_eq!(
            w.search("out", "**/*.txt", None).unwrap().matches,
            vec!["out/c.txt"]
        );
        let tree = w.tree(".", None).unwrap();
        assert_eq!(
            tree.root
                .children
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "out"]
        );
        assert_eq!(w.read("a", 10).unwrap_err().kind, ErrorKind::IsADirectory);
        let snap = w.snapshot().unwrap();
        assert_eq!(
            snap.keys().cloned().collect::<Vec<_>>(),
            vec!["a/b/other.sql", "out/c.txt"]
        );
        assert_eq!(w.stat(".").unwrap().kind, FileKind::Directory);
    }
}
