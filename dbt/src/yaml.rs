//! A small YAML tree with line numbers, built from yaml-rust2's events, so findings can point at YAML lines.
//!
//! dbt property files use anchors, aliases and `<<` merge keys in the wild; all three are supported. Only the
//! first document of a file is read, as dbt does.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value. Scalars stay text: dbt's YAML is read for names and descriptions, never for numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

/// A YAML node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Yaml {
    pub line: u32,
    pub value: Value,
}

/// Why a YAML file could not be parsed, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YamlError {
    pub line: u32,
    pub message: String,
}

impl Yaml {
    /// The value under `key` in a mapping, looking through `<<` merge keys as YAML 1.1 does.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        let Value::Map(entries) = &self.value else {
            return None;
        };
        // Later duplicates win, as in PyYAML, which is what dbt uses.
        if let Some((_, v)) = entries.iter().rev().find(|(k, _)| k == key) {
            return Some(v);
        }
        let (_, merged) = entries.iter().rev().find(|(k, _)| k == "<<")?;
        match &merged.value {
            Value::Map(_) => merged.get(key),
            Value::Seq(items) => items.iter().find_map(|item| item.get(key)),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of the scalar under `key`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Yaml::as_str)
    }

    /// The items of a sequence; empty for anything else.
    pub fn items(&self) -> &[Yaml] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The entries of a mapping; empty for anything else.
    pub fn entries(&self) -> &[(String, Yaml)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A scalar or a sequence of scalars as a list, which is how dbt accepts `unique_key` and `tags`.
    pub fn string_list(&self) -> Vec<String> {
        match &self.value {
            Value::Scalar(s) => vec![s.clone()],
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Parses the first document of `text`. An empty document is `Ok(None)`.
pub(crate) fn parse(text: &str) -> Result<Option<Yaml>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        line: line_of(e.marker()),
        message: e.info().to_owned(),
    })?;
    Ok(builder.root)
}

fn line_of(marker: &Marker) -> u32 {
    u32::try_from(marker.line()).unwrap_or(u32::MAX)
}

enum Frame {
    Seq {
        line: u32,
        anchor: usize,
        items: Vec<Yaml>,
    },
    Map {
        line: u32,
        anchor: usize,
        entries: Vec<(String, Yaml)>,
        key: Option<String>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Yaml>,
    root: Option<Yaml>,
    done: bool,
}

impl Builder {
    fn complete(&mut self, node: Yaml, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                self.done = true;
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    *key = Some(match node.value {
                        Value::Scalar(s) => s,
                        Value::Null => String::new(),
                        // Complex keys never name anything dbt reads; keep the position with a placeholder.
                        Value::Seq(_) | Value::Map(_) => "<complex key>".to_owned(),
                    })
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        let line = line_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let is_null = style == TScalarStyle::Plain
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let value = if is_null { Value::Null } else { Value::Scalar(text) };
                self.complete(Yaml { line, value }, anchor);
            }
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().unwrap_or(Yaml {
                    line,
                    value: Value::Null,
                });
                self.complete(Yaml { line, ..node }, 0);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                line,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                line,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { line, anchor, items }) => self.complete(
                    Yaml {
                        line,
                        value: Value::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    line,
                    anchor,
                    entries,
                    ..
                }) => self.complete(
                    Yaml {
                        line,
                        value: Value::Map(entries),
                    },
                    anchor,
                ),
                None => {}
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check(text: &str, path: &[&str], expected: Option<(&str, u32)>) {
        let root = parse(text).expect("valid yaml").expect("a document");
        let mut node = &root;
        for key in path {
            node = match key.parse::<usize>() {
                Ok(i) => &node.items()[i],
                Err(_) => match node.get(key) {
                    Some(n) => n,
                    None => {
                        assert_eq!(expected, None, "{path:?} missing in {text}");
                        return;
                    }
                },
            };
        }
        assert_eq!(
            node.as_str().map(|s| (s, node.line)),
            expected,
            "{path:?} in {text}"
        );
    }

    #[test]
    fn lookups() {
        let doc = "version: 2\nmodels:\n  - name: orders\n    description: 'x: y'\n  - name: items\n";
        check(doc, &["models", "0", "name"], Some(("orders", 3)));
        check(doc, &["models", "0", "description"], Some(("x: y", 4)));
        check(doc, &["models", "1", "name"], Some(("items", 5)));
        check(doc, &["sources"], None);
        // Plain null spellings are null; a quoted "null" is text.
        check("a: ~\n", &["a"], None);
        check("a: 'null'\n", &["a"], Some(("null", 1)));
        // Anchors, aliases and merge keys.
        let anchored = "base: &b\n  materialized: view\nm:\n  <<: *b\n  name: x\nalias: *b\n";
        check(anchored, &["m", "materialized"], Some(("view", 2)));
        check(anchored, &["m", "name"], Some(("x", 5)));
        check(anchored, &["alias", "materialized"], Some(("view", 2)));
        // The later of two duplicate keys wins.
        check("a: 1\na: 2\n", &["a"], Some(("2", 2)));
    }

    #[test]
    fn empty_and_broken_documents() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("# only a comment\n"), Ok(None));
        let err = parse("models:\n  - name: \"unterminated\n    columns: [\n").expect_err("broken yaml");
        assert!(err.line >= 2, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn string_lists() {
        let root = parse("a: x\nb: [x, y]\nc: {k: v}\n")
            .expect("valid")
            .expect("doc");
        assert_eq!(root.get("a").map(Yaml::string_list), Some(vec!["x".to_owned()]));
        assert_eq!(
            root.get("b").map(Yaml::string_list),
            Some(vec!["x".to_owned(), "y".to_owned()])
        );
        assert_eq!(root.get("c").map(Yaml::string_list), Some(vec![]));
    }
}
