//! One request through a standard `wasi:http` component: a fresh `Store`
//! with the same limits as a core handler's (memory, epoch yields, the
//! request timeout), a fresh instance from the handler's `ProxyPre`, and a
//! call of `wasi:http/incoming-handler.handle`, all through
//! `wasmtime-wasi-http`. How it ended becomes an [`Outcome`], as for core
//! handlers.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use wasmtime::{PoolConcurrencyLimitError, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::{Limits, WasmEngine, run::trap_text};
use crate::error::Outcome;
use crate::host::{GuestLog, HeadLimits, Identity, WasiState};
use crate::loader::error_text;
use crate::server::LimitedBody;
use crate::site::Policy;
use crate::stats::Stats;

/// A component handler, ready to instantiate once per request.
pub struct ComponentHandler {
    /// Imports resolved against the WASI linker and the
    /// `wasi:http/incoming-handler` export found once, so a request only
    /// allocates and initialises an instance.
    pre: ProxyPre<WasiState>,
}

impl ComponentHandler {
    pub(crate) fn new(pre: ProxyPre<WasiState>) -> Self {
        Self { pre }
    }
}

/// The response a component sets with `response-outparam.set`.
pub(crate) type ComponentResponse = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// Who the request is for and what its handler may do.
pub(crate) struct ComponentRequest {
    /// The request as hyper received it; its body streams to the guest,
    /// under the server's body limits.
    pub(crate) request: hyper::Request<LimitedBody>,
    /// The handler and request id, for log lines.
    pub(crate) who: Identity,
    /// What the handler's configuration grants.
    pub(crate) policy: Arc<Policy>,
    /// Where the component's stdout and stderr go, within their limits.
    pub(crate) log: Arc<GuestLog>,
}

/// What the guest set as its response, as far as the log cares.
enum Set {
    Nothing,
    Response(http::StatusCode),
    Error(String),
    /// The guest set a response the host will not send, for this reason.
    Refused(String),
}

/// Runs `handler` for one request. The response leaves through `respond` as
/// soon as the guest sets it (its body streams while the guest runs on); the
/// returned outcome and status are for the log, and say whether the body
/// ended cleanly.
pub(crate) async fn run_component(
    engine: &WasmEngine,
    handler: &ComponentHandler,
    request: ComponentRequest,
    limits: Limits,
    respond: oneshot::Sender<ComponentResponse>,
    stats: &Stats,
) -> (Outcome, http::StatusCode) {
    let ComponentRequest {
        request,
        who,
        policy,
        log,
    } = request;
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.max_memory as usize)
        .build();
    let handler_name = who.handler.clone();
    let mut store = Store::new(
        engine.engine(),
        WasiState::new(who, policy, store_limits, log),
    );
    store.limiter(|state| &mut state.limits);
    // As for core handlers (see `run.rs`): yield to the scheduler at every
    // epoch tick, so a spinning component shares its worker and the timeout
    // can fire; `yield_now` lets the I/O driver run before the task resumes.
    store.epoch_deadline_callback(|_| {
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store.set_epoch_deadline(1);

    let head = limits.head;
    let set = Arc::new(Mutex::new(Set::Nothing));
    let recorded = set.clone();
    let resources = {
        let mut http = store.data_mut().http();
        http.new_incoming_request(Scheme::Http, request)
            .and_then(|incoming| {
                let out = http.new_response_outparam_from_callback(move |response| {
                    let refused = response
                        .as_ref()
                        .ok()
                        .and_then(|response| refusal(response, head).err());
                    *recorded.lock().unwrap() = match (&response, &refused) {
                        (_, Some(why)) => Set::Refused(why.clone()),
                        (Ok(response), None) => Set::Response(response.status()),
                        (Err(code), None) => Set::Error(format!("{code:?}")),
                    };
                    // The client gets a clean `500` instead of what hyper
                    // would make of it.
                    let response = match refused {
                        Some(why) => Err(ErrorCode::InternalError(Some(why))),
                        None => response,
                    };
                    // The receiver is gone when the client is.
                    let _ = respond.send(response);
                })?;
                Ok((incoming, out))
            })
    };
    let (incoming, out) = match resources {
        Ok(resources) => resources,
        Err(e) => {
            // The server checks the request first (authority, Host), so
            // this is a host bug rather than the client's fault.
            let outcome = Outcome::Trap(format!(
                "cannot hand the request to the component: {}",
                error_text(&e)
            ));
            let status = outcome.status();
            return (outcome, status);
        }
    };

    let _live = stats.instance(&handler_name);
    let pre = &handler.pre;
    let ran = tokio::time::timeout(limits.timeout, async {
        let proxy = match pre.instantiate_async(&mut store).await {
            Ok(proxy) => proxy,
            Err(e) if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                return Outcome::Busy;
            }
            Err(e) => {
                return Outcome::Trap(format!("instantiation failed: {}", error_text(&e)));
            }
        };
        match proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await
        {
            Ok(()) => Outcome::Completed,
            Err(e) => Outcome::Trap(trap_text(&e)),
        }
    })
    .await;
    let outcome = ran.unwrap_or(Outcome::Timeout);
    // The outparam (and with it `respond`) goes with the store: a guest that
    // never set a response has the server waiting on it until now.
    drop(store);
    let set = std::mem::replace(&mut *set.lock().unwrap(), Set::Nothing);
    match (set, outcome) {
        (Set::Response(status), outcome) => (outcome, status),
        // The client got a 500 for this, whatever the guest did next (its
        // body writes fail once the response is refused).
        (Set::Refused(why), _) => {
            let outcome = Outcome::Trap(format!("the handler's response was refused: {why}"));
            let status = outcome.status();
            (outcome, status)
        }
        (Set::Error(code), Outcome::Completed) => {
            let outcome = Outcome::Trap(format!("the handler answered with the error {code}"));
            let status = outcome.status();
            (outcome, status)
        }
        (Set::Nothing, Outcome::Completed) => {
            let outcome = Outcome::Trap(
                "the handler returned without setting a response (`response-outparam.set`)"
                    .to_owned(),
            );
            let status = outcome.status();
            (outcome, status)
        }
        (Set::Error(_) | Set::Nothing, outcome) => {
            let status = outcome.status();
            (outcome, status)
        }
    }
}

/// Why the host will not send the response a component set, if it will not:
/// a `1xx` status is an interim response, not an answer (and `101` would
/// switch protocols on a connection the guest cannot reach), and a head past
/// the limits is refused as a core handler's `resp_header` would be.
fn refusal(response: &hyper::Response<HyperOutgoingBody>, head: HeadLimits) -> Result<(), String> {
    if response.status().is_informational() {
        return Err(format!(
            "status {} is an interim (1xx) status, not a final answer",
            response.status().as_u16()
        ));
    }
    head.check(response.headers())
}
