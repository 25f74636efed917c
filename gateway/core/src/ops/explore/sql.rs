//! The statements the exploration tools build, per dialect: pure functions of introspected names (quoted
//! for the dialect) and checked agent text, tested to pass governance on every engine.

use sluice_catalog::{Column, Table};
use sluice_dialect::Dialect;

use super::dates::{DatePlan, column_types};
use super::link::{SAMPLE_DISTINCT, SAMPLE_ROWS_SCANNED};
use super::types::{Aggregates, aggregates};
use crate::service::ToolError;

/// The agent's pattern as a string literal for the dialect (escaping is the dialect's, see
/// `sluice_dialect::Dialect::string_literal`).
fn literal(dialect: Dialect, text: &str) -> Result<String, ToolError> {
    dialect
        .string_literal(text)
        .map_err(|_| ToolError::invalid("the pattern must not contain NUL characters"))
}

/// `explore_column`'s counts: rows, non-NULL values and, where every engine can compare the type,
/// distinct values (`NULL` otherwise).
pub(super) fn column_counts(dialect: Dialect, table: &Table, column: &Column) -> String {
    let q = dialect.quoting();
    let name = q.ident(&column.name);
    let distinct = if aggregates(&column.data_type) == Aggregates::CountOnly {
        "NULL".to_owned()
    } else {
        format!("COUNT(DISTINCT {name})")
    };
    format!(
        "SELECT COUNT(*), COUNT({name}), {distinct} FROM {}",
        table.id.sql(q)
    )
}

/// `explore_column`'s values: the `fetch` most frequent non-NULL values with their counts, those
/// containing `pattern` (case-insensitive, `%` and `_` wildcards) when it is not empty. The pattern is agent
/// text and reaches the statement only as a string literal.
pub(super) fn column_values(
    dialect: Dialect,
    table: &Table,
    column: &Column,
    pattern: &str,
    fetch: u64,
) -> Result<String, ToolError> {
    let q = dialect.quoting();
    let name = q.ident(&column.name);
    let mut filter = String::new();
    if !pattern.is_empty() {
        let pattern = literal(dialect, &format!("%{}%", pattern.to_lowercase()))?;
        filter = format!(" AND LOWER({}) LIKE {pattern}", dialect.cast_to_text(&name));
    }
    Ok(format!(
        "SELECT {name}, COUNT(*) FROM {} WHERE {name} IS NOT NULL{filter} \
         GROUP BY {name} ORDER BY COUNT(*) DESC, {name} LIMIT {fetch}",
        table.id.sql(q)
    ))
}

/// `explore_columns`' statistics, one statement for every column: `COUNT(*)`, then per column its
/// `COUNT`, `COUNT(DISTINCT)`, `MIN` and `MAX` as its type allows; the layout says which each column got.
pub(super) fn columns_stats(
    dialect: Dialect,
    table: &Table,
    columns: &[&Column],
) -> (String, Vec<Aggregates>) {
    let q = dialect.quoting();
    let mut exprs = vec!["COUNT(*)".to_owned()];
    let mut layout = Vec::with_capacity(columns.len());
    for c in columns {
        let name = q.ident(&c.name);
        let kind = aggregates(&c.data_type);
        exprs.push(format!("COUNT({name})"));
        if kind != Aggregates::CountOnly {
            exprs.push(format!("COUNT(DISTINCT {name})"));
        }
        if kind == Aggregates::Ordered {
            exprs.push(format!("MIN({name})"));
            exprs.push(format!("MAX({name})"));
        }
        layout.push(kind);
    }
    (
        format!("SELECT {} FROM {}", exprs.join(", "), table.id.sql(q)),
        layout,
    )
}

/// The first `rows` rows of some columns of a table, to pick sample values from.
pub(super) fn first_rows(dialect: Dialect, table: &Table, columns: &[&Column], rows: u64) -> String {
    let q = dialect.quoting();
    let names: Vec<String> = columns.iter().map(|c| q.ident(&c.name)).collect();
    format!(
        "SELECT {} FROM {} LIMIT {rows}",
        names.join(", "),
        table.id.sql(q)
    )
}

/// `compare_join_types`' statement: each side (a table and the conditions already checked to use only its
/// own columns) filtered before the join, then the row counts of both sides, of the inner join and of the
/// rows without a match on either side. `on` joins `a` (left) to `b` (right) on quoted columns.
pub(super) fn join_counts(
    dialect: Dialect,
    (left, left_filters): (&Table, &[String]),
    (right, right_filters): (&Table, &[String]),
    on: &str,
) -> String {
    let q = dialect.quoting();
    let source = |table: &Table, alias: &str, filters: &[String]| {
        let mut sql = format!("SELECT * FROM {} AS {alias}", table.id.sql(q));
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        sql
    };
    format!(
        "WITH lhs AS ({}), rhs AS ({}) SELECT \
         (SELECT COUNT(*) FROM lhs), \
         (SELECT COUNT(*) FROM rhs), \
         (SELECT COUNT(*) FROM lhs AS a JOIN rhs AS b ON {on}), \
         (SELECT COUNT(*) FROM lhs AS a WHERE NOT EXISTS (SELECT 1 FROM rhs AS b WHERE {on})), \
         (SELECT COUNT(*) FROM rhs AS b WHERE NOT EXISTS (SELECT 1 FROM lhs AS a WHERE {on}))",
        source(left, "a", left_filters),
        source(right, "b", right_filters),
    )
}

/// Most tables in one boundaries statement: SQLite allows 500 `SELECT`s in one compound statement.
const TABLES_PER_STATEMENT: usize = 200;

/// Most output columns in one boundaries statement: PostgreSQL allows 1,664 select-list entries, SQLite
/// 2,000 result columns.
const OUTPUTS_PER_STATEMENT: usize = 1_000;

/// The output columns of a boundaries statement over some tables: the table's position and row count,
/// then a (min, max) pair per slot. A slot holds one data type (the engine's own spelling), so that every
/// `UNION ALL` branch puts values of one type in each output column; a type gets as many slots as the
/// table with most columns of that type needs.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Slots {
    /// `(data type, slots)` in order of first appearance.
    types: Vec<(String, usize)>,
}

impl Slots {
    pub(super) fn of<'a>(plans: impl IntoIterator<Item = &'a [String]>) -> Slots {
        let mut slots = Slots::default();
        for types in plans {
            slots.add(types);
        }
        slots
    }

    pub(super) fn add(&mut self, types: &[String]) {
        let mut counts: Vec<(&String, usize)> = Vec::new();
        for t in types {
            match counts.iter_mut().find(|(seen, _)| *seen == t) {
                Some((_, n)) => *n += 1,
                None => counts.push((t, 1)),
            }
        }
        for (t, n) in counts {
            match self.types.iter_mut().find(|(seen, _)| seen == t) {
                Some((_, max)) => *max = (*max).max(n),
                None => self.types.push((t.clone(), n)),
            }
        }
    }

    pub(super) fn width(&self) -> usize {
        2 + 2 * self.types.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// For each of a table's columns (by type), the output position of its min; its max follows.
    pub(super) fn positions(&self, types: &[String]) -> Vec<usize> {
        let mut used: Vec<usize> = vec![0; self.types.len()];
        types
            .iter()
            .map(|t| {
                let mut at = 2;
                for (i, (seen, n)) in self.types.iter().enumerate() {
                    if seen == t {
                        at += 2 * used[i];
                        used[i] += 1;
                        break;
                    }
                    at += 2 * n;
                }
                at
            })
            .collect()
    }
}

/// Splits the tables (given by their date columns' types) into consecutive runs that fit one statement
/// each. A table wider than the column limit gets a statement of its own.
pub(super) fn chunks(plans: &[Vec<String>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut slots = Slots::default();
    for (i, types) in plans.iter().enumerate() {
        let mut wider = Slots {
            types: slots.types.clone(),
        };
        wider.add(types);
        if i > start && (i - start >= TABLES_PER_STATEMENT || wider.width() > OUTPUTS_PER_STATEMENT) {
            out.push(start..i);
            start = i;
            wider = Slots::default();
            wider.add(types);
        }
        slots = wider;
    }
    if start < plans.len() {
        out.push(start..plans.len());
    }
    out
}

/// The statement reading the row count and each date column's min and max of several tables at once: a
/// `UNION ALL` of one aggregate row per table (`SELECT k, COUNT(*), MIN(a), MAX(a), … FROM t_k`), each
/// table scanned once, and every min and max in a slot of its own type (see [`Slots`]) so that it comes
/// back exactly as a direct `MIN`/`MAX` returns it (no cast to text, whose spelling differs per engine
/// and time zone). A slot a table does not fill is `NULL`, typed where the engine needs it: PostgreSQL
/// resolves `UNION` types pairwise and would make a column that starts with untyped `NULL`s text.
///
/// The statement carries its own `LIMIT` (one row per table) and is spelled as governance renders it, so
/// governance has nothing to rewrite and knows its rendering parses back without parsing it again: for 40
/// tables that halves the time governing the statement takes.
pub(super) fn boundaries_sql(dialect: Dialect, plans: &[DatePlan]) -> String {
    let q = dialect.quoting();
    let slots = Slots::of(
        plans
            .iter()
            .map(|p| column_types(p))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    );
    let null = |data_type: &str| dialect.null_of(data_type);
    plans
        .iter()
        .enumerate()
        .map(|(k, plan)| {
            let types = column_types(plan);
            let mut exprs = vec![String::new(); slots.width()];
            exprs[0] = format!("{k} AS k");
            exprs[1] = "COUNT(*) AS n".to_owned();
            for (c, at) in plan.columns.iter().zip(slots.positions(&types)) {
                let name = q.ident(&c.name);
                exprs[at] = format!("MIN({name})");
                exprs[at + 1] = format!("MAX({name})");
            }
            let mut at = 2;
            for (data_type, n) in &slots.types {
                for _ in 0..2 * n {
                    if exprs[at].is_empty() {
                        exprs[at] = null(data_type);
                    }
                    at += 1;
                }
            }
            format!("SELECT {} FROM {}", exprs.join(", "), plan.table.id.sql(q))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + &format!(" LIMIT {}", plans.len())
}

/// One statement reading up to [`SAMPLE_DISTINCT`] + 1 distinct values of each column, from the first
/// [`SAMPLE_ROWS_SCANNED`] rows of its table: branch `k` returns the values of `columns[k]`. Values are
/// cast to text so that every branch has the same types.
pub(super) fn samples_sql(
    dialect: Dialect,
    catalog: &sluice_catalog::Catalog,
    columns: &[(usize, usize)],
) -> String {
    let q = dialect.quoting();
    columns
        .iter()
        .enumerate()
        .map(|(k, &(t, c))| {
            let table = &catalog.tables()[t];
            let name = q.ident(&table.columns[c].name);
            format!(
                "SELECT {k} AS k, v FROM (SELECT DISTINCT {} AS v FROM (SELECT {name} AS v FROM {} LIMIT \
                 {SAMPLE_ROWS_SCANNED}) AS r{k} WHERE r{k}.v IS NOT NULL LIMIT {}) AS d{k}",
                dialect.cast_to_text(&format!("r{k}.v")),
                table.id.sql(q),
                SAMPLE_DISTINCT + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[cfg(test)]
mod tests {
    use super::super::link::SAMPLE_COLUMNS_PER_STATEMENT;
    use super::super::types::Aggregates;
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_catalog::TableKind;

    #[test]
    fn boundary_statements_respect_the_engines_limits() {
        let types = |spec: &[usize]| -> Vec<Vec<String>> {
            spec.iter().map(|&n| vec!["DATE".to_owned(); n]).collect()
        };
        let check = |plans: Vec<Vec<String>>, expected: &[(usize, usize)]| {
            let ranges: Vec<(usize, usize)> = chunks(&plans).into_iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(ranges, expected, "{plans:?}");
        };
        check(types(&[]), &[]);
        check(types(&[1, 2, 1]), &[(0, 3)]);
        // 501 tables: at most 200 SELECTs per statement (SQLite allows 500 in one compound statement).
        check(types(&[1; 501]), &[(0, 200), (200, 400), (400, 501)]);
        // Output columns: slots are shared, so width follows the widest table, not the sum.
        check(types(&[300, 300, 300]), &[(0, 3)]);
        check(types(&[300, 600]), &[(0, 1), (1, 2)]);
        // A table wider than the limit stands alone rather than being dropped.
        check(types(&[5, 600, 5]), &[(0, 1), (1, 2), (2, 3)]);
        // Different types take different slots: 300 DATE + 300 TIMESTAMP slots are too wide together.
        let mixed = vec![vec!["DATE".to_owned(); 300], vec!["TIMESTAMP".to_owned(); 300]];
        check(mixed, &[(0, 1), (1, 2)]);
    }

    #[test]
    fn slots_give_each_type_its_own_output_columns() {
        let t = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let plans = [
            t(&["date", "timestamp", "date"]),
            t(&["timestamp"]),
            t(&["timestamptz", "timestamp", "timestamp"]),
        ];
        let slots = Slots::of(plans.iter().map(Vec::as_slice));
        assert_eq!(
            slots.types,
            [
                ("date".to_owned(), 2),
                ("timestamp".to_owned(), 2),
                ("timestamptz".to_owned(), 1)
            ]
        );
        // k, n, then date (2 slots), timestamp (2), timestamptz (1): two columns per slot.
        assert_eq!(slots.width(), 12);
        assert_eq!(slots.positions(&plans[0]), [2, 6, 4]);
        assert_eq!(slots.positions(&plans[1]), [6]);
        assert_eq!(slots.positions(&plans[2]), [10, 6, 8]);
    }

    #[test]
    fn one_statement_reads_every_table_once() {
        use sluice_catalog::{Column, TableId};
        let tables = [
            Table::new(TableId::new("s", "odd name"), TableKind::Table)
                .with_column(Column::new("day\"s", "DATE")),
            Table::new(TableId::new("s", "orders"), TableKind::Table)
                .with_column(Column::new("id", "INTEGER"))
                .with_column(Column::new("ordered_at", "TIMESTAMP"))
                .with_column(Column::new("shipped_on", "DATE")),
        ];
        let plans: Vec<DatePlan> = tables.iter().map(DatePlan::of).collect();
        assert_eq!(
            boundaries_sql(Dialect::PostgreSql, &plans),
            "SELECT 0 AS k, COUNT(*) AS n, MIN(\"day\"\"s\"), MAX(\"day\"\"s\"), CAST(NULL AS TIMESTAMP), \
             CAST(NULL AS TIMESTAMP) FROM \"s\".\"odd name\" UNION ALL \
             SELECT 1 AS k, COUNT(*) AS n, MIN(\"shipped_on\"), MAX(\"shipped_on\"), MIN(\"ordered_at\"), \
             MAX(\"ordered_at\") FROM \"s\".\"orders\" LIMIT 2"
        );
        // MySQL and SQLite take untyped NULLs (their UNION types come from all branches at once).
        assert!(
            boundaries_sql(Dialect::MySql, &plans).contains("MAX(`day\"s`), NULL, NULL FROM `s`.`odd name`")
        );
        // Every dialect's governance accepts it as it is: nothing to rewrite under the cap the tool
        // passes (one row per table, plus one), and the text is its own rendering.
        for dialect in [
            Dialect::DuckDb,
            Dialect::PostgreSql,
            Dialect::MySql,
            Dialect::Sqlite,
        ] {
            let sql = boundaries_sql(dialect, &plans);
            let verdict = sluice_governance::govern(&sql, dialect, &sluice_governance::Policy::default(), 3);
            assert!(
                matches!(&verdict.decision,
                    sluice_governance::Decision::Allow { sql: allowed, rewritten: false, .. } if *allowed == sql),
                "{dialect:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn sampling_statements_pass_governance_on_every_engine() {
        let snapshot = sluice_catalog::outline::parse(&format!(
            "table s.wide\n{}",
            (0..SAMPLE_COLUMNS_PER_STATEMENT)
                .map(|i| format!("  c{i} text\n"))
                .collect::<String>()
        ))
        .unwrap();
        let (catalog, _) = sluice_catalog::Catalog::build(snapshot);
        let columns: Vec<(usize, usize)> = (0..SAMPLE_COLUMNS_PER_STATEMENT).map(|c| (0, c)).collect();
        let one = samples_sql(Dialect::PostgreSql, &catalog, &columns[..1]);
        assert_eq!(
            one,
            "SELECT 0 AS k, v FROM (SELECT DISTINCT CAST(r0.v AS TEXT) AS v FROM (SELECT \"c0\" AS v FROM \
             \"s\".\"wide\" LIMIT 10000) AS r0 WHERE r0.v IS NOT NULL LIMIT 51) AS d0"
        );
        for dialect in [
            Dialect::DuckDb,
            Dialect::PostgreSql,
            Dialect::MySql,
            Dialect::Sqlite,
        ] {
            let sql = samples_sql(dialect, &catalog, &columns);
            let verdict =
                sluice_governance::govern(&sql, dialect, &sluice_governance::Policy::default(), 2_041);
            assert!(
                crate::service::allowed_sql(&verdict).is_ok(),
                "{dialect:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn column_statements_pass_governance_on_every_engine() {
        use sluice_catalog::TableId;
        let table = Table::new(TableId::new("s", "odd name"), TableKind::Table)
            .with_column(Column::new("id", "INTEGER"))
            .with_column(Column::new("status", "VARCHAR"))
            .with_column(Column::new("payload", "JSON"));
        let other = Table::new(TableId::new("s", "orders"), TableKind::Table)
            .with_column(Column::new("id", "INTEGER"));
        let columns: Vec<&Column> = table.columns.iter().collect();
        assert_eq!(
            column_counts(Dialect::PostgreSql, &table, columns[2]),
            "SELECT COUNT(*), COUNT(\"payload\"), NULL FROM \"s\".\"odd name\""
        );
        assert_eq!(
            column_values(Dialect::MySql, &table, columns[1], "Pa'id", 21).unwrap(),
            "SELECT `status`, COUNT(*) FROM `s`.`odd name` WHERE `status` IS NOT NULL AND \
             LOWER(CAST(`status` AS CHAR)) LIKE '%pa''id%' GROUP BY `status` ORDER BY COUNT(*) DESC, `status` LIMIT 21"
        );
        let (stats, layout) = columns_stats(Dialect::DuckDb, &table, &columns);
        assert_eq!(
            stats,
            "SELECT COUNT(*), COUNT(\"id\"), COUNT(DISTINCT \"id\"), MIN(\"id\"), MAX(\"id\"), COUNT(\"status\"), \
             COUNT(DISTINCT \"status\"), MIN(\"status\"), MAX(\"status\"), COUNT(\"payload\") FROM \"s\".\"odd name\""
        );
        assert_eq!(
            layout,
            [Aggregates::Ordered, Aggregates::Ordered, Aggregates::CountOnly]
        );
        for dialect in [
            Dialect::DuckDb,
            Dialect::PostgreSql,
            Dialect::MySql,
            Dialect::Sqlite,
        ] {
            let q = dialect.quoting();
            let on = format!("a.{} = b.{}", q.ident("id"), q.ident("id"));
            let statements = [
                (column_counts(dialect, &table, columns[1]), 1),
                (
                    column_values(dialect, &table, columns[1], "paid", 21).unwrap(),
                    21,
                ),
                (columns_stats(dialect, &table, &columns).0, 1),
                (first_rows(dialect, &table, &columns, 50), 50),
                (
                    join_counts(
                        dialect,
                        (&table, &["a.status = 'paid'".to_owned()]),
                        (&other, &[]),
                        &on,
                    ),
                    1,
                ),
            ];
            for (sql, cap) in statements {
                let verdict =
                    sluice_governance::govern(&sql, dialect, &sluice_governance::Policy::default(), cap);
                assert!(
                    crate::service::allowed_sql(&verdict).is_ok(),
                    "{dialect:?} {sql}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn a_pattern_with_nul_is_refused_with_a_reason() {
        assert_eq!(
            literal(Dialect::DuckDb, "a\0b").unwrap_err().message,
            "the pattern must not contain NUL characters"
        );
    }
}
