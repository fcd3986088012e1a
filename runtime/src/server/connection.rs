//! One client connection: hyper's settings for both protocols, and the
//! deadline for a connection's first request.
//!
//! hyper's HTTP/1.1 header read timeout starts only once hyper-util's
//! auto-detection has seen enough bytes to pick a protocol, and that
//! detection has no timeout of its own; HTTP/2 has no header timeout at all.
//! So a connection that sends nothing, or only the HTTP/2 preface, would be
//! held for ever. [`serve_until_first_request`] closes any connection whose
//! first request has not arrived within the header timeout, whatever the
//! protocol; after that, hyper's timer covers each later HTTP/1.1 head
//! (including the idle wait between kept-alive requests), and HTTP/2 pings
//! find peers that vanished.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::config::{
    Config, HTTP2_KEEP_ALIVE, HTTP2_MAX_CONCURRENT_STREAMS, HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS,
    HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS,
};

/// The connection settings of both listeners. See the constants in
/// [`crate::config`] for why each value.
pub(super) fn builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        // hyper-util's auto builder does not expose hyper's
        // `max_header_size`; the read buffer limit stops a head at the same
        // size, with the same `431`, since a head must fit in the buffer.
        .max_buf_size(config.max_header_size as usize)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(config.max_header_size)
        .keep_alive_interval(HTTP2_KEEP_ALIVE)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE);
    builder
}

/// Whether a connection has had a request yet. The service marks it; the
/// connection's task reads it when the first-request deadline passes.
#[derive(Clone, Debug, Default)]
pub(super) struct FirstRequest(Arc<AtomicBool>);

impl FirstRequest {
    /// A request arrived on the connection.
    pub(super) fn arrived(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn has_arrived(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a connection ended, for the log.
pub(super) enum Ended<T> {
    /// hyper finished the connection (cleanly or not).
    Served(T),
    /// No request arrived within the header timeout; the connection was
    /// dropped, which closes the socket.
    NoRequest,
}

/// Drives `connection` to its end, but drops it when no request has arrived
/// within `timeout` of the accept.
pub(super) async fn serve_until_first_request<F: Future>(
    connection: F,
    first: FirstRequest,
    timeout: Duration,
) -> Ended<F::Output> {
    tokio::pin!(connection);
    tokio::select! {
        ended = &mut connection => return Ended::Served(ended),
        () = tokio::time::sleep(timeout) => {}
    }
    if !first.has_arrived() {
        return Ended::NoRequest;
    }
    Ended::Served(connection.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_without_a_request_is_dropped_at_the_deadline() {
        let first = FirstRequest::default();
        let start = std::time::Instant::now();
        let ended = serve_until_first_request(
            std::future::pending::<()>(),
            first,
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(ended, Ended::NoRequest));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_connection_with_a_request_outlives_the_deadline() {
        let first = FirstRequest::default();
        first.arrived();
        let connection = tokio::time::sleep(Duration::from_millis(200));
        let start = std::time::Instant::now();
        let ended = serve_until_first_request(connection, first, Duration::from_millis(50)).await;
        assert!(matches!(ended, Ended::Served(())));
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
