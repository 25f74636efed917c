//! At-scale benchmarks on a large manifest: load + analyze (what `validate` does) + coverage, one column's
//! lineage with a cold and a warm trace cache, lineage as the gateway serves it once a project is loaded
//! (every model traced in the background, the nearest 150 edges each way, rendered), and one column's impact.
//!
//! The manifest comes from `SLUICE_DBT_BENCH_MANIFEST` (default `/tmp/scale-manifest.json`), written by real
//! dbt-core from `dbt/benches/gen_project.py` (see BENCHMARKS.md); without it the benchmark says so and exits.
//! When it is `DIR/target/manifest.json` of a project, the project's files are read and scanned as well.
//!
//!     SLUICE_DBT_BENCH_MANIFEST=/tmp/scale-manifest.json cargo bench -p sluice-dbt --bench scale

// A benchmark whose input is missing or broken has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_dbt::analyze::{Artifact, ProjectInput, analyze};
use sluice_dbt::artifacts::manifest::Manifest;
use sluice_dbt::fs::load_project;
use std::sync::Arc;
use std::time::Instant;

use sluice_dbt::column_lineage::{Lineage, Traces, render};
use sluice_dbt::impact::{ChangeKind, impact};
use sluice_dbt::project::{Direction, NodeKind};

fn manifest_path() -> PathBuf {
    std::env::var_os("SLUICE_DBT_BENCH_MANIFEST")
        .map_or_else(|| PathBuf::from("/tmp/scale-manifest.json"), PathBuf::from)
}

/// What `validate` reads: the whole project when the manifest sits in `DIR/target/` beside a
/// `dbt_project.yml` (the project files are walked and scanned too), else the manifest alone.
fn input(path: &Path) -> ProjectInput {
    let project = path
        .parent()
        .and_then(Path::parent)
        .filter(|p| p.join("dbt_project.yml").is_file());
    match project {
        Some(dir) => load_project(dir, None).expect("project loads"),
        None => {
            let bytes = std::fs::read(path).expect("manifest reads");
            ProjectInput {
                manifest: Some(Artifact::new(
                    Manifest::from_slice(&bytes, "manifest.json").expect("manifest parses"),
                )),
                ..ProjectInput::default()
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let path = manifest_path();
    if !path.exists() {
        eprintln!(
            "{} not found: generate it as BENCHMARKS.md describes; skipping",
            path.display()
        );
        return;
    }
    let mut group = c.benchmark_group("scale");
    group.sample_size(10);
    group.bench_function("load_analyze_coverage", |b| {
        b.iter(|| {
            let (analysis, findings) = analyze(input(&path));
            let coverage = sluice_dbt::coverage::coverage(&analysis.project);
            black_box((findings.len(), coverage.models.tested))
        })
    });
    group.finish();

    let (analysis, _) = analyze(input(&path));
    let project = &analysis.project;
    let models: Vec<String> = project
        .of_kind(NodeKind::Model)
        .iter()
        .step_by(97)
        .map(|(_, n)| n.name.clone())
        .collect();
    let mut group = c.benchmark_group("column_lineage");
    let mut next = models.iter().cycle();
    group.bench_function("cold_depth_all", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = Lineage::new(project).walk(model, "amount", Direction::Both, None);
            black_box(
                walk.map(|w| w.upstream.len() + w.downstream.len())
                    .unwrap_or_default(),
            )
        })
    });
    group.bench_function("cold_depth_3", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = Lineage::new(project).walk(model, "amount", Direction::Both, Some(3));
            black_box(
                walk.map(|w| w.upstream.len() + w.downstream.len())
                    .unwrap_or_default(),
            )
        })
    });
    group.bench_function("cold_max_150_edges", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = Lineage::new(project)
                .max_edges(150)
                .walk(model, "amount", Direction::Both, None);
            black_box(
                walk.map(|w| w.upstream.len() + w.downstream.len())
                    .unwrap_or_default(),
            )
        })
    });
    let mut warm = Lineage::new(project);
    group.bench_function("warm_depth_all", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = warm.walk(model, "amount", Direction::Both, None);
            black_box(
                walk.map(|w| w.upstream.len() + w.downstream.len())
                    .unwrap_or_default(),
            )
        })
    });
    let mut warm_limited = Lineage::new(project).max_edges(150);
    group.bench_function("warm_max_150_edges", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = warm_limited.walk(model, "amount", Direction::Both, None);
            black_box(
                walk.map(|w| w.upstream.len() + w.downstream.len())
                    .unwrap_or_default(),
            )
        })
    });
    // As the gateway serves it: the traces kept with the loaded project, filled by its pre-trace thread.
    let traces = Arc::new(Traces::new(project));
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (before, started) = (rss(), Instant::now());
    let traced = traces.trace_all(project, || true);
    eprintln!(
        "pre-trace: {traced} models in {:.2?}, RSS +{} MB",
        started.elapsed(),
        rss().saturating_sub(before) / 1024
    );
    group.bench_function("served_max_150_edges", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            let walk = Lineage::with_traces(project, Arc::clone(&traces))
                .max_edges(150)
                .walk(model, "amount", Direction::Both, None);
            black_box(
                walk.map(|w| render(&w, Direction::Both).len())
                    .unwrap_or_default(),
            )
        })
    });
    group.bench_function("impact_rename", |b| {
        b.iter(|| {
            let model = next.next().map_or("", String::as_str);
            black_box(impact(project, model, Some("amount"), ChangeKind::Rename).map(|i| i.impacted.len()))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
