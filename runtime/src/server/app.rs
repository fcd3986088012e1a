//! What every request needs, shared by all connections: the configuration,
//! the router and loader, the admission gate, the merged `wasmlet.toml`
//! files, and the per-handler caps and log buckets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::{Admission, HandlerLimit};
use crate::config::Config;
use crate::host::{GuestLog, LogLimits, LogRate};
use crate::loader::Loader;
use crate::request::Identity;
use crate::request_id::RequestIds;
use crate::router::Router;
use crate::site::{Policy, Site};
use crate::stats::Stats;
use crate::watcher::OpenWrites;

/// What every request needs, shared by all connections.
pub(crate) struct App {
    pub(crate) config: Config,
    /// URL → route, over the web root as it is now: replaced whole when a
    /// symlinked web root is switched to another target.
    pub(super) router: RwLock<Arc<Router>>,
    pub(crate) loader: Arc<Loader>,
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
    pub(crate) epoch: Arc<crate::webroot::Epoch>,
    /// Where source handlers build when there is no disk cache; deleted with
    /// the server.
    pub(super) _rust_scratch: Option<tempfile::TempDir>,
    /// Per-handler caps from `[limits] max-concurrency`, by handler file,
    /// with the limit each was made for.
    pub(crate) handler_limits: Mutex<HashMap<PathBuf, (u32, HandlerLimit)>>,
    /// Each handler's guest log bucket (`--log-rate`), by handler name (its
    /// path in the web root): shared by its requests, so many of them cannot
    /// flood the log either.
    pub(crate) log_rates: Mutex<HashMap<Arc<str>, Arc<LogRate>>>,
    /// The web root's handler files as the status page last walked them.
    pub(crate) status_files: super::status::HandlerFiles,
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

    pub(super) fn current_site(&self) -> Arc<Site> {
        self.site.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
