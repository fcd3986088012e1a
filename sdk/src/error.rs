//! [`Error`] and [`Result`]: what a handler's `?` converts into, and what
//! becomes a logged `500`.

use std::fmt;

/// Any error a handler meets. `?` converts every `std::error::Error` that is
/// `Send + Sync` (I/O, JSON, `http`, parse errors) into it, and
/// [`Error::msg`] makes one from a message.
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
    use super::Error;
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
    fn downcast_ref_finds_the_original_error() {
        let error = Error::from(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        let io = error.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert!(error.downcast_ref::<std::fmt::Error>().is_none());
    }
}
