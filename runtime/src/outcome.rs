//! How one request ended ([`Outcome`]), and the one place an outcome
//! becomes an HTTP status ([`Outcome::status`]): a guest's run, a handler
//! that did not load, and every refusal before guest code runs (`400`,
//! `404`, `405`, `413`, `503`). Ground floor: every layer that learns how a
//! request ended (the host, the executors, the server, the metrics) names it
//! with this type.

use http::StatusCode;

use crate::error::LoadError;

/// How one request ended. Mapped to a status exactly once, by
/// [`Outcome::status`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The guest returned normally.
    Completed,
    /// The handler could not be loaded.
    Load(LoadError),
    /// The guest trapped or a host import failed it (bad pointer, limit).
    Trap(String),
    /// The guest ran past the request timeout.
    Timeout,
    /// No instance could be had: the server is at its instance limit.
    Busy,
    /// The handler was still loading (compiling, or its file settling) when
    /// the request timeout passed; the load goes on for later requests.
    Loading,
    /// The request's task ended without a word: it panicked (a host bug,
    /// logged by the runtime).
    Panicked,
    /// Refused before any guest code: the request is malformed, or lacks
    /// what its handler needs; says what.
    BadRequest(String),
    /// Refused: nothing is served at the path.
    NotFound,
    /// Refused: the handler exports no function for the request's verb;
    /// `allow` lists the verbs it has.
    MethodNotAllowed {
        /// The `Allow` header's value.
        allow: String,
    },
    /// Refused: the declared body is larger than `--max-body-size`.
    TooLarge,
    /// Refused: no execution slot within the admission queue's limits.
    Overloaded,
}

impl Outcome {
    /// The status the client gets when this outcome happens before the
    /// response head is sent.
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Completed => StatusCode::OK,
            Outcome::Load(_) | Outcome::Trap(_) | Outcome::Panicked => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Outcome::Busy | Outcome::Loading | Outcome::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Outcome::BadRequest(_) => StatusCode::BAD_REQUEST,
            Outcome::NotFound => StatusCode::NOT_FOUND,
            Outcome::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// Whether the request was turned away before a handler was loaded or
    /// run for it: its access line records just the status, not a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Outcome::BadRequest(_)
                | Outcome::NotFound
                | Outcome::MethodNotAllowed { .. }
                | Outcome::TooLarge
                | Outcome::Overloaded
        )
    }

    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Load(_) => "load error",
            Outcome::Trap(_) => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Busy => "busy",
            Outcome::Loading => "loading",
            Outcome::Panicked => "panicked",
            Outcome::BadRequest(_) => "bad request",
            Outcome::NotFound => "not found",
            Outcome::MethodNotAllowed { .. } => "method not allowed",
            Outcome::TooLarge => "body too large",
            Outcome::Overloaded => "overloaded",
        }
    }

    /// The detail behind a failure, for the log and for development mode.
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Load(e) => Some(e.to_string()),
            Outcome::Trap(msg) => Some(msg.clone()),
            Outcome::Timeout => Some("the handler ran past the request timeout".to_owned()),
            Outcome::Busy => {
                Some("the server is at its limit of live instances (--max-instances)".to_owned())
            }
            Outcome::Loading => Some(
                "the handler was still loading at the request timeout; it goes on loading for the next request"
                    .to_owned(),
            ),
            Outcome::BadRequest(why) => Some(why.clone()),
            Outcome::Completed
            | Outcome::Panicked
            | Outcome::NotFound
            | Outcome::MethodNotAllowed { .. }
            | Outcome::TooLarge
            | Outcome::Overloaded => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_status_and_runs_no_guest() {
        let cases = [
            (Outcome::BadRequest("no Host".into()), 400),
            (Outcome::NotFound, 404),
            (
                Outcome::MethodNotAllowed {
                    allow: "GET".into(),
                },
                405,
            ),
            (Outcome::TooLarge, 413),
            (Outcome::Overloaded, 503),
        ];
        for (outcome, status) in cases {
            assert_eq!(outcome.status().as_u16(), status, "{outcome:?}");
            assert!(outcome.is_refusal(), "{outcome:?}");
        }
    }

    #[test]
    fn what_a_guest_or_its_load_ended_with_is_not_a_refusal() {
        let cases = [
            (Outcome::Completed, 200),
            (Outcome::Trap("unreachable".into()), 500),
            (Outcome::Panicked, 500),
            (Outcome::Timeout, 504),
            (Outcome::Busy, 503),
            (Outcome::Loading, 503),
        ];
        for (outcome, status) in cases {
            assert_eq!(outcome.status().as_u16(), status, "{outcome:?}");
            assert!(!outcome.is_refusal(), "{outcome:?}");
        }
    }
}
