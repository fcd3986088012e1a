//! Wasmlet: a WebAssembly handler runtime. Copy a `.wasm` or `.wat` file into
//! a web root and it serves the next request at its path — no manifest, no
//! restart. Handlers call host imports that look blocking (read the body,
//! write the response, sleep) while the host suspends them and serves other
//! requests on the same threads.
//!
//! # Layout
//! Top to bottom: a module imports only modules below it.
//! - [`check`]: `wasmlet check` and `wasmlet compile`: the whole web root
//!   loaded and checked against its configuration, before serving.
//! - [`server`]: accept loop, TLS, hyper service (the one request sequence
//!   for every handler kind), streaming bodies, static files, the access
//!   line, the status page and the admin listener (`/metrics`, `/status`,
//!   `/status.json`), and what `--dev` shows of a failure.
//! - [`loader`]: the handler cache — single-flight compile off the workers,
//!   generations (the last good version keeps serving), the disk cache.
//! - [`executor`]: one file per handler kind (a core module on wasmlet's
//!   ABI, a `wasi:http` 0.2 component, a WASI 0.3 one) behind one trait: check a request
//!   before admission, run it with its limits and a response sink.
//! - [`engine`]: the wasmtime engine, epoch ticker, linkers, and the one
//!   store recipe every kind runs in.
//! - [`host`]: the imports, one file per capability, named as the ABI names them.
//! - [`site`]: the `wasmlet.toml` files: per-directory settings, inherited
//!   and overridden, merged into each handler's [`Policy`](site::Policy).
//! - [`capability`]: what the imports reach beyond the request, as plain
//!   async Rust: outbound HTTP behind an allow-list, key-value stores on
//!   SQLite or Redis, granted files.
//! - [`watcher`]: file events (or polling) → eager reloads, debounced, and
//!   the end of the epoch at every change.
//! - [`router`]: URL path → handler, static file or nothing; path safety;
//!   the route table of known handlers, kept while the watcher vouches.
//! - [`webroot`]: every rule about the web root's files, importing nothing
//!   else: what a file is (handler, static, or never served and why), real-
//!   path containment, the one tree walk, file versions, and the epoch the
//!   watcher vouches for.
//! - [`stats`]: live counters and the Prometheus metrics, one registry per
//!   server, and each handler's numbers for the status page.
//! - [`request`]: the ground floor every layer shares for a request: whose
//!   it is, its body under the server's limits, and the `Start`
//!   handoff of the response head and body.
//! - [`outcome`]: how a request ended, and the one mapping from an
//!   [`Outcome`](outcome::Outcome) to an HTTP status.
//! - [`config`]: every setting, its default and why; duration and size parsing.
//! - [`error`]: error enums at the seams (configuration, TLS, loading).
//! - [`abi`]: the guest ABI table (`wasmlet-abi`, shared with the SDK): the
//!   import module, every import's signature, status codes and log levels.
//! - `regular_file`: opening a file that must be regular (static files,
//!   mounts, handlers, cache entries) without ever blocking on a FIFO.
//! - `request_id`: each request's id, for its access line and its guest's
//!   log lines.
//! - [`text_log`]: the text log format's fields, control characters escaped
//!   so a guest cannot forge a log line.
//! - [`scaffold`]: `wasmlet new`, a hello handler to start from.
//!
//! # A request's way through
//! 1. The accept loop takes a connection (`TCP_NODELAY`), completes the TLS
//!    handshake when the server has a certificate (ALPN picks `h2` or
//!    `http/1.1`), and hands it to hyper (HTTP/1.1 keep-alive or HTTP/2).
//!    Each request gets an id (its `x-request-id` when that is short and
//!    plain) and counts as in flight.
//! 2. An HTTP/1.1 request without exactly one `Host` gets `400`, a declared
//!    body over `--max-body-size` `413`. The [`router`] turns the path into a
//!    route, rejecting hostile paths (`400`) before touching the disk; a
//!    missing or withheld file is `404`. A handler it found before, while
//!    nothing changed in the tree, comes from its table with no file-system
//!    call (the kernel's queue of changes is read first, without blocking).
//! 3. A static route is served by `hyper-staticfile`.
//! 4. A handler route asks the [`loader`]; the first sight of a file
//!    version (a request's or the watcher's) loads it: once the file has
//!    settled (unchanged, closed by its writer), it compiles on a blocking
//!    thread — into a core module's `InstancePre` or a component's
//!    `ProxyPre` — and a core module is instantiated once to prove it
//!    starts; concurrent requests share that load, later ones find it in
//!    memory. A request waits for a load at most its timeout, then gets the
//!    previous version or `503`.
//! 5. The handler's executor checks the request before it waits for
//!    anything: a core module picks `handle_<verb>` or `handle` (neither is
//!    `405` with `Allow`), a component needs an authority (`400` without
//!    one). No guest code runs.
//! 6. The handler's [`Policy`](site::Policy) comes from the `wasmlet.toml`
//!    files above it (grants and limits). Admission: a slot under
//!    `--max-concurrency` and the handler's own `max-concurrency`, waiting
//!    briefly in a bounded queue; past it, `503` with `Retry-After` and no
//!    guest code runs.
//! 7. The executor runs the guest in a task of its own, which the request
//!    cancels if the client goes away before the head: a store from the one
//!    recipe (memory limit, an epoch deadline that yields every tick) —
//!    fresh, or for a reusable core module or 0.2 component a warm one from
//!    its pool — an instance, `init` once per new core instance, and the
//!    entry point (a core module's export, a component's `handle`) under the
//!    request timeout; a reusable 0.3 component's request goes to an
//!    instance it shares with others, whose worker task runs it.
//! 8. Async imports (`req_body_read`, `resp_write`, `sleep_ms`, the
//!    capability imports `http_send`, `kv_get`, `file_read` and every
//!    `_end`, and a component's WASI streams) suspend the guest's fiber; the
//!    worker serves other requests meanwhile.
//! 9. The executor hands the head over as soon as the guest has one (a core
//!    module's first `resp_write`, a component's `response-outparam.set`)
//!    and the body streams after it; a guest that fails after the head has
//!    its body cut, one that fails before gets its status.
//! 10. Every reply before a head is built from its outcome in one place
//!     ([`outcome::Outcome::status`]); one access line is logged and the
//!     request is counted once in the metrics (by handler and status, with
//!     its latency, and its trap or timeout).

pub mod abi;
pub mod capability;
pub mod check;
pub mod config;
pub mod engine;
pub mod error;
pub mod executor;
pub mod host;
pub mod loader;
pub mod outcome;
pub(crate) mod regular_file;
pub mod request;
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
pub use error::{ConfigError, LoadError};
pub use server::{ServeError, Server};
pub use stats::Stats;

/// This wasmlet's version, as `--version`, the status page and
/// `wasmlet_build_info` show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The wasmtime version wasmlet was built with (from `Cargo.lock`, by
/// `build.rs`): compiled code in the disk cache is only good for it.
pub const WASMTIME_VERSION: &str = env!("WASMLET_WASMTIME_VERSION");
