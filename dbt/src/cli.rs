//! The `sluice-dbt` command line as library functions, so that `sluice dbt …` in the gateway runs the same
//! code: each command returns what to print and the exit code instead of printing and exiting.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::analyze::analyze;
use crate::column_lineage::{self, Lineage};
use crate::coverage::{self, Thresholds};
use crate::finding::Severity;
use crate::fs::{display_path, load_manifest, load_project};
use crate::impact::{self, ChangeKind};
use crate::project::Direction;
use crate::project::Project;
use crate::render::map::{Focus, MapOptions, render_map};
use crate::render::report::{Format, ReportOptions, fails, render, render_for};

/// Exit code when findings reach the `--fail-on` threshold.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code when the project or an artifact cannot be read, or an argument is invalid.
pub const EXIT_UNREADABLE: i32 = 2;

/// The subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Check a dbt project and its artifacts; exit non-zero on findings at or above --fail-on.
    Validate(ValidateArgs),
    /// Show the project map (models by directory, work order, sources, macros, one model in depth).
    Map(MapArgs),
    /// Show what a node depends on and what depends on it, to any depth; or a column's lineage (--column).
    Lineage(LineageArgs),
    /// Test coverage of models, sources and columns; exit non-zero below --min-models / --min-columns.
    Coverage(CoverageArgs),
    /// What a change breaks or changes downstream: one model or column (--model, --column, --change), or
    /// every column change since a baseline manifest (--state); exit 1 when something breaks.
    Impact(ImpactArgs),
}

/// Where the project and its artifacts are.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The dbt project directory (where dbt_project.yml is).
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
    /// The directory with manifest.json, catalog.json and run_results.json, relative to the project
    /// [default: target-path from dbt_project.yml, else target].
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
}

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One line per finding.
    Text,
    /// A JSON document.
    Json,
    /// JUnit XML.
    Junit,
    /// GitHub Actions annotations.
    Github,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Junit => Format::Junit,
            FormatArg::Github => Format::Github,
            FormatArg::Sarif => Format::Sarif,
        }
    }
}

/// The lowest severity that fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Warnings and errors fail.
    Warning,
    /// Only errors fail.
    Error,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

/// `sluice-dbt validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Project location.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Fail (exit 1) on findings of this severity or worse.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

/// `sluice-dbt map`.
#[derive(Debug, Clone, clap::Args)]
pub struct MapArgs {
    /// Project location.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// all, work_order, missing, stubs, sources, macros or model:<name>.
    #[arg(long, default_value = "all")]
    pub focus: String,
    /// Models listed per directory before the rest are summarised.
    #[arg(long, default_value_t = 40)]
    pub max_models_per_section: usize,
    /// List each model's columns.
    #[arg(long)]
    pub include_columns: bool,
}

/// Direction of `sluice-dbt lineage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    /// What the node reads from.
    #[value(alias = "up")]
    Upstream,
    /// What reads from the node.
    #[value(alias = "down")]
    Downstream,
    /// Both.
    Both,
}

/// `sluice-dbt lineage`.
#[derive(Debug, Clone, clap::Args)]
pub struct LineageArgs {
    /// Project location.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// A model, seed or snapshot name, `source_name.table`, or a unique id.
    #[arg(required_unless_present = "column", conflicts_with = "column")]
    pub node: Option<String>,
    /// Column-level lineage of `model.column` (or `source_name.table.column`) from the compiled SQL.
    #[arg(long, value_name = "MODEL.COLUMN")]
    pub column: Option<String>,
    /// Which way to walk.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// How many edges to follow [default: all].
    #[arg(long)]
    pub depth: Option<usize>,
    /// With --column: stop each side after this many edges (nearest first).
    #[arg(long, requires = "column")]
    pub max_edges: Option<usize>,
}

/// `sluice-dbt coverage`.
#[derive(Debug, Clone, clap::Args)]
pub struct CoverageArgs {
    /// Project location.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Fail (exit 1) when fewer than this percentage of the project's models have a test or constraint.
    #[arg(long, value_name = "PERCENT")]
    pub min_models: Option<f64>,
    /// Fail (exit 1) when fewer than this percentage of the models' columns have a test or constraint.
    #[arg(long, value_name = "PERCENT")]
    pub min_columns: Option<f64>,
    /// Output format: text and json report the coverage; junit, github and sarif report untested models
    /// and columns and the thresholds missed as findings.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

/// The change `impact` assesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChangeArg {
    /// The column is renamed.
    Rename,
    /// The column (or, without --column, the model) is dropped.
    Drop,
    /// The column's type changes.
    Type,
    /// Its values change; nothing is removed.
    Values,
}

/// `sluice-dbt impact`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImpactArgs {
    /// Project location.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The changed model, seed, snapshot or source.
    #[arg(long, required_unless_present = "state")]
    pub model: Option<String>,
    /// The changed column of --model.
    #[arg(long, requires = "model")]
    pub column: Option<String>,
    /// The change [default: drop with --column, values without].
    #[arg(long, value_enum, requires = "model")]
    pub change: Option<ChangeArg>,
    /// A baseline manifest.json (say, production's): report every column change since it and its impact.
    #[arg(long, value_name = "MANIFEST", conflicts_with = "model")]
    pub state: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Fail (exit 1) on findings of this severity or worse: error = something breaks, warning = anything
    /// is affected.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

/// What a command prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// The process exit code.
    pub code: i32,
}

impl Output {
    fn ok(stdout: String) -> Self {
        Output {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }

    fn unreadable(error: impl std::fmt::Display) -> Self {
        Output {
            stdout: String::new(),
            stderr: format!("error: {error}\n"),
            code: EXIT_UNREADABLE,
        }
    }
}

/// Runs a subcommand.
pub fn run(command: &Command) -> Output {
    match command {
        Command::Validate(args) => run_validate(args),
        Command::Map(args) => run_map(args),
        Command::Lineage(args) => run_lineage(args),
        Command::Coverage(args) => run_coverage(args),
        Command::Impact(args) => run_impact(args),
    }
}

/// `sluice-dbt impact`: what breaks and what changes; exit 1 when a finding reaches `--fail-on`.
pub fn run_impact(args: &ImpactArgs) -> Output {
    let input = match load_project(&args.project.project_dir, args.project.target_dir.as_deref()) {
        Ok(input) => input,
        Err(e) => return Output::unreadable(e),
    };
    let (analysis, _) = analyze(input);
    let result = match (&args.state, &args.model) {
        (Some(state), _) => load_manifest(state).and_then(|manifest| {
            let (baseline, _) = Project::build(Some(manifest), None);
            impact::diff(&baseline, &analysis.project)
        }),
        (None, Some(model)) => {
            let change = match (args.change, &args.column) {
                (Some(ChangeArg::Rename), _) => ChangeKind::Rename,
                (Some(ChangeArg::Drop), _) | (None, Some(_)) => ChangeKind::Drop,
                (Some(ChangeArg::Type), _) => ChangeKind::Type,
                (Some(ChangeArg::Values), _) | (None, None) => ChangeKind::Values,
            };
            impact::impact(&analysis.project, model, args.column.as_deref(), change)
        }
        (None, None) => return Output::unreadable("give --model or --state"),
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => return Output::unreadable(e),
    };
    let findings = impact::findings(&report);
    let options = ReportOptions {
        project: analysis.project.name.clone(),
        path_prefix: path_prefix(&args.project.project_dir),
        fail_on: args.fail_on.into(),
    };
    let stdout = match args.format {
        FormatArg::Text => impact::render(&report),
        FormatArg::Json => {
            let doc = serde_json::json!({
                "failed": fails(&findings, options.fail_on),
                "breaking": report.breaking(),
                "impact": report,
            });
            // A tree of strings, numbers and booleans always serializes.
            let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
            out.push('\n');
            out
        }
        format => render_for("impact", &findings, format.into(), &options),
    };
    Output {
        stdout,
        stderr: String::new(),
        code: if fails(&findings, options.fail_on) {
            EXIT_FINDINGS
        } else {
            0
        },
    }
}

/// `sluice-dbt coverage`: the coverage report; exit 1 when a threshold is not met.
pub fn run_coverage(args: &CoverageArgs) -> Output {
    let input = match load_project(&args.project.project_dir, args.project.target_dir.as_deref()) {
        Ok(input) => input,
        Err(e) => return Output::unreadable(e),
    };
    let (analysis, _) = analyze(input);
    let thresholds = Thresholds {
        min_models: args.min_models,
        min_columns: args.min_columns,
    };
    let report = coverage::coverage(&analysis.project);
    let passed = coverage::passes(&report, thresholds);
    let stdout = match args.format {
        FormatArg::Text => coverage::render(&report, thresholds),
        FormatArg::Json => {
            let doc = serde_json::json!({
                "passed": passed,
                "min_models": args.min_models,
                "min_columns": args.min_columns,
                "coverage": report,
            });
            // A tree of strings, numbers and booleans always serializes.
            let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
            out.push('\n');
            out
        }
        format => {
            let options = ReportOptions {
                project: analysis.project.name.clone(),
                path_prefix: path_prefix(&args.project.project_dir),
                fail_on: Severity::Error,
            };
            render_for(
                "coverage",
                &coverage::findings(&report, thresholds),
                format.into(),
                &options,
            )
        }
    };
    drop_in_background((analysis, report));
    Output {
        stdout,
        stderr: String::new(),
        code: if passed { 0 } else { EXIT_FINDINGS },
    }
}

/// `sluice-dbt validate`: findings in the chosen format; exit 1 when any reaches `--fail-on`.
pub fn run_validate(args: &ValidateArgs) -> Output {
    let input = match load_project(&args.project.project_dir, args.project.target_dir.as_deref()) {
        Ok(input) => input,
        Err(e) => return Output::unreadable(e),
    };
    let (analysis, findings) = analyze(input);
    let options = ReportOptions {
        project: analysis.project.name.clone(),
        path_prefix: path_prefix(&args.project.project_dir),
        fail_on: args.fail_on.into(),
    };
    let stdout = render(&findings, args.format.into(), &options);
    let code = if fails(&findings, options.fail_on) {
        EXIT_FINDINGS
    } else {
        0
    };
    drop_in_background((analysis, findings));
    Output {
        stdout,
        stderr: String::new(),
        code,
    }
}

/// `sluice-dbt map`.
pub fn run_map(args: &MapArgs) -> Output {
    let focus: Focus = match args.focus.parse() {
        Ok(focus) => focus,
        Err(e) => return Output::unreadable(e),
    };
    let input = match load_project(&args.project.project_dir, args.project.target_dir.as_deref()) {
        Ok(input) => input,
        Err(e) => return Output::unreadable(e),
    };
    let (analysis, findings) = analyze(input);
    let options = MapOptions {
        focus,
        max_models_per_section: args.max_models_per_section,
        include_columns: args.include_columns,
    };
    Output::ok(render_map(&analysis, &findings, &options))
}

/// `sluice-dbt lineage`.
pub fn run_lineage(args: &LineageArgs) -> Output {
    let input = match load_project(&args.project.project_dir, args.project.target_dir.as_deref()) {
        Ok(input) => input,
        Err(e) => return Output::unreadable(e),
    };
    let (analysis, _) = analyze(input);
    let project = &analysis.project;
    let direction = match args.direction {
        DirectionArg::Upstream => Direction::Upstream,
        DirectionArg::Downstream => Direction::Downstream,
        DirectionArg::Both => Direction::Both,
    };
    if let Some(target) = &args.column {
        let Some((node, column)) = target.rsplit_once('.') else {
            return Output::unreadable(format!("--column `{target}`: expected model.column"));
        };
        let mut lineage = Lineage::new(project);
        if let Some(max) = args.max_edges {
            lineage = lineage.max_edges(max);
        }
        return match lineage.walk(node, column, direction, args.depth) {
            Ok(lineage) => Output::ok(column_lineage::render(&lineage, direction)),
            Err(e) => Output::unreadable(e),
        };
    }
    let name = args.node.as_deref().unwrap_or_default();
    let Some(start) = project.find(name) else {
        return Output::unreadable(format!("no node named `{name}` in project {}", project.name));
    };
    let node = project.node(start);
    let mut out = format!("# Lineage of {} ({})\n", node.display_name(), node.unique_id);
    let steps = project.lineage(start, direction, args.depth, false);
    for upstream in [true, false] {
        if (upstream && direction == Direction::Downstream) || (!upstream && direction == Direction::Upstream)
        {
            continue;
        }
        let side: Vec<_> = steps.iter().filter(|s| s.upstream == upstream).collect();
        let _ = writeln!(
            out,
            "\n{} ({}):",
            if upstream { "Upstream" } else { "Downstream" },
            side.len()
        );
        for step in side {
            let n = project.node(step.node);
            let _ = writeln!(
                out,
                "  {:>2}  {:<9} {}",
                step.depth,
                n.kind.as_str(),
                n.display_name()
            );
        }
    }
    Output::ok(out)
}

/// Frees a large analysis on a thread of its own: on a 10,000-model project the drop alone takes tens of
/// milliseconds, which a command that is about to print and exit should not wait for (the process may end
/// before the thread does, and the memory goes back to the system with it).
fn drop_in_background<T: Send + 'static>(value: T) {
    if std::thread::Builder::new()
        .name("sluice-dbt-drop".to_owned())
        .spawn(move || drop(value))
        .is_err()
    {
        // No thread to be had: the value was moved into the failed closure and is dropped with it, here.
        tracing::debug!("dropped the analysis in the foreground");
    }
}

/// The project directory as a prefix for reported paths, so CI annotations point at repository files.
fn path_prefix(project_dir: &Path) -> String {
    let display = display_path(project_dir);
    if display.is_empty() {
        String::new()
    } else {
        format!("{display}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn path_prefixes() {
        let cases = [
            (".", ""),
            ("./", ""),
            ("analytics", "analytics/"),
            ("./a/b/", "a/b/"),
        ];
        for (dir, expected) in cases {
            assert_eq!(path_prefix(Path::new(dir)), expected, "{dir}");
        }
    }
}
