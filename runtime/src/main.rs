//! The `wasmlet` command: parse flags, set up logging, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wasmlet::config::{self, Config, parse_duration, parse_size};

/// A WebAssembly handler runtime: drop a .wasm or .wat file into a web root
/// and it serves the next request at its path.
#[derive(Parser, Debug)]
#[command(name = "wasmlet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a web root: .wasm/.wat files are handlers, other files are static.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// The directory to serve.
    #[arg(default_value = ".")]
    webroot: PathBuf,

    /// Address and port to listen on. Use 0.0.0.0:PORT to accept connections
    /// from other machines.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// Worker threads that run requests (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Longest a request may run before it is stopped with 504, e.g. 500ms,
    /// 30s, 1m.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    request_timeout: Duration,

    /// Largest linear memory one handler instance may grow to, e.g. 64MiB, 1GiB.
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = parse_size)]
    max_memory: u64,

    /// Most handler instances alive at once; past it, requests get 503.
    #[arg(long, default_value_t = config::DEFAULT_MAX_INSTANCES, value_name = "N")]
    max_instances: u32,

    /// How long shutdown (Ctrl-C, SIGTERM) waits for in-flight requests.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_timeout: Duration,

    /// Development mode: error responses include trap messages and compile
    /// errors. Never use it in production.
    #[arg(long)]
    dev: bool,

    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
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
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format);
            match serve(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "wasmlet=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        request_timeout: args.request_timeout,
        max_memory: args.max_memory,
        max_instances: args.max_instances,
        shutdown_timeout: args.shutdown_timeout,
        dev: args.dev,
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
    runtime.block_on(async {
        let server = wasmlet::Server::new(config)?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| bind_error(args.listen, e))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        tracing::info!(
            webroot = %server.config().webroot.display(),
            workers,
            "listening on http://{addr}"
        );
        server.run(listener, shutdown_signal()).await?;
        Ok(())
    })
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another program is using that port; stop it or pick another with --listen"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; pick a port above 1024 with --listen"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "that address does not belong to this machine; try 127.0.0.1 or 0.0.0.0"
        }
        _ => "check the --listen address",
    };
    anyhow::anyhow!("cannot listen on {addr}: {e}; {hint}")
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}
