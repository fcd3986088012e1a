//! SDK handlers built for wasm32 and served by the real server: the examples
//! in `handlers/rust/` and the failure fixture in `tests/sdk-fixtures/`.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use wasmlet_tests::{TestServer, WebRoot, log_contains};

async fn serve_sdk_handlers() -> TestServer {
    let root = tokio::task::spawn_blocking(|| {
        WebRoot::new()
            .sdk_handler("hello.wasm", "hello")
            .sdk_handler("echo.wasm", "echo")
            .sdk_handler("json.wasm", "json")
            .sdk_handler("countdown.wasm", "countdown")
            .sdk_handler("users/[id].wasm", "user")
            .sdk_handler("faulty.wasm", "faulty")
    })
    .await
    .unwrap();
    TestServer::start(root).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_handler_greets_by_query_parameter() {
    let server = serve_sdk_handlers().await;
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello, world\n");
    assert_eq!(
        server.get("/hello?name=Ada%20L").await.text(),
        "hello, Ada L\n"
    );
    let post = server.send(Method::POST, "/hello", "").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_handler_streams_a_five_megabyte_body_back() {
    let server = serve_sdk_handlers().await;
    let body: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let reply = server
        .send_with(
            Method::POST,
            "/echo",
            &[("content-type", "application/octet-stream")],
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), body.len());
    assert!(reply.body == body, "the echo differs from the upload");
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_handler_parses_and_answers_json() {
    let server = serve_sdk_handlers().await;
    let reply = server
        .send_with(
            Method::POST,
            "/json",
            &[("content-type", "application/json")],
            r#"{"name":"Ada"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    assert!(reply.text().contains("Ada"), "{}", reply.text());
    let bad = server.send(Method::POST, "/json", "not json").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_countdown_lines_arrive_before_the_handler_ends() {
    let server = serve_sdk_handlers().await;
    let started = Instant::now();
    let response = server.open(Method::GET, "/countdown?from=3").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = wasmlet_tests::first_chunk(&mut body).await;
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"3\n");
    let rest = body.collect().await.unwrap().to_bytes();
    let total = started.elapsed();
    assert_eq!(&rest[..], b"2\n1\n");
    // Two one-second sleeps: the first line came long before the end.
    assert!(total >= Duration::from_secs(2), "ended after {total:?}");
    assert!(
        first_at < Duration::from_millis(1500),
        "first line after {first_at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_parameter_reaches_the_handler() {
    let server = serve_sdk_handlers().await;
    let reply = server.get("/users/42").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("42"), "{}", reply.text());
    assert_eq!(
        server.get("/users/abc").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_is_a_500_and_its_message_is_logged() {
    let server = serve_sdk_handlers().await;
    let reply = server.get("/faulty?how=err").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.text().contains("database"),
        "internals leaked: {}",
        reply.text()
    );
    assert!(log_contains("the database said no", Duration::from_secs(5)).await);
    assert_eq!(server.get("/faulty").await.text(), "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_500_and_its_message_is_logged() {
    let server = serve_sdk_handlers().await;
    let reply = server.get("/faulty?how=panic").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.text().contains("invariant"),
        "internals leaked: {}",
        reply.text()
    );
    assert!(log_contains("the invariant broke: 42", Duration::from_secs(5)).await);
    assert_eq!(server.get("/faulty").await.text(), "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_the_first_write_cuts_the_body() {
    let server = serve_sdk_handlers().await;
    let answer = server
        .raw(
            b"GET /faulty?how=err-late HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(wasmlet_tests::raw_status(&answer), Some(200), "{answer:?}");
    assert!(answer.contains("first line"), "{answer:?}");
    assert!(
        !answer.ends_with("0\r\n\r\n"),
        "the body ended cleanly: {answer:?}"
    );
    assert!(log_contains("failed halfway", Duration::from_secs(5)).await);
}

/// What the `faulty` fixture's `alloc` mode answers for `bytes`.
fn checksum_of_pieces(bytes: usize) -> u64 {
    (0..bytes.div_ceil(4096))
        .map(|i| u64::from(i as u8) * (4096.min(bytes - i * 4096) as u64))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_in_the_sdk_arena_and_past_it_hold_their_contents() {
    let server = serve_sdk_handlers().await;
    // Inside the SDK allocator's 256 KiB arena; then 3 MiB, which grows the
    // memory several times; then the arena again, in a fresh instance.
    for bytes in [100, 200 << 10, 3 << 20, 5000] {
        let reply = server
            .get(&format!("/faulty?how=alloc&bytes={bytes}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{bytes}: {}", reply.text());
        assert_eq!(
            reply.text(),
            checksum_of_pieces(bytes).to_string(),
            "{bytes}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocation_past_the_memory_limit_traps_and_the_server_goes_on() {
    let root = tokio::task::spawn_blocking(|| WebRoot::new().sdk_handler("faulty.wasm", "faulty"))
        .await
        .unwrap();
    let server = TestServer::start_with(root, |c| c.max_memory = 8 << 20).await;
    let reply = server.get("/faulty?how=alloc&bytes=16777216").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = server.get("/faulty?how=alloc&bytes=1048576").await;
    assert_eq!(reply.text(), checksum_of_pieces(1 << 20).to_string());
}

/// The capability examples and the reusable fixture, with a `wasmlet.toml`
/// that grants what they use; `hosts` are allowed for outbound HTTP.
async fn serve_capability_handlers(hosts: &[String]) -> (TestServer, tempfile::TempDir) {
    let allow: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    let config = format!(
        "[kv]\nstores = [\"default\"]\n\n[files.mounts]\ndata = \"data\"\n\n[http]\nallow = [{}]\n",
        allow.join(", ")
    );
    let root = tokio::task::spawn_blocking(move || {
        WebRoot::new()
            .sdk_handler("notes.wasm", "notes")
            .sdk_handler("fanout.wasm", "fanout")
            .sdk_handler("counter.wasm", "counter")
            .file("data/readme.txt", "read me\n")
            .file("wasmlet.toml", &config)
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let server = TestServer::start_with(root, |c| c.data_dir = Some(dir)).await;
    (server, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reusable_sdk_handler_keeps_its_state_until_it_traps() {
    let (server, _data) = serve_capability_handlers(&[]).await;
    for n in 1..=3 {
        assert_eq!(server.get("/counter").await.text(), format!("count={n}"));
    }
    assert_eq!(
        server.get("/counter?trap").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(server.get("/counter").await.text(), "count=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notes_example_stores_lists_deletes_and_reads_files() {
    let (server, _data) = serve_capability_handlers(&[]).await;
    let put = server
        .send(Method::PUT, "/notes?key=shopping", "milk, eggs")
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    let put = server
        .send(Method::PUT, "/notes?key=todo", "call back")
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    assert_eq!(server.get("/notes?key=shopping").await.text(), "milk, eggs");
    assert_eq!(server.get("/notes").await.text(), "shopping\ntodo\n");
    assert_eq!(
        server.get("/notes?values").await.text(),
        "shopping: milk, eggs\ntodo: call back\n"
    );
    let deleted = server.send(Method::DELETE, "/notes?key=todo", "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/notes?key=todo").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/notes?file=readme.txt").await.text(),
        "read me\n"
    );
    assert_eq!(
        server.get("/notes?file=nope.txt").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_example_fetches_in_parallel_and_reports_denied_hosts() {
    let up = wasmlet_tests::peers::Upstream::answering("ok\n", Duration::from_millis(300)).await;
    let other = wasmlet_tests::peers::Upstream::answering("no\n", Duration::ZERO).await;
    let origin = format!("http://127.0.0.1:{}", up.addr().port());
    let (server, _data) = serve_capability_handlers(&[origin]).await;
    let path = format!(
        "/fanout?url={}&url={}&url={}",
        up.url("/a"),
        up.url("/b"),
        up.url("/c")
    );
    assert_eq!(server.get(&path).await.status, StatusCode::OK, "warm-up");
    let started = Instant::now();
    let reply = server.get(&path).await;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(report["count"], 3);
    for result in report["results"].as_array().unwrap() {
        assert_eq!(result["status"], 200, "{report}");
    }
    assert!(
        took < Duration::from_millis(750),
        "{took:?}: not concurrent"
    );
    // The handler's own measure, on the host's clock: at least the slowest
    // upstream, and within what the client saw.
    let took_ms = report["took_ms"].as_u64().expect("took_ms");
    assert!(
        (300..=took.as_millis() as u64).contains(&took_ms),
        "took_ms {took_ms} for a client-side {took:?}"
    );
    println!("fanout of three 300 ms upstreams: took_ms {took_ms}, client saw {took:?}");

    let denied = server.get(&format!("/fanout?url={}", other.url("/"))).await;
    let report: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
    assert_eq!(report["results"][0]["error"], "denied", "{report}");
    assert_eq!(other.connections(), 0);
}
