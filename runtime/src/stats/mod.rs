//! What a running server counts: the accessors tests and the status page
//! read ([`Stats::compiles`], [`Stats::live_instances`],
//! [`Stats::handler_numbers`], …) and the Prometheus metrics the admin
//! listener serves ([`Stats::prometheus_text`]). One [`Stats`] per server,
//! and each holds its own registry.
//!
//! Why the `prometheus` crate, with a `Registry` per server: the `metrics`
//! facade records into a process-global recorder (or a thread-local one,
//! which does not follow a task from one worker thread to another), so two
//! servers in one process — every test binary — would count into each other.
//! A `Registry` is a plain value: each server owns its metrics, and the
//! handles are updated directly, with no lookup through a facade. Its
//! default features pull in protobuf, which the text format does not need.
//!
//! - `metrics`: every metric's name, help, labels and buckets.
//! - `handlers`: one handler's numbers for the status page, and its last
//!   error.

mod handlers;
mod metrics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{IntGauge, Registry, TextEncoder};

pub use handlers::{HandlerNumbers, LastError};
pub(crate) use metrics::HANDLER_STATES;

use crate::outcome::Outcome;
use crate::webroot::Lookup;
use handlers::LastErrors;
use metrics::Metrics;

/// The `handler` label of a request no handler answered: a static file, a
/// path that is not found, the status page. The access log writes the same.
pub const NO_HANDLER: &str = "-";

/// The `status` label of a request whose client went away before the handler
/// finished: the client got no status, and 499 is the code proxies (nginx)
/// log for it, so dashboards that group by class count it as a client error.
pub const CLIENT_GONE: &str = "499";

/// Counters and gauges a running server keeps, and the registry that exposes
/// them.
pub struct Stats {
    /// Renders every metric in the Prometheus text format.
    registry: Registry,
    /// The handles of the metrics in `registry`.
    metrics: Metrics,
    /// Requests received, finished or not: the status page's `requests`.
    /// Not a metric: `wasmlet_requests_total` counts requests once they
    /// finish, with their status, which is what a rate should be taken of.
    received: AtomicU64,
    /// When the server was made, for its uptime.
    started: Instant,
    /// Each handler's last failure, for the status page.
    last_errors: LastErrors,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("requests", &self.requests())
            .field("compiles", &self.compiles())
            .field("live_instances", &self.live_instances())
            .finish_non_exhaustive()
    }
}

impl Stats {
    /// Every counter at zero, registered in a registry of its own.
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry);
        Self {
            registry,
            metrics,
            received: AtomicU64::new(0),
            started: Instant::now(),
            last_errors: LastErrors::default(),
        }
    }

    /// How long the server has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sets `wasmlet_handlers{state}` to the number of handlers in each of
    /// [`HANDLER_STATES`] (absent ones count zero).
    pub(crate) fn set_handler_states(&self, counts: &[(&str, usize)]) {
        for state in HANDLER_STATES {
            let n = counts
                .iter()
                .filter(|(s, _)| *s == state)
                .map(|(_, n)| *n)
                .sum::<usize>();
            self.metrics
                .handlers
                .with_label_values(&[state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Handler compiles started (each distinct file version compiles once).
    pub fn compiles(&self) -> u64 {
        self.metrics.compiles.get()
    }

    /// Handler versions whose baseline-tier code Cranelift's replaced.
    pub fn tier_ups(&self) -> u64 {
        self.metrics.tier_ups.get()
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Guest instances alive right now.
    pub fn live_instances(&self) -> u64 {
        u64::try_from(self.metrics.live_instances.get()).unwrap_or(0)
    }

    /// Requests received and not yet finished.
    pub fn in_flight(&self) -> u64 {
        u64::try_from(self.metrics.in_flight.get()).unwrap_or(0)
    }

    /// Requests waiting for a guest execution slot right now.
    pub fn queue_depth(&self) -> u64 {
        u64::try_from(self.metrics.queue_depth.get()).unwrap_or(0)
    }

    /// Connections open on the main listener right now.
    pub fn open_connections(&self) -> u64 {
        u64::try_from(self.metrics.open_connections.get()).unwrap_or(0)
    }

    /// `wasmlet_route_lookups_total` with `result` = `table` or `disk`.
    pub fn route_lookups(&self, result: Lookup) -> u64 {
        self.metrics.route_lookups[result as usize].get()
    }

    /// A request's route came from memory, or the file system was asked for
    /// a route or a handler's version.
    pub(crate) fn route_lookup(&self, result: Lookup) {
        self.metrics.route_lookups[result as usize].inc();
    }

    /// Every metric in the Prometheus text exposition format, as `/metrics`
    /// serves it.
    pub fn prometheus_text(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| {
                // Only a metric with an invalid name fails to encode, and
                // the names are fixed above; say so rather than panic.
                tracing::error!(error = %e, "cannot encode the metrics");
                String::new()
            })
    }

    /// A request arrived; [`Stats::request_finished`] must follow once.
    pub(crate) fn request_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.metrics.in_flight.inc();
    }

    /// A request ended: answered with `status` (a code, or [`CLIENT_GONE`])
    /// after `elapsed`, by `handler` (or [`NO_HANDLER`]), and for a handler
    /// request with its guest's `outcome`.
    pub(crate) fn request_finished(
        &self,
        handler: &str,
        status: &str,
        elapsed: Duration,
        outcome: Option<&Outcome>,
    ) {
        self.metrics
            .requests
            .with_label_values(&[handler, status])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[handler])
            .observe(elapsed.as_secs_f64());
        match outcome {
            Some(Outcome::Trap(_)) => self.metrics.traps.with_label_values(&[handler]).inc(),
            Some(Outcome::Timeout) => self.metrics.timeouts.with_label_values(&[handler]).inc(),
            _ => {}
        }
        if let Some(outcome) = outcome {
            self.last_errors.record(handler, outcome);
        }
        self.metrics.in_flight.dec();
    }

    pub(crate) fn compile_started(&self) {
        self.metrics.compiles.inc();
    }

    pub(crate) fn compile_finished(&self, elapsed: Duration) {
        self.metrics.compile_seconds.observe(elapsed.as_secs_f64());
    }

    /// A load asked the disk cache and got the compiled code, or did not.
    pub(crate) fn disk_cache_lookup(&self, hit: bool) {
        if hit {
            self.metrics.disk_cache_hits.inc();
        } else {
            self.metrics.disk_cache_misses.inc();
        }
    }

    /// A newer version of a handler became the one served.
    pub(crate) fn tiered_up(&self) {
        self.metrics.tier_ups.inc();
    }

    pub(crate) fn reloaded(&self) {
        self.metrics.reloads.inc();
    }

    /// Counts an instance of `handler` as live until the guard drops.
    pub(crate) fn instance(&self, handler: &str) -> InstanceGuard<'_> {
        self.metrics.live_instances.inc();
        let by_handler =
            GaugeGuard::inc(&self.metrics.live_by_handler.with_label_values(&[handler]));
        InstanceGuard {
            stats: self,
            _by_handler: by_handler,
        }
    }

    /// Counts a request as queued for an execution slot until the guard
    /// drops.
    pub(crate) fn queued(&self) -> GaugeGuard {
        GaugeGuard::inc(&self.metrics.queue_depth)
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn connection(&self) -> GaugeGuard {
        GaugeGuard::inc(&self.metrics.open_connections)
    }
}

/// Decrements the live-instance counts when the instance's store is gone.
pub(crate) struct InstanceGuard<'a> {
    stats: &'a Stats,
    /// The handler's own count, which drops with it.
    _by_handler: GaugeGuard,
}

impl Drop for InstanceGuard<'_> {
    fn drop(&mut self) {
        self.stats.metrics.live_instances.dec();
    }
}

/// Holds a gauge one higher until dropped. Owns its gauge handle (a shared
/// one), so it can move into a connection's task.
pub(crate) struct GaugeGuard(IntGauge);

impl GaugeGuard {
    fn inc(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `line_start` (name and labels, as rendered).
    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

    #[test]
    fn a_finished_request_counts_by_handler_and_status_and_leaves_flight() {
        let stats = Stats::new();
        stats.request_received();
        stats.request_received();
        assert_eq!(stats.in_flight(), 2);
        stats.request_finished("/a.wat", "200", Duration::from_millis(3), None);
        stats.request_finished(NO_HANDLER, "404", Duration::from_millis(1), None);
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(stats.requests(), 2);
        let text = stats.prometheus_text();
        assert_eq!(
            sample(
                &text,
                r#"wasmlet_requests_total{handler="/a.wat",status="200"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"wasmlet_requests_total{handler="-",status="404"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"wasmlet_request_duration_seconds_bucket{handler="/a.wat",le="0.005"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"wasmlet_request_duration_seconds_bucket{handler="/a.wat",le="0.0025"}"#
            ),
            Some(0.0)
        );
    }

    #[test]
    fn traps_and_timeouts_count_by_handler_and_other_outcomes_do_not() {
        let stats = Stats::new();
        for outcome in [
            Outcome::Trap("unreachable".to_owned()),
            Outcome::Timeout,
            Outcome::Timeout,
            Outcome::Completed,
            Outcome::Busy,
        ] {
            stats.request_received();
            let status = outcome.status();
            stats.request_finished("/h.wat", status.as_str(), Duration::ZERO, Some(&outcome));
        }
        let text = stats.prometheus_text();
        assert_eq!(
            sample(&text, r#"wasmlet_traps_total{handler="/h.wat"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"wasmlet_timeouts_total{handler="/h.wat"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"wasmlet_requests_total{handler="/h.wat",status="503"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn live_instances_follow_their_guards() {
        let stats = Stats::new();
        let first = stats.instance("/a.wat");
        let second = stats.instance("/b.wat");
        assert_eq!(stats.live_instances(), 2);
        drop(first);
        assert_eq!(
            sample(&stats.prometheus_text(), "wasmlet_live_instances"),
            Some(1.0)
        );
        drop(second);
        assert_eq!(stats.live_instances(), 0);
    }

    #[test]
    fn queue_and_connection_gauges_follow_their_guards() {
        let stats = Stats::new();
        let queued = stats.queued();
        let first = stats.connection();
        let second = stats.connection();
        let text = stats.prometheus_text();
        assert_eq!(sample(&text, "wasmlet_queue_depth"), Some(1.0));
        assert_eq!(sample(&text, "wasmlet_open_connections"), Some(2.0));
        drop((queued, first));
        assert_eq!(stats.queue_depth(), 0);
        assert_eq!(stats.open_connections(), 1);
        drop(second);
        assert_eq!(stats.open_connections(), 0);
    }

    #[test]
    fn unlabelled_metrics_are_exposed_at_zero_from_the_start() {
        // Unlabelled metrics show at zero before anything happens, so a
        // dashboard sees a flat line rather than no data. Labelled ones
        // appear with their first label set.
        let text = Stats::new().prometheus_text();
        for name in [
            "wasmlet_requests_in_flight",
            "wasmlet_live_instances",
            "wasmlet_compiles_total",
            "wasmlet_compile_duration_seconds_count",
            "wasmlet_disk_cache_hits_total",
            "wasmlet_disk_cache_misses_total",
            "wasmlet_reloads_total",
            "wasmlet_tier_ups_total",
            "wasmlet_queue_depth",
            "wasmlet_open_connections",
            r#"wasmlet_handlers{state="failed"}"#,
            r#"wasmlet_handlers{state="stale"}"#,
        ] {
            assert_eq!(sample(&text, name), Some(0.0), "{name} in:\n{text}");
        }
    }

    #[test]
    fn build_info_process_metrics_and_handler_states_are_exposed() {
        let stats = Stats::new();
        stats.set_handler_states(&[("failed", 2), ("ready", 1), ("failed", 1)]);
        let text = stats.prometheus_text();
        let info = format!(
            r#"wasmlet_build_info{{version="{}",wasmtime="{}"}}"#,
            crate::VERSION,
            crate::WASMTIME_VERSION
        );
        assert_eq!(sample(&text, &info), Some(1.0), "{text}");
        assert_eq!(
            sample(&text, r#"wasmlet_handlers{state="failed"}"#),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, r#"wasmlet_handlers{state="ready"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"wasmlet_handlers{state="loading"}"#),
            Some(0.0)
        );
        assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
        assert!(sample(&text, "process_open_fds").unwrap() > 0.0);
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
        stats.set_handler_states(&[]);
        let text = stats.prometheus_text();
        assert_eq!(
            sample(&text, r#"wasmlet_handlers{state="failed"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn compiles_disk_cache_and_reloads_count() {
        let stats = Stats::new();
        stats.compile_started();
        stats.compile_finished(Duration::from_millis(20));
        stats.disk_cache_lookup(false);
        stats.disk_cache_lookup(true);
        stats.disk_cache_lookup(true);
        stats.reloaded();
        let text = stats.prometheus_text();
        assert_eq!(stats.compiles(), 1);
        assert_eq!(
            sample(&text, "wasmlet_compile_duration_seconds_count"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"wasmlet_compile_duration_seconds_bucket{le="0.025"}"#
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "wasmlet_disk_cache_hits_total"), Some(2.0));
        assert_eq!(sample(&text, "wasmlet_disk_cache_misses_total"), Some(1.0));
        assert_eq!(sample(&text, "wasmlet_reloads_total"), Some(1.0));
    }
}
