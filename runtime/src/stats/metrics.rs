//! The metric definitions: every name, help text, label set and bucket
//! layout, registered in one server's own [`Registry`]. `README.md` lists
//! them; [`super::Stats`] updates them.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::webroot::Lookup;
use crate::{VERSION, WASMTIME_VERSION};

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

/// The states a handler is counted in by `wasmlet_handlers`, as the status
/// page names them.
pub(crate) const HANDLER_STATES: [&str; 4] = ["ready", "loading", "failed", "stale"];

/// The metric handles. Cloning a handle shares it, so the registry and
/// these fields see the same values.
pub(super) struct Metrics {
    /// `wasmlet_requests_total{handler, status}`.
    pub(super) requests: IntCounterVec,
    /// `wasmlet_request_duration_seconds{handler}`: from the request's arrival
    /// to its last byte (a handler's request ends when the guest does).
    pub(super) request_seconds: HistogramVec,
    /// `wasmlet_requests_in_flight`: received and not yet finished.
    pub(super) in_flight: IntGauge,
    /// `wasmlet_traps_total{handler}`: guests that trapped (bad pointer,
    /// `unreachable`, a failed instantiation, a memory limit).
    pub(super) traps: IntCounterVec,
    /// `wasmlet_timeouts_total{handler}`: guests stopped at the request
    /// timeout.
    pub(super) timeouts: IntCounterVec,
    /// `wasmlet_live_instances`: guest instances alive right now.
    pub(super) live_instances: IntGauge,
    /// The same by handler, for the status page. Not registered: a series
    /// per handler file would add little to a dashboard that has the total.
    pub(super) live_by_handler: IntGaugeVec,
    /// `wasmlet_compiles_total`: compiles started.
    pub(super) compiles: IntCounter,
    /// `wasmlet_compile_duration_seconds`: finished compiles, failed ones too.
    pub(super) compile_seconds: Histogram,
    /// `wasmlet_disk_cache_hits_total`: loads whose code came from the disk
    /// cache.
    pub(super) disk_cache_hits: IntCounter,
    /// `wasmlet_disk_cache_misses_total`: loads the disk cache could not
    /// serve (absent or unusable entry), so the handler compiled.
    pub(super) disk_cache_misses: IntCounter,
    /// `wasmlet_reloads_total`: a handler's served version replaced by a
    /// newer one.
    pub(super) reloads: IntCounter,
    /// `wasmlet_tier_ups_total`: handler versions whose baseline-tier code
    /// (Winch) was replaced by Cranelift's.
    pub(super) tier_ups: IntCounter,
    /// `wasmlet_queue_depth`: requests waiting for an execution slot. Above
    /// zero for long means the server runs at `--max-concurrency`.
    pub(super) queue_depth: IntGauge,
    /// `wasmlet_open_connections`: connections open on the main listener,
    /// against `--max-connections`.
    pub(super) open_connections: IntGauge,
    /// `wasmlet_handlers{state}`: handlers the server has seen, by state, as
    /// of the last scrape.
    pub(super) handlers: IntGaugeVec,
    /// `wasmlet_route_lookups_total{result}`: `table` for a request routed
    /// from the route table (one `stat` of its handler file), `disk` for each
    /// resolution or version lookup on a request's way. With the watcher on,
    /// a known handler costs no `disk`. One handle per label, resolved once:
    /// this is counted on every request.
    pub(super) route_lookups: [IntCounter; 2],
}

/// The `result` label of a route lookup.
fn lookup_label(result: Lookup) -> &'static str {
    match result {
        Lookup::Table => "table",
        Lookup::Disk => "disk",
    }
}

impl Metrics {
    /// Every metric at zero, registered in `registry` (which must be fresh),
    /// with `wasmlet_build_info` and the process metrics.
    pub(super) fn register(registry: &Registry) -> Self {
        let build_info = register(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "wasmlet_build_info",
                    "Always 1; the labels say which wasmlet and wasmtime run.",
                ),
                &["version", "wasmtime"],
            ),
        );
        build_info
            .with_label_values(&[VERSION, WASMTIME_VERSION])
            .set(1);
        // CPU seconds, resident memory, open and maximum file descriptors,
        // threads and start time of this process, read from /proc at each
        // scrape.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process metrics are registered once");
        let handlers = register(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "wasmlet_handlers",
                    "Handlers the server has loaded or tried to, by state \
                     (ready, loading, failed: none loaded, stale: an older version serves).",
                ),
                &["state"],
            ),
        );
        for state in HANDLER_STATES {
            handlers.with_label_values(&[state]).set(0);
        }
        Self {
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "wasmlet_requests_total",
                        "Requests finished, by handler (- for none) and status (499: the client went away).",
                    ),
                    &["handler", "status"],
                ),
            ),
            request_seconds: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "wasmlet_request_duration_seconds",
                        "Time from a request's arrival to its end, by handler.",
                    )
                    .buckets(REQUEST_BUCKETS.to_vec()),
                    &["handler"],
                ),
            ),
            in_flight: register(
                registry,
                IntGauge::new(
                    "wasmlet_requests_in_flight",
                    "Requests received and not yet finished.",
                ),
            ),
            traps: register(
                registry,
                IntCounterVec::new(
                    Opts::new("wasmlet_traps_total", "Guests that trapped, by handler."),
                    &["handler"],
                ),
            ),
            timeouts: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "wasmlet_timeouts_total",
                        "Guests stopped at the request timeout, by handler.",
                    ),
                    &["handler"],
                ),
            ),
            live_instances: register(
                registry,
                IntGauge::new("wasmlet_live_instances", "Guest instances alive right now."),
            ),
            live_by_handler: IntGaugeVec::new(
                Opts::new("live_by_handler", "Live instances by handler."),
                &["handler"],
            )
            .expect("a valid metric definition"),
            compiles: register(
                registry,
                IntCounter::new("wasmlet_compiles_total", "Handler compiles started."),
            ),
            compile_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "wasmlet_compile_duration_seconds",
                        "Time to compile one handler version, failed compiles included.",
                    )
                    .buckets(COMPILE_BUCKETS.to_vec()),
                ),
            ),
            disk_cache_hits: register(
                registry,
                IntCounter::new(
                    "wasmlet_disk_cache_hits_total",
                    "Handler loads whose compiled code came from the disk cache.",
                ),
            ),
            disk_cache_misses: register(
                registry,
                IntCounter::new(
                    "wasmlet_disk_cache_misses_total",
                    "Handler loads the disk cache could not serve, so the handler compiled.",
                ),
            ),
            reloads: register(
                registry,
                IntCounter::new(
                    "wasmlet_reloads_total",
                    "Handlers whose served version was replaced by a newer one.",
                ),
            ),
            tier_ups: register(
                registry,
                IntCounter::new(
                    "wasmlet_tier_ups_total",
                    "Handler versions whose baseline-tier (Winch) code was replaced by Cranelift's.",
                ),
            ),
            queue_depth: register(
                registry,
                IntGauge::new(
                    "wasmlet_queue_depth",
                    "Requests waiting for a guest execution slot (--max-concurrency).",
                ),
            ),
            open_connections: register(
                registry,
                IntGauge::new(
                    "wasmlet_open_connections",
                    "Connections open on the main listener (--max-connections).",
                ),
            ),
            handlers,
            route_lookups: {
                let lookups = register(
                    registry,
                    IntCounterVec::new(
                        Opts::new(
                            "wasmlet_route_lookups_total",
                            "Requests routed from the watcher-kept table (table), and file-system \
                             lookups of a route or handler version on a request's way (disk).",
                        ),
                        &["result"],
                    ),
                );
                [Lookup::Table, Lookup::Disk]
                    .map(|result| lookups.with_label_values(&[lookup_label(result)]))
            },
        }
    }
}

/// Registers `metric` and hands it back. The names are fixed and distinct,
/// and the registry is fresh, so neither step can fail.
fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: Collector + Clone + 'static,
{
    let metric = metric.expect("a valid metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}
