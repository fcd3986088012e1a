//! The HTTP server: accept loop, connections (HTTP/1.1 with keep-alive, and
//! HTTP/2), graceful shutdown. [`Server::run`] is the one entry point for the
//! binary and the tests alike.

mod body;
mod service;
mod static_files;

use std::future::Future;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use body::{BodyError, CLIENT_GONE_GRACE, GuestBody, ResponseBody};

use crate::config::Config;
use crate::engine::WasmEngine;
use crate::error::{ConfigError, ServeError};
use crate::loader::Loader;
use crate::router::Router;
use crate::stats::Stats;

/// What every request needs, shared by all connections.
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) router: Router,
    pub(crate) loader: Loader,
    pub(crate) engine: Arc<WasmEngine>,
    pub(crate) stats: Arc<Stats>,
}

/// A configured server, ready to [`run`](Server::run) on a listener.
pub struct Server {
    app: Arc<App>,
}

impl Server {
    /// Validates `config` and builds the engine. Fails on a missing web root,
    /// an out-of-range setting, or an engine that cannot be configured.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let config = config.validate()?;
        let engine = Arc::new(WasmEngine::new(&config)?);
        tracing::debug!(allocator = ?engine.allocator(), "engine ready");
        let stats = Arc::new(Stats::default());
        let app = App {
            router: Router::new(config.webroot.clone()),
            loader: Loader::new(engine.clone(), stats.clone()),
            engine,
            stats,
            config,
        };
        Ok(Self { app: Arc::new(app) })
    }

    /// The server's live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.app.stats.clone()
    }

    /// The validated configuration (the web root is canonical).
    pub fn config(&self) -> &Config {
        &self.app.config
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, lets in-flight requests finish for up to the
    /// configured shutdown timeout, and cuts what is left.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.app.config.header_timeout)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());

        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_error(e).await?;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Responses are often one small write; don't let Nagle hold them.
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let service = service_fn(move |request| service::handle(app.clone(), request));
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
            // Reap finished connections so the set does not grow forever.
            while connections.try_join_next().is_some() {}
        }

        drop(listener);
        let drain = self.app.config.shutdown_timeout;
        tracing::info!(
            in_flight = connections.len(),
            "shutting down: waiting up to {} for in-flight requests",
            humantime::format_duration(drain)
        );
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections finished"),
            () = tokio::time::sleep(drain) => {
                tracing::warn!(cut = connections.len(), "shutdown timeout passed; cutting the remaining connections");
            }
        }
        connections.abort_all();
        Ok(())
    }
}

/// Decides whether an accept error ends the server. Most are about one
/// connection, or a momentary shortage of file descriptors or memory, and
/// the right answer is to keep serving.
async fn accept_error(e: std::io::Error) -> Result<(), ServeError> {
    match e.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            Ok(())
        }
        _ if is_resource_shortage(&e) => {
            tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
            // Back off instead of spinning while descriptors are exhausted.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
        _ => Err(ServeError::Accept(e)),
    }
}

fn is_resource_shortage(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}
