//! The example web root the README serves (`wasmlet serve handlers/wat`):
//! each example answers as its opening comment says.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use wasmlet_tests::{TestServer, handlers_dir, test_config};

async fn serve_examples() -> TestServer {
    TestServer::start_config(test_config(&handlers_dir().join("wat"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_example_answers_hello_and_greets_by_name() {
    let server = serve_examples().await;
    let plain = server.get("/hello").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.text(), "hello\n");
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(server.get("/hello?name=Ada").await.text(), "hello, Ada\n");
    assert_eq!(
        server.get("/hello?x=1&name=Bob&y=2").await.text(),
        "hello, Bob\n"
    );
    assert_eq!(server.get("/hello?surname=Ada").await.text(), "hello\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_example_streams_the_body_back_and_allows_only_post() {
    let server = serve_examples().await;
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let reply = server
        .send_with(
            Method::POST,
            "/echo",
            &[("content-type", "application/x-test")],
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body == body,
        "echo differs: {} bytes",
        reply.body.len()
    );
    assert_eq!(reply.header("content-type"), Some("application/x-test"));

    let get = server.get("/echo").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.header("allow"), Some("POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_example_sends_its_first_tick_before_the_last() {
    let server = serve_examples().await;
    let start = Instant::now();
    let response = server.open(Method::GET, "/stream").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = wasmlet_tests::first_chunk(&mut body).await;
    let first_at = start.elapsed();
    let rest = body.collect().await.expect("the rest").to_bytes();
    let all = [first.clone(), rest].concat();
    assert_eq!(
        String::from_utf8_lossy(&all),
        "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"
    );
    // Four 500 ms sleeps follow the first tick.
    assert!(
        first_at < Duration::from_millis(1500),
        "first tick after {first_at:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sleep_example_answers_after_a_second() {
    let server = serve_examples().await;
    let start = Instant::now();
    let reply = server.get("/sleep").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "slept 1000 ms\n");
    assert!(start.elapsed() >= Duration::from_millis(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_route_example_answers_with_the_id() {
    let server = serve_examples().await;
    let reply = server.get("/users/42").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "user 42\n");
    assert_eq!(
        server.get("/users/J%C3%BCrgen").await.text(),
        "user Jürgen\n"
    );
    let long = format!("/users/{}", "x".repeat(300));
    let too_long = server.get(&long).await;
    assert_eq!(too_long.status, StatusCode::URI_TOO_LONG);
    assert_eq!(too_long.text(), "id too long\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_page_links_every_example_and_source_is_never_served() {
    let server = serve_examples().await;
    let index = server.get("/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(
        index
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    for link in ["/hello", "/echo", "/stream", "/sleep", "/users/42"] {
        assert!(index.text().contains(link), "index lacks {link}");
    }
    let source = server.send(Method::GET, "/hello.wat", Bytes::new()).await;
    assert_eq!(source.text(), "hello\n");
}
