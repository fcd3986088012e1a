//! The per-request path for a `wasi:http` component handler, after routing
//! and loading (see `service.rs`): a guest task, the response head as soon as
//! the guest sets it, and its body streamed with the same rules as a core
//! handler's — a failure after the head cuts the body, a client that goes
//! away cancels the guest after a grace period, and the access line is
//! written once, when the guest's task ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::access::Access;
use super::body::{BodyError, ResponseBody, cancel_after_grace};
use super::service::{AbortOnDrop, failure, plain};
use super::{App, BodyLimits, LimitedBody, Permit};
use crate::engine::{ComponentHandler, ComponentRequest, Limits, run_component};
use crate::error::Outcome;
use crate::host::{HeadLimits, Identity};
use crate::site::Policy;

/// Runs `handler` for `request` and answers with what the guest sets.
pub(super) async fn serve(
    app: Arc<App>,
    request: Request<Incoming>,
    handler: Arc<ComponentHandler>,
    policy: Arc<Policy>,
    name: Arc<str>,
    access: Access,
    permit: Permit,
) -> Response<ResponseBody> {
    // `wasi:http` gives the guest the request's authority; HTTP/1.1 requires
    // a `Host` (RFC 9112 §3.2), and HTTP/2 has `:authority` in the URI.
    let has_authority = request.uri().authority().is_some()
        || request
            .headers()
            .get(http::header::HOST)
            .is_some_and(|host| host.to_str().is_ok());
    if !has_authority {
        let response = plain(
            StatusCode::BAD_REQUEST,
            "bad request: a Host header is required\n",
        );
        access.finish(response.status(), None);
        return response;
    }

    let limits = Limits {
        timeout: policy.request_timeout,
        max_memory: policy.max_memory,
        head: HeadLimits::of(&app.config),
    };
    let who = Identity {
        handler: name,
        request_id: access.request_id().clone(),
    };
    let log = Arc::new(app.guest_log(who.clone()));
    let body_limits = BodyLimits::of(&app.config);
    let body_who = who.clone();
    let guest_request = ComponentRequest {
        request: request.map(|body| LimitedBody::new(body, body_limits, body_who)),
        who,
        policy,
        log,
    };
    let (respond_tx, respond_rx) = oneshot::channel();
    let (ended_tx, ended_rx) = oneshot::channel();
    let task_app = app.clone();
    // The access line moves into the task: the request ends when the guest
    // does, which for a streamed body is long after this function returns.
    let task = tokio::spawn(async move {
        let (outcome, status) = run_component(
            &task_app.engine,
            &handler,
            guest_request,
            limits,
            respond_tx,
            &task_app.stats,
        )
        .await;
        // The execution slot frees when the guest is done.
        drop(permit);
        let _ = ended_tx.send(outcome.clone());
        access.finish(status, Some(&outcome));
    });
    // Until the head is sent, this future owns the guest: if hyper drops it
    // (the client went away), the guard cancels the guest task.
    let guard = AbortOnDrop(Some(task.abort_handle()));
    match respond_rx.await {
        Ok(Ok(response)) => {
            let (parts, body) = response.into_parts();
            let body = ComponentBody::new(body, ended_rx, guard.disarm());
            Response::from_parts(parts, ResponseBody::Component(body))
        }
        // The guest set an error code instead of a response (the task logs
        // it too).
        Ok(Err(code)) => failure(
            &app,
            &Outcome::Trap(format!("the handler answered with the error {code:?}")),
        ),
        // The guest's store is gone without a response: the task knows why
        // (a trap, the timeout, the instance limit, or it returned without
        // setting one).
        Err(_) => match ended_rx.await {
            Ok(outcome) => failure(&app, &outcome),
            // The task ended without a word: it panicked (a host bug, logged
            // by the runtime). The client still gets a status.
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n"),
        },
    }
}

/// A component's response body. It ends cleanly only if the guest's
/// `handle` returned normally; a trap or timeout after the head cuts it, so
/// the client can tell the response is incomplete (`wasmtime-wasi-http` alone
/// would end it cleanly when the guest's store goes away). Dropped before its
/// end means the client went away: the guest is cancelled after the grace
/// period.
pub struct ComponentBody {
    body: HyperOutgoingBody,
    /// The guest's frames ran out; what is left is how its task ended.
    body_ended: bool,
    /// How the guest's task ended, awaited once its frames run out.
    ended: oneshot::Receiver<Outcome>,
    guest: AbortHandle,
    /// The error to end with, once hyper has flushed; see [`Self::cut`].
    cutting: Option<BodyError>,
    /// The body reached its end (clean or cut); nothing left to cancel.
    done: bool,
}

impl ComponentBody {
    fn new(body: HyperOutgoingBody, ended: oneshot::Receiver<Outcome>, guest: AbortHandle) -> Self {
        Self {
            body,
            body_ended: false,
            ended,
            guest,
            cutting: None,
            done: false,
        }
    }

    /// Ends the body with `why` at the next poll. Pending (and woken at
    /// once) first, as `GuestBody` does: hyper buffers the head with the
    /// first chunks and flushes when the body is pending, and an error
    /// before that flush would drop the head, so the client would see no
    /// status line at all.
    fn cut(
        &mut self,
        cx: &mut Context<'_>,
        why: BodyError,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.cutting = Some(why);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for ComponentBody {
    fn drop(&mut self) {
        if !self.done {
            cancel_after_grace(&self.guest);
        }
    }
}

/// The component stopped before finishing its body.
#[derive(Debug, thiserror::Error)]
#[error("the component failed after the response head was sent ({0}); the body is incomplete")]
struct Incomplete(&'static str);

impl Body for ComponentBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(why) = this.cutting.take() {
            this.done = true;
            return Poll::Ready(Some(Err(why)));
        }
        if !this.body_ended {
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => return Poll::Ready(Some(Ok(frame))),
                Some(Err(e)) => {
                    this.body_ended = true;
                    return this.cut(cx, e.into());
                }
                None => this.body_ended = true,
            }
        }
        match ready!(Pin::new(&mut this.ended).poll(cx)) {
            Ok(Outcome::Completed) => {
                this.done = true;
                Poll::Ready(None)
            }
            Ok(failed) => this.cut(cx, Incomplete(failed.label()).into()),
            Err(_) => this.cut(cx, Incomplete("its task ended").into()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
