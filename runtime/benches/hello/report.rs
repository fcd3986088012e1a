//! The run's figures, the targets they are held to, and the two files they
//! are written to: `BENCHMARKS.md` for people, `BENCHMARKS.json` for tools.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::first_request::{FirstRequest, HotReload};
use crate::large_component::LargeComponent;
use crate::load::LoadResult;
use crate::micro::Case;
use crate::procfs::{Machine, Usage};
use crate::startup::Startup;
use crate::{Plan, WAIT_MAX_INSTANCES};

/// The command that produces the files.
const COMMAND: &str = "env -u RUST_BACKTRACE cargo bench -p wasmlet --bench hello";

/// Where the time goes: written by hand from profiles, kept with the code.
const ANALYSIS: &str = include_str!("analysis.md");

/// One load run against one server.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) server: String,
    pub(crate) connections: usize,
    pub(crate) rps: f64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) connect_timeouts: u64,
    /// Connections the kernel dropped for a full listen queue during the
    /// run, warm-up included.
    pub(crate) listen_drops: Option<u64>,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) usage: Usage,
}

impl Row {
    pub(crate) fn new(
        server: &str,
        connections: usize,
        load: &LoadResult,
        usage: Usage,
        listen_drops: Option<u64>,
    ) -> Self {
        Self {
            server: server.to_owned(),
            connections,
            rps: load.rps(),
            ok: load.ok,
            errors: load.errors,
            timeouts: load.timeouts,
            connect_timeouts: load.connect_timeouts,
            listen_drops,
            p50_ms: load.percentile_ms(0.5),
            p99_ms: load.percentile_ms(0.99),
            usage,
        }
    }

    /// A row measured by `wrk`. Its errors are non-2xx answers and socket
    /// errors; its latencies are wrk's, which include the timeouts only as
    /// a count.
    pub(crate) fn from_wrk(
        server: &str,
        connections: usize,
        wrk: &crate::wrk::Summary,
        usage: Usage,
        listen_drops: Option<u64>,
    ) -> Self {
        Self {
            server: server.to_owned(),
            connections,
            rps: wrk.ok_rps(),
            ok: wrk.requests.saturating_sub(wrk.non_2xx),
            errors: wrk.non_2xx + wrk.socket_errors,
            timeouts: wrk.timeouts,
            connect_timeouts: 0,
            listen_drops,
            p50_ms: wrk.p50_ms,
            p99_ms: wrk.p99_ms,
            usage,
        }
    }

    /// A progress line for the terminal.
    pub(crate) fn one_line(&self) -> String {
        format!(
            "{} × {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, {} timeouts ({} connecting), {} listen drops, {:.0} MiB, {} threads, CPU server {:.0}% load {:.0}%",
            self.server,
            self.connections,
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.timeouts,
            self.connect_timeouts,
            self.listen_drops.unwrap_or(0),
            self.usage.peak_rss_mib,
            self.usage.peak_threads,
            self.usage.server_cpu_pct,
            self.usage.loadgen_cpu_pct
        )
    }

    /// The server's CPU time per successful request, µs.
    fn server_us_per_request(&self) -> f64 {
        self.usage.server_cpu_pct * 1e4 / self.rps
    }

    fn json(&self) -> Value {
        json!({
            "server": self.server,
            "connections": self.connections,
            "requests_per_s": round(self.rps, 1),
            "ok": self.ok,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "connect_timeouts": self.connect_timeouts,
            "listen_drops": self.listen_drops,
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "server_cpu_pct": round(self.usage.server_cpu_pct, 1),
            "server_cpu_us_per_request": round(self.server_us_per_request(), 2),
            "loadgen_cpu_pct": round(self.usage.loadgen_cpu_pct, 1),
            "peak_rss_mib": round(self.usage.peak_rss_mib, 1),
            "peak_threads": self.usage.peak_threads,
        })
    }
}

/// The wait rows' sleepers, each with its 1,000-connection RSS target in
/// MiB (core handlers 64, components 96).
const SLEEPERS: [(&str, f64); 4] = [
    (crate::WAT_SLEEPER, 64.0),
    (crate::SDK_SLEEPER, 64.0),
    (crate::COMPONENT_SLEEPER, 96.0),
    (crate::P3_SLEEPER, 96.0),
];

/// The parts of a measurement joined, each that misses its bound marked
/// `✗`, and whether all met theirs.
fn verdict(parts: &[(String, bool)]) -> (String, bool) {
    let text = parts
        .iter()
        .map(|(part, ok)| {
            if *ok {
                part.clone()
            } else {
                format!("{part} ✗")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (text, parts.iter().all(|(_, ok)| *ok))
}

/// A sleeper's kind, for a target's claim: `WAT sleeper`.
fn kind(server: &str) -> &str {
    server
        .strip_prefix("wasmlet ")
        .and_then(|rest| rest.split([',', '(']).next())
        .map_or(server, str::trim)
}

/// A claim's target and whether this run met it.
#[derive(Debug, Clone)]
struct Target {
    claim: String,
    target: String,
    measured: String,
    /// `None` when the run has no figure for it.
    met: Option<bool>,
}

/// Everything one run measured.
pub(crate) struct Report {
    plan: Plan,
    machine: Machine,
    date: String,
    took: Duration,
    load_average_after: String,
    pub(crate) hello: Vec<Row>,
    pub(crate) waits: Vec<Row>,
    pub(crate) micro: Vec<Case>,
    pub(crate) first_requests: Vec<FirstRequest>,
    pub(crate) hot_reload: Option<HotReload>,
    pub(crate) startups: Vec<Startup>,
    /// Section 4's large component, where it built.
    pub(crate) large_component: Option<LargeComponent>,
    /// Section 7: the hello rows driven by `wrk`.
    pub(crate) wrk_hello: Vec<Row>,
    /// Section 7: the wait rows driven by `wrk`.
    pub(crate) wrk_waits: Vec<Row>,
    /// `--baseline`: what the baseline binary is (its label, or path).
    pub(crate) baseline: Option<String>,
}

/// `server`'s req/s over `base`'s in `rows`, at each connection count both
/// have.
fn ratios(rows: &[Row], server: &str, base: &str) -> Vec<(usize, f64)> {
    rows.iter()
        .filter(|r| r.server == server)
        .filter_map(|row| {
            let base = rows
                .iter()
                .find(|r| r.server == base && r.connections == row.connections)?;
            Some((row.connections, row.rps / base.rps))
        })
        .collect()
}

/// `40% at 16, 42% at 64`.
fn percents(ratios: &[(usize, f64)]) -> String {
    ratios
        .iter()
        .map(|(c, r)| format!("{:.0}% at {c}", r * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `+12.0% at 16, -3.0% at 64`: a change against the baseline.
fn changes(ratios: &[(usize, f64)]) -> String {
    ratios
        .iter()
        .map(|(c, r)| format!("{:+.1}% at {c}", (r - 1.0) * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ratio lines under a hello table: each wasmlet server to native
/// hyper, and this binary's WAT hello to the baseline's.
fn hello_ratio_lines(md: &mut String, rows: &[Row], baseline: Option<&str>) {
    for server in [
        "wasmlet WAT hello",
        crate::BASELINE_HELLO,
        "wasmlet SDK hello (Rust)",
        crate::COMPONENT_HELLO,
        crate::P3_HELLO,
        crate::P3_REUSED_HELLO,
    ] {
        let ratios = ratios(rows, server, "native hyper");
        if !ratios.is_empty() {
            let _ = writeln!(md, "- {server} / native hyper: {}.", percents(&ratios));
        }
    }
    let change = ratios(rows, "wasmlet WAT hello", crate::BASELINE_HELLO);
    if let (Some(label), false) = (baseline, change.is_empty()) {
        let _ = writeln!(
            md,
            "- wasmlet WAT hello against the baseline ({label}): {}.",
            changes(&change)
        );
    }
}

/// A load table: hello rows (`waits == false`) or wait rows (with their
/// share of the ideal connections / 0.1 s).
fn load_table(md: &mut String, rows: &[Row], waits: bool) {
    if waits {
        let _ = writeln!(
            md,
            "| server | connections | req/s | of ideal | p50 ms | p99 ms | errors | timeouts | listen drops | server CPU (µs/req) | load gen CPU | peak RSS MiB | threads |"
        );
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
    } else {
        let _ = writeln!(
            md,
            "| server | connections | req/s | p50 ms | p99 ms | errors | server CPU | server CPU µs/req | load gen CPU | peak RSS MiB | threads |"
        );
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
    }
    for r in rows {
        if waits {
            let ideal = r.connections as f64 / 0.1;
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.1}% | {:.1} | {:.1} | {} | {} | {} | {:.0}% ({:.0}) | {:.0}% | {:.1} | {} |",
                r.server,
                thousands(r.connections),
                r.rps,
                100.0 * r.rps / ideal,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                r.timeouts,
                r.listen_drops
                    .map_or_else(|| "?".to_owned(), |d| d.to_string()),
                r.usage.server_cpu_pct,
                r.server_us_per_request(),
                r.usage.loadgen_cpu_pct,
                r.usage.peak_rss_mib,
                r.usage.peak_threads
            );
        } else {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.0}% | {:.1} | {:.0}% | {:.1} | {} |",
                r.server,
                r.connections,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors + r.timeouts,
                r.usage.server_cpu_pct,
                r.server_us_per_request(),
                r.usage.loadgen_cpu_pct,
                r.usage.peak_rss_mib,
                r.usage.peak_threads
            );
        }
    }
    let _ = writeln!(md);
}

fn round(x: f64, decimals: i32) -> Value {
    if x.is_finite() {
        let scale = 10f64.powi(decimals);
        json!((x * scale).round() / scale)
    } else {
        Value::Null
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::NAN, f64::max)
}

/// `12.3` or, for several runs, `12.3 (max 14.0)`.
fn median_max(xs: &[f64]) -> String {
    if xs.len() > 1 {
        format!("{:.1} (max {:.1})", median(xs), max(xs))
    } else {
        format!("{:.1}", median(xs))
    }
}

fn met(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn thousands(n: usize) -> String {
    if n >= 1000 {
        format!("{},{:03}", n / 1000, n % 1000)
    } else {
        n.to_string()
    }
}

impl Report {
    pub(crate) fn new(plan: Plan, machine: Machine) -> Self {
        Self {
            plan,
            machine,
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            took: Duration::ZERO,
            load_average_after: String::new(),
            hello: Vec::new(),
            waits: Vec::new(),
            micro: Vec::new(),
            first_requests: Vec::new(),
            hot_reload: None,
            startups: Vec::new(),
            large_component: None,
            wrk_hello: Vec::new(),
            wrk_waits: Vec::new(),
            baseline: None,
        }
    }

    /// Records how long the run took and the load average after it.
    pub(crate) fn finish(&mut self, took: Duration) {
        self.took = took;
        self.load_average_after = crate::procfs::load_average();
    }

    fn hello_row(&self, server: &str, connections: usize) -> Option<&Row> {
        self.hello
            .iter()
            .find(|r| r.server == server && r.connections == connections)
    }

    fn wait_row(&self, prefix: &str, connections: usize) -> Option<&Row> {
        self.waits
            .iter()
            .find(|r| r.server.starts_with(prefix) && r.connections == connections)
    }

    /// `server`'s req/s over native hyper's at each hello connection count.
    fn hello_ratios(&self, server: &str) -> Vec<(usize, f64)> {
        ratios(&self.hello, server, "native hyper")
    }

    fn startup(&self, name_start: &str) -> Option<&Startup> {
        self.startups
            .iter()
            .find(|s| s.name.starts_with(name_start))
    }

    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        self.hello_targets(&mut targets);
        self.wait_targets(&mut targets);
        self.large_component_targets(&mut targets);
        for (kind, case) in [("WAT hello", "WAT hello (one"), ("SDK hello", "SDK hello")] {
            let call = self.micro.iter().find(|c| c.name.contains(case));
            targets.push(Target {
                claim: format!("instantiate + call + drop, {kind}"),
                target: "≤ 5 µs".into(),
                measured: call.map_or_else(String::new, |c| {
                    format!("{:.2} µs mean, {:.2} µs p50", c.mean_us, c.p50_us)
                }),
                met: call.map(|c| c.mean_us <= 5.0),
            });
        }
        let first = self
            .first_requests
            .iter()
            .find(|f| f.name.starts_with("small"));
        targets.push(Target {
            claim: "first request, never-seen small handler, empty cache".into(),
            target: "≤ 20 ms".into(),
            measured: first
                .map_or_else(String::new, |f| format!("{} ms", median_max(&f.compile_ms))),
            met: first.map(|f| median(&f.compile_ms) <= 20.0),
        });
        targets.push(Target {
            claim: "first request, never-seen small handler, warm disk cache".into(),
            target: "≤ 10 ms".into(),
            measured: first.map_or_else(String::new, |f| {
                format!("{} ms", median_max(&f.disk_cache_ms))
            }),
            met: first.map(|f| median(&f.disk_cache_ms) <= 10.0),
        });
        for name in [
            "1,000 handlers, no --precompile, empty cache",
            "1,000 handlers, no --precompile, warm cache",
            "1,000 handlers, --precompile, warm cache",
        ] {
            let s = self.startup(name);
            targets.push(Target {
                claim: format!("start-up to first response: {}", &name[16..]),
                target: "≤ 100 ms".into(),
                measured: s.map_or_else(String::new, |s| {
                    format!("{} ms", median_max(&s.first_response_ms))
                }),
                met: s.map(|s| median(&s.first_response_ms) <= 100.0),
            });
        }
        targets
    }

    /// Each kind's hello against native hyper at 16 and 64 connections, with
    /// either load generator.
    fn hello_targets(&self, targets: &mut Vec<Target>) {
        for (kind, server, share) in [
            ("WAT hello", "wasmlet WAT hello", 0.45),
            ("SDK hello", "wasmlet SDK hello (Rust)", 0.35),
            ("WASI 0.2 component hello", crate::COMPONENT_HELLO, 0.30),
            (
                "WASI 0.3 component hello, reused instances",
                crate::P3_REUSED_HELLO,
                0.50,
            ),
        ] {
            for (generator, rows) in [("in-process", &self.hello), ("wrk", &self.wrk_hello)] {
                let ratios: Vec<_> = ratios(rows, server, "native hyper")
                    .into_iter()
                    .filter(|(c, _)| *c >= 16)
                    .collect();
                targets.push(Target {
                    claim: format!("{kind}, {generator}"),
                    target: format!("≥ {:.0}% of native hyper's req/s", share * 100.0),
                    measured: percents(&ratios),
                    met: (!ratios.is_empty()).then(|| ratios.iter().all(|(_, r)| *r >= share)),
                });
            }
        }
    }

    /// The 100 ms waits: every kind at 1,000 connections against the ideal,
    /// at 5,000 against native hyper, with either load generator.
    fn wait_targets(&self, targets: &mut Vec<Target>) {
        for (generator, rows) in [("in-process", &self.waits), ("wrk", &self.wrk_waits)] {
            for (server, rss) in SLEEPERS {
                let Some(r) = rows
                    .iter()
                    .find(|r| r.server == server && r.connections == 1_000)
                else {
                    continue;
                };
                let of_ideal = r.rps / 10_000.0;
                let (measured, met) = verdict(&[
                    (format!("{:.1}%", of_ideal * 100.0), of_ideal >= 0.92),
                    (format!("p99 {:.0} ms", r.p99_ms), r.p99_ms <= 120.0),
                    (
                        format!("{:.1} MiB", r.usage.peak_rss_mib),
                        r.usage.peak_rss_mib <= rss,
                    ),
                    (
                        format!("{} errors", r.errors + r.timeouts),
                        r.errors == 0 && r.timeouts == 0,
                    ),
                ]);
                targets.push(Target {
                    claim: format!("1,000 connections × 100 ms, {}, {generator}", kind(server)),
                    target: format!("≥ 92% of ideal, p99 ≤ 120 ms, RSS ≤ {rss} MiB, no errors"),
                    measured,
                    met: Some(met),
                });
            }
            let native = rows
                .iter()
                .find(|r| r.server.starts_with("native") && r.connections == 5_000);
            for (server, _) in SLEEPERS {
                let Some(r) = rows
                    .iter()
                    .find(|r| r.server == server && r.connections == 5_000)
                else {
                    continue;
                };
                let share = native.map_or(f64::NAN, |n| r.rps / n.rps);
                let (measured, met) = verdict(&[
                    (format!("{:.0}%", share * 100.0), share >= 0.80),
                    (format!("p99 {:.0} ms", r.p99_ms), r.p99_ms <= 300.0),
                    (
                        format!("{:.1} MiB", r.usage.peak_rss_mib),
                        r.usage.peak_rss_mib <= 160.0,
                    ),
                ]);
                targets.push(Target {
                    claim: format!("5,000 connections × 100 ms, {}, {generator}", kind(server)),
                    target: "≥ 80% of native hyper's req/s, p99 ≤ 300 ms, RSS ≤ 160 MiB".into(),
                    measured,
                    met: Some(met),
                });
            }
        }
    }

    /// The large component: its first response on a cold cache, when the
    /// optimised code takes over, and the requests across the switch.
    fn large_component_targets(&self, targets: &mut Vec<Target>) {
        let Some(c) = &self.large_component else {
            return;
        };
        let what = format!("{} ({:.1} MB)", c.name, c.wasm_kb as f64 / 1000.0);
        targets.push(Target {
            claim: format!("first request, {what}, empty cache"),
            target: "≤ 2 s".into(),
            measured: format!(
                "{:.0} ms (Cranelift alone: {:.0} ms)",
                c.baseline_first_ms, c.cranelift_first_ms
            ),
            met: Some(c.baseline_first_ms <= 2_000.0),
        });
        targets.push(Target {
            claim: format!("optimised code in place, {what}"),
            target: "within its normal compile time (Cranelift alone's first request)".into(),
            measured: format!(
                "{:.0} ms after the first request, against {:.0} ms",
                c.optimized_after_ms, c.cranelift_first_ms
            ),
            met: Some(c.optimized_after_ms <= c.cranelift_first_ms),
        });
        targets.push(Target {
            claim: format!("requests across the switch, {what}"),
            target: "none failed, none over 1 s".into(),
            measured: format!(
                "{} requests, {} failed, slowest {:.0} ms",
                c.switch_requests, c.switch_failures, c.switch_max_ms
            ),
            met: Some(c.switch_failures == 0 && c.switch_max_ms <= 1_000.0),
        });
    }

    /// `BENCHMARKS.md`.
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let window = self.plan.window.as_secs_f64();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Measured {} by `{COMMAND}{}`, which took {:.0} s; `BENCHMARKS.json` has the \
             same figures. The targets are for this 2-core machine with the load generator \
             on it.\n",
            self.date,
            if self.plan.quick { " -- --quick" } else { "" },
            self.took.as_secs_f64()
        );
        let _ = writeln!(md, "| | |\n| --- | --- |");
        let _ = writeln!(
            md,
            "| machine | {}, {} cores, {:.1} GiB, Linux {} |",
            m.cpu, m.cores, m.memory_gib, m.kernel
        );
        let _ = writeln!(
            md,
            "| load average (1, 5, 15 min) | {} before, {} after |",
            m.load_average, self.load_average_after
        );
        let _ = writeln!(md, "| rustc | {} |", m.rustc);
        let _ = writeln!(
            md,
            "| crates (Cargo.lock) | wasmtime {}, tokio {}, hyper {} |",
            m.wasmtime, m.tokio, m.hyper
        );
        let _ = writeln!(md, "| wasmlet | {} |", m.commit);

        let _ = writeln!(md, "\n## Targets\n");
        let _ = writeln!(
            md,
            "| claim | target | measured | |\n| --- | --- | --- | --- |"
        );
        for t in self.targets() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                t.claim,
                t.target,
                t.measured,
                met(t.met)
            );
        }

        let _ = writeln!(md, "\n## How it was measured\n");
        let _ = writeln!(
            md,
            "- **Servers are separate processes**, started fresh for every row: the `wasmlet` \
             binary cargo built for the bench (release settings) with `serve WEBROOT --workers 2 \
             --listen 127.0.0.1:PORT --cache-dir DIR`, and the servers it is compared with, which \
             are the bench binary started again (`--serve native`, `--serve pool`). Peak RSS is the \
             server's `VmHWM` from `/proc/PID/status`, peak threads the most `Threads` seen there \
             (sampled every 10 ms). CPU is the server's and the load generator's user + system \
             time over the window, in % of one core (200% is both cores).\n\
             - **The load generator** runs in the bench process on 2 tokio threads: each \
             connection sends `GET`s back to back over HTTP/1.1 keep-alive. Requests are counted \
             over a {window:.0} s window after a warm-up ({:.1} s for hello, {:.1} s for the waits). \
             A connection or response not there after {} s is a *timeout*: it enters p50/p99 at \
             {} ms and the client opens a new connection. Errors are non-2xx answers and failed \
             connections. Latency is from sending the request to the end of the body.\n\
             - **wasmlet**: the access log is off (`RUST_LOG=wasmlet=warn`) except in the row that \
             says otherwise; it writes to a file. The wait rows run with `--max-instances {WAIT_MAX_INSTANCES}`: every \
             waiting request holds an instance, and the default 1,000 would answer 503 past it. \
             Handlers are compiled before the window (one request first; the disk cache is shared).\n\
             - **native hyper**: hyper on tokio with 2 workers, answering `hello\\n`, or \
             `tokio::time::sleep(100 ms)` then `slept\\n`: wasmlet's stack without WebAssembly.\n\
             - **thread pool**: the classic synchronous server, 20 threads each blocking in \
             `accept`, then serving that connection: read a request, `thread::sleep(100 ms)`, \
             write the response, next request. A thread keeps its keep-alive connection until the \
             client closes it, it idles 5 s, or it has served 100 requests (Apache's defaults); \
             connections beyond 20 wait in the listen queue.\n\
             - **Listen queues**: native hyper and the thread pool listen with a backlog of 1,024, \
             wasmlet with 4,096 (`wasmlet::server::LISTEN_BACKLOG`). When more \
             connections arrive at once than the queue holds, the kernel drops the SYNs and the \
             clients send them again 1 s later: the *listen drops* column counts them \
             (`TcpExt ListenDrops`, machine-wide, over the whole row). A connection not made within \
             the client timeout counts as a timeout.\n\
             - **In-process parts**: the per-request micro-benchmark uses wasmlet's own engine \
             (`wasmlet::engine::WasmEngine`, so the pooling allocator, epoch interruption and \
             async settings are the server's) with stand-in host imports, and mirrors \
             `engine/run.rs`: fresh `Store` with limits and an epoch deadline, \
             `instantiate_async`, `call_async`, drop. First request and hot reload run \
             `wasmlet::Server` in the bench process on a 2-worker runtime.\n\
             - `RUST_BACKTRACE` is unset: it slows wasmtime by about 10%.",
            self.plan.hello_warmup.as_secs_f64(),
            self.plan.wait_warmup.as_secs_f64(),
            self.plan.client_timeout.as_secs_f64(),
            self.plan.client_timeout.as_millis(),
        );

        let _ = writeln!(md, "\n## 1. Hello world\n");
        if let Some(label) = &self.baseline {
            let _ = writeln!(
                md,
                "The baseline rows are served by another `wasmlet` binary ({label}), under the same load generator, for a before-and-after in one run.\n"
            );
        }
        load_table(&mut md, &self.hello, false);
        hello_ratio_lines(&mut md, &self.hello, self.baseline.as_deref());
        if let (Some(on), Some(off)) = (
            self.hello_row("wasmlet WAT hello, access log on", 64),
            self.hello_row("wasmlet WAT hello", 64),
        ) {
            let _ = writeln!(
                md,
                "- The access log (one line per request, to a file) costs {:.0}% of the WAT hello's req/s at 64 connections.",
                100.0 * (1.0 - on.rps / off.rps)
            );
        }

        let _ = writeln!(
            md,
            "\n## 2. 100 ms waits: async vs a thread pool\n\nEach connection has one request in flight; each request waits 100 ms on the host's timer, so the ideal is connections / 0.1 s. wasmlet's sleepers: a WAT module calling `sleep_ms`, an SDK handler calling `sleep` (`runtime/benches/sdk-sleeper`), and the WASI 0.2 and 0.3 component hellos' `sleep?ms=100` endpoints (`wasi:clocks`). From 1,000 connections on, every kind runs.\n"
        );
        load_table(&mut md, &self.waits, true);
        for c in crate::WAIT_CONNECTIONS {
            if let (Some(w), Some(p)) = (
                self.wait_row(crate::WAT_SLEEPER, c),
                self.wait_row("thread pool", c),
            ) {
                let _ = writeln!(
                    md,
                    "- {} connections: the WAT sleeper {:.1}% of ideal, {:.1}× the thread pool's req/s ({:.1}% of ideal; the pool's own ceiling is 20 / 0.1 s = 200 req/s).",
                    thousands(c),
                    w.rps / (c as f64 * 10.0) * 100.0,
                    w.rps / p.rps,
                    p.rps / (c as f64 * 10.0) * 100.0
                );
            }
        }

        let _ = writeln!(md, "\n## 3. Per-request overhead, in-process\n");
        let _ = writeln!(
            md,
            "One task on a 2-worker runtime runs the cycle back to back, before any load has run in the bench process; each case runs as many warm-up iterations first.\n"
        );
        let _ = writeln!(
            md,
            "| cycle | iterations | mean µs | p50 µs | p99 µs |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for c in &self.micro {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} |",
                c.name, c.iterations, c.mean_us, c.p50_us, c.p99_us
            );
        }

        let _ = writeln!(md, "\n## 4. First request of a never-seen handler\n");
        let _ = writeln!(
            md,
            "From sending `GET` on a new connection to the end of the response; each run uses a new web root and an empty cache, then restarts the server on the now-warm cache. Median of the runs, with the maximum. A module of 1 MiB or more answers its first request from the baseline tier (Winch); the restart waits for Cranelift's code to reach the disk cache.\n"
        );
        let _ = writeln!(
            md,
            "| handler | runs | empty cache ms | restart, warm disk cache ms | in memory ms |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for f in &self.first_requests {
            let _ = writeln!(
                md,
                "| {} ({} KB text, {} KB wasm) | {} | {} | {} | {} |",
                f.name,
                f.wat_kb,
                f.wasm_kb,
                f.compile_ms.len(),
                median_max(&f.compile_ms),
                median_max(&f.disk_cache_ms),
                median_max(&f.memory_ms)
            );
        }
        if let Some(c) = &self.large_component {
            let _ = writeln!(
                md,
                "\nA large component: {} ({} KB). With the default `--baseline-above` (1 MiB) Winch compiles it for the first request and Cranelift again in the background; its code takes over like a hot reload. {SWITCH} clients request it every {INTERVAL} ms each from the first response until a second after the switch.\n",
                c.name,
                c.wasm_kb,
                SWITCH = crate::large_component::SWITCH_CLIENTS,
                INTERVAL = crate::large_component::SWITCH_INTERVAL.as_millis(),
            );
            let _ = writeln!(
                md,
                "| | ms |\n| --- | ---: |\n\
                 | first request, empty cache, Cranelift only (`--baseline-above off`) | {:.0} |\n\
                 | first request, empty cache, baseline tier (Winch) | {:.0} |\n\
                 | Cranelift's code serving, from the first request | {:.0} |\n\
                 | median request on Winch's code, while Cranelift compiles | {:.1} |\n\
                 | median request on Cranelift's code | {:.1} |\n\
                 | slowest request across the switch ({} requests, {} failed) | {:.1} |\n\
                 | first request after a restart, warm disk cache | {:.0} |",
                c.cranelift_first_ms,
                c.baseline_first_ms,
                c.optimized_after_ms,
                c.baseline_p50_ms,
                c.optimized_p50_ms,
                c.switch_requests,
                c.switch_failures,
                c.switch_max_ms,
                c.warm_cache_ms,
            );
        }

        if let Some(h) = &self.hot_reload {
            let _ = writeln!(md, "\n## 5. Hot reload\n");
            let _ = writeln!(
                md,
                "A new version renamed over a handler → the first response from it, {} times: median {:.2} ms, max {:.2} ms.",
                h.times_ms.len(),
                median(&h.times_ms),
                max(&h.times_ms)
            );
        }

        let _ = writeln!(
            md,
            "\n## 6. Start-up with {} handlers\n",
            thousands(crate::startup::HANDLERS)
        );
        let _ = writeln!(
            md,
            "Small `.wat` handlers in `d0..d9/e0..e9/h0..h9.wat`. Time from spawning `wasmlet serve --workers 2` until a TCP connection succeeds (the kernel accepts once the socket listens, before `--precompile` is done), and until `GET /d3/e4/h5` has its `200` (a new connection per start-up, polled every 0.2 ms). Median of the runs, with the maximum.\n"
        );
        let _ = writeln!(
            md,
            "| configuration | runs | port accepts ms | first response ms |\n| --- | ---: | ---: | ---: |"
        );
        for s in &self.startups {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                s.name,
                s.first_response_ms.len(),
                median_max(&s.port_ms),
                median_max(&s.first_response_ms)
            );
        }

        if !self.wrk_hello.is_empty() || !self.wrk_waits.is_empty() {
            let _ = writeln!(md, "\n## 7. The same, driven by wrk\n");
            let _ = writeln!(
                md,
                "`wrk -t2 -cN --timeout {} --latency` (Debian's `wrk`): a warm-up run as long as the row's warm-up, then the measured run; the server's CPU and RSS are sampled over its middle {window:.0} s, and *load gen CPU* is wrk's. Req/s counts 2xx answers only; wrk counts a timeout but leaves it out of its percentiles.\n",
                crate::wrk::seconds(self.plan.client_timeout)
            );
            load_table(&mut md, &self.wrk_hello, false);
            hello_ratio_lines(&mut md, &self.wrk_hello, self.baseline.as_deref());
            let _ = writeln!(md);
            load_table(&mut md, &self.wrk_waits, true);
            for row in self
                .wrk_waits
                .iter()
                .filter(|r| r.server.starts_with("wasmlet"))
            {
                let native = self
                    .wrk_waits
                    .iter()
                    .find(|r| r.server.starts_with("native") && r.connections == row.connections);
                if let Some(native) = native {
                    let _ = writeln!(
                        md,
                        "- {} connections, {}: {:.0}% of native hyper's req/s, p99 {:.0} ms against {:.0} ms.",
                        thousands(row.connections),
                        kind(&row.server),
                        100.0 * row.rps / native.rps,
                        row.p99_ms,
                        native.p99_ms
                    );
                }
            }
        }

        let _ = writeln!(md, "\n{}", ANALYSIS.trim_end());
        md
    }

    /// `BENCHMARKS.json`.
    pub(crate) fn json(&self) -> String {
        let m = &self.machine;
        let value = json!({
            "command": COMMAND,
            "date": self.date,
            "took_s": round(self.took.as_secs_f64(), 1),
            "machine": {
                "cpu": m.cpu,
                "cores": m.cores,
                "memory_gib": round(m.memory_gib, 1),
                "kernel": m.kernel,
                "load_average_before": m.load_average,
                "load_average_after": self.load_average_after,
            },
            "versions": {
                "rustc": m.rustc,
                "wasmtime": m.wasmtime,
                "tokio": m.tokio,
                "hyper": m.hyper,
                "wasmlet_commit": m.commit,
            },
            "settings": {
                "window_s": self.plan.window.as_secs_f64(),
                "hello_warmup_s": self.plan.hello_warmup.as_secs_f64(),
                "wait_warmup_s": self.plan.wait_warmup.as_secs_f64(),
                "client_timeout_s": self.plan.client_timeout.as_secs_f64(),
                "workers": 2,
                "wait_max_instances": WAIT_MAX_INSTANCES.parse::<u32>().ok(),
            },
            "targets": self.targets().iter().map(|t| json!({
                "claim": t.claim,
                "target": t.target,
                "measured": t.measured,
                "met": t.met,
            })).collect::<Vec<_>>(),
            "hello": self.hello.iter().map(Row::json).collect::<Vec<_>>(),
            "baseline": self.baseline,
            "hello_ratio_to_baseline": ratios(&self.hello, "wasmlet WAT hello", crate::BASELINE_HELLO).iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
            "wrk_hello": self.wrk_hello.iter().map(Row::json).collect::<Vec<_>>(),
            "wrk_waits": self.wrk_waits.iter().map(Row::json).collect::<Vec<_>>(),
            "hello_ratio_to_native": {
                "wat": self.hello_ratios("wasmlet WAT hello").iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
                "sdk": self.hello_ratios("wasmlet SDK hello (Rust)").iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
                "component": self.hello_ratios(crate::COMPONENT_HELLO).iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
                "wasi_0_3_component": self.hello_ratios(crate::P3_HELLO).iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
                "wasi_0_3_component_reused": self.hello_ratios(crate::P3_REUSED_HELLO).iter().map(|(c, r)| json!({"connections": c, "ratio": round(*r, 3)})).collect::<Vec<_>>(),
            },
            "waits": self.waits.iter().map(|r| {
                let mut v = r.json();
                let ideal = r.connections as f64 / 0.1;
                v["ideal_per_s"] = json!(ideal);
                v["of_ideal"] = round(r.rps / ideal, 4);
                v
            }).collect::<Vec<_>>(),
            "per_request": self.micro.iter().map(|c| json!({
                "cycle": c.name,
                "iterations": c.iterations,
                "mean_us": round(c.mean_us, 3),
                "p50_us": round(c.p50_us, 3),
                "p99_us": round(c.p99_us, 3),
            })).collect::<Vec<_>>(),
            "first_request": self.first_requests.iter().map(|f| json!({
                "handler": f.name,
                "wat_kb": f.wat_kb,
                "wasm_kb": f.wasm_kb,
                "compile_ms": f.compile_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
                "warm_disk_cache_ms": f.disk_cache_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
                "in_memory_ms": f.memory_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "large_component": self.large_component.as_ref().map(|c| json!({
                "handler": c.name,
                "wasm_kb": c.wasm_kb,
                "first_request_cranelift_ms": round(c.cranelift_first_ms, 1),
                "first_request_baseline_ms": round(c.baseline_first_ms, 1),
                "optimized_after_ms": round(c.optimized_after_ms, 1),
                "switch_requests": c.switch_requests,
                "switch_failures": c.switch_failures,
                "switch_max_ms": round(c.switch_max_ms, 1),
                "baseline_p50_ms": round(c.baseline_p50_ms, 2),
                "optimized_p50_ms": round(c.optimized_p50_ms, 2),
                "warm_cache_ms": round(c.warm_cache_ms, 1),
            })),
            "hot_reload_ms": self.hot_reload.as_ref().map(|h| h.times_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>()),
            "startup": self.startups.iter().map(|s| json!({
                "configuration": s.name,
                "handlers": s.handlers,
                "precompile": s.precompile,
                "warm_cache": s.warm_cache,
                "port_accepts_ms": s.port_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
                "first_response_ms": s.first_response_ms.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&value).expect("JSON");
        text.push('\n');
        text
    }
}
