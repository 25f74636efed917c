//! The benchmark's synthetic warehouse (2,000 tables, 5,000 foreign keys): correctness at scale, paging
//! that covers everything exactly once, and determinism.

use std::collections::HashSet;

use pretty_assertions::assert_eq;
use sluice_catalog::render::{self, RelationshipFormat};
use sluice_catalog::{Budget, Catalog, LinkOptions, PathOptions, Window, synthetic};

fn warehouse() -> Catalog {
    let (catalog, findings) = Catalog::build(synthetic::warehouse(2_000, 5_000, 1_000, 42));
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.code != "ambiguous_inference")
            .count(),
        0,
        "{findings:?}"
    );
    catalog
}

#[test]
fn every_declared_key_is_a_one_hop_path_and_paths_are_simple() {
    let catalog = warehouse();
    assert_eq!(catalog.edges().iter().filter(|e| e.is_declared()).count(), 5_000);
    assert!(
        catalog.edges().len() > 5_000,
        "inference found the undeclared columns"
    );
    let options = PathOptions::default();
    for edge in catalog.edges().iter().filter(|e| e.is_declared()).step_by(97) {
        let search = catalog
            .find_join_paths(&edge.from, &edge.to, &options)
            .expect("tables exist");
        let best = &search.paths[0];
        assert_eq!(best.hops, 1, "{} -> {}", edge.from, edge.to);
        for path in &search.paths {
            let distinct: HashSet<_> = path.tables.iter().collect();
            assert_eq!(distinct.len(), path.tables.len(), "simple path");
            assert!(path.hops <= options.max_hops);
        }
        let scores: Vec<f32> = search.paths.iter().map(|p| p.score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    }
}

#[test]
fn paging_the_overview_covers_every_table_once_within_budget() {
    let catalog = warehouse();
    let window = Window::new(Budget::tokens(4_000));
    let first = render::overview(&catalog, &window);
    assert!(first.pages > 1);
    let footer = first.text.lines().last().expect("footer");
    assert!(
        footer.starts_with(&format!(
            "… {} more tables omitted; page=2 to continue",
            fmt(2_000 - first.last)
        )),
        "{footer}"
    );
    let mut seen = 0;
    for page in 1..=first.pages {
        let r = render::overview(&catalog, &window.page(page));
        assert!(r.chars <= 16_000);
        assert_eq!(r.first, seen + 1);
        seen = r.last;
    }
    assert_eq!(seen, 2_000);
    let rel = render::relationships(
        &catalog,
        RelationshipFormat::Compact,
        true,
        &Window::new(Budget::chars(5_000)),
    );
    assert!(rel.chars <= 5_000 && rel.next_page == Some(2));
}

fn fmt(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn results_are_deterministic() {
    let (a, b) = (warehouse(), warehouse());
    let from = synthetic::table_id(3);
    let to = synthetic::table_id(1_234);
    let options = PathOptions {
        max_hops: 5,
        k: 5,
        ..PathOptions::default()
    };
    assert_eq!(
        a.find_join_paths(&from, &to, &options),
        b.find_join_paths(&from, &to, &options)
    );
    let q = "payments of customers by region";
    assert_eq!(
        a.schema_link(q, &LinkOptions::default()),
        b.schema_link(q, &LinkOptions::default())
    );
    let link = a.schema_link(
        q,
        &LinkOptions {
            max_tables: 6,
            ..LinkOptions::default()
        },
    );
    assert!(!link.tables.is_empty() && link.tables.len() <= 6);
}
