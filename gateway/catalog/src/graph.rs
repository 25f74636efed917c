//! The join graph: declared foreign keys plus joins inferred from naming conventions, each edge with a
//! confidence in (0, 1] and a reason a person can check.
//!
//! Inference rules (README.md has the full table):
//! - `IdSuffix`: `customer_id`, `customerId`, `CustomerID`, `customerid` name a table (`customers`,
//!   `customer`, `dim_customer`) whose key is `id` or the same name; a role prefix (`billing_address_id`)
//!   is tried when the whole prefix names no table.
//! - `SharedKey`: a `_key`/`_code`/`_id`/`_uuid` column that is a declared key (PK or unique) in exactly
//!   one table joins the tables where it is not.
//! - `SelfReference`: `parent_id`, `parent_category_id`, and person roles (`manager_id`, `reports_to`) in a
//!   people table point at the table's own key.
//!
//! The target side of an inferred join is always a key (declared, or by convention `id` in a table that
//! declares none), so two non-key columns are never joined; the types must be join-compatible.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::finding::Finding;
use crate::names::{TABLE_PREFIXES, join_compatibility, stem, stem_key, words};
use crate::snapshot::{DeclaredKey, Table, TableId, TableKind};

/// Whether a side of a join is a key of its table, which decides whether the join can fan out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStrength {
    /// The columns are the primary key.
    Primary,
    /// The columns carry a unique constraint or unique index.
    Unique,
    /// The table declares no primary key and the column is named like one (`id`, `customer_id` in `customers`).
    Conventional,
    /// Not a key: many rows may share a value.
    None,
}

impl KeyStrength {
    /// Path scoring multiplies each join by this factor for its referenced side: joining onto a declared key
    /// cannot multiply rows, joining onto a non-key may.
    pub fn factor(self) -> f32 {
        match self {
            KeyStrength::Primary => 1.0,
            KeyStrength::Unique => 0.95,
            KeyStrength::Conventional => 0.85,
            KeyStrength::None => 0.7,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyStrength::Primary => "primary key",
            KeyStrength::Unique => "unique key",
            KeyStrength::Conventional => "key by naming convention (no declared primary key)",
            KeyStrength::None => "non-key column",
        }
    }

    fn from_declared(key: Option<DeclaredKey>) -> KeyStrength {
        match key {
            Some(DeclaredKey::Primary) => KeyStrength::Primary,
            Some(DeclaredKey::Unique) => KeyStrength::Unique,
            None => KeyStrength::None,
        }
    }
}

/// Which naming rule produced an inferred join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InferenceRule {
    IdSuffix,
    SharedKey,
    SelfReference,
}

/// Where a join edge comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EdgeOrigin {
    Declared {
        #[serde(skip_serializing_if = "Option::is_none")]
        constraint: Option<String>,
    },
    Inferred {
        rule: InferenceRule,
    },
}

/// One way to join two tables: `from` holds the referencing columns, `to` the referenced (key) side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinEdge {
    pub from: TableId,
    pub from_columns: Vec<String>,
    pub to: TableId,
    pub to_columns: Vec<String>,
    pub origin: EdgeOrigin,
    /// 1.0 for declared foreign keys; the product of the rule's base and its modifiers otherwise.
    pub confidence: f32,
    pub reason: String,
    pub from_key: KeyStrength,
    pub to_key: KeyStrength,
}

impl JoinEdge {
    pub fn is_declared(&self) -> bool {
        matches!(self.origin, EdgeOrigin::Declared { .. })
    }

    /// The edge's weight in path scoring: confidence times the referenced side's key factor.
    pub fn weight(&self) -> f32 {
        self.confidence * self.to_key.factor()
    }
}

/// The graph over table positions in the (sorted) snapshot; adjacency is undirected because a join can be
/// written from either side.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinGraph {
    pub edges: Vec<JoinEdge>,
    /// `(from, to)` table positions of each edge.
    pub ends: Vec<(u32, u32)>,
    /// For each table, `(edge, neighbour)` pairs in edge order; self-references are left out because no
    /// simple path between two tables can use them.
    pub adjacency: Vec<Vec<(u32, u32)>>,
    /// For each table, every edge touching it (self-references included), in edge order.
    pub incident: Vec<Vec<u32>>,
}

/// Base confidence of an `IdSuffix` join by the strength of the referenced key.
fn id_suffix_base(key: KeyStrength) -> f32 {
    match key {
        KeyStrength::Primary => 0.9,
        KeyStrength::Unique => 0.85,
        KeyStrength::Conventional => 0.7,
        KeyStrength::None => 0.0,
    }
}

const SHARED_KEY_PRIMARY: f32 = 0.8;
const SHARED_KEY_UNIQUE: f32 = 0.75;
const SELF_STRUCTURAL: f32 = 0.7;
const SELF_PARENT_ENTITY: f32 = 0.75;
const SELF_PERSON_ROLE: f32 = 0.65;
/// Modifiers, multiplied in.
const GLUED: f32 = 0.9;
const VIA_TABLE_PREFIX: f32 = 0.95;
const ROLE_PREFIX: f32 = 0.75;
const CROSS_SCHEMA: f32 = 0.8;
const AMBIGUOUS: f32 = 0.85;

/// Column names that point at another row of the same entity.
const STRUCTURAL_ROLES: &[&str] = &[
    "parent",
    "predecessor",
    "successor",
    "previous",
    "prev",
    "next",
    "replaced_by",
    "superseded_by",
    "original",
    "root",
];
/// Column names that point at a person; they are self-references only inside a table of people.
const PERSON_ROLES: &[&str] = &[
    "manager",
    "supervisor",
    "boss",
    "mentor",
    "referrer",
    "referred_by",
    "reports_to",
    "report_to",
    "coach",
    "sponsor",
];
/// Stems of table names that hold people.
const PEOPLE: &[&str] = &[
    "employe", "staff", "person", "user", "member", "worker", "agent", "associat",
];

/// Suffix words that make a column a candidate for the shared-key rule.
const SHARED_SUFFIXES: &[&str] = &["key", "code", "id", "uuid"];

/// What inference needs to know about each table, computed once.
struct TableInfo {
    /// Stem key of the whole name (`order_items` → `order_item`).
    key: String,
    /// Stem key without a warehouse prefix (`dim_customer` → `customer`).
    bare_key: Option<String>,
    /// Last word's stem, for the people-table check.
    last_stem: String,
    column_words: Vec<Vec<String>>,
    column_keys: Vec<KeyStrength>,
    /// Columns that alone are the source of a declared foreign key; inference leaves them alone.
    declared_sources: HashSet<usize>,
}

fn single_key(table: &Table, column: &str) -> Option<DeclaredKey> {
    let one = |cols: &[String]| cols.len() == 1 && cols[0] == column;
    if one(&table.primary_key) {
        Some(DeclaredKey::Primary)
    } else if table.unique_constraints.iter().any(|u| one(&u.columns))
        || table.indexes.iter().any(|i| i.unique && one(&i.columns))
    {
        Some(DeclaredKey::Unique)
    } else {
        None
    }
}

fn table_info(table: &Table) -> TableInfo {
    let name_words = words(&table.id.name);
    let key = stem_key(&name_words);
    let bare_key = match name_words.split_first() {
        Some((first, rest)) if !rest.is_empty() && TABLE_PREFIXES.contains(&first.as_str()) => {
            Some(stem_key(rest))
        }
        _ => None,
    };
    let last_stem = name_words.last().map(|w| stem(w)).unwrap_or_default();
    let column_words: Vec<Vec<String>> = table.columns.iter().map(|c| words(&c.name)).collect();
    let column_keys = table
        .columns
        .iter()
        .zip(&column_words)
        .map(|(c, w)| match single_key(table, &c.name) {
            Some(k) => KeyStrength::from_declared(Some(k)),
            None if table.primary_key.is_empty() && is_own_id(w, &key, bare_key.as_deref()) => {
                KeyStrength::Conventional
            }
            None => KeyStrength::None,
        })
        .collect();
    let declared_sources = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.len() == 1)
        .filter_map(|fk| table.columns.iter().position(|c| c.name == fk.columns[0]))
        .collect();
    TableInfo {
        key,
        bare_key,
        last_stem,
        column_words,
        column_keys,
        declared_sources,
    }
}

/// `id`, or `<table>_id` in its own table: the column a table without a declared key is identified by.
fn is_own_id(column_words: &[String], key: &str, bare_key: Option<&str>) -> bool {
    match column_words.split_last() {
        Some((last, [])) => last == "id",
        Some((last, prefix)) if last == "id" => {
            let k = stem_key(prefix);
            k == key || Some(k.as_str()) == bare_key
        }
        _ => false,
    }
}

/// The words before a trailing `id`/`uuid`, and whether the suffix was glued on (`customerid`).
fn id_prefix(column_words: &[String]) -> Option<(Vec<String>, bool)> {
    match column_words.split_last() {
        Some((last, prefix)) if !prefix.is_empty() && (last == "id" || last == "uuid") => {
            Some((prefix.to_vec(), false))
        }
        Some((only, [])) if only.len() > 4 && only.ends_with("id") && only.is_ascii() => {
            Some((vec![only[..only.len() - 2].to_string()], true))
        }
        _ => None,
    }
}

/// A proposed inferred edge before deduplication.
struct Candidate {
    from: usize,
    from_column: usize,
    to: usize,
    to_column: usize,
    rule: InferenceRule,
    confidence: f32,
    reason: String,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// Builds the join graph over `tables` (sorted by id, as a normalised snapshot holds them).
pub(crate) fn build(tables: &[Table], index: &HashMap<TableId, usize>) -> (JoinGraph, Vec<Finding>) {
    let mut findings = Vec::new();
    let infos: Vec<TableInfo> = tables.iter().map(table_info).collect();

    let mut edges: Vec<(usize, usize, JoinEdge)> = Vec::new();
    declared_edges(tables, index, &mut edges, &mut findings);

    let mut by_name: HashMap<&str, Vec<(usize, bool)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        if tables[t].kind != TableKind::Table {
            continue; // Views have no keys to join onto; they only appear as the referencing side.
        }
        by_name.entry(info.key.as_str()).or_default().push((t, false));
        if let Some(bare) = &info.bare_key {
            by_name.entry(bare.as_str()).or_default().push((t, true));
        }
    }

    let mut candidates = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        for c in 0..table.columns.len() {
            if infos[t].declared_sources.contains(&c) {
                continue;
            }
            id_suffix(tables, &infos, &by_name, t, c, &mut candidates, &mut findings);
        }
    }
    shared_keys(tables, &infos, &mut candidates);

    // Declared edges win over any inference on the same columns; among inferences the most confident wins.
    let mut seen: HashSet<(usize, Vec<String>, usize, Vec<String>)> = HashSet::new();
    for (a, b, e) in &edges {
        seen.insert((*a, e.from_columns.clone(), *b, e.to_columns.clone()));
        seen.insert((*b, e.to_columns.clone(), *a, e.from_columns.clone()));
    }
    candidates.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then((x.from, x.from_column, x.to, x.to_column).cmp(&(y.from, y.from_column, y.to, y.to_column)))
    });
    for cand in candidates {
        let (ft, tt) = (&tables[cand.from], &tables[cand.to]);
        let from_columns = vec![ft.columns[cand.from_column].name.clone()];
        let to_columns = vec![tt.columns[cand.to_column].name.clone()];
        if !seen.insert((cand.from, from_columns.clone(), cand.to, to_columns.clone())) {
            continue;
        }
        seen.insert((cand.to, to_columns.clone(), cand.from, from_columns.clone()));
        edges.push((
            cand.from,
            cand.to,
            JoinEdge {
                from: ft.id.clone(),
                from_columns,
                to: tt.id.clone(),
                to_columns,
                origin: EdgeOrigin::Inferred { rule: cand.rule },
                confidence: round3(cand.confidence),
                reason: cand.reason,
                from_key: infos[cand.from].column_keys[cand.from_column],
                to_key: infos[cand.to].column_keys[cand.to_column],
            },
        ));
    }

    edges.sort_by(|(a1, b1, e1), (a2, b2, e2)| {
        (a1, b1, &e1.from_columns, &e1.to_columns, !e1.is_declared()).cmp(&(
            a2,
            b2,
            &e2.from_columns,
            &e2.to_columns,
            !e2.is_declared(),
        ))
    });
    let mut graph = JoinGraph {
        adjacency: vec![Vec::new(); tables.len()],
        incident: vec![Vec::new(); tables.len()],
        ..JoinGraph::default()
    };
    for (i, (a, b, e)) in edges.into_iter().enumerate() {
        graph.incident[a].push(i as u32);
        if a != b {
            graph.adjacency[a].push((i as u32, b as u32));
            graph.adjacency[b].push((i as u32, a as u32));
            graph.incident[b].push(i as u32);
        }
        graph.ends.push((a as u32, b as u32));
        graph.edges.push(e);
    }
    (graph, findings)
}

fn declared_edges(
    tables: &[Table],
    index: &HashMap<TableId, usize>,
    edges: &mut Vec<(usize, usize, JoinEdge)>,
    findings: &mut Vec<Finding>,
) {
    // Engines that fold case (MySQL on some platforms) may report a reference in another case than the table.
    let mut folded: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (t, table) in tables.iter().enumerate() {
        let key = (table.id.schema.to_lowercase(), table.id.name.to_lowercase());
        folded.entry(key).or_default().push(t);
    }
    for (t, table) in tables.iter().enumerate() {
        for fk in &table.foreign_keys {
            if fk.columns.len() != fk.referenced_columns.len() || fk.columns.is_empty() {
                continue; // Reported by normalisation.
            }
            let target = index.get(&fk.references).copied().or_else(|| {
                let key = (
                    fk.references.schema.to_lowercase(),
                    fk.references.name.to_lowercase(),
                );
                match folded.get(&key).map(Vec::as_slice) {
                    Some([only]) => Some(*only),
                    _ => None,
                }
            });
            let Some(target) = target else {
                findings.push(Finding::warning(
                    "dangling_foreign_key",
                    Some(&table.id),
                    format!(
                        "foreign key ({}) of {} references {}, which is not in the snapshot",
                        fk.columns.join(", "),
                        table.id,
                        fk.references
                    ),
                ));
                continue;
            };
            let to = &tables[target];
            if let Some(missing) = fk.referenced_columns.iter().find(|c| to.column(c).is_none()) {
                findings.push(Finding::warning(
                    "dangling_foreign_key",
                    Some(&table.id),
                    format!(
                        "foreign key ({}) of {} references column {missing}, which {} does not have",
                        fk.columns.join(", "),
                        table.id,
                        to.id
                    ),
                ));
                continue;
            }
            let reason = match &fk.name {
                Some(name) => format!("declared foreign key {name}"),
                None => "declared foreign key".to_string(),
            };
            edges.push((
                t,
                target,
                JoinEdge {
                    from: table.id.clone(),
                    from_columns: fk.columns.clone(),
                    to: to.id.clone(),
                    to_columns: fk.referenced_columns.clone(),
                    origin: EdgeOrigin::Declared {
                        constraint: fk.name.clone(),
                    },
                    confidence: 1.0,
                    reason,
                    from_key: KeyStrength::from_declared(table.key_kind(&fk.columns)),
                    to_key: KeyStrength::from_declared(to.key_kind(&fk.referenced_columns)),
                },
            ));
        }
    }
}

/// The referenced column of `table` for a source column named `source_words` whose prefix names the table:
/// `id`, the same name, or the table's own `<entity>_id`; the strongest key wins.
fn target_column(info: &TableInfo, source_words: &[String]) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, w) in info.column_words.iter().enumerate() {
        let strength = info.column_keys[c];
        if strength == KeyStrength::None {
            continue;
        }
        let named = w.len() == 1 && w[0] == "id"
            || w.as_slice() == source_words
            || is_own_id(w, &info.key, info.bare_key.as_deref());
        if named && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

/// The table's own single-column key, strongest first: where a self-reference points.
fn own_key(info: &TableInfo) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, &strength) in info.column_keys.iter().enumerate() {
        if strength != KeyStrength::None && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

fn id_suffix(
    tables: &[Table],
    infos: &[TableInfo],
    by_name: &HashMap<&str, Vec<(usize, bool)>>,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) {
    let table = &tables[t];
    let info = &infos[t];
    let source_words = &info.column_words[c];
    let column = &table.columns[c];
    let Some((prefix, glued)) = id_prefix(source_words) else {
        self_reference(tables, infos, t, c, out);
        return;
    };
    let mut role: Option<String> = None;
    let mut found: Vec<(usize, bool)> = by_name
        .get(stem_key(&prefix).as_str())
        .cloned()
        .unwrap_or_default();
    found.retain(|(x, _)| *x != t);
    if found.is_empty() {
        for i in 1..prefix.len() {
            if let Some(hits) = by_name.get(stem_key(&prefix[i..]).as_str()) {
                found = hits.clone();
                role = Some(prefix[..i].join("_"));
                break;
            }
        }
        if role.is_some() && found.iter().any(|(x, _)| *x == t) {
            // `parent_category_id` in `categories`: the role names a row of the table itself.
            self_reference(tables, infos, t, c, out);
            return;
        }
    }
    if found.is_empty() {
        self_reference(tables, infos, t, c, out);
        return;
    }
    found.dedup_by_key(|(x, _)| *x);
    let same_schema: Vec<(usize, bool)> = found
        .iter()
        .copied()
        .filter(|(x, _)| tables[*x].id.schema == table.id.schema)
        .collect();
    let cross = same_schema.is_empty();
    let targets = if cross { found } else { same_schema };
    let ambiguous = targets.len() > 1;
    if ambiguous {
        findings.push(Finding::info(
            "ambiguous_inference",
            Some(&table.id),
            format!(
                "{}.{} could reference any of {}; each inferred join is scored lower",
                table.id,
                column.name,
                targets
                    .iter()
                    .map(|(x, _)| tables[*x].id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for (x, via_prefix) in targets {
        let Some((tc, strength)) = target_column(&infos[x], source_words) else {
            continue;
        };
        let target = &tables[x];
        let target_col = &target.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let mut confidence = id_suffix_base(strength) * types;
        let mut reason = format!(
            "{} names table {}; {}.{} is its {}",
            column.name,
            target.id.name,
            target.id.name,
            target_col.name,
            strength.describe()
        );
        if glued {
            confidence *= GLUED;
            reason.push_str("; id suffix glued to the name");
        }
        if via_prefix {
            confidence *= VIA_TABLE_PREFIX;
            reason.push_str("; matched without the table's prefix");
        }
        if let Some(role) = &role {
            confidence *= ROLE_PREFIX;
            reason.push_str(&format!("; `{role}` read as a role prefix"));
        }
        if cross {
            confidence *= CROSS_SCHEMA;
            reason.push_str(&format!("; in another schema ({})", target.id.schema));
        }
        if ambiguous {
            confidence *= AMBIGUOUS;
            reason.push_str("; several tables match");
        }
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        out.push(Candidate {
            from: t,
            from_column: c,
            to: x,
            to_column: tc,
            rule: InferenceRule::IdSuffix,
            confidence,
            reason,
        });
    }
}

fn push_types_note(reason: &mut String, factor: f32, a: &str, b: &str) {
    if factor < 1.0 {
        let shown = |s: &str| {
            if s.is_empty() {
                "untyped".to_string()
            } else {
                s.to_string()
            }
        };
        reason.push_str(&format!(
            "; types {} and {} only loosely compatible",
            shown(a),
            shown(b)
        ));
    }
}

fn self_reference(tables: &[Table], infos: &[TableInfo], t: usize, c: usize, out: &mut Vec<Candidate>) {
    let table = &tables[t];
    let info = &infos[t];
    let w = &info.column_words[c];
    let role_words = match w.split_last() {
        Some((last, prefix)) if !prefix.is_empty() && (last == "id" || last == "uuid") => prefix,
        _ => w.as_slice(),
    };
    let role = role_words.join("_");
    let parent_entity = role_words.len() >= 2 && STRUCTURAL_ROLES.contains(&role_words[0].as_str()) && {
        let k = stem_key(&role_words[1..]);
        k == info.key || Some(k.as_str()) == info.bare_key.as_deref()
    };
    let (base, why) = if parent_entity {
        (
            SELF_PARENT_ENTITY,
            format!(
                "{} names a {} row of its own table",
                table.columns[c].name, role_words[0]
            ),
        )
    } else if STRUCTURAL_ROLES.contains(&role.as_str()) && role_words.len() < w.len() {
        (
            SELF_STRUCTURAL,
            format!("{} names a {role} row of its own table", table.columns[c].name),
        )
    } else if PERSON_ROLES.contains(&role.as_str()) && PEOPLE.contains(&info.last_stem.as_str()) {
        (
            SELF_PERSON_ROLE,
            format!(
                "{} names a person and {} holds people",
                table.columns[c].name, table.id.name
            ),
        )
    } else {
        return;
    };
    let Some((tc, strength)) = own_key(info) else {
        return;
    };
    if tc == c || table.kind != TableKind::Table {
        return;
    }
    let (column, target_col) = (&table.columns[c], &table.columns[tc]);
    let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
        return;
    };
    let mut reason = format!("{why}; {} is its {}", target_col.name, strength.describe());
    push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
    out.push(Candidate {
        from: t,
        from_column: c,
        to: t,
        to_column: tc,
        rule: InferenceRule::SelfReference,
        confidence: base * types * strength.factor(),
        reason,
    });
}

fn shared_keys(tables: &[Table], infos: &[TableInfo], out: &mut Vec<Candidate>) {
    let mut groups: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        for (c, w) in info.column_words.iter().enumerate() {
            if w.len() >= 2 && w.last().is_some_and(|l| SHARED_SUFFIXES.contains(&l.as_str())) {
                groups.entry(w.join("_")).or_default().push((t, c));
            }
        }
    }
    let mut names: Vec<&String> = groups.keys().collect();
    names.sort();
    for name in names {
        let members = &groups[name];
        let holders: Vec<(usize, usize)> = members
            .iter()
            .copied()
            .filter(|&(t, c)| {
                tables[t].kind == TableKind::Table
                    && matches!(
                        infos[t].column_keys[c],
                        KeyStrength::Primary | KeyStrength::Unique
                    )
            })
            .collect();
        if holders.is_empty() {
            continue;
        }
        for &(t, c) in members {
            if matches!(
                infos[t].column_keys[c],
                KeyStrength::Primary | KeyStrength::Unique
            ) || infos[t].declared_sources.contains(&c)
            {
                continue; // A key on both sides is not "a key on exactly one side"; declared FKs speak for themselves.
            }
            let table = &tables[t];
            let others: Vec<(usize, usize)> = holders.iter().copied().filter(|(h, _)| *h != t).collect();
            let same: Vec<(usize, usize)> = others
                .iter()
                .copied()
                .filter(|(h, _)| tables[*h].id.schema == table.id.schema)
                .collect();
            let cross = same.is_empty();
            let targets = if cross { others } else { same };
            let ambiguous = targets.len() > 1;
            for (h, hc) in targets {
                let (column, holder) = (&table.columns[c], &tables[h]);
                let target_col = &holder.columns[hc];
                let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
                    continue;
                };
                let strength = infos[h].column_keys[hc];
                let base = if strength == KeyStrength::Primary {
                    SHARED_KEY_PRIMARY
                } else {
                    SHARED_KEY_UNIQUE
                };
                let mut confidence = base * types;
                let mut reason = format!(
                    "{} is the {} of {} and a non-key column here",
                    target_col.name,
                    strength.describe(),
                    holder.id.name
                );
                if cross {
                    confidence *= CROSS_SCHEMA;
                    reason.push_str(&format!("; in another schema ({})", holder.id.schema));
                }
                if ambiguous {
                    confidence *= AMBIGUOUS;
                    reason.push_str("; it is a key in several tables");
                }
                push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
                out.push(Candidate {
                    from: t,
                    from_column: c,
                    to: h,
                    to_column: hc,
                    rule: InferenceRule::SharedKey,
                    confidence,
                    reason,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use crate::catalog::Catalog;
    use crate::graph::EdgeOrigin;
    use crate::outline;

    /// Builds a catalog from an outline and lists its edges as `from(cols) -> to(cols) origin confidence`.
    fn check(schema: &str, expected: &[&str]) {
        let snapshot = outline::parse(schema).expect("outline parses");
        let (catalog, _) = Catalog::build(snapshot);
        let actual: Vec<String> = catalog
            .edges()
            .iter()
            .map(|e| {
                let origin = match &e.origin {
                    EdgeOrigin::Declared { .. } => "declared".to_string(),
                    EdgeOrigin::Inferred { rule } => format!("{rule:?}"),
                };
                format!(
                    "{}({}) -> {}({}) {origin} {}",
                    e.from,
                    e.from_columns.join(","),
                    e.to,
                    e.to_columns.join(","),
                    e.confidence
                )
            })
            .collect();
        assert_eq!(actual, expected, "schema:\n{schema}");
    }

    #[test]
    fn declared_foreign_keys_are_edges_with_full_confidence() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  buyer int -> s.customers.id\n",
            &["s.orders(buyer) -> s.customers(id) declared 1"],
        );
        // Multi-column keys stay one edge.
        check(
            "table s.lines\n  order_id int\n  line_no int\n  pk (order_id, line_no)\n\
             table s.notes\n  id int pk\n  order_id int\n  line_no int\n  fk (order_id, line_no) -> s.lines (order_id, line_no)\n",
            &["s.notes(order_id,line_no) -> s.lines(order_id,line_no) declared 1"],
        );
    }

    #[test]
    fn id_suffix_matches_singular_plural_and_camel_case() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int\n",
            &["s.orders(customer_id) -> s.customers(id) IdSuffix 0.9"],
        );
        check(
            "table s.category\n  category_id int pk\ntable s.products\n  id int pk\n  category_id bigint\n",
            &["s.products(category_id) -> s.category(category_id) IdSuffix 0.9"],
        );
        check(
            "table s.categories\n  id int pk\ntable s.addresses\n  id int pk\ntable s.boxes\n  id int pk\n\
             table s.items\n  id int pk\n  category_id int\n  address_id int\n  box_id int\n",
            &[
                "s.items(address_id) -> s.addresses(id) IdSuffix 0.9",
                "s.items(box_id) -> s.boxes(id) IdSuffix 0.9",
                "s.items(category_id) -> s.categories(id) IdSuffix 0.9",
            ],
        );
        check(
            "table app.OrderItems\n  Id int pk\n  OrderId int\n  ProductID int\ntable app.Orders\n  Id int pk\n\
             table app.Products\n  ProductID int pk\n",
            &[
                "app.OrderItems(OrderId) -> app.Orders(Id) IdSuffix 0.9",
                "app.OrderItems(ProductID) -> app.Products(ProductID) IdSuffix 0.9",
            ],
        );
    }

    #[test]
    fn id_suffix_modifiers_lower_confidence() {
        // Glued suffix, warehouse prefix, role prefix, unique instead of primary key, conventional key.
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customerid int\n",
            &["s.orders(customerid) -> s.customers(id) IdSuffix 0.81"],
        );
        check(
            "table w.dim_customer\n  customer_id int pk\ntable w.fct_sales\n  id int pk\n  customer_id int\n",
            &["w.fct_sales(customer_id) -> w.dim_customer(customer_id) IdSuffix 0.855"],
        );
        check(
            "table s.addresses\n  id int pk\ntable s.orders\n  id int pk\n  billing_address_id int\n",
            &["s.orders(billing_address_id) -> s.addresses(id) IdSuffix 0.675"],
        );
        check(
            "table s.users\n  id int\n  email text unique\ntable s.logins\n  user_id int\n",
            &["s.logins(user_id) -> s.users(id) IdSuffix 0.7"],
        );
    }

    #[test]
    fn same_table_names_in_two_schemas_never_collide() {
        let two_schemas = "table shop.customers\n  id int pk\ntable shop.orders\n  id int pk\n  customer_id int\n\
                           table archive.customers\n  id int pk\ntable archive.orders\n  id int pk\n  customer_id int\n";
        check(
            two_schemas,
            &[
                "archive.orders(customer_id) -> archive.customers(id) IdSuffix 0.9",
                "shop.orders(customer_id) -> shop.customers(id) IdSuffix 0.9",
            ],
        );
        // Across schemas only when the own schema has no candidate, and scored lower.
        check(
            "table crm.customers\n  id int pk\ntable sales.orders\n  id int pk\n  customer_id int\n",
            &["sales.orders(customer_id) -> crm.customers(id) IdSuffix 0.72"],
        );
        check(
            "table crm.customers\n  id int pk\ntable old.customers\n  id int pk\ntable sales.orders\n  id int pk\n  customer_id int\n",
            &[
                "sales.orders(customer_id) -> crm.customers(id) IdSuffix 0.612",
                "sales.orders(customer_id) -> old.customers(id) IdSuffix 0.612",
            ],
        );
    }

    #[test]
    fn types_must_be_compatible() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_id varchar(10)\n",
            &[],
        );
        check(
            "table s.customers\n  id uuid pk\ntable s.orders\n  id int pk\n  customer_id text\n",
            &["s.orders(customer_id) -> s.customers(id) IdSuffix 0.72"],
        );
    }

    #[test]
    fn shared_key_columns_join_only_when_a_key_on_exactly_one_side() {
        check(
            "table w.dim_store\n  store_code text pk\ntable w.sales\n  id int pk\n  store_code text\n",
            &["w.sales(store_code) -> w.dim_store(store_code) SharedKey 0.8"],
        );
        // Key on both sides: no inference. Key on neither side: no inference.
        check(
            "table w.a\n  region_key int pk\ntable w.b\n  region_key int pk\n",
            &[],
        );
        check(
            "table w.a\n  id int pk\n  region_key int\ntable w.b\n  id int pk\n  region_key int\n",
            &[],
        );
        // A unique key counts; two key holders make each join ambiguous.
        check(
            "table w.stores\n  id int pk\n  store_key int unique\ntable w.shops\n  id int pk\n  store_key int unique\n\
             table w.sales\n  id int pk\n  store_key int\n",
            &[
                "w.sales(store_key) -> w.shops(store_key) SharedKey 0.638",
                "w.sales(store_key) -> w.stores(store_key) SharedKey 0.638",
            ],
        );
    }

    #[test]
    fn self_references() {
        check(
            "table hr.employees\n  employee_id int pk\n  manager_id int\n  reports_to int\n",
            &[
                "hr.employees(manager_id) -> hr.employees(employee_id) SelfReference 0.65",
                "hr.employees(reports_to) -> hr.employees(employee_id) SelfReference 0.65",
            ],
        );
        check(
            "table s.categories\n  id int pk\n  parent_category_id int\n",
            &["s.categories(parent_category_id) -> s.categories(id) SelfReference 0.75"],
        );
        check(
            "table s.nodes\n  id int pk\n  parent_id int\n",
            &["s.nodes(parent_id) -> s.nodes(id) SelfReference 0.7"],
        );
        // A manager in a non-people table is a person elsewhere, not a department.
        check("table hr.departments\n  id int pk\n  manager_id int\n", &[]);
    }

    #[test]
    fn never_joins_two_non_keys_or_views_as_targets() {
        // `customers` declares no key and its id is not the conventional one.
        check(
            "table s.customers\n  code int\n  name text\ntable s.orders\n  customer_id int\n",
            &[],
        );
        check(
            "view s.customers\n  id int\ntable s.orders\n  id int pk\n  customer_id int\n",
            &[],
        );
        // Views may reference tables.
        check(
            "table s.customers\n  id int pk\nview s.recent_orders\n  customer_id int\n",
            &["s.recent_orders(customer_id) -> s.customers(id) IdSuffix 0.9"],
        );
    }

    #[test]
    fn declared_keys_suppress_inference_on_the_same_columns() {
        check(
            "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int -> s.customers.id\n",
            &["s.orders(customer_id) -> s.customers(id) declared 1"],
        );
        // A declared reference elsewhere wins over what the name suggests.
        check(
            "table s.customers\n  id int pk\ntable s.clients\n  id int pk\ntable s.orders\n  id int pk\n  customer_id int -> s.clients.id\n",
            &["s.orders(customer_id) -> s.clients(id) declared 1"],
        );
    }

    #[test]
    fn dangling_references_are_findings_not_edges() {
        let snapshot = outline::parse("table s.orders\n  id int pk\n  customer_id int -> s.nowhere.id\n")
            .expect("parses");
        let (catalog, findings) = Catalog::build(snapshot);
        assert_eq!(catalog.edges().len(), 0);
        assert_eq!(
            findings.iter().map(|f| f.code).collect::<Vec<_>>(),
            vec!["dangling_foreign_key"]
        );
    }
}
