//! The crate's one error type: input that cannot be read at all (everything else is a finding).

use std::path::PathBuf;

/// Why an artifact or a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DbtError {
    /// A file exists but could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An artifact is not the JSON document it should be; `path` is the JSON path of the offending value.
    #[error("{file}: invalid {artifact} at JSON path `{path}`: {source}")]
    Json {
        /// The file name (or label) of the artifact.
        file: String,
        /// Which artifact this is: `manifest.json`, `catalog.json`, `run_results.json`.
        artifact: &'static str,
        /// The JSON path of the value that did not fit, for example `nodes.model.x.columns`.
        path: String,
        /// serde_json's error, which carries the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The directory has neither a `dbt_project.yml` nor a manifest to work from.
    #[error("{}: not a dbt project: no dbt_project.yml and no {}", dir.display(), manifest.display())]
    NotAProject {
        /// The project directory that was given.
        dir: PathBuf,
        /// Where the manifest was looked for.
        manifest: PathBuf,
    },
    /// A fenced load (see `fs::load_project_within`) was led outside the directory it may read.
    #[error(
        "{what} resolves to {}, outside {}; only files inside the registered project are read",
        path.display(),
        fence.display()
    )]
    OutsideProject {
        /// What pointed there: `dbt_project.yml`, `the target directory`, a project path.
        what: String,
        /// Where it resolves to.
        path: PathBuf,
        /// The directory reads must stay in.
        fence: PathBuf,
    },
    /// A `focus` value that none of the map views understands.
    #[error("unknown focus `{0}`: expected all, work_order, missing, stubs, sources, macros or model:<name>")]
    UnknownFocus(String),
}
