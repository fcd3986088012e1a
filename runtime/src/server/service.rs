//! The per-request path: route, then a static file or a handler. For a
//! handler of any kind, one sequence: cached compile, the executor's check
//! (`405`, `400` without running guest code), admission (`503` without
//! running guest code), the guest's task under abort-on-drop, the response
//! head as soon as the guest sends it, and one access line. Every reply
//! before a head is built from its [`Outcome`] by [`reply`].

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

use super::App;
use super::access::Access;
use super::body::{GuestBody, ResponseBody, cancel_after_grace};
use super::{static_files, status};
use crate::error::LoadError;
use crate::executor::{Job, RunLimits};
use crate::host::HeadLimits;
use crate::outcome::Outcome;
use crate::request::{BodyLimits, Identity, LimitedBody, Start};
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
        return Ok(answer(&app, access, Outcome::BadRequest(why.to_owned())));
    }
    // hyper has parsed `Content-Length` into the body's size: a body
    // declared too large is refused before anything reads it.
    if request.body().size_hint().lower() > app.config.max_body_size {
        return Ok(answer(&app, access, Outcome::TooLarge));
    }
    if app.config.status_path.as_deref() == Some(request.uri().path())
        && status::allowed(&app, peer)
    {
        let response = status::json(&app).await;
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
            return Ok(answer(&app, access, Outcome::NotFound));
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
        Route::Withheld { .. } | Route::NotFound => {
            return Ok(answer(&app, access, Outcome::NotFound));
        }
        Route::BadRequest(why) => {
            return Ok(answer(&app, access, Outcome::BadRequest(why.to_owned())));
        }
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

/// The one sequence every handler kind goes through: load, the executor's
/// check, admission, the guest's task, the answer, the access line.
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
        Err(e @ LoadError::StillLoading { .. }) => {
            tracing::warn!(handler = %name, "{e}: answered 503 at the request timeout");
            return answer(&app, access, Outcome::Loading);
        }
        Err(e) => return answer(&app, access, Outcome::Load(e)),
    };
    let executor = loaded.executor.clone();
    // The checks need no slot: a core module without an export for the verb
    // is `405`, a component request without an authority `400`, and no guest
    // code runs.
    let (parts, body) = request.into_parts();
    if let Err(refusal) = executor.check(&parts) {
        return answer(&app, access, refusal);
    }
    let handler_limit = policy
        .max_concurrency
        .map(|limit| app.handler_limit(file, limit));
    let permit = match app.admission.admit(handler_limit.as_ref()).await {
        Ok(permit) => permit,
        Err(busy) => {
            tracing::debug!(handler = %name, reason = %busy, "request turned away");
            return answer(&app, access, Outcome::Overloaded);
        }
    };

    let who = Identity {
        handler: name,
        request_id: access.request_id().clone(),
    };
    let body = LimitedBody::new(body, BodyLimits::of(&app.config), who.clone());
    let (respond, start) = oneshot::channel();
    let job = Job {
        request: Request::from_parts(parts, body),
        params,
        log: app.guest_log(who.clone()),
        who,
        limits: RunLimits {
            // What the load left of the request's time.
            timeout: policy.request_timeout.saturating_sub(arrived.elapsed()),
            max_memory: policy.max_memory,
            head: HeadLimits::of(&app.config),
        },
        policy,
        respond,
        stats: app.stats.clone(),
    };
    // The access line moves into the task: the request ends when the guest
    // does, which for a streamed body is long after this function returns.
    let task = tokio::spawn(async move {
        let (outcome, status) = executor.run(job).await;
        // The slot frees when the guest is done, before its access line.
        drop(permit);
        access.finish(status, Some(&outcome));
    });
    // Until the head is sent, this future owns the guest: if hyper drops it
    // (the client went away), the guard cancels the guest task.
    let guard = AbortOnDrop(Some(task.abort_handle()));
    match start.await {
        Ok(Start::Head(response)) => {
            let (head, body) = response.into_parts();
            let body = GuestBody::new(body, guard.disarm());
            Response::from_parts(head, ResponseBody::Guest(body))
        }
        Ok(Start::Complete(response)) => response.map(|()| ResponseBody::empty()),
        Ok(Start::Failed(outcome)) => reply(&app, &outcome),
        // The task ended without a word: it panicked (a host bug, logged by
        // the runtime). The client still gets a status.
        Err(_) => reply(&app, &Outcome::Panicked),
    }
}

/// Answers a request that ends before any guest runs: the one reply for
/// its outcome, and its access line.
fn answer(app: &App, access: Access, outcome: Outcome) -> Response<ResponseBody> {
    let response = reply(app, &outcome);
    let failed = (!outcome.is_refusal()).then_some(&outcome);
    access.finish(response.status(), failed);
    response
}

/// The response for an outcome before the head was sent: every early reply
/// and every failure. Details only in development mode (see `dev_page`): a
/// trap message can reveal the guest's internals.
fn reply(app: &App, outcome: &Outcome) -> Response<ResponseBody> {
    let status = outcome.status();
    let body = match outcome {
        Outcome::BadRequest(why) => format!("bad request: {why}\n"),
        Outcome::NotFound => "not found\n".to_owned(),
        Outcome::MethodNotAllowed { .. } => "method not allowed\n".to_owned(),
        Outcome::Panicked => "internal server error\n".to_owned(),
        _ => super::dev_page::body(status, outcome, app.config.dev),
    };
    let mut response = plain(status, body);
    if let Outcome::MethodNotAllowed { allow } = outcome
        && let Ok(allow) = HeaderValue::from_str(allow)
    {
        response.headers_mut().insert(header::ALLOW, allow);
    }
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
struct AbortOnDrop(Option<AbortHandle>);

impl AbortOnDrop {
    fn disarm(mut self) -> AbortHandle {
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
