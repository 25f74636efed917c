//! `sluice dbt validate` for CI: its exit codes and its output formats.

use pretty_assertions::assert_eq;

use super::*;

/// Runs `sluice dbt …` (no data directory involved).
async fn sluice_dbt(args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(sluice_bin())
        .arg("dbt")
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[tokio::test]
async fn dbt_validate_exit_codes_and_formats() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let defects = project_copy(tmp.path(), "defects")?;
    let jaffle = project_copy(tmp.path(), "jaffle")?;
    let d = defects.to_str().unwrap_or("");
    let j = jaffle.to_str().unwrap_or("");

    let (code, out, _) = sluice_dbt(&["validate", "--project-dir", j, "--fail-on", "warning"]).await?;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("sluice-dbt validate jaffle: 0 error(s), 0 warning(s), 0 info; passed"),
        "{out}"
    );
    let (code, out, _) = sluice_dbt(&["validate", "--project-dir", d]).await?;
    assert_eq!(code, 1, "{out}");
    assert!(out.ends_with(
        "sluice-dbt validate defects: 7 error(s), 15 warning(s), 9 info; failed (fail on error)\n"
    ));

    let (code, out, _) = sluice_dbt(&["validate", "--project-dir", d, "--format", "json"]).await?;
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out)?;
    assert_eq!(
        report["summary"],
        json!({"errors": 7, "warnings": 15, "infos": 9})
    );
    assert_eq!(report["failed"], true);
    let findings = report["findings"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(findings, 31);
    assert!(
        report["findings"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["id"] == "DBT301"
                && f["file"] == format!("{d}/models/marts/_marts.yml")
                && f["line"] == 14)),
        "{out}"
    );

    let (code, out, _) = sluice_dbt(&["validate", "--project-dir", d, "--format", "github"]).await?;
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    // One workflow command per finding, then the summary line.
    assert_eq!(lines.iter().filter(|l| l.starts_with("::")).count(), 31, "{out}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("sluice-dbt validate defects:")),
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("::error ")).count(),
        7,
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("::error file={d}/models/marts/_marts.yml,line=14"))),
        "{out}"
    );

    let (code, out, _) = sluice_dbt(&[
        "validate",
        "--project-dir",
        d,
        "--format",
        "junit",
        "--fail-on",
        "warning",
    ])
    .await?;
    assert_eq!(code, 1);
    assert!(
        out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "),
        "{out}"
    );
    assert!(out.trim_end().ends_with("</testsuites>"), "{out}");
    assert_eq!(out.matches("<testcase ").count(), 31);
    assert_eq!(out.matches("<failure ").count(), 22);
    assert_eq!(
        out.matches("<testcase").count(),
        out.matches("</testcase>").count()
    );

    // Warnings fail only when asked to.
    let (code, _, _) = sluice_dbt(&["validate", "--project-dir", d, "--fail-on", "error"]).await?;
    assert_eq!(code, 1);
    std::fs::remove_dir_all(defects.join("models/after_build"))?;
    std::fs::remove_file(defects.join("target/run_results.json"))?;
    let (code, out, _) = sluice_dbt(&["validate", "--project-dir", d]).await?;
    assert_eq!(code, 1, "documented-column-missing is still an error: {out}");

    let (code, out, err) = sluice_dbt(&["validate", "--project-dir", "/does/not/exist"]).await?;
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("/does/not/exist: not a dbt project"), "{err}");
    let (code, _, err) = sluice_dbt(&["validate", "--project-dir", d, "--format", "yaml"]).await?;
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'yaml' for '--format"), "{err}");

    let (code, out, _) = sluice_dbt(&["map", "--project-dir", j, "--focus", "sources"]).await?;
    assert_eq!(code, 0);
    assert!(out.contains("jaffle_raw"), "{out}");
    let (code, out, _) = sluice_dbt(&[
        "lineage",
        "--project-dir",
        j,
        "customers",
        "--direction",
        "upstream",
    ])
    .await?;
    assert_eq!(code, 0);
    assert!(out.contains("stg_customers"), "{out}");
    Ok(())
}
