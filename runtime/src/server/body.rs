//! The one response body type: empty, a small buffer, a static file, or a
//! guest's streamed output.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::AbortHandle;

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

/// A guest's streamed body. Dropping it (the client went away) aborts the
/// guest task, so a disconnected client frees its instance at once.
pub struct GuestBody {
    stream: BodyStream,
    guest: AbortHandle,
}

impl GuestBody {
    pub(crate) fn new(stream: BodyStream, guest: AbortHandle) -> Self {
        Self { stream, guest }
    }
}

impl Drop for GuestBody {
    fn drop(&mut self) {
        self.guest.abort();
    }
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
                None if guest.stream.complete.load(Ordering::Acquire) => Poll::Ready(None),
                None => Poll::Ready(Some(Err(Incomplete.into()))),
            },
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
            ResponseBody::Guest(_) => SizeHint::default(),
        }
    }
}
