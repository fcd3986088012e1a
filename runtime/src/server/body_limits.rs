//! The limits on reading one request's body (`--max-body-size`,
//! `--body-timeout`), carried from the server to the guest with the rest of
//! the request: a core handler's `req_body_read` applies them itself
//! (`host/request.rs`); a component's body is wrapped in [`LimitedBody`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::config::{Config, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE};
use crate::host::Identity;

/// How much of a request body a guest may read, and how long it waits for
/// each piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Bytes past this fail the read (`BODY`).
    pub max_size: u64,
    /// A read that waits this long for the next piece fails (`BODY`).
    pub read_timeout: Duration,
}

impl BodyLimits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Self {
            max_size: config.max_body_size,
            read_timeout: config.body_timeout,
        }
    }
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_BODY_SIZE,
            read_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// A component's request body, held to the same [`BodyLimits`] as a core
/// handler's `req_body_read`: past `max_size` bytes (a chunked body; a
/// `Content-Length` over it got `413` before the guest ran) the guest's
/// stream fails with `HTTP-request-body-size`, and a wait of `read_timeout`
/// for the next piece fails it with `connection-read-timeout`; every poll
/// after a failure fails again, so a cut body never reads as a whole one.
///
/// `wasmtime-wasi-http` polls the body only when the guest reads or waits on
/// it, and the timer starts when a poll finds nothing: time the guest spends
/// computing between reads is not held against the client.
pub(crate) struct LimitedBody {
    body: Incoming,
    limits: BodyLimits,
    /// Data bytes passed to the guest so far.
    read: u64,
    /// Armed by a poll that finds nothing; disarmed by the next frame.
    stall: Option<Pin<Box<Sleep>>>,
    failed: Option<Failed>,
    /// Whose body this is, for the log line a failure writes.
    who: Identity,
}

#[derive(Debug, Clone, Copy)]
enum Failed {
    TooLarge,
    Stalled,
    Broken,
}

impl LimitedBody {
    /// `body` as `who`'s component reads it, under `limits`.
    pub(crate) fn new(body: Incoming, limits: BodyLimits, who: Identity) -> Self {
        Self {
            body,
            limits,
            read: 0,
            stall: None,
            failed: None,
            who,
        }
    }

    fn error(&self, failed: Failed) -> wasmtime_wasi_http::Error {
        match failed {
            Failed::TooLarge => {
                wasmtime_wasi_http::Error::HttpRequestBodySize(Some(self.limits.max_size))
            }
            Failed::Stalled => wasmtime_wasi_http::Error::ConnectionReadTimeout,
            Failed::Broken => wasmtime_wasi_http::Error::HttpProtocolError,
        }
    }

    fn fail(&mut self, failed: Failed, why: &dyn std::fmt::Display) -> wasmtime_wasi_http::Error {
        // At debug level, as for a core handler: the guest sees the error
        // and decides what the client gets.
        tracing::debug!(
            handler = %self.who.handler,
            request_id = %self.who.request_id,
            error = %why,
            "request body read failed"
        );
        self.failed = Some(failed);
        self.error(failed)
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(failed) = this.failed {
            return Poll::Ready(Some(Err(this.error(failed))));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.stall = None;
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limits.max_size {
                        let why = format!(
                            "the body is larger than --max-body-size ({} bytes)",
                            this.limits.max_size
                        );
                        return Poll::Ready(Some(Err(this.fail(Failed::TooLarge, &why))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let why = format!("the client aborted the body or sent a malformed one: {e}");
                Poll::Ready(Some(Err(this.fail(Failed::Broken, &why))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = this.limits.read_timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(stall.as_mut().poll(cx));
                let why = format!(
                    "no part of the body arrived within --body-timeout ({})",
                    humantime::format_duration(timeout)
                );
                Poll::Ready(Some(Err(this.fail(Failed::Stalled, &why))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
