//! The external load generator: Debian's `wrk`, run as a child process
//! beside the in-process one ([`crate::load`]). Users measure with tools like
//! it, and on this machine the two disagree by up to 2×: `wrk` is one C
//! process with an event loop per thread, the in-process generator a tokio
//! runtime sharing the bench process, so each spends the cores differently.
//!
//! `wrk -t2 -cN --timeout T --latency`: two threads (one per core), N
//! keep-alive connections, each sending the next `GET` when the last answer
//! ends. A warm-up run first opens the connections and compiles nothing new
//! (the handler already answered once); the measured run that follows opens
//! them again, so its window includes the connection set-up, as a user's
//! `wrk` run does.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `wrk` is on the `PATH`.
pub(crate) fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// One run of `wrk` against `addr`.
pub(crate) struct Spec<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    pub(crate) timeout: Duration,
}

impl Spec<'_> {
    /// Starts `wrk`, its standard output piped.
    pub(crate) fn spawn(&self) -> Child {
        Command::new("wrk")
            .args(["-t", "2", "-c", &self.connections.to_string()])
            .args(["-d", &seconds(self.duration)])
            .args(["--timeout", &seconds(self.timeout)])
            .arg("--latency")
            .arg(format!("http://{}{}", self.addr, self.path))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wrk")
    }
}

/// `d` as wrk's whole seconds (`3s`), rounded up: wrk takes no fractions
/// or milliseconds.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{}s", d.as_millis().div_ceil(1000).max(1))
}

/// What `wrk` printed, in numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Summary {
    /// `Requests/sec`: every response, whatever its status.
    pub(crate) rps: f64,
    /// Responses in the run.
    pub(crate) requests: u64,
    /// `Non-2xx or 3xx responses`.
    pub(crate) non_2xx: u64,
    /// `Socket errors`: connect, read and write.
    pub(crate) socket_errors: u64,
    /// `Socket errors: … timeout`: requests not answered within `--timeout`.
    pub(crate) timeouts: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Summary {
    /// Successful responses per second: `wrk` counts every response in
    /// `Requests/sec`, failures too.
    pub(crate) fn ok_rps(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.rps * (self.requests.saturating_sub(self.non_2xx)) as f64 / self.requests as f64
    }

    /// Parses `wrk --latency`'s report; `None` if it has no `Requests/sec`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut summary = Self::default();
        let mut rps = None;
        for line in text.lines().map(str::trim) {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("Requests/sec:") => rps = words.next().and_then(|n| n.parse().ok()),
                Some("50%") => summary.p50_ms = words.next().and_then(millis)?,
                Some("99%") => summary.p99_ms = words.next().and_then(millis)?,
                Some("Non-2xx") => {
                    summary.non_2xx = line.rsplit(' ').next()?.parse().ok()?;
                }
                Some("Socket") => {
                    // Socket errors: connect 0, read 0, write 0, timeout 0
                    for pair in line.split_once(':')?.1.split(',') {
                        let mut kv = pair.split_whitespace();
                        let (kind, n) = (kv.next()?, kv.next()?.parse::<u64>().ok()?);
                        if kind == "timeout" {
                            summary.timeouts = n;
                        } else {
                            summary.socket_errors += n;
                        }
                    }
                }
                Some(n) if line.contains(" requests in ") => summary.requests = n.parse().ok()?,
                _ => {}
            }
        }
        summary.rps = rps?;
        Some(summary)
    }
}

/// `178.00us`, `1.03ms` or `2.00s` in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}
