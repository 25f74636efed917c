//! The store's side of master key versions: the versions it knows (by check value), the store's own
//! sealed secrets, and the compare-and-swap updates `sluice secrets rotate` re-seals records with.
//!
//! Nothing here can open a sealed value; [`crate::keyring::Keyring`] holds the keys.

use super::{Store, now, on_pool};
use crate::error::GatewayError;

/// A master key version as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    pub version: i64,
    /// HMAC-SHA-256 of a fixed label under the key (`MasterKey::check_value`).
    pub check_value: Vec<u8>,
    pub created_at: String,
    /// When `sluice secrets rotate` found nothing sealed under it any more.
    pub retired_at: Option<String>,
}

/// What kind of record a sealed value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SealedKind {
    /// A connection's DSN; the record id is the connection's id.
    Connection,
    /// One of the store's own secrets (`store_secrets`); the record id is its name.
    StoreSecret,
}

/// One sealed value and the version of the master key that sealed it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub kind: SealedKind,
    /// The connection id or the secret's name.
    pub id: String,
    pub key_version: i64,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRecord")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl SealedRecord {
    /// The associated data the value is sealed with: a connection's id (as before versions existed), or
    /// `store_secret:<name>`, so that no sealed value can be moved to another record.
    pub fn associated_data(kind: SealedKind, id: &str) -> String {
        match kind {
            SealedKind::Connection => id.to_owned(),
            SealedKind::StoreSecret => format!("store_secret:{id}"),
        }
    }
}

/// How many sealed records one version holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealedCount {
    pub connections: i64,
    pub secrets: i64,
}

impl SealedCount {
    pub fn total(&self) -> i64 {
        self.connections + self.secrets
    }
}

impl Store {
    /// Every master key version the store knows, oldest first.
    pub async fn key_versions(&self) -> Result<Vec<KeyVersion>, GatewayError> {
        let rows: Vec<(i64, Vec<u8>, String, Option<String>)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT version, check_value, created_at, retired_at FROM master_keys ORDER BY version",
        )
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(version, check_value, created_at, retired_at)| KeyVersion {
                version,
                check_value,
                created_at,
                retired_at,
            })
            .collect())
    }

    /// Registers a master key as `version`. Does nothing if that version or that key is registered
    /// already (another process got there first); the caller reads the versions back to see which.
    pub async fn add_key_version(&self, version: i64, check_value: &[u8]) -> Result<(), GatewayError> {
        let created_at = now();
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO master_keys (version, check_value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(version)
        .bind(check_value)
        .bind(&created_at)
        .execute(p)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Marks every version older than `current` that seals nothing any more as retired.
    pub async fn retire_unused_key_versions(&self, current: i64) -> Result<Vec<i64>, GatewayError> {
        let counts = self.sealed_counts().await?;
        let mut retired = Vec::new();
        for v in self.key_versions().await? {
            let in_use = counts.iter().any(|(version, _)| *version == v.version);
            if v.version < current && v.retired_at.is_none() && !in_use {
                let at = now();
                on_pool!(&self.pool, p => sqlx::query(
                    "UPDATE master_keys SET retired_at = $1 WHERE version = $2 AND retired_at IS NULL",
                )
                .bind(&at)
                .bind(v.version)
                .execute(p)
                .await
                .map(drop))?;
                retired.push(v.version);
            }
        }
        Ok(retired)
    }

    /// One of the store's own sealed secrets.
    pub async fn store_secret(&self, name: &str) -> Result<Option<SealedRecord>, GatewayError> {
        let row: Option<(Vec<u8>, i64)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT sealed, key_version FROM store_secrets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(sealed, key_version)| SealedRecord {
            kind: SealedKind::StoreSecret,
            id: name.to_owned(),
            key_version,
            sealed,
        }))
    }

    /// Stores a secret unless one of that name exists (instances starting together store one; each reads
    /// back the winner's).
    pub async fn init_store_secret(
        &self,
        name: &str,
        key_version: i64,
        sealed: &[u8],
    ) -> Result<(), GatewayError> {
        let created_at = now();
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO store_secrets (name, sealed, key_version, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(sealed)
        .bind(key_version)
        .bind(&created_at)
        .execute(p)
        .await
        .map(drop))?;
        Ok(())
    }

    /// How many API keys exist in any org (revoked ones included): whether hashes already depend on the
    /// API-key hashing secret an install derived before it was stored.
    pub async fn api_key_count(&self) -> Result<i64, GatewayError> {
        Ok(
            on_pool!(&self.pool, p => sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(p)
            .await)?,
        )
    }

    /// Sealed records per master key version, oldest version first; versions sealing nothing are absent.
    pub async fn sealed_counts(&self) -> Result<Vec<(i64, SealedCount)>, GatewayError> {
        let connections: Vec<(i64, i64)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT key_version, COUNT(*) FROM connections GROUP BY key_version",
        )
        .fetch_all(p)
        .await)?;
        let secrets: Vec<(i64, i64)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT key_version, COUNT(*) FROM store_secrets GROUP BY key_version",
        )
        .fetch_all(p)
        .await)?;
        let mut counts = std::collections::BTreeMap::<i64, SealedCount>::new();
        for (version, n) in connections {
            counts.entry(version).or_default().connections += n;
        }
        for (version, n) in secrets {
            counts.entry(version).or_default().secrets += n;
        }
        Ok(counts.into_iter().collect())
    }

    /// One sealed connection, if any (to check a key against records sealed before versions existed).
    pub async fn any_sealed_connection(&self) -> Result<Option<SealedRecord>, GatewayError> {
        let row: Option<(String, i64, Vec<u8>)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, key_version, dsn_sealed FROM connections ORDER BY id LIMIT 1",
        )
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(id, key_version, sealed)| SealedRecord {
            kind: SealedKind::Connection,
            id,
            key_version,
            sealed,
        }))
    }

    /// Every sealed record under a version other than `current`: what a rotation still has to re-seal.
    pub async fn sealed_not_under(&self, current: i64) -> Result<Vec<SealedRecord>, GatewayError> {
        let connections: Vec<(String, i64, Vec<u8>)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, key_version, dsn_sealed FROM connections WHERE key_version <> $1 ORDER BY id",
        )
        .bind(current)
        .fetch_all(p)
        .await)?;
        let secrets: Vec<(String, i64, Vec<u8>)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT name, key_version, sealed FROM store_secrets WHERE key_version <> $1 ORDER BY name",
        )
        .bind(current)
        .fetch_all(p)
        .await)?;
        let record = |kind| {
            move |(id, key_version, sealed): (String, i64, Vec<u8>)| SealedRecord {
                kind,
                id,
                key_version,
                sealed,
            }
        };
        Ok(connections
            .into_iter()
            .map(record(SealedKind::Connection))
            .chain(secrets.into_iter().map(record(SealedKind::StoreSecret)))
            .collect())
    }

    /// Replaces a sealed value, only if it is still the one that was read (same version and bytes): a
    /// record changed or removed meanwhile is left alone. Returns whether it was replaced. A re-sealed
    /// connection bumps the connection revision, so gateways reload it (their engines survive: the DSN
    /// did not change).
    pub async fn reseal(
        &self,
        record: &SealedRecord,
        key_version: i64,
        sealed: &[u8],
    ) -> Result<bool, GatewayError> {
        let sql = match record.kind {
            SealedKind::Connection => {
                "UPDATE connections SET dsn_sealed = $1, key_version = $2
                 WHERE id = $3 AND key_version = $4 AND dsn_sealed = $5"
            }
            SealedKind::StoreSecret => {
                "UPDATE store_secrets SET sealed = $1, key_version = $2
                 WHERE name = $3 AND key_version = $4 AND sealed = $5"
            }
        };
        let updated = on_pool!(&self.pool, p => sqlx::query(sql)
            .bind(sealed)
            .bind(key_version)
            .bind(&record.id)
            .bind(record.key_version)
            .bind(&record.sealed)
            .execute(p)
            .await
            .map(|d| d.rows_affected()))?;
        if updated > 0 && record.kind == SealedKind::Connection {
            self.bump("connections").await?;
        }
        Ok(updated > 0)
    }
}
