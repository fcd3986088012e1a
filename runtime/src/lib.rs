//! Wasmlet: a WebAssembly handler runtime. Copy a `.wasm` or `.wat` file into
//! a web root and it serves the next request at its path — no manifest, no
//! restart. Handlers call host imports that look blocking (read the body,
//! write the response, sleep) while the host suspends them and serves other
//! requests on the same threads.
//!
//! # Layout
//! - [`config`]: every setting, its default and why; duration and size parsing.
//! - [`error`]: error enums at the seams, and the one mapping from a request's
//!   [`Outcome`](error::Outcome) to an HTTP status.
//! - [`abi`]: the guest ABI table (`wasmlet-abi`, shared with the SDK): the
//!   import module, every import's signature, status codes and log levels.
//! - [`site`]: the `wasmlet.toml` files: per-directory settings, inherited
//!   and overridden, merged into each handler's [`Policy`](site::Policy).
//! - [`capability`]: what handlers reach beyond the request: outbound HTTP
//!   behind an allow-list, key-value stores, granted files.
//! - [`webroot`]: every rule about the web root's files, importing nothing
//!   else: what a file is (handler, static, or never served and why), real-
//!   path containment, the one tree walk, file versions, and the epoch the
//!   watcher vouches for.
//! - [`router`]: URL path → handler, static file or nothing; path safety;
//!   the route table of known handlers, kept while the watcher vouches.
//! - [`loader`]: the handler cache — single-flight compile off the workers,
//!   generations (the last good version keeps serving), the disk cache.
//! - [`watcher`]: file events (or polling) → eager reloads, debounced, and
//!   the end of the epoch at every change.
//! - [`engine`]: the wasmtime engine, epoch ticker, and one request's run.
//! - [`host`]: the imports, one file per capability, named as the ABI names them.
//! - [`capability`]: what the imports reach beyond the request, as plain async
//!   Rust: key-value stores on SQLite or Redis.
//! - [`server`]: accept loop, TLS, hyper service, streaming bodies, static files,
//!   the access line, the status page and the admin listener (`/metrics`,
//!   `/status`, `/status.json`).
//! - [`stats`]: live counters and the Prometheus metrics, one registry per
//!   server.
//! - `regular_file`: opening a file that must be regular (static files,
//!   mounts, handlers, cache entries) without ever blocking on a FIFO.
//! - `request_id`: each request's id, for its access line and its guest's
//!   log lines.
//! - [`text_log`]: the text log format's fields, control characters escaped
//!   so a guest cannot forge a log line.
//! - [`scaffold`]: `wasmlet new`, a hello handler to start from.
//! - [`check`]: `wasmlet check` and `wasmlet compile`: the whole web root
//!   loaded and checked against its configuration, before serving.
//!
//! # A request's way through
//! 1. The accept loop takes a connection (`TCP_NODELAY`), completes the TLS
//!    handshake when the server has a certificate (ALPN picks `h2` or
//!    `http/1.1`), and hands it to hyper (HTTP/1.1 keep-alive or HTTP/2). Each request gets an id (its
//!    `x-request-id` when that is short and plain) and counts as in flight.
//! 2. An HTTP/1.1 request without exactly one `Host` gets `400`. The
//!    [`router`] turns the path into a route, rejecting hostile paths before
//!    touching the disk; a handler it found before, while the watcher saw
//!    nothing change, comes from its table at the cost of one `stat` of its
//!    file.
//! 3. A static route is served by `hyper-staticfile`.
//! 4. A handler route asks the [`loader`]; the first sight of a file
//!    version (a request's or the watcher's) loads it: once the file has
//!    settled (unchanged, closed by its writer), it compiles on a blocking
//!    thread and is instantiated once to prove it starts; concurrent
//!    requests share that load, later ones find the `InstancePre` in memory.
//!    A request waits for a load at most its timeout, then gets the previous
//!    version or `503`.
//! 5. The verb picks `handle_<verb>` or `handle`; neither is `405` with
//!    `Allow`, and no guest code runs.
//! 6. The handler's [`Policy`](site::Policy) comes from the `wasmlet.toml`
//!    files above it (grants and limits). Admission: a slot under
//!    `--max-concurrency` and the handler's own `max-concurrency`, waiting
//!    briefly in a bounded queue; past it, `503` with `Retry-After` and no
//!    guest code runs.
//! 7. A task gets a fresh `Store` (or, for a reusable handler, a warm one from
//!    its pool) with memory limits and an epoch deadline that yields every
//!    tick, instantiates, runs `init` once per new instance, and calls the
//!    entry point under the request timeout.
//! 8. Async imports (`req_body_read`, `resp_write`, `sleep_ms`, and the
//!    capability imports: `http_send`, `kv_get`, `file_read`, every `_end`)
//!    suspend the guest's fiber; the worker serves other requests meanwhile.
//! 9. The first `resp_write` sends the head and the body streams; a guest that
//!    never writes gets its status and headers with an empty body.
//! 10. The outcome becomes a status once ([`error::Outcome::status`]); one
//!     access line is logged and the request is counted once in the metrics
//!     (by handler and status, with its latency, and its trap or timeout).

pub mod abi;
pub mod capability;
pub mod check;
pub mod config;
pub mod engine;
pub mod error;
pub mod host;
pub mod loader;
pub(crate) mod regular_file;
pub(crate) mod request_id;
pub mod router;
pub mod scaffold;
pub mod server;
pub mod site;
pub mod stats;
pub mod text_log;
pub mod watcher;
pub mod webroot;

pub use config::Config;
pub use error::{ConfigError, LoadError, ServeError};
pub use server::Server;
pub use stats::Stats;
