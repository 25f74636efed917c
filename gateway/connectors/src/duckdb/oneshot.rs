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

/// A column whose values this reader cannot turn into cells (DuckDB's Arrow export gives it a shape
/// the crate has no value for, such as TIME_NS); the crate's reader panicked on these.
fn unreadable(column: &Column) -> ConnectorError {
    ConnectorError::Query {
        message: format!(
            "column \"{}\" has DuckDB type {}, which Sluice cannot read yet; cast it, for example to VARCHAR",
            column.name, column.type_name
        ),
    }
}

fn downcast<A: 'static>(column: &ArrayRef) -> Result<&A, ConnectorError> {
    column.as_any().downcast_ref::<A>().ok_or_else(|| {
        internal(
            "arrow array",
            format!("unexpected array for {}", column.data_type()),
        )
    })
}

fn decimal<'a>(width: u8, scale: i8, value: i128) -> Result<ValueRef<'a>, ConnectorError> {
    let scale = u8::try_from(scale).map_err(|_| internal("decimal", "negative scale"))?;
    Decimal::new(width, scale, value)
        .map(ValueRef::Decimal)
        .map_err(|e| internal("decimal", e))
}

/// One cell of a top-level column as the crate's `ValueRef`, by the crate's rules: the Arrow type picks
/// the variant, and the column's DuckDB type tells apart what Arrow carries alike (GEOMETRY as binary;
/// HUGEINT, UHUGEINT and DECIMAL(38,0) as Decimal128(38,0)). Nested values stay borrowed Arrow arrays,
/// which the crate itself turns into owned values.
fn value_ref<'a>(
    column: &'a ArrayRef,
    row: usize,
    logical: Option<LogicalTypeId>,
) -> Result<ValueRef<'a>, ConnectorError> {
    if column.is_null(row) {
        return Ok(ValueRef::Null);
    }
    let value = match column.data_type() {
        DataType::Utf8 => ValueRef::Text(downcast::<array::StringArray>(column)?.value(row).as_bytes()),
        DataType::LargeUtf8 => {
            ValueRef::Text(downcast::<array::LargeStringArray>(column)?.value(row).as_bytes())
        }
        DataType::Binary => ValueRef::Blob(downcast::<array::BinaryArray>(column)?.value(row)),
        DataType::LargeBinary => ValueRef::Blob(downcast::<array::LargeBinaryArray>(column)?.value(row)),
        DataType::FixedSizeBinary(_) => ValueRef::Blob(downcast::<FixedSizeBinaryArray>(column)?.value(row)),
        DataType::Boolean => ValueRef::Boolean(downcast::<array::BooleanArray>(column)?.value(row)),
        DataType::Int8 => ValueRef::TinyInt(downcast::<array::Int8Array>(column)?.value(row)),
        DataType::Int16 => ValueRef::SmallInt(downcast::<array::Int16Array>(column)?.value(row)),
        DataType::Int32 => ValueRef::Int(downcast::<array::Int32Array>(column)?.value(row)),
        DataType::Int64 => ValueRef::BigInt(downcast::<array::Int64Array>(column)?.value(row)),
        DataType::UInt8 => ValueRef::UTinyInt(downcast::<array::UInt8Array>(column)?.value(row)),
        DataType::UInt16 => ValueRef::USmallInt(downcast::<array::UInt16Array>(column)?.value(row)),
        DataType::UInt32 => ValueRef::UInt(downcast::<array::UInt32Array>(column)?.value(row)),
        DataType::UInt64 => ValueRef::UBigInt(downcast::<array::UInt64Array>(column)?.value(row)),
        DataType::Float32 => ValueRef::Float(downcast::<array::Float32Array>(column)?.value(row)),
        DataType::Float64 => ValueRef::Double(downcast::<array::Float64Array>(column)?.value(row)),
        DataType::Decimal32(width, scale) => decimal(
            *width,
            *scale,
            i128::from(downcast::<array::Decimal32Array>(column)?.value(row)),
        )?,
        DataType::Decimal64(width, scale) => decimal(
            *width,
            *scale,
            i128::from(downcast::<array::Decimal64Array>(column)?.value(row)),
        )?,
        DataType::Decimal128(width, scale) => {
            let value = downcast::<array::Decimal128Array>(column)?.value(row);
            if *scale == 0 && *width == Decimal::MAX_WIDTH {
                // HUGEINT, UHUGEINT and DECIMAL(38,0) look alike in Arrow; the DuckDB type decides.
                match logical {
                    Some(LogicalTypeId::UHugeint) => ValueRef::UHugeInt(value as u128),
                    Some(LogicalTypeId::Decimal) => decimal(*width, 0, value)?,
                    _ => ValueRef::HugeInt(value),
                }
            } else {
                decimal(*width, *scale, value)?
            }
        }
        DataType::Timestamp(unit, _) => {
            let (unit, value) = match unit {
                TimeUnit::Second => (
                    types::TimeUnit::Second,
                    downcast::<array::TimestampSecondArray>(column)?.value(row),
                ),
                TimeUnit::Millisecond => (
                    types::TimeUnit::Millisecond,
                    downcast::<array::TimestampMillisecondArray>(column)?.value(row),
                ),
                TimeUnit::Microsecond => (
                    types::TimeUnit::Microsecond,
                    downcast::<array::TimestampMicrosecondArray>(column)?.value(row),
                ),
                TimeUnit::Nanosecond => (
                    types::TimeUnit::Nanosecond,
                    downcast::<array::TimestampNanosecondArray>(column)?.value(row),
                ),
            };
            ValueRef::Timestamp(unit, value)
        }
        DataType::Date32 => ValueRef::Date32(downcast::<array::Date32Array>(column)?.value(row)),
        DataType::Time64(TimeUnit::Microsecond) => ValueRef::Time64(
            types::TimeUnit::Microsecond,
            downcast::<array::Time64MicrosecondArray>(column)?.value(row),
        ),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let value = downcast::<array::IntervalMonthDayNanoArray>(column)?.value(row);
            ValueRef::Interval {
                months: value.months,
                days: value.days,
                nanos: value.nanoseconds,
            }
        }
        DataType::List(_) => ValueRef::List(ListType::Regular(downcast::<ListArray>(column)?), row),
        DataType::LargeList(_) => ValueRef::List(ListType::Large(downcast::<LargeListArray>(column)?), row),
        DataType::Dictionary(key, _) => {
            let enumeration = match key.as_ref() {
                DataType::UInt8 => EnumType::UInt8(downcast::<DictionaryArray<UInt8Type>>(column)?),
                DataType::UInt16 => EnumType::UInt16(downcast::<DictionaryArray<UInt16Type>>(column)?),
                DataType::UInt32 => EnumType::UInt32(downcast::<DictionaryArray<UInt32Type>>(column)?),
                other => return Err(internal("enum", format!("unexpected key type {other}"))),
            };
            ValueRef::Enum(enumeration, row)
        }
        DataType::Struct(_) => ValueRef::Struct(downcast::<StructArray>(column)?, row),
        DataType::Map(..) => ValueRef::Map(downcast::<MapArray>(column)?, row),
        DataType::FixedSizeList(..) => ValueRef::Array(downcast::<FixedSizeListArray>(column)?, row),
        DataType::Union(..) => ValueRef::Union(column, row),
        other => return Err(internal("arrow array", format!("unsupported type {other}"))),
    };
    Ok(match value {
        ValueRef::Blob(bytes) if logical == Some(LogicalTypeId::Geometry) => ValueRef::Geometry(bytes),
        value => value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duckdb::{convert, query_error};
    use duckdb::Connection;
    use pretty_assertions::assert_eq;

    /// The crate's prepare + query reader that agent statements used before this module: the reference
    /// the one-shot reader is compared with.
    fn crate_path(conn: &Connection, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
        let mut stmt = conn.prepare(sql).map_err(query_error)?;
        let mut rows = stmt.query([]).map_err(query_error)?;
        let columns: Vec<Column> = match rows.as_ref() {
            Some(stmt) => (0..stmt.column_count())
                .map(|i| Column {
                    name: stmt
                        .column_name(i)
                        .cloned()
                        .unwrap_or_else(|_| format!("column{i}")),
                    type_name: convert::type_name(&stmt.column_logical_type(i)),
                })
                .collect(),
            None => Vec::new(),
        };
        let zoned: Vec<bool> = columns
            .iter()
            .map(|c| c.type_name == "TIMESTAMP WITH TIME ZONE")
            .collect();
        let json: Vec<bool> = columns.iter().map(|c| c.type_name == "JSON").collect();
        let mut out = Vec::new();
        let mut truncated = false;
        while let Some(row) = rows.next().map_err(query_error)? {
            if out.len() == max_rows {
                truncated = true;
                break;
            }
            let mut cells = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let value = row.get_ref(i).map_err(query_error)?;
                cells.push(convert::column_cell(value, zoned[i], json[i]));
            }
            out.push(cells);
        }
        Ok(QueryResult {
            columns,
            rows: out,
            truncated,
        })
    }

    /// A file with a table of ordinary and awkward columns, opened read-only with the connector's own
    /// settings.
    fn fixture() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneshot.duckdb");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
                 CREATE TABLE orders (
                     id INTEGER PRIMARY KEY, amount DECIMAL(10,2), big DECIMAL(38,0), huge HUGEINT,
                     uhuge UHUGEINT, note VARCHAR, placed DATE, seen TIMESTAMP, seen_tz TIMESTAMPTZ,
                     doc JSON, feeling mood, tags VARCHAR[], pair STRUCT(a INTEGER, b VARCHAR),
                     attrs MAP(VARCHAR, INTEGER), fixed INTEGER[2], choice UNION(n INTEGER, s VARCHAR),
                     raw BLOB, id_uuid UUID, span INTERVAL, ratio DOUBLE, small FLOAT);
                 INSERT INTO orders VALUES
                     (1, 12.50, 99999999999999999999999999999999999999, -170141183460469231731687303715884105728,
                      340282366920938463463374607431768211455, 'café', DATE '2024-02-29',
                      TIMESTAMP '2024-02-29 12:34:56.789', TIMESTAMPTZ '2024-02-29 12:34:56+02',
                      '{\"k\": [1, 2.5, null]}', 'happy', ['a', NULL], {'a': 1, 'b': 'x'},
                      MAP {'k': 1}, [1, 2], union_value(s := 'text'), '\\xAA\\x00'::BLOB,
                      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', INTERVAL 14 MONTH + INTERVAL 3 DAY,
                      'NaN'::DOUBLE, 1.5),
                     (2, NULL, -1, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                      NULL, NULL, NULL, -0.0, 'inf'::FLOAT),
                     (3, -0.01, 0, 1, 1, '', DATE '1970-01-01', TIMESTAMP '1970-01-01',
                      TIMESTAMPTZ '1970-01-01 00:00:00+00', '\"s\"', 'sad', [], {'a': NULL, 'b': NULL},
                      MAP {}, [NULL, 3], union_value(n := 7), ''::BLOB, NULL, INTERVAL 0 DAY, 1e308, 0);",
            )
            .unwrap();
        }
        let settings = crate::duckdb::settings(&crate::duckdb::DuckDbOptions::default());
        let settings: Vec<(&str, String)> = settings.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let db = Database::open(&path, &settings).unwrap();
        (dir, db)
    }

    fn one_shot(db: &Database, sql: &str, max_rows: usize) -> Result<QueryResult, ConnectorError> {
        run(&db.session().unwrap(), sql, max_rows)
    }

    fn both(
        db: &Database,
        sql: &str,
        max_rows: usize,
    ) -> (Result<QueryResult, String>, Result<QueryResult, String>) {
        let old = crate_path(&db.connection().unwrap(), sql, max_rows).map_err(|e| e.to_string());
        let new = one_shot(db, sql, max_rows).map_err(|e| e.to_string());
        (old, new)
    }

    #[test]
    fn every_type_reads_as_the_crate_reads_it() {
        let (_dir, db) = fixture();
        // TIME_NS is the one column of test_all_types() the crate's reader cannot read (it panics on
        // its Arrow form); see `a_column_the_crate_cannot_read_is_refused_clearly`.
        let queries = [
            "SELECT * EXCLUDE (time_ns) FROM test_all_types()",
            "SELECT * FROM orders ORDER BY id",
            "SELECT id, amount * 2 AS doubled, note || '!' AS shout FROM orders ORDER BY id",
            "SELECT * FROM orders WHERE false",
            "SELECT count(*) AS n, sum(amount) AS total, max(seen_tz) AS latest FROM orders",
            "SELECT range AS i, range::VARCHAR AS s FROM range(5000)",
            "SELECT 1",
            "VALUES (1, 'a'), (2, NULL)",
            "FROM orders SELECT id, feeling, tags, pair, attrs, fixed, choice ORDER BY id DESC",
            "SELECT 'POINT (1 2)'::GEOMETRY AS g",
            "SHOW TABLES",
            "DESCRIBE orders",
            "SUMMARIZE orders",
            "EXPLAIN SELECT * FROM orders",
            "PIVOT orders ON feeling USING sum(amount) GROUP BY id ORDER BY id",
            "SELECT current_setting('access_mode') AS a, current_setting('enable_external_access') AS e, \
             current_setting('lock_configuration') AS l, current_setting('duckdb_api') AS api",
        ];
        for sql in queries {
            let (old, _) = both(&db, sql, usize::MAX);
            let total = old.as_ref().map(|r| r.rows.len()).unwrap_or(0);
            for cap in [0, 1, total.saturating_sub(1), total, total + 1, usize::MAX] {
                let (old, new) = both(&db, sql, cap);
                assert!(old.is_ok(), "{sql}: {old:?}");
                assert_eq!(new, old, "{sql} (cap {cap})");
            }
        }
    }

    #[test]
    fn truncation_matches_at_every_edge() {
        let (_dir, db) = fixture();
        let sql = "SELECT * FROM orders ORDER BY id";
        for (cap, rows, truncated) in [
            (0, 0, true),
            (1, 1, true),
            (2, 2, true),
            (3, 3, false),
            (4, 3, false),
        ] {
            let result = one_shot(&db, sql, cap).unwrap();
            assert_eq!(
                (result.rows.len(), result.truncated),
                (rows, truncated),
                "cap {cap}"
            );
        }
        // Across DuckDB's 2048-row chunks: the extra row may sit in the next chunk.
        for (cap, truncated) in [
            (2047, true),
            (2048, true),
            (2049, true),
            (4095, true),
            (4096, false),
        ] {
            let result = one_shot(&db, "SELECT * FROM range(4096)", cap).unwrap();
            assert_eq!(
                (result.rows.len(), result.truncated),
                (cap.min(4096), truncated),
                "cap {cap}"
            );
            assert_eq!(
                result.rows.last().cloned(),
                Some(vec![serde_json::json!(cap.min(4096) - 1)])
            );
        }
        let empty = one_shot(&db, "SELECT * FROM orders WHERE false", 0).unwrap();
        assert_eq!(
            (empty.rows.len(), empty.truncated, empty.columns.len()),
            (0, false, 21)
        );
    }

    #[test]
    fn a_column_the_crate_cannot_read_is_refused_clearly() {
        let (_dir, db) = fixture();
        let error = one_shot(&db, "SELECT 1 AS n, time_ns FROM test_all_types()", 10).expect_err("TIME_NS");
        assert_eq!(
            error.to_string(),
            "column \"time_ns\" has DuckDB type TIMENS, which Sluice cannot read yet; cast it, for example to VARCHAR"
        );
        let cast = one_shot(&db, "SELECT time_ns::VARCHAR AS t FROM test_all_types()", 10).unwrap();
        assert_eq!(cast.rows[0], vec![serde_json::json!("00:00:00")]);
    }

    #[test]
    fn exactly_one_statement_runs() {
        let (_dir, db) = fixture();
        let error = one_shot(&db, "SELECT 1; SELECT 2", 10).expect_err("two statements");
        assert_eq!(
            error.to_string(),
            "this text holds 2 DuckDB statements; only one statement runs per call"
        );
        // The crate's prepare would run the first statement and answer the second; here nothing runs, so
        // the temporary table never exists, even on the same connection.
        let session = db.session().unwrap();
        let error = run(
            &session,
            "CREATE TEMP TABLE planted AS SELECT 42 AS x; SELECT * FROM planted",
            10,
        )
        .expect_err("a write hidden before a read");
        assert_eq!(
            error.to_string(),
            "this text holds 2 DuckDB statements; only one statement runs per call"
        );
        let error = run(&session, "SELECT * FROM planted", 10).expect_err("nothing ran");
        assert!(
            error
                .to_string()
                .contains("Table with name planted does not exist"),
            "{error}"
        );
        // A trailing semicolon, comments and blank space are still one statement.
        let result = run(&session, "  -- why\n SELECT 7 AS x; /* done */ ", 10).unwrap();
        assert_eq!(result.rows, vec![vec![serde_json::json!(7)]]);
        for empty in ["", "  ", "-- nothing", ";"] {
            let error = run(&session, empty, 10).expect_err(empty);
            assert_eq!(
                error.to_string(),
                "this text holds no DuckDB statement; send one query",
                "{empty:?}"
            );
        }
        let error = run(&session, "SELECT 1\0", 10).expect_err("NUL byte");
        assert_eq!(error.to_string(), "the SQL text holds a NUL byte");
    }

    /// Every text the shortcut lets through without counting is one statement or a parse error by the
    /// parser's own count, and the parse errors read as before.
    #[test]
    fn the_shortcut_agrees_with_the_parser() {
        let (_dir, db) = fixture();
        let session = db.session().unwrap();
        let corpus = [
            "SELECT 1",
            "  select * from orders",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "SELECT 1 SELECT 2",
            "SELECT 'a;b'",
            "SELECT 1 -- trailing comment",
            "SELECT /* inner */ 1",
            "SELEC 1",
            "x",
            ")",
            "FROM orders",
            "VALUES (1)",
            "PIVOT orders ON feeling USING sum(amount)",
            "DESCRIBE orders",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "SUMMARIZE orders",
            "'just a string'",
            "\u{feff}SELECT 1",
            "-- only a comment",
            "/* only a comment */",
            "",
            "   ",
            "SELECT 1; SELECT 2",
            "\nSELECT\n1\n",
        ];
        for sql in corpus {
            let c_sql = CString::new(sql).unwrap();
            let counted = count_statements(&session, &c_sql);
            if at_most_one_statement(sql) {
                match &counted {
                    Ok(count) => assert_eq!(*count, 1, "{sql:?}"),
                    Err(_) => {
                        // The same parse error through the shortcut as through the count.
                        let direct = run(&session, sql, 10).expect_err(sql);
                        assert_eq!(
                            direct.to_string(),
                            counted.as_ref().unwrap_err().to_string(),
                            "{sql:?}"
                        );
                    }
                }
            }
        }
        assert!(!at_most_one_statement("SELECT 'a;b'"));
        assert!(!at_most_one_statement("-- c\nSELECT 1"));
        assert!(!at_most_one_statement("  "));
        assert!(at_most_one_statement("SELECT 1"));
    }

    #[test]
    fn errors_read_as_the_crate_path_reads_them() {
        let (_dir, db) = fixture();
        for sql in [
            "SELEC 1",
            "SELECT * FROM orders WHERE",
            "SELECT nope FROM orders",
            "SELECT * FROM missing",
            "SELECT 1/0::INTEGER, 'x'::INTEGER",
            "COPY orders TO '/tmp/leak.csv'",
            "SET enable_external_access = true",
            "SELECT 1::VARIANT AS v",
        ] {
            let (old, new) = both(&db, sql, 10);
            assert!(old.is_err(), "{sql}: {old:?}");
            assert_eq!(new, old, "{sql}");
        }
        // The one difference: a write refused by the read-only instance is named for what it is. Through
        // prepare + execute DuckDB saw (and named) the EXECUTE of a prepared statement.
        let (old, new) = both(&db, "CREATE TABLE t (x INTEGER)", 10);
        let refused = |kind: &str| {
            format!(
                "Invalid Input Error: Cannot execute statement of type \"{kind}\" on database \"oneshot\" \
                 which is attached in read-only mode!"
            )
        };
        assert_eq!((old, new), (Err(refused("EXECUTE")), Err(refused("CREATE"))));
        let error = one_shot(&db, "SELEC 1", 10).unwrap_err().to_string();
        assert_eq!(
            error,
            "Parser Error: syntax error at or near \"SELEC\"\n\nLINE 1: SELEC 1\n        ^^^^^"
        );
    }

    #[test]
    fn an_interrupt_stops_the_statement_and_is_harmless_afterwards() {
        let (_dir, db) = fixture();
        let session = db.session().unwrap();
        let stopper = session.interrupter();
        let interrupting = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            stopper.interrupt();
            stopper
        });
        let started = std::time::Instant::now();
        let error = run(
            &session,
            "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b",
            10,
        )
        .expect_err("interrupted");
        assert_eq!(error.to_string(), "the query was interrupted");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let stopper = interrupting.join().unwrap();
        drop(session);
        // The connection is gone: the handle must not reach it.
        stopper.interrupt();
        assert!(stopper.con.lock().unwrap().is_null());
    }
}
