//! The `sluice` binary: parses arguments, starts tracing to stderr (text or JSON, plus OpenTelemetry
//! traces over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), and runs the command.

use clap::Parser as _;
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// jemalloc for Rust and, through its unprefixed `malloc`, for the DuckDB engine linked into this binary
/// (DuckDB's own releases use jemalloc; the bundled build does not). BENCHMARKS.md has the measurement.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The trace exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names a
/// collector: spans go there in batches over OTLP/HTTP (protobuf), as the OpenTelemetry environment
/// variables configure it (`OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`, …).
fn trace_provider() -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, String> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()));
    if !configured {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("the OTLP trace exporter could not be built: {e}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "sluice".to_owned());
    Ok(Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build(),
    ))
}

fn main() -> std::process::ExitCode {
    // `sluice __duckdb-worker`: this process is a DuckDB worker the gateway started (it runs every DuckDB
    // statement in one, under a memory limit). Nothing of the gateway is set up: no runtime, no OpenTelemetry,
    // only a plain tracing subscriber on stderr, which the gateway shares.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sluice_connectors::duckdb::worker::WORKER_ARG)
    {
        let directives = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "warn".to_owned());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("warn")))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        let code = sluice_connectors::duckdb::worker::serve();
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Every DuckDB connection this gateway opens starts its workers from this very executable.
    if let Err(e) = sluice_connectors::duckdb::WorkerProgram::use_current_exe() {
        eprintln!("error: could not find this executable to start DuckDB workers from: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // PostgreSQL's notices (e.g. "relation _sqlx_migrations already exists, skipping" on every start with a
    // PostgreSQL store) are not the operator's concern unless the filter asks for sqlx by name.
    let directives = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "info".to_owned());
    let directives = if directives.contains("sqlx") {
        directives
    } else {
        format!("{directives},sqlx::postgres::notice=warn")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Every HTTP client in the process (the OAuth issuer's keys, the OTLP exporter) uses rustls on ring;
    // reqwest is built without a default provider, so the process installs one before any client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Built before the async runtime exists: the exporter's blocking HTTP client must not be created (or
    // dropped) on a runtime thread.
    let provider = match trace_provider() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer().with_tracer(p.tracer("sluice"))
    });
    // `SLUICE_LOG_FORMAT=json`: one JSON object per line for a log pipeline, each line of a tool call
    // carrying the call's span (tool, org, key prefix, request id). Otherwise text, with colour codes only for
    // a person at a terminal: a stdio client's log, a file or journald gets plain text.
    let format = std::env::var("SLUICE_LOG_FORMAT").unwrap_or_default();
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match format.trim() {
        "json" => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .init(),
        "" | "text" => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
        other => {
            eprintln!("error: SLUICE_LOG_FORMAT is '{other}'; use json or text");
            return std::process::ExitCode::FAILURE;
        }
    }
    let cli = sluice_gateway::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(sluice_gateway::cli::run(cli));
    drop(runtime);
    // Sends the spans still batched before the process ends.
    if let Some(provider) = provider
        && let Err(e) = provider.shutdown()
    {
        eprintln!("warning: exporting the last traces failed: {e}");
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
