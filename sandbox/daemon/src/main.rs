//! `sluice-sandbox`: parses arguments, starts tracing, and hands over to the library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // The SVG renderer the daemon starts for each SVG: no tracing, no arguments to parse.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sluice_sandbox::svg::RENDER_ARG)
    {
        std::process::exit(sluice_sandbox::svg::serve_renderer());
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = sluice_sandbox::cli::Cli::parse();
    std::process::exit(sluice_sandbox::cli::run(cli)?)
}
