//! Executors: what runs one kind of handler. The server's request sequence
//! (route, load, check, admit, spawn, run, answer, log) is the same for
//! every kind; what differs is behind the `Executor` trait, one file per
//! kind:
//! - `core.rs`: a core module for wasmlet's own ABI (`handle`,
//!   `handle_<verb>`), in a fresh store or a warm one from its pool
//!   (`pool.rs`);
//! - `component.rs`: a `wasi:http` 0.2 component (`incoming-handler`), in a
//!   fresh store or a warm one from its pool, through `wasmtime-wasi-http`;
//! - `component_p3.rs`: a WASI 0.3 component (`wasi:http/handler@0.3`), in
//!   a fresh store through `wasmtime-wasi-http`'s p3 support, its guest
//!   tasks run by the store's concurrent event loop, or on an instance it
//!   shares with other requests (`shared.rs`).
//!
//! Adding a kind is adding a file here (and teaching the loader to tell it
//! apart). The trait does not assume one store per request: a kind whose
//! instance serves several requests at once runs them concurrently inside
//! its `run`.

mod component;
mod component_p3;
mod core;
mod pool;
mod shared;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use http::StatusCode;
use http::request::Parts;
use wasmtime::Trap;

pub use self::component::ComponentHandler;
pub use self::component_p3::P3Handler;
pub use self::core::{CoreHandler, REUSABLE_SECTION};
pub use self::pool::Pool;
use crate::error::error_text;
use crate::host::{GuestLog, HeadLimits};
use crate::outcome::Outcome;
use crate::request::{Identity, LimitedBody, Respond};
use crate::site::Policy;
use crate::stats::Stats;

/// A loaded handler version, ready to run requests.
pub struct Handler {
    /// What runs it.
    pub(crate) executor: Arc<dyn Executor>,
    /// Where the code came from and how long it took, for the status page.
    pub(crate) provenance: Provenance,
}

/// Which compiler made a handler version's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Cranelift, optimising: the code the disk cache keeps.
    Optimized,
    /// Winch, the baseline tier (`engine::Baseline`): served only until
    /// Cranelift's code for the same version replaces it.
    Baseline,
}

/// How a handler version became ready.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// SHA-256 of the module's binary form, hex: the version the status page
    /// shows and the disk cache's content key.
    pub content_hash: String,
    /// Compiled now, or loaded from the disk cache.
    pub from_disk_cache: bool,
    /// Which compiler made the code.
    pub tier: Tier,
    /// Time from reading the file to a ready handler.
    pub load_ms: f64,
    /// When it became ready.
    pub loaded_at: SystemTime,
}

impl Handler {
    /// How this version became ready.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// What kind of handler this is, as logs name it.
    pub fn kind(&self) -> &'static str {
        self.executor.kind()
    }

    /// The `wasmlet` imports of a core-ABI module, by name (none for a
    /// component): what `wasmlet check` compares with the grants.
    pub fn imports(&self) -> Vec<String> {
        self.executor.imports()
    }
}

/// Runs the requests of one kind of handler.
pub(crate) trait Executor: Send + Sync + 'static {
    /// The kind, as logs name it.
    fn kind(&self) -> &'static str;

    /// The `wasmlet` imports the handler uses, by name.
    fn imports(&self) -> Vec<String> {
        Vec::new()
    }

    /// Checks a request before it may wait for an execution slot: what to
    /// answer instead if this handler cannot serve it (`405` for a verb it
    /// has no entry point for, `400` for a request it cannot be given).
    fn check(&self, request: &Parts) -> Result<(), Outcome>;

    /// Runs the guest for `job`. The response leaves through `job.respond`
    /// as soon as the guest has a head; the returned outcome and status are
    /// for the access line and say whether the body ended cleanly.
    fn run(self: Arc<Self>, job: Job) -> BoxFuture<'static, Ran>;

    /// Starts a new version once with no request, as a request would: the
    /// loader's check that it can serve at all. Its message says why not.
    fn trial(self: Arc<Self>, _trial: Trial) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// How a run ended, and the status the client got (for the access line).
pub(crate) type Ran = (Outcome, StatusCode);

/// One request for an executor to run.
pub(crate) struct Job {
    /// The request as the guest sees it; its body streams under the
    /// server's body limits.
    pub(crate) request: http::Request<LimitedBody>,
    /// Route parameters from `[name]` path segments.
    pub(crate) params: Vec<(String, String)>,
    /// The handler and request id, for log lines.
    pub(crate) who: Identity,
    /// What the handler's configuration grants.
    pub(crate) policy: Arc<Policy>,
    /// What the run may spend.
    pub(crate) limits: RunLimits,
    /// Where the guest's log lines go, within their limits.
    pub(crate) log: GuestLog,
    /// Where the response's head (or an early failure) goes.
    pub(crate) respond: Respond,
    /// The live-instance gauge.
    pub(crate) stats: Arc<Stats>,
}

/// A new version's one start with no request; see [`Executor::trial`].
pub(crate) struct Trial {
    /// The handler's name, and `load` for a request id.
    pub(crate) who: Identity,
    /// The policy its file has now.
    pub(crate) policy: Arc<Policy>,
    /// What the start may spend.
    pub(crate) limits: RunLimits,
    /// Where its log lines go.
    pub(crate) log: GuestLog,
    /// The live-instance gauge.
    pub(crate) stats: Arc<Stats>,
}

/// What one guest run may spend, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunLimits {
    /// Wall-clock time for the run (what the load left of the request's).
    pub(crate) timeout: Duration,
    /// Bytes of linear memory.
    pub(crate) max_memory: u64,
    /// How big a response head the guest may build.
    pub(crate) head: HeadLimits,
}

/// An instantiation failure as an outcome: the instance limit is `Busy`,
/// anything else a trap.
fn instantiation_failed(e: &wasmtime::Error) -> Outcome {
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Outcome::Busy;
    }
    Outcome::Trap(format!("instantiation failed: {}", error_text(e)))
}

/// A trap as one log line: its kind (wasmtime's text already says "wasm
/// trap"), then the guest functions it happened in, innermost first, by name
/// where the module names them (Rust names demangled), each with its source
/// file and line where the module has DWARF and `--dev` reads it.
fn trap_text(e: &wasmtime::Error) -> String {
    let Some(trap) = e.downcast_ref::<Trap>() else {
        return error_text(e);
    };
    let mut text = trap.to_string();
    if let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        // Deep recursion makes thousands of frames: the innermost tell.
        const SHOWN: usize = 8;
        let frames: Vec<String> = trace
            .frames()
            .iter()
            .take(SHOWN)
            .map(|frame| {
                let name = match frame.func_name() {
                    // `{:#}`: without the hash a Rust symbol ends in.
                    Some(name) => format!("`{:#}`", rustc_demangle::demangle(name)),
                    None => format!("function {}", frame.func_index()),
                };
                // Only with `--dev` (see `engine_config`) and DWARF in the module.
                match frame
                    .symbols()
                    .first()
                    .and_then(|s| Some((s.file()?, s.line()?)))
                {
                    Some((file, line)) => format!("{name} at {file}:{line}"),
                    None => name,
                }
            })
            .collect();
        if !frames.is_empty() {
            let more = trace.frames().len().saturating_sub(SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            text += &format!(" (in {}{more})", frames.join(" called from "));
        }
    }
    text
}
