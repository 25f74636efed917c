//! The master keys a process holds, matched to the versions the store knows them by: the current key
//! (the store's newest version; it seals everything new) and, during a rotation, the previous one. It
//! opens a sealed record with the key of the record's version, and it holds the API-key hashing secret,
//! which is stored sealed so that it outlives any one master key.
//!
//! [`Keyring::open`] is where a wrong key is refused, with a message naming the problem: an unknown key,
//! a key that has been replaced, or records sealed under a version this process was not given. After it
//! succeeds every sealed record in the store is under a version the keyring holds.

use std::fmt::Write as _;

use rand::RngCore as _;

use crate::error::GatewayError;
use crate::secrets::{KeyHasher, MasterKey, PREVIOUS_KEY_FILE, Secret};
use crate::store::Store;
use crate::store::keyring::{KeyVersion, SealedKind, SealedRecord};

/// The name of the API-key hashing secret in `store_secrets`.
pub const API_KEY_HASH_SECRET: &str = "api_key_hash";

/// Where an operator gives the current key, for messages.
const CURRENT_KEY_SOURCES: &str =
    "SLUICE_MASTER_KEY, SLUICE_MASTER_KEY_FILE or the data directory's master.key";

/// Where an operator gives the previous key, for messages.
fn previous_key_sources() -> String {
    format!(
        "SLUICE_MASTER_KEY_PREVIOUS, SLUICE_MASTER_KEY_PREVIOUS_FILE or the data directory's {PREVIOUS_KEY_FILE}"
    )
}

/// The master keys of one process, by version, and the API-key hasher they open.
pub struct Keyring {
    keys: Keys,
    hasher: KeyHasher,
}

/// The keys alone: what opens and seals.
struct Keys {
    current: (i64, MasterKey),
    previous: Option<(i64, MasterKey)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_version())
            .field("previous", &self.previous_version())
            .finish_non_exhaustive()
    }
}

fn refuse(message: impl Into<String>) -> GatewayError {
    GatewayError::Config(message.into())
}

impl Keyring {
    /// Matches `current` (and `previous`, during a rotation) to the store's key versions, registering
    /// them when the store meets them first:
    /// - a store that knows no version yet (new, or from before versions) registers the key that sealed
    ///   what it holds as version 1 — `previous` if given, else `current` — after checking it opens a
    ///   stored connection;
    /// - an unknown `current` given with `previous` = the newest version becomes the next version (the
    ///   first process started with the new key registers it; the others find it registered).
    ///
    /// Then `current` must be the newest version, and every sealed record must be under a version held.
    /// Finally the API-key hashing secret is read (or stored, once).
    pub async fn open(
        store: &Store,
        current: MasterKey,
        previous: Option<MasterKey>,
    ) -> Result<Keyring, GatewayError> {
        if previous
            .as_ref()
            .is_some_and(|p| p.check_value() == current.check_value())
        {
            return Err(refuse(format!(
                "the previous master key ({}) is the same key as the current one; give the previous key only \
                 while rotating to a new one",
                previous_key_sources()
            )));
        }
        let mut versions = store.key_versions().await?;
        if versions.is_empty() {
            let first = previous.as_ref().unwrap_or(&current);
            if let Some(record) = store.any_sealed_connection().await? {
                let aad = SealedRecord::associated_data(record.kind, &record.id);
                if first.open(&aad, &record.sealed).is_err() {
                    return Err(refuse(format!(
                        "the master key ({}) does not open the connections stored here: it is not the key \
                         they were sealed with",
                        if previous.is_some() {
                            previous_key_sources()
                        } else {
                            CURRENT_KEY_SOURCES.to_owned()
                        }
                    )));
                }
            }
            store.add_key_version(1, &first.check_value()).await?;
            versions = store.key_versions().await?;
        }

        let previous_version = match &previous {
            None => None,
            Some(key) => match find(&versions, key) {
                Some(v) => Some(v.version),
                None => {
                    return Err(refuse(format!(
                        "the previous master key ({}) is none of this store's master keys (versions {})",
                        previous_key_sources(),
                        list(&versions)
                    )));
                }
            },
        };
        let newest = versions.iter().map(|v| v.version).max().unwrap_or(0);
        let current_version = match find(&versions, &current) {
            Some(v) if v.version == newest => v.version,
            Some(v) => {
                return Err(refuse(format!(
                    "the master key is version {} of this store's master keys, which version {newest} has \
                     replaced{}: start with the newest key ({CURRENT_KEY_SOURCES}), and, until `sluice secrets \
                     rotate` has finished, this one as the previous key ({})",
                    v.version,
                    v.retired_at
                        .as_deref()
                        .map(|at| format!(" (nothing has been sealed under it since {at})"))
                        .unwrap_or_default(),
                    previous_key_sources()
                )));
            }
            None => match previous_version {
                Some(p) if p == newest => {
                    store.add_key_version(newest + 1, &current.check_value()).await?;
                    versions = store.key_versions().await?;
                    match find(&versions, &current) {
                        Some(v) => v.version,
                        None => {
                            return Err(refuse(format!(
                                "another process registered a different new master key as version {} at the \
                                 same moment; start every gateway and `sluice secrets rotate` with the same new key",
                                newest + 1
                            )));
                        }
                    }
                }
                Some(p) => {
                    return Err(refuse(format!(
                        "a new master key can only replace the newest one, version {newest}; the previous key \
                         given is version {p}"
                    )));
                }
                None => {
                    return Err(refuse(format!(
                        "the master key ({CURRENT_KEY_SOURCES}) is none of this store's master keys (versions {}); \
                         to rotate to a new key, give the current one as the previous key ({})",
                        list(&versions),
                        previous_key_sources()
                    )));
                }
            },
        };

        // Every sealed record must be under a version held here, or it would fail only when first opened.
        let held = |v: i64| v == current_version || Some(v) == previous_version;
        for (version, count) in store.sealed_counts().await? {
            if !held(version) {
                let mut what = String::new();
                if count.connections > 0 {
                    let _ = write!(what, "{} connection DSNs", count.connections);
                }
                if count.secrets > 0 {
                    if !what.is_empty() {
                        what.push_str(" and ");
                    }
                    let _ = write!(what, "{} store secrets", count.secrets);
                }
                return Err(refuse(format!(
                    "{what} in this store are still sealed under master key version {version}, which this process \
                     was not given: give that key as the previous key ({}) and finish the rotation with \
                     `sluice secrets rotate`",
                    previous_key_sources()
                )));
            }
        }

        let keys = Keys {
            current: (current_version, current),
            previous: previous.zip(previous_version).map(|(k, v)| (v, k)),
        };
        let hasher = api_key_hasher(&keys, store, &versions).await?;
        Ok(Keyring { keys, hasher })
    }

    /// The current version: the store's newest, which seals everything new.
    pub fn current_version(&self) -> i64 {
        self.keys.current.0
    }

    /// The previous version, while rotating.
    pub fn previous_version(&self) -> Option<i64> {
        self.keys.previous_version()
    }

    /// Seals `plaintext` bound to `record_id` with the current key: (version, sealed bytes).
    pub fn seal(&self, record_id: &str, plaintext: &[u8]) -> Result<(i64, Vec<u8>), GatewayError> {
        self.keys.seal(record_id, plaintext)
    }

    /// Opens what the key of `version` sealed for `record_id`. A version this process does not hold is
    /// named as such (after [`Keyring::open`] none is left in the store, but a gateway still running with
    /// an older set of keys may meet one).
    pub fn unseal(&self, record_id: &str, version: i64, sealed: &[u8]) -> Result<Vec<u8>, GatewayError> {
        self.keys.unseal(record_id, version, sealed)
    }

    /// Opens a stored record of either kind.
    pub fn unseal_record(&self, record: &SealedRecord) -> Result<Vec<u8>, GatewayError> {
        self.keys.unseal_record(record)
    }

    /// The hasher API keys are stored under; the same across rotations.
    pub fn api_key_hasher(&self) -> KeyHasher {
        self.hasher.clone()
    }
}

/// The API-key hashing secret: stored sealed; created once. A store that already has keys keeps the value
/// they were hashed with (derived from version 1, the key of the install before versions); a new store
/// gets a random one, tied to no master key.
async fn api_key_hasher(
    keys: &Keys,
    store: &Store,
    versions: &[KeyVersion],
) -> Result<KeyHasher, GatewayError> {
    if store.store_secret(API_KEY_HASH_SECRET).await?.is_none() {
        let value = if store.api_key_count().await? > 0 {
            let first = versions.first().map_or(1, |v| v.version);
            let key = keys.key(first).ok_or_else(|| {
                refuse(format!(
                    "this store's API keys were hashed under master key version {first}, which this process \
                         was not given; start once with it to store the API-key hashing secret"
                ))
            })?;
            key.derived_api_key_secret()
        } else {
            let mut random = [0u8; 32];
            rand::rng().fill_bytes(&mut random);
            Secret::new(random)
        };
        let (version, sealed) = keys.seal(
            &SealedRecord::associated_data(SealedKind::StoreSecret, API_KEY_HASH_SECRET),
            value.expose(),
        )?;
        store
            .init_store_secret(API_KEY_HASH_SECRET, version, &sealed)
            .await?;
    }
    let stored = store
        .store_secret(API_KEY_HASH_SECRET)
        .await?
        .ok_or_else(|| refuse("the API-key hashing secret could not be stored"))?;
    let plain = keys.unseal_record(&stored)?;
    let secret: [u8; 32] = plain.try_into().map_err(|_| GatewayError::Crypto)?;
    Ok(KeyHasher::from_secret(&Secret::new(secret)))
}

impl Keys {
    fn previous_version(&self) -> Option<i64> {
        self.previous.as_ref().map(|p| p.0)
    }

    fn key(&self, version: i64) -> Option<&MasterKey> {
        if version == self.current.0 {
            return Some(&self.current.1);
        }
        self.previous.as_ref().filter(|p| p.0 == version).map(|p| &p.1)
    }

    fn seal(&self, record_id: &str, plaintext: &[u8]) -> Result<(i64, Vec<u8>), GatewayError> {
        Ok((self.current.0, self.current.1.seal(record_id, plaintext)?))
    }

    fn unseal(&self, record_id: &str, version: i64, sealed: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let key = self.key(version).ok_or_else(|| {
            refuse(format!(
                "a record is sealed under master key version {version}, which this process was not given \
                 (it holds version {}{}); restart it with the current master key",
                self.current.0,
                self.previous_version()
                    .map(|p| format!(" and {p}"))
                    .unwrap_or_default()
            ))
        })?;
        key.open(record_id, sealed)
    }

    fn unseal_record(&self, record: &SealedRecord) -> Result<Vec<u8>, GatewayError> {
        self.unseal(
            &SealedRecord::associated_data(record.kind, &record.id),
            record.key_version,
            &record.sealed,
        )
    }
}

fn find<'a>(versions: &'a [KeyVersion], key: &MasterKey) -> Option<&'a KeyVersion> {
    let check = key.check_value();
    versions.iter().find(|v| v.check_value == check)
}

fn list(versions: &[KeyVersion]) -> String {
    versions
        .iter()
        .map(|v| v.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::rotation;
    use crate::store::engines::{TestStore, each_engine};
    use crate::store::{ConnectionRecord, LOCAL_ORG, now};

    /// A master key of 32 bytes `byte`.
    fn key(byte: u8) -> MasterKey {
        let hex = format!("{byte:02x}").repeat(32);
        MasterKey::load_or_create(Some(&Secret::new(hex)), std::path::Path::new("/nonexistent")).unwrap()
    }

    const OLD: u8 = 0x11;
    const NEW: u8 = 0x22;

    async fn refusal(store: &Store, current: u8, previous: Option<u8>) -> String {
        Keyring::open(store, key(current), previous.map(key))
            .await
            .unwrap_err()
            .to_string()
    }

    /// Stores a connection whose DSN `seal` sealed, as `Context::add_connection` does.
    async fn add(store: &Store, name: &str, seal: impl Fn(&str, &[u8]) -> (i64, Vec<u8>)) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let (key_version, dsn_sealed) = seal(&id, format!("postgres://u:pw-{name}@h/db").as_bytes());
        store
            .insert_connection(&ConnectionRecord {
                id: id.clone(),
                org_id: LOCAL_ORG.to_owned(),
                name: name.to_owned(),
                kind: "postgres".to_owned(),
                dsn_sealed,
                key_version,
                description: None,
                settings: serde_json::json!({}),
                created_at: now(),
            })
            .await
            .unwrap();
        id
    }

    /// Every stored DSN, opened by `ring`, by name.
    async fn dsns(store: &Store, ring: &Keyring) -> Vec<(String, i64, String)> {
        store
            .list_connections(LOCAL_ORG)
            .await
            .unwrap()
            .into_iter()
            .map(|c| {
                let plain = ring.unseal(&c.id, c.key_version, &c.dsn_sealed).unwrap();
                (c.name, c.key_version, String::from_utf8(plain).unwrap())
            })
            .collect()
    }

    /// A store as an install had it before key versions: DSNs sealed with the master key itself, API keys
    /// hashed under the secret derived from it, no `master_keys` row.
    async fn install_before_versions(t: &TestStore) {
        let store = &t.store;
        store.ensure_org(LOCAL_ORG).await.unwrap();
        let old = key(OLD);
        for name in ["a", "b", "c"] {
            add(store, name, |id, plain| (1, old.seal(id, plain).unwrap())).await;
        }
        let hash = old.api_key_hasher().hash("sluice_existing");
        store
            .insert_key(
                LOCAL_ORG,
                "existing",
                "sluice_exi",
                &hash,
                &crate::auth::Grant::admin(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_new_store_gets_version_1_and_a_random_api_key_secret() {
        for t in each_engine().await {
            let engine = t.engine;
            let ring = Keyring::open(&t.store, key(OLD), None).await.unwrap();
            assert_eq!(ring.current_version(), 1, "{engine}");
            let hash = ring.api_key_hasher().hash("sluice_x");
            assert_ne!(
                hash,
                key(OLD).api_key_hasher().hash("sluice_x"),
                "{engine}: tied to no master key"
            );
            let again = Keyring::open(&t.store, key(OLD), None).await.unwrap();
            assert_eq!(
                again.api_key_hasher().hash("sluice_x"),
                hash,
                "{engine}: stored once"
            );
            let status = rotation::status(&t.store).await.unwrap();
            assert_eq!(status.in_use(), [1], "{engine}");
            assert_eq!(status.versions[0].sealed.secrets, 1, "{engine}");
        }
    }

    /// An install from before versions keeps its DSNs and API keys; a wrong key is refused by name.
    #[tokio::test]
    async fn an_existing_install_keeps_its_dsns_and_api_keys_and_refuses_a_wrong_key() {
        for t in each_engine().await {
            let engine = t.engine;
            install_before_versions(&t).await;
            let err = refusal(&t.store, NEW, None).await;
            assert!(
                err.contains("the master key (SLUICE_MASTER_KEY, SLUICE_MASTER_KEY_FILE or the data directory's master.key) does not open the connections stored here"),
                "{engine}: {err}"
            );
            assert!(
                t.store.key_versions().await.unwrap().is_empty(),
                "{engine}: nothing registered"
            );
            let ring = Keyring::open(&t.store, key(OLD), None).await.unwrap();
            assert_eq!(
                ring.api_key_hasher().hash("sluice_existing"),
                key(OLD).api_key_hasher().hash("sluice_existing"),
                "{engine}: existing API keys stay valid"
            );
            assert_eq!(
                dsns(&t.store, &ring).await[0],
                ("a".to_owned(), 1, "postgres://u:pw-a@h/db".to_owned())
            );
            let err = refusal(&t.store, NEW, None).await;
            assert!(
                err.contains("the master key (SLUICE_MASTER_KEY, SLUICE_MASTER_KEY_FILE or the data directory's master.key) is none of this store's master keys (versions 1); to rotate to a new key, give the current one as the previous key"),
                "{engine}: {err}"
            );
        }
    }

    /// The whole rotation: a gateway with both keys registers the new one and opens either version; the
    /// rotation re-seals everything once; afterwards the new key alone opens everything, API keys hash the
    /// same, and the old key alone is refused.
    #[tokio::test]
    async fn a_rotation_reseals_everything_and_retires_the_old_key() {
        for t in each_engine().await {
            let engine = t.engine;
            let store = &t.store;
            install_before_versions(&t).await;
            let before = Keyring::open(store, key(OLD), None)
                .await
                .unwrap()
                .api_key_hasher();

            let both = Keyring::open(store, key(NEW), Some(key(OLD))).await.unwrap();
            assert_eq!(
                (both.current_version(), both.previous_version()),
                (2, Some(1)),
                "{engine}"
            );
            add(store, "d", |id, plain| both.seal(id, plain).unwrap()).await;
            let versions: Vec<i64> = dsns(store, &both).await.iter().map(|d| d.1).collect();
            assert_eq!(versions, [1, 1, 1, 2], "{engine}: both versions open");

            // Without the previous key, what is still under version 1 is named, not a decryption failure.
            let err = refusal(store, NEW, None).await;
            assert!(
                err.contains("3 connection DSNs and 1 store secrets in this store are still sealed under master key version 1, which this process was not given: give that key as the previous key (SLUICE_MASTER_KEY_PREVIOUS, SLUICE_MASTER_KEY_PREVIOUS_FILE or the data directory's master.key.previous) and finish the rotation with `sluice secrets rotate`"),
                "{engine}: {err}"
            );
            let err = refusal(store, OLD, None).await;
            assert!(
                err.contains("the master key is version 1 of this store's master keys, which version 2 has replaced: start with the newest key"),
                "{engine}: {err}"
            );

            let report = rotation::rotate(store, &both).await.unwrap();
            assert_eq!(
                (report.connections, report.secrets, report.retired.clone()),
                (3, 1, vec![1]),
                "{engine}"
            );
            assert_eq!(
                report.to_string(),
                "re-sealed 3 connection DSNs and 1 store secrets from master key version 1 to version 2\n\
                 retired master key version 1: nothing is sealed under it any more\n\
                 every sealed record is under version 2; the previous master key is no longer needed"
            );
            let again = rotation::rotate(store, &both).await.unwrap();
            assert_eq!(
                (again.connections, again.secrets),
                (0, 0),
                "{engine}: a second run has nothing to do"
            );
            assert_eq!(rotation::status(store).await.unwrap().in_use(), [2], "{engine}");

            let new = Keyring::open(store, key(NEW), None).await.unwrap();
            let opened: Vec<(String, i64)> =
                dsns(store, &new).await.into_iter().map(|d| (d.0, d.1)).collect();
            assert_eq!(
                opened,
                ["a", "b", "c", "d"].map(|n| (n.to_owned(), 2)),
                "{engine}: the new key alone opens everything"
            );
            assert_eq!(
                new.api_key_hasher().hash("sluice_existing"),
                before.hash("sluice_existing"),
                "{engine}: API keys survive the rotation"
            );
            let err = refusal(store, OLD, None).await;
            assert!(
                err.contains("the master key is version 1 of this store's master keys, which version 2 has replaced (nothing has been sealed under it since"),
                "{engine}: {err}"
            );
        }
    }

    /// Rotations interrupted or run twice at once re-seal each record exactly once.
    #[tokio::test]
    async fn rotations_run_at_once_or_resumed_reseal_each_record_once() {
        for t in each_engine().await {
            let engine = t.engine;
            let store = &t.store;
            install_before_versions(&t).await;
            Keyring::open(store, key(OLD), None).await.unwrap();
            let both = Keyring::open(store, key(NEW), Some(key(OLD))).await.unwrap();
            // An interrupted run: one record re-sealed, the rest not.
            let first = store.sealed_not_under(2).await.unwrap().remove(0);
            let plain = both.unseal_record(&first).unwrap();
            let (v, sealed) = both
                .seal(&SealedRecord::associated_data(first.kind, &first.id), &plain)
                .unwrap();
            assert!(store.reseal(&first, v, &sealed).await.unwrap(), "{engine}");
            assert!(
                !store.reseal(&first, v, &sealed).await.unwrap(),
                "{engine}: a stale record is left alone"
            );

            let other = t.another_instance().await;
            let other_ring = Keyring::open(&other, key(NEW), Some(key(OLD))).await.unwrap();
            let (a, b) = tokio::join!(
                rotation::rotate(store, &both),
                rotation::rotate(&other, &other_ring)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(
                a.connections + a.secrets + b.connections + b.secrets,
                3,
                "{engine}: {a:?} {b:?}"
            );
            assert_eq!(rotation::status(store).await.unwrap().in_use(), [2], "{engine}");
        }
    }

    /// A gateway started before the new key was registered keeps its old keyring; a record sealed under
    /// the new version is named, not a decryption failure.
    #[tokio::test]
    async fn a_gateway_still_on_the_old_key_names_a_record_under_a_newer_version() {
        for t in each_engine().await {
            let engine = t.engine;
            let store = &t.store;
            install_before_versions(&t).await;
            let running = Keyring::open(store, key(OLD), None).await.unwrap();
            let both = Keyring::open(store, key(NEW), Some(key(OLD))).await.unwrap();
            let id = add(store, "d", |id, plain| both.seal(id, plain).unwrap()).await;
            let record = store
                .list_connections(LOCAL_ORG)
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.id == id)
                .unwrap();
            let err = running
                .unseal(&record.id, record.key_version, &record.dsn_sealed)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("a record is sealed under master key version 2, which this process was not given (it holds version 1); restart it with the current master key"),
                "{engine}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn wrong_previous_keys_are_refused_by_name() {
        for t in each_engine().await {
            let engine = t.engine;
            let store = &t.store;
            install_before_versions(&t).await;
            let err = refusal(store, OLD, Some(OLD)).await;
            assert!(
                err.contains("the previous master key (SLUICE_MASTER_KEY_PREVIOUS, SLUICE_MASTER_KEY_PREVIOUS_FILE or the data directory's master.key.previous) is the same key as the current one"),
                "{engine}: {err}"
            );
            Keyring::open(store, key(OLD), None).await.unwrap();
            let err = refusal(store, NEW, Some(0x33)).await;
            assert!(
                err.contains("the previous master key (SLUICE_MASTER_KEY_PREVIOUS, SLUICE_MASTER_KEY_PREVIOUS_FILE or the data directory's master.key.previous) is none of this store's master keys (versions 1)"),
                "{engine}: {err}"
            );
            Keyring::open(store, key(NEW), Some(key(OLD))).await.unwrap();
            let err = refusal(store, 0x33, Some(OLD)).await;
            assert!(
                err.contains("a new master key can only replace the newest one, version 2; the previous key given is version 1"),
                "{engine}: {err}"
            );
        }
    }
}
