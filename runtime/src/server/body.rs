//! The one response body type: empty, a small buffer, a static file, or a
//! guest's streamed output (of any handler kind).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::AbortHandle;

pub use crate::request::BodyError;
use crate::request::HandlerBody;

/// A response body.
pub enum ResponseBody {
    /// Fully known bytes (also the empty body).
    Full(Option<Bytes>),
    /// A static file, read as the client takes it.
    File(hyper_staticfile::Body),
    /// A guest's output, streamed as it writes.
    Guest(GuestBody),
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

/// A guest's streamed body, as its executor made it, owning the guest's
/// task: dropped before its end means the client went away (see
/// `cancel_after_grace`). An executor's body ends with an error when the
/// guest failed after the head; that error reaches hyper, which cuts the
/// response, only after what the guest wrote has been flushed.
pub struct GuestBody {
    body: HandlerBody,
    guest: AbortHandle,
    /// The error to end with, once hyper has flushed; see `poll_frame`.
    cutting: Option<BodyError>,
    /// The body reached its end (clean or cut); nothing left to cancel.
    done: bool,
}

impl GuestBody {
    pub(crate) fn new(body: HandlerBody, guest: AbortHandle) -> Self {
        Self {
            body,
            guest,
            cutting: None,
            done: false,
        }
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(why) = self.cutting.take() {
            self.done = true;
            return Poll::Ready(Some(Err(why)));
        }
        match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
            None => {
                self.done = true;
                Poll::Ready(None)
            }
            // hyper buffers the head with the first chunks and flushes when
            // the body is pending; an error before that drops the buffer, and
            // the client would see no status line at all. So be pending once
            // (and wake at once): what the guest wrote reaches the client,
            // then the body is cut.
            Some(Err(why)) => {
                self.cutting = Some(why);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Drop for GuestBody {
    fn drop(&mut self) {
        if !self.done {
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
            ResponseBody::Guest(guest) => guest.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::File(file) => file.is_end_stream(),
            ResponseBody::Guest(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::File(file) => file.size_hint(),
            ResponseBody::Guest(guest) => guest.body.size_hint(),
        }
    }
}
