//! A DuckDB worker on its own, for this crate's tests and benchmarks (production starts the `sluice`
//! binary as `sluice __duckdb-worker`, which runs the same [`sluice_connectors::duckdb::worker::serve`]).

/// The same allocator as the `sluice` binary, so that memory limits behave here as they do there.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(sluice_connectors::duckdb::worker::serve());
}
