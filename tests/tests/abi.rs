//! The v1 guest ABI end to end: each import's rules, one fixture per rule,
//! seen through a real server and a real client.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use wasmlet_tests::{TestServer, WebRoot, log_contains};

/// Starts a server whose web root holds the fixture `name.wat` at `/name.wat`.
async fn serve_fixture(name: &str) -> TestServer {
    let file = format!("{name}.wat");
    TestServer::start(WebRoot::new().fixture(&file, &file)).await
}

/// A body that is not a repeat of a short pattern, so a lost, doubled or
/// reordered chunk changes it.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_answers_hello() {
    let server = serve_fixture("hello").await;
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_writes_nothing_answers_an_empty_200() {
    let server = serve_fixture("empty_response").await;
    let reply = server.get("/empty_response").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty(), "body: {:?}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_uri_and_header_reads_write_at_most_cap_and_return_the_full_length() {
    let server = serve_fixture("full_length_rule").await;
    let uri = "/full_length_rule?abc=1";
    let reply = server
        .send_with(Method::GET, uri, &[("x-long", "abcdefghij")], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Each line: full length, the 4-byte buffer plus its `|` sentinel, and
    // the value read again with cap = full length.
    assert_eq!(
        reply.text(),
        format!(
            "method 3 GET.| GET\nuri {} /ful| {uri}\nheader 10 abcd| abcdefghij\n",
            uri.len()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_exactly_cap_long_fills_the_buffer_and_an_absent_header_writes_nothing() {
    let server = serve_fixture("full_length_rule").await;
    let reply = server.send(Method::POST, "/full_length_rule", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        "method 4 POST| POST\nuri 17 /ful| /full_length_rule\nheader -1 ....| \n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_header_is_case_insensitive_and_joins_several_values_with_comma_space() {
    let server = serve_fixture("req_header_joins_values").await;
    let reply = server
        .send_with(
            Method::GET,
            "/req_header_joins_values",
            &[("x-multi", "a"), ("x-multi", "b c")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "a, b c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_header_returns_minus_one_for_an_absent_header() {
    let server = serve_fixture("req_header_absent_returns_minus_one").await;
    let reply = server.get("/req_header_absent_returns_minus_one").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_body_echoes_back_through_small_reads_and_writes() {
    let server = serve_fixture("echo_body_in_chunks").await;
    let body = pattern(5_003);
    let reply = server
        .send(Method::POST, "/echo_body_in_chunks", body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body == body,
        "echo differs: {} bytes back",
        reply.body.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_body_echoes_back_intact() {
    let server = serve_fixture("echo_body_in_chunks").await;
    let body = pattern(1_000_003);
    let reply = server
        .send(Method::PUT, "/echo_body_in_chunks", body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), body.len());
    assert!(reply.body == body, "echo differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_reads_as_its_end_at_once() {
    let server = serve_fixture("echo_body_in_chunks").await;
    let reply = server.get("/echo_body_in_chunks").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty(), "body: {:?}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_status_sets_the_status() {
    let server = serve_fixture("resp_status_sets_code").await;
    let reply = server.get("/resp_status_sets_code").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.text(), "created\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_status_code_returns_invalid_and_keeps_the_default() {
    let server = serve_fixture("resp_status_rejects_invalid_code").await;
    let reply = server.get("/resp_status_rejects_invalid_code").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "99 -> -2\n1000 -> -2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_status_after_the_head_is_sent_return_head_sent() {
    let server = serve_fixture("resp_header_after_head_sent").await;
    let reply = server.get("/resp_header_after_head_sent").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-early"), Some("1"));
    assert_eq!(reply.header("x-late"), None);
    assert_eq!(reply.text(), "body\nheader -> -3\nstatus -> -3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_header_name_or_value_returns_invalid_and_is_not_sent() {
    let server = serve_fixture("resp_header_rejects_invalid").await;
    let reply = server.get("/resp_header_rejects_invalid").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "name -> -2\nvalue -> -2\nok -> 0\n");
    assert_eq!(reply.header("x-ok"), Some("yes"));
    assert_eq!(reply.header("x-bad"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_header_appends_rather_than_replaces() {
    let server = serve_fixture("resp_header_appends").await;
    let reply = server.get("/resp_header_appends").await;
    assert_eq!(reply.status, StatusCode::OK);
    let values: Vec<_> = reply.headers.get_all("x-twice").iter().collect();
    assert_eq!(values, ["one", "two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_verb_exports_serve_their_own_verbs() {
    let server = serve_fixture("verb_dispatch").await;
    let get = server.get("/verb_dispatch").await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.text(), "get\n");
    let post = server.send(Method::POST, "/verb_dispatch", "").await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(post.text(), "post\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_verb_gets_405_with_allow_header() {
    let server = serve_fixture("verb_dispatch").await;
    for method in [Method::DELETE, Method::PUT, Method::PATCH] {
        let reply = server.send(method.clone(), "/verb_dispatch", "").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = reply.header("allow").unwrap_or_default();
        let mut verbs: Vec<_> = allow.split(", ").collect();
        verbs.sort_unstable();
        assert_eq!(verbs, ["GET", "POST"], "{method}: Allow: {allow:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_serves_every_verb_without_its_own_export() {
    let server = serve_fixture("handle_serves_other_verbs").await;
    for method in [Method::GET, Method::DELETE, Method::PUT] {
        let reply = server
            .send(method.clone(), "/handle_serves_other_verbs", "")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        assert_eq!(reply.text(), "handle\n", "{method}");
    }
    let post = server
        .send(Method::POST, "/handle_serves_other_verbs", "")
        .await;
    assert_eq!(post.text(), "post\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_405_is_decided_without_running_guest_code() {
    let server = serve_fixture("verb_check_runs_no_guest_code").await;
    // Instantiating runs the start function, which sleeps a second: a served
    // verb takes that long...
    let asked = std::time::Instant::now();
    let get = server.get("/verb_check_runs_no_guest_code").await;
    assert_eq!(get.status, StatusCode::OK);
    assert!(asked.elapsed() >= Duration::from_secs(1));
    // ...so a quick 405 proves the verb check never instantiated the module.
    let asked = std::time::Instant::now();
    let delete = server
        .send(Method::DELETE, "/verb_check_runs_no_guest_code", "")
        .await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.header("allow"), Some("GET"));
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "the 405 took {:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_log_lines_reach_the_server_log_at_every_level() {
    let server = serve_fixture("log_levels").await;
    let reply = server.get("/log_levels").await;
    assert_eq!(reply.status, StatusCode::OK);
    for message in [
        "guest-log-error",
        "guest-log-warn",
        "guest-log-info",
        "guest-log-debug",
    ] {
        assert!(
            log_contains(message, Duration::from_secs(5)).await,
            "log lacks {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_frame_the_connection_are_refused_as_invalid() {
    let server = serve_fixture("resp_header_rejects_host_owned").await;
    let reply = server.get("/resp_header_rejects_host_owned").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "transfer-encoding -> -2\nconnection -> -2\n");
    assert_ne!(reply.header("transfer-encoding"), Some("identity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_sized_body_read_is_invalid_and_consumes_nothing() {
    let server = serve_fixture("req_body_read_rejects_zero_cap").await;
    let reply = server
        .send(Method::POST, "/req_body_read_rejects_zero_cap", "xyz")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "-2 x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clocks_give_the_wall_time_and_the_requests_elapsed_microseconds() {
    let unix_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let server = serve_fixture("clocks").await;
    let before = unix_ms();
    let reply = server.get("/clocks").await;
    let after = unix_ms();
    assert_eq!(reply.status, StatusCode::OK);
    let values: Vec<i64> = reply
        .body
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let [now, first, second] = values[..] else {
        panic!("three i64s, got {} bytes", reply.body.len());
    };
    assert!(
        (before..=after).contains(&now),
        "{before} <= {now} <= {after}"
    );
    // Counted from the start of this request, not from any earlier one.
    assert!((0..1_000_000).contains(&first), "first reading {first} us");
    let slept = second - first;
    assert!(
        (100_000..5_000_000).contains(&slept),
        "a 100 ms sleep measured {slept} us"
    );
}
