//! The route table: request paths whose handler route is known, kept while
//! the watcher vouches for the web root ([`Epoch`]), so a request for a
//! known handler makes no file-system call instead of a resolution (three
//! to four `stat`s and a `realpath` of several `readlink`s).
//!
//! A change reaches the watcher's thread a little after the call that made
//! it returns: on a loaded machine, often after the next request (a test
//! that deletes a handler and asks for it at once saw it served one time in
//! four when only the watcher's events ended epochs). So the router first
//! [`look`](Epoch::look)s at the kernel's queue of changes, which the call
//! filled before it returned: a handler deleted, renamed away or shadowed
//! is resolved again by the very next request.
//!
//! An entry is made by a resolution on disk, and only when every path that
//! resolution looked at lies in real directories under the root (no
//! symlink on the way, below the root): those are watched, so any change
//! that could give the path another route (a handler deleted, renamed or
//! added beside it, a static file or directory that would win, a symlink
//! put in the way) is an event that ends the epoch, and with it every
//! entry. A symlink can point anywhere, and a change where it points makes
//! no event here: a route that looked through one is resolved on disk at
//! every request, as without a watcher.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::Route;
use crate::webroot::Epoch;

/// Most request paths the table holds per epoch. Every handler's few
/// spellings (`/a`, `/a.wat`, `/a/`) fit many times over; dynamic routes
/// give each parameter value its own entry, and a client walking through
/// values must not grow the table without bound: past this, paths are
/// resolved on disk until the next epoch empties the table.
pub(super) const ROUTE_TABLE_CAPACITY: usize = 4096;

/// Handler routes by request path (its decoded segments joined by `/`),
/// for one epoch.
#[derive(Debug)]
pub(super) struct Table {
    epoch: Arc<Epoch>,
    entries: RwLock<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// The epoch these entries were learnt in.
    epoch: u64,
    /// Each handler route.
    routes: HashMap<String, Route>,
}

impl Table {
    pub(super) fn new(epoch: Arc<Epoch>) -> Self {
        Self {
            epoch,
            entries: RwLock::default(),
        }
    }

    /// The epoch a resolution starting now belongs to, if one is vouched.
    pub(super) fn epoch(&self) -> Option<u64> {
        self.epoch.current()
    }

    /// Ends the epoch if the tree changed since the last look (see
    /// [`Epoch::look`]): called once per request, before [`get`](Self::get).
    pub(super) fn look(&self) {
        self.epoch.look();
    }

    /// The known route of `key` in the current epoch. No file-system call.
    pub(super) fn get(&self, key: &str) -> Option<Route> {
        let epoch = self.epoch.current()?;
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        if entries.epoch != epoch {
            return None;
        }
        entries.routes.get(key).cloned()
    }

    /// Keeps `route`, found on disk in `epoch`, if that epoch is still the
    /// current one (a change during the resolution may have made it wrong).
    pub(super) fn insert(&self, epoch: u64, key: String, route: &Route) {
        if !matches!(route, Route::Handler { .. }) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.current() != Some(epoch) {
            return;
        }
        if entries.epoch != epoch {
            entries.epoch = epoch;
            entries.routes.clear();
        }
        if entries.routes.len() < ROUTE_TABLE_CAPACITY {
            entries.routes.insert(key, route.clone());
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .routes
            .len()
    }
}

/// The paths one resolution on disk looked at, to tell whether its route
/// may be kept.
#[derive(Debug, Default)]
pub(super) struct Probes(std::cell::RefCell<Vec<PathBuf>>);

impl Probes {
    /// Notes that the resolution asks the file system about `path`.
    pub(super) fn saw(&self, path: &Path) {
        self.0.borrow_mut().push(path.to_owned());
    }

    /// Whether every path looked at, and each directory above it up to
    /// `root`, is not a symlink (or does not exist). Blocks (`lstat`).
    pub(super) fn through_real_directories(&self, root: &Path) -> bool {
        let mut checked = std::collections::HashSet::new();
        self.0.borrow().iter().all(|probed| {
            probed
                .ancestors()
                .take_while(|path| path.starts_with(root) && *path != root)
                .all(|path| {
                    if !checked.insert(path.to_owned()) {
                        return true;
                    }
                    std::fs::symlink_metadata(path).map_or(true, |meta| !meta.is_symlink())
                })
        })
    }
}
