//! One request through one fresh instance: a new `Store` with its limits,
//! instantiate, call the entry point, map how it ended to an [`Outcome`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use wasmtime::{
    Extern, Instance, ModuleExport, PoolConcurrencyLimitError, Store, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};

use super::WasmEngine;
use crate::error::Outcome;
use crate::host::{
    Ctx, GuestLog, HeadLimits, Identity, LogLimits, LogRate, RequestBody, RequestInfo,
    ResponseState, Start,
};
use crate::loader::{CoreHandler, error_text};
use crate::server::{BodyLimits, LimitedBody};
use crate::site::Policy;
use crate::stats::Stats;

/// The request as the guest will see it.
pub(crate) struct RequestParts {
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) body: Incoming,
    /// The URL path of the handler, for logs.
    pub(crate) handler: Arc<str>,
    /// The request's id, for the guest's log lines.
    pub(crate) request_id: Arc<str>,
    /// What the handler's configuration grants.
    pub(crate) policy: Arc<Policy>,
    /// How much of the body the guest may read, and how long it waits.
    pub(crate) body_limits: BodyLimits,
    /// Where the guest's log lines go, within their limits.
    pub(crate) log: GuestLog,
}

/// Limits one request runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_memory: u64,
    /// How big a response head the guest may build.
    pub(crate) head: HeadLimits,
}

/// Runs `entry` of `handler` for one request. The response leaves through
/// `start` (see [`Start`]); the returned outcome and status are for the log.
///
/// A fresh `Store` and instance by default; when the handler's policy (or
/// the module itself) asks for reuse, a warm instance from the handler's
/// pool, given this request's state, and put back if the request ended
/// cleanly.
pub(crate) async fn run_request(
    engine: &WasmEngine,
    handler: &CoreHandler,
    entry: ModuleExport,
    request: RequestParts,
    limits: Limits,
    start: oneshot::Sender<Start>,
    stats: &Stats,
) -> (Outcome, http::StatusCode) {
    let reuse = request.policy.instances;
    let reusable = reuse.reuse || handler.reusable;
    let ctx = Ctx {
        limits: store_limits(limits.max_memory),
        memory: None,
        request: RequestInfo {
            method: request.method,
            target: request.target,
            headers: request.headers,
            params: request.params,
        },
        body: RequestBody::new(LimitedBody::new(
            request.body,
            request.body_limits,
            Identity {
                handler: request.handler.clone(),
                request_id: request.request_id.clone(),
            },
        )),
        response: ResponseState::new(start, limits.head),
        handler: request.handler,
        request_id: request.request_id,
        policy: request.policy,
        log: request.log,
        ops: Default::default(),
        last_error: None,
        started: Instant::now(),
    };
    let warm = if reusable {
        handler.pool.take(reuse.idle_timeout)
    } else {
        None
    };
    let (mut store, instance) = match warm {
        Some(warm) => {
            let mut store = warm.store;
            // The instance keeps its memory (that is the point); the request
            // state is this request's. The memory limit stays as it was
            // set for the instance: a limit cannot shrink a grown memory.
            let old = std::mem::replace(store.data_mut(), ctx);
            let data = store.data_mut();
            data.limits = old.limits;
            data.memory = old.memory;
            (store, Some(warm.instance))
        }
        None => (new_store(engine, ctx), None),
    };
    store.set_epoch_deadline(1);

    let _live = stats.instance(&store.data().handler);
    let ran =
        tokio::time::timeout(limits.timeout, call(&mut store, handler, instance, entry)).await;
    let (outcome, instance) = match ran {
        Err(_elapsed) => (Outcome::Timeout, None),
        Ok(result) => result,
    };
    let response = &mut store.data_mut().response;
    let status = if response.head_sent() || matches!(outcome, Outcome::Completed) {
        response.status()
    } else {
        outcome.status()
    };
    response.finish(outcome.clone());
    store.data().log.finish();
    // Only a clean finish goes back: after a trap or a timeout the instance's
    // state is whatever the guest left mid-way.
    if reusable && let (Outcome::Completed, Some(instance)) = (&outcome, instance) {
        // Pending operations and open responses end with the request.
        store.data_mut().ops = Default::default();
        handler.pool.put(
            super::pool::Warm::new(store, instance),
            reuse.pool_size as usize,
            reuse.idle_timeout,
        );
    }
    (outcome, status)
}

/// Instantiates a new version of `handler` once, as a request would (fresh
/// store, the policy's memory limit and timeout, its start function and
/// `init`), with no request: the loader's check that the version can serve
/// at all. Its message says why not. At the instance limit nothing can be
/// told, and the version passes.
pub(crate) async fn try_instance(
    engine: &WasmEngine,
    handler: &CoreHandler,
    policy: Arc<Policy>,
    name: Arc<str>,
    config: &crate::Config,
    stats: &Stats,
) -> Result<(), String> {
    // Nobody listens: a start function that writes a response writes it
    // nowhere, and the head it would send is dropped.
    let (start, _) = oneshot::channel();
    let timeout = policy.request_timeout;
    let ctx = Ctx {
        limits: store_limits(policy.max_memory),
        memory: None,
        request: RequestInfo {
            method: Method::GET,
            target: "/".to_owned(),
            headers: HeaderMap::new(),
            params: Vec::new(),
        },
        body: RequestBody::ended(),
        response: ResponseState::new(start, HeadLimits::of(config)),
        log: GuestLog::new(
            Identity {
                handler: name.clone(),
                request_id: "load".into(),
            },
            LogLimits::of(config),
            Arc::new(LogRate::new(config.log_rate)),
        ),
        handler: name,
        request_id: "load".into(),
        policy,
        ops: Default::default(),
        last_error: None,
        started: Instant::now(),
    };
    let mut store = new_store(engine, ctx);
    store.set_epoch_deadline(1);
    let _live = stats.instance(&store.data().handler);
    match tokio::time::timeout(timeout, instantiate(&mut store, handler)).await {
        Ok(Ok(_)) | Ok(Err(Outcome::Busy)) => Ok(()),
        Ok(Err(outcome)) => Err(outcome
            .detail()
            .unwrap_or_else(|| outcome.label().to_owned())),
        Err(_elapsed) => Err(format!(
            "it ran past the request timeout ({}) while starting",
            humantime::format_duration(timeout)
        )),
    }
}

/// The limits of one store: `max_memory` bytes of linear memory, one
/// instance of one memory.
fn store_limits(max_memory: u64) -> wasmtime::StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(max_memory as usize)
        .instances(1)
        .memories(1)
        .tables(4)
        .build()
}

/// A `Store` for a new instance, with its limiter and the epoch callback.
fn new_store(engine: &WasmEngine, ctx: Ctx) -> Store<Ctx> {
    let mut store = Store::new(engine.engine(), ctx);
    store.limiter(|ctx| &mut ctx.limits);
    // Yield to the scheduler at every epoch tick: a spinning guest shares its
    // worker thread with every other request, and the timeout below gets a
    // chance to fire. `tokio::task::yield_now` rather than a plain yield: a
    // plain yield re-wakes the task at once, and with several spinning guests
    // the run queue never empties, so tokio would poll the network only every
    // ~60 ticks; `yield_now` defers the task until the driver has run.
    store.epoch_deadline_callback(|_| {
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store
}

/// Instantiates (unless `warm` is an instance already), runs `init` once
/// for a new instance, then the entry point. Returns the instance with the
/// outcome, for the pool.
async fn call(
    store: &mut Store<Ctx>,
    handler: &CoreHandler,
    warm: Option<Instance>,
    entry: ModuleExport,
) -> (Outcome, Option<Instance>) {
    let instance = match warm {
        Some(instance) => instance,
        None => match instantiate(store, handler).await {
            Ok(instance) => instance,
            Err(outcome) => return (outcome, None),
        },
    };
    match call_export(store, instance, &entry).await {
        Ok(()) => (Outcome::Completed, Some(instance)),
        Err(outcome) => (outcome, None),
    }
}

/// A new instance of `handler` in `store`: its start function has run, its
/// memory is looked up, and its `init` has run.
async fn instantiate(store: &mut Store<Ctx>, handler: &CoreHandler) -> Result<Instance, Outcome> {
    let instance = match handler.pre.instantiate_async(&mut *store).await {
        Ok(instance) => instance,
        Err(e) if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
            return Err(Outcome::Busy);
        }
        Err(e) => {
            return Err(Outcome::Trap(format!(
                "instantiation failed: {}",
                error_text(&e)
            )));
        }
    };
    if let Some(memory) = &handler.memory {
        store.data_mut().memory = instance
            .get_module_export(&mut *store, memory)
            .and_then(Extern::into_memory);
    }
    if let Some(init) = &handler.init {
        call_export(store, instance, init)
            .await
            .map_err(|outcome| match outcome {
                Outcome::Trap(text) => Outcome::Trap(format!("in `init`: {text}")),
                other => other,
            })?;
    }
    Ok(instance)
}

/// Calls a `[] -> []` export the loader checked.
async fn call_export(
    store: &mut Store<Ctx>,
    instance: Instance,
    export: &ModuleExport,
) -> Result<(), Outcome> {
    let func = instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .expect("the loader checked the export is a function");
    let typed = func
        .typed::<(), ()>(&*store)
        .map_err(|e| Outcome::Trap(error_text(&e)))?;
    typed
        .call_async(&mut *store, ())
        .await
        .map_err(|e| Outcome::Trap(trap_text(&e)))
}

/// A trap as one log line: its kind (wasmtime's text already says "wasm
/// trap"), then the guest functions it happened in, innermost first, by name
/// where the module names them (Rust names demangled), each with its source
/// file and line where the module has DWARF and `--dev` reads it.
pub(super) fn trap_text(e: &wasmtime::Error) -> String {
    let Some(trap) = e.downcast_ref::<Trap>() else {
        return error_text(e);
    };
    let mut text = trap.to_string();
    if let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        // Deep recursion makes thousands of frames: the innermost tell.
        const SHOWN: usize = 8;
        let frames: Vec<String> = trace
            .frames()
            .iter()
            .take(SHOWN)
            .map(|frame| {
                let name = match frame.func_name() {
                    // `{:#}`: without the hash a Rust symbol ends in.
                    Some(name) => format!("`{:#}`", rustc_demangle::demangle(name)),
                    None => format!("function {}", frame.func_index()),
                };
                // Only with `--dev` (see `engine_config`) and DWARF in the module.
                match frame
                    .symbols()
                    .first()
                    .and_then(|s| Some((s.file()?, s.line()?)))
                {
                    Some((file, line)) => format!("{name} at {file}:{line}"),
                    None => name,
                }
            })
            .collect();
        if !frames.is_empty() {
            let more = trace.frames().len().saturating_sub(SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            text += &format!(" (in {}{more})", frames.join(" called from "));
        }
    }
    text
}
