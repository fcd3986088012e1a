//! The [`http`] crate, whose types the SDK speaks, and outbound HTTP
//! requests: [`send`], [`get`], [`post`], and [`begin`] to run several at
//! once.
//!
//! Everything of the `http` crate is here under its own name
//! ([`StatusCode`], [`HeaderMap`], [`Method`], [`header`], `Request`,
//! `Response`, …). What the SDK adds: a handler builds an `http::Request`
//! and [`send`]s it; the answer is a [`FetchResponse`] whose body is a
//! `std::io::Read`.
//!
//! ```
//! use wasmlet_sdk::{Request, Result, handler, http};
//!
//! #[handler(get)]
//! fn weather(_req: Request) -> Result<String> {
//!     let response = http::get("https://weather.example/today")?;
//!     if !response.status().is_success() {
//!         return Ok(format!("the weather service answered {}\n", response.status()));
//!     }
//!     response.text()
//! }
//!
//! // Requests with a method, headers and a body are `http::Request`s:
//! fn publish(text: &str) -> Result<http::StatusCode> {
//!     let request = http::Request::post("https://feed.example/items")
//!         .header("content-type", "text/plain")
//!         .body(text)?;
//!     Ok(http::send(request)?.status())
//! }
//! # use wasmlet_sdk::testing::{Reply, TestRequest};
//! # let response = TestRequest::get("/")
//! #     .upstream(|_| Reply::text("sunny\n"))
//! #     .call(handle_get);
//! # assert_eq!(response.text(), "sunny\n");
//! # let status = TestRequest::get("/")
//! #     .upstream(|req| {
//! #         assert_eq!(req.body(), b"hi");
//! #         http::StatusCode::CREATED
//! #     })
//! #     .run(|| publish("hi"));
//! # assert_eq!(status.unwrap(), http::StatusCode::CREATED);
//! ```
//!
//! Only hosts the configuration grants are reachable (`[http] allow` in a
//! `wasmlet.toml`); any other fails with
//! [`ErrorKind::Denied`](crate::ErrorKind::Denied) and a message naming the
//! configuration file. A handler that returns an upstream's failure answers
//! `502 Bad Gateway` (`504 Gateway Timeout` for a timeout): see
//! [`Error::status`](crate::Error::status).

mod fetch;

pub use ::http::*;
pub use fetch::FetchResponse;

use crate::host_error::{Capability, Operation};
use crate::pending::{Handle, Pending};
use crate::sys;

/// A request ready for the host: the four byte strings of `http_send` and
/// `http_begin`.
struct Outgoing {
    method: String,
    url: String,
    /// `Name: value` lines, each ended by `\n`.
    headers: Vec<u8>,
    body: Vec<u8>,
    operation: Operation,
}

impl Outgoing {
    fn new<B: Into<Vec<u8>>>(request: Request<B>) -> Self {
        let (parts, body) = request.into_parts();
        let mut headers = Vec::new();
        for (name, value) in &parts.headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.push(b'\n');
        }
        Self {
            operation: Operation::new(Capability::Http, describe(&parts.method, &parts.uri)),
            method: parts.method.as_str().to_owned(),
            url: parts.uri.to_string(),
            headers,
            body: body.into(),
        }
    }
}

/// The request as error messages name it: method, scheme, host, port and
/// path. The query and any `user:password@` are left out: they often carry
/// keys, and error messages end up in logs.
fn describe(method: &Method, uri: &Uri) -> String {
    let mut text = format!("{method} ");
    if let Some(scheme) = uri.scheme_str() {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(host) = uri.host() {
        text.push_str(host);
    }
    if let Some(port) = uri.port_u16() {
        text.push_str(&format!(":{port}"));
    }
    text.push_str(uri.path());
    text
}

/// Sends `request` and waits for the response's head; the body is read
/// from the [`FetchResponse`] as the handler asks for it.
///
/// The URI must be absolute (`https://host/path`). The host sets
/// `content-length` from the body; it follows redirects to granted hosts,
/// and enforces the configured timeouts and maximum response size.
///
/// Any status is a response, not an error; the error cases are the host's:
/// [`Denied`](crate::ErrorKind::Denied) (the host is not granted, or
/// resolves to a private address), [`Timeout`](crate::ErrorKind::Timeout),
/// [`Failed`](crate::ErrorKind::Failed) (connection refused, DNS, TLS),
/// [`Invalid`](crate::ErrorKind::Invalid) (a URI or header the host cannot
/// send), [`Busy`](crate::ErrorKind::Busy) (64 handles open).
pub fn send<B: Into<Vec<u8>>>(request: Request<B>) -> crate::Result<FetchResponse> {
    let out = Outgoing::new(request);
    let code = sys::http_send(
        out.method.as_bytes(),
        out.url.as_bytes(),
        &out.headers,
        &out.body,
    );
    if code <= 0 {
        return Err(out.operation.error(code));
    }
    FetchResponse::new(Handle::new(code), out.operation)
}

/// Starts `request` and returns at once; [`Pending::wait`] gives what
/// [`send`] would have. Several begun requests run concurrently: see
/// [`join_all`](crate::join_all) and [`join!`](crate::join!).
pub fn begin<B: Into<Vec<u8>>>(request: Request<B>) -> Pending<FetchResponse> {
    let out = Outgoing::new(request);
    let code = sys::http_begin(
        out.method.as_bytes(),
        out.url.as_bytes(),
        &out.headers,
        &out.body,
    );
    Pending::begin(code, out.operation, |op, operation| {
        // The host hands the response over under a handle of its own
        // choosing (today the operation's number).
        let code = sys::http_end(op);
        if code <= 0 {
            return Err(operation.error(code));
        }
        FetchResponse::new(Handle::new(code), operation)
    })
}

/// `GET uri`: [`send`] of a request with no headers and no body. An
/// invalid URI is an error.
pub fn get<U>(uri: U) -> crate::Result<FetchResponse>
where
    U: TryInto<Uri>,
    <U as TryInto<Uri>>::Error: Into<Error>,
{
    send(Request::get(uri).body(Vec::new())?)
}

/// `GET uri`, begun: [`begin`] of what [`get`] sends. An invalid URI is
/// reported by `wait`.
pub fn get_begin<U>(uri: U) -> Pending<FetchResponse>
where
    U: TryInto<Uri>,
    <U as TryInto<Uri>>::Error: Into<Error>,
{
    match Request::get(uri).body(Vec::new()) {
        Ok(request) => begin(request),
        Err(error) => Pending::failed(error),
    }
}

/// `POST body to uri`: [`send`] of a request with that body and no
/// headers (add a `content-type` by building an `http::Request` instead).
pub fn post<U, B>(uri: U, body: B) -> crate::Result<FetchResponse>
where
    U: TryInto<Uri>,
    <U as TryInto<Uri>>::Error: Into<Error>,
    B: Into<Vec<u8>>,
{
    send(Request::post(uri).body(body)?)
}

#[cfg(test)]
mod tests;
