//! What a guest can make the host spend or say on its behalf, bounded: the
//! response head it builds (fields are host memory), the log it writes (the
//! operator's disk), the lines it could forge in that log, and the statuses
//! it may answer with. Also the requests refused before any guest runs (a
//! missing or doubled `Host`), and a store whose server is down at start.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmlet_tests::peers::ServerProcess;
use wasmlet_tests::redis::RedisServer;
use wasmlet_tests::{TestServer, WebRoot, eventually, log_contains, logs, raw_body, raw_status};

const LOG_WAIT: Duration = Duration::from_secs(10);

/// The guest lines of `handler` in the log so far that contain `needle`.
fn guest_lines(handler: &str, needle: &str) -> Vec<String> {
    logs()
        .lines()
        .filter(|line| line.contains("wasmlet::guest") && line.contains(handler))
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_response_header_values_are_refused_before_they_become_host_memory() {
    let root = WebRoot::new().fixture("big.wat", "resp_header_huge_values.wat");
    let server = TestServer::start_with(root, |c| c.max_memory = 64 << 20).await;
    let reply = server.get("/big").await;
    assert_eq!(reply.status, StatusCode::OK);
    // 1 MiB is past the 32 KiB head on its own: every call is TOO_LARGE.
    // (The server grew by 1 MiB of host memory per call before the limit.)
    assert_eq!(
        reply.text(),
        "L".repeat(400),
        "one byte per resp_header call"
    );
    assert!(reply.header("x-big").is_none(), "{:?}", reply.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_fields_past_the_count_limit_get_too_large_and_the_rest_are_sent() {
    let root = WebRoot::new().fixture("many.wat", "resp_header_many_fields.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/many").await;
    assert_eq!(reply.status, StatusCode::OK);
    let limit = wasmlet::config::DEFAULT_MAX_RESPONSE_HEADERS as usize;
    let want = "o".repeat(limit) + &"L".repeat(1000 - limit);
    assert_eq!(reply.text(), want, "one byte per resp_header call");
    assert_eq!(reply.headers.get_all("x-n").iter().count(), limit);

    // A smaller byte limit cuts earlier: `x-n: 1` is 3 + 1 + 4 bytes.
    let root = WebRoot::new().fixture("many.wat", "resp_header_many_fields.wat");
    let server = TestServer::start_with(root, |c| c.max_response_header_size = 80).await;
    let reply = server.get("/many").await;
    assert_eq!(reply.text(), "o".repeat(10) + &"L".repeat(990));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_statuses_are_invalid_and_the_handler_answers_with_its_final_one() {
    let root = WebRoot::new().fixture("interim.wat", "resp_status_interim.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/interim").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.text(),
        "IIIIo",
        "100, 101, 103, 199 refused; 201 taken"
    );
    // The connection is still good for the next request.
    assert_eq!(server.get("/interim").await.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_cannot_flood_the_log_and_one_line_counts_what_was_dropped() {
    let root = WebRoot::new().fixture("flood/one.wat", "log_flood.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/flood/one").await;
    assert_eq!(reply.text(), "done\n");
    assert!(
        log_contains("dropped 99345 log lines", LOG_WAIT).await,
        "no drop count in the log"
    );
    // 100-byte lines: 655 fit in 64 KiB.
    let written = guest_lines("/flood/one.wat", "flood-line").len();
    assert_eq!(written, 655, "lines written past --max-log-bytes");
    let summary = guest_lines("/flood/one.wat", "dropped");
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert!(summary[0].contains("--max-log-bytes"), "{}", summary[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_cannot_flood_the_log_past_the_handler_rate() {
    let root = WebRoot::new().fixture("flood/rate.wat", "log_flood.wat");
    let server = TestServer::start_with(root, |c| {
        c.log_rate = 8 << 10;
        c.max_log_lines = 1_000_000;
        c.max_log_bytes = 1 << 30;
    })
    .await;
    let started = Instant::now();
    for _ in 0..4 {
        assert_eq!(server.get("/flood/rate").await.text(), "done\n");
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        eventually(LOG_WAIT, || guest_lines("/flood/rate.wat", "dropped").len()
            == 4)
        .await,
        "one drop line per request"
    );
    let summaries = guest_lines("/flood/rate.wat", "dropped");
    assert!(summaries[0].contains("--log-rate"), "{}", summaries[0]);
    // The bucket holds 8 KiB and refills at 8 KiB a second; 4 MB were asked.
    let written = guest_lines("/flood/rate.wat", "flood-line").len() as f64 * 100.0;
    let allowed = 8192.0 * (1.0 + elapsed) + 100.0;
    assert!(
        written <= allowed,
        "{written} bytes of log in {elapsed:.2}s, more than the bucket allows ({allowed})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_forge_a_log_line_in_the_text_format() {
    let root = WebRoot::new().fixture("forge.wat", "log_forges_a_line.wat");
    let server = ServerProcess::start(root.path(), &["--log-format", "text"]);
    assert_eq!(status_of(&server.url("/forge")).await, StatusCode::OK);
    assert!(
        eventually(LOG_WAIT, || server.log().contains("innocent")).await,
        "the guest's line never came:\n{}",
        server.log()
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("innocent"))
        .expect("the guest's line");
    assert!(
        line.contains(r"innocent\n2026-01-01T00:00:00.000000Z") && line.contains(r"200\r\u{0}end"),
        "control characters not escaped: {line:?}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00")),
        "a forged line of its own:\n{log}"
    );
}

/// The status of `GET url`.
async fn status_of(url: &str) -> StatusCode {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    response.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_a_host_or_with_two_gets_400_without_running_guest_code() {
    let root = WebRoot::new()
        .fixture("hosts/logs.wat", "log_levels.wat")
        .file("hosts/page.txt", "a static page\n");
    let server = TestServer::start(root).await;
    let requests = [
        "GET /hosts/logs HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /hosts/logs HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        "GET /hosts/page.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /hosts/page.txt HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET /hosts/logs HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    ];
    for request in requests {
        let answer = server.raw(request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(raw_status(&answer), Some(400), "{request:?}: {answer:?}");
    }
    // HTTP/1.0 predates Host: one without it is served.
    let answer = server
        .raw(
            b"GET /hosts/page.txt HTTP/1.0\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(raw_status(&answer), Some(200), "{answer:?}");
    assert_eq!(
        raw_body(answer.as_bytes()).as_deref(),
        Some(&b"a static page\n"[..])
    );
    // One good request runs the guest once; the refused ones ran nothing.
    let answer = server.raw_get("/hosts/logs").await;
    assert_eq!(raw_status(&answer), Some(200), "{answer:?}");
    assert!(log_contains("guest-log-error", LOG_WAIT).await);
    assert_eq!(
        guest_lines("/hosts/logs.wat", "guest-log-error").len(),
        1,
        "guest code ran for a refused request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_carry_their_authority_and_are_served() {
    let root = WebRoot::new().file("page.txt", "a static page\n");
    let server = TestServer::start(root).await;
    let mut h2 = server.http2().await;
    let request = Request::get(server.url("/page.txt"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = h2.send_request(request).await.expect("an answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}

/// A web root holding the example `wasi:http` component under `/c/`, where
/// the last path segment picks what it does.
fn component_root() -> WebRoot {
    WebRoot::new().component_handler("c/[...path].wasm", "wasi_hello")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_answering_with_an_interim_status_gets_a_clean_500() {
    let server = TestServer::start(component_root()).await;
    for code in [100, 101, 103] {
        let reply = server.get(&format!("/c/status?code={code}")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{code}");
    }
    assert!(log_contains("interim (1xx) status", LOG_WAIT).await);
    let reply = server.get("/c/status?code=202").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_response_past_the_head_limits_is_refused_with_500() {
    let server = TestServer::start(component_root()).await;
    let many = server.get("/c/headers?n=97&size=1").await;
    assert_eq!(many.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(log_contains("--max-response-headers", LOG_WAIT).await);
    // 8 fields of 8 KiB: under wasi:http's own 128 KiB, over our 32 KiB.
    let big = server.get("/c/headers?n=8&size=8192").await;
    assert_eq!(big.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(log_contains("--max-response-header-size", LOG_WAIT).await);
    let fine = server.get("/c/headers?n=96&size=100").await;
    assert_eq!(fine.status, StatusCode::OK);
    assert!(fine.header("x-h-95").is_some(), "{:?}", fine.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_printing_a_flood_is_held_to_the_request_log_limits() {
    let root = WebRoot::new().component_handler("printer/[...path].wasm", "wasi_hello");
    let server = TestServer::start_with(root, |c| c.max_log_lines = 50).await;
    let reply = server.get("/printer/print?lines=5000&size=10").await;
    assert_eq!(reply.text(), "printed 5000\n");
    assert!(
        log_contains("dropped 4950 log lines", LOG_WAIT).await,
        "no drop count"
    );
    let printed = guest_lines("/printer/", "xxxxxxxxxx").len();
    assert_eq!(printed, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_request_with_two_hosts_gets_400() {
    let server = TestServer::start(component_root()).await;
    let answer = server
        .raw(
            b"GET /c/hello HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(raw_status(&answer), Some(400), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_down_at_start_fails_its_operations_and_works_once_redis_is_up() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    // Stopped before wasmlet starts: nothing listens on its port.
    redis.stop();
    let toml = format!(
        "[kv]\nstores = [\"cache\"]\n\n[stores.cache]\nbackend = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture("kv.wat", "cap_kv.wat")
        .file("wasmlet.toml", &toml);
    let server = TestServer::start(root).await;
    assert!(log_contains("is unavailable", LOG_WAIT).await);
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    let get = [("x-op", "get"), ("x-key", "k"), ("x-store", "cache")];
    let reply = server.send_with(Method::GET, "/kv", &get, "").await;
    // 600 + 9: FAILED, with the store named in `error_message`.
    assert_eq!(reply.status.as_u16(), 609, "{}", reply.text());
    assert!(reply.text().contains("\"cache\""), "{}", reply.text());

    redis.restart();
    let set = [("x-op", "set"), ("x-key", "k"), ("x-store", "cache")];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.send_with(Method::POST, "/kv", &set, "back").await;
        if reply.status == StatusCode::NO_CONTENT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never came back: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = server.send_with(Method::GET, "/kv", &get, "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "back");
}
