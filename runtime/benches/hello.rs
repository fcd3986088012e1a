//! `cargo bench -p wasmlet --bench hello`: the core runtime's speed claims,
//! measured side by side in one run on 127.0.0.1, and written to
//! `BENCHMARKS.md`.
//!
//! 1. Hello world: the WAT hello handler against a native hyper handler doing
//!    the same work (the ceiling), both servers on 2 worker threads.
//! 2. The async claim: N connections, each request waiting 100 ms on a host
//!    timer (`sleep_ms`), on 2 worker threads; throughput against the ideal
//!    N / 0.1 s.
//! 3. First request of a never-seen handler (compile) against a cached one.
//!
//! Load comes from this process too, on its own runtime: on a 2-core machine
//! the load generator competes with the server, which is why the native
//! server is measured the same way in the same run. Unset `RUST_BACKTRACE`
//! first: it slows wasmtime by about 10%.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

const HELLO_WAT: &str = r#"(module
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello\n")
  (func (export "handle") (drop (call $write (i32.const 0) (i32.const 6)))))"#;

const SLEEP_WAT: &str = r#"(module
  (import "wasmlet" "sleep_ms" (func $sleep (param i64)))
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "slept\n")
  (func (export "handle")
    (call $sleep (i64.const 100))
    (drop (call $write (i32.const 0) (i32.const 6)))))"#;

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

struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1e3
    }
}

/// How long connections run before the measured window opens: opening a few
/// thousand connections is not what the window should measure.
const WARMUP: Duration = Duration::from_millis(500);

/// `connections` keep-alive connections, each sending `GET path` back to back;
/// counts the responses that complete within a `duration` window after
/// [`WARMUP`].
async fn load(addr: SocketAddr, path: &str, connections: usize, duration: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let uri: hyper::Uri = format!("http://{addr}{path}").parse().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stop = stop.clone();
        let uri = uri.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                return (latencies, 1);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (latencies, 1);
            };
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) {
                let request = hyper::Request::get(uri.clone())
                    .header("host", "127.0.0.1")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let started = Instant::now();
                match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let body = response.into_body().collect().await;
                        if ok && body.is_ok() {
                            let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                            latencies.push((Instant::now(), micros));
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let window_start = Instant::now() + WARMUP;
    let window_end = window_start + duration;
    tokio::time::sleep_until(window_end.into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.extend(
            latencies
                .into_iter()
                .filter(|(at, _)| (window_start..window_end).contains(at))
                .map(|(_, micros)| micros),
        );
        errors += e;
    }
    all.sort_unstable();
    Load {
        requests: all.len() as u64,
        errors,
        elapsed: duration,
        latencies_us: all,
    }
}

/// A native hyper server answering `hello\n`: what the WAT handler does,
/// without WebAssembly. Same runtime shape as wasmlet: 2 workers.
fn start_native(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"hello\n",
                    ))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn start_wasmlet(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    cache_dir: Option<&Path>,
) -> (SocketAddr, Arc<wasmlet::Stats>) {
    let config = wasmlet::Config {
        max_instances: 6_000,
        cache_dir: cache_dir.map(Path::to_path_buf),
        ..wasmlet::Config::new(root)
    };
    let server = wasmlet::Server::new(config).unwrap();
    let stats = server.stats();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(server.run(listener, std::future::pending()));
    (addr, stats)
}

/// The SDK's hello example built for wasm32, as the tests build it; `None`
/// (and the row is skipped) if the wasm target is missing.
fn build_sdk_hello() -> Option<Vec<u8>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let target_dir = workspace.join("target").join("wasm-handlers");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--profile",
            "wasm-release",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["-p", "wasmlet-handler-hello"])
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    std::fs::read(target_dir.join("wasm32-unknown-unknown/wasm-release/hello.wasm")).ok()
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn timed_get(addr: SocketAddr, path: &str) -> Duration {
    let started = Instant::now();
    let load = load_one(addr, path).await;
    assert!(load, "GET {path} failed");
    started.elapsed()
}

async fn get_body(addr: SocketAddr, path: &str) -> Option<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    Some(response.into_body().collect().await.ok()?.to_bytes())
}

async fn load_one(addr: SocketAddr, path: &str) -> bool {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let ok = response.status().is_success();
    ok && response.into_body().collect().await.is_ok()
}

fn main() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        eprintln!(
            "warning: RUST_BACKTRACE is set; it slows wasmtime by about 10%. Run with `env -u RUST_BACKTRACE`."
        );
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = Duration::from_secs(if quick { 1 } else { 5 });

    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.wat"), HELLO_WAT).unwrap();
    std::fs::write(root.path().join("sleep.wat"), SLEEP_WAT).unwrap();

    let wasm_rt = server_runtime();
    let native_rt = server_runtime();
    let sdk_hello = build_sdk_hello();
    if let Some(bytes) = &sdk_hello {
        std::fs::write(root.path().join("sdk-hello.wasm"), bytes).unwrap();
    }
    let (wasm_addr, _stats) = start_wasmlet(&wasm_rt, root.path(), None);
    let native_addr = start_native(&native_rt);
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut report = String::new();
    let _ = writeln!(report, "# Benchmarks\n");
    let _ = writeln!(
        report,
        "Measured by `env -u RUST_BACKTRACE cargo bench -p wasmlet --bench hello` on {} ({} cores), {}. \
         Servers run on 2 worker threads; the load generator runs in the same process on 127.0.0.1, \
         so it shares the cores with the server, for both servers alike.\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
    );

    // 1. Hello world.
    let _ = writeln!(report, "## Hello world, {} s per row\n", duration.as_secs());
    let _ = writeln!(
        report,
        "| server | connections | requests/s | p50 ms | p99 ms | errors |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: | ---: |");
    client.block_on(timed_get(wasm_addr, "/hello")); // compile outside the timing
    let mut ratios = Vec::new();
    if sdk_hello.is_some() {
        client.block_on(timed_get(wasm_addr, "/sdk-hello"));
    }
    for connections in [1, 16, 64] {
        let native = client.block_on(load(native_addr, "/", connections, duration));
        let wasm = client.block_on(load(wasm_addr, "/hello", connections, duration));
        let sdk = sdk_hello
            .as_ref()
            .map(|_| client.block_on(load(wasm_addr, "/sdk-hello", connections, duration)));
        let rows = [
            ("native hyper", Some(&native)),
            ("wasmlet WAT hello", Some(&wasm)),
            ("wasmlet SDK hello (Rust)", sdk.as_ref()),
        ];
        for (name, l) in rows {
            let Some(l) = l else { continue };
            let _ = writeln!(
                report,
                "| {name} | {connections} | {:.0} | {:.2} | {:.2} | {} |",
                l.rps(),
                l.percentile_ms(0.5),
                l.percentile_ms(0.99),
                l.errors
            );
        }
        ratios.push((connections, wasm.rps() / native.rps()));
    }
    let _ = writeln!(report);
    for (connections, ratio) in &ratios {
        let _ = writeln!(
            report,
            "- {connections} connection(s): WAT hello (fresh instance per request) reaches {:.0}% of native (target ≥ 40%).",
            ratio * 100.0
        );
    }

    // 2. The async claim.
    let _ = writeln!(
        report,
        "\n## Host-timer waits: each request sleeps 100 ms in `sleep_ms`, 2 workers\n"
    );
    let _ = writeln!(
        report,
        "| connections | requests/s | ideal | of ideal | p50 ms | p99 ms | errors |"
    );
    let _ = writeln!(report, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for connections in [100, 1000, 5000] {
        let l = client.block_on(load(wasm_addr, "/sleep", connections, duration));
        let ideal = connections as f64 / 0.1;
        let _ = writeln!(
            report,
            "| {connections} | {:.0} | {ideal:.0} | {:.1}% | {:.1} | {:.1} | {} |",
            l.rps(),
            100.0 * l.rps() / ideal,
            l.percentile_ms(0.5),
            l.percentile_ms(0.99),
            l.errors
        );
    }

    // 3. First request: compile with an empty disk cache, from a warm disk
    // cache after a restart, and from memory.
    let _ = writeln!(report, "\n## First request of a never-seen handler\n");
    let _ = writeln!(
        report,
        "| handler | empty cache: compile ms | restart, warm disk cache ms | in memory ms |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: | ---: |");
    let big = big_wat();
    for (name, source) in [
        ("small WAT hello", HELLO_WAT.to_owned()),
        ("large WAT module", big),
    ] {
        let binary = wat::parse_str(&source).unwrap().len();
        let site = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(site.path().join("h.wat"), &source).unwrap();
        let rt = server_runtime();
        let (addr, _) = start_wasmlet(&rt, site.path(), Some(cache.path()));
        let compile = client.block_on(timed_get(addr, "/h"));
        let memory = client.block_on(timed_get(addr, "/h"));
        drop(rt);
        let rt = server_runtime();
        let (addr, stats) = start_wasmlet(&rt, site.path(), Some(cache.path()));
        let disk = client.block_on(timed_get(addr, "/h"));
        assert_eq!(stats.compiles(), 0, "the restart compiled");
        drop(rt);
        let _ = writeln!(
            report,
            "| {name} ({} KB text, {} KB wasm) | {:.2} | {:.2} | {:.2} |",
            source.len() / 1000,
            binary / 1000,
            compile.as_secs_f64() * 1e3,
            disk.as_secs_f64() * 1e3,
            memory.as_secs_f64() * 1e3
        );
    }

    // 4. Hot reload: file renamed into place → first response from it.
    let mut reloads: Vec<f64> = Vec::new();
    for i in 0..20 {
        let body = format!("version {i:03}\n");
        let wat = HELLO_WAT
            .replace("hello\\n", &body.replace('\n', "\\n"))
            .replace("(i32.const 6)", &format!("(i32.const {})", body.len()));
        let tmp = root.path().join(".reload.tmp");
        std::fs::write(&tmp, wat).unwrap();
        let started = Instant::now();
        std::fs::rename(&tmp, root.path().join("reload.wat")).unwrap();
        client.block_on(async {
            loop {
                if get_body(wasm_addr, "/reload").await.as_deref() == Some(body.as_bytes()) {
                    break;
                }
            }
        });
        reloads.push(started.elapsed().as_secs_f64() * 1e3);
    }
    reloads.sort_by(f64::total_cmp);
    let _ = writeln!(report, "\n## Hot reload\n");
    let _ = writeln!(
        report,
        "File renamed over a handler → first response from the new version, 20 times: median {:.2} ms, max {:.2} ms.",
        reloads[reloads.len() / 2],
        reloads[reloads.len() - 1]
    );

    println!("{report}");
    if !quick {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        std::fs::write(&out, &report).unwrap();
        eprintln!("wrote {}", out.display());
    }
}
