//! Key-value stores on the fake host: in memory, by the runtime's rules
//! (key syntax, `""` is `default`, only granted stores, a maximum value
//! size, at most 1000 keys listed), with expiry on the virtual clock.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ops::{self, Done, Kind, Outcome};
use super::{Exchange, Failure, with};
use crate::code;

/// The store a handler gets when it names none (`""`).
const DEFAULT_STORE: &str = "default";

/// The most keys one `kv_list` returns.
const MAX_LISTED: usize = 1000;

/// The stores of one request.
pub(crate) struct FakeKv {
    /// The granted stores by name, with their entries.
    pub(crate) stores: BTreeMap<String, BTreeMap<String, Entry>>,
    /// Values longer than this are refused with `TOO_LARGE`.
    pub(crate) max_value_size: usize,
}

impl Default for FakeKv {
    fn default() -> Self {
        Self {
            stores: BTreeMap::new(),
            // The runtime's default.
            max_value_size: 1 << 20,
        }
    }
}

impl FakeKv {
    /// Grants store `name` (`""` is `default`) and returns its entries.
    pub(crate) fn grant(&mut self, name: &str) -> &mut BTreeMap<String, Entry> {
        self.stores.entry(store_name(name).to_owned()).or_default()
    }
}

/// One stored value.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Vec<u8>,
    /// The time-to-live it was set with.
    pub(crate) ttl: Option<Duration>,
    /// The virtual time it expires at.
    pub(crate) expires_at: Option<Duration>,
}

impl Entry {
    /// Whether it still exists at virtual time `now`.
    pub(crate) fn live(&self, now: Duration) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// The store `name` means: `""` is `default`.
pub(crate) fn store_name(name: &str) -> &str {
    if name.is_empty() { DEFAULT_STORE } else { name }
}

/// The granted store `raw` names: `INVALID` if the name is not UTF-8,
/// `DENIED` if the test did not grant it.
fn store<'a>(ex: &'a mut Exchange, raw: &[u8]) -> Result<&'a mut BTreeMap<String, Entry>, Failure> {
    let name = std::str::from_utf8(raw)
        .map_err(|_| Failure::new(code::INVALID, "a store name must be UTF-8"))?;
    let name = store_name(name);
    ex.kv.stores.get_mut(name).ok_or_else(|| {
        Failure::new(
            code::DENIED,
            format!(
                "store {name:?} is not granted: the test grants it with .store({name:?}) or .kv({name:?}, key, value)"
            ),
        )
    })
}

/// A key by the runtime's rules: UTF-8, 1 to 1024 bytes, no control
/// characters. A prefix may be empty.
fn key(raw: &[u8], prefix: bool) -> Result<&str, Failure> {
    let what = if prefix { "prefix" } else { "key" };
    let key = std::str::from_utf8(raw)
        .map_err(|_| Failure::new(code::INVALID, format!("a {what} must be UTF-8")))?;
    if (key.is_empty() && !prefix) || key.len() > 1024 {
        return Err(Failure::new(
            code::INVALID,
            format!("a {what} is 1 to 1024 bytes, not {}", key.len()),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(Failure::new(
            code::INVALID,
            format!("{what} {key:?} holds a control character"),
        ));
    }
    Ok(key)
}

fn get(ex: &mut Exchange, store_raw: &[u8], key_raw: &[u8]) -> Outcome {
    let now = ex.clock;
    let key = key(key_raw, false)?;
    let store = store(ex, store_raw)?;
    Ok(match store.get(key) {
        Some(entry) if entry.live(now) => Done::Bytes(entry.value.clone()),
        _ => Done::Code(code::ABSENT),
    })
}

fn set(ex: &mut Exchange, store_raw: &[u8], key_raw: &[u8], value: &[u8], ttl_ms: i64) -> Outcome {
    let now = ex.clock;
    let max = ex.kv.max_value_size;
    let key = key(key_raw, false)?;
    if value.len() > max {
        return Err(Failure::new(
            code::TOO_LARGE,
            format!(
                "the value is {} bytes, over the store's max-value-size of {max}",
                value.len()
            ),
        ));
    }
    let ttl = u64::try_from(ttl_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    let entry = Entry {
        value: value.to_vec(),
        ttl,
        expires_at: ttl.map(|ttl| now + ttl),
    };
    store(ex, store_raw)?.insert(key.to_owned(), entry);
    Ok(Done::Code(code::OK))
}

fn delete(ex: &mut Exchange, store_raw: &[u8], key_raw: &[u8]) -> Outcome {
    let now = ex.clock;
    let key = key(key_raw, false)?;
    let existed = store(ex, store_raw)?
        .remove(key)
        .is_some_and(|entry| entry.live(now));
    Ok(Done::Code(if existed { code::OK } else { code::ABSENT }))
}

fn list(ex: &mut Exchange, store_raw: &[u8], prefix_raw: &[u8]) -> Outcome {
    let now = ex.clock;
    let prefix = key(prefix_raw, true)?;
    let store = store(ex, store_raw)?;
    let mut listed = Vec::new();
    let keys = store
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(key, _)| key.starts_with(prefix))
        .filter(|(_, entry)| entry.live(now))
        .map(|(key, _)| key)
        .take(MAX_LISTED);
    for key in keys {
        listed.extend_from_slice(key.as_bytes());
        listed.push(b'\n');
    }
    Ok(Done::Bytes(listed))
}

/// `kv_get`.
pub(crate) fn kv_get(store: &[u8], key: &[u8], buf: &mut [u8]) -> i32 {
    with(|ex| {
        let outcome = get(ex, store, key);
        ops::deliver(ex, outcome, buf)
    })
}

/// `kv_get_begin`.
pub(crate) fn kv_get_begin(store: &[u8], key: &[u8]) -> i32 {
    with(|ex| begin(ex, Kind::KvGet, |ex| get(ex, store, key)))
}

/// `kv_get_end`.
pub(crate) fn kv_get_end(op: i32, buf: &mut [u8]) -> i32 {
    ops::end(op, Kind::KvGet, buf)
}

/// `kv_set`.
pub(crate) fn kv_set(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> i32 {
    with(|ex| {
        let outcome = set(ex, store, key, value, ttl_ms);
        ops::deliver(ex, outcome, &mut [])
    })
}

/// `kv_set_begin`.
pub(crate) fn kv_set_begin(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> i32 {
    with(|ex| begin(ex, Kind::KvSet, |ex| set(ex, store, key, value, ttl_ms)))
}

/// `kv_set_end`.
pub(crate) fn kv_set_end(op: i32) -> i32 {
    ops::end(op, Kind::KvSet, &mut [])
}

/// `kv_delete`.
pub(crate) fn kv_delete(store: &[u8], key: &[u8]) -> i32 {
    with(|ex| {
        let outcome = delete(ex, store, key);
        ops::deliver(ex, outcome, &mut [])
    })
}

/// `kv_delete_begin`.
pub(crate) fn kv_delete_begin(store: &[u8], key: &[u8]) -> i32 {
    with(|ex| begin(ex, Kind::KvDelete, |ex| delete(ex, store, key)))
}

/// `kv_delete_end`.
pub(crate) fn kv_delete_end(op: i32) -> i32 {
    ops::end(op, Kind::KvDelete, &mut [])
}

/// `kv_list`.
pub(crate) fn kv_list(store: &[u8], prefix: &[u8], buf: &mut [u8]) -> i32 {
    with(|ex| {
        let outcome = list(ex, store, prefix);
        ops::deliver(ex, outcome, buf)
    })
}

/// `kv_list_begin`.
pub(crate) fn kv_list_begin(store: &[u8], prefix: &[u8]) -> i32 {
    with(|ex| begin(ex, Kind::KvList, |ex| list(ex, store, prefix)))
}

/// `kv_list_end`.
pub(crate) fn kv_list_end(op: i32, buf: &mut [u8]) -> i32 {
    ops::end(op, Kind::KvList, buf)
}

/// A `_begin`: `BUSY` before the operation runs, as the runtime checks for
/// room before it starts anything. The fake host runs the operation at
/// once: a failure (a bad key, a store not granted) is the begin's own
/// result, as the runtime checks those before it starts the operation;
/// otherwise a handle holds the outcome for the `_end`.
fn begin(ex: &mut Exchange, kind: Kind, operation: impl FnOnce(&mut Exchange) -> Outcome) -> i32 {
    if let Err(failure) = ex.ops.room() {
        return ex.fail(failure);
    }
    match operation(ex) {
        Ok(done) => ops::begin(ex, kind, Ok(done)),
        Err(failure) => ex.fail(failure),
    }
}
