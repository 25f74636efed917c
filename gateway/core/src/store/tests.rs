//! The store's behaviour, asserted on both engines (SQLite and PostgreSQL) by the same tests.

use pretty_assertions::assert_eq;

use super::engines::{TestStore, each_engine};
use super::*;
use crate::auth::{ConnectionGrants, Grant, Role, Scope, Scopes, ToolList};

fn record(tool: &str) -> AuditRecord {
    AuditRecord {
        ts: now(),
        org_id: "local".to_owned(),
        key_prefix: "sluice_test".to_owned(),
        tool: tool.to_owned(),
        decision: "ok".to_owned(),
        ..Default::default()
    }
}

/// Table -> (column, not null) on the store's engine, without the engines' own bookkeeping tables.
async fn schema(t: &TestStore) -> Vec<(String, String, bool)> {
    let mut columns: Vec<(String, String, bool)> = match &t.store.pool {
        Pool::Sqlite(p) => sqlx::query_as(
            "SELECT m.name, c.name, c.\"notnull\" OR c.pk > 0
             FROM sqlite_master m, pragma_table_info(m.name) c
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
        )
        .fetch_all(p)
        .await
        .unwrap(),
        Pool::Postgres(p) => sqlx::query_as(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT), is_nullable = 'NO'
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(p)
        .await
        .unwrap(),
    };
    columns.sort();
    columns
}

#[tokio::test]
async fn both_engines_have_the_same_tables_columns_and_migrations() {
    let [sqlite, postgres]: [TestStore; 2] = each_engine().await.try_into().ok().unwrap();
    let (a, b) = (schema(&sqlite).await, schema(&postgres).await);
    assert!(a.len() > 40, "{a:?}");
    assert_eq!(a, b);
    let versions = "SELECT count(*) FROM _sqlx_migrations WHERE success";
    assert_eq!(sqlite.count(versions).await, postgres.count(versions).await);
    assert_eq!(
        SQLITE_MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>(),
        POSTGRES_MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>(),
        "every migration exists for both engines, with the same version and name"
    );
}

#[tokio::test]
async fn keys_are_created_found_listed_and_revoked() {
    for t in each_engine().await {
        let store = &t.store;
        let engine = t.engine;
        store.ensure_org(LOCAL_ORG).await.unwrap();
        assert_eq!(store.ensure_org(LOCAL_ORG).await.unwrap(), LOCAL_ORG, "{engine}");
        let before = store.key_revision().await.unwrap();
        let grant = Grant {
            role: None,
            scopes: Scopes::from_iter([Scope::Query, Scope::Schema]),
            tools: ToolList::only(vec!["query_database".to_owned()]),
            connections: ConnectionGrants::only(["warehouse"]),
        };
        let created = store
            .insert_key(LOCAL_ORG, "ci", "sluice_abc", &[7u8; 32], &grant)
            .await
            .unwrap();
        assert!(store.key_revision().await.unwrap() > before, "{engine}");
        let found = store.key_by_hash(&[7u8; 32]).await.unwrap().unwrap();
        assert_eq!(found, created, "{engine}");
        assert_eq!(store.key_by_hash(&[8u8; 32]).await.unwrap(), None, "{engine}");
        let err = store
            .insert_key(
                LOCAL_ORG,
                "ci",
                "sluice_def",
                &[9u8; 32],
                &Grant::role(Role::Viewer),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("an API key named 'ci' already exists"),
            "{engine}: {err}"
        );
        let revoked = store.revoke_key(LOCAL_ORG, "sluice_abc").await.unwrap();
        assert!(revoked.revoked_at.is_some(), "{engine}");
        let listed = store.list_keys(LOCAL_ORG).await.unwrap();
        assert_eq!(listed, vec![revoked], "{engine}");
        let err = store.revoke_key(LOCAL_ORG, "ci").await.unwrap_err().to_string();
        assert!(err.contains("already revoked"), "{engine}: {err}");
        assert!(store.list_keys("other").await.unwrap().is_empty(), "{engine}");
    }
}

#[tokio::test]
async fn connections_keep_their_sealed_bytes_and_settings() {
    for t in each_engine().await {
        let store = &t.store;
        let engine = t.engine;
        store.ensure_org(LOCAL_ORG).await.unwrap();
        let before = store.connection_revision().await.unwrap();
        let record = ConnectionRecord {
            id: "c1".to_owned(),
            org_id: LOCAL_ORG.to_owned(),
            name: "wh".to_owned(),
            kind: "postgres".to_owned(),
            // Every byte value, NUL included, survives the round trip.
            dsn_sealed: (0..=255u8).collect(),
            key_version: 1,
            description: Some("the warehouse".to_owned()),
            settings: serde_json::json!({"max_rows": 5}),
            created_at: now(),
        };
        store.insert_connection(&record).await.unwrap();
        let err = store.insert_connection(&record).await.unwrap_err().to_string();
        assert!(
            err.contains("a connection named 'wh' already exists"),
            "{engine}: {err}"
        );
        let listed = store.list_connections(LOCAL_ORG).await.unwrap();
        assert_eq!(listed.len(), 1, "{engine}");
        assert_eq!(listed[0].dsn_sealed, record.dsn_sealed, "{engine}");
        assert_eq!(listed[0].settings, record.settings, "{engine}");
        assert!(store.connection_revision().await.unwrap() > before, "{engine}");
        store.remove_connection(LOCAL_ORG, "wh").await.unwrap();
        let err = store
            .remove_connection(LOCAL_ORG, "wh")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no stored connection named 'wh'"), "{engine}: {err}");
    }
}

#[tokio::test]
async fn audit_records_round_trip_newest_first() {
    for t in each_engine().await {
        let store = &t.store;
        let engine = t.engine;
        let full = AuditRecord {
            session_id: Some("s1".to_owned()),
            connection: Some("wh".to_owned()),
            sql_redacted: Some("SELECT * FROM t WHERE a = ?".to_owned()),
            sql_sha256: Some("ab".repeat(32)),
            sql_len: Some(31),
            system_query: true,
            rule: Some("limit".to_owned()),
            rows: Some(12),
            duration_ms: 1.25,
            error: Some("boom".to_owned()),
            code_sha256: Some("cd".repeat(32)),
            code_len: Some(9),
            ..record("query_database")
        };
        store.append_audit(&record("first")).await.unwrap();
        store.append_audit(&full).await.unwrap();
        let recent = store.recent_audit(LOCAL_ORG, 10).await.unwrap();
        assert_eq!(
            recent,
            vec![full, record_with_ts(&recent[1], "first")],
            "{engine}"
        );
        assert!(
            store.recent_audit("other", 10).await.unwrap().is_empty(),
            "{engine}"
        );
    }
}

fn record_with_ts(seen: &AuditRecord, tool: &str) -> AuditRecord {
    AuditRecord {
        ts: seen.ts.clone(),
        ..record(tool)
    }
}

#[tokio::test]
async fn concurrent_audit_appends_all_land_before_they_return() {
    for t in each_engine().await {
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = t.store.clone();
                tokio::spawn(async move { store.append_audit(&record(&format!("tool_{i}"))).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            t.count("SELECT count(*) FROM audit_log").await,
            300,
            "{}",
            t.engine
        );
    }
}

#[tokio::test]
async fn a_refused_audit_record_fails_its_own_call_and_no_other() {
    for t in each_engine().await {
        match t.engine {
            "sqlite" => {
                t.execute(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log WHEN NEW.tool = 'poison'
                     BEGIN SELECT RAISE(ABORT, 'refuse_poison: the store refused this record'); END",
                )
                .await
            }
            _ => {
                t.execute("ALTER TABLE audit_log ADD CONSTRAINT refuse_poison CHECK (tool <> 'poison')")
                    .await
            }
        }
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = t.store.clone();
                let tool = if i == 25 {
                    "poison".to_owned()
                } else {
                    format!("tool_{i}")
                };
                tokio::spawn(async move { (tool.clone(), store.append_audit(&record(&tool)).await) })
            })
            .collect();
        for task in tasks {
            let (tool, result) = task.await.unwrap();
            if tool == "poison" {
                let message = result.unwrap_err().to_string();
                assert!(message.contains("refuse_poison"), "{}: {message}", t.engine);
            } else {
                result.unwrap();
            }
        }
        assert_eq!(
            t.count("SELECT count(*) FROM audit_log").await,
            49,
            "{}",
            t.engine
        );
    }
}

#[tokio::test]
async fn two_instances_admit_exactly_the_query_budget_between_them() {
    for t in each_engine().await {
        let other = t.another_instance().await;
        let limit = 25;
        let tasks: Vec<_> = (0..120)
            .map(|i| {
                let store = if i % 2 == 0 {
                    t.store.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move { store.admit_query("local", "k1", "2026-01-01", limit).await })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, limit, "{}", t.engine);
        // Another key and another day have budgets of their own; a zero budget admits nothing.
        assert!(
            t.store
                .admit_query("local", "k2", "2026-01-01", limit)
                .await
                .unwrap()
        );
        assert!(
            t.store
                .admit_query("local", "k1", "2026-01-02", limit)
                .await
                .unwrap()
        );
        assert!(!t.store.admit_query("local", "k3", "2026-01-01", 0).await.unwrap());
    }
}

#[tokio::test]
async fn a_revocation_through_one_instance_bumps_the_revision_the_other_reads() {
    for t in each_engine().await {
        let other = t.another_instance().await;
        t.store.ensure_org(LOCAL_ORG).await.unwrap();
        t.store
            .insert_key(LOCAL_ORG, "k", "sluice_k", &[1u8; 32], &Grant::admin())
            .await
            .unwrap();
        let seen = other.key_revision().await.unwrap();
        t.store.revoke_key(LOCAL_ORG, "k").await.unwrap();
        assert!(other.key_revision().await.unwrap() > seen, "{}", t.engine);
        let key = other.key_by_hash(&[1u8; 32]).await.unwrap().unwrap();
        assert!(key.revoked_at.is_some(), "{}", t.engine);
    }
}

/// A PostgreSQL store that goes away holds the audit records of calls made meanwhile and commits them once
/// it is back (the writer's connection is replaced); other store calls fail with the driver's reason. Past
/// the retry limit, the records' calls fail, and the store serves again once it is back.
#[tokio::test]
async fn a_postgres_store_that_restarts_keeps_the_audit_records_made_meanwhile() {
    let server = tokio::task::spawn_blocking(|| {
        sluice_test_servers::Server::private(sluice_test_servers::Engine::Postgres)
    })
    .await
    .unwrap();
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&server.dsn).unwrap();
    let store = Store::open_postgres(options, 4).await.unwrap();
    store.ensure_org(LOCAL_ORG).await.unwrap();
    store.append_audit(&record("before")).await.unwrap();
    let stop = |server: sluice_test_servers::Server| {
        tokio::task::spawn_blocking(move || {
            server.stop();
            server
        })
    };
    let start = |server: sluice_test_servers::Server| {
        tokio::task::spawn_blocking(move || {
            server.start();
            server
        })
    };

    // Down for a second: the record made meanwhile waits, and lands.
    let server = stop(server).await.unwrap();
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.append_audit(&record("while_down")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        !waiting.is_finished(),
        "the record's call must wait for the store"
    );
    assert!(store.ping().await.is_err());
    let server = start(server).await.unwrap();
    waiting.await.unwrap().unwrap();
    store.append_audit(&record("after")).await.unwrap();

    // Down for longer than the retry limit: the call fails, saying why; the store serves again after.
    store.audit_retry_for(std::time::Duration::from_millis(300));
    let server = stop(server).await.unwrap();
    let err = store
        .append_audit(&record("too_long"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("audit write failed"), "{err}");
    let server = start(server).await.unwrap();
    store.append_audit(&record("back")).await.unwrap();
    let tools: Vec<String> = store
        .recent_audit(LOCAL_ORG, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.tool)
        .collect();
    assert_eq!(tools, ["back", "after", "while_down", "before"]);
    drop(server);
}

/// An instance whose insert of the org meets another instance's uncommitted insert of it waits for that
/// one and succeeds.
#[tokio::test]
async fn an_org_created_meanwhile_by_another_instance_is_no_error() {
    for t in each_engine().await {
        let other = t.another_instance().await;
        on_pool!(&t.store.pool, p => {
            let mut tx = p.begin().await.unwrap();
            sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ('raced', 'raced', 'now')")
                .execute(&mut *tx)
                .await
                .unwrap();
            let racing = tokio::spawn({
                let other = other.clone();
                async move { other.ensure_org("raced").await }
            });
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            tx.commit().await.unwrap();
            assert_eq!(racing.await.unwrap().unwrap(), "raced", "{}", t.engine);
        });
    }
}

#[tokio::test]
async fn orgs_are_created_listed_and_removed_with_what_they_own() {
    for t in each_engine().await {
        let store = &t.store;
        let engine = t.engine;
        store.ensure_org(LOCAL_ORG).await.unwrap();
        store.create_org("acme").await.unwrap();
        let err = store.create_org("acme").await.unwrap_err().to_string();
        assert!(
            err.contains("an organization named 'acme' already exists"),
            "{engine}: {err}"
        );
        let err = store.create_org("no spaces").await.unwrap_err().to_string();
        assert!(
            err.contains("invalid organization name 'no spaces'"),
            "{engine}: {err}"
        );
        let names: Vec<String> = store
            .list_orgs()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["acme", "local"], "{engine}");
        let err = store.org_id("nope").await.unwrap_err().to_string();
        assert!(
            err.contains("no organization named 'nope'; organizations: acme, local"),
            "{engine}: {err}"
        );

        let role = store
            .insert_key("acme", "a", "sluice_a", &[3u8; 32], &Grant::role(Role::Engineer))
            .await
            .unwrap();
        assert_eq!(role.role, Some(Role::Engineer), "{engine}");
        assert_eq!(
            store.key_by_hash(&[3u8; 32]).await.unwrap(),
            Some(role),
            "{engine}"
        );
        store
            .insert_key(LOCAL_ORG, "a", "sluice_l", &[4u8; 32], &Grant::admin())
            .await
            .expect("key names are unique per org");
        store
            .insert_connection(&ConnectionRecord {
                id: "c1".into(),
                org_id: "acme".into(),
                name: "wh".into(),
                kind: "duckdb".into(),
                dsn_sealed: vec![1, 2, 3],
                key_version: 1,
                description: None,
                settings: serde_json::json!({}),
                created_at: now(),
            })
            .await
            .unwrap();
        store
            .insert_project("acme", "p", "/tmp", Some("wh"), None)
            .await
            .unwrap();
        let all: Vec<(String, String)> = store
            .list_all_connections()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.org_id, c.name))
            .collect();
        assert_eq!(all, [("acme".to_owned(), "wh".to_owned())], "{engine}");

        let err = store.remove_org(LOCAL_ORG).await.unwrap_err().to_string();
        assert!(
            err.contains("'local' organization cannot be removed"),
            "{engine}: {err}"
        );
        let before = store.key_revision().await.unwrap();
        let removed = store.remove_org("acme").await.unwrap();
        assert_eq!(
            (removed.keys, removed.connections, removed.projects),
            (1, 1, 1),
            "{engine}"
        );
        assert!(store.key_revision().await.unwrap() > before, "{engine}");
        assert_eq!(store.key_by_hash(&[3u8; 32]).await.unwrap(), None, "{engine}");
        assert!(store.list_all_connections().await.unwrap().is_empty(), "{engine}");
        assert_eq!(store.list_keys(LOCAL_ORG).await.unwrap().len(), 1, "{engine}");
    }
}
