//! The route table: request paths whose handler route is known, kept while
//! the watcher vouches for the web root ([`Epoch`]), so a request for a
//! known handler costs one `stat` of its file instead of a resolution (three
//! to four `stat`s and a `realpath` of several `readlink`s).
//!
//! The `stat` is there because an event reaches the watcher's thread a
//! little after the call that made it returns: on a loaded machine, often
//! after the next request (a test that deletes a handler and asks for it at
//! once saw it served one time in four). The handler file's own version
//! (inode, size, times) is checked, so a handler deleted, renamed away or
//! replaced is resolved again by the very next request. What only the epoch
//! covers is a new file that would win over a known route (a static file, a
//! handler with fewer dynamic segments): that is seen once its event is read.
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
use crate::webroot::{Epoch, Version};

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
    /// Each route with the version its handler file had when it was found.
    routes: HashMap<String, (Route, Version)>,
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

    /// The known route of `key` in the current epoch, if its handler file
    /// is still the version it was. Blocks (one `stat`).
    pub(super) fn get(&self, key: &str) -> Option<Route> {
        let epoch = self.epoch.current()?;
        let (route, version) = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if entries.epoch != epoch {
                return None;
            }
            entries.routes.get(key).cloned()?
        };
        let Route::Handler { file, .. } = &route else {
            return None;
        };
        (Version::read(file).ok() == Some(version)).then_some(route)
    }

    /// Keeps `route`, found on disk in `epoch`, if that epoch is still the
    /// current one (a change during the resolution may have made it wrong).
    pub(super) fn insert(&self, epoch: u64, key: String, route: &Route) {
        let Route::Handler { file, .. } = route else {
            return;
        };
        let Ok(version) = Version::read(file) else {
            return;
        };
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.current() != Some(epoch) {
            return;
        }
        if entries.epoch != epoch {
            entries.epoch = epoch;
            entries.routes.clear();
        }
        if entries.routes.len() < ROUTE_TABLE_CAPACITY {
            entries.routes.insert(key, (route.clone(), version));
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
