//! dbt projects the gateway knows: from the config file and the store (config wins, like connections), and
//! the rule that every `project_dir` an agent names must lie inside one of them or a configured root.
//!
//! Paths are compared after canonicalisation (symlinks followed), so `..` and links cannot lead a tool out
//! of the registered projects.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::GatewayError;
use crate::setup::Context;
use crate::store::projects::ProjectRecord;
use crate::store::{LOCAL_ORG, Store};

/// Where a project was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectSource {
    Config,
    Store,
}

impl ProjectSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectSource::Config => "config",
            ProjectSource::Store => "store",
        }
    }
}

/// A registered dbt project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectEntry {
    pub name: String,
    /// The directory as registered (config: made absolute against the config file; store: canonical).
    pub dir: PathBuf,
    pub connection: Option<String>,
    pub description: Option<String>,
    pub source: ProjectSource,
}

/// The org's projects, sorted by name: config ones first win, stored ones of the same name are skipped.
pub async fn list(
    settings: &Settings,
    store: &Store,
    org_id: &str,
) -> Result<Vec<ProjectEntry>, GatewayError> {
    // Config projects belong to the single-tenant `local` org, as config connections do.
    let mut out: Vec<ProjectEntry> = if org_id == LOCAL_ORG {
        settings
            .projects
            .iter()
            .map(|p| ProjectEntry {
                name: p.name.clone(),
                dir: p.dir.clone(),
                connection: p.connection.clone(),
                description: p.description.clone(),
                source: ProjectSource::Config,
            })
            .collect()
    } else {
        Vec::new()
    };
    for ProjectRecord {
        name,
        dir,
        connection,
        description,
        ..
    } in store.list_projects(org_id).await?
    {
        if out.iter().any(|p| p.name == name) {
            tracing::warn!(project = %name, "stored project ignored: the config file defines one with the same name");
            continue;
        }
        out.push(ProjectEntry {
            name,
            dir: PathBuf::from(dir),
            connection,
            description,
            source: ProjectSource::Store,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Project names appear in tool calls and logs: keep them simple identifiers.
pub fn validate_name(name: &str) -> Result<(), GatewayError> {
    crate::config::check_name("project", name)
}

/// `sluice project add`: the directory must exist and hold a `dbt_project.yml` (or a `target/manifest.json`),
/// the connection, when given, must exist, and a config project of the same name cannot be shadowed.
pub async fn add(
    ctx: &Context,
    org_id: &str,
    name: &str,
    dir: &Path,
    connection: Option<&str>,
    description: Option<&str>,
) -> Result<ProjectRecord, GatewayError> {
    validate_name(name)?;
    if org_id == LOCAL_ORG && ctx.settings.projects.iter().any(|p| p.name == name) {
        return Err(GatewayError::Conflict(format!(
            "'{name}' is defined in the config file; config projects cannot be shadowed"
        )));
    }
    let canonical = std::fs::canonicalize(dir).map_err(|e| {
        GatewayError::Invalid(format!(
            "project directory {} cannot be opened: {e}",
            dir.display()
        ))
    })?;
    if !canonical.join("dbt_project.yml").is_file() && !canonical.join("target/manifest.json").is_file() {
        return Err(GatewayError::Invalid(format!(
            "{} is not a dbt project: it has no dbt_project.yml and no target/manifest.json",
            canonical.display()
        )));
    }
    if let Some(conn) = connection
        && !ctx.connection_names(org_id).await?.iter().any(|c| c == conn)
    {
        return Err(GatewayError::Invalid(format!(
            "unknown connection '{conn}' in organization '{org_id}': add it first with `sluice connection add`"
        )));
    }
    let dir = canonical.to_str().ok_or_else(|| {
        GatewayError::Invalid(format!(
            "project directory {} is not valid UTF-8",
            canonical.display()
        ))
    })?;
    ctx.store
        .insert_project(org_id, name, dir, connection, description)
        .await
}

/// `sluice project remove`: only stored projects; config ones are edited in the file.
pub async fn remove(ctx: &Context, org_id: &str, name: &str) -> Result<(), GatewayError> {
    if org_id == LOCAL_ORG && ctx.settings.projects.iter().any(|p| p.name == name) {
        return Err(GatewayError::Conflict(format!(
            "'{name}' is defined in the config file; remove it there"
        )));
    }
    ctx.store.remove_project(org_id, name).await
}

/// A `project_dir` argument after the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDir {
    /// Canonical directory.
    pub dir: PathBuf,
    /// The registered project it lies in (the innermost when nested), if any.
    pub project: Option<ProjectEntry>,
    /// The canonical directory reads must stay inside: the registered project's, or the root's.
    pub fence: PathBuf,
}

/// Resolves what an agent gave as `project_dir`: a registered project's name, or an absolute path that,
/// canonicalised, lies inside a registered project or a configured root. Anything else is refused with
/// the list of registered projects. Blocking (touches the filesystem).
pub fn resolve_dir(projects: &[ProjectEntry], roots: &[PathBuf], arg: &str) -> Result<ResolvedDir, String> {
    let arg = arg.trim();
    if let Some(p) = projects.iter().find(|p| p.name == arg) {
        let dir = std::fs::canonicalize(&p.dir).map_err(|e| {
            format!(
                "project '{}' at {} cannot be opened: {e}",
                p.name,
                p.dir.display()
            )
        })?;
        return Ok(ResolvedDir {
            fence: dir.clone(),
            dir,
            project: Some(p.clone()),
        });
    }
    let path = Path::new(arg);
    if arg.is_empty() || !path.is_absolute() {
        return Err(format!(
            "project_dir '{arg}' is neither a registered project's name nor an absolute path; {}",
            registered(projects, roots)
        ));
    }
    let dir =
        std::fs::canonicalize(path).map_err(|e| format!("project_dir '{arg}' cannot be opened: {e}"))?;
    let mut inside: Option<(PathBuf, &ProjectEntry)> = None;
    for p in projects {
        if let Ok(root) = std::fs::canonicalize(&p.dir)
            && dir.starts_with(&root)
            && inside
                .as_ref()
                .is_none_or(|(r, _)| root.components().count() > r.components().count())
        {
            inside = Some((root, p));
        }
    }
    if let Some((root, p)) = inside {
        return Ok(ResolvedDir {
            dir: project_root(&dir, &root),
            project: Some(p.clone()),
            fence: root,
        });
    }
    let root = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .find(|r| dir.starts_with(r));
    if let Some(root) = root {
        return Ok(ResolvedDir {
            dir: project_root(&dir, &root),
            project: None,
            fence: root,
        });
    }
    Err(format!(
        "project_dir '{arg}' is outside every registered dbt project; {}",
        registered(projects, roots)
    ))
}

/// A path inside a project (say its `models/` directory) means that project: the nearest directory at or
/// above `dir`, but not above `fence`, that holds a `dbt_project.yml`. Without one, `dir` itself.
fn project_root(dir: &Path, fence: &Path) -> PathBuf {
    dir.ancestors()
        .take_while(|a| a.starts_with(fence))
        .find(|a| a.join("dbt_project.yml").is_file())
        .unwrap_or(dir)
        .to_path_buf()
}

/// The list an agent needs to pick a valid `project_dir`.
fn registered(projects: &[ProjectEntry], roots: &[PathBuf]) -> String {
    let mut text = if projects.is_empty() {
        "no dbt projects are registered (add one with `sluice project add --name N --dir D`)".to_owned()
    } else {
        let list: Vec<String> = projects
            .iter()
            .map(|p| format!("{} ({})", p.name, p.dir.display()))
            .collect();
        format!("registered projects: {}", list.join(", "))
    };
    if !roots.is_empty() {
        let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        text.push_str(&format!("; project roots: {}", list.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn entry(name: &str, dir: &Path) -> ProjectEntry {
        ProjectEntry {
            name: name.into(),
            dir: dir.to_path_buf(),
            connection: None,
            description: None,
            source: ProjectSource::Store,
        }
    }

    #[test]
    fn project_dirs_must_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let jaffle = base.join("jaffle");
        let nested = jaffle.join("sub");
        let other = base.join("other");
        let root = base.join("root");
        for d in [&nested, &other, &root.join("p")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(&other, jaffle.join("escape")).unwrap();
        std::fs::write(jaffle.join("dbt_project.yml"), "name: jaffle\n").unwrap();
        let projects = vec![entry("jaffle", &jaffle)];
        let roots = vec![root.clone()];
        let ok = |arg: &str| resolve_dir(&projects, &roots, arg);

        assert_eq!(ok("jaffle").unwrap().dir, jaffle);
        // A directory inside the project means the project.
        let r = ok(nested.to_str().unwrap()).unwrap();
        assert_eq!(
            (r.dir, r.project.map(|p| p.name)),
            (jaffle.clone(), Some("jaffle".into()))
        );
        let r = ok(root.join("p").to_str().unwrap()).unwrap();
        assert_eq!((r.dir, r.project, r.fence), (root.join("p"), None, root.clone()));

        let cases = [
            (
                other.display().to_string(),
                "is outside every registered dbt project",
            ),
            (
                format!("{}/../other", jaffle.display()),
                "is outside every registered dbt project",
            ),
            (
                jaffle.join("escape").display().to_string(),
                "is outside every registered dbt project",
            ),
            (
                "relative/path".to_owned(),
                "neither a registered project's name nor an absolute path",
            ),
            ("/does/not/exist".to_owned(), "cannot be opened"),
        ];
        for (arg, message) in cases {
            let err = ok(&arg).unwrap_err();
            assert!(err.contains(message), "{arg}: {err}");
        }
        let err = ok(other.to_str().unwrap()).unwrap_err();
        assert!(
            err.contains(&format!("registered projects: jaffle ({})", jaffle.display())),
            "{err}"
        );
        assert!(
            err.contains(&format!("project roots: {}", root.display())),
            "{err}"
        );
        let err = resolve_dir(&[], &[], other.to_str().unwrap()).unwrap_err();
        assert!(err.contains("no dbt projects are registered"), "{err}");
    }

    #[test]
    fn config_projects_are_relative_to_the_config_file() {
        use crate::config::{Overrides, Settings};
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("sluice.toml");
        let resolve = |text: &str| {
            std::fs::write(&config, text).unwrap();
            Settings::resolve(Overrides {
                config: Some(config.clone()),
                ..Default::default()
            })
        };
        let s = resolve(
            "[[projects]]\nname = 'a'\ndir = 'proj/a'\nconnection = 'wh'\n\n\
             [[projects]]\nname = 'b'\ndir = '/abs/b'\n\n[dbt]\nproject_roots = ['roots']\n",
        )
        .unwrap();
        let dirs: Vec<_> = s
            .projects
            .iter()
            .map(|p| (p.name.as_str(), p.dir.clone()))
            .collect();
        assert_eq!(
            dirs,
            vec![("a", tmp.path().join("proj/a")), ("b", PathBuf::from("/abs/b"))]
        );
        assert_eq!(s.projects[0].connection.as_deref(), Some("wh"));
        assert_eq!(s.dbt_project_roots, vec![tmp.path().join("roots")]);
        let cases = [
            (
                "[[projects]]\nname = 'a'\ndir = 'x'\n[[projects]]\nname = 'a'\ndir = 'y'\n",
                "project 'a' is defined twice in the config",
            ),
            (
                "[[projects]]\nname = 'a'\ndir = 'x'\nconection = 'wh'\n",
                "unknown field `conection`",
            ),
            ("[dbt]\nroots = ['x']\n", "unknown field `roots`"),
        ];
        for (text, message) in cases {
            let err = resolve(text).unwrap_err().to_string();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn names() {
        for ok in ["jaffle", "a-b_c1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1x", "a b", "a/b", "x".repeat(65).as_str()] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
