//! One request through one fresh instance: a new `Store` with its limits,
//! instantiate, call the entry point, map how it ended to an [`Outcome`].

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use wasmtime::{
    Extern, ModuleExport, PoolConcurrencyLimitError, Store, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};

use super::WasmEngine;
use crate::error::Outcome;
use crate::host::{Ctx, RequestBody, RequestInfo, ResponseState, Start};
use crate::loader::{Handler, error_text};
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
}

/// Limits one request runs under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_memory: u64,
}

/// Runs `entry` of `handler` for one request. The response leaves through
/// `start` (see [`Start`]); the returned outcome and status are for the log.
pub(crate) async fn run_request(
    engine: &WasmEngine,
    handler: &Handler,
    entry: ModuleExport,
    request: RequestParts,
    limits: Limits,
    start: oneshot::Sender<Start>,
    stats: &Stats,
) -> (Outcome, http::StatusCode) {
    let ctx = Ctx {
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.max_memory as usize)
            .instances(1)
            .memories(1)
            .tables(4)
            .build(),
        memory: None,
        request: RequestInfo {
            method: request.method,
            target: request.target,
            headers: request.headers,
            params: request.params,
        },
        body: RequestBody::new(request.body),
        response: ResponseState::new(start),
        handler: request.handler,
        request_id: request.request_id,
    };
    let mut store = Store::new(engine.engine(), ctx);
    store.limiter(|ctx| &mut ctx.limits);
    // Yield to the scheduler at every epoch tick: a spinning guest shares its
    // worker thread with every other request, and the timeout below gets a
    // chance to fire. `tokio::task::yield_now` rather than a plain yield: a
    // plain yield re-wakes the task at once, and with several spinning guests
    // the run queue never empties, so tokio would poll the network only every
    // ~60 ticks; `yield_now` defers the task until the driver has run.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| {
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });

    let _live = stats.instance();
    let ran = tokio::time::timeout(limits.timeout, call(&mut store, handler, entry)).await;
    let outcome = match ran {
        Err(_elapsed) => Outcome::Timeout,
        Ok(result) => result,
    };
    let response = &mut store.data_mut().response;
    let status = if response.head_sent() || matches!(outcome, Outcome::Completed) {
        response.status()
    } else {
        outcome.status()
    };
    response.finish(outcome.clone());
    (outcome, status)
}

async fn call(store: &mut Store<Ctx>, handler: &Handler, entry: ModuleExport) -> Outcome {
    let instance = match handler.pre.instantiate_async(&mut *store).await {
        Ok(instance) => instance,
        Err(e) if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() => return Outcome::Busy,
        Err(e) => return Outcome::Trap(format!("instantiation failed: {}", error_text(&e))),
    };
    if let Some(memory) = &handler.memory {
        store.data_mut().memory = instance
            .get_module_export(&mut *store, memory)
            .and_then(Extern::into_memory);
    }
    let func = instance
        .get_module_export(&mut *store, &entry)
        .and_then(Extern::into_func)
        .expect("the loader checked the entry point is an exported function");
    let typed = match func.typed::<(), ()>(&*store) {
        Ok(typed) => typed,
        Err(e) => return Outcome::Trap(error_text(&e)),
    };
    match typed.call_async(&mut *store, ()).await {
        Ok(()) => Outcome::Completed,
        Err(e) => Outcome::Trap(trap_text(&e)),
    }
}

/// A trap as one log line: its kind first when wasmtime knows it.
fn trap_text(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<Trap>() {
        Some(trap) => format!("wasm trap: {trap}; {}", error_text(e)),
        None => error_text(e),
    }
}
