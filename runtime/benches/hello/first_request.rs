//! The first request of a never-seen handler (compiled, loaded from the
//! disk cache after a restart, in memory), and hot reload. These run the
//! library in this process (`wasmlet::Server` on a 2-worker runtime): what
//! they time is the loader and the watcher, not the process around them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::get_body;

/// One handler's first-request times, in ms: one entry per repetition.
#[derive(Debug, Clone)]
pub(crate) struct FirstRequest {
    pub(crate) name: String,
    pub(crate) wat_kb: usize,
    pub(crate) wasm_kb: usize,
    /// Empty disk cache: the request compiles.
    pub(crate) compile_ms: Vec<f64>,
    /// A restarted server with a warm disk cache.
    pub(crate) disk_cache_ms: Vec<f64>,
    /// The second request: the handler is in memory.
    pub(crate) memory_ms: Vec<f64>,
}

/// Hot reload times, ms.
#[derive(Debug, Clone)]
pub(crate) struct HotReload {
    pub(crate) times_ms: Vec<f64>,
}

pub(crate) fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn start(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    cache_dir: &Path,
) -> (SocketAddr, Arc<wasmlet::Stats>) {
    let config = wasmlet::Config {
        cache_dir: Some(cache_dir.to_path_buf()),
        ..wasmlet::Config::new(root)
    };
    start_config(runtime, config)
}

/// A server with `config` on `runtime`, listening on a free port.
pub(crate) fn start_config(
    runtime: &tokio::runtime::Runtime,
    config: wasmlet::Config,
) -> (SocketAddr, Arc<wasmlet::Stats>) {
    let server = wasmlet::Server::new(config).expect("a valid configuration");
    let stats = server.stats();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a local address");
    runtime.spawn(server.run(listener, std::future::pending()));
    (addr, stats)
}

/// Milliseconds from sending `GET path` to the end of its body.
pub(crate) fn timed_get(client: &tokio::runtime::Runtime, addr: SocketAddr, path: &str) -> f64 {
    let started = Instant::now();
    let body = client.block_on(get_body(addr, path));
    assert!(body.is_some(), "GET {path} failed");
    started.elapsed().as_secs_f64() * 1e3
}

/// Times the first request of `source` `repeat` times, each with a new web
/// root and an empty cache, then once more after a restart.
pub(crate) fn first_request(
    client: &tokio::runtime::Runtime,
    name: &str,
    source: &str,
    repeat: usize,
) -> FirstRequest {
    let wasm = wat::parse_str(source).expect("valid WAT");
    let mut result = FirstRequest {
        name: name.to_owned(),
        wat_kb: source.len().div_ceil(1000),
        wasm_kb: wasm.len().div_ceil(1000),
        compile_ms: Vec::new(),
        disk_cache_ms: Vec::new(),
        memory_ms: Vec::new(),
    };
    for i in 0..repeat {
        let site = tempfile::tempdir().expect("a temporary directory");
        let cache = tempfile::tempdir().expect("a temporary directory");
        // A distinct module each time: nothing may come from an earlier run.
        let source = format!(
            "{} (global i32 (i32.const {i})))",
            source
                .trim_end()
                .strip_suffix(')')
                .expect("a module ends with `)`")
        );
        std::fs::write(site.path().join("h.wat"), &source).expect("write the handler");

        let runtime = server_runtime();
        let (addr, stats) = start(&runtime, site.path(), cache.path());
        result.compile_ms.push(timed_get(client, addr, "/h"));
        result.memory_ms.push(timed_get(client, addr, "/h"));
        // A module past `--baseline-above` answered from Winch's code; the
        // disk cache gets Cranelift's once it is made in the background.
        if wasm.len() as u64 >= wasmlet::config::DEFAULT_BASELINE_ABOVE {
            let deadline = Instant::now() + Duration::from_secs(300);
            while stats.tier_ups() == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        drop(runtime);

        let runtime = server_runtime();
        let (addr, stats) = start(&runtime, site.path(), cache.path());
        result.disk_cache_ms.push(timed_get(client, addr, "/h"));
        assert_eq!(stats.compiles(), 0, "the restarted server compiled");
        drop(runtime);
    }
    result
}

/// Renames a new version over a handler `times` times; each time, the time
/// until a request gets the new version's answer.
pub(crate) fn hot_reload(client: &tokio::runtime::Runtime, times: usize) -> HotReload {
    let site = tempfile::tempdir().expect("a temporary directory");
    let cache = tempfile::tempdir().expect("a temporary directory");
    let runtime = server_runtime();
    let (addr, _) = start(&runtime, site.path(), cache.path());
    let mut times_ms = Vec::new();
    for i in 0..times {
        let body = format!("version {i:03}\n");
        let wat = crate::says(&body);
        let tmp = site.path().join(".reload.tmp");
        std::fs::write(&tmp, wat).expect("write the new version");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        std::fs::rename(&tmp, site.path().join("reload.wat")).expect("rename it into place");
        client.block_on(async {
            while client_get(addr).await.as_deref() != Some(body.as_bytes()) {
                assert!(Instant::now() < deadline, "the new version never answered");
            }
        });
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    drop(runtime);
    HotReload { times_ms }
}

async fn client_get(addr: SocketAddr) -> Option<bytes::Bytes> {
    get_body(addr, "/reload").await
}
