//! Key-value storage: [`Store`], named in the configuration and granted per
//! directory (`[kv] stores` in a `wasmlet.toml`).
//!
//! Values are bytes; keys are UTF-8, 1 to 1024 bytes, without control
//! characters (the host rejects others with
//! [`ErrorKind::Invalid`](crate::ErrorKind::Invalid)). A store the
//! configuration does not grant fails with
//! [`ErrorKind::Denied`](crate::ErrorKind::Denied).
//!
//! ```
//! use std::time::Duration;
//! use wasmlet_sdk::kv::Store;
//! use wasmlet_sdk::{Request, Result, handler};
//!
//! #[handler(get)]
//! fn visit(req: Request) -> Result<String> {
//!     let store = Store::default();
//!     let visits: u64 = store.get_string("visits")?.and_then(|n| n.parse().ok()).unwrap_or(0) + 1;
//!     store.set("visits", visits.to_string())?;
//!     if let Some(name) = req.query("name") {
//!         // Forgotten after a day.
//!         store.set_with_ttl(&format!("seen/{name}"), "1", Duration::from_secs(86_400))?;
//!     }
//!     let seen = store.list("seen/")?.len();
//!     Ok(format!("visit {visits}, {seen} named visitors today\n"))
//! }
//! # use wasmlet_sdk::testing::TestRequest;
//! # let response = TestRequest::get("/?name=ann").kv("", "visits", "41").call(handle_get);
//! # assert_eq!(response.text(), "visit 42, 1 named visitors today\n");
//! # assert_eq!(response.kv_ttl("", "seen/ann"), Some(Duration::from_secs(86_400)));
//! ```
//!
//! Each call is one round trip to the store; the `_begin` forms
//! ([`get_begin`](Store::get_begin), …) start several at once (see
//! [`join!`](crate::join!)). A handler that returns a store's failure answers
//! `503 Service Unavailable` (`504 Gateway Timeout` for a timeout).

use std::time::Duration;

use crate::host_error::{Capability, Operation};
use crate::pending::Pending;
use crate::{Error, Result, code, sys};

/// The first buffer a value is read into; a longer value costs one more
/// call (which, after a `_begin`, returns at once).
const VALUE_BUF: usize = 1024;

/// The first buffer a key list is read into.
const LIST_BUF: usize = 4096;

/// A key-value store, by name. Opening it asks nothing of the host: a store
/// that is not granted fails at its first use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    /// `""` is the store called `default`.
    name: String,
}

impl Store {
    /// The store called `name`, as the configuration names it; `""` is
    /// `default` (as [`Store::default`] is).
    pub fn open(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The name it was opened with (`""` for the default store).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`; `None` if there is none (or it has expired).
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let read = sys::read_full(VALUE_BUF, |buf| {
            sys::kv_get(self.name.as_bytes(), key.as_bytes(), buf)
        });
        value(read, || self.operation("get", key))
    }

    /// The value of `key` as text; an error if it is not UTF-8.
    pub fn get_string(&self, key: &str) -> Result<Option<String>> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        String::from_utf8(bytes).map(Some).map_err(|error| {
            Error::msg(format!(
                "{}: the value is not UTF-8: {error}",
                self.operation("get", key).what()
            ))
        })
    }

    /// Sets `key` to `value`, with no expiry.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_ms(key, value.as_ref(), 0)
    }

    /// Sets `key` to `value`, to expire after `ttl` (rounded up to whole
    /// milliseconds; at least 1 ms, so a zero `ttl` expires at once rather
    /// than never).
    pub fn set_with_ttl(&self, key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
        self.set_ms(key, value.as_ref(), ttl_ms(ttl))
    }

    fn set_ms(&self, key: &str, value: &[u8], ttl_ms: i64) -> Result<()> {
        let code = sys::kv_set(self.name.as_bytes(), key.as_bytes(), value, ttl_ms);
        status(code, || self.operation("set", key))
    }

    /// Deletes `key`: `true` if it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        let code = sys::kv_delete(self.name.as_bytes(), key.as_bytes());
        existed(code, || self.operation("delete", key))
    }

    /// The keys that start with `prefix` (`""` for all), in byte order; at
    /// most 1000 (narrow the prefix to see past them).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let read = sys::read_full(LIST_BUF, |buf| {
            sys::kv_list(self.name.as_bytes(), prefix.as_bytes(), buf)
        });
        keys(read, || self.operation("list", prefix))
    }

    /// Starts [`get`](Store::get); the result comes from [`Pending::wait`].
    pub fn get_begin(&self, key: &str) -> Pending<Option<Vec<u8>>> {
        let op = sys::kv_get_begin(self.name.as_bytes(), key.as_bytes());
        Pending::begin(op, self.operation("get", key), |op, operation| {
            // The host keeps a value too long for the buffer with the
            // operation, so the second call returns it at once.
            value(
                sys::read_full(VALUE_BUF, |buf| sys::kv_get_end(op, buf)),
                || operation,
            )
        })
    }

    /// Starts [`set`](Store::set).
    pub fn set_begin(&self, key: &str, value: impl AsRef<[u8]>) -> Pending<()> {
        self.set_begin_ms(key, value.as_ref(), 0)
    }

    /// Starts [`set_with_ttl`](Store::set_with_ttl).
    pub fn set_with_ttl_begin(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Pending<()> {
        self.set_begin_ms(key, value.as_ref(), ttl_ms(ttl))
    }

    fn set_begin_ms(&self, key: &str, value: &[u8], ttl_ms: i64) -> Pending<()> {
        let op = sys::kv_set_begin(self.name.as_bytes(), key.as_bytes(), value, ttl_ms);
        Pending::begin(op, self.operation("set", key), |op, operation| {
            status(sys::kv_set_end(op), || operation)
        })
    }

    /// Starts [`delete`](Store::delete).
    pub fn delete_begin(&self, key: &str) -> Pending<bool> {
        let op = sys::kv_delete_begin(self.name.as_bytes(), key.as_bytes());
        Pending::begin(op, self.operation("delete", key), |op, operation| {
            existed(sys::kv_delete_end(op), || operation)
        })
    }

    /// Starts [`list`](Store::list).
    pub fn list_begin(&self, prefix: &str) -> Pending<Vec<String>> {
        let op = sys::kv_list_begin(self.name.as_bytes(), prefix.as_bytes());
        Pending::begin(op, self.operation("list", prefix), |op, operation| {
            keys(
                sys::read_full(LIST_BUF, |buf| sys::kv_list_end(op, buf)),
                || operation,
            )
        })
    }

    /// `kv get "k" in store "default"`, for errors.
    fn operation(&self, verb: &str, key: &str) -> Operation {
        let store = if self.name.is_empty() {
            "default"
        } else {
            &self.name
        };
        Operation::new(
            Capability::Kv,
            format!("kv {verb} {key:?} in store {store:?}"),
        )
    }
}

/// Milliseconds for `kv_set`, where `0` would mean "never expires".
fn ttl_ms(ttl: Duration) -> i64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A read value: `ABSENT` is `None`.
fn value(
    read: Result<Vec<u8>, i32>,
    operation: impl FnOnce() -> Operation,
) -> Result<Option<Vec<u8>>> {
    match read {
        Ok(value) => Ok(Some(value)),
        Err(code::ABSENT) => Ok(None),
        Err(code) => Err(operation().error(code)),
    }
}

/// A status that should be `OK`.
fn status(code: i32, operation: impl FnOnce() -> Operation) -> Result<()> {
    match code {
        code::OK => Ok(()),
        code => Err(operation().error(code)),
    }
}

/// A delete's status: `OK` if the key existed, `ABSENT` if not.
fn existed(code: i32, operation: impl FnOnce() -> Operation) -> Result<bool> {
    match code {
        code::OK => Ok(true),
        code::ABSENT => Ok(false),
        code => Err(operation().error(code)),
    }
}

/// A key list: each key followed by `\n`.
fn keys(read: Result<Vec<u8>, i32>, operation: impl FnOnce() -> Operation) -> Result<Vec<String>> {
    let list = read.map_err(|code| operation().error(code))?;
    Ok(list
        .split(|&b| b == b'\n')
        .filter(|key| !key.is_empty())
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect())
}

#[cfg(test)]
mod tests;
