//! Async host calls and streaming: writes reach the client while the guest
//! runs, waiting guests hold no thread, a vanished client is reported, and
//! concurrent first requests share one compile.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use wasmlet_tests::{TestServer, WebRoot, eventually, log_contains};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_write_reaches_the_client_before_the_handler_finishes() {
    let root = WebRoot::new().fixture("stream.wat", "stream_then_sleep.wat");
    let server = TestServer::start(root).await;
    let start = Instant::now();
    let response = server.open(Method::GET, "/stream").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();

    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a first frame")
        .expect("the body has a frame")
        .expect("the frame reads")
        .into_data()
        .expect("a data frame");
    let first_at = start.elapsed();
    assert_eq!(&first[..], b"first\n");
    // The handler sleeps 3 s between its writes.
    assert!(
        first_at < Duration::from_millis(2000),
        "first line after {first_at:?}"
    );

    let rest = body
        .collect()
        .await
        .expect("the rest of the body")
        .to_bytes();
    assert_eq!(&rest[..], b"second\n");
    assert!(
        start.elapsed() >= Duration::from_millis(3000),
        "the sleep was cut short"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_ms_waits_at_least_as_long_as_asked() {
    let root = WebRoot::new().fixture("sleep.wat", "sleep_200ms.wat");
    let server = TestServer::start(root).await;
    let start = Instant::now();
    let reply = server.get("/sleep").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "slept\n");
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sleeping_requests_finish_together() {
    let root = WebRoot::new().fixture("sleep.wat", "sleep_200ms.wat");
    let server = TestServer::start(root).await;
    // Compile first, so the measurement is of running, not compiling.
    assert_eq!(server.get("/sleep").await.status, StatusCode::OK);

    let start = Instant::now();
    let replies = join_all((0..200).map(|_| server.get("/sleep"))).await;
    let took = start.elapsed();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "slept\n");
    }
    // Run one after another, 200 × 200 ms is 40 s; two threads blocked in
    // sleep would take 20 s.
    assert!(took < Duration::from_secs(5), "200 sleeps took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_compile_once() {
    let root = WebRoot::new().fixture("hello.wat", "hello.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.stats.compiles(), 0);
    let replies = join_all((0..20).map(|_| server.get("/hello"))).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "hello\n");
    }
    assert_eq!(server.stats.compiles(), 1);
    // Later requests use the cached module.
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    assert_eq!(server.stats.compiles(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_write_returns_closed_once_the_client_has_gone() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let root = WebRoot::new().fixture("ticks.wat", "resp_write_reports_closed.wat");
    let server = TestServer::start(root).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /ticks HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send the request");
    // Read until the first tick has arrived, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("tick") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the first tick within 10 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before a tick: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    drop(stream);
    assert!(
        log_contains("resp_write returned CLOSED", Duration::from_secs(10)).await,
        "the guest never saw CLOSED:\n{}",
        wasmlet_tests::logs()
    );
    assert!(!wasmlet_tests::logs().contains("resp_write returned another error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_ignores_a_gone_client_is_cancelled_and_its_instance_freed() {
    // Writes once, then waits a minute without ever writing again, so it
    // never sees CLOSED: only cancellation can free its instance.
    let root = WebRoot::new().fixture("stuck.wat", "writes_then_waits_a_minute.wat");
    let server =
        TestServer::start_with(root, |c| c.request_timeout = Duration::from_secs(120)).await;
    let response = server.open(Method::GET, "/stuck").await;
    assert_eq!(response.status(), 200);
    assert!(
        eventually(Duration::from_secs(5), || server.stats.live_instances()
            == 1)
        .await,
        "the guest should be running"
    );
    drop(response);
    assert!(
        eventually(Duration::from_secs(5), || server.stats.live_instances()
            == 0)
        .await,
        "the instance was not freed after the client went away"
    );
    assert!(
        log_contains(
            "client went away; handler cancelled",
            Duration::from_secs(5)
        )
        .await
    );
}
