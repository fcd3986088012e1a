//! The load generator: keep-alive HTTP/1.1 connections, each sending `GET`
//! requests back to back (a closed loop), counted over a fixed window after a
//! warm-up.
//!
//! A request with no answer after [`LoadSpec::timeout`] counts as a timeout,
//! enters the latency figures at the timeout, and its connection is dropped
//! and opened again, as a client with a timeout would do. Without this a
//! server that never answers some connections (a thread pool with more
//! connections than threads) would look as fast as its lucky connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One load run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadSpec<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) connections: usize,
    /// How long connections run before the window opens: opening a few
    /// thousand connections is not what the window should measure.
    pub(crate) warmup: Duration,
    /// How long requests are counted.
    pub(crate) window: Duration,
    /// How long a client waits for a connection or a response.
    pub(crate) timeout: Duration,
}

impl LoadSpec<'_> {
    /// When the counted window opens and closes, for a run starting now.
    pub(crate) fn window_from(&self, start: Instant) -> (Instant, Instant) {
        let open = start + self.warmup;
        (open, open + self.window)
    }
}

/// What the window saw.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    /// Successful (2xx, whole body) responses completed in the window.
    pub(crate) ok: u64,
    /// Failed responses, refused or reset connections.
    pub(crate) errors: u64,
    /// Connections or requests not answered within the timeout.
    pub(crate) timeouts: u64,
    /// Of the timeouts, those of connections not accepted in time.
    pub(crate) connect_timeouts: u64,
    pub(crate) window: Duration,
    /// Latencies of the successes and the timeouts (at the timeout), sorted.
    latencies_us: Vec<u32>,
}

impl LoadResult {
    /// Successful responses per second.
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// The latency at quantile `q` (0.5, 0.99) in ms, timeouts included.
    pub(crate) fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1e3
    }
}

enum Event {
    Ok(u32),
    Error,
    Timeout(u32),
    ConnectTimeout(u32),
}

/// Runs `spec` on the current tokio runtime; `start` is when the warm-up
/// began (see [`LoadSpec::window_from`]).
pub(crate) async fn run(spec: LoadSpec<'_>, start: Instant) -> LoadResult {
    let (open, close) = spec.window_from(start);
    let uri: hyper::Uri = format!("http://{}{}", spec.addr, spec.path)
        .parse()
        .expect("a valid URI");
    let mut tasks = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        tasks.push(tokio::spawn(connection(
            spec.addr,
            uri.clone(),
            close,
            spec.timeout,
        )));
    }
    let mut result = LoadResult {
        ok: 0,
        errors: 0,
        timeouts: 0,
        connect_timeouts: 0,
        window: spec.window,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let events = task.await.expect("a load connection panicked");
        for (at, event) in events {
            if !(open..close).contains(&at) {
                continue;
            }
            match event {
                Event::Ok(us) => {
                    result.ok += 1;
                    result.latencies_us.push(us);
                }
                Event::Error => result.errors += 1,
                Event::Timeout(us) => {
                    result.timeouts += 1;
                    result.latencies_us.push(us);
                }
                Event::ConnectTimeout(us) => {
                    result.timeouts += 1;
                    result.connect_timeouts += 1;
                    result.latencies_us.push(us);
                }
            }
        }
    }
    result.latencies_us.sort_unstable();
    result
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// One client connection until `close`: requests back to back, a new
/// connection after an error or a timeout.
async fn connection(
    addr: SocketAddr,
    uri: hyper::Uri,
    close: Instant,
    timeout: Duration,
) -> Vec<(Instant, Event)> {
    let mut events = Vec::new();
    while Instant::now() < close {
        let started = Instant::now();
        let deadline = started + timeout;
        let connected = tokio::time::timeout_at(deadline.min(close).into(), connect(addr)).await;
        let mut sender = match connected {
            Ok(Ok(sender)) => sender,
            Ok(Err(_)) => {
                events.push((Instant::now(), Event::Error));
                // A refused connection fails at once; don't spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) if Instant::now() >= close && deadline > close => break,
            Err(_) => {
                events.push((Instant::now(), Event::ConnectTimeout(micros(timeout))));
                continue;
            }
        };
        loop {
            let started = Instant::now();
            if started >= close {
                return events;
            }
            let deadline = started + timeout;
            let exchange = get(&mut sender, &uri);
            match tokio::time::timeout_at(deadline.min(close).into(), exchange).await {
                Ok(Ok(())) => {
                    let now = Instant::now();
                    events.push((now, Event::Ok(micros(now - started))));
                }
                Ok(Err(())) => {
                    events.push((Instant::now(), Event::Error));
                    break;
                }
                // The window closed first: neither answered nor timed out.
                Err(_) if deadline > close => return events,
                Err(_) => {
                    events.push((Instant::now(), Event::Timeout(micros(timeout))));
                    break;
                }
            }
        }
    }
    events
}

async fn connect(addr: SocketAddr) -> std::io::Result<SendRequest<Empty<Bytes>>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // Close with a reset: thousands of connections per run, some reopened
    // after a timeout, would otherwise fill the ephemeral ports with
    // TIME_WAIT and FIN_WAIT sockets.
    socket.set_zero_linger()?;
    socket.set_nodelay(true)?;
    let stream = socket.connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One `GET`; `Ok` for a 2xx response whose body arrived whole.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, uri: &hyper::Uri) -> Result<(), ()> {
    let request = hyper::Request::get(uri.clone())
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .map_err(|_| ())?;
    let response = sender.send_request(request).await.map_err(|_| ())?;
    let ok = response.status().is_success();
    let body = response.into_body().collect().await;
    if ok && body.is_ok() { Ok(()) } else { Err(()) }
}

/// A single `GET` on a new connection: the body, or `None` on any failure.
pub(crate) async fn get_body(addr: SocketAddr, path: &str) -> Option<Bytes> {
    let mut sender = connect(addr).await.ok()?;
    let request = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(response.into_body().collect().await.ok()?.to_bytes())
}
