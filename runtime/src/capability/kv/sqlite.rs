//! The embedded backend: one SQLite file per store, nothing to install or run.
//!
//! # A thread per store
//! rusqlite's calls block, so each store's connection lives on a thread of
//! its own (`tokio-rusqlite`): an operation is a closure sent to that thread
//! and the async caller awaits its answer, so no tokio worker waits on the
//! disk. One connection is enough: SQLite commits one writer at a time
//! anyway and an operation takes microseconds. A pool (`deadpool-sqlite`)
//! would let reads overlap, but it runs two jobs on tokio's blocking pool per
//! operation (its checkout runs a query to test the connection), a pool that
//! compiles and static files need. A caller that gives up (its request timed
//! out) drops only its wait: the closure still runs, so a write is all or
//! nothing.
//!
//! # On disk
//! One table, `kv(key BLOB PRIMARY KEY, value BLOB, expires_at INTEGER)`,
//! without row ids. Keys are stored as blobs so that SQLite compares them with
//! `memcmp` — byte order, as [`Store::list`](super::Store::list) promises —
//! and a prefix is an index range. `expires_at` is milliseconds since the
//! Unix epoch, `NULL` for never; every read filters on it, so an expired row
//! is invisible at once, and a background sweep deletes expired rows now and
//! then so they do not pile up. `PRAGMA user_version` records the schema
//! version.
//!
//! Write-ahead logging lets readers (another wasmlet on the same file) go on
//! while one writes; with `synchronous = NORMAL` a commit survives a crash of
//! the process, though the last ones before a power loss may not.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{KvError, add_to_counter};

/// The schema this code reads and writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS kv (
        key BLOB PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        expires_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
";

/// How long a statement waits for another connection's write lock (another
/// wasmlet on the same file) before it fails. It waits on the store's own
/// thread, never on a worker.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often, at most, a write starts a sweep of expired rows.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Rows one sweep statement deletes; a sweep runs statements until one
/// deletes fewer, and other operations take turns in between.
const SWEEP_BATCH: usize = 500;

const GET: &str = "SELECT value FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
const SET: &str = "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";
const DELETE: &str =
    "DELETE FROM kv WHERE key = ?1 RETURNING expires_at IS NULL OR expires_at > ?2";
const LIST_RANGE: &str = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2
    AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?4";
const LIST_FROM: &str = "SELECT key FROM kv WHERE key >= ?1
    AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?3";
const GET_LIVE: &str = "SELECT value, expires_at FROM kv
    WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
const SWEEP: &str = "DELETE FROM kv WHERE key IN
    (SELECT key FROM kv WHERE expires_at <= ?1 LIMIT ?2)";

/// An open SQLite store; clones share its thread.
#[derive(Clone)]
pub(super) struct SqliteStore {
    conn: tokio_rusqlite::Connection,
    /// `key-value store "NAME" (SQLite file PATH)`, to start messages with.
    label: Arc<str>,
    /// When the next sweep of expired rows is due, in milliseconds since the
    /// epoch; the write that moves it forward starts the sweep.
    next_sweep: Arc<AtomicI64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for the store
    /// `name`.
    pub(super) async fn open(name: &str, path: &Path) -> Result<Self, KvError> {
        let label: Arc<str> =
            format!("key-value store {name:?} (SQLite file {})", path.display()).into();
        let owned = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || open_blocking(&owned))
            .await
            .map_err(|e| KvError::Unavailable(format!("{label}: opening it panicked: {e}")))?;
        let conn = opened.map_err(|reason| KvError::Unavailable(format!("{label}: {reason}")))?;
        Ok(Self {
            conn: tokio_rusqlite::Connection::from(conn),
            label,
            // Not at once: a server that opens its stores at start would
            // otherwise sweep on its first write after every restart.
            next_sweep: Arc::new(AtomicI64::new(
                now_millis().saturating_add(SWEEP_INTERVAL.as_millis() as i64),
            )),
        })
    }

    /// Where the store lives, for `Debug`.
    pub(super) fn describe(&self) -> &str {
        &self.label
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.as_bytes().to_vec();
        let now = now_millis();
        self.conn
            .call(move |conn| {
                conn.prepare_cached(GET)?
                    .query_row(params![key, now], |row| row.get(0))
                    .optional()
            })
            .await
            .map_err(|e| self.failed("get", e))
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<i64>,
    ) -> Result<(), KvError> {
        let key = key.as_bytes().to_vec();
        let value = value.to_vec();
        // `now_millis` truncates, so "now" may be up to 1 ms in the past; one
        // more millisecond makes sure a key never expires before its time to
        // live (it may outlive it by under a millisecond).
        let now = now_millis().saturating_add(1);
        let expires_at = ttl_ms.map(|ttl| now.saturating_add(ttl));
        self.conn
            .call(move |conn| {
                conn.prepare_cached(SET)?
                    .execute(params![key, value, expires_at])
                    .map(drop)
            })
            .await
            .map_err(|e| self.failed("set", e))?;
        self.sweep_if_due(now);
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let key = key.as_bytes().to_vec();
        let now = now_millis();
        // An expired row is deleted too (it is garbage), but does not count
        // as having existed.
        self.conn
            .call(move |conn| {
                conn.prepare_cached(DELETE)?
                    .query_row(params![key, now], |row| row.get::<_, bool>(0))
                    .optional()
                    .map(|live| live.unwrap_or(false))
            })
            .await
            .map_err(|e| self.failed("delete", e))
    }

    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let from = prefix.as_bytes().to_vec();
        let below = range_end(&from);
        let now = now_millis();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn
            .call(move |conn| {
                let keys: Vec<Vec<u8>> = match below {
                    Some(below) => conn
                        .prepare_cached(LIST_RANGE)?
                        .query_map(params![from, below, now, limit], |row| row.get(0))?
                        .collect::<Result<_, _>>()?,
                    None => conn
                        .prepare_cached(LIST_FROM)?
                        .query_map(params![from, now, limit], |row| row.get(0))?
                        .collect::<Result<_, _>>()?,
                };
                // Every key this code writes is UTF-8; a row someone else
                // wrote into the file that is not cannot be named by a
                // handler, so it is not listed.
                Ok(keys
                    .into_iter()
                    .filter_map(|key| String::from_utf8(key).ok())
                    .collect())
            })
            .await
            .map_err(|e| self.failed("list", e))
    }

    pub(super) async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        let name = key.to_owned();
        let key = key.as_bytes().to_vec();
        let now = now_millis();
        // One immediate transaction, so another wasmlet on the same file
        // cannot write between the read and the write.
        self.conn
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let live: Option<(Vec<u8>, Option<i64>)> = tx
                    .prepare_cached(GET_LIVE)?
                    .query_row(params![key, now], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                let (current, expires_at) = live.map_or((None, None), |(v, e)| (Some(v), e));
                let sum = match add_to_counter(&name, current.as_deref(), delta) {
                    Ok(sum) => sum,
                    Err(e) => return Ok(Err(e)),
                };
                tx.prepare_cached(SET)?.execute(params![
                    key,
                    sum.to_string().into_bytes(),
                    expires_at
                ])?;
                tx.commit()?;
                Ok(Ok(sum))
            })
            .await
            .map_err(|e| self.failed("increment", e))?
    }

    /// Starts a background sweep of expired rows when one is due and no
    /// other write started it first.
    fn sweep_if_due(&self, now: i64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        let next = now.saturating_add(SWEEP_INTERVAL.as_millis() as i64);
        if now < due
            || self
                .next_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            match store.sweep(now).await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(store = %store.label, removed, "swept expired keys"),
                Err(e) => tracing::warn!("{e}"),
            }
        });
    }

    /// Deletes the rows that expired by `now`, a batch per statement so that
    /// other operations are not held up behind a long sweep. Returns how many
    /// it deleted.
    async fn sweep(&self, now: i64) -> Result<usize, KvError> {
        let mut removed = 0;
        loop {
            let batch = self
                .conn
                .call(move |conn| {
                    conn.prepare_cached(SWEEP)?
                        .execute(params![now, SWEEP_BATCH as i64])
                })
                .await
                .map_err(|e| self.failed("sweeping expired keys", e))?;
            removed += batch;
            if batch < SWEEP_BATCH {
                return Ok(removed);
            }
        }
    }

    fn failed(&self, operation: &str, error: tokio_rusqlite::Error) -> KvError {
        let reason = match error {
            tokio_rusqlite::Error::Error(e) => e.to_string(),
            tokio_rusqlite::Error::ConnectionClosed => {
                "its SQLite thread has stopped; restart wasmlet".to_owned()
            }
            other => other.to_string(),
        };
        KvError::Unavailable(format!("{}: {operation} failed: {reason}", self.label))
    }
}

/// Creates what is missing and opens the database ready for use. Blocks.
fn open_blocking(path: &Path) -> Result<rusqlite::Connection, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // 0700 like the compiled-code cache: stored values may be private to
        // the handlers that wrote them.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| {
                format!(
                    "cannot create its directory {}: {e}; create it or choose another path",
                    parent.display()
                )
            })?;
    }
    // Created here rather than by SQLite to get mode 0600; SQLite gives its
    // -wal and -shm files the database file's mode.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create the file: {e}")),
    }
    let conn = rusqlite::Connection::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    prepare(conn).map_err(|e| match e {
        Prepare::Sqlite(e) => {
            format!("cannot use it: {e}; check that it is a SQLite database this user can write")
        }
        Prepare::Newer(version) => format!(
            "it has schema version {version}, written by a newer wasmlet (this one knows \
             {SCHEMA_VERSION}); upgrade wasmlet or give this store another file"
        ),
    })
}

enum Prepare {
    Sqlite(rusqlite::Error),
    Newer(i64),
}

impl From<rusqlite::Error> for Prepare {
    fn from(e: rusqlite::Error) -> Self {
        Prepare::Sqlite(e)
    }
}

/// Sets the connection up and creates (or checks) the schema.
fn prepare(mut conn: rusqlite::Connection) -> Result<rusqlite::Connection, Prepare> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems (network ones) cannot share the WAL index; the
        // store still works, with readers and the writer taking turns.
        tracing::warn!(
            "SQLite key-value file {}: write-ahead logging unavailable, using journal mode {mode}",
            conn.path().unwrap_or_default()
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // IMMEDIATE takes the write lock first, so two servers opening a new
    // file at once do not both try to create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        newer => return Err(Prepare::Newer(newer)),
    }
    tx.commit()?;
    Ok(conn)
}

/// The smallest byte string above every string that starts with `prefix`,
/// or `None` when there is none (an empty prefix, or one of only `0xFF`
/// bytes): the end of the index range that holds the prefix's keys.
fn range_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Milliseconds since the Unix epoch, the unit of `expires_at`.
fn now_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_just_above_the_prefix() {
        assert_eq!(range_end(b""), None);
        assert_eq!(range_end(b"a"), Some(b"b".to_vec()));
        assert_eq!(range_end(b"users/"), Some(b"users0".to_vec()));
        assert_eq!(range_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(range_end(b"\xff\xff"), None);
        // "é" is C3 A9: everything that starts with it sorts below C3 AA.
        assert_eq!(range_end("é".as_bytes()), Some(vec![0xC3, 0xAA]));
    }

    #[tokio::test]
    async fn a_sweep_deletes_expired_rows_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        let store = SqliteStore::open("sweep", &path).await.unwrap();
        store.set("expired", b"x", Some(1)).await.unwrap();
        store.set("live", b"x", Some(60_000)).await.unwrap();
        store.set("forever", b"x", None).await.unwrap();

        // Sweeping as of a minute from now: only the 1 ms row has expired.
        let removed = store.sweep(now_millis() + 1_000).await.unwrap();
        assert_eq!(removed, 1);
        let rows: Vec<Vec<u8>> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT key FROM kv ORDER BY key")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [b"forever".to_vec(), b"live".to_vec()]);
    }

    #[tokio::test]
    async fn a_sweep_of_more_than_one_batch_deletes_every_expired_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open("sweep", &dir.path().join("kv.sqlite"))
            .await
            .unwrap();
        let expired = SWEEP_BATCH * 2 + 7;
        for i in 0..expired {
            store.set(&format!("k{i}"), b"", Some(1)).await.unwrap();
        }
        assert_eq!(store.sweep(now_millis() + 1_000).await.unwrap(), expired);
    }

    #[tokio::test]
    async fn a_write_once_a_sweep_is_due_starts_one_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        let store = SqliteStore::open("sweep", &path).await.unwrap();
        store.set("expired", b"x", Some(1)).await.unwrap();
        let rows = || {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("SELECT count(*) FROM kv", [], |row| row.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!(rows(), 1, "no sweep before one is due");

        store.next_sweep.store(0, Ordering::Relaxed);
        // Wait for "expired" to expire, then write: that write sweeps.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.get("expired").await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        store.set("live", b"x", None).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rows() != 1 {
            assert!(std::time::Instant::now() < deadline, "the sweep never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.next_sweep.load(Ordering::Relaxed) > now_millis());
    }

    #[tokio::test]
    async fn opening_creates_missing_directories_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/kv.sqlite");
        SqliteStore::open("private", &path).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_unavailable_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "these are not the pages you are looking for\n".repeat(100),
        )
        .unwrap();
        let error = SqliteStore::open("notes", &path).await.err().unwrap();
        let KvError::Unavailable(message) = error else {
            panic!("expected Unavailable, got {error:?}");
        };
        assert!(message.contains("\"notes\""), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("SQLite database"), "{message}");
    }

    #[tokio::test]
    async fn a_file_from_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let error = SqliteStore::open("future", &path).await.err().unwrap();
        assert!(error.to_string().contains("schema version 7"), "{error}");
    }
}
