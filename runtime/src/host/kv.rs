//! Key-value imports: `kv_get`, `kv_set`, `kv_delete` and `kv_list`, each
//! with its `_begin`/`_end` pair, on the stores the handler's configuration
//! grants ([`crate::capability::kv`] does the storing).

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::Ctx;
use super::memory::read;
use super::memory_and_ctx;
use super::ops::{Failure, Kind, OpResult, Prepared, Value, operation};
use crate::abi::code;
use crate::capability::kv::{KvError, MAX_LIST, Store, check_key};
use crate::site::DEFAULT_STORE;

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    operation!(
        linker,
        "kv_get",
        Kind::KvGet,
        bytes,
        |caller, s: i32, sl: i32, k: i32, kl: i32| {
            prepare(&mut caller, s, sl, k, kl, Kind::KvGet, no_value)
        }
    );
    operation!(
        linker,
        "kv_set",
        Kind::KvSet,
        status,
        |caller, s: i32, sl: i32, k: i32, kl: i32, v: i32, vl: i32, ttl: i64| {
            prepare(&mut caller, s, sl, k, kl, Kind::KvSet, |m| {
                value(m, v, vl, ttl)
            })
        }
    );
    operation!(
        linker,
        "kv_delete",
        Kind::KvDelete,
        status,
        |caller, s: i32, sl: i32, k: i32, kl: i32| {
            prepare(&mut caller, s, sl, k, kl, Kind::KvDelete, no_value)
        }
    );
    operation!(
        linker,
        "kv_list",
        Kind::KvList,
        bytes,
        |caller, s: i32, sl: i32, p: i32, pl: i32| {
            prepare(&mut caller, s, sl, p, pl, Kind::KvList, no_value)
        }
    );
    Ok(())
}

/// What `kv_set` stores: the value's bytes and its time to live.
type SetArgs = Option<(Vec<u8>, Option<Duration>)>;

/// The extra arguments of every operation but `kv_set`: none.
fn no_value(_: &[u8]) -> wasmtime::Result<SetArgs> {
    Ok(None)
}

fn value(memory: &[u8], v: i32, vl: i32, ttl_ms: i64) -> wasmtime::Result<SetArgs> {
    let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms as u64));
    Ok(Some((read(memory, v, vl)?.to_vec(), ttl)))
}

/// Reads the store name and key (or prefix) and, for a set, the value; finds
/// the granted store; returns the operation as a future.
fn prepare(
    caller: &mut Caller<'_, Ctx>,
    store: i32,
    store_len: i32,
    key: i32,
    key_len: i32,
    kind: Kind,
    extra: impl FnOnce(&[u8]) -> wasmtime::Result<SetArgs>,
) -> wasmtime::Result<Prepared> {
    let (memory, ctx) = memory_and_ctx(caller)?;
    let name = read(memory, store, store_len)?;
    let key = read(memory, key, key_len)?;
    let set = extra(memory)?;
    let Ok(name) = std::str::from_utf8(name) else {
        return Ok(Err(Failure::new(
            code::INVALID,
            "the store name is not UTF-8",
        )));
    };
    let name = if name.is_empty() { DEFAULT_STORE } else { name };
    let Ok(key) = std::str::from_utf8(key) else {
        return Ok(Err(Failure::new(code::INVALID, "the key is not UTF-8")));
    };
    // A list takes a prefix, which may be empty; everything else a key.
    if kind != Kind::KvList
        && let Err(e) = check_key(key)
    {
        return Ok(Err(kv_failure(e)));
    }
    let Some(store) = ctx.policy.stores.get(name).cloned() else {
        return Ok(Err(Failure::new(
            code::DENIED,
            format!(
                "the store `{name}` is not granted to {}; {}",
                ctx.handler,
                ctx.policy.grant_hint("[kv] stores")
            ),
        )));
    };
    let key = key.to_owned();
    Ok(Ok(Box::pin(run(store, kind, key, set))))
}

async fn run(store: Store, kind: Kind, key: String, set: SetArgs) -> OpResult {
    let result = match kind {
        Kind::KvGet => store.get(&key).await.map(|v| match v {
            Some(bytes) => Value::Bytes(bytes),
            None => Value::Code(code::ABSENT),
        }),
        Kind::KvSet => {
            let (value, ttl) = set.unwrap_or_default();
            store
                .set(&key, &value, ttl)
                .await
                .map(|()| Value::Code(code::OK))
        }
        Kind::KvDelete => store
            .delete(&key)
            .await
            .map(|existed| Value::Code(if existed { code::OK } else { code::ABSENT })),
        Kind::KvList => store.list(&key, MAX_LIST).await.map(|keys| {
            let mut out = Vec::new();
            for k in keys {
                out.extend_from_slice(k.as_bytes());
                out.push(b'\n');
            }
            Value::Bytes(out)
        }),
        Kind::Http | Kind::FileRead => unreachable!("not a key-value operation"),
    };
    result.map_err(kv_failure)
}

fn kv_failure(e: KvError) -> Failure {
    let code = match &e {
        KvError::Invalid(_) => code::INVALID,
        KvError::TooLarge { .. } => code::TOO_LARGE,
        KvError::Unavailable(_) => code::FAILED,
    };
    Failure::new(code, e.to_string())
}
