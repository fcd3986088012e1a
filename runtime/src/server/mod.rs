//! The HTTP server: accept loop, connections (HTTP/1.1 with keep-alive, and
//! HTTP/2, over TLS when configured), graceful shutdown, and the optional
//! admin and HTTP-to-HTTPS redirect listeners. [`Server::run`]
//! is the one entry point for the binary and the tests alike.
//!
//! What keeps it serving under hostile load: a cap on open connections (the
//! accept loop waits for a free one), a deadline for each connection's first
//! request and hyper's limits on heads and HTTP/2 streams
//! (`connection.rs`), `413` for declared bodies over the limit and a cap on
//! guest executions with a short queue ([`Admission`]), and limits on reading
//! a body ([`BodyLimits`](crate::request::BodyLimits)). With `--tls-cert`, each connection's TLS
//! handshake runs inside the same first-request deadline and holds a
//! connection slot like any other connection (`tls.rs`).

mod access;
mod admin;
mod admission;
mod app;
mod body;
mod connection;
mod dev_page;
mod follow;
mod redirect;
mod service;
mod static_files;
mod status;
mod tls;

use std::future::Future;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::either::Either;

pub use admission::{Admission, Busy, HandlerLimit, Permit};
pub(crate) use app::App;
pub use body::{BodyError, CLIENT_GONE_GRACE, GuestBody, ResponseBody};
use connection::{Ended, FirstRequest, serve_until_first_request};

use crate::config::Config;
use crate::engine::WasmEngine;
use crate::error::{ConfigError, LoadError};
use crate::loader::{DiskCache, Handler, Loader, RustBuilder};
use crate::request_id::RequestIds;
use crate::router::Router;
use crate::site::{Policy, Site, SiteError};
use crate::stats::Stats;
use crate::watcher::OpenWrites;
use crate::webroot::Epoch;

/// Pending connections the kernel queues before `accept`. Tokio's default
/// (128) overflows when a few hundred clients connect at once, and the kernel
/// then drops SYNs that clients resend only a second later; the benchmark saw
/// exactly that at 1,000 connections.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener the way the server wants it: `SO_REUSEADDR` (a restart
/// need not wait for old connections in `TIME_WAIT`; a port another server
/// listens on is still refused) and a [`LISTEN_BACKLOG`]-deep accept queue.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A configured server, ready to [`run`](Server::run) on a listener.
pub struct Server {
    app: Arc<App>,
    /// Whether the `wasmlet.toml` files have been read; `run` reads them if
    /// the caller did not.
    site_loaded: bool,
    /// Where to serve metrics and the status page, if anywhere; see
    /// [`Server::with_admin`].
    admin: Option<TcpListener>,
    /// The certificate and key for HTTPS, when `--tls-cert` is set.
    tls: Option<Arc<tls::Certificates>>,
    /// Where plain HTTP is redirected to HTTPS, if anywhere; see
    /// [`Server::with_redirect`].
    redirect: Option<TcpListener>,
}

impl Server {
    /// Validates `config`, loads the TLS certificate and key if it names
    /// them, and builds the engine. Fails on a missing web root, an
    /// out-of-range setting, an unusable certificate or key, or an engine
    /// that cannot be configured.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let config = config.validate()?;
        let tls = config
            .tls
            .as_ref()
            .map(tls::Certificates::load)
            .transpose()?;
        let engine = Arc::new(WasmEngine::new(&config)?);
        tracing::debug!(allocator = ?engine.allocator(), "engine ready");
        let stats = Arc::new(Stats::default());
        let disk_cache = match config
            .cache_dir
            .as_ref()
            .map(|dir| DiskCache::open(dir, config.cache_max_size))
        {
            Some(Ok(cache)) => Some(Arc::new(cache)),
            Some(Err(e)) if config.require_cache => {
                return Err(ConfigError::Invalid {
                    setting: "cache-dir",
                    reason: format!(
                        "{e}; give a directory you can create and write to, or \
                         --no-disk-cache to serve without one"
                    ),
                });
            }
            Some(Err(e)) => {
                // The cache only saves compile time; serving goes on without it.
                tracing::warn!(error = %e, "the disk cache is off");
                None
            }
            None => None,
        };
        // Again now that the cache directory exists: its real path is known
        // only after creation.
        config.check_outside_webroot()?;
        let admission = Admission::new(
            config.concurrency_limit(),
            config.max_queue,
            config.queue_timeout,
            stats.clone(),
        );
        // Source handlers build below the disk cache, or in a directory of
        // this process's own that goes with it.
        let (rust_dir, rust_scratch) = match &config.cache_dir {
            Some(dir) => (Some(dir.join(crate::loader::disk_cache::BUILD_DIR)), None),
            None => match tempfile::Builder::new().prefix("wasmlet-rust").tempdir() {
                Ok(scratch) => (Some(scratch.path().to_owned()), Some(scratch)),
                Err(e) => {
                    tracing::warn!(error = %e, "no directory for building Rust handlers; they are off");
                    (None, None)
                }
            },
        };
        let site = Arc::new(RwLock::new(Arc::new(Site::empty(&config))));
        let open_writes = Arc::new(OpenWrites::default());
        let epoch = Arc::new(Epoch::default());
        let mut loader = Loader::new(engine.clone(), disk_cache, stats.clone())
            .with_max_module_size(config.max_module_size)
            .with_open_writes(open_writes.clone())
            .with_epoch(epoch.clone())
            .with_trial(site.clone(), &config)
            .with_tiering();
        if let Some(dir) = rust_dir {
            loader =
                loader.with_rust_builder(Arc::new(RustBuilder::new(dir, config.build_timeout)));
        }
        let app = App {
            router: RwLock::new(Arc::new(Router::watched(
                config.webroot.clone(),
                epoch.clone(),
            ))),
            loader: Arc::new(loader),
            _rust_scratch: rust_scratch,
            stats,
            request_ids: RequestIds::new(),
            admission,
            site,
            open_writes,
            epoch,
            handler_limits: Default::default(),
            log_rates: Default::default(),
            status_files: Default::default(),
            config,
        };
        Ok(Self {
            app: Arc::new(app),
            site_loaded: false,
            admin: None,
            tls,
            redirect: None,
        })
    }

    /// Also serves `/metrics` (Prometheus text), `/status` (HTML) and
    /// `/status.json` on `listener` while [`run`](Server::run) runs, from its
    /// start (so a long `--precompile` can be watched) until it returns.
    ///
    /// The caller binds the listener, as it binds the main one: the binary
    /// binds `--admin ADDR`, a test binds port 0 and reads the address back.
    /// Anyone who can connect sees handler names and errors; bind it to
    /// loopback or a private network.
    #[must_use]
    pub fn with_admin(mut self, listener: TcpListener) -> Self {
        self.admin = Some(listener);
        self
    }

    /// Also answers plain HTTP on `listener` with `308` redirects to the same
    /// host, path and query over HTTPS on the main listener's port, while
    /// [`run`](Server::run) runs. Only meaningful with TLS
    /// ([`Config::tls`](crate::config::Config::tls)); the binary binds it for
    /// `--redirect-http ADDR`.
    #[must_use]
    pub fn with_redirect(mut self, listener: TcpListener) -> Self {
        self.redirect = Some(listener);
        self
    }

    /// Reads every `wasmlet.toml` in the web root and opens the stores they
    /// grant. [`run`](Server::run) does this itself when it was not done;
    /// calling it first lets the caller report a broken configuration before
    /// it binds anything.
    pub async fn load_site(&mut self) -> Result<(), SiteError> {
        let site = Site::load(&self.app.config, None).await?;
        if !site.files().is_empty() {
            tracing::info!(files = site.files().len(), "read the configuration");
        }
        *self.app.site.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(site);
        self.site_loaded = true;
        Ok(())
    }

    /// The server's live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.app.stats.clone()
    }

    /// The validated configuration (the web root is canonical).
    pub fn config(&self) -> &Config {
        &self.app.config
    }

    /// The `wasmlet.toml` files the configuration was read from, root first.
    pub fn config_files(&self) -> Vec<PathBuf> {
        self.app.current_site().files().to_vec()
    }

    /// The policy (grants and limits) the configuration gives the handler at
    /// `file`, a path under the web root.
    pub fn policy(&self, file: &Path) -> Arc<Policy> {
        self.app.current_site().policy(file)
    }

    /// Loads every handler in the web root (compiling what the disk cache does
    /// not have), calling `progress` as each finishes. For `wasmlet compile`
    /// and `wasmlet check`; `--precompile` compiles the same way before
    /// [`run`](Server::run) accepts, and loads the cached ones after.
    pub async fn precompile(
        &self,
        progress: impl FnMut(&Path, &Result<Arc<Handler>, LoadError>),
    ) -> PrecompileReport {
        let files = crate::webroot::handler_files(self.app.router().root());
        let mut report = PrecompileReport::default();
        report.add(self.app.loader.load_all(files, progress).await);
        report
    }

    /// `--precompile` in [`run`](Server::run): compiles every handler the
    /// disk cache lacks, and returns the loads of the others for `run` to
    /// finish once it accepts. Taking code from the cache costs well under a
    /// millisecond a handler, and a request that comes first takes its own
    /// handler's; holding the listener back for a thousand of them held it
    /// back hundreds of milliseconds for nothing that needed compiling.
    async fn compile_before_accepting(&self) -> impl Future<Output = ()> + Send + 'static {
        let files = crate::webroot::handler_files(self.app.router().root());
        let (cached, uncached) = self.app.loader.split_by_disk_cache(files).await;
        let mut report = PrecompileReport::default();
        report.add(self.app.loader.load_all(uncached, |_, _| {}).await);
        let loader = self.app.loader.clone();
        async move {
            report.add(loader.load_gradually(cached).await);
            tracing::info!(
                compiled = report.compiled,
                cached = report.cached,
                failed = report.failed.len(),
                "precompiled the web root"
            );
        }
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, lets in-flight requests finish for up to the
    /// configured shutdown timeout, and cuts what is left.
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        if !self.site_loaded {
            self.load_site().await?;
        }
        let builder = Arc::new(connection::builder(&self.app.config));
        let header_timeout = self.app.config.header_timeout;
        // One permit per connection the server may have open. Waiting for
        // one before `accept` leaves further clients in the kernel's listen
        // queue, so the connections already open keep their share.
        let connection_slots = Arc::new(Semaphore::new(self.app.config.max_connections as usize));

        // A `JoinSet` rather than a bare handle: dropping it aborts the admin
        // task, so the admin listener closes however `run` returns.
        let mut admin = JoinSet::new();
        if let Some(listener) = self.admin.take() {
            admin.spawn(admin::serve(self.app.clone(), listener));
        }

        tokio::pin!(shutdown);
        // The loads `--precompile` leaves for after the listener opens (what
        // the disk cache holds); dropped, and so stopped, when `run` returns.
        let mut cached_loads = JoinSet::new();
        if self.app.config.precompile {
            // A shutdown does not wait for the compiles: they run on blocking
            // threads, which the binary does not wait for either.
            tokio::select! {
                rest = self.compile_before_accepting() => {
                    cached_loads.spawn(rest);
                }
                () = &mut shutdown => {
                    tracing::info!("shutting down before the precompile finished");
                    return Ok(());
                }
            }
        }

        // Held until `run` returns: dropping it stops watching.
        let _watcher = self.watch();
        // Dropped when `run` returns, which stops the certificate checks
        // and the redirect listener.
        let mut tls_tasks = JoinSet::new();
        let tls = self.tls.as_ref().map(|certificates| {
            tls_tasks.spawn(certificates.clone().watch());
            certificates.acceptor()
        });
        if let Some(redirect) = self.redirect.take() {
            let https_port = listener.local_addr().map_or(443, |a| a.port());
            tls_tasks.spawn(redirect::serve(
                self.app.config.clone(),
                redirect,
                https_port,
            ));
        }

        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        loop {
            let slot = tokio::select! {
                slot = connection_slots.clone().acquire_owned() => {
                    slot.expect("the connection semaphore is never closed")
                }
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_error(e).await?;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let open = self.app.stats.connection();
            // Responses are often one small write; don't let Nagle hold them.
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let first = FirstRequest::default();
            let seen = first.clone();
            let service = service_fn(move |request| {
                seen.arrived();
                service::handle(app.clone(), peer, request)
            });
            let (builder, tls, watcher) = (builder.clone(), tls.clone(), graceful.watcher());
            // The handshake is part of the connection, so the first-request
            // deadline bounds it and it holds the connection's slot.
            let connection = async move {
                let stream = match tls {
                    Some(acceptor) => Either::Right(acceptor.accept(stream).await?),
                    None => Either::Left(stream),
                };
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                watcher.watch(connection).await
            };
            connections.spawn(async move {
                match serve_until_first_request(connection, first, header_timeout).await {
                    Ended::Served(Ok(())) => {}
                    Ended::Served(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    Ended::NoRequest => {
                        tracing::debug!(%peer, "no request within the header timeout; connection closed");
                    }
                }
                // The slot frees only once the socket is closed.
                drop((slot, open));
            });
            // Reap finished connections so the set does not grow forever.
            while connections.try_join_next().is_some() {}
        }

        drop(listener);
        while connections.try_join_next().is_some() {}
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
        // The admin listener stays up through the drain, so the operator can
        // watch the in-flight requests go; it closes here.
        drop(admin);
        Ok(())
    }
}

/// What [`Server::precompile`] did.
#[derive(Debug, Default)]
pub struct PrecompileReport {
    /// Handlers compiled now.
    pub compiled: usize,
    /// Handlers whose code came from the disk cache.
    pub cached: usize,
    /// Handlers that failed, with why.
    pub failed: Vec<(PathBuf, LoadError)>,
}

impl PrecompileReport {
    /// Counts the results of a [`Loader::load_all`].
    fn add(&mut self, results: Vec<(PathBuf, Result<Arc<Handler>, LoadError>)>) {
        for (file, result) in results {
            match result {
                Ok(handler) if handler.provenance().from_disk_cache => self.cached += 1,
                Ok(_) => self.compiled += 1,
                Err(e) => self.failed.push((file, e)),
            }
        }
        self.failed.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

/// Why the server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting connections failed in a way that is not per-connection.
    #[error("cannot accept connections: {0}")]
    Accept(#[source] std::io::Error),
    /// A `wasmlet.toml` is broken, so the server did not start.
    #[error("{0}")]
    Site(#[from] crate::site::SiteError),
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
