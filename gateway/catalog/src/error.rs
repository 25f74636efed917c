//! The crate's one error type: only input that cannot be used at all is an error; everything else is a finding.

use crate::snapshot::TableId;

/// Why a catalog request could not be answered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No table matches the name; `suggestions` holds the closest names so that an agent can retry.
    #[error("unknown table `{name}`{}", suggest(.suggestions))]
    UnknownTable { name: String, suggestions: Vec<TableId> },
    /// An unqualified name matches tables in several schemas; the caller must qualify it.
    #[error("table name `{name}` is ambiguous; qualify it as one of: {}", list(.candidates))]
    AmbiguousTable { name: String, candidates: Vec<TableId> },
    /// A hand-written outline (see [`crate::outline`]) could not be parsed.
    #[error("outline line {line}: {message}")]
    Outline { line: usize, message: String },
    /// A snapshot could not be decoded from JSON.
    #[error("cannot read schema snapshot: {0}")]
    Decode(String),
}

fn list(ids: &[TableId]) -> String {
    ids.iter().map(TableId::to_string).collect::<Vec<_>>().join(", ")
}

fn suggest(ids: &[TableId]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!("; did you mean: {}?", list(ids))
    }
}
