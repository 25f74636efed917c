//! Test helpers: the services over an empty registry and a temporary store, and a call context with
//! every scope, for unit tests here and in the front doors (feature `testing`).

// Test set-up that fails cannot go on; a panic with the reason is the clearest answer.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use crate::auth::{AuthContext, Scopes};
use crate::config::{Overrides, Settings};
use crate::pipeline::CallContext;
use crate::registry::Registry;
use crate::service::Services;
use crate::store::Store;

/// Services over an empty registry and a store in a temporary directory (kept alive by the returned
/// `TempDir`).
pub async fn services() -> (Arc<Services>, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("test set-up");
    let store = Store::open(&dir.path().join("sluice.db"))
        .await
        .expect("test set-up");
    let settings = Arc::new(Settings::resolve(Overrides::default()).expect("test set-up"));
    let services = Arc::new(Services {
        registry: Arc::new(Registry::new(Arc::clone(&settings))),
        settings,
        engines: vec![],
        store: store.clone(),
        sandbox: Arc::new(crate::sandbox::Sandbox::not_configured(
            "no sandbox daemon in unit tests",
            300,
        )),
        schema_cache: Arc::new(crate::schema_cache::SchemaCache::new(
            std::time::Duration::from_secs(300),
        )),
        cursors: Arc::new(crate::cursors::Cursors::new(
            std::time::Duration::from_secs(600),
            16,
            1 << 20,
        )),
        budgets: Arc::new(crate::budgets::Budgets::new(Default::default(), store.clone())),
        health: Arc::new(crate::health::Health::default()),
    });
    (services, store, dir)
}

/// The local org's admin-like caller, outside any MCP session.
pub fn ctx() -> CallContext {
    CallContext {
        auth: AuthContext {
            org_id: "local".into(),
            key_id: "k".into(),
            key_name: "test".into(),
            key_prefix: "sluice_test".into(),
            scopes: Scopes::all(),
            tools: crate::auth::ToolList::all(),
            connections: crate::auth::ConnectionGrants::all(),
        },
        session_id: None,
        request_id: "test-request".into(),
        cancel: tokio_util::sync::CancellationToken::new(),
        progress: None,
        traceparent: None,
    }
}
