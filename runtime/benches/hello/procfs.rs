//! What `/proc` says about a process (peak and current RSS, threads, CPU
//! time) and about the machine the benchmark ran on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/PID/stat`: `USER_HZ`, 100 on every
/// Linux architecture this runs on (reading `sysconf` would need `libc`).
const TICKS_PER_SECOND: f64 = 100.0;

/// How often a [`Monitor`] samples the server.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// A few lines of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Status {
    /// Peak resident set size, KiB (the kernel's high-water mark).
    pub(crate) vm_hwm_kib: u64,
    /// Resident set size now, KiB.
    pub(crate) vm_rss_kib: u64,
    /// Threads now.
    pub(crate) threads: u64,
}

/// `pid`'s status, or `None` once it has exited.
pub(crate) fn status(pid: u32) -> Option<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        match key {
            "VmHWM" => status.vm_hwm_kib = number(),
            "VmRSS" => status.vm_rss_kib = number(),
            "Threads" => status.threads = number(),
            _ => {}
        }
    }
    Some(status)
}

/// User plus system CPU time `pid` (or `self`) has used, in seconds.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it may not.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after
    // the name (state is the first field after it).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Connections the kernel dropped because a listen queue was full (SYNs and
/// handshakes refused, `TcpExt: ListenDrops` in `/proc/net/netstat`), for
/// the whole machine. The client retries a dropped SYN after 1 s.
pub(crate) fn listen_drops() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = tcp_ext.next()?.split_whitespace();
    let values = tcp_ext.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "ListenDrops")
        .and_then(|(_, value)| value.parse().ok())
}

/// What a server process used during one measured window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Peak resident set size over the process's life, MiB. Each measured
    /// row starts a fresh server, so this is the row's peak.
    pub(crate) peak_rss_mib: f64,
    /// Most threads seen at once.
    pub(crate) peak_threads: u64,
    /// The server's CPU time in the window, in percent of one core.
    pub(crate) server_cpu_pct: f64,
    /// The load generator's (this process's) CPU time in the window, in
    /// percent of one core.
    pub(crate) loadgen_cpu_pct: f64,
}

/// Samples a server process on its own thread while a load runs: peak
/// threads and RSS all along, CPU time at the window's edges.
pub(crate) struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Usage>,
}

impl Monitor {
    /// Starts sampling `pid`; CPU time is measured from `window.0` to
    /// `window.1`, the load generator's being this process's.
    pub(crate) fn start(pid: u32, window: (Instant, Instant)) -> Self {
        Self::start_with(pid, None, window)
    }

    /// As [`Monitor::start`], with the load generator in process `loadgen`
    /// (`wrk`) instead of this one.
    pub(crate) fn start_with(pid: u32, loadgen: Option<u32>, window: (Instant, Instant)) -> Self {
        let loadgen = loadgen.map_or_else(|| "self".to_owned(), |pid| pid.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut usage = Usage::default();
            let mut peak_rss_kib = 0;
            let mut opened = None;
            let mut closed = None;
            let snapshot = || {
                Some((
                    Instant::now(),
                    cpu_seconds(&pid.to_string())?,
                    cpu_seconds(&loadgen)?,
                ))
            };
            loop {
                if let Some(s) = status(pid) {
                    peak_rss_kib = peak_rss_kib.max(s.vm_hwm_kib).max(s.vm_rss_kib);
                    usage.peak_threads = usage.peak_threads.max(s.threads);
                }
                let now = Instant::now();
                if opened.is_none() && now >= window.0 {
                    opened = snapshot();
                }
                if closed.is_none() && now >= window.1 {
                    closed = snapshot();
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            usage.peak_rss_mib = peak_rss_kib as f64 / 1024.0;
            if let (Some((t0, server0, self0)), Some((t1, server1, self1))) = (opened, closed) {
                let seconds = (t1 - t0).as_secs_f64();
                usage.server_cpu_pct = 100.0 * (server1 - server0) / seconds;
                usage.loadgen_cpu_pct = 100.0 * (self1 - self0) / seconds;
            }
            usage
        });
        Self { stop, thread }
    }

    /// Stops sampling (after one last sample) and returns what it saw. Call
    /// it while the server still runs: its peak RSS is read then.
    pub(crate) fn finish(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the monitor thread panicked")
    }
}

/// The machine and software the figures come from.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) load_average: String,
    pub(crate) rustc: String,
    pub(crate) wasmtime: String,
    pub(crate) tokio: String,
    pub(crate) hyper: String,
    pub(crate) commit: String,
}

impl Machine {
    /// Reads `/proc`, `rustc --version`, `Cargo.lock` and `git`.
    pub(crate) fn describe(workspace: &std::path::Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(
                || std::env::consts::ARCH.to_owned(),
                |(_, v)| v.trim().to_owned(),
            );
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap_or_default();
        let command = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .current_dir(workspace)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let commit = match command("git", &["rev-parse", "--short", "HEAD"]) {
            Some(hash) => {
                let dirty = command("git", &["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{hash} with uncommitted changes")
                } else {
                    hash
                }
            }
            None => "unknown".to_owned(),
        };
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            load_average: load_average(),
            rustc: command("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
            wasmtime: locked_version(&lock, "wasmtime"),
            tokio: locked_version(&lock, "tokio"),
            hyper: locked_version(&lock, "hyper"),
            commit,
        }
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The version `Cargo.lock` pins for `name` (the first, if several).
fn locked_version(lock: &str, name: &str) -> String {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == wanted
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return version.trim_matches('"').to_owned();
        }
    }
    "unknown".to_owned()
}
