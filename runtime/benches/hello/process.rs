//! Servers in child processes: the real `wasmlet` binary, and this benchmark
//! binary started again as one of the servers in [`crate::native`]. A child
//! is killed when its handle drops, panics included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// PIDs of the children alive now, for the watchdog to kill if the run
/// overstays (see `main`).
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every child still alive: the watchdog's last act.
pub(crate) fn kill_all() {
    for pid in CHILDREN.lock().unwrap().iter() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// A server running in a child process.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// Where the child's stderr goes: shown if it fails.
    log: PathBuf,
}

impl ServerProcess {
    /// The child's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the child's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text[text.ceil_char_boundary(start)..].to_owned()
    }

    fn register(child: Child, addr: SocketAddr, log: PathBuf) -> Self {
        CHILDREN.lock().unwrap().push(child.id());
        Self { child, addr, log }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        CHILDREN.lock().unwrap().retain(|p| *p != pid);
    }
}

/// How to start the `wasmlet` binary.
pub(crate) struct Wasmlet<'a> {
    pub(crate) webroot: &'a Path,
    pub(crate) cache_dir: &'a Path,
    /// Extra flags after `serve WEBROOT --workers 2 --listen ADDR --cache-dir DIR`.
    pub(crate) flags: &'a [&'a str],
    /// `RUST_LOG` for the child: the access log is off unless asked for.
    pub(crate) log_filter: &'a str,
    /// Where its stderr goes.
    pub(crate) log: &'a Path,
    /// The binary: [`wasmlet_binary`], or `--baseline`'s to compare with.
    pub(crate) binary: &'a Path,
}

/// The `wasmlet` binary cargo built for this benchmark, with the bench
/// profile (release settings).
pub(crate) fn wasmlet_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wasmlet"))
}

/// A free loopback port: bound, read, released. Another process could take
/// it in between; on a benchmark machine none does.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

impl Wasmlet<'_> {
    /// Spawns `wasmlet serve` on 2 workers and a free port, without waiting
    /// for it; returns the child and when it was spawned.
    pub(crate) fn spawn(&self) -> (ServerProcess, Instant) {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(self.log).expect("create the server log");
        let mut command = Command::new(self.binary);
        command
            .arg("serve")
            .arg(self.webroot)
            .args(["--workers", "2", "--listen", &addr.to_string()])
            .arg("--cache-dir")
            .arg(self.cache_dir)
            .args(self.flags)
            .env("RUST_LOG", self.log_filter)
            // It costs wasmtime about 10%.
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let spawned = Instant::now();
        let child = command.spawn().expect("spawn the wasmlet binary");
        (
            ServerProcess::register(child, addr, self.log.to_path_buf()),
            spawned,
        )
    }

    /// Spawns `wasmlet serve` and waits until its port accepts.
    pub(crate) fn start(&self) -> ServerProcess {
        let (server, spawned) = self.spawn();
        if wait_for_port(server.addr, spawned + START_TIMEOUT).is_none() {
            panic!("wasmlet did not listen in time:\n{}", server.log_tail());
        }
        server
    }
}

/// Polls until a TCP connection to `addr` succeeds; returns it, or `None`
/// after `deadline`.
pub(crate) fn wait_for_port(addr: SocketAddr, deadline: Instant) -> Option<TcpStream> {
    loop {
        if let Ok(stream) = TcpStream::connect(addr) {
            return Some(stream);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Sends `GET path` on `stream` and reads the whole response (the request
/// asks the server to close); the status code, or `None` on any failure.
pub(crate) fn get_status(mut stream: TcpStream, path: &str, timeout: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_nodelay(true).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let head = std::str::from_utf8(response.get(..12)?).ok()?;
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Starts this benchmark binary again as server `kind` (see
/// [`crate::native`]) and waits for its port.
pub(crate) fn start_native(kind: &str, log: &Path) -> ServerProcess {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let log_file = std::fs::File::create(log).expect("create the server log");
    let mut child = Command::new(exe)
        .args(["--serve", kind])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("spawn a native server");
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    let Some(port) = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse::<u16>().ok())
    else {
        let _ = child.kill();
        panic!(
            "the {kind} server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    ServerProcess::register(
        child,
        SocketAddr::from(([127, 0, 0, 1], port)),
        log.to_path_buf(),
    )
}

/// Records `pid` with `perf` (DWARF call graphs) over `window`, into `file`;
/// the thread ends when the recording does.
pub(crate) fn perf_record(
    pid: u32,
    window: (Instant, Instant),
    file: PathBuf,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(window.0.saturating_duration_since(Instant::now()));
        let seconds = (window.1 - window.0).as_secs_f64();
        let status = Command::new("perf")
            .args([
                "record",
                "--quiet",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
            ])
            .args(["-p", &pid.to_string(), "-o"])
            .arg(&file)
            .args(["--", "sleep", &format!("{seconds:.3}")])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: perf record into {} failed", file.display());
        }
    })
}
