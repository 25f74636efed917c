//! Shared helpers: fixture projects copied to a temporary directory with controlled modification times.

mod artifacts;
mod cli;
mod column_lineage;
mod defects;
mod impact;
mod jaffle;
mod versions;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sluice_dbt::Finding;
use sluice_dbt::analyze::{Analysis, analyze};
use sluice_dbt::fs::load_project;

/// The committed fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dbt")
}

/// When the fixture's project files were "written". Git does not keep modification times, so every test
/// sets them: project files at `BASE`, artifacts a minute later (a fresh build), and the files under
/// `models/after_build/` (edits made after that build) another minute later.
pub const BASE: Duration = Duration::from_secs(1_800_000_000);

/// A fixture project in a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Copies `name` (without its warehouse file) and sets modification times as described at [`BASE`].
    pub fn new(name: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&fixtures().join(name), dir.path());
        let fixture = Fixture { dir };
        fixture.touch_all();
        fixture
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn touch_all(&self) {
        for file in walk(self.path()) {
            let rel = file.strip_prefix(self.path()).expect("inside");
            let offset = if rel.starts_with("target") {
                60
            } else if rel.starts_with("models/after_build") {
                120
            } else {
                0
            };
            set_mtime(&file, offset);
        }
    }

    /// Sets one file's modification time to `BASE + offset` seconds.
    pub fn touch(&self, rel: &str, offset: u64) {
        set_mtime(&self.path().join(rel), offset);
    }

    /// Loads and analyses the project.
    pub fn analyze(&self) -> (Analysis, Vec<Finding>) {
        analyze(load_project(self.path(), None).expect("fixture loads"))
    }
}

fn set_mtime(path: &Path, offset: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    file.set_modified(SystemTime::UNIX_EPOCH + BASE + Duration::from_secs(offset))
        .expect("set mtime");
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_tree(&path, &dest);
        } else if path.extension().is_none_or(|e| e != "duckdb") {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A finding reduced to what tests compare: rule code, node and location.
pub fn key(f: &Finding) -> (String, Option<String>, Option<String>) {
    (
        f.rule.code().to_owned(),
        f.node.clone(),
        f.location.as_ref().map(ToString::to_string),
    )
}
