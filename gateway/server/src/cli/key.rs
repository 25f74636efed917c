//! `sluice key`: create, list and revoke an organization's API keys.

use std::io::Write as _;

use anyhow::{Result, bail};
use clap::Subcommand;
use sluice_core::auth::{ConnectionGrants, Grant, Role, Scope, ToolList};
use sluice_core::setup::Context;

use super::settings::settings;
use super::{Common, OrgArg};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it alone on stdout (it is shown only this once).
    Create {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        /// Role: viewer (schema), analyst (query schema sandbox), engineer (adds fs_write: workspace writes
        /// and dbt parse) or admin (everything) [default: analyst].
        #[arg(long, conflicts_with = "scopes")]
        role: Option<String>,
        /// Scope to grant instead of a role (repeatable): query, schema, sandbox, fs_write, admin.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Limit the key to this connection of its organization (repeatable); others are refused and not
        /// listed [default: every connection of the organization].
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Limit the key to this tool (repeatable); the agent sees and may call only these [default: every
        /// tool its scopes allow].
        #[arg(long = "tool")]
        tools: Vec<String>,
    },
    /// List API keys (prefixes only).
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Revoke an API key by name or prefix; running gateways stop accepting it within a second.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        org: OrgArg,
        /// The key's name or prefix.
        key: String,
    },
}

pub(super) async fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Create {
            common,
            org,
            name,
            role,
            scopes,
            connections,
            tools,
        } => {
            let mut grant = if scopes.is_empty() {
                let role = match role.as_deref().map(Role::parse).transpose() {
                    Ok(role) => role.unwrap_or(Role::Analyst),
                    Err(e) => bail!(e),
                };
                Grant::role(role)
            } else {
                let parsed: std::result::Result<Vec<Scope>, String> =
                    scopes.iter().map(|s| Scope::parse(s)).collect();
                match parsed {
                    Ok(list) => Grant::scopes(list.into_iter().collect()),
                    Err(e) => bail!(e),
                }
            };
            if let Some(e) = crate::tools::unknown_tools(&tools, "--tool") {
                bail!(e);
            }
            if !tools.is_empty() {
                grant.tools = ToolList::only(tools);
            }
            if !connections.is_empty() {
                grant.connections = ConnectionGrants::only(connections);
            }
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let secret = ctx.create_key(&org, &name, &grant).await?;
            // The key alone on stdout, so scripts can capture it.
            println!("{}", secret.expose());
            let role = grant.role.map_or_else(|| "custom".to_owned(), |r| r.to_string());
            eprintln!(
                "created key '{name}' in organization '{org}': role {role}, scopes: {}; tools: {}; connections: {} \
                 (store it now; it is not shown again)",
                grant.scopes, grant.tools, grant.connections
            );
            Ok(())
        }
        KeyCommand::List { common, org } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let mut out = std::io::stdout().lock();
            for k in ctx.store.list_keys(&org).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{}\t{}…\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.name,
                    k.prefix,
                    k.scopes,
                    state,
                    k.created_at,
                    k.tools.stored().unwrap_or_else(|| "all tools".to_owned()),
                    k.role.map_or("custom", Role::as_str),
                    k.connections
                        .stored()
                        .unwrap_or_else(|| "all connections".to_owned())
                )?;
            }
            Ok(())
        }
        KeyCommand::Revoke { common, org, key } => {
            let ctx = Context::open(settings(&common, None)?).await?;
            let org = ctx.store.org_id(&org.value).await?;
            let record = ctx.store.revoke_key(&org, &key).await?;
            println!("revoked key '{}' ({}…)", record.name, record.prefix);
            Ok(())
        }
    }
}
