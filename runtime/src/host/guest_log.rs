//! What a guest's log lines may cost the operator's disk: the core ABI's
//! `log` and a component's stdout and stderr both go through one
//! [`GuestLog`] per request, which bounds them twice:
//! - per request, in lines and bytes (`--max-log-lines`, `--max-log-bytes`),
//!   so one request cannot write a flood;
//! - per handler over time, with a token bucket (`--log-rate` bytes a second,
//!   holding one second's worth), so many requests cannot either.
//!
//! A line past either is dropped and counted; when the request ends, one
//! line says how many were dropped and which limit dropped them. That line
//! is not itself limited: there is at most one per request, as there is one
//! access line.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::Level;

pub use crate::config::MAX_LOG_LINE;
use crate::request::Identity;

/// The per-request bounds (`--max-log-bytes`, `--max-log-lines`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLimits {
    pub(crate) bytes: u64,
    pub(crate) lines: u32,
}

impl LogLimits {
    /// The server's limits.
    pub(crate) fn of(config: &crate::Config) -> Self {
        Self {
            bytes: config.max_log_bytes,
            lines: config.max_log_lines,
        }
    }
}

/// One handler's log rate: a token bucket of bytes, refilled continuously at
/// `rate` a second up to one second's worth. Shared by all the handler's
/// requests.
pub(crate) struct LogRate {
    /// Bytes a second, and the bucket's size.
    rate: u64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl LogRate {
    /// A full bucket for `rate` bytes a second.
    pub(crate) fn new(rate: u64) -> Self {
        Self {
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate as f64,
                refilled: Instant::now(),
            }),
        }
    }

    /// The bytes a second this bucket was made for.
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    /// Takes `bytes` from the bucket if it holds that many.
    fn take(&self, bytes: usize) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let capacity = self.rate as f64;
        let earned = now.duration_since(bucket.refilled).as_secs_f64() * capacity;
        bucket.tokens = (bucket.tokens + earned).min(capacity);
        bucket.refilled = now;
        let cost = bytes as f64;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// One request's guest log: who writes, what it may still write, and what
/// was dropped.
pub(crate) struct GuestLog {
    who: Identity,
    limits: LogLimits,
    rate: Arc<LogRate>,
    spent: Mutex<Spent>,
}

/// What one request has written and dropped so far.
#[derive(Default)]
struct Spent {
    lines: u32,
    bytes: u64,
    /// Lines dropped past the request's own limits.
    over_request: u64,
    /// Lines dropped because the handler's bucket was empty.
    over_rate: u64,
}

impl GuestLog {
    /// The log of one request of `who`, spending from its handler's `rate`.
    pub(crate) fn new(who: Identity, limits: LogLimits, rate: Arc<LogRate>) -> Self {
        Self {
            who,
            limits,
            rate,
            spent: Mutex::new(Spent::default()),
        }
    }

    /// Logs one line from the guest at `level` (`stream` names a
    /// component's stdout or stderr), unless a limit drops it. `text` is at
    /// most [`MAX_LOG_LINE`] bytes; `cut` says the guest wrote more.
    pub(crate) fn line(&self, level: Level, stream: Option<&'static str>, text: &str, cut: bool) {
        // A line the log level filters out costs nothing, so it spends no
        // budget either.
        let enabled = match level {
            Level::ERROR => tracing::enabled!(target: "wasmlet::guest", Level::ERROR),
            Level::WARN => tracing::enabled!(target: "wasmlet::guest", Level::WARN),
            Level::INFO => tracing::enabled!(target: "wasmlet::guest", Level::INFO),
            _ => tracing::enabled!(target: "wasmlet::guest", Level::DEBUG),
        };
        if !enabled || !self.admit(text.len()) {
            return;
        }
        let cut = if cut { " …" } else { "" };
        let handler = &*self.who.handler;
        let request_id = &*self.who.request_id;
        // `tracing` levels are static per call site, hence one macro per
        // level. The handler and request id are fields, not part of the
        // message, so a JSON log keeps them apart from what the guest wrote.
        match level {
            Level::ERROR => {
                tracing::error!(target: "wasmlet::guest", handler, %request_id, stream, "{text}{cut}");
            }
            Level::WARN => {
                tracing::warn!(target: "wasmlet::guest", handler, %request_id, stream, "{text}{cut}");
            }
            Level::INFO => {
                tracing::info!(target: "wasmlet::guest", handler, %request_id, stream, "{text}{cut}");
            }
            _ => {
                tracing::debug!(target: "wasmlet::guest", handler, %request_id, stream, "{text}{cut}");
            }
        }
    }

    /// Whether a line of `bytes` fits the request's limits and the
    /// handler's bucket; counts it either way.
    fn admit(&self, bytes: usize) -> bool {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        let total = spent.bytes.saturating_add(bytes as u64);
        if spent.lines >= self.limits.lines || total > self.limits.bytes {
            spent.over_request += 1;
            return false;
        }
        if !self.rate.take(bytes) {
            spent.over_rate += 1;
            return false;
        }
        spent.lines += 1;
        spent.bytes = total;
        true
    }

    /// Says how many lines were dropped, if any, and starts counting again:
    /// called when a request ends (a reused instance keeps its state until
    /// the next request replaces it), and on drop.
    pub(crate) fn finish(&self) {
        let spent = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|e| e.into_inner()));
        let dropped = spent.over_request + spent.over_rate;
        if dropped == 0 {
            return;
        }
        let handler = &*self.who.handler;
        let request_id = &*self.who.request_id;
        let mut why = Vec::new();
        if spent.over_request > 0 {
            why.push(format!(
                "{} past this request's limit of {} lines or {} bytes (--max-log-lines, \
                 --max-log-bytes)",
                spent.over_request, self.limits.lines, self.limits.bytes
            ));
        }
        if spent.over_rate > 0 {
            why.push(format!(
                "{} past the handler's {} bytes a second (--log-rate)",
                spent.over_rate,
                self.rate.rate()
            ));
        }
        tracing::warn!(
            target: "wasmlet::guest",
            handler, %request_id, dropped,
            "dropped {dropped} log lines from the handler: {}",
            why.join("; ")
        );
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_log(bytes: u64, lines: u32, rate: u64) -> GuestLog {
        let who = Identity {
            handler: "/h".into(),
            request_id: "r".into(),
        };
        GuestLog::new(
            who,
            LogLimits { bytes, lines },
            Arc::new(LogRate::new(rate)),
        )
    }

    #[test]
    fn lines_past_the_request_limits_are_counted_not_written() {
        let log = request_log(100, 3, 1 << 20);
        assert!(log.admit(10) && log.admit(10) && log.admit(10));
        assert!(!log.admit(1), "a fourth line is past 3 lines");
        let bytes = request_log(25, 100, 1 << 20);
        assert!(bytes.admit(20));
        assert!(!bytes.admit(6), "26 bytes is past 25");
        assert!(bytes.admit(5), "a line that still fits passes");
        assert_eq!(bytes.spent.lock().unwrap().over_request, 1);
    }

    #[test]
    fn the_handler_bucket_is_shared_by_its_requests_and_refills() {
        let rate = Arc::new(LogRate::new(4096));
        let who = Identity {
            handler: "/h".into(),
            request_id: "r".into(),
        };
        let limits = LogLimits {
            bytes: 1 << 20,
            lines: 1000,
        };
        let first = GuestLog::new(who.clone(), limits, rate.clone());
        let second = GuestLog::new(who, limits, rate.clone());
        assert!(first.admit(4000));
        assert!(!second.admit(200), "the first request emptied the bucket");
        assert_eq!(second.spent.lock().unwrap().over_rate, 1);
        // Pretend a second has passed.
        rate.bucket.lock().unwrap().refilled -= std::time::Duration::from_secs(1);
        assert!(second.admit(4096));
    }
}
