//! A real `redis-server` for the tests of the Redis key-value backend: one
//! private server per test on a free port of 127.0.0.1, with no persistence,
//! killed when dropped.
//!
//! `tests/setup` installs the binary. Without it, [`RedisServer::start`]
//! returns `None` after saying why, so the Redis tests skip on a developer's
//! machine; CI sets `WASMLET_REQUIRE_REDIS=1`, which turns the skip into a
//! failure so that a broken setup cannot pass unnoticed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Set to `1` (as `.ci/run` does) to fail instead of skipping when
/// `redis-server` is missing.
pub const REQUIRE_ENV: &str = "WASMLET_REQUIRE_REDIS";

/// A running `redis-server`, killed and reaped when dropped.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Child,
    /// The server's working directory and log file; removed on drop.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    /// `None` (after printing why) when `redis-server` is not installed and
    /// `WASMLET_REQUIRE_REDIS` is not `1`.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = find_binary() else {
            let reason = "redis-server is not installed (looked on PATH, in /usr/bin and \
                          /usr/sbin); run tests/setup to install it";
            if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
                panic!("{reason} ({REQUIRE_ENV}=1 makes this a failure)");
            }
            eprintln!("skipping a Redis test: {reason}");
            return None;
        };
        let dir = tempfile::tempdir().expect("create a directory for redis-server");
        // Another process can take the free port between our probe and the
        // server's bind; then the server exits, and a new port is tried.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            match launch(&binary, port, dir.path()) {
                Ok(child) => {
                    return Some(RedisServer {
                        binary,
                        port,
                        child,
                        dir,
                    });
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("redis-server did not start:\n{}", failures.join("\n---\n"));
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server, as an operator stopping Redis would; nothing
    /// listens on its port until [`RedisServer::restart`].
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Kills the server and starts a new, empty one on the same port, as an
    /// operator restarting Redis would. Clients connected to the old one see
    /// their connection drop.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        self.child = launch(&self.binary, self.port, self.dir.path())
            .unwrap_or_else(|failure| panic!("redis-server did not restart:\n{failure}"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `redis-server` on PATH, else where Debian puts it.
fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port on 127.0.0.1")
        .port()
}

/// Starts `redis-server` on `port` and waits for its `PONG`; on failure, the
/// process is gone and the error holds its log.
fn launch(binary: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log = dir.join(format!("redis-{port}.log"));
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        // Nothing is written to disk: each test's data dies with its server.
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        // The process id tells our server from one another test started
        // on the same port a moment before (then ours exits: port taken).
        if server_pid(address) == Some(child.id()) {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            stop(&mut child);
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(match exited {
                Some(status) => format!("redis-server on port {port} exited ({status}):\n{log}"),
                None => format!(
                    "redis-server on port {port} did not answer PING within {START_DEADLINE:?}:\n{log}"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The process id of the Redis server answering at `address` (from `INFO
/// server`), or `None` while nothing answers there.
fn server_pid(address: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer);
        // The line is complete once its "\r\n" has arrived.
        let field = text
            .split_once("process_id:")
            .and_then(|(_, rest)| rest.split_once("\r\n"));
        if let Some((pid, _)) = field {
            return pid.parse().ok();
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
}
