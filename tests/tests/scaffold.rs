//! `wasmlet new`: what it creates builds and serves unchanged, for each of
//! the three kinds (WebAssembly text, a Rust SDK crate, a WASI 0.3
//! component crate).

use std::process::Command;
use std::time::Duration;

use http::StatusCode;
use wasmlet::scaffold::{ScaffoldKind, scaffold};
use wasmlet_tests::{TestServer, WebRoot, log_contains};

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
    let target_dir = build(krate, &["--target", "wasm32-unknown-unknown"], || {
        wasmlet_tests::sdk_handlers(); // installs the wasm target if needed
    })
    .await;
    let wasm = std::fs::read(target_dir.join("wasm32-unknown-unknown/release/greet.wasm"))
        .expect("the build wrote greet.wasm");
    let server = TestServer::start(WebRoot::new().bytes("greet.wasm", wasm)).await;
    let reply = server.get("/greet?name=Ada").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("Ada"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_component_handler_builds_as_it_is_and_serves_as_a_wasi_0_3_component() {
    let work = tempfile::tempdir().unwrap();
    scaffold(work.path(), "greet", ScaffoldKind::Component).unwrap();
    let krate = work.path().join("greet");
    // Exactly what the crate's README says: the target comes from its
    // .cargo/config.toml. The Spin SDK is built in the shared target
    // directory already, for the component examples.
    let target_dir = build(krate, &[], || {
        wasmlet_tests::component_handlers(); // installs the wasm target if needed
    })
    .await;
    let wasm = std::fs::read(target_dir.join("wasm32-wasip2/release/greet.wasm"))
        .expect("the build wrote greet.wasm");
    let server = TestServer::start(WebRoot::new().bytes("greet.wasm", wasm)).await;
    let reply = server.get("/greet?name=Ada").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello, Ada\n");
    // No other test in this binary serves a component.
    assert!(log_contains("kind=\"WASI 0.3 component\"", Duration::from_secs(20)).await);
}

/// Runs `cargo build --release ARGS` in the scaffolded crate `krate`, after
/// `prepare`, with the target directory the example handlers share, and
/// returns that directory.
async fn build(
    krate: std::path::PathBuf,
    args: &'static [&'static str],
    prepare: fn(),
) -> std::path::PathBuf {
    let target_dir = wasmlet_tests::handlers_dir()
        .parent()
        .unwrap()
        .join("target")
        .join("wasm-handlers");
    let built = tokio::task::spawn_blocking({
        let target_dir = target_dir.clone();
        move || {
            prepare();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            Command::new(cargo)
                .current_dir(&krate)
                .args(["build", "--release"])
                .args(args)
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(built.success(), "the scaffolded crate does not build");
    target_dir
}
