//! Opening a data directory (settings, master key, store) and the first-run set-up `sluice up` does: the
//! local admin key and the demo warehouse.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_connectors::{ConnectorKind, Dsn};

use crate::auth::{Grant, generate_key};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::keyring::Keyring;
use crate::registry::validate_name;
use crate::secrets::{MasterKey, Secret, write_private};
use crate::store::{ConnectionRecord, LOCAL_ORG, Store, now};

/// The opened data directory: settings, master key and store.
pub struct Context {
    pub settings: Arc<Settings>,
    /// The master key (and, while rotating, the previous one), matched to the store's key versions.
    pub master: Arc<Keyring>,
    pub store: Store,
}

impl Context {
    /// Creates the data directory (mode 0700) if needed and opens the master key and the store.
    pub async fn open(settings: Settings) -> Result<Context, GatewayError> {
        let dir = &settings.data_dir;
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| GatewayError::io(dir, e))?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| GatewayError::io(dir, e))?;
        }
        let current = MasterKey::load_or_create(settings.master_key.as_ref(), dir)?;
        let previous = MasterKey::load_previous(settings.master_key_previous.as_ref(), dir)?;
        let store = Store::connect(&settings.store).await?;
        // A wrong key stops here, named as such, before anything is served or sealed.
        let master = Keyring::open(&store, current, previous).await?;
        store.ensure_org(LOCAL_ORG).await?;
        if let Some(stream) = &settings.audit_stream {
            store.stream_audit(stream.clone());
        }
        Ok(Context {
            settings: Arc::new(settings),
            master: Arc::new(master),
            store,
        })
    }

    /// Creates an API key in `org_id`; the secret is returned once and never stored. The connections a
    /// key is limited to must exist in its org when it is created (a name from another org is unknown).
    pub async fn create_key(
        &self,
        org_id: &str,
        name: &str,
        grant: &Grant,
    ) -> Result<Secret<String>, GatewayError> {
        if name.trim().is_empty() {
            return Err(GatewayError::Invalid("a key needs a name (--name)".to_owned()));
        }
        if let Some(names) = grant.connections.names() {
            let known = self.connection_names(org_id).await?;
            if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
                return Err(GatewayError::Invalid(format!(
                    "--connection {unknown}: no such connection in organization '{org_id}'; its connections: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        let key = generate_key(&self.master.api_key_hasher());
        self.store
            .insert_key(org_id, name, &key.prefix, &key.hash, grant)
            .await?;
        Ok(key.secret)
    }

    /// The names of an org's connections: the config file's (for `local`) and the stored ones.
    pub async fn connection_names(&self, org_id: &str) -> Result<Vec<String>, GatewayError> {
        let mut names: Vec<String> = if org_id == LOCAL_ORG {
            self.settings.connections.iter().map(|c| c.name.clone()).collect()
        } else {
            Vec::new()
        };
        names.extend(
            self.store
                .list_connections(org_id)
                .await?
                .into_iter()
                .map(|c| c.name),
        );
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Seals and stores a connection. The DSN's plaintext is exposed only to be sealed (and, for a file
    /// path, to be made absolute).
    pub async fn add_connection(
        &self,
        org_id: &str,
        name: &str,
        kind: &str,
        dsn: &Dsn,
        description: Option<String>,
        settings: serde_json::Value,
    ) -> Result<(), GatewayError> {
        validate_name(name)?;
        let kind = ConnectorKind::parse(kind).ok_or_else(|| {
            GatewayError::Invalid(format!(
                "unsupported connection kind '{kind}' (supported: {})",
                crate::registry::supported_kinds()
            ))
        })?;
        if org_id == LOCAL_ORG && self.settings.connections.iter().any(|c| c.name == name) {
            return Err(GatewayError::Conflict(format!(
                "'{name}' is defined in the config file; config connections cannot be shadowed"
            )));
        }
        let dsn = match kind {
            // Store an absolute path, so the connection works whatever directory the gateway starts in.
            ConnectorKind::DuckDb => Dsn::new(absolute(Path::new(dsn.expose()))?.display().to_string()),
            // A bare SQLite path is made absolute like a DuckDB one; URLs pass through unchanged.
            ConnectorKind::Sqlite if !dsn.expose().starts_with("sqlite:") => {
                Dsn::new(absolute(Path::new(dsn.expose()))?.display().to_string())
            }
            ConnectorKind::Sqlite | ConnectorKind::Postgres | ConnectorKind::MySql => dsn.clone(),
        };
        // A host `[connection_hosts]` refuses is refused here, before anything is stored; the pool checks
        // it again before every connect. Other DSN problems stay the pool's to report, as before.
        if let Err(sluice_connectors::ConnectorError::HostRefused(refusal)) =
            sluice_connectors::check_dsn(kind, &dsn, &self.settings.connection_hosts).await
        {
            return Err(GatewayError::Invalid(format!("connection '{name}': {refusal}")));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (key_version, sealed) = self.master.seal(&id, dsn.expose().as_bytes())?;
        self.store
            .insert_connection(&ConnectionRecord {
                id,
                org_id: org_id.to_owned(),
                name: name.to_owned(),
                kind: kind.as_str().to_owned(),
                dsn_sealed: sealed,
                key_version,
                description,
                settings,
                created_at: now(),
            })
            .await
    }
}

fn absolute(path: &Path) -> Result<PathBuf, GatewayError> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir().map_err(|e| GatewayError::io(path, e))?;
    Ok(cwd.join(path))
}

/// What `sluice up` prepared on this run.
pub struct Bootstrap {
    /// The admin key, only on the run that created it.
    pub new_admin_key: Option<Secret<String>>,
    pub demo_created: bool,
}

/// What [`first_key`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstKey {
    /// The org already has a usable key; nothing was created.
    Exists,
    /// This process created the `admin` key and wrote it to the file.
    Created,
    /// Another gateway instance created it at the same moment (its file holds it).
    CreatedElsewhere,
}

/// First start of a deployment (`sluice serve` with `[server] first_key_file`): when the org has no usable
/// API key, creates the admin key `admin` and writes it (mode 0600) to `path`, so that the operator reads it
/// from there; the key never reaches a log. Instances racing on one store create exactly one: the key's name
/// is unique, and the losers see the conflict.
pub async fn first_key(ctx: &Context, path: &Path) -> Result<FirstKey, GatewayError> {
    let keys = ctx.store.list_keys(LOCAL_ORG).await?;
    if keys.iter().any(|k| k.revoked_at.is_none()) {
        return Ok(FirstKey::Exists);
    }
    let name = if keys.iter().any(|k| k.name == "admin") {
        format!("admin-{}", keys.len() + 1)
    } else {
        "admin".to_owned()
    };
    match ctx.create_key(LOCAL_ORG, &name, &Grant::admin()).await {
        Ok(secret) => {
            write_private(path, format!("{}\n", secret.expose()).as_bytes())?;
            Ok(FirstKey::Created)
        }
        Err(GatewayError::Conflict(_)) => Ok(FirstKey::CreatedElsewhere),
        Err(e) => Err(e),
    }
}

/// First-run set-up for `sluice up`: the local admin key and the demo warehouse.
pub async fn bootstrap_local(ctx: &Context) -> Result<Bootstrap, GatewayError> {
    let key_file = ctx.settings.key_file();
    let mut new_admin_key = None;
    if !key_file.exists() {
        let keys = ctx.store.list_keys(LOCAL_ORG).await?;
        let name = if keys.iter().any(|k| k.name == "local-admin") {
            format!("local-admin-{}", keys.len() + 1)
        } else {
            "local-admin".to_owned()
        };
        let secret = ctx.create_key(LOCAL_ORG, &name, &Grant::admin()).await?;
        write_private(&key_file, format!("{}\n", secret.expose()).as_bytes())?;
        new_admin_key = Some(secret);
    }

    let demo = ctx.settings.demo_path();
    let mut demo_created = false;
    if !demo.exists() {
        tracing::info!(path = %demo.display(), "generating the demo warehouse");
        sluice_connectors::duckdb::demo::create(&demo)?;
        demo_created = true;
    }
    let registered = ctx
        .store
        .list_connections(LOCAL_ORG)
        .await?
        .iter()
        .any(|c| c.name == "demo")
        || ctx.settings.connections.iter().any(|c| c.name == "demo");
    if !registered {
        ctx.add_connection(
            LOCAL_ORG,
            "demo",
            "duckdb",
            &Dsn::new(demo.display().to_string()),
            Some("Demo retail warehouse (generated by Sluice)".to_owned()),
            serde_json::json!({}),
        )
        .await?;
    }
    Ok(Bootstrap {
        new_admin_key,
        demo_created,
    })
}
