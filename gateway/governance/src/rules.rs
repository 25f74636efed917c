//! Stable rule ids: the strings agents, audit logs and tests rely on. Never rename one; add new ones.

/// The SQL could not be parsed in the connection's dialect.
pub const PARSE_ERROR: &str = "parse_error";
/// The text holds no statement at all.
pub const EMPTY_STATEMENT: &str = "empty_statement";
/// More than one statement was sent.
pub const MULTIPLE_STATEMENTS: &str = "multiple_statements";
/// The statement kind is not a read-only query or introspection (DDL, DML, SET, COPY, …).
pub const STATEMENT_NOT_ALLOWED: &str = "statement_not_allowed";
/// `EXPLAIN ANALYZE` runs the statement it explains.
pub const EXPLAIN_ANALYZE: &str = "explain_analyze";
/// A data-modifying statement inside a query (`WITH d AS (DELETE …)`).
pub const DML_IN_CTE: &str = "dml_in_cte";
/// `SELECT … INTO` creates a table or assigns variables.
pub const SELECT_INTO: &str = "select_into";
/// MySQL `INTO OUTFILE` / `INTO DUMPFILE` writes server files.
pub const INTO_OUTFILE: &str = "into_outfile";
/// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`: locking reads.
pub const LOCKING_READ: &str = "locking_read";
/// A function on a deny list (state changes, admin, locks, delays, SQL strings, secrets) or the policy's.
pub const DENIED_FUNCTION: &str = "denied_function";
/// A function that reads files or reaches outside the database.
pub const FILE_ACCESS_FUNCTION: &str = "file_access_function";
/// A function or system view that reads the server's configuration, file locations, credentials or other
/// sessions' activity rather than data (`current_setting('data_directory')`, `pg_stat_activity`): on a
/// superuser connection the engine would answer, so governance refuses it.
pub const SERVER_STATE: &str = "server_state";
/// A string literal used as a table (DuckDB `FROM '/etc/passwd'`).
pub const STRING_LITERAL_TABLE: &str = "string_literal_table";
/// A table name that is a file path or stage (`FROM "data.csv"`, ``parquet.`/x` ``, `@stage`).
pub const FILE_PATH_TABLE: &str = "file_path_table";
/// A name computed at run time (`IDENTIFIER('t')`), which cannot be judged before it runs.
pub const DYNAMIC_IDENTIFIER: &str = "dynamic_identifier";
/// A table the policy denies, or one outside the policy's allowed tables.
pub const DENIED_TABLE: &str = "denied_table";
/// A schema the policy denies, or one outside the policy's allowed schemas.
pub const DENIED_SCHEMA: &str = "denied_schema";
/// A column the policy denies, named directly or reached through `*` or a whole-row reference.
pub const DENIED_COLUMN: &str = "denied_column";
/// Nesting deeper than the policy's limit.
pub const TOO_DEEP: &str = "too_deep";
/// So many operators that the statement could exhaust the stack while being checked.
pub const TOO_COMPLEX: &str = "too_complex";
/// The SQL text is longer than governance accepts.
pub const TOO_LARGE: &str = "too_large";
/// MySQL executable comments `/*! … */`, which MySQL runs as code.
pub const EXECUTABLE_COMMENT: &str = "executable_comment";
/// Optimizer hints `/*+ … */`, which can change session limits such as the execution time.
pub const OPTIMIZER_HINT: &str = "optimizer_hint";
/// The statement cannot be rendered back to SQL that parses to the same tree, so what would run is not
/// what was checked.
pub const UNSTABLE_RENDERING: &str = "unstable_rendering";
/// Governance itself failed on this text (a bug in it or in the parser); the text is refused.
pub const INTERNAL_ERROR: &str = "internal_error";
/// Info: a row limit was added or lowered.
pub const ROW_LIMIT: &str = "row_limit";

/// Every rule id, for documentation and tests.
pub const ALL: &[&str] = &[
    PARSE_ERROR,
    EMPTY_STATEMENT,
    MULTIPLE_STATEMENTS,
    STATEMENT_NOT_ALLOWED,
    EXPLAIN_ANALYZE,
    DML_IN_CTE,
    SELECT_INTO,
    INTO_OUTFILE,
    LOCKING_READ,
    DENIED_FUNCTION,
    FILE_ACCESS_FUNCTION,
    SERVER_STATE,
    STRING_LITERAL_TABLE,
    FILE_PATH_TABLE,
    DYNAMIC_IDENTIFIER,
    DENIED_TABLE,
    DENIED_SCHEMA,
    DENIED_COLUMN,
    TOO_DEEP,
    TOO_COMPLEX,
    TOO_LARGE,
    EXECUTABLE_COMMENT,
    OPTIMIZER_HINT,
    UNSTABLE_RENDERING,
    INTERNAL_ERROR,
    ROW_LIMIT,
];
