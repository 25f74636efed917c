//! API-key authentication: key generation, scopes and a cached lookup (the HTTP middleware that reads a
//! presented key is the front door's).
//!
//! Keys are 256 bits from the OS RNG, shown once, stored as an HMAC-SHA-256 under a key derived from the
//! master key. Verified keys are cached in memory, so a request never scans or writes the key table;
//! the cache is dropped whenever the store's key revision changes (a revocation), which a background
//! task checks every second.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore as _;

use crate::error::GatewayError;
use crate::secrets::{KeyHasher, Secret};
use crate::store::{KeyRecord, Store};

/// Marks Sluice keys so that secret scanners and humans recognise them.
pub const KEY_MARKER: &str = "sluice_";
/// Characters of the key (after the marker) kept in clear as its prefix.
const PREFIX_CHARS: usize = 8;

/// What a key may do. Every tool names the scope it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Query,
    Schema,
    Sandbox,
    FsWrite,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Query,
        Scope::Schema,
        Scope::Sandbox,
        Scope::FsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Query => "query",
            Scope::Schema => "schema",
            Scope::Sandbox => "sandbox",
            Scope::FsWrite => "fs_write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                format!("unknown scope '{name}'; scopes are: query, schema, sandbox, fs_write, admin")
            })
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Scopes {
        Scopes(scopes.into_iter().collect())
    }
}

/// A set of scopes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Every scope: the `local` admin key.
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.into_iter().collect())
    }

    /// What `sluice key create` grants without `--scope`: everything but `admin` and `fs_write`.
    pub fn default_for_new_keys() -> Scopes {
        Scopes(
            [Scope::Query, Scope::Schema, Scope::Sandbox]
                .into_iter()
                .collect(),
        )
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope) || self.0.contains(&Scope::Admin)
    }

    /// Parses a space- or comma-separated list.
    pub fn parse_list(text: &str) -> Result<Scopes, String> {
        text.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Scopes)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

/// What a key may do: its scopes (a role's, or given one by one), and the tools and connections it is
/// limited to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The role the scopes came from, if they came from one.
    pub role: Option<Role>,
    pub scopes: Scopes,
    pub tools: ToolList,
    pub connections: ConnectionGrants,
}

impl Grant {
    /// Everything: the first admin key of an org.
    pub fn admin() -> Grant {
        Grant::role(Role::Admin)
    }

    /// A role's scopes, every tool and connection.
    pub fn role(role: Role) -> Grant {
        Grant {
            role: Some(role),
            scopes: role.scopes(),
            tools: ToolList::all(),
            connections: ConnectionGrants::all(),
        }
    }

    /// Scopes given one by one, every tool and connection.
    pub fn scopes(scopes: Scopes) -> Grant {
        Grant {
            role: None,
            scopes,
            tools: ToolList::all(),
            connections: ConnectionGrants::all(),
        }
    }
}

/// A freshly generated key: the secret (shown once) and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub secret: Secret<String>,
    pub prefix: String,
    pub hash: [u8; 32],
}

/// Generates a key: `sluice_` + 43 base64url characters (256 random bits).
pub fn generate_key(hasher: &KeyHasher) -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let secret = format!("{KEY_MARKER}{body}");
    let prefix = prefix_of(&secret);
    let hash = hasher.hash(&secret);
    NewKey {
        secret: Secret::new(secret),
        prefix,
        hash,
    }
}

/// The displayable prefix of a key (marker plus a few characters); safe to log.
pub fn prefix_of(key: &str) -> String {
    key.chars().take(KEY_MARKER.len() + PREFIX_CHARS).collect()
}

/// Who is calling: attached to every authenticated request.
#[derive(Clone, Debug)]
pub struct AuthContext {
    pub org_id: String,
    pub key_id: String,
    pub key_name: String,
    pub key_prefix: String,
    pub scopes: Scopes,
    /// The tools this key may use, within its scopes.
    pub tools: ToolList,
    /// The connections of its org this key may use.
    pub connections: ConnectionGrants,
}

/// Names a key is limited to, or every one: the tools it may use (`sluice key create --tool NAME`, within
/// its scopes) and the connections of its org it may use (`--connection NAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameList(Option<BTreeSet<String>>);

/// The tools a key may use, within its scopes.
pub type ToolList = NameList;

/// The connections of its org a key may use.
pub type ConnectionGrants = NameList;

impl NameList {
    /// Every one (for tools, the scopes still apply).
    pub fn all() -> NameList {
        NameList(None)
    }

    /// Only these.
    pub fn only<S: Into<String>>(names: impl IntoIterator<Item = S>) -> NameList {
        NameList(Some(names.into_iter().map(Into::into).collect()))
    }

    pub fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|names| names.contains(name))
    }

    /// The names, when the list is limited.
    pub fn names(&self) -> Option<&BTreeSet<String>> {
        self.0.as_ref()
    }

    /// As stored: `None` for every one, else the names joined by commas.
    pub fn stored(&self) -> Option<String> {
        self.0
            .as_ref()
            .map(|names| names.iter().map(String::as_str).collect::<Vec<_>>().join(","))
    }

    pub fn from_stored(text: Option<&str>) -> NameList {
        NameList(text.map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        }))
    }
}

impl std::fmt::Display for NameList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("all"),
            Some(names) => f.write_str(&names.iter().map(String::as_str).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// A named set of scopes: what `sluice key create --role` grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads schemas: `schema`.
    Viewer,
    /// Asks questions of the data: `query`, `schema`, `sandbox`.
    Analyst,
    /// Also builds: workspace writes and `dbt parse` (`fs_write`).
    Engineer,
    /// Everything, including administration: `admin`.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Engineer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| format!("unknown role '{name}'; roles are: viewer, analyst, engineer, admin"))
    }

    /// The scopes the role grants.
    pub fn scopes(self) -> Scopes {
        let scopes: &[Scope] = match self {
            Role::Viewer => &[Scope::Schema],
            Role::Analyst => &[Scope::Query, Scope::Schema, Scope::Sandbox],
            Role::Engineer => &[Scope::Query, Scope::Schema, Scope::Sandbox, Scope::FsWrite],
            Role::Admin => &Scope::ALL,
        };
        scopes.iter().copied().collect()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was not authenticated; each maps to a 401 with a precise message.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Revoked,
}

impl AuthFailure {
    /// A short name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Revoked => "revoked",
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> &'static str {
        match self {
            AuthFailure::Missing => {
                "missing API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>` (create one with `sluice key create`)"
            }
            AuthFailure::Malformed => "malformed Authorization header: expected `Bearer <key>`",
            AuthFailure::Unknown => "invalid API key",
            AuthFailure::Revoked => {
                "this API key has been revoked; create a new one with `sluice key create`"
            }
        }
    }
}

/// Verifies keys against the store, remembering the answers.
pub struct Authenticator {
    store: Store,
    hasher: KeyHasher,
    cache: RwLock<Cache>,
    /// Orgs known to exist (for OAuth tokens, whose org comes from a claim); dropped with the key cache,
    /// since removing an org bumps the key revision.
    orgs: RwLock<std::collections::HashSet<String>>,
}

#[derive(Default)]
struct Cache {
    revision: i64,
    entries: HashMap<[u8; 32], CachedKey>,
}

#[derive(Clone)]
enum CachedKey {
    Valid(AuthContext),
    Revoked,
    /// Unknown keys are remembered briefly so that a client retrying a wrong key does not hit the store.
    Unknown(Instant),
}

/// How long a "no such key" answer is trusted; a key created meanwhile bumps the revision anyway.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Bound on remembered unknown keys, so random keys cannot grow memory without limit.
const MAX_NEGATIVE: usize = 10_000;

impl Authenticator {
    pub async fn new(store: Store, hasher: KeyHasher) -> Result<Arc<Self>, GatewayError> {
        let revision = store.key_revision().await?;
        Ok(Arc::new(Authenticator {
            store,
            hasher,
            cache: RwLock::new(Cache {
                revision,
                entries: HashMap::new(),
            }),
            orgs: RwLock::new(std::collections::HashSet::new()),
        }))
    }

    /// Starts the task that drops the cache when keys change in the store (e.g. `sluice key revoke`).
    pub fn watch_revisions(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::store::REVISION_POLL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let Some(auth) = weak.upgrade() else { return };
                match auth.store.key_revision().await {
                    Ok(revision) => auth.observe_revision(revision),
                    Err(e) => tracing::warn!(error = %e, "could not read the key revision"),
                }
            }
        });
    }

    /// Whether the org exists in the store (remembered once seen, forgotten when keys or orgs change). A
    /// store that cannot be read answers no: the caller is refused rather than let into an unknown org.
    pub async fn org_exists(&self, org_id: &str) -> bool {
        if self
            .orgs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(org_id)
        {
            return true;
        }
        match self.store.org_exists(org_id).await {
            Ok(true) => {
                self.orgs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(org_id.to_owned());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(error = %e, "could not look the org up");
                false
            }
        }
    }

    fn observe_revision(&self, revision: i64) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.revision != revision {
            self.orgs.write().unwrap_or_else(|p| p.into_inner()).clear();
            cache.revision = revision;
            cache.entries.clear();
        }
    }

    /// Authenticates a presented key.
    pub async fn verify(&self, key: &str) -> Result<AuthContext, AuthFailure> {
        let key = key.trim();
        if key.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let hash = self.hasher.hash(key);
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .get(&hash)
            .cloned()
        {
            match hit {
                CachedKey::Valid(ctx) => return Ok(ctx),
                CachedKey::Revoked => return Err(AuthFailure::Revoked),
                CachedKey::Unknown(at) if at.elapsed() < NEGATIVE_TTL => return Err(AuthFailure::Unknown),
                CachedKey::Unknown(_) => {}
            }
        }
        let record = self.store.key_by_hash(&hash).await.map_err(|e| {
            tracing::error!(error = %e, "key lookup failed");
            AuthFailure::Unknown
        })?;
        let (entry, result) = match record {
            Some(KeyRecord {
                revoked_at: Some(_), ..
            }) => (CachedKey::Revoked, Err(AuthFailure::Revoked)),
            Some(record) => {
                let ctx = AuthContext {
                    org_id: record.org_id,
                    key_id: record.id,
                    key_name: record.name,
                    key_prefix: record.prefix,
                    scopes: record.scopes,
                    tools: record.tools,
                    connections: record.connections,
                };
                (CachedKey::Valid(ctx.clone()), Ok(ctx))
            }
            None => (CachedKey::Unknown(Instant::now()), Err(AuthFailure::Unknown)),
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if matches!(entry, CachedKey::Unknown(_)) {
            let negatives = cache
                .entries
                .values()
                .filter(|e| matches!(e, CachedKey::Unknown(_)))
                .count();
            if negatives >= MAX_NEGATIVE {
                cache.entries.retain(|_, e| !matches!(e, CachedKey::Unknown(_)));
            }
        }
        cache.entries.insert(hash, entry);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn scopes_parse_and_admin_implies_all() {
        let s = Scopes::parse_list("query, schema").unwrap();
        assert!(s.contains(Scope::Query) && !s.contains(Scope::FsWrite));
        assert_eq!(s.to_string(), "query schema");
        assert!(
            [Scope::Admin]
                .into_iter()
                .collect::<Scopes>()
                .contains(Scope::FsWrite)
        );
        assert_eq!(
            Scopes::parse_list("query nope").unwrap_err(),
            "unknown scope 'nope'; scopes are: query, schema, sandbox, fs_write, admin"
        );
        assert_eq!(Scopes::default_for_new_keys().to_string(), "query schema sandbox");
    }

    #[test]
    fn keys_are_long_random_and_prefixed() {
        let hasher = crate::secrets::MasterKey::load_or_create(
            Some(&crate::secrets::Secret::new("11".repeat(32))),
            std::path::Path::new("/nonexistent"),
        )
        .unwrap()
        .api_key_hasher();
        let a = generate_key(&hasher);
        let b = generate_key(&hasher);
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert_eq!(a.secret.expose().len(), KEY_MARKER.len() + 43);
        assert!(a.secret.expose().starts_with(&a.prefix));
        assert_eq!(a.prefix.len(), KEY_MARKER.len() + 8);
        assert_eq!(a.hash, hasher.hash(a.secret.expose()));
    }
}
