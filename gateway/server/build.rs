//! Embeds the Claude Code plugin's skills (`skills/*/SKILL.md` at the repository's root) into the binary,
//! so the gateway serves each one as an MCP prompt from the same file the plugin ships: one source, no copy.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    // The variable as cargo sets it for this run, not as it was when the script was compiled: checkouts in
    // other directories share one target directory, and a compiled-in path would point at another one.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let skills = PathBuf::from(manifest_dir).join("../../skills");
    // A directory: cargo reruns this when anything under it changes (a skill added, edited or removed).
    println!("cargo::rerun-if-changed={}", skills.display());
    let mut found: Vec<PathBuf> = std::fs::read_dir(&skills)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("SKILL.md"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        // A binary without its prompts would serve an empty prompts/list without a word: fail the build.
        println!(
            "cargo::error=no skills/*/SKILL.md found under {}; the prompts are built from them",
            skills.display()
        );
    }
    let mut code =
        String::from("/// Every `skills/*/SKILL.md`, in folder order.\npub const SKILLS: &[&str] = &[\n");
    for path in &found {
        let _ = writeln!(code, "    include_str!({:?}),", path.display().to_string());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("skills.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo::error=cannot write {}: {e}", out.display());
    }
}
