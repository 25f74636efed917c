//! The engine-level wall on pooled SQLite connections: an authorizer that lets statements only read, no
//! attached databases, and finding where a statement's text ends. sqlx wraps none of these calls.
//!
//! Preparing a statement is not free of effects in SQLite: many pragmas take effect while they are
//! compiled (`PRAGMA case_sensitive_like = 1` swaps the LIKE function at prepare time), so a check on the
//! prepared statement comes too late for them. The authorizer runs inside the compiler, before any such
//! effect, and refuses everything but reads.

use std::ffi::{CStr, c_char, c_int, c_void};

use sqlx::sqlite::LockedSqliteHandle;

/// Pragmas that only read, whatever their argument (a table or index name). The gateway's introspection
/// uses several of them through their table-valued forms (`pragma_table_info(…)`), which SQLite compiles
/// as these pragmas.
const READING_PRAGMAS: &[&str] = &[
    "collation_list",
    "compile_options",
    "database_list",
    "foreign_key_check",
    "foreign_key_list",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "module_list",
    "pragma_list",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Settings whose current value may be read (the pragma without an argument). Pragmas that act when
/// given no argument (`optimize`, `shrink_memory`, `wal_checkpoint`, `incremental_vacuum`) are not here.
const READABLE_SETTINGS: &[&str] = &[
    "application_id",
    "auto_vacuum",
    "busy_timeout",
    "cache_size",
    "data_version",
    "encoding",
    "foreign_keys",
    "freelist_count",
    "journal_mode",
    "max_page_count",
    "page_count",
    "page_size",
    "query_only",
    "reverse_unordered_selects",
    "schema_version",
    "synchronous",
    "temp_store",
    "user_version",
];

/// Whether the authorizer lets a statement do `action` (SQLite's authorizer action code) with its first
/// two arguments: reading tables and columns, selecting, calling functions, recursive CTEs, reading
/// pragmas, and turning `query_only` on (each call starts with that). Everything else — writes, DDL of
/// any kind (temporary objects included), ATTACH/DETACH, transactions, savepoints, ANALYZE, REINDEX,
/// virtual table creation and every pragma that sets something — is denied.
pub(super) fn allowed(action: c_int, arg1: Option<&str>, arg2: Option<&str>) -> bool {
    use libsqlite3_sys as ffi;
    match action {
        ffi::SQLITE_READ | ffi::SQLITE_SELECT | ffi::SQLITE_FUNCTION | ffi::SQLITE_RECURSIVE => true,
        ffi::SQLITE_PRAGMA => {
            let Some(name) = arg1 else { return false };
            let is = |list: &[&str]| list.iter().any(|p| p.eq_ignore_ascii_case(name));
            match arg2 {
                _ if is(READING_PRAGMAS) => true,
                None => is(READABLE_SETTINGS),
                Some(value) => {
                    name.eq_ignore_ascii_case("query_only")
                        && ["1", "on", "true", "yes"]
                            .iter()
                            .any(|v| v.eq_ignore_ascii_case(value.trim()))
                }
            }
        }
        _ => false,
    }
}

/// Reads one of the authorizer's optional C-string arguments.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string valid for the duration of the call.
#[allow(unsafe_code)]
unsafe fn text<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not null, and the caller guarantees a NUL-terminated string that outlives the borrow.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

/// The authorizer SQLite calls while it compiles a statement; a denial fails the prepare with "not
/// authorized" before the statement can have any effect.
#[allow(unsafe_code)]
unsafe extern "C" fn authorize(
    _data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes null or NUL-terminated strings that live until the callback returns.
    let (arg1, arg2) = unsafe { (text(arg1), text(arg2)) };
    if allowed(action, arg1, arg2) {
        libsqlite3_sys::SQLITE_OK
    } else {
        libsqlite3_sys::SQLITE_DENY
    }
}

/// Puts the wall on a newly opened connection: the read-only authorizer, and a limit of zero attached
/// databases (so that `ATTACH` fails in the engine even if the authorizer were removed: "too many
/// attached databases - max 0"). Checks that the limit took.
#[allow(unsafe_code)]
pub(super) fn install(handle: &mut LockedSqliteHandle<'_>) -> Result<(), sqlx::Error> {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this open connection's handle, and the locked handle guarantees that no other thread
    // uses the connection while it is borrowed here. `sqlite3_limit` only reads or sets one integer of the
    // connection (a negative new value only reads it). The authorizer is a plain function that keeps no
    // pointer beyond its call and needs no user data.
    let (limit, rc) = unsafe {
        libsqlite3_sys::sqlite3_limit(db, libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
        let limit = libsqlite3_sys::sqlite3_limit(db, libsqlite3_sys::SQLITE_LIMIT_ATTACHED, -1);
        let rc = libsqlite3_sys::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
        (limit, rc)
    };
    if limit != 0 || rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("could not make the SQLite connection read-only (attach limit {limit}, authorizer {rc})")
                .into(),
        ));
    }
    Ok(())
}

/// How many statements `sql` holds, as SQLite's own parser splits it (whitespace, comments and empty
/// statements between semicolons are none). Text after a first statement that does not even prepare
/// counts as a further statement. Preparing runs nothing, and the authorizer stops anything that would
/// take effect while compiling.
#[allow(unsafe_code)]
pub(super) fn statement_count(handle: &mut LockedSqliteHandle<'_>, sql: &str) -> usize {
    let db = handle.as_raw_handle().as_ptr();
    let mut rest = sql.as_bytes();
    let mut count = 0;
    while !rest.is_empty() {
        let Ok(len) = c_int::try_from(rest.len()) else {
            return count + 2;
        };
        let mut stmt: *mut libsqlite3_sys::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `db` is this open connection's handle, used by no other thread while the locked handle
        // is borrowed. The text pointer and length describe `rest`, which outlives the call; SQLite reads
        // no further than `len` bytes (no terminator needed) and sets `tail` inside that range. A prepared
        // statement is finalized right away and never run.
        let rc = unsafe {
            let rc = libsqlite3_sys::sqlite3_prepare_v2(db, rest.as_ptr().cast(), len, &mut stmt, &mut tail);
            if !stmt.is_null() {
                count += 1;
                libsqlite3_sys::sqlite3_finalize(stmt);
            }
            rc
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            return count + 1;
        }
        let consumed = (tail as usize).saturating_sub(rest.as_ptr() as usize);
        if tail.is_null() || consumed == 0 || consumed > rest.len() {
            break;
        }
        rest = &rest[consumed..];
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsqlite3_sys as ffi;

    #[test]
    fn only_reads_are_authorized() {
        assert!(allowed(ffi::SQLITE_SELECT, None, None));
        assert!(allowed(ffi::SQLITE_READ, Some("orders"), Some("id")));
        assert!(allowed(ffi::SQLITE_FUNCTION, None, Some("count")));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("table_info"), Some("orders")));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("TABLE_INFO"), Some("orders")));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("cache_size"), None));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("query_only"), Some("ON")));
        for (action, arg1, arg2) in [
            (ffi::SQLITE_ATTACH, Some("/etc/passwd"), None),
            (ffi::SQLITE_DETACH, Some("main"), None),
            (ffi::SQLITE_CREATE_TEMP_TABLE, Some("orders"), None),
            (ffi::SQLITE_CREATE_TEMP_VIEW, Some("orders"), None),
            (ffi::SQLITE_INSERT, Some("orders"), None),
            (ffi::SQLITE_TRANSACTION, Some("BEGIN"), None),
            (ffi::SQLITE_PRAGMA, Some("cache_size"), Some("7")),
            (ffi::SQLITE_PRAGMA, Some("case_sensitive_like"), Some("1")),
            (ffi::SQLITE_PRAGMA, Some("query_only"), Some("OFF")),
            (ffi::SQLITE_PRAGMA, Some("optimize"), None),
            (ffi::SQLITE_PRAGMA, Some("locking_mode"), Some("EXCLUSIVE")),
            (ffi::SQLITE_PRAGMA, None, None),
        ] {
            assert!(!allowed(action, arg1, arg2), "{action} {arg1:?} {arg2:?}");
        }
    }

    /// The attach limit holds on its own: with the authorizer taken away again, ATTACH still fails in
    /// the engine.
    #[tokio::test]
    #[allow(unsafe_code)]
    async fn attach_fails_in_the_engine_even_without_the_authorizer() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let attach = format!(
            "ATTACH DATABASE '{}' AS planted",
            dir.path().join("x.db").display()
        );
        {
            let mut handle = conn.lock_handle().await.unwrap();
            install(&mut handle).unwrap();
        }
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(attach.clone()))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not authorized"), "{error}");
        {
            let mut handle = conn.lock_handle().await.unwrap();
            let db = handle.as_raw_handle().as_ptr();
            // SAFETY: the connection's own handle, locked for this thread; removing the authorizer only
            // clears a callback pointer.
            unsafe { ffi::sqlite3_set_authorizer(db, None, std::ptr::null_mut()) };
        }
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(attach))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("too many attached databases - max 0"),
            "{error}"
        );
        assert!(!dir.path().join("x.db").exists());
    }
}
