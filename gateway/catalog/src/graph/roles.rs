//! The `SelfReference` and `RoleName` rules, which read columns named by a role rather than an entity,
//! and the ranking of a fact table's own event first among its role-named keys.

use std::collections::HashMap;

use crate::names::{agent_nouns, join_compatibility, stem, stem_key};
use crate::snapshot::Table;

use super::InferenceRule;
use super::keys::own_key;
use super::lookup::Names;
use super::score::{
    Candidate, OTHER_THAN_EVENT, ROLE_NAME, SELF_PARENT_ENTITY, SELF_PERSON_ROLE, SELF_STRUCTURAL, base,
    push_types_note,
};
use super::tables::{SuffixClass, TableInfo};
use super::targets::pick_targets;

/// Column names that point at another row of the same entity.
const STRUCTURAL_ROLES: &[&str] = &[
    "parent",
    "predecessor",
    "successor",
    "previous",
    "prev",
    "next",
    "replaced_by",
    "superseded_by",
    "original",
    "root",
];
/// Column names that point at a person; they are self-references only inside a table of people.
const PERSON_ROLES: &[&str] = &[
    "manager",
    "supervisor",
    "boss",
    "mentor",
    "referrer",
    "referred_by",
    "reports_to",
    "report_to",
    "coach",
    "sponsor",
];
/// Stems of table names that hold people.
pub(super) const PEOPLE: &[&str] = &[
    "employe", "staff", "person", "user", "member", "worker", "agent", "associat",
];
/// Role words for a person who is not a row of the referencing table (`SupportRepId` in `Customer`); they
/// point at the schema's table of people. `manager` is not one: in `departments` or `item` a manager may be
/// a name or a person in another system, and `PERSON_ROLES` covers it inside a people table.
const PERSON_ROLES_ELSEWHERE: &[&str] = &["rep", "representative", "salesperson", "salesrep"];

/// Fact tables by their last word (compared as stems), with the role words that name their own event: `sold` in
/// `web_sales`, `order` in `orders`.
const EVENT_ROLES: &[(&str, &[&str])] = &[
    ("sale", &["sold", "sale"]),
    ("order", &["order", "ordered"]),
    ("return", &["return", "returned"]),
    ("shipment", &["ship", "shipped"]),
    ("purchase", &["purchase", "purchased"]),
    ("payment", &["paid", "payment"]),
];

pub(super) fn self_reference(
    tables: &[Table],
    infos: &[TableInfo],
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
) {
    let table = &tables[t];
    let info = &infos[t];
    let w = info.bare_words(c);
    let role_words = match w.split_last() {
        Some((last, prefix)) if !prefix.is_empty() && SuffixClass::of(last).is_some() => prefix,
        _ => w,
    };
    let role = role_words.join("_");
    let parent_entity = role_words.len() >= 2 && STRUCTURAL_ROLES.contains(&role_words[0].as_str()) && {
        let k = stem_key(&role_words[1..]);
        k == info.key || Some(k.as_str()) == info.bare_key.as_deref()
    };
    let (base, why) = if parent_entity {
        (
            SELF_PARENT_ENTITY,
            format!(
                "{} names a {} row of its own table",
                table.columns[c].name, role_words[0]
            ),
        )
    } else if STRUCTURAL_ROLES.contains(&role.as_str()) && role_words.len() < w.len() {
        (
            SELF_STRUCTURAL,
            format!("{} names a {role} row of its own table", table.columns[c].name),
        )
    } else if PERSON_ROLES.contains(&role.as_str()) && PEOPLE.contains(&info.last_stem.as_str()) {
        (
            SELF_PERSON_ROLE,
            format!(
                "{} names a person and {} holds people",
                table.columns[c].name, table.id.name
            ),
        )
    } else {
        return;
    };
    let Some((tc, strength)) = own_key(info) else {
        return;
    };
    if tc == c {
        return;
    }
    let (column, target_col) = (&table.columns[c], &table.columns[tc]);
    let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
        return;
    };
    let mut reason = format!("{why}; {} is its {}", target_col.name, strength.describe());
    push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
    out.push(Candidate::single(
        t,
        c,
        t,
        tc,
        InferenceRule::SelfReference,
        base * types * strength.factor(),
        reason,
    ));
}

/// Reads a column named by a role rather than an entity, where no other rule named a relation: a person
/// role (`SupportRepId`, `sales_rep_id`) points at the schema's one table of people, and `<verb> via`
/// (`ShipVia`) at the table named for whoever does it (`Shippers`). The target is that relation's own key;
/// nothing is inferred when several entities fit, because a role is a weaker signal than a name.
pub(super) fn role_reference(
    tables: &[Table],
    infos: &[TableInfo],
    names: &Names,
    t: usize,
    c: usize,
    out: &mut Vec<Candidate>,
) {
    let info = &infos[t];
    if PEOPLE.contains(&info.last_stem.as_str()) {
        return; // Inside a table of people a person role is a self-reference (that rule's).
    }
    let w = info.bare_words(c);
    let Some((last, role)) = w.split_last() else {
        return;
    };
    let (found, why) = match role {
        [verb] if last == "via" => {
            let found = agent_nouns(verb)
                .iter()
                .find_map(|noun| names.by_name.get(stem(noun).as_str()))
                .cloned()
                .unwrap_or_default();
            (found, format!("`{verb} via` names whoever does `{verb}`"))
        }
        [.., person]
            if SuffixClass::of(last).is_some() && PERSON_ROLES_ELSEWHERE.contains(&person.as_str()) =>
        {
            let found = names.people.iter().map(|&x| (x, false)).collect();
            (found, format!("`{person}` names a person"))
        }
        _ => return,
    };
    let found: Vec<(usize, bool)> = found.into_iter().filter(|(x, _)| *x != t).collect();
    if found.is_empty() {
        return;
    }
    let picked = pick_targets(tables, t, found);
    if picked.ambiguous {
        return;
    }
    let column = &tables[t].columns[c];
    for target in &picked.targets {
        let x = target.relation;
        let Some((tc, strength)) = own_key(&infos[x]) else {
            continue;
        };
        let to = &tables[x];
        let target_col = &to.columns[tc];
        let Some(types) = join_compatibility(&column.data_type, &target_col.data_type) else {
            continue;
        };
        let mut confidence = base(ROLE_NAME, strength) * types;
        let mut reason = format!(
            "{}: {why}, and {} is the one such table; {}.{} is its {}",
            column.name,
            to.id.name,
            to.id.name,
            target_col.name,
            strength.describe()
        );
        picked.modifiers(target, tables, &mut confidence, &mut reason);
        push_types_note(&mut reason, types, &column.data_type, &target_col.data_type);
        out.push(Candidate::single(
            t,
            c,
            x,
            tc,
            InferenceRule::RoleName,
            confidence,
            reason,
        ));
    }
}

/// Where a fact table has several role-named keys onto one relation (`ws_sold_date_sk`, `ws_ship_date_sk`
/// → `date_dim`) and exactly one role is the fact's own event (`sold` for sales), the others rank below it,
/// so that the first path between the two is the one an analyst means.
pub(super) fn prefer_event_roles(infos: &[TableInfo], candidates: &mut [Candidate]) {
    let events = |t: usize| {
        EVENT_ROLES
            .iter()
            .find(|(fact, _)| stem(fact) == infos[t].last_stem)
            .map(|(_, roles)| *roles)
    };
    let mut groups: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (i, cand) in candidates.iter().enumerate() {
        if cand.role && cand.from != cand.to && events(cand.from).is_some() {
            groups.entry((cand.from, cand.to)).or_default().push(i);
        }
    }
    for ((from, _), members) in groups {
        let Some(roles) = events(from) else {
            continue;
        };
        let role_of = |i: usize| {
            infos[from]
                .bare_words(candidates[i].from_columns[0])
                .first()
                .map(String::as_str)
        };
        let mut preferred = members
            .iter()
            .filter(|&&i| role_of(i).is_some_and(|r| roles.contains(&r)))
            .map(|&i| candidates[i].from_columns[0]);
        let Some(column) = preferred.next() else {
            continue;
        };
        if preferred.any(|other| other != column) {
            continue; // Two columns name the event: nothing to prefer.
        }
        let event = members
            .iter()
            .find(|&&i| candidates[i].from_columns[0] == column)
            .and_then(|&i| role_of(i))
            .unwrap_or_default()
            .to_string();
        for &i in &members {
            if candidates[i].from_columns[0] != column {
                let cand = &mut candidates[i];
                cand.confidence *= OTHER_THAN_EVENT;
                cand.reason
                    .push_str(&format!("; `{event}` is the role of this table's own event"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::{check, check_findings};

    #[test]
    fn self_references() {
        check(
            "table hr.employees\n  employee_id int pk\n  manager_id int\n  reports_to int\n",
            &[
                "hr.employees(manager_id) -> hr.employees(employee_id) SelfReference 0.65",
                "hr.employees(reports_to) -> hr.employees(employee_id) SelfReference 0.65",
            ],
        );
        check(
            "table s.categories\n  id int pk\n  parent_category_id int\n",
            &["s.categories(parent_category_id) -> s.categories(id) SelfReference 0.75"],
        );
        check(
            "table s.nodes\n  id int pk\n  parent_id int\n",
            &["s.nodes(parent_id) -> s.nodes(id) SelfReference 0.7"],
        );
        // A manager in a non-people table is a person elsewhere, not a department.
        check("table hr.departments\n  id int pk\n  manager_id int\n", &[]);
    }

    #[test]
    fn role_names_reach_the_table_they_describe() {
        let cases: &[(&str, &[&str])] = &[
            // Northwind: `ShipVia` is whoever ships, the shippers.
            (
                "table dbo.Shippers\n  ShipperID int\n  CompanyName text\ntable dbo.Orders\n  OrderID int\n  ShipVia int\n",
                &["dbo.Orders(ShipVia) -> dbo.Shippers(ShipperID) RoleName 0.6"],
            ),
            // A person role outside a table of people points at the one table of people.
            (
                "table s.employees\n  id int pk\n  name text\ntable s.accounts\n  id int pk\n  sales_rep_id int\n",
                &["s.accounts(sales_rep_id) -> s.employees(id) RoleName 0.75"],
            ),
            // Two tables of people: nothing (and no finding).
            (
                "table s.employees\n  id int pk\ntable s.users\n  id int pk\ntable s.accounts\n  id int pk\n  rep_id int\n",
                &[],
            ),
            // Inside a table of people, in a table with no people table beside it, with unjoinable types,
            // or a `via` no table is named for: nothing.
            ("table s.employees\n  id int pk\n  sales_rep_id int\n", &[]),
            (
                "table s.accounts\n  id int pk\n  rep_id int\ntable s.regions\n  id int pk\n",
                &[],
            ),
            (
                "table s.employees\n  id int pk\ntable s.accounts\n  id int pk\n  rep_id boolean\n",
                &[],
            ),
            (
                "table s.ships\n  ship_id int\n  name text\ntable s.orders\n  id int pk\n  ship_via int\n  contact_via text\n",
                &[],
            ),
            // `manager` stays a self-reference role only: a department's manager is not inferred.
            (
                "table s.employees\n  id int pk\ntable s.departments\n  id int pk\n  manager_id int\n",
                &[],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }

    #[test]
    fn a_facts_own_event_ranks_first_among_its_role_keys() {
        let cases: &[(&str, &[&str])] = &[
            // `sold` is what `web_sales` records; `ship` ranks below it.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.web_sales\n  ws_sold_date_sk int\n  ws_ship_date_sk int\n  ws_quantity int\n",
                &[
                    "ds.web_sales(ws_ship_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.474",
                    "ds.web_sales(ws_sold_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            // Not a fact table (`promotion`), or no role names the event (`bill`/`ship` customer): ties stay.
            (
                "table ds.date_dim\n  d_date_sk int\n  d_date date\n  d_year int\n\
                 table ds.promotion\n  p_promo_sk int\n  p_start_date_sk int\n  p_end_date_sk int\n",
                &[
                    "ds.promotion(p_end_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                    "ds.promotion(p_start_date_sk) -> ds.date_dim(d_date_sk) ColumnPrefix 0.499",
                ],
            ),
            (
                "table ds.customer\n  c_customer_sk int\n  c_name text\n  c_email text\n\
                 table ds.web_sales\n  ws_bill_customer_sk int\n  ws_ship_customer_sk int\n  ws_quantity int\n",
                &[
                    "ds.web_sales(ws_bill_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.525",
                    "ds.web_sales(ws_ship_customer_sk) -> ds.customer(c_customer_sk) ColumnPrefix 0.525",
                ],
            ),
        ];
        for (schema, edges) in cases {
            check_findings(schema, edges, &[]);
        }
    }
}
