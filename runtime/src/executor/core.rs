//! The executor for a core module on wasmlet's own ABI: the export for the
//! verb (`handle_<verb>`, else `handle`; neither is `405` before admission),
//! an instance (fresh from the shared `InstancePre`, or warm from the
//! handler's pool when it opts into reuse), `init` once per new instance,
//! and the entry point under the request timeout. The response leaves
//! through the host's `resp_*` imports.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{HeaderMap, Method};
use tokio::sync::oneshot;
use wasmtime::{Extern, Instance, InstancePre, ModuleExport, Store};

use super::pool::{Pool, Ticket};
use super::{Executor, Job, Ran, Trial, instantiation_failed, trap_text};
use crate::engine::{memory_limits, new_store};
use crate::error::error_text;
use crate::host::{Ctx, RequestBody, RequestInfo, ResponseState};
use crate::outcome::Outcome;
use crate::request::Start;

/// A compiled core-ABI handler.
pub struct CoreHandler {
    /// Imports resolved against the linker once, so a request only allocates
    /// and initialises an instance.
    pub(crate) pre: InstancePre<Ctx>,
    /// `handle`, if exported.
    pub(crate) handle: Option<ModuleExport>,
    /// `handle_<verb>` exports, verb in upper case.
    pub(crate) verbs: Vec<(String, ModuleExport)>,
    /// The `memory` export, if any.
    pub(crate) memory: Option<ModuleExport>,
    /// The optional `init` export, run once per new instance before its
    /// first request.
    pub(crate) init: Option<ModuleExport>,
    /// The module asks to be served by warm, reused instances (it carries a
    /// `wasmlet.reusable` custom section, as `#[handler(reusable)]` writes).
    pub(crate) reusable: bool,
    /// Warm instances of this version, when reuse is on; dropped with it.
    pub(crate) pool: Pool<(Store<Ctx>, Instance)>,
}

/// The custom section that marks a module as reusable.
pub const REUSABLE_SECTION: &str = "wasmlet.reusable";

impl CoreHandler {
    /// The export that serves `method`: `handle_<verb>` first, then `handle`.
    pub(crate) fn entry_point(&self, method: &Method) -> Option<ModuleExport> {
        self.verbs
            .iter()
            .find(|(verb, _)| verb == method.as_str())
            .map(|(_, export)| *export)
            .or(self.handle)
    }

    /// The `Allow` header value for a `405`: the verbs the module exports.
    pub(crate) fn allow(&self) -> String {
        let verbs: Vec<&str> = self.verbs.iter().map(|(v, _)| v.as_str()).collect();
        verbs.join(", ")
    }
}

impl Executor for CoreHandler {
    fn kind(&self) -> &'static str {
        "core module"
    }

    fn imports(&self) -> Vec<String> {
        self.pre
            .module()
            .imports()
            .map(|import| import.name().to_owned())
            .collect()
    }

    fn check(&self, request: &Parts) -> Result<(), Outcome> {
        match self.entry_point(&request.method) {
            Some(_) => Ok(()),
            None => Err(Outcome::MethodNotAllowed {
                allow: self.allow(),
            }),
        }
    }

    fn run(self: Arc<Self>, job: Job) -> BoxFuture<'static, Ran> {
        Box::pin(async move { run(&self, job).await })
    }

    fn trial(self: Arc<Self>, trial: Trial) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { try_instance(&self, trial).await })
    }
}

/// Runs the entry point for `job`'s verb. A fresh `Store` and instance by
/// default; when the handler's policy (or the module itself) asks for reuse,
/// a warm instance from the handler's pool, given this request's state, and
/// put back if the request ended cleanly.
async fn run(handler: &CoreHandler, job: Job) -> Ran {
    let Job {
        request,
        params,
        who,
        policy,
        limits,
        log,
        respond,
        stats,
    } = job;
    let Some(entry) = handler.entry_point(request.method()) else {
        // `check` answered `405` before admission; a run without an entry
        // point has nothing to do.
        let outcome = Outcome::MethodNotAllowed {
            allow: handler.allow(),
        };
        let status = outcome.status();
        let _ = respond.send(Start::Failed(outcome.clone()));
        return (outcome, status);
    };
    let reusable = policy.instances.reuse || handler.reusable;
    let pool_policy = reusable.then(|| policy.clone());
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let ctx = Ctx {
        store_limits: store_limits(limits.max_memory),
        memory: None,
        request: RequestInfo {
            method: parts.method,
            target,
            headers: parts.headers,
            params,
        },
        body: RequestBody::new(body),
        response: ResponseState::new(respond, limits.head),
        handler: who.handler,
        request_id: who.request_id,
        policy,
        log,
        ops: Default::default(),
        last_error: None,
        started: Instant::now(),
    };
    let warm = pool_policy
        .as_ref()
        .and_then(|policy| handler.pool.take(policy));
    let (mut store, instance, ticket) = match warm {
        Some(((mut store, instance), ticket)) => {
            // The instance keeps its memory (that is the point); the request
            // state is this request's. The memory limit stays as it was
            // set for the instance: a limit cannot shrink a grown memory.
            let old = std::mem::replace(store.data_mut(), ctx);
            let data = store.data_mut();
            data.store_limits = old.store_limits;
            data.memory = old.memory;
            store.set_epoch_deadline(1);
            (store, Some(instance), Some(ticket))
        }
        None => (
            new_store(handler.pre.module().engine(), ctx),
            None,
            pool_policy.map(Ticket::new),
        ),
    };

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
    if let (Some(ticket), Outcome::Completed, Some(instance)) = (ticket, &outcome, instance) {
        // Pending operations and open responses end with the request.
        store.data_mut().ops = Default::default();
        handler.pool.put((store, instance), ticket);
    }
    (outcome, status)
}

/// Instantiates a new version of `handler` once, as a request would (fresh
/// store, the policy's memory limit and timeout, its start function and
/// `init`), with no request. At the instance limit nothing can be told, and
/// the version passes.
async fn try_instance(handler: &CoreHandler, trial: Trial) -> Result<(), String> {
    let Trial {
        who,
        policy,
        limits,
        log,
        stats,
    } = trial;
    // Nobody listens: a start function that writes a response writes it
    // nowhere, and the head it would send is dropped.
    let (respond, _) = oneshot::channel();
    let ctx = Ctx {
        store_limits: store_limits(limits.max_memory),
        memory: None,
        request: RequestInfo {
            method: Method::GET,
            target: "/".to_owned(),
            headers: HeaderMap::new(),
            params: Vec::new(),
        },
        body: RequestBody::ended(),
        response: ResponseState::new(respond, limits.head),
        log,
        handler: who.handler,
        request_id: who.request_id,
        policy,
        ops: Default::default(),
        last_error: None,
        started: Instant::now(),
    };
    let mut store = new_store(handler.pre.module().engine(), ctx);
    let _live = stats.instance(&store.data().handler);
    match tokio::time::timeout(limits.timeout, instantiate(&mut store, handler)).await {
        Ok(Ok(_)) | Ok(Err(Outcome::Busy)) => Ok(()),
        Ok(Err(outcome)) => Err(outcome
            .detail()
            .unwrap_or_else(|| outcome.label().to_owned())),
        Err(_elapsed) => Err(format!(
            "it ran past the request timeout ({}) while starting",
            humantime::format_duration(limits.timeout)
        )),
    }
}

/// The limits of one core store: `max_memory` bytes of linear memory, one
/// instance of one memory.
fn store_limits(max_memory: u64) -> wasmtime::StoreLimits {
    memory_limits(max_memory)
        .instances(1)
        .memories(1)
        .tables(4)
        .build()
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
    let instance = handler
        .pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| instantiation_failed(&e))?;
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
