//! Warm instances for reusable handlers (ASP.NET's `IsReusable`): an
//! instance that finished a request cleanly waits here for the next one,
//! keeping its memory, so a handler can hold state between requests.
//!
//! Each instance serves one request at a time (it is taken out of the pool
//! for the request), an instance that trapped or timed out is never put
//! back, nor one that has served `max-requests`, the pool keeps at most
//! `pool-size` instances, and a sweeper drops the ones idle past
//! `idle-timeout` even when no request comes. One pool per handler version:
//! a new version starts with an empty pool, and the old pool goes away with
//! the old version. Core modules keep a store and instance here, WASI 0.2
//! components a store and their `Proxy` (WASI 0.3 instances, which serve
//! several requests at once, are kept by `shared.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::site::{InstancePolicy, Policy};

/// An instance between requests: for a core module its store and
/// `Instance`, for a component its store and bindings.
struct Warm<T> {
    instance: T,
    ticket: Ticket,
    idle_since: Instant,
}

/// What the pool knows of one reused instance, which travels with it while
/// it serves a request.
pub(crate) struct Ticket {
    /// The policy the instance was made under: it serves only requests
    /// under the same one (a configuration reload starts new instances).
    policy: Arc<Policy>,
    /// Requests it has served.
    served: u32,
}

impl Ticket {
    /// The ticket of a new instance made under `policy`.
    pub(crate) fn new(policy: Arc<Policy>) -> Self {
        Self { policy, served: 0 }
    }
}

struct Idle<T> {
    instances: Mutex<Vec<Warm<T>>>,
    /// Whether a sweeper task is running for this pool.
    sweeping: AtomicBool,
}

/// The warm instances of one handler version.
pub struct Pool<T>(Arc<Idle<T>>);

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self(Arc::new(Idle {
            instances: Mutex::default(),
            sweeping: AtomicBool::new(false),
        }))
    }
}

impl<T: Send + 'static> Pool<T> {
    /// The most recently used warm instance made under `policy` (its memory
    /// is likeliest to be in cache), if one is younger than its idle
    /// timeout. Instances of an older policy are dropped.
    pub(crate) fn take(&self, policy: &Arc<Policy>) -> Option<(T, Ticket)> {
        let idle_timeout = policy.instances.idle_timeout;
        let mut idle = self.0.instances.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|w| {
            w.idle_since.elapsed() < idle_timeout && Arc::ptr_eq(&w.ticket.policy, policy)
        });
        idle.pop().map(|w| (w.instance, w.ticket))
    }

    /// Puts `warm` back after a request it served cleanly, unless it has
    /// served its `max-requests` or the pool already holds `pool-size`.
    pub(crate) fn put(&self, instance: T, mut ticket: Ticket) {
        let InstancePolicy {
            pool_size,
            idle_timeout,
            max_requests,
            ..
        } = ticket.policy.instances;
        ticket.served = ticket.served.saturating_add(1);
        if ticket.served >= max_requests {
            return;
        }
        let warm = Warm {
            instance,
            ticket,
            idle_since: Instant::now(),
        };
        {
            let mut idle = self.0.instances.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= pool_size as usize {
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
async fn sweep<T>(pool: Weak<Idle<T>>, idle_timeout: Duration) {
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
