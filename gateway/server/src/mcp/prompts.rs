//! MCP prompts: every skill of the Claude Code plugin (`skills/*/SKILL.md`, embedded by `build.rs`) served
//! to any MCP client, with the arguments its front matter declares.

use std::collections::BTreeMap;

use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};
use sluice_core::guidance::{Guide, argument_description};

include!(concat!(env!("OUT_DIR"), "/skills.rs"));

/// The embedded skills, read once.
#[derive(Debug)]
pub struct Prompts {
    guides: Vec<Guide>,
}

impl Prompts {
    /// The skills this binary was built with. One that cannot be read is left out and logged (the test
    /// `every_embedded_skill_is_a_prompt` keeps that from shipping).
    pub fn embedded() -> Prompts {
        let guides = SKILLS
            .iter()
            .filter_map(|text| match Guide::parse(text) {
                Ok(guide) => Some(guide),
                Err(e) => {
                    tracing::error!(error = %e, "a skill could not be read as a prompt");
                    None
                }
            })
            .collect();
        Prompts { guides }
    }

    pub fn list(&self) -> Vec<Prompt> {
        self.guides
            .iter()
            .map(|g| {
                let arguments = g
                    .arguments
                    .iter()
                    .map(|a| {
                        let mut arg = PromptArgument::new(a.as_str());
                        arg.description = Some(argument_description(a).to_owned());
                        arg.required = Some(false);
                        arg
                    })
                    .collect::<Vec<_>>();
                Prompt::new(
                    g.name.as_str(),
                    Some(g.description.as_str()),
                    (!arguments.is_empty()).then_some(arguments),
                )
                .with_title(title(&g.name))
            })
            .collect()
    }

    /// `prompts/get`: the guide with the caller's arguments, as one user message.
    pub fn get(&self, name: &str, arguments: Option<JsonObject>) -> Result<GetPromptResult, ErrorData> {
        let guide = self.guides.iter().find(|g| g.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.guides.iter().map(|g| g.name.as_str()).collect();
            ErrorData::invalid_params(
                format!("unknown prompt '{name}'; available prompts: {}", names.join(", ")),
                None,
            )
        })?;
        let mut given = BTreeMap::new();
        for (key, value) in arguments.unwrap_or_default() {
            let serde_json::Value::String(text) = value else {
                return Err(ErrorData::invalid_params(
                    format!("argument '{key}' of prompt '{name}' must be a string, not {value}"),
                    None,
                ));
            };
            given.insert(key, text);
        }
        let text = guide
            .render(&given)
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(guide.description.clone()),
        )
    }
}

/// `explore-warehouse` → `Explore warehouse`.
fn title(name: &str) -> String {
    let words = name.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_skill_is_a_prompt() {
        let prompts = Prompts::embedded();
        assert_eq!(prompts.guides.len(), SKILLS.len(), "a SKILL.md could not be read");
        assert!(prompts.guides.len() >= 8, "{} skills", prompts.guides.len());
        let listed = prompts.list();
        let explore = listed
            .iter()
            .find(|p| p.name == "explore-warehouse")
            .expect("explore-warehouse is a prompt");
        assert_eq!(explore.title.as_deref(), Some("Explore warehouse"));
        let args: Vec<&str> = explore
            .arguments
            .iter()
            .flatten()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(args, ["connection_name", "question"]);
    }

    #[test]
    fn unknown_prompts_and_bad_arguments_are_refused_with_the_reason() {
        let prompts = Prompts::embedded();
        let err = prompts.get("no-such-prompt", None).unwrap_err();
        assert!(
            err.message
                .contains("unknown prompt 'no-such-prompt'; available prompts: "),
            "{err:?}"
        );
        let mut args = JsonObject::new();
        args.insert("connection_name".into(), serde_json::json!(3));
        let err = prompts.get("explore-warehouse", Some(args)).unwrap_err();
        assert!(err.message.contains("must be a string"), "{err:?}");
        let mut args = JsonObject::new();
        args.insert("table".into(), serde_json::json!("orders"));
        let err = prompts.get("explore-warehouse", Some(args)).unwrap_err();
        assert!(err.message.contains("takes no argument 'table'"), "{err:?}");
    }
}
