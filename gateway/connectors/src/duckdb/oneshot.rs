//! Agent statements on DuckDB's C API: counted by the parser, then run once with `duckdb_query`.
//!
//! The crate's `prepare` + `query` makes DuckDB plan a statement that reads a table twice: at PREPARE, and
//! again at execute, because the optimizer marks every such prepared statement as needing a rebind.
//! `duckdb_query` parses and plans once. The crate's `prepare` also *executes* every statement of a text
//! but the last, so the text is first split by DuckDB's parser alone (no planning, no execution) and
//! anything but exactly one statement is refused: the engine-side wall behind governance.
//!
//! The result is materialized, as the crate's `query` materializes it, and read chunk by chunk through
//! DuckDB's own Arrow export; the Arrow arrays become the crate's `ValueRef`s by the same rules the crate
//! applies, so cells and type names match the crate's path exactly (`tests` compares the two on every
//! type `test_all_types()` has, edge values and NULLs included).
//!
//! This module also opens the database itself (`duckdb_open_ext`), since a raw connection needs the raw
//! instance, which the crate's `Connection` does not hand out; introspection still gets a crate
//! `Connection` on that same instance.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;
use std::sync::{Arc, Mutex};

use duckdb::arrow::array::{
    self, Array, ArrayRef, DictionaryArray, FixedSizeBinaryArray, FixedSizeListArray, LargeListArray,
    ListArray, MapArray, StructArray,
};
use duckdb::arrow::datatypes::{DataType, IntervalUnit, TimeUnit, UInt8Type, UInt16Type, UInt32Type};
use duckdb::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use duckdb::core::LogicalTypeId;
use duckdb::ffi;
use duckdb::types::{self, Decimal, EnumType, ListType, ValueRef};

use super::convert::{self, TypeInfo};
use crate::{Column, ConnectorError, QueryResult};

mod cells;

use cells::{unreadable, value_ref};

/// Copies and frees a C string DuckDB allocated for the caller (`duckdb_free` is the matching free).
///
/// # Safety
/// `ptr` must be null or a NUL-terminated string DuckDB allocated for the caller, not freed elsewhere.
unsafe fn take_c_string(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not null, NUL-terminated and owned by us per the caller's guarantee; freed once, right after
    // the copy.
    unsafe {
        let text = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        ffi::duckdb_free(ptr.cast());
        Some(text)
    }
}

/// Copies a C string DuckDB keeps ownership of.
///
/// # Safety
/// `ptr` must be null or a NUL-terminated string valid for the duration of the call.
unsafe fn borrowed_c_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not null and NUL-terminated per the caller's guarantee; only read here.
    Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// A `duckdb_config` being filled; destroyed on drop (DuckDB copies it when opening).
struct Settings(ffi::duckdb_config);

impl Settings {
    fn new(settings: &[(&str, String)]) -> Result<Settings, String> {
        let mut config: ffi::duckdb_config = ptr::null_mut();
        // SAFETY: the out pointer is valid; on failure DuckDB leaves nothing to free.
        if unsafe { ffi::duckdb_create_config(&mut config) } != ffi::DuckDBSuccess {
            return Err("could not create a DuckDB configuration".to_owned());
        }
        let out = Settings(config);
        for (name, value) in settings {
            let (Ok(c_name), Ok(c_value)) = (CString::new(*name), CString::new(value.as_str())) else {
                return Err(format!("the setting {name} holds a NUL byte"));
            };
            // SAFETY: the config is live (owned by `out`); both strings are NUL-terminated and outlive
            // the call, which copies them.
            let state = unsafe { ffi::duckdb_set_config(out.0, c_name.as_ptr(), c_value.as_ptr()) };
            if state != ffi::DuckDBSuccess {
                return Err(format!("DuckDB refused the setting {name} = {value}"));
            }
        }
        Ok(out)
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        // SAFETY: created by duckdb_create_config and destroyed only here.
        unsafe { ffi::duckdb_destroy_config(&mut self.0) };
    }
}

/// An open DuckDB instance. Closed when the last holder drops it; every connection made from it must be
/// gone by then (each holds an `Arc` to it while it lives).
pub(super) struct Database {
    raw: ffi::duckdb_database,
}

// SAFETY: a duckdb_database is a handle to DuckDB's thread-safe database instance: connecting to it from
// any thread is allowed, and the handle itself is only closed once, in `Drop`, by its single owner.
unsafe impl Send for Database {}
// SAFETY: as above; shared use only ever connects (`duckdb_connect` is thread-safe).
unsafe impl Sync for Database {}

impl Database {
    /// Opens `path` with `settings` applied in order (so `lock_configuration` can come last). The error is
    /// DuckDB's own message.
    pub(super) fn open(path: &Path, settings: &[(&str, String)]) -> Result<Database, String> {
        use std::os::unix::ffi::OsStrExt;
        let c_path =
            CString::new(path.as_os_str().as_bytes()).map_err(|_| "the path holds a NUL byte".to_owned())?;
        let config = Settings::new(settings)?;
        let mut raw: ffi::duckdb_database = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: the path is NUL-terminated, the config live, the out pointers valid for the call; DuckDB
        // copies the config, which is destroyed when `config` drops.
        let state = unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut raw, config.0, &mut error) };
        // SAFETY: on failure DuckDB allocated `error` for us (or left it null); on success it is null.
        let message = unsafe { take_c_string(error) };
        if state != ffi::DuckDBSuccess || raw.is_null() {
            // On failure DuckDB has already freed its half-built instance and does not set `raw`.
            return Err(message.unwrap_or_else(|| "DuckDB could not open the database".to_owned()));
        }
        Ok(Database { raw })
    }

    /// A crate `Connection` on this instance, for the introspection paths. It does not own the instance;
    /// the caller keeps the `Arc<Database>` alive until the connection is dropped.
    pub(super) fn connection(&self) -> Result<duckdb::Connection, ConnectorError> {
        // SAFETY: `raw` is a live instance (closed only when this value drops, which the caller's `Arc`
        // prevents while the connection lives); `open_from_raw` only connects and never closes it.
        unsafe { duckdb::Connection::open_from_raw(self.raw) }
            .map_err(|e| ConnectorError::Internal(format!("could not connect to the DuckDB instance: {e}")))
    }

    /// A raw connection for one agent statement.
    pub(super) fn session(&self) -> Result<Session, ConnectorError> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `raw` is a live instance (see `connection`); the out pointer is valid.
        if unsafe { ffi::duckdb_connect(self.raw, &mut con) } != ffi::DuckDBSuccess || con.is_null() {
            // SAFETY: disconnecting a null or half-made connection is a no-op in DuckDB.
            unsafe { ffi::duckdb_disconnect(&mut con) };
            return Err(ConnectorError::Internal(
                "could not connect to the DuckDB instance".to_owned(),
            ));
        }
        Ok(Session {
            con,
            stopper: Arc::new(Interrupter { con: Mutex::new(con) }),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: opened by duckdb_open_ext, closed only here; every connection holds an `Arc` to this
        // value, so none is left.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// Interrupts whatever statement its connection is running; a no-op once the connection is gone.
pub(crate) struct Interrupter {
    /// The connection, or null once disconnected. The disconnect happens while this lock is held, so an
    /// interrupt never reaches a freed connection.
    con: Mutex<ffi::duckdb_connection>,
}

// SAFETY: the pointer is only used for `duckdb_interrupt`, which DuckDB allows from any thread while a
// query runs on another, and the mutex orders it against the disconnect.
unsafe impl Send for Interrupter {}
// SAFETY: as above.
unsafe impl Sync for Interrupter {}

impl Interrupter {
    pub(crate) fn interrupt(&self) {
        let guard = self.con.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !guard.is_null() {
            // SAFETY: not null, so not yet disconnected, and the disconnect waits for this lock.
            unsafe { ffi::duckdb_interrupt(*guard) };
        }
    }
}

/// A raw connection that runs one statement and is then dropped (disconnected).
pub(super) struct Session {
    con: ffi::duckdb_connection,
    stopper: Arc<Interrupter>,
}

impl Session {
    /// The handle a timeout uses to stop this connection's statement.
    pub(super) fn interrupter(&self) -> Arc<Interrupter> {
        Arc::clone(&self.stopper)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut guard = self
            .stopper
            .con
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: connected in `Database::session` and disconnected only here, under the interrupter's
        // lock, which is then cleared so a late interrupt does nothing.
        unsafe { ffi::duckdb_disconnect(&mut self.con) };
        *guard = ptr::null_mut();
    }
}

/// Parsed statements of a text; destroyed on drop.
struct Extracted(ffi::duckdb_extracted_statements);

impl Drop for Extracted {
    fn drop(&mut self) {
        // SAFETY: made by duckdb_extract_statements (null is tolerated) and destroyed only here.
        unsafe { ffi::duckdb_destroy_extracted(&mut self.0) };
    }
}

/// A query result; destroyed on drop (DuckDB requires it even when the query failed).
struct ResultHandle(ffi::duckdb_result);

impl Drop for ResultHandle {
    fn drop(&mut self) {
        // SAFETY: filled by duckdb_query (success or failure) and destroyed only here.
        unsafe { ffi::duckdb_destroy_result(&mut self.0) };
    }
}

/// Arrow export options of a result; destroyed on drop.
struct ArrowOptions(ffi::duckdb_arrow_options);

impl Drop for ArrowOptions {
    fn drop(&mut self) {
        // SAFETY: made by duckdb_result_get_arrow_options and destroyed only here.
        unsafe { ffi::duckdb_destroy_arrow_options(&mut self.0) };
    }
}

/// A result column's logical type, owned; the crate's handle cannot be made from a raw pointer.
struct RawType(ffi::duckdb_logical_type);

impl Drop for RawType {
    fn drop(&mut self) {
        // SAFETY: DuckDB handed this type to us to destroy, exactly once.
        unsafe { ffi::duckdb_destroy_logical_type(&mut self.0) };
    }
}

impl RawType {
    fn raw_id(&self) -> u32 {
        // SAFETY: a live logical type.
        unsafe { ffi::duckdb_get_type_id(self.0) as u32 }
    }

    /// Whether this type or any type nested in it is `id`.
    fn contains(&self, id: LogicalTypeId) -> bool {
        TypeInfo::id(self) == Ok(id) || (0..self.num_children()).any(|i| self.child(i).contains(id))
    }
}

impl TypeInfo for RawType {
    fn alias(&self) -> Option<String> {
        // DuckDB reads through the pointer without a null check here (unlike for the id).
        if self.0.is_null() {
            return None;
        }
        // SAFETY: a live logical type; the alias, if any, is allocated for us to free.
        unsafe { take_c_string(ffi::duckdb_logical_type_get_alias(self.0)) }
    }

    fn id(&self) -> Result<LogicalTypeId, u32> {
        let raw = self.raw_id();
        match LogicalTypeId::from(raw) {
            LogicalTypeId::Unsupported => Err(raw),
            id => Ok(id),
        }
    }

    fn decimal_width(&self) -> u8 {
        // SAFETY: a live logical type (DuckDB answers 0 for a non-decimal).
        unsafe { ffi::duckdb_decimal_width(self.0) }
    }

    fn decimal_scale(&self) -> u8 {
        // SAFETY: as above.
        unsafe { ffi::duckdb_decimal_scale(self.0) }
    }

    fn num_children(&self) -> usize {
        match TypeInfo::id(self) {
            // SAFETY: a live struct type.
            Ok(LogicalTypeId::Struct) => unsafe { ffi::duckdb_struct_type_child_count(self.0) as usize },
            // SAFETY: a live union type.
            Ok(LogicalTypeId::Union) => unsafe { ffi::duckdb_union_type_member_count(self.0) as usize },
            Ok(LogicalTypeId::List | LogicalTypeId::Array) => 1,
            Ok(LogicalTypeId::Map) => 2,
            _ => 0,
        }
    }

    fn child_name(&self, index: usize) -> String {
        // DuckDB does not check the index.
        if index >= self.num_children() {
            return String::new();
        }
        let index = index as ffi::idx_t;
        let name = match TypeInfo::id(self) {
            // SAFETY: a live struct type and an index below its child count.
            Ok(LogicalTypeId::Struct) => unsafe { ffi::duckdb_struct_type_child_name(self.0, index) },
            // SAFETY: a live union type and an index below its member count.
            Ok(LogicalTypeId::Union) => unsafe { ffi::duckdb_union_type_member_name(self.0, index) },
            _ => ptr::null_mut(),
        };
        // SAFETY: null or a name allocated for us to free.
        unsafe { take_c_string(name) }.unwrap_or_default()
    }

    fn child(&self, index: usize) -> RawType {
        // DuckDB does not check the index; a null type is tolerated (its id is INVALID, no children).
        if index >= self.num_children() {
            return RawType(ptr::null_mut());
        }
        let at = index as ffi::idx_t;
        // SAFETY: a live logical type of the kind matched and an index below its child count; each call
        // returns a new type we own.
        let child = unsafe {
            match (TypeInfo::id(self), index) {
                (Ok(LogicalTypeId::Struct), _) => ffi::duckdb_struct_type_child_type(self.0, at),
                (Ok(LogicalTypeId::Union), _) => ffi::duckdb_union_type_member_type(self.0, at),
                (Ok(LogicalTypeId::List), 0) => ffi::duckdb_list_type_child_type(self.0),
                (Ok(LogicalTypeId::Array), 0) => ffi::duckdb_array_type_child_type(self.0),
                (Ok(LogicalTypeId::Map), 0) => ffi::duckdb_map_type_key_type(self.0),
                (Ok(LogicalTypeId::Map), 1) => ffi::duckdb_map_type_value_type(self.0),
                _ => ptr::null_mut(),
            }
        };
        RawType(child)
    }
}

/// Turns DuckDB error data into a result, destroying it.
///
/// # Safety
/// `error` must be null or error data DuckDB allocated for the caller.
unsafe fn error_data(mut error: ffi::duckdb_error_data) -> Result<(), String> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: live error data per the caller; its message is read before it is destroyed, once.
    unsafe {
        let outcome = if ffi::duckdb_error_data_has_error(error) {
            Err(borrowed_c_string(ffi::duckdb_error_data_message(error)).unwrap_or_default())
        } else {
            Ok(())
        };
        ffi::duckdb_destroy_error_data(&mut error);
        outcome
    }
}

fn internal(what: &str, why: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Internal(format!("{what}: {why}"))
}

/// How many statements DuckDB's parser finds in `sql` (parsing only: nothing is planned or run).
/// A text the parser rejects is the parser's error, worded as DuckDB words it.
fn count_statements(session: &Session, sql: &CStr) -> Result<usize, ConnectorError> {
    let mut extracted = Extracted(ptr::null_mut());
    // SAFETY: a live connection, a NUL-terminated text that outlives the call, a valid out pointer; the
    // statements are destroyed when `extracted` drops.
    let count = unsafe { ffi::duckdb_extract_statements(session.con, sql.as_ptr(), &mut extracted.0) };
    if count == 0 {
        // SAFETY: `extracted` is live (or null, which DuckDB answers with null).
        let error = unsafe { borrowed_c_string(ffi::duckdb_extract_statements_error(extracted.0)) };
        return Err(super::query_message(error.unwrap_or_else(|| {
            "this text holds no DuckDB statement; send one query".to_owned()
        })));
    }
    Ok(count as usize)
}

/// Whether `sql` is known, without parsing it, to be exactly one statement or a syntax error: then
/// `duckdb_query` runs at most one statement of it, and counting its statements first (a second full parse,
/// 45-160 µs with DuckDB 2.0's parser, a tenth of a short read) can be skipped.
///
/// DuckDB's grammar separates the statements of a text with `;` and nothing else (`stmtmulti: stmtmulti ';'
/// toplevel_stmt`; the PEG grammar of DuckDB 2.0 likewise), and a `;` token is the byte `;`. So a text
/// without that byte anywhere (not even inside a string, identifier or comment, which would not be a
/// separator but is excluded all the same, to keep the argument simple) has at most one statement. Zero is
/// excluded too: a text with a non-blank first character that does not open a comment begins with a
/// token, and tokens either form a statement or are a syntax error. Everything else (texts with a `;`,
/// blank ones, ones opening with a comment) is counted by the parser as before. The test
/// `the_shortcut_agrees_with_the_parser` checks this against the parser's count on a corpus.
fn at_most_one_statement(sql: &str) -> bool {
    let text = sql.trim_start();
    !text.is_empty() && !sql.contains(';') && !text.starts_with("--") && !text.starts_with("/*")
}

/// Runs one agent statement on `session` and reads at most `max_rows` rows; one more is looked at to
/// know whether the result was truncated.
pub(super) fn run(session: &Session, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
    let c_sql = CString::new(sql).map_err(|_| ConnectorError::Query {
        message: "the SQL text holds a NUL byte".to_owned(),
    })?;
    if !at_most_one_statement(sql) {
        let count = count_statements(session, &c_sql)?;
        if count > 1 {
            return Err(ConnectorError::Query {
                message: format!(
                    "this text holds {count} DuckDB statements; only one statement runs per call"
                ),
            });
        }
    }
    // SAFETY: all-zero is the documented initial state of a duckdb_result out-parameter.
    let mut result = ResultHandle(unsafe { std::mem::zeroed() });
    // SAFETY: a live connection, a NUL-terminated text that outlives the call, a valid out pointer; the
    // result is destroyed when `result` drops, whatever the state.
    let state = unsafe { ffi::duckdb_query(session.con, c_sql.as_ptr(), &mut result.0) };
    if state != ffi::DuckDBSuccess {
        return Err(
            result_error(&mut result).unwrap_or_else(|| ConnectorError::Query {
                message: "DuckDB failed the statement without saying why".to_owned(),
            }),
        );
    }
    read(&mut result, max_rows)
}

/// The error a result carries, if any, as the connector reports it.
fn result_error(result: &mut ResultHandle) -> Option<ConnectorError> {
    // SAFETY: a live result; the message belongs to it and is copied before it is destroyed.
    let message = unsafe { borrowed_c_string(ffi::duckdb_result_error(&mut result.0)) }?;
    Some(super::query_message(message))
}

/// Reads the columns and up to `max_rows` (+ one to detect truncation) rows of a successful result.
fn read(result: &mut ResultHandle, max_rows: usize) -> Result<QueryResult, ConnectorError> {
    // SAFETY: a live, successful result.
    let width = unsafe { ffi::duckdb_column_count(&mut result.0) } as usize;
    let mut names = Vec::with_capacity(width);
    let mut types = Vec::with_capacity(width);
    let mut columns = Vec::with_capacity(width);
    for i in 0..width {
        let at = i as ffi::idx_t;
        // SAFETY: a live result and a column index below its count; the name belongs to the result and
        // is copied (the `CString` is kept for the Arrow schema), the type is ours to destroy.
        let (name, logical) = unsafe {
            let name = ffi::duckdb_column_name(&mut result.0, at);
            let name = if name.is_null() {
                CString::new(format!("column{i}")).unwrap_or_default()
            } else {
                CStr::from_ptr(name).to_owned()
            };
            (name, RawType(ffi::duckdb_column_logical_type(&mut result.0, at)))
        };
        if logical.0.is_null() {
            return Err(internal(
                "column type",
                format!("DuckDB gave no type for column {i}"),
            ));
        }
        // The crate refuses results with VARIANT anywhere in a column's type, before reading; so does
        // this reader, in the crate's words.
        if logical.contains(LogicalTypeId::Variant) {
            return Err(ConnectorError::Query {
                message: format!(
                    "Conversion error from type Variant at index: {i}, decoding Variant columns is not supported"
                ),
            });
        }
        columns.push(Column {
            name: name.to_string_lossy().into_owned(),
            type_name: convert::type_name(&logical),
        });
        names.push(name);
        types.push(logical);
    }
    let top: Vec<Option<LogicalTypeId>> = types.iter().map(|t| TypeInfo::id(t).ok()).collect();
    let zoned: Vec<bool> = columns
        .iter()
        .map(|c| c.type_name == "TIMESTAMP WITH TIME ZONE")
        .collect();
    let json: Vec<bool> = columns.iter().map(|c| c.type_name == "JSON").collect();

    // SAFETY: a live result; the options are destroyed when `options` drops.
    let options = ArrowOptions(unsafe { ffi::duckdb_result_get_arrow_options(&mut result.0) });
    if options.0.is_null() {
        return Err(internal("arrow options", "DuckDB gave none for the result"));
    }
    let mut schema = FFI_ArrowSchema::empty();
    let mut type_ptrs: Vec<ffi::duckdb_logical_type> = types.iter().map(|t| t.0).collect();
    let mut name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    // SAFETY: live options; `width` types and names, all alive until after the call; `schema` is an
    // empty Arrow schema DuckDB fills (arrow-rs's FFI struct has the C Data Interface layout).
    let exported = unsafe {
        error_data(ffi::duckdb_to_arrow_schema(
            options.0,
            type_ptrs.as_mut_ptr(),
            name_ptrs.as_mut_ptr(),
            width as ffi::idx_t,
            (&raw mut schema).cast(),
        ))
    };
    exported.map_err(|e| internal("arrow schema", e))?;

    let mut rows: Vec<Vec<crate::Cell>> = Vec::new();
    let mut truncated = false;
    loop {
        // SAFETY: a live, materialized result; a returned chunk is ours to destroy (done below or by
        // `duckdb_data_chunk_to_arrow`'s caller here).
        let mut chunk = unsafe { ffi::duckdb_fetch_chunk(result.0) };
        if chunk.is_null() {
            if let Some(error) = result_error(result) {
                return Err(error);
            }
            break;
        }
        // SAFETY: a live chunk.
        let size = unsafe { ffi::duckdb_data_chunk_get_size(chunk) } as usize;
        if size == 0 || rows.len() == max_rows {
            // SAFETY: a live chunk, destroyed once.
            unsafe { ffi::duckdb_destroy_data_chunk(&mut chunk) };
            if size == 0 {
                break;
            }
            // A row beyond the cap exists: that is all this chunk is needed for.
            truncated = true;
            break;
        }
        let mut exported = FFI_ArrowArray::empty();
        // SAFETY: live options and chunk; `exported` is an empty Arrow array DuckDB fills. The chunk is
        // destroyed right after: the Arrow array owns copies of its buffers.
        let converted = unsafe {
            let converted = error_data(ffi::duckdb_data_chunk_to_arrow(
                options.0,
                chunk,
                (&raw mut exported).cast(),
            ));
            ffi::duckdb_destroy_data_chunk(&mut chunk);
            converted
        };
        converted.map_err(|e| internal("arrow chunk", e))?;
        // SAFETY: `exported` and `schema` were filled by DuckDB's Arrow export for the same columns.
        let data = unsafe { from_ffi(exported, &schema) }.map_err(|e| internal("arrow import", e))?;
        let batch = StructArray::from(data);
        for row in 0..batch.len() {
            if rows.len() == max_rows {
                truncated = true;
                break;
            }
            let mut cells = Vec::with_capacity(width);
            for (i, column) in batch.columns().iter().enumerate() {
                let value = value_ref(column, row, top.get(i).copied().flatten())
                    .map_err(|_| unreadable(&columns[i]))?;
                cells.push(convert::column_cell(value, zoned[i], json[i]));
            }
            rows.push(cells);
        }
        if truncated {
            break;
        }
    }
    Ok(QueryResult {
        columns,
        rows,
        truncated,
    })
}

#[cfg(test)]
mod tests;
