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
//!
//! # Capabilities
//! As in the runtime, nothing is granted unless the test grants it:
//!
//! - **Outbound HTTP**: [`TestRequest::upstream`] answers every request the
//!   handler sends with a [`Reply`] (a response, a failure, a latency);
//!   [`TestResponse::fetches`] lists them. Without it, requests are denied.
//! - **Key-value**: [`TestRequest::store`] grants an empty store,
//!   [`TestRequest::kv`] grants one holding a value; [`TestResponse::kv`]
//!   reads what the handler left.
//! - **Files**: [`TestRequest::file`] puts a file in a mount (and grants
//!   the mount), [`TestRequest::mount`] grants an empty one.
//!
//! Latency is virtual like `sleep`: requests begun together overlap, so a
//! test can check that a handler fans out (its [`elapsed`](TestResponse::elapsed)
//! is the slowest upstream's latency, not the sum).
//!
//! ```
//! use std::time::Duration;
//! use wasmlet_sdk::kv::Store;
//! use wasmlet_sdk::testing::{Reply, TestRequest};
//! use wasmlet_sdk::{Result, handler, http, join_all};
//!
//! #[handler(get)]
//! fn mirror() -> Result<String> {
//!     let urls = Store::default().list("url/")?;
//!     let pages = join_all(urls.iter().map(|key| http::get_begin(&key["url/".len()..])));
//!     Ok(format!("{} pages\n", pages.into_iter().filter(Result::is_ok).count()))
//! }
//!
//! let response = TestRequest::get("/mirror")
//!     .kv("", "url/http://a.example/", "")
//!     .kv("", "url/http://b.example/", "")
//!     .upstream(|_| Reply::text("page").after(Duration::from_millis(200)))
//!     .call(handle_get);
//! assert_eq!(response.text(), "2 pages\n");
//! assert_eq!(response.elapsed(), Duration::from_millis(200));
//! ```

mod reply;

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::log::Level;
use crate::sys::fake::{self, Entry, Exchange};

pub use reply::Reply;

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

    /// Sets variable `name`, as a `[variables]` table of the handler's
    /// `wasmlet.toml` would; [`crate::var`] reads it. Setting a name again
    /// replaces its value.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.exchange.vars.push((name.to_owned(), value.to_owned()));
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

    /// The wall-clock time the request starts at, for [`crate::now`]; it
    /// advances with the virtual time the handler spends. Without it the
    /// fake clock starts at 2026-01-01 00:00:00 UTC, so a test's result
    /// does not depend on the day it runs.
    pub fn at(mut self, time: std::time::SystemTime) -> Self {
        self.exchange.wall_start = time;
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

    /// Answers the handler's outbound HTTP requests: `responder` gets each
    /// request (method, URI, headers, body) and returns the upstream's
    /// [`Reply`], or anything that converts into one (an `http::Response`,
    /// a `StatusCode`, a `&str`). A panic in it (a failing assertion) fails
    /// the test.
    ///
    /// Without a responder, every request fails with `Denied`, as in the
    /// runtime without an `[http]` grant.
    pub fn upstream<R: Into<Reply>>(
        mut self,
        mut responder: impl FnMut(&http::Request<Vec<u8>>) -> R + 'static,
    ) -> Self {
        self.exchange.upstream.responder = Some(Box::new(move |request| responder(request).into()));
        self
    }

    /// Reading more than `bytes` of an upstream's body fails with
    /// `TooLarge`, as past the runtime's `max-response-size`.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.exchange.upstream.max_response_size = Some(bytes);
        self
    }

    /// Grants the key-value store `name` (`""` is `default`), empty unless
    /// [`kv`](TestRequest::kv) fills it.
    pub fn store(mut self, name: &str) -> Self {
        self.exchange.kv.grant(name);
        self
    }

    /// Grants store `store` (`""` is `default`) and sets `key` in it to
    /// `value`, with no expiry.
    pub fn kv(mut self, store: &str, key: &str, value: impl AsRef<[u8]>) -> Self {
        let entry = Entry {
            value: value.as_ref().to_vec(),
            ttl: None,
            expires_at: None,
        };
        self.exchange.kv.grant(store).insert(key.to_owned(), entry);
        self
    }

    /// Setting a value longer than `bytes` fails with `TooLarge`, as over a
    /// store's `max-value-size` (1 MiB unless set).
    pub fn kv_max_value_size(mut self, bytes: usize) -> Self {
        self.exchange.kv.max_value_size = bytes;
        self
    }

    /// Grants the file mount `name`, empty unless [`file`](TestRequest::file)
    /// fills it.
    pub fn mount(mut self, name: &str) -> Self {
        self.exchange.files.mounts.insert(name.to_owned());
        self
    }

    /// Puts a file at `path` (`mount/relative/path`, as a handler names it)
    /// and grants its mount.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        let mount = path.split('/').next().unwrap_or_default();
        self.exchange.files.mounts.insert(mount.to_owned());
        self.exchange
            .files
            .files
            .insert(path.to_owned(), contents.into());
        self
    }

    /// Runs `f` on the fake host with this request and its grants, and
    /// returns what it returns: for testing code below a handler (a function
    /// that uses a store or fetches). Unlike [`call`](TestRequest::call), a
    /// panic in `f`, such as a failing assertion, fails the test.
    ///
    /// ```
    /// use wasmlet_sdk::kv::Store;
    /// use wasmlet_sdk::testing::TestRequest;
    ///
    /// fn visits() -> wasmlet_sdk::Result<usize> {
    ///     Ok(Store::default().list("visit/")?.len())
    /// }
    ///
    /// let count = TestRequest::get("/")
    ///     .kv("", "visit/1", "")
    ///     .kv("", "visit/2", "")
    ///     .run(visits);
    /// assert_eq!(count.unwrap(), 2);
    /// ```
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let (mut ex, result) = fake::run(self.exchange, f);
        if let Some(payload) = ex.upstream.panic.take() {
            std::panic::resume_unwind(payload);
        }
        result.unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    }

    /// Runs `export` (such as `handle_get`) against this request on the fake
    /// host, and returns what the client would see.
    pub fn call(self, export: impl FnOnce()) -> TestResponse {
        let (mut ex, result) = fake::run(self.exchange, export);
        if let Some(payload) = ex.upstream.panic.take() {
            // A failing assertion in the test's responder, not the handler's
            // fault: the test fails with it.
            std::panic::resume_unwind(payload);
        }
        let trapped = result.is_err();
        let capabilities = Capabilities {
            fetches: ex.upstream.requests,
            cancelled: ex.ops.cancelled,
            open_handles: ex.ops.len(),
            stores: ex.kv.stores,
            clock: ex.clock,
        };
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
                capabilities,
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
            capabilities,
        }
    }
}

#[cfg(test)]
impl TestRequest {
    /// [`call`](TestRequest::call) for the SDK's own tests, whose closures
    /// assert: a failed assertion is a trap to `call`, so this checks the
    /// closure ran to its end.
    pub(crate) fn check(self, f: impl FnOnce()) -> TestResponse {
        let response = self.call(f);
        assert_eq!(
            response.outcome(),
            Outcome::Completed,
            "the closure panicked (see the panic above); logs: {:?}",
            response.logs()
        );
        response
    }
}

/// What the handler did with its capabilities.
#[derive(Debug)]
struct Capabilities {
    fetches: Vec<http::Request<Vec<u8>>>,
    cancelled: usize,
    open_handles: usize,
    stores: BTreeMap<String, BTreeMap<String, Entry>>,
    /// The virtual time the handler ended at, which decides what expired.
    clock: Duration,
}

impl Capabilities {
    fn entry(&self, store: &str, key: &str) -> Option<&Entry> {
        self.stores
            .get(fake::store_name(store))?
            .get(key)
            .filter(|entry| entry.live(self.clock))
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
    capabilities: Capabilities,
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

    /// Every outbound request the handler sent to the upstream, in order
    /// (those the host refused as malformed never got there).
    pub fn fetches(&self) -> &[http::Request<Vec<u8>>] {
        &self.capabilities.fetches
    }

    /// How many operations the handler abandoned before their end (each
    /// `Pending` dropped without `wait`): the host cancelled them.
    pub fn cancelled(&self) -> usize {
        self.capabilities.cancelled
    }

    /// How many handles (pending operations, outbound responses) were still
    /// open when the handler returned. The runtime releases them; the SDK
    /// itself leaves none.
    pub fn open_handles(&self) -> usize {
        self.capabilities.open_handles
    }

    /// The value of `key` in store `store` (`""` is `default`) as the
    /// handler left it; `None` if absent or expired by the end.
    pub fn kv(&self, store: &str, key: &str) -> Option<&[u8]> {
        Some(&self.capabilities.entry(store, key)?.value)
    }

    /// The time-to-live `key` in `store` was last set with; `None` if it
    /// never expires (or is absent).
    pub fn kv_ttl(&self, store: &str, key: &str) -> Option<Duration> {
        self.capabilities.entry(store, key)?.ttl
    }

    /// The keys in store `store` at the end, in byte order (expired ones
    /// left out).
    pub fn kv_keys(&self, store: &str) -> Vec<&str> {
        self.capabilities
            .stores
            .get(fake::store_name(store))
            .into_iter()
            .flatten()
            .filter(|(_, entry)| entry.live(self.capabilities.clock))
            .map(|(key, _)| key.as_str())
            .collect()
    }
}
