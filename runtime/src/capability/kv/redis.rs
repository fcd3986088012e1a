//! The shared backend: a Redis server, so several wasmlet nodes see the same
//! keys.
//!
//! One multiplexed connection per store, through the `redis` crate's
//! `ConnectionManager`: every request's operations are pipelined on it, and
//! after the server restarts or the connection drops, the operation that
//! notices fails and the manager reconnects in the background for the next
//! ones. A server that is down when the store opens is the same case: the
//! server starts (handlers that never use the store are not its hostages),
//! logs the store as unavailable, and its operations fail with `FAILED`
//! until the server answers.
//!
//! A store's key `k` is the Redis key `PREFIX` + `k`, so stores (and anything
//! else in the same database) keep apart. Values are Redis strings; a time to
//! live is `SET … PX`, which Redis enforces itself. [`RedisStore::list`]
//! walks the keyspace with `SCAN … MATCH PREFIX*`: it costs in proportion to
//! every key in the database, not only the matches, so a large shared
//! database deserves a database number of its own for wasmlet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, FromRedisValue, RedisError};

use super::{KvError, add_to_counter};

/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one command may wait for its answer before it fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection attempts after the first, each after a growing random delay
/// from 100 ms up to [`MAX_RETRY_DELAY`]. Few, so that with the server down a
/// handler's operation fails within a second or so rather than holding its
/// request; the next operation starts a new round.
const CONNECT_RETRIES: usize = 2;

/// The longest wait between two connection attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(500);

/// The `COUNT` hint of each `SCAN`: keys Redis looks at per round trip.
const SCAN_COUNT: usize = 1000;

/// An open Redis store; clones share its connection.
#[derive(Clone)]
pub(super) struct RedisStore {
    conn: ConnectionManager,
    /// Put before every key on the server.
    prefix: Arc<str>,
    /// `key-value store "NAME" (Redis at URL)`, with any password in the URL
    /// hidden, to start messages with.
    label: Arc<str>,
}

impl RedisStore {
    /// Connects to `url` for the store `name` and checks that the server
    /// answers.
    pub(super) async fn open(name: &str, url: &str, prefix: &str) -> Result<Self, KvError> {
        let label: Arc<str> = format!("key-value store {name:?} (Redis at {})", redact(url)).into();
        let client = ::redis::Client::open(url).map_err(|e| {
            KvError::Invalid(format!(
                "{label}: not a usable Redis URL: {e}; expected redis://HOST:PORT/DB"
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(MAX_RETRY_DELAY);
        // Lazy: the connection is made by the first command (the `PING`
        // below), and a manager that could not connect keeps trying in the
        // background, as after a connection drop.
        let mut conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            KvError::Invalid(format!(
                "{label}: cannot set up the connection: {e}; check the store's url in wasmlet.toml"
            ))
        })?;
        match ::redis::cmd("PING").query_async::<()>(&mut conn).await {
            Ok(()) => {}
            // The server is down or unreachable: that is no reason to keep
            // every other handler from being served. The store's operations
            // fail (`FAILED`) until it answers.
            Err(e) if unreachable(&e) => tracing::warn!(
                "{label} is unavailable: {e}; serving anyway, its operations fail until the \
                 server answers (wasmlet reconnects by itself); start the Redis server or \
                 correct the store's url in wasmlet.toml"
            ),
            // It answered, and refused: a wrong password or database is a
            // configuration error, which stops a start or a reload.
            Err(e) => {
                return Err(KvError::Unavailable(format!(
                    "{label}: the server refused: {e}; correct the store's url (user, \
                     password, database) in wasmlet.toml"
                )));
            }
        }
        Ok(Self {
            conn,
            prefix: prefix.into(),
            label,
        })
    }

    /// Where the store lives, for `Debug`.
    pub(super) fn describe(&self) -> &str {
        &self.label
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.query("GET", ::redis::cmd("GET").arg(self.key(key)))
            .await
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<i64>,
    ) -> Result<(), KvError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl_ms {
            cmd.arg("PX").arg(ttl);
        }
        self.query("SET", &cmd).await
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let removed: u64 = self
            .query("DEL", ::redis::cmd("DEL").arg(self.key(key)))
            .await?;
        Ok(removed > 0)
    }

    pub(super) async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        // Redis counts in signed 64 bits.
        let by = i64::try_from(delta).map_err(|_| {
            KvError::Invalid(format!(
                "incrementing `{key}` by {delta}: a Redis store counts by at most 2^63 - 1"
            ))
        })?;
        let counted = self
            .query("INCRBY", ::redis::cmd("INCRBY").arg(self.key(key)).arg(by))
            .await;
        let sum: i64 = match counted {
            Ok(sum) => sum,
            Err(e) => {
                // Redis refuses a value that is not a decimal integer, or a
                // sum past 2^63 - 1: say which, in the words SQLite's
                // counter uses, rather than as a failing server.
                if let Ok(Some(value)) = self.get(key).await {
                    add_to_counter(key, Some(&value), delta)?;
                }
                return Err(e);
            }
        };
        u64::try_from(sum).map_err(|_| {
            KvError::Invalid(format!(
                "the value of `{key}` is a negative number, not a counter"
            ))
        })
    }

    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let pattern = format!("{}*", escape_glob(&format!("{}{prefix}", self.prefix)));
        // The smallest `limit` keys seen so far: memory stays bounded however
        // many keys match, and a key SCAN returns twice counts once.
        let mut smallest: BTreeSet<String> = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .query(
                    "SCAN",
                    ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT),
                )
                .await?;
            for key in keys {
                // The pattern already matched the prefix; a key that is not
                // UTF-8 was not written by wasmlet and cannot be named by a
                // handler, so it is not listed.
                let Some(key) = key
                    .strip_prefix(self.prefix.as_bytes())
                    .and_then(|k| std::str::from_utf8(k).ok())
                else {
                    continue;
                };
                let full = smallest.len() == limit;
                if full
                    && smallest
                        .last()
                        .is_some_and(|largest| largest.as_str() <= key)
                {
                    continue;
                }
                smallest.insert(key.to_owned());
                if smallest.len() > limit {
                    smallest.pop_last();
                }
            }
            if next == 0 {
                return Ok(smallest.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// The Redis key of the store's key `key`.
    fn key(&self, key: &str) -> Vec<u8> {
        [self.prefix.as_bytes(), key.as_bytes()].concat()
    }

    /// Runs `cmd` on the shared connection.
    async fn query<T: FromRedisValue>(&self, name: &str, cmd: &Cmd) -> Result<T, KvError> {
        // The manager is a handle to one shared connection; its methods want
        // `&mut` only to swap in a new connection after a reconnect.
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(|e| {
            KvError::Unavailable(format!(
                "{}: {name} failed: {e}{}",
                self.label,
                if unreachable(&e) {
                    "; check that the Redis server is running (wasmlet reconnects by itself)"
                } else {
                    ""
                }
            ))
        })
    }
}

/// Whether `e` means the server could not be reached (rather than that it
/// answered with an error).
fn unreachable(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Escapes Redis glob characters (`* ? [ ] \`) so that `SCAN … MATCH` takes
/// `text` literally.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `url` with its password (if any) replaced by `***`, for messages that may
/// reach a log or a handler.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Cannot fail: a URL with a password has a host.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not a URL at all: nothing in it can be told apart from a password.
        Err(_) => "an unparsable URL".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped_and_everything_else_is_kept() {
        let cases = [
            ("", ""),
            ("plain/key-1", "plain/key-1"),
            ("a*b", "a\\*b"),
            ("what?", "what\\?"),
            ("[x]", "\\[x\\]"),
            ("back\\slash", "back\\\\slash"),
            ("^-!é", "^-!é"),
            ("wasmlet:s:*?[]\\", "wasmlet:s:\\*\\?\\[\\]\\\\"),
        ];
        for (text, escaped) in cases {
            assert_eq!(escape_glob(text), escaped, "{text:?}");
        }
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        let cases = [
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            (
                "redis://:hunter2@cache.internal:6379/2",
                "redis://:***@cache.internal:6379/2",
            ),
            (
                "redis://app:hunter2@cache.internal/",
                "redis://app:***@cache.internal/",
            ),
            ("redis://app@cache.internal/", "redis://app@cache.internal/"),
            ("hunter2", "an unparsable URL"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_url_that_is_not_a_redis_url_is_invalid_and_keeps_its_password_hidden() {
        let error = RedisStore::open("s", "http://u:hunter2@example.invalid/", "p:")
            .await
            .err()
            .unwrap();
        let KvError::Invalid(message) = error else {
            panic!("expected Invalid, got {error:?}");
        };
        assert!(message.contains("redis://HOST:PORT/DB"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
