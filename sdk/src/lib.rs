//! Write [wasmlet] handlers in Rust.
//!
//! A handler is a plain function marked with [`#[handler]`](handler). Built
//! for `wasm32-unknown-unknown`, the crate becomes a `.wasm` file that serves
//! HTTP requests at its path in a web root. The host suspends the module
//! while it waits for I/O, so calls that look blocking (reading the body,
//! writing the response, [`sleep`]) never block the server: there is no
//! `async` here.
//!
//! ```
//! use wasmlet_sdk::{Request, handler};
//!
//! #[handler(get)]
//! fn hello(req: Request) -> String {
//!     let name = req.query("name");
//!     format!("hello, {}\n", name.as_deref().unwrap_or("world"))
//! }
//!
//! // On the host (not wasm32), the same export runs against a fake host:
//! use wasmlet_sdk::testing::TestRequest;
//! let response = TestRequest::get("/hello?name=ann").call(handle_get);
//! assert_eq!(response.text(), "hello, ann\n");
//! ```
//!
//! # Capabilities
//! What a handler may reach beyond its request is granted per directory by
//! the web root's `wasmlet.toml` files, and denied otherwise:
//!
//! - [`http`]: outbound requests ([`http::get`], [`http::send`]), the body
//!   read as a `std::io::Read`.
//! - [`kv`]: key-value [`Store`](kv::Store)s: get, set (with a time-to-live),
//!   delete, list by prefix.
//! - [`fs`]: files in granted mounts, whole or in pieces.
//!
//! Each slow call also has a `_begin` form returning a [`Pending`]: the host
//! runs every begun operation at once, so [`join_all`] or [`join!`] over
//! three 300 ms fetches takes about 300 ms, not 900. A failed call is an
//! [`Error`] carrying a [`HostError`] with the host's explanation (a denial
//! names the configuration file at fault); returned from a handler, it
//! answers `500`, or `502`/`503`/`504` when an upstream or a store failed
//! ([`Error::status`]).
//!
//! ```
//! use wasmlet_sdk::kv::Store;
//! use wasmlet_sdk::{Request, Result, handler, http, join};
//!
//! #[handler(get)]
//! fn dashboard(_req: Request) -> Result<String> {
//!     let (visits, status) = join!(
//!         Store::default().get_begin("visits"),
//!         http::get_begin("https://status.example/api"),
//!     );
//!     let visits = String::from_utf8(visits?.unwrap_or_default())?;
//!     Ok(format!("{visits} visits; status {}\n", status?.text()?))
//! }
//! # use wasmlet_sdk::testing::{Reply, TestRequest};
//! # let response = TestRequest::get("/")
//! #     .kv("", "visits", "7")
//! #     .upstream(|_| Reply::text("green"))
//! #     .call(handle_get);
//! # assert_eq!(response.text(), "7 visits; status green\n");
//! ```
//!
//! # Layout
//! - [`handler`]: the attribute that exports a function as `handle` or
//!   `handle_<verb>`.
//! - [`Request`] (`request.rs`), its [`Body`] (`body.rs`) and query-string
//!   decoding (`query.rs`).
//! - [`Response`] and [`IntoResponse`] (`response.rs`): what a buffered
//!   handler returns.
//! - [`ResponseWriter`] (`writer.rs`): the body of a streaming handler.
//! - [`Error`] and [`Result`] (`error.rs`); [`HostError`] and [`ErrorKind`]
//!   (`host_error.rs`): a failed host call and the status it answers with.
//! - [`log`] and the [`error!`], [`warn!`], [`info!`], [`debug!`] macros;
//!   [`sleep`], and the clocks [`now`] and [`elapsed`] (`time.rs`).
//! - [`var`] (`var.rs`): the handler's `[variables]` (keys, tokens,
//!   settings) from its `wasmlet.toml` files.
//! - [`http`] (`http.rs`, `http/fetch.rs`): the `http` crate's types, and
//!   outbound requests answered by a [`FetchResponse`](http::FetchResponse).
//! - [`kv`] (`kv.rs`): key-value stores.
//! - [`fs`] (`fs.rs`): files in granted mounts.
//! - [`Pending`], [`join_all`], [`try_join_all`], [`join!`] (`pending.rs`):
//!   operations running concurrently, and the handles behind them.
//! - [`code`]: the ABI's status codes, the table the runtime uses too.
//! - `sys/`: the only `unsafe` and the only host imports (on wasm32), or a
//!   fake host in thread-local state (everywhere else; its capabilities in
//!   `sys/fake/`).
//! - `testing` (not on wasm32): drive a handler through the fake host,
//!   with fake upstreams, stores and files.
//! - `serve.rs`: the entry points the attribute's exports call, the panic
//!   hook, and how a handler's outcome becomes a response.
//!
//! # Why `Request` is not `http::Request`
//! The ABI lets a module ask for a header by name but not list them all, so
//! an `http::Request` could only carry an empty or guessed `HeaderMap`.
//! [`Request`] is a thin wrapper instead: the [`http`] crate's
//! [`Method`](http::Method) and [`Uri`](http::Uri), a [`Request::header`]
//! lookup that asks the host, and a [`Body`] that reads from it. Responses
//! use `http` types throughout: [`StatusCode`](http::StatusCode),
//! [`HeaderMap`](http::HeaderMap), and `http::Response<B>` converts into a
//! [`Response`].
//!
//! [wasmlet]: https://github.com/wasmlet/wasmlet

// Lets the crate's own tests and doctests use `#[handler]`, whose expansion
// names `::wasmlet_sdk`.
extern crate self as wasmlet_sdk;

mod body;
pub mod code;
mod error;
pub mod fs;
mod host_error;
pub mod http;
pub mod kv;
pub mod log;
mod pending;
mod query;
mod request;
mod response;
mod serve;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod time;
mod var;
mod writer;

pub use body::Body;
pub use error::{Error, Result};
pub use host_error::{ErrorKind, HostError};
pub use pending::{Join, Pending, join_all, try_join_all};
pub use request::Request;
pub use response::{IntoResponse, Response};
pub use serve::StreamResult;
pub use time::{elapsed, now, sleep};
pub use var::var;
pub use writer::ResponseWriter;

/// Exports a function as this module's request handler.
///
/// - `#[handler]` exports `handle`, which serves every verb.
/// - `#[handler(get)]`, `#[handler(post)]`, … export `handle_get`,
///   `handle_post`, …, which serve that verb only; `#[handler(get, head)]`
///   exports both. Other functions in the crate may serve other verbs. The
///   runtime answers `405 Method Not Allowed` for a verb nothing exports.
///
/// The function keeps its name and stays callable. Its signature is one of:
///
/// | signature | use |
/// | --- | --- |
/// | `fn() -> impl IntoResponse` | needs nothing from the request |
/// | `fn(Request) -> impl IntoResponse` | a buffered response |
/// | `fn(Request, &mut ResponseWriter) -> Result<(), E>` (or `-> ()`) | streams its body |
///
/// A buffered handler that returns `Err` answers `500` (or
/// [`Error::status`]: `502`, `503`, `504` for a failed upstream or store)
/// and logs the error. A streaming handler that returns `Err` answers that
/// status if it wrote nothing yet;
/// after its first write, the error is logged and the response aborted (the
/// module traps), so the client can tell the body is incomplete. A panic is
/// logged with its message and location, then traps.
///
/// ```
/// use std::io::Write;
/// use wasmlet_sdk::http::StatusCode;
/// use wasmlet_sdk::{Request, ResponseWriter, Result, handler};
///
/// #[handler(post, put)]
/// fn store(mut req: Request) -> Result<(StatusCode, String)> {
///     let text = req.text()?;
///     Ok((StatusCode::CREATED, format!("stored {} bytes\n", text.len())))
/// }
///
/// #[handler(get)]
/// fn lines(_req: Request, out: &mut ResponseWriter) -> Result<()> {
///     out.set_header("content-type", "text/plain")?;
///     for n in 1..=3 {
///         writeln!(out, "line {n}")?;
///     }
///     Ok(())
/// }
///
/// use wasmlet_sdk::testing::TestRequest;
/// let response = TestRequest::post("/").body("abc").call(handle_post);
/// assert_eq!(response.status(), StatusCode::CREATED);
/// assert_eq!(TestRequest::get("/").call(handle_get).text(), "line 1\nline 2\nline 3\n");
/// ```
///
/// Misuse is a compile error on the offending token: an `async fn`, generics,
/// more than two arguments, a method, an unknown verb, a function named like
/// its own export.
#[doc(inline)]
pub use wasmlet_sdk_macros::handler;

/// The names most handlers use: `use wasmlet_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::http::{Method, StatusCode};
    pub use crate::{
        Error, ErrorKind, IntoResponse, Request, Response, ResponseWriter, Result, handler, join,
        join_all, sleep,
    };
}

// The Rust examples of the handler author guide compile as doctests, so the
// guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/handlers.md")]
mod handlers_guide {}

/// What the `#[handler]` expansion calls; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::serve::{
        RequestArg, WriterArg, respond, serve_request, serve_stream, serve_unit, stream_failure,
    };
}
