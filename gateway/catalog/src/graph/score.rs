//! Confidence scoring: each rule's base confidence by the strength of the referenced key, the modifiers
//! multiplied in, and the candidate edge that carries a confidence with its reason.

use super::{InferenceRule, KeyStrength};

/// Base confidences by the strength of the referenced key: primary, unique, conventional.
type Bases = [f32; 3];

pub(super) fn base(bases: Bases, key: KeyStrength) -> f32 {
    match key {
        KeyStrength::Primary => bases[0],
        KeyStrength::Unique => bases[1],
        KeyStrength::Conventional => bases[2],
        KeyStrength::None => 0.0,
    }
}

/// `_id`/`_uuid` naming a table: the strongest convention.
pub(super) const ID_SUFFIX: Bases = [0.9, 0.85, 0.7];
/// `_key`, `_sk`, `_fk`, `_no`, `_num`, `_code` naming a table: a shade weaker, because `_code` and `_no`
/// are also used for attributes (`zip_code`, `phone_no`).
pub(super) const KEY_SUFFIX: Bases = [0.85, 0.8, 0.65];
/// A stem that abbreviates a table's name (`cust_id`): weaker again, as abbreviations collide more often.
pub(super) const ABBREVIATION: Bases = [0.8, 0.75, 0.6];
/// Table-prefixed columns (`o_custkey` → `c_custkey`): the stems agree once both prefixes are dropped and
/// the target's stem names its own table, two signals where the suffix rules have one.
pub(super) const COLUMN_PREFIX: Bases = [0.85, 0.8, 0.7];
/// Every column of a multi-column key matched by name.
pub(super) const COMPOSITE_KEY: Bases = [0.85, 0.8, 0.7];
pub(super) const SHARED_KEY_PRIMARY: f32 = 0.8;
pub(super) const SHARED_KEY_UNIQUE: f32 = 0.75;
pub(super) const SELF_STRUCTURAL: f32 = 0.7;
pub(super) const SELF_PARENT_ENTITY: f32 = 0.75;
pub(super) const SELF_PERSON_ROLE: f32 = 0.65;
/// A role that names its target only through what it does (`ShipVia`) or who holds it (`SupportRepId`).
pub(super) const ROLE_NAME: Bases = [0.75, 0.7, 0.6];
/// A natural key (`sku`) that is the key of one table: the value is an identifier by definition.
pub(super) const NATURAL_KEY: Bases = [0.8, 0.75, 0.6];
/// Modifiers, multiplied in.
pub(super) const GLUED: f32 = 0.9;
pub(super) const VIA_TABLE_PREFIX: f32 = 0.95;
pub(super) const ROLE_PREFIX: f32 = 0.75;
pub(super) const CROSS_SCHEMA: f32 = 0.8;
pub(super) const AMBIGUOUS: f32 = 0.85;
/// A `ColumnPrefix` stem that abbreviates the table's name (`custkey` → `customer`).
pub(super) const ABBREVIATED: f32 = 0.9;
/// A view that fits a reference a table fits too: the table is preferred, the view kept as an option.
pub(super) const VIEW_BESIDE_TABLE: f32 = 0.9;
/// A role-named key of a fact table whose sibling names the fact's own event (`ws_ship_date_sk` beside
/// `ws_sold_date_sk` in `web_sales`): still a join, ranked below the event's.
pub(super) const OTHER_THAN_EVENT: f32 = 0.95;

/// A proposed inferred edge before deduplication.
pub(super) struct Candidate {
    pub(super) from: usize,
    pub(super) from_columns: Vec<usize>,
    pub(super) to: usize,
    pub(super) to_columns: Vec<usize>,
    pub(super) rule: InferenceRule,
    pub(super) confidence: f32,
    pub(super) reason: String,
    /// Set for composite edges; single-column edges take the columns' own key strengths.
    pub(super) keys: Option<(KeyStrength, KeyStrength)>,
    /// The column's name starts with role words before the entity (`ws_sold_date_sk`).
    pub(super) role: bool,
}

impl Candidate {
    pub(super) fn single(
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

pub(super) fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

pub(super) fn push_types_note(reason: &mut String, factor: f32, a: &str, b: &str) {
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

#[cfg(test)]
mod tests {
    use crate::graph::tests::check;

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
}
