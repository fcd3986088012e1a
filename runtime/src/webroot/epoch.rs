//! [`Epoch`]: which picture of the web root the file watcher vouches for.
//!
//! While a native watcher runs, every event it gets for the tree (a file or
//! directory created, removed, renamed, written or its metadata changed)
//! starts a new epoch. What a request learnt from the disk in an epoch (a
//! route, a handler's version) holds until the epoch ends, so the next
//! request for the same thing asks memory instead of the disk (the router
//! still checks the handler file's own version: see its route table). Without a
//! watcher, or with one that polls, lost events or failed, there is no
//! current epoch and every request asks the disk, as if nothing were known.
//!
//! What this cannot see: a change is known once the watcher's thread has
//! read its event, a few microseconds after the call that made it returns;
//! a request in that window is served as if it had come a moment earlier.
//! And only the tree under the root is watched: whoever trusts an epoch must
//! not have looked through a symlink (see the router's route table).

use std::sync::atomic::{AtomicU64, Ordering};

/// The current epoch of one server's web root, shared by the watcher (which
/// ends epochs), the router and the loader (which trust them).
#[derive(Debug, Default)]
pub struct Epoch {
    /// The epoch number times two, plus one while a watcher vouches for it:
    /// one load tells both, so nobody can see a number from one watcher with
    /// the vouching of another.
    state: AtomicU64,
}

/// Where a request's route or handler version came from, for the
/// `wasmlet_route_lookups_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The route table the watcher keeps: one `stat` of the handler file,
    /// no resolution (or a path refused by its text: no call at all).
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

    /// A watcher is now watching the whole tree: from here on it reports
    /// every change.
    pub fn vouch(&self) {
        self.update(|state| (state + 2) | 1);
    }

    /// The watcher stopped, failed or lost events: nothing is vouched for
    /// until one starts again.
    pub fn withdraw(&self) {
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
        let epoch = Epoch::default();
        assert_eq!(epoch.current(), None);
        epoch.vouch();
        let first = epoch.current().unwrap();
        assert_eq!(epoch.current(), Some(first));
        epoch.changed();
        let second = epoch.current().unwrap();
        assert_ne!(first, second);
        epoch.withdraw();
        assert_eq!(epoch.current(), None);
        epoch.changed();
        assert_eq!(epoch.current(), None);
        epoch.vouch();
        assert!(epoch.current().is_some_and(|third| third != second));
    }
}
