//! The baseline tier, through a real server: a handler at or above
//! `--baseline-above` is first compiled by Winch and served at once, then
//! Cranelift's code for the same version takes over without a failed
//! request; only Cranelift's code reaches the disk cache, so a restart
//! serves it directly; a version replaced while it is optimised never comes
//! back.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use wasmlet_tests::{Load, TestServer, WebRoot, replace_atomically, says};

const DEADLINE: Duration = Duration::from_secs(60);

/// A first request waits for its compile at most its request timeout: with
/// these tests compiling large modules side by side on two cores, the test
/// default (5 s) is too short.
const SLOW_COMPILE: Duration = Duration::from_secs(30);

/// A core module with `functions` small functions besides its `handle`,
/// which answers `text`: large enough that Cranelift's compile takes a
/// while after Winch's.
fn large(text: &str, functions: usize) -> String {
    let mut wat = says(text);
    let end = wat.rfind(')').expect("a module ends with `)`");
    let mut body = String::new();
    for i in 0..functions {
        body.push_str(&format!(
            " (func (param i32) (result i32) local.get 0 i32.const {i} i32.add i32.const 3 i32.mul i32.const 7 i32.xor)\n"
        ));
    }
    wat.insert_str(end, &body);
    wat
}

/// `/status.json`'s `source` for `file`.
async fn source(server: &TestServer, file: &str) -> String {
    let reply = server.admin_get("/status.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    json["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["file"] == file)
        .map(|h| h["source"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

/// Compiled entries (`.cwasm` files) anywhere below `dir`.
fn cached_entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                cached_entries(&path)
            } else {
                usize::from(path.extension().is_some_and(|e| e == "cwasm"))
            }
        })
        .sum()
}

/// Polls the status page until `file` is served from `wanted`.
async fn source_becomes(server: &TestServer, file: &str, wanted: &str) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < DEADLINE {
        if source(server, file).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_handler_answers_from_the_baseline_tier_then_from_cranelift_without_a_failed_request()
 {
    let cache = tempfile::tempdir().unwrap();
    let big = large("big\n", 20_000);
    let root = WebRoot::new().file("big.wat", &big);
    let server = Arc::new(
        TestServer::start_with_admin(root, |config| {
            config.baseline_above = Some(1);
            config.cache_dir = Some(cache.path().to_owned());
            config.request_timeout = SLOW_COMPILE;
        })
        .await,
    );

    let first = server.get("/big").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.text(), "big\n");
    assert_eq!(
        source(&server, "big.wat").await,
        "baseline compiler, optimising",
        "the first request is served by Winch's code"
    );
    assert_eq!(
        cached_entries(cache.path()),
        0,
        "baseline code never reaches the disk cache"
    );

    // Requests keep coming while Cranelift compiles and its code takes over.
    let load = Load::start(&server, 4, "/big", |reply| {
        reply.status == StatusCode::OK && reply.text() == "big\n"
    });
    assert!(
        source_becomes(&server, "big.wat", "compiler").await,
        "Cranelift's code replaces the baseline's"
    );
    let before = load.served();
    assert!(
        wasmlet_tests::eventually(DEADLINE, || load.served() > before + 20).await,
        "requests go on after the switch"
    );
    let failures = load.stop().await;
    assert!(failures.is_empty(), "failed at the switch: {failures:?}");
    assert_eq!(server.stats.compiles(), 2, "once by each compiler");
    assert_eq!(
        cached_entries(cache.path()),
        1,
        "Cranelift's code is cached"
    );
    drop(server);

    // A restart finds Cranelift's code in the disk cache: no baseline again.
    let root = WebRoot::new().file("big.wat", &big);
    let again = TestServer::start_with_admin(root, |config| {
        config.baseline_above = Some(1);
        config.cache_dir = Some(cache.path().to_owned());
        config.request_timeout = SLOW_COMPILE;
    })
    .await;
    assert_eq!(again.get("/big").await.text(), "big\n");
    assert_eq!(source(&again, "big.wat").await, "disk cache");
    assert_eq!(again.stats.compiles(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_component_runs_on_the_baseline_tier_with_its_capabilities() {
    let root = WebRoot::new().component_handler("c/[...path].wasm", "wasi_hello");
    let server = TestServer::start_with_admin(root, |config| {
        config.baseline_above = Some(1);
        config.request_timeout = SLOW_COMPILE;
    })
    .await;
    let reply = server.get("/c/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "hello, world\n");
    // A host call that suspends the guest (a timer), on Winch's code.
    let slept = server.get("/c/sleep?ms=20").await;
    assert_eq!(slept.text(), "slept 20 ms\n");
    assert!(
        source_becomes(&server, "c/[...path].wasm", "compiler").await,
        "the component is optimised too"
    );
    assert_eq!(server.get("/c/hello").await.text(), "hello, world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_on_the_baseline_tier_times_out_and_others_keep_answering() {
    let root = WebRoot::new()
        .fixture("spin.wat", "infinite_loop.wat")
        .file("hi.wat", &says("hi\n"));
    let server = TestServer::start_with(root, |config| {
        config.baseline_above = Some(1);
        config.request_timeout = Duration::from_millis(500);
    })
    .await;
    assert_eq!(server.get("/hi").await.text(), "hi\n");
    let (spun, hi) = tokio::join!(server.get("/spin"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.get("/hi").await
    });
    assert_eq!(spun.status, StatusCode::GATEWAY_TIMEOUT, "{}", spun.text());
    assert_eq!(hi.text(), "hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_replaced_while_it_is_optimised_never_comes_back() {
    let root = WebRoot::new().file("page.wat", &large("old\n", 20_000));
    let file = root.path().join("page.wat");
    let server = TestServer::start_with_admin(root, |config| {
        config.baseline_above = Some(1);
        config.request_timeout = SLOW_COMPILE;
    })
    .await;
    assert_eq!(server.get("/page").await.text(), "old\n");
    assert_eq!(
        source(&server, "page.wat").await,
        "baseline compiler, optimising"
    );
    // Replaced while Cranelift works on the old version.
    replace_atomically(&file, large("new\n", 20_000));
    let mut replies = vec![server.get("/page").await.text()];
    while replies.last().is_some_and(|r| r != "new\n") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        replies.push(server.get("/page").await.text());
    }
    while source(&server, "page.wat").await != "compiler" {
        replies.push(server.get("/page").await.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The old version's optimised code, finished late, is dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..20 {
        replies.push(server.get("/page").await.text());
    }
    let first_new = replies.iter().position(|r| r == "new\n").unwrap();
    assert!(
        replies[first_new..].iter().all(|r| r == "new\n"),
        "{replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_tier_off_a_handler_is_optimised_before_it_serves() {
    let root = WebRoot::new().file("hi.wat", &says("hi\n"));
    let server = TestServer::start_with_admin(root, |config| {
        config.baseline_above = None;
    })
    .await;
    assert_eq!(server.get("/hi").await.text(), "hi\n");
    assert_eq!(source(&server, "hi.wat").await, "compiler");
    assert_eq!(server.stats.compiles(), 1);
}
