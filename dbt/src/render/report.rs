//! Findings reports for CI: plain text, JSON, JUnit XML and GitHub workflow annotations.

use std::fmt::Write;
use std::str::FromStr;

use serde::Serialize;

use crate::finding::{Finding, Severity};

/// An output format of `sluice-dbt validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per finding and a summary.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML, one test case per finding.
    Junit,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`).
    Github,
    /// SARIF 2.1.0, for GitHub code scanning and other static-analysis viewers.
    Sarif,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            "github" => Ok(Format::Github),
            "sarif" => Ok(Format::Sarif),
            other => Err(format!(
                "unknown format `{other}`: expected text, json, junit, github or sarif"
            )),
        }
    }
}

/// How to render a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// The project's name, shown in summaries and as the JUnit suite name.
    pub project: String,
    /// Prepended to every file path (the project directory relative to where CI runs), so annotations land
    /// on the right files.
    pub path_prefix: String,
    /// Findings at or above this severity fail the run.
    pub fail_on: Severity,
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Summary {
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Infos.
    pub infos: usize,
}

impl Summary {
    /// Counts `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        Summary {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        }
    }
}

/// Whether any finding is at or above `fail_on`.
pub fn fails(findings: &[Finding], fail_on: Severity) -> bool {
    findings.iter().any(|f| f.severity >= fail_on)
}

/// Renders the findings of `sluice-dbt validate` in a format.
pub fn render(findings: &[Finding], format: Format, options: &ReportOptions) -> String {
    render_for("validate", findings, format, options)
}

/// Renders findings in a format, naming the `sluice-dbt` command that produced them (`validate`,
/// `coverage`, `impact`) in the summary line and the JUnit report.
pub fn render_for(command: &str, findings: &[Finding], format: Format, options: &ReportOptions) -> String {
    match format {
        Format::Text => text(command, findings, options),
        Format::Json => json(findings, options),
        Format::Junit => junit(command, findings, options),
        Format::Github => github(command, findings, options),
        Format::Sarif => super::sarif::sarif(findings, options),
    }
}

fn path(options: &ReportOptions, finding: &Finding) -> Option<String> {
    finding
        .location
        .as_ref()
        .map(|l| format!("{}{}", options.path_prefix, l.path))
}

fn summary_line(command: &str, findings: &[Finding], options: &ReportOptions) -> String {
    let s = Summary::of(findings);
    let verdict = if fails(findings, options.fail_on) {
        "failed"
    } else {
        "passed"
    };
    format!(
        "sluice-dbt {command} {}: {} error(s), {} warning(s), {} info; {verdict} (fail on {})",
        options.project, s.errors, s.warnings, s.infos, options.fail_on
    )
}

fn text(command: &str, findings: &[Finding], options: &ReportOptions) -> String {
    let mut out = String::new();
    for f in findings {
        let place = match (&f.location, path(options, f)) {
            (Some(l), Some(p)) => match l.line {
                Some(line) => format!("{p}:{line}"),
                None => p,
            },
            _ => f.node.clone().unwrap_or_else(|| options.project.clone()),
        };
        let _ = writeln!(
            out,
            "{place}: {} {} {}: {}",
            f.severity,
            f.rule.code(),
            f.rule.name(),
            f.message
        );
    }
    out.push_str(&summary_line(command, findings, options));
    out.push('\n');
    out
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    id: &'static str,
    rule: &'static str,
    severity: Severity,
    message: &'a str,
    node: Option<&'a str>,
    file: Option<String>,
    line: Option<u32>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    project: &'a str,
    fail_on: Severity,
    failed: bool,
    summary: Summary,
    findings: Vec<JsonFinding<'a>>,
}

fn json(findings: &[Finding], options: &ReportOptions) -> String {
    let report = JsonReport {
        project: &options.project,
        fail_on: options.fail_on,
        failed: fails(findings, options.fail_on),
        summary: Summary::of(findings),
        findings: findings
            .iter()
            .map(|f| JsonFinding {
                id: f.rule.code(),
                rule: f.rule.name(),
                severity: f.severity,
                message: &f.message,
                node: f.node.as_deref(),
                file: path(options, f),
                line: f.location.as_ref().and_then(|l| l.line),
            })
            .collect(),
    };
    // Serializing plain structs of strings and numbers cannot fail; an empty report is the safe fallback.
    let mut out = serde_json::to_string_pretty(&report).unwrap_or_default();
    out.push('\n');
    out
}

fn junit(command: &str, findings: &[Finding], options: &ReportOptions) -> String {
    let failures = findings.iter().filter(|f| f.severity >= options.fail_on).count();
    let tests = findings.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let suite = xml(&options.project);
    let _ = writeln!(
        out,
        "<testsuites name=\"sluice-dbt {command}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
    );
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "    <testcase classname=\"sluice-dbt\" name=\"no findings\"/>"
        );
    }
    for f in findings {
        let subject = f
            .node
            .clone()
            .or_else(|| f.location.as_ref().map(ToString::to_string))
            .unwrap_or_else(|| options.project.clone());
        let mut attrs = format!(
            "classname=\"{}.{}\" name=\"{}\"",
            f.rule.code(),
            xml(f.rule.name()),
            xml(&format!("{}: {subject}", f.rule.code()))
        );
        if let Some(p) = path(options, f) {
            let _ = write!(attrs, " file=\"{}\"", xml(&p));
            if let Some(line) = f.location.as_ref().and_then(|l| l.line) {
                let _ = write!(attrs, " line=\"{line}\"");
            }
        }
        let detail = match (&f.location, path(options, f)) {
            (Some(l), Some(p)) => format!(
                "{}\n{}{}",
                f.message,
                p,
                l.line.map(|n| format!(":{n}")).unwrap_or_default()
            ),
            _ => f.message.clone(),
        };
        if f.severity >= options.fail_on {
            let _ = writeln!(
                out,
                "    <testcase {attrs}>\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                f.severity,
                xml(&f.message),
                xml(&detail)
            );
        } else {
            let _ = writeln!(
                out,
                "    <testcase {attrs}>\n      <system-out>{}: {}</system-out>\n    </testcase>",
                f.severity,
                xml(&detail)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; control characters XML 1.0 forbids are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

fn github(command: &str, findings: &[Finding], options: &ReportOptions) -> String {
    let mut out = String::new();
    for f in findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(p) = path(options, f) {
            props.push(format!("file={}", gh_property(&p)));
            if let Some(line) = f.location.as_ref().and_then(|l| l.line) {
                props.push(format!("line={line}"));
            }
        }
        props.push(format!(
            "title={}",
            gh_property(&format!("{} {}", f.rule.code(), f.rule.name()))
        ));
        let _ = writeln!(out, "::{command} {}::{}", props.join(","), gh_data(&f.message));
    }
    out.push_str(&summary_line(command, findings, options));
    out.push('\n');
    out
}

/// Escaping for a workflow command's message, as the GitHub Actions toolkit does.
fn gh_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escaping for a workflow command's property values, which also reserve `:` and `,`.
fn gh_property(text: &str) -> String {
    gh_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Rule;
    use pretty_assertions::assert_eq;

    fn sample() -> Vec<Finding> {
        vec![
            Finding::new(
                Rule::UnresolvedRef,
                "`ref('x')` in model `a`: 100% <missing>, \"quoted\"\nsecond line",
            )
            .node("model.p.a")
            .at("models/a.sql", Some(3)),
            Finding::new(Rule::UndocumentedModel, "model `b` has no description")
                .node("model.p.b")
                .at("models/s.yml", None),
            Finding::new(Rule::ArtifactMissing, "target/catalog.json not found"),
        ]
    }

    fn options(fail_on: Severity) -> ReportOptions {
        ReportOptions {
            project: "p".into(),
            path_prefix: "analytics/".into(),
            fail_on,
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(gh_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(
            xml("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn github_annotations() {
        let out = render(&sample(), Format::Github, &options(Severity::Error));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                "::error file=analytics/models/a.sql,line=3,title=DBT101 unresolved-ref::`ref('x')` in model `a`: 100%25 <missing>, \"quoted\"%0Asecond line",
                "::warning file=analytics/models/s.yml,title=DBT202 undocumented-model::model `b` has no description",
                "::notice title=DBT001 artifact-missing::target/catalog.json not found",
                "sluice-dbt validate p: 1 error(s), 1 warning(s), 1 info; failed (fail on error)",
            ]
        );
    }

    #[test]
    fn thresholds() {
        let findings = sample();
        assert!(fails(&findings, Severity::Error));
        assert!(!fails(&findings[1..], Severity::Error));
        assert!(fails(&findings[1..], Severity::Warning));
        assert!(!fails(&findings[2..], Severity::Warning));
        assert_eq!(
            Summary::of(&findings),
            Summary {
                errors: 1,
                warnings: 1,
                infos: 1
            }
        );
    }

    #[test]
    fn junit_is_well_formed_xml_with_one_failure_per_finding_over_the_threshold() {
        for (findings, fail_on, expected_cases, expected_failures) in [
            (sample(), Severity::Warning, 3, 2),
            (sample(), Severity::Error, 3, 1),
            (Vec::new(), Severity::Error, 1, 0),
        ] {
            let out = render(&findings, Format::Junit, &options(fail_on));
            let mut reader = quick_xml::Reader::from_str(&out);
            let (mut cases, mut failures, mut depth) = (0, 0, 0i32);
            loop {
                match reader.read_event().expect("well-formed XML") {
                    quick_xml::events::Event::Start(e) => {
                        depth += 1;
                        match e.name().as_ref() {
                            b"testcase" => cases += 1,
                            b"failure" => failures += 1,
                            _ => {}
                        }
                    }
                    quick_xml::events::Event::Empty(e) if e.name().as_ref() == b"testcase" => cases += 1,
                    quick_xml::events::Event::End(_) => depth -= 1,
                    quick_xml::events::Event::Eof => break,
                    _ => {}
                }
            }
            assert_eq!(
                (cases, failures, depth),
                (expected_cases, expected_failures, 0),
                "{out}"
            );
        }
    }

    #[test]
    fn json_report() {
        let out = render(&sample(), Format::Json, &options(Severity::Warning));
        let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(value["failed"], serde_json::json!(true));
        assert_eq!(
            value["summary"],
            serde_json::json!({"errors": 1, "warnings": 1, "infos": 1})
        );
        assert_eq!(
            value["findings"][0],
            serde_json::json!({
                "id": "DBT101", "rule": "unresolved-ref", "severity": "error",
                "message": "`ref('x')` in model `a`: 100% <missing>, \"quoted\"\nsecond line",
                "node": "model.p.a", "file": "analytics/models/a.sql", "line": 3
            })
        );
    }

    #[test]
    fn formats_parse() {
        let parsed: Vec<Format> = ["text", "json", "junit", "github", "sarif"]
            .iter()
            .map(|s| s.parse().expect("known"))
            .collect();
        assert_eq!(
            parsed,
            vec![
                Format::Text,
                Format::Json,
                Format::Junit,
                Format::Github,
                Format::Sarif
            ]
        );
        assert!("xml".parse::<Format>().is_err());
    }
}
