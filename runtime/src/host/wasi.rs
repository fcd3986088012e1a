//! The host side of standard `wasi:http` components, WASI 0.2 and 0.3: the
//! per-request state a component's WASI imports work on ([`WasiState`], the
//! `Store`'s data), the sandbox it grants, and stdout/stderr into the log.
//!
//! The linker defines every WASI 0.2 and 0.3 interface wasmtime implements
//! (`wasi:http`, `wasi:io` (0.2 only), `wasi:clocks`, `wasi:random`,
//! `wasi:cli`, `wasi:filesystem`, `wasi:sockets`), because toolchains import
//! more than the proxy and service worlds name (Rust's `wasm32-wasip2`
//! standard library imports `wasi:cli/environment@0.2` and friends whether
//! or not a handler uses them, even in a 0.3 component), and the drafts
//! `wasi:keyvalue@0.2.0-draft` and `wasi:config@0.2.0-rc.1` for both
//! versions; a component that imports anything else fails at load time.
//! Both versions share one [`WasiState`], so what follows holds for both.
//! What the interfaces reach is another matter, decided here per request:
//! - clocks and random numbers: the host's;
//! - no environment variables, no arguments, stdin closed;
//! - stdout and stderr: each line a log event with the handler and request id,
//!   within the request's log limits (see `guest_log.rs`);
//! - files: the `[files]` mounts, preopened read-only as `/NAME` (see
//!   `component_files.rs`), and nothing else;
//! - key-value and configuration: the granted `[kv]` stores through
//!   `wasi:keyvalue` (`component_kv.rs`), the `[variables]` through
//!   `wasi:config` (`component_config.rs`);
//! - no sockets and no name lookups: every address is refused;
//! - outbound HTTP only through `wasi:http/outgoing-handler` (0.2) or
//!   `wasi:http/client` (0.3), checked against the handler's `[http]` grant
//!   (see `wasi_http.rs`: one hook serves both).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tracing::Level;
use wasmtime::StoreLimits;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::GuestLog;
use super::component_grants::Grants;
use super::guest_log::MAX_LOG_LINE;
use super::wasi_http::Outbound;
use crate::request::Identity;
use crate::site::Policy;

/// What a stdout or stderr write may carry at once (`check-write`).
const WRITE_BUDGET: usize = 64 << 10;

/// Everything one request's component can reach through its imports. One per
/// `Store`, one `Store` per request: nothing leaks between requests.
pub struct WasiState {
    /// Caps the component's memories and tables.
    pub(crate) store_limits: StoreLimits,
    /// Clocks, random, stdio, the granted mounts; no sockets, no
    /// environment.
    wasi: WasiCtx,
    /// `wasi:http`'s own settings (field size limits).
    http: WasiHttpCtx,
    /// The component's resources (streams, requests, pollables, …).
    table: ResourceTable,
    /// Where outgoing requests go: the handler's allow-list.
    outbound: Outbound,
    /// Stores and variables, for `wasi:keyvalue` and `wasi:config`.
    grants: Grants,
    /// Where stdout and stderr lines go: the current request's log, swapped
    /// by [`WasiState::renew`] when a reused instance takes a new request
    /// (a guest keeps its stdout stream open across requests).
    log: LogSlot,
}

/// The log a component's output goes to, replaceable while its streams are
/// open.
type LogSlot = Arc<Mutex<Arc<GuestLog>>>;

impl WasiState {
    /// The state for one request of `who`, granted what `policy` grants,
    /// limited by `limits`, its stdout and stderr going to `log`.
    pub(crate) fn new(
        who: Identity,
        policy: Arc<Policy>,
        limits: StoreLimits,
        log: Arc<GuestLog>,
    ) -> Self {
        let log: LogSlot = Arc::new(Mutex::new(log));
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestOutput {
            log: log.clone(),
            stream: "stdout",
        })
        .stderr(GuestOutput {
            log: log.clone(),
            stream: "stderr",
        })
        // The builder's defaults already deny every address and name lookup;
        // these say so, and keep saying so if a default changes.
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        let grants = Grants::new(who.clone(), policy.clone());
        super::component_files::preopen_mounts(&mut wasi, &grants);
        Self {
            store_limits: limits,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: Outbound::new(who, policy),
            grants,
            log,
        }
    }

    /// The grants, with the resource table their resources live in.
    pub(super) fn grants_and_table(&mut self) -> (&Grants, &mut ResourceTable) {
        (&self.grants, &mut self.table)
    }

    /// Hands a reused instance's state to a new request of `who`: its
    /// outbound requests, grant messages and log lines are that request's
    /// from now on (the previous request's log ends when the last line in
    /// flight is out). The policy is the instance's, which the pool checked
    /// is the request's.
    pub(crate) fn renew(&mut self, who: Identity, policy: Arc<Policy>, log: Arc<GuestLog>) {
        self.grants = Grants::new(who.clone(), policy.clone());
        self.outbound = Outbound::new(who, policy);
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = log;
    }
}

impl WasiView for WasiState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for WasiState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// The interfaces [`add_to_linker`] defines, without their versions: each
/// at WASI 0.2 (wasmtime's linker matches any `0.2.x` import to its
/// definition). Read by the loader to name what a component may import before
/// it is compiled; a unit test proves the list equals what the linker defines.
pub(crate) const INTERFACES: [&str; 29] = [
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:http/outgoing-handler",
    "wasi:http/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
];

/// The WASI 0.3 interfaces [`add_to_linker`] defines, without their
/// version (0.3.0): the same use, and the same test, as [`INTERFACES`].
pub(crate) const P3_INTERFACES: [&str; 23] = [
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stderr",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/types",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/system-clock",
    "wasi:clocks/types",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:http/client",
    "wasi:http/types",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/types",
];

/// The draft interfaces [`add_to_linker`] defines, with their versions:
/// `wasi:keyvalue` (`component_kv.rs`) and `wasi:config`
/// (`component_config.rs`), for 0.2 and 0.3 components alike (neither has
/// a 0.3 version). A pre-release version links only to itself, so only
/// these exact names are provided; the same test as [`INTERFACES`] holds.
pub(crate) const DRAFT_INTERFACES: [&str; 4] = [
    "wasi:config/store@0.2.0-rc.1",
    "wasi:keyvalue/atomics@0.2.0-draft",
    "wasi:keyvalue/batch@0.2.0-draft",
    "wasi:keyvalue/store@0.2.0-draft",
];

/// The interfaces of [`P3_INTERFACES`] that hold types alone: the linker
/// defines no instance for them and needs none, so a component importing
/// one (as Rust's 0.3 bindings do) links.
#[cfg(test)]
const P3_TYPES_ONLY: [&str; 2] = ["wasi:cli/types", "wasi:clocks/types"];

/// Defines every WASI 0.2 interface, `wasi:http` included, and the
/// key-value and configuration drafts, in `linker`: what a WASI 0.2
/// component may import. Needs no concurrency support in
/// the engine.
pub(crate) fn add_p2_to_linker(linker: &mut Linker<WasiState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    // Drafts with no 0.3 version: 0.3 components import these too.
    super::component_kv::add_to_linker(linker)?;
    super::component_config::add_to_linker(linker)
}

/// Defines every WASI 0.2 and 0.3 interface, `wasi:http` included, in
/// `linker`: what a WASI 0.3 component may import (Rust's standard library
/// for `wasm32-wasip2` still imports 0.2's). The engine must support
/// concurrency.
pub(crate) fn add_to_linker(linker: &mut Linker<WasiState>) -> wasmtime::Result<()> {
    add_p2_to_linker(linker)?;
    wasmtime_wasi::p3::add_to_linker(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)
}

/// A component's stdout or stderr: each line becomes a log event.
struct GuestOutput {
    log: LogSlot,
    /// `stdout` or `stderr`, the event's `stream` field.
    stream: &'static str,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLog::new(self))
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLog::new(self))
    }
}

/// Collects output into lines and logs each complete one; the last partial
/// line is logged when the stream is dropped (at the latest when the request
/// ends). Never blocks and never refuses a write: logging is synchronous.
struct LineLog {
    log: LogSlot,
    stream: &'static str,
    line: Vec<u8>,
    /// The current line passed [`MAX_LOG_LINE`]; the rest of it is dropped.
    truncated: bool,
}

impl LineLog {
    fn new(output: &GuestOutput) -> Self {
        Self {
            log: output.log.clone(),
            stream: output.stream,
            line: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.append(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.append(bytes);
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LOG_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.truncated |= bytes.len() > room;
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        // A blank line (Rust's panic message starts with one) is no event.
        if line.trim().is_empty() {
            self.line.clear();
            return;
        }
        // stderr is where panics and `eprintln!` go: worth a warning; stdout
        // is the component's ordinary chatter.
        let level = if self.stream == "stderr" {
            Level::WARN
        } else {
            Level::INFO
        };
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        log.line(level, Some(self.stream), line, self.truncated);
        self.line.clear();
        self.truncated = false;
    }
}

impl Drop for LineLog {
    fn drop(&mut self) {
        if !self.line.is_empty() || self.truncated {
            self.emit();
        }
    }
}

impl OutputStream for LineLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always this much room: `push` logs as it goes and keeps at most
        // MAX_LOG_LINE bytes, so the guest may write in chunks of any size.
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the real linker defines an instance named `interface` (with a
    /// version, matched as for any import), probed with a component that
    /// imports the name as a function: the linker's lookup then says whether
    /// it found an instance there or nothing at all.
    fn defined(linker: &Linker<WasiState>, interface: &str) -> bool {
        let text = format!(r#"(component (import "{interface}" (func)))"#);
        let component =
            wasmtime::component::Component::new(linker.engine(), wat::parse_str(text).unwrap())
                .unwrap();
        let error = linker.instantiate_pre(&component).err().unwrap();
        let text = format!("{error:#}");
        assert!(
            text.contains("found instance") || text.contains("implementation is missing"),
            "{text}"
        );
        text.contains("found instance")
    }

    #[test]
    fn the_interface_list_is_what_the_linker_defines() {
        // The 0.2 linker, on an engine without concurrency support like the
        // one 0.2 components run in.
        let mut config = wasmtime::Config::new();
        config.concurrency_support(false);
        let p2_engine = wasmtime::Engine::new(&config).unwrap();
        let mut p2_linker = Linker::new(&p2_engine);
        add_p2_to_linker(&mut p2_linker).unwrap();
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        for interface in INTERFACES {
            for version in ["0.2.0", "0.2.3", "0.2.12"] {
                let name = format!("{interface}@{version}");
                assert!(
                    defined(&p2_linker, &name),
                    "{name} is listed but not defined"
                );
                assert!(defined(&linker, &name), "{name} is not defined for 0.3");
            }
        }
        for interface in P3_INTERFACES {
            let name = format!("{interface}@0.3.0");
            if P3_TYPES_ONLY.contains(&interface) {
                let text = format!(r#"(component (import "{name}" (instance)))"#);
                let component = wasmtime::component::Component::new(
                    linker.engine(),
                    wat::parse_str(text).unwrap(),
                )
                .unwrap();
                assert!(
                    linker.instantiate_pre(&component).is_ok(),
                    "{name}, of types alone, does not link"
                );
            } else {
                assert!(defined(&linker, &name), "{name} is listed but not defined");
            }
        }
        for name in DRAFT_INTERFACES {
            assert!(
                defined(&p2_linker, name),
                "{name} is listed but not defined"
            );
            assert!(defined(&linker, name), "{name} is not defined for 0.3");
        }
        for name in [
            "wasi:clocks/timezone@0.3.0",
            "wasi:http/handler@0.3.0",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:keyvalue/store@0.2.0",
            "wasi:config/store@0.2.0-draft",
            "wasi:blobstore/blobstore@0.2.0-draft",
            "wasi:http/incoming-handler@0.2.0",
            "wasi:http/types@0.3.0-rc-2025-09-16",
            "wasi:io/streams@0.3.0",
            "wasi:http/client@0.3.0-rc-2025-09-16",
            "fermyon:spin/variables@2.0.0",
        ] {
            assert!(!defined(&linker, name), "{name} is defined but not listed");
        }
    }

    fn log() -> LineLog {
        let who = Identity {
            handler: "/h".into(),
            request_id: "r".into(),
        };
        let limits = crate::host::LogLimits {
            bytes: 1 << 20,
            lines: 1000,
        };
        let rate = Arc::new(crate::host::LogRate::new(1 << 20));
        LineLog::new(&GuestOutput {
            log: Arc::new(Mutex::new(Arc::new(GuestLog::new(who, limits, rate)))),
            stream: "stdout",
        })
    }

    #[test]
    fn output_is_split_into_lines_and_a_partial_line_waits_for_its_end() {
        let mut log = log();
        log.push(b"one\ntw");
        assert_eq!(log.line, b"tw");
        log.push(b"o\nthree");
        assert_eq!(log.line, b"three");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut_and_marked() {
        let mut log = log();
        log.push(&vec![b'x'; MAX_LOG_LINE + 10]);
        assert_eq!(log.line.len(), MAX_LOG_LINE);
        assert!(log.truncated);
        log.push(b"\nnext");
        assert_eq!(log.line, b"next");
        assert!(!log.truncated);
    }
}
