//! Master key rotation: `sluice secrets rotate` re-seals every record still under an older version with
//! the current key, and `sluice secrets status` shows which versions are in use.
//!
//! A rotation is a loop of independent compare-and-swap updates, one per record, so it is safe to
//! interrupt and to run again, and gateways keep serving throughout: they hold the previous key too and
//! open a record of either version, whichever they read.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::GatewayError;
use crate::keyring::Keyring;
use crate::store::Store;
use crate::store::keyring::{SealedCount, SealedKind, SealedRecord};

/// A rotation can meet records it did not list (a gateway with the older key alone still adding
/// connections); it lists again this many times before giving up and saying so.
const PASSES: usize = 3;

/// What a rotation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The version everything was re-sealed under.
    pub to_version: i64,
    /// The versions records were re-sealed from.
    pub from_versions: BTreeSet<i64>,
    pub connections: usize,
    pub secrets: usize,
    /// Versions retired by this run: nothing is sealed under them any more.
    pub retired: Vec<i64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions =
            |set: &mut dyn Iterator<Item = &i64>| set.map(i64::to_string).collect::<Vec<_>>().join(", ");
        if self.connections + self.secrets == 0 {
            writeln!(
                f,
                "nothing to re-seal: every sealed record is under master key version {}",
                self.to_version
            )?;
        } else {
            writeln!(
                f,
                "re-sealed {} connection DSNs and {} store secrets from master key version {} to version {}",
                self.connections,
                self.secrets,
                versions(&mut self.from_versions.iter()),
                self.to_version
            )?;
        }
        if !self.retired.is_empty() {
            writeln!(
                f,
                "retired master key version {}: nothing is sealed under it any more",
                versions(&mut self.retired.iter())
            )?;
        }
        write!(
            f,
            "every sealed record is under version {}; the previous master key is no longer needed",
            self.to_version
        )
    }
}

/// Re-seals every record not under the current version, record by record.
pub async fn rotate(store: &Store, keyring: &Keyring) -> Result<Report, GatewayError> {
    let to_version = keyring.current_version();
    let mut report = Report {
        to_version,
        ..Report::default()
    };
    for _ in 0..PASSES {
        let pending = store.sealed_not_under(to_version).await?;
        if pending.is_empty() {
            report.retired = store.retire_unused_key_versions(to_version).await?;
            return Ok(report);
        }
        for record in pending {
            if reseal(store, keyring, &record).await? {
                report.from_versions.insert(record.key_version);
                match record.kind {
                    SealedKind::Connection => report.connections += 1,
                    SealedKind::StoreSecret => report.secrets += 1,
                }
            }
        }
    }
    let left = store.sealed_not_under(to_version).await?.len();
    Err(GatewayError::Conflict(format!(
        "{left} records were sealed under an older master key while the rotation ran (is a gateway still running \
         with only the old key?); restart every gateway with the new key and run `sluice secrets rotate` again"
    )))
}

/// One record: opened with the key of its version, sealed with the current one, written only if
/// nobody changed it meanwhile.
async fn reseal(store: &Store, keyring: &Keyring, record: &SealedRecord) -> Result<bool, GatewayError> {
    let aad = SealedRecord::associated_data(record.kind, &record.id);
    let plain = crate::secrets::Secret::new(keyring.unseal_record(record)?);
    let (version, sealed) = keyring.seal(&aad, plain.expose())?;
    store.reseal(record, version, &sealed).await
}

/// One version's line in `sluice secrets status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionStatus {
    pub version: i64,
    pub created_at: String,
    pub retired_at: Option<String>,
    pub sealed: SealedCount,
    /// The newest version: what new records are sealed with.
    pub current: bool,
}

/// The versions the store knows and what each seals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub versions: Vec<VersionStatus>,
}

impl Status {
    /// Versions that still seal something.
    pub fn in_use(&self) -> Vec<i64> {
        self.versions
            .iter()
            .filter(|v| v.sealed.total() > 0)
            .map(|v| v.version)
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.versions.is_empty() {
            return write!(
                f,
                "no master key version registered yet (the first gateway or command to open the store registers its key)"
            );
        }
        for v in &self.versions {
            let state = if v.current {
                "current".to_owned()
            } else if let Some(at) = &v.retired_at {
                format!("retired {at}")
            } else {
                "previous".to_owned()
            };
            writeln!(
                f,
                "version {}\t{state}\t{} connection DSNs\t{} store secrets\tcreated {}",
                v.version, v.sealed.connections, v.sealed.secrets, v.created_at
            )?;
        }
        match self.in_use().as_slice() {
            [] => write!(f, "nothing is sealed yet"),
            [one] => write!(f, "every sealed record is under version {one}"),
            several => write!(
                f,
                "sealed records are under versions {}: run `sluice secrets rotate` with the current and previous keys",
                several.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// What `sluice secrets status` shows; needs no key.
pub async fn status(store: &Store) -> Result<Status, GatewayError> {
    let counts = store.sealed_counts().await?;
    let versions = store.key_versions().await?;
    let newest = versions.iter().map(|v| v.version).max();
    Ok(Status {
        versions: versions
            .into_iter()
            .map(|v| VersionStatus {
                sealed: counts
                    .iter()
                    .find(|(version, _)| *version == v.version)
                    .map(|(_, c)| *c)
                    .unwrap_or_default(),
                current: Some(v.version) == newest,
                version: v.version,
                created_at: v.created_at,
                retired_at: v.retired_at,
            })
            .collect(),
    })
}
