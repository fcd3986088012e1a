//! The executor for a standard `wasi:http` 0.2 component: a request needs
//! an authority (`400` before admission without one), then a fresh `Store`
//! from the one store recipe and a fresh instance from the handler's
//! `ProxyPre` (or, when the handler opts into reuse, a warm one from its
//! pool, which serves one request at a time), and a call of
//! `wasi:http/incoming-handler.handle`, all through `wasmtime-wasi-http`.
//! The response leaves as soon as the guest sets it; its body ends cleanly
//! only once `handle` has returned normally.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::pool::{Pool, Ticket};
use super::{Executor, Job, Ran, instantiation_failed, trap_text};
use crate::engine::{memory_limits, new_store};
use crate::error::error_text;
use crate::host::{HeadLimits, WasiState};
use crate::outcome::Outcome;
use crate::request::{BodyError, Incomplete, Respond, Start};

/// A component handler, ready to instantiate once per request.
pub struct ComponentHandler {
    /// Imports resolved against the WASI linker and the
    /// `wasi:http/incoming-handler` export found once, so a request only
    /// allocates and initialises an instance.
    pre: ProxyPre<WasiState>,
    /// Warm instances of this version, when reuse is on; dropped with it.
    pool: Pool<(Store<WasiState>, Proxy)>,
}

impl ComponentHandler {
    pub(crate) fn new(pre: ProxyPre<WasiState>) -> Self {
        Self {
            pre,
            pool: Pool::default(),
        }
    }
}

impl Executor for ComponentHandler {
    fn kind(&self) -> &'static str {
        "wasi:http component"
    }

    fn check(&self, request: &Parts) -> Result<(), Outcome> {
        require_authority(request)
    }

    fn run(self: Arc<Self>, job: Job) -> BoxFuture<'static, Ran> {
        Box::pin(async move { run(&self, job).await })
    }
}

/// `wasi:http` (0.2 and 0.3) gives the guest the request's authority;
/// HTTP/1.1 requires a `Host` (RFC 9112 §3.2), and HTTP/2 has `:authority`
/// in the URI. An HTTP/1.0 request may have neither.
pub(super) fn require_authority(request: &Parts) -> Result<(), Outcome> {
    let has_authority = request.uri.authority().is_some()
        || request
            .headers
            .get(http::header::HOST)
            .is_some_and(|host| host.to_str().is_ok());
    if has_authority {
        Ok(())
    } else {
        Err(Outcome::BadRequest("a Host header is required".to_owned()))
    }
}

/// What the guest set as its response, as far as the log cares.
enum Set {
    Nothing,
    Response(http::StatusCode),
    Error(String),
    /// The guest set a response the host will not send, for this reason.
    Refused(String),
}

/// Runs `handler` for one request.
async fn run(handler: &ComponentHandler, job: Job) -> Ran {
    // Route parameters are the core ABI's; a component parses its path.
    let limits = job.limits;
    let handler_name = job.who.handler.clone();
    let ticket = job.policy.instances.reuse.then(|| job.policy.clone());
    let warm = ticket.as_ref().and_then(|policy| handler.pool.take(policy));
    let (mut store, proxy, ticket) = match warm {
        Some(((mut store, proxy), ticket)) => {
            // The instance keeps its memory (that is the point); its
            // outbound requests and output are this request's.
            store
                .data_mut()
                .renew(job.who, job.policy, Arc::new(job.log));
            store.set_epoch_deadline(1);
            (store, Some(proxy), Some(ticket))
        }
        None => {
            let state = WasiState::new(
                job.who,
                job.policy,
                memory_limits(limits.max_memory).build(),
                Arc::new(job.log),
            );
            let store = new_store(handler.pre.instance_pre().engine(), state);
            (store, None, ticket.map(Ticket::new))
        }
    };

    let head = limits.head;
    let set = Arc::new(Mutex::new(Set::Nothing));
    let recorded = set.clone();
    // Shared with the outparam's callback: whoever answers first takes it,
    // and a guest that never sets a response is answered here at the end.
    let respond = Arc::new(Mutex::new(Some(job.respond)));
    let answer = respond.clone();
    let (ended_tx, ended_rx) = oneshot::channel();
    let resources = {
        let mut http = store.data_mut().http();
        http.new_incoming_request(Scheme::Http, job.request)
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
                    let start = match (response, refused) {
                        (_, Some(why)) => answered_with(&ErrorCode::InternalError(Some(why))),
                        (Err(code), None) => answered_with(&code),
                        (Ok(response), None) => {
                            let (parts, body) = response.into_parts();
                            let body = ComponentBody::new(body, ended_rx);
                            Start::Head(http::Response::from_parts(parts, body.boxed_unsync()))
                        }
                    };
                    send(&answer, start);
                })?;
                Ok((incoming, out))
            })
    };
    let (incoming, out) = match resources {
        Ok(resources) => resources,
        Err(e) => {
            // `check` made sure of the authority, so this is a host bug
            // rather than the client's fault.
            let outcome = Outcome::Trap(format!(
                "cannot hand the request to the component: {}",
                error_text(&e)
            ));
            send(&respond, Start::Failed(outcome.clone()));
            let status = outcome.status();
            return (outcome, status);
        }
    };

    let _live = job.stats.instance(&handler_name);
    let pre = &handler.pre;
    let ran = tokio::time::timeout(limits.timeout, async {
        let proxy = match proxy {
            Some(proxy) => proxy,
            None => match pre.instantiate_async(&mut store).await {
                Ok(proxy) => proxy,
                Err(e) => return (instantiation_failed(&e), None),
            },
        };
        match proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, out)
            .await
        {
            Ok(()) => (Outcome::Completed, Some(proxy)),
            Err(e) => (Outcome::Trap(trap_text(&e)), None),
        }
    })
    .await;
    let (outcome, proxy) = ran.unwrap_or((Outcome::Timeout, None));
    let set = std::mem::replace(&mut *set.lock().unwrap(), Set::Nothing);
    let ended = match (set, outcome) {
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
    };
    // Only an instance that answered and returned cleanly serves again: after
    // a trap or a timeout its state is whatever the guest left mid-way. The
    // outparam (and with it its callback) goes with the store otherwise: a
    // guest that never set a response has the server waiting on it until now.
    match (ticket, &ended.0, proxy) {
        (Some(ticket), Outcome::Completed, Some(proxy)) => handler.pool.put((store, proxy), ticket),
        _ => drop(store),
    }
    // No response was set: the client gets the status of how it ended.
    send(&respond, Start::Failed(ended.0.clone()));
    // A body that went out ends cleanly only on a clean finish.
    let _ = ended_tx.send(ended.0.clone());
    ended
}

/// Sends `start` unless the response has been answered already.
pub(super) fn send(respond: &Mutex<Option<Respond>>, start: Start) {
    if let Some(respond) = respond.lock().unwrap().take() {
        // The receiver is gone when the client is.
        let _ = respond.send(start);
    }
}

/// The failure for a guest that set an error code instead of a response.
fn answered_with(code: &ErrorCode) -> Start {
    Start::Failed(Outcome::Trap(format!(
        "the handler answered with the error {code:?}"
    )))
}

/// A component's response body (0.2 or 0.3: `wasmtime-wasi-http` gives
/// both as a [`WasiBody`]). It ends cleanly only if the guest finished
/// normally; a trap or timeout after the head ends it with an error, so the
/// client can tell the response is incomplete (`wasmtime-wasi-http` alone
/// would end it cleanly when the guest's store goes away).
pub(super) struct ComponentBody {
    body: WasiBody,
    /// The guest's frames ran out; what is left is how its task ended.
    body_ended: bool,
    /// How the guest's task ended, awaited once its frames run out.
    ended: oneshot::Receiver<Outcome>,
    /// Told (by a send, or by its drop with the body) when the frames ran
    /// out: on an instance serving several requests, that is when this
    /// request is done with it.
    drained: Option<oneshot::Sender<()>>,
}

impl ComponentBody {
    /// `body`, ending as the outcome sent on `ended` says.
    pub(super) fn new(body: WasiBody, ended: oneshot::Receiver<Outcome>) -> Self {
        Self {
            body,
            body_ended: false,
            ended,
            drained: None,
        }
    }

    /// `body`, which says on `drained` when its frames ran out, then ends
    /// as the outcome sent on `ended` says.
    pub(super) fn telling(
        body: WasiBody,
        ended: oneshot::Receiver<Outcome>,
        drained: oneshot::Sender<()>,
    ) -> Self {
        Self {
            drained: Some(drained),
            ..Self::new(body, ended)
        }
    }
}

impl Body for ComponentBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if !this.body_ended {
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => return Poll::Ready(Some(Ok(frame))),
                Some(Err(e)) => {
                    this.body_ended = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => this.body_ended = true,
            }
        }
        if let Some(drained) = this.drained.take() {
            let _ = drained.send(());
        }
        let ended = ready!(Pin::new(&mut this.ended).poll(cx)).ok();
        Poll::Ready(Incomplete::after(ended.as_ref()).map(Err))
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why the host will not send the response a component set, if it will not:
/// a `1xx` status is an interim response, not an answer (and `101` would
/// switch protocols on a connection the guest cannot reach), and a head past
/// the limits is refused as a core handler's `resp_header` would be.
pub(super) fn refusal(response: &http::Response<WasiBody>, head: HeadLimits) -> Result<(), String> {
    if response.status().is_informational() {
        return Err(format!(
            "status {} is an interim (1xx) status, not a final answer",
            response.status().as_u16()
        ));
    }
    head.check(response.headers())
}
