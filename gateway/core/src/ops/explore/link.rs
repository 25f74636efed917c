//! `schema_link`: the smallest useful set of tables for a question, ranked on names, comments and values
//! sampled from the text columns (read once per snapshot, within a budget, through the governed path).

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_catalog::{LinkFormat, LinkOptions, TableKind, render};

use super::outline::SchemaText;
use super::sql::samples_sql;
use super::text::{one_line, value_text};
use super::types::is_text_type;
use super::{Ran, Snapshot, as_u64, snapshot, system_audit, window};
use crate::auth::AuthContext;
use crate::service::{AuditFacts, Outcome, Services, ToolError};

fn default_link_format() -> String {
    "ddl".to_owned()
}

fn default_max_tables_link() -> usize {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaLinkArgs {
    /// Name of the connection (see list_database_connections).
    pub connection_name: String,
    /// The question in plain words, e.g. "revenue by customer country last quarter".
    pub question: String,
    /// `ddl` (default), `compact` or `json`.
    #[serde(default = "default_link_format")]
    pub format: String,
    /// Most tables returned, joining tables included (default 20).
    #[serde(default = "default_max_tables_link")]
    pub max_tables: usize,
}

pub async fn schema_link(s: &Services, auth: &AuthContext, a: SchemaLinkArgs) -> Outcome<SchemaText> {
    let mut audit = system_audit(&a.connection_name);
    let format = match a.format.as_str() {
        "ddl" => LinkFormat::Ddl,
        "compact" => LinkFormat::Compact,
        "json" => LinkFormat::Json,
        other => {
            return Outcome::fail(
                ToolError::invalid(format!(
                    "unknown format '{other}'; use `ddl`, `compact` or `json`"
                )),
                audit,
            );
        }
    };
    if a.question.trim().is_empty() {
        return Outcome::fail(ToolError::invalid("question must not be empty"), audit);
    }
    if a.max_tables == 0 {
        return Outcome::fail(ToolError::invalid("max_tables must be at least 1"), audit);
    }
    let snap = match snapshot(s, auth, &a.connection_name, false, &mut audit).await {
        Ok(snap) => snap,
        Err(e) => return Outcome::fail(e, audit),
    };
    // Values sampled from the text columns let a question match data words (`paypal`, `Canada`) that no
    // table or column name contains; they are read once per snapshot, within a budget.
    let (sampled, audit) = link_samples(s, auth, &snap, audit).await;
    let catalog = &sampled.catalog;
    let link = catalog.schema_link(
        &a.question,
        &LinkOptions {
            max_tables: a.max_tables,
            ..LinkOptions::default()
        },
    );
    let mut out = render::schema_link(catalog, &link, format, snap.quoting(), &window(None));
    let mut notes: Vec<String> = link.findings.iter().map(|f| f.message.clone()).collect();
    notes.push(format!(
        "sampled values: {} of {} text columns have few enough distinct values to match on",
        sampled.columns, sampled.candidates
    ));
    notes.extend(sampled.notes.iter().cloned());
    // The agent reads the text: a sampling cut short is said there too (JSON stays parseable, so only in
    // the notes for that format).
    if format != LinkFormat::Json {
        let prefix = if format == LinkFormat::Ddl { "-- " } else { "" };
        for note in &sampled.notes {
            let _ = write!(out.text, "\n{prefix}{note}");
        }
    }
    Outcome {
        result: Ok(SchemaText::new(&snap.conn.name, out, notes)),
        audit,
    }
}

/// Most text columns sampled per table: the ones most likely to hold category words come first.
const SAMPLE_COLUMNS_PER_TABLE: usize = 6;

/// Columns read by one sampling statement (a `UNION ALL` of one branch per column).
pub(super) const SAMPLE_COLUMNS_PER_STATEMENT: usize = 40;

/// Statements one sampling may run: with the above, at most 320 columns of the warehouse.
const SAMPLE_STATEMENTS: usize = 8;

/// No new statement starts after this much time; what is left is skipped and the agent told so.
const SAMPLE_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// Each column is read from at most this many rows, so a statement costs the same on any table size.
pub(super) const SAMPLE_ROWS_SCANNED: u64 = 10_000;

/// A column with more distinct values than this (in the rows read) is not a category: names, emails and
/// free text are left out, they would only add noise to the ranking.
pub(super) const SAMPLE_DISTINCT: u64 = 50;

/// Longer values are free text, not categories; they are not kept.
const SAMPLE_VALUE_CHARS: usize = 40;

/// Words in column names that usually hold categories (the words a question uses to filter).
const CATEGORY_HINTS: &[&str] = &[
    "status",
    "state",
    "type",
    "kind",
    "category",
    "class",
    "segment",
    "tier",
    "level",
    "plan",
    "channel",
    "method",
    "source",
    "medium",
    "carrier",
    "device",
    "browser",
    "platform",
    "country",
    "region",
    "city",
    "currency",
    "language",
    "department",
    "role",
    "gender",
    "brand",
    "warehouse",
    "reason",
    "stage",
];

/// Words in column names whose values must not be read at all (credentials), or are unique per row
/// (contacts, free text) and so never categories: reading them would spend the budget for nothing.
const SKIP_HINTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "hash",
    "salt",
    "key",
    "ssn",
    "iban",
    "card",
    "email",
    "phone",
    "url",
    "uri",
    "address",
    "description",
    "body",
    "comment",
    "note",
    "notes",
    "message",
    "text",
    "json",
];

/// The text columns worth sampling, as `(table, column)` positions in the catalog: stored tables only,
/// no keys or join columns (identifiers, not words), no credential-like or free-text names, at most
/// [`SAMPLE_COLUMNS_PER_TABLE`] per table. Columns named like categories come first across the whole
/// warehouse, so that a budget cut on a large schema keeps the most useful ones.
fn sample_candidates(catalog: &sluice_catalog::Catalog) -> Vec<(usize, usize)> {
    let mut join_columns = std::collections::HashSet::new();
    for edge in catalog.edges() {
        for c in &edge.from_columns {
            join_columns.insert((&edge.from, c.as_str()));
        }
        for c in &edge.to_columns {
            join_columns.insert((&edge.to, c.as_str()));
        }
    }
    let (mut hinted, mut others) = (Vec::new(), Vec::new());
    for (t, table) in catalog.tables().iter().enumerate() {
        if table.kind == TableKind::View {
            continue;
        }
        let mut taken = Vec::new();
        for (c, column) in table.columns.iter().enumerate() {
            let words = sluice_catalog::names::words(&column.name);
            if !is_text_type(&column.data_type)
                || table.primary_key.contains(&column.name)
                || join_columns.contains(&(&table.id, column.name.as_str()))
                || words.last().is_some_and(|w| w == "id")
                || words.iter().any(|w| SKIP_HINTS.contains(&w.as_str()))
            {
                continue;
            }
            let hint = words.iter().any(|w| CATEGORY_HINTS.contains(&w.as_str()));
            taken.push((!hint, c));
        }
        // Category-like names first within the table too, then by position.
        taken.sort();
        for (other, c) in taken.into_iter().take(SAMPLE_COLUMNS_PER_TABLE) {
            if other {
                others.push((t, c));
            } else {
                hinted.push((t, c));
            }
        }
    }
    hinted.extend(others);
    hinted
}

/// Keeps the short values of each column that has few distinct ones; `rows` are `(branch, value)`.
fn sampled_values(rows: &[Vec<serde_json::Value>], branches: usize) -> Vec<Option<Vec<String>>> {
    let mut values: Vec<Vec<String>> = vec![Vec::new(); branches];
    let mut counts = vec![0u64; branches];
    for row in rows {
        let Some(k) = as_u64(row.first()).and_then(|k| usize::try_from(k).ok()) else {
            continue;
        };
        let (Some(count), Some(list)) = (counts.get_mut(k), values.get_mut(k)) else {
            continue;
        };
        *count += 1;
        if let Some(v) = row.get(1).and_then(value_text) {
            let v = v.trim();
            if !v.is_empty() && v.chars().count() <= SAMPLE_VALUE_CHARS {
                list.push(v.to_owned());
            }
        }
    }
    values
        .into_iter()
        .zip(counts)
        .map(|(list, count)| (count <= SAMPLE_DISTINCT).then_some(list))
        .collect()
}

/// The catalog with sampled values for `schema_link`, read on the snapshot's first `schema_link` call
/// (statements recorded in `ran`) and cached with the snapshot after that.
async fn link_samples(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    audit: AuditFacts,
) -> (Arc<crate::schema_cache::Sampled>, AuditFacts) {
    let mut ran = Ran::new(audit);
    let sampled = snap
        .lookup
        .current
        .samples
        .get_or_init(|| read_samples(s, auth, snap, &mut ran))
        .await
        .clone();
    (sampled, ran.finish())
}

async fn read_samples(
    s: &Services,
    auth: &AuthContext,
    snap: &Snapshot,
    ran: &mut Ran,
) -> Arc<crate::schema_cache::Sampled> {
    let catalog = snap.catalog();
    let candidates = sample_candidates(catalog);
    let started = std::time::Instant::now();
    let mut found: Vec<(sluice_catalog::TableId, String, Vec<String>)> = Vec::new();
    let mut notes = Vec::new();
    let (mut many, mut failed, mut statements, mut cut) = (0, 0, 0, false);
    let mut refusals = Vec::new();
    let batches: Vec<&[(usize, usize)]> = candidates.chunks(SAMPLE_COLUMNS_PER_STATEMENT).collect();
    for (i, batch) in batches.iter().enumerate() {
        if statements >= SAMPLE_STATEMENTS || started.elapsed() >= SAMPLE_TIME_BUDGET {
            let left: usize = batches[i..].iter().map(|b| b.len()).sum();
            notes.push(format!(
                "sampled values: {left} of {} text columns not sampled ({}); names and comments still match",
                candidates.len(),
                if statements >= SAMPLE_STATEMENTS {
                    format!("at most {SAMPLE_STATEMENTS} sampling statements per snapshot")
                } else {
                    format!("sampling stops after {} s", SAMPLE_TIME_BUDGET.as_secs())
                }
            ));
            break;
        }
        statements += 1;
        let sql = samples_sql(snap.conn.dialect, catalog, batch);
        let cap = (SAMPLE_DISTINCT + 1) * batch.len() as u64;
        match ran.query(s, auth, snap, &sql, cap).await {
            Ok(result) => {
                // A connection row cap below the statement's rows cuts the last columns short; what
                // arrived is still real data, but the agent is told.
                if result.truncated {
                    cut = true;
                }
                for (&(t, c), values) in batch.iter().zip(sampled_values(&result.rows, batch.len())) {
                    match values {
                        Some(values) if !values.is_empty() => {
                            let table = &catalog.tables()[t];
                            found.push((table.id.clone(), table.columns[c].name.clone(), values));
                        }
                        Some(_) => {}
                        None => many += 1,
                    }
                }
            }
            Err(e) => {
                failed += batch.len();
                if refusals.len() < 3 {
                    refusals.push(one_line(&e.message, 160));
                }
            }
        }
    }
    if cut {
        notes.push("sampled values: some columns were cut short by the connection's row limit".to_owned());
    }
    if failed > 0 {
        notes.push(format!(
            "sampled values: {failed} text columns could not be read: {}",
            refusals.join("; ")
        ));
    }
    let columns = found.len();
    tracing::debug!(
        connection = %snap.conn.name,
        columns,
        candidates = candidates.len(),
        high_cardinality = many,
        statements,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sampled text columns for schema_link"
    );
    // Rebuilding the search index is CPU work proportional to the schema: off the async threads.
    let current = Arc::clone(&snap.lookup.current);
    let sampled = match tokio::task::spawn_blocking(move || current.catalog.with_samples(found)).await {
        Ok(sampled) => sampled,
        Err(e) => {
            notes.push(format!("sampled values: not used ({e})"));
            catalog.clone()
        }
    };
    Arc::new(crate::schema_cache::Sampled {
        catalog: sampled,
        columns,
        candidates: candidates.len(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn sampling_picks_category_like_text_columns_and_never_credentials() {
        let snapshot = sluice_catalog::outline::parse(
            "table s.customers\n  id varchar pk\n  name text\n  email text\n  password_hash text\n  \
             segment varchar\n  region_id int -> s.regions.id\n  notes text\n  signup_source varchar\n\
             table s.regions\n  id int pk\n  country_code varchar(2)\n  tags varchar[]\n\
             table s.orders\n  id int pk\n  customer_id varchar -> s.customers.id\n  status enum('a','b')\n\
             view s.v\n  status text\n",
        )
        .unwrap();
        let (catalog, _) = sluice_catalog::Catalog::build(snapshot);
        let names: Vec<String> = sample_candidates(&catalog)
            .into_iter()
            .map(|(t, c)| {
                let table = &catalog.tables()[t];
                format!("{}.{}", table.id.name, table.columns[c].name)
            })
            .collect();
        // Category-like names first (segment, source, status, country), then other text; keys, join columns,
        // credentials, contacts, free text, arrays and views never.
        assert_eq!(
            names,
            [
                "customers.segment",
                "customers.signup_source",
                "orders.status",
                "regions.country_code",
                "customers.name",
            ]
        );
    }

    #[test]
    fn sampled_values_keep_short_values_of_low_cardinality_columns() {
        let row = |k: u64, v: &str| vec![serde_json::json!(k), serde_json::json!(v)];
        let mut rows = vec![
            row(0, "paid"),
            row(0, " shipped "),
            row(0, &"x".repeat(41)),
            row(0, ""),
        ];
        rows.extend((0..=SAMPLE_DISTINCT).map(|i| row(2, &format!("name {i}"))));
        rows.push(vec![serde_json::json!(9), serde_json::json!("out of range")]);
        assert_eq!(
            sampled_values(&rows, 3),
            [
                Some(vec!["paid".to_owned(), "shipped".to_owned()]),
                Some(vec![]),
                None
            ]
        );
    }
}
