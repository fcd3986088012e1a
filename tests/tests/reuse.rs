//! Instance reuse (ASP.NET's `IsReusable`) through the real server: a
//! reusable handler keeps its memory between requests, starts over after a
//! trap or `max-requests`, and runs `init` once per instance; a default
//! handler gets a fresh instance every time and never sees the previous
//! request's memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use wasmlet_tests::{TestServer, WebRoot, fixtures_dir};

/// The counter fixture with the `wasmlet.reusable` custom section, as the
/// SDK's `#[handler(reusable)]` writes it.
fn marked_counter() -> String {
    let text = std::fs::read_to_string(fixtures_dir().join("counter.wat")).unwrap();
    let end = text.rfind(')').unwrap();
    format!("{}  (@custom \"wasmlet.reusable\" \"\"))\n", &text[..end])
}

#[tokio::test]
async fn a_fresh_instance_handler_never_sees_the_previous_requests_memory() {
    let server = TestServer::start(WebRoot::new().fixture("counter.wat", "counter.wat")).await;
    for _ in 0..3 {
        assert_eq!(server.get("/counter").await.text(), "inits=1 count=1");
    }
}

#[tokio::test]
async fn a_reusable_handler_counts_across_requests_and_starts_over_after_a_trap() {
    let root = WebRoot::new()
        .fixture("configured/counter.wat", "counter.wat")
        .file(
            "configured/wasmlet.toml",
            "[instances]\nreuse = true\npool-size = 1\n",
        )
        .file("marked/counter.wat", &marked_counter());
    let server = TestServer::start(root).await;
    for path in ["/configured/counter", "/marked/counter"] {
        assert_eq!(server.get(path).await.text(), "inits=1 count=1", "{path}");
        assert_eq!(server.get(path).await.text(), "inits=1 count=2", "{path}");
        assert_eq!(server.get(path).await.text(), "inits=1 count=3", "{path}");
        let trapped = server
            .send_with(Method::GET, path, &[("x-trap", "1")], Bytes::new())
            .await;
        assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            server.get(path).await.text(),
            "inits=1 count=1",
            "{path}: a trapped instance is discarded"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_each_get_an_instance_of_their_own() {
    // `sleep_200ms` holds its instance for 200 ms; with reuse on, ten at once
    // must still run side by side on ten instances, not queue on one.
    let root = WebRoot::new()
        .fixture("sleep.wat", "sleep_200ms.wat")
        .file("wasmlet.toml", "[instances]\nreuse = true\npool-size = 4\n");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/sleep").await.status, StatusCode::OK);
    let started = Instant::now();
    let replies = futures_util::future::join_all((0..10).map(|_| server.get("/sleep"))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_warm_instances_are_dropped_after_the_idle_timeout() {
    let root = WebRoot::new().fixture("counter.wat", "counter.wat").file(
        "wasmlet.toml",
        "[instances]\nreuse = true\nidle-timeout = \"200ms\"\n",
    );
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/counter").await.text(), "inits=1 count=1");
    assert_eq!(server.get("/counter").await.text(), "inits=1 count=2");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        server.get("/counter").await.text(),
        "inits=1 count=1",
        "the idle instance was dropped"
    );
}

#[tokio::test]
async fn a_reusable_handler_is_replaced_by_a_new_instance_after_max_requests() {
    let root = WebRoot::new().fixture("counter.wat", "counter.wat").file(
        "wasmlet.toml",
        "[instances]\nreuse = true\nmax-requests = 2\n",
    );
    let server = TestServer::start(root).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(server.get("/counter").await.text());
    }
    assert_eq!(
        seen,
        [
            "inits=1 count=1",
            "inits=1 count=2",
            "inits=1 count=1",
            "inits=1 count=2",
            "inits=1 count=1"
        ]
    );
}
