//! Declared foreign keys as edges; a reference to a relation or column the snapshot lacks is a finding.

use std::collections::HashMap;

use crate::finding::Finding;
use crate::snapshot::{Table, TableId};

use super::{EdgeOrigin, JoinEdge, KeyStrength};

pub(super) fn declared_edges(
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use crate::catalog::Catalog;
    use crate::graph::tests::check;
    use crate::outline;

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
