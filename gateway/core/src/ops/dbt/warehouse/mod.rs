//! Checks of built models against the warehouse: the model's relation comes from the manifest of the
//! project bound to the connection, never from its name, and every statement is the pure crate's SQL
//! sent through [`Services::query_in`], governed and audited like an agent's query.

pub mod grain;
pub mod rows;
pub mod schema;

use sluice_dbt::NodeKind;
use sluice_dbt::verify::TableRef;
use sluice_dialect::Quoting;

use super::{Loaded, bound};
use crate::pipeline::CallContext;
use crate::service::{AuditFacts, Outcome, QueryOutput, Services, ToolError};

/// A model of a project bound to the connection: its relation as the manifest records it.
struct Model {
    name: String,
    table: TableRef,
    documented: Vec<String>,
}

fn find_model(
    bound: &[(String, std::sync::Arc<Loaded>)],
    connection: &str,
    model: &str,
) -> Result<Model, ToolError> {
    if bound.is_empty() {
        return Err(ToolError::invalid(format!(
            "no dbt project is bound to connection '{connection}', so model '{model}' cannot be looked up in a \
             manifest: register the project with `sluice project add --name N --dir D --connection \
             {connection}` (or `connection = \"{connection}\"` under [[projects]] in the config)"
        )));
    }
    for (_, loaded) in bound {
        let project = &loaded.analysis.project;
        let Some(id) = project.find(model) else {
            continue;
        };
        let node = project.node(id);
        if !matches!(node.kind, NodeKind::Model | NodeKind::Seed | NodeKind::Snapshot) {
            return Err(ToolError::invalid(format!(
                "'{model}' is a {} in project {}, not a model, seed or snapshot",
                node.kind.as_str(),
                project.name
            )));
        }
        let Some(relation) = node.relation.as_ref() else {
            return Err(ToolError::invalid(format!(
                "model '{model}' has no relation in the manifest of project {} (ephemeral, disabled, or declared \
                 without SQL); build it with `dbt build --select {model}` first",
                project.name
            )));
        };
        return Ok(Model {
            name: node.name.clone(),
            table: TableRef::from_relation(relation),
            documented: node.columns.iter().map(|c| c.name.clone()).collect(),
        });
    }
    let names: Vec<String> = bound.iter().map(|(n, _)| n.clone()).collect();
    let mut models: Vec<String> = bound
        .iter()
        .flat_map(|(_, l)| {
            l.analysis
                .project
                .of_kind(NodeKind::Model)
                .into_iter()
                .filter(|(_, n)| n.relation.is_some())
                .map(|(_, n)| n.name.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    models.sort();
    models.dedup();
    let shown: Vec<String> = models.iter().take(30).cloned().collect();
    Err(ToolError::invalid(format!(
        "model '{model}' is not in the manifest of project {} (bound to connection '{connection}'); models: {}{}",
        names.join(", "),
        shown.join(", "),
        if models.len() > shown.len() { ", …" } else { "" }
    )))
}

/// A table the caller names beside the model: a node of a bound project when it is one, else a plain name.
fn find_table(bound: &[(String, std::sync::Arc<Loaded>)], name: &str) -> Result<TableRef, ToolError> {
    for (_, loaded) in bound {
        let project = &loaded.analysis.project;
        if let Some(id) = project.find(name)
            && let Some(relation) = project.node(id).relation.as_ref()
        {
            return Ok(TableRef::from_relation(relation));
        }
    }
    TableRef::parse(name).map_err(|e| ToolError::invalid(e.to_string()))
}

/// Several governed statements for one tool call: each goes through [`Services::query_in`]; the audit
/// record lists them all (the audit log redacts every literal).
struct Runner<'a> {
    s: &'a Services,
    ctx: &'a CallContext,
    connection: String,
    sqls: Vec<String>,
    audit: AuditFacts,
}

impl<'a> Runner<'a> {
    fn new(s: &'a Services, ctx: &'a CallContext, connection: &str) -> Self {
        Runner {
            s,
            ctx,
            connection: connection.to_owned(),
            sqls: Vec::new(),
            audit: AuditFacts {
                connection: Some(connection.to_owned()),
                ..Default::default()
            },
        }
    }

    async fn run(&mut self, sql: &str, what: &str) -> Result<QueryOutput, ToolError> {
        let out = self
            .s
            .query_in(
                &self.ctx.auth,
                self.ctx.session_id.as_deref(),
                &self.connection,
                sql,
                1,
            )
            .await;
        if let Some(sql) = out.audit.sql {
            self.sqls.push(sql);
            self.audit.sql = Some(self.sqls.join(";\n"));
        }
        self.audit.dialect = out.audit.dialect.or(self.audit.dialect);
        if out.audit.rule.is_some() {
            self.audit.rule = out.audit.rule;
        }
        match out.result {
            Ok(r) => {
                self.audit.rows = Some(self.audit.rows.unwrap_or(0) + r.row_count);
                Ok(r)
            }
            Err(mut e) => {
                e.message = format!("{what}: {}", e.message);
                Err(e)
            }
        }
    }

    fn finish<T>(self, result: Result<T, ToolError>) -> Outcome<T> {
        Outcome {
            result,
            audit: self.audit,
        }
    }
}

/// The number in column `name` of the first row (counts arrive as numbers, or as strings beyond 2^53).
fn count(out: &QueryOutput, name: &str) -> Result<u64, ToolError> {
    let index = out
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ToolError::failed(format!("the result has no column {name}")))?;
    let value = out
        .rows
        .first()
        .and_then(|r| r.get(index))
        .ok_or_else(|| ToolError::failed(format!("the result has no value for {name}")))?;
    value
        .as_u64()
        .or_else(|| value.as_i64().and_then(|v| u64::try_from(v).ok()))
        .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
        .or_else(|| value.as_f64().filter(|v| *v >= 0.0).map(|v| v as u64))
        .ok_or_else(|| ToolError::failed(format!("{name} is not a count: {value}")))
}

fn not_built(model: &str) -> String {
    format!("could not read model '{model}' (has it been built? run `dbt build --select {model}`)")
}

/// What every verification tool does first: the connection's quoting and the projects bound to it.
async fn prepare(
    s: &Services,
    ctx: &CallContext,
    connection: &str,
) -> Result<(Quoting, Vec<(String, std::sync::Arc<Loaded>)>), ToolError> {
    let conn = s.connection(&ctx.auth, connection)?;
    let bound = bound(s, &ctx.auth, connection).await?;
    Ok((conn.dialect.quoting(), bound))
}
