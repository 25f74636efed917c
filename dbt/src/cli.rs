//! The `sluice-dbt` command line as library functions, so that `sluice dbt …` in the gateway runs the same
//! code: each command returns what to print and the exit code instead of printing and exiting.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::analyze::analyze;
use crate::finding::Severity;
use crate::fs::{display_path, load_project};
use crate::project::Direction;
use crate::render::map::{Focus, MapOptions, render_map};
use crate::render::report::{Format, ReportOptions, fails, render};

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
    /// Show what a node depends on and what depends on it, to any depth.
    Lineage(LineageArgs),
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
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Junit => Format::Junit,
            FormatArg::Github => Format::Github,
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
    Upstream,
    /// What reads from the node.
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
    pub node: String,
    /// Which way to walk.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// How many edges to follow [default: all].
    #[arg(long)]
    pub depth: Option<usize>,
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
    let Some(start) = project.find(&args.node) else {
        return Output::unreadable(format!(
            "no node named `{}` in project {}",
            args.node, project.name
        ));
    };
    let direction = match args.direction {
        DirectionArg::Upstream => Direction::Upstream,
        DirectionArg::Downstream => Direction::Downstream,
        DirectionArg::Both => Direction::Both,
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
