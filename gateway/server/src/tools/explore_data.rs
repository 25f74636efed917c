//! Schema tools that read data: `explore_column`, `explore_columns`, `compare_join_types` and
//! `get_date_boundaries`: their descriptions and rendering; the operations are `sluice_core::ops::explore`.

use std::fmt::Write as _;
use std::sync::Arc;

use sluice_core::auth::Scope;
use sluice_core::ops::explore::columns::{
    ColumnValues, ColumnsExploration, ExploreColumnArgs, ExploreColumnsArgs, explore_column, explore_columns,
};
use sluice_core::ops::explore::dates::{DateBoundaries, DateBoundariesArgs, get_date_boundaries};
use sluice_core::ops::explore::joins::{CompareJoinArgs, JoinComparison, compare_join_types};
use sluice_core::ops::explore::text::{cell, one_line};
use sluice_core::service::Services;

use crate::tools::{Effect, Meta, Render, ToolSpec, spec};

pub fn tools(services: &Arc<Services>) -> Vec<ToolSpec> {
    let mut specs = Vec::new();
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "explore_column",
            title: "Explore a column's values",
            description: "The most frequent distinct values of one column with their counts, plus its row, \
                NULL and distinct counts. `filter_pattern` keeps values containing the text \
                (case-insensitive). Use it to learn the exact spelling of categories before filtering.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ExploreColumnArgs| {
            let s = Arc::clone(&s);
            async move { explore_column(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "explore_columns",
            title: "Explore columns",
            description: "Types, keys, comments, statistics (NULLs, distinct values, min and max) and sample \
                values for some or all columns of a table, in two statements whatever the column count.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: ExploreColumnsArgs| {
            let s = Arc::clone(&s);
            async move { explore_columns(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "compare_join_types",
            title: "Compare join types",
            description: "Row counts of INNER, LEFT, RIGHT and FULL OUTER JOIN between two tables on the given \
                keys, and how many rows of each side have no match, to choose the right join and spot \
                fan-out. The left table is `a`, the right `b`: `join_keys` like `a.id = b.customer_id`, \
                `where_clause` like `a.status = 'paid'` (applied to its table before the join).",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: CompareJoinArgs| {
            let s = Arc::clone(&s);
            async move { compare_join_types(&s, &ctx.auth, a).await }
        },
    ));
    let s = Arc::clone(services);
    specs.push(spec(
        Meta {
            name: "get_date_boundaries",
            title: "Date boundaries",
            description: "MIN and MAX of every DATE and TIMESTAMP column (one statement for the whole \
                connection), each table's latest date with its row count, and the global latest date. Future dates and tables \
                that end long before the others are flagged. Use the fact table's latest date as the end of \
                a date spine, never the current date.",
            scope: Some(Scope::Schema),
            effect: Effect::ReadOnly,
        },
        move |ctx, a: DateBoundariesArgs| {
            let s = Arc::clone(&s);
            async move { get_date_boundaries(&s, &ctx.auth, &a.connection_name).await }
        },
    ));
    specs
}

impl Render for ColumnValues {
    fn render(&self) -> String {
        let mut text = format!("Column {}.{} ({})", self.table, self.column, self.data_type);
        if let (Some(rows), Some(nulls), Some(distinct)) =
            (self.row_count, self.null_count, self.distinct_count)
        {
            let _ = write!(text, ": {rows} rows, {nulls} NULL, {distinct} distinct");
        }
        if !self.filter_pattern.is_empty() {
            let _ = write!(text, "\nValues matching '{}':", self.filter_pattern);
        } else {
            text.push_str("\nMost frequent values:");
        }
        if self.values.is_empty() {
            text.push_str("\n  (none)");
        }
        for v in &self.values {
            let _ = write!(text, "\n  {} ({})", one_line(&cell(&v.value), 200), v.count);
        }
        if self.truncated {
            let _ = write!(text, "\n… more values exist beyond limit={}", self.values.len());
        }
        text
    }
}

impl Render for ColumnsExploration {
    fn render(&self) -> String {
        let mut text = format!(
            "{} {}",
            if self.kind == "view" { "View" } else { "Table" },
            self.table
        );
        if let Some(rows) = self.row_count {
            let _ = write!(text, " ({rows} rows)");
        }
        for c in &self.columns {
            let mut flags = Vec::new();
            if c.primary_key {
                flags.push("PK");
            }
            if !c.nullable {
                flags.push("NOT NULL");
            }
            let _ = write!(text, "\n  {}: {}", c.name, c.data_type);
            if !flags.is_empty() {
                let _ = write!(text, " [{}]", flags.join(", "));
            }
            if let Some(comment) = &c.comment {
                let _ = write!(text, " -- {}", one_line(comment, 120));
            }
            let mut stats = Vec::new();
            if let Some(d) = c.distinct_count {
                stats.push(format!("distinct={d}"));
            }
            if let Some(n) = c.null_count {
                stats.push(format!("nulls={n}"));
            }
            if let Some(min) = &c.min {
                stats.push(format!("min={}", one_line(&cell(min), 60)));
            }
            if let Some(max) = &c.max {
                stats.push(format!("max={}", one_line(&cell(max), 60)));
            }
            if !stats.is_empty() {
                let _ = write!(text, "\n    stats: {}", stats.join(", "));
            }
            if !c.samples.is_empty() {
                let samples: Vec<String> = c.samples.iter().map(|v| one_line(&cell(v), 40)).collect();
                let _ = write!(text, "\n    values: {}", samples.join(", "));
            }
        }
        if self.columns_omitted > 0 {
            let _ = write!(
                text,
                "\n… {} more columns omitted; name them in `columns` to explore them",
                self.columns_omitted
            );
        }
        text
    }
}

impl Render for JoinComparison {
    fn render(&self) -> String {
        let mut text = format!(
            "Join {} (a) with {} (b) ON {}\n  left rows:  {}\n  right rows: {}\n  INNER JOIN:      {}\n  LEFT JOIN:       {}\n  RIGHT JOIN:      {}\n  FULL OUTER JOIN: {}\n  left rows without a match:  {}\n  right rows without a match: {}",
            self.left_table,
            self.right_table,
            self.on,
            self.left_rows,
            self.right_rows,
            self.inner_join_rows,
            self.left_join_rows,
            self.right_join_rows,
            self.full_outer_join_rows,
            self.left_unmatched,
            self.right_unmatched
        );
        for note in &self.notes {
            let _ = write!(text, "\n{note}");
        }
        text
    }
}

impl Render for DateBoundaries {
    fn render(&self) -> String {
        self.text.clone()
    }
}
