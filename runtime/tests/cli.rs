//! The `wasmlet` binary as a user runs it: flags, start-up errors, exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The binary, with its default disk cache pointed at a directory of this
/// test run's own, so no test writes to the user's `~/.cache`.
fn wasmlet() -> Command {
    static CACHE_HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache_home = CACHE_HOME.get_or_init(|| tempfile::tempdir().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmlet"));
    command.env("XDG_CACHE_HOME", cache_home.path());
    command
}

#[test]
fn help_explains_every_serve_flag_and_its_default() {
    let out = wasmlet().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--workers",
        "--request-timeout",
        "--max-memory",
        "--max-instances",
        "--shutdown-timeout",
        "--max-concurrency",
        "--max-queue",
        "--queue-timeout",
        "--max-connections",
        "--header-timeout",
        "--max-header-size",
        "--max-body-size",
        "--body-timeout",
        "--dev",
        "--admin",
        "--tls-cert",
        "--tls-key",
        "--tls-reload-interval",
        "--redirect-http",
        "--baseline-above",
        "1MiB",
        "/metrics",
        "127.0.0.1:8080",
        "30s",
        "64MiB",
        "32KiB",
        "16MiB",
        "10000",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn a_missing_web_root_is_a_clear_error_and_a_failure_exit() {
    let out = wasmlet()
        .args(["serve", "/no/such/webroot", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/webroot") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error_and_a_failure_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let out = wasmlet()
        .args(["serve", root.path().to_str().unwrap(), "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
}

#[test]
fn an_admin_port_in_use_is_a_clear_error_naming_the_admin_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let out = wasmlet()
        .args(["serve", root.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("--admin"), "{err}");
}

#[test]
fn bad_durations_and_sizes_say_how_to_write_them() {
    let out = wasmlet()
        .args(["serve", ".", "--request-timeout", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("500ms"));
    let out = wasmlet()
        .args(["serve", ".", "--max-memory", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64MiB"));
    let out = wasmlet()
        .args(["serve", ".", "--baseline-above", "never"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("64MiB") && stderr.contains("`off`"),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_the_server_with_exit_zero() {
    let root = tempfile::tempdir().unwrap();
    let mut child = wasmlet()
        .args([
            "serve",
            root.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "wasmlet=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the "listening on" line, which proves start-up finished.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listening = false;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => {
                // Not a terminal: no colour escape codes in the log.
                assert!(!line.contains('\x1b'), "an escape code in {line:?}");
                if line.contains("listening on http://127.0.0.1:") {
                    listening = true;
                    break;
                }
            }
            _ => break,
        }
    }
    assert!(listening, "the server never said where it listens");
    stop_with_sigterm(child);
}

#[test]
fn serve_help_groups_its_flags_and_names_each_ones_environment_variable() {
    let out = wasmlet().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "Listening:",
        "Limits:",
        "Cache and data:",
        "Watching:",
        "Logging:",
        "Admin and status:",
    ] {
        assert!(help.contains(heading), "no heading {heading}:\n{help}");
    }
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .map(|rest| rest.split([' ', '=']).next().unwrap())
        .filter(|flag| *flag != "help")
        .collect();
    assert!(flags.len() > 30, "{flags:?}");
    for flag in flags {
        let env = format!("[env: WASMLET_{}=", flag.replace('-', "_").to_uppercase());
        assert!(help.contains(&env), "--{flag} has no {env}]");
    }
}

#[test]
fn a_flag_can_come_from_its_environment_variable() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = wasmlet();
    command
        .args(["serve", root.path().to_str().unwrap()])
        .env("WASMLET_LISTEN", port.to_string());
    listens_on_loopback(command, port);
}

#[test]
fn start_up_lists_the_handlers_and_their_urls() {
    let root = tempfile::tempdir().unwrap();
    let handler = r#"(module (memory (export "memory") 1) (func (export "handle")))"#;
    std::fs::create_dir_all(root.path().join("api/users")).unwrap();
    std::fs::write(root.path().join("hello.wat"), handler).unwrap();
    std::fs::write(root.path().join("api/index.wat"), handler).unwrap();
    std::fs::write(root.path().join("api/users/[id].wat"), handler).unwrap();
    std::fs::write(root.path().join("page.html"), "static").unwrap();
    let port = free_port();
    let mut child = wasmlet()
        .args([
            "serve",
            root.path().to_str().unwrap(),
            "--listen",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listed: Vec<String> = lines.by_ref().map_while(Result::ok).take(5).collect();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        listed,
        [
            format!(
                "Serving {} at {base}",
                root.path().canonicalize().unwrap().display()
            ),
            "Handlers:".to_owned(),
            format!("  {base}/api/"),
            format!("  {base}/api/users/[id]"),
            format!("  {base}/hello"),
        ]
    );
    stop_with_sigterm(child);
}

#[test]
fn a_bare_port_listens_on_loopback() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = wasmlet();
    command.args([
        "serve",
        root.path().to_str().unwrap(),
        "--listen",
        &port.to_string(),
    ]);
    listens_on_loopback(command, port);
}

#[test]
fn compile_fills_the_cache_reports_failures_and_exits_non_zero() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("cache");
    let handler = r#"(module (memory (export "memory") 1) (func (export "handle")))"#;
    std::fs::write(root.path().join("a.wat"), handler).unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(
        root.path().join("sub/b.wat"),
        handler.replace("handle", "handle_get"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("broken.wat"),
        "(module\n  (func $f (result i32)\n    i32.const x))",
    )
    .unwrap();
    let run = || {
        wasmlet()
            .args(["compile", root.path().to_str().unwrap(), "--cache-dir"])
            .arg(&cache_dir)
            .output()
            .unwrap()
    };

    let out = run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failed handler must fail the command:\n{text}"
    );
    assert!(text.contains("3 handlers"), "{text}");
    assert!(
        text.contains("2 compiled, 0 already in the cache"),
        "{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
    assert!(
        text.contains("broken.wat:3:15"),
        "the reason names file:line:col:\n{text}"
    );

    std::fs::remove_file(root.path().join("broken.wat")).unwrap();
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("0 compiled, 2 already in the cache"),
        "{text}"
    );
}

#[test]
fn check_fails_on_a_broken_wasmlet_toml_and_says_each_failure_once() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("wasmlet.toml"), "[http]\nalow = []\n").unwrap();
    std::fs::write(
        root.path().join("broken.wat"),
        "(module\n  (func $f (result i32)\n    i32.const x))",
    )
    .unwrap();
    for command in ["check", "compile"] {
        let out = wasmlet()
            .args([command, root.path().to_str().unwrap()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{command}:\n{text}");
        assert!(
            text.contains("wasmlet.toml:2:1: http.alow: unknown field `alow`"),
            "{command}:\n{text}"
        );
        assert_eq!(
            text.matches("broken.wat:3:15").count(),
            1,
            "{command}:\n{text}"
        );
        assert!(text.contains("2 errors"), "{command}:\n{text}");
    }
}

#[test]
fn check_refuses_a_wasi_0_3_release_candidate_and_a_spin_component_each_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("p3.wat"),
        r#"(component
            (type $body (stream u8))
            (instance $h)
            (export "wasi:http/handler@0.3.0-rc-2025-09-16" (instance $h)))"#,
    )
    .unwrap();
    std::fs::write(
        root.path().join("spin.wat"),
        r#"(component
            (import "spin:postgres/postgres@3.0.0" (instance
                (export "open" (func (param "address" string)))))
            (instance $h)
            (export "wasi:http/incoming-handler@0.2.3" (instance $h)))"#,
    )
    .unwrap();
    let out = wasmlet()
        .args(["check", root.path().to_str().unwrap(), "--no-disk-cache"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = root.path().display();
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            format!(
                "error: {dir}/p3.wat: is built for a WASI 0.3 release candidate (it exports \
                 `wasi:http/handler@0.3.0-rc-2025-09-16`); wasmlet serves WASI 0.3.0 components \
                 (`wasi:http/handler@0.3.0`) and WASI 0.2 ones: rebuild it with a current \
                 toolchain (spin-sdk 7, or wasip3 0.7)"
            ),
            format!(
                "error: {dir}/spin.wat: imports Spin's own host API \
                 (`spin:postgres/postgres@3.0.0`), which only Spin provides: build it as a plain \
                 wasi:http component that imports WASI interfaces only (spin-sdk with \
                 `default-features = false` and only its `http` feature)"
            ),
        ],
        "{text}"
    );
    assert!(text.contains("0 compiled"), "{text}");
}

#[test]
fn check_warns_about_capability_imports_that_nothing_grants() {
    let root = tempfile::tempdir().unwrap();
    let uses_kv = r#"(module
        (import "wasmlet" "kv_get" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "handle")))"#;
    std::fs::create_dir(root.path().join("granted")).unwrap();
    std::fs::write(root.path().join("notes.wat"), uses_kv).unwrap();
    std::fs::write(root.path().join("granted/notes.wat"), uses_kv).unwrap();
    std::fs::write(
        root.path().join("granted/wasmlet.toml"),
        "[kv]\nstores = [\"default\"]\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = wasmlet()
        .args(["check", root.path().to_str().unwrap(), "--no-disk-cache"])
        .env("XDG_DATA_HOME", data.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning is not an error:\n{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        [
            "warning: notes.wat imports `kv_get`, but no wasmlet.toml at or above its directory grants [kv] stores: every such call returns DENIED"
        ],
        "{text}"
    );
    assert!(text.contains("(no disk cache)"), "{text}");

    let out = wasmlet()
        .args(["compile", root.path().to_str().unwrap(), "--no-disk-cache"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wasmlet check --no-disk-cache"));
}

#[test]
fn compile_refuses_a_cache_inside_the_web_root() {
    let root = tempfile::tempdir().unwrap();
    let out = wasmlet()
        .args(["compile", root.path().to_str().unwrap(), "--cache-dir"])
        .arg(root.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside the web root"), "{err}");
}

#[test]
fn new_creates_a_handler_and_refuses_to_overwrite_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        wasmlet()
            .arg("new")
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["greet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("greet.wat").is_file());
    assert!(String::from_utf8_lossy(&out.stdout).contains("GET /greet"));

    let out = run(&["greet"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // `dir` now holds a handler: a crate's source does not belong there.
    let out = run(&["shop", "--rust"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("looks like a web root") && err.contains("greet.wat"),
        "{err}"
    );
    assert!(!dir.path().join("shop").exists());

    let elsewhere = tempfile::tempdir().unwrap();
    let out = wasmlet()
        .args(["new", "shop", "--rust", "--dir"])
        .arg(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.path().join("shop/Cargo.toml").is_file());
    assert!(elsewhere.path().join("shop/src/lib.rs").is_file());
    assert!(elsewhere.path().join("shop/rust-toolchain.toml").is_file());
    assert!(
        elsewhere
            .path()
            .join("shop/vendor/wasmlet-sdk/src/lib.rs")
            .is_file()
    );

    let out = run(&["bad name!"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name a handler"));
}

/// Sends `GET path` to `addr` and returns the whole raw answer.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The JSON log lines of a child's stderr, read on a thread so a test can
/// wait for one with a deadline.
struct JsonLog {
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl JsonLog {
    fn of(child: &mut std::process::Child) -> Self {
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line, seen or still to come, that `matches`.
    fn wait_for(&mut self, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no such log line ({e}); saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }
}

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

#[test]
fn json_logs_carry_the_request_id_as_a_field_and_the_admin_address_serves_metrics() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("log.wat"),
        r#"(module
            (import "wasmlet" "log" (func $log (param i32 i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "from the guest")
            (func (export "handle") (call $log (i32.const 3) (i32.const 0) (i32.const 14))))"#,
    )
    .unwrap();
    let mut child = wasmlet()
        .args(["serve", root.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--log-format", "json", "--no-disk-cache", "--watch", "off"])
        .env("RUST_LOG", "wasmlet=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = JsonLog::of(&mut child);
    let addr_in = |line: &serde_json::Value, before: &str, after: &str| -> String {
        let text = message(line);
        let start = text.find(before).unwrap() + before.len();
        text[start..].split(after).next().unwrap().to_owned()
    };
    let metrics_line = log.wait_for(|l| message(l).starts_with("metrics at http://"));
    let admin = addr_in(&metrics_line, "http://", "/metrics");
    let listening = log.wait_for(|l| message(l).starts_with("listening on http://"));
    let main = addr_in(&listening, "http://", " ");

    let answer = http_get(&main, "/log");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let access =
        log.wait_for(|l| l["target"] == "wasmlet::access" && l["fields"]["path"] == "/log");
    let fields = &access["fields"];
    assert_eq!(fields["message"], "request", "{access}");
    assert_eq!(fields["handler"], "/log.wat", "{access}");
    assert_eq!(fields["status"], 200, "{access}");
    let id = fields["request_id"]
        .as_str()
        .expect("request_id is a field")
        .to_owned();
    assert_eq!(id.len(), 16, "{access}");
    let guest = log
        .wait_for(|l| l["target"] == "wasmlet::guest" && l["fields"]["request_id"] == id.as_str());
    assert_eq!(guest["fields"]["message"], "from the guest", "{guest}");
    assert_eq!(guest["fields"]["handler"], "/log.wat", "{guest}");

    let metrics = http_get(&admin, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("wasmlet_requests_total{handler=\"/log.wat\",status=\"200\"} 1\n"),
        "{metrics}"
    );
    assert!(http_get(&admin, "/status").contains("log.wat"));

    stop_with_sigterm(child);
}

/// Sends SIGTERM and checks the server exits with status 0.
/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` (a `wasmlet serve`), checks that it says it listens on
/// `127.0.0.1:port`, and stops it.
fn listens_on_loopback(mut command: Command, port: u16) {
    let mut child = command
        .env("RUST_LOG", "wasmlet=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let wanted = format!("listening on http://127.0.0.1:{port}");
    // Kept open until the server has stopped: it still logs.
    let mut lines = BufReader::new(stderr).lines();
    let said = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains(&wanted));
    assert!(said, "the server never said {wanted}");
    stop_with_sigterm(child);
}

fn stop_with_sigterm(mut child: std::process::Child) {
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &std::process::Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
}

/// A handler that sleeps `ms` milliseconds, then answers `slept`.
fn sleeper(ms: u64) -> String {
    format!(
        r#"(module
            (import "wasmlet" "sleep_ms" (func $sleep (param i64)))
            (import "wasmlet" "resp_write" (func $write (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "slept\n")
            (func (export "handle")
              (call $sleep (i64.const {ms}))
              (drop (call $write (i32.const 0) (i32.const 6)))))"#
    )
}

/// A server over `root` with an admin listener and JSON logs, and its main
/// and admin addresses once it listens.
fn serve_with_admin(
    root: &std::path::Path,
    flags: &[&str],
) -> (std::process::Child, JsonLog, String, String) {
    let mut child = wasmlet()
        .args(["serve", root.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--log-format", "json", "--no-disk-cache", "--watch", "off"])
        .args(flags)
        .env("RUST_LOG", "wasmlet=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = JsonLog::of(&mut child);
    let addr_in = |line: &serde_json::Value, after: &str| -> String {
        let text = message(line);
        let start = text.find("http://").unwrap() + "http://".len();
        text[start..].split(after).next().unwrap().to_owned()
    };
    let metrics_line = log.wait_for(|l| message(l).starts_with("metrics at http://"));
    let admin = addr_in(&metrics_line, "/metrics");
    let listening = log.wait_for(|l| message(l).starts_with("listening on http://"));
    let main = addr_in(&listening, " ");
    (child, log, main, admin)
}

/// Waits until the server has `n` requests in flight, by its metrics.
fn wait_in_flight(admin: &str, n: usize) {
    let want = format!("\nwasmlet_requests_in_flight {n}\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(admin, "/metrics").contains(&want) {
        assert!(Instant::now() < deadline, "never {n} requests in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_under_load_finishes_the_in_flight_sleepers_with_200_and_exits_zero() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("sleep.wat"), sleeper(2000)).unwrap();
    let (mut child, mut log, main, admin) =
        serve_with_admin(root.path(), &["--shutdown-timeout", "10s"]);
    const CLIENTS: usize = 20;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let main = main.clone();
            std::thread::spawn(move || http_get(&main, "/sleep"))
        })
        .collect();
    wait_in_flight(&admin, CLIENTS);

    let signalled = Instant::now();
    sigterm(&child);
    // Once it says so, the server accepts nothing new...
    log.wait_for(|l| message(l).starts_with("shutting down"));
    assert!(
        std::net::TcpStream::connect(&main).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // ...and every request already running finishes.
    for client in clients {
        let answer = client.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The whole chunked body, to its last chunk.
        assert!(answer.contains("slept\n"), "{answer}");
        assert!(answer.ends_with("\r\n0\r\n\r\n"), "{answer}");
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    println!(
        "SIGTERM with {CLIENTS} sleepers (2 s) in flight: all answered 200, exit 0 after {:.0} ms",
        signalled.elapsed().as_secs_f64() * 1e3
    );
}

#[test]
fn sigterm_cuts_what_outlasts_the_shutdown_timeout_and_still_exits_zero() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("sleep.wat"), sleeper(60_000)).unwrap();
    let (mut child, _log, main, admin) =
        serve_with_admin(root.path(), &["--shutdown-timeout", "500ms"]);
    let client = std::thread::spawn(move || {
        // The server cuts this one: a reset is as good an answer as a close.
        let mut stream = std::net::TcpStream::connect(&main).unwrap();
        stream
            .write_all(b"GET /sleep HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    wait_in_flight(&admin, 1);

    let signalled = Instant::now();
    sigterm(&child);
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    let answer = client.join().unwrap();
    assert!(
        !answer.contains("slept"),
        "the cut request finished: {answer}"
    );
    println!(
        "SIGTERM with a 60 s sleeper and --shutdown-timeout 500ms: cut, exit 0 after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
}

#[test]
fn a_missing_tls_certificate_stops_the_start_with_one_line_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let cert = root.path().join("no-such-fullchain.pem");
    let out = wasmlet()
        .args([
            "serve",
            root.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: cannot read the TLS cert {}: No such file or directory (os error 2); check --tls-cert",
            cert.display()
        )
    );
}

/// Runs `wasmlet serve ROOT --listen 127.0.0.1:0 ARGS…`, expecting it to
/// refuse to start: its stderr. Fails the test if it is still running after
/// 30 s (it started and serves).
fn refused_start(root: &std::path::Path, args: &[&std::ffi::OsStr]) -> String {
    let mut child = wasmlet()
        .arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("it started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{args:?}: {status}\n{err}");
    err
}

#[test]
fn a_cache_data_or_store_path_reaching_the_web_root_through_a_missing_directory_is_refused_at_start()
 {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let missing = base.path().join("missing");
    let outside = base.path().join("outside");
    let cases = [
        (
            "--cache-dir",
            missing.join("../root/cache"),
            outside.join("data"),
        ),
        (
            "--data-dir",
            outside.join("data"),
            missing.join("../root/data"),
        ),
    ];
    for (flag, cache, data) in &cases {
        let err = refused_start(
            &root,
            &[
                "--cache-dir".as_ref(),
                cache.as_os_str(),
                "--data-dir".as_ref(),
                data.as_os_str(),
            ],
        );
        assert!(
            err.contains(flag) && err.contains("inside the web root"),
            "{flag}: {err}"
        );
        assert!(
            !missing.exists(),
            "{flag}: it created {}",
            missing.display()
        );
    }

    // A store's path, relative to a data directory that does not exist yet.
    std::fs::write(
        root.join("wasmlet.toml"),
        "[kv]\nstores = [\"leak\"]\n\n[stores.leak]\nbackend = \"sqlite\"\npath = \"../root/db.sqlite\"\n",
    )
    .unwrap();
    let err = refused_start(
        &root,
        &[
            "--no-disk-cache".as_ref(),
            "--data-dir".as_ref(),
            missing.as_os_str(),
        ],
    );
    assert!(
        err.contains("wasmlet.toml")
            && err.contains("stores.leak")
            && err.contains("inside the web root"),
        "{err}"
    );
    assert!(
        !root.join("db.sqlite").exists(),
        "the store was created in the web root"
    );
    assert!(!missing.exists(), "it created {}", missing.display());
}

#[test]
fn an_explicit_cache_dir_that_cannot_be_used_stops_the_start_with_one_line_naming_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let file = outside.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    for (dir, why) in [
        (
            std::path::PathBuf::from("/proc/wasmlet-cache"),
            "No such file or directory",
        ),
        (file, "not a directory"),
    ] {
        let err = refused_start(root.path(), &["--cache-dir".as_ref(), dir.as_os_str()]);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].starts_with(&format!(
                "error: invalid --cache-dir: cannot use {} as the compiled-code cache directory: {why}",
                dir.display()
            )) && lines[0].ends_with("or --no-disk-cache to serve without one"),
            "{err}"
        );
    }
}

#[test]
fn an_unusable_default_cache_dir_only_turns_the_disk_cache_off() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = wasmlet();
    command
        .args(["serve", root.path().to_str().unwrap()])
        .args(["--listen", &port.to_string()])
        .env("XDG_CACHE_HOME", "/proc");
    listens_on_loopback(command, port);
}

/// A web root with three handlers whose compiled code differs, and a cache
/// directory (not created yet) outside it.
fn compiled_web_root() -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    for (name, n) in [("a", 1), ("b", 2), ("c", 3)] {
        let handler = format!(
            r#"(module (memory (export "memory") 1) (func (export "handle"))
                (func (export "n") (result i32) i32.const {n}))"#
        );
        std::fs::write(root.path().join(format!("{name}.wat")), handler).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("cache");
    let out = wasmlet()
        .args(["compile", root.path().to_str().unwrap()])
        .arg("--cache-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (root, cache, dir)
}

/// Runs `wasmlet cache ARGS… --cache-dir DIR`: exit code, stdout, stderr.
fn cache_command(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = wasmlet()
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The entry files in `dir`.
fn entry_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "cwasm"))
        .collect()
}

#[test]
fn cache_ls_lists_each_entry_with_its_size_last_use_and_source_and_a_total() {
    let (root, _cache, dir) = compiled_web_root();
    let (code, out, err) = cache_command(&["ls"], &dir);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0].contains("SIZE") && lines[0].contains("SOURCE"),
        "{out}"
    );
    let root = root.path().canonicalize().unwrap();
    for name in ["a", "b", "c"] {
        let source = root.join(format!("{name}.wat"));
        assert!(
            lines[1..4].iter().any(|line| line.contains("KiB")
                && line.contains(" module ")
                && line.ends_with(&*source.to_string_lossy())),
            "no line for {}:\n{out}",
            source.display()
        );
    }
    assert!(
        lines[4].starts_with("3 entries, ") && lines[4].contains("of the 1GiB cap"),
        "{out}"
    );
}

#[test]
fn cache_prune_removes_unreadable_entries_and_the_least_recently_used_past_the_cap() {
    let (_root, _cache, dir) = compiled_web_root();
    let mut entries = entry_files(&dir);
    entries.sort();
    // An entry in an older format, as a previous wasmlet wrote it.
    let mut old = std::fs::read(&entries[0]).unwrap();
    old[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&entries[0], old).unwrap();
    let largest = entries
        .iter()
        .map(|e| std::fs::metadata(e).unwrap().len())
        .max()
        .unwrap();
    let cap = (largest + 1).to_string();
    let (code, out, err) = cache_command(&["prune", "--max-size", &cap], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("pruned {}: removed 2 entries (", dir.display()))
            && out.contains(
                ": 1 unreadable, 0 for another wasmtime or engine, 0 superseded, 1 past the"
            )
            && out.contains("kept 1 entry ("),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(entry_files(&dir).len(), 1);
}

#[test]
fn cache_clear_removes_a_wasmlet_cache_and_refuses_a_directory_holding_anything_else() {
    let (_root, _cache, dir) = compiled_web_root();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let (code, out, err) = cache_command(&["clear"], &dir);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {} does not look like a wasmlet cache: it holds notes.txt, which wasmlet \
             never writes there; nothing was removed (check --cache-dir, or delete the \
             directory yourself)",
            dir.display()
        )
    );
    assert_eq!(entry_files(&dir).len(), 3, "something was removed");
    std::fs::remove_file(dir.join("notes.txt")).unwrap();
    let (code, out, err) = cache_command(&["clear"], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "cleared {}: removed 3 files and directories (",
            dir.display()
        )),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn cache_commands_on_a_missing_directory_say_there_is_no_cache_yet() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("none");
    for command in ["ls", "prune", "clear"] {
        let (code, out, err) = cache_command(&[command], &dir);
        assert_eq!(code, 0, "{command}: {err}");
        assert_eq!(
            out,
            format!("no compiled-code cache at {} yet\n", dir.display()),
            "{command}"
        );
        assert!(!dir.exists(), "{command} created the directory");
    }
}

#[test]
fn tls_reload_interval_without_a_certificate_is_a_usage_error() {
    let out = wasmlet()
        .args(["serve", ".", "--tls-reload-interval", "5s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
}

#[test]
fn a_zero_cache_max_size_is_refused_pointing_to_no_disk_cache() {
    let root = tempfile::tempdir().unwrap();
    let err = refused_start(root.path(), &["--cache-max-size".as_ref(), "0".as_ref()]);
    assert_eq!(
        err.trim_end(),
        "error: invalid --cache-max-size: must be more than 0; --no-disk-cache turns the disk \
         cache off"
    );
}
