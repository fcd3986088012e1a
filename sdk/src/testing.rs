//! Run a handler on the fake host, with plain `cargo test` on the build
//! machine (not on wasm32).
//!
//! Build a [`TestRequest`], [`call`](TestRequest::call) the export that
//! `#[handler]` generated (`handle`, `handle_get`, …), and inspect the
//! [`TestResponse`]: what the client would see, plus the handler's log lines,
//! each write with its time, and the virtual time it slept.
//!
//! ```
//! use wasmlet_sdk::http::StatusCode;
//! use wasmlet_sdk::testing::TestRequest;
//! use wasmlet_sdk::{Request, handler};
//!
//! #[handler(get)]
//! fn hello(req: Request) -> String {
//!     let name = req.query("name");
//!     format!("hello, {}\n", name.as_deref().unwrap_or("world"))
//! }
//!
//! let response = TestRequest::get("/hello?name=ann").call(handle_get);
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
//! assert_eq!(response.text(), "hello, ann\n");
//! ```
//!
//! The fake host follows the ABI: the runtime's own behaviour around the
//! module (routing, verb dispatch and `405`, limits, timeouts) is not
//! simulated, so pick the export a request would reach.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::log::Level;
use crate::sys::fake::{self, Exchange};

/// A request to run a handler against. Build it, then
/// [`call`](TestRequest::call) an export.
pub struct TestRequest {
    exchange: Exchange,
}

impl TestRequest {
    /// A request with `method` for `uri` (path and query, as a client sends
    /// it: `/users/42?full=1`).
    pub fn new(method: Method, uri: &str) -> Self {
        Self {
            exchange: Exchange::new(method.as_str(), uri),
        }
    }

    /// A `GET` request.
    pub fn get(uri: &str) -> Self {
        Self::new(Method::GET, uri)
    }

    /// A `POST` request.
    pub fn post(uri: &str) -> Self {
        Self::new(Method::POST, uri)
    }

    /// A `PUT` request.
    pub fn put(uri: &str) -> Self {
        Self::new(Method::PUT, uri)
    }

    /// A `DELETE` request.
    pub fn delete(uri: &str) -> Self {
        Self::new(Method::DELETE, uri)
    }

    /// Adds a request header; a name may repeat.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.exchange
            .headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets route parameter `name` (already decoded, as the runtime passes
    /// it): what `[name]` in the handler's web-root path matched.
    pub fn param(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.exchange
            .params
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.exchange.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("the test value serialises to JSON");
        self.header("content-type", "application/json").body(body)
    }

    /// Hands out the body at most `max` bytes per read, as a network
    /// delivers it in pieces. Panics on `0`, which would read as the end.
    pub fn read_chunk(mut self, max: usize) -> Self {
        assert!(max > 0, "a read of 0 bytes means the end of the body");
        self.exchange.read_chunk = Some(max);
        self
    }

    /// The client aborts the upload after `bytes` bytes of the body: reading
    /// further fails.
    pub fn body_fails_after(mut self, bytes: usize) -> Self {
        self.exchange.body_fails_after = Some(bytes);
        self
    }

    /// The client hangs up once it has received `bytes` bytes of the
    /// response body: later writes fail with `BrokenPipe`.
    pub fn disconnect_after(mut self, bytes: usize) -> Self {
        self.exchange.disconnect_after = Some(bytes);
        self
    }

    /// Runs `export` (such as `handle_get`) against this request on the fake
    /// host, and returns what the client would see.
    pub fn call(self, export: impl FnOnce()) -> TestResponse {
        let (ex, trapped) = fake::run(self.exchange, export);
        let logs = ex
            .logs
            .into_iter()
            .map(|(level, message)| LogLine {
                level: Level::from_code(level).expect("the SDK logs at a valid level"),
                message,
            })
            .collect();
        let outcome = match (trapped, ex.head_sent) {
            (false, _) => Outcome::Completed,
            (true, false) => Outcome::Trapped,
            (true, true) => Outcome::Aborted,
        };
        if outcome == Outcome::Trapped {
            // What the runtime answers: a plain 500, none of the head the
            // handler had set.
            return TestResponse {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                headers: HeaderMap::new(),
                body: Vec::new(),
                chunks: Vec::new(),
                logs,
                elapsed: ex.clock,
                outcome,
            };
        }
        let mut headers = HeaderMap::new();
        for (name, value) in ex.response_headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("validated by resp_header"),
                HeaderValue::from_bytes(&value).expect("validated by resp_header"),
            );
        }
        let chunks: Vec<Chunk> = ex
            .writes
            .into_iter()
            .map(|written| Chunk {
                at: written.at,
                request_bytes_read: written.body_read,
                bytes: written.bytes,
            })
            .collect();
        TestResponse {
            status: StatusCode::from_u16(ex.status).expect("validated by resp_status"),
            headers,
            body: chunks
                .iter()
                .flat_map(|chunk| chunk.bytes.iter().copied())
                .collect(),
            chunks,
            logs,
            elapsed: ex.clock,
            outcome,
        }
    }
}

/// What the client would see, and what the handler did on the way.
#[derive(Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    chunks: Vec<Chunk>,
    logs: Vec<LogLine>,
    elapsed: Duration,
    outcome: Outcome,
}

/// How the handler ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned; the response is complete.
    Completed,
    /// It trapped (a panic, or an error it could not report otherwise) before
    /// the head was sent: the client gets a plain `500`.
    Trapped,
    /// It trapped after the head was sent: the client gets a cut-short body
    /// that ends with an error, not cleanly.
    Aborted,
}

/// One write of the response body, as it reached the client.
#[derive(Debug)]
pub struct Chunk {
    /// When, in the handler's virtual time ([`crate::sleep`] advances it).
    pub at: Duration,
    /// How much of the request body the handler had read by then: less than
    /// all of it shows the handler streams.
    pub request_bytes_read: usize,
    /// The bytes written.
    pub bytes: Vec<u8>,
}

/// One line the handler logged (a panic is logged too).
#[derive(Debug)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body the client received.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text; panics if it is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the response body is UTF-8")
    }

    /// The body parsed as JSON; panics if it is not a `T`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).expect("the response body is JSON of the asked type")
    }

    /// The body's writes, in order, with their times.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The lines the handler logged.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// The virtual time the handler slept.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How the handler ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}
