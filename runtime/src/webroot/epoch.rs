//! [`Epoch`]: which picture of the web root the file watcher vouches for.
//!
//! While a native watcher vouches for the tree, every change in it (a file
//! or directory created, removed, renamed, written or its metadata changed)
//! starts a new epoch, as the tripwire reports it. What a request learnt from the disk in an epoch (a
//! route, a handler's version) holds until the epoch ends, so the next
//! request for the same thing asks memory instead of the disk. Without a
//! watcher, or with one that polls, lost events or failed, there is no
//! current epoch and every request asks the disk, as if nothing were known.
//!
//! The watcher's thread hears of a change a little after the call that made
//! it returns. So that a request never trusts an epoch that has in fact
//! ended, each request first [`look`](Epoch::look)s at the
//! tripwire (`webroot/tripwire.rs`): the kernel's queue of changes, filled
//! inside the call that made them, read without blocking. Only the tree
//! under the root is watched: whoever trusts an epoch must not have looked
//! through a symlink (see the router's route table).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

#[cfg(target_os = "linux")]
use super::tripwire::Tripwire;

/// Without inotify there is no tripwire: nothing is vouched for, and every
/// request asks the disk.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
struct Tripwire;

#[cfg(not(target_os = "linux"))]
impl Tripwire {
    fn arm(_: &Path, _: &[PathBuf]) -> std::io::Result<Self> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn tripped(&mut self) -> std::io::Result<bool> {
        Ok(true)
    }
}

/// The current epoch of one server's web root, shared by the watcher (which
/// ends epochs), the router and the loader (which trust them).
#[derive(Debug, Default)]
pub struct Epoch {
    /// The epoch number times two, plus one while a watcher vouches for it:
    /// one load tells both, so nobody can see a number from one watcher with
    /// the vouching of another.
    state: AtomicU64,
    /// Armed while a watcher vouches (Linux only: elsewhere nothing is
    /// vouched for).
    tripwire: Mutex<Option<Tripwire>>,
}

/// Where a request's route or handler version came from, for the
/// `wasmlet_route_lookups_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The route table the watcher keeps: no file-system call (or a path
    /// refused by its text).
    Table = 0,
    /// The file system.
    Disk = 1,
}

impl Epoch {
    /// The current epoch, if a watcher vouches for it.
    pub fn current(&self) -> Option<u64> {
        let state = self.state.load(Ordering::SeqCst);
        (state & 1 == 1).then_some(state >> 1)
    }

    /// Something in the tree changed (or may have): what was learnt before
    /// no longer holds.
    pub fn changed(&self) {
        self.state.fetch_add(2, Ordering::SeqCst);
    }

    /// Ends the epoch if anything changed since the last look: the kernel
    /// knows of every change made before this call, even one the watcher has
    /// not heard of yet. Called once per request, before what it learnt in
    /// an epoch is trusted. Costs one `read` of an empty queue; no
    /// file-system call.
    pub fn look(&self) {
        let mut tripwire = self.tripwire.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(wire) = tripwire.as_mut() else {
            return;
        };
        // Ended while the lock is held: a request that looks meanwhile waits,
        // instead of finding the queue emptied and trusting the old epoch.
        match wire.tripped() {
            Ok(false) => {}
            Ok(true) => self.changed(),
            Err(error) => {
                tracing::warn!(%error, "the web root's tripwire failed: requests ask the disk until the watcher restarts");
                *tripwire = None;
                self.update(|state| (state + 2) & !1);
            }
        }
    }

    /// A watcher is now watching the whole tree under `root` (canonical),
    /// but `ignore`: from here on it reports every change there. Arms the
    /// tripwire first (a walk of the tree); if it cannot be armed, nothing is
    /// vouched for. Blocks.
    pub fn vouch(&self, root: &Path, ignore: &[PathBuf]) {
        let mut tripwire = self.tripwire.lock().unwrap_or_else(PoisonError::into_inner);
        match Tripwire::arm(root, ignore) {
            Ok(wire) => {
                *tripwire = Some(wire);
                self.update(|state| (state + 2) | 1);
            }
            Err(error) => {
                tracing::warn!(%error, root = %root.display(), "cannot watch the web root for the route table: every request asks the disk; raise fs.inotify.max_user_watches if the limit is reached");
                *tripwire = None;
                self.update(|state| (state + 2) & !1);
            }
        }
    }

    /// The watcher stopped, failed or lost events: nothing is vouched for
    /// until one starts again.
    pub fn withdraw(&self) {
        let mut tripwire = self.tripwire.lock().unwrap_or_else(PoisonError::into_inner);
        *tripwire = None;
        self.update(|state| (state + 2) & !1);
    }

    fn update(&self, f: impl Fn(u64) -> u64) {
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| Some(f(state)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vouched_epoch_is_current_and_every_change_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let epoch = Epoch::default();
        assert_eq!(epoch.current(), None);
        epoch.vouch(&root, &[]);
        let first = epoch.current().unwrap();
        assert_eq!(epoch.current(), Some(first));
        epoch.changed();
        let second = epoch.current().unwrap();
        assert_ne!(first, second);
        epoch.withdraw();
        assert_eq!(epoch.current(), None);
        epoch.changed();
        assert_eq!(epoch.current(), None);
        epoch.vouch(&root, &[]);
        let third = epoch.current().unwrap();
        assert_ne!(third, second);
        // A change the watcher has not reported yet ends it at the next look.
        epoch.look();
        assert_eq!(epoch.current(), Some(third));
        std::fs::write(root.join("h.wat"), "(module)").unwrap();
        epoch.look();
        assert!(epoch.current().is_some_and(|fourth| fourth != third));
    }
}
