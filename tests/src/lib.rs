//! Shared harness for the end-to-end tests in `tests/tests/`.
//!
//! Every test starts a real [`wasmlet::Server`] on `127.0.0.1:0` over a
//! temporary web root made of real files, and talks to it with a real HTTP
//! client over the socket. Nothing is mocked.
//!
//! # Layout
//! - [`WebRoot`]: a temporary directory filled with fixtures from
//!   `tests/fixtures/` or inline text.
//! - [`TestServer`]: the running server, its address and its [`wasmlet::Stats`];
//!   with [`TestServer::start_with_admin`], its admin listener too.
//! - [`Reply`] and the request helpers on [`TestServer`].
//! - [`Metrics`]: a parsed scrape of the admin listener's `/metrics`.
//! - [`logs`]: everything the server logged, for tests that check a message.
//! - [`says`] and [`raw_status`]: tiny helpers for routing and raw-socket
//!   tests.
//! - [`TestServer::connect`], [`closed_within`] and [`rss_bytes`]: raw
//!   connections that misbehave, and the process's memory, for the
//!   hardening tests.
//! - [`sdk_handlers`] and [`component_handlers`]: the example handlers,
//!   built for wasm32 from source.
//! - [`peers`]: an upstream HTTP server that counts its connections, and the
//!   `wasmlet` binary as a process of its own.
//! - [`redis`]: a real `redis-server` per test, for the Redis key-value
//!   backend (`tests/setup` installs it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod component_checks;
pub mod peers;
pub mod redis;
mod scrape;

pub use scrape::Metrics;

/// The directory that holds the `.wat` fixtures, one per rule.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The repository's `handlers/` directory (the examples the README serves).
pub fn handlers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("handlers")
}

/// The SDK handlers the end-to-end tests serve: the examples in
/// `handlers/rust/` and the fixtures in `tests/sdk-fixtures/`, as cargo
/// packages.
pub const SDK_HANDLERS: [&str; 9] = [
    "wasmlet-handler-hello",
    "wasmlet-handler-echo",
    "wasmlet-handler-json",
    "wasmlet-handler-countdown",
    "wasmlet-handler-user",
    "wasmlet-handler-fanout",
    "wasmlet-handler-notes",
    "wasmlet-fixture-faulty",
    "wasmlet-fixture-counter",
];

/// Builds [`SDK_HANDLERS`] for `wasm32-unknown-unknown` with the
/// `wasm-release` profile, once per test binary, and returns the directory
/// holding `hello.wasm`, `echo.wasm`, …
pub fn sdk_handlers() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_for_wasm("wasm32-unknown-unknown", &SDK_HANDLERS, "wasm-release"))
        .clone()
}

/// Builds the `wasmlet-fixture-faulty` SDK handler for
/// `wasm32-unknown-unknown` with the `dev` profile, which keeps DWARF line
/// tables, once per test binary, and returns the path of its `faulty.wasm`:
/// for the tests of backtraces by source file and line.
pub fn faulty_with_debug_info() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_for_wasm("wasm32-unknown-unknown", &["wasmlet-fixture-faulty"], "dev")
                .join("faulty.wasm")
        })
        .clone()
}

/// The `wasi:http` component handlers the end-to-end tests serve, as cargo
/// packages (examples in `handlers/rust/`): a WASI 0.2 one and a WASI 0.3
/// one.
pub const COMPONENT_HANDLERS: [&str; 2] = [
    "wasmlet-handler-wasi-hello",
    "wasmlet-handler-wasi-p3-hello",
];

/// Builds [`COMPONENT_HANDLERS`] for `wasm32-wasip2` (where a `cdylib` is a
/// component) with the `wasm-release` profile, once per test binary, and
/// returns the directory holding `wasi_hello.wasm` and `wasi_p3_hello.wasm`.
pub fn component_handlers() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_for_wasm("wasm32-wasip2", &COMPONENT_HANDLERS, "wasm-release"))
        .clone()
}

/// The test components that report what they reach through
/// `wasi:keyvalue`, `wasi:config` and `wasi:filesystem`
/// (`tests/component-fixtures/`): a WASI 0.2 one and a WASI 0.3 one.
pub const CAPABILITY_COMPONENTS: [&str; 2] = [
    "wasmlet-fixture-capabilities",
    "wasmlet-fixture-capabilities-p3",
];

/// Builds [`CAPABILITY_COMPONENTS`] as [`component_handlers`] builds its
/// own, and returns the bytes of `<name>.wasm` (`capabilities` or
/// `capabilities_p3`).
pub fn capability_component(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT
        .get_or_init(|| build_for_wasm("wasm32-wasip2", &CAPABILITY_COMPONENTS, "wasm-release"));
    let built = dir.join(format!("{name}.wasm"));
    std::fs::read(&built).unwrap_or_else(|e| panic!("read {}: {e}", built.display()))
}

/// Builds `packages` for `target` with `profile` and returns the directory
/// holding the `.wasm` files.
///
/// The build runs a nested cargo with its own target directory: the outer
/// `cargo test` may still hold the lock on the workspace's.
fn build_for_wasm(target: &str, packages: &[&str], profile: &str) -> PathBuf {
    let workspace = handlers_dir().parent().expect("a workspace").to_path_buf();
    let target_dir = workspace.join("target").join("wasm-handlers");
    // rust-toolchain.toml names the wasm targets, but rustup adds targets
    // only when it installs the toolchain; make sure they are there on a
    // machine that had the toolchain already (tests/setup does the same
    // before cargo runs). Under cargo, RUSTUP_TOOLCHAIN is set and rustup
    // would ignore the file. Without rustup, the build below says what is
    // missing.
    let _ = std::process::Command::new("rustup")
        .args(["toolchain", "install"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(&workspace)
        .stdout(std::process::Stdio::null())
        .status();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--profile", profile])
        .args(["--target", target])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("run cargo to build the handlers for {target}: {e}"));
    assert!(
        status.success(),
        "building {packages:?} for {target} failed"
    );
    // Cargo names the dev profile's directory `debug`.
    let dir = if profile == "dev" { "debug" } else { profile };
    target_dir.join(target).join(dir)
}

/// The bytes of the built component handler `<name>.wasm` (see
/// [`component_handlers`]).
pub fn component_bytes(name: &str) -> Vec<u8> {
    let built = component_handlers().join(format!("{name}.wasm"));
    std::fs::read(&built).unwrap_or_else(|e| panic!("read {}: {e}", built.display()))
}

/// A temporary web root that is deleted when dropped.
pub struct WebRoot {
    dir: tempfile::TempDir,
}

impl WebRoot {
    /// An empty web root.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary web root"),
        }
    }

    /// The web root's path on disk.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `tests/fixtures/<fixture>` to `<root>/<rel>`, creating parent
    /// directories.
    pub fn fixture(self, rel: &str, fixture: &str) -> Self {
        let bytes = std::fs::read(fixtures_dir().join(fixture))
            .unwrap_or_else(|e| panic!("read fixture {fixture}: {e}"));
        self.bytes(rel, bytes)
    }

    /// Copies the built SDK handler `<name>.wasm` (see [`sdk_handlers`]) to
    /// `<root>/<rel>`.
    pub fn sdk_handler(self, rel: &str, name: &str) -> Self {
        let built = sdk_handlers().join(format!("{name}.wasm"));
        let bytes =
            std::fs::read(&built).unwrap_or_else(|e| panic!("read {}: {e}", built.display()));
        self.bytes(rel, bytes)
    }

    /// Copies the built component handler `<name>.wasm` (see
    /// [`component_handlers`]) to `<root>/<rel>`.
    pub fn component_handler(self, rel: &str, name: &str) -> Self {
        self.bytes(rel, component_bytes(name))
    }

    /// Writes `contents` to `<root>/<rel>`, creating parent directories.
    pub fn file(self, rel: &str, contents: &str) -> Self {
        self.bytes(rel, contents)
    }

    /// Writes raw bytes to `<root>/<rel>`, creating parent directories.
    pub fn bytes(self, rel: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture directory");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {rel}: {e}"));
        self
    }
}

impl Default for WebRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// A response as the tests look at it: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    /// The status line's code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read to its end.
    pub body: Bytes,
}

impl Reply {
    /// The body as UTF-8 text (lossy, so a test failure still prints).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running server over a web root. Shuts down when dropped.
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Where the admin listener (`/metrics`, `/status`, `/status.json`)
    /// listens, for a server started with one.
    pub admin: Option<SocketAddr>,
    /// The server's live counters (compiles, requests, …).
    pub stats: Arc<wasmlet::Stats>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), wasmlet::ServeError>>>,
    _root: Option<WebRoot>,
}

impl TestServer {
    /// Starts a server over `root` with the test defaults (see [`test_config`]).
    pub async fn start(root: WebRoot) -> Self {
        Self::start_with(root, |_| {}).await
    }

    /// Starts a server over `root`, letting the test adjust the configuration.
    pub async fn start_with(root: WebRoot, adjust: impl FnOnce(&mut wasmlet::Config)) -> Self {
        let mut config = test_config(root.path());
        adjust(&mut config);
        let mut server = Self::start_config(config).await;
        server._root = Some(root);
        server
    }

    /// Starts a server with exactly this configuration; the caller keeps the
    /// web root alive.
    pub async fn start_config(config: wasmlet::Config) -> Self {
        Self::launch(config, false).await
    }

    /// Starts a server over `root` with an admin listener on `127.0.0.1:0`
    /// too (see [`TestServer::admin_get`] and [`TestServer::metrics`]),
    /// letting the test adjust the configuration.
    pub async fn start_with_admin(
        root: WebRoot,
        adjust: impl FnOnce(&mut wasmlet::Config),
    ) -> Self {
        let mut config = test_config(root.path());
        adjust(&mut config);
        let mut server = Self::launch(config, true).await;
        server._root = Some(root);
        server
    }

    /// Starts a server with exactly this configuration and an admin
    /// listener; the caller keeps the web root alive.
    pub async fn start_config_with_admin(config: wasmlet::Config) -> Self {
        Self::launch(config, true).await
    }

    async fn launch(config: wasmlet::Config, admin: bool) -> Self {
        install_log_capture();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut server = wasmlet::Server::new(config).expect("server starts");
        server
            .load_site()
            .await
            .expect("the web root's wasmlet.toml files are good");
        let admin = if admin {
            let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0 for the admin listener");
            let admin_addr = admin.local_addr().expect("admin address");
            server = server.with_admin(admin);
            Some(admin_addr)
        } else {
            None
        };
        let stats = server.stats();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = rx.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            addr,
            admin,
            stats,
            client,
            shutdown: Some(tx),
            task: Some(task),
            _root: None,
        }
    }

    /// `http://ADMIN_ADDR` + `path`. Panics for a server started without an
    /// admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self
            .admin
            .expect("start the server with start_with_admin to use its admin listener");
        format!("http://{admin}{path}")
    }

    /// `GET path` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> Reply {
        self.request(Method::GET, self.admin_url(path), &[], Bytes::new())
            .await
    }

    /// Scrapes `/metrics` on the admin listener now.
    pub async fn metrics(&self) -> Metrics {
        let reply = self.admin_get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK, "/metrics: {}", reply.text());
        Metrics::parse(&reply.text())
    }

    /// Scrapes `/metrics` once the server is idle: no request in flight and
    /// no instance alive. A client has its response before the server has
    /// counted the request (the count comes when the guest's task ends), so
    /// exact assertions wait for this.
    pub async fn settled_metrics(&self) -> Metrics {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = self.metrics().await;
            let idle = metrics.value("wasmlet_requests_in_flight", &[]) == Some(0.0)
                && metrics.value("wasmlet_live_instances", &[]) == Some(0.0);
            if idle {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "the server never went idle:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `GET target HTTP/1.1` exactly as written (no normalisation, no
    /// percent-encoding) with `Connection: close`, and returns the raw answer.
    pub async fn raw_get(&self, target: &str) -> String {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        self.raw(request.as_bytes(), Duration::from_secs(5)).await
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, method: Method, path: &str, body: impl Into<Bytes>) -> Reply {
        self.send_with(method, path, &[], body).await
    }

    /// Sends a request with extra headers and reads the whole response.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.request(method, self.url(path), headers, body.into())
            .await
    }

    async fn request(
        &self,
        method: Method,
        url: String,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body)).expect("a valid request");
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("request {url}: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("read body of {url}: {e:?}"))
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Bytes::new()).await
    }

    /// Sends a request and returns the response without reading its body,
    /// for tests that watch a body arrive.
    pub async fn open(&self, method: Method, path: &str) -> hyper::Response<hyper::body::Incoming> {
        let request = Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        self.client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("request {path}: {e:?}"))
    }

    /// A fresh TCP connection to the server, for a test that misbehaves on
    /// purpose (sends nothing, dribbles, hangs up early).
    pub async fn connect(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the test server")
    }

    /// A new HTTP/2 connection (prior knowledge, h2c), driven on a task of
    /// its own, for tests that speak HTTP/2 to the server.
    pub async fn http2(&self) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let stream = self.connect().await;
        let (sender, connection) = hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("an HTTP/2 handshake");
        tokio::spawn(connection);
        sender
    }

    /// Sends `POST path` with a chunked body of `size` bytes, in 16 KiB
    /// chunks, on a fresh connection, and returns the raw answer. The body is
    /// written on a task of its own: the server may answer (and stop reading)
    /// before all of it is sent.
    pub async fn post_chunked(&self, path: &str, size: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut reader, mut writer) = self.connect().await.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let writing = tokio::spawn(async move {
            writer.write_all(head.as_bytes()).await?;
            let chunk = vec![b'x'; 16 << 10];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                writer.write_all(&chunk[..n]).await?;
                writer.write_all(b"\r\n").await?;
                left -= n;
            }
            writer.write_all(b"0\r\n\r\n").await?;
            // Keep the write side open until the answer is read.
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(writer)
        });
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
        writing.abort();
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Sends `POST path` declaring a 1000-byte body, sends the first 10
    /// bytes (`ten bytes!`) and stalls, and returns the one answer that
    /// arrives within 4 s and how long it took. The connection stays open
    /// meanwhile: the client still owes 990 bytes.
    pub async fn post_then_stall(&self, path: &str) -> (String, Duration) {
        use tokio::io::AsyncWriteExt;
        let mut stream = self.connect().await;
        let start = Instant::now();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nten bytes!"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write the request");
        let answer = read_raw_answer(&mut stream, Duration::from_secs(4)).await;
        (answer, start.elapsed())
    }

    /// Sends raw bytes on a fresh TCP connection and returns everything the
    /// server answers until it closes the connection or `within` passes. For
    /// requests a well-behaved client cannot send (hostile paths).
    pub async fn raw(&self, request: &[u8], within: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The configuration the tests start from: the web root, a short request
/// timeout so timeout tests finish quickly, a 16 MiB memory limit, and no
/// disk cache and no data directory (tests that need one give it a temporary
/// directory, so no test touches the user's cache or data).
pub fn test_config(root: &Path) -> wasmlet::Config {
    wasmlet::Config {
        request_timeout: Duration::from_secs(5),
        max_memory: 16 << 20,
        cache_dir: None,
        data_dir: None,
        ..wasmlet::Config::new(root)
    }
}

/// A handler module, as WAT text, that answers `200` with `text` for every
/// verb. Routing tests use one per route so the body names the route that won.
pub fn says(text: &str) -> String {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        "(module\n\
         \x20 (import \"wasmlet\" \"resp_write\" (func $w (param i32 i32) (result i32)))\n\
         \x20 (memory (export \"memory\") 1)\n\
         \x20 (data (i32.const 0) \"{escaped}\")\n\
         \x20 (func (export \"handle\") (drop (call $w (i32.const 0) (i32.const {len})))))\n",
        len = text.len()
    )
}

/// The status code of a raw HTTP/1.1 answer (`HTTP/1.1 404 Not Found…`), or
/// `None` when the server answered nothing parseable (it closed the
/// connection, for instance).
pub fn raw_status(answer: &str) -> Option<u16> {
    let line = answer.lines().next()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The body of a complete raw HTTP/1.1 answer: decoded from the chunked
/// transfer coding (trailers dropped), or cut at its `Content-Length`.
/// `None` while the answer is incomplete; an answer with neither header ends
/// only when the connection closes, so it is `None` too.
pub fn raw_body(answer: &[u8]) -> Option<Vec<u8>> {
    let head_end = find(answer, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    let mut rest = &answer[head_end + 4..];
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    if header("transfer-encoding").is_some_and(|coding| coding.ends_with("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = find(rest, b"\r\n")?;
            let size = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
    }
    let length: usize = header("content-length")?.parse().ok()?;
    rest.get(..length).map(<[u8]>::to_vec)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one answer from `stream` until it is complete (see [`raw_body`]),
/// the server closes the connection, or `within` passes, and returns what
/// arrived.
async fn read_raw_answer(stream: &mut tokio::net::TcpStream, within: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        while raw_body(&answer).is_none() {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads the first data frame of a streaming response body.
pub async fn first_chunk(body: &mut hyper::body::Incoming) -> Bytes {
    body.frame()
        .await
        .expect("a first frame")
        .expect("the first frame reads")
        .into_data()
        .expect("a data frame")
}

/// Reads (and drops) whatever the server sends on `stream` until it closes
/// the connection, and says how long that took; `None` if it is still open
/// after `within`. A reset counts as closed.
pub async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let drain = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, drain).await.ok()
}

/// This process's resident memory, in bytes (`VmRSS` in
/// `/proc/self/status`). The test servers run in the test's own process, so
/// this includes theirs.
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// This process's peak resident set size so far (`VmHWM`), in bytes: what a
/// test checks when memory spent and freed again during a request matters.
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

/// A size field of `/proc/self/status` (given in kB), in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("a {field} line in /proc/self/status"));
    kib * 1024
}

/// Writes `contents` to `path` the way deploy tools and editors do: a temp
/// file beside it, then a rename over the target, so no reader ever sees half
/// and the file is a new version (a new inode) even when the bytes are the
/// same.
pub fn replace_atomically(path: &Path, contents: impl AsRef<[u8]>) {
    let tmp = path.with_extension("tmp-upload");
    std::fs::write(&tmp, contents).expect("write the new version");
    std::fs::rename(&tmp, path).expect("rename it over the old one");
}

/// Clients that send `GET path` back to back until stopped, keeping every
/// reply that `accept` rejects: the load under which the hot-reload tests
/// replace a handler.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    served: Arc<std::sync::atomic::AtomicU64>,
    clients: Vec<JoinHandle<Vec<String>>>,
}

impl Load {
    /// Starts `clients` clients on `server`.
    pub fn start(
        server: &Arc<TestServer>,
        clients: usize,
        path: &'static str,
        accept: fn(&Reply) -> bool,
    ) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
                tokio::spawn(async move {
                    let mut bad = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let reply = server.get(path).await;
                        if !accept(&reply) {
                            bad.push(format!("{} {:?}", reply.status, reply.text()));
                        }
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    bad
                })
            })
            .collect();
        Self {
            stop,
            served,
            clients,
        }
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the clients and returns the replies `accept` rejected.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut failures = Vec::new();
        for client in self.clients {
            failures.extend(client.await.expect("a load client panicked"));
        }
        failures
    }
}

/// Polls `check` every 10 ms until it returns true or `deadline` passes.
/// Tests use this instead of sleeping to synchronise.
pub async fn eventually(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Everything the servers in this test binary have logged so far.
pub fn logs() -> String {
    let buffer = LOGS
        .get()
        .map(|b| b.lock().unwrap().clone())
        .unwrap_or_default();
    String::from_utf8_lossy(&buffer).into_owned()
}

/// Waits until the log contains `needle`, up to `deadline`.
pub async fn log_contains(needle: &str, deadline: Duration) -> bool {
    eventually(deadline, || logs().contains(needle)).await
}

fn install_log_capture() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "wasmlet=debug".into()),
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
