//! WASI 0.3 components (`wasi:http/handler@0.3.0`) served next to 0.2
//! components and core handlers: the example (`handlers/rust/wasi-p3-hello`,
//! built with the Spin SDK for wasm32-wasip2 from source) answers, echoes a
//! large body as it streams, streams its own, traps, gets `500` for an
//! error code or a head the host will not send, times out, stays under
//! the memory and instance limits, is cancelled when its client goes away,
//! fetches only what the allow-list grants (several fetches awaited
//! together inside one request), and comes back from the disk cache after a
//! restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use wasmlet_tests::peers::Upstream;
use wasmlet_tests::{TestServer, WebRoot, component_checks, eventually, log_contains};

const DEADLINE: Duration = Duration::from_secs(20);

/// The example 0.3 component, mounted so that `/p3/<endpoint>` reaches it.
const MOUNT: &str = "p3/[...path].wasm";

fn root() -> WebRoot {
    WebRoot::new().component_handler(MOUNT, "wasi_p3_hello")
}

/// A web root granting outbound HTTP to `up`.
fn granted(up: &Upstream) -> WebRoot {
    root().file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_0_3_component_answers_get_and_echoes_a_large_posted_body() {
    let server = TestServer::start(root()).await;
    let reply = server.get("/p3/hello?name=ann").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "hello, ann\n");

    // Larger than a stream's chunk and than a socket buffer: it streams in
    // and out while the guest runs.
    let body: String = (0..100_000).map(|i| format!("{i:07} ")).collect();
    let reply = server.send(Method::POST, "/p3/echo", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text().len(), body.len());
    assert!(reply.text() == body, "the echoed body differs");

    // Each request is counted (and logged) once, when its guest's task ends.
    assert!(eventually(DEADLINE, || server.stats.requests() == 2).await);
    assert!(log_contains("kind=\"WASI 0.3 component\"", DEADLINE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_0_3_components_streamed_chunk_reaches_the_client_before_it_finishes() {
    let server = TestServer::start(root()).await;
    component_checks::streams_before_finishing(&server, "/p3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_wasi_0_3_component_gets_500_and_the_next_request_works() {
    let server = TestServer::start(root()).await;
    let reply = server.get("/p3/trap").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(log_contains("the trap endpoint was asked to trap", DEADLINE).await);
    assert_eq!(server.get("/p3/hello").await.text(), "hello, world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_code_or_an_unsendable_head_from_a_wasi_0_3_component_gets_500_saying_why() {
    let server = TestServer::start_with(root(), |c| c.dev = true).await;
    for (path, why) in [
        (
            "/p3/error",
            "the handler answered with the error ErrorCode::InternalError",
        ),
        (
            "/p3/status?code=101",
            "status 101 is an interim (1xx) status, not a final answer",
        ),
        (
            "/p3/headers?n=200&size=10",
            "200 header fields, more than --max-response-headers (96)",
        ),
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(reply.text().contains(why), "{path}: {}", reply.text());
    }
    let reply = server.get("/p3/headers?n=3&size=10").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-h-2"), Some("vvvvvvvvvv"));
    assert_eq!(server.get("/p3/status?code=418").await.status.as_u16(), 418);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_wasi_0_3_component_gets_504_while_others_answer() {
    let server = Arc::new(
        TestServer::start_with(root(), |c| {
            c.request_timeout = Duration::from_secs(2);
            // Loaded before serving: the timeout is of running, not compiling.
            c.precompile = true;
        })
        .await,
    );
    let spinner = {
        let server = server.clone();
        tokio::spawn(async move { server.get("/p3/spin").await.status })
    };
    assert!(eventually(DEADLINE, || server.stats.live_instances() == 1).await);
    // The spinner yields at every epoch tick: its worker serves others.
    let start = Instant::now();
    assert_eq!(server.get("/p3/hello").await.status, StatusCode::OK);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1500), "hello took {took:?}");
    assert!(!spinner.is_finished(), "the spinner ended early");
    assert_eq!(spinner.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(server.get("/p3/hello").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_0_3_component_cannot_grow_its_memory_past_the_limit() {
    let server = TestServer::start(root()).await;
    component_checks::memory_stays_under_the_limit(&server, "/p3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_0_3_components_fetch_is_denied_without_a_grant_and_served_with_one() {
    let up = Upstream::answering("from upstream\n", Duration::ZERO).await;
    let path = format!("/p3/fetch?url={}", up.url("/x"));

    let denied = TestServer::start(root()).await;
    let reply = denied.get(&path).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(up.connections(), 0);
    assert!(
        log_contains(
            "outbound HTTP is not granted to /p3/[...path].wasm",
            DEADLINE
        )
        .await
    );
    drop(denied);

    let server = TestServer::start(granted(&up)).await;
    let reply = server.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "from upstream\n");
    assert_eq!(up.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_slow_fetches_awaited_together_take_about_as_long_as_one() {
    let delay = Duration::from_secs(1);
    let up = Upstream::answering("slow\n", delay).await;
    let server = TestServer::start(granted(&up)).await;
    // Compile first, so the timing is of running.
    assert_eq!(server.get("/p3/hello").await.status, StatusCode::OK);
    let start = Instant::now();
    let reply = server
        .get(&format!("/p3/fanout?url={}&n=3", up.url("/x")))
        .await;
    let took = start.elapsed();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "0: 200\n1: 200\n2: 200\n");
    // One after another would be 3 s.
    assert!(took >= delay, "took {took:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_0_3_component_whose_client_went_away_is_cancelled_and_its_instance_freed() {
    let server =
        TestServer::start_with(root(), |c| c.request_timeout = Duration::from_secs(120)).await;
    // Its first chunk, then a minute's wait before the second: only
    // cancellation ends it sooner.
    let response = server
        .open(Method::GET, "/p3/stream?chunks=2&ms=60000")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        eventually(DEADLINE, || server.stats.live_instances() == 1).await,
        "the guest should be running"
    );
    drop(response);
    assert!(
        eventually(Duration::from_secs(5), || server.stats.live_instances()
            == 0)
        .await,
        "the instance was not freed after the client went away"
    );
    assert!(log_contains("client went away; handler cancelled", DEADLINE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_instance_limit_a_wasi_0_3_request_gets_503_with_retry_after() {
    let server = Arc::new(TestServer::start_with(root(), |c| c.max_instances = 1).await);
    // The stream holds the one instance for 1.5 s, between its two chunks.
    let holding = "stream?chunks=2&ms=1500";
    component_checks::past_the_instance_limit_one_gets_503(server, "/p3", holding).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_serves_the_wasi_0_3_component_from_the_disk_cache() {
    component_checks::a_restart_is_served_from_the_disk_cache(root(), "/p3/hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_wasi_0_3_component_under_load_fails_no_request_with_fresh_instances() {
    component_checks::replacing_under_load_fails_no_request(
        WebRoot::new(),
        MOUNT,
        "wasi_p3_hello",
        "/p3/hello",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_wasi_0_3_component_under_load_fails_no_request_with_reused_instances() {
    // Requests in flight finish on the old version's shared instances, which
    // end when their last request is done.
    let root = WebRoot::new().file("wasmlet.toml", "[instances]\nreuse = true\n");
    component_checks::replacing_under_load_fails_no_request(
        root,
        MOUNT,
        "wasi_p3_hello",
        "/p3/hello",
    )
    .await;
}
