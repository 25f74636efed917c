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
    /// An artifact file exists but holds nothing (0 bytes, or only whitespace): dbt was interrupted while
    /// writing it, or something truncated it.
    #[error(
        "{}: the file is empty (0 bytes of JSON), so it is not a usable {artifact}; rerun {}",
        path.display(),
        rerun(artifact)
    )]
    EmptyArtifact {
        /// The file.
        path: PathBuf,
        /// Which artifact it should be: `manifest.json`, `catalog.json`, `run_results.json`.
        artifact: &'static str,
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
    /// A lineage, impact or coverage question names a node the project does not have.
    #[error("no model, seed, snapshot or source named `{0}` in the project")]
    UnknownNode(String),
    /// A column lineage or impact question names a column the node does not have.
    #[error("`{node}` has no column `{column}`; its columns are: {known}")]
    UnknownColumn {
        /// The node.
        node: String,
        /// The column asked for.
        column: String,
        /// The columns it has, comma-separated.
        known: String,
    },
    /// A baseline manifest (`--state`) belongs to another dbt project.
    #[error(
        "the baseline manifest is from dbt project `{baseline}`, not `{current}`: compare artifacts of the same project"
    )]
    BaselineMismatch {
        /// The baseline's project name.
        baseline: String,
        /// The working project's name.
        current: String,
    },
}

/// The dbt command that writes an artifact, for messages about a broken one.
fn rerun(artifact: &str) -> &'static str {
    match artifact {
        "catalog.json" => "`dbt docs generate`",
        "run_results.json" => "`dbt build` (or the run, test or seed that wrote it)",
        _ => "`dbt compile` or `dbt build`",
    }
}
