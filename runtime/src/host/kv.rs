//! Key-value imports: `kv_get`, `kv_set`, `kv_delete` and `kv_list`, each
//! with its `_begin`/`_end` pair, on the stores the handler's configuration
//! grants ([`crate::capability::kv`] does the storing).

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::memory::read;
use super::ops::{Failure, Kind, OpResult, Prepared, Value, begin, deliver, end};
use super::{Ctx, check_buffer, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::kv::{KvError, MAX_LIST, Store, check_key};
use crate::site::DEFAULT_STORE;

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        MODULE,
        "kv_get",
        |mut caller: Caller<'_, Ctx>, (s, sl, k, kl, buf, cap): (i32, i32, i32, i32, i32, i32)| {
            Box::new(async move {
                check_buffer(&mut caller, buf, cap)?;
                let op = prepare(&mut caller, s, sl, k, kl, Kind::KvGet, |_| Ok(None))?;
                once(caller, op, buf, cap).await
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "kv_get_begin",
        |mut caller: Caller<'_, Ctx>, s: i32, sl: i32, k: i32, kl: i32| {
            let op = prepare(&mut caller, s, sl, k, kl, Kind::KvGet, |_| Ok(None))?;
            Ok(begin(&mut caller, Kind::KvGet, op))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "kv_get_end",
        |caller: Caller<'_, Ctx>, (op, buf, cap): (i32, i32, i32)| {
            Box::new(end(caller, op, Kind::KvGet, buf, cap))
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "kv_set",
        |mut caller: Caller<'_, Ctx>,
         (s, sl, k, kl, v, vl, ttl): (i32, i32, i32, i32, i32, i32, i64)| {
            Box::new(async move {
                let op = prepare(&mut caller, s, sl, k, kl, Kind::KvSet, |m| {
                    value(m, v, vl, ttl)
                })?;
                once(caller, op, 0, 0).await
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "kv_set_begin",
        |mut caller: Caller<'_, Ctx>,
         s: i32,
         sl: i32,
         k: i32,
         kl: i32,
         v: i32,
         vl: i32,
         ttl: i64| {
            let op = prepare(&mut caller, s, sl, k, kl, Kind::KvSet, |m| {
                value(m, v, vl, ttl)
            })?;
            Ok(begin(&mut caller, Kind::KvSet, op))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "kv_set_end",
        |caller: Caller<'_, Ctx>, (op,): (i32,)| Box::new(end(caller, op, Kind::KvSet, 0, 0)),
    )?;

    linker.func_wrap_async(
        MODULE,
        "kv_delete",
        |mut caller: Caller<'_, Ctx>, (s, sl, k, kl): (i32, i32, i32, i32)| {
            Box::new(async move {
                let op = prepare(&mut caller, s, sl, k, kl, Kind::KvDelete, |_| Ok(None))?;
                once(caller, op, 0, 0).await
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "kv_delete_begin",
        |mut caller: Caller<'_, Ctx>, s: i32, sl: i32, k: i32, kl: i32| {
            let op = prepare(&mut caller, s, sl, k, kl, Kind::KvDelete, |_| Ok(None))?;
            Ok(begin(&mut caller, Kind::KvDelete, op))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "kv_delete_end",
        |caller: Caller<'_, Ctx>, (op,): (i32,)| Box::new(end(caller, op, Kind::KvDelete, 0, 0)),
    )?;

    linker.func_wrap_async(
        MODULE,
        "kv_list",
        |mut caller: Caller<'_, Ctx>, (s, sl, p, pl, buf, cap): (i32, i32, i32, i32, i32, i32)| {
            Box::new(async move {
                check_buffer(&mut caller, buf, cap)?;
                let op = prepare(&mut caller, s, sl, p, pl, Kind::KvList, |_| Ok(None))?;
                once(caller, op, buf, cap).await
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "kv_list_begin",
        |mut caller: Caller<'_, Ctx>, s: i32, sl: i32, p: i32, pl: i32| {
            let op = prepare(&mut caller, s, sl, p, pl, Kind::KvList, |_| Ok(None))?;
            Ok(begin(&mut caller, Kind::KvList, op))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "kv_list_end",
        |caller: Caller<'_, Ctx>, (op, buf, cap): (i32, i32, i32)| {
            Box::new(end(caller, op, Kind::KvList, buf, cap))
        },
    )?;
    Ok(())
}

/// What `kv_set` stores: the value's bytes and its time to live.
type SetArgs = Option<(Vec<u8>, Option<Duration>)>;

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

/// The single-call form: run the operation here and deliver its result.
async fn once(
    mut caller: Caller<'_, Ctx>,
    op: Prepared,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let result = match op {
        Ok(op) => op.await,
        Err(failure) => Err(failure),
    };
    deliver(&mut caller, None, result, buf, cap)
}
