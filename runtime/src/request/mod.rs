//! The guest's request as every layer sees it: whose it is (`Identity`),
//! its body held to the server's limits (`LimitedBody`), and the handoff
//! that carries the response's head and body back to the connection
//! (`Start`). Ground floor: the server builds these, the executors and
//! the host imports consume them, and none of them is defined above.

mod body;
mod respond;

use std::sync::Arc;

pub use body::BodyLimits;
pub(crate) use body::{BodyReadError, LimitedBody};
pub use respond::BodyError;
pub(crate) use respond::{HandlerBody, Incomplete, Respond, Start};

/// Who a guest's log lines and denials are about.
#[derive(Clone)]
pub(crate) struct Identity {
    /// The handler's URL path.
    pub(crate) handler: Arc<str>,
    /// The request's id, shared with its access line.
    pub(crate) request_id: Arc<str>,
}
