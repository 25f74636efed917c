//! Type heuristics over the engines' own type spellings: which family a type belongs to and which
//! aggregates every engine allows on it.

/// The family of a type, for schema statistics: `boolean`, `integer`, `decimal`, `temporal`, `text` or
/// `other`.
pub(super) fn type_family(data_type: &str) -> &'static str {
    let t = data_type.to_ascii_lowercase();
    // Composite types first: `STRUCT(a INTEGER)` or `INTEGER[]` hold integers but are not numbers, and
    // `enum(...)` would otherwise match `num`.
    if is_composite(&t) {
        "other"
    } else if t.starts_with("enum") {
        "text"
    } else if t.contains("bool") || t == "bit" || t == "tinyint(1)" {
        "boolean"
    } else if t.contains("int") && !t.contains("interval") || t.contains("serial") {
        "integer"
    } else if t.contains("dec")
        || t.contains("num")
        || t.contains("real")
        || t.contains("double")
        || t.contains("float")
        || t.contains("money")
    {
        "decimal"
    } else if t.contains("date") || t.contains("time") {
        "temporal"
    } else if t.contains("char")
        || t.contains("text")
        || t.contains("string")
        || t.contains("clob")
        || t.contains("uuid")
        || t.contains("enum")
    {
        "text"
    } else {
        "other"
    }
}

/// What aggregates a column's type allows everywhere: PostgreSQL has no MIN of booleans and no equality
/// on `json`, so those only get counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Aggregates {
    Ordered,
    Distinct,
    CountOnly,
}

pub(super) fn aggregates(data_type: &str) -> Aggregates {
    let t = data_type.to_ascii_lowercase();
    if t.contains("json")
        || t.contains("blob")
        || t.contains("bytea")
        || t.contains("binary")
        || t.contains("[]")
        || t.contains("struct")
        || t.contains("map(")
        || t.contains("xml")
        || t.contains("geometry")
        || t.contains("union")
    {
        Aggregates::CountOnly
    } else if t.contains("bool") || t.contains("uuid") {
        Aggregates::Distinct
    } else {
        Aggregates::Ordered
    }
}

pub(super) fn is_date_type(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.contains("date") || t.contains("timestamp")
}

pub(super) fn is_text_type(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    (t.contains("char") || t.contains("text") || t.contains("string") || t.starts_with("enum"))
        && !is_composite(&t)
}

/// Lists, structs, maps and unions (DuckDB's and PostgreSQL's spellings, lower case): values made of
/// other values, whatever types they contain.
fn is_composite(t: &str) -> bool {
    t.contains("[]") || t.starts_with("struct") || t.starts_with("map(") || t.starts_with("union")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_their_family_and_aggregates() {
        // (engine spelling, family, aggregates, date-like, text-like)
        let table = [
            ("INTEGER", "integer", Aggregates::Ordered, false, false),
            ("bigserial", "integer", Aggregates::Ordered, false, false),
            ("INTERVAL", "other", Aggregates::Ordered, false, false),
            ("tinyint(1)", "boolean", Aggregates::Ordered, false, false),
            ("BOOLEAN", "boolean", Aggregates::Distinct, false, false),
            ("DECIMAL(18,3)", "decimal", Aggregates::Ordered, false, false),
            ("double precision", "decimal", Aggregates::Ordered, false, false),
            (
                "TIMESTAMP WITH TIME ZONE",
                "temporal",
                Aggregates::Ordered,
                true,
                false,
            ),
            ("date", "temporal", Aggregates::Ordered, true, false),
            ("character varying(20)", "text", Aggregates::Ordered, false, true),
            ("enum('a','b')", "text", Aggregates::Ordered, false, true),
            ("UUID", "text", Aggregates::Distinct, false, false),
            ("VARCHAR[]", "other", Aggregates::CountOnly, false, false),
            ("jsonb", "other", Aggregates::CountOnly, false, false),
            ("STRUCT(a INTEGER)", "other", Aggregates::CountOnly, false, false),
            ("bytea", "other", Aggregates::CountOnly, false, false),
            (
                "MAP(VARCHAR, INTEGER)",
                "other",
                Aggregates::CountOnly,
                false,
                false,
            ),
            ("INTEGER[]", "other", Aggregates::CountOnly, false, false),
        ];
        let got: Vec<_> = table
            .iter()
            .map(|&(spelling, ..)| {
                (
                    spelling,
                    type_family(spelling),
                    aggregates(spelling),
                    is_date_type(spelling),
                    is_text_type(spelling),
                )
            })
            .collect();
        assert_eq!(got, table);
    }
}
