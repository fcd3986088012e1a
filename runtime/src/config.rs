//! Every server setting, with its default and the reason for it, and the
//! parsers for the human-friendly forms the CLI accepts (`500ms`, `64MiB`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::watcher::WatchMode;
use crate::webroot::inside;

/// Default wall-clock budget for one request, from accept to the guest's
/// return. Generous enough for a handler that waits on slow upstreams, short
/// enough that a stuck guest frees its instance within a minute.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on one instance's linear memory. A handler is a request-sized
/// program; 64 MiB fits a Rust handler that buffers a few MiB, and keeps 1,000
/// concurrent instances within a small server's RAM.
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;

/// Default number of guest instances alive at once. Each waiting request holds
/// one, so this bounds memory under load; past it, requests get `503`.
pub const DEFAULT_MAX_INSTANCES: u32 = 1_000;

/// Default time a graceful shutdown waits for in-flight requests.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Handler file operations (`file_read`, `file_size`) running at once, across
/// the process. Each runs on one of tokio's 512 blocking threads; a read that
/// the kernel never finishes (a hung network mount) holds its thread, so this
/// many at most can be stuck, and static files and compiles keep the rest.
/// More waiting operations wait for a free one, within their request's
/// timeout.
pub const MAX_FILE_OPERATIONS: usize = 64;

/// Largest disk-cache entry read or written. Compiled code is a few times the
/// size of its module, so this leaves room for a handler near the default
/// `--max-module-size`, while a stray huge file in the cache directory is a
/// miss instead of a read that exhausts memory.
pub const MAX_CACHE_ENTRY_SIZE: u64 = 1 << 30;

/// How old a disk-cache temporary file must be before a starting server
/// removes it as left behind by a crash. Another server sharing the directory
/// may be writing one right now; a write takes seconds and keeps the file's
/// modification time fresh, so anything untouched for this long is dead.
pub const STALE_CACHE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// How long the process waits, after the graceful shutdown, for blocking
/// threads still busy (a compile, a read stuck in the kernel) before it exits
/// without them. Their work is abandoned: a compile's cache entry is written
/// whole or not at all.
pub const BLOCKING_EXIT_GRACE: Duration = Duration::from_secs(1);

/// Default largest handler file: a generous Rust handler is a few hundred
/// KiB, a big one a few MiB; 64 MiB leaves room for text `.wat` files and
/// embedded data while keeping a stray multi-gigabyte file from being
/// compiled (which costs memory and minutes of CPU).
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 64 << 20;

/// Default longest build of a `.rs` source handler. A first build compiles
/// the SDK and the handler's dependencies (under a minute on two cores); a
/// rebuild takes seconds. Past it the build is stopped and the handler fails
/// to load, so a runaway build script cannot hold a compile slot forever.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Default time a client has to send a complete request head, counted from
/// the accept for a connection's first request (so a connection that never
/// sends a byte, or sends a bare HTTP/2 preface, is closed then) and from the
/// end of the previous response for the next one on a kept-alive HTTP/1.1
/// connection. hyper's own default; a real client sends its head in one
/// packet, so only a slowloris client is cut.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of requests waiting for a guest execution slot when all
/// `--max-concurrency` slots are busy. Short on purpose: it absorbs a burst
/// one tenth the size of the default cap, and past it a client learns at once
/// (`503` with `Retry-After`) instead of holding a socket in a long line.
pub const DEFAULT_MAX_QUEUE: u32 = 100;

/// Default longest wait in that queue before the request gets `503`. A guest
/// usually finishes in milliseconds, so a slot that has not freed within a
/// second means the server is overloaded, not briefly busy; it matches the
/// `Retry-After: 1` the client gets.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default number of open connections on the main listener. Past it the
/// server stops accepting (new clients wait in the kernel's listen queue)
/// until one closes, so the connections it has keep being served. Above the
/// 5,000 connections the benchmark drives; keep it under the process's
/// open-file limit (`ulimit -n`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;

/// Default largest request head (request line and headers), in bytes.
/// Larger gets `431`. Room for big cookies and tokens (nginx allows about
/// the same), small enough that a connection's read buffer stays small. For
/// HTTP/1.1 it is hyper's read buffer limit (which is also why it cannot be
/// below [`MIN_HEADER_SIZE`]); for HTTP/2 it is the advertised
/// `SETTINGS_MAX_HEADER_LIST_SIZE`. hyper also refuses more than 100 header
/// fields in one HTTP/1.1 request with `431`.
pub const DEFAULT_MAX_HEADER_SIZE: u32 = 32 << 10;

/// The smallest `--max-header-size`: hyper's HTTP/1.1 read buffer cannot be
/// smaller.
pub const MIN_HEADER_SIZE: u32 = 8 << 10;

/// The largest `--max-header-size`: a head bigger than this is an attack, not
/// a request.
pub const MAX_HEADER_SIZE: u32 = 1 << 20;

/// Default most header fields in a handler's response. Near the request
/// side's number (hyper refuses more than 100 fields in a request head), and
/// under the 100 fields hyper's own client parses in a response, with room
/// for the fields the server adds (`date`, `content-length` or
/// `transfer-encoding`): a head past that fails in common clients anyway.
/// Past it `resp_header` returns `TOO_LARGE`.
pub const DEFAULT_MAX_RESPONSE_HEADERS: u32 = 96;

/// Default largest response head a handler may build, in bytes: each field
/// counts its name, its value and 4 bytes of framing (`: ` and CRLF), as on
/// the HTTP/1.1 wire. The same as [`DEFAULT_MAX_HEADER_SIZE`] for a request:
/// the fields are host memory held for the whole request, so a guest capped
/// at 64 MiB of linear memory must not make the host hold far more.
pub const DEFAULT_MAX_RESPONSE_HEADER_SIZE: u32 = 32 << 10;

/// Default bytes of log one request's guest may write (the `log` import, or a
/// component's stdout and stderr). Past it, its lines are dropped and one
/// line at the request's end says how many. 64 KiB is sixteen maximal lines
/// or hundreds of ordinary ones.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 64 << 10;

/// Default log lines one request's guest may write; past it, as for
/// [`DEFAULT_MAX_LOG_BYTES`].
pub const DEFAULT_MAX_LOG_LINES: u32 = 1_000;

/// Default bytes of guest log per second for one handler, across all its
/// requests (a token bucket holding one second's worth). A handler answering
/// a thousand requests a second with a 200-byte line each stays well under
/// it; a handler made to flood the log writes at most this much a second,
/// however many clients drive it.
pub const DEFAULT_LOG_RATE: u64 = 1 << 20;

/// Default largest request body, in bytes. A request whose `Content-Length`
/// says more gets `413` before any guest code runs; a chunked body's
/// `req_body_read` returns `BODY` once it passes the limit. A quarter of the
/// default `--max-memory`, so a handler that buffers the whole body fits.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 16 << 20;

/// Default longest wait for the next piece of a request body. A client that
/// stops sending mid-body makes the guest's `req_body_read` return `BODY`
/// after this, instead of holding the guest until the request timeout. Any
/// live client sends something within seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new version of a handler file must stay unchanged, and closed
/// by every writer the watcher saw, before it may replace the version being
/// served: a `.wasm` cut at a section boundary is a valid module, so a file
/// caught mid-copy would otherwise serve its prefix. The watcher's debounce
/// window, so a deploy goes live as soon as the watcher reports it.
pub const SETTLE_TIME: Duration = crate::watcher::DEFAULT_DEBOUNCE;

/// How long after its last write a file the watcher saw opened for writing
/// still counts as being written, when the close was never reported (the
/// kernel's event queue overflowed): past it the version loads anyway.
pub const OPEN_WRITE_EXPIRY: Duration = Duration::from_secs(60);

/// HTTP/2 streams (requests) one connection may have open at once,
/// advertised as `SETTINGS_MAX_CONCURRENT_STREAMS`. The least RFC 9113
/// recommends, and a tenth of the default `--max-concurrency`, so one
/// connection cannot take the whole server.
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// HTTP/2 streams a client may open and reset before the server has accepted
/// them (the "rapid reset" attack, CVE-2023-44487); past it the connection is
/// closed with `GOAWAY ENHANCE_YOUR_CALM`. The `h2` crate's default.
pub const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// HTTP/2 streams the server may reset because the client broke the protocol
/// on them before the connection is closed with `GOAWAY` (CVE-2024-27316 and
/// kin: a client that provokes a reset per stream). hyper's default.
pub const HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// How often an idle HTTP/2 connection is pinged, and how long the ping's
/// answer may take: a peer that vanished without closing (a dead NAT entry)
/// is dropped within 40 s instead of holding a connection slot for ever.
pub const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Default interval between checks of the TLS certificate and key files for
/// a renewal. A check is two `stat` calls; a renewed certificate is usually
/// installed days before the old one expires, so seconds of delay are
/// harmless.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Inbound TLS: where the certificate and key are, and how often they are
/// checked for a renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1; certbot's `privkey.pem`).
    pub key: PathBuf,
    /// How often the two files are checked for a change; a changed pair is
    /// loaded for new connections, a bad one is refused and logged.
    pub reload_interval: Duration,
}

impl TlsConfig {
    /// The certificate and key at these paths, checked every
    /// [`DEFAULT_TLS_RELOAD_INTERVAL`].
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: DEFAULT_TLS_RELOAD_INTERVAL,
        }
    }
}

/// How the server behaves. [`Config::new`] gives the documented defaults;
/// [`Config::validate`] checks a configuration before the server uses it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory served: handlers and static files. Nothing outside it is
    /// ever reachable. Canonical once validated: where the web root was
    /// when the server started.
    pub webroot: PathBuf,
    /// The web root as given, made absolute, when it is a symlink
    /// (`/srv/www/current` → `releases/v2`): the server follows the link to a
    /// new target, and the
    /// key-value stores' default place is derived from it, so a switch of
    /// releases keeps the data. Set by validation.
    pub webroot_link: Option<PathBuf>,
    /// Wall-clock limit for one request; a guest still running then is
    /// stopped and the client gets `504` (or a cut body if streaming began).
    pub request_timeout: Duration,
    /// Largest linear memory one instance may have, in bytes; `memory.grow`
    /// past it fails, and a module that asks for more up front fails to
    /// instantiate.
    pub max_memory: u64,
    /// Most guest instances alive at once, across all handlers. Sizes the
    /// pooling allocator; requests past it get `503` without running guest
    /// code.
    pub max_instances: u32,
    /// How long a graceful shutdown lets in-flight requests run before it
    /// cuts them.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request head. Without it, a
    /// silent connection would hold its slot forever.
    pub header_timeout: Duration,
    /// Most guest executions running at once, across all handlers; `None`
    /// means [`Config::max_instances`], since each execution holds an
    /// instance. Past it requests wait in a short queue, then get `503`.
    /// Guests mostly wait on I/O without holding a thread, so the cap is
    /// about memory, not cores.
    pub max_concurrency: Option<u32>,
    /// Requests that may wait for an execution slot when all are busy; past
    /// it, `503` at once. `0`: no queue.
    pub max_queue: u32,
    /// Longest a request waits in that queue before it gets `503`.
    pub queue_timeout: Duration,
    /// Most open connections on the main listener; past it the server stops
    /// accepting until one closes.
    pub max_connections: u32,
    /// Largest request head in bytes (HTTP/1.1 request line and headers, or
    /// an HTTP/2 header list); larger gets `431`.
    pub max_header_size: u32,
    /// Most header fields a handler's response may carry; past it
    /// `resp_header` returns `TOO_LARGE`, and a component's response is
    /// refused with `500`.
    pub max_response_headers: u32,
    /// Largest response head a handler may build, in bytes (name, value and
    /// 4 bytes per field); past it as for [`Config::max_response_headers`].
    pub max_response_header_size: u32,
    /// Bytes of log one request's guest may write; past it, lines are
    /// dropped and counted.
    pub max_log_bytes: u64,
    /// Log lines one request's guest may write; past it, as for
    /// [`Config::max_log_bytes`].
    pub max_log_lines: u32,
    /// Bytes of guest log per second for one handler, across its requests;
    /// past it, lines are dropped and counted.
    pub log_rate: u64,
    /// Largest request body in bytes: `413` when `Content-Length` says more,
    /// a failed `req_body_read` when a chunked body grows past it.
    pub max_body_size: u64,
    /// Longest a guest's `req_body_read` waits for the next piece of the
    /// body before it fails.
    pub body_timeout: Duration,
    /// Development mode: error responses carry the guest's trap message and
    /// compile errors, which production must never show a client.
    pub dev: bool,
    /// Where compiled handler code is kept between restarts, so a restart does
    /// not compile again; `None` turns the disk cache off. Must be outside the
    /// web root: nothing precompiled is ever loaded from the web root.
    pub cache_dir: Option<PathBuf>,
    /// Where embedded key-value stores keep their files
    /// (`<data-dir>/kv/<store>.sqlite` unless a store names a path); `None`
    /// leaves stores that need it unopenable. Must be outside the web root:
    /// anything inside it could be downloaded.
    pub data_dir: Option<PathBuf>,
    /// Largest handler file loaded, in bytes; a larger one fails to load with
    /// a message saying so, without being read whole or compiled.
    pub max_module_size: u64,
    /// Longest build of a `.rs` source handler.
    pub build_timeout: Duration,
    /// Compile every handler in the web root before accepting requests.
    pub precompile: bool,
    /// URL path of the status page (JSON list of handlers), or `None` for no
    /// status page. Off by default: it reveals file names.
    pub status_path: Option<String>,
    /// Serve the status page to any client, not only loopback ones.
    pub status_public: bool,
    /// How the web root is watched for new, changed and deleted handlers, or
    /// `None` for no watcher. Without one, changes are still found: every
    /// request checks its file's version. The watcher adds eager compiles
    /// (the next request finds the new version ready) and forgets deleted
    /// handlers.
    pub watch: Option<WatchMode>,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2, chosen by ALPN) with this
    /// certificate and key instead of cleartext; `None` for cleartext
    /// HTTP/1.1 and h2c.
    pub tls: Option<TlsConfig>,
}

impl Config {
    /// The defaults, serving `webroot`.
    pub fn new(webroot: impl Into<PathBuf>) -> Self {
        Self {
            webroot: webroot.into(),
            webroot_link: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
            max_instances: DEFAULT_MAX_INSTANCES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_concurrency: None,
            max_queue: DEFAULT_MAX_QUEUE,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_response_headers: DEFAULT_MAX_RESPONSE_HEADERS,
            max_response_header_size: DEFAULT_MAX_RESPONSE_HEADER_SIZE,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_log_lines: DEFAULT_MAX_LOG_LINES,
            log_rate: DEFAULT_LOG_RATE,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            dev: false,
            cache_dir: crate::loader::disk_cache::default_dir(),
            data_dir: default_data_dir(),
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            build_timeout: DEFAULT_BUILD_TIMEOUT,
            precompile: false,
            status_path: None,
            status_public: false,
            watch: Some(WatchMode::Events),
            tls: None,
        }
    }

    /// Checks the settings and resolves the web root to its canonical path
    /// (the router's containment checks compare against it).
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        let root = &self.webroot;
        let meta = std::fs::metadata(root).map_err(|source| ConfigError::WebRoot {
            path: root.clone(),
            reason: match source.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
                _ => source.to_string(),
            },
        })?;
        if !meta.is_dir() {
            return Err(ConfigError::WebRoot {
                path: root.clone(),
                reason: "it is not a directory".to_owned(),
            });
        }
        // Only a web root that is itself a symlink is followed (the release
        // switch); `..` or a symlinked parent resolve once, as always.
        let given = std::fs::symlink_metadata(root)
            .is_ok_and(|meta| meta.file_type().is_symlink())
            .then(|| std::path::absolute(root).ok())
            .flatten();
        self.webroot = std::fs::canonicalize(root).map_err(|e| ConfigError::WebRoot {
            path: root.clone(),
            reason: e.to_string(),
        })?;
        // Validating again (the canonical path) keeps the link.
        self.webroot_link = given.or(self.webroot_link.take());
        if self.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "request-timeout",
                reason: "must be longer than zero".to_owned(),
            });
        }
        // One 64 KiB wasm page is the smallest memory a module can have.
        if self.max_memory < 64 << 10 {
            return Err(ConfigError::Invalid {
                setting: "max-memory",
                reason: "must be at least 64KiB, one WebAssembly page".to_owned(),
            });
        }
        if self.max_memory > 4 << 30 {
            return Err(ConfigError::Invalid {
                setting: "max-memory",
                reason: "must be at most 4GiB, the most a 32-bit memory can address".to_owned(),
            });
        }
        self.check_outside_webroot()?;
        if let Some(path) = &self.status_path
            && (!path.starts_with('/') || path.len() < 2)
        {
            return Err(ConfigError::Invalid {
                setting: "status-path",
                reason: format!("`{path}` must be a URL path like /_wasmlet/status"),
            });
        }
        if self.max_instances == 0 {
            return Err(ConfigError::Invalid {
                setting: "max-instances",
                reason: "must be at least 1".to_owned(),
            });
        }
        self.validate_connection_limits()?;
        Ok(self)
    }

    /// Refuses a cache or data directory inside the (canonical) web root,
    /// where its files could be downloaded. Checked at start, again once the
    /// cache directory exists, and at every configuration reload, since a
    /// directory missing at start may since have been created (or replaced
    /// by a symlink) anywhere.
    pub fn check_outside_webroot(&self) -> Result<(), ConfigError> {
        if let Some(dir) = &self.cache_dir
            && inside(dir, &self.webroot)
        {
            return Err(ConfigError::Invalid {
                setting: "cache-dir",
                reason: format!(
                    "{} is inside the web root {}; nothing precompiled may be loaded from \
                     or served out of the web root, so put the cache elsewhere",
                    dir.display(),
                    self.webroot.display()
                ),
            });
        }
        if let Some(dir) = &self.data_dir
            && inside(dir, &self.webroot)
        {
            return Err(ConfigError::Invalid {
                setting: "data-dir",
                reason: format!(
                    "{} is inside the web root {}, where stored data could be downloaded; \
                     put it elsewhere",
                    dir.display(),
                    self.webroot.display()
                ),
            });
        }
        Ok(())
    }

    /// The limits on connections, requests, guest output and concurrency.
    fn validate_connection_limits(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: String| Err(ConfigError::Invalid { setting, reason });
        for (setting, duration) in [
            ("header-timeout", self.header_timeout),
            ("queue-timeout", self.queue_timeout),
            ("body-timeout", self.body_timeout),
        ] {
            if duration.is_zero() {
                return invalid(setting, "must be longer than zero".to_owned());
            }
        }
        if let Some(tls) = &self.tls
            && tls.reload_interval.is_zero()
        {
            return invalid("tls-reload-interval", "must be longer than zero".to_owned());
        }
        match self.max_concurrency {
            Some(0) => return invalid("max-concurrency", "must be at least 1".to_owned()),
            Some(n) if n > self.max_instances => {
                return invalid(
                    "max-concurrency",
                    format!(
                        "{n} is more than --max-instances ({}): every running guest holds an \
                         instance, so raise --max-instances too",
                        self.max_instances
                    ),
                );
            }
            _ => {}
        }
        if self.max_connections == 0 {
            return invalid("max-connections", "must be at least 1".to_owned());
        }
        for (setting, value) in [
            ("max-response-headers", u64::from(self.max_response_headers)),
            (
                "max-response-header-size",
                u64::from(self.max_response_header_size),
            ),
            ("max-log-bytes", self.max_log_bytes),
            ("max-log-lines", u64::from(self.max_log_lines)),
        ] {
            if value == 0 {
                return invalid(setting, "must be at least 1".to_owned());
            }
        }
        if self.max_response_header_size > MAX_HEADER_SIZE {
            return invalid(
                "max-response-header-size",
                format!(
                    "must be at most {}MiB: a bigger head is a flood, not a response",
                    MAX_HEADER_SIZE >> 20
                ),
            );
        }
        // One maximal line must fit in the bucket, or it could never pass.
        if self.log_rate < crate::host::MAX_LOG_LINE as u64 {
            return invalid(
                "log-rate",
                format!(
                    "must be at least {} bytes a second, one full log line",
                    crate::host::MAX_LOG_LINE
                ),
            );
        }
        if !(MIN_HEADER_SIZE..=MAX_HEADER_SIZE).contains(&self.max_header_size) {
            return invalid(
                "max-header-size",
                format!(
                    "must be between {}KiB and {}MiB",
                    MIN_HEADER_SIZE >> 10,
                    MAX_HEADER_SIZE >> 20
                ),
            );
        }
        Ok(())
    }

    /// Most guest executions running at once: [`Config::max_concurrency`],
    /// or [`Config::max_instances`] when that is not set.
    pub fn concurrency_limit(&self) -> u32 {
        self.max_concurrency.unwrap_or(self.max_instances)
    }

    /// The web root as given (canonical after [`Config::validate`]).
    pub fn webroot(&self) -> &Path {
        &self.webroot
    }
}

/// `$XDG_DATA_HOME/wasmlet`, else `~/.local/share/wasmlet`.
pub fn default_data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("wasmlet"))
}

/// Parses a duration written like `500ms`, `2s`, `1m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like 500ms, 2s or 1m"))
}

/// Parses a size written like `64MiB`, `1GiB`, `512KiB` or a plain number of
/// bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text)
        .map_err(|e| format!("`{text}` is not a size ({e}); write it like 64MiB or 1GiB"))
}

/// Parses a listening address: `IP:PORT` (`0.0.0.0:8080`, `[::1]:8080`),
/// `localhost:PORT`, or a bare `PORT`, which listens on loopback only, like
/// the default.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let port = |port: &str| port.parse::<u16>().ok();
    if let Some(port) = port(text) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = text.strip_prefix("localhost:").and_then(port) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| {
        format!("`{text}` is not an address; write a port (8080) or IP:PORT (0.0.0.0:8080)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_documented_forms() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        assert!(parse_duration("soon").unwrap_err().contains("500ms"));
    }

    #[test]
    fn listening_addresses_parse_as_a_port_or_an_address() {
        for (text, want) in [
            ("8080", "127.0.0.1:8080"),
            ("localhost:9000", "127.0.0.1:9000"),
            ("0.0.0.0:80", "0.0.0.0:80"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            assert_eq!(parse_listen(text), Ok(want.parse().unwrap()), "{text}");
        }
        for bad in ["", "65536", "example.com:80", "8080:"] {
            let error = parse_listen(bad).unwrap_err();
            assert!(error.contains("0.0.0.0:8080"), "{bad}: {error}");
        }
    }

    #[test]
    fn sizes_parse_in_the_documented_forms() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").unwrap_err().contains("64MiB"));
    }

    #[test]
    fn a_missing_web_root_is_a_clear_error() {
        let err = Config::new("/definitely/not/here").validate().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/definitely/not/here"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn a_file_is_not_a_web_root() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = Config::new(file.path()).validate().unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_cache_dir_inside_the_web_root_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Config {
            cache_dir: Some(dir.path().join("cache")),
            ..Config::new(dir.path())
        };
        let err = inside.validate().unwrap_err().to_string();
        assert!(
            err.contains("--cache-dir") && err.contains("web root"),
            "{err}"
        );
        let outside = tempfile::tempdir().unwrap();
        let fine = Config {
            cache_dir: Some(outside.path().join("cache")),
            ..Config::new(dir.path())
        };
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn limits_out_of_range_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let small = Config {
            max_memory: 1024,
            ..Config::new(dir.path())
        };
        assert!(
            small
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max-memory")
        );
        let zero = Config {
            request_timeout: Duration::ZERO,
            ..Config::new(dir.path())
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("request-timeout")
        );
    }

    #[test]
    fn connection_and_concurrency_limits_out_of_range_name_their_flag() {
        let dir = tempfile::tempdir().unwrap();
        type Break = fn(&mut Config);
        let cases: [(&str, Break); 10] = [
            ("max-concurrency", |c| c.max_concurrency = Some(0)),
            ("max-concurrency", |c| {
                c.max_concurrency = Some(c.max_instances + 1)
            }),
            ("max-connections", |c| c.max_connections = 0),
            ("max-header-size", |c| c.max_header_size = 1024),
            ("header-timeout", |c| c.header_timeout = Duration::ZERO),
            ("body-timeout", |c| c.body_timeout = Duration::ZERO),
            ("max-response-headers", |c| c.max_response_headers = 0),
            ("max-response-header-size", |c| {
                c.max_response_header_size = 2 << 20
            }),
            ("max-log-lines", |c| c.max_log_lines = 0),
            ("log-rate", |c| c.log_rate = 100),
        ];
        for (flag, break_it) in cases {
            let mut config = Config::new(dir.path());
            break_it(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn the_concurrency_limit_follows_max_instances_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.max_instances = 6000;
        assert_eq!(config.concurrency_limit(), 6000);
        config.max_concurrency = Some(4);
        assert_eq!(config.concurrency_limit(), 4);
        assert!(config.validate().is_ok());
    }
}
