//! Start-up of the `wasmlet` binary with 1,000 small handlers in nested
//! directories: time from spawning the process until its port accepts a
//! connection, and until it answers a handler request, with and without
//! `--precompile`, with an empty and a warm disk cache.

use std::path::Path;
use std::time::Duration;

use crate::process::{Wasmlet, get_status, wait_for_port};

/// Handlers in the web root: `d{0..9}/e{0..9}/h{0..9}.wat`.
pub(crate) const HANDLERS: usize = 1_000;

/// The handler every start-up is timed against.
const PROBE: &str = "/d3/e4/h5";

/// Longest a start-up may take before the run fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One start-up configuration, timed `ms.len()` times.
#[derive(Debug, Clone)]
pub(crate) struct Startup {
    pub(crate) name: &'static str,
    pub(crate) handlers: usize,
    pub(crate) precompile: bool,
    pub(crate) warm_cache: bool,
    /// Spawn → TCP connect succeeds, ms.
    pub(crate) port_ms: Vec<f64>,
    /// Spawn → first handler response (200), ms.
    pub(crate) first_response_ms: Vec<f64>,
}

/// Writes the 1,000 handlers, each answering its own number (distinct
/// modules, so each has its own cache entry).
fn write_handlers(root: &Path) {
    let mut n = 0;
    for d in 0..10 {
        for e in 0..10 {
            let dir = root.join(format!("d{d}/e{e}"));
            std::fs::create_dir_all(&dir).expect("create a handler directory");
            for h in 0..10 {
                let wat = crate::says(&format!("handler {n:04}\n"));
                std::fs::write(dir.join(format!("h{h}.wat")), wat).expect("write a handler");
                n += 1;
            }
        }
    }
}

/// Times one start-up: spawn, wait for the port, `GET` the probe handler.
fn start_once(webroot: &Path, cache: &Path, precompile: bool, log: &Path) -> (f64, f64) {
    let flags: &[&str] = if precompile { &["--precompile"] } else { &[] };
    let wasmlet = Wasmlet {
        webroot,
        cache_dir: cache,
        flags,
        log_filter: "wasmlet=warn",
        log,
        binary: crate::process::wasmlet_binary(),
    };
    let (server, spawned) = wasmlet.spawn();
    let deadline = spawned + TIMEOUT;
    let stream = wait_for_port(server.addr, deadline)
        .unwrap_or_else(|| panic!("wasmlet did not listen:\n{}", server.log_tail()));
    let port = spawned.elapsed();
    let status = get_status(stream, PROBE, TIMEOUT);
    let answered = spawned.elapsed();
    assert_eq!(
        status,
        Some(200),
        "GET {PROBE} at start-up failed:\n{}",
        server.log_tail()
    );
    drop(server);
    (port.as_secs_f64() * 1e3, answered.as_secs_f64() * 1e3)
}

/// The disk cache a start-up finds.
#[derive(Clone, Copy, PartialEq)]
enum Cache {
    /// A new, empty directory each time.
    Empty,
    /// The shared warm directory, still empty: this start-up fills it.
    Fills,
    /// The shared warm directory.
    Warm,
}

/// One configuration to time.
struct Case {
    name: &'static str,
    root: &'static str,
    precompile: bool,
    cache: Cache,
    times: usize,
}

/// Runs every configuration, `repeat` times each (the one that compiles all
/// 1,000 handlers once).
pub(crate) fn run(repeat: usize, scratch: &Path) -> Vec<Startup> {
    let sites = tempfile::tempdir().expect("a temporary directory");
    let many = sites.path().join("many");
    write_handlers(&many);
    let one = sites.path().join("one");
    std::fs::create_dir_all(one.join("d3/e4")).expect("create a directory");
    std::fs::write(one.join("d3/e4/h5.wat"), crate::HELLO_WAT).expect("write a handler");
    let warm = tempfile::tempdir().expect("a temporary directory");
    let log = scratch.join("startup.log");
    // Puts the baseline's one handler in the warm cache.
    start_once(&one, warm.path(), false, &log);

    let cases = [
        Case {
            name: "1 handler, no --precompile, warm cache (baseline)",
            root: "one",
            precompile: false,
            cache: Cache::Warm,
            times: repeat,
        },
        // Also fills the warm cache for the rows after it.
        Case {
            name: "1,000 handlers, --precompile, empty cache (compiles all)",
            root: "many",
            precompile: true,
            cache: Cache::Fills,
            times: 1,
        },
        Case {
            name: "1,000 handlers, no --precompile, empty cache",
            root: "many",
            precompile: false,
            cache: Cache::Empty,
            times: repeat,
        },
        Case {
            name: "1,000 handlers, no --precompile, warm cache",
            root: "many",
            precompile: false,
            cache: Cache::Warm,
            times: repeat,
        },
        Case {
            name: "1,000 handlers, --precompile, warm cache",
            root: "many",
            precompile: true,
            cache: Cache::Warm,
            times: repeat,
        },
    ];
    let mut results = Vec::new();
    for case in &cases {
        let root = sites.path().join(case.root);
        let mut startup = Startup {
            name: case.name,
            handlers: if case.root == "many" { HANDLERS } else { 1 },
            precompile: case.precompile,
            warm_cache: case.cache == Cache::Warm,
            port_ms: Vec::new(),
            first_response_ms: Vec::new(),
        };
        for _ in 0..case.times {
            let empty = tempfile::tempdir().expect("a temporary directory");
            let cache = match case.cache {
                Cache::Empty => empty.path(),
                Cache::Fills | Cache::Warm => warm.path(),
            };
            let (port, answered) = start_once(&root, cache, case.precompile, &log);
            startup.port_ms.push(port);
            startup.first_response_ms.push(answered);
        }
        results.push(startup);
    }
    results
}
