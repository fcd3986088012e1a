//! What a running server counts: the accessors tests and the status page read
//! ([`Stats::compiles`], [`Stats::live_instances`], …) and the Prometheus
//! metrics the admin listener serves ([`Stats::prometheus_text`]). One
//! [`Stats`] per server, and each holds its own registry.
//!
//! Why the `prometheus` crate, with a `Registry` per server: the `metrics`
//! facade records into a process-global recorder (or a thread-local one,
//! which does not follow a task from one worker thread to another), so two
//! servers in one process — every test binary — would count into each other.
//! A `Registry` is a plain value: each server owns its metrics, and the
//! handles below are updated directly, with no lookup through a facade. Its
//! default features pull in protobuf, which the text format does not need.
//!
//! Every metric here is updated on a real path; `README.md` lists them with
//! their labels.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::error::Outcome;
use crate::webroot::Lookup;

/// The `handler` label of a request no handler answered: a static file, a
/// path that is not found, the status page. The access log writes the same.
pub const NO_HANDLER: &str = "-";

/// The `status` label of a request whose client went away before the handler
/// finished: the client got no status, and 499 is the code proxies (nginx)
/// log for it, so dashboards that group by class count it as a client error.
pub const CLIENT_GONE: &str = "499";

/// Request latency buckets, in seconds: a hello handler answers in well under
/// a millisecond, a handler waiting on upstreams in seconds, and the default
/// request timeout is 30 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Compile time buckets, in seconds: a tiny `.wat` compiles in about a
/// millisecond, a large Rust handler in seconds.
const COMPILE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters and gauges a running server keeps, and the registry that exposes
/// them. Cloning a metric handle shares it, so the registry and the fields
/// below see the same values.
pub struct Stats {
    /// Renders everything below in the Prometheus text format.
    registry: Registry,
    /// Requests received, finished or not: the status page's `requests`.
    /// Not a metric: `requests` below counts requests once they finish, with
    /// their status, which is what a rate should be taken of.
    received: AtomicU64,
    /// `wasmlet_requests_total{handler, status}`.
    requests: IntCounterVec,
    /// `wasmlet_request_duration_seconds{handler}`: from the request's arrival
    /// to its last byte (a handler's request ends when the guest does).
    request_seconds: HistogramVec,
    /// `wasmlet_requests_in_flight`: received and not yet finished.
    in_flight: IntGauge,
    /// `wasmlet_traps_total{handler}`: guests that trapped (bad pointer,
    /// `unreachable`, a failed instantiation, a memory limit).
    traps: IntCounterVec,
    /// `wasmlet_timeouts_total{handler}`: guests stopped at the request
    /// timeout.
    timeouts: IntCounterVec,
    /// `wasmlet_live_instances`: guest instances alive right now.
    live_instances: IntGauge,
    /// `wasmlet_compiles_total`: compiles started.
    compiles: IntCounter,
    /// `wasmlet_compile_duration_seconds`: finished compiles, failed ones too.
    compile_seconds: Histogram,
    /// `wasmlet_disk_cache_hits_total`: loads whose code came from the disk
    /// cache.
    disk_cache_hits: IntCounter,
    /// `wasmlet_disk_cache_misses_total`: loads the disk cache could not
    /// serve (absent or unusable entry), so the handler compiled.
    disk_cache_misses: IntCounter,
    /// `wasmlet_reloads_total`: a handler's served version replaced by a
    /// newer one.
    reloads: IntCounter,
    /// `wasmlet_queue_depth`: requests waiting for an execution slot. Above
    /// zero for long means the server runs at `--max-concurrency`.
    queue_depth: IntGauge,
    /// `wasmlet_open_connections`: connections open on the main listener,
    /// against `--max-connections`.
    open_connections: IntGauge,
    /// `wasmlet_route_lookups_total{result}`: `table` for a request routed
    /// from the route table (one `stat` of its handler file), `disk` for each
    /// resolution or version lookup on a request's way. With the watcher on,
    /// a known handler costs no `disk`. One handle per label, resolved once: this is
    /// counted on every request.
    route_lookups: [IntCounter; 2],
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

/// The `result` label of a route lookup.
fn label(result: Lookup) -> &'static str {
    match result {
        Lookup::Table => "table",
        Lookup::Disk => "disk",
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
        let requests = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "wasmlet_requests_total",
                    "Requests finished, by handler (- for none) and status (499: the client went away).",
                ),
                &["handler", "status"],
            ),
        );
        let request_seconds = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "wasmlet_request_duration_seconds",
                    "Time from a request's arrival to its end, by handler.",
                )
                .buckets(REQUEST_BUCKETS.to_vec()),
                &["handler"],
            ),
        );
        let in_flight = register(
            &registry,
            IntGauge::new(
                "wasmlet_requests_in_flight",
                "Requests received and not yet finished.",
            ),
        );
        let traps = register(
            &registry,
            IntCounterVec::new(
                Opts::new("wasmlet_traps_total", "Guests that trapped, by handler."),
                &["handler"],
            ),
        );
        let timeouts = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "wasmlet_timeouts_total",
                    "Guests stopped at the request timeout, by handler.",
                ),
                &["handler"],
            ),
        );
        let live_instances = register(
            &registry,
            IntGauge::new("wasmlet_live_instances", "Guest instances alive right now."),
        );
        let compiles = register(
            &registry,
            IntCounter::new("wasmlet_compiles_total", "Handler compiles started."),
        );
        let compile_seconds = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "wasmlet_compile_duration_seconds",
                    "Time to compile one handler version, failed compiles included.",
                )
                .buckets(COMPILE_BUCKETS.to_vec()),
            ),
        );
        let disk_cache_hits = register(
            &registry,
            IntCounter::new(
                "wasmlet_disk_cache_hits_total",
                "Handler loads whose compiled code came from the disk cache.",
            ),
        );
        let disk_cache_misses = register(
            &registry,
            IntCounter::new(
                "wasmlet_disk_cache_misses_total",
                "Handler loads the disk cache could not serve, so the handler compiled.",
            ),
        );
        let reloads = register(
            &registry,
            IntCounter::new(
                "wasmlet_reloads_total",
                "Handlers whose served version was replaced by a newer one.",
            ),
        );
        let queue_depth = register(
            &registry,
            IntGauge::new(
                "wasmlet_queue_depth",
                "Requests waiting for a guest execution slot (--max-concurrency).",
            ),
        );
        let open_connections = register(
            &registry,
            IntGauge::new(
                "wasmlet_open_connections",
                "Connections open on the main listener (--max-connections).",
            ),
        );
        let route_lookups = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "wasmlet_route_lookups_total",
                    "Requests routed from the watcher-kept table (table), and file-system \
                     lookups of a route or handler version on a request's way (disk).",
                ),
                &["result"],
            ),
        );
        Self {
            registry,
            route_lookups: [Lookup::Table, Lookup::Disk]
                .map(|result| route_lookups.with_label_values(&[label(result)])),
            received: AtomicU64::new(0),
            requests,
            request_seconds,
            in_flight,
            traps,
            timeouts,
            live_instances,
            compiles,
            compile_seconds,
            disk_cache_hits,
            disk_cache_misses,
            reloads,
            queue_depth,
            open_connections,
        }
    }

    /// Handler compiles started (each distinct file version compiles once).
    pub fn compiles(&self) -> u64 {
        self.compiles.get()
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Guest instances alive right now.
    pub fn live_instances(&self) -> u64 {
        u64::try_from(self.live_instances.get()).unwrap_or(0)
    }

    /// Requests received and not yet finished.
    pub fn in_flight(&self) -> u64 {
        u64::try_from(self.in_flight.get()).unwrap_or(0)
    }

    /// Requests waiting for a guest execution slot right now.
    pub fn queue_depth(&self) -> u64 {
        u64::try_from(self.queue_depth.get()).unwrap_or(0)
    }

    /// Connections open on the main listener right now.
    pub fn open_connections(&self) -> u64 {
        u64::try_from(self.open_connections.get()).unwrap_or(0)
    }

    /// `wasmlet_route_lookups_total` with `result` = `table` or `disk`.
    pub fn route_lookups(&self, result: Lookup) -> u64 {
        self.route_lookups[result as usize].get()
    }

    /// A request's route came from memory, or the file system was asked for
    /// a route or a handler's version.
    pub(crate) fn route_lookup(&self, result: Lookup) {
        self.route_lookups[result as usize].inc();
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
        self.in_flight.inc();
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
        self.requests.with_label_values(&[handler, status]).inc();
        self.request_seconds
            .with_label_values(&[handler])
            .observe(elapsed.as_secs_f64());
        match outcome {
            Some(Outcome::Trap(_)) => self.traps.with_label_values(&[handler]).inc(),
            Some(Outcome::Timeout) => self.timeouts.with_label_values(&[handler]).inc(),
            _ => {}
        }
        self.in_flight.dec();
    }

    pub(crate) fn compile_started(&self) {
        self.compiles.inc();
    }

    pub(crate) fn compile_finished(&self, elapsed: Duration) {
        self.compile_seconds.observe(elapsed.as_secs_f64());
    }

    /// A load asked the disk cache and got the compiled code, or did not.
    pub(crate) fn disk_cache_lookup(&self, hit: bool) {
        if hit {
            self.disk_cache_hits.inc();
        } else {
            self.disk_cache_misses.inc();
        }
    }

    /// A newer version of a handler became the one served.
    pub(crate) fn reloaded(&self) {
        self.reloads.inc();
    }

    /// Counts an instance as live until the guard drops.
    pub(crate) fn instance(&self) -> InstanceGuard<'_> {
        self.live_instances.inc();
        InstanceGuard(self)
    }

    /// Counts a request as queued for an execution slot until the guard
    /// drops.
    pub(crate) fn queued(&self) -> GaugeGuard {
        GaugeGuard::inc(&self.queue_depth)
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn connection(&self) -> GaugeGuard {
        GaugeGuard::inc(&self.open_connections)
    }
}

/// Registers `metric` and hands it back. The names are fixed and distinct,
/// and the registry is fresh, so neither step can fail.
fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric.expect("a valid metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

/// Decrements the live-instance count when the instance's store is gone.
pub(crate) struct InstanceGuard<'a>(&'a Stats);

impl Drop for InstanceGuard<'_> {
    fn drop(&mut self) {
        self.0.live_instances.dec();
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
        let first = stats.instance();
        let second = stats.instance();
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
            "wasmlet_queue_depth",
            "wasmlet_open_connections",
        ] {
            assert_eq!(sample(&text, name), Some(0.0), "{name} in:\n{text}");
        }
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
