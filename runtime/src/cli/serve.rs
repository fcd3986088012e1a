//! `wasmlet serve`'s flags, grouped as `--help` shows them, and the
//! [`Config`] they make.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;
use wasmlet::config::{self, Config, TlsConfig};
use wasmlet::watcher::WatchMode;

use super::{CacheArgs, Human, Size, SizeOrOff};

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// The directory to serve.
    #[arg(default_value = ".")]
    pub(crate) webroot: PathBuf,

    /// Address and port to listen on, or a port alone (loopback). Use
    /// 0.0.0.0:PORT to accept connections from other machines.
    #[arg(long, default_value_t = config::DEFAULT_LISTEN, value_name = "ADDR", value_parser = config::parse_listen, env = "WASMLET_LISTEN", help_heading = "Listening")]
    pub(crate) listen: SocketAddr,

    /// Worker threads that run requests (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), env = "WASMLET_WORKERS", help_heading = "Listening")]
    pub(crate) workers: Option<u16>,

    /// Longest a request may run before it is stopped with 504, e.g. 500ms,
    /// 30s, 1m. It covers the wait for the handler's load: a request still
    /// waiting on a compile then gets 503 with Retry-After (or the previous
    /// version), and the compile goes on for the next request.
    #[arg(long, default_value_t = Human(config::DEFAULT_REQUEST_TIMEOUT), value_name = "DURATION", env = "WASMLET_REQUEST_TIMEOUT", help_heading = "Limits")]
    request_timeout: Human,

    /// Largest linear memory one handler instance may grow to, e.g. 64MiB, 1GiB.
    #[arg(long, default_value_t = Size(config::DEFAULT_MAX_MEMORY), value_name = "SIZE", env = "WASMLET_MAX_MEMORY", help_heading = "Limits")]
    max_memory: Size,

    /// Most handler instances alive at once; past it, requests get 503.
    #[arg(long, default_value_t = config::DEFAULT_MAX_INSTANCES, value_name = "N", env = "WASMLET_MAX_INSTANCES", help_heading = "Limits")]
    max_instances: u32,

    /// How long shutdown (Ctrl-C, SIGTERM) waits for in-flight requests.
    #[arg(long, default_value_t = Human(config::DEFAULT_SHUTDOWN_TIMEOUT), value_name = "DURATION", env = "WASMLET_SHUTDOWN_TIMEOUT", help_heading = "Listening")]
    shutdown_timeout: Human,

    /// Most handler runs at once (default: --max-instances). Past it,
    /// requests wait in a short queue, then get 503 with Retry-After.
    #[arg(
        long,
        value_name = "N",
        env = "WASMLET_MAX_CONCURRENCY",
        help_heading = "Limits"
    )]
    max_concurrency: Option<u32>,

    /// Requests that may wait for a handler run when all are busy; past it,
    /// 503 at once. 0 turns the queue off.
    #[arg(long, default_value_t = config::DEFAULT_MAX_QUEUE, value_name = "N", env = "WASMLET_MAX_QUEUE", help_heading = "Limits")]
    max_queue: u32,

    /// Longest a request waits in that queue before it gets 503.
    #[arg(long, default_value_t = Human(config::DEFAULT_QUEUE_TIMEOUT), value_name = "DURATION", env = "WASMLET_QUEUE_TIMEOUT", help_heading = "Limits")]
    queue_timeout: Human,

    /// Most open connections; past it, the server stops accepting until one
    /// closes. Keep it under the open-file limit (ulimit -n).
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS, value_name = "N", env = "WASMLET_MAX_CONNECTIONS", help_heading = "Listening")]
    max_connections: u32,

    /// How long a client may take to send a request head; a connection that
    /// sends nothing (or only the HTTP/2 preface) is closed then.
    #[arg(long, default_value_t = Human(config::DEFAULT_HEADER_TIMEOUT), value_name = "DURATION", env = "WASMLET_HEADER_TIMEOUT", help_heading = "Listening")]
    header_timeout: Human,

    /// Largest request head (request line and headers); larger gets 431.
    /// At least 8KiB.
    #[arg(long, default_value_t = Size(config::DEFAULT_MAX_HEADER_SIZE.into()), value_name = "SIZE", env = "WASMLET_MAX_HEADER_SIZE", help_heading = "Limits")]
    max_header_size: Size,

    /// Largest request body: a larger Content-Length gets 413 before the
    /// handler runs; a chunked body's read fails past it.
    #[arg(long, default_value_t = Size(config::DEFAULT_MAX_BODY_SIZE), value_name = "SIZE", env = "WASMLET_MAX_BODY_SIZE", help_heading = "Limits")]
    max_body_size: Size,

    /// Longest a handler's body read waits for the next piece of the body
    /// before it fails.
    #[arg(long, default_value_t = Human(config::DEFAULT_BODY_TIMEOUT), value_name = "DURATION", env = "WASMLET_BODY_TIMEOUT", help_heading = "Limits")]
    body_timeout: Human,

    /// Most header fields a handler's response may carry; past it
    /// resp_header returns TOO_LARGE (-8) and a component's response gets
    /// 500.
    #[arg(long, default_value_t = config::DEFAULT_MAX_RESPONSE_HEADERS, value_name = "N", env = "WASMLET_MAX_RESPONSE_HEADERS", help_heading = "Limits")]
    max_response_headers: u32,

    /// Largest response head a handler may build (each field's name and
    /// value plus 4 bytes); past it as for --max-response-headers.
    #[arg(long, default_value_t = Size(config::DEFAULT_MAX_RESPONSE_HEADER_SIZE.into()), value_name = "SIZE", env = "WASMLET_MAX_RESPONSE_HEADER_SIZE", help_heading = "Limits")]
    max_response_header_size: Size,

    /// Bytes of log one request's handler may write (log import, or a
    /// component's stdout and stderr); past it, lines are dropped and one
    /// line at the request's end says how many.
    #[arg(long, default_value_t = Size(config::DEFAULT_MAX_LOG_BYTES), value_name = "SIZE", env = "WASMLET_MAX_LOG_BYTES", help_heading = "Logging")]
    max_log_bytes: Size,

    /// Log lines one request's handler may write; past it, as for
    /// --max-log-bytes.
    #[arg(long, default_value_t = config::DEFAULT_MAX_LOG_LINES, value_name = "N", env = "WASMLET_MAX_LOG_LINES", help_heading = "Logging")]
    max_log_lines: u32,

    /// Bytes of log a second one handler may write across all its requests
    /// (a token bucket holding one second's worth); past it, lines are
    /// dropped and counted.
    #[arg(long, default_value_t = Size(config::DEFAULT_LOG_RATE), value_name = "SIZE", env = "WASMLET_LOG_RATE", help_heading = "Logging")]
    log_rate: Size,

    /// Development mode: error responses include trap messages (with source
    /// file and line from the module's debug info) and compile errors (a .wat
    /// syntax error with its source line and a caret). Never use it in
    /// production.
    #[arg(long, env = "WASMLET_DEV", help_heading = "Logging")]
    dev: bool,

    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "WASMLET_LOG_FORMAT",
        help_heading = "Logging"
    )]
    pub(crate) log_format: LogFormat,

    #[command(flatten)]
    cache: CacheArgs,

    /// Where embedded key-value stores keep their files (default:
    /// $XDG_DATA_HOME/wasmlet or ~/.local/share/wasmlet). Must be outside the
    /// web root.
    #[arg(
        long,
        value_name = "DIR",
        env = "WASMLET_DATA_DIR",
        help_heading = "Cache and data"
    )]
    data_dir: Option<PathBuf>,

    /// Largest handler file loaded; a larger one fails to load (500) with a
    /// message saying so, without being compiled.
    #[arg(long, value_name = "SIZE", default_value_t = Size(config::DEFAULT_MAX_MODULE_SIZE), env = "WASMLET_MAX_MODULE_SIZE", help_heading = "Limits")]
    max_module_size: Size,

    /// Handler files of at least this size are first compiled by Winch, a
    /// fast baseline compiler, and served at once while Cranelift optimises
    /// them in the background (a 20 MB Python or JavaScript component then
    /// answers in about a second instead of after 10 s or more); the
    /// optimised code takes over like a hot reload. `off`: always optimise
    /// first.
    #[arg(long, value_name = "SIZE|off", default_value_t = SizeOrOff(Some(config::DEFAULT_BASELINE_ABOVE)), env = "WASMLET_BASELINE_ABOVE", help_heading = "Cache and data")]
    baseline_above: SizeOrOff,

    /// Longest build of a .rs source handler (where a wasmlet.toml sets
    /// [build] rust = true, or with --dev); past it the build is stopped.
    #[arg(long, default_value_t = Human(config::DEFAULT_BUILD_TIMEOUT), value_name = "DURATION", env = "WASMLET_BUILD_TIMEOUT", help_heading = "Limits")]
    build_timeout: Human,

    /// Compile every handler before accepting requests.
    #[arg(long, env = "WASMLET_PRECOMPILE", help_heading = "Cache and data")]
    precompile: bool,

    /// Serve a JSON status page (handlers, versions, cache state, last
    /// errors) at this path, e.g. /_wasmlet/status. Loopback clients only,
    /// unless --status-public.
    #[arg(
        long,
        value_name = "PATH",
        env = "WASMLET_STATUS_PATH",
        help_heading = "Admin and status"
    )]
    status_path: Option<String>,

    /// Let any client see the status page, not only loopback ones.
    #[arg(
        long,
        requires = "status_path",
        env = "WASMLET_STATUS_PUBLIC",
        help_heading = "Admin and status"
    )]
    status_public: bool,

    /// Serve Prometheus metrics (/metrics) and the status page (/status as
    /// HTML, /status.json) on a second address, e.g. 127.0.0.1:9090. Off by
    /// default. Anyone who can reach it sees handler names and errors: keep
    /// it on loopback or a private network.
    #[arg(long, value_name = "ADDR", value_parser = config::parse_listen, env = "WASMLET_ADMIN", help_heading = "Admin and status")]
    pub(crate) admin: Option<SocketAddr>,

    /// How to notice new, changed and deleted handlers: file system events,
    /// polling (for network mounts and file systems without events), or off
    /// (each request still checks its file's version).
    #[arg(
        long,
        value_enum,
        default_value_t = WatchArg::Events,
        env = "WASMLET_WATCH",
        help_heading = "Watching"
    )]
    watch: WatchArg,

    /// Serve HTTPS with this PEM certificate chain, leaf first (certbot's
    /// fullchain.pem); needs --tls-key. HTTP/2 and HTTP/1.1 are offered by
    /// ALPN. Both files are reloaded when they change.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "WASMLET_TLS_CERT",
        help_heading = "Listening"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (certbot's privkey.pem).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "WASMLET_TLS_KEY",
        help_heading = "Listening"
    )]
    tls_key: Option<PathBuf>,

    /// Also listen for plain HTTP on this address, e.g. 0.0.0.0:80, and
    /// redirect every request there to the same URL over HTTPS (308).
    #[arg(
        long,
        value_name = "ADDR",
        requires = "tls_cert",
        env = "WASMLET_REDIRECT_HTTP",
        help_heading = "Listening"
    )]
    pub(crate) redirect_http: Option<SocketAddr>,

    // The help is built, not written, to show the default without
    // `default_value_t`: clap would then count the flag as always given and
    // stop requiring --tls-cert with it.
    #[arg(
        long,
        value_name = "DURATION",
        requires = "tls_cert",
        env = "WASMLET_TLS_RELOAD_INTERVAL",
        help_heading = "Listening",
        help = format!(
            "How often the --tls-cert and --tls-key files are checked for a renewal. A new \
             pair serves new connections; a bad one is refused and logged, and the old one \
             keeps serving (default: {})",
            Human(config::DEFAULT_TLS_RELOAD_INTERVAL)
        )
    )]
    tls_reload_interval: Option<Human>,

    /// How often --watch poll scans the web root.
    #[arg(long, default_value_t = Human(config::DEFAULT_POLL_INTERVAL), value_name = "DURATION", env = "WASMLET_POLL_INTERVAL", help_heading = "Watching")]
    poll_interval: Human,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum WatchArg {
    /// File system events (inotify), falling back to polling if unavailable.
    Events,
    /// Scan the web root every --poll-interval.
    Poll,
    /// No watcher.
    Off,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Shows a value as it is written on the command line, for `--help`.
fn value_name(value: &impl ValueEnum, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let name = value.to_possible_value().expect("no value is skipped");
    f.write_str(name.get_name())
}

impl fmt::Display for WatchArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        value_name(self, f)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        value_name(self, f)
    }
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub(crate) fn config(&self) -> Config {
        let mut config = Config {
            data_dir: self
                .data_dir
                .clone()
                .or_else(wasmlet::config::default_data_dir),
            max_module_size: self.max_module_size.0,
            baseline_above: self.baseline_above.0,
            build_timeout: self.build_timeout.0,
            precompile: self.precompile,
            status_path: self.status_path.clone(),
            status_public: self.status_public,
            watch: match self.watch {
                WatchArg::Events => Some(WatchMode::Events),
                WatchArg::Poll => Some(WatchMode::Poll(self.poll_interval.0)),
                WatchArg::Off => None,
            },
            request_timeout: self.request_timeout.0,
            max_memory: self.max_memory.0,
            max_instances: self.max_instances,
            shutdown_timeout: self.shutdown_timeout.0,
            max_concurrency: self.max_concurrency,
            max_queue: self.max_queue,
            queue_timeout: self.queue_timeout.0,
            max_connections: self.max_connections,
            header_timeout: self.header_timeout.0,
            // Past u32 it is out of range anyway; validation names the flag.
            max_header_size: u32::try_from(self.max_header_size.0).unwrap_or(u32::MAX),
            max_body_size: self.max_body_size.0,
            body_timeout: self.body_timeout.0,
            max_response_headers: self.max_response_headers,
            max_response_header_size: u32::try_from(self.max_response_header_size.0)
                .unwrap_or(u32::MAX),
            max_log_bytes: self.max_log_bytes.0,
            max_log_lines: self.max_log_lines,
            log_rate: self.log_rate.0,
            dev: self.dev,
            tls: self
                .tls_cert
                .clone()
                .zip(self.tls_key.clone())
                .map(|(cert, key)| {
                    let tls = TlsConfig::new(cert, key);
                    TlsConfig {
                        reload_interval: self
                            .tls_reload_interval
                            .map_or(tls.reload_interval, |d| d.0),
                        ..tls
                    }
                }),
            ..Config::new(&self.webroot)
        };
        self.cache.apply(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    #[test]
    fn serve_without_flags_gives_exactly_the_library_defaults() {
        let Command::Serve(args) = Cli::try_parse_from(["wasmlet", "serve"]).unwrap().command
        else {
            panic!("not serve");
        };
        let from_flags = args.config();
        let defaults = wasmlet::Config::new(".");
        assert_eq!(format!("{from_flags:?}"), format!("{defaults:?}"));
        assert_eq!(args.listen, wasmlet::config::DEFAULT_LISTEN);
    }
}
