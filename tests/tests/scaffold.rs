//! `wasmlet new`: what it creates builds and serves unchanged.

use std::process::Command;

use http::StatusCode;
use wasmlet::scaffold::{ScaffoldKind, scaffold};
use wasmlet_tests::{TestServer, WebRoot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_wat_handler_serves_unchanged() {
    let root = WebRoot::new();
    let created = scaffold(root.path(), "greet", ScaffoldKind::Wat).unwrap();
    assert_eq!(created, [root.path().join("greet.wat")]);
    let server = TestServer::start(root).await;
    let reply = server.get("/greet").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().starts_with("hello"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rust_handler_builds_for_wasm32_and_serves_unchanged() {
    let work = tempfile::tempdir().unwrap();
    scaffold(work.path(), "greet", ScaffoldKind::Rust).unwrap();
    let krate = work.path().join("greet");
    // Share the target directory the other SDK tests use, so the SDK and its
    // dependencies are built once.
    let target_dir = wasmlet_tests::handlers_dir()
        .parent()
        .unwrap()
        .join("target")
        .join("wasm-handlers");
    let built = tokio::task::spawn_blocking({
        let target_dir = target_dir.clone();
        move || {
            wasmlet_tests::sdk_handlers(); // installs the wasm target if needed
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            Command::new(cargo)
                .current_dir(&krate)
                .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(built.success(), "the scaffolded crate does not build");
    let wasm = std::fs::read(target_dir.join("wasm32-unknown-unknown/release/greet.wasm"))
        .expect("the build wrote greet.wasm");
    let server = TestServer::start(WebRoot::new().bytes("greet.wasm", wasm)).await;
    let reply = server.get("/greet?name=Ada").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("Ada"), "{}", reply.text());
}
