//! The handoff from a guest's task to the connection: one [`Start`] message
//! with the response head (and its body, which streams on while the guest
//! runs), or the outcome of a guest that failed before it had a head. Every
//! kind of handler answers through it, so the server has one way to turn
//! what a guest did into a response.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::oneshot;

use crate::outcome::Outcome;

/// Errors a response body can end with; hyper then cuts the connection's
/// response instead of ending it cleanly.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A guest's response body as its executor streams it. It ends cleanly
/// only if the guest finished normally; a failure after the head ends it
/// with an error (see [`Incomplete`]), so the client can tell the response
/// is incomplete.
pub(crate) type HandlerBody = UnsyncBoxBody<Bytes, BodyError>;

/// How a response starts: the first and only message from the guest's task
/// to the connection.
pub(crate) enum Start {
    /// The guest sent its head: the body streams after it.
    Head(http::Response<HandlerBody>),
    /// The guest finished without writing: its head, with an empty body.
    Complete(http::Response<()>),
    /// The guest failed before it had a head.
    Failed(Outcome),
}

/// Where an executor sends its [`Start`]. The receiver is gone when the
/// client is.
pub(crate) type Respond = oneshot::Sender<Start>;

/// The guest stopped before finishing its body; says how it ended.
#[derive(Debug, thiserror::Error)]
#[error("the handler failed after the response head was sent ({0}); the body is incomplete")]
pub(crate) struct Incomplete(pub(crate) &'static str);

impl Incomplete {
    /// The end of a body whose guest ended with `outcome` (`None`: its task
    /// ended without saying): nothing for a clean finish, else the error.
    pub(crate) fn after(outcome: Option<&Outcome>) -> Option<BodyError> {
        match outcome {
            Some(Outcome::Completed) => None,
            Some(failed) => Some(Self(failed.label()).into()),
            None => Some(Self("its task ended").into()),
        }
    }
}
