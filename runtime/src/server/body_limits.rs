//! The limits on reading one request's body (`--max-body-size`,
//! `--body-timeout`), carried from the server to the guest's
//! `req_body_read` with the rest of the request.

use std::time::Duration;

use crate::config::{Config, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE};

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
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_BODY_SIZE,
            read_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}
