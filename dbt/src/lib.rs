//! Pure dbt project intelligence: dbt's artifacts and project files in, a project graph and findings out.
//!
//! - [`fs::load_project`] is the only code that reads the disk: it returns an [`analyze::ProjectInput`].
//! - [`analyze::analyze`] builds the [`project::Project`] graph (manifest and files merged), runs every check
//!   and computes the [`work_order::WorkOrder`]; it returns `(Analysis, Vec<Finding>)` and never fails.
//! - [`render::map::render_map`] and [`render::report::render`] turn the result into text for agents and CI.
//! - [`cli`] holds the `sluice-dbt` commands as functions returning output and exit code, for reuse by the
//!   gateway's `sluice dbt …`.

pub mod analyze;
pub mod artifacts;
pub mod cli;
pub mod column_lineage;
pub mod coverage;
pub mod dbt_error;
pub mod error;
pub mod files;
pub mod finding;
pub mod fs;
pub mod impact;
pub mod jinja;
pub mod keys;
pub mod project;
pub mod render;
pub mod skeleton;
pub mod sql;
pub mod verify;
pub mod work_order;
mod yaml;

pub use analyze::{Analysis, Artifact, ProjectInput, analyze};
pub use error::DbtError;
pub use finding::{Finding, Location, Rule, Severity};
pub use project::{Direction, ModelStatus, Node, NodeId, NodeKind, Project};
