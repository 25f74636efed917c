//! The gateway library's error type.

use std::path::{Path, PathBuf};

/// What can go wrong in the gateway outside of a single tool call's own failure.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("configuration error: {0}")]
    Config(String),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),

    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Deliberately without detail: a failed decryption must not tell an attacker why.
    #[error("could not decrypt a stored secret: wrong master key or tampered record")]
    Crypto,

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    Conflict(String),

    #[error("{0}")]
    Invalid(String),

    #[error(transparent)]
    Connector(#[from] sluice_connectors::ConnectorError),
}

impl GatewayError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        GatewayError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
