//! One handler's numbers as the status page shows them: read back from the
//! server's own request metrics (so the page and `/metrics` never disagree),
//! plus the last error each handler's requests ended with, which no metric
//! holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus::core::Collector;
use prometheus::proto::{Histogram, Metric};

use super::Stats;
use crate::outcome::Outcome;

/// Most handlers whose last error is kept. Handler names come from files,
/// and files come and go: past this, the oldest error is forgotten.
const MAX_LAST_ERRORS: usize = 1024;

/// Longest last error kept, in bytes: the page shows one line of it.
const MAX_ERROR_LEN: usize = 500;

/// What one handler's requests came to since the server started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandlerNumbers {
    /// Requests finished.
    pub requests: u64,
    /// Requests answered with a `5xx` status (traps, timeouts, load errors,
    /// the server at a limit).
    pub errors: u64,
    /// Guests that trapped.
    pub traps: u64,
    /// Guests stopped at the request timeout.
    pub timeouts: u64,
    /// Median latency in seconds, estimated from the latency histogram as
    /// Prometheus' `histogram_quantile` would.
    pub p50: Option<f64>,
    /// 99th percentile latency in seconds, likewise.
    pub p99: Option<f64>,
    /// Guest instances alive right now.
    pub live_instances: u64,
    /// The last failure a request of this handler ended with.
    pub last_error: Option<LastError>,
}

/// A request's failure, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// When the request ended.
    pub at: SystemTime,
    /// What went wrong: the first line of the failure's detail.
    pub message: String,
}

/// Each handler's last failure, by handler name.
#[derive(Default)]
pub(super) struct LastErrors(Mutex<HashMap<Arc<str>, LastError>>);

impl LastErrors {
    /// Keeps `outcome`'s detail as `handler`'s last error, if the server
    /// failed it (a `5xx`; a client's bad request is not the handler's).
    pub(super) fn record(&self, handler: &str, outcome: &Outcome) {
        let Some(detail) = outcome
            .detail()
            .filter(|_| outcome.status().is_server_error())
        else {
            return;
        };
        let mut message = detail.lines().next().unwrap_or_default().to_owned();
        if message.len() > MAX_ERROR_LEN {
            let mut end = MAX_ERROR_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let error = LastError {
            at: SystemTime::now(),
            message,
        };
        let mut errors = self.0.lock().unwrap();
        if let Some(known) = errors.get_mut(handler) {
            *known = error;
            return;
        }
        if errors.len() >= MAX_LAST_ERRORS
            && let Some(oldest) = errors
                .iter()
                .min_by_key(|(_, e)| e.at)
                .map(|(name, _)| name.clone())
        {
            errors.remove(&oldest);
        }
        errors.insert(handler.into(), error);
    }
}

impl Stats {
    /// Every handler's numbers, by handler name (its path in the web root,
    /// as the metrics' `handler` label has it). A handler no request reached
    /// is absent.
    pub fn handler_numbers(&self) -> HashMap<String, HandlerNumbers> {
        let mut all: HashMap<String, HandlerNumbers> = HashMap::new();
        let mut each = |collector: &dyn Collector, add: &dyn Fn(&mut HandlerNumbers, &Metric)| {
            for family in collector.collect() {
                for metric in family.get_metric() {
                    let Some(handler) = metric
                        .get_label()
                        .iter()
                        .find(|l| l.name() == "handler")
                        .map(|l| l.value())
                        .filter(|h| *h != super::NO_HANDLER)
                    else {
                        continue;
                    };
                    add(all.entry(handler.to_owned()).or_default(), metric);
                }
            }
        };
        let m = &self.metrics;
        each(&m.requests, &|n, metric| {
            let count = metric.get_counter().get_value() as u64;
            n.requests += count;
            let server_error = metric
                .get_label()
                .iter()
                .any(|l| l.name() == "status" && l.value().starts_with('5'));
            if server_error {
                n.errors += count;
            }
        });
        each(&m.traps, &|n, metric| {
            n.traps = metric.get_counter().get_value() as u64;
        });
        each(&m.timeouts, &|n, metric| {
            n.timeouts = metric.get_counter().get_value() as u64;
        });
        each(&m.request_seconds, &|n, metric| {
            n.p50 = quantile(metric.get_histogram(), 0.5);
            n.p99 = quantile(metric.get_histogram(), 0.99);
        });
        each(&m.live_by_handler, &|n, metric| {
            n.live_instances = metric.get_gauge().get_value().max(0.0) as u64;
        });
        for (handler, error) in self.last_errors.0.lock().unwrap().iter() {
            all.entry(handler.to_string()).or_default().last_error = Some(error.clone());
        }
        all
    }
}

/// The `q` quantile of `histogram` in seconds, interpolated linearly within
/// its bucket as Prometheus' `histogram_quantile` does; the highest bound for
/// one past it. `None` before the first observation.
fn quantile(histogram: &Histogram, q: f64) -> Option<f64> {
    let count = histogram.get_sample_count();
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for bucket in histogram.get_bucket() {
        let upper = bucket.upper_bound();
        let cumulative = bucket.cumulative_count();
        if cumulative as f64 >= rank {
            let inside = (cumulative - below) as f64;
            let fraction = if inside > 0.0 {
                (rank - below as f64) / inside
            } else {
                1.0
            };
            return Some(lower + (upper - lower) * fraction);
        }
        (lower, below) = (upper, cumulative);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn numbers_follow_requests_traps_and_timeouts_per_handler() {
        let stats = Stats::new();
        let finish = |handler, status: &str, ms, outcome: Option<Outcome>| {
            stats.request_received();
            stats.request_finished(handler, status, Duration::from_millis(ms), outcome.as_ref());
        };
        for _ in 0..98 {
            finish("/a.wat", "200", 2, Some(Outcome::Completed));
        }
        finish(
            "/a.wat",
            "500",
            40,
            Some(Outcome::Trap("unreachable".into())),
        );
        finish("/a.wat", "504", 40, Some(Outcome::Timeout));
        finish(crate::stats::NO_HANDLER, "404", 1, None);
        let live = stats.instance("/a.wat");
        let numbers = stats.handler_numbers();
        drop(live);
        assert_eq!(numbers.len(), 1, "{numbers:?}");
        let a = &numbers["/a.wat"];
        assert_eq!((a.requests, a.errors, a.traps, a.timeouts), (100, 2, 1, 1));
        assert_eq!(a.live_instances, 1);
        let p50 = a.p50.unwrap();
        assert!((0.001..=0.0025).contains(&p50), "{p50}");
        let p99 = a.p99.unwrap();
        assert!((0.025..=0.05).contains(&p99), "{p99}");
        assert_eq!(
            a.last_error.as_ref().map(|e| e.message.as_str()),
            Some("the handler ran past the request timeout")
        );
    }

    #[test]
    fn a_last_error_is_one_bounded_line_and_old_ones_make_room() {
        let errors = LastErrors::default();
        let long = format!("{}\nsecond line", "é".repeat(400));
        errors.record("/h.wat", &Outcome::Trap(long));
        let kept = errors.0.lock().unwrap()["/h.wat"].message.clone();
        assert!(
            kept.len() <= MAX_ERROR_LEN + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        assert!(!kept.contains('\n'));
        errors.record("/h.wat", &Outcome::Completed);
        assert_eq!(errors.0.lock().unwrap().len(), 1, "a success keeps it");
        for i in 0..MAX_LAST_ERRORS + 10 {
            errors.record(&format!("/{i}.wat"), &Outcome::Timeout);
        }
        assert_eq!(errors.0.lock().unwrap().len(), MAX_LAST_ERRORS);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_and_stop_at_the_last_bound() {
        let stats = Stats::new();
        assert_eq!(stats.handler_numbers().get("/q.wat"), None);
        let histogram = stats.metrics.request_seconds.with_label_values(&["/q.wat"]);
        for _ in 0..4 {
            histogram.observe(0.0075);
        }
        let numbers = &stats.handler_numbers()["/q.wat"];
        // All four in (0.005, 0.01]: the median is half way through it.
        let p50 = numbers.p50.unwrap();
        assert!((p50 - 0.0075).abs() < 1e-12, "{p50}");
        histogram.observe(1000.0);
        histogram.observe(1000.0);
        histogram.observe(1000.0);
        histogram.observe(1000.0);
        assert_eq!(stats.handler_numbers()["/q.wat"].p99, Some(60.0));
    }
}
