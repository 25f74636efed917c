//! A starting point for a new dbt model: the config block, one CTE per upstream `ref()`/`source()`, and a
//! final CTE selecting every documented column, so the agent begins from the shape the YAML promises.

use crate::verify::{NameError, split_list};

/// A dbt node name: letters, digits and underscores, not starting with a digit (what `ref()` accepts
/// without quoting surprises, and what makes a valid CTE name).
fn check_name(what: &str, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "invalid {what} `{name}`: use letters, digits and underscores, not starting with a digit"
        )))
    }
}

/// An upstream the model reads: `name` is a `ref()`, `source_name.table` a `source()`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Upstream {
    Ref(String),
    Source(String, String),
}

impl Upstream {
    fn parse(text: &str) -> Result<Upstream, NameError> {
        match text.split_once('.') {
            Some((source, table)) => {
                check_name("source name", source)?;
                check_name("source table", table)?;
                Ok(Upstream::Source(source.to_owned(), table.to_owned()))
            }
            None => {
                check_name("ref table", text)?;
                Ok(Upstream::Ref(text.to_owned()))
            }
        }
    }

    fn cte(&self) -> &str {
        match self {
            Upstream::Ref(name) | Upstream::Source(_, name) => name,
        }
    }

    fn jinja(&self) -> String {
        match self {
            Upstream::Ref(name) => format!("{{{{ ref('{name}') }}}}"),
            Upstream::Source(source, table) => format!("{{{{ source('{source}', '{table}') }}}}"),
        }
    }
}

/// The SQL of a new model. `yml_columns` and `ref_tables` are comma-separated as SignalPilot's tool takes
/// them; a `ref_tables` entry with a dot (`shop.orders`) becomes a `source()`.
pub fn sql_skeleton(model_name: &str, yml_columns: &str, ref_tables: &str) -> Result<String, NameError> {
    check_name("model name", model_name)?;
    let columns = split_list(yml_columns);
    if columns.is_empty() {
        return Err(NameError(
            "yml_columns is empty: give the model's columns, comma-separated".to_owned(),
        ));
    }
    for c in &columns {
        check_name("column name", c)?;
    }
    let upstreams = split_list(ref_tables)
        .iter()
        .map(|r| Upstream::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ctes: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for u in &upstreams {
        if !seen.insert(u.cte().to_owned()) {
            return Err(NameError(format!("`{}` is listed twice in ref_tables", u.cte())));
        }
        ctes.push(format!(
            "{} as (\n\n    select * from {}\n\n)",
            u.cte(),
            u.jinja()
        ));
    }
    let from = match upstreams.first() {
        Some(u) => u.cte().to_owned(),
        None => {
            ctes.push(
                "source as (\n\n    -- TODO: read the upstream model or source\n    select * from {{ ref('UPSTREAM') }}\n\n)"
                    .to_owned(),
            );
            "source".to_owned()
        }
    };
    let select: Vec<String> = columns.iter().map(|c| format!("        null as {c}")).collect();
    let joins = if upstreams.len() > 1 {
        "\n    -- TODO: join the other CTEs on their keys (check the grain with analyze_grain)"
    } else {
        ""
    };
    Ok(format!(
        "-- {model_name}: skeleton from its YAML columns. Replace every `null as` with the real expression.\n\
         {{{{\n    config(\n        materialized='table'\n    )\n}}}}\n\n\
         with\n\n{},\n\n\
         final as (\n\n    select\n        -- TODO: derive each column\n{}\n\n    from {from}{joins}\n\n)\n\n\
         select * from final\n",
        ctes.join(",\n\n"),
        select.join(",\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn skeletons() {
        let got = sql_skeleton(
            "customer_ltv",
            "customer_id, lifetime_value",
            "customers, shop.payments",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            "-- customer_ltv: skeleton from its YAML columns. Replace every `null as` with the real expression.\n\
{{\n    config(\n        materialized='table'\n    )\n}}\n\n\
with\n\n\
customers as (\n\n    select * from {{ ref('customers') }}\n\n),\n\n\
payments as (\n\n    select * from {{ source('shop', 'payments') }}\n\n),\n\n\
final as (\n\n    select\n        -- TODO: derive each column\n        null as customer_id,\n        null as lifetime_value\n\n    from customers\n    -- TODO: join the other CTEs on their keys (check the grain with analyze_grain)\n\n)\n\n\
select * from final\n"
        );
        let no_refs = sql_skeleton("m", "a", "").unwrap_or_else(|e| panic!("{e}"));
        assert!(no_refs.contains("{{ ref('UPSTREAM') }}"), "{no_refs}");
        assert!(no_refs.contains("from source\n"), "{no_refs}");
    }

    #[test]
    fn bad_input_says_why() {
        let cases = [
            ("", "a", "", "invalid model name ``"),
            ("1m", "a", "", "invalid model name `1m`"),
            ("m'); drop", "a", "", "invalid model name"),
            ("m", " , ", "", "yml_columns is empty"),
            ("m", "a, b c", "", "invalid column name `b c`"),
            ("m", "a", "x') }}", "invalid ref table"),
            ("m", "a", "s.t.u", "invalid source table `t.u`"),
            ("m", "a", "x, x", "listed twice"),
        ];
        for (model, cols, refs, message) in cases {
            let err = sql_skeleton(model, cols, refs)
                .err()
                .map(|e| e.0)
                .unwrap_or_default();
            assert!(err.contains(message), "{model:?} {cols:?} {refs:?}: {err}");
        }
    }
}
