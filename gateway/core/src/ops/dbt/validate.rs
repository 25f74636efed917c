//! `dbt_project_validate`: `dbt parse` first when the operator configured dbt (writing only inside the
//! project), then the findings of the project's artifacts and files.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_dbt::files::{ProjectConfig, ProjectFile};
use sluice_dbt::render::report::{Format, ReportOptions, Summary, render};
use sluice_dbt::{Finding, Severity};

use super::{blocking, load, ok, projects};
use crate::auth::AuthContext;
use crate::dbt_parse::{self, ParseCommand, ParseStatus};
use crate::projects::resolve_dir;
use crate::service::{Outcome, Services, ToolError};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectDirArgs {
    /// A registered project's name, or an absolute path inside a registered project.
    pub project_dir: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FindingOut {
    /// Stable id, e.g. DBT301.
    pub id: String,
    /// Stable name, e.g. documented-column-missing.
    pub name: String,
    /// error, warning or info.
    #[schemars(with = "String")]
    pub severity: Severity,
    pub message: String,
    /// The node's unique id.
    pub node: Option<String>,
    /// File relative to the project.
    pub path: Option<String>,
    pub line: Option<u32>,
}

impl From<&Finding> for FindingOut {
    fn from(f: &Finding) -> Self {
        FindingOut {
            id: f.rule.code().to_owned(),
            name: f.rule.name().to_owned(),
            severity: f.severity,
            message: f.message.clone(),
            node: f.node.clone(),
            path: f.location.as_ref().map(|l| l.path.clone()),
            line: f.location.as_ref().and_then(|l| l.line),
        }
    }
}

/// How the `dbt parse` before a validation went (serialized in snake case: `not_configured`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbtParseStatus {
    /// No dbt binary is configured, so dbt parse was not run.
    NotConfigured,
    /// The directory has no dbt_project.yml: nothing dbt could parse.
    Skipped,
    /// The caller's key lacks `fs_write` (dbt parse writes the project's target directory).
    NotAllowed,
    Succeeded,
    Failed,
    TimedOut,
}

impl From<ParseStatus> for DbtParseStatus {
    fn from(status: ParseStatus) -> Self {
        match status {
            ParseStatus::Succeeded => DbtParseStatus::Succeeded,
            ParseStatus::Failed => DbtParseStatus::Failed,
            ParseStatus::TimedOut => DbtParseStatus::TimedOut,
        }
    }
}

/// Whether `dbt parse` refreshed the manifest before the validation read it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DbtParseOut {
    /// not_configured (no dbt binary configured), skipped (no dbt_project.yml), succeeded, failed or
    /// timed_out.
    #[schemars(with = "String")]
    pub status: DbtParseStatus,
    /// Whether dbt parse was run before the artifacts were read.
    pub ran: bool,
    pub duration_ms: Option<u64>,
    /// dbt's exit code when it failed (null when killed).
    pub exit_code: Option<i32>,
    /// The last lines dbt printed, when it failed or timed out.
    pub output_tail: Vec<String>,
    /// What this means for the findings.
    pub message: String,
}

impl DbtParseOut {
    fn not_run(status: DbtParseStatus, message: String) -> Self {
        DbtParseOut {
            status,
            ran: false,
            duration_ms: None,
            exit_code: None,
            output_tail: Vec::new(),
            message,
        }
    }

    fn from_run(run: dbt_parse::ParseRun, timeout: std::time::Duration) -> Self {
        let secs = run.duration.as_secs_f64();
        let stale = "the findings come from the artifacts as found, which may be stale";
        let message = match run.status {
            ParseStatus::Succeeded => {
                format!("dbt parse ran in {secs:.1} s; the manifest reflects the current project files.")
            }
            ParseStatus::Failed => format!(
                "dbt parse FAILED ({}) after {secs:.1} s; {stale}. Fix what dbt reports:",
                run.exit_code
                    .map_or("killed by a signal".to_owned(), |c| format!("exit code {c}"))
            ),
            ParseStatus::TimedOut => format!(
                "dbt parse timed out after {} s and was killed; {stale}. Its last output:",
                timeout.as_secs()
            ),
        };
        let succeeded = run.status == ParseStatus::Succeeded;
        DbtParseOut {
            status: run.status.into(),
            ran: true,
            duration_ms: Some(u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX)),
            exit_code: run.exit_code.filter(|_| !succeeded),
            output_tail: if succeeded { Vec::new() } else { run.output_tail },
            message,
        }
    }

    fn render(&self) -> String {
        let mut out = self.message.clone();
        for line in &self.output_tail {
            let _ = write!(out, "\n  | {line}");
        }
        out
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValidationReport {
    pub project: String,
    pub project_dir: String,
    /// Whether `dbt parse` ran first (only when the operator configured a dbt binary) and how it went.
    pub dbt_parse: DbtParseOut,
    pub summary: Summary,
    pub findings: Vec<FindingOut>,
    /// The report as sluice-dbt renders it (the text an agent reads); not part of the structured result.
    #[serde(skip)]
    #[schemars(skip)]
    pub text: String,
}

/// What `dbt parse` needs for a resolved project: `None` when the directory has no `dbt_project.yml`
/// (a manifest-only project dbt cannot parse). The target directory is the project's own `target-path`,
/// and must lie inside the fence, since dbt writes there.
fn parse_command(
    binary: PathBuf,
    dir: &Path,
    fence: &Path,
    timeout: std::time::Duration,
) -> Result<Option<ParseCommand>, ToolError> {
    let config_path = dir.join("dbt_project.yml");
    if !config_path.is_file() {
        return Ok(None);
    }
    let contents = std::fs::read_to_string(&config_path)
        .map_err(|e| ToolError::failed(format!("{} cannot be read: {e}", config_path.display())))?;
    let file = ProjectFile {
        path: "dbt_project.yml".to_owned(),
        contents,
        modified: None,
    };
    let target = dir.join(ProjectConfig::parse(&file).0.target_path);
    // The target may not exist yet: check the nearest directory that does, and refuse `..` after it.
    let existing = target.ancestors().find(|a| a.exists()).unwrap_or(dir);
    let rest = target.strip_prefix(existing).unwrap_or(Path::new(""));
    let inside = std::fs::canonicalize(existing).is_ok_and(|real| real.starts_with(fence))
        && !rest.components().any(|c| matches!(c, Component::ParentDir));
    if !inside {
        return Err(ToolError::invalid(format!(
            "the target directory {} (target-path in dbt_project.yml) lies outside the project {}; dbt parse \
             was not run",
            target.display(),
            fence.display()
        )));
    }
    Ok(Some(ParseCommand {
        binary,
        project_dir: dir.to_path_buf(),
        profiles_dir: dir.join("profiles.yml").is_file().then(|| dir.to_path_buf()),
        target_path: target,
        log_path: dir.join("logs"),
        timeout,
    }))
}

/// Runs `dbt parse` on the project when the operator configured a dbt binary. A failed or timed-out parse
/// is reported, not an error; a binary that cannot be started is (the operator must fix the config).
async fn refresh_manifest(
    s: &Services,
    auth: &AuthContext,
    dir: &Path,
    fence: &Path,
) -> Result<DbtParseOut, ToolError> {
    let Some(binary) = s.settings.dbt_binary.clone() else {
        return Ok(DbtParseOut::not_run(
            DbtParseStatus::NotConfigured,
            "dbt parse was not run (no dbt binary is configured under [dbt] in the gateway config); the \
             artifacts were read as found."
                .to_owned(),
        ));
    };
    // dbt parse writes the project's target directory: a write, which takes `fs_write` (role engineer).
    if !auth.scopes.contains(crate::auth::Scope::FsWrite) {
        return Ok(DbtParseOut::not_run(
            DbtParseStatus::NotAllowed,
            "dbt parse was not run: it writes the project's target directory, which takes the fs_write scope \
             (role engineer) this API key does not have; the artifacts were read as found."
                .to_owned(),
        ));
    }
    let timeout = s.settings.dbt_parse_timeout;
    let (d, f) = (dir.to_path_buf(), fence.to_path_buf());
    let Some(command) = blocking(move || parse_command(binary, &d, &f, timeout)).await? else {
        return Ok(DbtParseOut::not_run(
            DbtParseStatus::Skipped,
            format!(
                "dbt parse was not run: {} has no dbt_project.yml; the artifacts were read as found.",
                dir.display()
            ),
        ));
    };
    let run = dbt_parse::run(&command)
        .await
        .map_err(|e| ToolError::failed(format!("dbt parse could not run: {e}")))?;
    // The manifest was just rewritten: the next read checks the files whatever the trust window says.
    super::recheck(dir);
    tracing::info!(
        project_dir = %dir.display(),
        status = run.status.as_str(),
        exit_code = run.exit_code,
        elapsed_ms = run.duration.as_millis() as u64,
        "dbt parse"
    );
    Ok(DbtParseOut::from_run(run, timeout))
}

/// `dbt_project_validate`: `dbt parse` when configured, then the project's findings.
pub async fn validate(s: &Services, auth: &AuthContext, project_dir: String) -> Outcome<ValidationReport> {
    ok(report(s, auth, project_dir).await)
}

async fn report(
    s: &Services,
    auth: &AuthContext,
    project_dir: String,
) -> Result<ValidationReport, ToolError> {
    let projects = projects(s, auth).await?;
    let roots = s.settings.dbt_project_roots.clone();
    let resolved =
        blocking(move || resolve_dir(&projects, &roots, &project_dir).map_err(ToolError::invalid)).await?;
    crate::progress::report(
        0.0,
        Some(2.0),
        "refreshing the manifest (dbt parse, when configured)",
    );
    let parse = refresh_manifest(s, auth, &resolved.dir, &resolved.fence).await?;
    crate::progress::report(1.0, Some(2.0), "reading and checking the project's artifacts");
    let loaded = blocking(move || load(resolved.dir, &resolved.fence))
        .await
        .map_err(|mut e| {
            if parse.ran {
                e.message = format!("{} ({})", e.message, parse.render());
            }
            e
        })?;
    crate::progress::report(2.0, Some(2.0), "validated");
    let name = loaded.analysis.project.name.clone();
    let text = render(
        &loaded.findings,
        Format::Text,
        &ReportOptions {
            project: name.clone(),
            path_prefix: String::new(),
            fail_on: Severity::Error,
        },
    );
    Ok(ValidationReport {
        project: name,
        project_dir: loaded.dir.display().to_string(),
        text: format!("{}\n\n{}", parse.render(), text.trim_end()),
        dbt_parse: parse,
        summary: Summary::of(&loaded.findings),
        findings: loaded.findings.iter().map(FindingOut::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn dbt_parse_writes_only_inside_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let project = base.join("p");
        let outside = base.join("outside");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let timeout = std::time::Duration::from_secs(1);
        let prepare = || parse_command(PathBuf::from("dbt"), &project, &project, timeout);
        // No dbt_project.yml: nothing dbt could parse.
        assert!(prepare().unwrap().is_none());
        std::fs::write(project.join("dbt_project.yml"), "name: p\n").unwrap();
        let c = prepare().unwrap().unwrap();
        assert_eq!(
            (c.target_path, c.log_path, c.profiles_dir),
            (project.join("target"), project.join("logs"), None)
        );
        std::fs::write(project.join("profiles.yml"), "p: {}\n").unwrap();
        std::fs::write(
            project.join("dbt_project.yml"),
            "name: p\ntarget-path: build/out\n",
        )
        .unwrap();
        let c = prepare().unwrap().unwrap();
        assert_eq!(
            (c.target_path, c.profiles_dir),
            (project.join("build/out"), Some(project.clone()))
        );
        std::os::unix::fs::symlink(&outside, project.join("linked")).unwrap();
        for target in [
            "../outside",
            "new/../../outside",
            "linked",
            "linked/deeper",
            "/tmp",
        ] {
            std::fs::write(
                project.join("dbt_project.yml"),
                format!("name: p\ntarget-path: '{target}'\n"),
            )
            .unwrap();
            let err = prepare().map(|_| ()).unwrap_err().message;
            assert!(
                err.contains("lies outside the project") && err.contains("dbt parse was not run"),
                "{target}: {err}"
            );
        }
    }
}
