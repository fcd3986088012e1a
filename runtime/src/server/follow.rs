//! Following the web root while the server runs: the watcher's batches
//! refresh and forget handlers and reload the configuration, a web root
//! removed and made again is watched again, and a symlinked web root that
//! points somewhere new is served from its new target.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{App, Server};
use crate::config::Config;
use crate::router::Router;
use crate::site::Site;
use crate::watcher::{
    Change, ChangeKind, DEFAULT_DEBOUNCE, FALLBACK_POLL_INTERVAL, WatchError, WatchMode, Watcher,
};

impl Server {
    /// Starts the file watcher, if configured, feeding its changes to the
    /// loader: changed handlers start loading at once, removed ones are
    /// forgotten. A watcher that cannot start is logged, not fatal: requests
    /// still check their file's version. Watching stops when the returned
    /// guard drops.
    pub(super) fn watch(&self) -> Option<Watching> {
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
pub(super) struct Watching(tokio::task::AbortHandle);

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
