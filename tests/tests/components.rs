//! Standard `wasi:http` components served next to core handlers: the example
//! component (`handlers/rust/wasi-hello`, built for wasm32-wasip2 from
//! source) answers, streams, traps, times out, fetches only what the
//! allow-list grants, is replaced under load without a failed request, and
//! comes back from the disk cache after a restart. A request it cannot be
//! given (no authority) is refused before it waits for an execution slot.
//! A component that exports something else fails to load with a message
//! saying so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use wasmlet_tests::peers::Upstream;
use wasmlet_tests::{
    TestServer, WebRoot, component_checks, eventually, first_chunk, log_contains, raw_body,
    raw_status,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// The example component, mounted so that `/c/<endpoint>` reaches it.
const MOUNT: &str = "c/[...path].wasm";

fn root() -> WebRoot {
    WebRoot::new().component_handler(MOUNT, "wasi_hello")
}

/// `url` as a query value.
fn encoded(url: &str) -> String {
    url.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_answers_get_and_echoes_a_posted_body() {
    let server = TestServer::start(root()).await;
    let reply = server.get("/c/hello?name=ann").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "hello, ann\n");

    let body = "a body of some length, ".repeat(1000);
    let reply = server.send(Method::POST, "/c/echo", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), body);

    let reply = server.send(Method::DELETE, "/c/hello", "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    // Each request is counted (and logged) once, when its guest's task ends.
    assert!(eventually(DEADLINE, || server.stats.requests() == 3).await);
    assert!(log_contains("kind=\"wasi:http component\"", DEADLINE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_chunk_reaches_the_client_before_the_component_finishes() {
    let server = TestServer::start(root()).await;
    component_checks::streams_before_finishing(&server, "/c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_component_gets_500_and_its_panic_message_reaches_the_log() {
    let server = TestServer::start(root()).await;
    let reply = server.get("/c/trap").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    // stderr (where the panic message goes) is logged line by line, with
    // the request's id.
    assert!(log_contains("the trap endpoint was asked to trap", DEADLINE).await);
    assert!(log_contains("stream=\"stderr\"", DEADLINE).await);
    // The server is fine afterwards.
    assert_eq!(server.get("/c/hello").await.text(), "hello, world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_past_the_request_timeout_gets_504() {
    let server = TestServer::start_with(root(), |c| {
        c.request_timeout = Duration::from_millis(500);
        // Loaded before serving: a first request waits for the compile only
        // up to its timeout, and compiling a component takes longer.
        c.precompile = true;
    })
    .await;
    assert_eq!(server.get("/c/hello").await.status, StatusCode::OK);
    let start = Instant::now();
    let reply = server.get("/c/sleep?ms=30000").await;
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_components_get_504_while_other_requests_answer_quickly() {
    let timeout = Duration::from_secs(3);
    let server = Arc::new(TestServer::start_with(root(), |c| c.request_timeout = timeout).await);
    assert_eq!(server.get("/c/hello").await.status, StatusCode::OK);
    // More spinning guests than worker threads: if one held its thread, or
    // kept it from polling the network, nothing else could run.
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.get("/c/spin").await.status })
        })
        .collect();
    assert!(eventually(DEADLINE, || server.stats.live_instances() == 3).await);
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(1) {
        let start = Instant::now();
        assert_eq!(server.get("/c/hello").await.status, StatusCode::OK);
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "hello took {took:?}");
    }
    assert!(
        spinners.iter().all(|s| !s.is_finished()),
        "a spinner ended early"
    );
    for spinner in spinners {
        assert_eq!(spinner.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_cannot_grow_its_memory_past_the_limit() {
    let server = TestServer::start(root()).await;
    component_checks::memory_stays_under_the_limit(&server, "/c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_instance_limit_a_component_request_gets_503_with_retry_after() {
    let server = Arc::new(TestServer::start_with(root(), |c| c.max_instances = 1).await);
    component_checks::past_the_instance_limit_one_gets_503(server, "/c", "sleep?ms=1500").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_request_without_a_host_gets_400_without_waiting_for_an_execution_slot() {
    let server = Arc::new(
        TestServer::start_with(root(), |c| {
            c.max_concurrency = Some(1);
            c.max_queue = 0;
            c.request_timeout = Duration::from_secs(60);
        })
        .await,
    );
    // A guest that sleeps holds the only execution slot meanwhile.
    let sleeper = {
        let server = server.clone();
        tokio::spawn(async move { server.get("/c/sleep?ms=30000").await })
    };
    assert!(eventually(DEADLINE, || server.stats.live_instances() == 1).await);
    // HTTP/1.0 may leave out `Host`, but a component must be given an
    // authority: that is a 400, told before admission (which, with the slot
    // taken and no queue, would say 503).
    let answer = server.raw(b"GET /c/hello HTTP/1.0\r\n\r\n", DEADLINE).await;
    assert_eq!(raw_status(&answer), Some(400), "{answer}");
    assert!(
        answer.ends_with("bad request: a Host header is required\n"),
        "{answer}"
    );
    // And a request with its Host is refused for the slot, as before.
    let busy = server.get("/c/hello").await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.text()
    );
    sleeper.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_timing_out_mid_body_cuts_the_body() {
    let server = TestServer::start_with(root(), |c| {
        c.request_timeout = Duration::from_millis(1000);
        // Loaded before serving, as above.
        c.precompile = true;
    })
    .await;
    assert_eq!(server.get("/c/hello").await.status, StatusCode::OK);
    let response = server.open(Method::GET, "/c/stream?chunks=3&ms=3000").await;
    // The head went out with the first chunk: the status is the guest's.
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    assert_eq!(&first_chunk(&mut body).await[..], b"chunk 0\n");
    // The timeout then ends the guest: the client sees a cut body, not a
    // clean end that would pass for the whole response.
    let rest = tokio::time::timeout(DEADLINE, body.collect())
        .await
        .expect("the body ends");
    assert!(rest.is_err(), "the body ended cleanly after a timeout");
}

/// What the component's `count` endpoint answered in a raw HTTP/1.1 answer:
/// the status and the body's text.
fn counted(answer: &str) -> (Option<u16>, String) {
    let body =
        raw_body(answer.as_bytes()).unwrap_or_else(|| panic!("an incomplete answer: {answer:?}"));
    (
        raw_status(answer),
        String::from_utf8(body).expect("a text body"),
    )
}

/// The byte count in `failed after N: …`.
fn failed_after(text: &str) -> u64 {
    text.strip_prefix("failed after ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a failed read: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_fails_the_components_read_at_the_limit() {
    let limit = 64 << 10;
    let server = TestServer::start_with(root(), |c| c.max_body_size = limit).await;
    let (status, text) = counted(&server.post_chunked("/c/count", 48 << 10).await);
    assert_eq!((status, text.as_str()), (Some(200), "read 49152\n"));

    let (status, text) = counted(&server.post_chunked("/c/count", 4 << 20).await);
    assert_eq!(status, Some(400), "{text}");
    let read = failed_after(&text);
    assert!(read <= limit, "the component read {read} bytes: {text}");
    // The guest reads the error with `to-debug-string`: the code's message,
    // and none of the host's stack (RUST_BACKTRACE is set on CI machines).
    assert!(
        text.contains("HTTP request body size exceeds limit: 65536 bytes"),
        "{text}"
    );
    assert!(
        !text.contains("acktrace"),
        "a host backtrace reached the guest: {text}"
    );
    println!(
        "a 4 MiB chunked body against a 64 KiB limit: {}",
        text.trim_end()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_fails_the_components_read_at_the_body_timeout() {
    let body_timeout = Duration::from_millis(500);
    let server = TestServer::start_with(root(), |c| c.body_timeout = body_timeout).await;
    // Compile first, so the timing is of the body.
    assert_eq!(server.get("/c/hello").await.status, StatusCode::OK);
    let (answer, took) = server.post_then_stall("/c/count").await;
    let (status, text) = counted(&answer);
    assert_eq!(status, Some(400), "{text}");
    assert_eq!(failed_after(&text), 10, "{text}");
    assert!(text.contains("connection read timeout"), "{text}");
    assert!(
        !text.contains("acktrace"),
        "a host backtrace reached the guest: {text}"
    );
    // Well before the 5 s request timeout.
    assert!(
        took >= body_timeout && took < Duration::from_secs(3),
        "{took:?}"
    );
    println!(
        "a component's body that stalls after 10 of 1000 bytes: its read failed after {:.0} ms (body timeout 500 ms): {}",
        took.as_secs_f64() * 1e3,
        text.trim_end()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_fetch_reaches_a_granted_upstream() {
    let up = Upstream::answering("from upstream\n", Duration::ZERO).await;
    let root = root().file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    );
    let server = TestServer::start(root).await;
    let path = format!("/c/fetch?url={}", encoded(&up.url("/x")));
    let reply = server.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "from upstream\n");
    assert_eq!(up.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_fetch_without_a_grant_is_denied_before_any_connection() {
    let up = Upstream::answering("never\n", Duration::ZERO).await;
    let granted = Upstream::answering("other\n", Duration::ZERO).await;
    // A grant for another origin does not cover this one.
    let root = root().file(
        "elsewhere/wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            granted.addr().port()
        ),
    );
    let server = TestServer::start(root).await;
    let path = format!("/c/fetch?url={}", encoded(&up.url("/x")));
    let reply = server.get(&path).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(up.connections(), 0);
    assert!(
        log_contains(
            "outbound HTTP is not granted to /c/[...path].wasm",
            DEADLINE
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_component_under_load_fails_no_request() {
    component_checks::replacing_under_load_fails_no_request(
        WebRoot::new(),
        MOUNT,
        "wasi_hello",
        "/c/hello",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_serves_the_component_from_the_disk_cache() {
    component_checks::a_restart_is_served_from_the_disk_cache(root(), "/c/hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_is_not_a_wasi_http_handler_fails_to_load_saying_what_it_exports() {
    let root = WebRoot::new().file(
        "answer.wat",
        r#"(component
            (core module $m (func (export "answer") (result i32) i32.const 42))
            (core instance $i (instantiate $m))
            (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"#,
    );
    let server = TestServer::start_with(root, |c| c.dev = true).await;
    let reply = server.get("/answer").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = reply.text();
    assert!(
        text.contains("is a component that exports `answer`"),
        "{text}"
    );
    assert!(
        text.contains("must export `wasi:http/incoming-handler@0.2.x`"),
        "{text}"
    );
}
