//! The edge layer: finds and reads a project's files and artifacts on disk. Everything else in the crate
//! works on what this returns and never touches the filesystem.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde::de::DeserializeOwned;

use crate::analyze::{Artifact, ProjectInput};
use crate::artifacts::catalog::Catalog;
use crate::artifacts::from_slice_untracked;
use crate::artifacts::manifest::Manifest;
use crate::artifacts::run_results::RunResults;
use crate::error::DbtError;
use crate::files::{ProjectConfig, ProjectFile, ProjectFiles};

/// Directories that never hold the project's own sources.
const SKIP_DIRS: &[&str] = &[
    "dbt_packages",
    "dbt_modules",
    "target",
    "logs",
    "node_modules",
    "__pycache__",
];
/// File types the scanner reads.
const EXTENSIONS: &[&str] = &["sql", "py", "yml", "yaml", "csv"];

/// Reads a dbt project: `dbt_project.yml` and the files under its configured paths, plus whichever of
/// `manifest.json`, `catalog.json` and `run_results.json` exist in the target directory (`target_dir`
/// relative to the project, or `target-path` from `dbt_project.yml`, or `target`).
///
/// A missing artifact is not an error (the analysis reports it); an unreadable or malformed one is.
pub fn load_project(project_dir: &Path, target_dir: Option<&Path>) -> Result<ProjectInput, DbtError> {
    load(project_dir, target_dir, None)
}

/// [`load_project`] for a server that must read only inside `fence` (a canonical directory): a
/// `target-path`, `model-paths` entry or `--target-dir` that resolves outside it is an error, and a file
/// that is a symbolic link to somewhere outside it is skipped. A project's own `dbt_project.yml` cannot
/// then lead the reader to other files on the host.
pub fn load_project_within(
    project_dir: &Path,
    target_dir: Option<&Path>,
    fence: &Path,
) -> Result<ProjectInput, DbtError> {
    load(project_dir, target_dir, Some(fence))
}

/// Whether `path`, with symbolic links followed, lies inside `fence`. A path that does not exist holds
/// nothing to read, so it passes; what is read from it later is checked again.
fn within(fence: Option<&Path>, path: &Path) -> bool {
    match fence {
        None => true,
        Some(fence) => match std::fs::canonicalize(path) {
            Ok(real) => real.starts_with(fence),
            Err(_) => true,
        },
    }
}

fn check_within(fence: Option<&Path>, what: &str, path: &Path) -> Result<(), DbtError> {
    match fence {
        Some(f) if !within(fence, path) => Err(DbtError::OutsideProject {
            what: what.to_owned(),
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            fence: f.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

fn load(
    project_dir: &Path,
    target_dir: Option<&Path>,
    fence: Option<&Path>,
) -> Result<ProjectInput, DbtError> {
    let started = Instant::now();
    let dbt_project_path = project_dir.join("dbt_project.yml");
    check_within(fence, "dbt_project.yml", &dbt_project_path)?;
    let dbt_project = read_text(&dbt_project_path, "dbt_project.yml")?;
    let config = dbt_project
        .as_ref()
        .map(|f| ProjectConfig::parse(f).0)
        .unwrap_or_default();
    let target_rel = target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&config.target_path));
    let target = if target_rel.is_absolute() {
        target_rel.clone()
    } else {
        project_dir.join(&target_rel)
    };

    check_within(
        fence,
        "the target directory (target-path or --target-dir)",
        &target,
    )?;
    for artifact in ["manifest.json", "catalog.json", "run_results.json"] {
        check_within(fence, artifact, &target.join(artifact))?;
    }
    let manifest_path = target.join("manifest.json");
    // The project files are walked and read on a second thread while this one parses the artifacts: on a
    // 10,000-model project both take a few hundred milliseconds, and neither needs the other.
    let (manifest, catalog, run_results, files) = std::thread::scope(|scope| {
        let walker = scope.spawn(|| -> Result<Option<Vec<ProjectFile>>, DbtError> {
            if dbt_project.is_none() {
                return Ok(None);
            }
            let mut files = Vec::new();
            for root in config.scan_roots() {
                let dir = project_dir.join(root);
                check_within(
                    fence,
                    &format!("the project path `{root}` in dbt_project.yml"),
                    &dir,
                )?;
                walk(project_dir, &dir, &target, fence, &mut files)?;
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
            files.dedup_by(|a, b| a.path == b.path);
            Ok(Some(files))
        });
        let artifacts = (|| {
            let manifest = read_artifact(&manifest_path, "manifest.json", Manifest::from_slice)?;
            let catalog = read_artifact(&target.join("catalog.json"), "catalog.json", Catalog::from_slice)?;
            let run_results = read_artifact(
                &target.join("run_results.json"),
                "run_results.json",
                RunResults::from_slice,
            )?;
            Ok::<_, DbtError>((manifest, catalog, run_results))
        })();
        // A panic in the walker is a bug; it is reported as such rather than taking the process down.
        let files = walker.join().unwrap_or_else(|_| {
            Err(DbtError::Io {
                path: project_dir.to_path_buf(),
                source: std::io::Error::other("the project file walk panicked"),
            })
        });
        let (manifest, catalog, run_results) = artifacts?;
        Ok::<_, DbtError>((manifest, catalog, run_results, files?))
    })?;
    if dbt_project.is_none() && manifest.is_none() {
        return Err(DbtError::NotAProject {
            dir: project_dir.to_path_buf(),
            manifest: manifest_path,
        });
    }
    let files = files.map(|files| ProjectFiles { dbt_project, files });
    tracing::debug!(
        files = files.as_ref().map_or(0, |f| f.files.len()),
        manifest = manifest.is_some(),
        catalog = catalog.is_some(),
        run_results = run_results.is_some(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded dbt project"
    );
    Ok(ProjectInput {
        files,
        manifest,
        catalog,
        run_results,
        target_dir: display_path(&target_rel),
    })
}

/// Reads an artifact whole and parses it from memory: serde_json parses a slice several times faster than a
/// reader (strings are scanned in place rather than copied byte by byte), and the buffer is freed as soon as
/// the owned structs are built. A missing file is `None`; an empty one is an error naming it.
fn read_artifact<T: DeserializeOwned>(
    path: &Path,
    artifact: &'static str,
    parse: impl FnOnce(&[u8], &str) -> Result<T, DbtError>,
) -> Result<Option<Artifact<T>>, DbtError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbtError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let metadata = file.metadata().ok();
    let modified = metadata.as_ref().and_then(|m| m.modified().ok());
    let capacity = metadata.map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
    let mut bytes = Vec::with_capacity(capacity);
    file.read_to_end(&mut bytes).map_err(|source| DbtError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DbtError::EmptyArtifact {
            path: path.to_path_buf(),
            artifact,
        });
    }
    match from_slice_untracked(&bytes) {
        Ok(value) => Ok(Some(Artifact { value, modified })),
        // Parse it again, tracking the JSON path, to say where it is wrong.
        Err(fast) => {
            let value = parse(&bytes, &path.display().to_string())?;
            // Unreachable in practice: both parses read the same bytes.
            tracing::debug!(%fast, path = %path.display(), "artifact parsed on the second attempt");
            Ok(Some(Artifact { value, modified }))
        }
    }
}

fn read_text(path: &Path, relative: &str) -> Result<Option<ProjectFile>, DbtError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbtError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text =
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    // Editors on Windows leave a byte-order mark that YAML and Jinja would otherwise see as text.
    let text = text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text);
    Ok(Some(ProjectFile {
        path: relative.to_owned(),
        contents: text,
        modified,
    }))
}

fn walk(
    project_dir: &Path,
    dir: &Path,
    target: &Path,
    fence: Option<&Path>,
    out: &mut Vec<ProjectFile>,
) -> Result<(), DbtError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(DbtError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| DbtError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_type = entry.file_type().map_err(|source| DbtError::Io {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            if name.starts_with('.') || SKIP_DIRS.contains(&name.as_str()) || path == target {
                continue;
            }
            walk(project_dir, &path, target, fence, out)?;
            continue;
        }
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        if !within(fence, &path) {
            tracing::warn!(path = %path.display(), "skipped a link that leads out of the project");
            continue;
        }
        let relative = display_path(path.strip_prefix(project_dir).unwrap_or(&path));
        if ext == "csv" {
            // Seeds matter by name only; their data can be large.
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            out.push(ProjectFile {
                path: relative,
                contents: String::new(),
                modified,
            });
        } else if let Some(file) = read_text(&path, &relative)? {
            out.push(file);
        }
    }
    Ok(())
}

/// Reads one manifest, such as a baseline for `impact --state`; a missing file is an error here.
pub fn load_manifest(path: &Path) -> Result<Manifest, DbtError> {
    match read_artifact(path, "manifest.json", Manifest::from_slice)? {
        Some(artifact) => Ok(artifact.value),
        None => Err(DbtError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(ErrorKind::NotFound, "no such file"),
        }),
    }
}

/// A relative path with `/` separators, as dbt writes paths in its artifacts.
pub(crate) fn display_path(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            Component::RootDir => Some(String::new()),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn display_paths() {
        let cases = [
            ("./models/a.sql", "models/a.sql"),
            ("target", "target"),
            ("/abs/t", "/abs/t"),
            ("../x", "../x"),
        ];
        for (input, expected) in cases {
            assert_eq!(display_path(Path::new(input)), expected, "{input}");
        }
    }

    #[test]
    fn a_directory_without_project_or_manifest_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load_project(dir.path(), None).expect_err("not a project");
        assert!(matches!(err, DbtError::NotAProject { .. }), "{err}");
    }

    #[test]
    fn reads_files_and_skips_packages_and_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write("dbt_project.yml", "\u{feff}name: p\n");
        write("models/a.sql", "select 1");
        write("models/.hidden/b.sql", "select 1");
        write("models/notes.md", "x");
        write("dbt_packages/pkg/models/c.sql", "select 1");
        write("seeds/s.csv", "a,b\n1,2\n");
        write(
            "target/manifest.json",
            "{\"metadata\": {\"project_name\": \"p\"}}",
        );
        let input = load_project(root, None).expect("loads");
        let files = input.files.expect("files");
        assert_eq!(
            files.dbt_project.map(|f| f.contents),
            Some("name: p\n".to_owned())
        );
        let paths: Vec<_> = files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["models/a.sql", "seeds/s.csv"]);
        assert!(input.manifest.is_some());
        assert!(input.catalog.is_none());
        assert_eq!(input.target_dir, "target");
    }

    #[test]
    fn a_fenced_load_stays_inside_the_project() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("canonical");
        let project = base.join("p");
        let outside = base.join("secret");
        std::fs::create_dir_all(project.join("models")).expect("mkdir");
        std::fs::create_dir_all(outside.join("models")).expect("mkdir");
        std::fs::write(outside.join("models/leak.sql"), "select 'secret'").expect("write");
        std::fs::write(outside.join("manifest.json"), "{}").expect("write");
        std::fs::write(project.join("models/a.sql"), "select 1").expect("write");
        std::os::unix::fs::symlink(outside.join("models/leak.sql"), project.join("models/link.sql"))
            .expect("symlink");
        let write_config = |text: &str| std::fs::write(project.join("dbt_project.yml"), text).expect("write");

        write_config("name: p\n");
        let files = |input: ProjectInput| -> Vec<String> {
            input
                .files
                .map(|f| f.files.into_iter().map(|f| f.path).collect())
                .unwrap_or_default()
        };
        // Unfenced (the CLI on the user's own machine) follows the link; fenced skips it.
        let all = files(load_project(&project, None).expect("loads"));
        assert_eq!(all, vec!["models/a.sql", "models/link.sql"]);
        let fenced = files(load_project_within(&project, None, &project).expect("loads"));
        assert_eq!(fenced, vec!["models/a.sql"]);

        let cases = [
            (
                "name: p\nmodel-paths: ['../secret/models']\n",
                None,
                "the project path `../secret/models`",
            ),
            (
                "name: p\ntarget-path: '../secret'\n",
                None,
                "the target directory",
            ),
            ("name: p\n", Some(outside.as_path()), "the target directory"),
        ];
        for (config, target, what) in cases {
            write_config(config);
            let err = load_project_within(&project, target, &project)
                .expect_err("outside")
                .to_string();
            assert!(err.contains(what), "{config}: {err}");
            assert!(err.contains("outside"), "{config}: {err}");
            assert!(
                load_project(&project, target).is_ok(),
                "{config}: the CLI is not fenced"
            );
        }
    }

    #[test]
    fn a_corrupt_artifact_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("dbt_project.yml"), "name: p\n").expect("write");
        std::fs::create_dir(dir.path().join("target")).expect("mkdir");
        std::fs::write(dir.path().join("target/catalog.json"), "{\"nodes\": [").expect("write");
        let err = load_project(dir.path(), None).expect_err("corrupt");
        assert!(
            err.to_string()
                .contains("catalog.json: invalid catalog.json at JSON path"),
            "{err}"
        );
    }
}
