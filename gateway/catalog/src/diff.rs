//! Comparing two snapshots (`schema_diff`): tables added, removed and changed, down to column types,
//! nullability, defaults, keys, foreign keys and indexes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::budget::{Layout, Rendered, Window, pack, shrink_lines, thousands};
use crate::snapshot::{
    Column, ForeignKey, Index, SchemaSnapshot, Table, TableId, TableKind, UniqueConstraint,
};

/// One change to a column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ColumnDelta {
    Type {
        from: String,
        to: String,
    },
    Nullable {
        from: bool,
        to: bool,
    },
    Default {
        from: Option<String>,
        to: Option<String>,
    },
    Comment {
        from: Option<String>,
        to: Option<String>,
    },
}

/// One change to a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum TableDelta {
    Kind {
        from: TableKind,
        to: TableKind,
    },
    ColumnAdded {
        column: Column,
    },
    ColumnRemoved {
        column: Column,
    },
    ColumnChanged {
        column: String,
        deltas: Vec<ColumnDelta>,
    },
    PrimaryKey {
        from: Vec<String>,
        to: Vec<String>,
    },
    ForeignKeyAdded {
        foreign_key: ForeignKey,
    },
    ForeignKeyRemoved {
        foreign_key: ForeignKey,
    },
    UniqueAdded {
        unique: UniqueConstraint,
    },
    UniqueRemoved {
        unique: UniqueConstraint,
    },
    IndexAdded {
        index: Index,
    },
    IndexRemoved {
        index: Index,
    },
    Comment {
        from: Option<String>,
        to: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableChange {
    pub table: TableId,
    pub deltas: Vec<TableDelta>,
}

/// What changed between two snapshots. Row estimates are left out on purpose: they change on every
/// capture and would bury the structural changes an agent needs to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SchemaDiff {
    pub old_captured_at: u64,
    pub new_captured_at: u64,
    pub schemas_added: Vec<String>,
    pub schemas_removed: Vec<String>,
    pub tables_added: Vec<TableId>,
    pub tables_removed: Vec<TableId>,
    pub tables_changed: Vec<TableChange>,
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        self.schemas_added.is_empty()
            && self.schemas_removed.is_empty()
            && self.tables_added.is_empty()
            && self.tables_removed.is_empty()
            && self.tables_changed.is_empty()
    }
}

/// Compares `old` with `new`; neither needs to be normalised (tables are matched by id, columns by name).
pub fn diff(old: &SchemaSnapshot, new: &SchemaSnapshot) -> SchemaDiff {
    let old_tables: BTreeMap<&TableId, &Table> = old.tables.iter().map(|t| (&t.id, t)).collect();
    let new_tables: BTreeMap<&TableId, &Table> = new.tables.iter().map(|t| (&t.id, t)).collect();
    let schemas = |s: &SchemaSnapshot| -> Vec<String> {
        let mut v: Vec<String> = s
            .schemas
            .iter()
            .cloned()
            .chain(s.tables.iter().map(|t| t.id.schema.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (old_schemas, new_schemas) = (schemas(old), schemas(new));
    let mut out = SchemaDiff {
        old_captured_at: old.captured_at,
        new_captured_at: new.captured_at,
        schemas_added: new_schemas
            .iter()
            .filter(|s| !old_schemas.contains(s))
            .cloned()
            .collect(),
        schemas_removed: old_schemas
            .iter()
            .filter(|s| !new_schemas.contains(s))
            .cloned()
            .collect(),
        ..SchemaDiff::default()
    };
    for (id, new_table) in &new_tables {
        match old_tables.get(id) {
            None => out.tables_added.push((*id).clone()),
            Some(old_table) => {
                let deltas = table_deltas(old_table, new_table);
                if !deltas.is_empty() {
                    out.tables_changed.push(TableChange {
                        table: (*id).clone(),
                        deltas,
                    });
                }
            }
        }
    }
    out.tables_removed = old_tables
        .keys()
        .filter(|id| !new_tables.contains_key(*id))
        .map(|id| (*id).clone())
        .collect();
    out
}

/// Items in `a` and not in `b`, in `a`'s order.
fn missing<'a, T: PartialEq>(a: &'a [T], b: &[T]) -> impl Iterator<Item = &'a T> {
    a.iter().filter(move |x| !b.contains(x))
}

fn table_deltas(old: &Table, new: &Table) -> Vec<TableDelta> {
    let mut d = Vec::new();
    if old.kind != new.kind {
        d.push(TableDelta::Kind {
            from: old.kind,
            to: new.kind,
        });
    }
    for c in &new.columns {
        match old.column(&c.name) {
            None => d.push(TableDelta::ColumnAdded { column: c.clone() }),
            Some(o) => {
                let mut deltas = Vec::new();
                if !o.data_type.eq_ignore_ascii_case(&c.data_type) {
                    deltas.push(ColumnDelta::Type {
                        from: o.data_type.clone(),
                        to: c.data_type.clone(),
                    });
                }
                if o.nullable != c.nullable {
                    deltas.push(ColumnDelta::Nullable {
                        from: o.nullable,
                        to: c.nullable,
                    });
                }
                if o.default != c.default {
                    deltas.push(ColumnDelta::Default {
                        from: o.default.clone(),
                        to: c.default.clone(),
                    });
                }
                if o.comment != c.comment {
                    deltas.push(ColumnDelta::Comment {
                        from: o.comment.clone(),
                        to: c.comment.clone(),
                    });
                }
                if !deltas.is_empty() {
                    d.push(TableDelta::ColumnChanged {
                        column: c.name.clone(),
                        deltas,
                    });
                }
            }
        }
    }
    for c in &old.columns {
        if new.column(&c.name).is_none() {
            d.push(TableDelta::ColumnRemoved { column: c.clone() });
        }
    }
    if old.primary_key != new.primary_key {
        d.push(TableDelta::PrimaryKey {
            from: old.primary_key.clone(),
            to: new.primary_key.clone(),
        });
    }
    d.extend(
        missing(&new.foreign_keys, &old.foreign_keys).map(|f| TableDelta::ForeignKeyAdded {
            foreign_key: f.clone(),
        }),
    );
    d.extend(
        missing(&old.foreign_keys, &new.foreign_keys).map(|f| TableDelta::ForeignKeyRemoved {
            foreign_key: f.clone(),
        }),
    );
    d.extend(
        missing(&new.unique_constraints, &old.unique_constraints)
            .map(|u| TableDelta::UniqueAdded { unique: u.clone() }),
    );
    d.extend(
        missing(&old.unique_constraints, &new.unique_constraints)
            .map(|u| TableDelta::UniqueRemoved { unique: u.clone() }),
    );
    d.extend(missing(&new.indexes, &old.indexes).map(|i| TableDelta::IndexAdded { index: i.clone() }));
    d.extend(missing(&old.indexes, &new.indexes).map(|i| TableDelta::IndexRemoved { index: i.clone() }));
    if old.comment != new.comment {
        d.push(TableDelta::Comment {
            from: old.comment.clone(),
            to: new.comment.clone(),
        });
    }
    d
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "none".to_string())
}

fn fk_text(fk: &ForeignKey) -> String {
    format!(
        "({}) -> {} ({})",
        fk.columns.join(", "),
        fk.references,
        fk.referenced_columns.join(", ")
    )
}

fn delta_line(delta: &TableDelta) -> String {
    match delta {
        TableDelta::Kind { from, to } => format!("kind {} -> {}", from.label(), to.label()),
        TableDelta::ColumnAdded { column } => format!(
            "+ column {} {}{}",
            column.name,
            column.data_type,
            if column.nullable { "" } else { " NOT NULL" }
        ),
        TableDelta::ColumnRemoved { column } => format!("- column {} {}", column.name, column.data_type),
        TableDelta::ColumnChanged { column, deltas } => {
            let parts: Vec<String> = deltas
                .iter()
                .map(|x| match x {
                    ColumnDelta::Type { from, to } => format!("type {from} -> {to}"),
                    ColumnDelta::Nullable { from, to } => format!(
                        "{} -> {}",
                        if *from { "NULL" } else { "NOT NULL" },
                        if *to { "NULL" } else { "NOT NULL" }
                    ),
                    ColumnDelta::Default { from, to } => format!("default {} -> {}", opt(from), opt(to)),
                    ColumnDelta::Comment { .. } => "comment changed".to_string(),
                })
                .collect();
            format!("~ column {column}: {}", parts.join("; "))
        }
        TableDelta::PrimaryKey { from, to } => {
            format!("~ primary key ({}) -> ({})", from.join(", "), to.join(", "))
        }
        TableDelta::ForeignKeyAdded { foreign_key } => format!("+ foreign key {}", fk_text(foreign_key)),
        TableDelta::ForeignKeyRemoved { foreign_key } => format!("- foreign key {}", fk_text(foreign_key)),
        TableDelta::UniqueAdded { unique } => format!("+ unique ({})", unique.columns.join(", ")),
        TableDelta::UniqueRemoved { unique } => format!("- unique ({})", unique.columns.join(", ")),
        TableDelta::IndexAdded { index } => format!(
            "+ {}index {} ({})",
            if index.unique { "unique " } else { "" },
            index.name,
            index.columns.join(", ")
        ),
        TableDelta::IndexRemoved { index } => {
            format!("- index {} ({})", index.name, index.columns.join(", "))
        }
        TableDelta::Comment { .. } => "~ table comment changed".to_string(),
    }
}

/// The diff as text, one item per added, removed or changed table, budgeted and paged.
pub fn render_diff(diff: &SchemaDiff, window: &Window) -> Rendered {
    let mut header = format!(
        "Schema diff: {} tables added, {} removed, {} changed\n",
        thousands(diff.tables_added.len()),
        thousands(diff.tables_removed.len()),
        thousands(diff.tables_changed.len())
    );
    if diff.is_empty() {
        header.push_str("No structural changes.\n");
    }
    for s in &diff.schemas_added {
        header.push_str(&format!("+ schema {s}\n"));
    }
    for s in &diff.schemas_removed {
        header.push_str(&format!("- schema {s}\n"));
    }
    let mut items: Vec<String> = diff.tables_added.iter().map(|t| format!("+ table {t}")).collect();
    items.extend(diff.tables_removed.iter().map(|t| format!("- table {t}")));
    items.extend(diff.tables_changed.iter().map(|c| {
        let mut s = format!("~ table {}", c.table);
        for d in &c.deltas {
            s.push_str(&format!("\n    {}", delta_line(d)));
        }
        s
    }));
    let shrink = |i: usize, n: usize| shrink_lines(&items[i], n, "    ");
    pack(Layout::text(header, items.clone(), "tables", &shrink), window)
}

#[cfg(test)]
mod tests {
    use insta::assert_snapshot;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::budget::{Budget, Window};
    use crate::outline;

    /// Diffs two outlines and lists the changes as short strings.
    fn check(old: &str, new: &str, expected: &[&str]) {
        let d = diff(
            &outline::parse(old).expect("old parses"),
            &outline::parse(new).expect("new parses"),
        );
        let mut actual: Vec<String> = Vec::new();
        actual.extend(d.schemas_added.iter().map(|s| format!("+schema {s}")));
        actual.extend(d.schemas_removed.iter().map(|s| format!("-schema {s}")));
        actual.extend(d.tables_added.iter().map(|t| format!("+{t}")));
        actual.extend(d.tables_removed.iter().map(|t| format!("-{t}")));
        for c in &d.tables_changed {
            actual.extend(c.deltas.iter().map(|x| format!("{} {}", c.table, delta_line(x))));
        }
        assert_eq!(actual, expected);
    }

    #[test]
    fn reports_table_column_and_key_changes() {
        check("table s.a\n  id int pk\n", "table s.a\n  id int pk\n", &[]);
        check(
            "table s.a\n  id int pk\ntable s.gone\n  id int\n",
            "table s.a\n  id int pk\ntable t.new\n  id int\n",
            &["+schema t", "+t.new", "-s.gone"],
        );
        check(
            "table s.a\n  id int pk\n  name text\n  old text\n  b_id int\n",
            "table s.a\n  id bigint pk\n  name text not null default='x'\n  extra int\n  b_id int -> s.b.id\ntable s.b\n  id int pk\n",
            &[
                "+s.b",
                "s.a ~ column id: type int -> bigint",
                "s.a ~ column name: NULL -> NOT NULL; default none -> 'x'",
                "s.a + column extra int",
                "s.a - column old text",
                "s.a + foreign key (b_id) -> s.b (id)",
            ],
        );
        // Same table names in two schemas are different tables.
        check(
            "table s.a\n  id int\n",
            "table t.a\n  id int\n",
            &["+schema t", "-schema s", "+t.a", "-s.a"],
        );
    }

    #[test]
    fn rendered_diff() {
        let old =
            outline::parse("table s.a\n  id int pk\n  name text\ntable s.gone\n  id int\n").expect("parses");
        let new = outline::parse(
            "table s.a\n  id bigint pk\n  pk (id)\n  index ix_a (id) unique\ntable s.c\n  id int\n",
        )
        .expect("parses");
        assert_snapshot!(render_diff(&diff(&old, &new), &Window::new(Budget::chars(2_000))).text);
    }
}
