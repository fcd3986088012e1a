//! [`Body`]: the request body, read from the host as the handler asks.

use std::io::{self, Read};

use crate::{Result, sys};

/// The request body: a [`Read`] that pulls from the host in pieces, so a
/// handler can stream a large upload without holding it in memory, or take
/// it whole with [`bytes`](Body::bytes), [`text`](Body::text) or `json`
/// (with the `json` feature).
///
/// Each read suspends the module until the client has sent more; it never
/// blocks the server. A body can be read once: the whole-body methods return
/// what is left of it.
#[derive(Debug)]
pub struct Body {
    /// The host said "end"; asking again would be a wasted call.
    ended: bool,
}

impl Body {
    pub(crate) fn new() -> Self {
        Self { ended: false }
    }

    /// The rest of the body as bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The rest of the body as text; an error if it is not UTF-8.
    pub fn text(&mut self) -> Result<String> {
        Ok(String::from_utf8(self.bytes()?)?)
    }

    /// The rest of the body parsed as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes()?)?)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty buffer would read as "end" from the host.
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        match usize::try_from(sys::req_body_read(buf)) {
            Ok(0) => {
                self.ended = true;
                Ok(0)
            }
            Ok(n) => Ok(n.min(buf.len())),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the request body could not be read: the client aborted it or sent a malformed body",
            )),
        }
    }
}
