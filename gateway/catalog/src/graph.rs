//! The join graph: declared foreign keys plus joins inferred from naming conventions, each edge with a
//! confidence in (0, 1] and a reason a person can check.
//!
//! Inference rules (README.md has the full table):
//! - `IdSuffix`: `customer_id`, `customerId`, `CustomerID`, `customerid` name a table (`customers`,
//!   `customer`, `dim_customer`) whose key is `id` or the same name; a role prefix (`billing_address_id`)
//!   is tried when the whole prefix names no table.
//! - `KeySuffix`: the same for `_key`, `_sk`, `_fk`, `_no`, `_num` and `_code`, onto a key with the same
//!   kind of suffix (`customer_key` → `dim_customer.customer_key`, never onto an `id`).
//! - `Abbreviation`: a stem that abbreviates exactly one table's name (`cust_id` → `customers`, `emp_no` →
//!   `employees`).
//! - `ColumnPrefix`: TPC-H/TPC-DS style, where every column carries the table's prefix (`o_custkey`,
//!   `ss_customer_sk`): the prefix is dropped and the rest read as above (`custkey` → `customer.c_custkey`).
//! - `CompositeKey`: columns that match a two-or-more-column key column for column (`lineitem (l_partkey,
//!   l_suppkey)` → `partsupp (ps_partkey, ps_suppkey)`) make one edge.
//! - `SharedKey`: a key-suffixed column that is a declared key (PK or unique) in exactly one table joins
//!   the tables where it is not.
//! - `SelfReference`: `parent_id`, `parent_category_id`, and person roles (`manager_id`, `reports_to`) in a
//!   people table point at the table's own key.
//! - `RoleName`: a column named by a role, not an entity: a person role elsewhere (`SupportRepId`) points at
//!   the schema's one table of people, `<verb> via` (`ShipVia`) at the table named for the doer (`Shippers`).
//! - `NaturalKey`: a natural key without a key suffix (`sku`, `isbn`), the key of exactly one table, joins
//!   the tables where it is not a key.
//!
//! Views are relations like tables: they are targets through the same conventions (a view declares no
//! keys, so its key is the conventional one), but where a table fits the same reference the table is
//! preferred. The target side of an inferred join is always a key (declared, or by convention in a
//! relation that declares no primary key), so two non-key columns are never joined; the types must be
//! join-compatible.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::finding::Finding;
use crate::names::{
    TABLE_PREFIXES, TABLE_SUFFIXES, abbreviates, agent_nouns, initialism, initialism_key, join_compatibility,
    stem, stem_key, words,
};
use crate::snapshot::{DeclaredKey, Table, TableId, TableKind};

/// Whether a side of a join is a key of its table, which decides whether the join can fan out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStrength {
    /// The columns are the primary key.
    Primary,
    /// The columns carry a unique constraint or unique index.
    Unique,
    /// The relation declares no primary key and the columns are named like one (`id`, `customer_id` in
    /// `customers`, `c_custkey` in `customer`, `(ps_partkey, ps_suppkey)` in `partsupp`).
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
    KeySuffix,
    Abbreviation,
    ColumnPrefix,
    CompositeKey,
    SharedKey,
    SelfReference,
    RoleName,
    NaturalKey,
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

/// Base confidences by the strength of the referenced key: primary, unique, conventional.
type Bases = [f32; 3];

fn base(bases: Bases, key: KeyStrength) -> f32 {
    match key {
        KeyStrength::Primary => bases[0],
        KeyStrength::Unique => bases[1],
        KeyStrength::Conventional => bases[2],
        KeyStrength::None => 0.0,
    }
}

/// `_id`/`_uuid` naming a table: the strongest convention.
const ID_SUFFIX: Bases = [0.9, 0.85, 0.7];
/// `_key`, `_sk`, `_fk`, `_no`, `_num`, `_code` naming a table: a shade weaker, because `_code` and `_no`
/// are also used for attributes (`zip_code`, `phone_no`).
const KEY_SUFFIX: Bases = [0.85, 0.8, 0.65];
/// A stem that abbreviates a table's name (`cust_id`): weaker again, as abbreviations collide more often.
const ABBREVIATION: Bases = [0.8, 0.75, 0.6];
/// Table-prefixed columns (`o_custkey` → `c_custkey`): the stems agree once both prefixes are dropped and
/// the target's stem names its own table, two signals where the suffix rules have one.
const COLUMN_PREFIX: Bases = [0.85, 0.8, 0.7];
/// Every column of a multi-column key matched by name.
const COMPOSITE_KEY: Bases = [0.85, 0.8, 0.7];
const SHARED_KEY_PRIMARY: f32 = 0.8;
const SHARED_KEY_UNIQUE: f32 = 0.75;
const SELF_STRUCTURAL: f32 = 0.7;
const SELF_PARENT_ENTITY: f32 = 0.75;
const SELF_PERSON_ROLE: f32 = 0.65;
/// A role that names its target only through what it does (`ShipVia`) or who holds it (`SupportRepId`).
const ROLE_NAME: Bases = [0.75, 0.7, 0.6];
/// A natural key (`sku`) that is the key of one table: the value is an identifier by definition.
const NATURAL_KEY: Bases = [0.8, 0.75, 0.6];
/// Modifiers, multiplied in.
const GLUED: f32 = 0.9;
const VIA_TABLE_PREFIX: f32 = 0.95;
const ROLE_PREFIX: f32 = 0.75;
const CROSS_SCHEMA: f32 = 0.8;
const AMBIGUOUS: f32 = 0.85;
/// A `ColumnPrefix` stem that abbreviates the table's name (`custkey` → `customer`).
const ABBREVIATED: f32 = 0.9;
/// A view that fits a reference a table fits too: the table is preferred, the view kept as an option.
const VIEW_BESIDE_TABLE: f32 = 0.9;
/// A role-named key of a fact table whose sibling names the fact's own event (`ws_ship_date_sk` beside
/// `ws_sold_date_sk` in `web_sales`): still a join, ranked below the event's.
const OTHER_THAN_EVENT: f32 = 0.95;

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
/// Role words for a person who is not a row of the referencing table (`SupportRepId` in `Customer`); they
/// point at the schema's table of people. `manager` is not one: in `departments` or `item` a manager may be
/// a name or a person in another system, and `PERSON_ROLES` covers it inside a people table.
const PERSON_ROLES_ELSEWHERE: &[&str] = &["rep", "representative", "salesperson", "salesrep"];
/// Natural keys that are identifiers by definition, compared with a column's words joined by `_`. Kept short
/// on purpose: `email`, `code` or `name` are unique in some tables and attributes in others.
const NATURAL_KEYS: &[&str] = &[
    "sku", "isbn", "issn", "ean", "upc", "gtin", "asin", "isin", "iban", "vin", "iso_code",
];
/// Fact tables by their last word (compared as stems), with the role words that name their own event: `sold` in
/// `web_sales`, `order` in `orders`.
const EVENT_ROLES: &[(&str, &[&str])] = &[
    ("sale", &["sold", "sale"]),
    ("order", &["order", "ordered"]),
    ("return", &["return", "returned"]),
    ("shipment", &["ship", "shipped"]),
    ("purchase", &["purchase", "purchased"]),
    ("payment", &["paid", "payment"]),
];

/// The position in `NATURAL_KEYS` of a column's words (`sku`, `iso_code`), if it is one.
fn natural_key(words: &[String]) -> Option<usize> {
    match words {
        [w] => NATURAL_KEYS.iter().position(|k| k == w),
        [a, b] => NATURAL_KEYS
            .iter()
            .position(|k| k.split_once('_') == Some((a.as_str(), b.as_str()))),
        _ => None,
    }
}

/// What a key suffix says about a column; references join only onto keys whose suffix agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SuffixClass {
    Id,
    Uuid,
    /// `_key` and `_sk` (surrogate key).
    Key,
    /// `_no` and `_num`.
    Number,
    Code,
    /// `_fk`: only ever the referencing side.
    Foreign,
}

impl SuffixClass {
    fn of(word: &str) -> Option<SuffixClass> {
        match word {
            "id" => Some(SuffixClass::Id),
            "uuid" => Some(SuffixClass::Uuid),
            "key" | "sk" => Some(SuffixClass::Key),
            "no" | "num" => Some(SuffixClass::Number),
            "code" => Some(SuffixClass::Code),
            "fk" => Some(SuffixClass::Foreign),
            _ => None,
        }
    }

    /// Whether a reference with this suffix may point at a key with suffix `target`.
    fn reaches(self, target: SuffixClass) -> bool {
        use SuffixClass::*;
        match (self, target) {
            (_, Foreign) => false,
            (Foreign, _) => true,
            (Id | Uuid, Id | Uuid) => true,
            (a, b) => a == b,
        }
    }

    fn id_like(self) -> bool {
        matches!(self, SuffixClass::Id | SuffixClass::Uuid)
    }
}

/// Every key suffix `SuffixClass::of` knows, as written.
const KEY_SUFFIXES: &[&str] = &["id", "uuid", "key", "sk", "no", "num", "code", "fk"];

/// A column read as `<stem>_<key suffix>`, after the table's column prefix is dropped.
#[derive(Debug, Clone)]
struct KeyForm {
    /// Lowercase words before the suffix, as written (`custkey` → `cust`).
    stem: Vec<String>,
    /// Their stem key, under which they meet table names.
    stem_key: String,
    class: SuffixClass,
    /// The suffix as written (`key`, `sk`).
    suffix: &'static str,
    /// The suffix was glued to the stem (`custkey`, `customerid`).
    glued: bool,
    /// The table's column prefix was dropped to get here.
    stripped: bool,
}

fn key_form(column_words: &[String], stripped: bool) -> Option<KeyForm> {
    let (last, rest) = column_words.split_last()?;
    let form = |stem: Vec<String>, class, suffix, glued| KeyForm {
        stem_key: stem_key(&stem),
        stem,
        class,
        suffix,
        glued,
        stripped,
    };
    if let Some(class) = SuffixClass::of(last) {
        let suffix = KEY_SUFFIXES
            .iter()
            .find(|s| **s == last.as_str())
            .copied()
            .unwrap_or("");
        return Some(form(rest.to_vec(), class, suffix, false));
    }
    if !rest.is_empty() || !last.is_ascii() {
        return None;
    }
    // Glued suffixes only where the stem cannot be an ordinary word's start: `customerid`, `custkey`, but
    // not `hockey` or `paid`.
    for (suffix, min_stem) in [("uuid", 3), ("id", 3), ("key", 4)] {
        if let Some(stem) = last.strip_suffix(suffix)
            && stem.len() >= min_stem
            && stem.chars().all(|c| c.is_ascii_alphabetic())
            && let Some(class) = SuffixClass::of(suffix)
        {
            return Some(form(vec![stem.to_string()], class, suffix, true));
        }
    }
    None
}

/// What inference needs to know about each table, computed once.
struct TableInfo {
    /// Stem key of the whole name (`order_items` → `order_item`).
    key: String,
    /// Stem key without a warehouse prefix or suffix (`dim_customer`, `stg_customers`, `date_dim` →
    /// `customer`, `customer`, `date`).
    bare_key: Option<String>,
    /// The name's words without a warehouse prefix or suffix: what abbreviations expand to.
    entity: Vec<String>,
    /// In a table with a column prefix and a name of several words, the last word (`customer_address` →
    /// `address`, which `ca_address_sk` names).
    head: Option<String>,
    /// Last word's stem, for the people-table check.
    last_stem: String,
    column_words: Vec<Vec<String>>,
    /// Whether the column is read without the table's column prefix (`o_custkey` → `custkey`).
    prefixed: Vec<bool>,
    /// The prefix most columns share (`o` in `orders(o_orderkey, o_custkey, …)`), if there is one.
    column_prefix: Option<String>,
    forms: Vec<Option<KeyForm>>,
    /// The column's key form names its own table (`customer_id` in `customers`, `c_custkey` in `customer`).
    names_own: Vec<bool>,
    column_keys: Vec<KeyStrength>,
    /// A key of two or more columns: declared, or by convention in a table named after the entities of two
    /// of its columns (`partsupp (ps_partkey, ps_suppkey)`, `dept_emp (dept_no, emp_no)`).
    composite: Option<(Vec<usize>, KeyStrength)>,
    /// Columns that alone are the source of a declared foreign key; inference leaves them alone.
    declared_sources: HashSet<usize>,
}

impl TableInfo {
    /// The column's words without the table's column prefix, where it has one.
    fn bare_words(&self, c: usize) -> &[String] {
        let w = &self.column_words[c];
        if self.prefixed[c] { &w[1..] } else { w }
    }
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

/// The first word most of a table's columns share (`o` in TPC-H's `orders`, `ss` in TPC-DS's
/// `store_sales`): at most four letters, starting with the table's own first letter, on at least two and
/// more than half of the columns.
fn column_prefix(column_words: &[Vec<String>], entity: &[String]) -> Option<String> {
    let initial = entity.first()?.chars().next()?;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for w in column_words.iter().filter(|w| w.len() >= 2) {
        match counts.iter_mut().find(|(p, _)| *p == w[0]) {
            Some((_, n)) => *n += 1,
            None => counts.push((&w[0], 1)),
        }
    }
    let (prefix, count) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    (count >= 2
        && count * 2 > column_words.len()
        && prefix.len() <= 4
        && prefix.chars().all(|c| c.is_ascii_alphabetic())
        && prefix.starts_with(initial))
    .then(|| prefix.to_string())
}

fn table_info(table: &Table) -> TableInfo {
    let name_words = words(&table.id.name);
    let key = stem_key(&name_words);
    let mut entity: &[String] = &name_words;
    if let Some((first, rest)) = entity.split_first()
        && !rest.is_empty()
        && TABLE_PREFIXES.contains(&first.as_str())
    {
        entity = rest;
    }
    if let Some((last, rest)) = entity.split_last()
        && !rest.is_empty()
        && TABLE_SUFFIXES.contains(&last.as_str())
    {
        entity = rest;
    }
    let bare_key = (entity.len() < name_words.len()).then(|| stem_key(entity));
    let entity = entity.to_vec();
    let last_stem = name_words.last().map(|w| stem(w)).unwrap_or_default();
    let column_words: Vec<Vec<String>> = table.columns.iter().map(|c| words(&c.name)).collect();
    let column_prefix = column_prefix(&column_words, &entity);
    let head = (column_prefix.is_some() && entity.len() >= 2).then(|| entity[entity.len() - 1].clone());
    let mut prefixed = Vec::with_capacity(column_words.len());
    let mut forms = Vec::with_capacity(column_words.len());
    for w in &column_words {
        let stripped = match &column_prefix {
            Some(p) if w.len() >= 2 && w[0] == *p => Some(&w[1..]),
            _ => None,
        };
        // Drop the prefix unless only the suffix would remain (`item_no` in `item` stays whole).
        match stripped.map(|s| key_form(s, true)) {
            Some(Some(form)) if !form.stem.is_empty() || form.suffix == "id" => {
                prefixed.push(true);
                forms.push(Some(form));
            }
            Some(None) => {
                prefixed.push(true);
                forms.push(None);
            }
            _ => {
                prefixed.push(false);
                forms.push(key_form(w, false));
            }
        }
    }
    let declared_sources = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.len() == 1)
        .filter_map(|fk| table.columns.iter().position(|c| c.name == fk.columns[0]))
        .collect();
    TableInfo {
        key,
        bare_key,
        entity,
        head,
        last_stem,
        column_words,
        prefixed,
        column_prefix,
        forms,
        names_own: Vec::new(),
        column_keys: Vec::new(),
        composite: None,
        declared_sources,
    }
}

/// Relation positions by the stem key of their name, with whether the name matched without its warehouse
/// prefix or suffix; and by the first three letters of their entity (and head) word, for abbreviations.
struct Names {
    by_name: HashMap<String, Vec<(usize, bool)>>,
    by_initials: HashMap<[u8; 3], Vec<usize>>,
    /// Relations that hold people (`employees`, `staff`), for person roles.
    people: Vec<usize>,
}

/// The first three bytes of an ASCII word, the bucket abbreviations are looked up in.
fn initials(word: &str) -> Option<[u8; 3]> {
    match word.as_bytes() {
        [a, b, c, ..] if word.is_ascii() => Some([*a, *b, *c]),
        _ => None,
    }
}

impl Names {
    fn new(infos: &[TableInfo]) -> Names {
        let mut by_name: HashMap<String, Vec<(usize, bool)>> = HashMap::with_capacity(infos.len() * 2);
        let mut by_initials: HashMap<[u8; 3], Vec<usize>> = HashMap::new();
        let mut people = Vec::new();
        for (t, info) in infos.iter().enumerate() {
            if PEOPLE.contains(&info.last_stem.as_str()) {
                people.push(t);
            }
            // `hdemo` abbreviates `household_demographics` by initials; its bucket is `hde`.
            if let Some(key) = initialism_key(&info.entity) {
                let list = by_initials.entry(key).or_default();
                if list.last() != Some(&t) {
                    list.push(t);
                }
            }
            by_name.entry(info.key.clone()).or_default().push((t, false));
            if let Some(bare) = &info.bare_key {
                by_name.entry(bare.clone()).or_default().push((t, true));
            }
            for word in info.entity.first().into_iter().chain(&info.head) {
                if word.len() > 3
                    && let Some(key) = initials(word)
                {
                    let list = by_initials.entry(key).or_default();
                    if list.last() != Some(&t) {
                        list.push(t);
                    }
                }
            }
        }
        Names {
            by_name,
            by_initials,
            people,
        }
    }

    /// Whether `stem` (lowercase words) abbreviates relation `x`'s name, word for word (`cust` →
    /// `customers`, `prod_cat` → `product_categories`), by initials (`hdemo` → `household_demographics`), or
    /// the head word of a prefixed table (`addr` → `customer_address`).
    fn abbreviates(short: &[String], info: &TableInfo) -> bool {
        let word = |s: &String, w: &String| stem(s) == stem(w) || abbreviates(s, w);
        let whole = short.len() == info.entity.len()
            && short.iter().zip(&info.entity).all(|(s, w)| word(s, w))
            && short.iter().zip(&info.entity).any(|(s, w)| abbreviates(s, w));
        whole
            || matches!((short, &info.head), ([s], Some(h)) if word(s, h))
            || matches!(short, [s] if initialism(s, &info.entity))
    }

    /// The relations (other than `t`) whose name `stem` abbreviates, when they are one entity (a table and
    /// its staging view count once); `Err` when several entities fit, which leaves the reference unread.
    fn abbreviated(&self, infos: &[TableInfo], short: &[String], t: usize) -> Result<Vec<(usize, bool)>, ()> {
        let Some(first) = short.first().filter(|f| f.len() >= 3 && f.is_ascii()) else {
            return Ok(Vec::new());
        };
        let Some(list) = initials(first).and_then(|k| self.by_initials.get(&k)) else {
            return Ok(Vec::new());
        };
        let hits: Vec<(usize, bool)> = list
            .iter()
            .filter(|&&x| x != t && Names::abbreviates(short, &infos[x]))
            .map(|&x| (x, infos[x].bare_key.is_some()))
            .collect();
        let entity = |x: usize| infos[x].bare_key.as_deref().unwrap_or(&infos[x].key);
        match hits.first() {
            Some(&(x, _)) if hits.iter().any(|&(y, _)| entity(y) != entity(x)) => Err(()),
            _ => Ok(hits),
        }
    }

    /// Whether `form` names relation `t` itself: its own key by convention.
    fn names_own(&self, infos: &[TableInfo], t: usize, form: &KeyForm) -> bool {
        let info = &infos[t];
        if form.class == SuffixClass::Foreign {
            return false;
        }
        if form.stem.is_empty() {
            return form.suffix == "id";
        }
        if form.stem_key == info.key || Some(&form.stem_key) == info.bare_key.as_ref() {
            return true;
        }
        // An abbreviation names this table unless the stem is another table's whole name (`ps_partkey` in
        // `partsupp` names `part`).
        let elsewhere = self
            .by_name
            .get(form.stem_key.as_str())
            .is_some_and(|hits| hits.iter().any(|&(x, _)| x != t));
        !elsewhere && Names::abbreviates(&form.stem, info)
    }
}

/// Fills in each table's key columns, which depend on every table's name (abbreviations).
fn resolve_keys(tables: &[Table], infos: &mut [TableInfo], names: &Names) {
    let mut resolved = Vec::with_capacity(infos.len());
    {
        for (t, table) in tables.iter().enumerate() {
            let info = &infos[t];
            let composite = composite_key(table, info);
            // In a table named after two of its columns (`partsupp`), those columns are the halves of the
            // name, not abbreviations of it: `ps_partkey` alone is not partsupp's key.
            let halves: &[usize] = match &composite {
                Some((cols, KeyStrength::Conventional)) => cols,
                _ => &[],
            };
            let declared: Vec<Option<DeclaredKey>> = table
                .columns
                .iter()
                .map(|col| single_key(table, &col.name))
                .collect();
            // Only keys are targets: a column's name matters for its own table when it is a declared key, or
            // when the table declares no primary key and the name may make it one.
            let keyless = table.primary_key.is_empty();
            let names_own: Vec<bool> = info
                .forms
                .iter()
                .enumerate()
                .map(|(c, f)| {
                    (keyless || declared[c].is_some())
                        && !halves.contains(&c)
                        && f.as_ref().is_some_and(|f| names.names_own(infos, t, f))
                })
                .collect();
            let mut column_keys: Vec<KeyStrength> = declared
                .iter()
                .enumerate()
                .map(|(c, key)| match key {
                    Some(k) => KeyStrength::from_declared(Some(*k)),
                    None if keyless
                        && (names_own[c]
                            || is_own_id(&info.column_words[c], &info.key, info.bare_key.as_deref())) =>
                    {
                        KeyStrength::Conventional
                    }
                    None => KeyStrength::None,
                })
                .collect();
            // A keyless table with no key by name is identified by its one natural key, if it has one
            // (`raw_products.sku`).
            if keyless && composite.is_none() && column_keys.iter().all(|k| *k == KeyStrength::None) {
                let mut natural =
                    (0..column_keys.len()).filter(|&c| natural_key(info.bare_words(c)).is_some());
                if let (Some(c), None) = (natural.next(), natural.next()) {
                    column_keys[c] = KeyStrength::Conventional;
                }
            }
            resolved.push((names_own, column_keys, composite));
        }
    }
    for (info, (names_own, column_keys, composite)) in infos.iter_mut().zip(resolved) {
        info.names_own = names_own;
        info.column_keys = column_keys;
        info.composite = composite;
    }
}

/// A declared key of several columns, or by convention two columns whose stems spell the table's name
/// (`partsupp` = `part` + `supp`) in a table that declares no primary key.
fn composite_key(table: &Table, info: &TableInfo) -> Option<(Vec<usize>, KeyStrength)> {
    let positions = |cols: &[String]| -> Option<Vec<usize>> {
        cols.iter()
            .map(|n| table.columns.iter().position(|c| c.name == *n))
            .collect()
    };
    let declared = std::iter::once((&table.primary_key, KeyStrength::Primary))
        .chain(
            table
                .unique_constraints
                .iter()
                .map(|u| (&u.columns, KeyStrength::Unique)),
        )
        .chain(
            table
                .indexes
                .iter()
                .filter(|i| i.unique)
                .map(|i| (&i.columns, KeyStrength::Unique)),
        )
        .find(|(cols, _)| cols.len() >= 2);
    if let Some((cols, strength)) = declared {
        return positions(cols).map(|p| (p, strength));
    }
    if !table.primary_key.is_empty() {
        return None;
    }
    let glued = |k: &str| k.replace('_', "");
    let name = glued(info.bare_key.as_deref().unwrap_or(&info.key));
    let stems: Vec<(usize, String)> = info
        .forms
        .iter()
        .enumerate()
        .filter_map(|(c, f)| match f {
            Some(f) if !f.stem.is_empty() && f.class != SuffixClass::Foreign => Some((c, glued(&f.stem_key))),
            _ => None,
        })
        .collect();
    for (i, (a, sa)) in stems.iter().enumerate() {
        for (b, sb) in &stems[i + 1..] {
            if name.len() == sa.len() + sb.len()
                && ((name.starts_with(sa.as_str()) && name.ends_with(sb.as_str()))
                    || (name.starts_with(sb.as_str()) && name.ends_with(sa.as_str())))
            {
                return Some((vec![*a, *b], KeyStrength::Conventional));
            }
        }
    }
    None
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

/// A proposed inferred edge before deduplication.
struct Candidate {
    from: usize,
    from_columns: Vec<usize>,
    to: usize,
    to_columns: Vec<usize>,
    rule: InferenceRule,
    confidence: f32,
    reason: String,
    /// Set for composite edges; single-column edges take the columns' own key strengths.
    keys: Option<(KeyStrength, KeyStrength)>,
    /// The column's name starts with role words before the entity (`ws_sold_date_sk`).
    role: bool,
}

impl Candidate {
    fn single(
        from: usize,
        c: usize,
        to: usize,
        tc: usize,
        rule: InferenceRule,
        confidence: f32,
        reason: String,
    ) -> Candidate {
        Candidate {
            from,
            from_columns: vec![c],
            to,
            to_columns: vec![tc],
            rule,
            confidence,
            reason,
            keys: None,
            role: false,
        }
    }
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// One side of a join by positions: a relation and its columns.
type Side = (usize, Vec<u32>);

/// Builds the join graph over `tables` (sorted by id, as a normalised snapshot holds them).
pub(crate) fn build(tables: &[Table], index: &HashMap<TableId, usize>) -> (JoinGraph, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut infos: Vec<TableInfo> = tables.iter().map(table_info).collect();
    let names = Names::new(&infos);
    resolve_keys(tables, &mut infos, &names);

    let mut edges: Vec<(usize, usize, JoinEdge)> = Vec::new();
    declared_edges(tables, index, &mut edges, &mut findings);

    let mut candidates = Vec::new();
    let mut unread: Vec<(usize, usize)> = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        for c in 0..table.columns.len() {
            if infos[t].declared_sources.contains(&c) {
                continue;
            }
            if infos[t].forms[c].as_ref().is_some_and(|f| f.stripped) {
                // Table-prefixed columns are read without their prefix, below.
                self_reference(tables, &infos, t, c, &mut candidates);
                unread.push((t, c));
            } else if !id_suffix(tables, &infos, &names, t, c, &mut candidates, &mut findings) {
                unread.push((t, c));
            }
        }
    }
    shared_keys(tables, &infos, &mut candidates);
    // A column whose name is a declared key elsewhere is the shared-key rule's; the other naming rules
    // read the columns `_id` did not settle.
    let claimed: HashSet<(usize, usize)> = candidates
        .iter()
        .filter(|c| c.rule == InferenceRule::SharedKey)
        .map(|c| (c.from, c.from_columns[0]))
        .collect();
    for (t, c) in unread {
        if !claimed.contains(&(t, c))
            && !key_reference(tables, &infos, &names, t, c, &mut candidates, &mut findings)
        {
            role_reference(tables, &infos, &names, t, c, &mut candidates);
        }
    }
    composite_keys(tables, &infos, &mut candidates, &mut findings);
    natural_keys(tables, &infos, &mut candidates);
    prefer_event_roles(&infos, &mut candidates);

    // Declared edges win over any inference on the same columns; among inferences the most confident wins.
    // Edges meet by column positions in either direction, so no name is cloned to compare them.
    let side = |t: usize, columns: &[String]| -> Side {
        let positions = columns
            .iter()
            .map(|n| {
                tables[t]
                    .columns
                    .iter()
                    .position(|c| c.name == *n)
                    .map_or(u32::MAX, |p| p as u32)
            })
            .collect();
        (t, positions)
    };
    let undirected = |a: Side, b: Side| if a <= b { (a, b) } else { (b, a) };
    let mut seen: HashSet<(Side, Side)> = HashSet::with_capacity(edges.len() * 2);
    for (a, b, e) in &edges {
        seen.insert(undirected(side(*a, &e.from_columns), side(*b, &e.to_columns)));
    }
    candidates.sort_by(|x, y| {
        y.confidence
            .total_cmp(&x.confidence)
            .then((x.from, &x.from_columns, x.to, &x.to_columns).cmp(&(
                y.from,
                &y.from_columns,
                y.to,
                &y.to_columns,
            )))
    });
    for cand in candidates {
        let positions = |columns: &[usize]| columns.iter().map(|&c| c as u32).collect::<Vec<u32>>();
        let key = undirected(
            (cand.from, positions(&cand.from_columns)),
            (cand.to, positions(&cand.to_columns)),
        );
        if !seen.insert(key) {
            continue;
        }
        let (ft, tt) = (&tables[cand.from], &tables[cand.to]);
        let from_columns: Vec<String> = cand
            .from_columns
            .iter()
            .map(|&c| ft.columns[c].name.clone())
            .collect();
        let to_columns: Vec<String> = cand
            .to_columns
            .iter()
            .map(|&c| tt.columns[c].name.clone())
            .collect();
        let (from_key, to_key) = cand.keys.unwrap_or((
            infos[cand.from].column_keys[cand.from_columns[0]],
            infos[cand.to].column_keys[cand.to_columns[0]],
        ));
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
                from_key,
                to_key,
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
/// `id`, the same name, or the table's own `<entity>_id` (also glued, `customerid`, or abbreviated,
/// `cust_id`); the strongest key wins.
fn target_column(
    info: &TableInfo,
    source_words: &[String],
    source: Option<&KeyForm>,
) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, w) in info.column_words.iter().enumerate() {
        let strength = info.column_keys[c];
        if strength == KeyStrength::None {
            continue;
        }
        let same_form =
            |f: &KeyForm| source.is_some_and(|s| s.class.reaches(f.class) && s.stem_key == f.stem_key);
        let named = w.len() == 1 && w[0] == "id"
            || w.as_slice() == source_words
            || is_own_id(w, &info.key, info.bare_key.as_deref())
            || info.forms[c]
                .as_ref()
                .is_some_and(|f| f.class.id_like() && (info.names_own[c] || same_form(f)));
        if named && best.is_none_or(|(_, s)| strength < s) {
            best = Some((c, strength));
        }
    }
    best
}

/// The key column of relation `info` that a reference read as `source` points at: `id` for an id-like
/// or `_fk` reference, otherwise a key with an agreeing suffix that has the same stem or names its own
/// table; the strongest key wins.
fn key_target(info: &TableInfo, source: &KeyForm) -> Option<(usize, KeyStrength)> {
    let mut best: Option<(usize, KeyStrength)> = None;
    for (c, form) in info.forms.iter().enumerate() {
        let strength = info.column_keys[c];
        let Some(form) = form else {
            continue;
        };
        if strength == KeyStrength::None || !source.class.reaches(form.class) {
            continue;
        }
        let named = if form.stem.is_empty() {
            form.suffix == "id"
        } else {
            form.stem_key == source.stem_key || info.names_own[c]
        };
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

/// A relation a reference may point at.
struct Target {
    relation: usize,
    /// Its name matched without a warehouse prefix or suffix.
    via_prefix: bool,
    /// It is a view and a table fits the same reference: the table is preferred.
    beside_table: Option<String>,
}

/// The relations a reference may point at, among those its name found: its own schema first (another
/// schema only when its own has none, `cross`), and tables before views. Several tables (or, with no
/// table, several views) are `ambiguous`; a view beside a table is not, it is scored below the table.
struct Picked {
    targets: Vec<Target>,
    cross: bool,
    ambiguous: bool,
}

fn pick_targets(tables: &[Table], t: usize, mut found: Vec<(usize, bool)>) -> Picked {
    if let [(x, via_prefix)] = found[..] {
        // The common case: one relation fits.
        let cross = tables[x].id.schema != tables[t].id.schema;
        let targets = vec![Target {
            relation: x,
            via_prefix,
            beside_table: None,
        }];
        return Picked {
            targets,
            cross,
            ambiguous: false,
        };
    }
    found.dedup_by_key(|(x, _)| *x);
    let schema = &tables[t].id.schema;
    let same: Vec<(usize, bool)> = found
        .iter()
        .copied()
        .filter(|(x, _)| tables[*x].id.schema == *schema)
        .collect();
    let cross = same.is_empty();
    let found = if cross { found } else { same };
    let is_table = |x: usize| tables[x].kind == TableKind::Table;
    let table_count = found.iter().filter(|(x, _)| is_table(*x)).count();
    let ambiguous = if table_count == 0 {
        found.len() > 1
    } else {
        table_count > 1
    };
    // Named only when a view stands beside a table, which is rare enough to build the text then.
    let beside = (table_count > 0 && table_count < found.len()).then(|| {
        let names: Vec<&str> = found
            .iter()
            .filter(|(x, _)| is_table(*x))
            .map(|(x, _)| tables[*x].id.name.as_str())
            .collect();
        names.join(", ")
    });
    let targets = found
        .iter()
        .map(|&(x, via_prefix)| Target {
            relation: x,
            via_prefix,
            beside_table: if is_table(x) { None } else { beside.clone() },
        })
        .collect();
    Picked {
        targets,
        cross,
        ambiguous,
    }
}

impl Picked {
    /// The finding for an ambiguous reference, naming the equally good candidates.
    fn finding(&self, tables: &[Table], t: usize, column: &str) -> Option<Finding> {
        if !self.ambiguous {
            return None;
        }
        let names: Vec<String> = self
            .targets
            .iter()
            .filter(|x| x.beside_table.is_none())
            .map(|x| tables[x.relation].id.to_string())
            .collect();
        Some(Finding::info(
            "ambiguous_inference",
            Some(&tables[t].id),
            format!(
                "{}.{column} could reference any of {}; each inferred join is scored lower",
                tables[t].id,
                names.join(", ")
            ),
        ))
    }

    /// Applies the modifiers every naming rule shares: warehouse prefix, other schema, ambiguity, a view
    /// beside a table.
    fn modifiers(&self, target: &Target, tables: &[Table], confidence: &mut f32, reason: &mut String) {
        if target.via_prefix {
            *confidence *= VIA_TABLE_PREFIX;
            reason.push_str("; matched without the table's prefix");
        }
        if self.cross {
            *confidence *= CROSS_SCHEMA;
            reason.push_str(&format!(
                "; in another schema ({})",
                tables[target.relation].id.schema
            ));
        }
        if self.ambiguous && target.beside_table.is_none() {
            *confidence *= AMBIGUOUS;
            reason.push_str("; several tables match");
        }
        if let Some(table) = &target.beside_table {
            *confidence *= VIEW_BESIDE_TABLE;
            reason.push_str(&format!("; a view, and table {table} fits too"));
        }
    }
}

/// Reads a column as `<table>_id`; returns whether its name found a relation (then the other naming rules
/// leave it alone, whether or not a key there fitted).
fn id_suffix(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) -> bool {
    let table = &tables[t];
    let info = &infos[t];
    let source_words = &info.column_words[c];
    let column = &table.columns[c];
    let Some(form) = info.forms[c]
        .as_ref()
        .filter(|f| f.class.id_like() && !f.stem.is_empty())
    else {
        self_reference(tables, infos, t, c, out);
        return false;
    };
    let (prefix, glued) = (&form.stem, form.glued);
    let mut role: Option<String> = None;
    let mut found: Vec<(usize, bool)> = names
        .by_name
        .get(form.stem_key.as_str())
        .cloned()
        .unwrap_or_default();
    found.retain(|(x, _)| *x != t);
    if found.is_empty() {
        for i in 1..prefix.len() {
            if let Some(hits) = names.by_name.get(stem_key(&prefix[i..]).as_str()) {
                found = hits.clone();
                role = Some(prefix[..i].join("_"));
                break;
            }
        }
        if role.is_some() && found.iter().any(|(x, _)| *x == t) {
            // `parent_category_id` in `categories`: the role names a row of the table itself.
            self_reference(tables, infos, t, c, out);
            return true;
        }
    }
    if found.is_empty() {
        self_reference(tables, infos, t, c, out);
        return false;
    }
    let picked = pick_targets(tables, t, found);
    findings.extend(picked.finding(tables, t, &column.name));
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = target_column(&infos[x], source_words, info.forms[c].as_ref()) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let mut confidence = base(ID_SUFFIX, strength) * types;
        let mut reason = format!(
            "{} names table {}; {}.{} is its {}",
            column.name,
            to.id.name,
            to.id.name,
            target_col.name,
            strength.describe()
        );
        if glued {
            confidence *= GLUED;
            reason.push_str("; id suffix glued to the name");
        }
        if let Some(role) = &role {
            confidence *= ROLE_PREFIX;
            reason.push_str(&format!("; `{role}` read as a role prefix"));
        }
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        let mut candidate = Candidate::single(t, c, x, tc, InferenceRule::IdSuffix, confidence, reason);
        candidate.role = role.is_some();
        out.push(candidate);
    }
    true
}

/// How a stem found its relation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    Exact,
    Abbreviated,
}

/// Reads a column as `<stem>_<key suffix>` (after its table's column prefix, if any) where `_id` did not
/// settle it: other key suffixes (`KeySuffix`), abbreviated stems (`Abbreviation`) and table-prefixed
/// columns (`ColumnPrefix`). The stem names a relation whole, or after role words (`sold_date_sk` →
/// `date`), or else by abbreviation of exactly one entity's name. Returns whether the column was settled
/// here (a relation named, or a declared key); the role rule reads the rest.
fn key_reference(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) -> bool {
    let table = &tables[t];
    let Some(form) = &infos[t].forms[c] else {
        return false;
    };
    if form.stem.is_empty()
        || matches!(
            infos[t].column_keys[c],
            KeyStrength::Primary | KeyStrength::Unique
        )
    {
        return true; // A declared key is referenced, not referencing: same-named keys on both sides are 1:1.
    }
    let n = form.stem.len();
    let mut found: Vec<(usize, bool)> = Vec::new();
    let mut role_words = 0;
    let mut naming = Naming::Exact;
    for i in 0..n {
        let Some(hits) = names.by_name.get(stem_key(&form.stem[i..]).as_str()) else {
            continue;
        };
        if hits.iter().any(|(x, _)| *x == t) && (i > 0 || hits.len() == 1) {
            return true; // The table's own key, or a role of its own rows (the self-reference rule's).
        }
        found = hits.iter().copied().filter(|(x, _)| *x != t).collect();
        role_words = i;
        break;
    }
    if found.is_empty() {
        for i in 0..n {
            match names.abbreviated(infos, &form.stem[i..], t) {
                Ok(hits) if hits.is_empty() => continue,
                Ok(hits) => {
                    found = hits;
                    role_words = i;
                    naming = Naming::Abbreviated;
                    break;
                }
                Err(()) => return true, // Several entities fit the abbreviation: too weak to choose.
            }
        }
    }
    if found.is_empty() {
        return false;
    }
    let column = &table.columns[c];
    let picked = pick_targets(tables, t, found);
    findings.extend(picked.finding(tables, t, &column.name));
    let stem_text = form.stem[role_words..].join("_");
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = key_target(&infos[x], form) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let target_form = infos[x].forms[tc].as_ref();
        let prefixed = form.stripped || target_form.is_some_and(|f| f.stripped);
        let (rule, bases) = if prefixed {
            (InferenceRule::ColumnPrefix, COLUMN_PREFIX)
        } else if naming == Naming::Abbreviated {
            (InferenceRule::Abbreviation, ABBREVIATION)
        } else if form.class.id_like() {
            (InferenceRule::IdSuffix, ID_SUFFIX)
        } else {
            (InferenceRule::KeySuffix, KEY_SUFFIX)
        };
        let mut confidence = base(bases, strength) * types;
        let mut reason = if prefixed {
            let without = |info: &TableInfo, cc: usize, name: &str| match &info.column_prefix {
                Some(p) if info.forms[cc].as_ref().is_some_and(|f| f.stripped) => {
                    format!("{name} without its column prefix `{p}_`")
                }
                _ => name.to_string(),
            };
            format!(
                "{} and {} read alike ({}); `{stem_text}` names table {}",
                without(&infos[t], c, &column.name),
                without(&infos[x], tc, &target_col.name),
                form.stem
                    .iter()
                    .chain([&form.suffix.to_string()])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("_"),
                to.id.name
            )
        } else {
            format!("{} names table {}", column.name, to.id.name)
        };
        if naming == Naming::Abbreviated {
            reason.push_str(&format!(" (`{stem_text}` abbreviates it)"));
        }
        reason.push_str(&format!(
            "; {}.{} is its {}",
            to.id.name,
            target_col.name,
            strength.describe()
        ));
        if prefixed && naming == Naming::Abbreviated {
            confidence *= ABBREVIATED;
        }
        if form.glued && !prefixed {
            confidence *= GLUED;
            reason.push_str(&format!("; {} suffix glued to the name", form.suffix));
        }
        if role_words > 0 {
            confidence *= ROLE_PREFIX;
            reason.push_str(&format!(
                "; `{}` read as a role prefix",
                form.stem[..role_words].join("_")
            ));
        }
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        let mut candidate = Candidate::single(t, c, x, tc, rule, confidence, reason);
        candidate.role = role_words > 0;
        out.push(candidate);
    }
    true
}

/// Joins columns that match a multi-column key column for column (same stem and suffix once column
/// prefixes are dropped) as one edge: `lineitem (l_partkey, l_suppkey)` → `partsupp (ps_partkey,
/// ps_suppkey)`.
fn composite_keys(
    tables: &[Table],
    infos: &[TableInfo],
    out: &mut Vec<Candidate>,
    findings: &mut Vec<Finding>,
) {
    if infos.iter().all(|i| i.composite.is_none()) {
        return;
    }
    let mut by_form: HashMap<(&str, SuffixClass), Vec<(usize, usize)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        for (c, form) in info.forms.iter().enumerate() {
            if let Some(f) = form
                && !f.stem.is_empty()
                && f.class != SuffixClass::Foreign
            {
                by_form
                    .entry((f.stem_key.as_str(), f.class))
                    .or_default()
                    .push((t, c));
            }
        }
    }
    // For each source table, the keys it matches: (target, source columns).
    let mut matches: HashMap<usize, Vec<(usize, Vec<usize>)>> = HashMap::new();
    for (k, info) in infos.iter().enumerate() {
        let Some((key_columns, _)) = &info.composite else {
            continue;
        };
        // Intersect, component by component, the tables holding a column of the same form.
        let mut sources: Option<HashMap<usize, Vec<usize>>> = None;
        for &kc in key_columns {
            let mut next: HashMap<usize, Vec<usize>> = HashMap::new();
            let holders = info.forms[kc]
                .as_ref()
                .and_then(|f| by_form.get(&(f.stem_key.as_str(), f.class)));
            for &(s, sc) in holders.into_iter().flatten() {
                if s == k || next.contains_key(&s) {
                    continue;
                }
                let so_far = match &sources {
                    None => Some(Vec::new()),
                    Some(previous) => previous.get(&s).cloned(),
                };
                if let Some(mut cols) = so_far {
                    cols.push(sc);
                    next.insert(s, cols);
                }
            }
            sources = Some(next);
        }
        for (s, cols) in sources.unwrap_or_default() {
            if cols.len() == key_columns.len() {
                matches.entry(s).or_default().push((k, cols));
            }
        }
    }
    let mut sources: Vec<usize> = matches.keys().copied().collect();
    sources.sort_unstable();
    for s in sources {
        let mut keyed = matches.remove(&s).unwrap_or_default();
        keyed.sort_by_key(|(k, _)| *k);
        let source = &tables[s];
        let from_key = KeyStrength::from_declared(
            source.key_kind(
                &keyed[0]
                    .1
                    .iter()
                    .map(|&c| source.columns[c].name.clone())
                    .collect::<Vec<_>>(),
            ),
        );
        let picked = pick_targets(tables, s, keyed.iter().map(|(k, _)| (*k, false)).collect());
        for target in &picked.targets {
            let k = target.relation;
            let Some((from_cols, (key_columns, strength))) = keyed
                .iter()
                .find(|(x, _)| *x == k)
                .map(|(_, cols)| cols)
                .zip(infos[k].composite.as_ref())
            else {
                continue;
            };
            let to = &tables[k];
            let from_names: Vec<String> = from_cols
                .iter()
                .map(|&c| source.columns[c].name.clone())
                .collect();
            let declared = source.foreign_keys.iter().any(|fk| fk.columns == from_names);
            if declared || (from_key != KeyStrength::None && *strength != KeyStrength::Conventional) {
                continue; // Declared already, or a key on both sides (1:1 extension tables, as for shared keys).
            }
            let mut types = 1.0f32;
            for (&fc, &kc) in from_cols.iter().zip(key_columns) {
                match join_compatibility(&source.columns[fc].data_type, &to.columns[kc].data_type) {
                    Some(f) => types = types.min(f),
                    None => types = 0.0,
                }
            }
            if types == 0.0 {
                continue;
            }
            let mut confidence = base(COMPOSITE_KEY, *strength) * types;
            let to_names: Vec<&str> = key_columns.iter().map(|&c| to.columns[c].name.as_str()).collect();
            let mut reason = format!(
                "({}) match ({}), the {} of {}, column for column",
                from_names.join(", "),
                to_names.join(", "),
                strength.describe(),
                to.id.name
            );
            if *strength == KeyStrength::Conventional {
                reason.push_str(&format!(
                    "; {} is named after the entities of its two key columns",
                    to.id.name
                ));
            }
            let stripped = |x: usize, cols: &[usize]| {
                cols.iter()
                    .any(|&c| infos[x].forms[c].as_ref().is_some_and(|f| f.stripped))
            };
            if stripped(s, from_cols) || stripped(k, key_columns) {
                reason.push_str("; compared without the column prefixes");
            }
            picked.modifiers(target, tables, &mut confidence, &mut reason);
            if types < 1.0 {
                reason.push_str("; types only loosely compatible");
            }
            out.push(Candidate {
                from: s,
                from_columns: from_cols.clone(),
                to: k,
                to_columns: key_columns.clone(),
                rule: InferenceRule::CompositeKey,
                confidence,
                reason,
                keys: Some((from_key, *strength)),
                role: false,
            });
        }
        let label: Vec<&str> = keyed[0]
            .1
            .iter()
            .map(|&c| source.columns[c].name.as_str())
            .collect();
        findings.extend(picked.finding(tables, s, &format!("({})", label.join(", "))));
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
    let w = info.bare_words(c);
    let role_words = match w.split_last() {
        Some((last, prefix)) if !prefix.is_empty() && SuffixClass::of(last).is_some() => prefix,
        _ => w,
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
    if tc == c {
        return;
    }
    let (column, target_col) = (&table.columns[c], &table.columns[tc]);
    let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
        return;
    };
    let mut reason = format!("{why}; {} is its {}", target_col.name, strength.describe());
    push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
    out.push(Candidate::single(
        t,
        c,
        t,
        tc,
        InferenceRule::SelfReference,
        base * types * strength.factor(),
        reason,
    ));
}

fn shared_keys(tables: &[Table], infos: &[TableInfo], out: &mut Vec<Candidate>) {
    // Grouped by stem and kind of suffix, so that `store_key`, `StoreKey`, `storekey`, `store_sk` and
    // `ss_store_sk` (without its column prefix) meet.
    let mut groups: HashMap<(&str, SuffixClass), Vec<(usize, usize)>> = HashMap::new();
    for (t, info) in infos.iter().enumerate() {
        for (c, form) in info.forms.iter().enumerate() {
            if let Some(f) = form
                && !f.stem.is_empty()
                && f.class != SuffixClass::Foreign
            {
                groups
                    .entry((f.stem_key.as_str(), f.class))
                    .or_default()
                    .push((t, c));
            }
        }
    }
    let is_declared_key = |t: usize, c: usize| {
        matches!(
            infos[t].column_keys[c],
            KeyStrength::Primary | KeyStrength::Unique
        )
    };
    let mut names: Vec<&(&str, SuffixClass)> = groups.keys().collect();
    names.sort_by_key(|(stem, class)| (*stem, *class as u8));
    for name in names {
        let members = &groups[name];
        let holders: Vec<(usize, usize)> = members
            .iter()
            .copied()
            .filter(|&(t, c)| is_declared_key(t, c))
            .collect();
        if holders.is_empty() {
            continue;
        }
        for &(t, c) in members {
            if is_declared_key(t, c) || infos[t].declared_sources.contains(&c) {
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
                let stripped = |x: usize, xc: usize| infos[x].forms[xc].as_ref().is_some_and(|f| f.stripped);
                if stripped(t, c) || stripped(h, hc) {
                    reason.push_str("; compared without the column prefixes");
                }
                if cross {
                    confidence *= CROSS_SCHEMA;
                    reason.push_str(&format!("; in another schema ({})", holder.id.schema));
                }
                if ambiguous {
                    confidence *= AMBIGUOUS;
                    reason.push_str("; it is a key in several tables");
                }
                push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
                out.push(Candidate::single(
                    t,
                    c,
                    h,
                    hc,
                    InferenceRule::SharedKey,
                    confidence,
                    reason,
                ));
            }
        }
    }
}

/// Reads a column named by a role rather than an entity, where no other rule named a relation: a person
/// role (`SupportRepId`, `sales_rep_id`) points at the schema's one table of people, and `<verb> via`
/// (`ShipVia`) at the table named for whoever does it (`Shippers`). The target is that relation's own key;
/// nothing is inferred when several entities fit, because a role is a weaker signal than a name.
fn role_reference(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
) {
    let info = &infos[t];
    if PEOPLE.contains(&info.last_stem.as_str()) {
        return; // Inside a table of people a person role is a self-reference (that rule's).
    }
    let w = info.bare_words(c);
    let Some((last, role)) = w.split_last() else {
        return;
    };
    let (found, why) = match role {
        [verb] if last == "via" => {
            let found = agent_nouns(verb)
                .iter()
                .find_map(|noun| names.by_name.get(stem(noun).as_str()))
                .cloned()
                .unwrap_or_default();
            (found, format!("`{verb} via` names whoever does `{verb}`"))
        }
        [.., person]
            if SuffixClass::of(last).is_some() && PERSON_ROLES_ELSEWHERE.contains(&person.as_str()) =>
        {
            let found = names.people.iter().map(|&x| (x, false)).collect();
            (found, format!("`{person}` names a person"))
        }
        _ => return,
    };
    let found: Vec<(usize, bool)> = found.into_iter().filter(|(x, _)| *x != t).collect();
    if found.is_empty() {
        return;
    }
    let picked = pick_targets(tables, t, found);
    if picked.ambiguous {
        return;
    }
    let column = &tables[t].columns[c];
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = own_key(&infos[x]) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let mut confidence = base(ROLE_NAME, strength) * types;
        let mut reason = format!(
            "{}: {why}, and {} is the one such table; {}.{} is its {}",
            column.name,
            to.id.name,
            to.id.name,
            target_col.name,
            strength.describe()
        );
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        out.push(Candidate::single(
            t,
            c,
            x,
            tc,
            InferenceRule::RoleName,
            confidence,
            reason,
        ));
    }
}

/// Joins a natural key without a key suffix (`raw_items.sku`) to the one relation where it is the key
/// (`raw_products.sku`: declared, or the only key of a keyless table). A key on both sides or on several
/// tables infers nothing.
fn natural_keys(tables: &[Table], infos: &[TableInfo], out: &mut Vec<Candidate>) {
    let mut groups: Vec<Vec<(usize, usize)>> = vec![Vec::new(); NATURAL_KEYS.len()];
    for (t, info) in infos.iter().enumerate() {
        for c in 0..info.column_words.len() {
            if let Some(k) = natural_key(info.bare_words(c)) {
                groups[k].push((t, c));
            }
        }
    }
    for members in groups.iter().filter(|m| m.len() >= 2) {
        let is_key = |(t, c): (usize, usize)| infos[t].column_keys[c] != KeyStrength::None;
        for &(t, c) in members {
            if is_key((t, c)) || infos[t].declared_sources.contains(&c) {
                continue;
            }
            let found: Vec<(usize, bool)> = members
                .iter()
                .copied()
                .filter(|&(h, hc)| h != t && is_key((h, hc)))
                .map(|(h, _)| (h, false))
                .collect();
            if found.is_empty() {
                continue;
            }
            let picked = pick_targets(tables, t, found);
            if picked.ambiguous {
                continue;
            }
            let column = &tables[t].columns[c];
            for target in &picked.targets {
                let h = target.relation;
                let Some(&(_, hc)) = members.iter().find(|(x, _)| *x == h) else {
                    continue;
                };
                let (holder, target_col) = (&tables[h], &tables[h].columns[hc]);
                let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
                    continue;
                };
                let strength = infos[h].column_keys[hc];
                let mut confidence = base(NATURAL_KEY, strength) * types;
                let mut reason = format!(
                    "{} is a natural key; {}.{} is its {} and {} is a non-key column here",
                    column.name,
                    holder.id.name,
                    target_col.name,
                    strength.describe(),
                    column.name
                );
                picked.modifiers(target, tables, &mut confidence, &mut reason);
                push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
                out.push(Candidate::single(
                    t,
                    c,
                    h,
                    hc,
                    InferenceRule::NaturalKey,
                    confidence,
                    reason,
                ));
            }
        }
    }
}

/// Where a fact table has several role-named keys onto one relation (`ws_sold_date_sk`, `ws_ship_date_sk`
/// → `date_dim`) and exactly one role is the fact's own event (`sold` for sales), the others rank below it,
/// so that the first path between the two is the one an analyst means.
fn prefer_event_roles(infos: &[TableInfo], candidates: &mut [Candidate]) {
    let events = |t: usize| {
        EVENT_ROLES
            .iter()
            .find(|(fact, _)| stem(fact) == infos[t].last_stem)
            .map(|(_, roles)| *roles)
    };
    let mut groups: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (i, cand) in candidates.iter().enumerate() {
        if cand.role && cand.from != cand.to && events(cand.from).is_some() {
            groups.entry((cand.from, cand.to)).or_default().push(i);
        }
    }
    for ((from, _), members) in groups {
        let Some(roles) = events(from) else {
            continue;
        };
        let role_of = |i: usize| {
            infos[from]
                .bare_words(candidates[i].from_columns[0])
                .first()
                .map(String::as_str)
        };
        let mut preferred = members
            .iter()
            .filter(|&&i| role_of(i).is_some_and(|r| roles.contains(&r)))
            .map(|&i| candidates[i].from_columns[0]);
        let Some(column) = preferred.next() else {
            continue;
        };
        if preferred.any(|other| other != column) {
            continue; // Two columns name the event: nothing to prefer.
        }
        let event = members
            .iter()
            .find(|&&i| candidates[i].from_columns[0] == column)
            .and_then(|&i| role_of(i))
            .unwrap_or_default()
            .to_string();
        for &i in &members {
            if candidates[i].from_columns[0] != column {
                let cand = &mut candidates[i];
                cand.confidence *= OTHER_THAN_EVENT;
                cand.reason
                    .push_str(&format!("; `{event}` is the role of this table's own event"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::round3;
    use crate::catalog::Catalog;
    use crate::graph::EdgeOrigin;
    use crate::outline;

    /// Builds a catalog from an outline (a table named `Order_Details_` becomes `Order Details`, which the
    /// outline cannot spell) and returns its edges as `from(cols) -> to(cols) origin confidence`, and the
    /// codes of its findings.
    fn edges_and_findings(schema: &str) -> (Vec<String>, Vec<&'static str>) {
        let mut snapshot = outline::parse(schema).expect("outline parses");
        for table in &mut snapshot.tables {
            if table.id.name == "Order_Details_" {
                table.id.name = "Order Details".to_string();
            }
        }
        let (catalog, findings) = Catalog::build(snapshot);
        let edges = catalog
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
        (edges, findings.iter().map(|f| f.code).collect())
    }

    /// Asserts the edges of an outline's catalog, in edge order.
    fn check(schema: &str, expected: &[&str]) {
        assert_eq!(edges_and_findings(schema).0, expected, "schema:\n{schema}");
    }

    /// Asserts the edges and the finding codes of an outline's catalog.
    fn check_findings(schema: &str, expected: &[&str], findings: &[&str]) {
        let (edges, codes) = edges_and_findings(schema);
        assert_eq!(
            (edges, codes),
            (
                expected.iter().map(|e| e.to_string()).collect(),
                findings.to_vec()
            ),
            "schema:\n{schema}"
        );
    }

    /// TPC-H's eight tables with every declared key removed.
    const TPCH: &str = "\
table h.region
  r_regionkey int
  r_name char(25)
  r_comment varchar(152)
table h.nation
  n_nationkey int
  n_name char(25)
  n_regionkey int
  n_comment varchar(152)
table h.part
  p_partkey int
  p_name varchar(55)
  p_mfgr char(25)
  p_brand char(10)
  p_type varchar(25)
  p_size int
  p_container char(10)
  p_retailprice decimal(15,2)
  p_comment varchar(23)
table h.supplier
  s_suppkey int
  s_name char(25)
  s_address varchar(40)
  s_nationkey int
  s_phone char(15)
  s_acctbal decimal(15,2)
  s_comment varchar(101)
table h.partsupp
  ps_partkey int
  ps_suppkey int
  ps_availqty int
  ps_supplycost decimal(15,2)
  ps_comment varchar(199)
table h.customer
  c_custkey int
  c_name varchar(25)
  c_address varchar(40)
  c_nationkey int
  c_phone char(15)
  c_acctbal decimal(15,2)
  c_mktsegment char(10)
  c_comment varchar(117)
table h.orders
  o_orderkey int
  o_custkey int
  o_orderstatus char(1)
  o_totalprice decimal(15,2)
  o_orderdate date
  o_orderpriority char(15)
  o_clerk char(15)
  o_shippriority int
  o_comment varchar(79)
table h.lineitem
  l_orderkey int
  l_partkey int
  l_suppkey int
  l_linenumber int
  l_quantity decimal(15,2)
  l_extendedprice decimal(15,2)
  l_discount decimal(15,2)
  l_tax decimal(15,2)
  l_returnflag char(1)
  l_linestatus char(1)
  l_shipdate date
  l_commitdate date
  l_receiptdate date
  l_shipinstruct char(25)
  l_shipmode char(10)
  l_comment varchar(44)
";

    /// A TPC-DS subset, surrogate keys only by name.
    const TPCDS: &str = "\
table ds.store_sales
  ss_sold_date_sk int
  ss_sold_time_sk int
  ss_item_sk int
  ss_customer_sk int
  ss_cdemo_sk int
  ss_addr_sk int
  ss_store_sk int
  ss_promo_sk int
  ss_ticket_number int
  ss_quantity int
  ss_sales_price decimal(7,2)
  ss_net_paid decimal(7,2)
table ds.customer
  c_customer_sk int
  c_customer_id char(16)
  c_current_cdemo_sk int
  c_current_addr_sk int
  c_first_shipto_date_sk int
  c_first_sales_date_sk int
  c_first_name char(20)
  c_last_name char(30)
  c_birth_country varchar(20)
table ds.item
  i_item_sk int
  i_item_id char(16)
  i_rec_start_date date
  i_item_desc varchar(200)
  i_current_price decimal(7,2)
  i_brand_id int
  i_category_id int
  i_category char(50)
table ds.date_dim
  d_date_sk int
  d_date_id char(16)
  d_date date
  d_year int
  d_moy int
  d_dom int
table ds.store
  s_store_sk int
  s_store_id char(16)
  s_closed_date_sk int
  s_store_name varchar(50)
  s_number_employees int
  s_city varchar(60)
table ds.customer_address
  ca_address_sk int
  ca_address_id char(16)
  ca_street_number char(10)
  ca_city varchar(60)
  ca_state char(2)
  ca_country varchar(20)
table ds.promotion
  p_promo_sk int
  p_promo_id char(16)
  p_start_date_sk int
  p_end_date_sk int
  p_item_sk int
  p_cost decimal(15,2)
  p_promo_name char(50)
";

    /// Chinook's CamelCase tables without declared keys.
    const CHINOOK: &str = "\
table main.Artist
  ArtistId int
  Name text
table main.Album
  AlbumId int
  Title text
  ArtistId int
table main.Genre
  GenreId int
  Name text
table main.MediaType
  MediaTypeId int
  Name text
table main.Track
  TrackId int
  Name text
  AlbumId int
  MediaTypeId int
  GenreId int
  Composer text
  Milliseconds int
  UnitPrice numeric(10,2)
table main.Playlist
  PlaylistId int
  Name text
table main.PlaylistTrack
  PlaylistId int
  TrackId int
table main.Employee
  EmployeeId int
  LastName text
  Title text
  ReportsTo int
table main.Customer
  CustomerId int
  FirstName text
  Company text
  SupportRepId int
table main.Invoice
  InvoiceId int
  CustomerId int
  InvoiceDate timestamp
  BillingAddress text
  BillingCity text
  BillingCountry text
  Total numeric(10,2)
table main.InvoiceLine
  InvoiceLineId int
  InvoiceId int
  TrackId int
  UnitPrice numeric(10,2)
  Quantity int
";

    /// Northwind as SQL Server ships it (`[Order Details]`), no declared keys.
    const NORTHWIND: &str = "\
table dbo.Customers
  CustomerID nchar(5)
  CompanyName nvarchar(40)
table dbo.Employees
  EmployeeID int
  LastName nvarchar(20)
  ReportsTo int
table dbo.Orders
  OrderID int
  CustomerID nchar(5)
  EmployeeID int
  ShipVia int
  OrderDate datetime
table dbo.Order_Details_
  OrderID int
  ProductID int
  UnitPrice money
  Quantity smallint
table dbo.Products
  ProductID int
  ProductName nvarchar(40)
  SupplierID int
  CategoryID int
table dbo.Suppliers
  SupplierID int
  CompanyName nvarchar(40)
table dbo.Categories
  CategoryID int
  CategoryName nvarchar(15)
";

    /// Northwind as the PostgreSQL port spells it.
    const NORTHWIND_SNAKE: &str = "\
table public.customers
  customer_id bpchar
  company_name varchar(40)
table public.orders
  order_id smallint
  customer_id bpchar
  employee_id smallint
table public.order_details
  order_id smallint
  product_id smallint
  unit_price real
table public.products
  product_id smallint
  product_name varchar(40)
";

    /// A dbt shop: staging views over raw tables, marts built from them, nothing declared.
    const DBT_SHOP: &str = "\
view analytics.stg_customers
  customer_id int
  first_name text
  last_name text
view analytics.stg_orders
  order_id int
  customer_id int
  order_date date
  status text
view analytics.stg_payments
  payment_id int
  order_id int
  payment_method text
  amount int
table analytics.dim_customers
  customer_id int
  first_name text
  number_of_orders int
table analytics.fct_orders
  order_id int
  customer_id int
  order_date date
  amount int
";

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
    fn never_joins_two_non_keys() {
        // `customers` declares no key and its id is not the conventional one.
        check(
            "table s.customers\n  code int\n  name text\ntable s.orders\n  customer_id int\n",
            &[],
        );
        // Key-suffixed columns that are keys nowhere join nothing, whatever the suffix.
        for suffix in ["id", "key", "sk", "code", "no", "num", "uuid"] {
            check(
                &format!(
                    "table s.a\n  id int pk\n  region_{suffix} int\ntable s.b\n  id int pk\n  region_{suffix} int\n"
                ),
                &[],
            );
        }
    }

    #[test]
    fn views_are_join_targets_like_tables() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            // A keyless view is identified by `id` or `<name>_id`, as a keyless table is.
            (
                "view s.customers\n  id int\ntable s.orders\n  id int pk\n  customer_id int\n",
                &["s.orders(customer_id) -> s.customers(id) IdSuffix 0.7"],
                &[],
            ),
            // dbt's staging and intermediate views: `stg_` and `int_` are warehouse prefixes.
            (
                "view s.stg_customers\n  customer_id int\n  first_name text\ntable s.orders\n  id int pk\n  customer_id int\n",
                &["s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.665"],
                &[],
            ),
            (
                "view s.int_orders\n  order_id int\ntable s.payments\n  id int pk\n  order_id int\n",
                &["s.payments(order_id) -> s.int_orders(order_id) IdSuffix 0.665"],
                &[],
            ),
            // A table and a view fit the same reference: both edges, the declared key first, no ambiguity.
            (
                "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(id) IdSuffix 0.9",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.598",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.9",
                ],
                &[],
            ),
            // The table is preferred even when it declares no key either.
            (
                "table s.customers\n  customer_id int\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(customer_id) IdSuffix 0.7",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.598",
                    "s.stg_customers(customer_id) -> s.customers(customer_id) IdSuffix 0.7",
                ],
                &[],
            ),
            // Two views and no table: ambiguous, as two tables are.
            (
                "view s.customers\n  id int\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  customer_id int\n",
                &[
                    "s.orders(customer_id) -> s.customers(id) IdSuffix 0.595",
                    "s.orders(customer_id) -> s.stg_customers(customer_id) IdSuffix 0.565",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.7",
                ],
                &["ambiguous_inference"],
            ),
            // A declared foreign key into a view is an edge like any other.
            (
                "view s.v_customers\n  id int\ntable s.orders\n  id int pk\n  customer_id int -> s.v_customers.id\n",
                &["s.orders(customer_id) -> s.v_customers(id) declared 1"],
                &[],
            ),
            // Self-references in views follow the table rules, onto the conventional key.
            (
                "view hr.stg_employees\n  employee_id int\n  manager_id int\n",
                &["hr.stg_employees(manager_id) -> hr.stg_employees(employee_id) SelfReference 0.553"],
                &[],
            ),
            (
                "view s.stg_categories\n  category_id int\n  parent_category_id int\n",
                &[
                    "s.stg_categories(parent_category_id) -> s.stg_categories(category_id) SelfReference 0.638",
                ],
                &[],
            ),
            // Views reference tables, as before.
            (
                "table s.customers\n  id int pk\nview s.recent_orders\n  customer_id int\n",
                &["s.recent_orders(customer_id) -> s.customers(id) IdSuffix 0.9"],
                &[],
            ),
        ];
        for (schema, edges, findings) in cases {
            check_findings(schema, edges, findings);
        }
    }

    #[test]
    fn key_suffixes_other_than_id() {
        let cases: &[(&str, &[&str])] = &[
            // `_key`, `_sk`, `_no`, `_num`, `_code` name a table whose key has the same kind of suffix.
            (
                "table w.customers\n  customer_key int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.customers(customer_key) KeySuffix 0.65"],
            ),
            (
                "table w.dim_customer\n  customer_key int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.dim_customer(customer_key) KeySuffix 0.617"],
            ),
            (
                "table w.dim_customer\n  customer_sk int\n  name text\ntable w.sales\n  customer_key int\n",
                &["w.sales(customer_key) -> w.dim_customer(customer_sk) KeySuffix 0.617"],
            ),
            (
                "table s.orders\n  order_no int\n  total int\ntable s.shipments\n  order_num int\n",
                &["s.shipments(order_num) -> s.orders(order_no) KeySuffix 0.65"],
            ),
            (
                "table s.statuses\n  status_code text\n  label text\ntable s.orders\n  id int pk\n  status_code text\n",
                &["s.orders(status_code) -> s.statuses(status_code) KeySuffix 0.65"],
            ),
            (
                "table s.customers\n  customer_key int unique\n  name text\ntable s.sales\n  id int pk\n  customerkey int\n",
                &["s.sales(customerkey) -> s.customers(customer_key) SharedKey 0.75"],
            ),
            // `_fk` only references, onto any key of the table it names.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  customer_fk int\n",
                &["s.orders(customer_fk) -> s.customers(id) KeySuffix 0.85"],
            ),
            // A declared key of the same name is the shared-key rule's, as before.
            (
                "table s.statuses\n  status_code text pk\ntable s.orders\n  id int pk\n  status_code text\n",
                &["s.orders(status_code) -> s.statuses(status_code) SharedKey 0.8"],
            ),
            // A code is not the id: `statuses` is keyed by `id`, its `status_code` is no key.
            (
                "table s.statuses\n  id int pk\n  status_code int\ntable s.orders\n  id int pk\n  status_code int\n",
                &[],
            ),
            // Nor is a `_key` an `id`.
            (
                "table s.customers\n  id int pk\ntable s.sales\n  id int pk\n  customer_key int\n",
                &[],
            ),
            // `notes_no` is a number, not a reference: no `notes` table, or one keyed by `id`.
            ("table s.orders\n  id int pk\n  notes_no int\n", &[]),
            (
                "table s.notes\n  id int pk\n  body text\ntable s.orders\n  id int pk\n  notes_no int\n",
                &[],
            ),
            // `_fk` is never a target.
            (
                "table s.customers\n  customer_fk int\n  name text\ntable s.orders\n  id int pk\n  customer_fk int\n",
                &[],
            ),
            // The types must be join-compatible.
            (
                "table w.customers\n  customer_key int\n  name text\ntable w.sales\n  customer_key boolean\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
        // Two relations of the same entity: ambiguous, with a finding, as for `_id`.
        check_findings(
            "table w.customers\n  customer_key int\ntable w.dim_customer\n  customer_key int\n\
             table w.sales\n  customer_key int\n",
            &[
                "w.dim_customer(customer_key) -> w.customers(customer_key) KeySuffix 0.65",
                "w.sales(customer_key) -> w.customers(customer_key) KeySuffix 0.553",
                "w.sales(customer_key) -> w.dim_customer(customer_key) KeySuffix 0.525",
            ],
            &["ambiguous_inference"],
        );
    }

    #[test]
    fn abbreviated_stems_name_one_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  cust_id int\n",
                &["s.orders(cust_id) -> s.customers(id) Abbreviation 0.8"],
            ),
            (
                "table s.employees\n  emp_no int\n  name text\ntable s.salaries\n  emp_no int\n  amount int\n",
                &["s.salaries(emp_no) -> s.employees(emp_no) Abbreviation 0.6"],
            ),
            (
                "table s.products\n  product_code text pk\ntable s.order_lines\n  id int pk\n  prod_code text\n",
                &["s.order_lines(prod_code) -> s.products(product_code) Abbreviation 0.8"],
            ),
            (
                "table s.departments\n  dept_no text\n  name text\ntable s.staff\n  id int pk\n  dept_no text\n",
                &["s.staff(dept_no) -> s.departments(dept_no) Abbreviation 0.6"],
            ),
            // With a role before the abbreviation.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  billing_cust_id int\n",
                &["s.orders(billing_cust_id) -> s.customers(id) Abbreviation 0.6"],
            ),
            // A table and its staging view are one entity: the table is preferred.
            (
                "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  cust_id int\n",
                &[
                    "s.orders(cust_id) -> s.customers(id) Abbreviation 0.8",
                    "s.orders(cust_id) -> s.stg_customers(customer_id) Abbreviation 0.513",
                    "s.stg_customers(customer_id) -> s.customers(id) IdSuffix 0.9",
                ],
            ),
            // Two entities fit (`customers`, `custodians`): too weak to choose, nothing.
            (
                "table s.customers\n  id int pk\ntable s.custodians\n  id int pk\ntable s.orders\n  id int pk\n  cust_id int\n",
                &[],
            ),
            // Fewer than three letters abbreviate nothing.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  id int pk\n  cu_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }

    #[test]
    fn keys_that_differ_only_by_case_or_separator_meet() {
        let sources = [
            ("customer_id", false),
            ("CustomerID", false),
            ("customerId", false),
            ("CUSTOMER_ID", false),
            ("customerid", true),
            ("CUSTOMERID", true),
        ];
        let targets = ["id", "customer_id", "CustomerID", "customerid", "CUSTOMER_ID"];
        for (source, glued) in sources {
            for target in targets {
                for (declared, confidence) in [(" pk", 0.9), ("", 0.7)] {
                    let schema = format!(
                        "table s.Customers\n  {target} int{declared}\n  Name text\ntable s.orders\n  id int pk\n  {source} int\n"
                    );
                    let confidence = if glued { confidence * 0.9 } else { confidence };
                    check(
                        &schema,
                        &[&format!(
                            "s.orders({source}) -> s.Customers({target}) IdSuffix {}",
                            round3(confidence)
                        )],
                    );
                }
            }
        }
    }

    #[test]
    fn table_prefixed_columns_join_by_their_stems() {
        let cases: &[(&str, &[&str])] = &[
            // TPC-H: `o_custkey` and `c_custkey` meet as `custkey`; `cust` abbreviates `customer`.
            (
                "table h.customer\n  c_custkey int\n  c_name text\n  c_comment text\n\
                 table h.orders\n  o_orderkey int\n  o_custkey int\n  o_comment text\n",
                &["h.orders(o_custkey) -> h.customer(c_custkey) ColumnPrefix 0.63"],
            ),
            // A declared primary key makes it the shared-key rule's, as for unprefixed names.
            (
                "table h.customer\n  c_custkey int pk\n  c_name text\n\
                 table h.orders\n  o_orderkey int\n  o_custkey int\n  o_comment text\n",
                &["h.orders(o_custkey) -> h.customer(c_custkey) SharedKey 0.8"],
            ),
            // TPC-DS: surrogate keys, a role (`sold`) before the entity and `_dim` after the table's.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.store_sales\n  ss_sold_date_sk int\n  ss_customer_sk int\n  ss_quantity int\n\
                 table ds.customer\n  c_customer_sk int\n  c_customer_id char(16)\n  c_name text\n",
                &[
                    "ds.store_sales(ss_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.7",
                    "ds.store_sales(ss_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            // A prefixed `_id` onto an unprefixed table's `id`.
            (
                "table s.customers\n  id int pk\ntable s.orders\n  o_id int\n  o_customer_id int\n  o_total int\n",
                &["s.orders(o_customer_id) -> s.customers(id) ColumnPrefix 0.85"],
            ),
            // `x_` is not the table's prefix (orders starts with `o`): its columns are read whole, and
            // `x_custkey` is no key name.
            (
                "table s.orders\n  x_custkey int\n  x_comment text\ntable s.customer\n  c_custkey int\n  c_name text\n",
                &[],
            ),
            // A stem that names no table, and columns that name none of their own tables: nothing.
            (
                "table h.orders\n  o_orderkey int\n  o_clerkkey int\n  o_comment text\n",
                &[],
            ),
            (
                "table h.customer\n  c_custkey int\n  c_nationkey int\n  c_name text\n\
                 table h.supplier\n  s_suppkey int\n  s_nationkey int\n  s_name text\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }

    #[test]
    fn composite_keys_make_one_edge() {
        let cases: &[(&str, &[&str])] = &[
            // A declared two-column primary key, matched column for column without the column prefixes.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  ps_availqty int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_orderkey int\n  l_partkey int\n  l_suppkey int\n  l_quantity int\n",
                &["h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.85"],
            ),
            // Unprefixed names onto a declared unique pair.
            (
                "table s.order_lines\n  id int pk\n  order_id int\n  line_no int\n  unique (order_id, line_no)\n\
                 table s.returns\n  id int pk\n  order_id int\n  line_no int\n",
                &["s.returns(order_id,line_no) -> s.order_lines(order_id,line_no) CompositeKey 0.8"],
            ),
            // By convention: a keyless table named after its two key columns (`part` + `supp`); neither
            // half alone is its key.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  ps_comment text\n\
                 table h.lineitem\n  l_partkey int\n  l_suppkey int\n  l_comment text\n",
                &["h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.7"],
            ),
            // One of the two columns, or a pair whose types do not join: nothing.
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_partkey int\n  l_quantity int\n  l_comment text\n",
                &[],
            ),
            (
                "table h.partsupp\n  ps_partkey int\n  ps_suppkey int\n  pk (ps_partkey, ps_suppkey)\n\
                 table h.lineitem\n  l_partkey int\n  l_suppkey boolean\n  l_comment text\n",
                &[],
            ),
            // A key on both sides (1:1) is not inferred.
            (
                "table s.order_lines\n  order_id int\n  line_no int\n  pk (order_id, line_no)\n\
                 table s.line_notes\n  order_id int\n  line_no int\n  pk (order_id, line_no)\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check(schema, edges);
        }
    }

    #[test]
    fn reasons_say_which_names_matched() {
        let reasons = |schema: &str| -> Vec<String> {
            let (catalog, _) = Catalog::build(outline::parse(schema).expect("outline parses"));
            catalog.edges().iter().map(|e| e.reason.clone()).collect()
        };
        assert_eq!(
            reasons(TPCH)
                .into_iter()
                .filter(|r| r.contains("custkey") || r.contains("partsupp"))
                .collect::<Vec<_>>(),
            vec![
                "(l_partkey, l_suppkey) match (ps_partkey, ps_suppkey), the key by naming convention (no declared \
                 primary key) of partsupp, column for column; partsupp is named after the entities of its two key \
                 columns; compared without the column prefixes",
                "o_custkey without its column prefix `o_` and c_custkey without its column prefix `c_` read alike \
                 (cust_key); `cust` names table customer (`cust` abbreviates it); customer.c_custkey is its key by \
                 naming convention (no declared primary key)",
            ]
        );
        assert_eq!(
            reasons(
                "table s.customers\n  id int pk\nview s.stg_customers\n  customer_id int\n\
                 table s.orders\n  id int pk\n  cust_id int\n"
            ),
            vec![
                "cust_id names table customers (`cust` abbreviates it); customers.id is its primary key",
                "cust_id names table stg_customers (`cust` abbreviates it); stg_customers.customer_id is its key by \
                 naming convention (no declared primary key); matched without the table's prefix; a view, and table \
                 customers fits too",
                "customer_id names table customers; customers.id is its primary key",
            ]
        );
    }

    #[test]
    fn tpch_without_declared_keys_has_its_standard_joins_and_no_others() {
        check_findings(
            TPCH,
            &[
                "h.customer(c_nationkey) -> h.nation(n_nationkey) ColumnPrefix 0.7",
                "h.lineitem(l_orderkey) -> h.orders(o_orderkey) ColumnPrefix 0.7",
                "h.lineitem(l_partkey) -> h.part(p_partkey) ColumnPrefix 0.7",
                "h.lineitem(l_partkey,l_suppkey) -> h.partsupp(ps_partkey,ps_suppkey) CompositeKey 0.7",
                "h.lineitem(l_suppkey) -> h.supplier(s_suppkey) ColumnPrefix 0.63",
                "h.nation(n_regionkey) -> h.region(r_regionkey) ColumnPrefix 0.7",
                "h.orders(o_custkey) -> h.customer(c_custkey) ColumnPrefix 0.63",
                "h.partsupp(ps_partkey) -> h.part(p_partkey) ColumnPrefix 0.7",
                "h.partsupp(ps_suppkey) -> h.supplier(s_suppkey) ColumnPrefix 0.63",
                "h.supplier(s_nationkey) -> h.nation(n_nationkey) ColumnPrefix 0.7",
            ],
            &[],
        );
    }

    #[test]
    fn tpcds_surrogate_keys_join_their_dimensions() {
        check_findings(
            TPCDS,
            &[
                "ds.customer(c_current_addr_sk) -> ds.customer_address(ca_address_sk) ColumnPrefix 0.473",
                "ds.customer(c_first_sales_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.customer(c_first_shipto_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.promotion(p_end_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.promotion(p_start_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.promotion(p_item_sk) -> ds.item(i_item_sk) ColumnPrefix 0.7",
                "ds.store(s_closed_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.store_sales(ss_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.7",
                "ds.store_sales(ss_addr_sk) -> ds.customer_address(ca_address_sk) ColumnPrefix 0.63",
                "ds.store_sales(ss_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                "ds.store_sales(ss_item_sk) -> ds.item(i_item_sk) ColumnPrefix 0.7",
                "ds.store_sales(ss_promo_sk) -> ds.promotion(p_promo_sk) ColumnPrefix 0.63",
                "ds.store_sales(ss_store_sk) -> ds.store(s_store_sk) ColumnPrefix 0.7",
            ],
            &[],
        );
    }

    #[test]
    fn chinook_camel_case_joins_by_inference() {
        check_findings(
            CHINOOK,
            &[
                "main.Album(ArtistId) -> main.Artist(ArtistId) IdSuffix 0.7",
                "main.Customer(SupportRepId) -> main.Employee(EmployeeId) RoleName 0.6",
                "main.Employee(ReportsTo) -> main.Employee(EmployeeId) SelfReference 0.553",
                "main.Invoice(CustomerId) -> main.Customer(CustomerId) IdSuffix 0.7",
                "main.InvoiceLine(InvoiceId) -> main.Invoice(InvoiceId) IdSuffix 0.7",
                "main.InvoiceLine(TrackId) -> main.Track(TrackId) IdSuffix 0.7",
                "main.PlaylistTrack(PlaylistId) -> main.Playlist(PlaylistId) IdSuffix 0.7",
                "main.PlaylistTrack(TrackId) -> main.Track(TrackId) IdSuffix 0.7",
                "main.Track(AlbumId) -> main.Album(AlbumId) IdSuffix 0.7",
                "main.Track(GenreId) -> main.Genre(GenreId) IdSuffix 0.7",
                "main.Track(MediaTypeId) -> main.MediaType(MediaTypeId) IdSuffix 0.7",
            ],
            &[],
        );
    }

    #[test]
    fn northwind_joins_by_inference_in_both_spellings() {
        check_findings(
            NORTHWIND,
            &[
                "dbo.Employees(ReportsTo) -> dbo.Employees(EmployeeID) SelfReference 0.553",
                "dbo.Order Details(OrderID) -> dbo.Orders(OrderID) IdSuffix 0.7",
                "dbo.Order Details(ProductID) -> dbo.Products(ProductID) IdSuffix 0.7",
                "dbo.Orders(CustomerID) -> dbo.Customers(CustomerID) IdSuffix 0.7",
                "dbo.Orders(EmployeeID) -> dbo.Employees(EmployeeID) IdSuffix 0.7",
                "dbo.Products(CategoryID) -> dbo.Categories(CategoryID) IdSuffix 0.7",
                "dbo.Products(SupplierID) -> dbo.Suppliers(SupplierID) IdSuffix 0.7",
            ],
            &[],
        );
        check_findings(
            NORTHWIND_SNAKE,
            &[
                "public.order_details(order_id) -> public.orders(order_id) IdSuffix 0.7",
                "public.order_details(product_id) -> public.products(product_id) IdSuffix 0.7",
                "public.orders(customer_id) -> public.customers(customer_id) IdSuffix 0.7",
            ],
            &[],
        );
    }

    #[test]
    fn dbt_shop_joins_marts_and_staging_views() {
        check_findings(
            DBT_SHOP,
            &[
                "analytics.dim_customers(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.665",
                "analytics.fct_orders(customer_id) -> analytics.dim_customers(customer_id) IdSuffix 0.665",
                "analytics.fct_orders(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.598",
                "analytics.fct_orders(order_id) -> analytics.stg_orders(order_id) IdSuffix 0.665",
                "analytics.stg_orders(customer_id) -> analytics.dim_customers(customer_id) IdSuffix 0.665",
                "analytics.stg_orders(customer_id) -> analytics.stg_customers(customer_id) IdSuffix 0.598",
                "analytics.stg_payments(order_id) -> analytics.fct_orders(order_id) IdSuffix 0.665",
                "analytics.stg_payments(order_id) -> analytics.stg_orders(order_id) IdSuffix 0.598",
            ],
            &[],
        );
    }
    #[test]
    fn initialisms_name_tables_of_several_words() {
        let cases: &[(&str, &[&str])] = &[
            // TPC-DS: `hdemo` is `h` + `demo(graphics)`, also after a role word (`current`).
            (
                "table ds.household_demographics\n  hd_demo_sk int\n  hd_buy_potential text\n  hd_dep_count int\n\
                 table ds.store_sales\n  ss_hdemo_sk int\n  ss_quantity int\n  ss_net_paid int\n\
                 table ds.customer\n  c_customer_sk int\n  c_current_hdemo_sk int\n  c_name text\n",
                &[
                    "ds.customer(c_current_hdemo_sk) -> ds.household_demographics(hd_demo_sk) ColumnPrefix 0.473",
                    "ds.store_sales(ss_hdemo_sk) -> ds.household_demographics(hd_demo_sk) ColumnPrefix 0.63",
                ],
            ),
            // Unprefixed, onto a declared key.
            (
                "table s.customer_demographics\n  id int pk\n  gender text\ntable s.sales\n  id int pk\n  cdemo_id int\n",
                &["s.sales(cdemo_id) -> s.customer_demographics(id) Abbreviation 0.8"],
            ),
            // Letters that do not begin the last word, a single-word table, two entities with the same
            // initialism: nothing.
            (
                "table s.household_demographics\n  id int pk\ntable s.sales\n  id int pk\n  hdems_id int\n",
                &[],
            ),
            (
                "table s.demographics\n  id int pk\ntable s.sales\n  id int pk\n  hdemo_id int\n",
                &[],
            ),
            (
                "table s.household_demographics\n  id int pk\ntable s.home_demographics\n  id int pk\n\
                 table s.sales\n  id int pk\n  hdemo_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }

    #[test]
    fn role_names_reach_the_table_they_describe() {
        let cases: &[(&str, &[&str])] = &[
            // Northwind: `ShipVia` is whoever ships, the shippers.
            (
                "table dbo.Shippers\n  ShipperID int\n  CompanyName text\ntable dbo.Orders\n  OrderID int\n  ShipVia int\n",
                &["dbo.Orders(ShipVia) -> dbo.Shippers(ShipperID) RoleName 0.6"],
            ),
            // A person role outside a table of people points at the one table of people.
            (
                "table s.employees\n  id int pk\n  name text\ntable s.accounts\n  id int pk\n  sales_rep_id int\n",
                &["s.accounts(sales_rep_id) -> s.employees(id) RoleName 0.75"],
            ),
            // Two tables of people: nothing (and no finding).
            (
                "table s.employees\n  id int pk\ntable s.users\n  id int pk\ntable s.accounts\n  id int pk\n  rep_id int\n",
                &[],
            ),
            // Inside a table of people, in a table with no people table beside it, with unjoinable types,
            // or a `via` no table is named for: nothing.
            ("table s.employees\n  id int pk\n  sales_rep_id int\n", &[]),
            (
                "table s.accounts\n  id int pk\n  rep_id int\ntable s.regions\n  id int pk\n",
                &[],
            ),
            (
                "table s.employees\n  id int pk\ntable s.accounts\n  id int pk\n  rep_id boolean\n",
                &[],
            ),
            (
                "table s.ships\n  ship_id int\n  name text\ntable s.orders\n  id int pk\n  ship_via int\n  contact_via text\n",
                &[],
            ),
            // `manager` stays a self-reference role only: a department's manager is not inferred.
            (
                "table s.employees\n  id int pk\ntable s.departments\n  id int pk\n  manager_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }

    #[test]
    fn natural_keys_join_where_they_are_the_key_on_one_side() {
        let cases: &[(&str, &[&str])] = &[
            // A keyless table identified by its natural key; the other side has its own `id`.
            (
                "table raw.raw_products\n  sku text\n  name text\ntable raw.raw_items\n  id int\n  order_id int\n  sku text\n",
                &["raw.raw_items(sku) -> raw.raw_products(sku) NaturalKey 0.6"],
            ),
            // Declared, and a two-word natural key.
            (
                "table s.books\n  isbn text pk\n  title text\ntable s.reviews\n  id int pk\n  isbn text\n\
                 table s.countries\n  iso_code text unique\n  name text\ntable s.cities\n  id int pk\n  iso_code text\n",
                &[
                    "s.cities(iso_code) -> s.countries(iso_code) SharedKey 0.75",
                    "s.reviews(isbn) -> s.books(isbn) NaturalKey 0.8",
                ],
            ),
            // A key on neither side, on both sides, on two tables, with unjoinable types, or a word that is
            // not on the list: nothing.
            (
                "table s.products\n  id int pk\n  sku text\ntable s.items\n  id int pk\n  sku text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.product_details\n  sku text pk\n  notes text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.archived_products\n  sku text pk\ntable s.items\n  id int pk\n  sku text\n",
                &[],
            ),
            (
                "table s.products\n  sku text pk\ntable s.items\n  id int pk\n  sku boolean\n",
                &[],
            ),
            (
                "table s.accounts\n  email text pk\ntable s.logins\n  id int pk\n  email text\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }

    #[test]
    fn a_facts_own_event_ranks_first_among_its_role_keys() {
        let cases: &[(&str, &[&str])] = &[
            // `sold` is what `web_sales` records; `ship` ranks below it.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.web_sales\n  ws_sold_date_sk int\n  ws_ship_date_sk int\n  ws_quantity int\n",
                &[
                    "ds.web_sales(ws_ship_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.474",
                    "ds.web_sales(ws_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            // Not a fact table (`promotion`), or no role names the event (`bill`/`ship` customer): ties stay.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.promotion\n  p_promo_sk int\n  p_start_date_sk int\n  p_end_date_sk int\n",
                &[
                    "ds.promotion(p_end_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                    "ds.promotion(p_start_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            (
                "table ds.customer\n  c_customer_sk int\n  c_name text\n  c_email text\n\
                 table ds.web_sales\n  ws_bill_customer_sk int\n  ws_ship_customer_sk int\n  ws_quantity int\n",
                &[
                    "ds.web_sales(ws_bill_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.525",
                    "ds.web_sales(ws_ship_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.525",
                ],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
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
