//! [`Error`] and [`Result`]: what a handler's `?` converts into, and what
//! becomes a logged `500` (or `502`, `503`, `504` for a [`HostError`] that
//! says an upstream or a store failed).

use std::any::Any;
use std::fmt;

use http::StatusCode;

use crate::HostError;
use crate::host_error::{self, ErrorKind};

/// Any error a handler meets. `?` converts every `std::error::Error` that is
/// `Send + Sync` (I/O, JSON, `http`, parse errors) into it, and
/// [`Error::msg`] makes one from a message.
///
/// A failed host call (outbound HTTP, a store, a file) arrives as a
/// [`HostError`] inside: [`kind`](Error::kind) tells what happened,
/// [`host_error`](Error::host_error) gives the details, and
/// [`status`](Error::status) is what the handler answers when it returns
/// the error.
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself:
/// that is what lets it convert from every type that does. It displays as the
/// error followed by its sources, `outer: inner`, which is what the log shows
/// when a handler returns it.
pub struct Error {
    /// Boxed so any error type fits, and so `Result<T>` stays small.
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// `Result<T, Error>`, what most handlers return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            inner: message.to_string().into(),
        }
    }

    /// The underlying error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref()
    }

    /// The failed host call behind this error, if there is one: the error
    /// itself, one of its sources, or the error inside an `io::Error` (as a
    /// body's `Read` reports it).
    pub fn host_error(&self) -> Option<&HostError> {
        let inner: &(dyn std::error::Error + 'static) = &*self.inner;
        host_error::find(Some(inner))
    }

    /// The kind of failed host call behind this error, if there is one:
    /// `error.kind() == Some(ErrorKind::NotFound)` for a missing file.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.host_error().map(HostError::kind)
    }

    /// The status a handler answers with when it returns this error:
    /// [`HostError::status`] for a failed host call (`502`, `503`, `504`
    /// when an upstream or a store failed), `500` otherwise. The body never
    /// carries the error's text, which goes to the log.
    pub fn status(&self) -> StatusCode {
        self.host_error()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, HostError::status)
    }
}

/// The status for a handler's error of any type: [`Error::status`] for the
/// SDK's own errors (and `io::Error`s carrying a [`HostError`]), `500`
/// otherwise.
pub(crate) fn status_of<E: 'static>(error: &E) -> StatusCode {
    let error: &dyn Any = error;
    if let Some(error) = error.downcast_ref::<Error>() {
        return error.status();
    }
    if let Some(host) = error.downcast_ref::<HostError>() {
        return host.status();
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        return host_error::find(Some(io))
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, HostError::status);
    }
    StatusCode::INTERNAL_SERVER_ERROR
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)?;
        let mut source = self.inner.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// The same as `Display`, so an `unwrap()` in a test reads well.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind, status_of};
    use crate::testing::{Reply, TestRequest};
    use http::StatusCode;
    use std::io;

    #[derive(Debug)]
    struct Outer(io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading the upload")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn display_lists_the_error_and_its_sources() {
        let error = Error::from(Outer(io::Error::other("connection reset")));
        assert_eq!(error.to_string(), "reading the upload: connection reset");
        assert_eq!(format!("{error:?}"), error.to_string());
    }

    #[test]
    fn a_message_error_displays_its_message() {
        assert_eq!(Error::msg("no such user").to_string(), "no such user");
    }

    #[test]
    fn a_failed_host_call_is_found_directly_in_sources_and_in_io_errors() {
        let failed = || {
            TestRequest::get("/")
                .upstream(|_| Reply::failed("refused"))
                .run(|| crate::http::get("http://up.example/").unwrap_err())
        };
        let direct = failed();
        assert_eq!(direct.kind(), Some(ErrorKind::Failed));
        assert_eq!(direct.status(), StatusCode::BAD_GATEWAY);
        let host = direct.host_error().unwrap();
        assert_eq!(host.message(), Some("refused"));

        // Through an `io::Error`, as a body's `Read` reports it.
        let inner = failed().inner;
        let wrapped = Error::from(io::Error::other(inner));
        assert_eq!(wrapped.kind(), Some(ErrorKind::Failed));
        assert_eq!(wrapped.status(), StatusCode::BAD_GATEWAY);

        // As the source of another error.
        let timeout = TestRequest::get("/")
            .upstream(|_| Reply::timed_out("slow"))
            .run(|| crate::http::get("http://up.example/").unwrap_err());
        let outer = Error::from(Outer(io::Error::other(timeout.inner)));
        assert_eq!(outer.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[test]
    fn an_error_without_a_host_call_behind_it_is_a_500() {
        let error = Error::msg("no such user");
        assert_eq!(error.kind(), None);
        assert!(error.host_error().is_none());
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn status_of_sees_through_the_error_types_a_handler_returns() {
        let failed = || {
            TestRequest::get("/")
                .upstream(|_| Reply::failed("refused"))
                .run(|| crate::http::get("http://up.example/").unwrap_err())
        };
        assert_eq!(status_of(&failed()), StatusCode::BAD_GATEWAY);
        let io = io::Error::other(failed().inner);
        assert_eq!(status_of(&io), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of(&"text"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status_of(&io::Error::other("plain")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn downcast_ref_finds_the_original_error() {
        let error = Error::from(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        let io = error.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert!(error.downcast_ref::<std::fmt::Error>().is_none());
    }
}
