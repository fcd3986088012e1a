//! The per-request path: route, then a static file or a handler. For a
//! handler: cached compile, verb check (405 without running guest code),
//! admission (503 without running guest code), a guest task, and the
//! response head as soon as the guest sends it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::access::Access;
use super::body::{GuestBody, ResponseBody, cancel_after_grace};
use super::{App, BodyLimits};
use super::{static_files, status};
use crate::engine::{Limits, RequestParts, run_request};
use crate::error::{LoadError, Outcome};
use crate::host::{HeadLimits, Identity, Start};
use crate::loader::HandlerKind;
use crate::router::Route;
use crate::webroot::SOURCE_EXTENSION;

/// Answers one request. Never fails: every failure is a response.
pub(crate) async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let request_id = app.request_ids.for_request(request.headers());
    let access = Access::begin(app.stats.clone(), &request, request_id);
    if let Some(why) = bad_host(&request) {
        let response = plain(StatusCode::BAD_REQUEST, format!("bad request: {why}\n"));
        access.finish(response.status(), None);
        return Ok(response);
    }
    // hyper has parsed `Content-Length` into the body's size: a body
    // declared too large is refused before anything reads it.
    if request.body().size_hint().lower() > app.config.max_body_size {
        let response = plain(StatusCode::PAYLOAD_TOO_LARGE, "413 Payload Too Large\n");
        access.finish(response.status(), None);
        return Ok(response);
    }
    if app.config.status_path.as_deref() == Some(request.uri().path())
        && status::allowed(&app, peer)
    {
        let response = status::json(&app);
        access.finish(response.status(), None);
        return Ok(response);
    }
    let (route, lookup) = app.router().route(request.uri().path());
    app.stats.route_lookup(lookup);
    let response = match route {
        // A source handler where builds are off is a file never served.
        Route::Handler { file, .. }
            if file.extension().is_some_and(|e| e == SOURCE_EXTENSION)
                && !(app.config.dev || app.current_site().builds_rust(&file)) =>
        {
            plain(StatusCode::NOT_FOUND, "not found\n")
        }
        Route::Handler { file, params } => {
            return Ok(handler(app, request, &file, params, access).await);
        }
        Route::Static(file) => {
            static_files::serve(request.method(), request.headers(), &file).await
        }
        Route::Withheld { file, class } if app.current_site().publishes(&file, class) => {
            static_files::serve(request.method(), request.headers(), &file).await
        }
        Route::Withheld { .. } => plain(StatusCode::NOT_FOUND, "not found\n"),
        Route::NotFound => plain(StatusCode::NOT_FOUND, "not found\n"),
        Route::BadRequest(why) => plain(StatusCode::BAD_REQUEST, format!("bad request: {why}\n")),
    };
    access.finish(response.status(), None);
    Ok(response)
}

/// Why an HTTP/1.x request's `Host` is unacceptable, if it is: RFC 9112
/// §3.2 requires exactly one in HTTP/1.1, and a server must answer `400`
/// otherwise (two could route a request differently here and at a proxy in
/// front). HTTP/1.0 predates `Host`, but two are as ambiguous there. HTTP/2
/// carries `:authority` instead and is left alone.
fn bad_host<B>(request: &Request<B>) -> Option<&'static str> {
    if request.version() > http::Version::HTTP_11 {
        return None;
    }
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Some("more than one Host header");
    }
    if hosts == 0 && request.version() == http::Version::HTTP_11 {
        return Some("an HTTP/1.1 request needs a Host header");
    }
    None
}

async fn handler(
    app: Arc<App>,
    request: Request<Incoming>,
    file: &Path,
    params: Vec<(String, String)>,
    mut access: Access,
) -> Response<ResponseBody> {
    let name = handler_name(app.router().root(), file);
    access.set_handler(name.clone());
    let policy = app.policy(file);
    // The request timeout covers the wait for the load: a client waiting on
    // a slow first compile gets 503 with Retry-After on time, and the compile
    // goes on for the next request. A handler with a working version serves
    // it rather than make anyone wait past that.
    let arrived = Instant::now();
    let loaded = match app.loader.get(file, policy.request_timeout).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let outcome = match e {
                LoadError::StillLoading { .. } => {
                    tracing::warn!(handler = %name, "{e}: answered 503 at the request timeout");
                    Outcome::Loading
                }
                e => Outcome::Load(e),
            };
            let response = failure(&app, &outcome);
            access.finish(response.status(), Some(&outcome));
            return response;
        }
    };
    // The verb check needs no slot: a core module without an export for the
    // verb is `405` without running guest code. A component answers every
    // verb itself.
    let core = match &loaded.kind {
        HandlerKind::Core(core) => match core.entry_point(request.method()) {
            Some(entry) => Some((core.clone(), entry)),
            None => {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                if let Ok(allow) = HeaderValue::from_str(&core.allow()) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                access.finish(response.status(), None);
                return response;
            }
        },
        HandlerKind::Component(_) => None,
    };

    let handler_limit = policy
        .max_concurrency
        .map(|limit| app.handler_limit(file, limit));
    let permit = match app.admission.admit(handler_limit.as_ref()).await {
        Ok(permit) => permit,
        Err(busy) => {
            tracing::debug!(handler = %name, reason = %busy, "request turned away");
            let response = unavailable();
            access.finish(response.status(), None);
            return response;
        }
    };
    let (core, entry) = match (core, &loaded.kind) {
        (Some(core), _) => core,
        (None, HandlerKind::Component(component)) => {
            let component = component.clone();
            return super::component::serve(app, request, component, policy, name, access, permit)
                .await;
        }
        (None, HandlerKind::Core(_)) => unreachable!("a core handler has its entry point"),
    };

    let who = Identity {
        handler: name.clone(),
        request_id: access.request_id().clone(),
    };
    let log = app.guest_log(who);
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let guest_request = RequestParts {
        method: parts.method,
        target,
        headers: parts.headers,
        params,
        body,
        handler: name,
        request_id: access.request_id().clone(),
        policy: policy.clone(),
        body_limits: BodyLimits::of(&app.config),
        log,
    };
    let (start_tx, start_rx) = oneshot::channel();
    let limits = Limits {
        // What the load left of the request's time.
        timeout: policy.request_timeout.saturating_sub(arrived.elapsed()),
        max_memory: policy.max_memory,
        head: HeadLimits::of(&app.config),
    };
    let task_app = app.clone();
    // The access line moves into the task: the request ends when the guest
    // does, which for a streamed body is long after this function returns.
    let task = tokio::spawn(async move {
        let (outcome, status) = run_request(
            &task_app.engine,
            &core,
            entry,
            guest_request,
            limits,
            start_tx,
            &task_app.stats,
        )
        .await;
        // The slot frees when the guest is done, before its access line.
        drop(permit);
        access.finish(status, Some(&outcome));
    });
    // Until the head is sent, this future owns the guest: if hyper drops it
    // (the client went away), the guard cancels the guest task.
    let guard = AbortOnDrop(Some(task.abort_handle()));
    match start_rx.await {
        Ok(Start::Stream {
            status,
            headers,
            body,
        }) => with_head(
            status,
            headers,
            ResponseBody::Guest(GuestBody::new(body, guard.disarm())),
        ),
        Ok(Start::Complete { status, headers }) => {
            with_head(status, headers, ResponseBody::empty())
        }
        Ok(Start::Failed(outcome)) => failure(&app, &outcome),
        // The task ended without a word: it panicked (a host bug, logged by
        // the runtime). The client still gets a status.
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n"),
    }
}

fn with_head(
    status: StatusCode,
    headers: http::HeaderMap,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The response for a failure before the head was sent. Details only in
/// development mode: a trap message can reveal the guest's internals.
pub(super) fn failure(app: &App, outcome: &Outcome) -> Response<ResponseBody> {
    let status = outcome.status();
    let reason = status.canonical_reason().unwrap_or("error");
    let body = match outcome.detail() {
        Some(detail) if app.config.dev => format!("{} {reason}\n\n{detail}\n", status.as_u16()),
        _ => format!("{} {reason}\n", status.as_u16()),
    };
    let mut response = plain(status, body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    }
    response
}

/// What a client is told to wait before trying again when the server is at
/// a limit: a guest usually finishes in milliseconds, so a second is plenty.
const RETRY_AFTER: &str = "1";

/// `503` with `Retry-After`: the server is at its cap on guest executions.
fn unavailable() -> Response<ResponseBody> {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n");
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    response
}

/// A `text/plain` response.
pub(crate) fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The handler's path relative to the web root, as logs show it.
fn handler_name(root: &Path, file: &Path) -> Arc<str> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    format!("/{}", rel.display()).into()
}

/// Cancels the guest task (after the grace period) when dropped, unless
/// disarmed: hyper drops the request future when the client goes away.
pub(super) struct AbortOnDrop(pub(super) Option<AbortHandle>);

impl AbortOnDrop {
    pub(super) fn disarm(mut self) -> AbortHandle {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            cancel_after_grace(&handle);
        }
    }
}
