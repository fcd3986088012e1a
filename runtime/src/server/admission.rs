//! Admission control: a cap on guest executions running at once, with a
//! short bounded queue in front of it. A request that finds every slot busy
//! waits in the queue for up to the queue timeout; one that finds the queue
//! full, or waits too long, is turned away ([`Busy`], which the server
//! answers with `503` and `Retry-After`) before any guest code runs.
//!
//! The global cap bounds memory under load (each execution holds an
//! instance); a [`HandlerLimit`] caps one handler on top of it, so one slow
//! handler cannot take every slot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::stats::Stats;

/// The server-wide gate in front of guest executions.
pub struct Admission {
    /// One permit per execution slot (`--max-concurrency`).
    slots: Arc<Semaphore>,
    /// One permit per place in the queue (`--max-queue`). Taken without
    /// waiting: a full queue turns a request away at once.
    queue: Semaphore,
    /// Longest a queued request waits for its slots (`--queue-timeout`).
    queue_timeout: Duration,
    /// Shows the queue's depth as a metric.
    stats: Arc<Stats>,
}

/// A cap on one handler's executions at once, checked before the global one.
/// Cloning shares the cap: every request to the handler must use the same
/// `HandlerLimit`.
#[derive(Clone, Debug)]
pub struct HandlerLimit {
    slots: Arc<Semaphore>,
}

impl HandlerLimit {
    /// At most `limit` executions of the handler at once.
    pub fn new(limit: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit as usize)),
        }
    }
}

/// The right to run one guest; the slots free when it drops.
#[derive(Debug)]
#[must_use = "the slot is freed as soon as the permit drops"]
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _handler: Option<OwnedSemaphorePermit>,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// Every slot was busy and the queue was full.
    #[error("every execution slot is busy and the queue is full (--max-concurrency, --max-queue)")]
    QueueFull,
    /// The request waited in the queue for the whole queue timeout.
    #[error("no execution slot freed within --queue-timeout")]
    QueueTimeout,
}

impl Admission {
    /// `limit` executions at once, `queue` requests waiting for one, each for
    /// at most `queue_timeout`.
    pub fn new(limit: u32, queue: u32, queue_timeout: Duration, stats: Arc<Stats>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit as usize)),
            queue: Semaphore::new(queue as usize),
            queue_timeout,
            stats,
        }
    }

    /// Waits for an execution slot: the handler's own (when `per_handler`
    /// caps it) and then a global one. Returns at once when both are free or
    /// when the queue is full; otherwise waits in the queue, first come first
    /// served, for up to the queue timeout.
    pub async fn admit(&self, per_handler: Option<&HandlerLimit>) -> Result<Permit, Busy> {
        if let Some(permit) = self.try_admit(per_handler) {
            return Ok(permit);
        }
        let Ok(_place) = self.queue.try_acquire() else {
            return Err(Busy::QueueFull);
        };
        let _queued = self.stats.queued();
        // The handler's slot first: a request waiting for its handler must
        // not sit on a global slot that another handler could use.
        let wait = async {
            let handler = match per_handler {
                Some(limit) => Some(acquire(&limit.slots).await),
                None => None,
            };
            Permit {
                _global: acquire(&self.slots).await,
                _handler: handler,
            }
        };
        tokio::time::timeout(self.queue_timeout, wait)
            .await
            .map_err(|_| Busy::QueueTimeout)
    }

    /// Both slots without waiting, or none. The semaphores are fair, so this
    /// cannot overtake a request already in the queue: a freed slot goes to
    /// the first waiter.
    fn try_admit(&self, per_handler: Option<&HandlerLimit>) -> Option<Permit> {
        let handler = match per_handler {
            Some(limit) => Some(try_acquire(&limit.slots)?),
            None => None,
        };
        Some(Permit {
            _global: try_acquire(&self.slots)?,
            _handler: handler,
        })
    }

    /// Execution slots free right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

fn try_acquire(slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    match slots.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(TryAcquireError::NoPermits) => None,
        Err(TryAcquireError::Closed) => unreachable!("admission semaphores are never closed"),
    }
}

async fn acquire(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    slots
        .clone()
        .acquire_owned()
        .await
        .expect("admission semaphores are never closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limit: u32, queue: u32, timeout_ms: u64) -> Admission {
        Admission::new(
            limit,
            queue,
            Duration::from_millis(timeout_ms),
            Arc::new(Stats::new()),
        )
    }

    #[tokio::test]
    async fn requests_within_the_cap_are_admitted_at_once() {
        let gate = admission(2, 0, 1000);
        let a = gate.admit(None).await.unwrap();
        let _b = gate.admit(None).await.unwrap();
        assert_eq!(gate.available(), 0);
        drop(a);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test]
    async fn without_a_queue_a_full_server_turns_requests_away_at_once() {
        let gate = admission(1, 0, 60_000);
        let _held = gate.admit(None).await.unwrap();
        let start = std::time::Instant::now();
        assert_eq!(gate.admit(None).await.unwrap_err(), Busy::QueueFull);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_queued_request_gets_the_next_free_slot() {
        let gate = Arc::new(admission(1, 1, 60_000));
        let held = gate.admit(None).await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit(None).await.map(drop) }
        });
        // Until the waiter is queued, the gauge says so.
        while gate.stats.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        // A third finds the one place in the queue taken.
        assert_eq!(gate.admit(None).await.unwrap_err(), Busy::QueueFull);
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(gate.stats.queue_depth(), 0);
    }

    #[tokio::test]
    async fn a_queued_request_gives_up_at_the_queue_timeout() {
        let gate = admission(1, 4, 100);
        let _held = gate.admit(None).await.unwrap();
        let start = std::time::Instant::now();
        assert_eq!(gate.admit(None).await.unwrap_err(), Busy::QueueTimeout);
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(gate.stats.queue_depth(), 0, "the queue place is given back");
    }

    #[tokio::test]
    async fn a_handler_limit_caps_its_handler_and_leaves_the_rest_to_others() {
        let gate = admission(2, 0, 1000);
        let slow = HandlerLimit::new(1);
        let first = gate.admit(Some(&slow)).await.unwrap();
        assert_eq!(
            gate.admit(Some(&slow)).await.unwrap_err(),
            Busy::QueueFull,
            "the handler is at its own cap"
        );
        // The refused request holds no global slot: another handler gets it.
        let _other = gate.admit(None).await.unwrap();
        drop(first);
        let _again = gate.admit(Some(&slow)).await.unwrap();
        // Both global slots are taken now, whatever the handler's cap says.
        assert_eq!(gate.admit(None).await.unwrap_err(), Busy::QueueFull);
    }

    #[tokio::test]
    async fn a_request_queued_for_its_handler_holds_no_global_slot() {
        let gate = Arc::new(admission(2, 4, 60_000));
        let slow = HandlerLimit::new(1);
        let held = gate.admit(Some(&slow)).await.unwrap();
        let waiter = tokio::spawn({
            let (gate, slow) = (gate.clone(), slow.clone());
            async move { gate.admit(Some(&slow)).await.map(drop) }
        });
        while gate.stats.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        // The queued request waits on its handler, so the other global slot
        // is still there for another handler.
        let _other = gate.admit(None).await.unwrap();
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }
}
