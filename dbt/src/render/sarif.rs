//! SARIF 2.1.0 for GitHub code scanning and other static-analysis viewers: one run, every rule in the
//! driver's rule table, one result per finding, each at a file and line.
//!
//! Code scanning needs a physical location on every result, so a finding without a file is placed on
//! `dbt_project.yml` and one without a line on line 1.

use serde::Serialize;

use super::report::ReportOptions;
use crate::finding::{Finding, Rule, Severity};

/// The schema every SARIF 2.1.0 log names.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
struct Log {
    version: &'static str,
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
struct Run {
    tool: Tool,
    results: Vec<SarifResult>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    information_uri: &'static str,
    version: &'static str,
    rules: Vec<SarifRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule {
    id: &'static str,
    name: &'static str,
    short_description: Text,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<SarifLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Properties>,
}

#[derive(Serialize)]
struct Properties {
    node: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

/// SARIF's level for a severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The findings as a SARIF 2.1.0 log.
pub fn sarif(findings: &[Finding], options: &ReportOptions) -> String {
    let rules = Rule::ALL
        .iter()
        .map(|r| SarifRule {
            id: r.code(),
            name: r.name(),
            short_description: Text {
                text: r.summary().to_owned(),
            },
            default_configuration: Configuration {
                level: level(r.severity()),
            },
        })
        .collect();
    let results = findings
        .iter()
        .map(|f| {
            let (path, line) = match &f.location {
                Some(l) => (l.path.as_str(), l.line.unwrap_or(1)),
                None => ("dbt_project.yml", 1),
            };
            SarifResult {
                rule_id: f.rule.code(),
                rule_index: Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or_default(),
                level: level(f.severity),
                message: Text {
                    text: f.message.clone(),
                },
                locations: vec![SarifLocation {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation {
                            uri: format!("{}{path}", options.path_prefix),
                            uri_base_id: "%SRCROOT%",
                        },
                        region: Region {
                            start_line: line.max(1),
                        },
                    },
                }],
                properties: f.node.clone().map(|node| Properties { node }),
            }
        })
        .collect();
    let log = Log {
        version: "2.1.0",
        schema: SCHEMA,
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "sluice-dbt",
                    information_uri: "https://github.com/sluice-data/sluice",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            results,
        }],
    };
    // Serializing plain structs of strings and numbers cannot fail; an empty log is the safe fallback.
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::Value;

    /// Checks the properties SARIF 2.1.0 requires (and code scanning reads) on a log.
    pub(crate) fn assert_valid_sarif(log: &Value) {
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SCHEMA);
        let runs = log["runs"].as_array().expect("runs is an array");
        assert_eq!(runs.len(), 1);
        let driver = &runs[0]["tool"]["driver"];
        assert!(driver["name"].as_str().is_some_and(|n| !n.is_empty()));
        let rules = driver["rules"].as_array().expect("rules is an array");
        for rule in rules {
            assert!(rule["id"].as_str().is_some(), "{rule}");
            assert!(rule["shortDescription"]["text"].as_str().is_some(), "{rule}");
        }
        for result in runs[0]["results"].as_array().expect("results is an array") {
            let id = result["ruleId"].as_str().expect("ruleId");
            let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], id, "ruleIndex points at the rule");
            assert!(
                ["error", "warning", "note", "none"].contains(&result["level"].as_str().expect("level")),
                "{result}"
            );
            assert!(result["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
            let locations = result["locations"].as_array().expect("locations");
            assert!(!locations.is_empty(), "{result}");
            for l in locations {
                let physical = &l["physicalLocation"];
                assert!(
                    physical["artifactLocation"]["uri"]
                        .as_str()
                        .is_some_and(|u| !u.is_empty())
                );
                assert!(physical["region"]["startLine"].as_u64().is_some_and(|n| n >= 1));
            }
        }
    }

    #[test]
    fn sarif_log_has_the_required_shape() {
        let findings = vec![
            Finding::new(Rule::UnresolvedRef, "`ref('x')` names nothing")
                .node("model.p.a")
                .at("models/a.sql", Some(3)),
            Finding::new(Rule::UndocumentedModel, "no description").at("models/s.yml", None),
            Finding::new(Rule::ArtifactMissing, "target/catalog.json not found"),
        ];
        let options = ReportOptions {
            project: "p".into(),
            path_prefix: "analytics/".into(),
            fail_on: Severity::Error,
        };
        let log: Value = serde_json::from_str(&sarif(&findings, &options)).expect("JSON");
        assert_valid_sarif(&log);
        let placed: Vec<(String, String, u64)> = log["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                let p = &r["locations"][0]["physicalLocation"];
                (
                    r["level"].as_str().unwrap_or_default().to_owned(),
                    p["artifactLocation"]["uri"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    p["region"]["startLine"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            placed,
            vec![
                ("error".to_owned(), "analytics/models/a.sql".to_owned(), 3),
                ("warning".to_owned(), "analytics/models/s.yml".to_owned(), 1),
                ("note".to_owned(), "analytics/dbt_project.yml".to_owned(), 1),
            ]
        );
        assert_eq!(log["runs"][0]["results"][0]["properties"]["node"], "model.p.a");
    }
}
