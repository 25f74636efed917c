//! Test support: the same store test on both engines, a SQLite file and a PostgreSQL schema of its own on
//! the run's shared throwaway server (`tests/servers`).

use std::str::FromStr as _;

use sluice_test_servers::{Engine, Server};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{Pool, Store, on_pool};

/// A fresh store and what keeps it alive.
pub(crate) struct TestStore {
    pub store: Store,
    pub engine: &'static str,
    /// The SQLite file's directory, or the PostgreSQL schema's name.
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgConnectOptions>,
}

impl TestStore {
    /// Another handle on the same store, as a second gateway instance opens it (SQLite: the same file).
    pub async fn another_instance(&self) -> Store {
        match (&self.pg, &self._dir) {
            (Some(options), _) => Store::open_postgres(options.clone(), 4).await.unwrap(),
            (None, Some(dir)) => Store::open(&dir.path().join("sluice.db")).await.unwrap(),
            (None, None) => unreachable!("a test store is SQLite or PostgreSQL"),
        }
    }

    /// Runs engine-specific SQL (test set-up only).
    pub async fn execute(&self, sql: &'static str) {
        on_pool!(&self.store.pool, p => sqlx::query(sql).execute(p).await.map(drop)).unwrap();
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        on_pool!(&self.store.pool, p => sqlx::query_scalar(sql).fetch_one(p).await).unwrap()
    }
}

/// A new, empty, migrated store on each engine: SQLite first, then PostgreSQL.
pub(crate) async fn each_engine() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("sluice.db")).await.unwrap();
    let mut stores = vec![TestStore {
        store: sqlite,
        engine: "sqlite",
        _dir: Some(dir),
        pg: None,
    }];
    let (store, options) = postgres_store().await;
    stores.push(TestStore {
        store,
        engine: "postgres",
        _dir: None,
        pg: Some(options),
    });
    stores
}

/// A migrated store in a new schema of the shared PostgreSQL test server.
pub(crate) async fn postgres_store() -> (Store, PgConnectOptions) {
    let server = tokio::task::spawn_blocking(|| Server::shared(Engine::Postgres))
        .await
        .unwrap();
    let base = PgConnectOptions::from_str(&server.dsn).unwrap();
    let schema = format!("store_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let options = base.options([("search_path", schema.as_str())]);
    let store = Store::open_postgres(options.clone(), 4).await.unwrap();
    assert!(matches!(store.pool, Pool::Postgres(_)));
    (store, options)
}
