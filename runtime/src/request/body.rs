//! The limits on reading one request's body (`--max-body-size`,
//! `--body-timeout`), carried from the server to the guest with the rest of
//! the request, which both kinds of handler read through [`LimitedBody`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::Identity;
use crate::config::{Config, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE};

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

/// Why reading a request body failed, for the log; a core guest gets
/// `BODY`, a component the `wasi:http` error code (see the `From` impl).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum BodyReadError {
    #[error("the body is larger than --max-body-size ({0} bytes)")]
    TooLarge(u64),
    #[error("no part of the body arrived within --body-timeout ({})", humantime::format_duration(*.0))]
    Stalled(Duration),
    #[error("the client aborted the body or sent a malformed one: {0}")]
    Broken(String),
    #[error("an earlier read of the body failed")]
    AlreadyFailed,
}

impl From<BodyReadError> for wasmtime_wasi_http::Error {
    fn from(e: BodyReadError) -> Self {
        match e {
            BodyReadError::TooLarge(max) => Self::HttpRequestBodySize(Some(max)),
            BodyReadError::Stalled(_) => Self::ConnectionReadTimeout,
            BodyReadError::Broken(_) | BodyReadError::AlreadyFailed => Self::HttpProtocolError,
        }
    }
}

/// A request body held to the server's [`BodyLimits`], for both kinds of
/// handler (a core handler's `req_body_read`, a component's
/// `incoming-body` stream): past `max_size` bytes (a chunked body; a
/// `Content-Length` over it got `413` before the guest ran) it fails with
/// [`BodyReadError::TooLarge`], and a wait of `read_timeout` for the next
/// piece fails it with [`BodyReadError::Stalled`]. Every poll after a
/// failure fails again, so a cut body never reads as a whole one.
///
/// The body is polled only when the guest reads or waits on it, and the
/// timer starts when a poll finds nothing: time the guest spends computing
/// between reads is not held against the client.
pub(crate) struct LimitedBody {
    body: Incoming,
    limits: BodyLimits,
    /// Data bytes passed to the guest so far.
    read: u64,
    /// Armed by a poll that finds nothing; disarmed by the next frame.
    stall: Option<Pin<Box<Sleep>>>,
    failed: Option<BodyReadError>,
    /// Whose body this is, for the log line a failure writes.
    who: Identity,
}

impl LimitedBody {
    /// `body` as `who`'s guest reads it, under `limits`.
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

    fn fail(&mut self, why: BodyReadError) -> BodyReadError {
        // At debug level: the guest sees the failure and decides what the
        // client gets.
        tracing::debug!(
            handler = %self.who.handler,
            request_id = %self.who.request_id,
            error = %why,
            "request body read failed"
        );
        self.failed = Some(why.clone());
        why
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(failed) = &this.failed {
            return Poll::Ready(Some(Err(failed.clone())));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.stall = None;
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limits.max_size {
                        let why = BodyReadError::TooLarge(this.limits.max_size);
                        return Poll::Ready(Some(Err(this.fail(why))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let why = BodyReadError::Broken(e.to_string());
                Poll::Ready(Some(Err(this.fail(why))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = this.limits.read_timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(stall.as_mut().poll(cx));
                Poll::Ready(Some(Err(this.fail(BodyReadError::Stalled(timeout)))))
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
