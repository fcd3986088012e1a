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
//! a body ([`BodyLimits`]). With `--tls-cert`, each connection's TLS
//! handshake runs inside the same first-request deadline and holds a
//! connection slot like any other connection ([`tls`]).

mod access;
mod admin;
mod admission;
mod body;
mod body_limits;
mod component;
mod connection;
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
pub use body::{BodyError, CLIENT_GONE_GRACE, GuestBody, ResponseBody};
pub use body_limits::BodyLimits;
pub(crate) use body_limits::{BodyReadError, LimitedBody};
pub use component::ComponentBody;
use connection::{Ended, FirstRequest, serve_until_first_request};
pub use tls::TlsError;

use crate::config::Config;
use crate::engine::WasmEngine;
use crate::error::{ConfigError, LoadError, ServeError};
use crate::host::{GuestLog, Identity, LogLimits, LogRate};
use crate::loader::{DiskCache, Handler, Loader, RustBuilder};
use crate::request_id::RequestIds;
use crate::router::Router;
use crate::site::{Policy, Site, SiteError};
use crate::stats::Stats;
use crate::watcher::{
    Change, ChangeKind, DEFAULT_DEBOUNCE, FALLBACK_POLL_INTERVAL, OpenWrites, WatchError,
    WatchMode, Watcher,
};
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

/// What every request needs, shared by all connections.
pub(crate) struct App {
    pub(crate) config: Config,
    /// URL → route, over the web root as it is now: replaced whole when a
    /// symlinked web root is switched to another target.
    router: RwLock<Arc<Router>>,
    pub(crate) loader: Arc<Loader>,
    pub(crate) engine: Arc<WasmEngine>,
    pub(crate) stats: Arc<Stats>,
    /// Gives each request its id (or keeps the one a proxy gave it).
    pub(crate) request_ids: RequestIds,
    /// The cap on guest executions at once, and its queue.
    pub(crate) admission: Admission,
    /// The `wasmlet.toml` files, merged; swapped whole on a good reload.
    /// Shared with the loader, which tries new versions under its limits.
    pub(crate) site: Arc<RwLock<Arc<Site>>>,
    /// Handler files a writer holds open, kept by the watcher, read by the
    /// loader.
    pub(crate) open_writes: Arc<OpenWrites>,
    /// The web root's epoch: ended by the watcher at every change, trusted
    /// by the router's table and the loader until then.
    pub(crate) epoch: Arc<Epoch>,
    /// Where source handlers build when there is no disk cache; deleted with
    /// the server.
    _rust_scratch: Option<tempfile::TempDir>,
    /// Per-handler caps from `[limits] max-concurrency`, by handler file,
    /// with the limit each was made for.
    pub(crate) handler_limits:
        std::sync::Mutex<std::collections::HashMap<PathBuf, (u32, HandlerLimit)>>,
    /// Each handler's guest log bucket (`--log-rate`), by handler name (its
    /// path in the web root): shared by its requests, so many of them cannot
    /// flood the log either.
    pub(crate) log_rates: std::sync::Mutex<std::collections::HashMap<Arc<str>, Arc<LogRate>>>,
}

impl App {
    /// The policy of the handler at `file` under the current configuration.
    pub(crate) fn policy(&self, file: &Path) -> Arc<Policy> {
        self.site
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policy(file)
    }

    /// The shared cap of the handler at `file`, `limit` executions at once
    /// (`[limits] max-concurrency`). A changed limit starts a new cap;
    /// requests running under the old one finish under it.
    pub(crate) fn handler_limit(&self, file: &Path, limit: u32) -> HandlerLimit {
        let mut limits = self
            .handler_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match limits.get(file) {
            Some((current, cap)) if *current == limit => cap.clone(),
            _ => {
                let cap = HandlerLimit::new(limit);
                limits.insert(file.to_owned(), (limit, cap.clone()));
                cap
            }
        }
    }

    /// The log of one request of `who`: the server's per-request limits,
    /// and its handler's shared bucket.
    pub(crate) fn guest_log(&self, who: Identity) -> GuestLog {
        let rate = self
            .log_rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(who.handler.clone())
            .or_insert_with(|| Arc::new(LogRate::new(self.config.log_rate)))
            .clone();
        GuestLog::new(who, LogLimits::of(&self.config), rate)
    }

    /// The router over the web root as it is now.
    pub(crate) fn router(&self) -> Arc<Router> {
        self.router
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn current_site(&self) -> Arc<Site> {
        self.site.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
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
        let disk_cache = config
            .cache_dir
            .as_ref()
            .and_then(|dir| match DiskCache::open(dir) {
                Ok(cache) => Some(Arc::new(cache)),
                Err(e) => {
                    // The cache only saves compile time; serving goes on without it.
                    tracing::warn!(error = %e, "the disk cache is off");
                    None
                }
            });
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
            Some(dir) => (Some(dir.join("rust")), None),
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
            .with_trial(site.clone(), &config);
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
            engine,
            stats,
            request_ids: RequestIds::new(),
            admission,
            site,
            open_writes,
            epoch,
            handler_limits: Default::default(),
            log_rates: Default::default(),
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
    /// and `--precompile`.
    pub async fn precompile(
        &self,
        progress: impl FnMut(&Path, &Result<Arc<Handler>, LoadError>),
    ) -> PrecompileReport {
        let files = crate::webroot::handler_files(self.app.router().root());
        let results = self.app.loader.load_all(files, progress).await;
        let mut report = PrecompileReport::default();
        for (file, result) in results {
            match result {
                Ok(handler) if handler.provenance().from_disk_cache => report.cached += 1,
                Ok(_) => report.compiled += 1,
                Err(e) => report.failed.push((file, e)),
            }
        }
        report.failed.sort_by(|a, b| a.0.cmp(&b.0));
        report
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
        if self.app.config.precompile {
            // A shutdown does not wait for the compiles: they run on blocking
            // threads, which the binary does not wait for either.
            tokio::select! {
                report = self.precompile(|_, _| {}) => tracing::info!(
                    compiled = report.compiled,
                    cached = report.cached,
                    failed = report.failed.len(),
                    "precompiled the web root"
                ),
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

impl Server {
    /// Starts the file watcher, if configured, feeding its changes to the
    /// loader: changed handlers start loading at once, removed ones are
    /// forgotten. A watcher that cannot start is logged, not fatal: requests
    /// still check their file's version. Watching stops when the returned
    /// guard drops.
    fn watch(&self) -> Option<Watching> {
        let mode = self.app.config.watch?;
        let (watcher, changes) = match start_watcher(&self.app, mode) {
            Ok(started) => started,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the web root; changes are picked up on each request");
                return None;
            }
        };
        tracing::debug!(mode = ?watcher.mode(), "watching the web root");
        let task = tokio::spawn(follow(self.app.clone(), mode, watcher, changes));
        Some(Watching(task.abort_handle()))
    }
}

/// Keeps the watching task, and so the watcher it owns, alive.
struct Watching(tokio::task::AbortHandle);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Changes = tokio::sync::mpsc::UnboundedReceiver<Vec<Change>>;

/// A watcher over the web root, with the channel its batches arrive on.
fn start_watcher(app: &App, mode: WatchMode) -> Result<(Watcher, Changes), WatchError> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Change>>();
    let ignore = app.config.cache_dir.iter().cloned().collect();
    let watcher = Watcher::start_following_writes(
        app.router().root(),
        mode,
        DEFAULT_DEBOUNCE,
        ignore,
        app.open_writes.clone(),
        app.epoch.clone(),
        move |batch| {
            // The watcher's thread must not block; the loader work happens
            // on the runtime.
            let _ = tx.send(batch);
        },
    )?;
    Ok((watcher, rx))
}

/// Applies the watcher's batches. A web root removed (or replaced by a new
/// directory of the same name) takes its watch with it, silently: that is
/// logged as an error, and once the root is back it is watched again and
/// its configuration reread. A web root given as a symlink is followed: when
/// the link points somewhere new (`ln -sfn releases/v2 current`), the new
/// target is served and watched instead.
async fn follow(app: Arc<App>, mode: WatchMode, mut watcher: Watcher, mut changes: Changes) {
    loop {
        let root = app.router().root().to_path_buf();
        let watched = directory_identity(&root);
        // The link's target is not watched (it may be anywhere, and the
        // switch is a rename in its directory): look at it every tick.
        let mut tick = tokio::time::interval(FALLBACK_POLL_INTERVAL);
        let switched = loop {
            tokio::select! {
                batch = changes.recv() => {
                    let Some(batch) = batch else { break None };
                    apply(&app, batch).await;
                    if directory_identity(&root) != watched {
                        break None;
                    }
                }
                _ = tick.tick() => {
                    if let Some(target) = switched_target(&app.config, &root) {
                        break Some(target);
                    }
                }
            }
        };
        drop(watcher);
        if let Some(target) = switched {
            reroot(&app, &root, &target).await;
            (watcher, changes) = loop {
                match start_watcher(&app, mode) {
                    Ok(started) => break started,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the web root yet");
                        tokio::time::sleep(FALLBACK_POLL_INTERVAL).await;
                    }
                }
            };
            continue;
        }
        tracing::error!(
            root = %root.display(),
            "the web root was removed or replaced, and with it the file watch: changes are not seen \
             until it is back; looking for it every {}",
            humantime::format_duration(FALLBACK_POLL_INTERVAL)
        );
        app.loader.forget(&root);
        (watcher, changes) = loop {
            tokio::time::sleep(FALLBACK_POLL_INTERVAL).await;
            if let Some(target) = switched_target(&app.config, &root) {
                reroot(&app, &root, &target).await;
            }
            if !app.router().root().is_dir() {
                continue;
            }
            match start_watcher(&app, mode) {
                Ok(started) => break started,
                Err(e) => tracing::debug!(error = %e, "the web root is not watchable yet"),
            }
        };
        tracing::info!(root = %app.router().root().display(), "the web root is back; watching it again");
        reload_site(&app).await;
    }
}

/// Where a symlinked web root points now, if that is a directory other than
/// `current`.
fn switched_target(config: &Config, current: &Path) -> Option<PathBuf> {
    let link = config.webroot_link.as_ref()?;
    std::fs::canonicalize(link)
        .ok()
        .filter(|target| target != current && target.is_dir())
}

/// Serves `target`, the symlinked web root's new target, instead of `old`:
/// its configuration is read first, and a broken one keeps the old root
/// serving (and is tried again at the next tick). Requests in flight finish
/// on the handlers they hold.
async fn reroot(app: &App, old: &Path, target: &Path) {
    let current = app.current_site();
    match Site::load_at(&app.config, target, Some(&current)).await {
        Ok(site) => {
            *app.router.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(Router::watched(target.to_path_buf(), app.epoch.clone()));
            *app.site.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(site);
            app.loader.forget(old);
            tracing::info!(
                from = %old.display(),
                to = %target.display(),
                "the web root's link points somewhere new; serving its new target"
            );
        }
        Err(e) => tracing::error!(
            to = %target.display(),
            error = %e,
            "the web root's link points somewhere new, but its configuration does not load; \
             still serving the old target"
        ),
    }
}

/// The device, inode and birth time of `dir`, if it is there: a directory
/// removed and made again under the same name is another directory, though
/// ext4 hands it the freed inode number at once.
fn directory_identity(dir: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|meta| (meta.dev(), meta.ino(), meta.created().ok()))
}

/// One batch of the watcher's changes, in order.
async fn apply(app: &App, batch: Vec<Change>) {
    let mut config_changed = false;
    for change in batch {
        match change.kind {
            ChangeKind::Removed => app.loader.forget(&change.path),
            ChangeKind::Changed => {
                tracing::debug!(file = %change.path.display(), "handler changed on disk");
                app.loader.refresh(&change.path);
            }
            ChangeKind::Config => config_changed = true,
        }
    }
    if config_changed {
        reload_site(app).await;
    }
}

/// Rereads the configuration after a `wasmlet.toml` changed. The new one
/// replaces the old only if every file in it is good; otherwise the old one
/// keeps serving and the error is logged where it points.
async fn reload_site(app: &App) {
    if let Err(e) = app.config.check_outside_webroot() {
        tracing::error!(error = %e, "the configuration did not reload; keeping the previous one");
        return;
    }
    let current = app.current_site();
    match Site::load_at(&app.config, app.router().root(), Some(&current)).await {
        Ok(site) => {
            tracing::info!(files = site.files().len(), "configuration reloaded");
            *app.site.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(site);
        }
        Err(e) => {
            tracing::error!(error = %e, "the configuration did not reload; keeping the previous one");
        }
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
