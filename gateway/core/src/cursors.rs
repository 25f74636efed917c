//! Result cursors: the rows of a query result that did not fit on the first page, kept for the session
//! that ran it so that `query_database(cursor=…)` can hand them out page by page.
//!
//! Why keep rows rather than re-run the query with an OFFSET: a re-run sees whatever the data is by then
//! and, without a total `ORDER BY`, engines return rows in any order, so pages could repeat or skip rows.
//! The kept rows are one snapshot, each handed out exactly once, and paging costs the warehouse nothing.
//! Memory stays bounded: a result holds at most `row_limit` rows (≤ `[limits] max_rows`), cursors expire
//! after `cursor_ttl_secs` unused, and both their number and their total bytes are capped (the least
//! recently used go first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::ColumnOut;

/// Who may read a cursor: the org, API key and MCP session that ran the query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub org_id: String,
    pub key_id: String,
    pub session_id: String,
}

/// The part of a result still to be handed out.
#[derive(Clone, Debug)]
pub struct Remainder {
    pub connection: String,
    /// The agent's SQL text exactly as sent; a cursor only continues the same call.
    pub sql: String,
    pub sql_executed: String,
    pub columns: Vec<ColumnOut>,
    /// Each row with its size in bytes as JSON.
    pub rows: Vec<(Vec<Value>, u64)>,
    /// The position of `rows[0]` in the whole result (0-based).
    pub offset: u64,
    pub total_rows: u64,
    /// The query had more rows than its row limit (said on the last page).
    pub truncated: bool,
    pub row_limit: u64,
}

impl Remainder {
    fn bytes(&self) -> u64 {
        self.rows.iter().map(|(_, size)| size).sum()
    }
}

/// Why a cursor cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum CursorError {
    /// Unknown, expired, used up, evicted, or belonging to another key or session.
    Unknown,
    /// The cursor belongs to another query than the one in this call.
    Mismatch,
}

struct Entry {
    owner: Owner,
    remainder: Remainder,
    bytes: u64,
    last_used: Instant,
}

/// Every open cursor of this gateway.
pub struct Cursors {
    ttl: Duration,
    max_count: usize,
    max_bytes: u64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Cursors {
    pub fn new(ttl: Duration, max_count: usize, max_bytes: u64) -> Cursors {
        Cursors {
            ttl,
            max_count,
            max_bytes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds plain data; a panic elsewhere cannot leave it half-updated.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `remainder` for `owner` under `id` (a new random id when `None`). Returns the id, or `None`
    /// when the rows alone exceed the memory cap (the caller then says the rest cannot be paged).
    pub fn keep(&self, owner: Owner, id: Option<String>, remainder: Remainder) -> Option<String> {
        let bytes = remainder.bytes();
        if bytes > self.max_bytes || self.max_count == 0 {
            return None;
        }
        let id = id.unwrap_or_else(new_id);
        let mut entries = self.lock();
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.last_used) < self.ttl);
        entries.remove(&id);
        // Least recently used first, until the new entry fits both caps.
        while !entries.is_empty()
            && (entries.len() >= self.max_count
                || entries.values().map(|e| e.bytes).sum::<u64>() + bytes > self.max_bytes)
        {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    entries.remove(&k);
                }
                None => break,
            }
        }
        entries.insert(
            id.clone(),
            Entry {
                owner,
                remainder,
                bytes,
                last_used: now,
            },
        );
        Some(id)
    }

    /// Takes the cursor out (the caller keeps what it does not hand out with [`Cursors::keep`]).
    pub fn take(
        &self,
        owner: &Owner,
        id: &str,
        connection: &str,
        sql: &str,
    ) -> Result<Remainder, CursorError> {
        let mut entries = self.lock();
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.last_used) < self.ttl);
        match entries.get(id) {
            Some(e) if &e.owner == owner => {
                if e.remainder.connection != connection || e.remainder.sql != sql {
                    return Err(CursorError::Mismatch);
                }
            }
            _ => return Err(CursorError::Unknown),
        }
        entries
            .remove(id)
            .map(|e| e.remainder)
            .ok_or(CursorError::Unknown)
    }

    /// Drops every cursor of an MCP session that ended (whatever org or key ran the queries): nobody can
    /// read them any more, so they should not hold memory until their TTL. Returns how many went.
    pub fn drop_session(&self, session_id: &str) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, e| e.owner.session_id != session_id);
        before - entries.len()
    }

    /// Open cursors and the bytes they hold, for diagnostics and tests.
    pub fn usage(&self) -> (usize, u64) {
        let entries = self.lock();
        (entries.len(), entries.values().map(|e| e.bytes).sum())
    }
}

fn new_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    format!(
        "cur_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The size of a row as JSON (plus its separator), which is what it costs in the structured result.
/// The row is encoded into a counter, not a buffer: nothing is allocated.
pub fn row_bytes(row: &[Value]) -> u64 {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, row) {
        Ok(()) => counter.0 + 1,
        Err(_) => 0,
    }
}

/// An `io::Write` that only counts what it is given.
struct ByteCounter(u64);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many leading rows fit in `max_bytes` (at least one, so that every page makes progress).
pub fn page_len(sizes: impl Iterator<Item = u64>, max_bytes: u64) -> usize {
    let mut total = 0u64;
    let mut n = 0usize;
    for size in sizes {
        total += size;
        if n > 0 && total > max_bytes {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// The counted size is the size of the row's JSON encoding plus one separator, for every kind of cell.
    #[test]
    fn row_bytes_counts_the_json_encoding() {
        let rows = [
            vec![],
            vec![Value::Null],
            vec![
                serde_json::json!(1),
                serde_json::json!("a \"quoted\" ✓"),
                serde_json::json!(2.5),
            ],
            vec![
                serde_json::json!({"k": [1, 2, {"x": null}]}),
                serde_json::json!(true),
            ],
        ];
        for row in rows {
            let encoded = serde_json::to_vec(&row).unwrap();
            assert_eq!(row_bytes(&row), encoded.len() as u64 + 1, "{row:?}");
        }
    }

    fn owner(session: &str) -> Owner {
        Owner {
            org_id: "local".into(),
            key_id: "k".into(),
            session_id: session.into(),
        }
    }

    fn remainder(rows: usize, width: usize) -> Remainder {
        Remainder {
            connection: "demo".into(),
            sql: "SELECT 1".into(),
            sql_executed: "SELECT 1 LIMIT 11".into(),
            columns: vec![],
            rows: (0..rows)
                .map(|i| {
                    let row = vec![Value::from(i), Value::from("x".repeat(width))];
                    let size = row_bytes(&row);
                    (row, size)
                })
                .collect(),
            offset: 0,
            total_rows: rows as u64,
            truncated: false,
            row_limit: 10,
        }
    }

    #[test]
    fn pages_fit_the_byte_cap_and_always_progress() {
        let cases: Vec<(Vec<u64>, u64, usize)> = vec![
            (vec![], 100, 0),
            (vec![10, 10, 10], 100, 3),
            (vec![40, 40, 40], 100, 2),
            (vec![40, 60, 1], 100, 2),
            (vec![500, 1], 100, 1),
        ];
        for (sizes, cap, expected) in cases {
            assert_eq!(page_len(sizes.iter().copied(), cap), expected, "{sizes:?}");
        }
    }

    #[test]
    fn only_the_owner_and_the_same_query_read_a_cursor() {
        let cursors = Cursors::new(Duration::from_secs(60), 10, 1 << 20);
        let id = cursors.keep(owner("s1"), None, remainder(3, 1)).unwrap();
        assert!(id.starts_with("cur_"));
        assert_eq!(
            cursors.take(&owner("s2"), &id, "demo", "SELECT 1").unwrap_err(),
            CursorError::Unknown
        );
        assert_eq!(
            cursors.take(&owner("s1"), &id, "demo", "SELECT 2").unwrap_err(),
            CursorError::Mismatch
        );
        let r = cursors.take(&owner("s1"), &id, "demo", "SELECT 1").unwrap();
        assert_eq!(r.rows.len(), 3);
        // Taken means gone.
        assert_eq!(
            cursors.take(&owner("s1"), &id, "demo", "SELECT 1").unwrap_err(),
            CursorError::Unknown
        );
    }

    #[test]
    fn an_ended_session_loses_its_cursors_and_only_its_own() {
        let cursors = Cursors::new(Duration::from_secs(60), 10, 1 << 20);
        let a1 = cursors.keep(owner("a"), None, remainder(2, 1)).unwrap();
        let a2 = cursors.keep(owner("a"), None, remainder(1, 1)).unwrap();
        let other_key = Owner {
            key_id: "k2".into(),
            ..owner("a")
        };
        let _a3 = cursors.keep(other_key, None, remainder(1, 1)).unwrap();
        let b = cursors.keep(owner("b"), None, remainder(1, 1)).unwrap();
        assert_eq!(cursors.drop_session("a"), 3);
        assert_eq!(cursors.usage().0, 1);
        for id in [&a1, &a2] {
            assert_eq!(
                cursors.take(&owner("a"), id, "demo", "SELECT 1").unwrap_err(),
                CursorError::Unknown
            );
        }
        assert_eq!(cursors.drop_session("a"), 0);
        assert_eq!(
            cursors
                .take(&owner("b"), &b, "demo", "SELECT 1")
                .unwrap()
                .rows
                .len(),
            1
        );
    }

    #[test]
    fn count_bytes_and_age_are_bounded() {
        let cursors = Cursors::new(Duration::from_secs(60), 2, 1 << 20);
        let a = cursors.keep(owner("s"), None, remainder(1, 1)).unwrap();
        let b = cursors.keep(owner("s"), None, remainder(1, 1)).unwrap();
        let c = cursors.keep(owner("s"), None, remainder(1, 1)).unwrap();
        assert_eq!(cursors.usage().0, 2);
        assert!(cursors.take(&owner("s"), &a, "demo", "SELECT 1").is_err());
        assert!(cursors.take(&owner("s"), &b, "demo", "SELECT 1").is_ok());
        assert!(cursors.take(&owner("s"), &c, "demo", "SELECT 1").is_ok());

        let small = Cursors::new(Duration::from_secs(60), 10, 1_000);
        assert!(small.keep(owner("s"), None, remainder(5, 400)).is_none());
        let first = small.keep(owner("s"), None, remainder(1, 400)).unwrap();
        let _second = small.keep(owner("s"), None, remainder(1, 400)).unwrap();
        let _third = small.keep(owner("s"), None, remainder(1, 400)).unwrap();
        assert!(small.usage().1 <= 1_000);
        assert!(small.take(&owner("s"), &first, "demo", "SELECT 1").is_err());

        let short = Cursors::new(Duration::from_millis(1), 10, 1 << 20);
        let id = short.keep(owner("s"), None, remainder(1, 1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            short.take(&owner("s"), &id, "demo", "SELECT 1").unwrap_err(),
            CursorError::Unknown
        );
    }
}
