//! Stored dbt projects: name, directory and the connection holding the warehouse dbt builds.

use super::{Fields, Store, now, on_pool, unique};
use crate::error::GatewayError;

/// A stored project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectRecord {
    pub org_id: String,
    pub name: String,
    pub dir: String,
    pub connection: Option<String>,
    pub description: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Stores a project; the name is unique within the org.
    pub async fn insert_project(
        &self,
        org_id: &str,
        name: &str,
        dir: &str,
        connection: Option<&str>,
        description: Option<&str>,
    ) -> Result<ProjectRecord, GatewayError> {
        let created_at = now();
        let result = on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO projects (id, org_id, name, dir, connection, description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(org_id)
        .bind(name)
        .bind(dir)
        .bind(connection)
        .bind(description)
        .bind(&created_at)
        .execute(p)
        .await
        .map(|d| d.rows_affected()));
        unique(result, || format!("a project named '{name}' already exists"))?;
        Ok(ProjectRecord {
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            dir: dir.to_owned(),
            connection: connection.map(str::to_owned),
            description: description.map(str::to_owned),
            created_at,
        })
    }

    /// The org's stored projects, sorted by name.
    pub async fn list_projects(&self, org_id: &str) -> Result<Vec<ProjectRecord>, GatewayError> {
        on_pool!(&self.pool, p => sqlx::query(
            "SELECT org_id, name, dir, connection, description, created_at
             FROM projects WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(p)
        .await?
        .iter()
        .map(project_record)
        .collect())
    }

    /// Removes a stored project.
    pub async fn remove_project(&self, org_id: &str, name: &str) -> Result<(), GatewayError> {
        let removed = on_pool!(&self.pool, p => sqlx::query("DELETE FROM projects WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(p)
            .await
            .map(|d| d.rows_affected()))?;
        if removed == 0 {
            return Err(GatewayError::NotFound(format!(
                "no stored project named '{name}'"
            )));
        }
        Ok(())
    }
}

fn project_record(r: &impl Fields) -> Result<ProjectRecord, GatewayError> {
    Ok(ProjectRecord {
        org_id: r.text("org_id")?,
        name: r.text("name")?,
        dir: r.text("dir")?,
        connection: r.text_opt("connection")?,
        description: r.text_opt("description")?,
        created_at: r.text("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[tokio::test]
    async fn add_list_remove() {
        for t in crate::store::engines::each_engine().await {
            add_list_remove_on(&t.store).await;
        }
    }

    async fn add_list_remove_on(store: &Store) {
        store.ensure_org("local").await.unwrap();
        store
            .insert_project("local", "b", "/p/b", Some("wh"), None)
            .await
            .unwrap();
        store
            .insert_project("local", "a", "/p/a", None, Some("first"))
            .await
            .unwrap();
        let err = store
            .insert_project("local", "a", "/p/x", None, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("a project named 'a' already exists"), "{err}");
        let names: Vec<_> = store
            .list_projects("local")
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.dir, p.connection))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), "/p/a".into(), None),
                ("b".into(), "/p/b".into(), Some("wh".into()))
            ]
        );
        assert!(store.list_projects("other").await.unwrap().is_empty());
        store.remove_project("local", "a").await.unwrap();
        let err = store.remove_project("local", "a").await.unwrap_err().to_string();
        assert!(err.contains("no stored project named 'a'"), "{err}");
    }
}
