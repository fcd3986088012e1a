//! Warm instances for reusable handlers (ASP.NET's `IsReusable`): an
//! instance that finished a request cleanly waits here for the next one,
//! keeping its memory, so a handler can hold state between requests.
//!
//! Each instance serves one request at a time (it is taken out of the pool
//! for the request), an instance that trapped or timed out is never put
//! back, the pool keeps at most `pool-size` instances, and a sweeper drops
//! the ones idle past `idle-timeout` even when no request comes. One pool per
//! handler version: a new version starts with an empty pool, and the old
//! pool goes away with the old version.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use wasmtime::{Instance, Store};

use crate::host::Ctx;

/// An instance between requests.
pub(crate) struct Warm {
    pub(crate) store: Store<Ctx>,
    pub(crate) instance: Instance,
    idle_since: Instant,
}

impl Warm {
    pub(crate) fn new(store: Store<Ctx>, instance: Instance) -> Self {
        Self {
            store,
            instance,
            idle_since: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Idle {
    instances: Mutex<Vec<Warm>>,
    /// Whether a sweeper task is running for this pool.
    sweeping: AtomicBool,
}

/// The warm instances of one handler version.
#[derive(Default)]
pub struct Pool(Arc<Idle>);

impl Pool {
    /// The most recently used warm instance (its memory is likeliest to be
    /// in cache), if one is younger than `idle_timeout`.
    pub(crate) fn take(&self, idle_timeout: Duration) -> Option<Warm> {
        let mut idle = self.0.instances.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|w| w.idle_since.elapsed() < idle_timeout);
        idle.pop()
    }

    /// Puts `warm` back unless the pool already holds `max`.
    pub(crate) fn put(&self, mut warm: Warm, max: usize, idle_timeout: Duration) {
        warm.idle_since = Instant::now();
        {
            let mut idle = self.0.instances.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= max {
                return;
            }
            idle.push(warm);
        }
        if !self.0.sweeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep(Arc::downgrade(&self.0), idle_timeout));
        }
    }

    /// Warm instances waiting now.
    pub fn idle(&self) -> usize {
        self.0
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// Drops instances idle past `idle_timeout` until the pool is empty or gone.
async fn sweep(pool: Weak<Idle>, idle_timeout: Duration) {
    let tick = (idle_timeout / 2).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(tick).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.instances.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|w| w.idle_since.elapsed() < idle_timeout);
        if idle.is_empty() {
            // Cleared under the lock: a `put` that pushes after this starts
            // a new sweeper, and one that pushed before made the pool
            // non-empty, so this sweeper would not have stopped.
            pool.sweeping.store(false, Ordering::Release);
            return;
        }
    }
}
