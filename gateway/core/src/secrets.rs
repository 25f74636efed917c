//! Secrets: the master key, sealing of stored credentials with AES-256-GCM, and redacting wrappers.
//!
//! A master key is known to the store only by its check value ([`MasterKey::check_value`]), and which
//! versions of it a process holds is the [`crate::keyring::Keyring`]'s business; this module is the
//! cryptography alone.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

use crate::error::GatewayError;

const NONCE_LEN: usize = 12;

/// The label whose HMAC under a master key is the key's check value: what the store knows a version by.
const CHECK_LABEL: &[u8] = b"sluice master key check v1";

/// The label the API-key hashing secret was derived with before it was stored (see
/// [`MasterKey::derived_api_key_secret`]).
const API_KEY_HASH_LABEL: &[u8] = b"sluice api-key hash v1";

/// The file in the data directory holding the previous master key during a rotation of a local install.
pub const PREVIOUS_KEY_FILE: &str = "master.key.previous";

/// A value that must never reach a log: `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    /// The plaintext; call sites that use it are the ones to review.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The 256-bit master key: seals stored credentials and keys the API-key hash.
pub struct MasterKey {
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// From `SLUICE_MASTER_KEY` (base64 or hex of 32 bytes) when given, else from `<data>/master.key`,
    /// generating that file (mode 0600) on first use.
    pub fn load_or_create(from_env: Option<&Secret<String>>, data_dir: &Path) -> Result<Self, GatewayError> {
        if let Some(text) = from_env {
            return Self::decode(text.expose()).ok_or_else(|| {
                GatewayError::Config("SLUICE_MASTER_KEY must be 32 bytes, base64 or hex encoded".to_owned())
            });
        }
        let path = data_dir.join("master.key");
        if path.exists() {
            check_private(&path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| GatewayError::io(&path, e))?;
            return Self::decode(text.trim()).ok_or_else(|| {
                GatewayError::Config(format!("{} does not hold a valid key", path.display()))
            });
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        write_private(&path, encoded.as_bytes())?;
        Ok(MasterKey { key })
    }

    /// The previous master key during a rotation: from `SLUICE_MASTER_KEY_PREVIOUS` when given, else from
    /// `<data>/master.key.previous` when that file exists; `None` otherwise (never created).
    pub fn load_previous(
        from_env: Option<&Secret<String>>,
        data_dir: &Path,
    ) -> Result<Option<Self>, GatewayError> {
        if let Some(text) = from_env {
            return Self::decode(text.expose()).map(Some).ok_or_else(|| {
                GatewayError::Config(
                    "SLUICE_MASTER_KEY_PREVIOUS must be 32 bytes, base64 or hex encoded".to_owned(),
                )
            });
        }
        let path = data_dir.join(PREVIOUS_KEY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        check_private(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|e| GatewayError::io(&path, e))?;
        Self::decode(text.trim())
            .map(Some)
            .ok_or_else(|| GatewayError::Config(format!("{} does not hold a valid key", path.display())))
    }

    fn decode(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())?;
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(MasterKey { key })
    }

    /// Encrypts `plaintext` bound to `record_id` (the associated data): nonce || ciphertext || tag.
    pub fn seal(&self, record_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let cipher = Aes256Gcm::new_from_slice(&self.key).map_err(|_| GatewayError::Crypto)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| GatewayError::Crypto)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `record_id`.
    pub fn open(&self, record_id: &str, sealed: &[u8]) -> Result<Vec<u8>, GatewayError> {
        if sealed.len() < NONCE_LEN {
            return Err(GatewayError::Crypto);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| GatewayError::Crypto)?;
        let cipher = Aes256Gcm::new_from_slice(&self.key).map_err(|_| GatewayError::Crypto)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| GatewayError::Crypto)
    }

    /// What the store knows this key by: HMAC-SHA-256 of a fixed label. It tells keys apart without
    /// revealing them, so a wrong key is named as such at start, not found out by a failed decryption.
    pub fn check_value(&self) -> [u8; 32] {
        let mut mac = hmac_sha256(&self.key);
        mac.update(CHECK_LABEL);
        mac.finalize().into_bytes().into()
    }

    /// The API-key hashing secret as installs derived it from the master key before the secret was
    /// stored on its own; an existing store keeps exactly this value, so its keys stay valid.
    pub fn derived_api_key_secret(&self) -> Secret<[u8; 32]> {
        let mut mac = hmac_sha256(&self.key);
        mac.update(API_KEY_HASH_LABEL);
        Secret::new(mac.finalize().into_bytes().into())
    }

    /// The key for hashing API keys, derived so that the master key itself is never used for two purposes.
    /// A gateway uses the store's own secret ([`crate::keyring::Keyring::api_key_hasher`]), which equals
    /// this for the master key an existing install had when it first met key versions.
    pub fn api_key_hasher(&self) -> KeyHasher {
        KeyHasher::from_secret(&self.derived_api_key_secret())
    }
}

/// HMAC-SHA-256 keyed with a 32-byte key. HMAC zero-pads keys shorter than the 64-byte block, so padding
/// here gives the standard result while using the infallible fixed-size constructor.
fn hmac_sha256(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
}

/// Computes the stored hash of an API key.
#[derive(Clone)]
pub struct KeyHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(<redacted>)")
    }
}

impl KeyHasher {
    /// A hasher keyed with a stored 32-byte secret.
    pub fn from_secret(secret: &Secret<[u8; 32]>) -> Self {
        KeyHasher {
            key: *secret.expose(),
        }
    }

    pub fn hash(&self, api_key: &str) -> [u8; 32] {
        let mut mac = hmac_sha256(&self.key);
        mac.update(api_key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Writes a file readable only by its owner, creating it with mode 0600 from the start.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), GatewayError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| GatewayError::io(path, e))?;
    file.write_all(contents).map_err(|e| GatewayError::io(path, e))?;
    file.sync_all().map_err(|e| GatewayError::io(path, e))
}

/// Refuses secret files that others can read.
fn check_private(path: &Path) -> Result<(), GatewayError> {
    let mode = std::fs::metadata(path)
        .map_err(|e| GatewayError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(GatewayError::Config(format!(
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::decode(&"ab".repeat(32)).expect("hex key")
    }

    #[test]
    fn seal_round_trip_and_binding() {
        let k = key();
        let sealed = k.seal("conn-1", b"postgres://u:p@h/db").unwrap();
        assert_eq!(k.open("conn-1", &sealed).unwrap(), b"postgres://u:p@h/db");
        // Bound to its record: moving it to another id fails.
        assert!(k.open("conn-2", &sealed).is_err());
        // Tampering fails.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open("conn-1", &bad).is_err());
        // Random nonce: sealing twice differs.
        assert_ne!(sealed, k.seal("conn-1", b"postgres://u:p@h/db").unwrap());
        assert!(k.open("conn-1", &sealed[..5]).is_err());
    }

    #[test]
    fn check_values_tell_keys_apart_and_the_stored_hash_secret_is_the_derived_one() {
        let other = MasterKey::decode(&"cd".repeat(32)).unwrap();
        assert_eq!(key().check_value(), key().check_value());
        assert_ne!(key().check_value(), other.check_value());
        // The check value is not the API-key secret, nor the key itself.
        assert_ne!(&key().check_value(), key().derived_api_key_secret().expose());
        assert_ne!(key().check_value(), key().key);
        // A hasher from the derived secret hashes as the master key's own hasher did.
        let stored = KeyHasher::from_secret(&key().derived_api_key_secret());
        assert_eq!(stored.hash("sluice_x"), key().api_key_hasher().hash("sluice_x"));
    }

    #[test]
    fn the_previous_key_comes_from_the_variable_or_its_file_and_is_never_created() {
        let dir = tempfile::tempdir().unwrap();
        assert!(MasterKey::load_previous(None, dir.path()).unwrap().is_none());
        assert!(!dir.path().join(PREVIOUS_KEY_FILE).exists());
        let env = Secret::new("cd".repeat(32));
        let from_env = MasterKey::load_previous(Some(&env), dir.path()).unwrap().unwrap();
        assert_eq!(from_env.key, [0xcd; 32]);
        let err = MasterKey::load_previous(Some(&Secret::new("short".to_owned())), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SLUICE_MASTER_KEY_PREVIOUS must be 32 bytes, base64 or hex encoded"),
            "{err}"
        );
        write_private(&dir.path().join(PREVIOUS_KEY_FILE), "ab".repeat(32).as_bytes()).unwrap();
        let from_file = MasterKey::load_previous(None, dir.path()).unwrap().unwrap();
        assert_eq!(from_file.key, [0xab; 32]);
    }

    #[test]
    fn decode_forms() {
        assert!(MasterKey::decode(&"00".repeat(32)).is_some());
        assert!(MasterKey::decode(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).is_some());
        assert!(MasterKey::decode("short").is_none());
        assert!(MasterKey::decode(&"00".repeat(31)).is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(format!("{:?}", key()), "MasterKey(<redacted>)");
    }

    #[test]
    fn master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load_or_create(None, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = MasterKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(a.key, b.key);
        std::fs::set_permissions(
            dir.path().join("master.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = MasterKey::load_or_create(None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("readable by other users"), "{err}");
    }
}
