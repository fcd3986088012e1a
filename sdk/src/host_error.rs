//! [`HostError`] and [`ErrorKind`]: a host call that failed, with the host's
//! own explanation, and the status a handler that returns it answers with.

use std::fmt;
use std::io;

use http::StatusCode;

use crate::{code, sys};

/// What kind of failure a host call reported: one per ABI code (see
/// [`code`](crate::code)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration (`wasmlet.toml`) does not grant this: a host not in
    /// the allow-list, a private address, a store or a file outside the
    /// grants. An operator fixes it, not the handler.
    Denied,
    /// The operation ran past its time limit.
    Timeout,
    /// A size limit was hit: a response over the maximum response size, a
    /// value over the store's maximum value size.
    TooLarge,
    /// The operation failed: connection refused, DNS, TLS, the store's
    /// backend down, an I/O error.
    Failed,
    /// The request holds too many open handles (pending operations and open
    /// responses; the limit is 64). Wait for or drop some first.
    Busy,
    /// The host rejected an argument: a malformed URL, method or header, a
    /// key with control characters, a path with `..`.
    Invalid,
    /// What must exist does not: a file.
    NotFound,
    /// A code this SDK does not know; [`HostError::code`] has it.
    Other,
}

impl ErrorKind {
    /// The kind of negative ABI code `code`.
    pub fn from_code(code: i32) -> Self {
        match code {
            code::DENIED => Self::Denied,
            code::TIMEOUT => Self::Timeout,
            code::TOO_LARGE => Self::TooLarge,
            code::FAILED => Self::Failed,
            code::BUSY => Self::Busy,
            code::INVALID => Self::Invalid,
            code::ABSENT => Self::NotFound,
            _ => Self::Other,
        }
    }

    /// A few words for messages: `denied`, `timed out`, …
    fn describe(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Timeout => "timed out",
            Self::TooLarge => "too large",
            Self::Failed => "failed",
            Self::Busy => "too many open handles",
            Self::Invalid => "invalid argument",
            Self::NotFound => "not found",
            Self::Other => "failed with an unknown code",
        }
    }

    /// The nearest `std::io::ErrorKind`, for errors that go through
    /// `std::io::Read`.
    fn io_kind(self) -> io::ErrorKind {
        match self {
            Self::Denied => io::ErrorKind::PermissionDenied,
            Self::Timeout => io::ErrorKind::TimedOut,
            Self::TooLarge => io::ErrorKind::FileTooLarge,
            Self::Busy => io::ErrorKind::ResourceBusy,
            Self::Invalid => io::ErrorKind::InvalidInput,
            Self::NotFound => io::ErrorKind::NotFound,
            Self::Failed | Self::Other => io::ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Which capability a call belonged to; it decides the status a failure
/// answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capability {
    /// Outbound HTTP: the upstream is a gateway's upstream.
    Http,
    /// A key-value store: a backing service.
    Kv,
    /// Files in the granted mounts: local to the server.
    Files,
}

/// A call as the handler asked for it, to name in the error if it fails.
#[derive(Clone, Debug)]
pub(crate) struct Operation {
    capability: Capability,
    /// `GET http://api.example/`, `kv get "k" in store "default"`, …
    what: String,
}

impl Operation {
    pub(crate) fn new(capability: Capability, what: String) -> Self {
        Self { capability, what }
    }

    /// The error for this operation's failure `code`, with the host's
    /// message; call it right after the failing call.
    pub(crate) fn error(&self, code: i32) -> crate::Error {
        HostError::new(self.capability, code, self.what.clone()).into()
    }

    /// What the handler asked for.
    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// As [`error`](Operation::error), as a `HostError`.
    pub(crate) fn host_error(&self, code: i32) -> HostError {
        HostError::new(self.capability, code, self.what.clone())
    }
}

/// A host call that failed: what the handler tried, the ABI code, and the
/// host's explanation from `error_message`.
///
/// Displays as `operation: kind: message`, for instance
/// `GET http://api.example/: denied: api.example is not in [http] allow of
/// /srv/www/wasmlet.toml`, which is what the log shows when a handler
/// returns it. Reach it from an [`Error`](crate::Error) with
/// [`Error::host_error`](crate::Error::host_error) or
/// [`Error::kind`](crate::Error::kind).
#[derive(Debug)]
pub struct HostError {
    kind: ErrorKind,
    /// The raw code, for [`ErrorKind::Other`] and for logs.
    code: i32,
    capability: Capability,
    /// What the handler asked for, in its own terms (`kv get "k" in store
    /// "default"`): the host's message alone may not say which call failed.
    operation: String,
    message: Option<String>,
}

impl HostError {
    /// The failure `code` of `operation`, with the host's message when it
    /// has one. Call it right after the failing call: the host keeps only the
    /// latest message.
    pub(crate) fn new(capability: Capability, code: i32, operation: String) -> Self {
        // A missing key or file is an answer, not a failure: the host need
        // not record a message for it, and asking could return an older
        // failure's text.
        let message = (code != code::ABSENT)
            .then(|| sys::read_value(sys::error_message))
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Self {
            kind: ErrorKind::from_code(code),
            code,
            capability,
            operation,
            message,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The ABI code the host returned.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// What the handler asked for: `GET http://api.example/`,
    /// `kv get "k" in store "default"`, `file read "data/a.txt"`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The host's explanation, if it gave one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The status a handler answers with when it returns this error:
    ///
    /// | failure | status |
    /// | --- | --- |
    /// | outbound HTTP `Failed` or `TooLarge` (the upstream's answer is unusable) | `502 Bad Gateway` |
    /// | key-value `Failed` (the store's backend is down) | `503 Service Unavailable` |
    /// | `Timeout` of outbound HTTP or a store | `504 Gateway Timeout` |
    /// | anything else (`Denied`, `Busy`, `Invalid`, files) | `500 Internal Server Error` |
    pub fn status(&self) -> StatusCode {
        match (self.capability, self.kind) {
            (Capability::Http, ErrorKind::Failed | ErrorKind::TooLarge) => StatusCode::BAD_GATEWAY,
            (Capability::Kv, ErrorKind::Failed) => StatusCode::SERVICE_UNAVAILABLE,
            (Capability::Http | Capability::Kv, ErrorKind::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.kind)?;
        if self.kind == ErrorKind::Other {
            write!(f, " {}", self.code)?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for HostError {}

/// For `std::io::Read` implementations: the kind maps to the nearest
/// `io::ErrorKind`, and the `HostError` stays inside (`get_ref`), where
/// [`Error::host_error`](crate::Error::host_error) finds it.
impl From<HostError> for io::Error {
    fn from(error: HostError) -> Self {
        io::Error::new(error.kind.io_kind(), error)
    }
}

/// The `HostError` in `error` or its sources, looking inside `io::Error`s
/// too (their `source` skips the error they wrap).
pub(crate) fn find<'a>(
    mut error: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a HostError> {
    while let Some(current) = error {
        if let Some(host) = current.downcast_ref::<HostError>() {
            return Some(host);
        }
        if let Some(host) = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<HostError>())
        {
            return Some(host);
        }
        error = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Capability, ErrorKind, HostError, find};
    use crate::code;
    use crate::testing::TestRequest;
    use http::StatusCode;
    use std::io;

    fn error(capability: Capability, code: i32) -> HostError {
        HostError {
            kind: ErrorKind::from_code(code),
            code,
            capability,
            operation: "op".to_owned(),
            message: None,
        }
    }

    #[test]
    fn every_failure_code_has_its_kind() {
        let cases = [
            (code::DENIED, ErrorKind::Denied),
            (code::TIMEOUT, ErrorKind::Timeout),
            (code::TOO_LARGE, ErrorKind::TooLarge),
            (code::FAILED, ErrorKind::Failed),
            (code::BUSY, ErrorKind::Busy),
            (code::INVALID, ErrorKind::Invalid),
            (code::ABSENT, ErrorKind::NotFound),
            (code::CLOSED, ErrorKind::Other),
            (-99, ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(ErrorKind::from_code(code), kind, "{code}");
        }
    }

    #[test]
    fn statuses_follow_the_capability_and_the_kind() {
        use Capability::{Files, Http, Kv};
        let cases = [
            (Http, code::FAILED, StatusCode::BAD_GATEWAY),
            (Http, code::TOO_LARGE, StatusCode::BAD_GATEWAY),
            (Http, code::TIMEOUT, StatusCode::GATEWAY_TIMEOUT),
            (Http, code::DENIED, StatusCode::INTERNAL_SERVER_ERROR),
            (Http, code::BUSY, StatusCode::INTERNAL_SERVER_ERROR),
            (Kv, code::FAILED, StatusCode::SERVICE_UNAVAILABLE),
            (Kv, code::TIMEOUT, StatusCode::GATEWAY_TIMEOUT),
            (Kv, code::TOO_LARGE, StatusCode::INTERNAL_SERVER_ERROR),
            (Kv, code::DENIED, StatusCode::INTERNAL_SERVER_ERROR),
            (Files, code::FAILED, StatusCode::INTERNAL_SERVER_ERROR),
            (Files, code::TIMEOUT, StatusCode::INTERNAL_SERVER_ERROR),
            (Files, code::ABSENT, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (capability, code, status) in cases {
            assert_eq!(
                error(capability, code).status(),
                status,
                "{capability:?} {code}"
            );
        }
    }

    #[test]
    fn display_names_the_operation_the_kind_and_the_hosts_message() {
        let mut denied = error(Capability::Http, code::DENIED);
        denied.operation = "GET http://x/".to_owned();
        assert_eq!(denied.to_string(), "GET http://x/: denied");
        denied.message = Some("x is not in [http] allow of /srv/wasmlet.toml".to_owned());
        assert_eq!(
            denied.to_string(),
            "GET http://x/: denied: x is not in [http] allow of /srv/wasmlet.toml"
        );
        assert_eq!(
            error(Capability::Kv, -42).to_string(),
            "op: failed with an unknown code -42"
        );
    }

    #[test]
    fn new_takes_the_hosts_message_except_for_absent() {
        TestRequest::get("/").run(|| {
            // Makes the fake host record a failure message.
            assert_eq!(crate::sys::close(12345), code::INVALID);
            let invalid = HostError::new(Capability::Http, code::INVALID, "op".to_owned());
            assert!(invalid.message().unwrap().contains("12345"), "{invalid}");
            let absent = HostError::new(Capability::Files, code::ABSENT, "op".to_owned());
            assert_eq!(absent.message(), None);
        });
    }

    #[test]
    fn an_io_error_keeps_the_host_error_findable() {
        let io = io::Error::from(error(Capability::Http, code::TIMEOUT));
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
        let found = find(Some(&io)).unwrap();
        assert_eq!(found.kind(), ErrorKind::Timeout);
        assert!(find(Some(&io::Error::other("plain"))).is_none());
    }
}
