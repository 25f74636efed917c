//! Organizations: each owns its keys, connections, dbt projects, budgets and audit records. `local` is the
//! single-tenant org every install starts with (the config file's connections and projects belong to it).

use super::{ConnectionRecord, Fields, LOCAL_ORG, Store, connection_record, now, on_pool, unique};
use crate::error::GatewayError;

/// An org as stored; its name doubles as its id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// What removing an org removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgRemoval {
    pub keys: u64,
    pub connections: u64,
    pub projects: u64,
}

fn org_record(r: &impl Fields) -> Result<OrgRecord, GatewayError> {
    Ok(OrgRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        created_at: r.text("created_at")?,
    })
}

impl Store {
    /// Creates an org; its name must be new.
    pub async fn create_org(&self, name: &str) -> Result<OrgRecord, GatewayError> {
        crate::config::check_name("organization", name)?;
        let created_at = now();
        let result = on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(&created_at)
        .execute(p)
        .await
        .map(|d| d.rows_affected()));
        unique(result, || {
            format!("an organization named '{name}' already exists")
        })?;
        Ok(OrgRecord {
            id: name.to_owned(),
            name: name.to_owned(),
            created_at,
        })
    }

    /// Whether an org with this id exists.
    pub async fn org_exists(&self, id: &str) -> Result<bool, GatewayError> {
        let found: Option<String> = on_pool!(&self.pool, p => sqlx::query_scalar("SELECT id FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(found.is_some())
    }

    /// Every org, by name.
    pub async fn list_orgs(&self) -> Result<Vec<OrgRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY name")
            .fetch_all(p)
            .await?
            .iter()
            .map(org_record)
            .collect())
    }

    /// The id of the org named `name`, or an error that lists the orgs there are.
    pub async fn org_id(&self, name: &str) -> Result<String, GatewayError> {
        let id: Option<String> = on_pool!(&self.pool, p => sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await)?;
        match id {
            Some(id) => Ok(id),
            None => {
                let names: Vec<String> = self.list_orgs().await?.into_iter().map(|o| o.name).collect();
                Err(GatewayError::NotFound(format!(
                    "no organization named '{name}'; organizations: {} (create one with `sluice org create --name {name}`)",
                    names.join(", ")
                )))
            }
        }
    }

    /// Removes an org with its keys, connections and projects (its budgets' counters too). Its audit
    /// records stay: the log is append-only. `local` cannot be removed.
    pub async fn remove_org(&self, name: &str) -> Result<OrgRemoval, GatewayError> {
        if name == LOCAL_ORG {
            return Err(GatewayError::Invalid(
                "the 'local' organization cannot be removed: the config file's connections and projects belong to it"
                    .to_owned(),
            ));
        }
        let id = self.org_id(name).await?;
        let delete = |table: &'static str| {
            let id = id.clone();
            async move {
                let sql = format!("DELETE FROM {table} WHERE org_id = $1");
                on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&id)
                    .execute(p)
                    .await
                    .map(|d| d.rows_affected()))
            }
        };
        let removal = OrgRemoval {
            keys: delete("api_keys").await?,
            connections: delete("connections").await?,
            projects: delete("projects").await?,
        };
        delete("budget_usage").await?;
        delete("budget_admissions").await?;
        on_pool!(&self.pool, p => sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(&id)
            .execute(p)
            .await
            .map(drop))?;
        // Running gateways drop the org's cached keys and unload its connections.
        self.bump("api_keys").await?;
        self.bump("connections").await?;
        Ok(removal)
    }

    /// Every org's stored connections, by org and name (what a gateway serves).
    pub async fn list_all_connections(&self) -> Result<Vec<ConnectionRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query(
            "SELECT id, org_id, name, kind, dsn_sealed, key_version, description, settings, created_at
             FROM connections ORDER BY org_id, name",
        )
        .fetch_all(p)
        .await?
        .iter()
        .map(connection_record)
        .collect())
    }
}
