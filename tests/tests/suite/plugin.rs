//! The Claude Code plugin in `skills/` against the running server: the skills and agents name only tools
//! and parameters that `tools/list` has (the plugin's own validation and install are in `clients.rs`).

use std::path::PathBuf;

use sluice_e2e::Gateway;
use sluice_e2e::plugin::{Catalogue, problems};

fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("skills")
}

/// Every SKILL.md (one folder per skill) and every agent file of the plugin, with its text.
fn plugin_files() -> anyhow::Result<Vec<(String, String)>> {
    let dir = plugin_dir();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path().join("SKILL.md");
        if path.is_file() {
            files.push(path);
        }
    }
    for entry in std::fs::read_dir(dir.join("agents"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)?;
            let name = p.strip_prefix(&dir).unwrap_or(&p).display().to_string();
            Ok((name, text))
        })
        .collect()
}

#[tokio::test]
async fn skills_and_agents_name_only_real_tools_and_parameters() -> anyhow::Result<()> {
    let gw = Gateway::up().await?;
    let client = gw.client().await?;
    let mut tools = Catalogue::new();
    for tool in client.list_all_tools().await? {
        let params = tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        tools.insert(tool.name.to_string(), params);
    }
    client.cancel().await?;

    let files = plugin_files()?;
    let skills = files
        .iter()
        .filter(|(name, _)| name.ends_with("/SKILL.md"))
        .count();
    assert!(
        skills >= 8,
        "the plugin has {skills} skills, the issue asks for at least eight"
    );
    assert!(
        files.iter().any(|(name, _)| name == "agents/verifier.md"),
        "the plugin has no verifier agent: {:?}",
        files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let found: Vec<String> = files
        .iter()
        .flat_map(|(name, text)| problems(name, text, &tools))
        .collect();
    assert!(
        found.is_empty(),
        "names the server does not have:\n{}",
        found.join("\n")
    );
    Ok(())
}
