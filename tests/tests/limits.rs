//! When a guest misbehaves: traps, bad pointers, memory limits, endless
//! loops, modules that do not compile or link. The client gets the
//! documented status, the log says why, and the server keeps serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use wasmlet_tests::{TestServer, WebRoot, eventually, log_contains};

const LOG_WAIT: Duration = Duration::from_secs(5);

/// A web root with `hello.wat` beside the fixture under test at `rel`.
fn root_with(rel: &str, fixture: &str) -> WebRoot {
    WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture(rel, fixture)
}

async fn assert_still_serves(server: &TestServer) {
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "the server stopped serving");
    assert_eq!(reply.text(), "hello\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_before_the_head_is_a_generic_500_and_the_next_request_works() {
    let server = TestServer::start(root_with("traps/early.wat", "trap_before_head.wat")).await;
    let reply = server.get("/traps/early").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.text().contains("unreachable"),
        "guest internals in the body: {:?}",
        reply.text()
    );
    assert!(
        log_contains("traps/early", LOG_WAIT).await,
        "the log does not name the handler"
    );
    assert_still_serves(&server).await;
    // A fresh instance per request: the trap happens again, it is not cached
    // as a broken server.
    assert_eq!(
        server.get("/traps/early").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_puts_the_trap_message_in_the_500_body() {
    let root = root_with("dev_trap.wat", "trap_before_head.wat");
    let server = TestServer::start_with(root, |config| config.dev = true).await;
    let reply = server.get("/dev_trap").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reply.text().contains("unreachable"),
        "body: {:?}",
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_told_once_in_one_line_with_the_functions_it_happened_in() {
    let root = WebRoot::new().file(
        "deep.wat",
        r#"(module
            (memory (export "memory") 1)
            (func $inner unreachable)
            (func $outer call $inner)
            (func (export "handle") call $outer))"#,
    );
    let server = TestServer::start_with(root, |config| config.dev = true).await;
    let reply = server.get("/deep").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = reply.text();
    assert!(text.contains("wasm trap: wasm `unreachable`"), "{text:?}");
    assert!(!text.contains("wasm trap: wasm trap"), "{text:?}");
    assert!(
        text.contains("(in `inner` called from `outer` called from "),
        "{text:?}"
    );
    // The status line, a blank line, then the message alone on its line: no
    // multi-line backtrace dump.
    assert!(!text.contains("backtrace"), "{text:?}");
    let message: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(message.len(), 1, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_file_saved_as_wasm_is_refused_in_one_line_that_says_so() {
    let root = WebRoot::new()
        .file("notes.wasm", "this is not a module\n")
        .file("text.wasm", "(module (func (export \"handle\")))");
    let server = TestServer::start(root).await;
    for path in ["/notes", "/text"] {
        assert_eq!(
            server.get(path).await.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
    }
    for said in [
        "notes.wasm: not a valid WebAssembly module: it starts with \"this is not \", not with the bytes \\0asm",
        "text.wasm: not a valid WebAssembly module: it is WebAssembly text, not binary: name the file `.wat`",
    ] {
        assert!(
            log_contains(said, LOG_WAIT).await,
            "not said: {said}\n{}",
            wasmlet_tests::logs()
        );
    }
    assert!(!wasmlet_tests::logs().contains("bad magic number"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_after_the_head_cuts_the_body_instead_of_ending_it() {
    let server = TestServer::start(root_with("late.wat", "trap_after_head.wat")).await;
    let response = server.open(Method::GET, "/late").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = wasmlet_tests::first_chunk(&mut body).await;
    assert_eq!(&first[..], b"partial\n");
    let rest = body.collect().await;
    assert!(
        rest.is_err(),
        "the body ended cleanly: {:?}",
        rest.map(|b| b.to_bytes())
    );
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_right_after_the_first_write_never_looks_complete() {
    let server = TestServer::start(root_with("late.wat", "trap_right_after_write.wat")).await;
    let answer = server
        .raw(
            b"GET /late HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
    // The head and what was written reach the client, then the chunked body
    // is cut before its last chunk.
    assert_eq!(wasmlet_tests::raw_status(&answer), Some(200), "{answer:?}");
    assert!(answer.contains("partial\n"), "{answer:?}");
    assert!(!answer.ends_with("0\r\n\r\n"), "a clean end: {answer:?}");
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_bounds_pointers_trap_with_500() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture("oob_pointer.wat", "oob_pointer_traps.wat")
        .fixture("oob_wrap.wat", "oob_range_wraps_traps.wat")
        .fixture("oob_buffer.wat", "oob_write_buffer_traps.wat");
    let server = TestServer::start(root).await;
    for path in ["/oob_pointer", "/oob_wrap", "/oob_buffer"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(!reply.text().contains("wrapped around"), "{path}");
    }
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_grow_returns_minus_one_at_the_limit_instead_of_trapping() {
    let server =
        TestServer::start(root_with("grow.wat", "memory_grow_returns_minus_one.wat")).await;
    let reply = server.get("/grow").await;
    assert_eq!(reply.status, StatusCode::OK, "body: {:?}", reply.text());
    let pages: u32 = reply
        .text()
        .trim()
        .strip_prefix("pages ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected body {:?}", reply.text()));
    // The tests' limit is 16 MiB: 256 pages of 64 KiB.
    assert!((129..=256).contains(&pages), "grew to {pages} pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_gets_500_and_the_server_keeps_serving() {
    let server = TestServer::start(root_with("bomb.wat", "memory_bomb_traps.wat")).await;
    for _ in 0..3 {
        let reply = server.get("/bomb").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_whose_initial_memory_is_over_the_limit_gets_500() {
    let server = TestServer::start(root_with("big.wat", "initial_memory_over_limit.wat")).await;
    assert_eq!(
        server.get("/big").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_still_serves(&server).await;
}

/// Starts `spinners` requests to the endless loop at `/spin` (request timeout
/// 4 s), then checks for two seconds that `/hello` keeps answering within
/// 500 ms while they spin (it takes a few ms on an idle server), and that
/// every loop ends in `504` at the timeout.
async fn hello_stays_quick_beside_spinning_guests(spinners: usize) {
    let root = root_with("spin.wat", "infinite_loop.wat");
    let timeout = Duration::from_secs(4);
    let server = Arc::new(TestServer::start_with(root, |c| c.request_timeout = timeout).await);
    assert_still_serves(&server).await;
    let compiled = server.stats.compiles();

    let loops: Vec<_> = (0..spinners)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let reply = server.get("/spin").await;
                (reply.status, start.elapsed())
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || server.stats.compiles()
            > compiled)
        .await,
        "the looping handler never compiled"
    );

    // For the next two seconds the loops are spinning (the timeout is 4 s).
    let window = Instant::now();
    let mut answered = 0;
    while window.elapsed() < Duration::from_secs(2) {
        let start = Instant::now();
        assert_still_serves(&server).await;
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "hello took {took:?} beside {spinners} spinning guests"
        );
        answered += 1;
    }
    assert!(answered > 0);
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "a loop ended before the timeout"
    );

    for spinner in loops {
        let (status, took) = spinner.await.expect("request task");
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            took >= timeout - Duration::from_millis(100),
            "504 after {took:?}"
        );
        assert!(
            took < timeout + Duration::from_secs(5),
            "504 after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_gets_504_while_other_requests_answer_quickly() {
    hello_stays_quick_beside_spinning_guests(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_spinning_guests_than_worker_threads_do_not_starve_other_requests() {
    // If a spinning guest held its thread, or kept the thread from polling
    // the network, nothing else could run.
    hello_stays_quick_beside_spinning_guests(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_error_gets_500_and_the_log_names_file_line_and_column() {
    let server =
        TestServer::start(root_with("broken/compile_error.wat", "compile_error.wat")).await;
    let reply = server.get("/broken/compile_error").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.text().contains("bogus"),
        "compile details in the body: {:?}",
        reply.text()
    );
    assert!(
        log_contains("compile_error.wat:6:6", LOG_WAIT).await,
        "the log lacks compile_error.wat:6:6:\n{}",
        wasmlet_tests::logs()
    );
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_fails_validation_gets_500() {
    let server = TestServer::start(root_with("invalid.wat", "validation_error.wat")).await;
    assert_eq!(
        server.get("/invalid").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_import_gets_500_and_the_log_names_it() {
    let server = TestServer::start(root_with("unknown_import.wat", "unknown_import.wat")).await;
    assert_eq!(
        server.get("/unknown_import").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(
        log_contains("wasmlet::nope", LOG_WAIT).await,
        "the log does not name wasmlet::nope:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_the_wrong_signature_gets_500_and_the_log_names_it() {
    let root = root_with("mismatch.wat", "import_signature_mismatch.wat");
    let server = TestServer::start(root).await;
    assert_eq!(
        server.get("/mismatch").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(
        log_contains("wasmlet::req_method", LOG_WAIT).await,
        "the log does not name wasmlet::req_method:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_import_is_refused_with_the_name_meant() {
    let root = WebRoot::new().file(
        "typo.wat",
        r#"(module
            (import "wasmlet" "resp_writ" (func (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "handle")))"#,
    );
    let server = TestServer::start(root).await;
    assert_eq!(
        server.get("/typo").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(
        log_contains("did you mean `resp_write`?", LOG_WAIT).await,
        "no suggestion:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_signature_is_refused_with_what_wasmlet_provides() {
    let root = root_with("mismatch.wat", "import_signature_mismatch.wat");
    let server = TestServer::start(root).await;
    assert_eq!(
        server.get("/mismatch").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let said = "imports `wasmlet::req_method` as (func (param i64) (result i32)), \
                but wasmlet provides it as (func (param i32 i32) (result i32))";
    assert!(
        log_contains(said, LOG_WAIT).await,
        "not said plainly:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_from_another_module_is_refused_naming_wasmlets() {
    let root = WebRoot::new().file(
        "wasi.wat",
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "handle")))"#,
    );
    let server = TestServer::start(root).await;
    assert_eq!(
        server.get("/wasi").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(
        log_contains("imports `wasi_snapshot_preview1::fd_write`; wasmlet's imports are all in module `wasmlet`", LOG_WAIT).await,
        "not said plainly:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test]
async fn a_handler_file_over_the_size_limit_fails_to_load_without_compiling() {
    let server = TestServer::start_with(
        WebRoot::new()
            .fixture("hello.wat", "hello.wat")
            .file("big.wat", &format!("(module)\n;; {}\n", "x".repeat(4096))),
        |c| c.max_module_size = 2048,
    )
    .await;
    let reply = server.get("/big").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        log_contains("--max-module-size", LOG_WAIT).await,
        "the load error names the limit"
    );
    assert_eq!(server.stats.compiles(), 0, "nothing was compiled");
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}
