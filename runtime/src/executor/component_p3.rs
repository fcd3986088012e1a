//! The executor for a WASI 0.3 component (`wasi:http/handler@0.3.0`, the
//! `wasi:http/service` world): a request needs an authority, as for 0.2
//! (`400` before admission without one), then a fresh `Store` from the one
//! store recipe, a fresh instance from the handler's `ServicePre`, and a
//! call of `wasi:http/handler.handle` through `wasmtime-wasi-http`'s p3
//! support, inside the store's concurrent event loop (`run_concurrent`).
//!
//! The guest awaits natively: its request body, timers and outbound
//! requests are component-model futures and streams, so one instance runs
//! several of its own tasks at once (a fan-out of fetches) without a poll
//! loop, and the worker thread serves other requests meanwhile.
//!
//! `handle` returns the response head before the body is written: the head
//! leaves at once, and the body streams from the guest's task, which keeps
//! running after it returned. The run (and its timeout) lasts until every
//! task of the instance has exited; only then does the body end cleanly.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use http::request::Parts;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, StatusCode, Uri};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime::component::Accessor;
use wasmtime_wasi_http::p3::Request;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::component::{ComponentBody, refusal, require_authority, send};
use super::shared::Shared;
use super::{Executor, Job, Ran, instantiation_failed, trap_text};
use crate::engine::{memory_limits, new_store};
use crate::error::error_text;
use crate::host::{HeadLimits, WasiState};
use crate::outcome::Outcome;
use crate::request::{LimitedBody, Respond, Start};

/// A WASI 0.3 component handler, ready to instantiate once per request.
pub struct P3Handler {
    /// Imports resolved against the WASI linker and the
    /// `wasi:http/handler@0.3` export found once, so a request only
    /// allocates and initialises an instance.
    pre: ServicePre<WasiState>,
    /// This version's instances that serve several requests, when reuse is
    /// on; dropped with it.
    shared: Shared,
}

impl P3Handler {
    pub(crate) fn new(pre: ServicePre<WasiState>) -> Self {
        Self {
            pre,
            shared: Shared::default(),
        }
    }
}

impl Executor for P3Handler {
    fn kind(&self) -> &'static str {
        "WASI 0.3 component"
    }

    fn check(&self, request: &Parts) -> Result<(), Outcome> {
        require_authority(request)
    }

    fn run(self: Arc<Self>, job: Job) -> BoxFuture<'static, Ran> {
        Box::pin(async move {
            if job.policy.instances.reuse {
                let request = with_full_uri(job.request);
                let job = Job { request, ..job };
                self.shared.run(&self.pre, job).await
            } else {
                run(&self, job).await
            }
        })
    }
}

/// How reading the request body ended, for the guest's response body:
/// `wasmtime-wasi-http` reports a failed read there.
type RequestIo = Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>>;

/// Runs `handler` for one request.
async fn run(handler: &P3Handler, job: Job) -> Ran {
    // Route parameters are the core ABI's; a component parses its path.
    let limits = job.limits;
    let handler_name = job.who.handler.clone();
    let request = with_full_uri(job.request);
    let state = WasiState::new(
        job.who,
        job.policy,
        memory_limits(limits.max_memory).build(),
        Arc::new(job.log),
    );
    let mut store = new_store(handler.pre.engine(), state);
    let respond = Mutex::new(Some(job.respond));
    // The status of the head the client got, once it got one.
    let sent = Mutex::new(None);
    let (ended_tx, ended_rx) = oneshot::channel();

    let _live = job.stats.instance(&handler_name);
    let pre = &handler.pre;
    let ran = tokio::time::timeout(limits.timeout, async {
        let service = match pre.instantiate_async(&mut store).await {
            Ok(service) => service,
            Err(e) => return instantiation_failed(&e),
        };
        let served = store
            .run_concurrent(async |accessor| {
                let answer = Answer {
                    respond: &respond,
                    sent: &sent,
                    head: limits.head,
                };
                let body = |body| ComponentBody::new(body, ended_rx);
                match answer.serve(accessor, &service, request, body).await {
                    Outcome::Completed => {}
                    failed => return failed,
                }
                // The body is written by the guest's task after `handle`
                // returned (and by any task it started): it is whole once
                // they have all exited.
                poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                Outcome::Completed
            })
            .await;
        served.unwrap_or_else(|e| Outcome::Trap(trap_text(&e)))
    })
    .await;
    let outcome = ran.unwrap_or(Outcome::Timeout);
    // The instance goes with the store: its streams close, and a body that
    // went out ends as `ended_tx` says.
    drop(store);
    ended(outcome, &respond, &sent, ended_tx)
}

/// How a request ended, told to its client (if no head went out) and to its
/// body (which ends cleanly only on a clean finish), and for the access line.
pub(super) fn ended(
    outcome: Outcome,
    respond: &Mutex<Option<Respond>>,
    sent: &Mutex<Option<StatusCode>>,
    ended_tx: oneshot::Sender<Outcome>,
) -> Ran {
    let status = sent.lock().unwrap().unwrap_or_else(|| outcome.status());
    // No head went out: the client gets the status of how it ended.
    send(respond, Start::Failed(outcome.clone()));
    // A body that went out ends cleanly only on a clean finish.
    let _ = ended_tx.send(outcome.clone());
    (outcome, status)
}

/// Where one request's answer goes.
pub(super) struct Answer<'a> {
    /// The client's end, until a head or a failure is sent.
    pub(super) respond: &'a Mutex<Option<Respond>>,
    /// The status of the head the client got, once it got one.
    pub(super) sent: &'a Mutex<Option<StatusCode>>,
    /// How big a head the guest may send.
    pub(super) head: HeadLimits,
}

impl Answer<'_> {
    /// Calls the guest's `handle` for `request` inside its store's event
    /// loop and sends the head it returns, with its body made by `body`.
    /// `Completed` once the head is out; the body goes on streaming.
    pub(super) async fn serve(
        &self,
        accessor: &Accessor<WasiState>,
        service: &Service,
        request: http::Request<LimitedBody>,
        body: impl FnOnce(WasiBody) -> ComponentBody,
    ) -> Outcome {
        let (request, request_io) = accessor.with(|mut store| {
            let (request, io) = Request::from_http(store.data_mut().http().hooks, request);
            // Boxed: the future borrows nothing, but its type names
            // the hooks' lifetime, which must not escape the closure.
            let io: RequestIo = Box::pin(io);
            (request, io)
        });
        let response = match service.handle(accessor, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                return Outcome::Trap(format!("the handler answered with the error {code:?}"));
            }
            Err(e) => return Outcome::Trap(trap_text(&e)),
        };
        let response = accessor.with(|mut store| response.into_http(&mut store, request_io));
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Trap(format!(
                    "the handler's response is not valid HTTP: {}",
                    error_text(&e)
                ));
            }
        };
        if let Err(why) = refusal(&response, self.head) {
            // The client gets a `500`; the guest's body writes fail
            // once its body is dropped with the store.
            return Outcome::Trap(format!("the handler's response was refused: {why}"));
        }
        *self.sent.lock().unwrap() = Some(response.status());
        let (parts, wasi_body) = response.into_parts();
        send(
            self.respond,
            Start::Head(http::Response::from_parts(
                parts,
                body(wasi_body).boxed_unsync(),
            )),
        );
        Outcome::Completed
    }
}

/// The request with the scheme and authority `wasi:http` gives the guest:
/// an HTTP/1.1 request's target is only a path, its authority is the `Host`
/// header (which [`require_authority`] made sure of).
fn with_full_uri(request: http::Request<LimitedBody>) -> http::Request<LimitedBody> {
    let (mut parts, body) = request.into_parts();
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    if uri.authority.is_none() {
        uri.authority = parts
            .headers
            .get(http::header::HOST)
            .and_then(|host| HeaderValue::to_str(host).ok())
            .and_then(|host| host.parse::<Authority>().ok());
    }
    if uri.authority.is_some() && uri.scheme.is_none() {
        uri.scheme = Some(Scheme::HTTP);
    }
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = Uri::from_parts(uri).unwrap_or_default();
    http::Request::from_parts(parts, body)
}
