//! The `wasmlet` command: parse flags ([`cli`]), set up logging, call the
//! library.

mod cli;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_appender::non_blocking::WorkerGuard;

use cli::serve::{LogFormat, ServeArgs};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            let _log = init_tracing_filter(args.log_format, "wasmlet=info");
            serve(*args)
        }
        Command::New(args) => cli::new::new_handler(&args),
        Command::Compile(args) => {
            // Progress and the summary go to the terminal, failures in the
            // summary; only other problems are logged.
            let _log = init_tracing_filter(LogFormat::Text, cli::check::QUIET_LOADER);
            cli::check::check(args, true)
        }
        Command::Check(args) => {
            let _log = init_tracing_filter(LogFormat::Text, cli::check::QUIET_LOADER);
            cli::check::check(args, false)
        }
        Command::Cache(command) => {
            let _log = init_tracing_filter(LogFormat::Text, "wasmlet=warn");
            cli::cache::run(command)
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
    let config = args.config();
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
        println!("  {base}{}", wasmlet::router::handler_url(root, file));
    }
    if handlers.len() > ROUTES_SHOWN {
        println!("  … and {} more", handlers.len() - ROUTES_SHOWN);
    }
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
