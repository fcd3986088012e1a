//! Key-value stores: named buckets of byte values that outlive a request.
//!
//! A [`Store`] is opened once from its [`StoreSettings`] and shared by every
//! request (cloning it is cheap). It offers four operations — [`Store::get`],
//! [`Store::set`] with an optional time to live, [`Store::delete`] and
//! [`Store::list`] by prefix — on one of two backends:
//!
//! - [`Backend::Sqlite`], the default: a file on this machine, nothing to set
//!   up (SQLite is compiled in). See `sqlite.rs`.
//! - [`Backend::Redis`]: a Redis server that several wasmlet nodes share.
//!   See `redis.rs`.
//!
//! Both behave the same, and `tests/tests/kv_store.rs` runs one table of
//! behaviours against each:
//! - Keys are UTF-8, 1 to [`MAX_KEY_LEN`] bytes, without control characters
//!   ([`check_key`]); values are bytes, at most the store's
//!   [`max_value_size`](StoreSettings::max_value_size).
//! - A key whose time to live has passed is gone at once for every operation,
//!   whenever the backend actually removes it.
//! - [`Store::list`] returns keys in byte order, at most [`MAX_LIST`].
//!
//! No operation blocks the calling thread: SQLite work runs on a thread of
//! the store's own, Redis work is async I/O.

mod redis;
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::redis::RedisStore;
use self::sqlite::SqliteStore;

/// The most keys one [`Store::list`] returns, whatever limit it is given: a
/// guest's answer has to fit in its memory, and the Redis backend keeps this
/// many candidates while it scans.
pub const MAX_LIST: usize = 1000;

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// [`StoreSettings::max_value_size`] unless configured otherwise: 1 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 1 << 20;

/// The longest time to live that expires. A longer one is kept without
/// expiry: no store outlives it, and an expiry time far beyond it would
/// overflow the backends' millisecond clocks.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Where a store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite database file on this machine, created (with its missing
    /// parent directories) on first use. One file per store.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A Redis server, for several wasmlet nodes that share state.
    Redis {
        /// `redis://[user:password@]host:port/db`.
        url: String,
        /// Put before every key on the server, so stores (and other users of
        /// the same database) do not see each other's keys.
        prefix: String,
    },
}

/// A store as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The name handlers use for it; messages name it too.
    pub name: String,
    /// Where the data lives.
    pub backend: Backend,
    /// The largest value [`Store::set`] accepts, in bytes; larger ones fail
    /// with [`KvError::TooLarge`] so one handler cannot fill the store.
    pub max_value_size: usize,
}

impl StoreSettings {
    /// A store named `name` on `backend` with the default limits.
    pub fn new(name: impl Into<String>, backend: Backend) -> Self {
        Self {
            name: name.into(),
            backend,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
        }
    }
}

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The caller's input is not acceptable (a bad key, prefix, time to live
    /// or URL); the message says what and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// A value is over the store's `max_value_size`.
    #[error("the value is {size} bytes, over this store's limit of {limit} bytes (max-value-size)")]
    TooLarge {
        /// The value's size in bytes.
        size: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// The backend failed: the file cannot be opened or written, the server
    /// is down or refused. The message names the store and where it lives.
    #[error("{0}")]
    Unavailable(String),
}

/// Checks that `key` is a valid key: 1 to [`MAX_KEY_LEN`] bytes, no control
/// characters (U+0000 to U+001F, U+007F). Being a `&str`, it is UTF-8.
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Invalid(format!(
            "invalid key: it is empty; a key is 1 to {MAX_KEY_LEN} bytes of UTF-8"
        )));
    }
    check_text("key", key)
}

/// Checks a [`Store::list`] prefix: like a key, but it may be empty (to list
/// every key).
fn check_prefix(prefix: &str) -> Result<(), KvError> {
    check_text("prefix", prefix)
}

fn check_text(what: &str, text: &str) -> Result<(), KvError> {
    if text.len() > MAX_KEY_LEN {
        return Err(KvError::Invalid(format!(
            "invalid {what}: it is {} bytes, over the limit of {MAX_KEY_LEN}",
            text.len()
        )));
    }
    // Control characters are refused because keys end up in log lines, in
    // the newline-separated answer of `kv_list`, and in Redis commands typed
    // by people; none of them survives a raw newline or escape.
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| is_control(c)) {
        return Err(KvError::Invalid(format!(
            "invalid {what}: control character U+{:04X} at byte {at}; keys may not contain U+0000 to U+001F or U+007F",
            u32::from(c)
        )));
    }
    Ok(())
}

fn is_control(c: char) -> bool {
    c <= '\u{1f}' || c == '\u{7f}'
}

/// A time to live in whole milliseconds (rounded up, so a value never
/// expires early), `None` for no expiry.
fn ttl_millis(ttl: Option<Duration>) -> Result<Option<i64>, KvError> {
    match ttl {
        None => Ok(None),
        Some(ttl) if ttl.is_zero() => Err(KvError::Invalid(
            "invalid time to live: zero; give none for a value that never expires".into(),
        )),
        Some(ttl) if ttl > MAX_TTL => Ok(None),
        Some(ttl) => {
            let millis = ttl.as_nanos().div_ceil(1_000_000);
            Ok(Some(
                i64::try_from(millis).expect("MAX_TTL fits in i64 milliseconds"),
            ))
        }
    }
}

/// `current` (the value at `key`, if set) plus `delta`, for
/// [`Store::increment`]: a counter is a `u64` in decimal digits.
fn add_to_counter(key: &str, current: Option<&[u8]>, delta: u64) -> Result<u64, KvError> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                KvError::Invalid(format!(
                    "the value of `{key}` is not a counter (decimal digits of a number below 2^64)"
                ))
            })?,
    };
    current.checked_add(delta).ok_or_else(|| {
        KvError::Invalid(format!(
            "incrementing `{key}` by {delta} would pass 2^64 - 1, the largest counter"
        ))
    })
}

/// An open store. Cheap to clone: every clone shares one SQLite thread or
/// one Redis connection, so a server opens each store once and hands clones
/// to its requests.
#[derive(Clone)]
pub struct Store {
    /// For [`Store::name`] and messages.
    name: Arc<str>,
    /// Checked before a value reaches the backend.
    max_value_size: usize,
    backend: Connection,
}

/// The open backend. An enum rather than a trait object: there are two, and
/// async methods on a trait object would box every call's future.
#[derive(Clone)]
enum Connection {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            Connection::Sqlite(store) => store.describe(),
            Connection::Redis(store) => store.describe(),
        };
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("backend", &backend)
            .field("max_value_size", &self.max_value_size)
            .finish()
    }
}

impl Store {
    /// Opens the store: for SQLite, creates the file's missing parent
    /// directories (mode 0700) and the file (0600), turns on write-ahead
    /// logging and creates the table; for Redis, connects and checks the
    /// server answers `PING`. A failure says which store, where, and what to
    /// do.
    pub async fn open(settings: &StoreSettings) -> Result<Store, KvError> {
        let backend = match &settings.backend {
            Backend::Sqlite { path } => {
                Connection::Sqlite(SqliteStore::open(&settings.name, path).await?)
            }
            Backend::Redis { url, prefix } => {
                Connection::Redis(RedisStore::open(&settings.name, url, prefix).await?)
            }
        };
        Ok(Store {
            name: settings.name.as_str().into(),
            max_value_size: settings.max_value_size,
            backend,
        })
    }

    /// The store's name, as the configuration gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest value [`Store::set`] accepts, in bytes. The host checks a
    /// guest's value against it before copying the value out of the guest.
    pub fn max_value_size(&self) -> usize {
        self.max_value_size
    }

    /// The value of `key`, or `None` when it is not set or has expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        match &self.backend {
            Connection::Sqlite(store) => store.get(key).await,
            Connection::Redis(store) => store.get(key).await,
        }
    }

    /// Sets `key` to `value`, replacing any value and time to live it had.
    /// With a `ttl`, the key is gone once that much time has passed (rounded
    /// up to whole milliseconds; zero is invalid, more than [`MAX_TTL`] never
    /// expires).
    pub async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > self.max_value_size {
            return Err(KvError::TooLarge {
                size: value.len(),
                limit: self.max_value_size,
            });
        }
        let ttl = ttl_millis(ttl)?;
        match &self.backend {
            Connection::Sqlite(store) => store.set(key, value, ttl).await,
            Connection::Redis(store) => store.set(key, value, ttl).await,
        }
    }

    /// Removes `key`; `true` when it was set (and not expired).
    pub async fn delete(&self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        match &self.backend {
            Connection::Sqlite(store) => store.delete(key).await,
            Connection::Redis(store) => store.delete(key).await,
        }
    }

    /// Adds `delta` to the counter at `key` and returns the sum, atomically
    /// for every node that shares the store. A counter is a value of decimal
    /// digits (as `wasi:keyvalue/atomics` and Redis `INCRBY` keep it); an
    /// unset key counts as 0, and the key keeps its time to live.
    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        check_key(key)?;
        match &self.backend {
            Connection::Sqlite(store) => store.increment(key, delta).await,
            Connection::Redis(store) => store.increment(key, delta).await,
        }
    }

    /// The keys that start with `prefix` (empty: every key), in byte order,
    /// at most `limit` of them and never more than [`MAX_LIST`]. Expired keys
    /// are not listed.
    pub async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        check_prefix(prefix)?;
        let limit = limit.min(MAX_LIST);
        if limit == 0 {
            return Ok(Vec::new());
        }
        match &self.backend {
            Connection::Sqlite(store) => store.list(prefix, limit).await,
            Connection::Redis(store) => store.list(prefix, limit).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_key_accepts_keys_of_one_to_1024_bytes_of_printable_utf8() {
        for key in [
            "a",
            "users/42",
            "with space",
            "é",
            "日本語",
            "emoji 🦀",
            "*?[]\\",
            // C1 controls (U+0080 to U+009F) are not refused: the
            // ABI refuses only the ASCII ones.
            "c1\u{80}",
            &"k".repeat(MAX_KEY_LEN),
            &"é".repeat(MAX_KEY_LEN / 2),
        ] {
            assert_eq!(check_key(key), Ok(()), "{key:?}");
        }
    }

    #[test]
    fn check_key_refuses_empty_long_and_control_character_keys() {
        let cases: [(String, &str); 8] = [
            (String::new(), "empty"),
            ("k".repeat(MAX_KEY_LEN + 1), "1025 bytes"),
            ("é".repeat(MAX_KEY_LEN / 2) + "a", "1025 bytes"),
            ("a\0b".into(), "U+0000 at byte 1"),
            ("line\n".into(), "U+000A at byte 4"),
            ("\u{1f}".into(), "U+001F at byte 0"),
            ("del\u{7f}".into(), "U+007F at byte 3"),
            ("é\r".into(), "U+000D at byte 2"),
        ];
        for (key, says) in cases {
            match check_key(&key) {
                Err(KvError::Invalid(message)) => {
                    assert!(message.contains(says), "{key:?}: {message}")
                }
                other => panic!("{key:?}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_list_prefix_may_be_empty_but_follows_the_other_key_rules() {
        assert_eq!(check_prefix(""), Ok(()));
        assert_eq!(check_prefix("users/"), Ok(()));
        assert!(matches!(check_prefix("a\nb"), Err(KvError::Invalid(_))));
        assert!(matches!(
            check_prefix(&"p".repeat(MAX_KEY_LEN + 1)),
            Err(KvError::Invalid(_))
        ));
    }

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_zero_is_invalid() {
        assert_eq!(ttl_millis(None), Ok(None));
        assert_eq!(ttl_millis(Some(Duration::from_millis(300))), Ok(Some(300)));
        assert_eq!(ttl_millis(Some(Duration::from_nanos(1))), Ok(Some(1)));
        assert_eq!(ttl_millis(Some(Duration::from_micros(1500))), Ok(Some(2)));
        assert_eq!(
            ttl_millis(Some(MAX_TTL)),
            Ok(Some(MAX_TTL.as_millis() as i64))
        );
        assert_eq!(
            ttl_millis(Some(MAX_TTL + Duration::from_millis(1))),
            Ok(None)
        );
        assert_eq!(ttl_millis(Some(Duration::MAX)), Ok(None));
        assert!(matches!(
            ttl_millis(Some(Duration::ZERO)),
            Err(KvError::Invalid(_))
        ));
    }

    #[test]
    fn store_settings_default_to_a_one_mebibyte_value_limit() {
        let settings = StoreSettings::new(
            "default",
            Backend::Sqlite {
                path: "kv.sqlite".into(),
            },
        );
        assert_eq!(settings.max_value_size, 1 << 20);
    }
}
