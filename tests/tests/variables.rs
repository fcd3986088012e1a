//! `[variables]` end to end: values from literals, the environment and
//! files reach handlers through `var_get`, inherited and overridden per
//! directory and per handler; a missing source stops the start or keeps the
//! previous configuration; a secret never reaches a log line, the status
//! page or the metrics.

use std::time::{Duration, Instant};

use http::Method;
use wasmlet_tests::{TestServer, WebRoot, log_contains, logs};

/// Answers the variable named by the `x-var` header, or `absent`.
const ECHO_VAR: &str = r#"(module
  (import "wasmlet" "req_header" (func $header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "var_get" (func $var (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-var")
  (data (i32.const 16) "absent")
  (func (export "handle") (local $name i32) (local $len i32)
    (local.set $name (call $header (i32.const 0) (i32.const 5) (i32.const 64) (i32.const 64)))
    (local.set $len (call $var (i32.const 64) (local.get $name) (i32.const 1024) (i32.const 4096)))
    (if (i32.lt_s (local.get $len) (i32.const 0))
      (then (drop (call $write (i32.const 16) (i32.const 6))))
      (else (drop (call $write (i32.const 1024) (local.get $len)))))))"#;

/// Reads `api_key`, logs something else, and traps.
const USES_SECRET_AND_TRAPS: &str = r#"(module
  (import "wasmlet" "var_get" (func $var (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "api_key")
  (data (i32.const 16) "calling the upstream failed")
  (func (export "handle")
    (drop (call $var (i32.const 0) (i32.const 7) (i32.const 1024) (i32.const 4096)))
    (call $log (i32.const 1) (i32.const 16) (i32.const 27))
    unreachable))"#;

async fn var(server: &TestServer, path: &str, name: &str) -> String {
    server
        .send_with(Method::GET, path, &[("x-var", name)], "")
        .await
        .text()
}

#[tokio::test]
async fn variables_are_inherited_and_overridden_per_directory_and_per_handler() {
    let root = WebRoot::new()
        .file("var.wat", ECHO_VAR)
        .file("api/var.wat", ECHO_VAR)
        .file("api/own.wat", ECHO_VAR)
        .file("open/var.wat", ECHO_VAR)
        .file(
            "wasmlet.toml",
            "[variables]\ngreeting = \"hi\"\nregion = \"eu\"\n",
        )
        .file(
            "api/wasmlet.toml",
            "[variables]\ngreeting = \"hello\"\n\n[handlers.\"own.wat\".variables]\nregion = \"us\"\nonly-here = \"x\"\n",
        );
    let server = TestServer::start(root).await;

    assert_eq!(var(&server, "/var", "greeting").await, "hi");
    assert_eq!(var(&server, "/var", "region").await, "eu");
    assert_eq!(
        var(&server, "/open/var", "greeting").await,
        "hi",
        "inherited"
    );
    assert_eq!(
        var(&server, "/api/var", "greeting").await,
        "hello",
        "overridden"
    );
    assert_eq!(
        var(&server, "/api/var", "region").await,
        "eu",
        "the rest inherited"
    );
    assert_eq!(var(&server, "/api/own", "greeting").await, "hello");
    assert_eq!(
        var(&server, "/api/own", "region").await,
        "us",
        "per handler"
    );
    assert_eq!(var(&server, "/api/own", "only-here").await, "x");
    assert_eq!(var(&server, "/api/var", "only-here").await, "absent");
    assert_eq!(var(&server, "/var", "nope").await, "absent");
}

#[tokio::test]
async fn variables_come_from_the_environment_and_from_files_outside_the_web_root() {
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("token");
    std::fs::write(&token, "t0ken-from-a-file\n").unwrap();
    let root = WebRoot::new().file("var.wat", ECHO_VAR).file(
        "wasmlet.toml",
        &format!(
            "[variables]\npath = {{ env = \"PATH\" }}\ntoken = {{ file = \"{}\", secret = true }}\n",
            token.display()
        ),
    );
    let server = TestServer::start(root).await;
    assert_eq!(
        var(&server, "/var", "path").await,
        std::env::var("PATH").unwrap()
    );
    assert_eq!(var(&server, "/var", "token").await, "t0ken-from-a-file");
}

#[tokio::test]
async fn a_missing_source_stops_the_start_naming_file_line_column_and_key() {
    let root = WebRoot::new().file("var.wat", ECHO_VAR).file(
        "wasmlet.toml",
        "[variables]\nok = \"fine\"\napi_key = { env = \"WASMLET_TEST_SURELY_UNSET\", secret = true }\n",
    );
    let mut server = wasmlet::Server::new(wasmlet_tests::test_config(root.path())).unwrap();
    let err = server.load_site().await.unwrap_err().to_string();
    let want = format!(
        "{}:3:11: variables.api_key: the environment variable WASMLET_TEST_SURELY_UNSET is not set",
        server.config().webroot.join("wasmlet.toml").display()
    );
    assert!(err.starts_with(&want), "{err}");

    let inside = WebRoot::new().file("secret.txt", "hunter2").file(
        "wasmlet.toml",
        "[variables]\nkey = { file = \"secret.txt\", secret = true }\n",
    );
    let mut server = wasmlet::Server::new(wasmlet_tests::test_config(inside.path())).unwrap();
    let err = server.load_site().await.unwrap_err().to_string();
    assert!(
        err.contains("variables.key:") && err.contains("is inside the web root"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn a_secret_reaches_no_log_line_status_page_or_metric_even_when_its_handler_fails() {
    let secret = "sk-live-5ecret-never-shown";
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("api_key"), secret).unwrap();
    let root = WebRoot::new()
        .file("fails.wat", USES_SECRET_AND_TRAPS)
        .file("var.wat", ECHO_VAR)
        .file(
            "wasmlet.toml",
            &format!(
                "[variables]\napi_key = {{ file = \"{}\", secret = true }}\n",
                secrets.path().join("api_key").display()
            ),
        );
    let server = TestServer::start_with_admin(root, |config| {
        config.status_path = Some("/_status".to_owned());
    })
    .await;

    assert_eq!(
        var(&server, "/var", "api_key").await,
        secret,
        "the handler gets it"
    );
    let failed = server.get("/fails").await;
    assert_eq!(failed.status.as_u16(), 500);
    assert!(!failed.text().contains(secret));
    assert!(log_contains("calling the upstream failed", Duration::from_secs(10)).await);

    for page in [
        server.admin_get("/status.json").await.text(),
        server.admin_get("/status").await.text(),
        server.admin_get("/metrics").await.text(),
        server.get("/_status").await.text(),
    ] {
        assert!(!page.contains(secret), "{page}");
    }
    let logged = logs();
    for line in logged.lines() {
        assert!(
            !line.contains(secret),
            "a log line shows the secret: {line}"
        );
    }
}

#[tokio::test]
async fn a_reload_picks_up_a_changed_value_and_a_broken_one_keeps_the_previous() {
    let root = WebRoot::new()
        .file("var.wat", ECHO_VAR)
        .file("wasmlet.toml", "[variables]\ngreeting = \"hi\"\n");
    let config = root.path().join("wasmlet.toml");
    let server = TestServer::start(root).await;
    assert_eq!(var(&server, "/var", "greeting").await, "hi");

    std::fs::write(&config, "[variables]\ngreeting = \"hello again\"\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while var(&server, "/var", "greeting").await != "hello again" {
        assert!(Instant::now() < deadline, "the changed value never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::write(
        &config,
        "[variables]\ngreeting = \"broken\"\nkey = { env = \"WASMLET_TEST_SURELY_UNSET\" }\n",
    )
    .unwrap();
    assert!(
        log_contains(
            "wasmlet.toml:3:7: variables.key: the environment variable WASMLET_TEST_SURELY_UNSET is not set",
            Duration::from_secs(10)
        )
        .await
    );
    assert_eq!(
        var(&server, "/var", "greeting").await,
        "hello again",
        "the previous configuration still serves"
    );
}
