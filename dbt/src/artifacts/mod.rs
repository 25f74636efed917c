//! dbt's JSON artifacts, read with serde into only the fields the analyses need.
//!
//! Every type here is owned. `fs` reads an artifact whole and parses it from the slice (several times faster
//! than from a reader), then frees the bytes; fields no check uses (macro bodies, docs, semantic models) are
//! skipped by serde without being allocated. Compiled SQL is kept for models and snapshots: column lineage
//! parses it. Unknown fields are ignored, so newer dbt versions load too, and every error names the file and
//! the JSON path of the value that did not fit.

pub mod catalog;
pub mod manifest;
pub mod run_results;

use std::fmt;
use std::io::Read;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::DbtError;

/// The `metadata` block every artifact starts with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArtifactMetadata {
    /// For example `https://schemas.getdbt.com/dbt/manifest/v12.json`.
    #[serde(default, deserialize_with = "nullable")]
    pub dbt_schema_version: String,
    /// The dbt-core version that wrote the artifact.
    #[serde(default, deserialize_with = "nullable")]
    pub dbt_version: String,
    /// When dbt wrote it (RFC 3339).
    #[serde(default, deserialize_with = "nullable")]
    pub generated_at: String,
    /// The root project's name (manifest only).
    #[serde(default, deserialize_with = "nullable")]
    pub project_name: String,
    /// The adapter, such as `duckdb` (manifest only).
    #[serde(default, deserialize_with = "nullable")]
    pub adapter_type: String,
}

impl ArtifactMetadata {
    /// The schema version number, `12` for `.../manifest/v12.json`.
    pub fn schema_version(&self) -> Option<u32> {
        let file = self.dbt_schema_version.rsplit('/').next()?;
        file.strip_prefix('v')?.strip_suffix(".json")?.parse().ok()
    }
}

/// Deserializes an artifact from a reader, naming `file` and the JSON path on error.
pub(crate) fn from_reader<T: DeserializeOwned>(
    reader: impl Read,
    file: &str,
    artifact: &'static str,
) -> Result<T, DbtError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    finish(&mut de, file, artifact)
}

/// Deserializes an artifact from bytes without tracking the JSON path, which costs a third of the load time
/// of a large manifest. On error the caller parses the bytes again with [`from_slice`] to name the path.
pub(crate) fn from_slice_untracked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes an artifact from bytes, naming `file` and the JSON path on error.
pub(crate) fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    file: &str,
    artifact: &'static str,
) -> Result<T, DbtError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    finish(&mut de, file, artifact)
}

fn finish<'de, R: serde_json::de::Read<'de>, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<R>,
    file: &str,
    artifact: &'static str,
) -> Result<T, DbtError> {
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| DbtError::Json {
        file: file.to_owned(),
        artifact,
        path: e.path().to_string(),
        source: e.into_inner(),
    })?;
    de.end().map_err(|source| DbtError::Json {
        file: file.to_owned(),
        artifact,
        path: ".".to_owned(),
        source,
    })?;
    Ok(value)
}

/// Reads `null` as the type's default: dbt writes `null` for many fields that are usually strings or lists.
pub(crate) fn nullable<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// Reads a JSON object's values into a `Vec`, in file order, dropping the keys (dbt repeats them inside each
/// value as `unique_id` or `name`). `null` reads as empty.
pub(crate) fn map_values<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Values<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Values<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            // The key is read as a string (not skipped) so that serde_path_to_error can name it in errors.
            while let Some((_key, value)) = map.next_entry::<String, T>()? {
                out.push(value);
            }
            Ok(out)
        }
    }
    de.deserialize_any(Values(PhantomData))
}

/// Reads a string, a list of strings or `null` as a list; dbt accepts all three for `unique_key`.
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    struct StringOrList;
    impl<'de> Visitor<'de> for StringOrList {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a list of strings or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Option<String>>()? {
                out.extend(item);
            }
            Ok(out)
        }
    }
    de.deserialize_any(StringOrList)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn schema_versions() {
        let cases = [
            ("https://schemas.getdbt.com/dbt/manifest/v12.json", Some(12)),
            ("https://schemas.getdbt.com/dbt/manifest/v10.json", Some(10)),
            ("https://schemas.getdbt.com/dbt/catalog/v1.json", Some(1)),
            ("", None),
            ("manifest/vX.json", None),
        ];
        for (url, expected) in cases {
            let meta = ArtifactMetadata {
                dbt_schema_version: url.to_owned(),
                ..Default::default()
            };
            assert_eq!(meta.schema_version(), expected, "{url}");
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "string_or_list")]
        key: Vec<String>,
        #[serde(default, deserialize_with = "map_values")]
        values: Vec<u32>,
        #[serde(default, deserialize_with = "nullable")]
        text: String,
    }

    #[test]
    fn tolerant_field_shapes() {
        let cases = [
            (
                r#"{}"#,
                Probe {
                    key: vec![],
                    values: vec![],
                    text: String::new(),
                },
            ),
            (
                r#"{"key": null, "values": null, "text": null}"#,
                Probe {
                    key: vec![],
                    values: vec![],
                    text: String::new(),
                },
            ),
            (
                r#"{"key": "id", "values": {"b": 2, "a": 1}, "text": "t", "unknown": [1]}"#,
                Probe {
                    key: vec!["id".into()],
                    values: vec![2, 1],
                    text: "t".into(),
                },
            ),
            (
                r#"{"key": ["a", null, "b"]}"#,
                Probe {
                    key: vec!["a".into(), "b".into()],
                    values: vec![],
                    text: String::new(),
                },
            ),
        ];
        for (json, expected) in cases {
            let got: Probe = from_slice(json.as_bytes(), "probe.json", "probe").expect(json);
            assert_eq!(got, expected, "{json}");
        }
    }

    #[test]
    fn errors_name_file_and_json_path() {
        let err = from_slice::<Probe>(br#"{"values": {"x": "not a number"}}"#, "t/probe.json", "probe")
            .expect_err("wrong type");
        let text = err.to_string();
        assert!(
            text.starts_with("t/probe.json: invalid probe at JSON path `values.x`"),
            "{text}"
        );
        let err = from_slice::<Probe>(b"{\"key\": \"a\"} trailing", "p.json", "probe").expect_err("trailing");
        assert!(err.to_string().contains("p.json"), "{err}");
        let err = from_reader::<Probe>(&b"{\"text\": "[..], "r.json", "probe").expect_err("truncated");
        assert!(
            err.to_string()
                .contains("r.json: invalid probe at JSON path `text`"),
            "{err}"
        );
    }
}
