//! Real peers for the capability tests: an upstream HTTP server that counts
//! its connections, and the `wasmlet` binary run as its own process.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::task::JoinHandle;

/// What an [`Upstream`] is asked: method, path and query, and body.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The request method.
    pub method: http::Method,
    /// Path and query.
    pub target: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

type Respond =
    dyn Fn(Asked) -> futures_util::future::BoxFuture<'static, Response<Full<Bytes>>> + Send + Sync;

/// An HTTP/1.1 server on `127.0.0.1:0` that answers with a closure and
/// counts the connections it accepted, so a test can prove a denied request
/// never reached it.
pub struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts a server that answers every request with `respond`.
    pub async fn start<F, Fut>(respond: F) -> Self
    where
        F: Fn(Asked) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let respond: Arc<Respond> = Arc::new(move |asked| Box::pin(respond(asked)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let respond = respond.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let respond = respond.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let asked = Asked {
                                method: parts.method,
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map_or_else(String::new, |pq| pq.as_str().to_owned()),
                                headers: parts.headers,
                                body,
                            };
                            Ok::<_, Infallible>(respond(asked).await)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    /// Starts a server that answers `200` with `body` after `delay`.
    pub async fn answering(body: &'static str, delay: Duration) -> Self {
        Self::start(move |_| async move {
            tokio::time::sleep(delay).await;
            Response::new(Full::new(Bytes::from_static(body.as_bytes())))
        })
        .await
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `wasmlet` binary, built once per test process (`cargo build` is a
/// no-op when it is up to date).
pub fn wasmlet_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // `--workspace`, not `-p wasmlet`: cargo unifies dependency features
        // over the packages it is asked for, and for `-p wasmlet` alone they
        // differ from `cargo test --workspace`'s (`syn` without `visit`),
        // which rebuilt much of the dependency tree in a fresh checkout
        // (3.5 minutes on 2 cores). Over the whole workspace the binary
        // shares every dependency the tests were built with.
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["build", "--quiet", "--workspace", "--bin", "wasmlet"])
            .current_dir(&root)
            .status()
            .expect("run cargo build for the wasmlet binary");
        assert!(status.success(), "building the wasmlet binary failed");
        // The test executable is target/<profile>/deps/NAME; the binary is
        // target/<profile>/wasmlet.
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        profile_dir.join("wasmlet")
    })
}

/// A `wasmlet serve` process on `127.0.0.1:0`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Everything it logged after the `listening on` line, as it arrives.
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `wasmlet serve ROOT --listen 127.0.0.1:0 ARGS…` and waits until
    /// it says where it listens. Panics with its output if it does not start.
    pub fn start(root: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(wasmlet_binary())
            .arg("serve")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--no-disk-cache"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasmlet");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on http://".len()..];
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    let _ = tx.send(Ok(addr.to_owned()));
                }
                keep.lock().unwrap().push(line);
            }
            let _ = tx.send(Err(()));
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(addr)) => addr.parse().expect("a socket address"),
            _ => {
                let _ = child.kill();
                panic!("wasmlet did not start:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        Self { child, addr, log }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and polls until the process exits or `within` passes:
    /// its exit status, or `None` when it is still running then (the drop
    /// kills it).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for wasmlet") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
