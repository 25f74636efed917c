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
//!
//! The parts: `build` runs the rules and keeps the best edge for each pair of column lists; `declared`
//! turns foreign keys into edges; `tables`, `lookup` and `keys` read each relation's names and keys;
//! `targets` chooses among the relations a name found; `score` holds every confidence; and one file per
//! family of rules: `id_suffix`, `key_suffix`, `composite`, `shared` and `roles`.

mod build;
mod composite;
mod declared;
mod id_suffix;
mod key_suffix;
mod keys;
mod lookup;
mod roles;
mod score;
mod shared;
mod tables;
mod targets;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::snapshot::{DeclaredKey, TableId};

pub(crate) use build::build;

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
