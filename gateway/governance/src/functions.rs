//! Built-in function deny lists per dialect, and how a called name is judged against them and the policy.

use crate::Dialect;
use crate::names::{Entries, any_matches};
use crate::policy::Policy;
use crate::rules;

/// How a deny-list entry matches the last part of a called name (already lowercased).
#[derive(Clone, Copy, Debug)]
enum Pat {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Contains(&'static str),
}

impl Pat {
    fn matches(self, name: &str) -> bool {
        match self {
            Pat::Exact(p) => name == p,
            Pat::Prefix(p) => name.starts_with(p),
            Pat::Suffix(p) => name.ends_with(p),
            Pat::Contains(p) => name.contains(p),
        }
    }
}

/// Why a function is denied; it decides the rule id and the advice given to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    ReadsFiles,
    External,
    LoadsCode,
    RunsSql,
    RunsCommands,
    ChangesState,
    Locks,
    Admin,
    Delays,
    Secrets,
    ServerState,
}

impl Why {
    pub(crate) fn rule(self) -> &'static str {
        match self {
            Why::ReadsFiles | Why::External | Why::LoadsCode => rules::FILE_ACCESS_FUNCTION,
            Why::ServerState => rules::SERVER_STATE,
            _ => rules::DENIED_FUNCTION,
        }
    }

    pub(crate) fn message(self, name: &str) -> String {
        match self {
            Why::ReadsFiles => format!(
                "`{name}` reads or writes server files (or large objects) instead of tables and is not \
                 allowed. Query the connection's tables instead."
            ),
            Why::External => format!(
                "`{name}` reaches outside this database (network, other servers or services) and is not \
                 allowed. Query the connection's tables instead."
            ),
            Why::LoadsCode => format!(
                "`{name}` loads native code or extensions into the database and is not allowed. Remove it."
            ),
            Why::RunsSql => format!(
                "`{name}` runs SQL given as a string, which governance cannot inspect, and is not allowed. \
                 Write that query directly instead."
            ),
            Why::RunsCommands => format!(
                "`{name}` runs programs or host-language code on the server and is not allowed. Remove it."
            ),
            Why::ChangesState => format!(
                "`{name}` changes database or session state and is not allowed in a read-only query. \
                 Remove it."
            ),
            Why::Locks => format!("`{name}` takes or releases locks and is not allowed. Remove it."),
            Why::Admin => format!(
                "`{name}` is an administrative function and is not allowed. Remove it; only read-only \
                 queries are accepted."
            ),
            Why::Delays => format!("`{name}` deliberately waits or burns CPU and is not allowed. Remove it."),
            Why::Secrets => format!("`{name}` exposes stored credentials and is not allowed. Remove it."),
            Why::ServerState => format!(
                "`{name}` reads the database server's configuration, credentials or other sessions' activity, \
                 not data, and is not allowed. Query the connection's tables instead."
            ),
        }
    }
}

type Entry = (Pat, Why);

use Pat::{Contains, Exact, Prefix, Suffix};
use Why::*;

/// PostgreSQL (and Redshift, whose catalog functions descend from it).
const POSTGRES: &[Entry] = &[
    (Exact("pg_read_file"), ReadsFiles),
    (Exact("pg_read_binary_file"), ReadsFiles),
    (Exact("pg_stat_file"), ReadsFiles),
    (Prefix("pg_read_"), ReadsFiles),
    (Prefix("pg_ls_"), ReadsFiles),
    (Prefix("pg_file_"), ReadsFiles),
    (Exact("pg_logdir_ls"), ReadsFiles),
    (Prefix("lo_"), ReadsFiles),
    (Exact("loread"), ReadsFiles),
    (Exact("lowrite"), ReadsFiles),
    (Prefix("dblink"), External),
    (Contains("_to_xml"), RunsSql),
    (Exact("ts_stat"), RunsSql),
    (Exact("ts_rewrite"), RunsSql),
    (Exact("nextval"), ChangesState),
    (Exact("setval"), ChangesState),
    (Exact("set_config"), ChangesState),
    (Exact("pg_notify"), ChangesState),
    (Prefix("pg_advisory_"), Locks),
    (Prefix("pg_try_advisory_"), Locks),
    (Prefix("pg_sleep"), Delays),
    (Exact("pg_terminate_backend"), Admin),
    (Exact("pg_cancel_backend"), Admin),
    (Exact("pg_reload_conf"), Admin),
    (Exact("pg_rotate_logfile"), Admin),
    (Exact("pg_promote"), Admin),
    (Exact("pg_log_backend_memory_contexts"), Admin),
    (Exact("pg_import_system_collations"), Admin),
    (Exact("pg_export_snapshot"), Admin),
    (Prefix("pg_stat_reset"), Admin),
    (Exact("pg_stat_statements_reset"), Admin),
    (Prefix("pg_replication_"), Admin),
    (Prefix("pg_logical_"), Admin),
    (Prefix("pg_create_"), Admin),
    (Prefix("pg_drop_"), Admin),
    (Prefix("pg_copy_"), Admin),
    (Prefix("pg_wal_replay_"), Admin),
    (Prefix("pg_backup_"), Admin),
    (Exact("pg_start_backup"), Admin),
    (Exact("pg_stop_backup"), Admin),
    (Prefix("pg_switch_"), Admin),
    // Server configuration and state: what a superuser role would otherwise be shown (the data directory,
    // config and log file paths, the server's address, other sessions' queries, control data).
    (Exact("current_setting"), ServerState),
    (Exact("pg_show_all_settings"), ServerState),
    (Exact("pg_show_all_file_settings"), ServerState),
    (Exact("pg_hba_file_rules"), ServerState),
    (Exact("pg_ident_file_mappings"), ServerState),
    (Exact("pg_config"), ServerState),
    (Exact("pg_current_logfile"), ServerState),
    (Exact("pg_tablespace_location"), ServerState),
    (Prefix("pg_control_"), ServerState),
    (Prefix("pg_stat_get_activity"), ServerState),
    (Prefix("pg_stat_get_backend_"), ServerState),
    (Exact("pg_stat_get_wal_receiver"), ServerState),
    (Exact("pg_get_backend_memory_contexts"), ServerState),
    (Exact("pg_get_shmem_allocations"), ServerState),
    (Prefix("inet_server_"), ServerState),
];

/// PostgreSQL system views and catalogs that hold server state rather than data (see `ServerState`) or
/// credentials: password hashes (`pg_authid`, `pg_shadow`), user-mapping and subscription options,
/// settings with file paths, other sessions' SQL, replication connection strings, large-object contents.
const POSTGRES_SERVER_RELATIONS: &[&str] = &[
    "pg_authid",
    "pg_shadow",
    "pg_user_mapping",
    "pg_user_mappings",
    "pg_subscription",
    "pg_stat_subscription",
    "pg_settings",
    "pg_file_settings",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_config",
    "pg_stat_activity",
    "pg_stat_ssl",
    "pg_stat_gssapi",
    "pg_stat_replication",
    "pg_stat_wal_receiver",
    "pg_replication_slots",
    "pg_largeobject",
    "pg_backend_memory_contexts",
    "pg_shmem_allocations",
];

const DUCKDB: &[Entry] = &[
    (Prefix("read_"), ReadsFiles),
    (Suffix("_scan"), ReadsFiles),
    (Suffix("_attach"), External),
    (Exact("glob"), ReadsFiles),
    (Exact("sniff_csv"), ReadsFiles),
    (Prefix("parquet_"), ReadsFiles),
    (Prefix("iceberg_"), ReadsFiles),
    (Prefix("delta_"), ReadsFiles),
    (Prefix("st_read"), ReadsFiles),
    (Exact("postgres_query"), External),
    (Exact("postgres_execute"), External),
    (Exact("mysql_query"), External),
    (Exact("mysql_execute"), External),
    (Exact("odbc_query"), External),
    (Prefix("http_"), External),
    (Exact("query"), RunsSql),
    (Exact("query_table"), RunsSql),
    (Exact("json_execute_serialized_sql"), RunsSql),
    (Exact("duckdb_secrets"), Secrets),
    (Exact("which_secret"), Secrets),
    (Exact("load_aws_credentials"), Secrets),
    (Exact("getenv"), Secrets),
    (Exact("nextval"), ChangesState),
    (Exact("setseed"), ChangesState),
    (Exact("checkpoint"), ChangesState),
    (Exact("force_checkpoint"), ChangesState),
    (Exact("sleep_ms"), Delays),
];

const MYSQL: &[Entry] = &[
    (Exact("load_file"), ReadsFiles),
    (Exact("sleep"), Delays),
    (Exact("benchmark"), Delays),
    (Exact("master_pos_wait"), Delays),
    (Exact("source_pos_wait"), Delays),
    (Exact("master_gtid_wait"), Delays),
    (Exact("wait_for_executed_gtid_set"), Delays),
    (Exact("wait_until_sql_thread_after_gtids"), Delays),
    (Exact("get_lock"), Locks),
    (Exact("release_lock"), Locks),
    (Exact("release_all_locks"), Locks),
    (Exact("nextval"), ChangesState),
    (Exact("setval"), ChangesState),
    (Exact("sys_exec"), RunsCommands),
    (Exact("sys_eval"), RunsCommands),
];

const SQLITE: &[Entry] = &[
    (Exact("load_extension"), LoadsCode),
    (Exact("readfile"), ReadsFiles),
    (Exact("writefile"), ReadsFiles),
    (Exact("edit"), ReadsFiles),
    (Exact("fsdir"), ReadsFiles),
    (Exact("lsdir"), ReadsFiles),
    (Exact("zipfile"), ReadsFiles),
    (Exact("eval"), RunsSql),
    (Exact("fts3_tokenizer"), Admin),
];

const SNOWFLAKE: &[Entry] = &[
    (Prefix("system$"), Admin),
    (Exact("infer_schema"), ReadsFiles),
    (Exact("get_presigned_url"), ReadsFiles),
    (Exact("build_scoped_file_url"), ReadsFiles),
    (Exact("build_stage_file_url"), ReadsFiles),
    (Exact("get_stage_location"), ReadsFiles),
    (Exact("get_relative_path"), ReadsFiles),
    (Exact("get_absolute_path"), ReadsFiles),
    (Exact("nextval"), ChangesState),
];

const BIGQUERY: &[Entry] = &[(Exact("external_query"), External)];

const MSSQL: &[Entry] = &[
    (Exact("openrowset"), ReadsFiles),
    (Exact("opendatasource"), External),
    (Exact("openquery"), External),
    (Exact("fn_xe_file_target_read_file"), ReadsFiles),
    (Exact("fn_get_audit_file"), ReadsFiles),
    (Exact("fn_trace_gettable"), ReadsFiles),
    (Prefix("xp_"), RunsCommands),
    (Prefix("sp_"), Admin),
];

const DATABRICKS: &[Entry] = &[
    (Prefix("read_"), ReadsFiles),
    (Exact("cloud_files_state"), ReadsFiles),
    (Exact("secret"), Secrets),
    (Exact("try_secret"), Secrets),
    (Exact("list_secrets"), Secrets),
    (Exact("http_request"), External),
    (Prefix("ai_"), External),
    (Exact("reflect"), RunsCommands),
    (Exact("try_reflect"), RunsCommands),
    (Exact("java_method"), RunsCommands),
];

const ALL: &[&[Entry]] = &[
    POSTGRES, DUCKDB, MYSQL, SQLITE, SNOWFLAKE, BIGQUERY, MSSQL, DATABRICKS,
];

fn lists(dialect: Dialect) -> &'static [&'static [Entry]] {
    match dialect {
        Dialect::PostgreSql | Dialect::Redshift => &[POSTGRES],
        Dialect::DuckDb => &[DUCKDB],
        Dialect::MySql => &[MYSQL],
        Dialect::Sqlite => &[SQLITE],
        Dialect::Snowflake => &[SNOWFLAKE],
        Dialect::BigQuery => &[BIGQUERY],
        Dialect::MsSql => &[MSSQL],
        Dialect::Databricks => &[DATABRICKS],
        Dialect::Unknown => ALL,
    }
}

/// The verdict on one called function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FunctionVerdict {
    Allowed,
    BuiltIn(Why),
    Policy,
}

/// Judges a called function, given its name parts (lowercased, outermost first).
///
/// A policy deny entry wins over everything; a policy allow entry lifts a built-in entry; built-in entries
/// match the last part of the name, so quoting and schema qualification (`pg_catalog.pg_read_file`) do
/// not hide a call.
pub(crate) fn judge(parts: &[String], dialect: Dialect, entries: &Entries) -> FunctionVerdict {
    let Some(last) = parts.last() else {
        return FunctionVerdict::Allowed;
    };
    if any_matches(&entries.deny_functions, parts) {
        return FunctionVerdict::Policy;
    }
    let built_in = lists(dialect)
        .iter()
        .flat_map(|l| l.iter())
        .find(|(pat, _)| pat.matches(last));
    match built_in {
        None => FunctionVerdict::Allowed,
        Some((_, why)) => {
            if any_matches(&entries.allow_functions, parts) {
                FunctionVerdict::Allowed
            } else {
                FunctionVerdict::BuiltIn(*why)
            }
        }
    }
}

/// Findings for deny-listed calls (`name(`) among raw tokens, for text the parser rejects: a refusal that
/// names the dangerous function helps more than a syntax error near it.
pub(crate) fn calls_in_tokens(
    tokens: &[sqlparser::tokenizer::TokenWithSpan],
    dialect: Dialect,
    policy: &Policy,
) -> Vec<crate::verdict::Finding> {
    use sqlparser::tokenizer::Token;
    let significant: Vec<&sqlparser::tokenizer::TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let entries = Entries::new(policy);
    let mut findings = Vec::new();
    for pair in significant.windows(2) {
        if let [name, next] = pair
            && let Token::Word(w) = &name.token
            && next.token == Token::LParen
        {
            let why = match judge(&[w.value.to_lowercase()], dialect, &entries) {
                FunctionVerdict::Allowed => continue,
                FunctionVerdict::BuiltIn(why) => (why.rule(), why.message(&w.value)),
                FunctionVerdict::Policy => (
                    rules::DENIED_FUNCTION,
                    format!(
                        "`{}` is denied by this connection's policy. Rewrite the query without it.",
                        w.value
                    ),
                ),
            };
            let start = name.span.start;
            let span = (start.line > 0).then_some(crate::verdict::Span {
                line: start.line,
                column: start.column,
            });
            findings.push(crate::verdict::Finding::deny(why.0, why.1, span));
        }
    }
    findings
}

/// PostgreSQL settings whose values are about how data reads, not about the server's files, network or
/// credentials: `current_setting('TimeZone')` stays allowed.
const HARMLESS_SETTINGS: &[&str] = &[
    "timezone",
    "datestyle",
    "intervalstyle",
    "search_path",
    "server_version",
    "server_version_num",
    "server_encoding",
    "client_encoding",
    "lc_collate",
    "lc_ctype",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "standard_conforming_strings",
    "transaction_read_only",
    "default_transaction_read_only",
    "transaction_isolation",
    "statement_timeout",
    "extra_float_digits",
    "max_identifier_length",
    "integer_datetimes",
];

/// Whether a call is `current_setting('<harmless setting>'[, missing_ok])` on PostgreSQL: the setting named
/// by a literal from [`HARMLESS_SETTINGS`], and no policy entry denying the function. Any other argument
/// (another setting, an expression, a column) leaves the call to the deny list.
pub(crate) fn reads_a_harmless_setting(
    name: &sqlparser::ast::ObjectName,
    args: &sqlparser::ast::FunctionArguments,
    dialect: Dialect,
    entries: &Entries,
) -> bool {
    use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value};
    if !matches!(dialect, Dialect::PostgreSql | Dialect::Redshift) {
        return false;
    }
    let Some(parts) = crate::names::parts(name) else {
        return false;
    };
    if parts.last().map(String::as_str) != Some("current_setting")
        || any_matches(&entries.deny_functions, &parts)
    {
        return false;
    }
    let FunctionArguments::List(list) = args else {
        return false;
    };
    let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(first)))) = list.args.first() else {
        return false;
    };
    let Value::SingleQuotedString(setting) = &first.value else {
        return false;
    };
    HARMLESS_SETTINGS.contains(&setting.to_lowercase().as_str())
}

/// Whether a relation (its last name part, lowercased) is one of the dialect's system views that hold server
/// state or credentials rather than data.
pub(crate) fn is_server_relation(last: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::PostgreSql | Dialect::Redshift | Dialect::Unknown => {
            POSTGRES_SERVER_RELATIONS.contains(&last)
        }
        _ => false,
    }
}

/// Whether a bare relation name is really a call of a credential-exposing function: DuckDB resolves some
/// table functions without parentheses, so `FROM duckdb_secrets` must be judged like `duckdb_secrets()`.
pub(crate) fn is_secret_relation(last: &str, dialect: Dialect) -> bool {
    lists(dialect)
        .iter()
        .flat_map(|l| l.iter())
        .any(|(pat, why)| *why == Secrets && matches!(pat, Exact(_)) && pat.matches(last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn parts(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    fn check(name: &str, dialect: Dialect, policy: &Policy, expected: FunctionVerdict) {
        assert_eq!(
            judge(&parts(name), dialect, &Entries::new(policy)),
            expected,
            "{name} under {dialect:?}"
        );
    }

    #[test]
    fn built_in_lists_are_per_dialect() {
        let p = Policy::default();
        check(
            "pg_read_file",
            Dialect::PostgreSql,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check(
            "pg_catalog.pg_ls_dir",
            Dialect::PostgreSql,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check(
            "lo_import",
            Dialect::PostgreSql,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check("lower", Dialect::PostgreSql, &p, FunctionVerdict::Allowed);
        check(
            "query_to_xml_and_xmlschema",
            Dialect::PostgreSql,
            &p,
            FunctionVerdict::BuiltIn(RunsSql),
        );
        check(
            "pg_try_advisory_xact_lock",
            Dialect::PostgreSql,
            &p,
            FunctionVerdict::BuiltIn(Locks),
        );
        check(
            "read_csv_auto",
            Dialect::DuckDb,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check("read_csv_auto", Dialect::PostgreSql, &p, FunctionVerdict::Allowed);
        check(
            "sqlite_scan",
            Dialect::DuckDb,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check("sleep", Dialect::MySql, &p, FunctionVerdict::BuiltIn(Delays));
        check("sleep", Dialect::PostgreSql, &p, FunctionVerdict::Allowed);
        check("sleep", Dialect::Unknown, &p, FunctionVerdict::BuiltIn(Delays));
        check(
            "system$wait",
            Dialect::Snowflake,
            &p,
            FunctionVerdict::BuiltIn(Admin),
        );
        check("sum", Dialect::Unknown, &p, FunctionVerdict::Allowed);
    }

    #[test]
    fn policy_entries_adjust_the_lists() {
        let p = Policy {
            allow_functions: vec!["read_parquet".into()],
            deny_functions: vec!["analytics.expensive".into(), "MD5".into()],
            ..Policy::default()
        };
        check("read_parquet", Dialect::DuckDb, &p, FunctionVerdict::Allowed);
        check(
            "read_csv",
            Dialect::DuckDb,
            &p,
            FunctionVerdict::BuiltIn(ReadsFiles),
        );
        check("md5", Dialect::DuckDb, &p, FunctionVerdict::Policy);
        check(
            "analytics.expensive",
            Dialect::DuckDb,
            &p,
            FunctionVerdict::Policy,
        );
        check("expensive", Dialect::DuckDb, &p, FunctionVerdict::Policy);
        check("other.expensive", Dialect::DuckDb, &p, FunctionVerdict::Allowed);
    }
}
