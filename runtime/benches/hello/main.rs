//! `env -u RUST_BACKTRACE cargo bench -p wasmlet --bench hello`: wasmlet's
//! speed claims, measured side by side in one run on 127.0.0.1, written to
//! `BENCHMARKS.md` and `BENCHMARKS.json` at the workspace root. Add
//! `-- --quick` for a short run (about a minute) that writes nothing, and
//! `-- --only 2,3` to run only those sections, `-- --rows wasmlet` to run
//! only the load rows whose server name contains `wasmlet`, and
//! `-- --perf DIR` to record each load row's window with `perf record` (a
//! file per row in DIR, for `perf report -i`). A partial or profiled run
//! writes nothing. `-- --baseline PATH --baseline-label TEXT` adds WAT hello
//! rows served by another `wasmlet` binary (an older commit's, built with
//! `cargo build --release`), so a change is measured before and after in one
//! run, under the same load.
//!
//! 1. Hello world: the WAT and SDK hello handlers and the `wasi:http`
//!    component hello against a native hyper server doing the same work (the
//!    ceiling), at 1, 16 and 64 connections.
//! 2. The async claim: N connections, each request waiting 100 ms in
//!    `sleep_ms`, on 2 workers; against the ideal N / 0.1 s, a native tokio
//!    server, and a 20-thread thread-per-request server; with each server's
//!    peak RSS and threads.
//! 3. Per-request overhead: instantiate + call + drop, in-process.
//! 4. First request of a never-seen handler (a small and a large module,
//!    and an 18 MB Python component on the baseline tier); 5. hot reload.
//! 6. Start-up with 1,000 handlers, with and without `--precompile`.
//! 7. Sections 1 and 2 again, driven by `wrk` (Debian's package) instead
//!    of the in-process load generator: users measure with such tools, and
//!    the two disagree on this machine (see [`wrk`]). Skipped, with a
//!    warning, where `wrk` is not installed.
//!
//! Sections 1, 2 and 6 run the real `wasmlet` binary (the one cargo built
//! for this bench, with release settings) as a child process, and the
//! servers it is compared with as child processes too ([`native`]); the load
//! generator ([`load`]) runs here, on its own 2-thread runtime, so on a
//! 2-core machine it competes with the server for the cores, for every
//! server alike. A server process is started fresh for every row, so its
//! peak RSS is the row's. Section 3 runs first, before any load has run in
//! this process; 4 and 5 run the library in-process.
//!
//! # Layout
//! - `load.rs`: the closed-loop HTTP load generator.
//! - `wrk.rs`: running and reading `wrk`.
//! - `native.rs`: the native and thread-pool servers (child side).
//! - `process.rs`: starting and stopping server processes.
//! - `procfs.rs`: RSS, threads and CPU from `/proc`; the machine.
//! - `micro.rs`: instantiate + call + drop.
//! - `first_request.rs`: first request and hot reload, in-process.
//! - `large_component.rs`: building an 18 MB componentize-py component and
//!   its first request, baseline tier and switch, in-process.
//! - `startup.rs`: start-up with 1,000 handlers.
//! - `report.rs`: `BENCHMARKS.md`, `BENCHMARKS.json`, the targets.
//! - `analysis.md`: where the time goes, written by hand from
//!   profiles; copied into `BENCHMARKS.md`.

mod first_request;
mod large_component;
mod load;
mod micro;
mod native;
mod process;
mod procfs;
mod report;
mod startup;
mod wrk;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use load::LoadSpec;
use process::{ServerProcess, Wasmlet};
use report::{Report, Row};

/// The WAT hello handler: one `resp_write`.
const HELLO_WAT: &str = r#"(module
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello\n")
  (func (export "handle") (drop (call $write (i32.const 0) (i32.const 6)))))"#;

/// A handler module that answers `body` (plain text; `\n` allowed), for the
/// sections that need many distinct small modules.
fn says(body: &str) -> String {
    format!(
        r#"(module
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{}")
  (func (export "handle") (drop (call $write (i32.const 0) (i32.const {})))))"#,
        body.replace('\n', "\\n"),
        body.len()
    )
}

/// Waits 100 ms on the host timer, then answers.
const SLEEP_WAT: &str = r#"(module
  (import "wasmlet" "sleep_ms" (func $sleep (param i64)))
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "slept\n")
  (func (export "handle")
    (call $sleep (i64.const 100))
    (drop (call $write (i32.const 0) (i32.const 6)))))"#;

/// Connections for the hello rows.
const HELLO_CONNECTIONS: [usize; 3] = [1, 16, 64];

/// Connections (= concurrent requests) for the 100 ms wait rows.
const WAIT_CONNECTIONS: [usize; 3] = [100, 1_000, 5_000];

/// wasmlet's `--max-instances` for the wait rows: every waiting request
/// holds an instance, and the default (1,000) would answer 503 past it.
const WAIT_MAX_INSTANCES: &str = "6000";

/// The whole run is stopped (servers killed) if it takes longer than this.
const WATCHDOG: Duration = Duration::from_secs(20 * 60);

/// How long each part runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) hello_warmup: Duration,
    pub(crate) wait_warmup: Duration,
    pub(crate) window: Duration,
    /// A client gives up on a connection or a response after this long.
    pub(crate) client_timeout: Duration,
    pub(crate) micro_iterations: usize,
    pub(crate) first_request_repeat: usize,
    pub(crate) hot_reloads: usize,
    pub(crate) startup_repeat: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                hello_warmup: Duration::from_millis(300),
                // Past the 1 s a dropped SYN waits before it is sent again.
                wait_warmup: Duration::from_millis(1200),
                window: Duration::from_secs(1),
                // Within the warm-up and window, so a request a server never
                // answers shows up even in a short run.
                client_timeout: Duration::from_millis(1500),
                micro_iterations: 20_000,
                first_request_repeat: 2,
                hot_reloads: 5,
                startup_repeat: 2,
            }
        } else {
            Self {
                quick,
                hello_warmup: Duration::from_millis(500),
                // Past the 1 s a dropped SYN waits before it is sent again.
                wait_warmup: Duration::from_millis(1500),
                window: Duration::from_secs(5),
                client_timeout: Duration::from_secs(2),
                micro_iterations: 100_000,
                first_request_repeat: 5,
                hot_reloads: 20,
                startup_repeat: 5,
            }
        }
    }
}

/// A large module (about 1 MB of wasm): many small functions, so compile
/// time is that of a real application-sized handler.
fn big_wat() -> String {
    let mut wat = String::from(
        "(module\n (import \"wasmlet\" \"resp_write\" (func $write (param i32 i32) (result i32)))\n (memory (export \"memory\") 1)\n",
    );
    for i in 0..40_000 {
        let _ = writeln!(
            wat,
            " (func $f{i} (param i32) (result i32) local.get 0 i32.const {i} i32.add i32.const 3 i32.mul i32.const 7 i32.xor i32.const 1 i32.shl i32.const 5 i32.rem_u)"
        );
    }
    wat.push_str(" (func (export \"handle\") (drop (call $write (i32.const 0) (call $f7 (i32.const 1)))))\n)\n");
    wat
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime crate sits in the workspace")
}

/// The SDK's hello example built for wasm32, as the tests build it; `None`
/// (and its rows are skipped) if the wasm target is missing.
fn build_sdk_hello() -> Option<Vec<u8>> {
    build_wasm(
        "wasm32-unknown-unknown",
        "wasmlet-handler-hello",
        "hello.wasm",
        "the SDK hello",
    )
}

/// The `wasi:http` component example (`handlers/rust/wasi-hello`) built for
/// wasm32-wasip2, as the tests build it; `None` (and its rows are skipped)
/// if the target is missing.
fn build_component_hello() -> Option<Vec<u8>> {
    build_wasm(
        "wasm32-wasip2",
        "wasmlet-handler-wasi-hello",
        "wasi_hello.wasm",
        "the component hello",
    )
}

/// The WASI 0.3 component example (`handlers/rust/wasi-p3-hello`, Spin SDK
/// 7) built for wasm32-wasip2; `None` (and its rows are skipped) if the
/// target is missing.
fn build_p3_hello() -> Option<Vec<u8>> {
    build_wasm(
        "wasm32-wasip2",
        "wasmlet-handler-wasi-p3-hello",
        "wasi_p3_hello.wasm",
        "the WASI 0.3 component hello",
    )
}

/// The SDK sleeper (`runtime/benches/sdk-sleeper`) built for wasm32, as
/// the SDK hello is; `None` (and its rows are skipped) if the target is
/// missing.
fn build_sdk_sleeper() -> Option<Vec<u8>> {
    build_wasm(
        "wasm32-unknown-unknown",
        "wasmlet-bench-sleeper",
        "sleeper.wasm",
        "the SDK sleeper",
    )
}

/// Which built guests the hello and wait rows can serve (each is skipped
/// when its wasm target is missing).
#[derive(Clone, Copy)]
struct Guests {
    sdk: bool,
    sdk_sleeper: bool,
    component: bool,
    p3: bool,
}

/// Builds `package` for `target` with the `wasm-release` profile and reads
/// its `file`.
fn build_wasm(target: &str, package: &str, file: &str, what: &str) -> Option<Vec<u8>> {
    let target_dir = workspace().join("target").join("wasm-handlers");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace())
        .args([
            "build",
            "--quiet",
            "--profile",
            "wasm-release",
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["-p", package])
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("warning: {what} did not build; its rows are skipped");
        return None;
    }
    std::fs::read(target_dir.join(target).join("wasm-release").join(file)).ok()
}

/// Everything the load rows share.
struct Bench {
    plan: Plan,
    client: tokio::runtime::Runtime,
    /// The web root of the hello and wait rows.
    webroot: tempfile::TempDir,
    /// Their disk cache, shared so each new server finds the code compiled.
    cache: tempfile::TempDir,
    /// Server logs.
    scratch: tempfile::TempDir,
    /// `--rows TEXT`: only the load rows whose server name contains it.
    rows: Option<String>,
    /// `--perf DIR`: record each load row's window with `perf` there.
    perf: Option<PathBuf>,
    /// `--baseline PATH`: another `wasmlet` binary whose WAT hello rows run
    /// beside this one's.
    baseline: Option<PathBuf>,
}

impl Bench {
    /// A fresh `wasmlet serve` on the shared web root.
    fn wasmlet(&self, flags: &[&str], log_filter: &str) -> ServerProcess {
        self.wasmlet_binary(process::wasmlet_binary(), flags, log_filter)
    }

    /// A fresh `binary serve` on the shared web root. The baseline gets a
    /// disk cache of its own: an older binary may key or lay out its entries
    /// differently.
    fn wasmlet_binary(&self, binary: &Path, flags: &[&str], log_filter: &str) -> ServerProcess {
        let baseline = binary != process::wasmlet_binary();
        let cache = if baseline {
            self.scratch.path().join("baseline-cache")
        } else {
            self.cache.path().to_path_buf()
        };
        Wasmlet {
            webroot: self.webroot.path(),
            cache_dir: &cache,
            flags,
            log_filter,
            log: &self.scratch.path().join("wasmlet.log"),
            binary,
        }
        .start()
    }

    /// Starts a server for row `name` and has it answer `path` once (a
    /// handler compiles, or loads, on first use); `None` if `--rows` leaves
    /// the row out.
    fn ready(
        &self,
        name: &str,
        server: impl FnOnce() -> ServerProcess,
        path: &str,
    ) -> Option<ServerProcess> {
        if self
            .rows
            .as_ref()
            .is_some_and(|rows| !name.contains(rows.as_str()))
        {
            return None;
        }
        let server = server();
        let first = self.client.block_on(load::get_body(server.addr, path));
        assert!(
            first.is_some(),
            "GET {path} failed on {name}:\n{}",
            server.log_tail()
        );
        Some(server)
    }

    /// A fresh native or thread-pool server.
    fn native(&self, kind: &str) -> ServerProcess {
        process::start_native(kind, &self.scratch.path().join(format!("{kind}.log")))
    }

    /// Starts a server and loads it at `path` with `connections`
    /// connections; `None` if `--rows` leaves the row out.
    fn row(
        &self,
        name: &str,
        server: impl FnOnce() -> ServerProcess,
        path: &str,
        connections: usize,
        warmup: Duration,
    ) -> Option<Row> {
        let server = self.ready(name, server, path)?;
        let spec = LoadSpec {
            addr: server.addr,
            path,
            connections,
            warmup,
            window: self.plan.window,
            timeout: self.plan.client_timeout,
        };
        let drops_before = procfs::listen_drops();
        let start = Instant::now();
        let window = spec.window_from(start);
        let monitor = procfs::Monitor::start(server.pid(), window);
        let perf = self.perf.as_ref().map(|dir| {
            let file = dir.join(format!("{}-{connections}.data", slug(name)));
            process::perf_record(server.pid(), window, file)
        });
        let result = self.client.block_on(load::run(spec, start));
        let usage = monitor.finish();
        if let Some(perf) = perf {
            let _ = perf.join();
        }
        let listen_drops = procfs::listen_drops()
            .zip(drops_before)
            .map(|(after, before)| after.saturating_sub(before));
        let row = Row::new(name, connections, &result, usage, listen_drops);
        eprintln!("  {}", row.one_line());
        Some(row)
    }
}

impl Bench {
    /// As [`Bench::row`], with `wrk` as the load generator: a warm-up run,
    /// then the measured one.
    fn wrk_row(
        &self,
        name: &str,
        server: impl FnOnce() -> ServerProcess,
        path: &str,
        connections: usize,
        warmup: Duration,
    ) -> Option<Row> {
        let server = self.ready(name, server, path)?;
        let mut spec = wrk::Spec {
            addr: server.addr,
            path,
            connections,
            duration: warmup,
            timeout: self.plan.client_timeout,
        };
        let _ = spec.spawn().wait();
        // The monitor's window sits inside wrk's run, so wrk is alive at
        // both edges to have its CPU time read.
        spec.duration = self.plan.window + 2 * WRK_MARGIN;
        let drops_before = procfs::listen_drops();
        let wrk = spec.spawn();
        let start = Instant::now() + WRK_MARGIN;
        let monitor = procfs::Monitor::start_with(
            server.pid(),
            Some(wrk.id()),
            (start, start + self.plan.window),
        );
        let output = wrk.wait_with_output().expect("wait for wrk");
        let usage = monitor.finish();
        let listen_drops = procfs::listen_drops()
            .zip(drops_before)
            .map(|(after, before)| after.saturating_sub(before));
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(summary) = wrk::Summary::parse(&text) else {
            panic!("wrk's report on {name} is not readable:\n{text}");
        };
        let row = Row::from_wrk(name, connections, &summary, usage, listen_drops);
        eprintln!("  wrk: {}", row.one_line());
        Some(row)
    }
}

/// How far inside a `wrk` run the measured window starts and ends (wrk
/// runs whole seconds: the window plus twice this).
const WRK_MARGIN: Duration = Duration::from_millis(500);

/// Connections for the `wrk` hello rows: `wrk -t2` needs at least two.
const WRK_HELLO_CONNECTIONS: [usize; 2] = [16, 64];

/// Connections for the `wrk` wait rows.
const WRK_WAIT_CONNECTIONS: [usize; 2] = [1_000, 5_000];

/// The baseline WAT hello's row name (the report names it too).
pub(crate) const BASELINE_HELLO: &str = "wasmlet WAT hello, baseline";

/// `name` as a file name.
fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Which load generator drives a row.
#[derive(Debug, Clone, Copy)]
enum Generator {
    /// [`load`], in this process.
    InProcess,
    /// `wrk`, in a child process ([`wrk`]).
    Wrk,
}

impl Bench {
    /// One row, driven by `generator`.
    fn measure(
        &self,
        generator: Generator,
        name: &str,
        server: impl FnOnce() -> ServerProcess,
        path: &str,
        connections: usize,
        warmup: Duration,
    ) -> Option<Row> {
        match generator {
            Generator::InProcess => self.row(name, server, path, connections, warmup),
            Generator::Wrk => self.wrk_row(name, server, path, connections, warmup),
        }
    }

    /// The hello rows at one connection count: each server fresh for each
    /// row, the servers taking turns so drift hits them alike.
    fn hello_rows(&self, generator: Generator, connections: usize, guests: Guests) -> Vec<Row> {
        let warmup = self.plan.hello_warmup;
        let wasmlet = || self.wasmlet(&[], QUIET);
        let row = |name: &str, server: &dyn Fn() -> ServerProcess, path: &str| {
            self.measure(generator, name, server, path, connections, warmup)
        };
        let baseline = self.baseline.as_deref().and_then(|binary| {
            row(
                BASELINE_HELLO,
                &|| self.wasmlet_binary(binary, &[], QUIET),
                "/hello",
            )
        });
        [
            row("native hyper", &|| self.native("native"), "/hello"),
            row("wasmlet WAT hello", &wasmlet, "/hello"),
            baseline,
            guests
                .sdk
                .then(|| row("wasmlet SDK hello (Rust)", &wasmlet, "/sdk-hello"))
                .flatten(),
            guests
                .component
                .then(|| row(COMPONENT_HELLO, &wasmlet, "/wasi-hello"))
                .flatten(),
            guests
                .p3
                .then(|| row(P3_HELLO, &wasmlet, "/p3-hello"))
                .flatten(),
            guests
                .p3
                .then(|| row(P3_REUSED_HELLO, &wasmlet, "/reused/p3-hello"))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The 100 ms wait rows at one connection count: wasmlet's sleepers
    /// (each kind of handler from 1,000 connections on), native tokio, and
    /// (with the in-process generator) the thread pool.
    fn wait_rows(&self, generator: Generator, connections: usize, guests: Guests) -> Vec<Row> {
        let warmup = self.plan.wait_warmup;
        let row = |name: &str, server: &dyn Fn() -> ServerProcess, path: &str| {
            self.measure(generator, name, server, path, connections, warmup)
        };
        let sleeper = || self.wasmlet(&["--max-instances", WAIT_MAX_INSTANCES], QUIET);
        let every_kind = connections >= 1_000;
        // The pool's 20 threads leave 980 of 1,000 connections unanswered:
        // wrk would only count timeouts.
        let pool = matches!(generator, Generator::InProcess)
            .then(|| row("thread pool, 20 threads", &|| self.native("pool"), "/sleep"))
            .flatten();
        [
            row(WAT_SLEEPER, &sleeper, "/sleep"),
            (every_kind && guests.sdk_sleeper)
                .then(|| row(SDK_SLEEPER, &sleeper, "/sdk-sleep?ms=100"))
                .flatten(),
            (every_kind && guests.component)
                .then(|| row(COMPONENT_SLEEPER, &sleeper, "/wasi/sleep?ms=100"))
                .flatten(),
            (every_kind && guests.p3)
                .then(|| row(P3_SLEEPER, &sleeper, "/p3/sleep?ms=100"))
                .flatten(),
            row(
                "native hyper, tokio timer",
                &|| self.native("native"),
                "/sleep",
            ),
            pool,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Section 1, hello world.
    fn hello(&self, report: &mut Report, guests: Guests) {
        for connections in HELLO_CONNECTIONS {
            let rows = self.hello_rows(Generator::InProcess, connections, guests);
            report.hello.extend(rows);
        }
        let logging = || self.wasmlet(&[], "wasmlet=info");
        let name = "wasmlet WAT hello, access log on";
        let warmup = self.plan.hello_warmup;
        report
            .hello
            .extend(self.row(name, logging, "/hello", 64, warmup));
    }

    /// Section 2, 100 ms waits: wasmlet, native tokio, the thread pool.
    fn waits(&self, report: &mut Report, guests: Guests) {
        for connections in WAIT_CONNECTIONS {
            let rows = self.wait_rows(Generator::InProcess, connections, guests);
            report.waits.extend(rows);
        }
    }

    /// Section 7: the hello and wait rows again, driven by `wrk`.
    fn wrk(&self, report: &mut Report, guests: Guests) {
        for connections in WRK_HELLO_CONNECTIONS {
            let rows = self.hello_rows(Generator::Wrk, connections, guests);
            report.wrk_hello.extend(rows);
        }
        for connections in WRK_WAIT_CONNECTIONS {
            let rows = self.wait_rows(Generator::Wrk, connections, guests);
            report.wrk_waits.extend(rows);
        }
    }
}

/// The component hello's row name (the report names it too).
pub(crate) const COMPONENT_HELLO: &str = "wasmlet component hello (wasi:http, Rust)";

/// The WASI 0.3 component hello's row name.
pub(crate) const P3_HELLO: &str = "wasmlet WASI 0.3 component hello (Spin SDK)";

/// The same component, served by warm instances (`[instances] reuse`).
pub(crate) const P3_REUSED_HELLO: &str = "wasmlet WASI 0.3 component hello, reused instances";

/// The wait rows' WAT sleeper (the report names it too).
pub(crate) const WAT_SLEEPER: &str = "wasmlet WAT sleeper, `sleep_ms`";

/// The SDK sleeper's wait rows.
pub(crate) const SDK_SLEEPER: &str = "wasmlet SDK sleeper (Rust)";

/// The WASI 0.2 component hello's `sleep` endpoint (`wstd`'s timer).
pub(crate) const COMPONENT_SLEEPER: &str = "wasmlet component sleeper (wasi:http 0.2, Rust)";

/// The WASI 0.3 component hello's `sleep` endpoint (Spin SDK's timer).
pub(crate) const P3_SLEEPER: &str = "wasmlet WASI 0.3 component sleeper (Spin SDK)";

/// `RUST_LOG` for a wasmlet child: warnings only, so no access log.
const QUIET: &str = "wasmlet=warn";

/// The value after `flag`, if given.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// How many sections a full run has.
const SECTIONS: u8 = 7;

/// Which sections to run: all, or those `--only 1,3` lists.
fn sections(args: &[String]) -> Vec<u8> {
    match args.iter().position(|a| a == "--only") {
        Some(i) => args
            .get(i + 1)
            .map(|list| {
                list.split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
        None => (1..=SECTIONS).collect(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        native::serve(args.get(i + 1).map_or("", String::as_str));
    }
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        eprintln!(
            "warning: RUST_BACKTRACE is set; it slows wasmtime by about 10%, so this run unsets it. Run with `env -u RUST_BACKTRACE`."
        );
        // SAFETY: no other thread exists yet, so none can read the
        // environment while it changes.
        unsafe { std::env::remove_var("RUST_BACKTRACE") };
    }
    let plan = Plan::new(args.iter().any(|a| a == "--quick"));
    let sections = sections(&args);
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("error: the benchmark ran past {WATCHDOG:?}; stopping it");
        process::kill_all();
        std::process::exit(2);
    });

    let machine = procfs::Machine::describe(workspace());
    let mut report = Report::new(plan, machine);
    let bench = Bench {
        plan,
        client: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
        webroot: tempfile::tempdir().expect("a temporary directory"),
        cache: tempfile::tempdir().expect("a temporary directory"),
        scratch: tempfile::tempdir().expect("a temporary directory"),
        rows: flag_value(&args, "--rows").map(str::to_owned),
        perf: flag_value(&args, "--perf").map(PathBuf::from),
        baseline: flag_value(&args, "--baseline").map(PathBuf::from),
    };
    report.baseline = bench.baseline.as_ref().map(|path| {
        flag_value(&args, "--baseline-label")
            .map_or_else(|| path.display().to_string(), str::to_owned)
    });
    if let Some(dir) = &bench.perf {
        std::fs::create_dir_all(dir).expect("create the --perf directory");
    }
    let root = bench.webroot.path();
    std::fs::write(root.join("hello.wat"), HELLO_WAT).expect("write a handler");
    std::fs::write(root.join("sleep.wat"), SLEEP_WAT).expect("write a handler");
    let sdk_hello = build_sdk_hello();
    if let Some(bytes) = &sdk_hello {
        std::fs::write(root.join("sdk-hello.wasm"), bytes).expect("write a handler");
    }
    // Answers `hello, world` at any path but its other endpoints' names.
    let component_hello = build_component_hello();
    if let Some(bytes) = &component_hello {
        std::fs::write(root.join("wasi-hello.wasm"), bytes).expect("write a handler");
        // And as a catch-all, so `/wasi/sleep` reaches its `sleep` endpoint.
        std::fs::create_dir_all(root.join("wasi")).expect("make a directory");
        std::fs::write(root.join("wasi/[...path].wasm"), bytes).expect("write a handler");
    }
    // Likewise: `hello, world` at any path but its endpoints' names.
    let p3_hello = build_p3_hello();
    if let Some(bytes) = &p3_hello {
        std::fs::write(root.join("p3-hello.wasm"), bytes).expect("write a handler");
        std::fs::create_dir_all(root.join("p3")).expect("make a directory");
        std::fs::write(root.join("p3/[...path].wasm"), bytes).expect("write a handler");
        // And again where its directory opts into warm instances, each
        // taking up to `concurrency` (16) requests at once.
        let reused = root.join("reused");
        std::fs::create_dir_all(&reused).expect("make a directory");
        std::fs::write(reused.join("p3-hello.wasm"), bytes).expect("write a handler");
        std::fs::write(reused.join("wasmlet.toml"), "[instances]\nreuse = true\n")
            .expect("write a configuration");
    }
    let sdk_sleeper = build_sdk_sleeper();
    if let Some(bytes) = &sdk_sleeper {
        std::fs::write(root.join("sdk-sleep.wasm"), bytes).expect("write a handler");
    }
    let guests = Guests {
        sdk: sdk_hello.is_some(),
        sdk_sleeper: sdk_sleeper.is_some(),
        component: component_hello.is_some(),
        p3: p3_hello.is_some(),
    };
    let started = Instant::now();

    // The micro-benchmark first, in a process no load has run in yet: its
    // figures are the steadiest then.
    if sections.contains(&3) {
        eprintln!("3. instantiate + call + drop");
        report.micro = micro::run(plan.micro_iterations, sdk_hello.as_deref());
    }
    if sections.contains(&1) {
        eprintln!("1. hello world");
        bench.hello(&mut report, guests);
    }
    if sections.contains(&2) {
        eprintln!("2. 100 ms waits");
        bench.waits(&mut report, guests);
    }
    if sections.contains(&4) {
        eprintln!("4. first request of a never-seen handler");
        let repeat = plan.first_request_repeat;
        let client = &bench.client;
        let small = first_request::first_request(client, "small WAT hello", HELLO_WAT, repeat);
        let large = first_request::first_request(client, "large WAT module", &big_wat(), 1);
        report.first_requests = vec![small, large];
        if let Some(wasm) = large_component::build(workspace()) {
            report.large_component = Some(large_component::measure(
                client,
                "componentize-py hello",
                &wasm,
            ));
        }
    }
    if sections.contains(&5) {
        eprintln!("5. hot reload");
        report.hot_reload = Some(first_request::hot_reload(&bench.client, plan.hot_reloads));
    }
    if sections.contains(&6) {
        eprintln!("6. start-up with {} handlers", startup::HANDLERS);
        report.startups = startup::run(plan.startup_repeat, bench.scratch.path());
    }

    if sections.contains(&7) {
        if wrk::available() {
            eprintln!("7. hello and waits, driven by wrk");
            bench.wrk(&mut report, guests);
        } else {
            eprintln!(
                "warning: `wrk` is not installed (`apt-get install wrk`); section 7 is skipped"
            );
        }
    }

    report.finish(started.elapsed());
    let markdown = report.markdown();
    println!("{markdown}");
    if plan.quick
        || sections.len() < usize::from(SECTIONS)
        || bench.rows.is_some()
        || bench.perf.is_some()
    {
        eprintln!("a quick or partial run: BENCHMARKS.md and BENCHMARKS.json left as they were");
    } else {
        let md = workspace().join("BENCHMARKS.md");
        let json = workspace().join("BENCHMARKS.json");
        std::fs::write(&md, markdown).expect("write BENCHMARKS.md");
        std::fs::write(&json, report.json()).expect("write BENCHMARKS.json");
        eprintln!("wrote {} and {}", md.display(), json.display());
    }
}
