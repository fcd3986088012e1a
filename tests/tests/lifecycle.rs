//! A handler's life between deploys: a new version must be whole, must
//! start, and must load within the time a client waits; the status page and
//! the metrics follow the watcher, not the next request; and a shutdown keeps
//! to its timeout whatever is compiling.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use wasmlet_tests::peers::ServerProcess;
use wasmlet_tests::{TestServer, WebRoot, eventually, log_contains, replace_atomically, says};

const DEADLINE: Duration = Duration::from_secs(60);

/// A handler that answers `text`, with a start function `start` (WAT
/// instructions) and an `init` export running `init`.
fn says_after(text: &str, start: &str, init: &str) -> String {
    let module = says(text);
    let body = module.trim_end().strip_suffix(')').expect("a module");
    format!(
        "{body}\n  (func $start {start})\n  (start $start)\n  (func (export \"init\") {init}))\n"
    )
}

/// A module that takes seconds to compile: `functions` functions, each a
/// long chain of arithmetic, and a `handle` that answers `big`.
fn slow_to_compile(functions: usize) -> Vec<u8> {
    let mut wat = says("big").trim_end().strip_suffix(')').unwrap().to_owned();
    let chain =
        "local.get 0 i32.const 7 i32.mul local.get 0 i32.xor i32.const 3 i32.rotl i32.add\n"
            .repeat(200);
    for i in 0..functions {
        wat.push_str(&format!(
            "  (func $f{i} (export \"f{i}\") (param i32) (result i32) local.get 0 {chain})\n"
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the generated module parses")
}

/// The status page's entry for `file`, as JSON.
async fn status_of(server: &TestServer, file: &str) -> Option<serde_json::Value> {
    let page: serde_json::Value =
        serde_json::from_str(&server.admin_get("/status.json").await.text()).unwrap();
    page["handlers"]
        .as_array()?
        .iter()
        .find(|h| h["file"] == file)
        .cloned()
}

/// Polls the status page until `file`'s entry passes `check`.
async fn status_until(
    server: &TestServer,
    file: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let entry = status_of(server, file).await;
        if let Some(entry) = entry.as_ref().filter(|e| check(e)) {
            return entry.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the status page never showed it: {entry:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// A new version that cannot serve is broken, and the old one keeps serving.

/// Deploys `broken` over a working `h.wat` and checks that, without any
/// request, the status page marks the handler stale with `reason`, and that
/// requests still get the working version.
async fn a_broken_deploy_keeps_the_working_version(broken: &str, reason: &str) {
    let root = WebRoot::new().file("h.wat", &says("working"));
    let file = root.path().join("h.wat");
    let server = TestServer::start_with_admin(root, |c| {
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    assert_eq!(server.get("/h").await.text(), "working");
    replace_atomically(&file, broken);
    let entry = status_until(&server, "h.wat", |e| e["state"] == "stale").await;
    let error = entry["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("h.wat") && error.contains(reason), "{entry}");
    for _ in 0..5 {
        let reply = server.get("/h").await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (StatusCode::OK, "working")
        );
    }
    assert!(log_contains(reason, DEADLINE).await, "the log says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_whose_start_function_traps_does_not_replace_the_working_one() {
    a_broken_deploy_keeps_the_working_version(
        &says_after("broken", "unreachable", ""),
        "fails as it starts",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_whose_init_traps_does_not_replace_the_working_one() {
    a_broken_deploy_keeps_the_working_version(
        &says_after("broken", "", "unreachable"),
        "in `init`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_whose_start_function_spins_is_stopped_at_the_request_timeout() {
    a_broken_deploy_keeps_the_working_version(
        &says_after("broken", "(loop $spin (br $spin))", ""),
        "ran past the request timeout (1s)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_exports_no_handler_does_not_replace_the_working_one() {
    a_broken_deploy_keeps_the_working_version(
        "(module (memory (export \"memory\") 1) (func (export \"handel\")))",
        "exports no `handle`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_handler_whose_start_function_traps_fails_without_running_again() {
    let root = WebRoot::new().file("h.wat", &says_after("broken", "unreachable", ""));
    let server = TestServer::start_with_admin(root, |c| c.dev = true).await;
    for _ in 0..3 {
        let reply = server.get("/h").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            reply.text().contains("fails as it starts"),
            "{}",
            reply.text()
        );
    }
    // Tried once at load; the remembered failure answers the rest, and no
    // request ran the start function.
    let metrics = server.settled_metrics().await;
    assert_eq!(
        metrics.value("wasmlet_traps_total", &[("handler", "/h.wat")]),
        None
    );
    assert_eq!(server.stats.compiles(), 1);
}

// ---------------------------------------------------------------------------
// The watcher's reload shows on the status page and in the metrics at once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchers_reload_updates_the_status_page_and_metrics_without_a_request() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let file = root.path().join("h.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(server.get("/h").await.text(), "one");
    let first = status_until(&server, "h.wat", |e| e["state"] == "ready").await;
    let requests = server.stats.requests();

    replace_atomically(&file, says("two"));
    let second = status_until(&server, "h.wat", |e| {
        e["state"] == "ready" && e["version"] != first["version"]
    })
    .await;
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("wasmlet_reloads_total", &[]),
        Some(1.0),
        "{second}"
    );

    // A broken deploy: its error shows and the handler is stale, still
    // serving the second version.
    std::fs::write(&file, "(module (func (export \"handle\") i32.const oops))").unwrap();
    let stale = status_until(&server, "h.wat", |e| e["state"] == "stale").await;
    assert_eq!(stale["version"], second["version"]);
    assert!(
        stale["last_error"].as_str().unwrap().contains("h.wat:1:"),
        "{stale}"
    );
    assert_eq!(
        server.stats.requests(),
        requests,
        "no request was made meanwhile"
    );
    assert_eq!(server.get("/h").await.text(), "two");
}

// ---------------------------------------------------------------------------
// A file being written is not a new version yet.

/// Waits until the server's watcher runs: it starts after
/// `TestServer::start` returns, but before the server answers its first
/// request; a handler added to `dir` after that is compiled without one.
async fn watcher_running(server: &TestServer, dir: &std::path::Path) {
    server.get("/").await;
    let compiles = server.stats.compiles();
    std::fs::write(dir.join("probe.wat"), says("probe")).unwrap();
    assert!(
        eventually(DEADLINE, || server.stats.compiles() > compiles).await,
        "the watcher never started"
    );
}

/// Where the data section of `wasm` begins: everything before it is a valid
/// module on its own, whose memory holds zeros where the data would be.
fn data_section_start(wasm: &[u8]) -> usize {
    const DATA: u8 = 11;
    let mut at = 8;
    while at < wasm.len() {
        if wasm[at] == DATA {
            return at;
        }
        at += 1;
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let byte = wasm[at];
            at += 1;
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        at += size;
    }
    panic!("the module has no data section")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_written_with_a_pause_at_a_section_boundary_never_serves_its_prefix() {
    let old = wat::parse_str(says("old")).unwrap();
    let new = wat::parse_str(says("new")).unwrap();
    // Cut before the data section: the prefix is a valid module whose
    // memory holds zeros where "new" would be.
    let cut = data_section_start(&new);
    let root = WebRoot::new().bytes("h.wasm", &old);
    let file = root.path().join("h.wasm");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "old");
    watcher_running(&server, file.parent().unwrap()).await;

    let mut writer = std::fs::File::create(&file).unwrap();
    writer.write_all(&new[..cut]).unwrap();
    writer.flush().unwrap();
    // The writer pauses for over a second, file open, prefix on disk.
    let paused = Instant::now();
    let mut asked = 0;
    while paused.elapsed() < Duration::from_millis(1500) {
        let reply = server.get("/h").await;
        assert_eq!(
            (reply.status, reply.body.as_ref()),
            (StatusCode::OK, b"old".as_ref()),
            "request {asked}, {:?} into the pause",
            paused.elapsed()
        );
        asked += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.write_all(&new[cut..]).unwrap();
    drop(writer);
    let mut served = false;
    for _ in 0..500 {
        let reply = server.get("/h").await;
        assert_eq!(reply.status, StatusCode::OK);
        match reply.text().as_str() {
            "new" => {
                served = true;
                break;
            }
            "old" => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("served {other:?}"),
        }
    }
    assert!(served, "the whole new version never served");
    println!("{asked} requests during a 1.5 s pause mid-write all got the old version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_handler_waits_for_its_file_to_settle_within_the_request_timeout() {
    let root = WebRoot::new();
    let file = root.path().join("fresh.wasm");
    let server = Arc::new(TestServer::start(root).await);
    watcher_running(&server, file.parent().unwrap()).await;
    let new = wat::parse_str(says("whole")).unwrap();
    let cut = data_section_start(&new);
    let mut writer = std::fs::File::create(&file).unwrap();
    writer.write_all(&new[..cut]).unwrap();
    // A request for a handler still being written waits for the rest.
    let waiting = tokio::spawn({
        let server = server.clone();
        async move { server.get("/fresh").await }
    });
    assert!(
        eventually(Duration::from_secs(2), || server.stats.in_flight() == 1).await,
        "the request never arrived"
    );
    // The writer pauses; the request must not take the prefix meanwhile.
    let pause = Instant::now();
    while pause.elapsed() < Duration::from_millis(500) {
        assert!(
            !waiting.is_finished(),
            "answered mid-write: {:?}",
            waiting.await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.write_all(&new[cut..]).unwrap();
    drop(writer);
    let reply = waiting.await.unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "whole")
    );
}

// ---------------------------------------------------------------------------
// A load has a time bound, and so has a shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_on_a_slow_compile_gets_503_at_its_timeout_and_the_compile_goes_on() {
    let root = WebRoot::new().bytes("big.wasm", slow_to_compile(SLOW_FUNCTIONS));
    let server = TestServer::start_with_admin(root, |c| {
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    let asked = Instant::now();
    let reply = server.get("/big").await;
    let took = asked.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let entry = status_of(&server, "big.wasm").await.unwrap();
    assert_eq!(entry["state"], "loading", "the compile was still running");
    // It goes on without anyone waiting, and the next request finds it.
    let ready = status_until(&server, "big.wasm", |e| e["state"] == "ready").await;
    assert_eq!(server.get("/big").await.text(), "big");
    assert_eq!(server.stats.compiles(), 1);
    println!(
        "503 after {:.0} ms (request timeout 1 s); the compile took {} ms",
        took.as_secs_f64() * 1e3,
        ready["load_ms"]
    );
}

/// Functions in [`slow_to_compile`]'s module: several seconds of compile on
/// a small machine.
const SLOW_FUNCTIONS: usize = 10_000;

/// Starts the binary with `args` over a web root whose one handler takes
/// seconds to compile, sends SIGTERM while it compiles, and checks it exits
/// cleanly within its 1 s shutdown timeout (and a generous margin).
fn sigterm_mid_compile(args: &[&str]) {
    let root = WebRoot::new().bytes("big.wasm", slow_to_compile(SLOW_FUNCTIONS));
    let mut all = vec![
        "--shutdown-timeout",
        "1s",
        "--request-timeout",
        "60s",
        "--admin",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let mut server = ServerProcess::start(root.path(), &all);
    let admin = server
        .log()
        .lines()
        .find_map(|line| {
            let rest = &line[line.find("metrics at http://")? + "metrics at http://".len()..];
            rest.split('/').next().map(str::to_owned)
        })
        .expect("the admin address is logged");
    // A client waits for the handler (its connection stays in flight).
    let mut client = std::net::TcpStream::connect(server.addr()).unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    while !raw_get(&admin, "/metrics").contains("wasmlet_compiles_total 1") {
        assert!(
            started.elapsed() < DEADLINE,
            "no compile started\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = Instant::now();
    let status = server.terminate(Duration::from_secs(60));
    let took = signalled.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.log()
    );
    assert!(
        !server.log().contains("handler ready"),
        "the compile finished before the signal; the module is too small to tell"
    );
    assert!(
        // The drain (1 s), then at most 1 s for the compile's blocking
        // thread (BLOCKING_EXIT_GRACE), and a margin.
        took < Duration::from_secs(4),
        "exited {took:?} after SIGTERM with --shutdown-timeout 1s\n{}",
        server.log()
    );
    println!(
        "{args:?}: exited {:.0} ms after SIGTERM mid-compile (--shutdown-timeout 1s)",
        took.as_secs_f64() * 1e3
    );
}

/// `GET path` on `addr` with `Connection: close`: the whole raw answer.
fn raw_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn sigterm_while_a_request_waits_on_a_compile_exits_within_the_shutdown_timeout() {
    sigterm_mid_compile(&[]);
}

#[test]
fn sigterm_during_the_precompile_exits_within_the_shutdown_timeout() {
    sigterm_mid_compile(&["--precompile"]);
}
