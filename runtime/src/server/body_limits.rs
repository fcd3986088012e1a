//! The limits on reading one request's body (`--max-body-size`,
//! `--body-timeout`), carried from the server to the guest's
//! `req_body_read`.
//!
//! They travel in a task-local set around each guest's task, because the
//! engine builds the request body from hyper's body alone; the body reads
//! them once, when the engine builds it at the start of the guest's task.

use std::future::Future;
use std::time::Duration;

use crate::config::{Config, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE};

tokio::task_local! {
    static BODY_LIMITS: BodyLimits;
}

/// How much of a request body a guest may read, and how long it waits for
/// each piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Bytes past this fail the read (`BODY`).
    pub max_size: u64,
    /// A read that waits this long for the next piece fails (`BODY`).
    pub read_timeout: Duration,
}

impl BodyLimits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Self {
            max_size: config.max_body_size,
            read_timeout: config.body_timeout,
        }
    }

    /// Runs `guest` (a guest's whole task) with these limits on its body.
    pub(crate) fn apply<F: Future>(self, guest: F) -> impl Future<Output = F::Output> {
        BODY_LIMITS.scope(self, guest)
    }

    /// The limits of the guest task running now: the ones [`apply`] set, or
    /// the defaults outside a server's guest task (a benchmark that runs a
    /// guest by hand).
    ///
    /// [`apply`]: BodyLimits::apply
    pub(crate) fn current() -> Self {
        BODY_LIMITS.try_with(|limits| *limits).unwrap_or_default()
    }
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_BODY_SIZE,
            read_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guest_task_sees_the_limits_set_around_it_and_others_the_defaults() {
        let tight = BodyLimits {
            max_size: 10,
            read_timeout: Duration::from_millis(5),
        };
        let seen = tight.apply(async { BodyLimits::current() }).await;
        assert_eq!(seen, tight);
        assert_eq!(BodyLimits::current(), BodyLimits::default());
    }
}
