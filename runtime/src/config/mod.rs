//! Every server setting ([`Config`]) and its checks. Each setting's default
//! and the reason for it are in `defaults.rs`, the parsers for the
//! human-friendly forms the CLI accepts (`500ms`, `64MiB`) in `parse.rs`;
//! both are re-exported here.

mod defaults;
mod parse;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use defaults::*;
pub use parse::{parse_duration, parse_listen, parse_size};

use crate::error::ConfigError;
use crate::webroot::inside;

/// How the watcher learns that something may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Native file system notifications, falling back to polling every
    /// [`FALLBACK_POLL_INTERVAL`](crate::watcher::FALLBACK_POLL_INTERVAL) if
    /// they cannot be set up. A file system that accepts a watch but never
    /// delivers events (NFS, SMB) cannot be detected: choose
    /// [`WatchMode::Poll`] for those.
    Events,
    /// Rescan the tree at this interval (at least 10 ms).
    Poll(Duration),
}

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
    /// Most bytes of compiled code the disk cache keeps; past it the least
    /// recently used entries are evicted.
    pub cache_max_size: u64,
    /// The cache directory was chosen on purpose (`--cache-dir`): one that
    /// cannot be used stops the start, where the default one only turns the
    /// disk cache off with a warning.
    pub require_cache: bool,
    /// Where embedded key-value stores keep their files
    /// (`<data-dir>/kv/<store>.sqlite` unless a store names a path); `None`
    /// leaves stores that need it unopenable. Must be outside the web root:
    /// anything inside it could be downloaded.
    pub data_dir: Option<PathBuf>,
    /// Largest handler file loaded, in bytes; a larger one fails to load with
    /// a message saying so, without being read whole or compiled.
    pub max_module_size: u64,
    /// Handler binaries of at least this many bytes are first compiled by
    /// the baseline tier (Winch) and served while Cranelift optimises them
    /// in the background; the optimised code replaces it like a reload.
    /// `None`: always Cranelift first.
    pub baseline_above: Option<u64>,
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
            cache_dir: default_cache_dir(),
            cache_max_size: DEFAULT_CACHE_MAX_SIZE,
            require_cache: false,
            data_dir: default_data_dir(),
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            baseline_above: Some(DEFAULT_BASELINE_ABOVE),
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
        if self.cache_max_size == 0 {
            return Err(ConfigError::Invalid {
                setting: "cache-max-size",
                reason: "must be more than 0; --no-disk-cache turns the disk cache off".to_owned(),
            });
        }
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
        if self.log_rate < MAX_LOG_LINE as u64 {
            return invalid(
                "log-rate",
                format!(
                    "must be at least {} bytes a second, one full log line",
                    MAX_LOG_LINE
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
