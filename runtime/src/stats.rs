//! Live counters, shared by the server and whoever watches it (tests, and
//! later the metrics endpoint). Relaxed atomics: each counter is independent
//! and read for reporting, never to synchronise.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters a running server keeps.
#[derive(Debug, Default)]
pub struct Stats {
    compiles: AtomicU64,
    requests: AtomicU64,
    live_instances: AtomicU64,
}

impl Stats {
    /// Handler compiles started (each distinct file version compiles once).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Guest instances alive right now.
    pub fn live_instances(&self) -> u64 {
        self.live_instances.load(Ordering::Relaxed)
    }

    pub(crate) fn compile_started(&self) {
        self.compiles.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_received(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an instance as live until the guard drops.
    pub(crate) fn instance(&self) -> InstanceGuard<'_> {
        self.live_instances.fetch_add(1, Ordering::Relaxed);
        InstanceGuard(self)
    }
}

/// Decrements the live-instance count when the instance's store is gone.
pub(crate) struct InstanceGuard<'a>(&'a Stats);

impl Drop for InstanceGuard<'_> {
    fn drop(&mut self) {
        self.0.live_instances.fetch_sub(1, Ordering::Relaxed);
    }
}
