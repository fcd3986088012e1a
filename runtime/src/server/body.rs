//! The one response body type: empty, a small buffer, a static file, or a
//! guest's streamed output.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::AbortHandle;

use super::component::ComponentBody;
use crate::host::BodyStream;

/// Errors a response body can end with; hyper then cuts the connection's
/// response instead of ending it cleanly.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
pub enum ResponseBody {
    /// Fully known bytes (also the empty body).
    Full(Option<Bytes>),
    /// A static file, read as the client takes it.
    File(hyper_staticfile::Body),
    /// A guest's output, streamed as it writes.
    Guest(GuestBody),
    /// A `wasi:http` component's body, streamed as it writes.
    Component(ComponentBody),
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::Full(None)
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::Full((!bytes.is_empty()).then_some(bytes))
    }
}

/// A guest's streamed body. Dropped before its end means the client went
/// away: see `cancel_after_grace`.
pub struct GuestBody {
    stream: BodyStream,
    guest: AbortHandle,
    /// The stream reached its end (clean or cut); nothing left to cancel.
    ended: bool,
    /// The cut was announced to hyper once as `Pending`; see `poll_frame`.
    flushed_before_cut: bool,
}

impl GuestBody {
    pub(crate) fn new(stream: BodyStream, guest: AbortHandle) -> Self {
        Self {
            stream,
            guest,
            ended: false,
            flushed_before_cut: false,
        }
    }
}

impl Drop for GuestBody {
    fn drop(&mut self) {
        if !self.ended {
            cancel_after_grace(&self.guest);
        }
    }
}

/// How long a guest may keep running after its client went away. Its next
/// `resp_write` returns CLOSED at once (the ABI promises that), so a guest
/// that checks can stop cleanly; one that does not is cancelled after this,
/// freeing its instance.
pub const CLIENT_GONE_GRACE: Duration = Duration::from_secs(1);

/// Cancels the guest task [`CLIENT_GONE_GRACE`] from now, unless it is done.
pub(crate) fn cancel_after_grace(guest: &AbortHandle) {
    if guest.is_finished() {
        return;
    }
    let guest = guest.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CLIENT_GONE_GRACE).await;
        guest.abort();
    });
}

/// The guest stopped before finishing its body.
#[derive(Debug, thiserror::Error)]
#[error("the handler failed after the response head was sent; the body is incomplete")]
struct Incomplete;

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::File(file) => Pin::new(file)
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(Into::into))),
            ResponseBody::Guest(guest) => match ready!(guest.stream.chunks.poll_recv(cx)) {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None if guest.stream.complete.load(Ordering::Acquire) => {
                    guest.ended = true;
                    Poll::Ready(None)
                }
                // hyper buffers the head with the first chunks and flushes
                // when the body is pending; an error before that drops the
                // buffer, and the client would see no status line at all. So
                // be pending once (and wake at once): what the guest wrote
                // reaches the client, then the body is cut.
                None if !guest.flushed_before_cut => {
                    guest.flushed_before_cut = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                None => {
                    guest.ended = true;
                    Poll::Ready(Some(Err(Incomplete.into())))
                }
            },
            ResponseBody::Component(component) => Pin::new(component).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::File(file) => file.is_end_stream(),
            ResponseBody::Guest(_) | ResponseBody::Component(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::File(file) => file.size_hint(),
            ResponseBody::Guest(_) => SizeHint::default(),
            ResponseBody::Component(component) => component.size_hint(),
        }
    }
}
