//! The plugin's skills as guidance for any MCP client: a `SKILL.md` (YAML front matter with `name`,
//! `description` and optional `arguments`, then Markdown) read into a [`Guide`], and rendered as the text of
//! an MCP prompt with the caller's arguments. Pure: the texts come from the front door that embeds them.

use std::collections::BTreeMap;

/// One skill, read from its `SKILL.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guide {
    /// The skill's `name` (kebab-case), which is the prompt's name.
    pub name: String,
    /// When to use it, from the front matter.
    pub description: String,
    /// The arguments it takes (`arguments: [connection_name, question]`), all optional.
    pub arguments: Vec<String>,
    /// The Markdown after the front matter.
    pub body: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuideError {
    #[error("a SKILL.md must open with front matter between `---` lines")]
    NoFrontMatter,
    #[error("the front matter has no `{0}`")]
    Missing(&'static str),
    #[error("prompt '{prompt}' takes no argument '{argument}'; its arguments: {known}")]
    UnknownArgument {
        prompt: String,
        argument: String,
        known: String,
    },
}

/// What each argument a skill may declare asks for (shown to clients in `prompts/list`).
pub fn argument_description(name: &str) -> &'static str {
    match name {
        "connection_name" => "The connection to work on (see list_database_connections)",
        "question" => "The question to answer, in plain words",
        "model" => "The dbt model to build, check or fix",
        _ => "A value the guide refers to",
    }
}

impl Guide {
    /// Reads a `SKILL.md`. Only the keys Sluice uses are read from the front matter (one line each;
    /// `arguments` as a flow list or a space-separated string); the others are left to Claude Code.
    pub fn parse(text: &str) -> Result<Guide, GuideError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let rest = text
            .strip_prefix("---\n")
            .or_else(|| text.strip_prefix("---\r\n"))
            .ok_or(GuideError::NoFrontMatter)?;
        let end = rest.find("\n---").ok_or(GuideError::NoFrontMatter)?;
        let (front, after) = rest.split_at(end);
        let body = after.trim_start_matches("\n---").trim_start_matches(['\r', '\n']);
        let mut fields = BTreeMap::new();
        for line in front.lines() {
            if let Some((key, value)) = line.split_once(':')
                && !key.starts_with([' ', '\t', '-', '#'])
            {
                fields.insert(key.trim(), unquote(value.trim()));
            }
        }
        let name = fields.get("name").ok_or(GuideError::Missing("name"))?.to_owned();
        let description = fields
            .get("description")
            .ok_or(GuideError::Missing("description"))?
            .to_owned();
        let arguments = fields
            .get("arguments")
            .map(|list| {
                list.trim_start_matches('[')
                    .trim_end_matches(']')
                    .split([',', ' '])
                    .map(|a| unquote(a.trim()))
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Guide {
            name,
            description,
            arguments,
            body: body.to_owned(),
        })
    }

    /// The prompt text: the arguments given (if any) as a short preamble, then the guide. Every argument
    /// is optional; one the guide does not declare is an error naming those it does.
    pub fn render(&self, given: &BTreeMap<String, String>) -> Result<String, GuideError> {
        let mut preamble = Vec::new();
        for (key, value) in given {
            if !self.arguments.contains(key) {
                return Err(GuideError::UnknownArgument {
                    prompt: self.name.clone(),
                    argument: key.clone(),
                    known: if self.arguments.is_empty() {
                        "none".to_owned()
                    } else {
                        self.arguments.join(", ")
                    },
                });
            }
            if !value.trim().is_empty() {
                preamble.push(format!("- {key}: {}", value.trim()));
            }
        }
        Ok(if preamble.is_empty() {
            self.body.clone()
        } else {
            format!("Apply this guide to:\n{}\n\n{}", preamble.join("\n"), self.body)
        })
    }
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const SKILL: &str = "---\nname: explore-warehouse\ndescription: Use at the start: map it.\n\
        argument-hint: \"[connection_name] [question]\"\narguments: [connection_name, question]\n---\n\n# Explore\n\nSteps.\n";

    #[test]
    fn a_skill_reads_into_a_guide() {
        let g = Guide::parse(SKILL).unwrap();
        assert_eq!(
            g,
            Guide {
                name: "explore-warehouse".into(),
                description: "Use at the start: map it.".into(),
                arguments: vec!["connection_name".into(), "question".into()],
                body: "# Explore\n\nSteps.\n".into(),
            }
        );
        let spaced = Guide::parse("---\nname: 'x'\ndescription: d\narguments: model other\n---\nB").unwrap();
        assert_eq!((spaced.name.as_str(), spaced.arguments.len()), ("x", 2));
        let none = Guide::parse("---\nname: x\ndescription: d\n---\nB").unwrap();
        assert!(none.arguments.is_empty());
    }

    #[test]
    fn broken_skills_and_unknown_arguments_say_what_is_wrong() {
        assert_eq!(Guide::parse("# no front matter"), Err(GuideError::NoFrontMatter));
        assert_eq!(
            Guide::parse("---\nname: x\n---\nB"),
            Err(GuideError::Missing("description"))
        );
        let g = Guide::parse(SKILL).unwrap();
        let args = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            g.render(&args(&[
                ("connection_name", "demo"),
                ("question", "revenue by month")
            ]))
            .unwrap(),
            "Apply this guide to:\n- connection_name: demo\n- question: revenue by month\n\n# Explore\n\nSteps.\n"
        );
        assert_eq!(g.render(&args(&[])).unwrap(), g.body);
        assert_eq!(
            g.render(&args(&[("table", "orders")])).unwrap_err().to_string(),
            "prompt 'explore-warehouse' takes no argument 'table'; its arguments: connection_name, question"
        );
    }
}
