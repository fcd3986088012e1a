//! The `wasmlet` command: parse flags, set up logging, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_appender::non_blocking::WorkerGuard;
use wasmlet::config::{self, Config, TlsConfig, parse_duration, parse_size};
use wasmlet::watcher::WatchMode;

/// A WebAssembly handler runtime: drop a .wasm or .wat file into a web root
/// and it serves the next request at its path.
#[derive(Parser, Debug)]
#[command(
    name = "wasmlet",
    // The wasmtime version too: disk cache entries are only valid for the
    // wasmtime that wrote them.
    version = concat!(env!("CARGO_PKG_VERSION"), " (wasmtime ", env!("WASMLET_WASMTIME_VERSION"), ")"),
    about,
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a web root: .wasm/.wat files are handlers, other files are static.
    // Boxed: its many flags make it far larger than the other commands.
    Serve(Box<ServeArgs>),
    /// Compile every handler in a web root ahead of time into the disk cache,
    /// so the server's first requests do not compile.
    Compile(CompileArgs),
    /// Check a web root before serving it: every wasmlet.toml, every handler
    /// (filling the disk cache), and each handler's capability imports
    /// against its grants. Exits non-zero on any error: a deploy step for CI.
    Check(CompileArgs),
    /// Create a hello handler to start from: NAME.wat, or a Rust crate NAME/
    /// that uses the SDK.
    New(NewArgs),
}

#[derive(clap::Args, Debug)]
struct NewArgs {
    /// The handler's name: its file name and URL path segment.
    name: String,

    /// Write a WebAssembly text handler, NAME.wat (the default).
    #[arg(long, conflicts_with = "rust")]
    wat: bool,

    /// Write a Rust crate, NAME/, using the wasmlet SDK.
    #[arg(long)]
    rust: bool,

    /// Where to create it.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct CacheArgs {
    /// Where compiled handler code is kept between restarts (default:
    /// $XDG_CACHE_HOME/wasmlet or ~/.cache/wasmlet). Must be outside the web root.
    #[arg(
        long,
        value_name = "DIR",
        env = "WASMLET_CACHE_DIR",
        help_heading = "Cache and data"
    )]
    cache_dir: Option<PathBuf>,

    /// Keep compiled code in memory only: every restart compiles again.
    #[arg(
        long,
        conflicts_with = "cache_dir",
        env = "WASMLET_NO_DISK_CACHE",
        help_heading = "Cache and data"
    )]
    no_disk_cache: bool,
}

impl CacheArgs {
    fn resolve(&self) -> Option<PathBuf> {
        if self.no_disk_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(wasmlet::loader::disk_cache::default_dir)
        }
    }
}

#[derive(clap::Args, Debug)]
struct CompileArgs {
    /// The web root.
    #[arg(default_value = ".")]
    webroot: PathBuf,

    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// The directory to serve.
    #[arg(default_value = ".")]
    webroot: PathBuf,

    /// Address and port to listen on, or a port alone (loopback). Use
    /// 0.0.0.0:PORT to accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = config::parse_listen, env = "WASMLET_LISTEN", help_heading = "Listening")]
    listen: SocketAddr,

    /// Worker threads that run requests (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), env = "WASMLET_WORKERS", help_heading = "Listening")]
    workers: Option<u16>,

    /// Longest a request may run before it is stopped with 504, e.g. 500ms,
    /// 30s, 1m. It covers the wait for the handler's load: a request still
    /// waiting on a compile then gets 503 with Retry-After (or the previous
    /// version), and the compile goes on for the next request.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_REQUEST_TIMEOUT", help_heading = "Limits")]
    request_timeout: Duration,

    /// Largest linear memory one handler instance may grow to, e.g. 64MiB, 1GiB.
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = parse_size, env = "WASMLET_MAX_MEMORY", help_heading = "Limits")]
    max_memory: u64,

    /// Most handler instances alive at once; past it, requests get 503.
    #[arg(long, default_value_t = config::DEFAULT_MAX_INSTANCES, value_name = "N", env = "WASMLET_MAX_INSTANCES", help_heading = "Limits")]
    max_instances: u32,

    /// How long shutdown (Ctrl-C, SIGTERM) waits for in-flight requests.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_SHUTDOWN_TIMEOUT", help_heading = "Listening")]
    shutdown_timeout: Duration,

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
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_QUEUE_TIMEOUT", help_heading = "Limits")]
    queue_timeout: Duration,

    /// Most open connections; past it, the server stops accepting until one
    /// closes. Keep it under the open-file limit (ulimit -n).
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS, value_name = "N", env = "WASMLET_MAX_CONNECTIONS", help_heading = "Listening")]
    max_connections: u32,

    /// How long a client may take to send a request head; a connection that
    /// sends nothing (or only the HTTP/2 preface) is closed then.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_HEADER_TIMEOUT", help_heading = "Listening")]
    header_timeout: Duration,

    /// Largest request head (request line and headers); larger gets 431.
    /// At least 8KiB.
    #[arg(long, default_value = "32KiB", value_name = "SIZE", value_parser = parse_size, env = "WASMLET_MAX_HEADER_SIZE", help_heading = "Limits")]
    max_header_size: u64,

    /// Largest request body: a larger Content-Length gets 413 before the
    /// handler runs; a chunked body's read fails past it.
    #[arg(long, default_value = "16MiB", value_name = "SIZE", value_parser = parse_size, env = "WASMLET_MAX_BODY_SIZE", help_heading = "Limits")]
    max_body_size: u64,

    /// Longest a handler's body read waits for the next piece of the body
    /// before it fails.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_BODY_TIMEOUT", help_heading = "Limits")]
    body_timeout: Duration,

    /// Most header fields a handler's response may carry; past it
    /// resp_header returns TOO_LARGE (-8) and a component's response gets
    /// 500.
    #[arg(long, default_value_t = config::DEFAULT_MAX_RESPONSE_HEADERS, value_name = "N", env = "WASMLET_MAX_RESPONSE_HEADERS", help_heading = "Limits")]
    max_response_headers: u32,

    /// Largest response head a handler may build (each field's name and
    /// value plus 4 bytes); past it as for --max-response-headers.
    #[arg(long, default_value_t = u64::from(config::DEFAULT_MAX_RESPONSE_HEADER_SIZE), value_name = "SIZE", value_parser = parse_size, env = "WASMLET_MAX_RESPONSE_HEADER_SIZE", help_heading = "Limits")]
    max_response_header_size: u64,

    /// Bytes of log one request's handler may write (log import, or a
    /// component's stdout and stderr); past it, lines are dropped and one
    /// line at the request's end says how many.
    #[arg(long, default_value_t = config::DEFAULT_MAX_LOG_BYTES, value_name = "SIZE", value_parser = parse_size, env = "WASMLET_MAX_LOG_BYTES", help_heading = "Logging")]
    max_log_bytes: u64,

    /// Log lines one request's handler may write; past it, as for
    /// --max-log-bytes.
    #[arg(long, default_value_t = config::DEFAULT_MAX_LOG_LINES, value_name = "N", env = "WASMLET_MAX_LOG_LINES", help_heading = "Logging")]
    max_log_lines: u32,

    /// Bytes of log a second one handler may write across all its requests
    /// (a token bucket holding one second's worth); past it, lines are
    /// dropped and counted.
    #[arg(long, default_value_t = config::DEFAULT_LOG_RATE, value_name = "SIZE", value_parser = parse_size, env = "WASMLET_LOG_RATE", help_heading = "Logging")]
    log_rate: u64,

    /// Development mode: error responses include trap messages and compile
    /// errors. Never use it in production.
    #[arg(long, env = "WASMLET_DEV", help_heading = "Logging")]
    dev: bool,

    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "WASMLET_LOG_FORMAT",
        help_heading = "Logging"
    )]
    log_format: LogFormat,

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
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = wasmlet::config::parse_size, env = "WASMLET_MAX_MODULE_SIZE", help_heading = "Limits")]
    max_module_size: u64,

    /// Longest build of a .rs source handler (where a wasmlet.toml sets
    /// [build] rust = true, or with --dev); past it the build is stopped.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_BUILD_TIMEOUT", help_heading = "Limits")]
    build_timeout: Duration,

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
    admin: Option<SocketAddr>,

    /// How to notice new, changed and deleted handlers: file system events,
    /// polling (for network mounts and file systems without events), or off
    /// (each request still checks its file's version).
    #[arg(
        long,
        value_enum,
        default_value = "events",
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
    redirect_http: Option<SocketAddr>,

    /// How often the --tls-cert and --tls-key files are checked for a
    /// renewal. A new pair serves new connections; a bad one is refused
    /// and logged, and the old one keeps serving (default: 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "tls_cert", env = "WASMLET_TLS_RELOAD_INTERVAL", help_heading = "Listening")]
    tls_reload_interval: Option<Duration>,

    /// How often --watch poll scans the web root.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration, env = "WASMLET_POLL_INTERVAL", help_heading = "Watching")]
    poll_interval: Duration,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum WatchArg {
    /// File system events (inotify), falling back to polling if unavailable.
    Events,
    /// Scan the web root every --poll-interval.
    Poll,
    /// No watcher.
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            let _log = init_tracing_filter(args.log_format, "wasmlet=info");
            serve(*args)
        }
        Command::New(args) => new_handler(&args),
        Command::Compile(args) => {
            // Progress and the summary go to the terminal, failures in the
            // summary; only other problems are logged.
            let _log = init_tracing_filter(LogFormat::Text, QUIET_LOADER);
            check(args, true)
        }
        Command::Check(args) => {
            let _log = init_tracing_filter(LogFormat::Text, QUIET_LOADER);
            check(args, false)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through a background writer thread: formatting stays on
/// the worker, but the write (a syscall, and a lock shared by all workers)
/// does not; writing in place cost 20% of a hello handler's throughput.
/// Not lossy: when the writer falls behind, workers wait rather than drop
/// access lines. The returned guard flushes what is queued when dropped.
fn init_tracing_filter(format: LogFormat, default: &str) -> WorkerGuard {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    // Colours only for a person at a terminal: in a file or a journal the
    // escape codes are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.fmt_fields(wasmlet::text_log::EscapedFields).init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config {
        cache_dir: args.cache.resolve(),
        data_dir: args
            .data_dir
            .clone()
            .or_else(wasmlet::config::default_data_dir),
        max_module_size: args.max_module_size,
        build_timeout: args.build_timeout,
        precompile: args.precompile,
        status_path: args.status_path.clone(),
        status_public: args.status_public,
        watch: match args.watch {
            WatchArg::Events => Some(WatchMode::Events),
            WatchArg::Poll => Some(WatchMode::Poll(args.poll_interval)),
            WatchArg::Off => None,
        },
        request_timeout: args.request_timeout,
        max_memory: args.max_memory,
        max_instances: args.max_instances,
        shutdown_timeout: args.shutdown_timeout,
        max_concurrency: args.max_concurrency,
        max_queue: args.max_queue,
        queue_timeout: args.queue_timeout,
        max_connections: args.max_connections,
        header_timeout: args.header_timeout,
        // Past u32 it is out of range anyway; validation names the flag.
        max_header_size: u32::try_from(args.max_header_size).unwrap_or(u32::MAX),
        max_body_size: args.max_body_size,
        body_timeout: args.body_timeout,
        max_response_headers: args.max_response_headers,
        max_response_header_size: u32::try_from(args.max_response_header_size).unwrap_or(u32::MAX),
        max_log_bytes: args.max_log_bytes,
        max_log_lines: args.max_log_lines,
        log_rate: args.log_rate,
        dev: args.dev,
        tls: args
            .tls_cert
            .clone()
            .zip(args.tls_key.clone())
            .map(|(cert, key)| {
                let tls = TlsConfig::new(cert, key);
                TlsConfig {
                    reload_interval: args.tls_reload_interval.unwrap_or(tls.reload_interval),
                    ..tls
                }
            }),
        ..Config::new(&args.webroot)
    };
    let workers = args
        .workers
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("wasmlet-worker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let mut server = wasmlet::Server::new(config)?;
        // Before binding: a broken wasmlet.toml stops the start with its
        // file, line and key, and nothing listens.
        server.load_site().await?;
        let shutdown = shutdown_signal();
        let listener = wasmlet::server::bind(args.listen)
            .map_err(|e| bind_error(args.listen, "--listen", e))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        if let Some(admin) = args.admin {
            let admin =
                wasmlet::server::bind(admin).map_err(|e| bind_error(admin, "--admin", e))?;
            let admin_addr = admin
                .local_addr()
                .context("cannot read the admin address")?;
            tracing::info!(
                "metrics at http://{admin_addr}/metrics, status at http://{admin_addr}/status"
            );
            server = server.with_admin(admin);
        }
        if let Some(redirect) = args.redirect_http {
            let redirect = wasmlet::server::bind(redirect)
                .map_err(|e| bind_error(redirect, "--redirect-http", e))?;
            let redirect_addr = redirect
                .local_addr()
                .context("cannot read the redirect address")?;
            tracing::info!("redirecting http://{redirect_addr} to https");
            server = server.with_redirect(redirect);
        }
        let scheme = if server.config().tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(
            webroot = %server.config().webroot.display(),
            workers,
            "listening on {scheme}://{addr}"
        );
        print_routes(&server.config().webroot, &format!("{scheme}://{addr}"));
        server.run(listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // A plain drop would wait for every blocking thread, and one stuck in
    // the kernel (a read on a hung network mount) would keep the process
    // alive after SIGTERM for ever.
    runtime.shutdown_timeout(wasmlet::config::BLOCKING_EXIT_GRACE);
    served
}

/// Most handler URLs listed at start-up; a large web root gets a count.
const ROUTES_SHOWN: usize = 20;

/// Prints the handlers the web root holds and their URLs, as `spin up` does,
/// so a newcomer sees what to call. Standard output: the log is on stderr.
fn print_routes(root: &std::path::Path, base: &str) {
    let handlers = wasmlet::webroot::handler_files(root);
    println!("Serving {} at {base}", root.display());
    if handlers.is_empty() {
        println!("No handlers yet: save a .wat or .wasm file in the web root.");
        return;
    }
    println!("Handlers:");
    for file in handlers.iter().take(ROUTES_SHOWN) {
        let rel = file.strip_prefix(root).unwrap_or(file).with_extension("");
        let mut path = rel.to_string_lossy().into_owned();
        if path == "index" || path.ends_with("/index") {
            path.truncate(path.len() - "index".len());
        }
        println!("  {base}/{path}");
    }
    if handlers.len() > ROUTES_SHOWN {
        println!("  … and {} more", handlers.len() - ROUTES_SHOWN);
    }
}

fn new_handler(args: &NewArgs) -> anyhow::Result<ExitCode> {
    use wasmlet::scaffold::{ScaffoldKind, scaffold};
    let kind = if args.rust {
        ScaffoldKind::Rust
    } else {
        ScaffoldKind::Wat
    };
    let created = scaffold(&args.dir, &args.name, kind)?;
    let vendored = args.dir.join(&args.name).join("vendor");
    let (sdk, own): (Vec<_>, Vec<_>) = created.iter().partition(|path| path.starts_with(&vendored));
    for path in own {
        println!("created {}", path.display());
    }
    if !sdk.is_empty() {
        println!(
            "created {} (the SDK, {} files)",
            vendored.join("wasmlet-sdk").display(),
            sdk.len()
        );
    }
    match kind {
        ScaffoldKind::Wat => println!(
            "\nPut {}.wat in a web root and it answers GET /{}.",
            args.name, args.name
        ),
        ScaffoldKind::Rust => println!(
            "\nTest it with `cargo test`, then build and deploy it as {}/README.md says.",
            args.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The log filter of `check` and `compile`: warnings, but not the loader's
/// own line for each failed handler, which the summary already prints.
const QUIET_LOADER: &str = "wasmlet=warn,wasmlet::loader::compile=off";

/// `wasmlet check`, or with `require_cache`, `wasmlet compile` (whose point
/// is the disk cache).
fn check(args: CompileArgs, require_cache: bool) -> anyhow::Result<ExitCode> {
    let config = Config {
        cache_dir: args.cache.resolve(),
        ..Config::new(&args.webroot)
    };
    if require_cache && config.cache_dir.is_none() {
        anyhow::bail!(
            "compiling ahead of time fills the disk cache, and --no-disk-cache turns it off; \
             use `wasmlet check --no-disk-cache` to check without one"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut server = wasmlet::Server::new(config)?;
        let root = server.config().webroot.clone();
        let total = wasmlet::webroot::handler_files(&root).len() as u64;
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .expect("a valid progress template"),
        );
        let report = wasmlet::check::check(&mut server, |file| {
            bar.set_message(
                file.strip_prefix(&root)
                    .unwrap_or(file)
                    .display()
                    .to_string(),
            );
            bar.inc(1);
        })
        .await;
        bar.finish_and_clear();
        for error in &report.errors {
            println!("error: {error}");
        }
        for warning in &report.warnings {
            println!("warning: {warning}");
        }
        let cache = match &server.config().cache_dir {
            Some(dir) => format!(" ({})", dir.display()),
            None => " (no disk cache)".to_owned(),
        };
        println!(
            "{} handlers in {}: {} compiled, {} already in the cache{cache}, {} failed; \
             {} configuration files; {} errors, {} warnings",
            report.handlers,
            root.display(),
            report.compiled,
            report.cached,
            report.handlers - report.compiled - report.cached,
            report.config_files,
            report.errors.len(),
            report.warnings.len(),
        );
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn bind_error(addr: SocketAddr, flag: &str, e: std::io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("another program is using that port; stop it or pick another with {flag}")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("ports below 1024 need privileges; pick a port above 1024 with {flag}")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "that address does not belong to this machine; try 127.0.0.1 or 0.0.0.0".to_owned()
        }
        _ => format!("check the {flag} address"),
    };
    anyhow::anyhow!("cannot listen on {addr}: {e}; {hint}")
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed here, when it
/// is called, not when the future is first polled: `serve` calls it before it
/// says where it listens, so a signal sent right after that line (as a
/// supervisor or a test does) stops the server gracefully instead of killing
/// it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        // A signal that cannot be listened for never arrives.
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
        tracing::info!("shutdown signal received");
    }
}
