//! What a client sees of a handler's failure: with `--dev`, a `.wat`
//! syntax error's source line with a caret under the column, and a trap's
//! functions by name (with their source file and line when the module
//! carries debug info); without it, the status line and nothing more.

use http::StatusCode;
use wasmlet_tests::{TestServer, WebRoot, faulty_with_debug_info};

/// A `.wat` handler with a typo on line 4, column 5.
const TYPO: &str = "(module\n  (memory (export \"memory\") 1)\n  (func (export \"handle\")\n    i32.cnst 1\n    drop))\n";

/// A `.wat` handler that traps two calls deep, in functions it names.
const TRAPS: &str = "(module\n  (memory (export \"memory\") 1)\n  (func $check_order unreachable)\n  (func $place_order call $check_order)\n  (func (export \"handle\") call $place_order))\n";

fn web_root() -> WebRoot {
    WebRoot::new()
        .file("typo.wat", TYPO)
        .file("traps.wat", TRAPS)
        .bytes(
            "faulty.wasm",
            std::fs::read(faulty_with_debug_info()).unwrap(),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dev_a_syntax_error_page_shows_the_source_line_with_a_caret_under_the_column() {
    let server = TestServer::start_with(web_root(), |config| config.dev = true).await;
    let reply = server.get("/typo").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let page = reply.text();
    assert!(page.starts_with("500 Internal Server Error\n\n"), "{page}");
    assert!(page.contains("typo.wat:4:5: "), "{page}");
    assert!(
        page.ends_with(
            "\n2 |   (memory (export \"memory\") 1)\n\
             3 |   (func (export \"handle\")\n\
             4 |     i32.cnst 1\n  \
             |     ^\n\
             5 |     drop))\n"
        ),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dev_a_trap_page_names_the_functions_and_with_debug_info_their_source_lines() {
    let server = TestServer::start_with(web_root(), |config| config.dev = true).await;
    let page = server.get("/traps").await.text();
    assert!(
        page.contains("(in `check_order` called from `place_order` called from"),
        "{page}"
    );

    // A Rust handler built with line tables: the function, demangled, and
    // where in its source it trapped.
    let page = server.get("/faulty?how=trap").await.text();
    assert!(
        page.contains("`faulty::trap_here` at ")
            && page.contains("tests/sdk-fixtures/faulty/src/lib.rs:"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dev_no_excerpt_backtrace_or_source_line_reaches_the_client() {
    let server = TestServer::start_with(web_root(), |_| {}).await;
    for path in ["/typo", "/traps", "/faulty?how=trap"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(reply.text(), "500 Internal Server Error\n", "{path}");
    }
}
