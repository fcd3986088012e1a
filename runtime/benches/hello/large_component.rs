//! The first request of a large component: a `wasi:http` hello written in
//! Python (`python-hello/app.py`) and built by componentize-py from PyPI,
//! about 18 MB, most of it CPython. Built once into `target/bench-guests`
//! (a virtualenv with componentize-py, the WIT from the `wasmtime-wasi-http`
//! crate cargo fetched); skipped, with a warning, where that fails.
//!
//! Measured in this process on `wasmlet::Server`, as `first_request.rs`
//! does: the first response with the baseline tier (Winch's code, then
//! Cranelift's in the background) and without it (`--baseline-above off`),
//! when Cranelift's code takes over, the requests served across that switch,
//! and the first response after a restart on the warm disk cache.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::first_request::{server_runtime, start_config, timed_get};
use crate::load::get_body;

/// The componentize-py release the component is built with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Clients that keep requesting while Cranelift's code replaces Winch's.
pub(crate) const SWITCH_CLIENTS: usize = 2;

/// How often each of them sends a request: steady traffic, not a flood. A
/// Python request costs milliseconds of CPU, so clients sending back to
/// back would take both cores from the background compile they wait for.
pub(crate) const SWITCH_INTERVAL: Duration = Duration::from_millis(50);

/// The longest the optimising compile may take before the run gives up.
const OPTIMISE_DEADLINE: Duration = Duration::from_secs(300);

/// What one run measured.
#[derive(Debug, Clone)]
pub(crate) struct LargeComponent {
    pub(crate) name: String,
    pub(crate) wasm_kb: usize,
    /// Empty cache, `--baseline-above off`: Cranelift before the first
    /// response (the compile time the baseline tier hides).
    pub(crate) cranelift_first_ms: f64,
    /// Empty cache, the default: Winch before the first response.
    pub(crate) baseline_first_ms: f64,
    /// From sending the first request until Cranelift's code serves.
    pub(crate) optimized_after_ms: f64,
    /// Requests answered from the first response until a second after the
    /// switch, and of them the failed ones.
    pub(crate) switch_requests: usize,
    pub(crate) switch_failures: usize,
    /// The slowest of those requests.
    pub(crate) switch_max_ms: f64,
    /// Median request time on Winch's code, then on Cranelift's.
    pub(crate) baseline_p50_ms: f64,
    pub(crate) optimized_p50_ms: f64,
    /// A restarted server on the warm disk cache.
    pub(crate) warm_cache_ms: f64,
}

/// Builds the component (or reuses an earlier build), or `None` with a
/// warning.
pub(crate) fn build(workspace: &Path) -> Option<Vec<u8>> {
    match try_build(workspace) {
        Ok(wasm) => Some(wasm),
        Err(e) => {
            eprintln!(
                "warning: the componentize-py component did not build ({e}); its rows are skipped"
            );
            None
        }
    }
}

fn try_build(workspace: &Path) -> Result<Vec<u8>, String> {
    let app = workspace.join("runtime/benches/hello/python-hello");
    let dir = workspace.join("target/bench-guests");
    let out = dir.join("hello-py.wasm");
    let newer = |a: &Path, b: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        modified(a).zip(modified(b)).is_some_and(|(a, b)| a >= b)
    };
    if newer(&out, &app.join("app.py")) {
        return std::fs::read(&out).map_err(|e| e.to_string());
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let venv = dir.join("componentize-py");
    let tool = venv.join("bin/componentize-py");
    if !tool.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", COMPONENTIZE_PY])
            .env_remove("PIP_REQUIRE_VIRTUALENV"))?;
    }
    let wit = wasi_http_wit(workspace)?;
    let world = format!("wasi:http/proxy@{}", wasi_http_version(&wit)?);
    run(Command::new(&tool)
        .current_dir(&app)
        .arg("-d")
        .arg(&wit)
        .args(["-w", &world, "componentize", "app", "-o"])
        .arg(&out)
        // componentize-py is Rust: a backtrace on its error paths would only
        // slow it.
        .env_remove("RUST_BACKTRACE"))?;
    // It writes its bindings next to the app; they are generated.
    let _ = std::fs::remove_dir_all(app.join("wit_world"));
    std::fs::read(&out).map_err(|e| e.to_string())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(format!(
        "{:?} failed: {}",
        command.get_program(),
        last.unwrap_or("no output")
    ))
}

/// The `wit` directory of the `wasmtime-wasi-http` crate in this workspace's
/// lock file: the `wasi:http` version wasmlet serves.
fn wasi_http_wit(workspace: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1"])
        .output()
        .map_err(|e| e.to_string())?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "wasmtime-wasi-http")
        .and_then(|p| p["manifest_path"].as_str())
        .map(|manifest| Path::new(manifest).with_file_name("wit"))
        .ok_or_else(|| "wasmtime-wasi-http is not among the dependencies".to_owned())
}

/// `0.2.12` from `package wasi:http@0.2.12;` in `deps/http.wit`.
fn wasi_http_version(wit: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(wit.join("deps/http.wit")).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("package wasi:http@"))
        .map(|rest| rest.trim_end_matches(';').to_owned())
        .ok_or_else(|| "no `package wasi:http@…` in deps/http.wit".to_owned())
}

fn start(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    cache_dir: &Path,
    baseline: bool,
) -> (SocketAddr, Arc<wasmlet::Stats>) {
    let mut config = wasmlet::Config {
        cache_dir: Some(cache_dir.to_path_buf()),
        ..wasmlet::Config::new(root)
    };
    if !baseline {
        config.baseline_above = None;
    }
    start_config(runtime, config)
}

/// One request's end, for the switch.
struct Sample {
    at: Instant,
    ms: f64,
    ok: bool,
}

/// Measures `wasm` (the component), once.
pub(crate) fn measure(client: &tokio::runtime::Runtime, name: &str, wasm: &[u8]) -> LargeComponent {
    // Cranelift alone: the first response waits for the whole compile.
    let site = tempfile::tempdir().expect("a temporary directory");
    let cache = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(site.path().join("py.wasm"), wasm).expect("write the handler");
    let runtime = server_runtime();
    let (addr, _) = start(&runtime, site.path(), cache.path(), false);
    let cranelift_first_ms = timed_get(client, addr, "/py");
    drop(runtime);

    // The baseline tier: Winch first, Cranelift behind it.
    let cache = tempfile::tempdir().expect("a temporary directory");
    let runtime = server_runtime();
    let (addr, stats) = start(&runtime, site.path(), cache.path(), true);
    let first_sent = Instant::now();
    let baseline_first_ms = timed_get(client, addr, "/py");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..SWITCH_CLIENTS)
        .map(|_| {
            let stop = stop.clone();
            client.spawn(async move {
                let mut samples = Vec::new();
                let mut tick = tokio::time::interval(SWITCH_INTERVAL);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sent = Instant::now();
                    let ok = get_body(addr, "/py").await.is_some();
                    samples.push(Sample {
                        at: Instant::now(),
                        ms: sent.elapsed().as_secs_f64() * 1e3,
                        ok,
                    });
                }
                samples
            })
        })
        .collect();
    // Counted once Cranelift's code serves.
    while stats.tier_ups() == 0 && first_sent.elapsed() < OPTIMISE_DEADLINE {
        std::thread::sleep(Duration::from_millis(5));
    }
    let switched = Instant::now();
    let optimized_after_ms = first_sent.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<Sample> = clients
        .into_iter()
        .flat_map(|c| client.block_on(c).expect("a switch client"))
        .collect();
    drop(runtime);
    let p50 = |before: bool| {
        let mut ms: Vec<f64> = samples
            .iter()
            .filter(|s| s.ok && (s.at < switched) == before)
            .map(|s| s.ms)
            .collect();
        ms.sort_by(f64::total_cmp);
        ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
    };

    let runtime = server_runtime();
    let (addr, stats) = start(&runtime, site.path(), cache.path(), true);
    let warm_cache_ms = timed_get(client, addr, "/py");
    assert_eq!(stats.compiles(), 0, "the restarted server compiled");
    drop(runtime);

    LargeComponent {
        name: name.to_owned(),
        wasm_kb: wasm.len().div_ceil(1000),
        cranelift_first_ms,
        baseline_first_ms,
        optimized_after_ms,
        switch_requests: samples.len(),
        switch_failures: samples.iter().filter(|s| !s.ok).count(),
        switch_max_ms: samples.iter().map(|s| s.ms).fold(0.0, f64::max),
        baseline_p50_ms: p50(true),
        optimized_p50_ms: p50(false),
        warm_cache_ms,
    }
}
