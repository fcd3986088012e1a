//! Outbound HTTP for components: `wasi:http/outgoing-handler` requests go
//! through the same allow-listed client as the core ABI's `http_send`
//! ([`crate::capability::http`]), so a component reaches exactly what a core
//! handler in its place would: nothing unless a `wasmlet.toml` grants it, and
//! then only the granted origins, with every redirect and resolved address
//! checked again. `wasmtime-wasi-http` builds the request from the guest's
//! resources and hands it to [`Outbound`]'s `send_request`; a refusal
//! reaches the guest as the `wasi:http` error code for it
//! (`HTTP-request-denied` for a denial), and the operator's log names the
//! grant that is missing.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::stream;
use http::header::CONTENT_LENGTH;
use http_body::Frame;
use http_body_util::{BodyExt, Limited, StreamBody};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capability::http::{FetchError, OutboundRequest, OutboundResponse};
use crate::request::Identity;
use crate::site::Policy;

/// What `send_request` returns: the response once its head arrived, and a
/// future for errors after it (none: the body reports its own).
type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

/// The `wasi:http` hooks of one request: its handler's grant.
pub(crate) struct Outbound {
    who: Identity,
    policy: Arc<Policy>,
}

impl Outbound {
    pub(crate) fn new(who: Identity, policy: Arc<Policy>) -> Self {
        Self { who, policy }
    }
}

impl WasiHttpHooks for Outbound {
    /// Our client sets `Host` from the URL it checked; a `Host` header
    /// besides would be refused as one the host owns.
    fn set_host_header(&mut self) -> bool {
        false
    }

    /// Request options (timeouts) are not applied: the handler's `[http]`
    /// settings bound every request, as they do for core handlers.
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sent {
        let who = self.who.clone();
        let policy = self.policy.clone();
        Box::new(async move {
            let response = send(&who, &policy, request).await?;
            let after: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, after))
        })
    }
}

/// Checks the grant, reads the guest's body and sends the request.
async fn send(
    who: &Identity,
    policy: &Policy,
    request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error> {
    let url = request.uri().to_string();
    let (parts, body) = request.into_parts();
    // The core ABI sends a body from guest memory, so it can never exceed
    // the handler's memory limit; the same bound keeps a component's
    // streamed body from making the host buffer more.
    let limit = usize::try_from(policy.max_memory).unwrap_or(usize::MAX);
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(match e.downcast::<Error>() {
                Ok(guest) => *guest,
                Err(_) => Error::HttpRequestBodySize(None),
            });
        }
    };
    // The grant is checked once the guest has handed over its body: a guest
    // (wstd, say) writes the body while it waits for the response, and a
    // refusal that dropped the body first would reach it as a broken body
    // stream ("connection reset") instead of `HttpRequestDenied`, depending
    // on which it noticed first. Nothing has touched the network yet.
    let Some(client) = policy.http.clone() else {
        let why = format!(
            "{url}: outbound HTTP is not granted to {}; {}",
            who.handler,
            policy.grant_hint("[http] allow")
        );
        return Err(refused(who, FetchError::Denied(why), None));
    };
    let mut headers = parts.headers;
    // `wasi:http` has checked it against the body already; our client sets
    // it from the body it sends, and refuses a guest's.
    headers.remove(CONTENT_LENGTH);
    let request = OutboundRequest {
        method: parts.method,
        url,
        headers,
        body,
    };
    match client.send(request).await {
        Ok(response) => Ok(adapt(response)),
        Err(e) => Err(refused(who, e, policy.sources.last().cloned())),
    }
}

/// Our response as `wasi:http` takes it: the body read chunk by chunk, under
/// the client's deadline and size limit.
fn adapt(mut response: OutboundResponse) -> http::Response<WasiBody> {
    let status = response.status;
    let headers = std::mem::take(&mut response.headers);
    let chunks = stream::unfold(Some(response), |state| async move {
        let mut response = state?;
        match response.chunk().await {
            Ok(Some(bytes)) => Some((Ok(Frame::data(bytes)), Some(response))),
            Ok(None) => None,
            // The first error ends the body; the response is dropped with it.
            Err(e) => Some((Err(body_error(e)), None)),
        }
    });
    let mut adapted = http::Response::new(StreamBody::new(chunks).boxed_unsync());
    *adapted.status_mut() = status;
    *adapted.headers_mut() = headers;
    adapted
}

/// The `wasi:http` error for a request that failed before its response; a
/// denial is logged as a warning (a grant may be missing), anything else at
/// debug (the guest sees it).
fn refused(who: &Identity, e: FetchError, settings_from: Option<PathBuf>) -> Error {
    let handler = &*who.handler;
    let request_id = &*who.request_id;
    match e {
        FetchError::Denied(why) => {
            match settings_from {
                Some(file) => tracing::warn!(
                    handler, %request_id,
                    "denied: {why} (settings from {})", file.display()
                ),
                None => tracing::warn!(handler, %request_id, "denied: {why}"),
            }
            Error::HttpRequestDenied
        }
        other => {
            tracing::debug!(handler, %request_id, "outbound request failed: {other}");
            match other {
                FetchError::Timeout(_) => Error::HttpResponseTimeout,
                FetchError::TooLarge { limit } => Error::HttpResponseBodySize(Some(limit)),
                // The message (URL, what went wrong, which setting) is worth
                // more to the guest than a bare code.
                FetchError::Invalid(why) | FetchError::Failed(why) => {
                    Error::InternalError(Some(why))
                }
                FetchError::Denied(_) => unreachable!("handled above"),
            }
        }
    }
}

/// The `wasi:http` error for a response body that failed mid-way.
fn body_error(e: FetchError) -> Error {
    match e {
        FetchError::Timeout(_) => Error::HttpResponseTimeout,
        FetchError::TooLarge { limit } => Error::HttpResponseBodySize(Some(limit)),
        other => Error::InternalError(Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::site::Site;

    /// A body of these bytes as `wasi:http` hands it over.
    fn wasi_body(bytes: &'static [u8]) -> WasiBody {
        http_body_util::Full::new(bytes::Bytes::from_static(bytes))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    fn who() -> Identity {
        Identity {
            handler: "/c.wasm".into(),
            request_id: "r1".into(),
        }
    }

    #[tokio::test]
    async fn a_handler_without_an_http_grant_gets_http_request_denied() {
        let config = Config::new(std::env::temp_dir());
        let site = Site::empty(&config);
        let policy = site.policy(&config.webroot.join("c.wasm"));
        let request = http::Request::builder()
            .uri("http://127.0.0.1:9/")
            .body(wasi_body(b""))
            .unwrap();
        let error = send(&who(), &policy, request).await.unwrap_err();
        assert!(matches!(error, Error::HttpRequestDenied), "{error}");
    }
}
